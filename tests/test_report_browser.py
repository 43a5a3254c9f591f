"""The report in a real browser (headless Chromium through Playwright): it loads offline without
errors, every figure shows, the contents links land, and hostile plugin text stays text."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import rginspect
from rginspect import plugin_manager
from rginspect.analysis import Analysis, Parameter, Section, Table
from rginspect.engine import RunSettings, run_checkpoint
from rginspect.report.build import report_from_results

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright to run")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Chromium (Debian: apt-get install chromium)"
)
PHI4 = Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt"
PAYLOADS = (
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    "</table><b onmouseover=alert(3)>bold?</b>",
)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        yield launched
        launched.close()


def visit(browser, report: Path) -> dict:
    """Open a report offline; collect console errors, page errors, dialogs and requests."""
    page = browser.new_page()
    seen = {"errors": [], "requests": [], "dialogs": []}
    page.on("console", lambda m: m.type in ("error", "warning") and seen["errors"].append(m.text))
    page.on("pageerror", lambda error: seen["errors"].append(str(error)))
    page.on("request", lambda request: seen["requests"].append(request.url))
    page.on("dialog", lambda dialog: (seen["dialogs"].append(dialog.message), dialog.dismiss()))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")
    seen["page"] = page
    return seen


def test_demo_report_loads_offline_with_every_figure_and_link(browser, tmp_path):
    settings = RunSettings(
        plugins="summary,likelihood,receptive,goldstone", samples=256, progress=False
    )
    report = run_checkpoint(PHI4, tmp_path, settings).report_path
    seen = visit(browser, report)
    page = seen["page"]
    assert seen["errors"] == [] and seen["dialogs"] == []
    assert seen["requests"] == [report.as_uri()]  # figures are inline data: URIs, nothing fetched
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.naturalWidth, i.naturalHeight,"
        " i.getBoundingClientRect().width, i.getBoundingClientRect().height])"
    )
    assert len(images) >= 6
    assert all(min(sizes) > 0 for sizes in images)
    links = page.evaluate(
        "Array.from(document.querySelectorAll('a[href^=\"#\"]')).map(a => a.getAttribute('href'))"
    )
    assert len(links) == 4
    for link in links:
        assert page.evaluate("id => document.getElementById(id) !== null", link[1:]), link


class Hostile(Analysis):
    """Puts HTML and script into every string a plugin controls."""

    name = "hostile"
    description = PAYLOADS[0]
    parameters = {PAYLOADS[1]: Parameter(str, PAYLOADS[2], PAYLOADS[0])}

    def run(self, context):
        return xr.Dataset(
            {"value": ("i", np.arange(3.0), {"units": PAYLOADS[1]})}, attrs={"note": PAYLOADS[2]}
        )

    def render(self, dataset):
        import matplotlib.pyplot as plt

        from rginspect.analysis import Figure

        figure, ax = plt.subplots()
        ax.plot(dataset.value)
        frame = pd.DataFrame({PAYLOADS[0]: [PAYLOADS[1]], "x": [dataset.attrs["note"]]})
        return Section(
            title=PAYLOADS[0],
            how_to_read=PAYLOADS[1],
            figures=[Figure(figure, PAYLOADS[2])],
            tables=[Table(frame, PAYLOADS[0])],
            text=PAYLOADS[1] + "\n\n" + dataset.value.attrs["units"],
        )


class HostileFailure(Analysis):
    name = "hostile_failure"
    description = "fails with HTML in its message"

    def run(self, context):
        raise ValueError(PAYLOADS[1])

    def render(self, dataset):
        raise NotImplementedError


def test_hostile_plugin_text_is_shown_literally_and_never_runs(browser, tmp_path, monkeypatch):
    analyses = {"hostile": Hostile(), "hostile_failure": HostileFailure()}
    monkeypatch.setattr(plugin_manager, "available_analyses", lambda: analyses)
    settings = RunSettings(plugins="hostile,hostile_failure", progress=False)
    first = run_checkpoint(PHI4, tmp_path, settings).report_path
    rerendered = report_from_results(tmp_path / "results.nc", tmp_path / "rerendered.html")
    for report in (first, rerendered):
        seen = visit(browser, report)
        page = seen["page"]
        assert page.evaluate("window.__pwned") is None
        assert seen["dialogs"] == [] and seen["errors"] == []
        assert page.evaluate("document.querySelectorAll('script, b[onmouseover]').length") == 0
        assert page.evaluate("document.querySelectorAll('img[src=\"x\"]').length") == 0
        text = page.inner_text("body")
        for payload in PAYLOADS:
            assert payload in text
