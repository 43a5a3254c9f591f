"""Results in a notebook: `tree.rginspect` on any results tree (`rginspect.analyze`'s, or a
results.nc opened with xarray) shows the report's sections under the cell and draws each
analysis' figures onto axes the user gives, from the stored results alone."""

from __future__ import annotations

from typing import Any

import xarray as xr


@xr.register_datatree_accessor("rginspect")
class ResultsAccessor:
    """`tree.rginspect`: the report and the figures of a results tree."""

    def __init__(self, tree: xr.DataTree) -> None:
        self._tree = tree

    @property
    def analyses(self) -> list[str]:
        """The analyses the tree holds results of (failed and skipped ones included)."""
        from ..results import analysis_nodes

        return list(analysis_nodes(self._tree))

    def report(self, *analyses: str) -> InlineReport:
        """The report's sections of these analyses (all by default); shown inline when it is the
        value of a notebook cell."""
        from .build import analysis_section

        names = list(analyses) or self.analyses
        unknown = [name for name in names if name not in self.analyses]
        if unknown:
            raise KeyError(f"no results of {', '.join(unknown)}; the tree holds {self.analyses}")
        return InlineReport([analysis_section(name, self._dataset(name)) for name in names])

    def plot(
        self, analysis: str, name: str | None = None, *, ax: Any = None, **options: Any
    ) -> Any:
        """Draw one figure of an analysis (its first by default; see `Analysis.plots`) from the
        stored results, onto `ax` when given; `options` go to the figure function (traverse's
        `level=`, inpaint's `hole=`). Returns the axes."""
        from ..plugin_manager import available_analyses

        installed = available_analyses()
        if analysis not in installed:
            raise KeyError(f"no installed analysis named {analysis!r} can draw these results")
        dataset = self._dataset(analysis)
        if dataset.attrs.get("status", "ok") != "ok":
            raise ValueError(
                f"{analysis} {dataset.attrs['status']}, so there is nothing to draw: "
                f"{dataset.attrs.get('error', '')}"
            )
        return installed[analysis].plot(dataset, name, ax=ax, **options)

    def _dataset(self, name: str) -> xr.Dataset:
        if name not in self.analyses:
            raise KeyError(f"no results of {name!r}; the tree holds {self.analyses}")
        return self._tree[name].to_dataset()


class InlineReport:
    """Report sections that a notebook shows as HTML (`_repr_html_`)."""

    def __init__(self, sections: list[dict[str, Any]]) -> None:
        self.sections = sections

    def _repr_html_(self) -> str:
        from .render import render_inline

        return render_inline(self.sections)

    def __repr__(self) -> str:
        listed = ", ".join(f"{view['name']} ({view['status']})" for view in self.sections)
        return f"<rginspect report: {listed}>"
