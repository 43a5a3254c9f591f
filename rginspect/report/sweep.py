"""A sweep's report: every scalar result of every analysis against the coupling that varies."""

from __future__ import annotations

from pathlib import Path

import matplotlib.figure
import numpy as np
import pandas as pd
import xarray as xr

from .. import __version__
from ..analysis import Figure, Section, Table
from ..plotting import axes_grid, figure_of
from ..results import display_unit
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
    """Numbers against the axis (one line per ensemble where results have one, such as the
    action's and the flow's), labels as rows of categories; bands where the reference's label
    changes (the first ensemble: the action's or the data's)."""
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
    boundaries = list(
        dict.fromkeys(b for key in text for b in _label_boundaries(_reference(dataset[key]), axis))
    )
    how_to_read = f"Each point is one checkpoint's result, placed at its recorded {axis}."
    if "ensemble" in dataset.dims:
        how_to_read += (
            " Results measured on several ensembles have one line each ("
            + ", ".join(map(str, dataset.ensemble.values))
            + f"); bands follow the labels of {dataset.ensemble.values[0]}."
        )
    if boundaries:
        how_to_read += (
            " "
            + "; ".join(
                f"the label goes from {left} to {right} between {axis} = {low:g} and {high:g}"
                for low, high, left, right in boundaries
            )
            + " (shaded)."
        )
    figures = (
        [
            Figure(
                _panels(dataset, shown, axis, [(low, high) for low, high, *_ in boundaries]),
                f"Results of {name} against {axis}.",
            )
        ]
        if shown
        else []
    )
    columns = {axis: dataset[axis].values, "checkpoint": dataset.checkpoint.values}
    for key in text + numeric[:6]:
        variable = dataset[key]
        if "ensemble" in variable.dims:
            for ensemble in dataset.ensemble.values:
                columns[f"{key} ({ensemble})"] = variable.sel(ensemble=ensemble).values
        else:
            columns[key] = variable.values
    return Section(
        title=f"{name} across the sweep",
        how_to_read=how_to_read,
        figures=figures,
        tables=[Table(pd.DataFrame(columns), "One row per checkpoint")],
    )


def _reference(variable: xr.DataArray) -> xr.DataArray:
    """A result as measured on the reference ensemble (the first), or as it is without one."""
    return variable.isel(ensemble=0) if "ensemble" in variable.dims else variable


def _label_boundaries(labels: xr.DataArray, axis: str) -> list[tuple[float, float, str, str]]:
    """Where a text result (a phase label) changes between neighbouring checkpoints ordered along
    the axis: (axis value before, after, label before, after)."""
    x, values = labels[axis].values, labels.values
    return [
        (float(x[i]), float(x[i + 1]), str(values[i]), str(values[i + 1]))
        for i in range(len(x) - 1)
        if values[i] and values[i + 1] and values[i] != values[i + 1] and x[i] < x[i + 1]
    ]


def _panels(
    dataset: xr.Dataset, names: list[str], axis: str, shaded: list[tuple[float, float]]
) -> matplotlib.figure.Figure:
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    axes = axes_grid(None, rows, columns, figsize=(3.4 * columns, 2.7 * rows))
    for ax in axes.ravel()[len(names) :]:
        ax.axis("off")
    x = dataset[axis].values
    joined = len(np.unique(x)) == len(x)  # a line only where it reads as a curve
    for ax, name in zip(axes.ravel(), names, strict=False):
        for low, high in shaded:  # where a label changes: the same band in every panel
            ax.axvspan(low, high, color="0.88", zorder=0)
        variable = dataset[name]
        lines = (
            [(str(e), variable.sel(ensemble=e)) for e in dataset.ensemble.values]
            if "ensemble" in variable.dims
            else [(None, variable)]
        )
        if variable.dtype.kind in "USO":  # a label: one row per category
            categories = sorted(set(variable.values.ravel()) - {""})
            for i, (ensemble, line) in enumerate(lines):
                rows = [categories.index(v) if v in categories else np.nan for v in line.values]
                ax.plot(x, np.array(rows) + 0.12 * i, "s^od"[i % 4], ms=6, label=ensemble)
            ax.set_yticks(range(len(categories)), categories, fontsize=7)
            ax.set_ylim(-0.5, len(categories) - 0.5 + 0.12 * (len(lines) - 1))
        else:
            error = next((dataset[name + s] for s in ERROR_SUFFIXES if name + s in dataset), None)
            for ensemble, line in lines:
                if error is not None and ensemble is not None:
                    line_error = error.sel(ensemble=ensemble).values
                else:
                    line_error = None if error is None else error.values
                ax.errorbar(
                    x,
                    line.values,
                    yerr=line_error,
                    marker="o",
                    ms=4,
                    capsize=2,
                    ls="-" if joined else "none",
                    label=ensemble,
                )
        unit = display_unit(variable.attrs)
        ax.set_title(name + (f" ({unit})" if unit else ""), fontsize=9)
        ax.set_xlabel(axis)
        if len(lines) > 1:
            ax.legend(fontsize=6)
    return figure_of(axes)


def sweep_axis(dataset: xr.Dataset) -> str:
    """The recorded coordinate that varies across the sweep (the first, in recorded order)."""
    for name, coordinate in dataset.coords.items():
        if name != "checkpoint" and len(np.unique(coordinate.values)) > 1:
            return str(name)
    return "checkpoint"
