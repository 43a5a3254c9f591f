"""Glow and RealNVP image models of the `normflows` package (VincentStimper/normalizing-flows, 1.7.x).

normflows builds multiscale image flows as `nf.MultiscaleFlow(q0, flows, merges)`: level i (in
generation order, 0 = the coarsest) holds its base distribution q0[i], K flow steps and a Squeeze;
a Merge joins each finer level's latent to the running tensor. Encoding factors the finest latent
out first, so every latent already has an RG level. `build_multiscale` makes these models from a
few constructor settings, and a checkpoint is a state dict plus those settings:

    {"rginspect_normflows": 1, "settings": {...}, "state_dict": flow.state_dict(), ...}

written by `save_normflows(flow, path, **settings)` (`rginspect train image --architecture glow`
adds its training record, which becomes the model's provenance as in native checkpoints). A bare
`flow.state_dict()` (as `MultiscaleFlow.save` writes it) loads too, given the settings as options:
`rginspect.load(path, format="normflows", levels=3, steps=16, hidden_channels=256,
input_shape=(3, 32, 32))`. Either way the file is read with torch.load(weights_only=True) and the
model is rebuilt from the settings, never unpickled.

Settings: architecture "glow" (K × GlowBlock: affine coupling, LU 1×1 convolution, ActNorm;
normflows' Glow example) or "realnvp" (K affine couplings, alternating the split with its inverse;
no 1×1 convolution, no normalisation); levels L; steps K per level; hidden_channels of the coupling
networks; input_shape (C, H, W), H and W multiples of 2^L (W of 2^(L+1) for a checkerboard split);
split_mode "channel" or "checkerboard" (of the couplings; merges join channels); scale (affine, not
additive, couplings); scale_map, how the couplings' scales are made from the network output s
(normflows' AffineCoupling): "exp" (RealNVP), "sigmoid" (normflows' Glow: the generative direction
divides by sigmoid(s + 2), so decoding is unbounded and can overflow) or "sigmoid_inv" (the
generative direction multiplies by sigmoid(s + 2), bounded; encoding divides); a file without it
was built with its architecture's normflows default, "sigmoid" for "glow" and "exp" for
"realnvp"; prior "glow_base" (GlowBase: a learned mean and log-scale per channel) or
"diag_gaussian" (DiagGaussian: one per entry). Class-conditional priors are not read: rginspect
analyses unconditional densities.

The contract: encode and decode are normflows' own inverse_and_log_det and forward_and_log_det;
the per-level latents are packed into one (C, H, W) tensor by the squeezes and merges alone (the
flow steps left out), a fixed permutation that leaves the log-dets as they are, and latent_level
marks each entry's level (0 = the finest). The prior is the model's own q0 per level, learned means
and scales included: log_prob sums their log-densities exactly.

Images: normflows' image examples train on ToTensor → Scale(255/256) → Jitter(1/256), i.e. on
(k + u)/256 in [0, 1) for 8-bit values k, without a logit. preprocess is that map (the identity
without dequantisation) with log-det 0, so bits/dim = −log q(x)/(D ln 2) + 8, as normflows' Glow
example reports it and as rginspect.train.bits_per_dim computes it for every image model.

There are no block index tables: every latent can move every pixel, so the structural cone is full.
Analyses that need only the contract (summary, likelihood, receptive by probes, traverse, mix,
inpaint, disentangle) run; receptive's `method=blocks` needs MERA block tables and refuses.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_output
from ..errors import (
    ArchitectureError,
    ArchitectureMismatchError,
    CheckpointValueError,
    MissingDependencyError,
    NotACheckpointError,
)
from ..hooks import hookimpl
from ..model import RGFlowModel
from ..nn.preprocessing import dequantized
from ..nn.priors import Prior, _noise_device
from .base import (
    CheckpointFormat,
    load_state_strictly,
    pickle_strings,
    read_torch_file,
    require_keys,
)
from .checks import choice, integer, state_dict_of, tensor_entry, training_record

if TYPE_CHECKING:
    import normflows as nf

FORMAT_KEY = "rginspect_normflows"
FORMAT_VERSION = 1
INSTALL = "pip install 'rginspect[normflows]'"
FIX = "check the architecture options, or save the model again with save_normflows"

ARCHITECTURES = ("glow", "realnvp")
SPLIT_MODES = ("channel", "checkerboard")
PRIOR_KINDS = ("glow_base", "diag_gaussian")
SCALE_MAPS = ("exp", "sigmoid", "sigmoid_inv")  # normflows' AffineCoupling scale maps
# what each architecture was built with before scale_map was a setting (normflows' own defaults)
DEFAULT_SCALE_MAP = {"glow": "sigmoid", "realnvp": "exp"}
REQUIRED = ("levels", "steps", "hidden_channels", "input_shape")
DEFAULTS = {
    "architecture": "glow",
    "split_mode": "channel",
    "scale": True,
    "scale_map": None,  # DEFAULT_SCALE_MAP of the architecture
    "prior": "glow_base",
}
SETTINGS = (*REQUIRED, *DEFAULTS)
KERNELS = (3, 1, 3)  # the coupling networks' convolutions, as normflows' GlowBlock has them
QUANTILE_BISECTIONS = 80  # halvings of the search interval: far below float64 resolution


def normflows_module() -> Any:
    """The normflows package, or a one-line error saying how to install it."""
    try:
        import normflows
    except ImportError:
        raise MissingDependencyError(
            f"the normflows format needs the normflows package; install it with {INSTALL}"
        ) from None
    return normflows


# -- settings ---------------------------------------------------------------------------------
def checked_settings(values: Mapping[str, Any], source: Path | str) -> dict[str, Any]:
    """The constructor settings, complete and in range, as plain JSON-able values."""
    unknown = sorted(map(str, set(values) - set(SETTINGS)))
    if unknown:
        raise ArchitectureError(
            f"{source}: normflows models take the settings {', '.join(SETTINGS)}; not "
            f"{', '.join(unknown)}"
        )
    settings = DEFAULTS | dict(values)
    missing = [key for key in REQUIRED if key not in settings]
    if missing:
        raise ArchitectureError(
            f"{source}: a bare normflows state dict does not say how the model was built; pass "
            f"{', '.join(f'{key}=' for key in missing)} (the MultiscaleFlow's constructor "
            f"settings; on the command line --load {missing[0]}=..., one --load each), or save "
            "it with rginspect.formats.normflows.save_normflows"
        )
    levels = integer(settings["levels"], "levels", source, maximum=12, fix=FIX)
    shape = settings["input_shape"]
    if not isinstance(shape, (list, tuple)) or len(shape) != 3:
        raise CheckpointValueError(f"{source}: input_shape = {shape!r} is not (C, H, W); {FIX}")
    channels = integer(shape[0], "input_shape[0]", source, maximum=4096, fix=FIX)
    height, width = (
        integer(size, f"input_shape[{axis}]", source, maximum=1 << 15, fix=FIX)
        for axis, size in ((1, shape[1]), (2, shape[2]))
    )
    split_mode = choice(settings["split_mode"], "split_mode", source, SPLIT_MODES, FIX)
    # every level squeezes by 2; a checkerboard split also halves the coarsest level's width
    squeeze = 2**levels
    across = squeeze * (2 if split_mode == "checkerboard" else 1)
    if height % squeeze or width % across:
        raise CheckpointValueError(
            f"{source}: input_shape {channels}×{height}×{width} does not fit {levels} levels of "
            f"squeezes with a {split_mode} split (height a multiple of {squeeze}, width of "
            f"{across}); {FIX}"
        )
    if not isinstance(settings["scale"], bool):
        raise CheckpointValueError(
            f"{source}: scale = {settings['scale']!r} is not true or false; {FIX}"
        )
    architecture = choice(settings["architecture"], "architecture", source, ARCHITECTURES, FIX)
    scale_map = settings["scale_map"]
    if scale_map is None:
        scale_map = DEFAULT_SCALE_MAP[architecture]
    return {
        "architecture": architecture,
        "levels": levels,
        "steps": integer(settings["steps"], "steps", source, maximum=1024, fix=FIX),
        "hidden_channels": integer(
            settings["hidden_channels"], "hidden_channels", source, maximum=1 << 16, fix=FIX
        ),
        "input_shape": [channels, height, width],
        "split_mode": split_mode,
        "scale": settings["scale"],
        "scale_map": choice(scale_map, "scale_map", source, SCALE_MAPS, FIX),
        "prior": choice(settings["prior"], "prior", source, PRIOR_KINDS, FIX),
    }


def latent_shapes(settings: Mapping[str, Any]) -> list[tuple[int, int, int]]:
    """The latent shape of each level in normflows' order (q0[0] the coarsest, factored out last)."""
    channels, height, width = settings["input_shape"]
    levels = settings["levels"]
    shapes = [(channels * 2 ** (levels + 1), height >> levels, width >> levels)]
    for i in range(1, levels):
        shrink = levels - i
        shapes.append((channels * 2**shrink, height >> shrink, width >> shrink))
    return shapes


