"""An 8-checkpoint sweep, serial against a Dask LocalCluster of 2 one-thread workers.

Each runs the same command line in a fresh process (cluster start-up included). Two serial
baselines: torch's default threads (all cores, as a user's run would be) and one thread (what
each worker gets, so the ratio is the scaling over workers). Run:
python tests/benchmarks/bench_sweep.py [WORKERS]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import rginspect
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.physics import Phi4Action

KAPPAS = (0.2, 0.3, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
ANALYSES = "summary,correlation,free_energy,goldstone"


def checkpoints(folder: Path) -> list[str]:
    paths = []
    for kappa in KAPPAS:
        config = rgflow_config(channels=2, L=16, kernel=2, prior="gaussian", domain="field")
        model = RGFlowModel.from_config(config, action=Phi4Action(16, kappa, 1.0))
        paths.append(str(rginspect.save(model, folder / f"phi4_k{kappa}.pt")))
    return paths


def timed_sweep(paths: list[str], out: Path, *extra: str, threads: int | None = None) -> float:
    command = [sys.executable, "-m", "rginspect.cli", "sweep", *paths, "--plugins", ANALYSES,
               "--out", str(out), "--quiet", *extra]  # fmt: skip
    environment = dict(os.environ)
    if threads is not None:
        environment |= {"OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=environment)
    return time.perf_counter() - started


if __name__ == "__main__":
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with tempfile.TemporaryDirectory() as folder:
        paths = checkpoints(Path(folder))
        serial = timed_sweep(paths, Path(folder) / "serial")
        one_thread = timed_sweep(paths, Path(folder) / "serial-1", threads=1)
        spread = timed_sweep(paths, Path(folder) / "cluster", "--scheduler", f"local:{workers}")
    print(f"{len(paths)} checkpoints × {ANALYSES}, on {os.cpu_count()} cores")
    print(f"  serial, torch's default threads   {serial:7.1f} s")
    print(f"  serial, one thread                {one_thread:7.1f} s")
    print(f"  LocalCluster, {workers} one-thread workers {spread:7.1f} s")
    print(f"  ratio against default threads  ×{serial / spread:.2f}")
    print(f"  ratio against one thread       ×{one_thread / spread:.2f}  (target ×1.7 for 2)")
