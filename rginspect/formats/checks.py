"""Checks for what a loader reads besides the weights: state-dict containers, scalars, masks, configs.

The strict state-dict match checks the weights, but a loader reads other values first, to decide
what to build: a mask's shape gives the block size, the prior's scale its kind, a config or a
hyper-parameter file the sizes and the action. Each such value is checked here before it is used, so a
damaged or edited file ends in one line naming the key, never in a traceback from deep inside torch.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import ArchitectureMismatchError, CheckpointValueError, NonFiniteWeightsError

REEXPORT = "the file is damaged or was edited; export the checkpoint again"


def state_dict_of(value: Any, source: Path | str, what: str) -> dict[str, torch.Tensor]:
    """`value` as a state dict (text keys, tensor values), or an error naming the first bad entry."""
    if not isinstance(value, Mapping):
        raise ArchitectureMismatchError(
            f"{source}: {what} is a {type(value).__name__}, not a state dict; pass the checkpoint "
            "file that holds the weights"
        )
    for key, entry in value.items():
        if not isinstance(key, str) or not torch.is_tensor(entry):
            raise ArchitectureMismatchError(
                f"{source}: {what} entry {_shown(key)} is a {type(entry).__name__}, not a named "
                f"tensor; {REEXPORT}"
            )
    return dict(value)


def integer(
    value: Any,
    key: str,
    source: Path | str,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    fix: str = REEXPORT,
) -> int:
    """An int (not a bool, not a float) in [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise _value_error(source, key, value, "is not an integer", fix)
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise _value_error(source, key, value, f"is out of range ({bounds})", fix)
    return value


def real(
    value: Any,
    key: str,
    source: Path | str,
    *,
    positive: bool = False,
    minimum: float | None = None,
    below: float | None = None,
    fix: str = REEXPORT,
) -> float:
    """A finite int or float, optionally > 0, >= minimum and < below."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _value_error(source, key, value, "is not a number", fix)
    value = float(value)
    if not math.isfinite(value):
        raise _value_error(source, key, value, "is not finite", fix)
    if positive and value <= 0:
        raise _value_error(source, key, value, "must be positive", fix)
    if minimum is not None and value < minimum:
        raise _value_error(source, key, value, f"must be at least {minimum}", fix)
    if below is not None and value >= below:
        raise _value_error(source, key, value, f"must be below {below}", fix)
    return value


def choice(
    value: Any, key: str, source: Path | str, choices: Collection[str], fix: str = REEXPORT
) -> str:
    if not isinstance(value, str) or value not in choices:
        raise _value_error(source, key, value, f"is not one of {', '.join(choices)}", fix)
    return value


def tensor_entry(
    state: Mapping[str, torch.Tensor],
    key: str,
    source: Path | str,
    *,
    shape: tuple[int, ...] | None = None,
    dim: int | None = None,
    positive: bool = False,
    binary: bool = False,
) -> torch.Tensor:
    """A state-dict tensor that is read before the strict match: present, real floating point,
    of the given shape (or number of dimensions), finite, and positive or 0/1 where asked."""
    if key not in state:
        raise ArchitectureMismatchError(f"{source}: missing keys: {key}; {REEXPORT}")
    tensor = state[key]
    if tensor.is_complex() or not tensor.is_floating_point():
        raise ArchitectureMismatchError(
            f"{source}: {key} holds {str(tensor.dtype).removeprefix('torch.')} values, real "
            f"floating point expected; {REEXPORT}"
        )
    wrong_shape = shape is not None and tuple(tensor.shape) != shape
    if wrong_shape or (dim is not None and (tensor.dim() != dim or tensor.numel() == 0)):
        expected = shape if shape is not None else f"{dim} non-empty dimensions"
        raise ArchitectureMismatchError(
            f"{source}: wrong shapes: {key} {tuple(tensor.shape)} != {expected}; {REEXPORT}"
        )
    if not torch.isfinite(tensor).all():
        raise NonFiniteWeightsError(f"{source}: NaN or Inf in {key}; {REEXPORT}")
    if positive and not (tensor > 0).all():
        raise CheckpointValueError(
            f"{source}: {key} must be positive, holds {float(tensor.min()):.4g}; {REEXPORT}"
        )
    if binary and not ((tensor == 0) | (tensor == 1)).all():
        raise CheckpointValueError(
            f"{source}: {key} is a mask but holds values other than 0 and 1; {REEXPORT}"
        )
    return tensor


def _value_error(
    source: Path | str, key: str, value: Any, problem: str, fix: str
) -> CheckpointValueError:
    return CheckpointValueError(f"{source}: {key} = {_shown(value)} {problem}; {fix}")


def _shown(value: Any, limit: int = 60) -> str:
    """A value's repr on one short line (reprs escape newlines; tensors and long text are cut)."""
    text = repr(value)
    return (
        text if len(text) <= limit and "\n" not in text else text.replace("\n", " ")[:limit] + "…"
    )


def training_record(recorded: Any, source: Path | str, fix: str = REEXPORT) -> dict[str, Any]:
    """A checkpoint's record of how it was trained, as provenance `{"training": ...}` (empty without
    one): a dict of plain JSON-able values, since it goes into every model card and report."""
    if recorded is None:
        return {}
    try:
        json.dumps(recorded, allow_nan=True)
    except (TypeError, ValueError):
        recorded = None
    if not isinstance(recorded, dict):
        raise CheckpointValueError(f"{source}: provenance is not a dict of plain values; {fix}")
    return {"training": recorded} if recorded else {}
