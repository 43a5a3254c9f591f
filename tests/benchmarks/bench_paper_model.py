"""Time per analysis on an untrained RG-Flow of the paper's default architecture (32×32×3,
nl 8,6,4,2, nr 4, nm 2, nh 512: 100.6 M parameters), with each analysis' defaults on MSDS1 images.

"Before" is issue 13's measurement on this 2-core machine (code of e397f1d). "Now" is the wall
time the engine records for each analysis (`elapsed_s`), plus the whole run's CPU time split into
user and system, and its minor page faults (the allocator churn issue 13 measured: 557 of 1387
CPU-seconds in the kernel over the first five analyses). The machine should be otherwise idle.
Run: python tests/benchmarks/bench_paper_model.py [ANALYSIS...]
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import xarray as xr

ANALYSES = ("summary", "likelihood", "receptive", "traverse", "mix", "inpaint")
ISSUE_BASELINE_S = {  # issue 13 §5, measured at e397f1d on this machine
    "summary": 131,
    "likelihood": 298,
    "receptive": 163,
    "traverse": 93,
    "mix": 5,
    "inpaint": 19 * 60,
}


def paper_checkpoint(folder: Path) -> Path:
    import torch

    import rginspect
    from rginspect.model import RGFlowModel
    from rginspect.nn.architectures import rgflow_config

    torch.manual_seed(0)
    config = rgflow_config(
        channels=3, L=32, kernel=4, nlayers=[8, 6, 4, 2], nresblocks=4, nmlp=2, nhidden=512
    )
    model = RGFlowModel.from_config(config)
    print(
        f"paper-size RG-Flow: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters"
    )
    return rginspect.save(model, folder / "paper_rgflow.pt")


def run(checkpoint: Path, analyses: str, out: Path) -> dict:
    """One `rginspect run` in a fresh process: its wall time, CPU seconds and minor faults."""
    command = [sys.executable, "-m", "rginspect.cli", "run", str(checkpoint), "--plugins",
               analyses, "--data", "msds1", "--out", str(out), "--quiet"]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "wall": time.perf_counter() - started,
        "user": after.ru_utime - before.ru_utime,
        "sys": after.ru_stime - before.ru_stime,
        "faults": after.ru_minflt - before.ru_minflt,
    }


def analysis_times(results: Path) -> dict[str, tuple[str, float]]:
    with xr.open_datatree(results) as tree:
        return {
            name: (node.attrs.get("status", "?"), float(node.attrs.get("elapsed_s", "nan")))
            for name, node in tree.children.items()
        }


if __name__ == "__main__":
    chosen = sys.argv[1:] or list(ANALYSES)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = paper_checkpoint(Path(folder))
        total = run(checkpoint, ",".join(chosen), Path(folder) / "now")
        now = analysis_times(Path(folder) / "now" / "results.nc")
    print(f"on {os.cpu_count()} cores; seconds of wall time per analysis")
    print(f"{'analysis':12} {'before':>8} {'now':>8}  status")
    for name in chosen:
        status, seconds = now.get(name, ("missing", float("nan")))
        before = ISSUE_BASELINE_S.get(name, float("nan"))
        print(f"{name:12} {before:>8.0f} {seconds:>8.1f}  {status}")
    print(
        f"whole run now: {total['wall']:.1f} s wall, {total['user']:.1f} s user + "
        f"{total['sys']:.1f} s system CPU, {total['faults'] / 1e6:.2f} M minor page faults"
    )
