"""The engine through the CLI: plugins in dependency order, failures isolated, results stored."""

import json
import math
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from conftest import RGFLOW_STATE

import rginspect
from rginspect.cli import main
from rginspect.engine import DEFAULT_INPUTS, inputs_needed, resolve_parameters
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.plugin_manager import available_analyses, plugin_manager
from rginspect.results import read_results

THIRD_PARTY = """
import numpy as np
import xarray as xr
from rginspect import hookimpl
from rginspect.analysis import Analysis, Parameter, Section


class Mean(Analysis):
    name = "latent_mean"
    description = "Mean latent per level, from summary's dataset"
    parameters = {"scale": Parameter(float, 1.0, "multiplies the result")}
    requires = ("summary",)

    def run(self, context):
        summary = context.results["summary"]
        return xr.Dataset({"scaled": ("level", summary["mean"].values * context.parameters["scale"])},
                          coords={"level": summary.level.values})

    def render(self, dataset):
        return Section("Latent mean", "Scaled mean per level.", text=str(dataset.scaled.values))


class Crashes(Analysis):
    name = "crashes"
    description = "Always raises"

    def run(self, context):
        raise RuntimeError("deliberate failure")


class ReturnsJunk(Analysis):
    name = "returns_junk"
    description = "Returns a list instead of a Dataset"

    def run(self, context):
        return [1, 2, 3]


class NeedsCrash(Analysis):
    name = "needs_crash"
    description = "Depends on crashes"
    requires = ("crashes",)

    def run(self, context):
        return xr.Dataset()


@hookimpl
def rginspect_analyses():
    return [Mean(), Crashes(), ReturnsJunk(), NeedsCrash()]
"""


@pytest.fixture
def install_plugin(tmp_path, monkeypatch):
    """Install a plugin module through entry-point metadata only (a .dist-info folder), no pip."""
    installed = []

    def install(module: str, source: str, distribution: str, version: str) -> None:
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        info = tmp_path / f"{module}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
        )
        (info / "entry_points.txt").write_text(f"[rginspect]\nplugin = {module}\n")
        installed.append(module)
        plugin_manager.cache_clear()

    monkeypatch.syspath_prepend(str(tmp_path))
    yield install
    plugin_manager.cache_clear()
    for module in installed:
        sys.modules.pop(module, None)


@pytest.fixture
def third_party(install_plugin):
    install_plugin("my_rg_plugin", THIRD_PARTY, "my-rg-plugin", "0.3")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_plugins_lists_analyses_formats_and_their_distribution(third_party):
    result = invoke("plugins")
    assert result.exit_code == 0, result.output
    assert "summary" in result.output and "likelihood" in result.output
    assert "latent_mean" in result.output and "my-rg-plugin 0.3" in result.output
    assert "latent_mean.scale (float, default 1.0)" in result.output
    assert "rgflow" in result.output and "neuralrg" in result.output


def test_third_party_plugin_runs_and_failures_are_isolated(third_party, tmp_path):
    out = tmp_path / "out"
    result = invoke("run", RGFLOW_STATE, "--plugins", "latent_mean,crashes,returns_junk,needs_crash",
                    "-p", "latent_mean.scale=2", "--samples", 8, "--quiet", "--out", out)  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "deliberate failure" in result.output and "not an xarray.Dataset" in result.output
    tree = xr.open_datatree(out / "results.nc", engine="h5netcdf")
    assert set(tree.children) == {
        "model",
        "summary",
        "latent_mean",
        "crashes",
        "returns_junk",
        "needs_crash",
    }
    np.testing.assert_allclose(
        tree["latent_mean"]["scaled"].values, 2 * tree["summary"]["mean"].values
    )
    assert tree["crashes"].attrs["status"] == "failed"
    assert tree["needs_crash"].attrs["status"] == "skipped"
    assert json.loads(tree["latent_mean"].attrs["parameters"]) == {"scale": 2.0}
    html = (out / "report.html").read_text()
    assert "deliberate failure" in html and "Latent mean" in html


