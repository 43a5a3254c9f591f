"""An 8-checkpoint sweep, serial against a Dask LocalCluster of 2 one-thread workers.

Both run the same command line in a fresh process (cluster start-up included); the serial run uses
torch's default threads, as a user's would. Run: python tests/benchmarks/bench_sweep.py [WORKERS]
"""

from __future__ import annotations

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


def timed_sweep(paths: list[str], out: Path, *extra: str) -> float:
    command = [sys.executable, "-m", "rginspect.cli", "sweep", *paths, "--plugins", ANALYSES,
               "--out", str(out), "--quiet", *extra]  # fmt: skip
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    workers = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    with tempfile.TemporaryDirectory() as folder:
        paths = checkpoints(Path(folder))
        serial = timed_sweep(paths, Path(folder) / "serial")
        spread = timed_sweep(paths, Path(folder) / "cluster", "--scheduler", f"local:{workers}")
    print(f"{len(paths)} checkpoints × {ANALYSES}")
    print(f"  serial                        {serial:7.1f} s")
    print(f"  LocalCluster, {workers} workers        {spread:7.1f} s   ×{serial / spread:.2f}")
