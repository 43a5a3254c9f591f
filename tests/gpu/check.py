"""The GPU check (issue 36; docs/gpu.md): CPU against CUDA on the bundled models, component by
component and through the command line, and the paper-size model's throughput on the GPU.

Every comparison is max |cpu − cuda| / max(1, max |cpu|) over the compared numbers, against the
tolerance written beside it: 1e-4 where only float rounding separates the two devices (random
numbers are drawn on the CPU and moved, see rginspect.device), looser where an optimisation, a
discrete choice (an accept decision, a ridge penalty, nearest neighbours) or training amplifies
rounding, with the reason. On a machine without CUDA the CPU half runs and every comparison is
SKIP.

Run from the repository root: python tests/gpu/check.py [--parts components,run,train,sweep,paper]
[--out FOLDER] [--report FILE.json]. Exit status 0: all passed on a GPU; 1: a check failed;
4: no CUDA here, the CPU half ran and passed. Not collected by pytest (tests/gpu is ignored).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import xarray as xr

import rginspect
from rginspect.device import full_precision, tf32

ROOT = Path(__file__).resolve().parents[2]
ASSETS = Path(rginspect.__file__).parent / "assets"
BUNDLES = ("msds1_rgflow", "msds1_glow", "phi4_L16")
EXIT_NO_CUDA = 4
ROUNDING = 1e-4  # float32 rounding through a deep flow, relative to max(1, |value|)

# `rginspect run` on each bundle with every analysis, sized to take seconds; budgets off (0) so
# that both devices do the same samples and steps whatever their speed
RUN_SAMPLES = 256  # data inputs and HMC samples (4 steps of the 64 chains: correlation's least)
RUN_PARAMETERS = {
    "receptive": {"samples": 2, "budget": 0},
    "traverse": {"inputs": 64, "per_level": 1, "steps": 3},
    "inpaint": {"inputs": 2, "steps": 30, "budget": 0},
    "disentangle": {"inputs": 256, "folds": 3},
    "goldstone": {"inputs": 256},
    "correlation": {"samples": 512, "inputs": 256, "resamples": 100},  # 5 per fitted distance
    "free_energy": {"samples": 512},
    "mutual_info": {"inputs": 256, "knn_pairs": 6, "null_ensembles": 2},
    "holography": {"inputs": 256, "action_inputs": 64, "null_ensembles": 2, "groups": 8},
}
# per analysis: the tolerance on its variables, and why it is that
RUN_TOLERANCE = {
    "summary": (ROUNDING, "encodings and their moments"),
    "likelihood": (ROUNDING, "log-dets and prior terms"),
    "receptive": (ROUNDING, "exact Jacobians over the cone"),
    "traverse": (ROUNDING, "decodings of fixed latents (a near-tie in their ranking would show)"),
    "mix": (ROUNDING, "decodings of swapped latents"),
    "inpaint": (1e-2, "30 Adam steps amplify rounding; a wrong fill differs by O(0.1)"),
    "disentangle": (1e-2, "the ridge penalty is an argmin over CV errors: a near-tie can flip"),
    "goldstone": (1e-3, "phases of HMC fields (float64) through float32 encodings"),
    "correlation": (2e-2, "a Metropolis accept decision flipped by rounding moves ~1/N (N=512)"),
    "free_energy": (1e-3, "log-sum-exp of 512 importance weights"),
    "mutual_info": (1e-2, "k-nearest-neighbour counts change where rounding reorders distances"),
    "holography": (1e-2, "censored likelihood fits stop at rounding-level different points"),
}
TRAINING = (1e-2, "20 optimiser steps amplify rounding; a wrong gradient differs by O(1)")
# analyses of models trained so: free_energy of a barely trained flow rests on a few importance
# weights; training with 1 or 2 CPU threads moved its ln Z error by 1.5e-2 (CPU mode, 2026-12-06)
SWEEP = (5e-2, "analyses of 20-step models; 1 vs 2 CPU threads moved ln Z's error 1.5e-2")
TIMING_VARIABLES = ("seconds", "step_seconds")  # wall times: they differ by design
PARTS = ("components", "run", "train", "sweep", "paper")
SHARED_ANALYSES = ["summary", "likelihood", "receptive", "correlation", "mutual_info"]


@dataclass
class Row:
    part: str
    name: str
    status: str  # PASS, FAIL, SKIP or INFO
    deviation: float = math.nan
    tolerance: float = math.nan
    note: str = ""


ROWS: list[Row] = []


def record(row: Row) -> None:
    ROWS.append(row)
    found = "" if math.isnan(row.deviation) else f"{row.deviation:.2e}"
    tolerance = "" if math.isnan(row.tolerance) else f"{row.tolerance:.0e}"
    print(f"{row.status:4} {row.part:9} {row.name:46} {found:>9} {tolerance:>6}  {row.note}",
          flush=True)  # fmt: skip


def deviation(cpu, cuda) -> float:
    """max |cpu − cuda| / max(1, max |cpu|); inf when shapes or the finite entries differ."""
    a, b = (np.asarray(torch.as_tensor(v).detach().cpu(), dtype=float) for v in (cpu, cuda))
    if a.shape != b.shape or not np.array_equal(np.isfinite(a), np.isfinite(b)):
        return math.inf
    finite = np.isfinite(a)
    if not finite.any():
        return 0.0
    return float(np.abs(a - b)[finite].max()) / max(1.0, float(np.abs(a[finite]).max()))


def compare(part: str, name: str, values: dict, tolerance: float, note: str = "") -> None:
    """A row for one quantity computed on each device (values: device -> numbers)."""
    if "cuda" not in values:
        record(Row(part, name, "SKIP", note="no CUDA: computed on the CPU only"))
        return
    found = deviation(values["cpu"], values["cuda"])
    record(Row(part, name, "PASS" if found <= tolerance else "FAIL", found, tolerance, note))


# -- components --------------------------------------------------------------------------------


def component_checks(devices: list[str]) -> None:
    """encode, decode, log-dets, log q, same-seed samples and exact Jacobians of every bundle;
    HMC, flow samples and sampler_quality of the field bundle."""
    from rginspect.data import load_data
    from rginspect.jacobian import decoder_jacobian

    for bundle in BUNDLES:
        models = {d: rginspect.load(ASSETS / f"{bundle}.pt", device=d) for d in devices}
        model = models["cpu"]
        if model.domain == "image":
            channels, size = model.data_shape[:2]
            images = load_data("msds1:16", channels=channels, size=size, progress=False)
            x = model.preprocess(torch.as_tensor(images.images_or_fields))[0]
        else:
            x = model.sample(16, generator=torch.Generator().manual_seed(1))
        values: dict[str, dict] = {}
        for d, on in models.items():
            z, encode_logdet = on.encode(x.to(d))
            decoded, decode_logdet = on.decode(z)
            jacobian, method = decoder_jacobian(on, z[:1])
            values[d] = {
                "encode z": z,
                "encode log-det": encode_logdet,
                "decode x": decoded,
                "decode log-det": decode_logdet,
                "log q(x)": on.log_prob(x.to(d)),
                "samples, seed 0": on.sample(16, generator=torch.Generator().manual_seed(0)),
                f"Jacobian ({method})": jacobian,
            }
        for name in values["cpu"]:
            compare("component", f"{bundle}: {name}", {d: v[name] for d, v in values.items()},
                    ROUNDING)  # fmt: skip
        if model.action is not None:
            field_checks(bundle, models)


def field_checks(bundle: str, models: dict) -> None:
    from rginspect.physics import hmc
    from rginspect.physics.proposals import flow_samples, symmetry_group
    from rginspect.train import sampler_quality

    group = symmetry_group(models["cpu"].data_shape[0], 2, conjugate=False)  # φ → ±φ
    chains, samples, quality = {}, {}, {}
    for d, on in models.items():
        generator = torch.Generator().manual_seed(2)
        chains[d] = hmc(on.action, 640, n_chains=64, n_burnin=50, generator=generator, device=d)
        generator = torch.Generator().manual_seed(3)
        samples[d] = flow_samples(on, 512, batch_size=256, generator=generator, group=group)
        quality[d] = sampler_quality(on, 1024, group=group)
    compare("component", f"{bundle}: HMC fields (float64)", {d: c.samples for d, c in
            chains.items()}, 1e-6, "not chaotic: a 1e-15 change at the start is 5e-10 after "
            "310 steps (CPU)")  # fmt: skip
    compare("component", f"{bundle}: HMC acceptance",
            {d: c.acceptance_rate for d, c in chains.items()}, 0.0)  # fmt: skip
    for index, name in enumerate(("fields", "log q", "action")):
        compare("component", f"{bundle}: flow samples, {name}",
                {d: s[index] for d, s in samples.items()}, ROUNDING)  # fmt: skip
    for key, tolerance, why in [
        ("acceptance", 5 / 1023, "a few of 1023 accept decisions may flip with rounding"),
        ("ess_fraction", ROUNDING, ""),
        ("kl_per_site", ROUNDING, ""),
        ("free_energy_per_site", ROUNDING, ""),
    ]:
        compare("component", f"{bundle}: sampler_quality {key}",
                {d: getattr(q, key) for d, q in quality.items()}, tolerance, why)  # fmt: skip


def tf32_effect() -> None:
    """What full precision buys: the Glow's encoding with TF32 allowed, against full fp32."""
    model = rginspect.load(ASSETS / "msds1_glow.pt", device="cuda", check=False)
    x = model.sample(16, generator=torch.Generator().manual_seed(0))
    exact = model.encode(x)[0]
    with tf32(True):
        rounded = model.encode(x)[0]
    record(Row("component", "msds1_glow: encode z, TF32 against fp32", "INFO",
               deviation(exact, rounded), note="what rginspect's full fp32 avoids"))  # fmt: skip


