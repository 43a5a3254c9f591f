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

import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section
from rginspect.fields import SYMMETRY_PARAMETERS, action_attrs, mixture_name

from .compute import FIDELITY, REFERENCES, compare, draw_ensembles, measure
from .draw import correlation_section, plot_correlation


class Correlation(Analysis):
    name = "correlation"
    description = "C(r), ξ, η and the phase of the flow's samples beside the action's or the data's"
    version = "8"  # 8: the distance unit by name (distance_unit), for stored results
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
    plots = {"correlation": plot_correlation}

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
        return correlation_section(dataset)
