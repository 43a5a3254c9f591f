"""How receptive shows its results, from the stored dataset alone: the maps of the strongest
latents per level (one colour scale and colour bar per level), sizes against level, the mean
centred field of each level, a table of medians and the growth per level."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.plotting import axes_grid, figure_of

from .compute import level_table


def receptive_section(dataset: xr.Dataset) -> Section:
    """The report section: three figures, the table of medians per level and the growth."""
    attrs = dataset.attrs
    table = level_table(dataset)
    fitted = [int(level) for level in dataset.level.values[dataset.cone_wraps.values == 0]]
    growth = size_growth(table[table["level"].isin(fitted)])
    unit = site_unit(dataset)
    return Section(
        title="Receptive fields",
        how_to_read=(
            f"How much each latent moves each of the {unit}: Σ_c |∂x_c/∂z| averaged over "
            f"{attrs['samples']} {attrs['source']}{_cut_text(attrs)}. Fine levels should act "
            "locally, coarse levels globally, sizes roughly doubling per level."
        ),
        figures=[
            Figure(
                figure_of(plot_maps(dataset)),
                "Strongest latents per level, one colour scale per level; + marks the latent's "
                "site.",
            ),
            Figure(
                figure_of(plot_sizes(dataset)),
                "Receptive-field size per latent against RG level (log scale); dashed: ∝ 2^level.",
            ),
            Figure(
                figure_of(plot_centred_means(dataset)),
                "Mean receptive field Σ_c |∂x_c/∂z| of each level, every latent moved to the "
                "centre (each level on its own colour scale).",
            ),
        ],
        tables=[Table(table, f"Medians over the latents of each level (sizes in {unit})")],
        text=(
            f"{_growth_text(growth, fitted, dataset.sizes['level'])} "
            f"Exact Jacobian by {attrs['method']} in {attrs['seconds']:.2f} s. Forward-mode "
            f"compression needs {attrs['probes']} probes for {attrs['n_latents']} latents; no "
            f"colouring can use fewer than {attrs['overlap_clique']} (latents with pairwise "
            f"overlapping cones), above the {attrs['probe_lower_bound']} latents sharing one site."
        ),
    )


def site_unit(dataset: xr.Dataset) -> str:
    """What the sizes are counted in: pixels (images) or sites (fields)."""
    return dataset.attrs.get("site_unit", dataset.radius.attrs.get("units", "sites"))


def size_growth(table: pd.DataFrame) -> float:
    """Factor by which the median radius grows per level (least squares on log2), over the levels
    in `table`."""
    usable = table[table["radius"] > 0]
    if len(usable) < 2:
        return float("nan")
    slope = np.polyfit(usable["level"], np.log2(usable["radius"]), 1)[0]
    return float(2**slope)


def _cut_text(attrs: dict) -> str:
    if attrs["samples"] >= attrs["samples_requested"]:
        return ""
    return (
        f" (cut from {attrs['samples_requested']} to fit the {attrs['budget']:g} s budget; "
        "-p receptive.budget=0 takes them all)"
    )


def _growth_text(growth: float, fitted: list[int], n_levels: int) -> str:
    wrapping = n_levels - len(fitted)
    if not np.isfinite(growth):
        return (
            "No size growth is fitted: fewer than two levels have cones that fit on the lattice "
            f"without closing around it ({wrapping} of {n_levels} levels wrap)."
        )
    return (
        f"Radius grows ×{growth:.2f} per level (fit of log radius on levels "
        f"{', '.join(map(str, fitted))}; the other {wrapping} have structural cones that close "
        "around the periodic lattice, where the radius saturates)."
    )


def plot_maps(dataset: xr.Dataset, ax=None) -> np.ndarray:
    """The stored receptive fields of the strongest latents, a row per level with one colour
    scale and its colour bar; + marks the latent's site. `ax`: levels × maps-per-level Axes."""
    levels = dataset.latent_level.values[dataset.shown.values]
    n_levels = int(dataset.sizes["level"])
    columns = max(int(np.sum(levels == level)) for level in range(n_levels))
    axes = axes_grid(ax, n_levels, columns, figsize=(1.9 * columns + 0.6, 1.9 * n_levels))
    for one in axes.ravel():
        one.axis("off")
    maps = dataset.rf_map.values
    for level in range(n_levels):
        shown = np.flatnonzero(levels == level)
        if not len(shown):
            continue
        top = float(maps[shown].max()) or 1.0
        for slot, index in enumerate(shown):
            latent = int(dataset.shown.values[index])
            one = axes[level, slot]
            image = one.imshow(maps[index], cmap="magma", vmin=0, vmax=top)
            one.plot(dataset.col.values[latent], dataset.row.values[latent], "+", color="cyan")
            one.set_title(
                f"L{level} c{dataset.channel.values[latent]} "
                f"({dataset.row.values[latent]},{dataset.col.values[latent]})",
                fontsize=8,
            )
        bar = axes[level, 0].figure.colorbar(image, ax=list(axes[level]), shrink=0.85, pad=0.02)
        bar.set_label("Σ_c |∂x_c/∂z|", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    return axes


def plot_sizes(dataset: xr.Dataset, ax=None) -> np.ndarray:
    """Radius and 90% area of every latent against its level (log scale), the medians, and the
    doubling per level a MERA's cones would give. `ax`: two Axes."""
    axes = axes_grid(ax, 1, 2, figsize=(9, 3.2))[0]
    level = dataset.latent_level.values
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(level))
    unit = site_unit(dataset)
    for one, name, label in [
        (axes[0], "radius", f"radius ({unit})"),
        (axes[1], "area90", f"area holding 90% ({unit})"),
    ]:
        values = dataset[name].values
        one.scatter(level + jitter, values, s=2, alpha=0.3, color="tab:blue")
        medians = [np.nanmedian(values[level == lv]) for lv in dataset.level.values]
        one.plot(dataset.level, medians, "o-", color="tab:red", label="median")
        power = 1 if name == "radius" else 2
        reference = medians[0] * 2.0 ** (power * dataset.level.values)
        one.plot(dataset.level, reference, "--", color="gray", label=f"∝ {2**power}^level")
        one.set_yscale("log")
        one.set_xlabel("RG level (0 = finest)")
        one.set_xticks(dataset.level.values)
        one.set_ylabel(label)
        one.legend(fontsize=8)
    return axes


def plot_centred_means(dataset: xr.Dataset, ax=None) -> np.ndarray:
    """The mean receptive field of each level, every latent moved to the centre, each on its own
    colour scale (coarse levels spread the same mass thinner) with its colour bar. `ax`: one
    Axes per level."""
    n_levels = dataset.sizes["level"]
    axes = axes_grid(ax, 1, n_levels, figsize=(2.9 * n_levels, 2.6))[0]
    extent = [
        float(dataset.dx[0]) - 0.5,
        float(dataset.dx[-1]) + 0.5,
        float(dataset.dy[-1]) + 0.5,
        float(dataset.dy[0]) - 0.5,
    ]
    for level, one in zip(dataset.level.values, axes, strict=True):
        image = one.imshow(
            dataset.mean_centred_map.sel(level=level), cmap="magma", extent=extent, vmin=0
        )
        one.set_title(f"level {level}", fontsize=9)
        one.set_xlabel("Δx")
        bar = one.figure.colorbar(image, ax=one, shrink=0.8, pad=0.02)
        bar.ax.tick_params(labelsize=7)
    axes[0].set_ylabel("Δy")
    return axes
