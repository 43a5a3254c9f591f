"""correlation: the two-point function C(r) of a field model, the phase its decay points to, and
whether the flow's physics is its action's.

C(r) = Σ_c ⟨φ_c(x) φ_c(x + r)⟩ = ⟨Re φ_x* φ_{x+r}⟩ for a complex field, measured on several
ensembles along an `ensemble` dimension: the reference first (the data given with --data, else the
action's own HMC ensemble, errors from resampling its independent chains), then the flow's
samples as drawn and corrected by an independence-Metropolis chain with the action (exact
exp(−S)/Z wherever the flow puts mass; the acceptance says how close the flow is). The phase the
report states is the reference's; the fidelity numbers (ξ ratio, η difference, χ² between the
curves) say how far the flow's is from it.

Full, not connected, C(r) by default: the O(2) theory has ⟨φ⟩ = 0 on any finite lattice, and in the
quasi-long-range-ordered phase the long-distance part of C(r) is |m|² ~ L^{−η}. A finite-L flow
often picks one direction of φ; subtracting its spurious mean would remove exactly that part and
make quasi-long-range order look disordered. The fits carry no constant offset for the same reason
(there is no true long-range order in 2D O(2), Mermin–Wagner), and because L/2 − r_min + 1 is only
4 points at L = 8: a third parameter would leave the two forms nearly indistinguishable.

Exponential decay (cosh form) wins the AIC in the disordered phase, power-law decay (chord form) in
the quasi-long-range-ordered one. Image models get the connected pixel-intensity correlation with
open boundaries. Images have no phase, and their C(r) need not decay (it crosses zero and rises again
on MSDS, whose ellipses sit on a grid of tiles): the forms are fitted only over the stretch where C(r)
is positive and falling, and a form is named only if its χ² is acceptable; otherwise the label says
that no fit form describes C(r).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr
from matplotlib.ticker import FuncFormatter

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.fields import (
    SYMMETRY_PARAMETERS,
    action_attrs,
    mixture_name,
    proposal_harmonic,
    run_flow_samples,
)
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
    ISING_CRITICAL_BINDER,
    MIN_EFFECTIVE_SAMPLES,
    MIN_FIT_POINTS,
    CorrelationEstimate,
    binder_cumulant,
    chord_length,
    decaying_range,
    enough_resamples,
    estimate_correlation,
    exponential_form,
    fit_correlation_length,
    fit_covariance,
    fit_mask,
    power_form,
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


ENSEMBLE_NAMES = {  # how the report names each ensemble
    "action": "the action's own ensemble (HMC)",
    "data": "the data",
    "flow": "the flow's samples",
    "flow + Metropolis": "the flow's samples corrected by independence Metropolis",
}
REFERENCES = ("action", "data")  # an ensemble of the target distribution, measured first
COLORS = {"action": "black", "data": "black", "flow": "tab:orange", "flow + Metropolis": "tab:blue"}


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


class Correlation(Analysis):
    name = "correlation"
    description = "C(r), ξ, η and the phase of the flow's samples beside the action's or the data's"
    version = "7"  # 7: errors from independent units, Hartlap χ², k̂, coverage, labels
    parameters = {
        "samples": Parameter(int, 4096, "flow samples to draw"),
        "inputs": Parameter(
            int, 4096, "reference fields: data (with --data) or HMC samples of the action"
        ),
        "reference": Parameter(
            bool, True, "measure the action's own HMC ensemble beside the flow's (without --data)"
        ),
        "metropolis": Parameter(
            bool, True, "also correct the flow samples by independence Metropolis with the action"
        ),
        "connected": Parameter(bool, False, "subtract ⟨φ⟩² (fields; images are always connected)"),
        **SYMMETRY_PARAMETERS,
        "r_min": Parameter(int, 1, "shortest distance in the fits (≥ 1)"),
        "resamples": Parameter(int, 200, "bootstrap resamples"),
        "batch_size": Parameter(int, 1024, "flow samples drawn at once"),
    }
    domains = ("field", "image")

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, p = context.model, context.parameters
        if p["r_min"] < 1 or min(p["samples"], p["inputs"], p["resamples"]) < 2:
            raise ValueError("correlation needs r_min ≥ 1 and samples, inputs and resamples ≥ 2")
        ensembles = draw_ensembles(context)
        measured = [
            measure(ensemble, model, p, seed=context.seed + 2 * i)
            for i, ensemble in enumerate(ensembles)
        ]
        names = [ensemble.name for ensemble in ensembles]
        reference = names[0] if names[0] in REFERENCES and model.domain == "field" else ""
        fidelity = [
            compare(measured[0], one, p["r_min"]) if reference and i else {}
            for i, one in enumerate(measured)
        ]
        dataset = xr.concat([one for one, _ in measured], dim="ensemble", join="exact")
        for key, long_name in FIDELITY.items():
            values = [numbers.get(key, math.nan) for numbers in fidelity]
            dataset[key] = ("ensemble", values, {"long_name": long_name})
        phase = dataset.label.values[0].item() if model.domain == "field" else ""
        dataset["phase"] = ((), phase, {"long_name": f"phase read from C(r) of {names[0]}"})
        dataset["hmc_tau_magnetization_squared"] = (
            (),
            ensembles[0].chain_taus[0],
            {"long_name": "τ_int of |M|² along the HMC chains (NaN without HMC)"},
        )
        dataset["hmc_tau_global_phase"] = (
            (),
            ensembles[0].chain_taus[1],
            {"long_name": "τ_int of M's components (the global phase) along the HMC chains"},
        )
        samplers = [ensemble.sampler for ensemble in ensembles]
        return dataset.assign_coords(ensemble=names, sampler=("ensemble", samplers)).assign_attrs(
            reference=reference,
            domain=model.domain,
            lattice_size=model.data_shape[1],
            n_components=model.data_shape[0],
            periodic=int(model.domain == "field"),
            connected=int(p["connected"] or model.domain != "field"),
            mixture=mixture_name(context),
            r_min=p["r_min"],
            chi2_weighting="bootstrap covariance of C(r) between distances",
            **action_attrs(model),
        )

    def render(self, dataset: xr.Dataset) -> Section:
        is_field = dataset.attrs["domain"] == "field"
        first = dataset.isel(ensemble=0)
        fit_range = first.distance.values[np.isfinite(first.fit.values).any(0)]
        fitted = bool(np.isfinite(dataset.chi2.values).any())
        tables = []
        if is_field:
            tables.append(ensemble_table(dataset, fit_range))
        elif fitted:
            tables.append(form_table(first, fit_range))
        text = field_text(dataset, fit_range) if is_field else image_verdict(first)
        a = dataset.attrs
        couplings = ", ".join(f"{k} = {a[k]}" for k in ("kappa", "lamb", "T", "beta") if k in a)
        if couplings:
            text += f"\n\nAction {a['action']}: {couplings}."
        how_to_read = (
            "C(r) of every ensemble with its fits: the exponential (cosh) and power-law (chord) "
            "forms; the lower AIC names the phase: exponential = disordered, power law = "
            "quasi-long-range order (O(2) fields) or critical (one component), which is ordered "
            "instead where the Binder cumulant stands above its finite-size critical value. The "
            "first ensemble is the reference the flow is held to."
            if is_field
            else "Connected pixel-intensity correlation C(r); images have no phase. A decay form is "
            "fitted only where C(r) is positive and falling, and named only if its χ² accepts it."
        )
        samples = ", ".join(
            f"{int(one.n_samples)} {name} ({one.sampler.item()})"
            for name, one in ((str(n), dataset.sel(ensemble=n)) for n in dataset.ensemble.values)
        )
        return Section(
            title="Two-point correlation",
            how_to_read=how_to_read,
            figures=[Figure(correlation_figure(dataset), f"C(r) from {samples}.")],
            tables=tables,
            text=text,
        )


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


def correlation_figure(dataset: xr.Dataset) -> plt.Figure:
    """C(r) against r and against the chord length, every ensemble in its colour: one ensemble
    with both fits, several with the fit each one's label chose."""
    a = dataset.attrs
    period = a["lattice_size"] if a["periodic"] else None
    is_field = a["domain"] == "field"
    r = dataset.distance.values
    shown = r >= 1
    values = dataset.correlation.values[:, shown]
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    chords = chord_length(r, period)
    positive = bool(np.all(values > 0))
    names = [str(name) for name in dataset.ensemble.values]
    single = len(names) == 1
    for i, name in enumerate(names):
        one = dataset.isel(ensemble=i)
        color = "black" if single else COLORS.get(name, f"C{i}")
        for axis, abscissa in zip(axes, (r, chords), strict=True):
            axis.errorbar(
                abscissa[shown],
                one.correlation.values[shown],
                one.correlation_error.values[shown],
                fmt="osd^"[i % 4],
                ms=4,
                color=color,
                label="C(r)" if single else name,
            )
        fit_range = r[np.isfinite(one.fit.values).any(0)]
        if not len(fit_range):
            continue
        aic = np.where(np.isfinite(one.aic.values), one.aic.values, np.inf)
        forms = [
            form
            for f, (form, ok) in enumerate(zip(FORMS, one.fit_accepted.values, strict=True))
            if (single and (is_field or ok)) or (not single and f == int(np.argmin(aic)))
        ]
        fine = np.linspace(fit_range[0], fit_range[-1], 200)
        shapes = {"exponential": float(one.xi), "power law": float(one.eta)}
        for form, function, form_color in zip(
            FORMS, (exponential_form, power_form), ("tab:blue", "tab:orange"), strict=True
        ):
            if form not in forms or not np.isfinite(shapes[form]):
                continue
            curve = function(fine, float(one.amplitude.sel(form=form)), shapes[form], period)
            symbol = "ξ" if form == "exponential" else "η"
            label = f"{form} ({symbol} = {shapes[form]:.3g})"
            for axis, abscissa in zip(axes, (fine, chord_length(fine, period)), strict=True):
                axis.plot(
                    abscissa,
                    curve,
                    color=form_color if single else color,
                    ls="-" if single else "--",
                    label=label if single else None,
                )
    if positive:  # log axes hold every value
        for axis in axes:
            axis.set_yscale("log")
        axes[0].set_title("log C against r: exponential decay is straight")
        axes[1].set_title("log C against log distance: a power law is straight")
    else:
        # linear within the noise, and at most two decades of log above it
        error = dataset.correlation_error.values[:, shown]
        linear = max(2 * float(np.median(error)), 0.01 * np.abs(values).max())
        for axis in axes:
            axis.axhline(0, color="gray", lw=0.8)
        axes[1].set_yscale("symlog", linthresh=linear)
        axes[0].set_title("C(r) changes sign: linear axes")
        axes[1].set_title(f"symmetric log (linear within ±{linear:.1g})")
    unit = dataset.distance.attrs["units"]
    axes[0].set_xlabel(f"r ({unit})")
    if positive:
        axes[1].set_xscale("log")
        if chords[shown].max() < 10 * chords[shown].min():  # under a decade: short labels
            short = FuncFormatter(lambda v, _: f"{v:g}")
            axes[1].xaxis.set_major_formatter(short)
            axes[1].xaxis.set_minor_formatter(short)
    axes[1].set_xlabel("chord length (L/π) sin(πr/L)" if period else f"r ({unit})")
    axes[0].set_ylabel("C(r)")
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    return figure


