"""Sections -> one HTML file that works offline: figures inline as PNG data, no scripts, no links out.

No matplotlib backend is chosen here: figures are `matplotlib.figure.Figure` objects drawn to PNG
by their own canvas, so importing rginspect leaves a notebook's inline backend alone."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import matplotlib.figure
import pandas as pd
from markupsafe import Markup

from ..analysis import Section
from ..atomic import atomic_output

_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("rginspect.report", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass
class ReportSection:
    """One analysis in the report: its rendered section, or why there is none."""

    name: str
    status: str  # "ok" | "failed" | "skipped"
    section: Section | None = None
    message: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)


SectionView = dict[str, Any]  # one section as the template reads it: strings, PNG data, tables


def section_view(entry: ReportSection) -> SectionView:
    """A section ready for the template (figures as PNG data URIs, tables as HTML): plain data,
    so it can be made in another process (report.build renders sections in the background)."""
    section = entry.section
    return {
        "name": entry.name,
        "status": entry.status,
        "message": entry.message,
        "provenance": {k: v for k, v in entry.provenance.items() if v not in (None, "")},
        "title": section.title if section else entry.name,
        "how_to_read": section.how_to_read if section else "",
        "paragraphs": _paragraphs(section.text) if section else [],
        "figures": [
            {"src": png_data_uri(figure.figure), "caption": figure.caption}
            for figure in (section.figures if section else [])
        ],
        "tables": [
            {"html": table_html(table.frame), "caption": table.caption}
            for table in (section.tables if section else [])
        ],
    }


def render_report(
    *,
    title: str,
    model_card: dict[str, Any],
    sections: Sequence[ReportSection | SectionView],
    run_info: dict[str, Any],
) -> str:
    """The report's HTML text. Every string from a model or a plugin is escaped by Jinja2."""
    views = [entry if isinstance(entry, dict) else section_view(entry) for entry in sections]
    card = {key: value for key, value in model_card.items() if key not in ("config", "provenance")}
    return render_template(
        "report.html.j2", title=title, model_card=card, run_info=run_info, sections=views
    )


def render_inline(sections: Sequence[SectionView]) -> str:
    """Sections as an HTML fragment for a notebook cell, styled inside its own wrapper."""
    return render_template("inline.html.j2", sections=sections)


def render_template(name: str, **context: Any) -> str:
    """One of the report templates (report.html.j2, or a page that extends it), autoescaped."""
    return _ENVIRONMENT.get_template(name).render(**context)


def write_report(path: Path, html: str) -> Path:
    """Write atomically, so a reader never sees half a report."""
    path = Path(path)
    with atomic_output(path) as temporary:
        temporary.write_text(html, encoding="utf-8")
    return path


def png_data_uri(figure: matplotlib.figure.Figure) -> str:
    """A figure as an inline PNG; a figure pyplot manages (a plugin that used plt) is closed, so
    a notebook does not show it a second time."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    if getattr(figure.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def table_html(frame: pd.DataFrame) -> Markup:
    """pandas escapes the cells; the markup it builds is ours, so it is marked safe.
    A plain 0..n−1 index carries nothing, so it is left out."""
    html = frame.to_html(
        escape=True,
        border=0,
        classes="data",
        float_format=lambda v: f"{v:.4g}",
        na_rep="–",
        index=not isinstance(frame.index, pd.RangeIndex),
    )
    return Markup(html)


def _paragraphs(text: str) -> list[str]:
    return [block.strip() for block in text.split("\n\n") if block.strip()]
