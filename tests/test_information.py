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
    total_correlation,
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
    # one triangle computed and mirrored: the matrix is symmetric exactly, not within rounding
    np.testing.assert_array_equal(mi, mi.T)
    assert np.isnan(np.diag(mi)).all()
    assert abs(mi[0, 2]) < 1e-3 and abs(mi[1, 2]) < 1e-3


def test_pairwise_mi_of_phases_locked_90_degrees_apart():
    """φ_j = ρ i φ_i + noise: the cross-covariance is antisymmetric, I = −ln(1 − ρ²) = 1.27 nats."""
    n, rho = 50_000, 0.848
    a = rng.standard_normal((n, 2))
    rotation = np.array([[0.0, -1.0], [1.0, 0.0]])
    b = rho * a @ rotation.T + np.sqrt(1 - rho**2) * rng.standard_normal((n, 2))
    mi = pairwise_gaussian_mi(np.stack([a, b], 1))
    assert mi[0, 1] == pytest.approx(-np.log(1 - rho**2), abs=0.02)
    assert mi[0, 1] == pytest.approx(1.27, abs=0.02)


def test_pairwise_mi_with_asymmetric_cross_covariances_matches_the_joint_determinant():
    """Three 3-component sites mixed by a random matrix (every cross block asymmetric): each pair's
    MI equals ½ ln(det Σ_i det Σ_j / det Σ_ij) of the pair's own 6×6 sample covariance, and the
    population value of the mixing matrix."""
    n, m, c = 40_000, 3, 3
    mixing = rng.standard_normal((m * c, m * c))
    x = rng.standard_normal((n, m * c)) @ mixing
    mi = pairwise_gaussian_mi(x.reshape(n, m, c))
    population = mixing.T @ mixing
    for i in range(m):
        for j in range(i + 1, m):
            columns = np.r_[i * c : (i + 1) * c, j * c : (j + 1) * c]
            for covariance, tolerance in [
                (np.cov(x[:, columns], rowvar=False), 1e-9),
                (population[np.ix_(columns, columns)], 0.03),
            ]:
                logdet = [np.linalg.slogdet(block)[1] for block in
                          (covariance[:c, :c], covariance[c:, c:], covariance)]  # fmt: skip
                exact = 0.5 * (logdet[0] + logdet[1] - logdet[2])
                assert mi[i, j] == pytest.approx(exact, abs=tolerance)
                assert mi[j, i] == pytest.approx(exact, abs=tolerance)


def test_total_correlation_matches_the_closed_form():
    correlation = np.array([[1, 0.5, 0.2], [0.5, 1, 0.3], [0.2, 0.3, 1]])
    x = rng.multivariate_normal(np.zeros(3), correlation, size=100_000)[:, :, None]
    exact = -0.5 * np.log(np.linalg.det(correlation))
    assert gaussian_total_correlation(x) == pytest.approx(exact, abs=0.01)


def test_iid_latents_far_more_than_samples_have_total_correlation_consistent_with_zero():
    """2304 i.i.d. Gaussian latents (768 sites of 3) from 256 samples: the plain estimate is
    undefined (d > n); the blocked, bias-corrected one is 0 within its shuffled floor's spread."""
    x = rng.standard_normal((256, 768, 3))
    assert gaussian_total_correlation(x[:, :40]) > 10  # the plain bias, ≈ d²/(4n), on 120 dims
    result = total_correlation(x, rng, shuffles=20)
    assert result.reason == "" and result.blocks > 1
    assert result.samples_per_dimension == pytest.approx(256 / 2304)
    assert abs(result.value) < 4 * result.floor_error
    assert abs(result.floor) < 4 * result.floor_error


