"""One self-contained HTML report per run, rendered from stored results only."""

from .render import ReportSection, render_report, write_report

__all__ = ["ReportSection", "render_report", "write_report"]
