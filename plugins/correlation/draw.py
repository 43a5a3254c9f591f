"""How correlation shows its results, from the stored dataset alone: C(r) of every ensemble with
its fits, the table of ensembles (fields) or of both decay forms (images), and the phase, the
flow's fidelity to the reference and what weakens each number, in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.ticker import FuncFormatter

from rginspect.analysis import Figure, Section, Table
from rginspect.physics import PARETO_K_UNRELIABLE
from rginspect.physics.correlation import (
    ACCEPTABLE_P,
    FORMS,
    ISING_CRITICAL_BINDER,
    MIN_EFFECTIVE_SAMPLES,
    MIN_FIT_POINTS,
    chord_length,
    exponential_form,
    fit_mask,
    power_form,
)
from rginspect.plotting import axes_grid, figure_of

from .compute import CRITICAL_ETA_FIELDS, NO_FIT, ORDERED

if TYPE_CHECKING:
    from matplotlib.axes import Axes

ENSEMBLE_NAMES = {  # how the report names each ensemble
    "action": "the action's own ensemble (HMC)",
    "data": "the data",
    "flow": "the flow's samples",
    "flow + Metropolis": "the flow's samples corrected by independence Metropolis",
}
COLORS = {"action": "black", "data": "black", "flow": "tab:orange", "flow + Metropolis": "tab:blue"}


def correlation_section(dataset: xr.Dataset) -> Section:
    """The report section: C(r) of every ensemble with its fits, the table of ensembles (fields)
    or of both decay forms (images), and the phase or decay form in words."""
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
        figures=[Figure(figure_of(plot_correlation(dataset)), f"C(r) from {samples}.")],
        tables=tables,
        text=text,
    )


def plot_correlation(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """C(r) against r and against the chord length, every ensemble in its colour: one ensemble
    with both fits, several with the fit each one's label chose. `ax`: two Axes."""
    a = dataset.attrs
    period = a["lattice_size"] if a["periodic"] else None
    is_field = a["domain"] == "field"
    r = dataset.distance.values
    shown = r >= 1
    values = dataset.correlation.values[:, shown]
    axes = axes_grid(ax, 1, 2, figsize=(10, 3.8))[0]
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
    unit = distance_unit(dataset)
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
    return axes


def distance_unit(dataset: xr.Dataset) -> str:
    """The unit of r by name: a stored distance's `units` is CF's "1" (rginspect.results), so
    the dataset keeps it in `distance_unit`; results written before version 8 kept it only in
    `units`."""
    return dataset.attrs.get("distance_unit", dataset.distance.attrs.get("units", ""))


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
