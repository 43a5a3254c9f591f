"""disentangle: the R² machinery on synthetic data with a known answer, then the whole analysis on
the bundled MSDS1 model, checked against direct computations."""

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from rginspect_plugins.disentangle import Disentangle
from rginspect_plugins.disentangle.compute import (
    Factor,
    budget_subsets,
    cone_r2,
    cross_validated_r2,
    factor_r2,
    msds_factors,
    msds_kind,
)

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import DataBatch, generate_msds, load_data
from rginspect.results import ResultsStore

BUNDLED = Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt"
SAMPLES = 300


def test_r2_is_high_only_for_the_block_that_holds_the_factor():
    """target = w·(block 1) + noise with signal variance 4 and noise variance 1: true R² = 0.8."""
    rng = np.random.default_rng(0)
    n, width = 2000, 30
    blocks = [rng.normal(size=(n, width)) for _ in range(3)]
    weights = rng.normal(size=width)
    signal = blocks[1] @ weights
    target = 2 * signal / signal.std() + rng.normal(size=n)
    for index, block in enumerate(blocks):
        r2 = cross_validated_r2(block, target[:, None], folds=5, seed=0)
        assert r2.shape == (1,)
        if index == 1:
            assert r2[0] == pytest.approx(0.8, abs=0.03)
        else:
            assert abs(r2[0]) < 0.03


@pytest.mark.parametrize("n, width", [(300, 20), (120, 400)])  # fewer features than inputs, more
def test_cross_validated_r2_equals_scikit_learns_ridge_cv_pipeline(n, width):
    """The one-SVD-per-fold computation is StandardScaler + RidgeCV(alpha_per_target) under
    cross_val_predict; targets of very different noise pick different alphas."""
    from rginspect_plugins.disentangle.compute import RIDGE_ALPHAS
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(3)
    features = rng.normal(size=(n, width)) * rng.uniform(0.1, 3, width) + rng.normal(size=width)
    features[:, 0] = 1.5  # a constant latent, which the scaler leaves unscaled
    weights = rng.normal(size=(width, 4)) * (rng.uniform(size=(width, 4)) < 0.2)
    targets = features @ weights + rng.normal(size=(n, 4)) * [0.1, 1, 10, 100]
    regression = make_pipeline(StandardScaler(), RidgeCV(RIDGE_ALPHAS, alpha_per_target=True))
    split = KFold(5, shuffle=True, random_state=7)
    expected = r2_score(
        targets,
        cross_val_predict(regression, features, targets, cv=split),
        multioutput="raw_values",
    )
    np.testing.assert_allclose(cross_validated_r2(features, targets, 5, 7), expected, atol=1e-6)


