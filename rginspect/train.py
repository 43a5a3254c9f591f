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

from .model import RGFlowModel


@dataclass
class TrainingRecord:
    """Loss per logged step; `unit` says what the loss is (bits/dim, or free energy per site)."""

    unit: str
    steps: list[int] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)

    def log(self, step: int, loss: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)


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
    """Maximum likelihood on dequantized images in [0,1] (AdamW, as RG-Flow)."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    data = torch.as_tensor(images01, dtype=torch.float32)
    device = model.prior.scale.device
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    record = TrainingRecord("bits/dim")
    model.train()
    with tqdm(range(1, steps + 1), desc="train image", disable=not progress) as bar:
        for step in bar:
            batch = data[torch.randint(len(data), (batch_size,), generator=generator)].to(device)
            loss = bits_per_dim(model, batch).mean()
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
    progress: bool = True,
) -> TrainingRecord:
    """Reverse KL to exp(−S)/Z: minimise F_q = ⟨ln q(x) + S(x)⟩ over x ~ q, per site (NeuralRG).

    Reverse KL seeks modes: in an ordered or critical phase the flow can collapse onto one
    direction of a symmetric system. With `anneal` > 0 the action is scaled by β rising linearly
    from 0.2 to 1 over that fraction of the steps, so the flow first learns the disordered,
    symmetric distribution and follows it as it orders.
    """
    torch.manual_seed(seed)
    n_sites = model.data_shape[1] * model.data_shape[2]
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    record = TrainingRecord("free energy per site")
    model.train()
    with tqdm(range(1, steps + 1), desc="train field", disable=not progress) as bar:
        for step in bar:
            z = model.prior.sample((batch_size, *model.data_shape))
            x, logdet = model.decode(z)
            log_q = model.prior.log_prob(z) - logdet
            beta = min(1.0, 0.2 + 0.8 * step / (anneal * steps)) if anneal > 0 else 1.0
            loss = (log_q + beta * model.action(x)).mean() / n_sites
            _step(optimizer, loss)
            scheduler.step()
            record.log(step, loss.item())
            bar.set_postfix(free_energy=f"{loss.item():.4f}")
    model.eval()
    return record


@dataclass(frozen=True)
class TrainingSettings:
    """What `rginspect train image` and `train field` share: the conditioner sizes (one value,
    one per level or one per sublayer) and the optimisation."""

    nlayers: int | list[int] = 2
    nresblocks: int | list[int] = 1
    nmlp: int | list[int] = 1
    nhidden: int | list[int] = 64
    steps: int = 2000
    batch_size: int = 64
    lr: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    progress: bool = True

    def sizes(self) -> dict[str, int | list[int]]:
        return {key: getattr(self, key) for key in ("nlayers", "nresblocks", "nmlp", "nhidden")}

    def optimisation(self) -> dict[str, Any]:
        """The settings a checkpoint's provenance records and the trainers take."""
        return {key: getattr(self, key) for key in ("steps", "batch_size", "lr", "seed")}


def train_image_checkpoint(
    out: Path,
    settings: TrainingSettings = TrainingSettings(),
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
    nhidden coupling channels) and writes a normflows checkpoint, so that the two families are
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
    model.provenance["training"] = training_provenance("train image", record, started, **recorded)
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


def train_field_checkpoint(
    out: Path,
    settings: TrainingSettings = TrainingSettings(),
    *,
    action: dict[str, Any],
    architecture: str = "rgflow",
    kernel: int = 2,
    nrepeat: int = 1,
    anneal: float = 0.5,
) -> RGFlowModel:
    """`rginspect train field` as a function: a flow for the action `{"name": ..., "L": ...,
    couplings}`, trained by reverse KL and written to `out`. Sweep workers call this."""
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
            **shape, kernel=kernel, **settings.sizes(), prior="gaussian", domain="field"
        )
    model = _initial_model(config, settings, action=built)
    record = train_field(
        model, anneal=anneal, progress=settings.progress, **settings.optimisation()
    )
    recorded = {"action": built.config(), "anneal": anneal, **settings.optimisation()}
    model.provenance["training"] = training_provenance("train field", record, started, **recorded)
    _save_native(model, out)
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
