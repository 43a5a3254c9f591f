"""Mutual information estimators and their noise against closed forms and independent laws;
chain-aware nulls and errors; mutual_info on known cases."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from holography_cases import gaussian_fields, identity_model
from rginspect_plugins.mutual_info import MutualInfo
from scipy.stats import ncx2
from sklearn.feature_selection import mutual_info_regression

from rginspect.analysis import RunContext
from rginspect.chains import Chains, bartlett_factor, jackknife_error
from rginspect.data.specs import DataBatch
from rginspect.information import (
    PairLaw,
    gaussian_total_correlation,
    jackknife_pair_mi,
    knn_mi,
    pair_law,
    pairwise_gaussian_mi,
    total_correlation,
)

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


def test_jackknife_pair_mi_equals_the_estimate_without_each_group():
    x = rng.standard_normal((640, 6, 2))
    x[:, 1] += 0.5 * x[:, 0]
    chains = Chains.interleaved(640, 64)
    groups = chains.jackknife_groups(16)
    parts = [part for part, _ in groups]
    assert sorted(np.concatenate(parts)) == list(range(640))
    for (part, rest), mi in zip(groups, jackknife_pair_mi(x, parts), strict=True):
        kept = np.setdiff1d(np.arange(640), part)
        np.testing.assert_array_equal(np.sort(rest.index.ravel()), kept)
        np.testing.assert_allclose(mi, pairwise_gaussian_mi(x[kept]), atol=1e-12)


# -- the law of the pairwise estimate ------------------------------------------------------------
def test_pair_estimate_follows_its_noncentral_chi2_law_and_its_bias_is_removed():
    """500 independent pairs of 2-vectors, each component correlated ρ = 0.1 with its partner
    (I = −ln(1 − ρ²) = 0.01005 nats), from n = 1000 samples: the bias-corrected estimates average
    I within their standard error, and 2(n − 1)Î has the mean and variance of the noncentral χ²
    with 4 degrees of freedom and noncentrality 2(n − 1)I (an independent law, by simulation of
    the Gaussian samples, not of the law)."""
    n, pairs, rho = 1000, 500, 0.1
    a = rng.standard_normal((n, pairs, 2))
    b = rho * a + np.sqrt(1 - rho**2) * rng.standard_normal((n, pairs, 2))
    sites = np.stack([a, b], 2).reshape(n, 2 * pairs, 2)
    mi = pairwise_gaussian_mi(sites)
    estimates = mi[np.arange(0, 2 * pairs, 2), np.arange(1, 2 * pairs, 2)]
    truth = -np.log(1 - rho**2)
    nu = np.full(pairs, n - 1.0)
    law = PairLaw(nu, 4, 13.28, 0.01, np.zeros(2), 1.0)
    corrected = estimates - law.bias()
    error = corrected.std(ddof=1) / np.sqrt(pairs)
    assert abs(corrected.mean() - truth) < 3 * error
    assert abs(estimates.mean() - truth) > 6 * error  # the bias that was removed, C²/2n
    statistic = law.statistic(estimates)
    expected = ncx2(4, 2 * (n - 1) * truth)
    assert statistic.mean() == pytest.approx(expected.mean(), abs=3 * expected.std() / pairs**0.5)
    assert statistic.var(ddof=1) == pytest.approx(expected.var(), rel=0.2)


def test_pair_log_likelihood_is_scipys_censored_noncentral_chi2_and_its_derivative():
    generator = np.random.default_rng(1)
    for c in (1, 2, 3):
        dof = c * c
        nu = generator.uniform(500, 4000, 2000)
        threshold = float(ncx2.ppf(0.99, dof, 0))
        law = PairLaw(nu, dof, threshold, 0.01, np.zeros(2), 1.0)
        mi = generator.uniform(0, 0.01, 2000)
        raw = ncx2.rvs(dof, 2 * nu * mi, random_state=generator) / (2 * nu)
        value, slope = law.log_likelihood(raw, mi)
        u = 2 * nu * raw
        seen = u > threshold
        assert 0 < seen.sum() < len(u)
        exact = np.where(
            seen, ncx2.logpdf(u, dof, 2 * nu * mi), ncx2.logcdf(threshold, dof, 2 * nu * mi)
        )
        np.testing.assert_allclose(value, exact, atol=1e-6)
        step = 1e-7
        finite = (law.log_likelihood(raw, mi + step)[0] - law.log_likelihood(raw, mi - step)[0]) / (
            2 * step
        )
        away = mi > 10 * step  # the derivative at I = 0 is one-sided
        np.testing.assert_allclose(slope[away], finite[away], rtol=1e-4, atol=1e-3)


# -- chains ----------------------------------------------------------------------------------------
def ar1_chains(n_chains: int, steps: int, tau: np.ndarray, c: int = 2) -> np.ndarray:
    """(n_chains · steps, sites, c) independent AR(1) series, one τ_int per site, stored
    step-major (as HMC's samples)."""
    r = (tau - 1) / (tau + 1)
    x = np.empty((steps, n_chains, len(tau), c))
    x[0] = rng.standard_normal((n_chains, len(tau), c))
    for t in range(1, steps):
        innovation = rng.standard_normal((n_chains, len(tau), c))
        x[t] = r[:, None] * x[t - 1] + np.sqrt(1 - r[:, None] ** 2) * innovation
    return x.reshape(steps * n_chains, len(tau), c)


def test_bartlett_factor_of_two_ar1_series_is_the_closed_form():
    """Two AR(1) series with coefficients r₁, r₂: T = Σ_t (r₁r₂)^|t| = (1 + r₁r₂)/(1 − r₁r₂)."""
    tau = np.array([3.0, 9.0])
    x = ar1_chains(64, 512, tau)
    factor = bartlett_factor(Chains.interleaved(len(x), 64).autocorrelation(x))
    r = (tau - 1) / (tau + 1)
    exact = (1 + r[0] * r[1]) / (1 - r[0] * r[1])
    assert factor[0, 1] == pytest.approx(exact, rel=0.05)
    assert factor[0, 0] == pytest.approx((1 + r[0] ** 2) / (1 - r[0] ** 2), rel=0.05)


def test_chains_one_step_long_count_every_sample():
    """64 chains of one step each (64 HMC fields of 64 chains) show no lag: the samples are
    independent draws and every pair keeps T = 1."""
    x = rng.standard_normal((64, 3, 2))
    factor = bartlett_factor(Chains.interleaved(len(x), 64).autocorrelation(x))
    np.testing.assert_allclose(factor, np.ones((3, 3)))


@pytest.mark.parametrize("n_chains", [1, 64])
def test_null_ensemble_keeps_each_site_and_its_time_correlation_and_breaks_dependence(n_chains):
    """One chain: each site's series shifted in time (the same values); many chains: each site's
    deviations from its mean flipped in sign per chain (the same magnitudes). Either way the
    sites' autocorrelations stay and a strong dependence between two sites is gone."""
    tau = np.array([1.0, 5.0, 20.0, 20.0])
    steps = 4096 // n_chains
    x = ar1_chains(n_chains, steps, tau) + 0.5
    x[:, 3] = x[:, 2] + 0.1 * rng.standard_normal((len(x), 2))  # site 3 follows site 2
    chains = Chains.one_chain(len(x)) if n_chains == 1 else Chains.interleaved(len(x), n_chains)
    null = chains.null_ensemble(x, rng)
    for site in range(4):
        if n_chains == 1:
            np.testing.assert_array_equal(np.sort(null[:, site], 0), np.sort(x[:, site], 0))
        else:
            deviation = x[:, site] - x[:, site].mean(0)
            np.testing.assert_allclose(
                np.abs(null[:, site] - x[:, site].mean(0)), np.abs(deviation)
            )
    original = chains.autocorrelation(x)[:, :10]
    np.testing.assert_allclose(chains.autocorrelation(null)[:, :10], original, atol=0.03)
    assert pairwise_gaussian_mi(x)[2, 3] > 3
    assert pairwise_gaussian_mi(null)[2, 3] < 0.05


@pytest.mark.parametrize("n_chains", [1, 64])
def test_chained_independent_sites_clear_the_floor_at_the_nominal_rate(n_chains):
    """100 independent sites, each an AR(1) series with τ_int from 1 to 30, in one chain or in 64
    chains of 64 steps: 5% of the pairs lie above the 95% floor, within the binomial error, and
    no more than chance by the null ensembles' spread. Shuffling samples independently, the
    floor would be that of 4096 independent samples, and about half the pairs would exceed it."""
    tau = rng.uniform(1, 30, 100)
    x = ar1_chains(n_chains, 4096 // n_chains, tau)
    chains = Chains.one_chain(len(x)) if n_chains == 1 else Chains.interleaved(len(x), n_chains)
    law = pair_law(x, chains, rng, null_ensembles=8, alpha=0.05)
    upper = np.triu(np.ones((100, 100), dtype=bool), 1)
    count = law.exceedances(pairwise_gaussian_mi(chains.kept(x)), upper)
    pairs = int(upper.sum())
    assert count / pairs == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / pairs))
    assert not law.has_information(count)
    assert law.calibration == pytest.approx(1, abs=0.1)  # Bartlett's ν nearly as measured
    naive = 2 * (len(x) - 1) * pairwise_gaussian_mi(x)[upper]
    assert (naive > ncx2.ppf(0.95, 4, 0)).mean() > 0.3


