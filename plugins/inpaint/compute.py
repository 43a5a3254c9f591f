"""What inpaint computes: the hole from its spec, the latents in its causal cone, the fills by
gradient descent on the cone's latents or on all of them, and the dataset of one hole."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from PIL import Image

from rginspect.analysis import RunContext
from rginspect.device import synchronize
from rginspect.jacobian import Progress, to_data_space
from rginspect.model import RGFlowModel

MASK_FORMS = (
    "square (centred, side min(H, W)/4), square:SIZE, square:SIZE@ROW,COL, or a .npy/.png file"
)
METHODS = ("cone", "all")
GREY = 0.5
_SQUARE = re.compile(r"square(?::(\d+)(?:@(\d+),(\d+))?)?")

SHARED = ("truth", "truth_log_prob", "level_latents")  # the same for every hole
HOLE_NUMBERS = ("steps", "step_seconds", "seconds", "reach")  # one value per hole


def fill_hole(context: RunContext, x_truth: torch.Tensor, mask: np.ndarray) -> xr.Dataset:
    """One hole filled by both methods, its per-hole numbers (HOLE_NUMBERS) as variables."""
    model, settings = context.model, context.parameters
    steps, lr, noise = settings["steps"], settings["lr"], settings["noise"]
    missing = torch.as_tensor(np.broadcast_to(mask, model.data_shape).copy())
    missing = missing.to(x_truth.device)
    with torch.no_grad():
        truth = model.postprocess(x_truth)
        if settings["init"] == "grey":
            fill = torch.full_like(truth, GREY)
        else:
            fill = torch.rand(truth.shape, generator=context.generator(1)).to(truth)
        x_start = torch.where(missing, model.preprocess(fill)[0], x_truth)
        start = model.postprocess(x_start)
        z_start, _ = model.encode(x_start)
        _require_prior_density(model, z_start)
    cone = cone_latents(model, mask)
    # without block tables (or for a hole every latent reaches) the cone is everything, and
    # the cone method would repeat the all-latent search: run that one alone
    methods = METHODS if not cone.all() else ("all",)
    free = {"cone": cone, "all": np.ones(model.data_shape, dtype=bool)}
    batch = torch.cat([z_start] * len(methods))
    free_entries = torch.as_tensor(
        np.repeat(np.stack([free[m] for m in methods]), len(z_start), axis=0),
        device=batch.device,
    )
    truths = torch.cat([truth] * len(methods))
    # one untimed step first: it pays the start-up cost and times a step for the budget
    began = time.perf_counter()
    inpaint_latents(model, batch, free_entries, truths, missing, 1, lr, noise)
    synchronize(context.device)  # the clock must see the GPU's work, not its launch
    step_seconds = time.perf_counter() - began
    steps_used = _steps_within(steps, settings["budget"], step_seconds)
    began = time.perf_counter()
    z, trace = inpaint_latents(
        model, batch, free_entries, truths, missing, steps_used, lr, noise, context.progress
    )
    synchronize(context.device)
    seconds = time.perf_counter() - began
    with torch.no_grad():
        x, logdet = model.decode(z)
        images, log_q = model.postprocess(x), model.prior.log_prob(z) - logdet
        log_q_truth, log_q_start = model.log_prob(x_truth), model.log_prob(x_start)
    n = len(z_start)
    fills = {
        method: _Fill(
            images[i * n : (i + 1) * n],
            log_q[i * n : (i + 1) * n],
            trace[:, i * n : (i + 1) * n],
        )
        for i, method in enumerate(methods)
    }
    reach = np.asarray(model.cone_matrix()[cone.ravel()].sum(0)).ravel() > 0
    dataset = _dataset(model, mask, cone, truth, start, fills)
    dataset["truth_log_prob"] = ("image", _numpy(log_q_truth), {"units": "nats"})
    dataset["start_log_prob"] = ("image", _numpy(log_q_start), {"units": "nats"})
    numbers = {
        "steps": (steps_used, "Adam steps run (fewer than asked when the budget cut them)", "1"),
        "step_seconds": (step_seconds, "wall time of the timed first step", "s"),
        "seconds": (seconds, "wall time of the optimisation, both methods in one batch", "s"),
        "reach": (int(reach.sum()), "data entries the cone's latents can move", "1"),
    }
    for name, (value, meaning, unit) in numbers.items():
        dataset[name] = ((), value, {"long_name": meaning, "units": unit})
    return dataset


def hole_view(dataset: xr.Dataset, hole: str) -> xr.Dataset:
    """One hole's results as a single-hole dataset: only the methods run for it, and its
    per-hole numbers (steps, seconds, reach) and mask spec as attributes."""
    view = dataset.sel(hole=hole)
    view = view.dropna("latent_set", subset=["latents_touched"])
    view = view.dropna("step", how="all", subset=["masked_rmse_trace"])
    numbers = {name: view[name].item() for name in HOLE_NUMBERS}
    numbers["steps"], numbers["reach"] = int(numbers["steps"]), int(numbers["reach"])
    view = view.drop_vars([*HOLE_NUMBERS, "hole"])
    view["latents_touched"] = view.latents_touched.astype(int)
    return view.assign_attrs(numbers | {"mask": str(hole)})


def parse_mask(spec: str, H: int, W: int | None = None) -> np.ndarray:
    """The missing pixels as an (H, W) boolean array (W = H when omitted), from a square's spec
    or a .npy/.png file."""
    W = H if W is None else W
    spec = str(spec).strip()
    square = _SQUARE.fullmatch(spec)
    if square:
        size_text, row_text, col_text = square.groups()
        size = int(size_text) if size_text else min(H, W) // 4
        row = int(row_text) if row_text else (H - size) // 2
        col = int(col_text) if col_text else (W - size) // 2
        if not 1 <= size < min(H, W) or row + size > H or col + size > W:
            raise ValueError(
                f"inpaint.mask {spec!r} does not fit an {H}×{W} image: need "
                f"1 ≤ SIZE < {min(H, W)}, ROW + SIZE ≤ {H} and COL + SIZE ≤ {W}"
            )
        mask = np.zeros((H, W), dtype=bool)
        mask[row : row + size, col : col + size] = True
        return mask
    path = Path(spec)
    if path.suffix.lower() not in (".npy", ".png"):
        raise ValueError(f"inpaint.mask must be {MASK_FORMS}; got {spec!r}")
    if not path.is_file():
        raise ValueError(f"inpaint.mask file {spec} does not exist")
    if path.suffix.lower() == ".png":
        mask = np.asarray(Image.open(path).convert("L")) >= 128
    else:
        values = np.load(path)
        if values.dtype != bool and not np.isin(values, (0, 1)).all():
            raise ValueError(f"inpaint.mask {spec} must hold booleans or 0/1 values")
        mask = values.astype(bool)
    if mask.shape != (H, W):
        raise ValueError(f"inpaint.mask {spec} is {mask.shape}, the model needs ({H}, {W})")
    if mask.all() or not mask.any():
        raise ValueError(f"inpaint.mask {spec} must mark some pixels missing and some known")
    return mask


def cone_latents(model: RGFlowModel, mask: np.ndarray) -> np.ndarray:
    """Boolean array of data_shape: the latents that can move any masked pixel (any channel)."""
    entries = np.flatnonzero(np.broadcast_to(mask, model.data_shape))
    hits = np.asarray(model.cone_matrix()[:, entries].sum(axis=1)).ravel()
    return (hits > 0).reshape(model.data_shape)


def inpaint_latents(
    model: RGFlowModel,
    z_start: torch.Tensor,
    free: torch.Tensor,
    truth: torch.Tensor,
    missing: torch.Tensor,
    steps: int,
    lr: float,
    noise: float,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, np.ndarray]:
    """Adam on the `free` latents only; the rest stay bit-for-bit at z_start.

    `free` is a boolean mask of data_shape, or of z_start's shape for a different set per image.
    Maximises log q(decode(z)) − Σ_known (image − truth)² / 2σ² per image (see the module
    docstring). Returns the final latents and the masked RMSE before each step, (steps, batch).
    `progress` (RunContext.progress) wraps the loop over steps.
    """
    free = free.to(z_start.device).expand_as(z_start)
    fixed = z_start.detach()
    values = fixed.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([values], lr=lr)  # elementwise: latents held fixed get grad 0
    known = ~missing
    trace = []
    frozen = [p for p in model.parameters() if p.requires_grad]
    try:
        for p in frozen:  # no graph through the weights: ~20% of a step on small models
            p.requires_grad_(False)
        for _ in progress(range(steps), desc="inpaint: Adam steps") if progress else range(steps):
            z = torch.where(free, values, fixed)
            x, logdet = model.decode(z)
            image = to_data_space(model, x)
            misfit = ((image - truth) ** 2 * known).flatten(1).sum(1)
            loss = (logdet - model.prior.log_prob(z) + misfit / (2 * noise**2)).sum()
            (values.grad,) = torch.autograd.grad(loss, values)  # leaves the model's .grad alone
            optimizer.step()
            trace.append(rmse(image.detach().clamp(0, 1), truth, missing).cpu().numpy())
    finally:
        for p in frozen:
            p.requires_grad_(True)
    with torch.no_grad():
        return torch.where(free, values, fixed), np.array(trace).reshape(steps, len(z_start))


def rmse(images: torch.Tensor, truth: torch.Tensor, where: torch.Tensor) -> torch.Tensor:
    """Root mean squared difference over the entries `where` is True, per image."""
    squared = ((images - truth) ** 2 * where).flatten(1).sum(1)
    return (squared / where.sum()).sqrt()


@dataclass
class _Fill:
    """One method's outcome for all images."""

    images: torch.Tensor
    log_prob: torch.Tensor
    trace: np.ndarray


