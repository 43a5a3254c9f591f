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

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr
from scipy.special import logsumexp

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
    IsingAction,
    effective_sample_fraction,
    ising_log_z,
    ising_relaxation_log_z_offset,
    pareto_k,
)
from rginspect.physics.symmetry import mean_resultant_length, pins_symmetry


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
        n, n_sites = len(log_w), model.data_shape[1] * model.data_shape[2]
        ess = effective_sample_fraction(log_w) * n
        log_z = float(logsumexp(log_w) - math.log(n))
        exact = math.nan
        if isinstance(model.action, IsingAction):
            L, T = model.action.L, model.action.T
            exact = ising_log_z(L, T) + ising_relaxation_log_z_offset(L, T)
        nats = {"units": "nats"}
        harmonic, resultant, covers = proposal_harmonic(context), math.nan, True
        if model.data_shape[0] in (1, 2):
            resultant = mean_resultant_length(x, harmonic)
            covers = not pins_symmetry(resultant, n, model.data_shape[0])
        return xr.Dataset(
            {
                "log_weight": ("sample", log_w, {**nats, "long_name": "ln w = −S(x) − ln q(x)"}),
                "free_energy": ((), -log_w.mean(), {**nats, "long_name": "F_q = ⟨ln q + S⟩_q"}),
                "free_energy_error": ((), log_w.std(ddof=1) / math.sqrt(n), nats),
                "free_energy_per_site": ((), -log_w.mean() / n_sites, {"units": "nats/site"}),
                "log_z": ((), log_z, {**nats, "long_name": "importance-sampled ln Z"}),
                "log_z_error": (
                    (),
                    math.sqrt(max(1 / ess - 1 / n, 0.0)),
                    {**nats, "long_name": "delta-method σ = √(1/ESS − 1/N)"},
                ),
                "log_z_per_site": ((), log_z / n_sites, {"units": "nats/site"}),
                "log_z_exact": ((), exact, {**nats, "long_name": "exact ln Z (NaN if unknown)"}),
                "ess_fraction": ((), ess / n, {"long_name": "ESS/N = (Σw)²/(N Σw²)"}),
                "pareto_k": (
                    (),
                    pareto_k(log_w),
                    {"long_name": f"PSIS Pareto k̂ of w (> {PARETO_K_UNRELIABLE}: unreliable)"},
                ),
                "phase_resultant": (
                    (),
                    resultant,
                    {
                        "long_name": f"|⟨e^{{ikθ}}⟩| of the samples' global phase, k = {harmonic} "
                        "(|⟨sign M⟩| for one component): 0 covers the symmetry group"
                    },
                ),  # fmt: skip
                "covers_symmetry": ((), covers),
            },
            coords={"sample": np.arange(n)},
            attrs={
                "source": "model samples",
                "mixture": mixture_name(context),
                "n_sites": n_sites,
                **action_attrs(model),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        n_sites = dataset.attrs["n_sites"]
        f_q, log_z = float(dataset.free_energy), float(dataset.log_z)
        exact, ess = float(dataset.log_z_exact), float(dataset.ess_fraction)
        rows = [
            ("F_q = ⟨ln q + S⟩", f_q, float(dataset.free_energy_error)),
            ("ln Z (importance sampling)", log_z, float(dataset.log_z_error)),
        ]
        if not math.isnan(exact):
            rows.append(("ln Z (exact)", exact, 0.0))
        table = pd.DataFrame(
            {
                "quantity": [row[0] for row in rows],
                "total (nats)": [f"{row[1]:.3f}" for row in rows],
                "± σ": [f"{row[2]:.3f}" for row in rows],
                "per site": [f"{row[1] / n_sites:.4f}" for row in rows],
            }
        )
        figure, axis = plt.subplots(figsize=(6.5, 3.4))
        log_w = dataset.log_weight.values
        axis.hist(log_w, bins=60, color="tab:blue", alpha=0.8)
        axis.axvline(-f_q, color="black", ls=":", label="−F_q = ⟨ln w⟩")
        axis.axvline(log_z, color="tab:orange", label="ln Z, importance sampled")
        if not math.isnan(exact):
            axis.axvline(exact, color="tab:red", ls="--", label="ln Z, exact")
        axis.set_xlabel("ln w = −S(x) − ln q(x)  (nats)")
        axis.set_ylabel("samples")
        axis.set_yscale("log")
        axis.legend(fontsize=8)
        figure.tight_layout()
        reference = exact if not math.isnan(exact) else log_z
        kind = "exact" if not math.isnan(exact) else "estimated"
        text = (
            f"On {dataset.sizes['sample']} independent samples of the flow, weighted by "
            "w = e^{−S}/q. "
            f"ESS/N = {ess:.3g} ({ess * dataset.sizes['sample']:.0f} effective samples of "
            f"{dataset.sizes['sample']}). KL(q ‖ p) = F_q + ln Z = {f_q + reference:.3g} nats "
            f"(with the {kind} ln Z; {(f_q + reference) / n_sites:.3g} per site)."
        )
        if not math.isnan(exact):
            pull = (log_z - exact) / max(float(dataset.log_z_error), 1e-12)
            text += f" Importance-sampled ln Z − exact = {log_z - exact:.3g} ({pull:+.1f} σ)."
        k_hat = float(dataset.pareto_k)
        text += f" Pareto k̂ of the weights = {k_hat:.2f}."
        if k_hat > PARETO_K_UNRELIABLE or ess * dataset.sizes["sample"] < 100:
            text += (
                f" Unreliable (k̂ above {PARETO_K_UNRELIABLE} or fewer than 100 effective "
                "samples): the weights' tail is too heavy for the importance-sampled ln Z and its "
                "error; ln Z is likely biased low, and the flow misses part of exp(−S)."
            )
        resultant = float(dataset.phase_resultant)
        if np.isfinite(resultant):
            text += f" Global-phase resultant of the proposal {resultant:.2f}"
            text += (
                ": it covers the symmetry group."
                if bool(dataset.covers_symmetry)
                else ", far from the 0 of an ensemble that covers the symmetry group: the "
                "proposal does not cover it, and ESS/N and k̂ cannot see what it never proposes."
            )
        if dataset.attrs["mixture"]:
            text += f"\n\nq is the flow as a {dataset.attrs['mixture']}."
        return Section(
            title="Free energy",
            how_to_read=(
                "F_q ≥ −ln Z, with equality only when the flow is exact; the histogram of log-weights "
                "is narrow for a good flow, and a long right tail means a few samples dominate Ẑ."
            ),
            figures=[Figure(figure, "Log importance weights of the flow samples.")],
            tables=[Table(table, "Free energy and ln Z (nats)")],
            text=text,
        )