# -- the command line ------------------------------------------------------------------------


def cli(arguments: list, log: Path, threads: int | None = None) -> subprocess.Popen:
    """`rginspect ARGUMENTS` in a process of its own, its output to `log`."""
    environment = dict(os.environ, PYTHONUNBUFFERED="1")
    if threads:
        environment["OMP_NUM_THREADS"] = str(threads)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "rginspect.cli", *map(str, arguments)]
    return subprocess.Popen(
        command, stdout=log.open("w"), stderr=subprocess.STDOUT, env=environment
    )


def finished(label: str, process: subprocess.Popen, log: Path) -> bool:
    """Whether a command ended as a run may (0, or 1 when an analysis failed: compared later)."""
    status = process.wait()
    if status in (0, 1):
        return True
    last = (log.read_text().strip().splitlines() or [""])[-1]
    record(Row("cli", label, "FAIL", note=f"exit {status}: {last}"))
    return False


def on_devices(devices: list[str], arguments, out: Path, label: str) -> dict[str, Path]:
    """The same command once per device, at the same time (the CPU one on all but two cores);
    each device's folder (OUT/label/device) where the command ended as a run may."""
    began, cores = time.perf_counter(), os.cpu_count() or 2
    started = {}
    for d in devices:
        folder = out / label / d
        threads = max(1, cores - 2) if d == "cpu" and len(devices) > 1 else None
        started[d] = folder, cli(arguments(d, folder), folder / "log.txt", threads)
    folders = {
        d: folder
        for d, (folder, process) in started.items()
        if finished(f"{label} on {d}", process, folder / "log.txt")
    }
    print(f"     ({label}: {time.perf_counter() - began:.0f} s)", flush=True)
    return folders


