"""Every figure of an analysis draws from its stored results alone onto axes the caller gives and
returns them (as arviz's plot functions do), or onto a figure of its own that no pyplot backend
manages; a wrong number of axes is refused in one line."""

from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure
from rginspect_plugins.inpaint.compute import hole_view
from rginspect_plugins.inpaint.draw import METHOD_NAMES, plot_convergence
from rginspect_plugins.traverse.draw import plot_sweeps

import rginspect
from rginspect.plugin_manager import available_analyses
from rginspect.results import read_results, write_results

ASSETS = Path(rginspect.__file__).parent / "assets"
BUNDLED = ASSETS / "msds1_rgflow.pt"
# small enough to run in seconds; every figure still has something to draw
PARAMETERS = {
    "likelihood": {"inputs": 8, "dequantization_draws": 1},
    "receptive": {"samples": 1, "per_level": 1},
    "traverse": {"per_level": 1, "inputs": 8, "steps": 3},
    "mix": {"images": "0,1"},
    "inpaint": {"inputs": 1, "steps": 3, "mask": "square:6@2,20;square:4"},
    "disentangle": {"inputs": 40, "folds": 2, "budget_draws": 1},
    "correlation": {"inputs": 40, "resamples": 60},  # images: the data's C(r) alone
}
# a φ⁴ model with its action, for the analyses of field models
FIELD_PARAMETERS = {
    "correlation": {"samples": 512, "inputs": 512, "resamples": 60},
    "free_energy": {"samples": 512},
}
CONVERTED = {  # analysis -> the fixture holding its stored results
    **dict.fromkeys(["likelihood", "traverse", "mix", "inpaint", "disentangle"], "stored"),
    **dict.fromkeys(FIELD_PARAMETERS, "stored_fields"),
}
# summary on the image model's data, goldstone on φ⁴'s O(2) field (HMC samples of its action)
PARAMETERS["summary"] = {"inputs": 40}
FIELD_PARAMETERS["goldstone"] = {"inputs": 256}
CONVERTED |= {"summary": "stored", "goldstone": "stored_fields"}


def analysed_and_read_back(folder: Path, model: Path, parameters: dict, **options) -> object:
    """The analyses' results read back from results.nc, as a notebook opens them later."""
    tree = rginspect.analyze(model, list(parameters), params=parameters, progress=False, **options)
    failed = {name: tree[name].attrs.get("error") for name in parameters}
    assert all(tree[name].attrs["status"] == "ok" for name in parameters), failed
    write_results(tree, folder / "results.nc")
    return read_results(folder / "results.nc")


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    return analysed_and_read_back(
        tmp_path_factory.mktemp("plots"), BUNDLED, PARAMETERS, data="msds1:40"
    )


@pytest.fixture(scope="module")
def stored_fields(tmp_path_factory):
    return analysed_and_read_back(
        tmp_path_factory.mktemp("field_plots"), ASSETS / "phi4_L16.pt", FIELD_PARAMETERS
    )


# holography and mutual_info on the φ⁴ model: a few HMC chains' fields, few null ensembles
INFORMATION_PARAMETERS = {
    "holography": {
        "inputs": 128,
        "action_inputs": 64,
        "null_ensembles": 2,
        "groups": 4,
        "jacobian_samples": 1,
    },
    "mutual_info": {"inputs": 128, "knn_pairs": 10, "null_ensembles": 2},
}
CONVERTED |= dict.fromkeys(INFORMATION_PARAMETERS, "stored_information")


@pytest.fixture(scope="module")
def stored_information(tmp_path_factory):
    return analysed_and_read_back(
        tmp_path_factory.mktemp("information_plots"),
        ASSETS / "phi4_L16.pt",
        INFORMATION_PARAMETERS,
    )


def test_the_holography_panels_hold_the_stored_pairs_and_the_fit_of_their_geometry(
    stored_information,
):
    dataset = stored_information["holography"].to_dataset()
    above = dataset.pair_above_floor.values.astype(bool)
    fitted = dataset.copy(deep=True)  # a fit to draw, whatever the small run's verdict
    fitted["slope"].loc[{"route": "mutual information"}] = [0.5, 0.25]
    fitted["log_i0"].loc[{"route": "mutual information"}] = [-3.0, -4.0]
    axes = available_analyses()["holography"].plot(fitted, "decay")
    for axis, distance, slope, log_i0 in zip(
        axes, (dataset.pair_geodesic, dataset.pair_flat), (0.5, 0.25), (-3.0, -4.0), strict=True
    ):
        (scatter,) = axis.collections[1:]  # after the errorbars' line collection
        np.testing.assert_allclose(scatter.get_offsets()[:, 0], distance.values[above])
        np.testing.assert_allclose(scatter.get_offsets()[:, 1], dataset.pair_mi.values[above])
        order = np.argsort(distance.values)
        bins = np.array_split(order, 12)
        means = np.array([dataset.pair_mi.values[b].mean() for b in bins])
        points = axis.containers[0].lines[0]
        np.testing.assert_allclose(points.get_ydata(), means[means > 0])
        (fit,) = [line for line in axis.get_lines() if line.get_color() == "red"]
        np.testing.assert_allclose(fit.get_ydata(), np.exp(log_i0 - slope * fit.get_xdata()))
        assert f"slope {slope:.3g}" in axis.get_title()
    drawn = stored_information.rginspect.plot("holography")  # a fit only where one was made
    fits = [line for axis in drawn for line in axis.get_lines() if line.get_color() == "red"]
    assert len(fits) == np.isfinite(dataset.slope.sel(route="mutual information")).sum()


