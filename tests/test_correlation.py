"""correlation: FFT two-point function against loops, bootstrap errors against known variances, fits
against exact curves, and the Metropolis-corrected flow against HMC on the action."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
import xarray as xr
from rginspect_plugins.correlation import Correlation
from rginspect_plugins.correlation.compute import Ensemble, measure

from rginspect.analysis import RunContext
from rginspect.data.specs import DataBatch
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import neuralrg_config, rgflow_config
from rginspect.physics import IsingAction, Phi4Action, hmc
from rginspect.physics.correlation import (
    FORMS,
    ISING_CRITICAL_BINDER,
    CorrelationEstimate,
    binder_cumulant,
    chord_length,
    decaying_range,
    estimate_correlation,
    exponential_form,
    fit_correlation_length,
    fit_covariance,
    fit_form,
    power_form,
    refit_resamples,
    select_decay,
    two_point_function,
    zero_momentum_function,
)
from rginspect.physics.exact import ISING_CRITICAL_COUPLING, ising_critical_binder
from rginspect.physics.montecarlo import (
    Layout,
    hartlap_factor,
    integrated_autocorrelation_time,
    resample,
)
from rginspect.physics.proposals import flow_samples, mixture_log_prob, symmetry_group
from rginspect.train import train_field

rng = np.random.default_rng(0)
DEFAULTS = {name: parameter.default for name, parameter in Correlation.parameters.items()}


def direct_two_point(fields: np.ndarray, periodic: bool) -> np.ndarray:
    n, channels, L, _ = fields.shape
    out = np.zeros((n, L // 2 + 1))
    for r in range(L // 2 + 1):
        total, pairs = np.zeros(n), 0
        for i in range(L):
            for j in range(L):
                for di, dj in ((r, 0), (0, r)):
                    a, b = i + di, j + dj
                    if not periodic and (a >= L or b >= L):
                        continue
                    total += (fields[:, :, i, j] * fields[:, :, a % L, b % L]).sum(1)
                    pairs += 1
        out[:, r] = total / pairs
    return out


@pytest.mark.parametrize("periodic", [True, False])
def test_fft_two_point_function_equals_double_loop(periodic):
    fields = rng.normal(size=(3, 2, 6, 6)) + 0.5
    got = two_point_function(torch.from_numpy(fields), periodic=periodic).numpy()
    np.testing.assert_allclose(got, direct_two_point(fields, periodic), atol=1e-12)


def test_connected_part_removes_the_mean_field():
    """Per-channel offsets plus white noise: full C(r ≥ 1) = Σ_c m_c², connected C(r ≥ 1) = 0;
    with open boundaries a fixed per-pixel pattern is removed too."""
    m = np.array([0.7, -0.4])
    fields = m[None, :, None, None] + rng.normal(size=(2000, 2, 8, 8))
    full = estimate_correlation(torch.from_numpy(fields), n_resamples=100, rng=rng)
    connected = estimate_correlation(
        torch.from_numpy(fields), connected=True, n_resamples=100, rng=rng
    )
    assert np.all(np.abs(full.value[1:] - (m**2).sum()) < 4 * full.error[1:])
    assert np.all(np.abs(connected.value[1:]) < 4 * connected.error[1:])
    assert connected.value[0] == pytest.approx(2.0, abs=0.03)  # Σ_c Var φ_c = 2
    pattern = rng.uniform(0, 1, size=(1, 3, 8, 8))
    images = pattern + 0.1 * rng.normal(size=(2000, 3, 8, 8))
    open_connected = estimate_correlation(
        torch.from_numpy(images), connected=True, periodic=False, n_resamples=100, rng=rng
    )
    assert np.all(np.abs(open_connected.value[1:]) < 4 * open_connected.error[1:])


def test_a_chain_that_holds_states_has_the_errors_of_its_distinct_states():
    """Each state held k times (as a Metropolis chain does): τ_int ≈ k, and resampling the holds
    as units gives the error of the distinct states, √k times what counting every step as an
    independent sample gives."""
    n_states, k = 2000, 8
    states = np.repeat(rng.normal(size=(n_states, 1, 4, 4)), k, axis=0)
    series = two_point_function(torch.from_numpy(states))[:, 1].numpy()
    assert integrated_autocorrelation_time(series) == pytest.approx(k, rel=0.15)
    holds = Layout.chain(np.repeat(np.arange(n_states), k))
    chain = estimate_correlation(torch.from_numpy(states), layout=holds, rng=rng)
    naive = estimate_correlation(torch.from_numpy(states), rng=rng)
    independent = estimate_correlation(torch.from_numpy(states[::k]), rng=rng)
    np.testing.assert_allclose(chain.error, independent.error, rtol=0.05)
    np.testing.assert_allclose(naive.error * np.sqrt(k), independent.error, rtol=0.05)
    assert chain.units == n_states and chain.effective_samples == pytest.approx(n_states, rel=0.2)


def ar1(n: int, rho: float, generator: np.random.Generator) -> np.ndarray:
    """A stationary AR(1) series of unit variance."""
    from scipy.signal import lfilter

    noise = generator.normal(size=n) * np.sqrt(1 - rho**2)
    noise[0] = generator.normal()
    return lfilter([1.0], [1.0, -rho], noise)


@pytest.mark.parametrize("rho", [0.5, 0.8, 0.95])
def test_error_of_an_ar1_chain_matches_the_exact_one_within_five_percent(rho):
    """A field equal to a_t at every site, a_t an AR(1) series of unit variance with coefficient ρ:
    each C(r) is a_t², of variance 2 and autocorrelation ρ^{2t}, so the mean over n steps has
    the exact variance (2/n)[1 + 2 Σ_t (1 − t/n) ρ^{2t}]. The quoted error (blocks of τ_int
    raised to arviz's MCSE), rms over 40 chains, is within 5% of it (the 2τ blocks it replaces
    gave 0.85–0.90), and so is the scatter of the estimates. A chain of n/τ_int below
    MIN_EFFECTIVE_SAMPLES is not reliable."""
    n, generator = 20_000, np.random.default_rng(int(100 * rho))
    lags = np.arange(1, n)
    exact = np.sqrt(2 / n * (1 + 2 * np.sum((1 - lags / n) * rho ** (2 * lags))))
    quoted, values = [], []
    for _ in range(40):
        series = ar1(n, rho, generator)
        fields = torch.from_numpy(np.broadcast_to(series[:, None, None, None], (n, 1, 2, 2)))
        tau = integrated_autocorrelation_time(series**2)
        layout = Layout.blocks(n, math.ceil(tau))
        estimate = estimate_correlation(fields, layout=layout, n_resamples=20, rng=generator)
        quoted.append(estimate.error[1])
        values.append(estimate.value[1])
    assert np.sqrt(np.mean(np.square(quoted))) == pytest.approx(exact, rel=0.05)
    assert np.std(values, ddof=1) == pytest.approx(exact, rel=0.3)  # 40 chains: ±11%
    tau = (1 + rho**2) / (1 - rho**2)
    assert estimate.autocorrelation_time == pytest.approx(tau, rel=0.25)
    assert estimate.reliable
    short = fields[: int(20 * tau)]
    shorter = estimate_correlation(short, layout=Layout.blocks(len(short), math.ceil(tau)), rng=rng)
    assert not shorter.reliable and shorter.effective_samples < 100


def synthetic(truth: np.ndarray, relative: float, n: int = 4000) -> CorrelationEstimate:
    """A measured curve: the mean of n independent samples of truth plus Gaussian noise (its
    standard error `relative` |truth|), with its errors and 200 bootstrap resamples."""
    error = relative * np.abs(truth) + 1e-4
    samples = truth + error * np.sqrt(n) * rng.normal(size=(n, len(truth)))
    resampled = resample(samples, Layout.independent(n), 200, rng)
    return CorrelationEstimate(
        np.arange(len(truth)),
        resampled.estimates[0],
        np.sqrt(np.diag(resampled.covariance)),
        resampled.estimates[1:],
        resampled.covariance,
        resampled.covariances,
        units=n,
        effective_samples=n,
        samples=n,
    )


@pytest.mark.parametrize("period", [16, None])
def test_fits_recover_xi_and_label_exponential_decay(period):
    r = np.arange(9)
    estimate = synthetic(exponential_form(r, 2.0, 2.5, period), 0.02)
    selection = select_decay(estimate, period=period)
    exponential, power = selection.fits
    assert abs(exponential.parameters[1] - 2.5) < 3 * selection.xi_error
    assert selection.best == "exponential"
    assert selection.confidence > 0.9
    assert selection.akaike_weights[0] > 0.9
    assert exponential.chi2 < power.chi2


@pytest.mark.parametrize("period", [16, None])
def test_fits_recover_eta_and_label_power_law_decay(period):
    r = np.arange(9)
    truth = np.r_[3.0, power_form(r[1:], 1.5, 0.25, period)]  # r = 0 is never fitted
    estimate = synthetic(truth, 0.005)
    selection = select_decay(estimate, period=period)
    assert abs(selection.fits[1].parameters[1] - 0.25) < 3 * selection.eta_error
    assert selection.best == "power law"
    assert selection.confidence > 0.9
    assert 0.9 * 1.5 < selection.fits[1].parameters[0] < 1.1 * 1.5


@pytest.mark.parametrize("eta, phase", [(0.15, "power law"), (0.6, "exponential")])
def test_bkt_bound_turns_a_steep_power_law_into_disorder(eta, phase):
    r = np.arange(9)
    truth = np.r_[3.0, power_form(r[1:], 1.5, eta, 16)]
    selection = select_decay(synthetic(truth, 0.005), period=16, eta_max=0.25)
    assert selection.best == "power law"  # the AIC choice is unchanged
    assert selection.phase == phase
    assert selection.confidence > 0.9
    assert select_decay(synthetic(truth, 0.005), period=16).phase == "power law"


def test_chord_length_is_symmetric_on_the_torus():
    assert chord_length(np.array([3.0]), 16) == pytest.approx(chord_length(np.array([13.0]), 16))
    assert chord_length(np.array([8.0]), 16) == pytest.approx(16 / np.pi)


def test_metropolis_corrected_flow_matches_hmc():
    """L = 4 φ⁴ at κ = 0.2, λ = 1: a flow trained for a few hundred steps, corrected by
    independence Metropolis, against an independent, longer HMC run on the action (errors from
    resampling whole chains): every C(r) within 4 combined σ, and so is the analysis' own HMC
    reference. The flow's own samples miss by far more, so the test has power, and the fidelity
    numbers tell the two apart. These small flows keep KL ≈ 0.2 nats/site at λ = 1, and the
    chain's rare long holds made 2τ-block errors 2–4× too small (the test ran at λ = 0.3 to
    pass); the chain's errors now rest on arviz's Monte Carlo error."""
    L, action = 4, Phi4Action(4, kappa=0.2, lamb=1.0)
    torch.manual_seed(0)
    model = RGFlowModel.from_config(
        neuralrg_config(channels=2, L=L, nlayers=2, nmlp=1, nhidden=16), action=action
    )
    train_field(model, steps=300, batch_size=128, lr=3e-3, progress=False)
    result = Correlation().run(RunContext(model, DEFAULTS, seed=1, show_progress=False))
    assert list(result.ensemble.values) == ["action", "flow", "flow + Metropolis"]
    n_chains = 64
    reference = hmc(
        action, 8192, n_chains=n_chains, step_size=0.1, n_leapfrog=10, n_burnin=100, thin=2,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    chains = reference.samples.reshape(-1, n_chains, 2, L, L).transpose(0, 1).reshape(-1, 2, L, L)
    exact = estimate_correlation(chains, layout=Layout.chains(len(chains), n_chains), rng=rng)
    for name in ("action", "flow + Metropolis"):
        one = result.sel(ensemble=name)
        sigma = np.hypot(one.correlation_error.values, exact.error)
        assert np.all(np.abs(one.correlation.values - exact.value) < 4 * sigma), name
    corrected, plain = result.sel(ensemble="flow + Metropolis"), result.sel(ensemble="flow")
    assert float(corrected.acceptance_rate) > 0.1
    assert 0 < float(plain.ess_fraction) < 1
    assert result.phase.item() == "undetermined"  # r = 1, 2 only: too few distances to fit
    sigma = np.hypot(plain.correlation_error.values, exact.error)
    assert np.max(np.abs(plain.correlation.values - exact.value) / sigma) > 8
    assert np.isnan(float(plain.acceptance_rate))
    # χ² per distance between the curves: about 1 where the ensembles agree, large where not
    assert float(corrected.curve_chi2_per_dof) < 6
    assert float(plain.curve_chi2_per_dof) > 20
    assert np.isnan(float(result.sel(ensemble="action").curve_chi2_per_dof))


def test_fidelity_flags_a_flow_that_has_not_learned_its_action():
    """An untrained flow (a standard normal field) against φ⁴ at L = 8, κ = 0.2: its C(r ≥ 1) is
    noise about 0 where the action's is positive. The fidelity numbers flag it; the label the
    report states is the action's; ESS/N and the Metropolis acceptance are tiny; and the
    report says so in one table and one figure with every ensemble."""
    action = Phi4Action(8, kappa=0.2, lamb=1.0)
    torch.manual_seed(0)
    model = RGFlowModel.from_config(
        neuralrg_config(channels=2, L=8, nlayers=2, nmlp=1, nhidden=8), action=action
    )
    parameters = {**DEFAULTS, "samples": 2048, "inputs": 2048}
    result = Correlation().run(RunContext(model, parameters, seed=0, show_progress=False))
    flow, reference = result.sel(ensemble="flow"), result.sel(ensemble="action")
    assert reference.label.item() == "disordered" and bool(reference.reliable)
    assert result.phase.item() == reference.label.item()
    assert float(flow.curve_chi2_per_dof) > 100
    assert float(flow.ess_fraction) < 0.05
    assert float(result.sel(ensemble="flow + Metropolis").acceptance_rate) < 0.1
    # the action's own C(1) at κ = 0.2 is clearly positive; the untrained flow's is not
    assert float(reference.correlation.sel(distance=1)) > 10 * float(
        reference.correlation_error.sel(distance=1)
    )
    section = Correlation().render(result)
    assert section.text.startswith("Phase, from the action's own ensemble (HMC): disordered")
    assert "Fidelity against the action's own ensemble" in section.text
    assert "Metropolis-corrected numbers are not reliable" in section.text
    (table,) = section.tables
    assert list(table.frame["ensemble"]) == ["action", "flow", "flow + Metropolis"]
    assert len(section.figures) == 1
    labels = section.figures[0].figure.axes[0].get_legend_handles_labels()[1]
    assert {"action", "flow", "flow + Metropolis"} <= set(labels)


def separable_ar1_images(n: int, L: int, xi: float) -> np.ndarray:
    """Gaussian images with covariance exp(−|Δi|/ξ − |Δj|/ξ): an AR(1) process along each axis."""
    a = np.exp(-1 / xi)
    g = rng.normal(size=(n, 3, L, L))
    for axis in (2, 3):
        g = np.moveaxis(g, axis, -1)
        for k in range(1, L):
            g[..., k] = a * g[..., k - 1] + np.sqrt(1 - a**2) * g[..., k]
        g = np.moveaxis(g, -1, axis)
    return g


def test_image_correlation_recovers_the_correlation_length(tmp_path):
    """Images 0.5 + 0.08 g with Gaussian g of known exponential covariance: the connected pixel
    correlation along an axis is 3 · 0.08² · e^{−r/ξ}, ξ = 2."""
    images = np.clip(0.5 + 0.08 * separable_ar1_images(3000, 16, 2.0), 0, 1)
    model = RGFlowModel.from_config(rgflow_config(channels=3, L=16, kernel=4, nhidden=8))
    data = DataBatch(images_or_fields=images.astype(np.float32), source="AR(1) images")
    result = Correlation().run(RunContext(model, {**DEFAULTS, "inputs": 3000}, seed=0, data=data))
    assert list(result.ensemble.values) == ["data"]  # images: the data alone
    one = result.sel(ensemble="data")
    assert abs(float(one.xi) - 2.0) < 4 * float(one.xi_error)
    assert float(one.amplitude.sel(form="exponential")) == pytest.approx(3 * 0.08**2, rel=0.1)
    assert one.label.item() == "exponential decay"
    assert bool(one.fit_accepted.sel(form="exponential"))
    assert np.isnan(float(one.acceptance_rate))
    path = tmp_path / "correlation.nc"
    result.to_netcdf(path, engine="h5netcdf")
    section = Correlation().render(xr.load_dataset(path, engine="h5netcdf"))
    assert section.text.startswith("Exponential decay describes C(r)")
    assert len(section.tables) == 1
    assert section.figures[0].figure.axes[0].get_yscale() == "log"


def test_image_correlation_that_changes_sign_is_not_fitted_and_shown_on_linear_axes():
    """Images 0.5 + 0.1 s cos(π(i + j)/2) with a random sign s per image and pixel noise: the
    connected C(r) is 3 · 0.1² · ½ cos(πr/2), zero at r = 1 and negative at r = 2."""
    n, L = 2000, 16
    i, j = np.meshgrid(np.arange(L), np.arange(L), indexing="ij")
    sign = rng.choice([-1.0, 1.0], size=(n, 1, 1, 1))
    images = 0.5 + 0.1 * sign * np.cos(np.pi * (i + j) / 2) + 0.05 * rng.normal(size=(n, 3, L, L))
    model = RGFlowModel.from_config(rgflow_config(channels=3, L=L, kernel=4, nhidden=8))
    data = DataBatch(images_or_fields=images.astype(np.float32), source="stripes")
    result = Correlation().run(RunContext(model, {**DEFAULTS, "inputs": n}, seed=0, data=data))
    one = result.sel(ensemble="data")
    c = one.correlation.values
    assert c[2] == pytest.approx(-0.015, abs=6 * float(one.correlation_error[2]))
    assert one.label.item() == "no fit form describes C(r)"
    assert np.isnan(float(one.xi)) and np.isnan(one.fit.values).all()
    section = Correlation().render(result)
    assert section.text.startswith("No fit form describes C(r)")
    assert "phase" not in section.text
    left, right = section.figures[0].figure.axes
    assert left.get_yscale() == "linear" and right.get_yscale() == "symlog"
    assert left.get_ylim()[0] < c[1:].min() and left.get_ylim()[1] > c[1:].max()  # r ≥ 1 shown


def test_decaying_range_stops_where_a_decay_form_cannot_hold():
    value = np.array([1.0, 0.5, 0.25, 0.1, 0.12, 0.05])
    error = np.full(6, 0.01)
    np.testing.assert_array_equal(
        decaying_range(value, error, 1), [False, True, True, True, False, False]
    )  # r = 4 rises
    value[2] = 0.015  # within 2σ of zero: stop before r = 2
    np.testing.assert_array_equal(decaying_range(value, error, 1), [False, True] + [False] * 4)


def test_chi2_with_an_estimated_covariance_has_uniform_p_values_with_the_hartlap_factor():
    """300 synthetic experiments, each the mean over 64 independent units (as the action's 64 HMC
    chains) of a true cosh form plus noise 95% correlated between neighbouring distances, its
    covariance estimated from the same units: with the Hartlap factor χ² averages its degrees of
    freedom and the fits' p-values are uniform (Kolmogorov–Smirnov); without it χ²/dof averages
    63/54 = 1.17; χ² from the diagonal errors alone could reject nothing."""
    from scipy.stats import chi2 as chi2_distribution
    from scipy.stats import kstest

    r, units = np.arange(1, 9), 64
    truth = exponential_form(r, 2.0, 2.5, 16)
    sigma = 0.02 * truth * np.sqrt(units)
    correlation = 0.95 ** np.abs(r[:, None] - r[None, :])
    root = np.linalg.cholesky(correlation * np.outer(sigma, sigma))
    dof, hartlap = len(r) - 2, hartlap_factor(units, len(r))
    p_corrected, p_plain, diagonal, xi = [], [], [], []
    for _ in range(300):
        samples = truth + rng.normal(size=(units, len(r))) @ root.T
        mean, covariance = samples.mean(0), np.cov(samples, rowvar=False) / units
        fit = fit_form("exponential", r, mean, fit_covariance(covariance, mean), 16)
        p_plain.append(chi2_distribution.sf(fit.chi2, dof))
        p_corrected.append(chi2_distribution.sf(hartlap * fit.chi2, dof))
        xi.append(fit.parameters[1])
        diagonal.append(fit_form("exponential", r, mean, np.sqrt(np.diag(covariance)), 16).chi2)
    chi2_plain = chi2_distribution.isf(p_plain, dof)
    assert np.mean(chi2_plain) / dof > 1.08  # standard error of the mean: 0.03
    assert hartlap * np.mean(chi2_plain) / dof == pytest.approx(1, abs=0.09)
    assert kstest(p_corrected, "uniform").pvalue > 0.01
    assert np.mean(diagonal) < 0.5 * dof
    assert np.mean(xi) == pytest.approx(2.5, rel=0.01)


def test_too_few_resamples_or_units_for_the_covariance_are_refused():
    """Fits at 8 distances need 40 resamples (5 per distance) and more than 10 units."""
    r = np.arange(9)
    estimate = synthetic(exponential_form(r, 2.0, 2.5, 16), 0.02)
    few = replace(
        estimate,
        resamples=estimate.resamples[:39],
        resample_covariances=estimate.resample_covariances[:39],
    )
    with pytest.raises(ValueError, match="use at least 40 resamples"):
        select_decay(few, period=16)
    with pytest.raises(ValueError, match="independent units"):
        select_decay(replace(estimate, units=10), period=16)
    assert select_decay(replace(estimate, units=11), period=16).hartlap == pytest.approx(1 / 10)


def test_a_fit_of_the_wrong_form_is_rejected_by_its_chi2():
    """A pure power law with 0.5% errors: the power law's χ² is acceptable (p ≥ 10⁻³), the
    exponential's is not; with 30% errors the data cannot reject either."""
    r = np.arange(9)
    truth = np.r_[3.0, power_form(r[1:], 1.5, 0.8)]
    precise = select_decay(synthetic(truth, 0.005))
    assert precise.accepted.tolist() == [False, True]
    assert precise.p_values[0] < 1e-6
    vague = select_decay(synthetic(truth, 0.3))
    assert vague.accepted.all()


