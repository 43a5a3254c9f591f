"""How disentangle shows its results, from the stored dataset alone: heat maps of each factor's
R² per level, the latent activity per level, and each factor's best-predicting level."""

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

NO_READOUT_R2 = 0.05  # below this at every level, no level is named as the best


def disentangle_section(dataset: xr.Dataset) -> Section:
    """The report section: the R² of each factor per level (with MSDS labels) and the latent
    activity per level, their tables and how to read them."""
    activity = figure_of(plot_activity(dataset))
    frame = dataset[["latents", "active_fraction", "activity_ratio"]].to_dataframe()
    tables = [Table(frame, "Latent activity per level (variance ratio 1 = the prior's)")]
    source, samples = dataset.attrs["source"], dataset.attrs["samples"]
    activity_caption = (
        f"Encoded variance of each latent over {samples} inputs ({source}) divided by the "
        f"{dataset.attrs['prior']} prior's variance; active: ratio > "
        f"{dataset.attrs['active_threshold']}."
    )
    if "r2_all" not in dataset:
        return Section(
            title="Disentanglement",
            how_to_read=(
                "Latents of a well-trained flow keep the prior's variance (ratio 1); levels of "
                "near-zero ratio encode nothing. R² of ground-truth factors needs MSDS labels."
            ),
            figures=[Figure(activity, activity_caption)],
            tables=tables,
            text=(
                f"These inputs ({source}) carry no MSDS ellipse labels, so only latent "
                "activity is shown; run with --data msds1 (or msds2) for the R² tables."
            ),
        )
    folds, budget = dataset.attrs["folds"], dataset.attrs["budget"]
    tables.insert(0, Table(_best_levels(dataset), "Each factor's best-predicting level"))
    cone_sizes = ", ".join(
        f"level {level}: {size:.0f}"
        for level, size in enumerate(dataset.cone_latents.mean("ellipse").values)
    )
    return Section(
        title="Disentanglement",
        how_to_read=(
            "Each cell: how well one RG level's latents predict a ground-truth factor "
            "(cross-validated R², 1 = perfectly). Scale separation shows as global factors "
            "best predicted from coarse levels (top rows) and local ones from fine levels."
        ),
        figures=[
            Figure(
                figure_of(plot_r2(dataset)),
                f"{folds}-fold cross-validated ridge R² on {samples} inputs ({source}, "
                f"{dataset.attrs['dataset_kind'].upper()} factors). Left: all latents of the "
                f"level; middle: {budget} random latents per level (mean of "
                f"{dataset.attrs['budget_draws']} draws), a per-latent comparison; right: "
                "only latents whose structural cone covers the ellipse's centre pixel.",
            ),
            Figure(activity, activity_caption),
        ],
        tables=tables,
        text=(
            "The probe is linear (ridge on standardized latents), so an R² near 0 means no "
            "linear read-out of the factor, not that the level holds none of it. Latents "
            f"per level whose cone covers an ellipse centre, on average: {cone_sizes}."
        ),
    )


def plot_r2(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """Cross-validated R² of each factor from each level (coarse levels on top), from all
    latents of the level, an equal budget of them, and those whose cone covers the ellipse;
    one colour scale (0 to 1) and its colour bar. `ax`: three Axes."""
    if "r2_all" not in dataset:
        raise ValueError(
            "these disentangle results hold no R² (their inputs carry no MSDS labels); plot "
            "'activity', or rerun with --data msds1 (or msds2)"
        )
    panels = [
        ("all latents of the level", dataset.r2_all),
        (f"{dataset.attrs['budget']} latents per level", dataset.r2_budget),
        ("latents whose cone covers the ellipse", dataset.r2_cone),
    ]
    widths = [array.shape[1] for _, array in panels]
    axes = axes_grid(ax, 1, 3, figsize=(11, 3.4), width_ratios=widths)[0]
    for index, (axis, (title, array)) in enumerate(zip(axes, panels, strict=True)):
        frame = array.to_pandas().iloc[::-1]  # coarse levels on top
        frame.index = _level_labels(frame.index.values)
        sns.heatmap(
            frame,
            ax=axis,
            vmin=0,
            vmax=1,
            cmap="viridis",
            annot=True,
            fmt=".2f",
            cbar=index == 2,
            cbar_kws={"label": "cross-validated R²"},
        )
        axis.set_title(title, fontsize=10)
        axis.set_xlabel("")
        axis.set_ylabel("RG level" if index == 0 else "")
        axis.tick_params(axis="x", rotation=20)
        if index:
            axis.set_yticklabels([])
    return axes


def plot_activity(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """The fraction of active latents per level, and the spread of every latent's encoded
    variance over the prior's (log10; box per level, mean, the prior and the threshold).
    `ax`: two Axes."""
    levels = dataset.level.values
    axes = axes_grid(ax, 1, 2, figsize=(8, 3))[0]
    axes[0].bar(levels, dataset.active_fraction, color="tab:blue")
    axes[0].set_ylim(0, 1.05)
    axes[0].set_title(f"active fraction (ratio > {dataset.attrs['active_threshold']})")
    ratio = dataset.latent_variance_ratio.values.ravel()
    level_of = dataset.latent_level.values.ravel()
    per_level = [np.log10(np.maximum(ratio[level_of == lv], 1e-12)) for lv in levels]
    axes[1].boxplot(per_level, positions=levels, widths=0.6, showfliers=False)
    axes[1].plot(levels, np.log10(dataset.activity_ratio), "o", color="tab:orange", label="mean")
    axes[1].axhline(0, color="black", linestyle="--", label="prior")
    axes[1].axhline(
        np.log10(dataset.attrs["active_threshold"]), color="grey", linestyle=":", label="threshold"
    )
    axes[1].set_title("log10 variance ratio per latent")
    axes[1].legend(frameon=False, fontsize=8)
    for axis in axes:
        axis.set_xlabel("RG level (0 = finest)")
        axis.set_xticks(levels)
    return axes


def _best_levels(dataset: xr.Dataset) -> pd.DataFrame:
    """Each factor's best-predicting level and its R², for each of the three latent choices."""
    rows = []
    for factor in dataset.factor.values:
        row = {
            "factor": factor,
            "scale": str(dataset.factor_scale.sel(factor=factor).values),
            "meaning": str(dataset.factor_description.sel(factor=factor).values),
        }
        for label, name, dim in [
            ("all", "r2_all", "factor"),
            ("budget", "r2_budget", "factor"),
            ("cone", "r2_cone", "local_factor"),
        ]:
            if factor in dataset[dim].values:
                r2 = dataset[name].sel({dim: factor})
                readable = float(r2.max()) >= NO_READOUT_R2
                row[f"{label}: level"] = int(r2.idxmax()) if readable else "none"
                row[f"{label}: R²"] = round(float(r2.max()), 3)
        rows.append(row)
    return pd.DataFrame(rows).set_index("factor")


def _level_labels(levels: np.ndarray) -> list[str]:
    top = int(levels.max())
    return [f"{lv}" + (" (top)" if lv == top else " (finest)" if lv == 0 else "") for lv in levels]