def parameter_options(names: list[str]) -> list[str]:
    """-p options that size the named analyses (RUN_PARAMETERS)."""
    return [
        part
        for name in names
        for key, value in RUN_PARAMETERS.get(name, {}).items()
        for part in ("-p", f"{name}.{key}={value}")
    ]


def run_arguments(bundle: str):
    """`rginspect run` with every analysis that applies to the bundle (-p options must name
    selected analyses only), sized by RUN_PARAMETERS."""
    from rginspect.engine import select_analyses

    model = rginspect.load(ASSETS / f"{bundle}.pt", check=False)
    names = [analysis.name for analysis in select_analyses("all", model, have_data=True)]

    def arguments(d: str, folder: Path) -> list:
        return ["run", ASSETS / f"{bundle}.pt", "--plugins", "all", "--samples", RUN_SAMPLES,
                *parameter_options(names), "--device", d, "--out", folder, "--quiet"]  # fmt: skip

    return arguments


def read_results(path: Path) -> dict[str, xr.Dataset]:
    """The groups of a results.nc or sweep.nc, with their attributes."""
    with xr.open_datatree(path) as tree:
        return {name: node.to_dataset().load() for name, node in tree.children.items()}


def compare_results(label: str, paths: dict, tolerances: dict, names=None) -> None:
    """Each analysis' numbers in two results files (those `names`, default all), the first
    against the second, with its tolerance; on one device, that its analyses all ran."""
    results = [read_results(path) for path in paths.values()]
    if len(results) < 2:
        record(Row("cli", label, "SKIP", note="no CUDA: the CPU run alone"))
        for name, dataset in results[0].items() if results else ():
            if dataset.attrs.get("status", "ok") != "ok":
                record(Row("cli", f"{label}: {name}", "FAIL", note=dataset.attrs.get("error")))
        return
    first, second = results
    for name in names or sorted(set(first) | set(second)):
        tolerance, why = tolerances.get(name, (ROUNDING, ""))
        pair = [first.get(name), second.get(name)]
        states = [d.attrs.get("status", "ok") if d is not None else "missing" for d in pair]
        if states != ["ok", "ok"]:
            errors = [d.attrs.get("error", "") for d in pair if d is not None]
            record(Row("cli", f"{label}: {name}", "FAIL", note=f"{states}: {errors}"))
            continue
        worst, where = 0.0, "no numbers"
        for variable, data in pair[0].data_vars.items():
            if data.dtype.kind not in "fiub" or variable in TIMING_VARIABLES:
                continue
            other = pair[1].data_vars.get(variable)
            found = math.inf if other is None else deviation(data.values, other.values)
            if found > worst or where == "no numbers":  # the variable that deviates most
                worst, where = found, variable
        status = "PASS" if worst <= tolerance else "FAIL"
        record(Row("cli", f"{label}: {name}", status, worst, tolerance, f"{where}: {why}"))


