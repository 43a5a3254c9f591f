"""Minimal trainers that produce checkpoints: image likelihood (RG-Flow natively, or a normflows Glow
to compare with) and reverse KL (NeuralRG).

They exist so the bundled demo models, and the models the analyses are tested on, can be rebuilt from
one command; they are not meant to compete with the upstream training code.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from .device import describe, full_precision
from .formats.config import PER_SUBLAYER
from .model import RGFlowModel
from .training_settings import (
    FIELD_ANNEAL,
    FIELD_COUPLING_MASKS,
    FIELD_GROW_FRACTION,
    FIELD_RADIAL_BINS,
    FIELD_SPLINE_BINS,
    FIELD_TRAINING,
    GROW_FROM_L,
    IMAGE_TRAINING,
    TrainingSettings,
)


@dataclass
class TrainingRecord:
    """Loss per logged step; `unit` says what the loss is (bits/dim, or free energy per site)."""

    unit: str
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    # field flows: sampler quality measured along the way, one dict per measurement
    quality: list[dict[str, float | int]] = field(default_factory=list)

    def log(self, step: int, loss: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)

    @classmethod
    def joined(cls, records: list[TrainingRecord]) -> TrainingRecord:
        """Records of consecutive stages as one, steps counted on from stage to stage."""
        joined = cls(records[0].unit)
        for record in records:
            offset = joined.steps[-1] if joined.steps else 0
            for step, loss in zip(record.steps, record.losses, strict=True):
                joined.log(offset + step, loss)
            joined.quality += [{**q, "step": offset + q["step"]} for q in record.quality]
        return joined

    def quality_curve(self) -> dict[str, list[float | int]]:
        """The quality measurements as columns (JSON-able)."""
        keys = self.quality[0].keys() if self.quality else ()
        return {key: [q[key] for q in self.quality] for key in keys}


def bits_per_dim(model: RGFlowModel, images01: torch.Tensor, generator=None) -> torch.Tensor:
    """RG-Flow's convention: −(log q(x) + log-det of the logit map)/D in nats, plus ln 256, in bits."""
    x, logdet = model.preprocess(images01, dequantize=True, generator=generator)
    nats = -(model.log_prob(x) + logdet) / images01[0].numel()
    return (nats + math.log(256)) / math.log(2)


def train_image(
    model: RGFlowModel,
    images01: np.ndarray,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 5e-2,
    seed: int = 0,
    progress: bool = True,
) -> TrainingRecord:
    """Maximum likelihood on dequantized images in [0,1] (AdamW, as RG-Flow). The batches and
    their dequantisation noise come from CPU generators, so a seed trains alike on every device."""
    generator = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed)
    data = torch.as_tensor(images01, dtype=torch.float32)
    device = model.prior.scale.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    record = TrainingRecord("bits/dim")
    model.train()
    with tqdm(range(1, steps + 1), desc="train image", disable=not progress) as bar:
        for step in bar:
            batch = data[torch.randint(len(data), (batch_size,), generator=generator)].to(device)
            loss = bits_per_dim(model, batch, noise).mean()
            _step(optimizer, loss)
            record.log(step, loss.item())
            bar.set_postfix(bits_per_dim=f"{loss.item():.3f}")
    model.eval()
    return record


def train_field(
    model: RGFlowModel,
    *,
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    anneal: float = 0.0,
    quality_every: int = 0,
    progress: bool = True,
) -> TrainingRecord:
    """Reverse KL to exp(−S)/Z: minimise F_q = ⟨ln q(x) + S(x)⟩ over x ~ q, per site (NeuralRG).

    Reverse KL seeks modes: in an ordered or critical phase the flow can collapse onto one
    direction of a symmetric system. With `anneal` > 0 the action is scaled by β rising linearly
    from 0.2 to 1 over that fraction of the steps, so the flow first learns the disordered,
    symmetric distribution and follows it as it orders. With `quality_every` > 0 the sampler
    quality (on QUALITY_CURVE_SAMPLES samples) is recorded every that many steps. The latents
    come from a CPU generator, so a seed trains alike on every device.
    """
    generator = torch.Generator().manual_seed(seed)
    n_sites = model.data_shape[1] * model.data_shape[2]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    record = TrainingRecord("free energy per site")
    model.train()
    with tqdm(range(1, steps + 1), desc="train field", disable=not progress) as bar:
        for step in bar:
            z = model.prior.sample((batch_size, *model.data_shape), generator=generator)
            x, logdet = model.decode(z)
            log_q = model.prior.log_prob(z) - logdet
            beta = min(1.0, 0.2 + 0.8 * step / (anneal * steps)) if anneal > 0 else 1.0
            loss = (log_q + beta * model.action(x)).mean() / n_sites
            _step(optimizer, loss)
            scheduler.step()
            record.log(step, loss.item())
            bar.set_postfix(free_energy=f"{loss.item():.4f}")
            if quality_every and step % quality_every == 0:
                model.eval()
                quality = sampler_quality(model, QUALITY_CURVE_SAMPLES).as_dict()
                record.quality.append({"step": step, "L": model.data_shape[-1], **quality})
                model.train()
    model.eval()
    return record


