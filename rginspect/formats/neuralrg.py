"""Checkpoints of li012589/NeuralRG: `<run>/savings/*.saving` state dicts + `<run>/parameters.hdf5`.

Sizes come from tensor shapes; L, nrepeat, depth and the physical action (Ising T, or φ⁴ κ, λ) from
parameters.hdf5. Both the plain and the symmetrized (`flow.`-prefixed) layouts load; the symmetrized
wrapper only averages over x -> −x, so analyses use its inner flow, as upstream does.
"""

from __future__ import annotations

import math
import re
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch

from ..errors import ArchitectureMismatchError, CheckpointValueError
from ..hooks import hookimpl
from ..model import RGFlowModel
from ..nn.architectures import neuralrg_config
from .base import (
    CheckpointFormat,
    check_finite,
    epoch_of,
    first_line,
    load_state_strictly,
    locate_checkpoint,
    newest_file,
    pickle_strings,
    read_torch_file,
    require_keys,
)
from .checks import integer, real, state_dict_of, tensor_entry

PARAMETERS = "parameters.hdf5"
USED_PARAMETERS = ("L", "nrepeat", "depth", "depthMERA", "T", "kappa", "lamb")
OPTIONS = ("L", "nrepeat", "depth")
LINEAR = re.compile(r"^layerList\.(\d+)\.sList\.(\d+)\.layerList\.(\d+)\.weight$")


def sniff(path: Path) -> bool:
    if path.is_dir():
        return _find_saving(path) is not None
    return path.suffix == ".saving" or any(s.endswith("maskListR") for s in pickle_strings(path))


def load(path: Path, *, trust_checkpoint: bool = False, **architecture: Any) -> RGFlowModel:
    file = locate_checkpoint(path, _find_saving, architecture, OPTIONS, "NeuralRG savings/*.saving")
    state = state_dict_of(
        read_torch_file(file, trust_checkpoint), file, "the NeuralRG state dict (flow.state_dict())"
    )
    symmetrized = any(key.startswith("flow.layerList.") for key in state)
    prefix = "flow." if symmetrized else ""
    parameters = _read_parameters(file)
    options = _checked_settings(architecture, "option", "pass a positive whole number")
    config = _infer_config(state, prefix, parameters | options, file)
    action = _action(parameters, config)
    model = RGFlowModel.from_config(
        config,
        action=action,
        provenance={
            "symmetrized": symmetrized,
            "parameters": parameters,
            "epoch": epoch_of(file),
        },
    )
    expected = {
        _upstream_key(key, prefix): value.shape for key, value in model.state_dict().items()
    }
    for key, shape in list(expected.items()):
        if key.endswith(".maskList"):
            expected[key] = expected[key + "R"] = (shape[0], config["channels"], 2, 2)
    expected["prior.sigma"] = (1,)
    if symmetrized:
        expected["flow.prior.sigma"] = (1,)
    check_finite(state, file)  # report bad tensors by the checkpoint's own names
    require_keys(state, expected, file)
    for key in expected:
        if key.endswith("prior.sigma"):
            tensor_entry(state, key, file, positive=True)
        elif ".maskList" in key:
            tensor_entry(state, key, file, binary=True)
    load_state_strictly(model, _to_ours(state, prefix), file)
    return model


def _find_saving(folder: Path) -> Path | None:
    return newest_file(folder, "savings/*.saving") or newest_file(folder, "*.saving")


def _read_parameters(file: Path) -> dict[str, Any]:
    """parameters.hdf5 next to savings/ (scalars as Python numbers or text); {} if there is none.

    Entries that are not scalars are left out, except the ones the loader uses, which must be."""
    for folder in (file.parent.parent, file.parent):
        path = folder / PARAMETERS
        if path.is_file():
            try:
                with h5py.File(path, "r") as handle:
                    entries = {
                        key: handle[key][()]
                        for key in handle
                        if isinstance(handle[key], h5py.Dataset)
                        and (handle[key].shape == () or key in USED_PARAMETERS)
                    }
            except Exception as error:  # h5py fails in many ways on a damaged file
                raise CheckpointValueError(
                    f"{path}: not a readable hdf5 file ({first_line(error)}); copy it again "
                    "from the training run, or remove it and pass L=..., nrepeat=..."
                ) from None
            plain = {key: _plain(value) for key, value in entries.items()}
            return _checked_settings(
                plain, path, "copy parameters.hdf5 again from the training run"
            )
    return {}


