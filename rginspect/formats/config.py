"""A native checkpoint's architecture config, checked entry by entry before anything is built from it.

The builders in rginspect.nn.architectures trust their config (it normally comes from rgflow_config or
neuralrg_config); a file's config may come from anywhere, so every entry they read is checked here
for type and range, and the flow's size is checked against the weights the file holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from ..errors import ArchitectureError, ArchitectureMismatchError, CheckpointValueError
from ..model import DOMAINS
from ..nn.architectures import ARCHITECTURES, COUPLING_MASKS
from ..nn.mera import full_depth
from ..nn.priors import PRIORS
from .checks import choice, integer, real

FIX = "the file was edited or damaged; save the model again with rginspect.save"
COMMON = ("architecture", "channels", "L", "prior", "domain", "prior_scale", "logit_constraint")
FIELD_FLOW_OPTIONS = ("coupling_masks", "radial_bins", "spline_bins")  # see rgflow_config
OPTIONAL = {"prior_scale", "logit_constraint", *FIELD_FLOW_OPTIONS}
PER_SUBLAYER = ("nlayers", "nresblocks", "nmlp", "nhidden")  # rgflow: one value per sublayer
KEYS = {
    "rgflow": {*COMMON, "kernel", *PER_SUBLAYER, *FIELD_FLOW_OPTIONS},
    "neuralrg": {*COMMON, "nlayers", "nmlp", "nhidden", "nrepeat", "depth"},
}


def checked_config(config: Any, state: Mapping[str, torch.Tensor], source: Path) -> dict[str, Any]:
    """`config` if the builders can use it and it makes as many sublayers as `state` holds."""
    if not isinstance(config, Mapping):
        raise CheckpointValueError(
            f"{source}: config is a {type(config).__name__}, not a dict of settings; {FIX}"
        )
    architecture = choice(config.get("architecture"), "config.architecture", source, ARCHITECTURES)
    unknown = sorted(map(str, set(config) - KEYS[architecture]))
    missing = sorted(KEYS[architecture] - set(config) - OPTIONAL)
    if config.get("domain") == "image" and "logit_constraint" not in config:
        missing.append("logit_constraint")
    if unknown or missing:
        named = [
            f"{what}: {', '.join(keys)}"
            for what, keys in (("unknown", unknown), ("missing", missing))
            if keys
        ]
        raise CheckpointValueError(f"{source}: config entries {'; '.join(named)}; {FIX}")

    def entry(key: str, **bounds: Any) -> int:
        return integer(config[key], f"config.{key}", source, fix=FIX, **bounds)

    entry("channels")
    entry("L", minimum=2)
    choice(config["prior"], "config.prior", source, PRIORS, FIX)
    choice(config["domain"], "config.domain", source, DOMAINS, FIX)
    if "prior_scale" in config:
        real(config["prior_scale"], "config.prior_scale", source, positive=True, fix=FIX)
    if "logit_constraint" in config:
        real(
            config["logit_constraint"],
            "config.logit_constraint",
            source,
            positive=True,
            below=1.0,
            fix=FIX,
        )
    if architecture == "rgflow":
        entry("kernel", minimum=2)
        if "coupling_masks" in config:
            choice(config["coupling_masks"], "config.coupling_masks", source, COUPLING_MASKS, FIX)
        for bins in ("radial_bins", "spline_bins"):
            if bins in config:
                entry(bins, minimum=2, maximum=256)
        n_sublayers = 2 * _depth(config["L"], config["kernel"], source)
        for key in PER_SUBLAYER:
            values = config[key]
            if not isinstance(values, list) or len(values) != n_sublayers:
                raise CheckpointValueError(
                    f"{source}: config.{key} must list one number per sublayer ({n_sublayers}); {FIX}"
                )
            for s, value in enumerate(values):
                integer(value, f"config.{key}[{s}]", source, fix=FIX)
    else:
        for key in ("nlayers", "nmlp", "nhidden", "nrepeat"):
            entry(key)
        entry("depth", maximum=_depth(config["L"], 2, source))
        n_sublayers = 2 * full_depth(config["L"], 2) * config["nrepeat"]
    _check_sizes(config, n_sublayers, state, source)
    return dict(config)


def _check_sizes(
    config: Mapping[str, Any], n_sublayers: int, state: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Before building: each sublayer's masks have the shape the config implies (couplings ×
    block entries), and the file holds at least one tensor per linear layer the config asks for.
    A disagreement is a mismatch of weights and architecture, as in the strict match."""
    rgflow = config["architecture"] == "rgflow"
    width = config["channels"] * (config["kernel"] ** 2 if rgflow else 4)
    linears = 0
    for s in range(n_sublayers):
        if rgflow:
            couplings = config["nlayers"][s]
            # a spline coupling's net is one MLP; an affine one's, residual blocks of MLPs
            blocks = 1 if "spline_bins" in config else config["nresblocks"][s]
            per_net = blocks * (config["nmlp"][s] + 1)
        else:
            couplings, per_net = config["nlayers"], config["nmlp"] + 1
        steps = 2 * couplings if rgflow else couplings  # RG-Flow applies each coupling twice
        # a radial site map chains in front of the finest sublayer's couplings
        chained = s == 0 and rgflow and "radial_bins" in config
        masks = state.get(f"flow.blocks.{s}.{'steps.1.' if chained else ''}masks")
        if masks is None or tuple(masks.shape) != (steps, width):
            held = "none" if masks is None else tuple(masks.shape)
            raise ArchitectureMismatchError(
                f"{source}: config makes flow.blocks.{s}.masks {(steps, width)}, the weights hold "
                f"{held}; {FIX}"
            )
        linears += 2 * couplings * per_net  # an s-net and a t-net per coupling
    if linears > len(state):
        raise ArchitectureMismatchError(
            f"{source}: config makes {linears} linear layers, the file holds only {len(state)} "
            f"tensors; {FIX}"
        )


def _depth(L: int, kernel: int, source: Path) -> int:
    try:
        return full_depth(L, kernel)
    except ArchitectureError as error:
        raise CheckpointValueError(f"{source}: config: {error}; {FIX}") from None