def exact_free_field_samples(n: int, L: int, kappa: float) -> torch.Tensor:
    """Independent samples of the two-component φ⁴ action at λ = 0, a Gaussian free field whose
    per-component covariance ½ (1 − κA)⁻¹ is diagonal in momentum space: white noise filtered by
    the square root of its spectrum."""
    k = 2 * np.pi * np.arange(L) / L
    spectrum = 0.5 / (1 - 2 * kappa * (np.cos(k)[:, None] + np.cos(k)[None, :]))
    noise = rng.normal(size=(n, 2, L, L))
    return torch.from_numpy(np.fft.ifft2(np.sqrt(spectrum) * np.fft.fft2(noise)).real)


def test_zero_momentum_correlator_gives_the_free_field_mass_gap():
    """Exact free-field samples at L = 16, κ = 0.24: the row-summed correlator is one lattice
    propagator in t, A cosh(m(t − L/2)) with cosh m = 1/(2κ) − 1, and its cosh fit recovers
    ξ = 1/m within its bootstrap error; the cosh fit of C(r) along an axis gives an effective ξ
    well below it (Ornstein–Zernike), which is why the report quotes the former."""
    L, kappa = 16, 0.24
    xi_exact = 1 / np.arccosh(1 / (2 * kappa) - 1)
    fields = exact_free_field_samples(4000, L, kappa)
    zero_momentum = estimate_correlation(fields, rng=rng, correlator=zero_momentum_function)
    xi, xi_error = fit_correlation_length(zero_momentum, period=L)
    assert abs(xi - xi_exact) < max(3 * xi_error, 0.02 * xi_exact)
    assert xi_error < 0.05 * xi_exact
    effective, _ = fit_correlation_length(estimate_correlation(fields, rng=rng), period=L)
    assert effective < 0.9 * xi_exact