def ar1_sites(n: int, m: int, c: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    """n samples of m sites × c components, component-wise AR(1) along the sites: (data, Σ)."""
    site = np.arange(m)
    chain = rho ** np.abs(site[:, None] - site[None, :])
    covariance = np.kron(chain, np.eye(c))  # (m·c, m·c), sites outer, components inner
    x = rng.standard_normal((n, m * c)) @ np.linalg.cholesky(covariance).T
    return x.reshape(n, m, c), covariance


def exact_total_correlation(covariance: np.ndarray, m: int, c: int) -> float:
    own = sum(np.linalg.slogdet(covariance[k * c : (k + 1) * c, k * c : (k + 1) * c])[1]
              for k in range(m))  # fmt: skip
    return 0.5 * (own - np.linalg.slogdet(covariance)[1])


def test_total_correlation_of_a_correlated_gaussian_is_its_closed_form():
    """300 sites × 2 components with AR(1) correlation 0.5 from 2000 samples: the plain estimate is
    biased by ≈ d²/(4n) = 45 nats; the corrected one matches −½ ln det of the correlation."""
    m, c = 300, 2
    x, covariance = ar1_sites(2000, m, c, 0.5)
    exact = exact_total_correlation(covariance, m, c)
    assert gaussian_total_correlation(x) - exact > 30
    result = total_correlation(x, rng, shuffles=10)
    assert result.blocks == 1
    assert result.value == pytest.approx(exact, abs=max(0.02 * exact, 4 * result.floor_error))


def test_blocked_total_correlation_is_the_sum_over_blocks_and_a_lower_bound():
    """Too few samples for the whole level: the estimate is the closed-form total correlation
    summed over its blocks of contiguous sites, below the level's own. Under dependence the
    estimator spreads more than its shuffled floor: 0.83 nats over 30 independent data sets here
    (the floor's spread: 0.37), so the tolerance is 4 × 0.85; the uncorrected bias is ≈ 24 nats."""
    m, c = 120, 2
    x, covariance = ar1_sites(200, m, c, 0.6)
    result = total_correlation(x, rng, shuffles=10)
    assert result.blocks > 1
    sites = np.array_split(np.arange(m), result.blocks)
    within = 0.0
    for block in sites:
        columns = (block[:, None] * c + np.arange(c)).ravel()
        within += exact_total_correlation(covariance[np.ix_(columns, columns)], len(block), c)
    assert within < exact_total_correlation(covariance, m, c)
    assert result.value == pytest.approx(within, abs=4 * 0.85)


@pytest.mark.parametrize(
    "n, change, reason",
    [(4, None, "too few"), (500, "constant", "constant"), (500, "nan", "NaN")],
)
def test_total_correlation_refuses_with_a_reason(n, change, reason):
    x = rng.standard_normal((n, 10, 2))
    if change == "constant":
        x[:, 3, 1] = 0.7
    elif change == "nan":
        x[5, 2, 0] = np.nan
    result = total_correlation(x, rng)
    assert np.isnan(result.value) and reason in result.reason


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


def test_censored_line_fit_is_unbiased_where_selecting_pairs_above_the_floor_is_not():
    """ln I = ln 0.3 − 0.7 g + noise 0.5 on the L = 16 bulk, with a floor that hides the far
    pairs: fitting only the pairs above the floor keeps the far ones that noise lifted and
    flattens the slope; the censored fit recovers the slope the data were made with."""
    geodesic, _ = bulk()
    upper = np.triu(np.ones_like(geodesic, dtype=bool), 1)
    distance = geodesic[upper]
    log_mi = np.log(0.3) - 0.7 * distance + 0.5 * rng.standard_normal(distance.size)
    log_floor = float(np.percentile(log_mi, 40))
    above = log_mi > log_floor
    selected = line_fit(distance[above], log_mi[above])
    censored = line_fit(distance, log_mi, log_floor)
    assert abs(selected[0] / 0.7 - 1) > 0.15  # the bias the selection makes
    assert censored[0] == pytest.approx(0.7, rel=0.03)
    assert censored[1] == pytest.approx(np.log(0.3), abs=0.05)
    assert line_fit(distance, log_mi) == pytest.approx(line_fit(distance, log_mi, -np.inf))


def smooth_fields(n: int, L: int = 8, width: float = 1.5) -> np.ndarray:
    """Gaussian fields with correlations that decay over `width` sites (an FFT filter)."""
    k = np.fft.fftfreq(L)[:, None] ** 2 + np.fft.fftfreq(L)[None, :] ** 2
    noise = rng.standard_normal((n, 2, L, L))
    return np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * (np.pi * width) ** 2 * k)).real


def identity_model(action=None) -> RGFlowModel:
    config = rgflow_config(channels=2, L=8, kernel=2, prior="gaussian", domain="field")
    return RGFlowModel.from_config(config, action=action)


