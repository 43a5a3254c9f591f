"""A sweep's report: every scalar result of every analysis against the coupling that varies."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..analysis import Figure, Section, Table
from .render import ReportSection, render_report, write_report

ERROR_SUFFIXES = ("_err", "_std", "_error")


def render_sweep_report(sweep_path: Path, report_path: Path) -> Path:
    """One section per analysis: numbers plotted against the sweep axis, text results tabled."""
    from ..results import read_results

    tree = read_results(Path(sweep_path))
    sections = [
        ReportSection(
            name, "ok", sweep_section(name, node.to_dataset(), sweep_axis(node.to_dataset()))
        )
        for name, node in tree.children.items()
    ]
    any_group = next(iter(tree.children.values())).to_dataset()
    run_info = {
        "rginspect version": __version__,
        "checkpoints": int(any_group.sizes["checkpoint"]),
        "swept": sweep_axis(any_group),
    }
    coordinates = {
        name: values.values.tolist()
        for name, values in any_group.coords.items()
        if name != "checkpoint"
    }
    html = render_report(
        title=f"rginspect sweep: {Path(sweep_path).parent.name}",
        model_card={"checkpoints": any_group.checkpoint.values.tolist()} | coordinates,
        sections=sections,
        run_info=run_info,
    )
    return write_report(Path(report_path), html)


def sweep_section(name: str, dataset: xr.Dataset, axis: str) -> Section:
    order = np.argsort(dataset[axis].values, kind="stable")
    dataset = dataset.isel(checkpoint=order)
    numeric = [
        key
        for key, variable in dataset.data_vars.items()
        if variable.dtype.kind == "f"
        and not key.endswith(ERROR_SUFFIXES)
        and np.isfinite(variable.values).any()
    ]
    text = [key for key, variable in dataset.data_vars.items() if variable.dtype.kind in "USO"]
    shown = text + numeric  # labels first: the phase diagram reads from them
    boundaries = [b for key in text for b in _label_boundaries(dataset, key, axis)]
    how_to_read = f"Each point is one checkpoint's result, placed at its recorded {axis}."
    if boundaries:
        how_to_read += (
            " "
            + "; ".join(
                f"{key} goes from {left} to {right} between {axis} = {low:g} and {high:g}"
                for key, low, high, left, right in boundaries
            )
            + " (shaded)."
        )
    figures = (
        [
            Figure(
                _panels(dataset, shown, axis, [(low, high) for _, low, high, *_ in boundaries]),
                f"Scalar results of {name} against {axis}.",
            )
        ]
        if shown
        else []
    )
    columns = {axis: dataset[axis].values, "checkpoint": dataset.checkpoint.values}
    columns |= {key: dataset[key].values for key in text}
    columns |= {key: dataset[key].values for key in numeric[:6]}
    return Section(
        title=f"{name} across the sweep",
        how_to_read=how_to_read,
        figures=figures,
        tables=[Table(pd.DataFrame(columns), "One row per checkpoint")],
    )


def _label_boundaries(
    dataset: xr.Dataset, key: str, axis: str
) -> list[tuple[str, float, float, str, str]]:
    """Where a text result (a phase label) changes between neighbouring checkpoints of a dataset
    ordered along the axis: (key, axis value before, after, label before, after)."""
    x, labels = dataset[axis].values, dataset[key].values
    return [
        (key, float(x[i]), float(x[i + 1]), str(labels[i]), str(labels[i + 1]))
        for i in range(len(x) - 1)
        if labels[i] and labels[i + 1] and labels[i] != labels[i + 1] and x[i] < x[i + 1]
    ]


def _panels(
    dataset: xr.Dataset, names: list[str], axis: str, shaded: list[tuple[float, float]]
) -> plt.Figure:
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.7 * rows), squeeze=False)
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    x = dataset[axis].values
    for ax, name in zip(axes.ravel(), names, strict=False):
        for low, high in shaded:  # where a label changes: the same band in every panel
            ax.axvspan(low, high, color="0.88", zorder=0)
        if dataset[name].dtype.kind in "USO":  # a label: one row per category
            categories = sorted(set(dataset[name].values) - {""})
            rows = [
                categories.index(v) if v in categories else np.nan for v in dataset[name].values
            ]
            ax.plot(x, rows, "s", ms=7)
            ax.set_yticks(range(len(categories)), categories, fontsize=7)
            ax.set_ylim(-0.5, len(categories) - 0.5)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(axis)
            continue
        error = next(
            (dataset[name + s].values for s in ERROR_SUFFIXES if name + s in dataset), None
        )
        joined = len(np.unique(x)) == len(x)  # a line only where it reads as a curve
        ax.errorbar(
            x,
            dataset[name].values,
            yerr=error,
            marker="o",
            ms=4,
            capsize=2,
            ls="-" if joined else "none",
        )
        units = dataset[name].attrs.get("units")
        ax.set_title(name + (f" ({units})" if units else ""), fontsize=9)
        ax.set_xlabel(axis)
    figure.tight_layout()
    return figure


def sweep_axis(dataset: xr.Dataset) -> str:
    """The recorded coordinate that varies across the sweep (the first, in recorded order)."""
    for name, coordinate in dataset.coords.items():
        if name != "checkpoint" and len(np.unique(coordinate.values)) > 1:
            return str(name)
    return "checkpoint"