def test_jackknife_error_of_a_mean_is_the_spread_of_its_group_means():
    """For the mean of equal groups the delete-a-group jackknife error is exactly the standard
    deviation of the group means over √g."""
    x = rng.standard_normal(1600)
    groups = np.split(x, 16)
    replicates = [np.mean(np.concatenate(groups[:k] + groups[k + 1 :])) for k in range(16)]
    means = [g.mean() for g in groups]
    assert jackknife_error(np.array(replicates)) == pytest.approx(
        np.std(means, ddof=1) / 4, rel=1e-10
    )


# -- total correlation ------------------------------------------------------------------------------
def test_total_correlation_matches_the_closed_form():
    correlation = np.array([[1, 0.5, 0.2], [0.5, 1, 0.3], [0.2, 0.3, 1]])
    x = rng.multivariate_normal(np.zeros(3), correlation, size=100_000)[:, :, None]
    exact = -0.5 * np.log(np.linalg.det(correlation))
    assert gaussian_total_correlation(x) == pytest.approx(exact, abs=0.01)


def test_iid_latents_far_more_than_samples_have_total_correlation_consistent_with_zero():
    """2304 i.i.d. Gaussian latents (768 sites of 3) from 256 samples: the plain estimate is
    undefined (d > n); the blocked, bias-corrected one is 0 within the estimator's spread (the
    null ensembles' standard deviation: one draw), and the floor, a mean over 20 null ensembles,
    is 0 within its standard error (that spread over √20): the Wishart bias is removed exactly."""
    x = rng.standard_normal((256, 768, 3))
    assert gaussian_total_correlation(x[:, :40]) > 10  # the plain bias, ≈ d²/(4n), on 120 dims
    result = total_correlation(x, Chains.one_chain(256), rng, shifts=20)
    assert result.reason == "" and result.blocks > 1
    assert result.samples_per_dimension == pytest.approx(256 / 2304)
    assert abs(result.value) < 4 * result.floor_error
    assert abs(result.floor) < 4 * result.floor_error / np.sqrt(20)


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
    result = total_correlation(x, Chains.one_chain(2000), rng, shifts=10)
    assert result.blocks == 1
    assert result.value == pytest.approx(exact, abs=max(0.02 * exact, 4 * result.floor_error))