def smooth_field_covariance(L: int = 8, width: float = 1.5) -> np.ndarray:
    """(sites, sites) exact covariance of one channel of `smooth_fields`: the filter's square."""
    k = np.fft.fftfreq(L)[:, None] ** 2 + np.fft.fftfreq(L)[None, :] ** 2
    kernel = np.fft.ifft2(np.exp(-2 * (np.pi * width) ** 2 * k) ** 2).real
    rows, cols = np.divmod(np.arange(L * L), L)
    return kernel[(rows[:, None] - rows[None, :]) % L, (cols[:, None] - cols[None, :]) % L]


def test_mutual_info_falls_with_distance_and_round_trips(tmp_path):
    fields = smooth_fields(3000).astype(np.float32)
    fields[:, 1, 0, 0] = 0.3  # one constant component: its level's total correlation diverges
    data = DataBatch(images_or_fields=fields, source="smooth fields")
    model = identity_model()
    parameters = {"inputs": 3000, "knn_pairs": 10, "shuffles": 3}
    result = MutualInfo().run(RunContext(model, parameters, seed=0, data=data))
    curve = result.mi_vs_distance.sel(level=0).values
    assert curve[0] > 10 * float(result.noise_floor)
    assert np.all(np.diff(curve[np.isfinite(curve)][:3]) < 0)
    # the identity flow's latents are the fields: each level's total correlation is closed-form
    covariance, level = smooth_field_covariance(), model.latent_level[0].ravel()
    for a in (0, 1):
        sites = np.flatnonzero(level == a)
        both_channels = np.kron(covariance[np.ix_(sites, sites)], np.eye(2))
        exact = exact_total_correlation(both_channels, len(sites), 2)
        assert float(result.total_correlation.sel(level=a)) == pytest.approx(exact, rel=0.02)
    assert level[0] == 2 and np.isnan(float(result.total_correlation.sel(level=2)))
    assert "constant" in str(result.total_correlation_reason.sel(level=2).values)
    assert float(result.samples_per_dimension.sel(level=0)) == pytest.approx(3000 / 96)
    path = tmp_path / "mi.nc"
    result.to_netcdf(path, engine="h5netcdf")
    section = MutualInfo().render(xr.load_dataset(path, engine="h5netcdf"))
    assert "Noise floor" in section.text
    shown = section.tables[0].frame["total correlation (nats)"]
    assert shown[2].startswith("not estimated: a latent component is constant")


def test_holography_uses_the_action_and_renders(tmp_path):
    model = identity_model(Phi4Action(8, 0.3, 1.0))
    result = Holography().run(RunContext(model, {"inputs": 1024, "resamples": 3}, seed=0))
    assert result.attrs["source"].startswith("HMC samples of the action")
    assert result.attrs["reliable_pairs"] > 0 and np.isfinite(float(result.radius_err))
    path = tmp_path / "holography.nc"
    result.to_netcdf(path, engine="h5netcdf")
    stored = xr.load_dataset(path, engine="h5netcdf")
    section = Holography().render(stored)
    assert "geometry fits better" in section.text
    assert ("no holographic radius" in section.text) == (
        float(result.radius) + 2 * float(result.radius_err) < 0
    )
    # information that grows with bulk distance is called so, not given as a radius
    rising = stored.assign(radius=-1.0, radius_err=0.1)
    assert "no holographic radius" in Holography().render(rising).text


def test_knn_check_counts_dependence_only_beyond_its_shuffled_floor():
    """Gaussian fields: the Gaussian MI is the whole MI, so kNN − Gaussian should be 0. kNN is
    clipped at 0 and reads above 0 on independent series; the report's excess subtracts what it
    reads on the same pairs shuffled, and is then 0 within the estimator's noise."""
    fields = smooth_fields(4000).astype(np.float32)
    data = DataBatch(images_or_fields=fields, source="smooth fields")
    parameters = {"inputs": 4000, "knn_pairs": 40, "shuffles": 1}
    result = MutualInfo().run(RunContext(identity_model(), parameters, seed=0, data=data))
    floor = result.knn_mi_shuffled.values
    assert np.all(floor >= 0) and 0 < floor.mean() < 0.01
    raw = result.knn_mi.values - result.gaussian_mi_scalar.values
    corrected = raw.mean() - floor.mean()
    noise = np.sqrt(raw.var(ddof=1) / len(raw) + floor.var(ddof=1) / len(floor))
    assert abs(corrected) < 4 * noise + 0.002
    assert f"beyond the {floor.mean():.3f} nats" in MutualInfo().render(result).text
