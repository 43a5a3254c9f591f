"""How free_energy shows its results, from the stored dataset alone: the histogram of the log
importance weights with −F_q and ln Z marked, a table of F_q and ln Z, and what they say about
the flow (KL divergence, ESS, Pareto k̂, coverage) in words."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.physics import PARETO_K_UNRELIABLE
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def free_energy_section(dataset: xr.Dataset) -> Section:
    """The report section: the log-weights' histogram, the table of F_q and ln Z, and the text."""
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
        figures=[
            Figure(figure_of(plot_weights(dataset)), "Log importance weights of the flow samples.")
        ],
        tables=[Table(table, "Free energy and ln Z (nats)")],
        text=text,
    )


def plot_weights(dataset: xr.Dataset, ax: Axes | None = None) -> Axes:
    """The histogram of the log importance weights ln w = −S − ln q, with −F_q = ⟨ln w⟩, the
    importance-sampled ln Z and (where known) the exact ln Z marked. `ax`: one Axes."""
    exact = float(dataset.log_z_exact)
    axis = axes_grid(ax, figsize=(6.5, 3.4))[0, 0]
    axis.hist(dataset.log_weight.values, bins=60, color="tab:blue", alpha=0.8)
    axis.axvline(-float(dataset.free_energy), color="black", ls=":", label="−F_q = ⟨ln w⟩")
    axis.axvline(float(dataset.log_z), color="tab:orange", label="ln Z, importance sampled")
    if not math.isnan(exact):
        axis.axvline(exact, color="tab:red", ls="--", label="ln Z, exact")
    axis.set_xlabel("ln w = −S(x) − ln q(x)  (nats)")
    axis.set_ylabel("samples")
    axis.set_yscale("log")
    axis.legend(fontsize=8)
    return axis