def run_checks(devices: list[str], out: Path) -> None:
    """`rginspect run` with every analysis on each bundle, on each device."""
    for bundle in BUNDLES:
        folders = on_devices(devices, run_arguments(bundle), out, f"run {bundle}")
        paths = {d: folder / "results.nc" for d, folder in folders.items()}
        compare_results(f"run {bundle}", paths, RUN_TOLERANCE)


def jobs_check(device: str, out: Path) -> None:
    """`run --jobs 2` (on a GPU its workers are spawned) gives the single runs' numbers on the
    same device, for the analyses the two models share."""
    pair = ("msds1_rgflow", "phi4_L16")
    folder = out / "run --jobs 2" / device
    arguments = ["run", *(ASSETS / f"{b}.pt" for b in pair), "--plugins",
                 ",".join(SHARED_ANALYSES), "--samples", RUN_SAMPLES,
                 *parameter_options(SHARED_ANALYSES), "--device", device, "--jobs", "2",
                 "--out", folder, "--quiet"]  # fmt: skip
    if not finished(f"run --jobs 2 on {device}", cli(arguments, folder / "log.txt"),
                    folder / "log.txt"):  # fmt: skip
        return
    for bundle in pair:
        paths = {
            "single": out / f"run {bundle}" / device / "results.nc",
            "jobs": folder / bundle / "results.nc",
        }
        compare_results(f"run --jobs 2 {bundle} ({device})", paths, RUN_TOLERANCE,
                        SHARED_ANALYSES)  # fmt: skip


def training_checks(devices: list[str], out: Path) -> None:
    """`train field` and `train image` (RG-Flow and Glow) for 20 steps on each device: the
    losses and weights agree to the training tolerance, and each checkpoint records the device
    it was trained on."""
    small = ["--steps", "20", "--nlayers", "1", "--nhidden", "16", "--quiet"]
    image = ["train", "image", "--data", "msds1:256", "--batch-size", "16", *small]
    commands = {
        "train field phi4 L=8": ["train", "field", "--action", "phi4", "--kappa", "0.3",
                                 "--lamb", "1", "--size", "8", "--batch-size", "64",
                                 "--nresblocks", "1", "--nmlp", "1", "--seed", "1", *small],
        "train image rgflow": [*image, "--nresblocks", "1", "--nmlp", "1"],
        "train image glow": [*image, "--architecture", "glow", "--levels", "2"],
    }  # fmt: skip
    tolerance, why = TRAINING
    for label, command in commands.items():

        def arguments(d: str, folder: Path, command=command) -> list:
            return [*command, "--device", d, "-o", folder / "model.pt"]

        folders = on_devices(devices, arguments, out, label)
        loaded = {
            d: rginspect.load(folder / "model.pt", check=False)
            for d, folder in folders.items()
            if (folder / "model.pt").exists()
        }
        for d, model in loaded.items():
            recorded = model.provenance["training"]["device"]
            status = "PASS" if recorded.split(":")[0] == d else "FAIL"
            record(Row("cli", f"{label}: trained on ({d})", status, note=recorded))
        losses = {d: m.provenance["training"]["final_loss"] for d, m in loaded.items()}
        compare("cli", f"{label}: final loss", losses, tolerance, why)
        weights = {
            d: torch.cat([w.reshape(-1).double() for w in m.state_dict().values()])
            for d, m in loaded.items()
        }
        compare("cli", f"{label}: weights", weights, tolerance, why)


