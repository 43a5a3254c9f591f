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
open boundaries, fitted with the same two forms.
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
    FORMS,
    MIN_FIT_POINTS,
    chord_length,
    estimate_correlation,
    exponential_form,
    fit_mask,
    power_form,
    select_decay,
)

LABELS = {  # what each decay form means: O(2) fields order quasi-long-range, others are critical
    "o2": {"exponential": "disordered", "power law": "quasi-long-range order"},
    "field": {"exponential": "disordered", "power law": "critical (power law)"},
    "image": {"exponential": "short-range (exponential)", "power law": "scale-free (power law)"},
}


BKT_ETA = 0.25


class Correlation(Analysis):
    name = "correlation"
    description = "Two-point function C(r) with bootstrap errors; exponential vs power-law fits"
    version = "1"
    parameters = {
        "samples": Parameter(int, 4096, "flow samples (or data fields/images) to average over"),
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
        if p["r_min"] < 1 or p["samples"] < 2 or p["resamples"] < 2:
            raise ValueError("correlation needs r_min ≥ 1, samples ≥ 2 and resamples ≥ 2")
        is_field = model.domain == "field"
        acceptance, sampler, symmetrized, chain = math.nan, "data", False, False
        if context.data is not None:
            x, _, source = context.model_inputs(p["samples"])
        else:
            symmetrized = p["symmetrize"] and model.action is not None
            x, log_q, action = flow_samples(
                model,
                p["samples"],
                batch_size=p["batch_size"],
                generator=context.generator(),
                symmetrize=symmetrized,
            )
            source, sampler = "model samples", "flow samples"
            if p["metropolis"] and action is not None:
                result = independence_metropolis(x, log_q, -action, generator=context.generator(1))
                x, acceptance, chain = result.samples, result.acceptance_rate, True
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
            block_length=None if chain else 1,
            rng=np.random.default_rng(context.seed),
        )
        distance = estimate.distance
        nan2 = np.full(2, np.nan)
        amplitude, chi2, aic, weights, wins = nan2, nan2, nan2, nan2, nan2
        xi, eta, xi_error, eta_error, label, confidence = (math.nan,) * 4 + (
            "undetermined",
            math.nan,
        )
        curves = np.full((2, len(distance)), np.nan)
        if fit_mask(distance, p["r_min"]).sum() >= MIN_FIT_POINTS:
            # BKT: a 2D O(2) field orders quasi-long-range only with η ≤ 1/4
            eta_max = BKT_ETA if is_field and model.data_shape[0] == 2 else None
            selection = select_decay(estimate, r_min=p["r_min"], period=period, eta_max=eta_max)
            amplitude = np.array([fit.parameters[0] for fit in selection.fits])
            xi, eta = (float(fit.parameters[1]) for fit in selection.fits)
            xi_error, eta_error = selection.xi_error, selection.eta_error
            chi2 = np.array([fit.chi2 for fit in selection.fits])
            aic = np.array([fit.aic for fit in selection.fits])
            weights, wins = selection.akaike_weights, selection.win_fraction
            kind = "o2" if eta_max is not None else model.domain
            label, confidence = LABELS[kind][selection.phase], selection.confidence
            with np.errstate(divide="ignore"):
                curves = np.array([fit(distance, period) for fit in selection.fits])
            curves[~np.isfinite(curves)] = np.nan
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
                "aic": ("form", aic, {"long_name": "Akaike information criterion χ² + 2k"}),
                "akaike_weight": ("form", weights),
                "bootstrap_win_fraction": (
                    "form",
                    wins,
                    {"long_name": "fraction of bootstrap resamples where this form has lower AIC"},
                ),
                "xi": ((), xi, {"units": unit, "long_name": "correlation length ξ"}),
                "xi_error": (
                    (),
                    xi_error,
                    {"units": unit, "long_name": "bootstrap 68% half-width"},
                ),
                "eta": ((), eta, {"long_name": "power-law exponent η"}),
                "eta_error": ((), eta_error, {"long_name": "bootstrap 68% half-width"}),
                "label": ((), label, {"long_name": "phase read from the decay of C(r)"}),
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
                "n_samples": len(x),
                "block_length": estimate.block_length,
                **action_attrs(model),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        a = dataset.attrs
        period = a["lattice_size"] if a["periodic"] else None
        r = dataset.distance.values
        value, error = dataset.correlation.values, dataset.correlation_error.values
        fitted = not np.isnan(dataset.xi)
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        shown = r >= 1
        chords = chord_length(r, period)
        ticks = FuncFormatter(lambda v, _: f"{v:.3g}")
        for axis, abscissa in zip(axes, (r, chords), strict=True):
            axis.errorbar(
                abscissa[shown], value[shown], error[shown], fmt="o", color="black", label="C(r)"
            )
            axis.set_yscale("log")
            axis.yaxis.set_major_formatter(ticks)
            axis.yaxis.set_minor_formatter(ticks)
        if fitted:
            fine = np.linspace(max(a["r_min"], 1), r[-1], 200)
            shapes = {"exponential": float(dataset.xi), "power law": float(dataset.eta)}
            for form, function, color in zip(
                FORMS, (exponential_form, power_form), ("tab:blue", "tab:orange"), strict=True
            ):
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
        axes[0].set_title("log C against r: exponential decay is straight")
        axes[1].set_xscale("log")
        axes[1].xaxis.set_major_formatter(ticks)
        axes[1].xaxis.set_minor_formatter(ticks)
        axes[1].set_xlabel("chord length (L/π) sin(πr/L)" if period else f"r ({unit})")
        axes[1].set_title("log C against log distance: a power law is straight")
        axes[0].set_ylabel("C(r)")
        axes[0].legend(fontsize=8)
        figure.tight_layout()
        figures = [Figure(figure, f"C(r) from {a['n_samples']} samples ({a['sampler']}).")]
        tables = []
        if fitted:
            errors = {"exponential": float(dataset.xi_error), "power law": float(dataset.eta_error)}
            tables.append(
                Table(
                    pd.DataFrame(
                        {
                            "form": FORMS,
                            "parameter": [
                                f"ξ = {float(dataset.xi):.3g} ± {errors['exponential']:.2g}",
                                f"η = {float(dataset.eta):.3g} ± {errors['power law']:.2g}",
                            ],
                            "amplitude": dataset.amplitude.values,
                            "χ²": dataset.chi2.values,
                            "AIC": dataset.aic.values,
                            "Akaike weight": dataset.akaike_weight.values,
                            "bootstrap wins": dataset.bootstrap_win_fraction.values,
                        }
                    ),
                    f"Fits for {a['r_min']} ≤ r ≤ {r[-1]}; errors are bootstrap 68% half-widths",
                )
            )
            text = (
                f"Label: {dataset.label.item()}, chosen in {float(dataset.label_confidence):.0%} of "
                "bootstrap resamples (Akaike weight "
                f"{float(dataset.akaike_weight.max()):.2f})."
            )
            dof = int(fit_mask(r, a["r_min"]).sum()) - 2
            best_chi2 = float(dataset.chi2.min())
            if dof > 0 and best_chi2 / dof > 3:
                text += (
                    f" Neither form describes C(r) well (best χ²/dof = {best_chi2 / dof:.3g}): "
                    "the label only names the lesser misfit."
                )
            if float(dataset.label_confidence) < 0.8:
                text += " The data do not decide between the two forms at this noise level."
            if a.get("n_channels") == 2 and dataset.label.item() == LABELS["o2"]["exponential"]:
                if dataset.aic.values[1] < dataset.aic.values[0]:
                    text += (
                        f" A power law fits better, but with η = {float(dataset.eta):.2g} above "
                        "1/4, the largest η of quasi-long-range order in a 2D O(2) field (BKT): "
                        "read as a correlation length comparable to L."
                    )
        else:
            text = (
                f"No fits: r from {a['r_min']} to L/2 = {r[-1]} gives fewer than {MIN_FIT_POINTS} "
                "distances for two-parameter forms."
            )
        acceptance = float(dataset.acceptance_rate)
        if not np.isnan(acceptance):
            text += (
                f"\n\nIndependence-Metropolis acceptance {acceptance:.1%}; errors from a block "
                f"bootstrap with blocks of {a['block_length']} (τ_int of C(1) = "
                f"{float(dataset.autocorrelation_time):.1f})."
            )
            if acceptance < 0.2:
                text += (
                    " Below 20%, the chain holds a few states for long stretches: the errors (and "
                    "the label confidence) can be too optimistic by a factor of a few."
                )
        couplings = ", ".join(f"{k} = {a[k]}" for k in ("kappa", "lamb", "T", "beta") if k in a)
        if couplings:
            text += f"\n\nAction {a['action']}: {couplings}."
        return Section(
            title="Two-point correlation",
            how_to_read=(
                "C(r) on log axes with the exponential (cosh) and power-law (chord) fits; the lower "
                "AIC names the phase: exponential = disordered, power law = quasi-long-range order."
            ),
            figures=figures,
            tables=tables,
            text=text,
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
