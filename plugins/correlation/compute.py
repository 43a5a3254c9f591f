"""What correlation measures: the ensembles (the reference, the flow's samples raw and
Metropolis-corrected), C(r) of each with its fits, label and errors (`measure`), and how far each
is from the reference (`compare`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import RunContext
from rginspect.fields import mixture_name, proposal_harmonic, run_flow_samples
from rginspect.model import RGFlowModel
from rginspect.physics import (
    PARETO_K_UNRELIABLE,
    effective_sample_fraction,
    independence_metropolis,
    pareto_k,
)
from rginspect.physics.correlation import (
    ACCEPTABLE_P,
    FORMS,
    MIN_EFFECTIVE_SAMPLES,
    MIN_FIT_POINTS,
    CorrelationEstimate,
    binder_cumulant,
    decaying_range,
    enough_resamples,
    estimate_correlation,
    fit_correlation_length,
    fit_covariance,
    fit_mask,
    select_decay,
    two_point_function,
    zero_momentum_function,
)
from rginspect.physics.exact import ising_critical_binder
from rginspect.physics.montecarlo import Layout, effective_sample_size
from rginspect.physics.symmetry import mean_resultant_length, pins_symmetry

LABELS = {  # what each decay form means: O(2) fields order quasi-long-range, others are critical
    "o2": {"exponential": "disordered", "power law": "quasi-long-range order"},
    "field": {"exponential": "disordered", "power law": "critical (power law)"},
}
ORDERED = "ordered"  # one-component fields, from the magnetisation's Binder cumulant
# a one-component field is called ordered when U lies this many bootstrap σ above the finite-size
# U_L(K_c): at K_c itself that happens in 0.1% of runs (at 2σ, one run in 40)
ORDERED_SIGMAS = 3.0
IMAGE_LABELS = {"exponential": "exponential decay", "power law": "power-law decay"}
NO_FIT = "no fit form describes C(r)"


# the largest η of a critical 2D field: quasi-long-range order of an O(2) field (BKT) and the
# Ising critical point of a one-component field both have η = 1/4
CRITICAL_ETA = 0.25
CRITICAL_ETA_FIELDS = {  # components: the label a steeper power law gets, and what η = 1/4 is there
    2: (LABELS["o2"]["exponential"], "of quasi-long-range order in a 2D O(2) field (BKT)"),
    1: (LABELS["field"]["exponential"], "of a critical one-component 2D field (Ising)"),
}

REFERENCES = ("action", "data")  # an ensemble of the target distribution, measured first


@dataclass(frozen=True)
class Ensemble:
    """Fields one C(r) is measured on, in the order its errors need (chain after chain for a
    Markov chain), which of them are independent, and the numbers that say how good they are."""

    name: str
    fields: torch.Tensor
    sampler: str
    layout: Layout | None  # None: independent samples (rginspect.physics.montecarlo)
    acceptance: float = math.nan
    ess_fraction: float = math.nan
    pareto_k: float = math.nan  # PSIS k̂ of the flow's importance weights
    harmonic: int = 1  # the phase harmonic the coverage is read at (K of a Z_K mixture)
    phase_samples: float | None = None  # effective samples of the global phase (None: n)
    chain_taus: tuple[float, float] = (math.nan, math.nan)  # HMC: τ_int of |M|², of M's components


FIDELITY = {  # per ensemble against the reference (NaN for the reference itself)
    "xi_ratio": "ξ / ξ of the reference (zero-momentum ξ)",
    "xi_ratio_error": "propagated bootstrap 68% half-width",
    "eta_difference": "η − η of the reference",
    "eta_difference_error": "propagated bootstrap 68% half-width",
    "curve_chi2_per_dof": "χ² per distance r ≥ r_min between this C(r) and the reference's",
}


def draw_ensembles(context: RunContext) -> list[Ensemble]:
    """The reference first (the data, else the action's HMC ensemble), then the flow's samples,
    raw and (with an action) Metropolis-corrected. Images: the data, else the flow's samples."""
    model, p = context.model, context.parameters
    ensembles = []
    if context.data is not None:
        x, _, source = context.model_inputs(p["inputs"])
        ensembles.append(Ensemble("data", x, source, data_layout(x, model.domain == "field")))
        if model.domain == "image":
            return ensembles
    elif model.action is not None and p["reference"]:
        ensembles.append(hmc_ensemble(context, p["inputs"]))
    x, log_q, action = run_flow_samples(context, p["samples"], batch_size=p["batch_size"])
    ess = math.nan if action is None else effective_sample_fraction(-action - log_q)
    k_hat = math.nan if action is None else pareto_k(-action - log_q)
    mixture = mixture_name(context)
    mixed = f", {mixture}" if mixture else ""
    harmonic = proposal_harmonic(context)
    quality = {"ess_fraction": ess, "pareto_k": k_hat, "harmonic": harmonic}
    ensembles.append(Ensemble("flow", x, f"flow samples{mixed}", None, **quality))
    if p["metropolis"] and action is not None:
        chain = independence_metropolis(x, log_q, -action, generator=context.generator(1))
        ensembles.append(
            Ensemble(
                "flow + Metropolis",
                chain.samples,
                f"independence Metropolis on the flow samples{mixed}, the first "
                f"{chain.burn_in} steps dropped",
                Layout.chain(chain.holds),
                acceptance=chain.acceptance_rate,
                **quality,
            )
        )
    return ensembles


def data_layout(x: torch.Tensor, periodic: bool) -> Layout:
    """Data in an order that may be a Markov chain's: blocks of ⌈τ_int⌉ of the C(1) series,
    raised to arviz's Monte Carlo error (blocks of one sample for independent data)."""
    series = two_point_function(x.double().cpu(), periodic=periodic)[:, 1].numpy()
    tau = len(series) / effective_sample_size(series)
    return Layout.blocks(len(series), math.ceil(tau) if math.isfinite(tau) else 1)


def hmc_ensemble(context: RunContext, n: int) -> Ensemble:
    """The action's own fields from the run's shared HMC draw, chain after chain (each chain an
    independent unit of the errors), with τ_int of |M|² and of the global phase across the
    chains (the global phase does not enter C(r); its τ_int is recorded for the other analyses
    and sets the effective samples of the ensemble's phase coverage)."""
    result = context.action_ensemble(n)
    x = result.samples.double().cpu()
    steps = len(x) // result.n_chains
    if steps < 4:
        raise ValueError(
            f"the action's reference ensemble needs at least {4 * result.n_chains} HMC samples "
            f"(4 steps of each of {result.n_chains} chains), got {len(x)}: raise "
            "correlation.inputs or --samples, or set -p correlation.reference=false"
        )
    tau_m2, tau_phase = result.global_autocorrelation_times()
    chains = torch.from_numpy(result.by_chain(x).reshape(-1, *x.shape[1:]))
    return Ensemble(
        "action",
        chains,
        f"HMC of the action, {result.n_chains} chains × {steps} steps, step "
        f"{result.step_size:.3g}, acceptance {result.acceptance_rate:.0%}",
        Layout.chains(len(chains), result.n_chains),
        acceptance=result.acceptance_rate,
        phase_samples=len(chains) / max(tau_phase, 1.0),
        chain_taus=(tau_m2, tau_phase),
    )


def measure(
    ensemble: Ensemble, model: RGFlowModel, p: dict[str, Any], *, seed: int
) -> tuple[xr.Dataset, CorrelationEstimate]:
    """C(r), its fits and label, and ξ of the zero-momentum correlator, on one ensemble."""
    is_field = model.domain == "field"
    x = ensemble.fields
    if not is_field:
        x = model.postprocess(x.to(model.prior.scale))
    L = model.data_shape[1]
    period = L if is_field else None
    connected = p["connected"] or not is_field
    estimate = estimate_correlation(
        x.double().cpu(),
        connected=connected,
        periodic=is_field,
        n_resamples=p["resamples"],
        layout=ensemble.layout,
        rng=np.random.default_rng(seed),
    )
    distance = estimate.distance
    xi_gap, xi_gap_error = math.nan, math.nan
    if is_field:  # ξ from the zero-momentum correlator, exactly a sum of cosh terms
        zero_momentum = estimate_correlation(
            x.double().cpu(),
            connected=p["connected"],
            n_resamples=p["resamples"],
            layout=ensemble.layout,
            rng=np.random.default_rng(seed + 1),
            correlator=zero_momentum_function,
        )
        xi_gap, xi_gap_error = fit_correlation_length(
            zero_momentum, r_min=p["r_min"], period=period
        )
    nan2 = np.full(2, np.nan)
    amplitude, chi2, aic, weights, wins, p_values = (nan2,) * 6
    accepted = np.zeros(2, dtype=bool)
    xi, eta, xi_error, eta_error = (math.nan,) * 4
    label, confidence = ("undetermined" if is_field else NO_FIT), math.nan
    curves = np.full((2, len(distance)), np.nan)
    window = (
        fit_mask(distance, p["r_min"])
        if is_field
        else decaying_range(estimate.value, estimate.error, p["r_min"])
    )
    # a power law steeper than η = 1/4 is no critical 2D field (nor BKT order): a short ξ
    eta_max = CRITICAL_ETA if is_field and model.data_shape[0] in CRITICAL_ETA_FIELDS else None
    selection = None
    if window.sum() >= MIN_FIT_POINTS:
        try:
            selection = select_decay(
                estimate,
                r_min=p["r_min"],
                r_max=int(distance[window][-1]),
                period=period,
                eta_max=eta_max,
            )
        except ValueError:  # a fit did not converge (C(r) of noise about 0, say): no label
            if not is_field:
                raise
    if selection is not None:
        amplitude = np.array([fit.parameters[0] for fit in selection.fits])
        xi, eta = (float(fit.parameters[1]) for fit in selection.fits)
        xi_error, eta_error = selection.xi_error, selection.eta_error
        chi2 = np.array([fit.chi2 for fit in selection.fits])
        aic = np.array([fit.aic for fit in selection.fits])
        weights, wins = selection.akaike_weights, selection.win_fraction
        p_values, accepted = selection.p_values, selection.accepted
        if is_field:
            kind = "o2" if model.data_shape[0] == 2 else "field"
            label, confidence = LABELS[kind][selection.phase], selection.confidence
            if not estimate.reliable:  # resamples of too few effective samples say nothing
                confidence = math.nan
        elif accepted.any():  # images have no phase: name a decay only where a fit holds
            best = FORMS[int(np.argmin(np.where(accepted, aic, np.inf)))]
            label = IMAGE_LABELS[best]
            confidence = selection.confidence if accepted.all() else math.nan
        if not is_field:
            xi, xi_error = (xi, xi_error) if accepted[0] else (math.nan, math.nan)
            eta, eta_error = (eta, eta_error) if accepted[1] else (math.nan, math.nan)
        with np.errstate(divide="ignore"):
            curves = np.array([fit(distance, period) for fit in selection.fits])
        curves[:, ~window | ~np.isfinite(curves).all(0)] = np.nan
    binder, binder_error, critical_binder = math.nan, math.nan, math.nan
    if is_field and model.data_shape[0] == 1:  # true order has a plateau neither form fits
        binder, resampled = binder_cumulant(
            x, n_resamples=p["resamples"], layout=ensemble.layout,
            rng=np.random.default_rng(seed + 2),
        )  # fmt: skip
        binder_error = float(resampled.std(ddof=1))
        critical_binder = ising_critical_binder(L)  # U_L(K_c): above U*, falling to it with L
        above = float(np.mean(resampled > critical_binder))
        if binder - ORDERED_SIGMAS * binder_error > critical_binder:
            label, confidence = ORDERED, above if estimate.reliable else math.nan
    resultant, covers = math.nan, True
    if is_field and model.data_shape[0] in (1, 2):
        resultant = mean_resultant_length(x, ensemble.harmonic)
        samples = (
            estimate.effective_samples if ensemble.phase_samples is None else ensemble.phase_samples
        )
        covers = not pins_symmetry(resultant, samples, model.data_shape[0])
    unit = "lattice spacings" if is_field else "pixels"
    what = "Σ_c ⟨φ_c(x) φ_c(x+r)⟩" if is_field else "Σ_c ⟨I_c(x) I_c(x+r)⟩"
    if connected:
        what += " − mean part"
    dataset = xr.Dataset(
        {
            "correlation": ("distance", estimate.value, {"long_name": what}),
            "correlation_error": (
                "distance",
                estimate.error,
                {"long_name": "σ from the covariance of independent units"},
            ),
            "fit": (("form", "distance"), curves, {"long_name": "fitted C(r)"}),
            "amplitude": ("form", amplitude, {"long_name": "A (exponential), B (power law)"}),
            "chi2": ("form", chi2, {"long_name": "χ² of the fit"}),
            "fit_p_value": (
                "form",
                p_values,
                {"long_name": "P(χ² at least this large | the form is right)"},
            ),
            "fit_accepted": (
                "form",
                accepted,
                {"long_name": f"χ² acceptable: p ≥ {ACCEPTABLE_P:g}"},
            ),
            "aic": ("form", aic, {"long_name": "Akaike information criterion χ² + 2k"}),
            "akaike_weight": ("form", weights),
            "bootstrap_win_fraction": (
                "form",
                wins,
                {"long_name": "fraction of bootstrap resamples where this form has lower AIC"},
            ),
            "xi": (
                (),
                xi,
                {"units": unit, "long_name": "ξ of the C(r) cosh fit (an effective length)"},
            ),
            "xi_error": ((), xi_error, {"units": unit, "long_name": "bootstrap 68% half-width"}),
            "xi_zero_momentum": (
                (),
                xi_gap,
                {"units": unit, "long_name": "ξ of the zero-momentum correlator (inverse gap)"},
            ),
            "xi_zero_momentum_error": (
                (),
                xi_gap_error,
                {"units": unit, "long_name": "bootstrap 68% half-width of xi_zero_momentum"},
            ),
            "eta": ((), eta, {"long_name": "power-law exponent η"}),
            "eta_error": ((), eta_error, {"long_name": "bootstrap 68% half-width"}),
            "label": ((), label, {"long_name": "phase (fields) or decay form (images) of C(r)"}),
            "label_confidence": (
                (),
                confidence,
                {"long_name": "fraction of bootstrap resamples giving the same label"},
            ),
            "binder_cumulant": (
                (),
                binder,
                {"long_name": "U = 1 − ⟨m⁴⟩/3⟨m²⟩² of one-component fields (NaN otherwise)"},
            ),
            "binder_cumulant_error": ((), binder_error, {"long_name": "bootstrap σ"}),
            "critical_binder_cumulant": (
                (),
                critical_binder,
                {"long_name": "exact 2D Ising U_L(K_c) at this L, the ordered side's threshold"},
            ),
            "n_samples": ((), len(x)),
            "acceptance_rate": (
                (),
                ensemble.acceptance,
                {"long_name": "Metropolis or HMC acceptance (NaN for i.i.d. samples and data)"},
            ),
            "ess_fraction": (
                (),
                ensemble.ess_fraction,
                {"long_name": "ESS/N = (Σw)²/(N Σw²) of the flow's weights w = e^{−S}/q"},
            ),
            "pareto_k": (
                (),
                ensemble.pareto_k,
                {
                    "long_name": f"PSIS Pareto k̂ of the flow's weights (> {PARETO_K_UNRELIABLE}: "
                    "importance weights unreliable)"
                },
            ),  # fmt: skip
            "phase_resultant": (
                (),
                resultant,
                {
                    "long_name": f"|⟨e^{{ikθ}}⟩| of the global phase, k = {ensemble.harmonic} "
                    "(|⟨sign M⟩| for one component): 0 covers the symmetry group"
                },
            ),  # fmt: skip
            "covers_symmetry": (
                (),
                covers,
                {"long_name": "the resultant is what an ensemble covering the group gives"},
            ),
            "autocorrelation_time": (
                (),
                estimate.autocorrelation_time,
                {"long_name": "τ_int = n / ESS of the slowest C(r)"},
            ),
            "resampling_units": (
                (),
                estimate.units,
                {"long_name": "independent units the errors resample (samples, chains, holds)"},
            ),
            "mcse_inflation": (
                (),
                estimate.inflation,
                {"long_name": "factor a single chain's variance was raised by to arviz's MCSE"},
            ),
            "effective_samples": (
                (),
                estimate.effective_samples,
                {"long_name": "arviz's ESS of the slowest C(r) (n for independent samples)"},
            ),
            "reliable": (
                (),
                estimate.reliable,
                {"long_name": f"at least {MIN_EFFECTIVE_SAMPLES} effective samples"},
            ),
            "fit_r_max": ((), int(distance[window][-1]) if window.any() else -1),
        },
        coords={"distance": ("distance", distance, {"units": unit}), "form": list(FORMS)},
        # the unit by name for the figures: a stored `units` is CF's "1" (rginspect.results)
        attrs={"distance_unit": unit},
    )
    return dataset, estimate


def compare(
    reference: tuple[xr.Dataset, CorrelationEstimate],
    other: tuple[xr.Dataset, CorrelationEstimate],
    r_min: int,
) -> dict[str, float]:
    """How far one ensemble's physics is from the reference's: ξ (zero momentum) as a ratio, η as
    a difference, each with its propagated error, and χ² per distance between the C(r) curves
    with the sum of both bootstrap covariances (the ensembles are independent)."""
    (ref, ref_estimate), (one, estimate) = reference, other
    xi, xi_ref = float(one.xi_zero_momentum), float(ref.xi_zero_momentum)
    ratio = xi / xi_ref
    ratio_error = abs(ratio) * math.hypot(
        float(one.xi_zero_momentum_error) / xi, float(ref.xi_zero_momentum_error) / xi_ref
    )
    keep = fit_mask(estimate.distance, r_min)
    chi2 = math.nan
    if all(enough_resamples(e, int(keep.sum())) for e in (estimate, ref_estimate)):
        covariance = fit_covariance(
            estimate.covariance[np.ix_(keep, keep)], estimate.value[keep]
        ) + fit_covariance(ref_estimate.covariance[np.ix_(keep, keep)], ref_estimate.value[keep])
        difference = estimate.value[keep] - ref_estimate.value[keep]
        chi2 = float(difference @ np.linalg.solve(covariance, difference)) / int(keep.sum())
    return {
        "xi_ratio": ratio,
        "xi_ratio_error": ratio_error,
        "eta_difference": float(one.eta) - float(ref.eta),
        "eta_difference_error": math.hypot(float(one.eta_error), float(ref.eta_error)),
        "curve_chi2_per_dof": chi2,
    }
