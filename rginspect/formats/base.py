"""What every checkpoint format shares: the format record, safe reading, strict weight matching."""

from __future__ import annotations

import io
import math
import pickle
import pickletools
import re
import warnings
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..errors import (
    ArchitectureError,
    ArchitectureMismatchError,
    CheckpointNotFoundError,
    NonFiniteWeightsError,
    NotACheckpointError,
    UntrustedCheckpointError,
)
from .checks import state_dict_of

if TYPE_CHECKING:
    from ..model import RGFlowModel

_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL = 0x80


@dataclass(frozen=True)
class CheckpointFormat:
    """A checkpoint format, as returned by the `rginspect_checkpoint_formats` hook."""

    name: str
    description: str
    sniff: Callable[[Path], bool]
    load: Callable[..., RGFlowModel]


def locate_checkpoint(
    path: Path,
    find_in_folder: Callable[[Path], Path | None],
    architecture: Mapping[str, Any],
    options: tuple[str, ...],
    label: str,
) -> Path:
    """The checkpoint file a path means (a folder is searched), after checking the options."""
    unknown = sorted(set(architecture) - set(options))
    if unknown:
        raise ArchitectureError(
            f"{label} checkpoints take the options {', '.join(options)}; not {', '.join(unknown)}"
        )
    file = find_in_folder(path) if path.is_dir() else path
    if file is None:
        raise CheckpointNotFoundError(f"{path}: folder holds no {label} checkpoint")
    return file


def read_torch_file(path: Path, trust_checkpoint: bool = False) -> Any:
    """torch.load that never runs pickled code unless the user trusts the file.

    Every way a file can be wrong becomes one rginspect exception naming the file and what to do.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"{path}: no such file; check the path")
    with path.open("rb") as handle:
        head = handle.read(4)
    if not (head.startswith(_ZIP_MAGIC) or (head and head[0] == _PICKLE_PROTOCOL)):
        raise NotACheckpointError(
            f"{path}: not a PyTorch checkpoint (neither a torch zip archive nor a pickle); "
            "pass the .pt/.state/.saving file written by torch.save"
        )
    if trust_checkpoint:
        warnings.warn(
            f"loading {path} with --trust-checkpoint: pickled code in it will run",
            stacklevel=2,
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as error:
        blocked = re.search(r"GLOBAL ([\w.]+)", str(error))
        if blocked:
            raise untrusted_code_error(path, blocked.group(1)) from None
        raise NotACheckpointError(
            f"{path}: corrupted or unsafe pickle ({_last_line(error)}); re-export the checkpoint, "
            "or rerun with --trust-checkpoint if you trust its author"
        ) from None
    except Exception as error:  # torch's readers fail in many ways on a damaged file
        raise NotACheckpointError(
            f"{path}: truncated or corrupted checkpoint ({first_line(error) or 'unexpected end'}); "
            "copy or save it again"
        ) from None


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0][:160] if text else ""


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if "error" in line.lower()]
    return (lines[-1] if lines else first_line(error))[:160]


def check_finite(state: Mapping[str, torch.Tensor], source: Path | str) -> None:
    """Refuse weights with NaN/Inf: every analysis of such a model would be silently meaningless."""
    bad = [
        key
        for key, value in state.items()
        if torch.is_tensor(value) and value.is_floating_point() and not torch.isfinite(value).all()
    ]
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise NonFiniteWeightsError(
            f"{source}: NaN or Inf in {shown}; the training diverged, load an earlier checkpoint"
        )


def require_keys(
    state: Mapping[str, torch.Tensor],
    expected_shapes: Mapping[str, tuple[int, ...]],
    source: Path | str,
    optional: set[str] = frozenset(),
) -> None:
    """Name every missing, unexpected and wrongly shaped key in one error, instead of loading half."""
    missing = sorted(set(expected_shapes) - set(state))
    unexpected = sorted(set(state) - set(expected_shapes) - set(optional))
    reshaped = sorted(
        f"{key} {tuple(state[key].shape)} != {tuple(expected_shapes[key])}"
        for key in set(expected_shapes) & set(state)
        if tuple(state[key].shape) != tuple(expected_shapes[key])
    )
    problems = [
        f"{label}: {', '.join(keys)}"
        for label, keys in [
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", reshaped),
        ]
        if keys
    ]
    if problems:
        raise ArchitectureMismatchError(
            f"{source}: weights do not fit the architecture ({'; '.join(problems)}); "
            "check the format and architecture options"
        )


def load_state_strictly(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: Path | str
) -> None:
    """Check keys, shapes, dtypes and finiteness, then load, keeping the checkpoint's floating dtype."""
    state = state_dict_of(state, source, "the state dict")
    expected = model.state_dict()
    require_keys(state, {key: value.shape for key, value in expected.items()}, source)
    wrong = [
        f"{key} ({state[key].dtype})"
        for key, value in expected.items()
        if value.is_floating_point() and not state[key].is_floating_point()
    ]
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise ArchitectureMismatchError(
            f"{source}: real floating-point weights expected, found {shown}; the file does not "
            "hold this model's weights"
        )
    check_finite(state, source)
    dtypes = {value.dtype for value in state.values() if value.is_floating_point()}
    if len(dtypes) == 1:
        model.to(dtypes.pop())
    model.load_state_dict(state)


