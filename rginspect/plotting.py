"""What an analysis' figure functions share: axes the caller gives, or a new figure of their own.

A figure function draws from a stored dataset alone, onto `ax` when the caller gives one (an Axes,
or an array of them for a figure of several panels), and returns the axes it drew on, as arviz's
plot functions do. Without `ax` it makes a `matplotlib.figure.Figure` that no pyplot backend
manages: importing or running rginspect never changes a notebook's backend, and a report embeds
the figure by its own canvas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import matplotlib.axes
    import matplotlib.figure


def axes_grid(
    ax: matplotlib.axes.Axes | np.ndarray | None,
    rows: int = 1,
    columns: int = 1,
    *,
    figsize: tuple[float, float] | None = None,
    width_ratios: list[float] | None = None,
) -> np.ndarray:
    """(rows, columns) axes to draw on: the caller's `ax` (one Axes for a 1×1 grid, or any
    array of rows × columns Axes), else those of a new figure of `figsize` inches whose columns
    are as wide as `width_ratios` says (equal by default)."""
    if ax is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=figsize, layout="constrained")
        grid = figure.subplots(rows, columns, squeeze=False, width_ratios=width_ratios)
        return np.asarray(grid)
    axes = np.asarray(ax, dtype=object)
    if axes.size != rows * columns:
        raise ValueError(
            f"this figure draws {rows} × {columns} panels; give ax as {rows * columns} Axes "
            f"(for example plt.subplots({rows}, {columns})[1]), not {axes.size}"
        )
    return axes.reshape(rows, columns)


def figure_of(axes: matplotlib.axes.Axes | np.ndarray) -> matplotlib.figure.Figure:
    """The figure a figure function drew on, from the axes it returned."""
    return np.asarray(axes, dtype=object).flat[0].figure