def _with_error(value: float, error: float) -> str:
    if not np.isfinite(value):
        return "—"
    return f"{value:.3g} ± {error:.2g}" if np.isfinite(error) else f"{value:.3g}"


def ensemble_table(dataset: xr.Dataset, fit_range: np.ndarray) -> Table:
    """One row per ensemble: how good its samples are, what C(r) says, and how far from the
    reference that is."""
    dof = max(len(fit_range) - 2, 1)
    rows = [dataset.isel(ensemble=i) for i in range(dataset.sizes["ensemble"])]
    columns = {
        "ensemble": [str(one.ensemble.values) for one in rows],
        "samples": [int(one.n_samples) for one in rows],
        "acceptance": dataset.acceptance_rate.values,
        "ESS/N": dataset.ess_fraction.values,
        "Pareto k̂": dataset.pareto_k.values,
        "phase resultant": dataset.phase_resultant.values,
        "τ_int": dataset.autocorrelation_time.values,
        "effective samples": dataset.effective_samples.values,
        "ξ (zero momentum)": [
            _with_error(float(one.xi_zero_momentum), float(one.xi_zero_momentum_error))
            for one in rows
        ],
        "ξ (cosh fit of C(r))": [_with_error(float(one.xi), float(one.xi_error)) for one in rows],
        "η": [_with_error(float(one.eta), float(one.eta_error)) for one in rows],
        "label": [one.label.item() for one in rows],
        "confidence": dataset.label_confidence.values,
        "χ²/dof exponential": dataset.chi2.values[:, 0] / dof,
        "χ²/dof power law": dataset.chi2.values[:, 1] / dof,
    }
    if np.isfinite(dataset.binder_cumulant.values).any():  # one-component fields
        columns["Binder U"] = [
            _with_error(float(one.binder_cumulant), float(one.binder_cumulant_error))
            for one in rows
        ]
    caption = (
        f"Fits for {fit_range[0]} ≤ r ≤ {fit_range[-1]} ({len(fit_range) - 2} degrees of freedom), "
        "χ² with the bootstrap covariance of C(r) between distances"
        if len(fit_range)
        else "No fits"
    ) + (
        "; errors are 68% half-widths of bootstrap resamples of independent units (single "
        "samples, whole HMC chains, or a Metropolis chain's holds raised to arviz's Monte Carlo "
        "error), each refitted with its own covariance; phase resultant: |⟨e^{ikθ}⟩| of the "
        "global phase at the proposal's harmonic k (|⟨sign M⟩| for one component), 0 when the "
        "ensemble covers the symmetry group"
    )
    reference = dataset.attrs["reference"]
    if reference:
        columns |= {
            "ξ / ξ_ref": [
                _with_error(float(one.xi_ratio), float(one.xi_ratio_error)) for one in rows
            ],
            "η − η_ref": [
                _with_error(float(one.eta_difference), float(one.eta_difference_error))
                for one in rows
            ],
            "C(r) χ²/dof vs ref": dataset.curve_chi2_per_dof.values,
        }
        caption += f"; the last three columns compare each ensemble with {reference!r}"
    return Table(pd.DataFrame(columns), caption)


