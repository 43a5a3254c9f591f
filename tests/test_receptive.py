"""Receptive fields: both Jacobian methods against dense autograd, the colouring, the size measures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
import xarray as xr
from rginspect_plugins.receptive import Receptive
from rginspect_plugins.receptive.compute import cone_wraps

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import load_data
from rginspect.jacobian import (
    _overlap_graph,
    cone_colouring,
    decode_to_data,
    decoder_jacobian,
    field_sizes,
    overlap_clique,
    probe_lower_bound,
    receptive_fields,
)
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import neuralrg_config, rgflow_config

BUNDLED = Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt"


def randomized(config: dict, dtype: torch.dtype = torch.float64) -> RGFlowModel:
    """A fresh model is the identity (output scales start at 0); perturb it into a real map."""
    torch.manual_seed(0)
    model = RGFlowModel.from_config(config).to(dtype)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


def dense_jacobian(model: RGFlowModel, z: torch.Tensor) -> torch.Tensor:
    """(sample, data entry, latent) by reverse-mode autograd, one sample at a time."""
    n = model.n_latents

    def flat_decode(v: torch.Tensor) -> torch.Tensor:
        return decode_to_data(model, v.reshape(1, *model.data_shape)).reshape(-1)

    jacobians = [torch.func.jacrev(flat_decode)(zi.reshape(-1)).reshape(n, n) for zi in z]
    return torch.stack(jacobians).detach()


def cone_entries(model: RGFlowModel) -> tuple[np.ndarray, np.ndarray]:
    cone = model.cone_matrix()
    return cone.indices, np.repeat(np.arange(cone.shape[0]), np.diff(cone.indptr))


MODELS = {
    "rgflow": rgflow_config(channels=3, L=16, kernel=4, nhidden=8),
    "neuralrg": neuralrg_config(channels=2, L=8, nlayers=2, nhidden=8),
}


@pytest.mark.parametrize("architecture", MODELS)
@pytest.mark.parametrize("method", ["blocks", "probes"])
@pytest.mark.parametrize("dtype,tolerance", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
def test_jacobian_equals_dense_autograd(architecture, method, dtype, tolerance):
    model = randomized(MODELS[architecture], dtype)
    z = model.prior.sample((2, *model.data_shape)).to(dtype)
    dense = dense_jacobian(model, z)
    entry, latent = cone_entries(model)
    values, used = decoder_jacobian(model, z, method)
    assert used == method
    scale = dense.abs().max()
    assert scale > 0.1  # a real map, not the identity
    assert (values - dense[:, entry, latent]).abs().max() <= tolerance * scale
    outside = torch.ones_like(dense[0], dtype=torch.bool)
    outside[entry, latent] = False
    assert dense[:, outside].abs().max() == 0  # nothing escapes the structural cone


def test_receptive_fields_are_mean_channel_sums_of_the_dense_jacobian():
    model = randomized(MODELS["rgflow"])
    z = model.prior.sample((3, *model.data_shape)).double()
    values, _ = decoder_jacobian(model, z)
    dense = dense_jacobian(model, z).abs().mean(0)  # (entry, latent)
    C, H, W = model.data_shape
    expected = dense.reshape(C, H * W, -1).sum(0).T.numpy()  # (latent, site)
    np.testing.assert_allclose(receptive_fields(values, model).toarray(), expected, atol=1e-12)


def test_colouring_is_valid_and_meets_the_clique_bound():
    model = rginspect.load(BUNDLED)
    cone = model.cone_matrix()
    colours = cone_colouring(cone)
    for colour in range(colours.max() + 1):
        # latents of one colour never share a data entry
        assert cone[colours == colour].sum(0).max() <= 1
    assert probe_lower_bound(cone) == 660  # the count for L=32, K=4, C=3
    # a clique of pairwise-overlapping cones needs one probe each: this colouring is optimal
    assert colours.max() + 1 == overlap_clique(cone) == 804


def test_clique_members_overlap_pairwise():
    cone = RGFlowModel.from_config(MODELS["rgflow"]).cone_matrix()
    size = overlap_clique(cone)
    assert probe_lower_bound(cone) <= size <= cone_colouring(cone).max() + 1


def test_field_sizes_match_exact_formulas():
    H = W = 8
    single = np.zeros((H, W))
    single[3, 5] = 2.0
    square = np.zeros((H, W))
    square[np.ix_([7, 0, 1], [7, 0, 1])] = 1.0  # 3×3 square wrapping around the corner
    empty = np.zeros((H, W))
    fields = sp.csr_matrix(np.stack([single.ravel(), square.ravel(), empty.ravel()]))
    centre_y, centre_x, radius, area50, area90 = field_sizes(fields, H, W)
    assert np.isnan([centre_y[2], centre_x[2], radius[2]]).all() and area90[2] == 0
    assert (centre_y[0], centre_x[0], radius[0], area50[0], area90[0]) == (3, 5, 0, 1, 1)
    assert centre_y[1] == pytest.approx(0, abs=1e-9) and centre_x[1] == pytest.approx(0, abs=1e-9)
    assert radius[1] == pytest.approx(np.sqrt(4 / 3))  # mean of dy² + dx² over {−1,0,1}²
    assert (area50[1], area90[1]) == (5, 9)  # 5/9 ≥ 50%, 8/9 < 90%


@pytest.fixture(scope="module")
def bundled_result():
    model = rginspect.load(BUNDLED)
    data = load_data("msds1:4", channels=3, size=32, seed=1)
    context = RunContext(model, {**defaults(), "samples": 2}, seed=0, data=data)
    return Receptive().run(context)


def defaults() -> dict:
    return {name: p.default for name, p in Receptive.parameters.items()}


def test_bundled_model_fields_grow_with_level(bundled_result):
    radius = bundled_result.radius.groupby("latent_level").median().values
    assert np.all(np.diff(radius[:3]) > 0)  # levels 0..2 (level 3 fills the 32×32 image)
    assert bundled_result.attrs["method"] == "blocks"
    # every field lies inside its latent's structural cone
    model = rginspect.load(BUNDLED)
    for index, latent in enumerate(bundled_result.shown.values):
        cone = model.latent_cone(int(latent)).any(0)
        assert np.all(bundled_result.rf_map[index].values[~cone] == 0)


def test_probes_and_blocks_give_the_same_fields():
    model = randomized(MODELS["rgflow"], torch.float32)
    results = {
        method: Receptive().run(
            RunContext(model, {**defaults(), "samples": 2, "method": method}, seed=0)
        )
        for method in ("blocks", "probes")
    }
    assert [results[m].attrs["method"] for m in results] == ["blocks", "probes"]
    np.testing.assert_allclose(
        results["probes"].rf_mass, results["blocks"].rf_mass, rtol=1e-4, atol=1e-6
    )


def test_result_round_trips_and_renders(bundled_result, tmp_path):
    path = tmp_path / "receptive.nc"
    bundled_result.to_netcdf(path, engine="h5netcdf")
    stored = xr.load_dataset(path, engine="h5netcdf")
    section = Receptive().render(stored)
    assert len(section.figures) == 3 and "probes" in section.text
    table = section.tables[0].frame
    assert list(table["latents"]) == [2304, 576, 144, 48]


def test_prior_samples_and_bad_parameters():
    model = RGFlowModel.from_config(MODELS["rgflow"])
    prior = Receptive().run(
        RunContext(model, {**defaults(), "samples": 1, "source": "prior"}, seed=0)
    )
    assert prior.attrs["source"] == "prior samples"
    with pytest.raises(ValueError, match="receptive.source"):
        Receptive().run(RunContext(model, {**defaults(), "source": "noise"}, seed=0))
    with pytest.raises(ValueError, match="unknown Jacobian method"):
        Receptive().run(RunContext(model, {**defaults(), "method": "magic"}, seed=0))


@pytest.mark.parametrize("architecture", MODELS)
def test_overlap_graph_is_the_pattern_of_cone_times_its_transpose(architecture):
    cone = RGFlowModel.from_config(MODELS[architecture]).cone_matrix()
    dense = cone.toarray().astype(np.int64)
    expected = (dense @ dense.T) > 0
    np.testing.assert_array_equal(_overlap_graph(cone).toarray() > 0, expected)


def test_levels_whose_cones_close_around_the_torus_are_not_fitted(bundled_result):
    model = rginspect.load(BUNDLED)
    # one latent per level: does its cone's footprint leave a row and a column untouched?
    expected = []
    for level in range(model.n_levels):
        latent = int(np.flatnonzero(model.latent_level.ravel() == level)[0])
        footprint = model.latent_cone(latent).any(0)
        expected.append(bool(footprint.any(1).all() or footprint.any(0).all()))
    wraps = cone_wraps(model)
    assert wraps.tolist() == expected == [False, False, True, True]  # footprints 8, 24, 32, 32 rows
    np.testing.assert_array_equal(bundled_result.cone_wraps.values, wraps)
    section = Receptive().render(bundled_result)
    medians = bundled_result.radius.groupby("latent_level").median().values
    growth = medians[1] / medians[0]  # two levels: the fit is their ratio
    assert f"×{growth:.2f} per level" in section.text
    assert "levels 0, 1;" in section.text and "other 2 have structural cones" in section.text


def test_budget_cuts_the_samples_and_says_so():
    model = randomized(MODELS["rgflow"], torch.float32)
    parameters = {**defaults(), "samples": 3, "source": "prior", "budget": 1e-9}
    cut = Receptive().run(RunContext(model, parameters, seed=0))
    assert (cut.attrs["samples"], cut.attrs["samples_requested"]) == (1, 3)
    assert "cut from 3 to fit the 1e-09 s budget" in Receptive().render(cut).how_to_read
    # the one sample kept is the first prior draw: its fields alone
    z = model.prior.sample((3, *model.data_shape), generator=torch.Generator().manual_seed(0))
    values, _ = decoder_jacobian(model, z[:1])
    mass = np.asarray(receptive_fields(values, model).sum(1)).ravel()
    np.testing.assert_allclose(cut.rf_mass.values, mass, rtol=1e-5)
    full = Receptive().run(RunContext(model, {**parameters, "budget": 0}, seed=0))
    assert full.attrs["samples"] == 3 and "cut from" not in Receptive().render(full).how_to_read
