"""The HTML report: self-contained, escaped, one section per analysis, failures visible."""

import base64
from html.parser import HTMLParser

import matplotlib.pyplot as plt
import pandas as pd
import pytest

from rginspect.analysis import Figure, Section, Table
from rginspect.report.render import ReportSection, render_report, write_report

EVIL = "<script>alert(1)</script>"


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags, self.sections, self.links, self.images = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "a":
            self.links.append(attrs["href"])
        if tag == "img":
            self.images.append(attrs["src"])


def sample_html() -> str:
    figure, axis = plt.subplots()
    axis.plot([0, 1], [1, 0])
    ok = Section(
        title=f"Spectrum {EVIL}",
        how_to_read=f"Read it {EVIL}",
        figures=[Figure(figure, "a line")],
        tables=[Table(pd.DataFrame({"level": [0, 1], "value": [0.123456, EVIL]}), "numbers")],
        text="first paragraph\n\nsecond paragraph",
    )
    return render_report(
        title="report",
        model_card={"format": "native", "architecture": EVIL},
        sections=[
            ReportSection("spectrum", "ok", ok, provenance={"seed": 0}),
            ReportSection("broken", "failed", None, f"RuntimeError: {EVIL}"),
        ],
        run_info={"seed": 0},
    )


def test_structure_and_inline_figures():
    html = sample_html()
    parsed = Collector()
    parsed.feed(html)
    assert parsed.sections == ["spectrum", "broken"]
    assert parsed.links == ["#spectrum", "#broken"]
    (image,) = parsed.images
    assert image.startswith("data:image/png;base64,")
    assert base64.b64decode(image.split(",", 1)[1]).startswith(b"\x89PNG\r\n\x1a\n")
    assert html.count("<p>") == 2 and "RuntimeError" in html


def test_offline_and_escaped():
    html = sample_html()
    assert "<script" not in html and "http://" not in html and "https://" not in html
    # the section title (heading and contents), the guide, the model card, a table cell, the error
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 6


def test_write_is_atomic(tmp_path):
    html = sample_html()
    path = write_report(tmp_path / "out" / "report.html", html)
    assert path.read_text() == html
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]


def test_sections_drawn_in_the_background_equal_those_drawn_from_the_file(tmp_path):
    """A run draws each section in a second process (or, once the run is over, those not yet
    begun, in its own); the report is byte for byte what `rginspect report` draws from
    results.nc alone. BackgroundSections on its own: every section comes back, by either path."""
    from pathlib import Path

    import rginspect
    from rginspect.engine import RunSettings, run_checkpoint
    from rginspect.report.build import BackgroundSections, analysis_section, report_from_results
    from rginspect.results import ResultsStore

    checkpoint = Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt"
    settings = RunSettings(plugins="likelihood,free_energy,receptive", progress=False)
    result = run_checkpoint(checkpoint, tmp_path / "run", settings)
    assert [outcome.status for outcome in result.outcomes] == ["ok"] * 3
    redrawn = report_from_results(result.results_path, tmp_path / "redrawn.html")
    assert redrawn.read_bytes() == result.report_path.read_bytes()

    stored = ResultsStore(result.results_path).datasets()
    with BackgroundSections() as sections:
        for name, dataset in stored.items():
            sections.submit(name, dataset)
        views = sections.finished(stored)
    assert views == {name: analysis_section(name, dataset) for name, dataset in stored.items()}


def test_an_interrupted_run_does_not_wait_for_the_section_being_drawn():
    """Ctrl-C during a run: the finished analyses are already stored and no report comes, so the
    section the background process is drawing is stopped, not waited for."""
    import time

    from rginspect.report.build import BackgroundSections

    started = time.perf_counter()
    with pytest.raises(KeyboardInterrupt), BackgroundSections() as sections:
        if not sections.in_background:
            pytest.skip("sections are drawn in the background only with more than one CPU")
        sections._pool.submit(time.sleep, 60)  # a section that takes a minute to draw
        time.sleep(0.5)  # the worker has begun it
        raise KeyboardInterrupt
    assert time.perf_counter() - started < 15


def _sections_in_a_daemon(queue) -> None:
    from rginspect.report.build import BackgroundSections

    with BackgroundSections() as sections:
        queue.put(not sections.in_background)


def test_sections_are_drawn_in_process_inside_a_daemonic_worker():
    """A Dask worker runs tasks in a daemonic process, which may not start children: the run
    draws its sections itself there instead of failing ("daemonic processes are not allowed to
    have children", as a `sweep --scheduler local:2` of field checkpoints did)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    worker = context.Process(target=_sections_in_a_daemon, args=(queue,), daemon=True)
    worker.start()
    drawn_in_process = queue.get(timeout=60)
    worker.join(timeout=60)
    assert worker.exitcode == 0 and drawn_in_process