def form_table(dataset: xr.Dataset, fit_range: np.ndarray) -> Table:
    """Both decay forms' fits of one ensemble (images)."""
    dof = len(fit_range) - 2
    errors = {"exponential": float(dataset.xi_error), "power law": float(dataset.eta_error)}
    parameters = [
        f"{name} = {value:.3g} ± {errors[form]:.2g}" if np.isfinite(value) else "—"
        for form, name, value in zip(
            FORMS, ("ξ", "η"), (float(dataset.xi), float(dataset.eta)), strict=True
        )
    ]
    return Table(
        pd.DataFrame(
            {
                "form": FORMS,
                "parameter": parameters,
                "amplitude": dataset.amplitude.values,
                "χ²/dof": dataset.chi2.values / max(dof, 1),
                "p": dataset.fit_p_value.values,
                "AIC": dataset.aic.values,
                "Akaike weight": dataset.akaike_weight.values,
                "bootstrap wins": dataset.bootstrap_win_fraction.values,
            }
        ),
        f"Fits for {fit_range[0]} ≤ r ≤ {fit_range[-1]} ({dof} degrees of freedom); "
        "χ² with the bootstrap covariance of C(r) between distances; errors are "
        "bootstrap 68% half-widths",
    )


def field_text(dataset: xr.Dataset, fit_range: np.ndarray) -> str:
    """The phase (the reference's), the flow's beside it, the fidelity line, and what weakens
    each number."""
    names = [str(name) for name in dataset.ensemble.values]
    reference = dataset.attrs["reference"]
    first = dataset.isel(ensemble=0)
    text = verdict(first, fit_range, f"Phase, from {ENSEMBLE_NAMES[names[0]]}")
    if reference and len(names) > 1:
        others = "; ".join(
            f"{dataset.sel(ensemble=name).label.item()} ({ENSEMBLE_NAMES[name]})"
            for name in names[1:]
        )
        text += f" The flow's label: {others}."
        fidelity = "; ".join(
            f"{name}: ξ/ξ = {_with_error(float(one.xi_ratio), float(one.xi_ratio_error))}, "
            f"η − η = {_with_error(float(one.eta_difference), float(one.eta_difference_error))}, "
            f"C(r) χ²/dof = {float(one.curve_chi2_per_dof):.3g}"
            for name, one in ((name, dataset.sel(ensemble=name)) for name in names[1:])
        )
        text += (
            f"\n\nFidelity against {ENSEMBLE_NAMES[reference]} (1, 0 and about 1 for a flow "
            f"that samples it): {fidelity}."
        )
    if np.isfinite(float(first.xi_zero_momentum)):
        text += (
            f"\n\nCorrelation length from the zero-momentum (row-summed) correlator, exactly a "
            f"sum of cosh terms: ξ = {float(first.xi_zero_momentum):.3g} ± "
            f"{float(first.xi_zero_momentum_error):.2g}, the inverse mass gap; this is the ξ "
            "to quote and the one the ratios use. The cosh fit of C(r) gives an effective ξ = "
            f"{float(first.xi):.3g}, lower because a 2D C(r) carries an extra r^−½."
        )
    if "flow" in names and np.isfinite(float(dataset.sel(ensemble="flow").ess_fraction)):
        flow = dataset.sel(ensemble="flow")
        k_hat = float(flow.pareto_k)
        text += (
            f"\n\nThe flow as a sampler of the action: ESS/N = {float(flow.ess_fraction):.3g}, "
            f"Pareto k̂ = {k_hat:.2f}"
        )
        if "flow + Metropolis" in names:
            chain = dataset.sel(ensemble="flow + Metropolis")
            acceptance = float(chain.acceptance_rate)
            text += (
                f", independence-Metropolis acceptance {acceptance:.1%} (τ_int of the chain "
                f"{float(chain.autocorrelation_time):.1f}, {float(chain.effective_samples):.0f} "
                "effective samples)"
            )
            if acceptance < 0.1:
                text += (
                    ". Below 10% acceptance the chain holds a few states for long stretches: its "
                    "Metropolis-corrected numbers are not reliable"
                )
        text += "."
        if k_hat > PARETO_K_UNRELIABLE:
            text += (
                f" Unreliable weights: k̂ above {PARETO_K_UNRELIABLE} means the weights' tail is "
                "too heavy for ESS/N or any reweighted average to be trusted; the flow misses "
                "part of exp(−S)."
            )
        text += coverage_text(dataset)
    if reference == "action":
        text += (
            f"\n\nThe action's HMC chains: τ_int of |M|² = "
            f"{float(dataset.hmc_tau_magnetization_squared):.2g}, of the global phase "
            f"(M's components) = {float(dataset.hmc_tau_global_phase):.2g} steps."
        )
    unreliable = [name for name in names if not bool(dataset.sel(ensemble=name).reliable)]
    for name in unreliable:
        one = dataset.sel(ensemble=name)
        text += (
            f"\n\nNot reliable ({name}): its {int(one.n_samples)} samples are worth "
            f"{float(one.effective_samples):.0f} independent ones (arviz's ESS, fewer than "
            f"{MIN_EFFECTIVE_SAMPLES}), so neither its errors nor a label confidence can be "
            "given; draw more samples or use a better sampler."
        )
    return text