@pytest.mark.parametrize("form", FORMS)
def test_vectorised_refits_equal_scipy_fits_of_each_resample(form):
    """The bootstrap refits (amplitude profiled out, shape on a refined grid) give the χ² and
    shape that scipy's bounded least squares gives for each resample, with the covariance."""
    L, r = 16, np.arange(1, 9)
    truth = (
        exponential_form(r, 2.0, 3.0, L) if form == "exponential" else power_form(r, 2.0, 0.3, L)
    )
    mixing = np.tril(np.full((8, 8), 0.9)) + np.eye(8) * 0.3  # correlated noise between distances
    noise = rng.normal(size=(40, 8)) @ mixing.T * 0.01 * truth
    resamples = truth + noise
    covariance = fit_covariance(np.cov(resamples, rowvar=False), truth)
    own = covariance * rng.uniform(0.5, 2, size=(40, 1, 1))  # one covariance per resample
    for weights in (covariance, own):
        chi2, shape = refit_resamples(form, r, resamples, weights, L)
        for b in range(0, 40, 7):
            fit = fit_form(form, r, resamples[b], weights if weights.ndim == 2 else weights[b], L)
            # η's bootstrap spread here is ~3e-4: the refits must be far finer than that
            assert shape[b] == pytest.approx(fit.parameters[1], rel=1e-5, abs=1e-6)
            assert chi2[b] == pytest.approx(fit.chi2, rel=1e-5, abs=1e-6)


