"""Build the two known MERA-flow families from a JSON-able config.

The config is what the native format stores, so every built-in model can be rebuilt exactly:
- "rgflow": K×K blocks, all channels in a block, couplings on the (a+b)-parity checkerboard, each
  coupling's nets applied twice (RG-Flow, hongyehu/RG-Flow); per-sublayer nlayers/nresblocks/nmlp/nhidden.
- "neuralrg": 2×2 blocks, random half masks, MLP conditioners, nrepeat (disentangler, decimator) pairs per
  level (NeuralRG, li012589/NeuralRG).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError
from .conditioners import MLPConditioner, ResNetConditioner, SplineConditioner
from .couplings import CouplingStack, SplineCouplingStack
from .mera import MERAFlow, MERAGeometry, full_depth
from .priors import PRIORS, Prior
from .sitemaps import BijectorChain, RadialSiteMap
from .splines import IDENTITY_SLOPE_PARAMETER, spline_parameters

ARCHITECTURES = ("rgflow", "neuralrg")
COUPLING_MASKS = ("checkerboard", "checkerboard+components")


def rgflow_config(
    channels: int,
    L: int,
    kernel: int = 4,
    nlayers: int | list[int] = 2,
    nresblocks: int | list[int] = 1,
    nmlp: int | list[int] = 1,
    nhidden: int | list[int] = 64,
    prior: str = "laplace",
    domain: str = "image",
    logit_constraint: float = 0.9,
    coupling_masks: str = "checkerboard",
    radial_bins: int = 0,
    spline_bins: int = 0,
) -> dict[str, Any]:
    """A complete rgflow config; per-level lists (one value per level) are expanded per sublayer.

    Field flows take three extensions (their defaults are RG-Flow's): `coupling_masks`
    "checkerboard+components" alternates the checkerboard with masks that split each site's
    components (of fields with more than one), so a coupling can shape one site's joint
    distribution; `radial_bins` > 0 puts a per-site radial spline (rginspect.nn.sitemaps) at the
    data end of the flow; `spline_bins` > 0 makes every coupling a rational-quadratic spline of
    that many bins instead of affine.
    """
    if coupling_masks not in COUPLING_MASKS:
        raise ArchitectureError(
            f"unknown coupling masks {coupling_masks!r}; known: {', '.join(COUPLING_MASKS)}"
        )
    for name, bins in (("radial_bins", radial_bins), ("spline_bins", spline_bins)):
        if bins and not 2 <= bins <= 256:
            raise ArchitectureError(f"{name} must be 0 (none) or 2..256, not {bins}")
    n_sublayers = 2 * full_depth(L, kernel)
    config = {
        "architecture": "rgflow",
        "channels": channels,
        "L": L,
        "kernel": kernel,
        "prior": prior,
        "domain": domain,
    }
    for name, value in [
        ("nlayers", nlayers),
        ("nresblocks", nresblocks),
        ("nmlp", nmlp),
        ("nhidden", nhidden),
    ]:
        config[name] = _per_sublayer(name, value, n_sublayers)
    if domain == "image":
        config["logit_constraint"] = logit_constraint
    if coupling_masks != "checkerboard":
        config["coupling_masks"] = coupling_masks
    if radial_bins:
        config["radial_bins"] = radial_bins
    if spline_bins:
        config["spline_bins"] = spline_bins
    return config


def neuralrg_config(
    channels: int,
    L: int,
    nlayers: int = 4,
    nmlp: int = 2,
    nhidden: int = 32,
    nrepeat: int = 1,
    depth: int | None = None,
    domain: str = "field",
) -> dict[str, Any]:
    full = full_depth(L, 2)
    return {
        "architecture": "neuralrg",
        "channels": channels,
        "L": L,
        "nlayers": nlayers,
        "nmlp": nmlp,
        "nhidden": nhidden,
        "nrepeat": nrepeat,
        "depth": full if depth is None else depth,
        "prior": "gaussian",
        "domain": domain,
    }


def _per_sublayer(name: str, value: int | list[int], n_sublayers: int) -> list[int]:
    if isinstance(value, int):
        return [value] * n_sublayers
    values = [int(v) for v in value]
    if len(values) == n_sublayers // 2:
        return [v for v in values for _ in range(2)]
    if len(values) == n_sublayers:
        return values
    raise ArchitectureError(
        f"{name} needs one value, one per level ({n_sublayers // 2}) or one per sublayer "
        f"({n_sublayers}); got {len(values)}"
    )


def build_flow(config: dict[str, Any]) -> tuple[MERAFlow, Prior]:
    """The flow and its prior (default-initialised; load a state dict for trained weights)."""
    architecture = config.get("architecture")
    if architecture == "rgflow":
        flow = _build_rgflow(config)
    elif architecture == "neuralrg":
        flow = _build_neuralrg(config)
    else:
        raise ArchitectureError(
            f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
        )
    prior_kind = config["prior"]
    if prior_kind not in PRIORS:
        raise ArchitectureError(f"unknown prior {prior_kind!r}; known: {', '.join(PRIORS)}")
    default_scale = 2**-0.5 if prior_kind == "laplace" else 1.0  # unit variance
    return flow, PRIORS[prior_kind](config.get("prior_scale", default_scale))


def _build_rgflow(config: dict[str, Any]) -> MERAFlow:
    channels, L, kernel = config["channels"], config["L"], config["kernel"]
    geometry = MERAGeometry(L=L, kernel=kernel, n_levels=full_depth(L, kernel))
    width = channels * kernel**2
    # the checkerboard in numpy: no tensor arithmetic on a meta-device skeleton (see conditioners)
    checker = (np.add.outer(np.arange(kernel), np.arange(kernel)) % 2 == 0).astype(np.float32)
    left = np.broadcast_to(checker, (channels, kernel, kernel)).ravel()
    mask_pairs = [left]
    if config.get("coupling_masks", "checkerboard") == "checkerboard+components" and channels > 1:
        first_half = (np.arange(channels) < (channels + 1) // 2).astype(np.float32)
        mask_pairs.append(np.repeat(first_half, kernel**2))
    blocks = nn.ModuleList()
    for s in range(geometry.n_sublayers):
        n_layers = config["nlayers"][s]

        def nets(tanh: bool, s: int = s, n_layers: int = n_layers) -> nn.ModuleList:
            return nn.ModuleList(
                ResNetConditioner(
                    width,
                    config["nhidden"][s],
                    config["nresblocks"][s],
                    config["nmlp"][s],
                    tanh=tanh,
                )
                for _ in range(n_layers)
            )

        pairs = [mask_pairs[j % len(mask_pairs)] for j in range(n_layers)]
        masks = torch.from_numpy(np.stack([m for mask in pairs for m in (mask, 1 - mask)]))
        net_of_step = [j for j in range(n_layers) for _ in range(2)]
        if config.get("spline_bins", 0):
            block = _spline_couplings(masks, width, config, s)
        else:
            block = CouplingStack(masks, nets(True), nets(False), net_of_step, encode_pushes=True)
        if s == 0 and config.get("radial_bins", 0):
            # the finest disentangler's blocks tile the lattice: one radial map per site, last
            # when decoding, and the rows (hence the structural cone) stay those of the couplings
            block = BijectorChain([RadialSiteMap(channels, config["radial_bins"]), block])
        blocks.append(block)
    return MERAFlow(geometry, channels, blocks, grouping="block")


SPLINE_BOUND = 5.0  # latent-space values beyond ±5 (prior tails) pass through unchanged


def _spline_couplings(
    masks: torch.Tensor, width: int, config: dict[str, Any], sublayer: int
) -> SplineCouplingStack:
    n_bins = config["spline_bins"]
    identity = torch.cat(
        [torch.zeros(2 * n_bins), torch.full((n_bins - 1,), IDENTITY_SLOPE_PARAMETER)]
    )
    nets = nn.ModuleList(
        SplineConditioner(
            width,
            config["nhidden"][sublayer],
            config["nmlp"][sublayer],
            spline_parameters(n_bins),
            identity,
        )
        for _ in masks
    )
    return SplineCouplingStack(masks, nets, SPLINE_BOUND)


def _build_neuralrg(config: dict[str, Any]) -> MERAFlow:
    channels, L = config["channels"], config["L"]
    nlayers, nmlp, nhidden = config["nlayers"], config["nmlp"], config["nhidden"]
    geometry = MERAGeometry(L=L, kernel=2, n_levels=config["depth"], repeats=config["nrepeat"])
    width = 4 * channels
    n_blocks = 2 * full_depth(L, 2) * config["nrepeat"]  # upstream builds all, uses `depth`
    blocks = nn.ModuleList()
    for _ in range(n_blocks):
        masks = []
        for n in range(nlayers):
            if n % 2 == 0:
                mask = torch.zeros(width)
                mask[torch.randperm(width)[: width // 2]] = 1
            else:
                mask = 1 - mask
            masks.append(mask)
        blocks.append(
            CouplingStack(
                torch.stack(masks),
                nn.ModuleList(MLPConditioner(width, nhidden, nmlp, True) for _ in range(nlayers)),
                nn.ModuleList(MLPConditioner(width, nhidden, nmlp, False) for _ in range(nlayers)),
                list(range(nlayers)),
                encode_pushes=False,
            )
        )
    return MERAFlow(geometry, channels, blocks, grouping="neuralrg")
