"""How summary shows its results, from the stored dataset alone: each level's pooled std and
excess kurtosis against the prior's, the table of per-level statistics, and the invertibility
check in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def summary_section(dataset: xr.Dataset) -> Section:
    """The report section: the per-level figure and table, and the invertibility in words."""
    aligned = bool(dataset.attrs.get("aligned", 0))
    columns = ["latents", "mean", "std", "excess_kurtosis"]
    if aligned:
        columns += ["std_unaligned", "excess_kurtosis_unaligned"]
    frame = dataset[columns].to_dataframe()
    error = float(dataset.max_reconstruction_error)
    residual = float(dataset.max_logdet_residual)
    empty = dataset.attrs.get("empty_comparison", "")
    text = (
        f"Invertibility on {dataset.attrs['samples']} inputs: max |decode(encode(x)) − x| = "
        f"{error:.3g}, max log-det residual = {residual:.3g}."
    )
    if "alignment" in dataset.attrs:
        text += f" Latent statistics: {dataset.attrs['alignment']}"
        text += " (the columns *_unaligned: as drawn)." if aligned else "."
    if empty:
        text += (
            f"\n\nNo test of the latents here: {empty}. Run with --data to compare the "
            "encoded data with the prior."
        )
    figure = figure_of(plot_statistics(dataset))
    return Section(
        title="Summary",
        how_to_read=(
            "Encoded data of a well-trained RG flow have the prior's spread and tails at every "
            "level (dashed lines); a level that differs is where the flow misfits. A marginal "
            "check: it cannot show whether the latents are independent."
        ),
        figures=[Figure(figure, f"Per-level latent statistics of {dataset.attrs['source']}.")],
        tables=[
            Table(
                pd.DataFrame(frame),
                "Per-level statistics of the encoded inputs (std and kurtosis pooled over the "
                "level after centring each latent on its own mean)",
            )
        ],
        text=text,
    )


def plot_statistics(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """Each level's pooled std and excess kurtosis as bars, the prior's as a dashed line.
    `ax`: two Axes."""
    axes = axes_grid(ax, 1, 2, figsize=(8, 3))[0]
    for axis, name, prior in [
        (axes[0], "std", dataset.attrs["prior_std"]),
        (axes[1], "excess_kurtosis", dataset.attrs["prior_excess_kurtosis"]),
    ]:
        axis.bar(dataset.level, dataset[name], color="tab:blue")
        axis.axhline(prior, color="black", linestyle="--", label=f"{dataset.attrs['prior']} prior")
        axis.set_xlabel("RG level (0 = finest)")
        axis.set_title(f"pooled {name.replace('_', ' ')}")
        axis.set_xticks(dataset.level.values)
    axes[0].legend(frameon=False)
    return axes
