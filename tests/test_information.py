"""Mutual information estimators against closed forms; mutual_info and holography on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from rginspect_plugins.holography import Holography, bulk_distances, line_fit
from rginspect_plugins.mutual_info import MutualInfo

from rginspect.analysis import RunContext
from rginspect.data.specs import DataBatch
from rginspect.information import (
    gaussian_total_correlation,
    knn_mi,
    pairwise_gaussian_mi,
    shuffled,
)
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.physics import Phi4Action

rng = np.random.default_rng(0)


def test_pairwise_mi_of_correlated_vectors_matches_the_closed_form():
    n, rho = 50_000, 0.6
    a = rng.standard_normal((n, 2))
    b = rho * a + np.sqrt(1 - rho**2) * rng.standard_normal((n, 2))
    c = rng.standard_normal((n, 2))
    mi = pairwise_gaussian_mi(np.stack([a, b, c], 1))
    # two independent components, each with correlation ρ: I = 2 · (−½ ln(1 − ρ²))
    assert mi[0, 1] == pytest.approx(-np.log(1 - rho**2), abs=0.01)
    assert mi[0, 1] == mi[1, 0] and np.isnan(mi[0, 0])
    assert abs(mi[0, 2]) < 1e-3 and abs(mi[1, 2]) < 1e-3


def test_total_correlation_matches_the_closed_form():
    correlation = np.array([[1, 0.5, 0.2], [0.5, 1, 0.3], [0.2, 0.3, 1]])
    x = rng.multivariate_normal(np.zeros(3), correlation, size=100_000)[:, :, None]
    exact = -0.5 * np.log(np.linalg.det(correlation))
    assert gaussian_total_correlation(x) == pytest.approx(exact, abs=0.01)


def test_knn_agrees_with_gaussian_on_gaussian_data_and_shuffling_removes_dependence():
    x = rng.standard_normal(4000)
    y = 0.8 * x + 0.6 * rng.standard_normal(4000)
    assert knn_mi(x, y) == pytest.approx(-0.5 * np.log(1 - 0.8**2), abs=0.05)
    pair = np.stack([x, y], 1)[:, :, None]
    assert abs(pairwise_gaussian_mi(shuffled(pair, rng))[0, 1]) < 2e-3


def bulk(L: int = 16, n_levels: int = 4) -> tuple[np.ndarray, ...]:
    rows, cols = np.divmod(np.arange(L * L), L)
    model = RGFlowModel.from_config(
        rgflow_config(channels=1, L=L, kernel=2, prior="gaussian", domain="field")
    )
    depth = 2.0 ** model.latent_level[0].ravel()
    return bulk_distances(rows, cols, depth, L)


@pytest.mark.parametrize("truth", ["hyperbolic", "flat"])
def test_line_fits_recover_the_geometry_that_made_the_mi(truth):
    geodesic, flat = bulk()
    upper = np.triu(np.ones_like(geodesic, dtype=bool), 1)
    distance = {"hyperbolic": geodesic, "flat": flat}[truth][upper]
    log_mi = np.log(0.3) - 0.7 * distance + 0.05 * rng.standard_normal(distance.size)
    fits = {
        name: line_fit(d[upper], log_mi) for name, d in [("hyperbolic", geodesic), ("flat", flat)]
    }
    assert fits[truth][0] == pytest.approx(0.7, rel=0.02)
    assert fits[truth][1] == pytest.approx(np.log(0.3), abs=0.02)
    other = "flat" if truth == "hyperbolic" else "hyperbolic"
    assert fits[truth][2] > 0.95 > fits[other][2]


def smooth_fields(n: int, L: int = 8, width: float = 1.5) -> np.ndarray:
    """Gaussian fields with correlations that decay over `width` sites (an FFT filter)."""
    k = np.fft.fftfreq(L)[:, None] ** 2 + np.fft.fftfreq(L)[None, :] ** 2
    noise = rng.standard_normal((n, 2, L, L))
    return np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * (np.pi * width) ** 2 * k)).real


def identity_model(action=None) -> RGFlowModel:
    config = rgflow_config(channels=2, L=8, kernel=2, prior="gaussian", domain="field")
    return RGFlowModel.from_config(config, action=action)


def test_mutual_info_falls_with_distance_and_round_trips(tmp_path):
    fields = smooth_fields(3000).astype(np.float32)
    data = DataBatch(images_or_fields=fields, source="smooth fields")
    result = MutualInfo().run(
        RunContext(identity_model(), {"samples": 3000, "knn_pairs": 10}, seed=0, data=data)
    )
    curve = result.mi_vs_distance.sel(level=0).values
    assert curve[0] > 10 * float(result.noise_floor)
    assert np.all(np.diff(curve[np.isfinite(curve)][:3]) < 0)
    path = tmp_path / "mi.nc"
    result.to_netcdf(path, engine="h5netcdf")
    section = MutualInfo().render(xr.load_dataset(path, engine="h5netcdf"))
    assert "Noise floor" in section.text


def test_holography_uses_the_action_and_renders(tmp_path):
    model = identity_model(Phi4Action(8, 0.3, 1.0))
    result = Holography().run(RunContext(model, {"samples": 1024, "resamples": 3}, seed=0))
    assert result.attrs["source"].startswith("HMC samples of the action")
    assert result.attrs["reliable_pairs"] > 0 and np.isfinite(float(result.radius_err))
    path = tmp_path / "holography.nc"
    result.to_netcdf(path, engine="h5netcdf")
    section = Holography().render(xr.load_dataset(path, engine="h5netcdf"))
    assert "geometry fits better" in section.text