# -- building ---------------------------------------------------------------------------------
def build_multiscale(**settings: Any) -> nf.MultiscaleFlow:
    """A freshly initialised normflows MultiscaleFlow of these settings (see the module docstring):
    the model this format rebuilds before loading a state dict into it."""
    settings = checked_settings(settings, "build_multiscale")
    nf = normflows_module()
    levels, channels = settings["levels"], settings["input_shape"][0]
    q0, flows, merges = [], [], []
    # normflows draws random 1×1 convolutions: keep the caller's random stream as it was
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.lu is deprecated")
        for i, shape in enumerate(latent_shapes(settings)):
            width = channels * 2 ** (levels + 1 - i)
            flows.append([*_steps(nf, width, settings), nf.flows.Squeeze()])
            if i > 0:
                merges.append(nf.flows.Merge())
            if settings["prior"] == "glow_base":
                q0.append(nf.distributions.GlowBase(shape))
            else:
                q0.append(nf.distributions.DiagGaussian(shape))
        return nf.MultiscaleFlow(q0, flows, merges, class_cond=False)


def _steps(nf: Any, width: int, settings: Mapping[str, Any]) -> list[nn.Module]:
    """One level's K flow steps on `width` channels: Glow blocks, or RealNVP couplings that
    alternate the split with its inverse so that every entry is transformed."""
    hidden, scale, scale_map = settings["hidden_channels"], settings["scale"], settings["scale_map"]
    if settings["architecture"] == "glow":
        return [
            nf.flows.GlowBlock(
                width, hidden, scale=scale, scale_map=scale_map, split_mode=settings["split_mode"]
            )
            for _ in range(settings["steps"])
        ]
    steps = []
    for step in range(settings["steps"]):
        mode = settings["split_mode"] + ("_inv" if step % 2 else "")
        kept, changed = _split_channels(width, mode)
        outputs = (2 if scale else 1) * changed
        network = nf.nets.ConvNet2d((kept, hidden, hidden, outputs), KERNELS, init_zeros=True)
        steps.append(nf.flows.AffineCouplingBlock(network, scale, scale_map, mode))
    return steps