def test_unknown_names_and_bad_parameters_are_usage_errors(tmp_path):
    result = invoke("run", RGFLOW_STATE, "--plugins", "sumary", "--out", tmp_path)
    assert result.exit_code == 2 and "did you mean summary" in result.output
    result = invoke("run", RGFLOW_STATE, "--plugins", "summary", "-p", "summary.inputs=many",
                    "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 2 and "summary.inputs must be int" in result.output
    result = invoke("run", RGFLOW_STATE, "--plugins", "summary", "-p", "summary.nope=1",
                    "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 2 and "has no parameter 'nope'" in result.output


def test_likelihood_matches_upstream_log_prob(tmp_path, rgflow_reference):
    images01 = (
        rgflow_reference["images01"] - 0.05
    ) / 0.9  # see test_formats for this fixture quirk
    np.savez(tmp_path / "images.npz", images=images01)
    result = invoke("run", RGFLOW_STATE, "--plugins", "likelihood", "--data", f"npz:{tmp_path / 'images.npz'}",
                    "-p", "likelihood.dequantize=false", "--quiet", "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 0, result.output
    dataset = xr.open_datatree(tmp_path / "out" / "results.nc", engine="h5netcdf")["likelihood"]
    nats = -(rgflow_reference["log_prob"] + rgflow_reference["ldj_logit"]) / (3 * 32 * 32)
    expected = nats / math.log(2) + 8
    np.testing.assert_allclose(dataset["total"].values, expected, rtol=1e-5)
    parts = (
        dataset["prior_term"].sum()
        + dataset["logdet_term"].sum()
        + dataset["preprocessing_term"]
        + 8
    )
    np.testing.assert_allclose(float(parts), expected.mean(), rtol=1e-5)


def test_same_seed_same_numbers_and_resume(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for out in (first, second):
        assert invoke("run", RGFLOW_STATE, "--plugins", "summary,likelihood", "--samples", 8,
                      "--quiet", "--out", out).exit_code == 0  # fmt: skip
    a = xr.open_datatree(first / "results.nc", engine="h5netcdf")
    b = xr.open_datatree(second / "results.nc", engine="h5netcdf")
    for name in ("summary", "likelihood"):
        xr.testing.assert_allclose(a[name].to_dataset(), b[name].to_dataset(), rtol=1e-6)
        assert a[name].attrs["parameters"] == b[name].attrs["parameters"]
    created = a["likelihood"].attrs["created_at"]
    result = invoke("run", RGFLOW_STATE, "--plugins", "summary,likelihood", "--samples", 8, "--resume",
                    "--quiet", "--out", first)  # fmt: skip
    assert result.exit_code == 0
    assert (
        xr.open_datatree(first / "results.nc", engine="h5netcdf")["likelihood"].attrs["created_at"]
        == created
    )


def test_report_rerenders_without_the_model(tmp_path):
    assert invoke("run", RGFLOW_STATE, "--plugins", "summary", "--samples", 8, "--quiet",
                  "--out", tmp_path).exit_code == 0  # fmt: skip
    (tmp_path / "report.html").unlink()
    result = invoke("report", tmp_path)
    assert result.exit_code == 0 and (tmp_path / "report.html").is_file()
    assert "Summary" in (tmp_path / "report.html").read_text()


def test_the_plugin_guides_example(install_plugin, tmp_path):
    guide = (Path(__file__).parents[1] / "docs" / "guides" / "plugins.md").read_text()
    block = guide.split("<!-- plugin-example -->")[1].split("<!-- end-plugin-example -->")[0]
    install_plugin(
        "readme_plugin", block.split("```python")[1].split("```")[0], "readme-plugin", "1.0"
    )
    result = invoke(
        "run", RGFLOW_STATE, "--plugins", "top_spread", "--quiet", "--out", tmp_path / "o"
    )
    assert result.exit_code == 0, result.output
    dataset = xr.open_datatree(tmp_path / "o" / "results.nc", engine="h5netcdf")["top_spread"]
    assert 0 < float(dataset["std"]) < 10
    assert "Top-level spread" in (tmp_path / "o" / "report.html").read_text()


def test_one_bad_checkpoint_does_not_stop_the_others(tmp_path):
    result = invoke("run", tmp_path / "missing.pt", RGFLOW_STATE, "--plugins", "summary", "--samples", 4,
                    "--quiet", "--out", tmp_path / "out")  # fmt: skip
    assert result.exit_code == 2 and "error: " in result.output and "no such file" in result.output
    assert (tmp_path / "out" / "60" / "report.html").is_file()


def test_parameters_from_a_toml_file_then_the_command_line(tmp_path):
    (tmp_path / "settings.toml").write_text("[summary]\ninputs = 5\n[likelihood]\ninputs = 6\n")
    result = invoke("run", RGFLOW_STATE, "--plugins", "summary,likelihood", "--config",
                    tmp_path / "settings.toml", "-p", "likelihood.inputs=3", "--quiet", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    tree = xr.open_datatree(tmp_path / "results.nc", engine="h5netcdf")
    assert json.loads(tree["summary"].attrs["parameters"])["inputs"] == 5
    assert tree["likelihood"].sizes["sample"] == 3


def test_analyses_with_unusable_names_are_ignored_with_a_warning(install_plugin):
    install_plugin(
        "bad_name_plugin",
        """
        from rginspect import hookimpl
        from rginspect.analysis import Analysis

        class BadName(Analysis):
            name = "<b>x</b>/y"

        @hookimpl
        def rginspect_analyses():
            return [BadName()]
        """,
        "bad-name-plugin",
        "1.0",
    )
    with pytest.warns(UserWarning, match="is ignored: a name is letters"):
        analyses = available_analyses()
    assert "<b>x</b>/y" not in analyses and "summary" in analyses


def test_samples_sizes_the_data_and_a_short_analysis_says_so(tmp_path):
    result = invoke("run", RGFLOW_STATE, "--plugins", "summary", "--samples", 8, "--quiet",
                    "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    tree = xr.open_datatree(tmp_path / "results.nc", engine="h5netcdf")
    summary = tree["summary"]
    assert json.loads(summary.attrs["parameters"]) == {"inputs": 256}  # --samples sets no parameter
    assert (summary.attrs["inputs_requested"], summary.attrs["inputs_used"]) == (256, 8)
    assert summary.attrs["samples"] == 8
    html = (tmp_path / "report.html").read_text()
    assert "Ran on 8 inputs, fewer than the 256 it asks for" in html


def test_without_a_size_the_run_prepares_what_its_analyses_ask_for(tmp_path):
    result = invoke("run", RGFLOW_STATE, "--plugins", "summary", "-p", "summary.inputs=12",
                    "--quiet", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 0, result.output
    tree = xr.open_datatree(tmp_path / "results.nc", engine="h5netcdf")
    assert (tree["summary"].attrs["inputs_requested"], tree["summary"].attrs["inputs_used"]) == (
        12,
        12,
    )
    assert tree["summary"].attrs["source"].startswith("msds1, 12 images")
    assert "fewer than" not in (tmp_path / "report.html").read_text()
    analyses = available_analyses()
    parameters = resolve_parameters([analyses["summary"], analyses["disentangle"]])
    assert inputs_needed(parameters) == 2000
    assert inputs_needed(resolve_parameters([analyses["mix"]])) == DEFAULT_INPUTS


def test_the_checkpoints_training_data_is_the_default_data(tmp_path):
    """An RG-Flow run under saved_model/msds1/ and a native checkpoint that records `--data digits`
    are analysed on those data, and the report says where the data came from."""
    config = rgflow_config(channels=1, L=16, kernel=4, nhidden=8, prior="laplace", domain="image")
    model = RGFlowModel.from_config(config, provenance={"training": {"data": "digits"}})
    native = rginspect.save(model, tmp_path / "digits_model.pt")
    for checkpoint, data, source in [
        (RGFLOW_STATE, "msds1", "msds1, 4 images"),
        (native, "digits", "sklearn digits"),
    ]:
        out = tmp_path / Path(checkpoint).stem
        result = invoke("run", checkpoint, "--plugins", "summary", "--samples", 4, "--quiet",
                        "--out", out)  # fmt: skip
        assert result.exit_code == 0, result.output
        tree = xr.open_datatree(out / "results.nc", engine="h5netcdf")
        assert tree.attrs["data"] == f"{data} (the checkpoint's training data)"
        assert tree["summary"].attrs["source"].startswith(source)
        assert f"{data} (the checkpoint&#39;s training data)" in (out / "report.html").read_text()
    result = invoke("run", native, "--plugins", "summary", "--data", "model", "--samples", 4,
                    "--quiet", "--out", tmp_path / "own")  # fmt: skip
    tree = xr.open_datatree(tmp_path / "own" / "results.nc", engine="h5netcdf")
    assert (
        tree["summary"].attrs["source"]
        == "model samples (latents of a model's own samples are independent by construction)"
    )
    assert "compare the prior with itself" in tree["summary"].attrs["empty_comparison"]


MISSPELLED = """
from rginspect import hookimpl


@hookimpl
def rginspect_analysis():  # the hook is rginspect_analyses
    return []
"""


def test_a_misspelled_hook_is_refused_in_one_line(install_plugin):
    install_plugin("misspelled_plugin", MISSPELLED, "misspelled", "0.1")
    result = invoke("plugins")
    assert result.exit_code == 2
    assert "misspelled_plugin" in result.output or "plugin" in result.output
    assert "rginspect_analysis" in result.output and "rginspect_analyses" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_raise_stops_at_the_first_failure_with_its_traceback(third_party, tmp_path):
    result = invoke("run", RGFLOW_STATE, "--plugins", "crashes,latent_mean", "--samples", 4,
                    "--quiet", "--raise", "--out", tmp_path)  # fmt: skip
    assert result.exit_code == 1
    assert "deliberate failure" in str(result.exception)
    stored = read_results(tmp_path / "results.nc")
    assert "latent_mean" not in stored.children  # it came after the failure: never ran
