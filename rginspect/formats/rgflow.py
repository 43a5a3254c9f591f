"""Checkpoints of hongyehu/RG-Flow (`<run>/<net_name>/out_save/<epoch>.state`).

The files hold only weights; the architecture is read from tensor shapes and key counts, and the
prior and kernel size from the run folder's name (e.g. `laplace_ks2_nl8,6,4,2_nr4_nm2_nh512`).
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from ..errors import ArchitectureError, ArchitectureMismatchError
from ..hooks import hookimpl
from ..model import RGFlowModel
from ..nn.architectures import rgflow_config
from .base import (
    CheckpointFormat,
    check_finite,
    epoch_of,
    load_state_strictly,
    locate_checkpoint,
    newest_file,
    pickle_strings,
    read_torch_file,
    require_keys,
)
from .checks import REEXPORT, state_dict_of, tensor_entry

RUN_NAME = re.compile(
    r"(?P<laplace>laplace_)?(?P<ar>ar_)?(?:ks(?P<kernel>\d+)_)?"
    r"nl(?P<nlayers>[\d,]+)_nr(?P<nresblocks>[\d,]+)_nm(?P<nmlp>[\d,]+)_nh(?P<nhidden>[\d,]+)"
)
LINEAR = re.compile(r"^layers\.(\d+)\.s_layers\.(\d+)\.res_blocks\.(\d+)\.(\d+)\.weight_v$")
PREFIXES = ("module.net.", "module.")
DEBUG_BUFFERS = ("saved_mean", "saved_var")  # upstream debug statistics, not part of the map
OPTIONS = ("L", "prior")


def sniff(path: Path) -> bool:
    if path.is_dir():
        return _find_state(path) is not None
    return path.suffix == ".state" or any(s.endswith("mask_left") for s in pickle_strings(path))


def load(path: Path, *, trust_checkpoint: bool = False, **architecture: Any) -> RGFlowModel:
    file = locate_checkpoint(path, _find_state, architecture, OPTIONS, "RG-Flow *.state")
    payload = read_torch_file(file, trust_checkpoint)
    state = payload.get("flow", payload) if isinstance(payload, dict) else payload
    state = _strip_prefix(state_dict_of(state, file, "the RG-Flow state dict ('flow')"))
    config = _infer_config(state, file, architecture)
    model = RGFlowModel.from_config(
        config,
        provenance={
            "run_name": _run_name(file),
            "epoch": epoch_of(file),
            "dataset": _dataset(file),
        },
    )
    expected = {_upstream_key(k): v.shape for k, v in model.state_dict().items()}
    block_shape = (config["channels"], config["kernel"], config["kernel"])
    for s in range(len(model.flow.blocks)):
        del expected[f"layers.{s}.masks"]
        expected[f"layers.{s}.mask_left"] = expected[f"layers.{s}.mask_right"] = block_shape
    optional = {
        key.removesuffix("scale") + buffer
        for key in expected
        if key.endswith(".scale.scale")
        for buffer in DEBUG_BUFFERS
    }
    check_finite(state, file)  # report bad tensors by the checkpoint's own names
    require_keys(state, expected, file, optional)
    tensor_entry(state, "prior.scale", file, positive=True)
    for s in range(len(model.flow.blocks)):
        for side in ("left", "right"):
            tensor_entry(state, f"layers.{s}.mask_{side}", file, binary=True)
    load_state_strictly(model, _to_ours(state, model), file)
    return model


def _find_state(folder: Path) -> Path | None:
    return newest_file(folder, "*.state") or newest_file(folder, "out*_save/*.state")


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    for prefix in PREFIXES:
        if all(key.startswith(prefix) for key in state):
            return {key.removeprefix(prefix): value for key, value in state.items()}
    return state


def _dataset(file: Path) -> str | None:
    """The dataset a run was trained on: upstream saves under saved_model/<dataset>/<run>/."""
    for folder in file.parents[:3]:
        if RUN_NAME.fullmatch(folder.name):
            return folder.parent.name or None
    return None


def _run_name(file: Path) -> str | None:
    for folder in file.parents[:3]:
        if RUN_NAME.fullmatch(folder.name):
            return folder.name
    return None


def _infer_config(
    state: dict[str, torch.Tensor], file: Path, architecture: dict[str, Any]
) -> dict[str, Any]:
    """C, K and L from the masks and sublayer count; per-sublayer sizes from key counts and shapes."""
    sublayers: dict[int, dict[str, Any]] = defaultdict(
        lambda: {"layers": set(), "resblocks": set(), "linears": set()}
    )
    for key in state:
        match = LINEAR.match(key)
        if match:
            s, layer, resblock, position = map(int, match.groups())
            entry = sublayers[s]
            entry["layers"].add(layer)
            entry["resblocks"].add(resblock)
            if layer == 0 and resblock == 0:
                entry["linears"].add(position)
                if position == 1:
                    entry["nhidden"], entry["width"] = tensor_entry(state, key, file, dim=2).shape
    n_sublayers = len(sublayers)
    if n_sublayers == 0 or sorted(sublayers) != list(range(n_sublayers)) or n_sublayers % 2:
        raise ArchitectureMismatchError(
            f"{file}: no complete RG-Flow sublayers (layers.<i>.s_layers...) in the state dict"
        )
    mask = tensor_entry(state, "layers.0.mask_left", file, dim=3)
    channels, kernel = mask.shape[0], mask.shape[1]
    if mask.shape[2] != kernel or kernel < 2:
        raise ArchitectureMismatchError(
            f"{file}: wrong shapes: layers.0.mask_left {tuple(mask.shape)} is not (C, K, K) with "
            "a block size K >= 2; the file does not hold an RG-Flow model"
        )
    name = _run_name(file)
    parsed = RUN_NAME.fullmatch(name) if name else None
    if parsed and parsed["ar"]:
        raise ArchitectureError(
            f"{file}: the RG-Flow 'ar' subnet is not supported (it cannot sample)"
        )
    if parsed and int(parsed["kernel"] or 4) != kernel:
        raise ArchitectureMismatchError(
            f"{file}: run name says kernel {parsed['kernel'] or 4}, masks say {kernel}"
        )
    L = kernel * 2 ** (n_sublayers // 2 - 1)
    if architecture.get("L", L) != L:
        raise ArchitectureMismatchError(
            f"{file}: {n_sublayers} sublayers of kernel {kernel} make L={L}, not L={architecture['L']}"
        )
    prior = architecture.get("prior") or _prior_kind(parsed, state, file)
    sizes = {
        "nlayers": [len(sublayers[s]["layers"]) for s in range(n_sublayers)],
        "nresblocks": [len(sublayers[s]["resblocks"]) for s in range(n_sublayers)],
        "nmlp": [len(sublayers[s]["linears"]) - 1 for s in range(n_sublayers)],
        "nhidden": [sublayers[s].get("nhidden") for s in range(n_sublayers)],
    }
    if None in sizes["nhidden"]:
        s = sizes["nhidden"].index(None)
        raise ArchitectureMismatchError(
            f"{file}: missing keys: layers.{s}.s_layers.0.res_blocks.0.1.weight_v; {REEXPORT}"
        )
    if parsed:
        _check_run_name(parsed, sizes, file)
    return rgflow_config(channels=channels, L=L, kernel=kernel, prior=prior, **sizes)


def _check_run_name(parsed: re.Match, sizes: dict[str, list[int]], file: Path) -> None:
    """The run-folder name states the sizes too (per level, or one for all): they must agree."""
    for name, short in (("nlayers", "nl"), ("nresblocks", "nr"), ("nmlp", "nm"), ("nhidden", "nh")):
        text, per_sublayer = parsed[name], sizes[name]
        stated = [int(part) for part in text.split(",") if part]
        if len(stated) == 1:
            stated = stated * len(per_sublayer)
        elif len(stated) == len(per_sublayer) // 2:
            stated = [value for value in stated for _ in range(2)]
        if stated != per_sublayer:
            raise ArchitectureMismatchError(
                f"{file}: the run folder {parsed[0]} says {short}{text}, the weights hold "
                f"{name} {','.join(map(str, per_sublayer[::2]))} per level; rename the folder to "
                "match, or move the file out of it"
            )


def _prior_kind(parsed: re.Match | None, state: dict[str, torch.Tensor], file: Path) -> str:
    """From the run name; without one, from the stored scale (laplace 1/√2, gaussian 1)."""
    if parsed:
        return "laplace" if parsed["laplace"] else "gaussian"
    scale = 2**-0.5
    if "prior.scale" in state:  # read before the strict match: checked here
        scale = float(tensor_entry(state, "prior.scale", file, shape=(), positive=True))
    kind = "gaussian" if abs(scale - 1.0) < 1e-6 else "laplace"
    warnings.warn(
        f"{file}: no RG-Flow run-folder name (like laplace_nl2_nr1_nm1_nh64) around the file; "
        f"assuming a {kind} prior from its scale {scale:.4g} (override with prior=...)",
        stacklevel=4,
    )
    return kind


def _upstream_key(key: str) -> str:
    """Our state-dict name -> the upstream one (masks keep a placeholder name, replaced by the caller)."""
    key = re.sub(r"^flow\.blocks\.(\d+)\.([st])_nets\.", r"layers.\1.\2_layers.", key)
    return re.sub(r"^flow\.blocks\.(\d+)\.masks$", r"layers.\1.masks", key)


def _to_ours(state: dict[str, torch.Tensor], model: RGFlowModel) -> dict[str, torch.Tensor]:
    """Upstream names -> ours; each sublayer's (left, right) masks become its coupling-step masks."""
    renamed = {
        re.sub(r"^layers\.(\d+)\.([st])_layers\.", r"flow.blocks.\1.\2_nets.", key): value
        for key, value in state.items()
        if not key.endswith(DEBUG_BUFFERS) and ".mask_" not in key
    }
    for s, block in enumerate(model.flow.blocks):
        pair = [state[f"layers.{s}.mask_{side}"].reshape(-1) for side in ("left", "right")]
        renamed[f"flow.blocks.{s}.masks"] = torch.stack(pair * (block.masks.shape[0] // 2))
    return renamed


RGFLOW = CheckpointFormat(
    name="rgflow",
    description="hongyehu/RG-Flow *.state files (architecture read from shapes and the run-folder name)",
    sniff=sniff,
    load=load,
)


@hookimpl
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    return [RGFLOW]