QUALITY_CURVE_SAMPLES = 1024  # per point of a training run's quality curve


@dataclass(frozen=True)
class SamplerQuality:
    """How well a field flow's proposal samples exp(−S)/Z, from n independent proposals.

    acceptance: independence-Metropolis acceptance; ess_fraction: Kish's ESS/N of the importance
    weights p/q; kl_per_site: KL(q‖p)/sites = (⟨ln q + S⟩_q + ln Z)/sites with ln Z
    importance-sampled from the same samples (so it reads low when ESS is tiny). The proposal is
    the flow itself, or its mixture over `group_size` symmetry maps (rginspect.physics.proposals).
    All three are computed on the proposal's own samples and cannot see fields it never proposes:
    phase_resultant is |⟨e^{ikθ}⟩| of the samples' global phase at the harmonic k of the mixture's
    rotations (|⟨sign M⟩| for one component), 0 when the proposal covers the action's symmetry
    group, and covers_symmetry says whether it is as small as covering the group gives.
    """

    acceptance: float
    ess_fraction: float
    kl_per_site: float
    free_energy_per_site: float  # ⟨ln q + S⟩_q / sites, the training loss at β = 1
    group_size: int
    n_samples: int
    phase_resultant: float = math.nan
    covers_symmetry: bool = True

    def as_dict(self) -> dict[str, float | int]:
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


@torch.no_grad()
def sampler_quality(
    model: RGFlowModel, n_samples: int = 4096, seed: int = 1, group: torch.Tensor | None = None
) -> SamplerQuality:
    """The numbers that say whether a trained field flow (or its mixture over the site maps of
    `group`, see rginspect.physics.proposals) is a usable sampler of its action."""
    from scipy.special import logsumexp

    from .physics import effective_sample_fraction, independence_metropolis
    from .physics.proposals import flow_samples
    from .physics.symmetry import mean_resultant_length, pins_symmetry

    group = torch.eye(model.data_shape[0], dtype=torch.float64)[None] if group is None else group
    generator = torch.Generator().manual_seed(seed)  # on the CPU: the same draws on every device
    x, log_q, action = flow_samples(
        model, n_samples, batch_size=1024, generator=generator, group=group
    )
    chain = independence_metropolis(
        x, log_q, -action, generator=torch.Generator().manual_seed(seed)
    )
    log_w = (-action - log_q).numpy()
    n_sites = model.data_shape[1] * model.data_shape[2]
    log_z = float(logsumexp(log_w) - math.log(n_samples))
    channels, resultant, covers = model.data_shape[0], math.nan, True
    if channels in (1, 2):
        rotations = int((torch.linalg.det(group) > 0).sum()) if channels == 2 else 1
        resultant = mean_resultant_length(x, rotations)
        covers = not pins_symmetry(resultant, n_samples, channels)
    return SamplerQuality(
        acceptance=chain.acceptance_rate,
        ess_fraction=effective_sample_fraction(log_w),
        kl_per_site=float(log_z - log_w.mean()) / n_sites,
        free_energy_per_site=float(-log_w.mean()) / n_sites,
        group_size=len(group),
        n_samples=n_samples,
        phase_resultant=resultant,
        covers_symmetry=covers,
    )


def field_symmetries(n_channels: int) -> torch.Tensor | None:
    """The global symmetry maps a trained field flow's proposal is mixed over in its recorded
    quality: Z_8 rotations and φ → φ* for two components, φ → −φ for one."""
    from .physics.proposals import symmetry_group

    if n_channels == 2:
        return symmetry_group(2, 8, conjugate=True)
    return symmetry_group(1, 2, conjugate=False) if n_channels == 1 else None