def test_the_mutual_info_panels_hold_the_stored_profiles_levels_and_estimates(stored_information):
    dataset = stored_information["mutual_info"].to_dataset()
    profile, levels, estimators = stored_information.rginspect.plot("mutual_info", "information")
    curves = {line.get_label(): line for line in profile.get_lines()}
    for level in dataset.level.values:
        curve = dataset.mi_vs_distance.sel(level=level).values
        shown = np.isfinite(curve) & (curve > 0)
        line = curves[f"level {level}"]
        np.testing.assert_allclose(line.get_xdata(), dataset.distance.values[shown])
        np.testing.assert_allclose(line.get_ydata(), curve[shown])
    floor = curves["noise floor (median)"].get_ydata()
    np.testing.assert_allclose(floor, float(dataset.noise_floor))
    heatmap = levels.collections[0].get_array().reshape(dataset.mi_between_levels.shape)
    np.testing.assert_allclose(heatmap, dataset.mi_between_levels.values)
    (scatter,) = estimators.collections
    np.testing.assert_allclose(scatter.get_offsets()[:, 0], dataset.gaussian_mi_scalar.values)
    np.testing.assert_allclose(scatter.get_offsets()[:, 1], dataset.knn_mi.values)
    np.testing.assert_allclose(scatter.get_array(), dataset.pair_distance.values)


def axes_like(drawn) -> object:
    """New Axes on a figure of the caller's, as many and as arranged as in `drawn`."""
    shape = np.shape(drawn)
    if not shape:
        return Figure().subplots()
    rows, columns = (1, *shape) if len(shape) == 1 else shape
    return Figure().subplots(rows, columns, squeeze=False).reshape(shape)


@pytest.mark.parametrize("analysis", list(CONVERTED))
def test_each_figure_draws_onto_the_callers_axes_from_stored_results(request, analysis):
    stored = request.getfixturevalue(CONVERTED[analysis])
    plots = available_analyses()[analysis].plots
    assert plots, f"{analysis} declares no figures"
    for name in plots:
        own = stored.rginspect.plot(analysis, name)
        assert np.ravel(own)[0].figure.canvas.manager is None  # no pyplot backend involved
        given = axes_like(own)
        returned = stored.rginspect.plot(analysis, name, ax=given)
        assert np.shape(returned) == np.shape(given)
        for mine, theirs in zip(np.ravel(returned), np.ravel(given), strict=True):
            assert mine is theirs
            assert mine.has_data(), f"{analysis}: a panel of {name!r} holds nothing"
        one_too_many = Figure().subplots(1, np.size(given) + 1)
        with pytest.raises(ValueError, match=f"give ax as {np.size(given)} Axes") as refused:
            stored.rginspect.plot(analysis, name, ax=one_too_many)
        assert "\n" not in str(refused.value)


def test_the_traverse_grid_of_each_level_holds_that_levels_latents(stored):
    dataset = stored["traverse"].to_dataset()
    swept = dataset.level.values
    for level in np.unique(swept):
        axes = stored.rginspect.plot("traverse", "sweeps", level=int(level))  # option forwarded
        rows = [axis.get_ylabel() for axis in axes[:, 0]]
        expected = [
            f"({c}, {r}, {q})"
            for c, r, q, lv in zip(
                dataset.latent_channel.values,
                dataset.latent_row.values,
                dataset.latent_col.values,
                swept,
                strict=True,
            )
            if lv == level
        ]
        assert [label.split("\n")[0] for label in rows] == expected
    with pytest.raises(ValueError, match="pick one of") as refused:
        plot_sweeps(dataset, level=int(swept.max()) + 1)
    assert "\n" not in str(refused.value)