def coverage_text(dataset: xr.Dataset) -> str:
    """Whether the flow's proposal, as mixed, covers the action's global symmetry, in words."""
    flow = dataset.sel(ensemble="flow")
    if not np.isfinite(float(flow.phase_resultant)):
        return ""
    resultant = float(flow.phase_resultant)
    one_component = dataset.attrs["n_components"] == 1
    what = "sign balance |⟨sign M⟩|" if one_component else "global-phase resultant"
    if bool(flow.covers_symmetry):
        return f" Its {what} is {resultant:.2f}: the proposal covers the symmetry group."
    group = "φ → −φ" if one_component else "the O(2) rotations"
    return (
        f" Its {what} is {resultant:.2f}, far from the 0 of an ensemble that covers {group}: "
        "the proposal does not cover the symmetry group, so acceptance, ESS/N and k̂ cannot "
        "see the fields it never proposes, and its Metropolis chain cannot reach them."
    )


def verdict(dataset: xr.Dataset, fit_range: np.ndarray, subject: str = "Label") -> str:
    """One ensemble's phase label, with what weakens it."""
    a = dataset.attrs
    if dataset.label.item() == ORDERED:
        confidence = float(dataset.label_confidence)
        chosen = (
            f"above U* in {confidence:.0%} of bootstrap resamples"
            if np.isfinite(confidence)
            else "no bootstrap confidence (too few effective samples)"
        )
        return (
            f"{subject}: ordered. The magnetisation's Binder cumulant U = "
            f"{_with_error(float(dataset.binder_cumulant), float(dataset.binder_cumulant_error))} "
            f"stands above U_L(K_c) = {float(dataset.critical_binder_cumulant):.4f}, its exact "
            f"value at the 2D Ising critical point on this lattice ({chosen}; the infinite-"
            f"lattice U* = {ISING_CRITICAL_BINDER:.4f} lies below it): m sits at ±m₀ and C(r) "
            "plateaus at m₀², which neither decay form describes."
        )
    if not np.isfinite(dataset.chi2.values).any():
        if fit_mask(dataset.distance.values, a["r_min"]).sum() < MIN_FIT_POINTS:
            return (
                f"{subject}: undetermined. No fits: r from {a['r_min']} to L/2 = "
                f"{int(dataset.distance[-1])} gives fewer than {MIN_FIT_POINTS} distances for "
                "two-parameter forms."
            )
        return f"{subject}: undetermined. The fits of C(r) did not converge."
    confidence = float(dataset.label_confidence)
    chosen = (
        f"chosen in {confidence:.0%} of bootstrap resamples"
        if np.isfinite(confidence)
        else "no bootstrap confidence (too few effective samples)"
    )
    text = (
        f"{subject}: {dataset.label.item()}, {chosen} "
        f"(Akaike weight {float(dataset.akaike_weight.max()):.2f})."
    )
    dof = len(fit_range) - 2
    best_chi2 = float(dataset.chi2.min())
    if dof > 0 and best_chi2 / dof > 3:
        text += (
            f" Neither form describes C(r) well (best χ²/dof = {best_chi2 / dof:.3g}): "
            "the label only names the lesser misfit."
        )
    if confidence < 0.8:
        text += " The data do not decide between the two forms at this noise level."
    bound = CRITICAL_ETA_FIELDS.get(a["n_components"])
    if bound and dataset.label.item() == bound[0]:
        if dataset.aic.values[1] < dataset.aic.values[0]:
            text += (
                f" A power law fits better, but with η = "
                f"{_with_error(float(dataset.eta), float(dataset.eta_error))} above 1/4 beyond "
                f"its error, the largest η {bound[1]}: read as a correlation length, not "
                "criticality."
            )
    return text


