"""What one machine holds, and what a large scan on a Dask cluster costs.

Part 1, checkpoints per hour per core: `rginspect run` in a fresh process on one thread (as one
sweep job runs on one Dask worker), for the common analysis sets, on an untrained φ⁴ model of
L = 8 and of L = 16 and on the bundled MSDS1 model; 3600 s / the wall time is checkpoints per hour
per core (start-up, loading, the analyses, results and report included).

Part 2, peak memory per model size: `rginspect run --plugins summary,likelihood` on untrained
RG-Flow image models of the paper's layout (nl 8,6,4,2 … nh 512 is 100.6 M parameters at 32×32;
here the bundled model's width, nh 64, at L = 16, 32, 64), the peak resident memory of the process.

Part 3, a sweep on the local Dask cluster: N untrained φ⁴ L = 8 checkpoints × (correlation,
free_energy) with `--scheduler local:W`: the scheduler's tasks (one per checkpoint and analysis),
the bytes each checkpoint writes (its results.nc and report.html, and the sweep's combined files),
and the overhead per task: W × the wall time minus the analyses' own `elapsed_s`, over the tasks
(start of the task, loading the checkpoint, writing and drawing, the scheduler). Then the same
numbers carried to 1000 checkpoints.

    python tests/benchmarks/bench_scaling.py [N_CHECKPOINTS] [WORKERS]     (default 8, 2)
"""

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
from rginspect.results import analysis_nodes, read_results

ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
FIELD_SETS = {
    "summary": "summary",
    "correlation": "correlation",
    "correlation,free_energy": "correlation,free_energy",
}
IMAGE_SETS = {"summary,likelihood": "summary,likelihood", "receptive": "receptive"}
SWEEP_ANALYSES = "correlation,free_energy"


def phi4_checkpoint(folder: Path, L: int, kappa: float) -> str:
    config = rgflow_config(channels=2, L=L, kernel=2, prior="gaussian", domain="field")
    model = RGFlowModel.from_config(config, action=Phi4Action(L, kappa, 1.0))
    return str(rginspect.save(model, folder / f"phi4_L{L}_k{kappa}.pt"))


def image_checkpoint(folder: Path, L: int) -> str:
    config = rgflow_config(channels=3, L=L, kernel=4, prior="laplace", domain="image")
    model = RGFlowModel.from_config(config)
    return str(rginspect.save(model, folder / f"rgflow_L{L}.pt"))


def timed_run(arguments: list[str], out: Path) -> tuple[float, float]:
    """Wall seconds and peak resident GiB of one `rginspect` command in a fresh process (the
    rusage of that process alone, from wait4)."""
    command = [sys.executable, "-m", "rginspect.cli", *arguments, "--out", str(out), "--quiet"]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=errors, env=os.environ | ONE_THREAD
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            errors.seek(0)
            raise RuntimeError(f"{' '.join(command)} failed:\n{errors.read().decode()}")
    return wall, usage.ru_maxrss / 2**20  # KiB on Linux


def part_one(folder: Path) -> None:
    print("1. checkpoints per hour per core (one thread, a fresh process per checkpoint)")
    print(f"   {'model':<28} {'analyses':<26} {'wall s':>7} {'per hour':>9}")
    cases = [
        (phi4_checkpoint(folder, 8, 0.3), "untrained φ⁴ L = 8", FIELD_SETS, []),
        (phi4_checkpoint(folder, 16, 0.3), "untrained φ⁴ L = 16", FIELD_SETS, []),
        (
            str(rginspect.bundled_checkpoint("msds1_rgflow.pt")),
            "bundled MSDS1 (32×32×3)",
            IMAGE_SETS,
            ["--data", "msds1:256"],
        ),
    ]
    for path, label, sets, data in cases:
        for name, plugins in sets.items():
            wall, _ = timed_run(["run", path, "--plugins", plugins, *data], folder / "one")
            print(f"   {label:<28} {name:<26} {wall:>7.1f} {3600 / wall:>9.0f}")


def part_two(folder: Path) -> None:
    print("2. peak memory per model size (run --plugins summary,likelihood, 64 MSDS images)")
    print(f"   {'L':>3} {'parameters':>11} {'file MB':>8} {'wall s':>7} {'peak GiB':>9}")
    for L in (16, 32, 64):
        path = image_checkpoint(folder, L)
        parameters = sum(p.numel() for p in rginspect.load(path).parameters())
        wall, peak = timed_run(
            ["run", path, "--plugins", "summary,likelihood", "--data", "msds1:64"],
            folder / "memory",
        )
        size = Path(path).stat().st_size / 1e6
        print(f"   {L:>3} {parameters:>11,} {size:>8.1f} {wall:>7.1f} {peak:>9.2f}")


def part_three(folder: Path, n: int, workers: int) -> None:
    paths = [phi4_checkpoint(folder, 8, 0.1 + 0.6 * i / max(n - 1, 1)) for i in range(n)]
    out = folder / "sweep"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "rginspect.cli", "sweep", *paths, "--plugins", SWEEP_ANALYSES,
         "--scheduler", f"local:{workers}", "--out", str(out), "--quiet"],
        check=True, capture_output=True,
    )  # fmt: skip
    wall = time.perf_counter() - started
    analyses = SWEEP_ANALYSES.split(",")
    tasks = n * len(analyses)
    elapsed = 0.0
    per_checkpoint = []
    for results in sorted(out.glob("*/*/results.nc")):
        elapsed += sum(
            float(node.attrs.get("elapsed_s", 0.0))
            for node in analysis_nodes(read_results(results)).values()
        )
    for checkpoint in sorted(p for p in out.iterdir() if p.is_dir()):
        per_checkpoint.append(sum(f.stat().st_size for f in checkpoint.rglob("*") if f.is_file()))
    combined = sum((out / name).stat().st_size for name in ("sweep.nc", "sweep.html"))
    bytes_each = sum(per_checkpoint) / len(per_checkpoint)
    overhead = (workers * wall - elapsed) / tasks
    print(f"3. a sweep of {n} untrained φ⁴ L = 8 checkpoints × {SWEEP_ANALYSES} on a local")
    print(f"   cluster of {workers} one-thread workers: {tasks} tasks in {wall:.1f} s")
    print(f"   analyses' own time {elapsed:.1f} s; overhead per task {overhead:.1f} s")
    print(f"   written per checkpoint {bytes_each / 1e6:.2f} MB; sweep.nc + sweep.html "
          f"{combined / 1e6:.2f} MB")  # fmt: skip
    per_task = wall * workers / tasks
    print("   carried to 1000 checkpoints:")
    print(f"     scheduler tasks            {1000 * len(analyses)}")
    print(f"     files written              {1000 * bytes_each / 1e9:.2f} GB")
    print(f"     core-hours                 {1000 * len(analyses) * per_task / 3600:.1f}")
    print(f"     of which overhead          {1000 * len(analyses) * overhead / 3600:.1f}")
    for cores in (16, 64, 256):
        print(
            f"     wall on {cores:>3} one-thread workers {1000 * len(analyses) * per_task / cores / 60:6.1f} min"
        )


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    print(f"{os.cpu_count()} cores; rginspect {rginspect.__version__}")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        part_one(folder)
        part_two(folder)
        part_three(folder, n, workers)