def test_blocked_total_correlation_is_the_sum_over_blocks_not_the_levels_own():
    """Too few samples for the whole level (120 sites × 2 from 200 samples: 3 blocks): the
    estimate is the closed-form total correlation summed over its blocks of contiguous sites,
    which misses −ln(1 − ρ²) = 0.45 nats at each of the 2 joins. Over 20 independent data sets the
    mean estimate lies within 3 standard errors of the blocks' sum, and more than 3 from the
    level's own total correlation (the standard error, ≈ 0.2 nats, well below the 0.89 between)."""
    m, c = 120, 2
    estimates = []
    for _ in range(20):
        x, covariance = ar1_sites(200, m, c, 0.6)
        result = total_correlation(x, Chains.one_chain(200), rng, shifts=2)
        estimates.append(result.value)
    assert result.blocks == 3
    within = 0.0
    for block in np.array_split(np.arange(m), result.blocks):
        columns = (block[:, None] * c + np.arange(c)).ravel()
        within += exact_total_correlation(covariance[np.ix_(columns, columns)], len(block), c)
    whole = exact_total_correlation(covariance, m, c)
    assert whole - within == pytest.approx(2 * -np.log(1 - 0.6**2), rel=1e-6)
    error = np.std(estimates, ddof=1) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates) - within) < 3 * error
    assert abs(np.mean(estimates) - whole) > 3 * error


def test_total_correlation_of_chained_independent_sites_stays_at_its_null_floor():
    """20 independent sites with τ_int 1 to 30 in one chain: the estimator, whose Wishart
    correction assumes independent samples, reads far above 0; its floor, the same estimator on
    20 null ensembles, reads the same, and the excess is within 3.5 of the floor's spreads (their
    ratio scatters as a t with 19 degrees of freedom: 0.96 over 40 data sets)."""
    x = ar1_chains(1, 4096, rng.uniform(1, 30, 20))
    result = total_correlation(x, Chains.one_chain(4096), rng, shifts=20)
    assert result.floor > 5 * result.floor_error  # what a floor of shuffled samples misses
    assert abs(result.value - result.floor) < 3.5 * result.floor_error


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
    result = total_correlation(x, Chains.one_chain(n), rng)
    assert np.isnan(result.value) and reason in result.reason


# -- kNN ------------------------------------------------------------------------------------------
def test_knn_matches_the_gaussian_closed_form_and_scikit_learns_estimator():
    x = rng.standard_normal(4000)
    y = 0.8 * x + 0.6 * rng.standard_normal(4000)
    estimate = knn_mi(x, y)
    assert estimate == pytest.approx(-0.5 * np.log(1 - 0.8**2), abs=0.05)
    reference = mutual_info_regression(x[:, None], y, n_neighbors=3, random_state=0)[0]
    assert estimate == pytest.approx(reference, abs=0.01)  # the same estimator, theirs clipped


