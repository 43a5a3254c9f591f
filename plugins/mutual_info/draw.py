"""How mutual_info shows its results, from the stored dataset alone: pair MI against separation per
level, between levels, and the Gaussian against the kNN estimate; the per-level table of total
correlation and mean MI; the floor and the kNN check in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import seaborn as sns
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def mutual_info_section(dataset: xr.Dataset) -> Section:
    """The report section: the figure, the per-level table, and the floor and kNN check."""
    aligned = bool(dataset.attrs["aligned"])
    blocked = dataset.level.values[dataset.total_correlation_blocks.values > 1]
    count, chance = int(dataset.pairs_above_floor), float(dataset.pairs_by_chance)
    return Section(
        title="Mutual information between latents",
        how_to_read=(
            "A perfect RG leaves discarded latents independent: no more pairs above the noise "
            "floor than chance and total correlation at its floor. MI that decays slowly with "
            "separation is structure the flow left in the latents."
        ),
        figures=[
            Figure(
                figure_of(plot_information(dataset)),
                f"Gaussian estimates on {dataset.attrs['samples']} encoded "
                f"{dataset.attrs['source']} ({'aligned' if aligned else 'as drawn'}).",
            )
        ],
        tables=[level_table(dataset)],
        text=(
            f"{dataset.attrs['alignment'][0].upper()}{dataset.attrs['alignment'][1:]}. "
            f"{count} pairs lie above the floor (the 95th percentile of the null ensembles, "
            f"which move each site's series along its chains: {dataset.attrs['chains']}), "
            f"{chance:.0f} by chance ({float(dataset.excess):+.1f} null spreads). "
            f"The kNN estimator exceeds the Gaussian one by "
            f"{float(dataset.knn_excess):+.4f} ± {float(dataset.knn_excess_error):.4f} nats "
            "per scalar pair beyond what both read on the null ensembles (positive: "
            "dependence a Gaussian fit misses)."
            + (
                f" Level(s) {', '.join(map(str, blocked))}: too few samples per dimension "
                "for one estimate, so the total correlation is summed over blocks of "
                "contiguous sites, a lower bound that misses the dependence between blocks."
                if len(blocked)
                else ""
            )
        ),
    )


def plot_information(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """Mean pair MI against separation within each level (the positive means, with the median
    noise floor), the mean pair MI between levels, and the Gaussian against the kNN estimate on
    scalar pairs coloured by distance. `ax`: three Axes."""
    axes = axes_grid(ax, 1, 3, figsize=(13, 3.6))[0]
    for level in dataset.level.values:
        curve = dataset.mi_vs_distance.sel(level=level)
        shown = np.isfinite(curve.values) & (curve.values > 0)
        axes[0].plot(dataset.distance[shown], curve[shown], "o-", ms=3, label=f"level {level}")
    axes[0].axhline(float(dataset.noise_floor), ls="--", color="gray", label="noise floor (median)")
    axes[0].set_yscale("log")
    axes[0].set_xlabel("separation (sites, periodic)")
    axes[0].set_ylabel("mean MI, bias removed (nats)")
    axes[0].legend(fontsize=7)
    sns.heatmap(
        dataset.mi_between_levels.to_pandas(), annot=True, fmt=".2g", cmap="viridis",
        ax=axes[1], cbar_kws={"label": "nats"},
    )  # fmt: skip
    axes[1].set_xlabel("level")
    axes[1].set_ylabel("level")
    axes[1].set_title("mean pair MI between levels", fontsize=9)
    axes[2].scatter(dataset.gaussian_mi_scalar, dataset.knn_mi, s=8, c=dataset.pair_distance)
    values = np.concatenate([dataset.gaussian_mi_scalar.values, dataset.knn_mi.values])
    low, top = float(min(values.min(), 0)), float(max(values.max(), 1e-3))
    axes[2].plot([low, top], [low, top], ls=":", color="gray")
    axes[2].set_xlabel("Gaussian MI (nats)")
    axes[2].set_ylabel("kNN MI (nats)")
    axes[2].set_title("estimators on scalar pairs (colour: distance)", fontsize=9)
    return axes


def level_table(dataset: xr.Dataset) -> Table:
    """Per level: total correlation beside its null floor, and the mean pair MI (and both for the
    fields as drawn, where aligned)."""
    aligned = bool(dataset.attrs["aligned"])
    columns = {
        "level": dataset.level.values,
        "total correlation (nats)": [
            value if np.isfinite(value) else f"not estimated: {reason}"
            for value, reason in zip(
                dataset.total_correlation.values,
                dataset.total_correlation_reason.values,
                strict=True,
            )
        ],
        "null floor (nats)": [
            f"{mean:.3g} ± {spread:.2g}"
            for mean, spread in zip(
                dataset.total_correlation_floor.values,
                dataset.total_correlation_floor_error.values,
                strict=True,
            )
        ],
        "per latent (nats)": dataset.total_correlation_per_latent.values,
        "mean pair MI (nats)": dataset.mean_mi.values,
        "samples per dimension": dataset.samples_per_dimension.values,
        "blocks": dataset.total_correlation_blocks.values,
    }
    if aligned:
        columns["total correlation as drawn"] = dataset.unaligned_total_correlation.values
        columns["mean pair MI as drawn"] = dataset.unaligned_mean_mi.values
    return Table(
        pd.DataFrame(columns),
        "Per level: total correlation (Gaussian fit with its exact small-sample bias "
        "subtracted) beside the same estimator on the null ensembles (independent "
        "latents with the same time correlation), and the mean pair MI"
        + ("; 'as drawn': fields not turned to the flow's direction" if aligned else ""),
    )
