"""What free_energy measures, from the flow samples' log-weights ln w = −S − ln q alone: the
variational free energy, the importance-sampled ln Z with its delta-method error, ESS/N and the
Pareto k̂ of the weights, the proposal's symmetry coverage, and the exact ln Z where it is known."""

from __future__ import annotations

import math

import numpy as np
import torch
import xarray as xr
from scipy.special import logsumexp

from rginspect.physics import (
    PARETO_K_UNRELIABLE,
    Action,
    IsingAction,
    effective_sample_fraction,
    ising_log_z,
    ising_relaxation_log_z_offset,
    pareto_k,
)
from rginspect.physics.symmetry import mean_resultant_length, pins_symmetry


def exact_log_z(action: Action) -> float:
    """ln Z of the action where it is known exactly (the Ising relaxation: Kaufman's ln Z_Ising
    plus the Hubbard–Stratonovich offset), else NaN."""
    if isinstance(action, IsingAction):
        return ising_log_z(action.L, action.T) + ising_relaxation_log_z_offset(action.L, action.T)
    return math.nan


def weight_dataset(
    log_w: np.ndarray, x: torch.Tensor, *, n_sites: int, harmonic: int, exact: float
) -> xr.Dataset:
    """The free energy and ln Z the log-weights `log_w` of the fields `x` give, per sample and
    per site, with how far the weights can be trusted and whether the fields' global phase (at
    the proposal's `harmonic`) covers the symmetry group."""
    n = len(log_w)
    ess = effective_sample_fraction(log_w) * n
    log_z = float(logsumexp(log_w) - math.log(n))
    nats = {"units": "nats"}
    resultant, covers = math.nan, True
    if x.shape[1] in (1, 2):
        resultant = mean_resultant_length(x, harmonic)
        covers = not pins_symmetry(resultant, n, x.shape[1])
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
    )
