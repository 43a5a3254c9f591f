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

BUNDLED = Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt"
# small enough to run in seconds; every figure still has something to draw
PARAMETERS = {
    "likelihood": {"inputs": 8, "dequantization_draws": 1},
    "receptive": {"samples": 1, "per_level": 1},
    "traverse": {"per_level": 1, "inputs": 8, "steps": 3},
    "mix": {"images": "0,1"},
    "inpaint": {"inputs": 1, "steps": 3, "mask": "square:6@2,20;square:4"},
    "disentangle": {"inputs": 40, "folds": 2, "budget_draws": 1},
}
CONVERTED = ["likelihood", "traverse", "mix", "inpaint", "disentangle"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    """The analyses' results read back from results.nc, as a notebook opens them later."""
    tree = rginspect.analyze(
        BUNDLED, list(PARAMETERS), data="msds1:40", params=PARAMETERS, progress=False
    )
    failed = {name: tree[name].attrs.get("error") for name in PARAMETERS}
    assert all(tree[name].attrs["status"] == "ok" for name in PARAMETERS), failed
    path = tmp_path_factory.mktemp("plots") / "results.nc"
    write_results(tree, path)
    return read_results(path)


def axes_like(drawn) -> object:
    """New Axes on a figure of the caller's, as many and as arranged as in `drawn`."""
    shape = np.shape(drawn)
    if not shape:
        return Figure().subplots()
    rows, columns = (1, *shape) if len(shape) == 1 else shape
    return Figure().subplots(rows, columns, squeeze=False).reshape(shape)


@pytest.mark.parametrize("analysis", CONVERTED)
def test_each_figure_draws_onto_the_callers_axes_from_stored_results(stored, analysis):
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
