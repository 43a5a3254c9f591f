"""goldstone: does the flow store the O(2) field's global phase in its top-level latents?

Measured on fields of the target ensemble (the data, else HMC samples of the action), whose global
phase is uniform, not on the flow's own samples, which a reverse-KL flow often pins to one phase.

A field with a U(1) symmetry has a soft global mode, the phase θ = arg Σ_x φ_x. An RG flow that
learned the symmetry should carry it at the coarsest level, where one latent pair sees the whole
lattice. Measured as the phase locking of θ with the phase ψ of each top-level latent pair, and
of the two leading principal directions of all top-level latents together: |⟨exp i(θ − ψ)⟩| and
|⟨exp i(θ + ψ)⟩| (ψ may wind either way), 1 when θ = ±ψ + const. (A circular correlation such as
Jammalamadaka–SenGupta's centres each phase on its circular mean, which a uniform phase does not
have: the statistic then depends on noise in that mean, so it is not used.)
Every site is part of Σφ, so any latent pair locks a little in a disordered field; the baseline is
the median locking of the finest-level pairs, which sit below the RG and see one site each.

The locking needs the fields as drawn (aligned to one direction, θ would not vary): it measures how
the flow treats the symmetry. Where the flow pins the global phase (RunContext.alignment), the same
candidates are also read on the fields turned to the flow's direction, as the other analyses of the
latents read them: their phase concentration |⟨exp iψ⟩| there is 1 for a latent whose phase only
follows θ, and the report says that the fields at other phases are ones the flow was not trained at.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section
from rginspect.model import RGFlowModel

from .compute import candidate_phases, phase_locking
from .draw import goldstone_section, plot_phase_locking


class Goldstone(Analysis):
    name = "goldstone"
    description = "Phase locking of the global O(2) phase with the top-level latents' phase"
    # 3: noise from the phase's effective samples; 4: no circular correlation; 5: arviz's ESS;
    # 6: the flow's pinning recorded, the candidates' phase concentration on aligned fields
    version = "6"
    parameters = {"inputs": Parameter(int, 4096, "fields to encode (data, else HMC samples)")}
    domains = ("field",)
    plots = {"phase_locking": plot_phase_locking}

    def applies_to(self, model: RGFlowModel) -> str | None:
        reason = super().applies_to(model)
        if reason is None and model.data_shape[0] != 2:
            reason = (
                f"it needs an O(2) field with 2 components; this model's field has "
                f"{model.data_shape[0]}"
            )
        return reason

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model = context.model
        x, z, source = context.target_latents(context.parameters["inputs"])
        z = z.double().cpu().numpy()
        fields = x.double().cpu().numpy()
        total = fields.sum(axis=(2, 3))
        global_phase = np.arctan2(total[:, 1], total[:, 0])
        top = model.latent_level[0] == model.n_levels - 1
        rows, cols = np.nonzero(top)
        candidates = candidate_phases(z, rows, cols)
        alignment = context.alignment()
        if alignment.pinned:
            _, aligned, _ = context.target_latents(context.parameters["inputs"], aligned=True)
            aligned_phases = candidate_phases(aligned.double().cpu().numpy(), rows, cols)
        else:
            aligned_phases = candidates
        names = [f"site ({r},{c})" for r, c in zip(rows, cols, strict=True)]
        names.append("top-level principal plane")
        finest = model.latent_level[0] == 0
        finest_phases = np.arctan2(z[:, 1][:, finest], z[:, 0][:, finest]).T
        baseline = np.median([max(phase_locking(global_phase, psi)) for psi in finest_phases])
        # HMC chains move the global phase slowly: its noise is that of its effective samples
        chains = context.target_chains(context.parameters["inputs"])
        effective = (
            len(z) if chains is None else len(z) / max(chains.global_autocorrelation_times()[1], 1)
        )
        return xr.Dataset(
            {
                "phase_locking": (
                    "candidate",
                    [max(phase_locking(global_phase, psi)) for psi in candidates],
                    {"long_name": "max over ± of |⟨exp i(θ ∓ ψ)⟩|"},
                ),
                "top_locking": (
                    (),
                    max(max(phase_locking(global_phase, psi)) for psi in candidates),
                    {"long_name": "best phase locking of a top-level latent phase"},
                ),
                "baseline_locking": (
                    (),
                    baseline,
                    {"long_name": "median phase locking of the finest-level latent pairs"},
                ),
                "phase_concentration": (
                    (),
                    float(np.abs(np.mean(np.exp(1j * global_phase)))),
                    {"long_name": "|⟨exp iθ⟩|: 0 for a uniform global phase, 1 for a fixed one"},
                ),
                "aligned_concentration": (
                    "candidate",
                    np.abs(np.exp(1j * aligned_phases).mean(1)),
                    {
                        "long_name": "|⟨exp iψ⟩| on the fields turned to the flow's direction "
                        "(as drawn where the flow does not pin it)"
                    },
                ),
                "global_phase": ("sample", global_phase, {"units": "rad"}),
                "latent_phase": (("candidate", "sample"), candidates, {"units": "rad"}),
            },
            coords={"candidate": names, "sample": np.arange(len(z))},
            attrs={
                "source": source,
                "effective_samples": float(effective),
                "noise_level": float(1 / np.sqrt(effective)),
                **alignment.attrs(),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return goldstone_section(dataset)
