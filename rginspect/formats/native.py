"""The native format: architecture config + weights + optional action and training provenance.

Torch flavour: torch.save of a dict of plain types and tensors, so torch.load(weights_only=True) reads it.
Safetensors flavour: the state dict as tensors, everything else as JSON text in the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from ..atomic import atomic_output
from ..errors import (
    ArchitectureError,
    CheckpointValueError,
    NotACheckpointError,
    RGInspectError,
)
from ..hooks import hookimpl
from ..model import RGFlowModel
from .base import (
    CheckpointFormat,
    first_line,
    load_state_strictly,
    pickle_strings,
    read_torch_file,
    require_keys,
)
from .checks import integer, state_dict_of, tensor_entry, training_record
from .config import FIX, checked_config

FORMAT_KEY = "rginspect_format"
FORMAT_VERSION = 1


def sniff(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.suffix == ".safetensors":
        return FORMAT_KEY in _safetensors_metadata(path)
    return FORMAT_KEY in pickle_strings(path)


def load(path: Path, *, trust_checkpoint: bool = False, **architecture: Any) -> RGFlowModel:
    if architecture:
        raise ArchitectureError(
            f"{path}: a native checkpoint describes its own architecture; drop the options "
            f"{', '.join(sorted(architecture))}"
        )
    if path.suffix == ".safetensors":
        payload = _read_safetensors(path)
    else:
        payload = read_torch_file(path, trust_checkpoint)
    if not isinstance(payload, dict) or FORMAT_KEY not in payload:
        raise NotACheckpointError(f"{path}: not an rginspect native checkpoint; pass format=...")
    version = integer(payload[FORMAT_KEY], FORMAT_KEY, path, fix=FIX)
    if version > FORMAT_VERSION:
        raise NotACheckpointError(
            f"{path}: native format version {version} is newer than this rginspect "
            f"reads ({FORMAT_VERSION}); upgrade rginspect"
        )
    state = state_dict_of(payload.get("state_dict"), path, "state_dict")
    config = checked_config(payload.get("config"), state, path)
    try:
        with torch.device("meta"):  # sizes against the weights before allocating anything
            skeleton = RGFlowModel.from_config(config).state_dict()
    except (RuntimeError, OverflowError) as error:  # sizes beyond what torch can represent
        raise CheckpointValueError(
            f"{path}: config cannot be built ({first_line(error)}); {FIX}"
        ) from None
    require_keys(state, {key: value.shape for key, value in skeleton.items()}, path)
    for key in state:
        if key.endswith(".masks") or key == "prior.scale":
            tensor_entry(
                state, key, path, binary=key.endswith(".masks"), positive=key == "prior.scale"
            )
    action = _action(payload.get("action"), config, path)
    provenance = training_record(payload.get("provenance"), path, FIX)
    model = RGFlowModel.from_config(config, action=action, provenance=provenance)
    load_state_strictly(model, state, path)
    return model


def _action(recorded: Any, config: dict[str, Any], path: Path) -> torch.nn.Module | None:
    """The recorded action, rebuilt, on the model's lattice."""
    if recorded is None:
        return None
    if not isinstance(recorded, dict):
        raise CheckpointValueError(
            f"{path}: action is a {type(recorded).__name__}, not a dict; {FIX}"
        )
    from ..physics import build_action

    try:
        action = build_action(recorded)
    except RGInspectError as error:
        one_line = " ".join(str(error).split())  # the message may show a multi-line value
        raise CheckpointValueError(f"{path}: action: {one_line}; {FIX}") from None
    if (action.n_channels, action.L) != (config["channels"], config["L"]):
        raise CheckpointValueError(
            f"{path}: the action is for {action.n_channels} channel(s) on L={action.L}, the model "
            f"has {config['channels']} on L={config['L']}; {FIX}"
        )
    return action


def write_native(model: RGFlowModel, path: Path) -> Path:
    """Save `model`; models of other architectures have no config and are saved by their own
    writers (the error names the one to use)."""
    if model.config is None:
        if "normflows" in model.provenance:
            advice = (
                "save it with rginspect.formats.normflows.save_normflows(flow, path, **settings) "
                "and load that file as any checkpoint"
            )
        else:
            advice = (
                "save your module's state_dict with torch.save and load it with "
                "rginspect.load(weights, factory='package.module:function')"
            )
        raise ArchitectureError(
            f"only models of a built-in architecture (rgflow, neuralrg) can be saved natively; "
            f"{advice} (analysing it needs no file: rginspect.analyze(model, ...))"
        )
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    action = model.action.config() if model.action is not None else None
    training = model.provenance.get("training")
    errors = (OSError, RuntimeError, SafetensorError)  # torch.save raises RuntimeError
    with atomic_output(
        path, advice="free space or choose another path", errors=errors
    ) as temporary:
        if path.suffix == ".safetensors":
            metadata = {
                FORMAT_KEY: str(FORMAT_VERSION),
                "config": json.dumps(model.config),
                "action": json.dumps(action),
                "provenance": json.dumps(training),
            }
            save_file(state, str(temporary), metadata=metadata)
        else:
            payload = {
                FORMAT_KEY: FORMAT_VERSION,
                "config": model.config,
                "state_dict": state,
                "action": action,
                "provenance": training,
            }
            torch.save(payload, temporary)
    return path


def _safetensors_metadata(path: Path) -> dict[str, str]:
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return {}


def _read_safetensors(path: Path) -> dict[str, Any]:
    metadata = _safetensors_metadata(path)
    if FORMAT_KEY not in metadata:
        raise NotACheckpointError(
            f"{path}: unreadable safetensors file or one without rginspect metadata; save it with "
            "rginspect.save"
        )
    version = metadata[FORMAT_KEY]
    payload: dict[str, Any] = {FORMAT_KEY: int(version) if version.isdecimal() else version}
    for key in ("config", "action", "provenance"):
        try:
            payload[key] = json.loads(metadata.get(key, "null"))
        except json.JSONDecodeError as error:
            raise CheckpointValueError(
                f"{path}: metadata {key} is not JSON ({error.msg}, character {error.pos}); {FIX}"
            ) from None
    try:
        payload["state_dict"] = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as error:
        raise NotACheckpointError(
            f"{path}: truncated or corrupted safetensors file ({first_line(error)}); copy or save "
            "it again"
        ) from None
    return payload


NATIVE = CheckpointFormat(
    name="native",
    description="rginspect's own self-describing checkpoint (.pt via torch.save, or .safetensors)",
    sniff=sniff,
    load=load,
)


@hookimpl
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    return [NATIVE]
