"""Sweeps on a real Dask cluster on 127.0.0.1: a scheduler and two workers as separate processes.

The gathered results equal a serial sweep; a worker killed mid-sweep costs nothing; a task that
fails for good is that checkpoint's failure only; every process is gone at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
from click.testing import CliRunner
from conftest import untrained_phi4_checkpoints

import rginspect
from rginspect.cli import main
from rginspect.distributed import dask_client, dask_map
from rginspect.results import ResultsStore
from rginspect.sweep import JobOutcome, SweepJob

distributed = pytest.importorskip("dask.distributed")
KAPPAS = (0.2, 0.3, 0.5, 0.6)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def cluster():
    """`dask scheduler` and two `dask worker`s (no nanny: killing one kills the worker)."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    # the workers can import this module, for the test functions it sends them
    tests = str(Path(__file__).parent)
    python_path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
    environment = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=python_path)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "env": environment}
    processes = {
        "scheduler": subprocess.Popen(
            [
                sys.executable,
                "-m",
                "distributed.cli.dask_scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--dashboard-address",
                ":0",
            ],
            **quiet,
        )  # fmt: skip
    }
    for name in ("w1", "w2"):
        processes[name] = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
             "--no-nanny", "--name", name, "--no-dashboard", "--host", "127.0.0.1"], **quiet,
        )  # fmt: skip
    with distributed.Client(address, timeout="60s") as client:
        client.wait_for_workers(2, timeout=120)
    yield address, processes
    for process in processes.values():
        process.terminate()
    for process in processes.values():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert all(process.poll() is not None for process in processes.values())


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    return untrained_phi4_checkpoints(tmp_path_factory.mktemp("phi4"), KAPPAS)


def sweep(checkpoints, out: Path, *extra: str):
    arguments = ["sweep", *checkpoints, "--plugins", "summary,correlation", "--samples", "512",
                 "-p", "correlation.resamples=20", "--out", str(out), "--quiet", *extra]  # fmt: skip
    return CliRunner().invoke(main, arguments)


def combined(out: Path) -> dict[str, xr.Dataset]:
    tree = ResultsStore(out / "sweep.nc").read()
    return {name: node.to_dataset() for name, node in tree.children.items()}


def test_cluster_sweep_equals_the_serial_sweep(cluster, checkpoints, tmp_path):
    address, _ = cluster
    serial = sweep(checkpoints, tmp_path / "serial")
    assert serial.exit_code == 0, serial.output
    spread = sweep(checkpoints, tmp_path / "cluster", "--scheduler", address)
    assert spread.exit_code == 0, spread.output
    expected, gathered = combined(tmp_path / "serial"), combined(tmp_path / "cluster")
    assert set(gathered) == {"summary", "correlation"}
    for name, dataset in expected.items():
        assert list(gathered[name].kappa.values) == list(KAPPAS)
        # workers run one thread, the serial sweep several: float32 sums differ in the last bits,
        # and a fitted ξ near its lower bound (0.037 for these untrained flows) moves by ~1e-6
        xr.testing.assert_allclose(gathered[name], dataset, rtol=1e-5)
    # one task per (checkpoint, analysis), each in its own folder
    assert sorted(p.name for p in (tmp_path / "cluster" / "phi4_k0.2").iterdir()) == [
        "correlation",
        "summary",
    ]


def test_a_worker_killed_mid_sweep_costs_nothing(cluster, checkpoints, tmp_path):
    address, processes = cluster
    out = tmp_path / "sweep"
    runner = subprocess.Popen(
        [sys.executable, "-m", "rginspect.cli", "sweep", *checkpoints, "--plugins",
         "correlation", "--samples", "4096", "--scheduler", address, "--out", str(out),
         "--quiet"],
        env=dict(os.environ, OMP_NUM_THREADS="1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    with distributed.Client(address, timeout="30s") as observer:
        deadline = time.time() + 120
        busy = []
        while not busy:  # wait until w2 is running a task, then kill it
            assert time.time() < deadline and runner.poll() is None, runner.stderr
            workers = observer.scheduler_info()["workers"]
            processing = observer.processing()
            busy = [a for a, info in workers.items() if info["name"] == "w2" and processing.get(a)]
            time.sleep(0.05)
    processes["w2"].send_signal(signal.SIGKILL)
    processes["w2"].wait(timeout=30)
    stdout, stderr = runner.communicate(timeout=300)
    assert runner.returncode == 0, stderr
    results = combined(out)["correlation"]
    assert list(results.kappa.values) == list(KAPPAS)
    assert results.xi.sel(ensemble="action").notnull().all()


def fail_on_bad(job: SweepJob) -> JobOutcome:
    """Raises, on every try, for the job named "bad"; the workers import it from this module."""
    if job.name == "bad":
        raise ArithmeticError("diverged")
    return JobOutcome(job.checkpoint, job.name, None)


def test_a_task_that_fails_for_good_is_that_checkpoints_failure(cluster, checkpoints, tmp_path):
    address, _ = cluster
    jobs = [SweepJob(name, name, tmp_path, None) for name in ("a", "bad", "c")]
    with distributed.Client(address, timeout="30s") as client:
        outcomes = list(dask_map(client, retries=1)(fail_on_bad, jobs))
    assert [o.name for o in outcomes] == ["a", "bad", "c"]
    assert [o.error for o in outcomes] == ["", "task failed: ArithmeticError: diverged", ""]

    # through the CLI: an unreadable checkpoint fails, the others are gathered, exit status 1
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = CliRunner().invoke(main, ["sweep", *checkpoints[:2], str(broken), "--plugins",
                                       "summary", "--scheduler", address, "--out",
                                       str(tmp_path / "sweep"), "--quiet"])  # fmt: skip
    assert result.exit_code == 1
    assert "broken.pt" in result.output
    assert list(combined(tmp_path / "sweep")["summary"].kappa.values) == list(KAPPAS[:2])


def test_local_workers_do_not_get_the_nannys_malloc_trim_setting():
    """Dask's nanny would set MALLOC_TRIM_THRESHOLD_=65536: twice the time on every task here."""
    with dask_client("local:1", echo=lambda line: None) as client:
        environments = client.run(lambda: dict(os.environ))
    (environment,) = environments.values()
    assert "MALLOC_TRIM_THRESHOLD_" not in environment
    assert environment["OMP_NUM_THREADS"] == "1"


def test_workers_train_through_the_python_api(cluster, tmp_path):
    """Training tasks call `train_field_checkpoint` on the workers (never the command line); a job
    that cannot train is None, the others are written."""
    from rginspect.distributed import train_many

    address, _ = cluster
    jobs = [
        {
            "out": str(tmp_path / f"ising_{T}.pt"),
            "steps": 2,
            "action": {"name": "ising", "L": 4, "T": T},
        }
        for T in (2.0, 2.5)
    ]
    jobs.append({"out": str(tmp_path / "bad.pt"), "steps": 2, "action": {"name": "nope", "L": 4}})
    with dask_client(address, echo=lambda line: None) as client:
        written = train_many(client, jobs, retries=0)
    assert written[:2] == [job["out"] for job in jobs[:2]] and written[2] is None
    assert rginspect.load(written[1]).action.config()["T"] == 2.5
