"""How inpaint shows its results, from the stored dataset alone, hole by hole: the fills beside
the truth, the masked RMSE during the optimisation, tables of the methods and of each input, and
the size of the hole's causal cone."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.images import display_image
from rginspect.plotting import axes_grid, figure_of

from .compute import hole_view

if TYPE_CHECKING:
    from matplotlib.axes import Axes

METHOD_NAMES = {"cone": "cone latents", "all": "all latents"}


def inpaint_section(dataset: xr.Dataset) -> Section:
    """The report section: per hole, the fills and their convergence, the tables of methods and
    inputs, and what the hole's cone holds."""
    holes = [str(hole) for hole in dataset.hole.values]
    views = [hole_view(dataset, hole) for hole in holes]
    several = len(views) > 1
    figures, tables = [], []
    for name, view in zip(holes, views, strict=True):
        hole = f" Hole {view.attrs['mask']}." if several else ""
        figures += [
            Figure(
                figure_of(plot_fills(dataset, hole=name)),
                f"Rows: {view.sizes['image']} inputs from {view.attrs['source']}. Columns: "
                "the truth, the input with its hole filled, and the fills of the methods "
                f"after {view.attrs['steps']} Adam steps.{hole}",
            ),
            Figure(
                figure_of(plot_convergence(dataset, hole=name)),
                "Masked RMSE during the optimisation, mean over the inputs; dotted: the "
                f"start.{hole}",
            ),
        ]
        tables += [
            Table(_method_table(view), f"Mean over the inputs; RMSE in [0,1] pixel units.{hole}"),
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


def plot_fills(
    dataset: xr.Dataset, ax: Axes | np.ndarray | None = None, *, hole: str | None = None
) -> np.ndarray:
    """One hole's fills (the first hole by default): a row per input, with the truth, the input
    with its hole filled, and the fill of each method; the hole outlined. `ax`: inputs ×
    (2 + methods) Axes."""
    view = _one_hole(dataset, hole)
    columns = [
        ("truth", view.truth.values),
        (f"input ({view.attrs['init']} fill)", view.start.values),
        *[
            (METHOD_NAMES[str(m)], view.inpainted.sel(latent_set=m).values)
            for m in view.latent_set.values
        ],
    ]
    rows = view.sizes["image"]
    axes = axes_grid(ax, rows, len(columns), figsize=(1.6 * len(columns) + 0.6, 1.6 * rows + 0.5))
    mask = view.mask.values.astype(float)
    for j, (title, pictures) in enumerate(columns):
        shown = display_image(pictures)
        for i in range(rows):
            axis = axes[i, j]
            axis.imshow(shown[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if j > 0:
                axis.contour(mask, levels=[0.5], colors="white", linewidths=0.6, alpha=0.7)
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, j].set_title(title, fontsize=9)
    for i in range(rows):
        axes[i, 0].set_ylabel(f"input {int(view.image[i])}", fontsize=8)
    return axes


def plot_convergence(
    dataset: xr.Dataset, ax: Axes | None = None, *, hole: str | None = None
) -> Axes:
    """One hole's masked RMSE before each Adam step, mean over the inputs, per method (the first
    hole by default); dotted: the initial fill's. `ax`: one Axes."""
    view = _one_hole(dataset, hole)
    axis = axes_grid(ax, figsize=(5, 2.8))[0, 0]
    for method in view.latent_set.values:
        trace = view.masked_rmse_trace.sel(latent_set=method).mean("image")
        axis.plot(view.step, trace, label=METHOD_NAMES[str(method)])
    axis.axhline(float(view.start_masked_rmse.mean()), color="black", linestyle=":")
    axis.set_xlabel("Adam step")
    axis.set_ylabel("masked RMSE")
    axis.legend(frameon=False)
    return axis


def _one_hole(dataset: xr.Dataset, hole: str | None) -> xr.Dataset:
    holes = [str(name) for name in dataset.hole.values]
    hole = holes[0] if hole is None else hole
    if hole not in holes:
        raise ValueError(f"inpaint filled no hole {hole!r}; pick one of {', '.join(holes)}")
    return hole_view(dataset, hole)


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


def _known_rmse(images: xr.DataArray, dataset: xr.Dataset) -> float:
    """Mean over the images of the RMSE on the known pixels, from the stored arrays alone."""
    squared = ((images - dataset.truth) ** 2).where(dataset.mask == 0)  # bool or stored int8
    return float(np.sqrt(squared.mean(["channel", "y", "x"])).mean())


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