@full_precision()  # no TF32 on CUDA, as in the analyses: a seed trains alike on every device
def train_image_checkpoint(
    out: Path,
    settings: TrainingSettings = IMAGE_TRAINING,
    *,
    data: str = "msds1:10000",
    architecture: str = "rgflow",
    kernel: int = 4,
    prior: str = "laplace",
    levels: int | None = None,
    weight_decay: float = 5e-2,
) -> RGFlowModel:
    """`rginspect train image` as a function: build a flow for `data`, train it, write `out`.

    architecture "rgflow" builds RG-Flow's MERA (kernel, prior, the conditioner sizes) and writes
    a native checkpoint; "glow" builds a normflows Glow (`levels`, nlayers Glow steps per level,
    nhidden coupling channels, scale_map "sigmoid_inv" so that decoding multiplies by the sigmoid
    scales and stays bounded) and writes a normflows checkpoint, so that the two families are
    trained by the same loop on the same images.
    """
    from .data import load_data

    started = time.time()
    images = load_data(
        data, seed=settings.seed, stream="training", progress=settings.progress
    ).images_or_fields
    if architecture == "glow":
        model, write = _initial_glow(images, settings, levels)
    else:
        model, write = _initial_rgflow(images.shape[1:3], settings, kernel, prior)
    record = train_image(
        model,
        images,
        weight_decay=weight_decay,
        progress=settings.progress,
        **settings.optimisation(),
    )
    recorded = {
        "data": data,
        "architecture": architecture,
        "weight_decay": weight_decay,
        **settings.optimisation(),
    }
    model.provenance["training"] = training_provenance(
        "train image", record, started, device=describe(settings.device), **recorded
    )
    write(model, out)
    return model


def _initial_rgflow(
    shape: tuple[int, int], settings: TrainingSettings, kernel: int, prior: str
) -> tuple[RGFlowModel, Callable[[RGFlowModel, Path], Any]]:
    """An RG-Flow for (channels, L) images, and how to write it (a native checkpoint)."""
    from .nn.architectures import rgflow_config

    channels, size = shape
    config = rgflow_config(
        channels=channels,
        L=size,
        kernel=kernel,
        **settings.sizes(),
        prior=prior,
        domain="image",
    )
    return _initial_model(config, settings), _save_native


def _initial_glow(
    images01: np.ndarray, settings: TrainingSettings, levels: int | None
) -> tuple[RGFlowModel, Callable[[RGFlowModel, Path], Any]]:
    """A normflows Glow for these images, its ActNorm layers fitted to the first batch (Glow's
    data-dependent initialisation), and how to write it (a normflows checkpoint)."""
    from .formats.normflows import build_multiscale, save_normflows, wrap_multiscale

    if not (isinstance(settings.nlayers, int) and isinstance(settings.nhidden, int)):
        raise ValueError("the Glow architecture takes one nlayers and one nhidden, not lists")
    channels, size = images01.shape[1:3]
    glow = {
        "architecture": "glow",
        "levels": levels or max(1, int(math.log2(size)) - 1),  # down to a 2×2 top level
        "steps": settings.nlayers,
        "hidden_channels": settings.nhidden,
        "input_shape": [int(channels), int(size), int(images01.shape[3])],
        # the generative direction multiplies by sigmoid scales (normflows' Glow default divides
        # by them, so its decoder and samples overflow): decoding stays bounded
        "scale_map": "sigmoid_inv",
    }
    torch.manual_seed(settings.seed)  # the initial weights too, so the command reproduces
    flow = build_multiscale(**glow)
    first = torch.as_tensor(images01[: settings.batch_size], dtype=torch.float32)
    with torch.no_grad():
        flow.inverse_and_log_det((first * 255 + torch.rand_like(first)) / 256)
    model = wrap_multiscale(flow, **glow).to(settings.device)

    def write(trained: RGFlowModel, out: Path) -> None:
        save_normflows(flow.cpu(), out, training=trained.provenance["training"], **glow)

    return model, write