def sweep_checks(devices: list[str], out: Path) -> None:
    """`sweep --train field` for two tiny φ⁴ models on each device, and on a local Dask cluster
    on the last device (one worker per GPU): the combined numbers agree to SWEEP, and every
    trained checkpoint records its device."""
    device = devices[-1]

    def arguments(d: str, folder: Path, *extra: str) -> list:
        return ["sweep", "--train", "field", "--action", "phi4", "--lamb", "1", "--kappa",
                "0.2:0.3:2", "--size", "8", "--steps", "20", "--plugins", "summary,free_energy",
                "--samples", "256", "-p", "free_energy.samples=512", "--device", d, "--out",
                folder, "--quiet", *extra]  # fmt: skip

    folders = on_devices(devices, arguments, out, "sweep --train")
    cluster = out / "sweep --train --scheduler local" / device
    process = cli(arguments(device, cluster, "--scheduler", "local"), cluster / "log.txt")
    if finished(f"sweep --scheduler local on {device}", process, cluster / "log.txt"):
        folders[f"{device}, Dask"] = cluster
    paths = {label: folder / "sweep.nc" for label, folder in folders.items()}
    if len(devices) > 1:
        compare_results("sweep --train cpu/cuda", {d: paths[d] for d in devices if d in paths},
                        dict.fromkeys(["summary", "free_energy"], SWEEP))  # fmt: skip
    dask = {label: path for label, path in paths.items() if label.startswith(device)}
    compare_results(f"sweep --train serial/Dask ({device})", dask,
                    dict.fromkeys(["summary", "free_energy"], SWEEP))  # fmt: skip
    for label, folder in folders.items():
        for path in sorted((folder / "models").glob("*.pt")):
            recorded = rginspect.load(path, check=False).provenance["training"]["device"]
            status = "PASS" if recorded.split(":")[0] == label.split(",")[0] else "FAIL"
            record(Row("cli", f"sweep ({label}) {path.stem}: trained on", status, note=recorded))


# -- the paper-size model ---------------------------------------------------------------------


def paper_checks(devices: list[str], out: Path) -> None:
    """Images per second through `likelihood` on the paper-size RG-Flow (100.6 M parameters,
    random weights) on the GPU, as a share of the GPU's own fp32 matrix-product rate (the
    analyses run in full fp32) and of its TF32 rate, both measured in the same run."""
    if "cuda" not in devices:
        record(Row("paper", "likelihood images/s on the GPU", "SKIP", note="no CUDA"))
        return
    sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))
    from bench_paper_model import paper_checkpoint

    checkpoint = paper_checkpoint(out)
    inputs, folder = 1024, out / "paper likelihood"
    arguments = ["run", checkpoint, "--plugins", "likelihood", "--data", f"msds1:{inputs}",
                 "-p", "likelihood.dequantization_draws=1", "--device", "cuda", "--out",
                 folder, "--quiet"]  # fmt: skip
    if cli(arguments, folder / "log.txt").wait() != 0:
        record(Row("paper", "likelihood run", "FAIL", note=str(folder / "log.txt")))
        return
    elapsed = float(read_results(folder / "results.nc")["likelihood"].attrs["elapsed_s"])
    model = rginspect.load(checkpoint, device="cuda", check=False)
    batch = model.sample(256, generator=torch.Generator().manual_seed(0))
    with full_precision(), torch.no_grad():
        flops = flops_per_image(model, batch[:8])
        encode_rate = images_per_second(model, batch)
        fp32_rate = matmul_rate()
    with tf32(True):
        tf32_rate = matmul_rate()
    gpu = torch.cuda.get_device_name()
    record(Row("paper", "FLOP per image (encode)", "INFO", note=f"{flops / 1e9:.2f} GFLOP"))
    for label, rate in [
        ("likelihood, 1024 MSDS1 images", inputs / elapsed),
        ("encode, batches of 256", encode_rate),
    ]:
        achieved = rate * flops
        record(Row("paper", f"images/s: {label}", "INFO", note=(
            f"{rate:.1f}/s = {achieved / 1e12:.2f} TFLOP/s: {achieved / fp32_rate:.1%} of fp32 "
            f"matmul ({fp32_rate / 1e12:.1f}), {achieved / tf32_rate:.1%} of TF32 "
            f"({tf32_rate / 1e12:.1f} TFLOP/s) on {gpu}")))  # fmt: skip


