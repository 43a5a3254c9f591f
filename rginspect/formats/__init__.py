"""Checkpoint file -> RGFlowModel, whatever wrote the file; and the native format back out.

Formats come from the `rginspect_checkpoint_formats` hook, so the built-ins (native, rgflow, neuralrg,
module) and third-party formats are found the same way.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import torch

from ..device import DeviceError, available_memory, full_precision, resolve_device
from ..errors import (
    CheckpointNotFoundError,
    InvertibilityWarning,
    RGInspectError,
    UnknownFormatError,
)
from ..model import RGFlowModel
from .base import CheckpointFormat, pickle_globals, untrusted_code_error

# what torch.save itself writes into a pickle: rebuilding tensors and plain containers
SAFE_GLOBAL_PREFIXES = ("torch.", "collections.OrderedDict", "builtins.set", "builtins.frozenset")

__all__ = ["CheckpointFormat", "as_model", "available_formats", "detect_format", "load", "save"]

# Above these, a round trip is not float round-off any more (float32 values of order 1..10).
RECONSTRUCTION_TOLERANCE = 1e-3
LOGDET_TOLERANCE = 1e-4


def available_formats() -> dict[str, CheckpointFormat]:
    """Every registered format by name, built-ins first, in registration order."""
    from ..plugin_manager import provided

    formats: dict[str, CheckpointFormat] = {}
    for checkpoint_format, _ in provided("rginspect_checkpoint_formats"):
        formats.setdefault(checkpoint_format.name, checkpoint_format)
    return formats


def detect_format(path: str | Path) -> CheckpointFormat:
    """The first format whose cheap sniff claims the path."""
    formats = available_formats()
    path = Path(path)
    for checkpoint_format in formats.values():
        if checkpoint_format.sniff(path):
            return checkpoint_format
    if not path.exists():
        raise CheckpointNotFoundError(f"{path}: no such file or folder; check the path")
    code = sorted(g for g in pickle_globals(path) if not g.startswith(SAFE_GLOBAL_PREFIXES))
    if path.is_file() and code:
        raise untrusted_code_error(path, ", ".join(code))
    raise UnknownFormatError(
        f"{path}: no known checkpoint format recognises it (known: {', '.join(formats)}); "
        "pass format=... (--format) or install a plugin for it"
    )


def load(
    path: str | Path,
    *,
    format: str | None = None,
    trust_checkpoint: bool = False,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    check: bool = True,
    **architecture: Any,
) -> RGFlowModel:
    """Load a trained RG flow from any known checkpoint format.

    `architecture` overrides what the file cannot tell (e.g. L=32, prior="gaussian"). Pickled code is
    never run unless `trust_checkpoint`. With `check`, a random batch is pushed through
    decode/encode/decode and a warning with numbers is issued if the model does not invert.
    """
    if format is None:
        checkpoint_format = detect_format(path)
    else:
        formats = available_formats()
        if format not in formats:
            raise UnknownFormatError(
                f"unknown checkpoint format {format!r}; known: {', '.join(formats)}"
            )
        checkpoint_format = formats[format]
    model = checkpoint_format.load(Path(path), trust_checkpoint=trust_checkpoint, **architecture)
    model.provenance.setdefault("format", checkpoint_format.name)
    model.provenance.setdefault("path", str(path))
    try:
        model = model.to(device=resolve_device(device), dtype=dtype).eval()
    except torch.cuda.OutOfMemoryError:
        raise DeviceError(
            f"{path} does not fit in the free memory of {device} "
            f"({available_memory(device) / 2**30:.1f} GiB); use --device cpu"
        ) from None
    if check:
        with full_precision():  # TF32 would round the round trip to ~1e-3 and warn
            model.load_check = check_invertibility(model)
    return model


def as_model(
    model: Any,
    *,
    format: str | None = None,
    trust_checkpoint: bool = False,
    device: str | torch.device | None = None,
    **options: Any,
) -> RGFlowModel:
    """Any model rginspect can analyse as an RGFlowModel.

    - a path (str or Path): `load(path, format=..., **options)`, whatever wrote the file;
    - an RGFlowModel: itself (moved to `device` when one is given);
    - a normflows `MultiscaleFlow`: wrapped with its constructor settings as `options`
      (architecture=, levels=, steps=, hidden_channels=, input_shape=; see `build_multiscale`);
    - `(flow, latent_level)`, a dict with flow and latent_level (as a `module` factory returns),
      or a module with encode/decode (or forward/inverse) given with `latent_level=...` (and
      optionally prior=, domain=) as options.

    Raises an RGInspectError with a one-line message for anything else.
    """
    from .python_module import model_from_parts

    if isinstance(model, str | Path):
        return load(
            model,
            format=format,
            trust_checkpoint=trust_checkpoint,
            device=device or "cpu",
            **options,
        )
    if isinstance(model, RGFlowModel):
        if options or format:
            given = ", ".join([*(["format"] if format else []), *options])
            raise RGInspectError(
                f"an RGFlowModel in memory takes no loader options (got {given}); "
                "they are for checkpoint files and flows of other libraries"
            )
        return model if device is None else model.to(resolve_device(device))
    if type(model).__module__.split(".")[0] == "normflows":
        from .normflows import wrap_multiscale

        wrapped = wrap_multiscale(model, **options)
    elif isinstance(model, torch.nn.Module) and not isinstance(model, RGFlowModel):
        if "latent_level" not in options:
            raise RGInspectError(
                f"a {type(model).__name__} in memory needs its latent-level map: pass "
                "latent_level=<int array of the data shape> (and prior=, domain= if not a "
                "Gaussian field model)"
            )
        wrapped = model_from_parts({"flow": model, **options}, type(model).__name__)
    else:
        if options:
            raise RGInspectError(
                f"loader options ({', '.join(options)}) do not apply to a "
                f"{type(model).__name__}; give a path, a model or a flow"
            )
        wrapped = model_from_parts(model, f"a {type(model).__name__} given as the model")
    wrapped = wrapped.eval()
    return wrapped if device is None else wrapped.to(resolve_device(device))


def save(model: RGFlowModel, path: str | Path) -> Path:
    """Write the native format: a torch file (.pt) or safetensors (.safetensors), by suffix.
    Models of other libraries' architectures are saved by their own writers (the error says
    which); they can be analysed in memory without being saved."""
    from .native import write_native

    return write_native(model, Path(path))


@torch.no_grad()
def check_invertibility(model: RGFlowModel, n: int = 4, seed: int = 0) -> dict[str, float]:
    """Round-trip a batch of model samples; warn if the flow is not a bijection to round-off."""
    generator = torch.Generator().manual_seed(seed)
    z = model.prior.sample((n, *model.data_shape), 1.0, generator)
    x, logdet_decode = model.decode(z)
    z_again, logdet_encode = model.encode(x)
    x_again, _ = model.decode(z_again)
    scale = float(x.abs().max().clamp(min=1.0))
    result = {
        "max_reconstruction_error": float((x_again - x).abs().max()),
        "max_logdet_residual": float((logdet_encode + logdet_decode).abs().max()),
        "max_abs_logdet": float(logdet_encode.abs().max()),
    }
    logdet_scale = max(1.0, result["max_abs_logdet"], float(model.n_latents))
    if (
        not all(math.isfinite(value) for value in result.values())
        or result["max_reconstruction_error"] > RECONSTRUCTION_TOLERANCE * scale
        or result["max_logdet_residual"] > LOGDET_TOLERANCE * logdet_scale
    ):
        warnings.warn(
            f"model does not invert cleanly: max |decode(encode(x)) - x| = "
            f"{result['max_reconstruction_error']:.3g} (|x| up to {scale:.3g}), log-det residual "
            f"{result['max_logdet_residual']:.3g}; analyses that assume a bijection may mislead",
            InvertibilityWarning,
            stacklevel=3,
        )
    return result
