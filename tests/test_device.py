"""The CUDA path, checked without a GPU (issue 36): the device handling takes a device or a
generator from outside, so these tests hand it another one (the meta device, where tensors have a
shape and no values, stands in for a GPU: a CPU tensor mixed in is an error there as on CUDA) or
a fake CUDA (torch.cuda's functions replaced) and check the choice made, the error given, or that
none is. tests/gpu/check.py compares CPU and CUDA numbers on a machine with a GPU."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner
from conftest import untrained_phi4_checkpoints

import rginspect
import rginspect.formats
from rginspect import device, plugin_manager
from rginspect.analysis import Analysis, RunContext, Section
from rginspect.cli import main
from rginspect.device import DeviceError
from rginspect.errors import RGInspectError
from rginspect.results import ResultsStore, analysis_nodes

ASSETS = Path(rginspect.__file__).parent / "assets"
PHI4 = str(ASSETS / "phi4_L16.pt")
GiB = 2**30


@pytest.fixture
def fake_cuda(monkeypatch):
    """torch.cuda answering as a machine with two 4 GiB GPUs (2 GiB free); models still load on
    the CPU. Returns the calls made to synchronize and empty_cache, and a clock (for modules'
    `time.perf_counter`) that only the GPU moves: each synchronize advances it by `wait`
    seconds, the time the GPU takes to finish the work queued on it."""
    calls = {"synchronize": [], "empty_cache": 0, "wait": 0.0, "now": 0.0}

    def synchronize(where=None):
        calls["synchronize"].append(str(where))
        calls["now"] += calls["wait"]

    calls["clock"] = SimpleNamespace(perf_counter=lambda: calls["now"])

    def empty_cache():
        calls["empty_cache"] += 1

    cuda = torch.cuda
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    monkeypatch.setattr(cuda, "current_device", lambda: 0)
    monkeypatch.setattr(cuda, "get_device_name", lambda index=None: "Fake GPU")
    monkeypatch.setattr(cuda, "mem_get_info", lambda where=None: (2 * GiB, 4 * GiB))
    monkeypatch.setattr(cuda, "synchronize", synchronize)
    monkeypatch.setattr(cuda, "empty_cache", empty_cache)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    real_load = rginspect.formats.load
    monkeypatch.setattr(
        rginspect.formats, "load", lambda path, **kw: real_load(path, **(kw | {"device": "cpu"}))
    )
    return calls


class Probe(Analysis):
    """A test analysis: records the TF32 flags it ran under, raises `error` or claims `memory`."""

    def __init__(self, name: str, error: Exception | None = None, memory: int = 0) -> None:
        self.name, self.error, self.memory = name, error, memory
        self.description = f"test analysis {name}"
        self.flags: dict[str, object] = {}

    def memory_estimate(self, model, parameters) -> int:
        return self.memory

    def run(self, context):
        matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
        self.flags = {"matmul": matmul.fp32_precision, "conv": cudnn.conv.fp32_precision}
        if self.error is not None:
            raise self.error
        return xr.Dataset({"value": ("i", np.arange(3.0))})

    def render(self, dataset):
        return Section(self.name, "test")


# -- choosing and checking the device ---------------------------------------------------------


def test_devices_are_checked_against_the_machine(monkeypatch):
    assert device.resolve_device("cpu") == torch.device("cpu")
    for name, expected in [
        ("gpu", "is not a device; use cpu, cuda or cuda:N"),
        ("meta", "rginspect runs on cpu or cuda[:N]"),
    ]:
        with pytest.raises(DeviceError, match=re.escape(expected)):
            device.resolve_device(name)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(
        DeviceError, match="CUDA is not available on this machine; use --device cpu"
    ):
        device.resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert device.resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceError, match="has 1 CUDA device.*cuda:0 to cuda:0"):
        device.resolve_device("cuda:1")


@pytest.mark.parametrize(
    "command", [["run", PHI4], ["train", "field", "--action", "ising", "--temperature", "2"]]
)
def test_a_device_this_machine_lacks_is_one_error_line(command, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    arguments = [*command, "--device", "cuda", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == RGInspectError.exit_code
    assert result.output.strip() == "error: CUDA is not available on this machine; use --device cpu"


def test_full_precision_turns_tf32_off_and_restores_it():
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    before = (matmul.fp32_precision, conv.fp32_precision)
    matmul.fp32_precision = conv.fp32_precision = "tf32"
    try:
        with pytest.raises(ValueError), device.full_precision():
            assert (matmul.fp32_precision, conv.fp32_precision) == ("ieee", "ieee")
            raise ValueError
        assert (matmul.fp32_precision, conv.fp32_precision) == ("tf32", "tf32")
    finally:
        matmul.fp32_precision, conv.fp32_precision = before


def test_workers_that_use_cuda_are_spawned_never_forked():
    assert device.worker_start_method("cuda") == device.worker_start_method("cuda:1") == "spawn"
    assert device.worker_start_method("cpu") == "fork"  # Linux: fork is available


def test_a_local_cluster_gives_each_worker_a_gpu_of_its_own(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert device.cuda_worker_devices("cuda", None) == ["0", "1"]  # one worker per GPU
    assert device.cuda_worker_devices("cuda", 3) == ["0", "1", "0"]  # more take them in turn
    assert device.cuda_worker_devices("cuda:1", 2) == ["1", "1"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # indices are the visible GPUs'
    assert device.cuda_worker_devices("cuda:1", None) == ["7"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(DeviceError, match="no CUDA device is visible"):
        device.cuda_worker_devices("cuda", None)


# -- random numbers: drawn on the CPU, moved to the device ------------------------------------


def phi4_on_meta() -> rginspect.RGFlowModel:
    """A small untrained φ⁴ flow (L = 4, two components) on the meta device."""
    from rginspect.model import RGFlowModel
    from rginspect.nn.architectures import rgflow_config
    from rginspect.physics import Phi4Action

    config = rgflow_config(channels=2, L=4, kernel=2, prior="gaussian", domain="field")
    return RGFlowModel.from_config(config, action=Phi4Action(4, 0.3, 1.0)).to("meta")


def test_sampler_quality_of_a_model_on_another_device_draws_on_the_cpu(monkeypatch):
    """Issue 36 item 1: sampler_quality made its generator on the model's device and the site
    maps were drawn with it on the CPU (a crash on CUDA). On the meta device a generator cannot
    even be made. Known answer: proposals whose weights p/q are all equal are all accepted, with
    ESS = N and KL = 0, and the free energy is the action per site."""
    from rginspect import train
    from rginspect.physics import proposals

    model = phi4_on_meta()
    handed = {}

    def flow_samples(model, n, *, batch_size, generator, group):
        handed["generator"] = generator
        x = torch.zeros(n, *model.data_shape, dtype=torch.float64)
        return x, torch.zeros(n, dtype=torch.float64), torch.full((n,), 512.0, dtype=torch.float64)

    monkeypatch.setattr(proposals, "flow_samples", flow_samples)
    quality = train.sampler_quality(model, n_samples=64, group=train.field_symmetries(2))
    assert handed["generator"].device == torch.device("cpu")
    assert quality.acceptance == 1 and quality.ess_fraction == pytest.approx(1)
    assert quality.kl_per_site == pytest.approx(0, abs=1e-12)
    assert quality.free_energy_per_site == pytest.approx(512 / 16)


def test_flow_samples_of_a_model_on_another_device_draw_on_the_cpu():
    """The latents and the symmetry maps come from the CPU generator and move to the model's
    device: on the meta device the sampler gets as far as reading values (which meta has none
    of) instead of failing on a generator of the wrong device."""
    from rginspect.physics.proposals import flow_samples
    from rginspect.train import field_symmetries

    model = phi4_on_meta()
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(RuntimeError, match="cannot be called on meta tensors"):
        flow_samples(model, 8, batch_size=4, generator=generator, group=field_symmetries(2))
    assert not torch.equal(generator.get_state(), torch.Generator().manual_seed(0).get_state())


def test_the_correlator_stays_on_the_fields_device():
    """Item 7: C(r) indexed the fields with CPU distances (an error on CUDA)."""
    from rginspect.physics.correlation import two_point_function, zero_momentum_function

    fields = torch.zeros(3, 2, 8, 8, device="meta")
    for periodic in (True, False):
        assert two_point_function(fields, periodic=periodic).device.type == "meta"
    assert zero_momentum_function(fields).shape == (3, 5)


def test_a_runs_hmc_runs_on_its_device_from_a_cpu_generator(monkeypatch):
    """Item 7: the run's HMC was always on the CPU; now on the run's device, its random numbers
    still drawn from the run's CPU generator (same chains on every device)."""
    import rginspect.physics as physics

    model = rginspect.load(PHI4)
    asked, real_hmc = {}, physics.hmc

    def hmc(action, n, **options):
        asked.update(options)
        return real_hmc(action, n, **options | {"device": "cpu", "n_burnin": 2})

    monkeypatch.setattr(physics, "hmc", hmc)
    context = RunContext(model, {}, seed=3, device="cuda", show_progress=False)
    context.action_ensemble(64)
    assert asked["device"] == "cuda" and asked["generator"].device == torch.device("cpu")
    assert asked["generator"].initial_seed() == 3