def newest_file(folder: Path, pattern: str) -> Path | None:
    """The checkpoint with the highest number in its name (the last epoch), else the newest on disk."""
    candidates = [path for path in folder.glob(pattern) if path.is_file()]
    if not candidates:
        return None

    def key(path: Path) -> tuple[float, float]:
        epoch = epoch_of(path)
        return (-math.inf if epoch is None else epoch, path.stat().st_mtime)

    return max(candidates, key=key)


def epoch_of(file: Path) -> int | None:
    """The last number in a checkpoint's file name, which upstream codes use for the epoch."""
    numbers = re.findall(r"\d+", Path(file).stem)
    return int(numbers[-1]) if numbers else None


def pickle_strings(path: Path, limit: int = 1 << 20) -> set[str]:
    """String constants of a torch file's pickle, read without executing it (for cheap sniffing)."""
    return {
        argument
        for opcode, argument in _pickle_opcodes(path, limit)
        if isinstance(argument, str) and "UNICODE" in opcode
    }


def pickle_globals(path: Path, limit: int = 1 << 20) -> set[str]:
    """The callables a torch file's pickle would import ("module.name"), read without executing."""
    found, recent = set(), []
    for opcode, argument in _pickle_opcodes(path, limit):
        if opcode == "GLOBAL":
            found.add(argument.replace(" ", "."))
        elif opcode == "STACK_GLOBAL" and len(recent) >= 2:
            found.add(".".join(recent[-2:]))
        if isinstance(argument, str) and "UNICODE" in opcode:
            recent.append(argument)
    return found


def untrusted_code_error(path: Path, code: str) -> UntrustedCheckpointError:
    return UntrustedCheckpointError(
        f"{path}: loading it would run pickled code ({code}); if you trust the file's author, "
        "rerun with --trust-checkpoint (trust_checkpoint=True)"
    )


def _pickle_opcodes(path: Path, limit: int) -> list[tuple[str, object]]:
    """(opcode name, argument) of the pickle in a torch zip or a raw pickle file, as far as it parses."""
    opcodes = []
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                name = next((n for n in archive.namelist() if n.endswith("data.pkl")), None)
                data = archive.read(name) if name else b""
        else:
            with Path(path).open("rb") as handle:
                data = handle.read(limit)
        stream = io.BytesIO(data)
        while stream.tell() < len(data):  # legacy torch files hold several pickles in a row
            for opcode, argument, _ in pickletools.genops(stream):
                opcodes.append((opcode.name, argument))
    except Exception:  # raw tensor bytes follow, or a file read in part ends mid-stream
        pass
    return opcodes