class ShiftedGaussianFlow:
    """A stand-in flow on a 1×1 lattice of two components: q = N(m, σ²) with m off the origin,
    so that its global phase is pinned as a reverse-KL flow's is."""

    domain, data_shape, action = "field", (2, 1, 1), None
    mean, sigma = torch.tensor([1.5, 0.4]).double(), 0.5

    def log_prob(self, x):
        z = (x[:, :, 0, 0] - self.mean) / self.sigma
        return -0.5 * (z * z).sum(1) - 2 * math.log(self.sigma) - math.log(2 * math.pi)

    def sample(self, n, *, generator, return_log_prob):
        noise = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        x = (self.mean + self.sigma * noise)[:, :, None, None]
        return x, self.log_prob(x)


@pytest.mark.parametrize(("rotations", "conjugate"), [(2, False), (8, False), (5, True)])
def test_symmetrised_proposal_is_a_normalised_density_its_sampler_follows(rotations, conjugate):
    """q_G = (1/|G|) Σ_g q(g x) over Z_K rotations (and φ → φ*) on one site: it integrates to 1
    (2-D quadrature), is invariant under G, and flow_samples draws from it: the samples' mean and
    second moment equal the mixture's, (1/|G|) Σ_g g⁻¹m and m·m + 2σ²."""
    flow, group = ShiftedGaussianFlow(), symmetry_group(2, rotations, conjugate)
    assert len(group) == rotations * (2 if conjugate else 1)
    np.testing.assert_allclose(
        group @ group.transpose(1, 2), np.broadcast_to(np.eye(2), group.shape), atol=1e-12
    )
    axis = torch.linspace(-4, 4, 801, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), -1).reshape(-1, 2, 1, 1)
    density = mixture_log_prob(flow, grid, group).exp()
    assert float(density.sum() * (axis[1] - axis[0]) ** 2) == pytest.approx(1, abs=1e-4)
    for g in group:  # invariant under every element
        moved = torch.einsum("ij,bjxy->bixy", g, grid[::997])
        np.testing.assert_allclose(
            mixture_log_prob(flow, moved, group),
            mixture_log_prob(flow, grid[::997], group),
            atol=1e-10,
        )
    x, log_q, _ = flow_samples(
        flow, 40_000, batch_size=8192, generator=torch.Generator().manual_seed(0), group=group
    )
    np.testing.assert_allclose(log_q, mixture_log_prob(flow, x, group), atol=1e-10)
    mixture_mean = torch.einsum("gji,j->i", group, flow.mean) / len(group)  # g⁻¹ = gᵀ
    np.testing.assert_allclose(x[:, :, 0, 0].mean(0), mixture_mean, atol=4 * 1.6 / 200)
    second = float((x * x).sum((1, 2, 3)).mean())
    assert second == pytest.approx(float(flow.mean @ flow.mean) + 2 * flow.sigma**2, rel=0.01)


