"""correlation: the two-point function C(r) of a field model, and the phase its decay points to.

C(r) = Σ_c ⟨φ_c(x) φ_c(x + r)⟩ = ⟨Re φ_x* φ_{x+r}⟩ for a complex field, from samples of the flow.
A flow is only an approximation of exp(−S)/Z, so by default its samples are corrected by an
independence-Metropolis chain with the model's action: the chain's samples follow exp(−S)/Z exactly
wherever the flow puts mass, and the acceptance rate says how close the flow is.

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
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr
from matplotlib.ticker import FuncFormatter

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.model import RGFlowModel
from rginspect.physics import independence_metropolis
from rginspect.physics.correlation import (
    ACCEPTABLE_P,
    FORMS,
    MIN_EFFECTIVE_SAMPLES,
    MIN_FIT_POINTS,
    chord_length,
    decaying_range,
    estimate_correlation,
    exponential_form,
    fit_correlation_length,
    fit_mask,
    power_form,
    select_decay,
    zero_momentum_function,
)

LABELS = {  # what each decay form means: O(2) fields order quasi-long-range, others are critical
    "o2": {"exponential": "disordered", "power law": "quasi-long-range order"},
    "field": {"exponential": "disordered", "power law": "critical (power law)"},
}
IMAGE_LABELS = {"exponential": "exponential decay", "power law": "power-law decay"}
NO_FIT = "no fit form describes C(r)"


BKT_ETA = 0.25


class Correlation(Analysis):
    name = "correlation"
    description = "Two-point function C(r) with bootstrap errors; exponential vs power-law fits"
    version = "3"
    parameters = {
        "samples": Parameter(int, 4096, "flow samples to draw (without --data)"),
        "inputs": Parameter(int, 4096, "data fields or images to average over (with --data)"),
        "metropolis": Parameter(
            bool, True, "correct flow samples by independence Metropolis with the model's action"
        ),
        "connected": Parameter(bool, False, "subtract ⟨φ⟩² (fields; images are always connected)"),
        "symmetrize": Parameter(
            bool, True, "sample the mirrored mixture ½[q(x) + q(−x)] (for actions even in φ)"
        ),
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
        is_field = model.domain == "field"
        acceptance, sampler, symmetrized = math.nan, "data", False
        if context.data is not None:
            x, _, source = context.model_inputs(p["inputs"])
        else:
            symmetrized = p["symmetrize"] and model.action is not None
            x, log_q, action = run_flow_samples(
                context, p["samples"], batch_size=p["batch_size"], symmetrize=symmetrized
            )
            source, sampler = "model samples", "flow samples"
            if p["metropolis"] and action is not None:
                result = independence_metropolis(x, log_q, -action, generator=context.generator(1))
                x, acceptance = result.samples, result.acceptance_rate
                sampler = "independence Metropolis on flow samples"
        if not is_field:
            x = model.postprocess(x.to(model.prior.scale))
        L = model.data_shape[1]
        period = L if is_field else None
        estimate = estimate_correlation(
            x.double().cpu(),
            connected=p["connected"] or not is_field,
            periodic=is_field,
            n_resamples=p["resamples"],
            block_length=1 if sampler == "flow samples" else None,  # only these are i.i.d.
            rng=np.random.default_rng(context.seed),
        )
        distance = estimate.distance
        xi_gap, xi_gap_error = math.nan, math.nan
        if is_field:  # ξ from the zero-momentum correlator, exactly a sum of cosh terms
            zero_momentum = estimate_correlation(
                x.double().cpu(),
                connected=p["connected"],
                n_resamples=p["resamples"],
                block_length=estimate.block_length,
                rng=np.random.default_rng(context.seed + 1),
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
        if window.sum() >= MIN_FIT_POINTS:
            # BKT: a 2D O(2) field orders quasi-long-range only with η ≤ 1/4
            eta_max = BKT_ETA if is_field and model.data_shape[0] == 2 else None
            selection = select_decay(
                estimate,
                r_min=p["r_min"],
                r_max=int(distance[window][-1]),
                period=period,
                eta_max=eta_max,
            )
            amplitude = np.array([fit.parameters[0] for fit in selection.fits])
            xi, eta = (float(fit.parameters[1]) for fit in selection.fits)
            xi_error, eta_error = selection.xi_error, selection.eta_error
            chi2 = np.array([fit.chi2 for fit in selection.fits])
            aic = np.array([fit.aic for fit in selection.fits])
            weights, wins = selection.akaike_weights, selection.win_fraction
            p_values, accepted = selection.p_values, selection.accepted
            if is_field:
                kind = "o2" if eta_max is not None else "field"
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
        unit = "lattice spacings" if is_field else "pixels"
        what = "Σ_c ⟨φ_c(x) φ_c(x+r)⟩" if is_field else "Σ_c ⟨I_c(x) I_c(x+r)⟩"
        if p["connected"] or not is_field:
            what += " − mean part"
        return xr.Dataset(
            {
                "correlation": ("distance", estimate.value, {"long_name": what}),
                "correlation_error": ("distance", estimate.error, {"long_name": "bootstrap σ"}),
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
                "xi_error": (
                    (),
                    xi_error,
                    {"units": unit, "long_name": "bootstrap 68% half-width"},
                ),
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
                "label": (
                    (),
                    label,
                    {"long_name": "phase (fields) or decay form (images) read from C(r)"},
                ),
                "label_confidence": (
                    (),
                    confidence,
                    {"long_name": "fraction of bootstrap resamples giving the same label"},
                ),
                "acceptance_rate": (
                    (),
                    acceptance,
                    {"long_name": "independence-Metropolis acceptance (NaN without a chain)"},
                ),
                "autocorrelation_time": (
                    (),
                    estimate.autocorrelation_time,
                    {"long_name": "integrated autocorrelation time of the per-sample C(1)"},
                ),
                "effective_samples": (
                    (),
                    estimate.effective_samples,
                    {"long_name": "n / τ_int of the samples C(r) stands on"},
                ),
                "reliable": (
                    (),
                    estimate.reliable,
                    {"long_name": f"at least {MIN_EFFECTIVE_SAMPLES} effective samples"},
                ),
            },
            coords={
                "distance": ("distance", distance, {"units": unit}),
                "form": list(FORMS),
            },
            attrs={
                "source": source,
                "sampler": sampler,
                "domain": model.domain,
                "lattice_size": L,
                "periodic": int(is_field),
                "connected": int(p["connected"] or not is_field),
                "symmetrized": int(symmetrized),
                "r_min": p["r_min"],
                "fit_r_max": int(distance[window][-1]) if window.any() else -1,
                "n_samples": len(x),
                "block_length": estimate.block_length,
                "chi2_weighting": "bootstrap covariance of C(r) between distances",
                **action_attrs(model),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        a = dataset.attrs
        is_field = a["domain"] == "field"
        period = a["lattice_size"] if a["periodic"] else None
        r = dataset.distance.values
        value, error = dataset.correlation.values, dataset.correlation_error.values
        fitted = bool(np.isfinite(dataset.chi2.values).any())
        shown_forms = [
            form
            for form, ok in zip(FORMS, dataset.fit_accepted.values, strict=True)
            if fitted and (is_field or ok)
        ]
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        shown = r >= 1
        positive = bool(np.all(value[shown] > 0))
        chords = chord_length(r, period)
        for axis, abscissa in zip(axes, (r, chords), strict=True):
            axis.errorbar(
                abscissa[shown], value[shown], error[shown], fmt="o", color="black", label="C(r)"
            )
        if positive:  # log axes hold every value
            axes[0].set_yscale("log")
            axes[1].set_yscale("log")
            axes[0].set_title("log C against r: exponential decay is straight")
            axes[1].set_title("log C against log distance: a power law is straight")
        else:
            # linear within the noise, and at most two decades of log above it
            linear = max(2 * float(np.median(error[shown])), 0.01 * np.abs(value[shown]).max())
            axes[0].axhline(0, color="gray", lw=0.8)
            axes[1].axhline(0, color="gray", lw=0.8)
            axes[1].set_yscale("symlog", linthresh=linear)
            axes[0].set_title("C(r) changes sign: linear axes")
            axes[1].set_title(f"symmetric log (linear within ±{linear:.1g})")
        fit_range = r[np.isfinite(dataset.fit.values).any(0)]
        if len(shown_forms):
            fine = np.linspace(fit_range[0], fit_range[-1], 200)
            shapes = {"exponential": float(dataset.xi), "power law": float(dataset.eta)}
            for form, function, color in zip(
                FORMS, (exponential_form, power_form), ("tab:blue", "tab:orange"), strict=True
            ):
                if form not in shown_forms:
                    continue
                curve = function(
                    fine, float(dataset.amplitude.sel(form=form)), shapes[form], period
                )
                name = "ξ" if form == "exponential" else "η"
                for axis, abscissa in zip(axes, (fine, chord_length(fine, period)), strict=True):
                    axis.plot(
                        abscissa, curve, color=color, label=f"{form} ({name} = {shapes[form]:.3g})"
                    )
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
        figures = [Figure(figure, f"C(r) from {a['n_samples']} samples ({a['sampler']}).")]
        tables = []
        if fitted:
            errors = {"exponential": float(dataset.xi_error), "power law": float(dataset.eta_error)}
            dof = len(fit_range) - 2
            parameters = [
                f"{name} = {value:.3g} ± {errors[form]:.2g}" if np.isfinite(value) else "—"
                for form, name, value in zip(
                    FORMS, ("ξ", "η"), (float(dataset.xi), float(dataset.eta)), strict=True
                )
            ]
            tables.append(
                Table(
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
            )
        text = self.verdict(dataset, fit_range) if is_field else self.image_verdict(dataset)
        if "xi_zero_momentum" in dataset and np.isfinite(float(dataset.xi_zero_momentum)):
            text += (
                f"\n\nCorrelation length from the zero-momentum (row-summed) correlator, exactly a "
                f"sum of cosh terms: ξ = {float(dataset.xi_zero_momentum):.3g} ± "
                f"{float(dataset.xi_zero_momentum_error):.2g}, the inverse mass gap; this is the ξ "
                "to quote. The cosh fit of C(r) gives an effective ξ = "
                f"{float(dataset.xi):.3g}, lower because a 2D C(r) carries an extra r^−½."
            )
        acceptance = float(dataset.acceptance_rate)
        if not np.isnan(acceptance):
            text += (
                f"\n\nIndependence-Metropolis acceptance {acceptance:.1%}; errors from a block "
                f"bootstrap with blocks of {a['block_length']} (τ_int of C(1) = "
                f"{float(dataset.autocorrelation_time):.1f})."
            )
            if acceptance < 0.1:
                text += (
                    " Below 10% acceptance the chain holds a few states for long stretches: these "
                    "Metropolis-corrected numbers are not reliable."
                )
        if "reliable" in dataset and not bool(dataset.reliable):
            text += (
                f"\n\nNot reliable: these {a['n_samples']} samples are worth "
                f"{float(dataset.effective_samples):.0f} independent ones (n/τ_int, fewer than "
                f"{MIN_EFFECTIVE_SAMPLES}), so neither the errors nor a label confidence can be "
                "given; draw more samples or use a better sampler."
            )
        couplings = ", ".join(f"{k} = {a[k]}" for k in ("kappa", "lamb", "T", "beta") if k in a)
        if couplings:
            text += f"\n\nAction {a['action']}: {couplings}."
        how_to_read = (
            "C(r) with the exponential (cosh) and power-law (chord) fits; the lower AIC names the "
            "phase: exponential = disordered, power law = quasi-long-range order."
            if is_field
            else "Connected pixel-intensity correlation C(r); images have no phase. A decay form is "
            "fitted only where C(r) is positive and falling, and named only if its χ² accepts it."
        )
        return Section(
            title="Two-point correlation",
            how_to_read=how_to_read,
            figures=figures,
            tables=tables,
            text=text,
        )

    @staticmethod
    def verdict(dataset: xr.Dataset, fit_range: np.ndarray) -> str:
        """The field's phase label, with what weakens it."""
        a = dataset.attrs
        if not np.isfinite(dataset.chi2.values).any():
            return (
                f"No fits: r from {a['r_min']} to L/2 = {int(dataset.distance[-1])} gives fewer "
                f"than {MIN_FIT_POINTS} distances for two-parameter forms."
            )
        confidence = float(dataset.label_confidence)
        chosen = (
            f"chosen in {confidence:.0%} of bootstrap resamples"
            if np.isfinite(confidence)
            else "no bootstrap confidence (too few effective samples)"
        )
        text = (
            f"Label: {dataset.label.item()}, {chosen} "
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
        if a.get("n_channels") == 2 and dataset.label.item() == LABELS["o2"]["exponential"]:
            if dataset.aic.values[1] < dataset.aic.values[0]:
                text += (
                    f" A power law fits better, but with η = {float(dataset.eta):.2g} above "
                    "1/4, the largest η of quasi-long-range order in a 2D O(2) field (BKT): "
                    "read as a correlation length comparable to L."
                )
        return text

    @staticmethod
    def image_verdict(dataset: xr.Dataset) -> str:
        """Which decay form, if any, describes the image correlation, and over which distances."""
        a, label = dataset.attrs, dataset.label.item()
        r_max = int(a["fit_r_max"])
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


def run_flow_samples(
    context: RunContext, n: int, *, batch_size: int, symmetrize: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """flow_samples seeded by the run, drawn once per run: correlation and free_energy with the
    same settings average over the same samples, so the second analysis reuses the first's."""
    return context.once(
        ("flow_samples", n, batch_size, symmetrize, context.seed),
        lambda: flow_samples(
            context.model,
            n,
            batch_size=batch_size,
            generator=context.generator(),
            symmetrize=symmetrize,
        ),
    )


@torch.no_grad()
def flow_samples(
    model: RGFlowModel,
    n: int,
    *,
    batch_size: int,
    generator: torch.Generator,
    symmetrize: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """n flow samples (float64, CPU) with log q(x), and S(x) when the model has an action.

    With `symmetrize`, x is drawn from q_s(x) = ½[q(x) + q(−x)] (a random sign flip of a flow
    sample). For an action even in φ, q_s is never further from exp(−S)/Z than q (KL is convex),
    and NeuralRG trains its flows wrapped this way; an action that is not even is refused.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    fields, log_qs, actions = [], [], []
    for start in range(0, n, batch_size):
        x, log_q = model.sample(
            min(batch_size, n - start), generator=generator, return_log_prob=True
        )
        if symmetrize:
            log_q = torch.logaddexp(log_q, model.log_prob(-x)) - math.log(2)  # even in x
            sign = 2 * torch.randint(0, 2, (len(x), 1, 1, 1), generator=generator) - 1
            x = x * sign.to(x)
        if model.action is not None:
            action = model.action(x.double())
            if symmetrize and not torch.allclose(model.action(-x.double()), action, rtol=1e-6):
                raise ValueError(
                    "symmetrize needs an action even in the field, S(−φ) = S(φ); "
                    "set symmetrize=false for this model"
                )
            actions.append(action.cpu())
        fields.append(x.double().cpu())
        log_qs.append(log_q.double().cpu())
    return torch.cat(fields), torch.cat(log_qs), torch.cat(actions) if actions else None


def action_attrs(model: RGFlowModel) -> dict[str, Any]:
    """The action's name and couplings as dataset attributes (κ, λ, T, ...), for sweeps."""
    if model.action is None:
        return {}
    config = dict(model.action.config())
    return {"action": config.pop("name"), **config}
