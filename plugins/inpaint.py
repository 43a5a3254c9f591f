"""inpaint: fill a hole in known images by moving only the latents that can reach the hole.

A latent outside the structural causal cone of the masked pixels cannot move them. Every block
mixes its entries both ways, so the encoder retraces the decoder's paths backwards and computes such
a latent from known pixels alone: the initial fill does not leak into it, and the truth stays
reachable with it held fixed. The cone method optimises only the cone's latents (a count that grows
like log L for a fixed hole); the baseline optimises all 3·L² of them.

Both maximise the same objective, a MAP estimate under the flow with Gaussian observation noise σ on
the known pixels:  log q(x) − Σ_known (image(x) − truth)² / 2σ²,  where x = decode(z),
log q(x) = log p(z) − log|det ∂x/∂z| is the flow's exact density in model space and image(x) the
image before clipping to [0, 1] (a clipped pixel would get no gradient back towards its truth).
Masked pixels enter only through log q. Known pixels may drift within ~σ, for the cone method only
where the cone's latents reach; every pixel they cannot reach stays exactly as encoded.

Both methods run as one batch (Adam is elementwise, so this is exactly two separate runs), and the
number of steps is cut to fit `budget` seconds from a timed first step, so a large model still
finishes; the dataset and the report say when that happened.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr
from PIL import Image

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.device import synchronize
from rginspect.jacobian import Progress, to_data_space
from rginspect.model import RGFlowModel

MASK_FORMS = (
    "square (centred, side min(H, W)/4), square:SIZE, square:SIZE@ROW,COL, or a .npy/.png file"
)
METHODS = ("cone", "all")
METHOD_NAMES = {"cone": "cone latents", "all": "all latents"}
GREY = 0.5
_SQUARE = re.compile(r"square(?::(\d+)(?:@(\d+),(\d+))?)?")


class Inpaint(Analysis):
    name = "inpaint"
    description = "Fill a masked hole by optimising only the latents in its causal cone, vs all"
    version = "3"
    parameters = {
        "mask": Parameter(
            str,
            "square",
            f"the missing pixels: {MASK_FORMS} (True/white = missing); several holes, each "
            "filled on its own, separated by ';' (square:4;square:8)",
        ),
        "inputs": Parameter(int, 4, "how many inputs to inpaint"),
        "steps": Parameter(int, 200, "Adam steps per method (fewer if they would exceed budget)"),
        "budget": Parameter(
            float, 60.0, "seconds the optimisation may take, from a timed first step (0: no limit)"
        ),
        "lr": Parameter(float, 0.05, "Adam learning rate (latents have prior std ~1)"),
        "noise": Parameter(
            float, 0.05, "observation noise σ of the known pixels, in [0,1] pixel units"
        ),
        "init": Parameter(str, "grey", "what fills the hole at the start: grey (0.5) or noise"),
    }
    domains = ("image",)

    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        steps, lr, noise = settings["steps"], settings["lr"], settings["noise"]
        if settings["inputs"] < 1 or steps < 1 or not lr > 0 or not noise > 0:
            raise ValueError(
                "inpaint needs inputs ≥ 1, steps ≥ 1, lr > 0 and noise > 0; got "
                f"{settings['inputs']}, {steps}, {lr}, {noise}"
            )
        if settings["init"] not in ("grey", "noise"):
            raise ValueError(f"inpaint.init must be grey or noise, not {settings['init']!r}")
        specs = [spec.strip() for spec in str(settings["mask"]).split(";")]
        if len(set(specs)) < len(specs):
            raise ValueError(f"inpaint.mask {settings['mask']!r} names a hole twice")
        masks = [parse_mask(spec, *model.data_shape[1:]) for spec in specs]  # all checked first
        x_truth, _, source = context.model_inputs(settings["inputs"])
        holes = [self._fill(context, x_truth, mask) for mask in masks]
        shared = holes[0][list(SHARED)]  # the inputs themselves: the same for every hole
        per_hole = xr.concat(
            [hole.drop_vars(SHARED) for hole in holes],
            dim=pd.Index(specs, name="hole"),
            data_vars="all",
            join="outer",  # a hole that every latent reaches runs the all-latent search alone
        )
        return xr.merge([per_hole, shared]).assign_attrs(
            source=source,
            mask=settings["mask"],
            steps_requested=steps,
            budget=settings["budget"],
            lr=lr,
            noise=noise,
            init=settings["init"],
            n_entries=model.n_latents,
        )

    def _fill(self, context: RunContext, x_truth: torch.Tensor, mask: np.ndarray) -> xr.Dataset:
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
            "steps": (steps_used, "Adam steps run (fewer than asked when the budget cut them)"),
            "step_seconds": (step_seconds, "seconds of the timed first step"),
            "seconds": (seconds, "seconds of the optimisation, both methods in one batch"),
            "reach": (int(reach.sum()), "data entries the cone's latents can move"),
        }
        for name, (value, meaning) in numbers.items():
            dataset[name] = ((), value, {"long_name": meaning})
        return dataset

    def render(self, dataset: xr.Dataset) -> Section:
        views = [hole_view(dataset, hole) for hole in dataset.hole.values]
        several = len(views) > 1
        figures, tables = [], []
        for view in views:
            hole = f" Hole {view.attrs['mask']}." if several else ""
            figures += [
                Figure(
                    _image_grid(view),
                    f"Rows: {view.sizes['image']} inputs from {view.attrs['source']}. Columns: "
                    "the truth, the input with its hole filled, and the fills of the methods "
                    f"after {view.attrs['steps']} Adam steps.{hole}",
                ),
                Figure(
                    _convergence(view),
                    "Masked RMSE during the optimisation, mean over the inputs; dotted: the "
                    f"start.{hole}",
                ),
            ]
            tables += [
                Table(
                    _method_table(view), f"Mean over the inputs; RMSE in [0,1] pixel units.{hole}"
                ),
                Table(_per_image_table(view), f"Masked RMSE per input.{hole}"),
            ]
        return Section(
            title="Inpainting",
            how_to_read=(
                "A hole (outlined) is filled by maximising the flow's log-density with the known "
                "pixels held near their true values, moving either only the latents in the hole's "
                "causal cone or all latents. Lower masked RMSE is a better fill; lower known RMSE "
                "means the rest of the image was left alone."
            ),
            figures=figures,
            tables=tables,
            text="\n\n".join(_cone_text(view) for view in views),
        )


SHARED = ("truth", "truth_log_prob", "level_latents")  # the same for every hole
HOLE_NUMBERS = ("steps", "step_seconds", "seconds", "reach")  # one value per hole


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


def _method_table(view: xr.Dataset) -> pd.DataFrame:
    methods = [str(m) for m in view.latent_set.values]
    table = pd.DataFrame(
        {
            "masked RMSE": [float(view.start_masked_rmse.mean())]
            + [float(view.mean_masked_rmse.sel(latent_set=m)) for m in methods],
            "known RMSE": [_known_rmse(view.start, view)]
            + [float(view.known_rmse.sel(latent_set=m).mean()) for m in methods],
            "latents touched": [0] + [int(view.latents_touched.sel(latent_set=m)) for m in methods],
            "log q(x) (nats/dim)": [float(view.start_log_prob.mean())]
            + [float(view.log_prob.sel(latent_set=m).mean()) for m in methods],
        },
        index=pd.Index(
            [f"{view.attrs['init']} fill (start)"] + [METHOD_NAMES[m] for m in methods],
            name="method",
        ),
    )
    table["log q(x) (nats/dim)"] /= view.attrs["n_entries"]
    return table


def _per_image_table(view: xr.Dataset) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "input": view.image.values,
            f"{view.attrs['init']} fill": view.start_masked_rmse.values,
            **{
                METHOD_NAMES[str(m)]: view.masked_rmse.sel(latent_set=m).values
                for m in view.latent_set.values
            },
        }
    )


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


def _known_rmse(images: xr.DataArray, dataset: xr.Dataset) -> float:
    """Mean over the images of the RMSE on the known pixels, from the stored arrays alone."""
    squared = ((images - dataset.truth) ** 2).where(dataset.mask == 0)  # bool or stored int8
    return float(np.sqrt(squared.mean(["channel", "y", "x"])).mean())


def _image_grid(dataset: xr.Dataset) -> plt.Figure:
    columns = [
        ("truth", dataset.truth.values),
        (f"input ({dataset.attrs['init']} fill)", dataset.start.values),
        *[
            (METHOD_NAMES[str(m)], dataset.inpainted.sel(latent_set=m).values)
            for m in dataset.latent_set.values
        ],
    ]
    rows = dataset.sizes["image"]
    figure, axes = plt.subplots(
        rows, len(columns), figsize=(1.6 * len(columns) + 0.6, 1.6 * rows + 0.5), squeeze=False
    )
    mask = dataset.mask.values.astype(float)
    for j, (title, pictures) in enumerate(columns):
        shown = np.moveaxis(pictures, 1, -1)
        shown = shown if shown.shape[-1] == 3 else shown.mean(-1)
        for i in range(rows):
            axis = axes[i, j]
            axis.imshow(shown[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if j > 0:
                axis.contour(mask, levels=[0.5], colors="white", linewidths=0.6, alpha=0.7)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, j].set_title(title, fontsize=9)
    for i in range(rows):
        axes[i, 0].set_ylabel(f"input {int(dataset.image[i])}", fontsize=8)
    figure.tight_layout()
    return figure


def _convergence(dataset: xr.Dataset) -> plt.Figure:
    figure, axis = plt.subplots(figsize=(5, 2.8))
    for method in dataset.latent_set.values:
        trace = dataset.masked_rmse_trace.sel(latent_set=method).mean("image")
        axis.plot(dataset.step, trace, label=METHOD_NAMES[str(method)])
    axis.axhline(float(dataset.start_masked_rmse.mean()), color="black", linestyle=":")
    axis.set_xlabel("Adam step")
    axis.set_ylabel("masked RMSE")
    axis.legend(frameon=False)
    figure.tight_layout()
    return figure


def _cone_text(dataset: xr.Dataset) -> str:
    per_level = ", ".join(
        f"level {int(level)}: {int(cone)} of {int(total)}"
        for level, cone, total in zip(
            dataset.level.values,
            dataset.cone_latents.values,
            dataset.level_latents.values,
            strict=True,
        )
    )
    holes = int(dataset.mask.sum()) * dataset.sizes["channel"]
    truth = float(dataset.truth_log_prob.mean()) / dataset.attrs["n_entries"]
    entries, moved = dataset.attrs["n_entries"], dataset.attrs["reach"]
    if "cone" not in dataset.latent_set.values:
        reach = ""
    elif moved < entries:
        reach = (
            f"Those latents can move {moved} of {entries} data entries; the other entries keep "
            "their encoded values exactly. "
        )
    else:
        reach = (
            f"Through the coarsest levels those latents can move all {entries} data entries, so "
            "the known pixels are held only by the data-fit term. "
        )
    attrs = dataset.attrs
    if "cone" in dataset.latent_set.values:
        search = (
            "Both methods decode the whole image at every step, so a step costs the same; the "
            "cone method searches a smaller space."
        )
    else:
        search = (
            "Every latent is in the cone (a model without block tables, or a hole that every "
            "latent reaches), so the cone method would be the same search as all latents: only "
            "that one was run."
        )
    steps = f"{attrs['steps']} Adam steps took {attrs['seconds']:.1f} s for all inputs" + (
        " (all methods in one batch)." if dataset.sizes["latent_set"] > 1 else "."
    )
    if attrs["steps"] < attrs["steps_requested"]:
        steps += (
            f" Cut from {attrs['steps_requested']} steps to fit the {attrs['budget']:g} s budget "
            f"({attrs['step_seconds']:.2f} s per step): set -p inpaint.budget=0 for all of them."
        )
    diverged = [
        f"{int(dataset.diverged.sel(latent_set=m))} of {dataset.sizes['image']} by "
        f"{METHOD_NAMES[str(m)]}"
        for m in dataset.latent_set.values
        if int(dataset.diverged.sel(latent_set=m))
    ]
    if diverged:
        steps += (
            f" Fills that became NaN/Inf as the decoder overflowed: {', '.join(diverged)}; the "
            "means are over the other inputs."
        )
    return (
        f"The hole ({holes} entries, mask {attrs['mask']}) has "
        f"{int(dataset.cone_latents.sum())} of {entries} latents in its causal cone ({per_level}). "
        f"{reach}{search} {steps} "
        f"log q of the true images averages {truth:.3f} nats/dim (model space): a fill above it "
        "sits nearer the flow's mode than the truth does, as maximum-likelihood fills tend to."
    )
