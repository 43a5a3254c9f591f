"""rginspect compare: an RG-Flow and a normflows Glow analysed with the same data and seed, their
scalars side by side along a model dimension, each model's results whole in its own group."""

import numpy as np
import pytest
import torch
import xarray as xr
from click.testing import CliRunner

import rginspect
from rginspect.cli import main
from rginspect.compare import compared_scalars
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.results import read_results

nf = pytest.importorskip("normflows")
from rginspect.formats.normflows import build_multiscale, save_normflows  # noqa: E402

PLUGINS = "likelihood,receptive,inpaint,disentangle"
OPTIONS = ["--data", "msds1:48", "--seed", "3", "--quiet", "--plugins", PLUGINS,
           "-p", "inpaint.mask=square:4;square:8", "-p", "inpaint.steps=3",
           "-p", "receptive.samples=2"]  # fmt: skip
GLOW = dict(levels=2, steps=1, hidden_channels=8, input_shape=[3, 16, 16])
TIMINGS = ("elapsed_s", "seconds", "step_seconds")  # wall times: never equal between two runs


def _moved(module: torch.nn.Module, seed: int) -> None:
    """Every weight moved off its initialisation (fresh couplings are the identity map)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(0.05 * torch.randn(parameter.shape, generator=generator))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    rgflow = RGFlowModel.from_config(
        rgflow_config(channels=3, L=16, kernel=4, nhidden=8, prior="laplace", domain="image")
    )
    _moved(rgflow, 1)
    rginspect.save(rgflow, folder / "rgflow.pt")
    glow = build_multiscale(**GLOW)
    _moved(glow, 2)
    for module in glow.modules():
        if isinstance(module, nf.flows.ActNorm):
            module.data_dep_init_done.fill_(1.0)
    save_normflows(glow, folder / "glow.pt", **GLOW)
    return [str(folder / "rgflow.pt"), str(folder / "glow.pt")]


@pytest.fixture(scope="module")
def compared(checkpoints, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    result = CliRunner().invoke(main, ["compare", *checkpoints, *OPTIONS, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def test_scalars_line_up_along_a_model_dimension(compared):
    tree = read_results(compared / "compare.nc")
    assert set(PLUGINS.split(",")) | {"models"} == set(tree.children)
    for analysis in PLUGINS.split(","):
        assert tree[analysis].to_dataset().model.values.tolist() == ["rgflow", "glow"]
    radius = tree["receptive"].to_dataset().level_radius
    assert radius.dims == ("model", "level") and radius.level.values.tolist() == [0, 1, 2]
    assert np.isfinite(radius.sel(model="rgflow")).all()  # three levels at L = 16
    assert np.isfinite(radius.sel(model="glow", level=[0, 1])).all()
    assert np.isnan(radius.sel(model="glow", level=2))  # the Glow has two: NaN, not dropped
    inpaint = tree["inpaint"].to_dataset()
    touched = inpaint.latents_touched.transpose("model", "hole", "latent_set")
    assert inpaint.hole.values.tolist() == ["square:4", "square:8"]
    # RG-Flow's cone against every latent of the Glow, whose cone (no block tables) is everything
    cone = touched.sel(model="rgflow", latent_set="cone").values
    assert (cone < 768).all() and touched.sel(model="rgflow", latent_set="all").values.tolist() == [
        768,
        768,
    ]
    assert np.isnan(touched.sel(model="glow", latent_set="cone").values).all()
    assert touched.sel(model="glow", latent_set="all").values.tolist() == [768, 768]
    assert np.isfinite(inpaint.mean_masked_rmse.sel(latent_set="all").values).all()
    r2 = tree["disentangle"].to_dataset().r2_all
    assert r2.dims == ("model", "level", "factor") and "base_colour" in r2.factor.values
    methods = {
        name: tree[f"models/{name}/receptive"].attrs["method"] for name in ("rgflow", "glow")
    }
    assert methods == {"rgflow": "blocks", "glow": "probes"}  # no block tables: probes, no failure


def test_each_model_equals_a_plain_run_with_the_same_data_and_seed(compared, checkpoints, tmp_path):
    tree = read_results(compared / "compare.nc")
    for checkpoint, name in zip(checkpoints, ("rgflow", "glow"), strict=True):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["run", checkpoint, *OPTIONS, "--out", str(out)])
        assert result.exit_code == 0, result.output
        alone = read_results(out / "results.nc")
        for analysis in PLUGINS.split(","):
            expected = compared_scalars(alone[analysis].to_dataset()).drop_vars(
                TIMINGS, errors="ignore"
            )
            combined = tree[analysis].to_dataset().sel(model=name, drop=True)
            combined = combined.drop_vars(TIMINGS, errors="ignore")
            if "latent_set" in combined.dims:  # methods only the other model ran are NaN here
                combined = combined.dropna("latent_set", how="all")
            assert set(expected.data_vars) == set(combined.data_vars), analysis
            for key, variable in expected.data_vars.items():
                np.testing.assert_allclose(
                    combined[key].reindex_like(variable).transpose(*variable.dims).values,
                    variable.values,
                    rtol=1e-6,
                    err_msg=f"{name} {analysis}.{key}",
                )
            # the model's own group holds its whole results, as its own run stored them
            own = tree[f"models/{name}/{analysis}"].to_dataset()
            assert set(own.data_vars) == set(alone[analysis].to_dataset().data_vars)
        assert tree[f"models/{name}"].attrs["seed"] == 3


def test_the_report_puts_every_scalar_in_a_table_and_the_figures_in_columns(compared):
    html = (compared / "compare.html").read_text()
    assert html.count('<div class="columns">') == 4 and html.count("<h3>rgflow</h3>") == 4
    for caption in ("mean_total", "level_radius", "latents_touched", "mean_masked_rmse", "r2_all"):
        assert f'<div class="caption">{caption}' in html
    assert "http" not in html.replace("http-equiv", "")  # self-contained


def test_a_failing_model_or_analysis_is_one_line_and_the_rest_is_kept(checkpoints, tmp_path):
    missing = str(tmp_path / "missing.pt")
    arguments = ["compare", *checkpoints, missing, *OPTIONS, "-p", "receptive.method=blocks"]
    result = CliRunner().invoke(main, [*arguments, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert any(line.startswith("error: ") and "missing.pt" in line for line in lines)
    assert any(line.startswith("failed: ") and "glow.pt: receptive" in line for line in lines)
    tree = read_results(tmp_path / "out" / "compare.nc")
    assert tree["likelihood"].to_dataset().model.values.tolist() == ["rgflow", "glow"]
    receptive = tree["models/glow/receptive"]
    assert receptive.attrs["status"] == "failed"
    assert "needs a MERA flow with block tables" in receptive.attrs["error"]
    radius = tree["receptive"].to_dataset().level_radius
    assert (
        np.isfinite(radius.sel(model="rgflow")).all() and np.isnan(radius.sel(model="glow")).all()
    )


def test_fewer_than_two_checkpoints_is_a_usage_error(checkpoints):
    result = CliRunner().invoke(main, ["compare", checkpoints[0]])
    assert result.exit_code == 2 and "two or more CHECKPOINTs" in result.output


def test_compared_scalars_keep_summary_dimensions_only():
    dataset = xr.Dataset(
        {
            "total": ((), 1.0),
            "per_level": ("level", [1.0, 2.0]),
            "per_latent": ("latent", [1.0, 2.0, 3.0]),
            "label": ((), "text"),
        },
        coords={"latent_level": ("latent", [0, 0, 1])},
        attrs={"elapsed_s": 2.5, "source": "x"},
    )
    scalars = compared_scalars(dataset)
    assert set(scalars.data_vars) == {"total", "per_level", "elapsed_s"}
    assert "latent_level" not in scalars.coords and not scalars.attrs