def test_the_inpaint_curves_of_each_hole_are_its_stored_traces(stored):
    dataset = stored["inpaint"].to_dataset()
    for hole in dataset.hole.values:
        view = hole_view(dataset, str(hole))
        axis = stored.rginspect.plot("inpaint", "convergence", hole=str(hole))
        curves = {line.get_label(): line.get_ydata() for line in axis.get_lines()}
        for method in view.latent_set.values:
            expected = view.masked_rmse_trace.sel(latent_set=method).mean("image").values
            np.testing.assert_allclose(curves[METHOD_NAMES[str(method)]], expected)
    with pytest.raises(ValueError, match="pick one of"):
        plot_convergence(dataset, hole="square:5")


@pytest.mark.parametrize(
    ("results", "unit"), [("stored_fields", "lattice spacings"), ("stored", "pixels")]
)
def test_the_correlation_points_are_the_stored_curves_against_distances_in_their_unit(
    request, results, unit
):
    stored = request.getfixturevalue(results)
    dataset = stored["correlation"].to_dataset()
    assert dataset.distance.attrs["units"] == "1"  # CF: the unit's name is not in `units`
    axes = stored.rginspect.plot("correlation")
    assert axes[0].get_xlabel() == f"r ({unit})"
    names = [str(name) for name in dataset.ensemble.values]
    points = {bars.get_label(): bars.lines[0] for bars in axes[0].containers}  # errorbars
    assert list(points) == (names if len(names) > 1 else ["C(r)"])
    shown = dataset.distance.values >= 1
    for name, line in zip(names, points.values(), strict=True):
        one = dataset.sel(ensemble=name)
        np.testing.assert_allclose(line.get_xdata(), one.distance[shown])
        np.testing.assert_allclose(line.get_ydata(), one.correlation[shown])


def test_correlation_results_from_before_the_distance_unit_attribute_still_draw(stored_fields):
    dataset = stored_fields["correlation"].to_dataset()
    del dataset.attrs["distance_unit"]
    dataset.distance.attrs["units"] = "lattice spacings"  # as written before CF units
    axes = available_analyses()["correlation"].plot(dataset)
    assert axes[0].get_xlabel() == "r (lattice spacings)"


def test_the_free_energy_histogram_holds_every_stored_weight_and_marks_f_and_ln_z(stored_fields):
    dataset = stored_fields["free_energy"].to_dataset()
    axis = stored_fields.rginspect.plot("free_energy", "weights")
    assert sum(bar.get_height() for bar in axis.patches) == dataset.sizes["sample"]
    left = min(bar.get_x() for bar in axis.patches)
    right = max(bar.get_x() + bar.get_width() for bar in axis.patches)
    assert left == pytest.approx(float(dataset.log_weight.min()))
    assert right == pytest.approx(float(dataset.log_weight.max()))
    marks = {line.get_label(): line.get_xdata()[0] for line in axis.get_lines()}
    assert marks["−F_q = ⟨ln w⟩"] == pytest.approx(-float(dataset.free_energy))
    assert marks["ln Z, importance sampled"] == pytest.approx(float(dataset.log_z))
    assert "ln Z, exact" not in marks  # φ⁴ has no exact ln Z


def test_the_summary_bars_are_the_stored_level_statistics_against_the_prior(stored):
    dataset = stored["summary"].to_dataset()
    axes = stored.rginspect.plot("summary", "statistics")
    for axis, name, prior in zip(
        axes, ("std", "excess_kurtosis"), ("prior_std", "prior_excess_kurtosis"), strict=True
    ):
        bars = axis.patches
        np.testing.assert_allclose(
            [bar.get_x() + bar.get_width() / 2 for bar in bars], dataset.level
        )
        np.testing.assert_allclose([bar.get_height() for bar in bars], dataset[name])
        (line,) = axis.get_lines()
        assert line.get_ydata()[0] == pytest.approx(dataset.attrs[prior])
        assert line.get_label() == f"{dataset.attrs['prior']} prior"


def test_the_goldstone_scatter_is_the_best_locked_candidate_and_the_bars_each_locking(
    stored_fields,
):
    dataset = stored_fields["goldstone"].to_dataset()
    best = int(np.argmax(dataset.phase_locking.values))
    scatter, bars = stored_fields.rginspect.plot("goldstone", "phase_locking")
    assert scatter.get_xlabel() == f"phase ψ of {dataset.candidate.values[best]}"
    (points,) = scatter.collections
    np.testing.assert_allclose(points.get_offsets()[:, 0], dataset.latent_phase[best])
    np.testing.assert_allclose(points.get_offsets()[:, 1], dataset.global_phase)
    np.testing.assert_allclose([bar.get_height() for bar in bars.patches], dataset.phase_locking)
    assert [label.get_text() for label in bars.get_xticklabels()] == list(dataset.candidate.values)
    (baseline,) = bars.get_lines()
    assert baseline.get_ydata()[0] == pytest.approx(float(dataset.baseline_locking))
