"""How traverse shows its results, from the stored dataset alone: a grid of sweeps per level
(latents × prior quantiles, and where each sweep changes pixels), and a table of the swept
latents with why they were chosen."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.images import display_image
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def traverse_section(dataset: xr.Dataset) -> Section:
    """The report section: one sweep grid per level, the table of swept latents and how the
    values were chosen."""
    steps = dataset.sizes["step"]
    figures = []
    for level in np.unique(dataset.level.values):
        caption = (
            f"Level {level}, read like the grid of level {dataset.level.values.min()} above."
            if figures
            else f"Level {level}: each row sweeps one latent over {steps} prior quantiles, "
            "every other latent held at the source image's code. Orange frame: the step "
            "nearest the latent's own value z₀. Last column: the largest change of each "
            "pixel from the middle step (summed over channels)."
        )
        figures.append(Figure(figure_of(plot_sweeps(dataset, level=int(level))), caption))
    pictures = dataset.images.values
    swing = np.ptp(pictures, axis=1).max(axis=(1, 2, 3))
    table = pd.DataFrame(
        {
            "level": dataset.level.values,
            "latent (channel, row, col)": [
                f"({c}, {r}, {q})"
                for c, r, q in zip(
                    dataset.latent_channel.values,
                    dataset.latent_row.values,
                    dataset.latent_col.values,
                    strict=True,
                )
            ],
            "RF mass": dataset.rf_mass.values,
            "data spread (prior σ)": dataset.data_spread.values,
            "z₀": dataset.encoded_value.values,
            "largest pixel range over the sweep": swing,
        }
    ).set_index("level")
    span = dataset.attrs["span"]
    reach = float(np.abs(dataset.value).max()) / dataset.attrs["prior_std"]
    gifs = json.loads(dataset.attrs["gif_files"])
    text = (
        f"Latents: {dataset.attrs['selection']}. Values are the {dataset.attrs['prior']} "
        f"prior's quantiles at the probabilities a Gaussian gives to −{span:g}σ…+{span:g}σ, "
        f"which for this prior reach ±{reach:.2f} of its standard deviations. The other "
        f"latents come from input {dataset.attrs['image']} of {dataset.attrs['source']}; "
        f"decoding its code reproduces it to {float(dataset.reconstruction_error):.2g}."
    )
    if gifs:
        text += (
            f"\n\nAn animated GIF per latent is in the folder "
            f"{dataset.attrs['gif_folder']}/ beside results.nc: {', '.join(gifs)}."
        )
    return Section(
        title="Latent traversals",
        how_to_read=(
            "Each row changes one latent and nothing else, so the row shows what it draws: "
            "fine levels should move one small patch, coarse levels the whole image."
        ),
        figures=figures,
        tables=[Table(table, "The swept latents and why they were chosen")],
        text=text,
    )


def plot_sweeps(
    dataset: xr.Dataset, ax: Axes | np.ndarray | None = None, *, level: int | None = None
) -> np.ndarray:
    """The sweeps of one level's latents (the finest swept level by default): a row per latent,
    a column per prior quantile (orange frame: the step nearest the latent's own value), and a
    last column of where the sweep changes pixels, with its colour bar. `ax`: latents of the
    level × (steps + 1) Axes; on a figure of its own, a title names the level."""
    swept = np.unique(dataset.level.values)
    level = int(swept.min()) if level is None else level
    if level not in swept:
        raise ValueError(
            f"traverse swept no latent of level {level}; pick one of {', '.join(map(str, swept))}"
        )
    subset = dataset.isel(latent=dataset.level.values == level)
    rows, steps = subset.sizes["latent"], subset.sizes["step"]
    own_figure = ax is None
    axes = axes_grid(ax, rows, steps + 1, figsize=(0.95 * (steps + 1) + 1.5, 0.95 * rows + 0.9))
    images = subset.images.values
    pictures = display_image(images)
    change = np.abs(images - images[:, steps // 2 : steps // 2 + 1]).sum(2).max(1)
    values = subset.value.values
    for i in range(rows):
        nearest = int(np.argmin(np.abs(values - float(subset.encoded_value[i]))))
        for j in range(steps):
            axes[i, j].imshow(pictures[i, j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if j == nearest:
                for spine in axes[i, j].spines.values():
                    spine.set(color="tab:orange", linewidth=2.5)
        where = axes[i, steps]
        acts = where.imshow(change[i], cmap="magma", vmin=0, vmax=max(float(change[i].max()), 1e-6))
        bar = where.figure.colorbar(acts, ax=where, shrink=0.9, pad=0.04)
        bar.ax.tick_params(labelsize=6)
        where.set_xlabel(f"max {change[i].max():.2f}", fontsize=7)
        axes[i, 0].set_ylabel(
            f"({int(subset.latent_channel[i])}, {int(subset.latent_row[i])}, "
            f"{int(subset.latent_col[i])})\nz₀ = {float(subset.encoded_value[i]):+.2f}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=8,
        )
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    for j in range(steps):
        sigma = float(subset.sigma[j])
        axes[0, j].set_title(f"{sigma:+.1f}σ" if round(sigma, 1) else "0σ", fontsize=8)
        axes[-1, j].set_xlabel(f"z = {round(values[j], 2) + 0.0:+.2f}", fontsize=8)
    axes[0, steps].set_title("where it acts", fontsize=8)
    if own_figure:
        n_levels = dataset.attrs["n_levels"]
        name = "finest" if level == 0 else "coarsest" if level == n_levels - 1 else ""
        figure_of(axes).suptitle(
            f"Level {level}{f' ({name})' if name else ''}: latent (channel, row, col) × "
            "prior quantile",
            fontsize=9,
        )
    return axes