def test_knn_is_unclipped_and_unbiased_on_independent_series():
    """On independent series the estimate scatters about 0, below it about half the time (the
    clipped estimator only ever reads ≥ 0 there), and its mean over 40 pairs is 0 within 3 SE."""
    estimates = np.array(
        [knn_mi(rng.standard_normal(1000), rng.standard_normal(1000)) for _ in range(40)]
    )
    assert (estimates < 0).mean() > 0.2
    assert abs(estimates.mean()) < 3 * estimates.std(ddof=1) / np.sqrt(len(estimates))


# -- mutual_info --------------------------------------------------------------------------------------
def smooth_fields(n: int, L: int = 8, width: float = 1.5) -> np.ndarray:
    """Gaussian fields with correlations that decay over `width` sites (an FFT filter)."""
    k = np.fft.fftfreq(L)[:, None] ** 2 + np.fft.fftfreq(L)[None, :] ** 2
    noise = rng.standard_normal((n, 2, L, L))
    return np.fft.ifft2(np.fft.fft2(noise) * np.exp(-2 * (np.pi * width) ** 2 * k)).real


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
    model = identity_model(size=8)
    parameters = {"inputs": 3000, "knn_pairs": 10, "null_ensembles": 3}
    result = MutualInfo().run(RunContext(model, parameters, seed=0, data=data))
    curve = result.mi_vs_distance.sel(level=0).values
    assert curve[0] > 10 * float(result.noise_floor)
    assert np.all(np.diff(curve[np.isfinite(curve)][:3]) < 0)
    assert float(result.excess) > 10
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
    assert "pairs lie above the floor" in section.text
    shown = section.tables[0].frame["total correlation (nats)"]
    assert shown[2].startswith("not estimated: a latent component is constant")


@pytest.mark.parametrize("tau", [3.0, 9.0])
def test_mutual_info_of_chained_independent_sites_stays_at_its_floors(tau):
    """Independent sites in one chain with τ_int = 3 or 9 (given as --data, in their order): pairs
    above the 95% floor at the nominal rate, no excess over chance, and every level's total
    correlation within 3 spreads of its floor. A floor from shuffled samples read 23% and 75% of
    the pairs above it, and total correlations of 0.06 and 0.33 nats against 0.000 ± 0.003."""
    fields = gaussian_fields(np.eye(64), 4096, rng, tau=np.full(64, tau))
    data = DataBatch(images_or_fields=fields, source="chained noise")
    parameters = {"inputs": 4096, "knn_pairs": 4, "null_ensembles": 8}
    result = MutualInfo().run(RunContext(identity_model(size=8), parameters, seed=1, data=data))
    pairs = 64 * 63 / 2
    rate = int(result.pairs_above_floor) / pairs
    assert rate == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / pairs))
    assert float(result.excess) < 3
    excess = result.total_correlation - result.total_correlation_floor
    assert (np.abs(excess) < 3 * result.total_correlation_floor_error).all()


def test_knn_check_reads_zero_on_gaussian_fields_and_dependence_a_gaussian_fit_misses():
    """Gaussian fields: the Gaussian MI is the whole MI, so kNN − Gaussian beyond the null is 0
    within its standard error. Fields whose neighbours depend through x² (uncorrelated, MI > 0):
    kNN exceeds the Gaussian estimate by more than 3 standard errors (3.8 here)."""
    parameters = {"inputs": 2000, "knn_pairs": 30, "null_ensembles": 1}
    model = identity_model(size=8)
    gaussian = DataBatch(
        images_or_fields=smooth_fields(2000).astype(np.float32), source="smooth fields"
    )
    result = MutualInfo().run(RunContext(model, parameters, seed=0, data=gaussian))
    assert abs(float(result.knn_excess)) < 3 * float(result.knn_excess_error)
    assert (result.knn_mi < 0).any() or (result.knn_mi_null < 0).any()  # unclipped
    noise = np.random.default_rng(7).standard_normal((2000, 2, 8, 8))
    left, up = np.roll(noise, 1, axis=3), np.roll(noise, 1, axis=2)
    squared = noise + 0.8 * (left**2 + up**2 - 2)  # uncorrelated with either neighbour
    data = DataBatch(images_or_fields=squared.astype(np.float32), source="squared neighbours")
    result = MutualInfo().run(RunContext(model, parameters, seed=0, data=data))
    assert float(result.knn_excess) > 3 * float(result.knn_excess_error)
    assert "beyond what both read on the null ensembles" in MutualInfo().render(result).text
