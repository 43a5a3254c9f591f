"""The module format: a researcher's own flow, built by a factory `package.module:function`.

For architectures rginspect does not know. The factory is called with the architecture options and
returns either an RGFlowModel, or `(flow, latent_level)`, or a dict with keys flow, latent_level and
optionally prior ("gaussian" | "laplace" | a Prior), domain ("field" | "image") and provenance.
`flow` needs encode(x) -> (z, logdet) and decode(z) -> (x, logdet), or NeuralRG-style
forward/inverse with the same meaning. Given a weights file and `factory=...`, the file's state dict is
loaded into the factory's flow (safely, as any checkpoint).
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError
from ..hooks import hookimpl
from ..model import DOMAINS, RGFlowModel
from ..nn.preprocessing import LogitTransform
from ..nn.priors import PRIORS, Prior
from .base import CheckpointFormat, load_state_strictly, read_torch_file

FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ModuleFlow(nn.Module):
    """Adapts a user's module to encode/decode (RG direction / generative direction)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        if not (
            all(hasattr(module, name) for name in ("encode", "decode"))
            or all(hasattr(module, name) for name in ("forward", "inverse"))
        ):
            raise ArchitectureError(
                f"{type(module).__name__} needs encode/decode (or forward/inverse) methods "
                "returning (tensor, logdet)"
            )
        self.module = module

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.module.encode(x) if hasattr(self.module, "encode") else self.module(x)

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        method = getattr(self.module, "decode", None) or self.module.inverse
        return method(z)


def sniff(path: Path) -> bool:
    return bool(FACTORY.match(str(path))) and not path.exists()


def load(
    path: Path, *, trust_checkpoint: bool = False, factory: str | None = None, **architecture: Any
) -> RGFlowModel:
    spec = factory or str(path)
    model = model_from_parts(_call_factory(spec, architecture), spec)
    if factory is not None:
        payload = read_torch_file(path, trust_checkpoint)
        state = payload.get("state_dict", payload) if isinstance(payload, dict) else payload
        target = model.flow.module if isinstance(model.flow, ModuleFlow) else model.flow
        load_state_strictly(target, state, path)
    model.provenance.setdefault("factory", spec)
    model.provenance.setdefault("factory_arguments", dict(architecture))
    return model


def model_from_parts(built: Any, label: str) -> RGFlowModel:
    """An RGFlowModel from what a factory returns, or what a user holds in memory: an
    RGFlowModel itself, `(flow, latent_level)`, or a dict with flow and latent_level (and
    optionally prior, domain, provenance); `label` names it in errors."""
    if isinstance(built, RGFlowModel):
        return built
    if isinstance(built, tuple) and len(built) == 2:
        built = {"flow": built[0], "latent_level": built[1]}
    if not isinstance(built, dict) or not {"flow", "latent_level"} <= set(built):
        raise ArchitectureError(
            f"{label} must be an RGFlowModel, (flow, latent_level) or a dict with flow and "
            "latent_level"
        )
    return _wrap(built, label)


def _call_factory(spec: str, architecture: dict[str, Any]) -> Any:
    module_name, _, function_name = spec.partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ArchitectureError(
            f"cannot import the model factory {spec} ({error}); is its package on PYTHONPATH?"
        ) from None
    try:
        inspect.signature(function).bind(**architecture)
    except TypeError as error:
        raise ArchitectureError(
            f"the factory {spec}{inspect.signature(function)} cannot be called with "
            f"{_arguments(architecture)}: {error}; pass its arguments as loader options "
            "(--load NAME=VALUE, or rginspect.load(..., NAME=VALUE))"
        ) from None
    except ValueError:  # a builtin without a signature: let the call say what is wrong
        pass
    return function(**architecture)


def _arguments(architecture: dict[str, Any]) -> str:
    if not architecture:
        return "no arguments"
    return ", ".join(f"{key}={value!r}" for key, value in architecture.items())


def _wrap(built: dict[str, Any], spec: str) -> RGFlowModel:
    level = np.asarray(built["latent_level"])
    if level.ndim != 3:
        raise ArchitectureError(
            f"{spec}: latent_level must have shape (C, L, L), not {level.shape}"
        )
    if level.dtype.kind not in "iu" or level.size == 0 or level.min() < 0:
        raise ArchitectureError(
            f"{spec}: latent_level must hold RG levels as integers >= 0, not {level.dtype} values"
        )
    prior = built.get("prior", "gaussian")
    if not isinstance(prior, Prior):
        if not isinstance(prior, str) or prior not in PRIORS:
            raise ArchitectureError(f"{spec}: unknown prior {prior!r}; known: {', '.join(PRIORS)}")
        prior = PRIORS[prior](2**-0.5 if prior == "laplace" else 1.0)
    domain = built.get("domain", "field")
    if not isinstance(domain, str) or domain not in DOMAINS:
        raise ArchitectureError(
            f"{spec}: domain must be one of {', '.join(DOMAINS)}, not {domain!r}"
        )
    if not isinstance(built.get("provenance") or {}, dict):
        raise ArchitectureError(f"{spec}: provenance must be a dict")
    return RGFlowModel(
        ModuleFlow(built["flow"]),
        prior,
        level,
        domain=domain,
        data_shape=level.shape,
        preprocessing=LogitTransform() if domain == "image" else None,
        provenance=built.get("provenance"),
    )


MODULE = CheckpointFormat(
    name="module",
    description="your own nn.Module from a factory package.module:function (for unknown architectures)",
    sniff=sniff,
    load=load,
)


@hookimpl
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    return [MODULE]
