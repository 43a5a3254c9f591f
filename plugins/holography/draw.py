"""How holography shows its results, from the stored dataset alone: the MI route's pair MI against
both bulk distances with its fits, the table of both routes' decays and verdicts, and what there is
to read, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.plotting import axes_grid, figure_of

from .compute import GEOMETRIES, MI_ROUTE, NO_INFORMATION

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def holography_section(dataset: xr.Dataset) -> Section:
    """The report section: the decay figure, the table of both routes, and the verdicts."""
    return Section(
        title="Holographic bulk geometry",
        how_to_read=(
            "Latent sites are bulk points (receptive-field centre, depth 2^level). If the "
            "residual information between them decays with hyperbolic distance, the learned "
            "map is holographic; it may also decay flat, or there may be none to read."
        ),
        figures=[
            Figure(
                figure_of(plot_decay(dataset)),
                f"Pair MI of {dataset.attrs['samples']} {dataset.attrs['source']}, "
                f"{'aligned' if dataset.attrs['aligned'] else 'as drawn'}: means over all "
                f"{dataset.attrs['all_pairs']} pairs in distance bins (positive ones shown) "
                "and the pairs above the floor; red: the censored χ² fit over every pair.",
            )
        ],
        tables=[decay_table(dataset)],
        text=holography_text(dataset),
    )


def plot_decay(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """The MI route's bias-corrected pair MI against the hyperbolic geodesic and against the flat
    distance: means in equal-count distance bins (the positive ones), the pairs above the floor,
    and the censored χ² fit of that geometry. `ax`: two Axes."""
    axes = axes_grid(ax, 1, 2, figsize=(10, 3.8))[0]
    mi = dataset.pair_mi.values
    above = dataset.pair_above_floor.values.astype(bool)
    for axis, geometry, distance, label in [
        (axes[0], "hyperbolic", dataset.pair_geodesic.values, "geodesic (R = 1)"),
        (axes[1], "flat", dataset.pair_flat.values, "flat distance |(Δx, Δz)|"),
    ]:
        centres, means, errors = binned_means(distance, mi)
        shown = means > 0
        axis.errorbar(
            centres[shown], means[shown], errors[shown], fmt="o", ms=3, color="black",
            label="mean over all pairs",
        )  # fmt: skip
        axis.scatter(distance[above], mi[above], s=2, alpha=0.3, label="pairs above the floor")
        fit = dataset.sel(route=MI_ROUTE, geometry=geometry)
        if np.isfinite(float(fit.slope)):
            line = np.linspace(distance.min(), distance.max(), 50)
            axis.plot(line, np.exp(float(fit.log_i0) - float(fit.slope) * line), color="red")
        axis.set_yscale("log")
        axis.set_xlabel(label)
        axis.set_ylabel("MI, bias removed (nats)")
        axis.set_title(f"{geometry}: slope {_value(fit.slope, fit.slope_error)}", fontsize=9)
        axis.legend(fontsize=7, markerscale=3)
    return axes


def decay_table(dataset: xr.Dataset) -> Table:
    """One row per route and geometry (and the MI route of the fields as drawn, where aligned)."""
    rows = []
    for route in dataset.route.values:
        for geometry in GEOMETRIES:
            fit = dataset.sel(route=route, geometry=geometry)
            rows.append(
                {
                    "fields": "aligned" if dataset.attrs["aligned"] else "as drawn",
                    "route": route,
                    "geometry": geometry,
                    "slope": _value(fit.slope, fit.slope_error),
                    "ln I₀": float(fit.log_i0),
                    "pairs above floor (chance)": (
                        f"{int(fit.pairs_above_floor)} ({float(fit.pairs_by_chance):.0f})"
                    ),
                    "verdict": str(fit.verdict.values),
                }
            )
    if dataset.attrs["aligned"]:
        for geometry in GEOMETRIES:
            rows.append(
                {
                    "fields": "as drawn",
                    "route": MI_ROUTE,
                    "geometry": geometry,
                    "slope": _value(
                        dataset.unaligned_slope.sel(geometry=geometry),
                        dataset.unaligned_slope_error.sel(geometry=geometry),
                    ),
                    "ln I₀": np.nan,
                    "pairs above floor (chance)": str(int(dataset.unaligned_pairs_above_floor)),
                    "verdict": str(dataset.unaligned_verdict.values),
                }
            )
    return Table(
        pd.DataFrame(rows),
        "Decay of residual information with bulk distance, both routes (errors: "
        "jackknife over whole chains); 'as drawn': fields not turned to the flow's "
        "global direction, which measures how the flow treats the symmetry",
    )


def binned_means(
    distance: np.ndarray, values: np.ndarray, bins: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard error of `values` in equal-count bins of `distance`."""
    order = np.argsort(distance)
    parts = np.array_split(order, bins)
    centres = np.array([distance[p].mean() for p in parts])
    means = np.array([np.nanmean(values[p]) for p in parts])
    errors = np.array([np.nanstd(values[p], ddof=1) / np.sqrt(len(p)) for p in parts])
    return centres, means, errors


def holography_text(dataset: xr.Dataset) -> str:
    """What the report says: the alignment, the bulk points, and per route what there is to read."""
    parts = [f"{dataset.attrs['alignment'][0].upper()}{dataset.attrs['alignment'][1:]}."]
    for route in dataset.route.values:
        reading = dataset.sel(route=route)
        verdict = str(reading.verdict.values)
        head = (
            f"{route.capitalize()} ({reading.pairs_above_floor.item()} of "
            f"{dataset.attrs['all_pairs']} pairs above the floor, "
            f"{float(reading.pairs_by_chance):.0f} by chance; {float(reading.excess):+.1f} null "
            "spreads): "
        )
        if verdict == NO_INFORMATION:
            parts.append(
                head + "no more pairs clear the floor than chance puts there: there is no "
                "residual information between latents, so no bulk geometry to read."
            )
            continue
        slopes = ", ".join(
            f"{g} {_value(reading.slope.sel(geometry=g), reading.slope_error.sel(geometry=g))}"
            for g in GEOMETRIES
        )
        ratio = (
            f"{float(reading.likelihood_ratio):+.1f} ± {float(reading.likelihood_ratio_error):.1f}"
        )
        if verdict == "undecided":
            call = (
                "neither geometry is decisively better, or the winner's information does not decay"
            )
        else:
            call = f"the information decays with {verdict} bulk distance"
        parts.append(head + f"slopes {slopes}; ln L hyperbolic − flat {ratio}: {call}.")
    if dataset.attrs["aligned"]:
        parts.append(
            f"As drawn (not aligned), the MI route reads '{dataset.unaligned_verdict.item()}' "
            f"({dataset.unaligned_pairs_above_floor.item()} pairs above the floor; mean pair MI "
            f"{float(dataset.unaligned_mean_mi):.2g} nats against {float(dataset.mean_mi):.2g} "
            "aligned): the difference is the global direction, spread over the latents of fields "
            "the flow was not trained at."
        )
    parts.append(
        f"Samples: {dataset.attrs['chains']}; errors from a jackknife over "
        f"{dataset.attrs['groups']} groups of them. The {dataset.attrs['bulk_points']}."
    )
    return " ".join(parts)


def _value(value: object, error: object) -> str:
    value, error = float(value), float(error)
    if not np.isfinite(value):
        return "—"
    return f"{value:.3g} ± {error:.2g}"