def test_factor_r2_averages_over_ellipses_and_components():
    """One ellipse's target is exactly linear in the features (R² 1), the other is noise (R² 0)."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(1000, 5))
    exact = features @ rng.normal(size=5)
    noise = rng.normal(size=1000)
    factors = [
        Factor("global", "global", "", np.stack([exact, exact], axis=-1)[:, None]),
        Factor("local", "local", "", np.stack([exact, noise], axis=-1)[..., None]),
        Factor("unrelated", "local", "", rng.normal(size=(1000, 3, 2))),
    ]
    r2 = factor_r2(features, factors, folds=5, seed=0)
    assert r2 == pytest.approx([1.0, 0.5, 0.0], abs=0.02)


def test_cone_r2_uses_the_latents_covering_each_ellipse_centre():
    """With each latent reaching only its own pixel, ellipse k is predicted from the two latents
    (one per level, level = channel) at its centre. The centres are off the diagonal, so swapping
    x and y would pick latents unrelated to the targets (R² ≈ 0)."""
    rng = np.random.default_rng(2)
    model = SimpleNamespace(
        cone_matrix=lambda: sp.identity(8, dtype=bool, format="csr"),
        latent_level=np.repeat([0, 1], 4).reshape(2, 2, 2),
        data_shape=(2, 2, 2),
        n_levels=2,
    )
    z = rng.normal(size=(1000, 8))
    centres = np.array([[1, 0], [0, 1]])  # (x, y): pixels (row 0, col 1) and (row 1, col 0)
    # ellipse 0 is latent (channel 0, row 0, col 1), ellipse 1 is latent (channel 1, row 1, col 0)
    factor = Factor("f", "local", "", np.stack([z[:, 1], z[:, 6]], axis=1)[..., None])
    r2, counts = cone_r2(z, model, [factor], centres, folds=5, seed=0)
    assert counts.tolist() == [[1, 1], [1, 1]]
    # each level predicts one ellipse exactly and the other not at all
    assert r2[:, 0] == pytest.approx([0.5, 0.5], abs=0.02)
    empty = SimpleNamespace(**vars(model) | {"latent_level": np.zeros((2, 2, 2), dtype=int)})
    r2, counts = cone_r2(z, empty, [factor], centres, folds=5, seed=0)
    assert counts[1].tolist() == [0, 0] and r2[1, 0] == 0  # no latents: the mean, R² 0


def test_msds_kind_and_factors_follow_the_generators():
    msds1, msds2 = generate_msds("msds1", 200, seed=3), generate_msds("msds2", 200, seed=3)
    assert msds_kind(msds1.labels, msds1.factor_names) == "msds1"
    assert msds_kind(msds2.labels, msds2.factor_names) == "msds2"
    assert msds_kind(np.arange(200), ("digit",)) is None
    assert msds_kind(None, None) is None

    one = {f.name: f for f in msds_factors("msds1", msds1.labels.astype(float))}
    assert list(one) == ["base_colour", "angle", "colour", "colour_offset"]
    assert one["base_colour"].targets.shape == (200, 1, 3)
    offset = one["colour_offset"].targets
    np.testing.assert_allclose(offset + one["base_colour"].targets, one["colour"].targets)
    np.testing.assert_allclose(offset.sum(axis=1), 0, atol=1e-12)
    assert np.abs(offset).max() <= 64 / 255  # every ellipse is c0 ± 32
    assert np.hypot(*np.moveaxis(one["angle"].targets, -1, 0)) == pytest.approx(1.0)

    two = {f.name: f for f in msds_factors("msds2", msds2.labels.astype(float))}
    assert list(two) == ["base_angle", "angle", "colour", "angle_offset"]
    base = np.rad2deg(np.arctan2(*two["base_angle"].targets[:, 0, ::-1].T)) / 2  # θ̄
    first = msds2.labels[..., 2].min(axis=1)  # ≈ θ0: the angles are θ0 + U[0, 45)
    lead = (base - first) % 180  # θ̄ ≈ θ0 + 22.5, and the least of 16 is ≈ θ0 + 45/17
    assert lead.min() >= 0 and lead.max() < 45
    assert lead.mean() == pytest.approx(22.5 - 45 / 17, abs=1)
    offset = two["angle_offset"].targets[..., 0]
    residual = (msds2.labels[..., 2] - base[:, None] - offset + 90) % 180 - 90
    np.testing.assert_allclose(residual, 0, atol=1e-4)
    assert np.abs(offset).max() < 45


def test_budget_subsets_draw_distinct_latents_of_the_level():
    rng = np.random.default_rng(4)
    level = np.arange(100, 200)
    draws = budget_subsets(level, 10, 3, rng)
    assert len(draws) == 3
    for draw in draws:
        assert len(np.unique(draw)) == 10 and np.isin(draw, level).all()
    assert [d.tolist() for d in budget_subsets(level[:8], 10, 3, rng)] == [level[:8].tolist()]


@pytest.fixture(scope="module")
def model():
    return rginspect.load(BUNDLED)


def run(model, data, **changes):
    analysis = Disentangle()
    parameters = {name: p.default for name, p in analysis.parameters.items()} | changes
    return analysis.run(RunContext(model, parameters, 0, data=data))


@pytest.fixture(scope="module")
def msds1_data():
    return load_data(f"msds1:{SAMPLES}", channels=3, size=32, seed=5)


@pytest.fixture(scope="module")
def result(model, msds1_data, tmp_path_factory):
    """The analysis' dataset after a netCDF round trip, as the report sees it."""
    path = tmp_path_factory.mktemp("disentangle") / "results.nc"
    ResultsStore(path).write("disentangle", run(model, msds1_data, inputs=SAMPLES), {})
    return ResultsStore(path).datasets()["disentangle"]


def test_activity_matches_a_direct_computation(model, msds1_data, result):
    with torch.no_grad():
        x, _ = model.preprocess(torch.as_tensor(msds1_data.images_or_fields))
        z = model.encode(x)[0].double().numpy()
    ratio = z.var(axis=0) / (2 * float(model.prior.scale) ** 2)  # Laplace variance 2b²
    np.testing.assert_allclose(result.latent_variance_ratio, ratio, rtol=1e-6)
    for level in range(model.n_levels):
        mine = ratio[model.latent_level == level]
        assert float(result.activity_ratio[level]) == pytest.approx(mine.mean(), rel=1e-6)
        assert float(result.active_fraction[level]) == pytest.approx((mine > 0.01).mean())
    assert result.latents.values.tolist() == [2304, 576, 144, 48]