def flops_per_image(model, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        model.encode(x)
    return counter.get_total_flops() / len(x)


def images_per_second(model, x: torch.Tensor, repeats: int = 5) -> float:
    model.encode(x)  # warm-up: cuDNN picks its algorithms
    torch.cuda.synchronize()
    began = time.perf_counter()
    for _ in range(repeats):
        model.encode(x)
    torch.cuda.synchronize()
    return repeats * len(x) / (time.perf_counter() - began)


def matmul_rate(n: int = 8192, repeats: int = 10) -> float:
    """FLOP/s of an n×n×n fp32 matrix product under the precision settings in force."""
    a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
    for _ in range(3):
        a @ b
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(repeats):
        a @ b
    end.record()
    torch.cuda.synchronize()
    return 2 * n**3 * repeats / (start.elapsed_time(end) / 1e3)


# -- main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default=",".join(PARTS), help="some of: " + ",".join(PARTS))
    parser.add_argument("--out", type=Path, help="work folder, emptied first (default: a new one)")
    parser.add_argument("--report", type=Path, help="also write the rows here, as JSON")
    options = parser.parse_args()
    cuda = torch.cuda.is_available()
    devices = ["cpu", "cuda"] if cuda else ["cpu"]
    gpu = torch.cuda.get_device_name() if cuda else "none"
    print(f"rginspect {rginspect.__version__} from {Path(rginspect.__file__).parent}; torch "
          f"{torch.__version__}; {os.cpu_count()} CPUs; CUDA device: {gpu}", flush=True)  # fmt: skip
    if not cuda:
        print("no CUDA here: the CPU half runs and every CPU-against-CUDA comparison is SKIP")
    out = options.out or Path(tempfile.mkdtemp(prefix="rginspect-gpu-check-"))
    if options.out and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    began, parts = time.perf_counter(), options.parts.split(",")
    print(f"{'':4} {'part':9} {'check':46} {'deviation':>9} {'tol':>6}  note", flush=True)
    with full_precision():
        if "components" in parts:
            component_checks(devices)
            if cuda:
                tf32_effect()
        if "run" in parts:
            run_checks(devices, out)
            jobs_check(devices[-1], out)
        if "train" in parts:
            training_checks(devices, out)
        if "sweep" in parts:
            sweep_checks(devices, out)
        if "paper" in parts:
            paper_checks(devices, out)
    seconds = time.perf_counter() - began
    counts = {s: sum(r.status == s for r in ROWS) for s in ("PASS", "FAIL", "SKIP", "INFO")}
    print(f"\n{counts['PASS']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped, "
          f"{counts['INFO']} measured, in {seconds:.0f} s (work files: {out})")  # fmt: skip
    for row in ROWS:
        if row.status == "FAIL":
            print(
                f"FAIL {row.part} {row.name}: {row.deviation:.2e} > {row.tolerance:.0e} {row.note}"
            )
    if options.report:
        options.report.write_text(
            json.dumps({"seconds": seconds, "rows": [asdict(r) for r in ROWS]})
        )
    if counts["FAIL"]:
        return 1
    return 0 if cuda else EXIT_NO_CUDA


if __name__ == "__main__":
    sys.exit(main())
