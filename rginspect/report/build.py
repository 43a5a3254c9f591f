"""Stored results -> report: each analysis renders its own stored dataset, never the model."""

from __future__ import annotations

import json
from pathlib import Path

from .. import __version__
from ..errors import RGInspectError
from .render import ReportSection, render_report, write_report


def report_from_results(results_path: Path, report_path: Path) -> Path:
    """Render `results.nc` to one HTML file; a render that fails shows as a failed section."""
    from .. import plugin_manager
    from ..results import read_results

    results_path = Path(results_path)
    if not results_path.is_file():
        raise RGInspectError(f"{results_path}: no such results file; run `rginspect run` first")
    tree = read_results(results_path)
    analyses = plugin_manager.available_analyses()
    sections = []
    for name, node in tree.children.items():
        attrs = dict(node.attrs)
        provenance = {
            key: attrs.get(key)
            for key in ("analysis_version", "parameters", "seed", "created_at", "elapsed_s")
        }
        status = attrs.get("status", "ok")
        if status != "ok":
            sections.append(ReportSection(name, status, None, attrs.get("error", ""), provenance))
            continue
        if name not in analyses:
            message = f"no installed analysis named {name!r} can render these results"
            sections.append(ReportSection(name, "failed", None, message, provenance))
            continue
        try:
            section = analyses[name].render(node.to_dataset())
        except Exception as error:  # a broken renderer must not hide the other sections
            message = f"rendering failed: {type(error).__name__}: {error}".splitlines()[0]
            sections.append(ReportSection(name, "failed", None, message, provenance))
            continue
        sections.append(ReportSection(name, "ok", section, _inputs_warning(attrs), provenance))
    root = dict(tree.attrs)
    model_card = json.loads(root.get("model_card", "{}"))
    run_info = {
        "rginspect version": __version__,
        "checkpoint": root.get("checkpoint_path", ""),
        "sha256": root.get("checkpoint_sha256", ""),
        "seed": root.get("seed", ""),
        "data": root.get("data", ""),
    }
    title = f"rginspect report: {Path(str(root.get('checkpoint_path', results_path))).name}"
    html = render_report(title=title, model_card=model_card, sections=sections, run_info=run_info)
    return write_report(Path(report_path), html)


def _inputs_warning(attrs: dict) -> str:
    """One line when an analysis ran on fewer inputs than it asked for (the engine records both)."""
    requested, used = attrs.get("inputs_requested"), attrs.get("inputs_used")
    if requested is None or used is None or int(used) >= int(requested):
        return ""
    return (
        f"Ran on {int(used)} inputs, fewer than the {int(requested)} it asks for (the run's data "
        "or --samples had no more), and its numbers depend on the count: give it more data."
    )