def image_verdict(dataset: xr.Dataset) -> str:
    """Which decay form, if any, describes the image correlation, and over which distances."""
    a, label = dataset.attrs, dataset.label.item()
    r_max = int(dataset.fit_r_max)
    stretch = (
        f"C(r) is positive and falling for {a['r_min']} ≤ r ≤ {r_max}"
        if r_max >= a["r_min"]
        else f"C(r) is not significantly positive and falling at r = {a['r_min']}"
    )
    if label != NO_FIT:
        text = f"{label.capitalize()} describes C(r) ({stretch}; χ² p ≥ {ACCEPTABLE_P:g})."
        if np.isfinite(float(dataset.label_confidence)):
            text += (
                f" Both forms fit; the lower AIC is chosen in "
                f"{float(dataset.label_confidence):.0%} of bootstrap resamples."
            )
        return text
    if not np.isfinite(dataset.chi2.values).any():
        return f"No fit form describes C(r): {stretch}, fewer than {MIN_FIT_POINTS} distances."
    misfits = ", ".join(
        f"{form} χ²/dof = {chi2 / max(r_max - a['r_min'] - 1, 1):.3g}"
        for form, chi2 in zip(FORMS, dataset.chi2.values, strict=True)
    )
    return (
        f"No fit form describes C(r): {stretch}, and neither decay form fits it there "
        f"({misfits}; both p < {ACCEPTABLE_P:g})."
    )
