"""free_energy: how close the flow q is to exp(−S)/Z, in nats, and what ln Z it implies.

- Variational free energy F_q = ⟨ln q(x) + S(x)⟩_q = −ln Z + KL(q ‖ p) ≥ −ln Z, the quantity a flow is
  trained to minimise; the gap to −ln Z is the KL divergence.
- Importance sampling: with log-weights ln w = −S − ln q, Z = ⟨w⟩_q, so
  ln Ẑ = logsumexp(ln w) − ln N. Its error is the delta method's σ = √(1/ESS − 1/N), and
  ESS/N = (Σw)²/(N Σw²) measures how many samples carry the estimate. ln Ẑ is biased low by about
  σ²/2, and when the flow misses part of p's mass no finite N shows it: the estimate and σ are only
  to be trusted when ESS is not tiny and the PSIS Pareto k̂ of the weights' tail is at most 0.7
  (above it the variance of w is effectively infinite and ESS/N itself is noise).
- Coverage: ESS/N and k̂ are computed on the flow's own samples and cannot see what it never
  proposes. The global phase's resultant (at the mixture's harmonic; the sign balance of a
  one-component field) says whether the proposal covers the action's symmetry group.
- For the Ising relaxation the exact ln Z is known: Kaufman's ln Z_Ising plus the
  Hubbard–Stratonovich offset, ∫dx exp(−E(x)) = Z_Ising · exp(offset).
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section
from rginspect.fields import (
    SYMMETRY_PARAMETERS,
    action_attrs,
    mixture_name,
    proposal_harmonic,
    run_flow_samples,
)
from rginspect.model import RGFlowModel

from .compute import exact_log_z, weight_dataset
from .draw import free_energy_section, plot_weights


class FreeEnergy(Analysis):
    name = "free_energy"
    description = "Variational free energy, importance-sampled ln Z with ESS, exact ln Z for Ising"
    version = "2"  # 2: Pareto k̂ and the proposal's symmetry coverage
    parameters = {
        "samples": Parameter(int, 4096, "flow samples"),
        **SYMMETRY_PARAMETERS,
        "batch_size": Parameter(int, 1024, "flow samples drawn at once"),
    }
    domains = ("field",)
    plots = {"weights": plot_weights}

    def applies_to(self, model: RGFlowModel) -> str | None:
        reason = super().applies_to(model)
        if reason is None and model.action is None:
            reason = "it needs the model's action S; this checkpoint records none"
        return reason

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, p = context.model, context.parameters
        if p["samples"] < 2:
            raise ValueError(f"free_energy needs at least 2 samples, got {p['samples']}")
        x, log_q, action = run_flow_samples(context, p["samples"], batch_size=p["batch_size"])
        log_w = (-action - log_q).numpy()
        if not np.isfinite(log_w).all():
            raise ValueError(
                f"{int((~np.isfinite(log_w)).sum())} samples have a non-finite ln q or S: "
                "the flow produces overflowing fields; check the checkpoint"
            )
        n_sites = model.data_shape[1] * model.data_shape[2]
        dataset = weight_dataset(
            log_w,
            x,
            n_sites=n_sites,
            harmonic=proposal_harmonic(context),
            exact=exact_log_z(model.action),
        )
        return dataset.assign_attrs(
            source="model samples",
            mixture=mixture_name(context),
            n_sites=n_sites,
            **action_attrs(model),
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return free_energy_section(dataset)