def test_hmc_chains_come_from_the_generator_alone():
    """Every random number of HMC comes from the generator given (drawn where it lives and moved
    to the chains' device): the global random state and the device named change nothing."""
    from rginspect.physics import Phi4Action, hmc

    action = Phi4Action(4, 0.3, 1.0)
    runs = []
    for global_seed, where in [(1, None), (2, "cpu")]:
        torch.manual_seed(global_seed)
        generator = torch.Generator().manual_seed(0)
        runs.append(hmc(action, 32, n_chains=8, n_burnin=5, generator=generator, device=where))
    torch.testing.assert_close(runs[0].samples, runs[1].samples, rtol=0, atol=0)
    by_chain = runs[0].by_chain(runs[0].samples[:, 0, 0, 0])
    assert by_chain.shape == (8, 4) and isinstance(by_chain, np.ndarray)


# -- timings wait for the device --------------------------------------------------------------


def test_batch_sizes_are_timed_after_the_device_has_finished(fake_cuda, monkeypatch):
    """A GPU returns before its work is done: in_batches waits for it before reading the clock,
    so slow device work gives small batches. Here each batch's work takes 20 ms on the GPU and
    the aim is 10 ms per batch, so batches stay at the first size (8), where a clock read
    without waiting would see no time pass and double them (8, 16, 16)."""
    import rginspect.analysis as analysis

    monkeypatch.setattr(analysis, "time", fake_cuda["clock"])
    monkeypatch.setattr(analysis, "BATCH_SECONDS", 0.01)
    fake_cuda["wait"] = 0.02
    sizes = []

    def function(x):
        sizes.append(len(x))
        return (x * 2,)

    context = RunContext(None, {}, seed=0, device="cuda", show_progress=False)
    (doubled,) = context.in_batches(function, torch.arange(40.0))
    torch.testing.assert_close(doubled, torch.arange(40.0) * 2)
    assert sizes == [8] * 5 and fake_cuda["synchronize"] == ["cuda"] * 5
    fake_cuda["synchronize"].clear()
    sizes.clear()
    RunContext(None, {}, seed=0, device="cpu", show_progress=False).in_batches(
        function, torch.arange(40.0)
    )
    assert sizes == [8, 16, 16] and fake_cuda["synchronize"] == []