def test_symmetry_group_refuses_what_a_field_does_not_have():
    with pytest.raises(ValueError, match="only the symmetry φ → −φ"):
        symmetry_group(1, 4, False)
    with pytest.raises(ValueError, match="positive integer"):
        symmetry_group(2, 0, False)


def ising_spins(L: int, beta: float, *, chains: int = 64, sweeps: int = 600) -> torch.Tensor:
    """±1 spins of the 2D Ising model by checkerboard Metropolis, chain after chain: ordered
    starts (half up, half down) below T_c, random ones above; the first third is burn-in."""
    generator = np.random.default_rng(1)
    ordered = beta > 0.4407
    s = np.ones((chains, L, L)) if ordered else generator.choice([-1.0, 1.0], (chains, L, L))
    s[: chains // 2] *= -1
    parity = np.add.outer(np.arange(L), np.arange(L)) % 2
    kept = []
    for sweep in range(sweeps):
        for colour in (0, 1):
            field = sum(np.roll(s, k, axis) for axis in (1, 2) for k in (-1, 1))
            accept = generator.random(s.shape) < np.exp(-2 * beta * s * field)
            s = np.where((parity == colour) & accept, -s, s)
        if sweep >= sweeps // 3 and sweep % 4 == 0:
            kept.append(s.copy())
    return torch.from_numpy(np.stack(kept, 1).reshape(-1, 1, L, L))


def test_binder_cumulant_is_two_thirds_for_order_and_zero_for_a_gaussian():
    ordered = torch.full((1000, 1, 4, 4), 0.8) * torch.from_numpy(
        rng.choice([-1.0, 1.0], 1000)
    ).view(-1, 1, 1, 1)
    u, resamples = binder_cumulant(ordered, n_resamples=50, layout=None, rng=rng)
    assert u == pytest.approx(2 / 3, abs=1e-12)
    gaussian = torch.from_numpy(rng.normal(size=(20000, 1, 4, 4)))
    u, resamples = binder_cumulant(gaussian, n_resamples=200, layout=None, rng=rng)
    assert abs(u) < 3 * resamples.std() and resamples.std() < 0.02
    with pytest.raises(ValueError, match="one-component"):
        binder_cumulant(torch.zeros(10, 2, 4, 4), n_resamples=5, layout=None, rng=rng)


@pytest.mark.parametrize("beta", [0.3, 0.6])
def test_ising_spins_below_tc_are_ordered_with_onsagers_plateau(beta):
    """2D Ising spins on 16 × 16: below T_c (β = 0.6) C(r) plateaus at Onsager's m₀², which
    neither decay form has, and the label is "ordered" from m's Binder cumulant (≈ 2/3); above
    T_c (β = 0.3) it is disordered, U ≈ 0. Before, order was called "critical (power law)"."""
    L = 16
    model = RGFlowModel.from_config(
        neuralrg_config(channels=1, L=L, nlayers=1, nmlp=1, nhidden=4),
        action=IsingAction(L, 1 / beta),
    )
    spins = ising_spins(L, beta)
    chains = Layout.chains(len(spins), 64)
    dataset, _ = measure(
        Ensemble("data", spins, "Metropolis spins", chains), model, DEFAULTS, seed=0
    )
    u = float(dataset.binder_cumulant)
    if beta > 0.4407:
        m0_squared = (1 - math.sinh(2 * beta) ** -4) ** 0.25  # Onsager–Yang
        plateau = dataset.correlation.sel(distance=L // 2)
        assert float(plateau) == pytest.approx(m0_squared, abs=3 * float(
            dataset.correlation_error.sel(distance=L // 2)) + 2e-3)  # fmt: skip
        assert dataset.label.item() == "ordered" and float(dataset.label_confidence) > 0.97
        assert u == pytest.approx(2 / 3, abs=5e-3)
    else:
        assert dataset.label.item() == "disordered"
        assert u < 0.1 < ISING_CRITICAL_BINDER


def test_real_phi4_broken_phase_is_ordered_in_the_report():
    """Real (one-component) φ⁴ at λ = 1, L = 8, through the whole analysis on the action's own
    HMC ensemble: κ = 0.4 is on the broken side (⟨φ⟩ ≠ 0 in the infinite volume, U near 2/3),
    κ = 0.15 on the symmetric one."""
    phases = {}
    for kappa in (0.15, 0.4):
        torch.manual_seed(0)
        model = RGFlowModel.from_config(
            neuralrg_config(channels=1, L=8, nlayers=1, nmlp=1, nhidden=4),
            action=Phi4Action(8, kappa, 1.0, n_channels=1),
        )
        parameters = {**DEFAULTS, "samples": 256, "inputs": 2048}
        result = Correlation().run(RunContext(model, parameters, seed=0, show_progress=False))
        phases[kappa] = result.phase.item()
        if kappa == 0.4:
            assert float(result.sel(ensemble="action").binder_cumulant) > 0.64
            text = Correlation().render(result).text
            assert text.startswith("Phase, from the action's own ensemble (HMC): ordered.")
            assert "Binder U" in Correlation().render(result).tables[0].frame
    assert phases == {0.15: "disordered", 0.4: "ordered"}


def exact_ising_samples(L: int, K: float, n: int, generator: np.random.Generator) -> torch.Tensor:
    """n independent ±1 configurations of the L×L periodic Ising model at coupling K, drawn from
    the exact Boltzmann weights of all 2^(L²) configurations (L ≤ 4)."""
    spins = 1 - 2 * ((np.arange(2 ** (L * L))[:, None] >> np.arange(L * L)) & 1)
    spins = spins.reshape(-1, L, L).astype(np.float64)
    energy = sum((spins * np.roll(spins, 1, axis)).sum((1, 2)) for axis in (1, 2))
    weight = np.exp(K * (energy - energy.max()))
    drawn = generator.choice(len(spins), size=n, p=weight / weight.sum())
    return torch.from_numpy(spins[drawn][:, None])


def ising_model(L: int) -> RGFlowModel:
    return RGFlowModel.from_config(
        neuralrg_config(channels=1, L=L, nlayers=1, nmlp=1, nhidden=4),
        action=IsingAction(L, 1 / ISING_CRITICAL_COUPLING),
    )


def test_ising_at_the_critical_point_is_never_called_ordered_at_l4():
    """Exact Ising configurations at K_c on 4 × 4 (drawn from the enumerated Boltzmann weights):
    U = 0.6172 there, above the infinite-lattice U* = 0.6107, so the old rule (U above U* beyond
    its errors) read K_c as ordered nearly always. Against the finite-size U_4(K_c) it is not,
    for any of 10 seeds, while U itself lands on the exact value."""
    labels, pulls, above_u_star = [], [], []
    for seed in range(10):
        spins = exact_ising_samples(4, ISING_CRITICAL_COUPLING, 4096, np.random.default_rng(seed))
        dataset, _ = measure(
            Ensemble("data", spins, "exact", None), ising_model(4), DEFAULTS, seed=seed
        )
        labels.append(dataset.label.item())
        pulls.append(
            (float(dataset.binder_cumulant) - 0.6172) / float(dataset.binder_cumulant_error)
        )
        _, resampled = binder_cumulant(spins, n_resamples=200, layout=None, rng=rng)
        above_u_star.append(np.mean(resampled > ISING_CRITICAL_BINDER))
    assert "ordered" not in labels
    assert float(dataset.critical_binder_cumulant) == pytest.approx(0.6172, abs=1e-4)
    assert np.abs(pulls).max() < 3.5 and abs(np.mean(pulls)) < 3 / np.sqrt(10)
    assert np.mean(above_u_star) > 0.8  # what U* alone would have called ordered


def test_ising_at_the_critical_point_is_never_called_ordered_at_l8():
    """2D Ising at K_c on 8 × 8 from 64 checkerboard-Metropolis chains (400 sweeps after burn-in):
    U lands on the exact U_8(K_c) = 0.6130 (transfer matrix) within its errors, and the label is
    not "ordered"; at β = 0.6 the same lattice is ordered."""
    model = ising_model(8)
    spins = ising_spins(8, ISING_CRITICAL_COUPLING)
    chains = Layout.chains(len(spins), 64)
    dataset, _ = measure(Ensemble("data", spins, "Metropolis", chains), model, DEFAULTS, seed=0)
    assert dataset.label.item() != "ordered"
    exact = ising_critical_binder(8)
    assert exact == pytest.approx(0.6130, abs=1e-4)
    assert abs(float(dataset.binder_cumulant) - exact) < 3 * float(dataset.binder_cumulant_error)
    ordered = ising_spins(8, 0.6)
    dataset, _ = measure(Ensemble("data", ordered, "Metropolis", chains), model, DEFAULTS, seed=0)
    assert dataset.label.item() == "ordered"


def power_law_field_samples(n: int, L: int, eta: float) -> torch.Tensor:
    """Independent Gaussian two-component fields on an L × L torus whose correlation is
    d^{−η} at chord distance d = |(L/π) sin(π x/L)| (1.5 at d = 0): white noise filtered by the
    square root of that correlation's (positive) spectrum."""
    chord = L / np.pi * np.sin(np.pi * np.arange(L) / L)
    d = np.hypot(chord[:, None], chord[None, :])
    correlation = np.where(d > 0, np.maximum(d, 1e-12) ** -eta, 1.5)
    spectrum = np.clip(np.fft.fft2(correlation).real, 0, None)
    noise = rng.normal(size=(n, 2, L, L))
    return torch.from_numpy(np.fft.ifft2(np.sqrt(spectrum) * np.fft.fft2(noise)).real)


def test_a_one_component_power_law_is_critical_never_quasi_long_range_order():
    """Gaussian fields whose C(r) falls as d^{−0.15} (L = 16): two components read quasi-long-
    range order; one component, the same C(r), reads critical (power law): QLRO is the O(2)
    field's, not a one-component field's (the η ≤ 1/4 rule once sent both to QLRO)."""
    fields = power_law_field_samples(4096, 16, 0.15)
    labels = {}
    for channels in (1, 2):
        action = Phi4Action(16, 0.2, 1.0, n_channels=channels)
        model = RGFlowModel.from_config(
            neuralrg_config(channels=channels, L=16, nlayers=1, nmlp=1, nhidden=4), action=action
        )
        data = Ensemble("data", fields[:, :channels], "exact", None)
        dataset, _ = measure(data, model, DEFAULTS, seed=0)
        labels[channels] = dataset.label.item()
        assert float(dataset.eta) < 0.25
    assert labels == {1: "critical (power law)", 2: "quasi-long-range order"}


class PlantedPhaseFlow:
    """A stand-in field flow on L × L: q = N(m, σ²) at every site, independently, with the same
    mean m = a (cos θ₀, sin θ₀) everywhere, so that a > 0 pins the global phase at θ₀ as a
    reverse-KL flow does, and a = 0 covers the circle."""

    domain, data_shape = "field", (2, 4, 4)

    def __init__(self, amplitude: float, theta: float = 0.7, sigma: float = 0.6):
        self.action = Phi4Action(4, 0.2, 1.0)
        self.prior = type("Prior", (), {"scale": torch.ones(1)})()
        self.mean = amplitude * torch.tensor([math.cos(theta), math.sin(theta)]).double()
        self.sigma = sigma

    def log_prob(self, x):
        z = (x.double() - self.mean[None, :, None, None]) / self.sigma
        sites = x[0].numel()
        return -0.5 * (z * z).sum((1, 2, 3)) - sites * math.log(self.sigma * math.sqrt(2 * math.pi))

    def sample(self, n, *, generator, return_log_prob):
        noise = torch.randn(n, *self.data_shape, generator=generator, dtype=torch.float64)
        x = self.mean[None, :, None, None] + self.sigma * noise
        return x, self.log_prob(x)


@pytest.mark.parametrize("amplitude, covers", [(1.2, False), (0.0, True)])
def test_sampler_quality_and_free_energy_see_a_planted_pinned_phase(amplitude, covers):
    """A flow with a planted pinned global phase: its samples' resultant is near 1, the Z_2 and
    Z_8 mixtures leave it large at their harmonic, and the training record and free_energy say
    the proposal does not cover the group; an unpinned flow covers it."""
    from rginspect_plugins.free_energy import FreeEnergy

    from rginspect.train import field_symmetries, sampler_quality

    flow = PlantedPhaseFlow(amplitude)
    plain = sampler_quality(flow, n_samples=1024)
    mixed = sampler_quality(flow, n_samples=1024, group=field_symmetries(2))
    assert plain.covers_symmetry is covers and mixed.covers_symmetry is covers
    if not covers:
        # φ → φ* in the Z_8 mixture halves |⟨e^{8iθ}⟩| to |⟨cos 8θ⟩| of the pinned phase
        assert plain.phase_resultant > 0.9 and mixed.phase_resultant > 0.3
    defaults = {name: parameter.default for name, parameter in FreeEnergy.parameters.items()}
    result = FreeEnergy().run(RunContext(flow, {**defaults, "samples": 1024}, seed=0))
    assert bool(result.covers_symmetry) is covers
    text = FreeEnergy().render(result).text
    assert ("proposal does not cover it" in text) is not covers