def _steps_within(steps: int, budget: float, step_seconds: float) -> int:
    """The requested steps, or as many as fit in `budget` seconds (at least one; 0: no limit)."""
    if budget <= 0:
        return steps
    return max(1, min(steps, int(budget / max(step_seconds, 1e-9))))


def _require_prior_density(model: RGFlowModel, z: torch.Tensor) -> None:
    try:
        model.prior.log_prob(z[:1])
    except NotImplementedError:
        raise ValueError(
            f"inpaint maximises the prior's log-density, and this model's prior "
            f"({type(model.prior).__name__}) has none: give it a log_density method"
        ) from None


def _numpy(tensor: torch.Tensor, dtype: type = np.float64) -> np.ndarray:
    return tensor.detach().cpu().numpy().astype(dtype)


def _dataset(
    model: RGFlowModel,
    mask: np.ndarray,
    cone: np.ndarray,
    truth: torch.Tensor,
    start: torch.Tensor,
    fills: dict[str, _Fill],
) -> xr.Dataset:
    missing = torch.as_tensor(np.broadcast_to(mask, model.data_shape).copy(), device=truth.device)
    rmse_units = {"units": "1", "long_name": "RMSE in [0,1] pixel units"}
    images = ("image", "channel", "y", "x")

    methods = list(fills)

    def per_method(value) -> np.ndarray:
        return np.stack([value(fills[method]) for method in methods])

    return xr.Dataset(
        {
            "inpainted": (
                ("latent_set", *images),
                per_method(lambda fill: _numpy(fill.images, np.float32)),
                {"units": "1", "long_name": "decoded image after the optimisation"},
            ),
            "truth": (images, _numpy(truth, np.float32), {"units": "1"}),
            "start": (
                images,
                _numpy(start, np.float32),
                {"units": "1", "long_name": "the input with its hole filled, before optimising"},
            ),
            "mask": (("y", "x"), mask, {"long_name": "missing pixels"}),
            "masked_rmse": (
                ("latent_set", "image"),
                per_method(lambda fill: _numpy(rmse(fill.images, truth, missing))),
                rmse_units | {"long_name": "RMSE on the masked pixels"},
            ),
            "mean_masked_rmse": (
                "latent_set",
                per_method(lambda fill: np.nanmean(_numpy(rmse(fill.images, truth, missing)))),
                rmse_units
                | {
                    "long_name": "RMSE on the masked pixels, mean over the fills that stayed finite"
                },
            ),
            "diverged": (
                "latent_set",
                per_method(
                    lambda fill: int((~torch.isfinite(fill.images)).flatten(1).any(1).sum())
                ),
                {"long_name": "inputs whose fill became NaN/Inf (the decoder overflowed)"},
            ),
            "known_rmse": (
                ("latent_set", "image"),
                per_method(lambda fill: _numpy(rmse(fill.images, truth, ~missing))),
                rmse_units | {"long_name": "RMSE on the known pixels"},
            ),
            "start_masked_rmse": (
                "image",
                _numpy(rmse(start, truth, missing)),
                rmse_units | {"long_name": "RMSE of the initial fill on the masked pixels"},
            ),
            "log_prob": (
                ("latent_set", "image"),
                per_method(lambda fill: _numpy(fill.log_prob)),
                {"units": "nats", "long_name": "log q(x) of the result, model space"},
            ),
            "masked_rmse_trace": (
                ("latent_set", "step", "image"),
                per_method(lambda fill: fill.trace.astype(np.float64)),
                rmse_units | {"long_name": "RMSE on the masked pixels before each step"},
            ),
            "latents_touched": (
                "latent_set",
                [{"cone": int(cone.sum()), "all": model.n_latents}[m] for m in methods],
                {"long_name": "latents the optimiser may change"},
            ),
            "cone_latents": (
                "level",
                np.bincount(model.latent_level[cone], minlength=model.n_levels),
                {"long_name": "latents in the mask's causal cone"},
            ),
            "level_latents": ("level", model.latents_per_level(), {"long_name": "latents"}),
        },
        coords={
            "latent_set": (
                "latent_set",
                methods,
                {"long_name": "which latents are optimised"},
            ),
            "image": ("image", np.arange(len(truth)), {"long_name": "index into the inputs"}),
            "step": np.arange(len(fills[methods[0]].trace)),
            "level": ("level", np.arange(model.n_levels), {"long_name": "RG level (0 = finest)"}),
        },
    )