def _plain(value: Any) -> Any:
    """An hdf5 scalar as a Python number or text; anything else stays as read (and is refused
    by the checks if the loader uses it)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    return value


def _checked_settings(values: dict[str, Any], source: Path | str, fix: str) -> dict[str, Any]:
    """The hyper-parameters the loader uses (from parameters.hdf5 or options), checked."""
    for key in ("L", "nrepeat"):
        if key in values:
            integer(values[key], key, source, minimum=2 if key == "L" else 1, fix=fix)
    if "L" in values and values["L"] & (values["L"] - 1):
        raise CheckpointValueError(f"{source}: L = {values['L']} is not a power of two; {fix}")
    for key in ("depth", "depthMERA"):
        if key in values:
            depth = integer(values[key], key, source, minimum=-1, fix=fix)
            if depth == 0:
                raise CheckpointValueError(f"{source}: {key} = 0 levels; -1 means all; {fix}")
    if "T" in values:
        real(values["T"], "T", source, positive=True, fix=fix)
    if "kappa" in values:
        real(values["kappa"], "kappa", source, fix=fix)
    if "lamb" in values:
        real(values["lamb"], "lamb", source, minimum=0.0, fix=fix)
    return values


def _infer_config(
    state: dict[str, torch.Tensor], prefix: str, parameters: dict[str, Any], file: Path
) -> dict[str, Any]:
    inner = {key.removeprefix(prefix): value for key, value in state.items()}
    linears: dict[int, torch.Size] = {}
    for key in inner:
        match = LINEAR.match(key)
        if match and match[1] == "0" and match[2] == "0":
            linears[int(match[3])] = tensor_entry(state, prefix + key, file, dim=2).shape
    if "layerList.0.maskList" not in inner or 0 not in linears:
        raise ArchitectureMismatchError(
            f"{file}: missing keys: {prefix}layerList.0.maskList / sList (not a NeuralRG MERA)"
        )
    masks = tensor_entry(state, prefix + "layerList.0.maskList", file, dim=4)
    n_blocks = len({key.split(".")[1] for key in inner if key.startswith("layerList.")})
    nrepeat = int(parameters.get("nrepeat", 1))
    if "L" in parameters:
        L = int(parameters["L"])
    else:
        L = 2 ** (n_blocks // (2 * nrepeat))
        warnings.warn(
            f"{file}: no {PARAMETERS} beside savings/; assuming nrepeat={nrepeat}, L={L} and no "
            "action (override with L=..., nrepeat=...)",
            stacklevel=4,
        )
    if n_blocks != 2 * int(math.log2(L)) * nrepeat:
        raise ArchitectureMismatchError(
            f"{file}: {n_blocks} blocks do not fit L={L} with nrepeat={nrepeat}; pass L=/nrepeat="
        )
    depth = int(parameters.get("depth", parameters.get("depthMERA", -1)))
    return neuralrg_config(
        channels=masks.shape[1],
        L=L,
        nlayers=masks.shape[0],
        nmlp=len(linears) - 1,
        nhidden=linears[0][0],
        nrepeat=nrepeat,
        depth=None if depth < 0 else depth,
    )


def _action(parameters: dict[str, Any], config: dict[str, Any]) -> torch.nn.Module | None:
    """The action the model was trained on, as recorded (φ⁴ κ and λ are floats despite upstream)."""
    from ..physics import IsingAction, Phi4Action

    if "kappa" in parameters and "lamb" in parameters:
        return Phi4Action(
            config["L"], float(parameters["kappa"]), float(parameters["lamb"]), config["channels"]
        )
    if "T" in parameters and config["channels"] == 1:
        return IsingAction(config["L"], float(parameters["T"]))
    return None


def _upstream_key(key: str, prefix: str) -> str:
    if key == "prior.scale":
        return "prior.sigma"
    key = re.sub(r"^flow\.blocks\.(\d+)\.", prefix + r"layerList.\1.", key)
    return (
        key.replace(".s_nets.", ".sList.")
        .replace(".t_nets.", ".tList.")
        .replace(".masks", ".maskList")
    )


def _to_ours(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    ours = {"prior.scale": state["prior.sigma"].reshape(())}
    for key, value in state.items():
        if not key.startswith(prefix + "layerList.") or key.endswith("maskListR"):
            continue
        key = re.sub(r"^" + re.escape(prefix) + r"layerList\.(\d+)\.", r"flow.blocks.\1.", key)
        key = key.replace(".sList.", ".s_nets.").replace(".tList.", ".t_nets.")
        if key.endswith(".maskList"):
            key, value = key.replace(".maskList", ".masks"), value.reshape(value.shape[0], -1)
        ours[key] = value
    return ours


NEURALRG = CheckpointFormat(
    name="neuralrg",
    description="li012589/NeuralRG savings/*.saving + parameters.hdf5 (Ising, complex φ⁴)",
    sniff=sniff,
    load=load,
)


@hookimpl
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    return [NEURALRG]