def _split_channels(width: int, mode: str) -> tuple[int, int]:
    """(channels the coupling network reads, channels it transforms) for normflows' Split."""
    if mode == "channel":
        return (width + 1) // 2, width // 2
    if mode == "channel_inv":
        return width // 2, (width + 1) // 2
    return width, width  # checkerboard: both halves keep every channel


# -- the model ----------------------------------------------------------------------------------
class LatentPacking(nn.Module):
    """normflows' per-level latent list <-> one (C, H, W) tensor, by the squeezes and merges alone.

    Pushing entry indices through the model's own Squeeze and Merge modules gives, for every packed
    entry, its index in the concatenated level latents: a fixed permutation, so it changes no
    log-det, and the level of each packed entry follows.
    """

    def __init__(
        self,
        multiscale: nf.MultiscaleFlow,
        shapes: list[tuple[int, int, int]],
        data_shape: tuple[int, int, int],
    ) -> None:
        super().__init__()
        nf = normflows_module()
        self.shapes = [tuple(shape) for shape in shapes]
        self.sizes = [math.prod(shape) for shape in self.shapes]
        starts = np.cumsum([0, *self.sizes])
        pieces = [
            torch.arange(start, start + size).reshape(1, *shape)
            for start, size, shape in zip(starts[:-1], self.sizes, self.shapes, strict=True)
        ]
        running = pieces[0]
        for i, steps in enumerate(multiscale.flows):
            if i > 0:
                running, _ = multiscale.merges[i - 1]([running, pieces[i]])
            for step in steps:
                if isinstance(step, nf.flows.Squeeze):
                    running, _ = step(running)
        order = running.reshape(-1)
        if tuple(running.shape[1:]) != data_shape or not torch.equal(
            order.sort().values, torch.arange(sum(self.sizes))
        ):
            raise ArchitectureError(
                f"the flow's squeezes and merges do not lay its latents out as {data_shape}; "
                "build it with build_multiscale"
            )
        self.data_shape = data_shape
        self.register_buffer("order", order, persistent=False)
        self.register_buffer("inverse_order", order.argsort(), persistent=False)
        n_levels = len(self.shapes)
        self._level_of_entry = np.repeat(np.arange(n_levels - 1, -1, -1), self.sizes)

    def pack(self, latents: list[torch.Tensor]) -> torch.Tensor:
        flat = torch.cat([z.reshape(len(z), -1) for z in latents], 1)
        return flat[:, self.order].reshape(len(flat), *self.data_shape)

    def unpack(self, z: torch.Tensor) -> list[torch.Tensor]:
        flat = z.reshape(len(z), -1)[:, self.inverse_order]
        return [
            part.reshape(len(z), *shape)
            for part, shape in zip(flat.split(self.sizes, 1), self.shapes, strict=True)
        ]

    def latent_level(self) -> np.ndarray:
        """RG level of every packed entry: 0 for the last q0 (the finest, factored out first)."""
        return self._level_of_entry[self.order.cpu().numpy()].reshape(self.data_shape)


