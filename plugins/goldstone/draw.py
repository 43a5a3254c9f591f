"""How goldstone shows its results, from the stored dataset alone: the global phase against the
best-locked latent phase, every candidate's locking against the finest-level baseline, the table
of candidates, and the verdict in words."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def goldstone_section(dataset: xr.Dataset) -> Section:
    """The report section: the locking figure, the table of candidates, and the verdict."""
    best = int(np.argmax(dataset.phase_locking.values))
    baseline = float(dataset.baseline_locking)
    figure = figure_of(plot_phase_locking(dataset))
    table = pd.DataFrame(
        {
            "latent phase": dataset.candidate.values,
            "phase locking": dataset.phase_locking.values,
            "concentration, aligned fields": dataset.aligned_concentration.values,
        }
    )
    locking = float(dataset.phase_locking[best])
    verdict = (
        "the top level carries the global phase"
        if locking > baseline + 3 * dataset.attrs["noise_level"]
        else "no top-level latent tracks the global phase more than a finest-level one does"
    )
    concentration = float(dataset.phase_concentration)
    if concentration > 0.5:
        verdict += (
            f" Note: the samples' global phase is concentrated (|⟨exp iθ⟩| = {concentration:.2f};"
            " 0 for an O(2)-symmetric ensemble): these fields barely vary it, so there is "
            "little global phase for any latent to carry"
        )
    return Section(
        title="Goldstone mode",
        how_to_read=(
            "Whether the coarsest latents encode the O(2) field's global phase θ = arg Σφ: "
            "phase locking 1 means a latent's phase fixes θ; the dashed line is what a single "
            "finest-level site gives."
        ),
        figures=[
            Figure(figure, f"θ against the best-locked latent phase; {dataset.attrs['source']}.")
        ],
        tables=[Table(table, "Association of each top-level latent phase with θ")],
        text=(
            f"Best phase locking {locking:.3f} ({dataset.candidate.values[best]}) against "
            f"{baseline:.3f} for a finest-level latent: {verdict}. Measured on "
            f"{dataset.sizes['sample']} {dataset.attrs['source']}, worth "
            f"{dataset.attrs['effective_samples']:.0f} independent samples of the global "
            f"phase (noise level 1/√n_eff = {dataset.attrs['noise_level']:.3f}; the top level "
            "carries the phase when its locking exceeds the baseline by 3 noise levels). "
            f"The locking is read on the fields as drawn; {dataset.attrs['alignment']}"
            + (
                " (for the concentration column only): fields at other phases are ones the "
                "flow was not trained at."
                if dataset.attrs["aligned"]
                else "."
            )
        ),
    )


def plot_phase_locking(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """The global phase θ against the phase of the best-locked candidate (a scatter of the
    samples), and every candidate's locking as bars beside the finest-level median (dashed).
    `ax`: two Axes."""
    best = int(np.argmax(dataset.phase_locking.values))
    axes = axes_grid(ax, 1, 2, figsize=(9, 3.6))[0]
    axes[0].scatter(
        dataset.latent_phase[best], dataset.global_phase, s=2, alpha=0.3, color="tab:blue"
    )
    axes[0].set_xlabel(f"phase ψ of {dataset.candidate.values[best]}")
    axes[0].set_ylabel("global phase θ = arg Σφ")
    axes[1].bar(range(dataset.sizes["candidate"]), dataset.phase_locking, color="tab:orange")
    baseline = float(dataset.baseline_locking)
    axes[1].axhline(baseline, ls="--", color="gray", label="finest-level median")
    axes[1].set_xticks(range(dataset.sizes["candidate"]))
    axes[1].set_xticklabels(dataset.candidate.values, rotation=45, ha="right", fontsize=7)
    axes[1].set_ylabel("phase locking")
    axes[1].legend(fontsize=8)
    return axes
