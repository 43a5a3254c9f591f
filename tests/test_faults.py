"""Faults mid-run: analyses that raise, hang, return NaN or need too much memory, and runs that are
interrupted (SIGINT) or killed (SIGKILL): finished work stays valid on disk and --resume completes it."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

import rginspect
from rginspect import plugin_manager
from rginspect.analysis import Analysis, Section
from rginspect.cli import main
from rginspect.results import ResultsStore, analysis_nodes

PHI4 = str(Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt")


class Returns(Analysis):
    """Returns whatever `make()` builds, after `sleep` seconds."""

    def __init__(self, name: str, make, sleep: float = 0.0, memory: int = 0) -> None:
        self.name, self.make, self.sleep, self.memory = name, make, sleep, memory
        self.description = f"test analysis {name}"

    def memory_estimate(self, model, parameters) -> int:
        return self.memory

    def run(self, context):
        time.sleep(self.sleep)
        return self.make()

    def render(self, dataset):
        return Section(self.name, "test", text=f"{self.name} rendered")


def good() -> xr.Dataset:
    return xr.Dataset({"value": ("i", np.arange(3.0))})


def raise_error() -> xr.Dataset:
    raise RuntimeError("the plugin broke")


@pytest.fixture
def faulty(monkeypatch):
    analyses = {
        "first": Returns("first", good),
        "hangs": Returns("hangs", good, sleep=60),
        "nans": Returns("nans", lambda: xr.Dataset({"value": ("i", np.full(3, np.nan))})),
        "raises": Returns("raises", raise_error),
        "huge": Returns("huge", good, memory=1 << 50),
        "last": Returns("last", good),
    }
    monkeypatch.setattr(plugin_manager, "available_analyses", lambda: analyses)
    return analyses


def test_failing_analyses_are_isolated_and_reported(faulty, tmp_path):
    result = CliRunner().invoke(
        main,
        ["run", PHI4, "--plugins", ",".join(faulty), "--timeout", "1", "--out", str(tmp_path),
         "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    tree = ResultsStore(tmp_path / "results.nc").read()
    assert tree["hangs"].attrs["elapsed_s"] < 60  # stopped before its 60 s sleep was over
    status = {name: node.attrs["status"] for name, node in analysis_nodes(tree).items()}
    assert status == dict.fromkeys(faulty, "failed") | {"first": "ok", "last": "ok"}
    errors = {name: node.attrs.get("error", "") for name, node in analysis_nodes(tree).items()}
    assert "--timeout 1 s" in errors["hangs"]
    assert "no finite number" in errors["nans"]
    assert "the plugin broke" in errors["raises"]
    assert "--max-memory" in errors["huge"] and "samples" in errors["huge"]
    report = (tmp_path / "report.html").read_text()
    for message in ("--timeout 1 s", "no finite number", "the plugin broke", "last rendered"):
        assert message in report
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


class Steps(Analysis):
    """Sleeps through ten steps shown by context.progress."""

    name, description = "steps", "test analysis with a progress bar"

    def run(self, context):
        for _ in context.progress(range(10), desc="stepping"):
            time.sleep(0.03)
        return good()

    def render(self, dataset):
        return Section(self.name, "test")


@pytest.mark.parametrize("quiet", [False, True])
def test_wall_time_is_stored_and_shown_and_progress_obeys_quiet(monkeypatch, tmp_path, quiet):
    monkeypatch.setattr(plugin_manager, "available_analyses", lambda: {"steps": Steps()})
    command = ["run", PHI4, "--plugins", "steps", "--out", str(tmp_path)]
    result = CliRunner().invoke(main, command + ["--quiet"] * quiet)
    assert result.exit_code == 0
    assert ("stepping" in result.output) is not quiet
    elapsed = ResultsStore(tmp_path / "results.nc").read()["steps"].attrs["elapsed_s"]
    assert 0.3 <= elapsed < 100  # its ten sleeps, in seconds (not milliseconds)
    assert f"time: {elapsed:.1f} s" in (tmp_path / "report.html").read_text()


def test_a_real_analysis_is_refused_above_max_memory(tmp_path):
    result = CliRunner().invoke(
        main,
        ["run", PHI4, "--plugins", "receptive", "--max-memory", "0.000001", "--out",
         str(tmp_path), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    error = ResultsStore(tmp_path / "results.nc").read()["receptive"].attrs["error"]
    assert error.startswith("MemoryError: needs about") and "receptive.samples" in error


def test_unwritable_output_is_one_line_with_its_exit_code(tmp_path, monkeypatch):
    def denied(*args, **kwargs):  # what a read-only folder does (chmod does not stop root)
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", denied)
    result = CliRunner().invoke(
        main, ["run", PHI4, "--plugins", "summary", "--out", str(tmp_path / "x")]
    )
    assert result.exit_code == 3
    assert result.output.startswith("error: cannot write") and "Permission denied" in result.output
    assert result.output.count("\n") == 1


# -- interrupted and killed runs, in a real process ---------------------------------------------
RUNNER = """
import os, signal, sys, time
from pathlib import Path
# Ctrl-C as in a terminal, also where the tests run as a background job (a shell starts those
# with SIGINT ignored, and an ignored signal stays ignored in every process they start)
signal.signal(signal.SIGINT, signal.default_int_handler)
import numpy as np, xarray as xr
from rginspect import plugin_manager
from rginspect.analysis import Analysis, Section