class NormflowsMultiscaleFlow(nn.Module):
    """encode/decode as normflows' own inverse_and_log_det/forward_and_log_det, latents packed."""

    def __init__(self, multiscale: nf.MultiscaleFlow, packing: LatentPacking) -> None:
        super().__init__()
        self.multiscale = multiscale
        self.packing = packing

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        latents, logdet = self.multiscale.inverse_and_log_det(x)
        return self.packing.pack(latents), logdet

    def decode(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.multiscale.forward_and_log_det(self.packing.unpack(z))


class MultiscalePrior(Prior):
    """The model's own base distributions q0, one per level, over the packed latents.

    log_prob is the sum of q0[i].log_prob; log_density and sample use each entry's mean and scale
    read from q0's parameters. The prior is not i.i.d., so the one-latent descriptors that analyses
    compare with (std, excess_kurtosis, quantile) describe a latent drawn at random about its own
    mean: the mixture of N(0, σ_l²) over all latents l. `scale` is their pooled std at load time.
    """

    def __init__(self, q0: nn.ModuleList, packing: LatentPacking, kind: str) -> None:
        super().__init__(1.0)
        self.q0 = q0
        self.packing = packing
        self.kind = kind
        with torch.no_grad():
            self.scale.fill_(self.std())

    def loc_and_log_scale(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Each packed latent's prior mean and log standard deviation, (C, H, W) each."""
        locs, log_scales = [], []
        for q, shape in zip(self.q0, self.packing.shapes, strict=True):
            if self.kind == "glow_base":  # per-channel values with a learned log factor
                loc = q.loc * torch.exp(q.loc_logs * q.logscale_factor)
                log_scale = q.log_scale * torch.exp(q.log_scale_logs * q.logscale_factor)
            else:  # DiagGaussian: one value per entry
                loc, log_scale = q.loc, q.log_scale
            locs.append(loc.expand(1, *shape))
            log_scales.append(log_scale.expand(1, *shape))
        return self.packing.pack(locs)[0], self.packing.pack(log_scales)[0]

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        parts = self.packing.unpack(z)
        return sum(q.log_prob(part) for q, part in zip(self.q0, parts, strict=True))

    def log_density(self, z: torch.Tensor) -> torch.Tensor:
        loc, log_scale = self.loc_and_log_scale()
        return -0.5 * ((z - loc) / log_scale.exp()) ** 2 - log_scale - 0.5 * math.log(2 * math.pi)

    @torch.no_grad()
    def sample(self, shape, temperature=1.0, generator=None):
        loc, log_scale = self.loc_and_log_scale()
        noise = torch.randn(shape, generator=generator, device=_noise_device(generator, loc))
        return loc + log_scale.exp() * temperature * noise.to(loc)

    def _scales(self) -> torch.Tensor:
        with torch.no_grad():
            return self.loc_and_log_scale()[1].exp().double().reshape(-1).cpu()

    def std(self) -> float:
        return float(self._scales().pow(2).mean().sqrt())

    def excess_kurtosis(self) -> float:
        variance = self._scales().pow(2)
        return float(3 * (variance.pow(2).mean() / variance.mean() ** 2 - 1))

    def quantile(self, p: torch.Tensor) -> torch.Tensor:
        """Inverse CDF of the mixture of N(0, σ_l²), by bisection (it has no closed form)."""
        scales, counts = self._scales().unique(return_counts=True)
        weights = counts.double() / counts.sum()
        target = p.detach().double().cpu().reshape(-1, 1)
        low = torch.full_like(target, -40 * float(scales.max()))
        high = -low
        for _ in range(QUANTILE_BISECTIONS):
            middle = (low + high) / 2
            below = (torch.special.ndtr(middle / scales) * weights).sum(1, keepdim=True) < target
            low, high = torch.where(below, middle, low), torch.where(below, high, middle)
        value = ((low + high) / 2).reshape(p.shape)
        value = torch.where(p.cpu() <= 0, -math.inf, torch.where(p.cpu() >= 1, math.inf, value))
        return value.to(device=p.device, dtype=p.dtype)


class DequantizedImages(nn.Module):
    """[0, 1] images <-> normflows' model space, the dequantised images themselves (no logit).

    normflows' examples scale 8-bit images to k/256 and add U(0, 1/256): (k + u)/256, as rginspect's
    RG-Flow preprocessing dequantises before its logit. The model's density is over that space, so
    the log-det is 0 (bits/dim add log2 256 for the bins, as everywhere in rginspect).
    """

    def forward(
        self,
        images01: torch.Tensor,
        dequantize: bool = False,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x = dequantized(images01, generator) if dequantize else images01
        return x, self.log_det_at(x)

    def log_det_at(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(x), dtype=x.dtype, device=x.device)

    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        return x


def wrap_multiscale(flow: nf.MultiscaleFlow, **settings: Any) -> RGFlowModel:
    """An RGFlowModel of a normflows MultiscaleFlow in memory, built by `build_multiscale(**settings)`
    (or the same construction); its ActNorm layers are marked initialised, so no batch re-fits them."""
    settings = checked_settings(settings, "wrap_multiscale")
    _check_structure(flow, settings, "wrap_multiscale")
    return _wrap(flow, settings, {"normflows": settings})


def _wrap(flow: nf.MultiscaleFlow, settings: dict[str, Any], provenance: dict) -> RGFlowModel:
    _mark_actnorm_initialised(flow)
    packing = LatentPacking(flow, latent_shapes(settings), tuple(settings["input_shape"]))
    prior = MultiscalePrior(flow.q0, packing, settings["prior"])
    return RGFlowModel(
        NormflowsMultiscaleFlow(flow, packing),
        prior,
        packing.latent_level(),
        domain="image",
        data_shape=packing.data_shape,
        preprocessing=DequantizedImages(),
        provenance=provenance,
    )


def _mark_actnorm_initialised(flow: nf.MultiscaleFlow) -> None:
    """ActNorm fits itself to the first batch it sees unless marked done; analyses must see the
    stored weights whatever they encode first (and encode must stay a pure function)."""
    nf = normflows_module()
    layers = [module for module in flow.modules() if isinstance(module, nf.flows.ActNorm)]
    fresh = sum(1 for layer in layers if not float(layer.data_dep_init_done) > 0)
    if fresh:
        warnings.warn(
            f"{fresh} of {len(layers)} ActNorm layers never saw data (data_dep_init_done = 0): "
            "their stored scales and shifts are used as they are",
            stacklevel=3,
        )
    for layer in layers:
        layer.data_dep_init_done.fill_(1.0)


def _check_structure(flow: nn.Module, settings: dict[str, Any], source: str) -> None:
    """The flow has the keys and shapes that the settings build: otherwise they do not describe it."""
    nf = normflows_module()
    if not isinstance(flow, nf.MultiscaleFlow):
        raise ArchitectureError(
            f"{source}: expected a normflows MultiscaleFlow, not a {type(flow).__name__}"
        )
    expected = {
        key: value.shape for key, value in build_multiscale(**settings).state_dict().items()
    }
    require_keys(flow.state_dict(), expected, f"{source}: the flow")


# -- the file -----------------------------------------------------------------------------------
def save_normflows(
    flow: nf.MultiscaleFlow,
    path: str | Path,
    *,
    training: Mapping[str, Any] | None = None,
    **settings: Any,
) -> Path:
    """Write `flow` with the constructor settings it was built with, for `rginspect.load(path)`,
    and how it was trained (`training`, JSON-able) when a trainer made it.

    The settings are checked against the flow first (they must build the same keys and shapes).
    """
    path = Path(path)
    settings = checked_settings(settings, "save_normflows")
    _check_structure(flow, settings, "save_normflows")
    payload = {
        FORMAT_KEY: FORMAT_VERSION,
        "settings": settings,
        "state_dict": {k: v.detach().cpu().contiguous() for k, v in flow.state_dict().items()},
        "normflows_version": normflows_module().__version__,
    }
    if training:
        payload["training"] = dict(training)
    errors = (OSError, RuntimeError)  # torch.save raises RuntimeError
    with atomic_output(
        path, advice="free space or choose another path", errors=errors
    ) as temporary:
        torch.save(payload, temporary)
    return path


def sniff(path: Path) -> bool:
    """Files written by save_normflows, and bare MultiscaleFlow state dicts (q0.0.…, flows.0.0.…)."""
    if not path.is_file():
        return False
    strings = pickle_strings(path)
    return FORMAT_KEY in strings or (
        any(s.startswith("q0.0.") for s in strings)
        and any(s.startswith("flows.0.0.") for s in strings)
    )


def load(path: Path, *, trust_checkpoint: bool = False, **architecture: Any) -> RGFlowModel:
    normflows_module()  # without it nothing below can work: say so first
    payload = read_torch_file(path, trust_checkpoint)
    recorded: Any = {}
    provenance: dict[str, Any] = {}
    if isinstance(payload, Mapping) and FORMAT_KEY in payload:
        version = integer(payload[FORMAT_KEY], FORMAT_KEY, path, fix=FIX)
        if version > FORMAT_VERSION:
            raise NotACheckpointError(
                f"{path}: normflows checkpoint version {version} is newer than this rginspect "
                f"reads ({FORMAT_VERSION}); upgrade rginspect"
            )
        recorded = payload.get("settings")
        if not isinstance(recorded, Mapping):
            raise CheckpointValueError(
                f"{path}: settings is a {type(recorded).__name__}, not a dict; {FIX}"
            )
        if isinstance(payload.get("normflows_version"), str):
            provenance["saved_with_normflows"] = payload["normflows_version"]
        provenance |= training_record(payload.get("training"), path, FIX)
        payload = payload.get("state_dict")
    state = state_dict_of(payload, path, "the normflows state dict")
    settings = checked_settings({**recorded, **architecture}, path)
    _check_against_weights(settings, state, path)
    flow = build_multiscale(**settings)
    load_state_strictly(flow, state, path)
    return _wrap(flow, settings, {"normflows": settings, **provenance})


def _check_against_weights(
    settings: dict[str, Any], state: Mapping[str, torch.Tensor], source: Path
) -> None:
    """Before building: the levels, base-distribution shapes, steps per level and hidden width
    that the settings make are those the weights hold, so the model built is the file's size."""
    shapes = latent_shapes(settings)
    held = {int(key.split(".")[1]) for key in state if _index(key, 1, "q0")}
    if held != set(range(len(shapes))):
        named = ", ".join(f"q0.{i}" for i in sorted(held)[:6]) + ("…" if len(held) > 6 else "")
        raise ArchitectureMismatchError(
            f"{source}: the settings make {len(shapes)} levels, the weights hold base "
            f"distributions {named or 'none'}; {FIX}"
        )
    if any(key.startswith("q0.") and key.endswith("_cc") for key in state):
        raise ArchitectureError(
            f"{source}: class-conditional base distributions are not supported (rginspect "
            "analyses unconditional densities); train with num_classes=None"
        )
    for i, shape in enumerate(shapes):
        loc = tensor_entry(state, f"q0.{i}.loc", source, dim=4)
        expected = (1, shape[0], 1, 1) if settings["prior"] == "glow_base" else (1, *shape)
        if tuple(loc.shape) != expected:
            raise ArchitectureMismatchError(
                f"{source}: wrong shapes: q0.{i}.loc {tuple(loc.shape)} != {expected} (a "
                f"{settings['prior']} prior on {shape}); {FIX}"
            )
        steps = {int(key.split(".")[2]) for key in state if _index(key, 2, f"flows.{i}")}
        if steps != set(range(settings["steps"])):
            raise ArchitectureMismatchError(
                f"{source}: the settings make {settings['steps']} steps on level q0.{i}, the "
                f"weights hold {len(steps)}; {FIX}"
            )
    widths = {
        int(value.shape[0])
        for key, value in state.items()
        if key.endswith("param_map.net.0.weight")
    }
    if widths - {settings["hidden_channels"]}:
        raise ArchitectureMismatchError(
            f"{source}: the settings say hidden_channels={settings['hidden_channels']}, the "
            f"coupling networks hold {', '.join(map(str, sorted(widths)))}; {FIX}"
        )


def _index(key: str, position: int, prefix: str) -> bool:
    """Whether `key` starts with `prefix.` followed by a number at dotted `position`."""
    parts = key.split(".")
    return key.startswith(prefix + ".") and len(parts) > position and parts[position].isdecimal()


NORMFLOWS = CheckpointFormat(
    name="normflows",
    description=(
        "normflows Glow/RealNVP MultiscaleFlow: save_normflows files, or a bare state dict with "
        f"its constructor settings as options (needs {INSTALL})"
    ),
    sniff=sniff,
    load=load,
)


@hookimpl
def rginspect_checkpoint_formats() -> list[CheckpointFormat]:
    return [NORMFLOWS]
