"""holography on planted answers: the identity flow of holography_cases fed Gaussian fields whose
pair information decays at a known rate with a known distance (or not at all), the effective
action's scores against their closed form and the Fisher identity, receptive-field centres against
a dense Jacobian, and the global symmetry taken out of a field with a planted global phase.
The slow multi-seed versions (calibration of the errors, verdict rates) are
tests/benchmarks/bench_holography.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import xarray as xr
from holography_cases import (
    GaussianAction,
    gaussian_fields,
    identity_model,
    planted_covariance,
    rotated_fields,
)
from rginspect_plugins.goldstone import Goldstone
from rginspect_plugins.holography import Holography
from rginspect_plugins.holography.compute import (
    ACTION_ROUTE,
    MI_ROUTE,
    NO_INFORMATION,
    effective_action_gradient,
    receptive_centres,
)
from rginspect_plugins.mutual_info import MutualInfo
from rginspect_plugins.summary import Summary

import rginspect
from rginspect.analysis import RunContext
from rginspect.data import DataBatch
from rginspect.model import RGFlowModel
from rginspect.nn.architectures import rgflow_config
from rginspect.physics import hmc

SIZE, SAMPLES, B = 8, 4096, 1.0
PARAMETERS = {"inputs": SAMPLES, "null_ensembles": 8, "groups": 16, "jacobian_samples": 1}


def run(fields, action=None, seed=0, **overrides) -> xr.Dataset:
    parameters = PARAMETERS | {"action_inputs": SAMPLES if action is not None else 0} | overrides
    data = DataBatch(images_or_fields=fields, source="planted fields")
    model = identity_model(action, size=SIZE)
    context = RunContext(model, parameters, seed=seed, data=data, show_progress=False)
    return Holography().run(context)


def planted(geometry: str, a: float, seed: int, tau=None) -> np.ndarray:
    covariance = planted_covariance(geometry, a, B, SIZE)
    return gaussian_fields(covariance, SAMPLES, np.random.default_rng(seed), tau=tau)


@pytest.mark.parametrize("geometry", ["hyperbolic", "flat"])
def test_a_planted_kernel_is_recovered_and_its_geometry_named(geometry):
    """Σ = I + a·exp(−b·d) per component: ln I falls with slope 2b along d. The slope of the
    planted geometry lands within 5% and 3 errors of it, and the verdict names the geometry."""
    result = run(planted(geometry, 0.43, seed=1)).sel(route=MI_ROUTE)
    slope = float(result.slope.sel(geometry=geometry))
    error = float(result.slope_error.sel(geometry=geometry))
    assert slope == pytest.approx(2 * B, rel=0.05)
    assert abs(slope - 2 * B) < 3 * error + 0.01 * 2 * B  # the curvature of −ln(1 − ρ²): ~1%
    assert str(result.verdict.values) == geometry
    assert float(result.excess) > 10


def test_planted_couplings_are_read_by_the_effective_action():
    """The precision (couplings) Σ⁻¹ = I + a·exp(−b·g): the scores ∇S_eff = Σ⁻¹x have covariance
    Σ⁻¹, so the effective-action route reads the slope 2b; the MI route reads the covariance, whose
    decay differs (the inverse of a hyperbolic kernel falls faster)."""
    couplings = planted_covariance("hyperbolic", 0.43, B, SIZE)
    covariance = np.linalg.inv(couplings)
    fields = gaussian_fields(covariance, SAMPLES, np.random.default_rng(2))
    action = GaussianAction(np.kron(np.eye(2), couplings), size=SIZE)
    result = run(fields, action)
    reading = result.sel(route=ACTION_ROUTE)
    slope = float(reading.slope.sel(geometry="hyperbolic"))
    error = float(reading.slope_error.sel(geometry="hyperbolic"))
    assert slope == pytest.approx(2 * B, rel=0.05)
    assert abs(slope - 2 * B) < 3 * error + 0.02
    assert str(reading.verdict.values) == "hyperbolic"
    assert float(result.sel(route=MI_ROUTE, geometry="hyperbolic").slope) > 3 * B
    assert result.attrs["action_samples"] == SAMPLES


@pytest.mark.parametrize("chained", [False, True])
def test_independent_latents_have_no_residual_information(chained, tmp_path):
    """Independent sites, i.i.d. or in one chain with τ_int from 1 to 30 per site: no more pairs
    above the floor than chance, so no slope and a report that says there is nothing to read."""
    rng = np.random.default_rng(3)
    tau = rng.uniform(1, 30, SIZE * SIZE) if chained else None
    fields = gaussian_fields(np.eye(SIZE * SIZE), SAMPLES, rng, tau=tau)
    result = run(fields, GaussianAction(np.eye(2 * SIZE * SIZE), size=SIZE), seed=3)
    assert list(result.verdict.values) == [NO_INFORMATION, NO_INFORMATION]
    assert np.isnan(result.slope.values).all() and np.isnan(result.slope_error.values).all()
    assert (np.abs(result.excess.values) < 3).all()
    path = tmp_path / "holography.nc"
    result.to_netcdf(path, engine="h5netcdf")
    section = Holography().render(xr.load_dataset(path, engine="h5netcdf"))
    assert section.text.count("no bulk geometry to read") == 2
    assert "one chain of 4096 samples" in section.text


@pytest.mark.parametrize("a", [0.0, 0.43])
def test_the_actions_own_hmc_chains_read_planted_couplings_or_none(a):
    """The action's HMC ensemble (64 chains of 64 steps, which share their rejected steps: the
    null ensemble keeps that, Bartlett's factor alone would not) of Gaussian sites coupled as
    I + a·exp(−b·g): none (a = 0) gives nothing to read, the planted couplings their slope 2b
    within 3 jackknife errors over whole chains."""
    couplings = np.kron(np.eye(2), planted_covariance("hyperbolic", a, B, SIZE))
    model = identity_model(GaussianAction(couplings, size=SIZE), size=SIZE)
    parameters = PARAMETERS | {"action_inputs": SAMPLES}
    result = Holography().run(RunContext(model, parameters, seed=4, show_progress=False))
    assert result.attrs["source"].startswith("HMC samples of the action")
    assert result.attrs["chains"] == "64 chains of 64 steps"
    reading = result.sel(route=ACTION_ROUTE)
    if a == 0:
        assert list(result.verdict.values) == [NO_INFORMATION, NO_INFORMATION]
        return
    assert str(reading.verdict.values) == "hyperbolic"
    slope = float(reading.slope.sel(geometry="hyperbolic"))
    assert abs(slope - 2 * B) < 3 * float(reading.slope_error.sel(geometry="hyperbolic"))


def test_a_weak_signal_is_never_a_confident_wrong_answer():
    """A ten times weaker planted hyperbolic kernel: the slope within its errors of 2b, or no call."""
    result = run(planted("hyperbolic", 0.1, seed=5)).sel(route=MI_ROUTE)
    verdict = str(result.verdict.values)
    assert verdict in ("hyperbolic", "undecided", NO_INFORMATION)
    if verdict == "hyperbolic":
        slope = float(result.slope.sel(geometry="hyperbolic"))
        assert abs(slope - 2 * B) < 3 * float(result.slope_error.sel(geometry="hyperbolic"))


def test_quoted_slope_errors_match_the_scatter_over_seeds():
    """Five independent data sets of the planted hyperbolic kernel: the slopes scatter by about
    the jackknife error each quotes (a cheap check; the benchmark runs more seeds)."""
    slopes, errors = [], []
    for seed in range(5):
        reading = run(planted("hyperbolic", 0.43, seed=10 + seed), groups=8).sel(
            route=MI_ROUTE, geometry="hyperbolic"
        )
        slopes.append(float(reading.slope))
        errors.append(float(reading.slope_error))
    ratio = np.std(slopes, ddof=1) / np.mean(errors)
    assert 0.35 < ratio < 2.5  # the 90% range of a standard deviation from 5 draws, and margin


# -- the two routes' ingredients ------------------------------------------------------------------
def perturbed_mera(size: int = 4) -> RGFlowModel:
    """A built-in MERA flow with every parameter moved off its identity-like initialisation."""
    config = rgflow_config(channels=2, L=size, kernel=2, prior="gaussian", domain="field")
    model = RGFlowModel.from_config(config).double()
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn(parameter.shape, generator=generator).double())
    return model


def test_receptive_centres_are_the_circular_means_of_the_dense_jacobian():
    identity = identity_model(size=SIZE)
    rows, cols = receptive_centres(identity, torch.randn(1, 2, SIZE, SIZE))
    np.testing.assert_allclose(rows, np.arange(SIZE * SIZE) // SIZE, atol=1e-9)
    np.testing.assert_allclose(cols, np.arange(SIZE * SIZE) % SIZE, atol=1e-9)
    model = perturbed_mera()
    z = torch.randn(2, 2, 4, 4, dtype=torch.float64)
    rows, cols = receptive_centres(model, z)
    dense = torch.stack(
        [torch.autograd.functional.jacobian(lambda v: model.decode(v[None])[0][0], s) for s in z]
    )  # (sample, x channel, y, x, z channel, row, col)
    field = dense.abs().mean(0).sum((0, 3)).reshape(16, 16).T  # (latent site, data site)
    for centre, position in [(rows, np.arange(16) // 4), (cols, np.arange(16) % 4)]:
        angle = 2 * np.pi * position / 4
        mean = np.arctan2(field.numpy() @ np.sin(angle), field.numpy() @ np.cos(angle))
        np.testing.assert_allclose(centre, (mean * 4 / (2 * np.pi)) % 4, atol=1e-6)


def test_effective_action_scores_are_the_closed_form_for_a_gaussian_action():
    precision = np.kron(np.eye(2), planted_covariance("hyperbolic", 0.43, B, SIZE))
    model = identity_model(GaussianAction(precision, size=SIZE), size=SIZE)
    z = torch.randn(5, 2, SIZE, SIZE, dtype=torch.float64)
    scores = effective_action_gradient(model, z)
    exact = (z.reshape(5, -1) @ torch.as_tensor(precision)).reshape(z.shape)
    torch.testing.assert_close(scores, exact)


def test_the_scores_obey_the_fisher_identity_on_the_actions_ensemble():
    """E[∇S_eff ∇S_effᵀ] = E[∇²S_eff] over the latents of the action's own ensemble (integration
    by parts): a flow with a strongly curved log-det (ζ + 2 tanh ζ) on a broad Gaussian action
    (precision 1/4, so that the log-det's curvature is comparable to the action's) at L = 4, HMC
    fields encoded, scores on 2048 of them, the Hessian column by column (forward over reverse
    mode) on 256, errors from the 64 independent chains: every entry within 5 errors (the
    largest of the 1024 is 3.6). With the log-det term's sign flipped the identity fails by 17
    errors: the test sees the term."""
    action = GaussianAction(0.25 * np.eye(32), size=4)
    model = rginspect.load("holography_cases:tanh_flow", size=4).double()
    model.action = action
    generator = torch.Generator().manual_seed(1)
    ensemble = hmc(action, 2048, n_chains=64, n_burnin=300, generator=generator)
    z = model.encode(ensemble.samples)[0]
    part = z[: 64 * 4]  # the first 4 steps of every chain
    n = z[0].numel()

    def identity_violation(sign: float) -> np.ndarray:
        """(n, n) (E[ggᵀ] − E[∇²S_eff]) / its standard error, per entry."""

        def total(zeta):
            x, log_det = model.decode(zeta)
            return (action(x) - sign * log_det).sum()

        gradient = torch.func.grad(total)
        with torch.no_grad():  # no graph through the parameters: each column would keep one
            scores = gradient(z).reshape(len(z), n)
            directions = torch.eye(n, dtype=z.dtype).reshape(n, 1, *z.shape[1:])
            columns = [
                torch.func.jvp(gradient, (part,), (e.expand_as(part),))[1] for e in directions
            ]
            hessian = torch.stack([c.reshape(len(part), n) for c in columns], 2)
        hessian = hessian.reshape(4, 64, n, n)  # (step, chain, n, n): samples are step-major
        outer = ensemble.by_chain((scores[:, :, None] * scores[:, None, :]).numpy()).mean(1)
        curvature = hessian.mean(0).numpy()  # (chain, n, n): chains are independent
        error = np.sqrt(outer.var(0, ddof=1) / 64 + curvature.var(0, ddof=1) / 64)
        return (outer.mean(0) - curvature.mean(0)) / error

    assert np.abs(identity_violation(1.0)).max() < 5
    assert np.abs(identity_violation(-1.0)).max() > 10


# -- the global symmetry ------------------------------------------------------------------------
def test_fields_with_a_planted_global_phase_are_aligned_to_the_flows_direction():
    """A flow whose samples sit at one phase (a shift by μ), fed its own law turned by uniform
    random global phases: as drawn, the turned μ spreads over every latent (std ≫ 1, strong pair
    MI); turned back to the flow's direction the latents are the unit noise again. Every analysis
    of the latents says which fields it read, and keeps the numbers of the fields as drawn."""
    model = rginspect.load("holography_cases:shift_flow", size=SIZE)
    fields = rotated_fields(SAMPLES, np.random.default_rng(6), size=SIZE)
    data = DataBatch(images_or_fields=fields, source="turned fields")
    context = RunContext(model, PARAMETERS | {"action_inputs": 0, "inputs": SAMPLES}, seed=6,
                         data=data, show_progress=False)  # fmt: skip
    alignment = context.alignment()
    assert alignment.pinned and alignment.direction == pytest.approx(0.7, abs=0.05)
    summary = Summary().run(
        RunContext(model, {"inputs": 1024}, 6, data=data, shared=context.shared)
    )
    np.testing.assert_allclose(summary["std"].values, 1, atol=0.05)
    assert (summary.std_unaligned.values > 1.3).all()
    assert "turned to the flow's direction" in Summary().render(summary).text
    parameters = {"inputs": SAMPLES, "knn_pairs": 4, "null_ensembles": 2}
    mi = MutualInfo().run(RunContext(model, parameters, 6, data=data, shared=context.shared))
    assert (np.abs(mi.mean_mi.values[:-1]) < 1e-3).all()
    assert (mi.unaligned_mean_mi.values[:-1] > 0.05).all()
    result = Holography().run(context)
    assert result.attrs["aligned"] == 1
    assert (
        float(result.unaligned_excess) > 30
        and str(result.unaligned_verdict.values) != NO_INFORMATION
    )
    assert float(result.mean_mi) < 0.01 * float(result.unaligned_mean_mi)
    assert "As drawn (not aligned)" in Holography().render(result).text
    goldstone = Goldstone().run(
        RunContext(model, {"inputs": SAMPLES}, 6, data=data, shared=context.shared)
    )
    assert goldstone.attrs["aligned"] == 1
    assert float(goldstone.phase_concentration) < 0.1  # the fields as drawn cover every phase