@full_precision()
def train_field_checkpoint(
    out: Path,
    settings: TrainingSettings = FIELD_TRAINING,
    *,
    action: dict[str, Any],
    architecture: str = "rgflow",
    kernel: int = 2,
    nrepeat: int = 1,
    anneal: float = FIELD_ANNEAL,
    coupling_masks: str = FIELD_COUPLING_MASKS,
    radial_bins: int = FIELD_RADIAL_BINS,
    spline_bins: int = FIELD_SPLINE_BINS,
    grow_fraction: float = FIELD_GROW_FRACTION,
    quality_every: int = 0,
    quality_samples: int = 4096,
) -> RGFlowModel:
    """`rginspect train field` as a function: a flow for the action `{"name": ..., "L": ...,
    couplings}`, trained by reverse KL and written to `out`. Sweep workers call this.

    `settings.batch_size` is the batch on an L = GROW_FROM_L lattice; other lattices draw as many
    samples as keep samples × sites the same, and with it the gradient's noise per site. RG-Flow
    flows on L > GROW_FROM_L spend `grow_fraction` of the steps on an L = GROW_FROM_L lattice of
    the same action first, then train the grown model (`grown_model`) on L. The sampler quality of
    the result (plain, and mixed over the field's global symmetries), on `quality_samples` of its
    own samples, goes into its provenance.
    """
    from .nn.architectures import neuralrg_config, rgflow_config
    from .physics import build_action

    started = time.time()
    built = build_action(action)
    shape = {"channels": built.n_channels, "L": built.L}
    if architecture == "neuralrg":
        sizes = {key: getattr(settings, key) for key in ("nlayers", "nmlp", "nhidden")}
        if not all(isinstance(n, int) for n in sizes.values()):
            raise ValueError("the NeuralRG architecture takes one number per setting, not lists")
        config = neuralrg_config(**shape, **sizes, nrepeat=nrepeat)
    else:
        config = rgflow_config(
            **shape,
            kernel=kernel,
            **settings.sizes(),
            prior="gaussian",
            domain="field",
            coupling_masks=coupling_masks,
            radial_bins=radial_bins,
            spline_bins=spline_bins,
        )
    grows = (
        architecture == "rgflow"
        and 0 < grow_fraction < 1
        and built.L > GROW_FROM_L >= kernel
        and settings.steps >= 2
    )
    stages = [(built.L, settings.steps)]
    model = None
    if grows:
        small_steps = round(grow_fraction * settings.steps)
        stages = [(GROW_FROM_L, small_steps), (built.L, settings.steps - small_steps)]
    records = []
    for L, steps in stages:
        stage_action = build_action({**built.config(), "L": L})
        stage_config = _smaller_lattice(config, L)
        if model is None:
            model = _initial_model(stage_config, settings, action=stage_action)
        else:
            model = grown_model(model, stage_config, stage_action).to(settings.device)
        records.append(
            train_field(
                model,
                steps=steps,
                batch_size=max(1, round(settings.batch_size * (GROW_FROM_L / L) ** 2)),
                lr=settings.lr,
                seed=settings.seed,
                anneal=anneal if len(records) == 0 else 0.0,
                quality_every=quality_every,
                progress=settings.progress,
            )
        )
    record = TrainingRecord.joined(records)
    group = field_symmetries(built.n_channels)
    recorded = {
        "action": built.config(),
        "anneal": anneal,
        **settings.optimisation(),
        "grown_from_L": GROW_FROM_L if grows else None,
        "grow_fraction": grow_fraction if grows else None,
        "sampler_quality": sampler_quality(model, quality_samples).as_dict(),
        "symmetrized_sampler_quality": None
        if group is None
        else sampler_quality(model, quality_samples, group=group).as_dict(),
        "sampler_quality_curve": record.quality_curve(),
    }
    model.provenance["training"] = training_provenance(
        "train field", record, started, device=describe(settings.device), **recorded
    )
    _save_native(model, out)
    return model


def _smaller_lattice(config: dict[str, Any], L: int) -> dict[str, Any]:
    """`config` on an L lattice no larger: the per-sublayer sizes of the sublayers it has."""
    if L == config["L"]:
        return config
    from .nn.mera import full_depth

    n_sublayers = 2 * full_depth(L, config["kernel"])
    cut = {key: config[key][:n_sublayers] for key in PER_SUBLAYER}
    return {**config, "L": L, **cut}


def grown_model(small: RGFlowModel, config: dict[str, Any], action: torch.nn.Module) -> RGFlowModel:
    """A flow of `config` (a larger L) whose finer levels are those of `small`.

    An RG-Flow sublayer applies one bijector to every block of its level, whatever L, so sublayer
    s of the small lattice is sublayer s of the large one; the levels the small lattice lacks start
    as the identity, as a new flow does.
    """
    model = RGFlowModel.from_config(config, action=action)
    state = model.state_dict()
    for key, value in small.state_dict().items():
        if key.startswith("flow.blocks.") and state[key].shape == value.shape:
            state[key] = value
    model.load_state_dict(state)
    return model


def _initial_model(
    config: dict[str, Any], settings: TrainingSettings, action: torch.nn.Module | None = None
) -> RGFlowModel:
    torch.manual_seed(settings.seed)  # the initial weights too, so the command reproduces
    return RGFlowModel.from_config(config, action=action).to(settings.device)


def _save_native(model: RGFlowModel, out: Path) -> None:
    from .formats import save

    save(model.cpu(), out)


def _step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    parameters = [p for group in optimizer.param_groups for p in group["params"]]
    torch.nn.utils.clip_grad_norm_(parameters, 10.0)
    optimizer.step()


def training_provenance(
    command: str, record: TrainingRecord, started: float, **settings: Any
) -> dict:
    """What a native checkpoint records about how it was made (JSON-able)."""
    from . import __version__

    tail = record.losses[-max(1, len(record.losses) // 20) :]
    stride = max(1, len(record.steps) // 200)  # keep the stored curve small
    return {
        "command": command,
        **settings,
        "loss_unit": record.unit,
        "final_loss": float(np.mean(tail)),
        "loss_curve": {"step": record.steps[::stride], "loss": record.losses[::stride]},
        "wall_seconds": round(time.time() - started, 1),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "rginspect_version": __version__,
        "torch_version": str(torch.__version__),
        "python_version": platform.python_version(),
    }
