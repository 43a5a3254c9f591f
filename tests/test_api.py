"""The Python API (rginspect.analyze, write, register) against the command line, on models in memory
(a bundled model changed in memory, a normflows Glow built here, a factory's flow), and what the
command line takes besides (--format, --load, the config file, factories, report, --resume)."""

import math
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

import rginspect
from rginspect.analysis import Analysis, Parameter, Section
from rginspect.cli import main
from rginspect.data import load_data
from rginspect.errors import RGInspectError
from rginspect.results import analysis_nodes, read_results

ASSETS = "rginspect/assets"
RGFLOW = f"{ASSETS}/msds1_rgflow.pt"


def invoke(*arguments):
    return CliRunner().invoke(main, [str(a) for a in arguments])


def msds_images(n: int = 16, seed: int = 0) -> np.ndarray:
    return load_data(f"msds1:{n}", channels=3, size=32, seed=seed).images_or_fields


class ScaledFlow(torch.nn.Module):
    """z = a·x entry by entry: log|det| = n ln a, a density known in closed form."""

    def __init__(self, a: float = 2.0) -> None:
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(float(a)))

    def encode(self, x):
        return self.a * x, torch.full((len(x),), float(x[0].numel()) * torch.log(self.a).item())

    def decode(self, z):
        return z / self.a, torch.full((len(z),), -float(z[0].numel()) * torch.log(self.a).item())


def levels(coarse_every: int, shape=(1, 8, 8)) -> np.ndarray:
    """Two RG levels: every coarse_every-th site of each axis is level 1."""
    _, rows, cols = np.indices(shape)
    return ((rows % coarse_every == 0) & (cols % coarse_every == 0)).astype(np.int64)


