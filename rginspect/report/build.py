"""Stored results -> report: each analysis renders its own stored dataset, never the model."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
from collections.abc import Mapping
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

import xarray as xr

from .. import __version__
from ..errors import RGInspectError
from ..machine import follow_parent, usable_cpus
from .render import ReportSection, SectionView, render_report, section_view, write_report

RENDER_NICENESS = 10  # the analyses come first; drawing uses what CPU they leave


@dataclass
class Report:
    """A report ready to write: its HTML, and the analyses whose sections could not be drawn
    (no installed analysis of that name, or a renderer that failed) with why."""

    html: str
    undrawn: dict[str, str]

    def write(self, path: Path) -> Path:
        return write_report(Path(path), self.html)


def build_report(tree: xr.DataTree, rendered: Mapping[str, SectionView] | None = None) -> Report:
    """A results tree (read from results.nc, or `rginspect.analyze`'s) as one HTML page; a
    render that fails shows as a failed section. `rendered` holds sections already made from
    the same datasets (BackgroundSections)."""
    from ..results import analysis_nodes, model_card

    rendered = rendered or {}
    sections = [
        rendered[name] if name in rendered else analysis_section(name, node.to_dataset())
        for name, node in analysis_nodes(tree).items()
    ]
    root = tree.attrs
    run_info = {
        "rginspect version": __version__,
        "checkpoint": root.get("checkpoint_path", ""),
        "sha256": root.get("checkpoint_sha256", ""),
        "seed": root.get("seed", ""),
        "data": root.get("data", ""),
        "device": root.get("device", ""),
    }
    title = f"rginspect report: {Path(str(root.get('checkpoint_path', 'results'))).name}"
    html = render_report(
        title=title,
        model_card=model_card(tree),
        sections=sections,
        run_info={key: value for key, value in run_info.items() if value != ""},
    )
    undrawn = {view["name"]: view["message"] for view in sections if view.get("undrawn")}
    return Report(html, undrawn)


def report_from_results(
    results_path: Path, report_path: Path, rendered: Mapping[str, SectionView] | None = None
) -> Path:
    """Render `results.nc` to one HTML file (see build_report)."""
    return read_report(results_path, rendered).write(report_path)


def read_report(results_path: Path, rendered: Mapping[str, SectionView] | None = None) -> Report:
    """build_report of a results file."""
    from ..results import read_results

    results_path = Path(results_path)
    if not results_path.is_file():
        raise RGInspectError(f"{results_path}: no such results file; run `rginspect run` first")
    return build_report(read_results(results_path), rendered)


def analysis_section(name: str, dataset: xr.Dataset) -> SectionView:
    """One stored analysis group (its attrs say its status and provenance) as a report section."""
    from .. import plugin_manager

    attrs = dict(dataset.attrs)
    provenance = {
        key: attrs.get(key)
        for key in ("analysis_version", "parameters", "seed", "created_at", "elapsed_s")
    }
    status = attrs.get("status", "ok")
    analyses = plugin_manager.available_analyses()
    if status != "ok":
        entry = ReportSection(name, status, None, attrs.get("error", ""), provenance)
    elif name not in analyses:
        message = (
            f"no installed analysis named {name!r} can draw these results: install the plugin "
            "that made them"
        )
        return section_view(ReportSection(name, "failed", None, message, provenance)) | {
            "undrawn": True
        }
    else:
        try:
            section = analyses[name].render(dataset)
            entry = ReportSection(name, "ok", section, _inputs_warning(attrs), provenance)
        except Exception as error:  # a broken renderer must not hide the other sections
            return _undrawn(name, error, provenance)
    try:
        return section_view(entry)
    except Exception as error:  # a figure that cannot be drawn fails its section alone
        return _undrawn(name, error, provenance)


def _undrawn(name: str, error: Exception, provenance: dict) -> SectionView:
    message = f"rendering failed: {type(error).__name__}: {error}".splitlines()[0]
    return section_view(ReportSection(name, "failed", None, message, provenance)) | {
        "undrawn": True
    }


class BackgroundSections:
    """Renders each finished analysis' section in a second, lower-priority process while the next
    analysis runs, so a report costs little more than its last section (the demo's reports took
    20 of its 115 s when drawn at the end). With one CPU, inside a daemonic process (a Dask
    worker's task may not start children), or if that process fails, the sections are drawn at
    the end in this process, as before."""

    def __init__(self) -> None:
        self._futures: dict[str, Future] = {}
        self._pool: ProcessPoolExecutor | None = None
        self._worker_pid = 0
        if (
            usable_cpus() > 1
            and not multiprocessing.current_process().daemon
            and "fork" in multiprocessing.get_all_start_methods()
        ):
            try:
                self._pool = ProcessPoolExecutor(
                    1,
                    mp_context=multiprocessing.get_context("fork"),
                    initializer=follow_parent,
                    initargs=(os.getpid(), RENDER_NICENESS),
                )
                # fork now, before this process starts threads
                self._worker_pid = self._pool.submit(os.getpid).result()
            except (OSError, BrokenProcessPool):
                self._pool = None

    def __enter__(self) -> BackgroundSections:
        return self

    @property
    def in_background(self) -> bool:
        """Whether sections are drawn in the second process (False: drawn here, at the end)."""
        return self._pool is not None

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        if self._pool is None:
            return
        if exc_type is not None:  # interrupted or failed: no report comes, so stop drawing now
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._worker_pid, signal.SIGTERM)
        self._pool.shutdown(wait=exc_type is None, cancel_futures=True)

    def submit(self, name: str, dataset: xr.Dataset) -> None:
        """Start drawing a stored dataset's section (with the attrs the results file holds)."""
        if self._pool is not None:
            try:
                self._futures[name] = self._pool.submit(analysis_section, name, dataset)
            except (RuntimeError, BrokenProcessPool):
                self._pool = None

    def finished(self, datasets: Mapping[str, xr.Dataset]) -> dict[str, SectionView]:
        """The sections submitted. Those the background process has not begun are drawn here,
        from `datasets` (the stored groups), while it finishes the ones it holds; any it could
        not draw are left out (report_from_results draws them from the file)."""
        unstarted = [name for name, future in self._futures.items() if future.cancel()]
        views = {name: analysis_section(name, datasets[name]) for name in unstarted}
        for name, future in self._futures.items():
            if name in views:
                continue
            try:
                views[name] = future.result()
            except Exception:  # the process died or the data did not pickle
                continue
        return views


def _inputs_warning(attrs: dict) -> str:
    """One line when an analysis ran on fewer inputs than it asked for (the engine records both)."""
    requested, used = attrs.get("inputs_requested"), attrs.get("inputs_used")
    if requested is None or used is None or int(used) >= int(requested):
        return ""
    return (
        f"Ran on {int(used)} inputs, fewer than the {int(requested)} it asks for (the run's data "
        "or --samples had no more), and its numbers depend on the count: give it more data."
    )