class Step(Analysis):
    def __init__(self, name):
        self.name, self.description = name, "test step"
    def run(self, context):
        if self.name == "slow" and os.environ.get("STALL"):
            Path(os.environ["STALL"]).touch()
            time.sleep(120)
        rng = np.random.default_rng(context.seed + len(self.name))
        return xr.Dataset({"value": ("i", rng.normal(size=5))})
    def render(self, dataset):
        return Section(self.name, "test")

built_in = plugin_manager.available_analyses()
plugin_manager.available_analyses = lambda: built_in | {n: Step(n) for n in ("quick", "slow", "last")}
from rginspect.cli import main
sys.exit(main())
"""
PLUGINS = "summary,quick,slow,last"


def start_run(script: Path, out: Path, *extra: str, stall: Path | None = None):
    environment = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    if stall is not None:
        environment["STALL"] = str(stall)
    command = [sys.executable, str(script), "run", PHI4, "--plugins", PLUGINS, "--out", str(out)]
    return subprocess.Popen(
        [*command, "--quiet", *extra], env=environment, stderr=subprocess.PIPE, text=True
    )


def datasets(out: Path) -> dict[str, xr.Dataset]:
    tree = ResultsStore(out / "results.nc").read()
    return {name: node.to_dataset() for name, node in analysis_nodes(tree).items()}


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGKILL])
def test_interrupted_run_keeps_finished_work_and_resumes_to_the_same_results(tmp_path, how):
    script = tmp_path / "runner.py"
    script.write_text(textwrap.dedent(RUNNER))
    reference = tmp_path / "reference"
    assert start_run(script, reference).wait(timeout=300) == 0
    out, stall = tmp_path / "interrupted", tmp_path / "stalled"
    process = start_run(script, out, stall=stall)
    deadline = time.time() + 120
    while not stall.exists():
        assert time.time() < deadline and process.poll() is None, "the run never reached 'slow'"
        time.sleep(0.1)
    process.send_signal(how)
    code = process.wait(timeout=60)
    stderr = process.stderr.read()
    if how == signal.SIGINT:
        assert code == 130
        assert "interrupted" in stderr and "--resume" in stderr and "Traceback" not in stderr
    else:
        assert code == -signal.SIGKILL
    finished = datasets(out)  # readable, and holds exactly what finished
    assert set(finished) == {"summary", "quick"}
    assert all(d.attrs["status"] == "ok" for d in finished.values())
    assert start_run(script, out, "--resume").wait(timeout=300) == 0
    assert not list(out.glob(".results-*")) and not list(out.glob(".report-*"))
    resumed, expected = datasets(out), datasets(reference)
    assert set(resumed) == set(expected)
    for name in expected:
        xr.testing.assert_allclose(
            resumed[name].drop_attrs(deep=False), expected[name].drop_attrs(deep=False), rtol=1e-6
        )


def test_disk_full_is_one_line_with_its_exit_code(tmp_path, monkeypatch):
    def no_space(self, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", no_space)
    result = CliRunner().invoke(main, ["run", PHI4, "--plugins", "summary", "--out", str(tmp_path)])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    assert lines == [f"error: cannot write {tmp_path / 'results.nc'} (No space left on device); "
                     "free space or choose another --out (what was saved before stays in the "
                     "previous copy)"]  # fmt: skip
    assert list(tmp_path.iterdir()) == []