def test_cli_and_python_give_the_same_numbers(tmp_path):
    """`rginspect run` and `rginspect.analyze` share preparation and execution: same data, seed
    and parameters give the same datasets."""
    result = invoke("run", RGFLOW, "--plugins", "summary,likelihood", "--data", "msds1:16",
                    "--seed", 3, "-p", "likelihood.inputs=16", "--out", tmp_path, "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    stored = read_results(tmp_path / "results.nc")
    tree = rginspect.analyze(
        RGFLOW, "summary,likelihood", data="msds1:16", seed=3,
        params={"likelihood": {"inputs": 16}}, progress=False,
    )  # fmt: skip
    assert list(analysis_nodes(tree)) == list(analysis_nodes(stored)) == ["summary", "likelihood"]
    for name in ("summary", "likelihood"):
        xr.testing.assert_allclose(tree[name].to_dataset(), stored[name].to_dataset())
    for key in ("model_sha256", "data_sha256", "seed", "Conventions"):
        assert tree.attrs[key] == stored.attrs[key]
    assert stored.attrs["history"].endswith("--quiet")  # the command, for CF's history
    assert "rginspect.analyze(" in tree.attrs["history"]


def test_a_bundled_model_changed_in_memory_is_analysed_as_changed():
    model = rginspect.load(RGFLOW)
    images = msds_images()
    before = rginspect.analyze(model, "likelihood", data=images, progress=False)
    with torch.no_grad():
        model.prior.scale.mul_(2.0)  # a wider prior: every latent's log-density changes
    after = rginspect.analyze(model, "likelihood", data=images, progress=False)
    assert before.attrs["model_sha256"] != after.attrs["model_sha256"]
    assert before.attrs["data_sha256"] == after.attrs["data_sha256"]
    bits_before = float(before["likelihood"]["mean_total"])
    bits_after = float(after["likelihood"]["mean_total"])
    assert bits_after != pytest.approx(bits_before, abs=1e-3)


def test_a_flow_in_memory_with_its_latent_levels_has_its_exact_density():
    """(flow, latent_level) and a module with latent_level= are analysed in memory; the
    likelihood equals the closed form of z = a·x under a standard normal prior."""
    x = np.random.default_rng(0).normal(size=(64, 1, 8, 8)).astype(np.float32)
    for model, options in [
        ((ScaledFlow(2.0), levels(2)), {}),
        (ScaledFlow(2.0), {"latent_level": levels(2)}),
    ]:
        tree = rginspect.analyze(model, "summary", data=x, progress=False, **options)
        summary = tree["summary"].to_dataset()
        assert summary.attrs["status"] == "ok"
        np.testing.assert_array_equal(summary["latents"].values, [48, 16])
        # encoded std per level is a·std(x): the data are unit normal
        np.testing.assert_allclose(summary["std"].values, 2.0, rtol=0.1)
    with pytest.raises(RGInspectError, match="latent_level="):
        rginspect.analyze(ScaledFlow(), "summary", data=x, progress=False)


def test_a_normflows_glow_built_in_a_script_is_analysed_in_memory():
    pytest.importorskip("normflows")
    from rginspect.formats.normflows import build_multiscale

    settings = dict(levels=2, steps=1, hidden_channels=8, input_shape=(3, 8, 8))
    flow = build_multiscale(**settings)
    images = np.random.default_rng(1).integers(0, 256, (16, 3, 8, 8)).astype(np.uint8)
    tree = rginspect.analyze(flow, "likelihood", data=images, progress=False, **settings)
    assert tree["likelihood"].attrs["status"] == "ok"
    assert math.isfinite(float(tree["likelihood"]["mean_total"]))
    model = rginspect.formats.as_model(flow, **settings)
    with pytest.raises(RGInspectError, match="save_normflows") as error:
        rginspect.save(model, "glow.pt")
    assert "\n" not in str(error.value)


def test_a_bare_normflows_state_dict_through_the_cli(tmp_path):
    pytest.importorskip("normflows")
    from rginspect.formats.normflows import build_multiscale

    flow = build_multiscale(levels=2, steps=1, hidden_channels=8, input_shape=(3, 8, 8))
    flow.save(tmp_path / "state.pth")  # normflows' own: a bare state dict
    load = ["--load", "levels=2", "--load", "steps=1", "--load", "hidden_channels=8",
            "--load", "input_shape=[3,8,8]"]  # fmt: skip
    bare = invoke("info", tmp_path / "state.pth", "--format", "normflows")
    assert bare.exit_code == 2 and "--load levels=" in bare.output
    info = invoke("info", tmp_path / "state.pth", "--format", "normflows", *load)
    assert info.exit_code == 0, info.output
    assert "[3, 8, 8]" in info.output
    npz = tmp_path / "images.npz"
    np.savez(npz, images=np.random.default_rng(2).integers(0, 256, (8, 3, 8, 8)).astype(np.uint8))
    run = invoke("run", tmp_path / "state.pth", "--format", "normflows", *load, "--plugins",
                 "likelihood", "--data", f"npz:{npz}", "--out", tmp_path / "out", "--quiet")  # fmt: skip
    assert run.exit_code == 0, run.output
    assert read_results(tmp_path / "out" / "results.nc")["likelihood"].attrs["status"] == "ok"


FACTORY = """
import numpy as np
import torch

COARSE_EVERY = {every}


class Scale(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(2.0))

    def encode(self, x):
        return self.a * x, torch.zeros(len(x)) + x[0].numel() * torch.log(self.a).item()

    def decode(self, z):
        return z / self.a, torch.zeros(len(z)) - z[0].numel() * torch.log(self.a).item()


def make_model(L):
    _, rows, cols = np.indices((1, L, L))
    level = ((rows % COARSE_EVERY == 0) & (cols % COARSE_EVERY == 0)).astype(np.int64)
    return Scale(), level
"""


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    """A module `user_flows` with a factory make_model(L); write(every) rewrites its layout."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(every: int) -> None:
        (tmp_path / "user_flows.py").write_text(textwrap.dedent(FACTORY.format(every=every)))
        sys.modules.pop("user_flows", None)  # a new process would import the edited file

    write(2)
    yield write
    sys.modules.pop("user_flows", None)


def test_a_factory_called_without_its_arguments_says_its_signature(factory_module):
    result = invoke("info", "user_flows:make_model")
    assert result.exit_code == 2
    assert "user_flows:make_model(L)" in result.output and "--load" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1
    assert invoke("info", "user_flows:make_model", "--load", "L=8").exit_code == 0


def test_resume_recomputes_after_the_factory_layout_changed(factory_module, tmp_path):
    """A factory model has no file hash; the reuse key is the model's content, so a layout that
    changed between two --resume runs is analysed anew (it once reused the old summary)."""
    npz = tmp_path / "fields.npz"
    np.savez(npz, fields=np.random.default_rng(3).normal(size=(32, 1, 8, 8)))
    command = ["run", "user_flows:make_model", "--load", "L=8", "--plugins", "summary",
               "--data", f"npz:{npz}", "--out", tmp_path / "out", "--quiet", "--resume"]  # fmt: skip
    assert invoke(*command).exit_code == 0
    first = read_results(tmp_path / "out" / "results.nc")
    assert first["summary"]["latents"].values.tolist() == [48, 16]
    factory_module(4)  # coarse latents every 4th site: 60 fine, 4 coarse
    assert invoke(*command).exit_code == 0
    second = read_results(tmp_path / "out" / "results.nc")
    assert second["summary"]["latents"].values.tolist() == [60, 4]
    assert second["model"].attrs["latents_per_level"].tolist() == [60, 4]
    assert second["summary"].attrs["created_at"] >= first["summary"].attrs["created_at"]
    assert second.attrs["model_sha256"] != first.attrs["model_sha256"]
    # unchanged, it is reused: the same group, made at the same time
    assert invoke(*command).exit_code == 0
    third = read_results(tmp_path / "out" / "results.nc")
    assert third["summary"].attrs["created_at"] == second["summary"].attrs["created_at"]


def test_the_config_file_holds_plugins_data_and_loader_options(factory_module, tmp_path):
    npz = tmp_path / "fields.npz"
    np.savez(npz, fields=np.random.default_rng(4).normal(size=(16, 1, 8, 8)))
    config = tmp_path / "run.toml"
    config.write_text(
        f'plugins = "summary"\ndata = "npz:{npz}"\n[load]\nL = 8\n[summary]\ninputs = 16\n'
    )
    result = invoke("run", "user_flows:make_model", "--config", config, "--out", tmp_path / "o",
                    "--quiet")  # fmt: skip
    assert result.exit_code == 0, result.output
    tree = read_results(tmp_path / "o" / "results.nc")
    assert list(analysis_nodes(tree)) == ["summary"]
    assert tree["summary"].attrs["source"].startswith("npz")
    config.write_text('plugin = "summary"\n')
    wrong = invoke("run", "user_flows:make_model", "--config", config, "--load", "L=8")
    assert wrong.exit_code == 2 and "unknown key 'plugin'" in wrong.output


class GradProbe(Analysis):
    """Records whether autograd was on while it ran."""

    name = "grad_probe"
    description = "whether run() had autograd"
    parameters = {"inputs": Parameter(int, 4, "inputs")}

    def run(self, context):
        return xr.Dataset({"grad": ((), float(torch.is_grad_enabled()))})

    def render(self, dataset):
        return Section("Grad probe", "Whether autograd was on.", text=str(float(dataset.grad)))


class GradProbeWithGrad(GradProbe):
    name = "grad_probe_with_grad"
    needs_grad = True


def test_analyses_run_without_autograd_unless_they_ask_for_it():
    images = msds_images(4)
    tree = rginspect.analyze(
        RGFLOW, [GradProbe(), GradProbeWithGrad()], data=images, progress=False
    )
    assert float(tree["grad_probe"]["grad"]) == 0.0
    assert float(tree["grad_probe_with_grad"]["grad"]) == 1.0


def test_a_registered_analysis_runs_by_name_is_replaced_and_the_report_says_when_it_is_gone(
    tmp_path,
):
    from rginspect import api, plugin_manager

    images = msds_images(4)
    try:
        rginspect.register(GradProbe())
        rginspect.register(GradProbe())  # a notebook cell run twice: replaced, not doubled
        assert "grad_probe" in plugin_manager.available_analyses()
        tree = rginspect.analyze(RGFLOW, "grad_probe", data=images, progress=False)
        results, report = rginspect.write(tree, tmp_path)
        assert "Grad probe" in report.read_text()
        with pytest.raises(RGInspectError, match="already provides"):
            rginspect.register(type("Shadow", (GradProbe,), {"name": "summary"})())
    finally:
        for plugin in api._REGISTERED.values():
            plugin_manager.plugin_manager().unregister(plugin)
        api._REGISTERED.clear()
    result = invoke("report", results)
    assert result.exit_code == 1
    assert "cannot draw: grad_probe" in result.output and "install the plugin" in result.output


def test_failures_keep_their_traceback_and_raise_errors_stops_at_the_first():
    class Broken(GradProbe):
        name = "broken"

        def run(self, context):
            raise ZeroDivisionError("deliberate")

    images = msds_images(4)
    tree = rginspect.analyze(RGFLOW, [Broken()], data=images, progress=False)
    attrs = tree["broken"].attrs
    assert attrs["status"] == "failed" and attrs["error"] == "ZeroDivisionError: deliberate"
    assert "Traceback" in attrs["traceback"] and "raise ZeroDivisionError" in attrs["traceback"]
    with pytest.raises(ZeroDivisionError):
        rginspect.analyze(RGFLOW, [Broken()], data=images, progress=False, raise_errors=True)


def test_the_plugin_guides_example_runs_without_warnings():
    """It once warned "Converting a tensor with requires_grad=True to a scalar": analyses now
    run without autograd."""
    guide = (Path(__file__).parents[1] / "docs" / "guides" / "plugins.md").read_text()
    block = guide.split("<!-- plugin-example -->")[1].split("<!-- end-plugin-example -->")[0]
    namespace: dict = {}
    exec(block.split("```python")[1].split("```")[0], namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        tree = rginspect.analyze(
            RGFLOW, [namespace["TopLevelSpread"]()], data=msds_images(4), progress=False
        )
    assert tree["top_spread"].attrs["status"] == "ok"
