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

from ..errors import ArchitectureError, NotACheckpointError
from ..hooks import hookimpl
from ..model import RGFlowModel
from .base import CheckpointFormat, load_state_strictly, pickle_strings, read_torch_file

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
    if payload[FORMAT_KEY] > FORMAT_VERSION:
        raise NotACheckpointError(
            f"{path}: native format version {payload[FORMAT_KEY]} is newer than this rginspect "
            f"reads ({FORMAT_VERSION}); upgrade rginspect"
        )
    action = None
    if payload.get("action"):
        from ..physics import build_action

        action = build_action(payload["action"])
    provenance = {"training": payload["provenance"]} if payload.get("provenance") else {}
    model = RGFlowModel.from_config(payload["config"], action=action, provenance=provenance)
    load_state_strictly(model, payload["state_dict"], path)
    return model


def write_native(model: RGFlowModel, path: Path) -> Path:
    """Save `model`; models from the module format have no config and cannot be saved this way."""
    if model.config is None:
        raise ArchitectureError(
            "only models of a built-in architecture (rgflow, neuralrg) can be saved natively; "
            "save your own module's state_dict with torch.save"
        )
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    action = model.action.config() if model.action is not None else None
    training = model.provenance.get("training")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".partial")
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
    temporary.replace(path)
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
    return {
        FORMAT_KEY: int(metadata[FORMAT_KEY]),
        "config": json.loads(metadata["config"]),
        "action": json.loads(metadata.get("action", "null")),
        "provenance": json.loads(metadata.get("provenance", "null")),
        "state_dict": load_file(str(path)),
    }


NATIVE = CheckpointFormat(
    name="native",
    description="rginspect's own self-describing checkpoint (.pt via torch.save, or .safetensors)",
    sniff=sniff,
    load=load,
)


@hookimpl
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    return [NATIVE]