def test_r2_tables_have_the_declared_shape_and_range(model, result):
    assert result.attrs["dataset_kind"] == "msds1"
    assert result.attrs["samples"] == SAMPLES and result.attrs["budget"] == 48
    assert result.r2_all.dims == ("level", "factor")
    assert result.factor.values.tolist() == ["base_colour", "angle", "colour", "colour_offset"]
    assert result.factor_scale.values.tolist() == ["global", "local", "local", "local"]
    assert result.r2_cone.dims == ("level", "local_factor")
    assert result.local_factor.values.tolist() == ["angle", "colour", "colour_offset"]
    for name in ("r2_all", "r2_budget", "r2_cone"):
        values = result[name].values
        assert np.isfinite(values).all() and values.max() <= 1
    assert result.budget_latents.values.tolist() == [48, 48, 48, 48]
    # the top level has exactly the budget, so both ways fit the same latents
    np.testing.assert_allclose(result.r2_budget[-1], result.r2_all[-1])
    assert float(result.r2_budget_std[-1].max()) < 1e-12  # identical fits: std 0 up to rounding


def test_cone_latents_match_the_model_data_cones(model, result):
    for k in range(result.sizes["ellipse"]):
        x, y = int(result.ellipse_x[k]), int(result.ellipse_y[k])
        covering = np.any([model.data_cone((c, y, x)) for c in range(3)], axis=0)
        expected = [int((covering & (model.latent_level == lv)).sum()) for lv in range(4)]
        assert result.cone_latents[:, k].values.tolist() == expected
    # where a level's cone covers all of it, the cone R² is the all-latents R² of that factor
    full = (result.cone_latents == result.latents).all("ellipse").values
    assert full.any()
    local = result.r2_all.sel(factor=result.local_factor.values)
    np.testing.assert_allclose(result.r2_cone[full], local[full], atol=1e-12)


def test_render_shows_three_heatmaps_and_activity(result):
    section = Disentangle().render(result)
    assert len(section.figures) == 2
    assert len(section.figures[0].figure.axes) == 4  # three heatmaps and one colour bar
    best = section.tables[0].frame
    assert best.loc["base_colour", "all: level"] == int(result.r2_all[:, 0].argmax("level"))
    assert np.isnan(best.loc["base_colour", "cone: level"])  # a global factor has no cone
    unreadable = result.r2_all.max("level") < 0.05
    assert (best["all: level"][unreadable.values] == "none").all()


def test_without_labels_only_activity_is_measured(model, msds1_data):
    unlabelled = dataclasses.replace(msds1_data, labels=None, factor_names=None)
    dataset = run(model, unlabelled, inputs=64)
    assert dataset.attrs["dataset_kind"] == "unlabelled" and dataset.attrs["samples"] == 64
    assert "r2_all" not in dataset and dataset.activity_ratio.sizes == {"level": 4}
    section = Disentangle().render(dataset)
    assert "no MSDS ellipse labels" in section.text
    assert len(section.figures) == 1
    with pytest.raises(ValueError, match="plot 'activity'") as refused:
        Disentangle().plot(dataset, "r2")
    assert "\n" not in str(refused.value)
    assert all(axis.has_data() for axis in Disentangle().plot(dataset, "activity"))


def test_too_few_inputs_for_the_folds_is_refused(model, msds1_data):
    with pytest.raises(ValueError, match="at least 10 inputs"):
        run(model, msds1_data, inputs=6)


def test_model_samples_are_refused_since_their_latents_are_prior_draws(model):
    with pytest.raises(ValueError, match="compare the prior with itself"):
        run(model, None, inputs=64)


def test_a_non_square_module_model_with_unlabelled_data(tmp_path):
    model = rginspect.load("conftest:affine_image_flow", height=4, width=8)
    images = np.random.default_rng(0).integers(0, 256, (40, 3, 4, 8)).astype(np.float32) / 255
    data = DataBatch(images_or_fields=images, source="uniform noise", levels=256)
    dataset = run(model, data, inputs=40)
    # z = 2x + 0.5 entry by entry: each latent's variance is 4 var(x) over the prior's (1)
    x, _ = model.preprocess(torch.as_tensor(images))
    expected = 4 * x.double().var(0, correction=0).numpy()
    np.testing.assert_allclose(dataset.latent_variance_ratio, expected, rtol=1e-5)
    assert dataset.latent_variance_ratio.dims == ("channel", "row", "col")
    assert dataset.sizes["row"] == 4 and dataset.sizes["col"] == 8
