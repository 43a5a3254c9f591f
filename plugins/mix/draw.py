"""How mix shows its results, from the stored dataset alone: the grid of mixes (a row per pair,
from image A through each cut to image B) and how far each cut lies from A and from B."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.images import display_image
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def mix_section(dataset: xr.Dataset) -> Section:
    """The report section: the grid of mixes, their distances to A and B per cut, and how well
    the two ends reproduce A and B."""
    n_levels = dataset.attrs["n_levels"]
    images = dataset.images.values
    a, b = pair_images(dataset)
    distance_a = np.abs(images - a[:, None]).mean(axis=(0, 2, 3, 4))
    distance_b = np.abs(images - b[:, None]).mean(axis=(0, 2, 3, 4))
    table = pd.DataFrame(
        {
            "cut h": dataset.cut.values,
            "levels from A": [_levels(h, n_levels) for h in dataset.cut.values],
            "levels from B": [_levels(0, h) for h in dataset.cut.values],
            "mean |mix − A|": distance_a,
            "mean |mix − B|": distance_b,
        }
    ).set_index("cut h")
    end_a = float(np.abs(images[:, 0] - a).max())
    end_b = float(np.abs(images[:, -1] - b).max())
    return Section(
        title="Scale mixing",
        how_to_read=(
            "Each row mixes two images: moving right, more of the fine levels come from B "
            "while the coarse levels stay A's. Clean scale separation keeps A's layout and "
            "colours and swaps in B's small details."
        ),
        figures=[
            Figure(
                figure_of(plot_mixes(dataset)),
                f"Rows: pairs of inputs from {dataset.attrs['source']}. Columns: image A, "
                "decodes of A's latents on levels ≥ h with B's on levels < h, image B.",
            )
        ],
        tables=[Table(table, "Mean absolute pixel difference of the mixes to A and to B")],
        text=(
            f"Cut 0 (all from A) reproduces A to {end_a:.2g} and cut {n_levels} (all from B) "
            f"reproduces B to {end_b:.2g} (max absolute pixel difference), so the columns "
            "between them differ only by which levels came from which image."
        ),
    )


def pair_images(dataset: xr.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The source images A and B of every pair, (pair, C, H, W) each."""
    by_input = dict(zip(dataset.input_index.values.tolist(), dataset.sources.values, strict=True))
    a = np.stack([by_input[i] for i in dataset.image_a.values.tolist()])
    b = np.stack([by_input[i] for i in dataset.image_b.values.tolist()])
    return a, b


def plot_mixes(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """A row per pair: image A, the decodes of A's coarse levels with B's fine ones for each
    inner cut, image B. `ax`: pairs × (levels + 1) Axes."""
    n_levels = dataset.attrs["n_levels"]
    a, b = pair_images(dataset)
    inner = range(1, n_levels)  # cuts 0 and n_levels are A and B again
    columns = [("A", a), *[(_cut_title(h), dataset.images.values[:, h]) for h in inner], ("B", b)]
    rows = dataset.sizes["pair"]
    axes = axes_grid(ax, rows, len(columns), figsize=(1.35 * len(columns) + 1, 1.35 * rows + 0.8))
    for j, (title, pictures) in enumerate(columns):
        shown = display_image(pictures)
        for i in range(rows):
            axis = axes[i, j]
            axis.imshow(shown[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, j].set_title(title, fontsize=8)
    for i in range(rows):
        axes[i, 0].set_ylabel(
            f"A = input {int(dataset.image_a[i])}\nB = input {int(dataset.image_b[i])}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=8,
        )
    return axes


def _levels(start: int, stop: int) -> str:
    if start >= stop:
        return "none"
    return str(start) if stop - start == 1 else f"{start}–{stop - 1}"


def _cut_title(h: int) -> str:
    return f"levels ≥ {h} from A\nlevels < {h} from B"