@pytest.mark.parametrize(
    "analysis, parameters, cut",
    [
        ("receptive", ("receptive.samples=3", "receptive.budget=0.5"), "samples"),
        ("inpaint", ("inpaint.inputs=1", "inpaint.steps=5", "inpaint.budget=0.5"), "steps"),
    ],
)
def test_budgets_count_the_work_a_gpu_has_not_finished(
    analysis, parameters, cut, fake_cuda, monkeypatch, tmp_path
):
    """receptive and inpaint cut their samples or steps to a time budget from a timed first
    one: with a GPU that takes 1 s to finish each piece of work, a 0.5 s budget allows one
    (a clock read without waiting for it would see no time pass and allow all)."""
    import rginspect_plugins.inpaint.compute
    import rginspect_plugins.receptive

    for module in (rginspect_plugins.receptive, rginspect_plugins.inpaint.compute):
        monkeypatch.setattr(module, "time", fake_cuda["clock"])
    fake_cuda["wait"] = 1.0
    overrides = [option for parameter in parameters for option in ("-p", parameter)]
    if analysis == "receptive":  # any model: a small untrained field flow is the quickest
        inputs = [untrained_phi4_checkpoints(tmp_path, [0.3])[0], "--data", "model"]
    else:
        inputs = [str(ASSETS / "msds1_rgflow.pt"), "--data", "msds1:4"]
    result = CliRunner().invoke(
        main,
        ["run", *inputs, "--plugins", analysis, *overrides, "--device", "cuda", "--out",
         str(tmp_path / "out"), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    dataset = ResultsStore(tmp_path / "out" / "results.nc").dataset(analysis)
    used = dataset.attrs["samples"] if cut == "samples" else int(dataset["steps"].max())
    assert used == 1


# -- memory: the device's own, and a one-line error when it runs out -------------------------


def test_a_cuda_run_checks_gpu_memory_and_explains_running_out(fake_cuda, monkeypatch, tmp_path):
    """On CUDA the memory check compares with free GPU memory (2 GiB here), not host RAM, and
    advises a move that changes something (--device cpu); a CUDA out-of-memory fails its
    analysis with one line that says what to do, frees the cache, and the run goes on in full
    fp32 (no TF32); the results record the device."""
    analyses = {
        "fits": Probe("fits", memory=GiB),
        "huge": Probe("huge", memory=3 * GiB),
        "oom": Probe("oom", error=torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to...")),
        "after": Probe("after"),
    }
    monkeypatch.setattr(plugin_manager, "available_analyses", lambda: analyses)
    result = CliRunner().invoke(
        main,
        ["run", PHI4, "--plugins", ",".join(analyses), "--device", "cuda", "--out",
         str(tmp_path), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 1
    tree = ResultsStore(tmp_path / "results.nc").read()
    status = {name: node.attrs["status"] for name, node in analysis_nodes(tree).items()}
    assert status == {"fits": "ok", "huge": "failed", "oom": "failed", "after": "ok"}
    assert tree["huge"].attrs["error"] == (
        "MemoryError: needs about 3.0 GiB, more than the 2.0 GiB of GPU memory allowed "
        "(--max-memory); lower -p huge.samples or analyse a smaller model, or run it with "
        "--device cpu (host memory)"
    )
    assert tree["oom"].attrs["error"] == (
        "ran out of GPU memory on cuda (2.0 GiB free now): lower --samples or oom's sizes "
        "(`rginspect plugins` lists them), or run it with --device cpu"
    )
    for name in ("huge", "oom"):  # each failure is one line of the command's output too
        assert f"failed: {name}: {tree[name].attrs['error']}" in result.output.splitlines()
    assert fake_cuda["empty_cache"] == 1
    assert analyses["after"].flags == {"matmul": "ieee", "conv": "ieee"}
    assert tree.attrs["device"] == f"cuda:0 (Fake GPU, CUDA {torch.version.cuda})"


def test_a_cpu_run_records_its_device_and_never_advises_a_gpu(monkeypatch, tmp_path):
    analyses = {"huge": Probe("huge", memory=1 << 50)}
    monkeypatch.setattr(plugin_manager, "available_analyses", lambda: analyses)
    CliRunner().invoke(main, ["run", PHI4, "--plugins", "huge", "--out", str(tmp_path), "--quiet"])
    tree = ResultsStore(tmp_path / "results.nc").read()
    assert tree.attrs["device"] == "cpu"
    assert "GiB of memory allowed" in tree["huge"].attrs["error"]
    assert "cuda" not in tree["huge"].attrs["error"]


# -- worker processes --------------------------------------------------------------------------


def test_jobs_on_a_cuda_device_are_spawned_and_match_the_serial_run(monkeypatch, tmp_path):
    """--jobs N on CUDA spawns its workers (a forked one cannot start CUDA): the spawned path,
    taken here on the CPU, gives the serial run's numbers."""
    from rginspect import device as device_module

    checkpoints = [str(shutil.copy(PHI4, tmp_path / f"{name}.pt")) for name in ("a", "b")]
    monkeypatch.setattr(device_module, "worker_start_method", lambda where: "spawn")
    common = ["--plugins", "likelihood", "--data", "model", "--samples", "16", "--quiet"]
    for name, runs, jobs in [("serial", checkpoints[:1], "1"), ("spawned", checkpoints, "2")]:
        out = tmp_path / name
        result = CliRunner().invoke(main, ["run", *runs, "--jobs", jobs, "--out", out, *common])
        assert result.exit_code == 0, result.output
    serial = ResultsStore(tmp_path / "serial" / "results.nc").dataset("likelihood")
    for stem in ("a", "b"):
        spawned = ResultsStore(tmp_path / "spawned" / stem / "results.nc").dataset("likelihood")
        xr.testing.assert_allclose(serial, spawned)


def test_a_worker_that_crashes_is_one_error_line(monkeypatch, tmp_path):
    """_run_one turns RGInspectErrors into lines; anything else a worker raises (it was "Cannot
    re-initialize CUDA in forked subprocess") is one error line too, and the others go on."""
    import rginspect.engine as engine

    def run_checkpoint(checkpoint, out, settings):
        raise RuntimeError("Cannot re-initialize CUDA in forked subprocess.\nmore lines")

    monkeypatch.setattr(engine, "run_checkpoint", run_checkpoint)  # forked workers inherit it
    result = CliRunner().invoke(
        main, ["run", PHI4, PHI4, "--jobs", "2", "--out", str(tmp_path), "--quiet"]
    )
    assert result.exit_code == 1
    line = f"error: {PHI4}: RuntimeError: Cannot re-initialize CUDA in forked subprocess."
    assert result.output.splitlines() == [line, line]


# -- sweeps and training take the device along ----------------------------------------------


def test_sweep_train_passes_the_device_into_the_training_job(fake_cuda, monkeypatch, tmp_path):
    """Item 3: `sweep --train field --device cuda` trained on the CPU."""
    import rginspect.train as train

    handed = []

    def train_field_checkpoint(out, settings, **options):
        handed.append(settings.device)
        raise RGInspectError("stopped here by the test")

    monkeypatch.setattr(train, "train_field_checkpoint", train_field_checkpoint)
    result = CliRunner().invoke(
        main,
        ["sweep", "--train", "field", "--action", "ising", "--size", "4", "--temperature",
         "2:3:2", "--device", "cuda", "--out", str(tmp_path), "--quiet"],
    )  # fmt: skip
    assert handed == ["cuda", "cuda"]
    assert result.exit_code == RGInspectError.exit_code


def test_training_records_its_device(tmp_path):
    from rginspect.train import train_image_checkpoint
    from rginspect.training_settings import TrainingSettings

    sizes = {"nlayers": 1, "nresblocks": 1, "nmlp": 1, "nhidden": 8}
    settings = TrainingSettings(steps=1, batch_size=4, progress=False, **sizes)
    model = train_image_checkpoint(tmp_path / "msds1.pt", settings, data="msds1:8")
    assert model.provenance["training"]["device"] == "cpu"
    assert rginspect.load(tmp_path / "msds1.pt").provenance["training"]["device"] == "cpu"


def test_dask_local_cluster_on_cuda_gives_each_worker_its_gpu(fake_cuda):
    pytest.importorskip("dask.distributed")
    from rginspect.distributed import dask_client, task_device

    with dask_client("local", echo=lambda line: None, device="cuda") as client:
        environments = list(client.run(lambda: dict(os.environ)).values())
    visible = sorted(environment["CUDA_VISIBLE_DEVICES"] for environment in environments)
    assert visible == ["0", "1"]  # one worker per GPU, each its own
    assert all(environment["OMP_NUM_THREADS"] == "1" for environment in environments)
    assert all("MALLOC_TRIM_THRESHOLD_" not in environment for environment in environments)
    assert task_device("local:4", "cuda:1") == "cuda"  # the worker's only GPU
    assert task_device("tcp://127.0.0.1:8786", "cuda:1") == "cuda:1"
