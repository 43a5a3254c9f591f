"""summary: an invertibility check and per-level statistics of the latents.

A perfect RG flow maps its data onto its prior, so each level's encoded latents have the prior's
spread and tails. These are marginal checks (each latent centred on its own mean, then pooled per
level): they show a level whose latents are too narrow, too wide or too heavy-tailed, not whether
the latents are independent. On the model's own samples they are empty, since encode(decode(z))
gives back the prior draws z, so the statistics need data (or, for fields, the action's samples).
Where the flow pins the field's global symmetry, each field is first turned to the flow's direction
(RunContext.alignment): a field at another phase or sign is one the flow was not trained at, and
its global direction would spread over the finest latents and widen them. The statistics of the
fields as drawn are kept beside (`*_unaligned`): they show how the flow treats the symmetry.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section

from .compute import EMPTY_COMPARISON, finite_latents, level_statistics
from .draw import plot_statistics, summary_section


class Summary(Analysis):
    name = "summary"
    description = "Invertibility check and per-level latent statistics"
    # 3: fields turned to the flow's pinned global direction, as drawn beside; 4: no model_card
    # attribute (the card is the results' `model` group)
    version = "4"
    parameters = {"inputs": Parameter(int, 256, "how many inputs to encode")}
    plots = {"statistics": plot_statistics}

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model = context.model
        x, source = context.target_inputs(context.parameters["inputs"])

        def round_trip(part: torch.Tensor) -> tuple[torch.Tensor, ...]:
            z, logdet_encode = model.encode(part)
            return (z, logdet_encode, *model.decode(z))

        z, logdet_encode, x_again, logdet_decode = context.in_batches(round_trip, x, desc="encode")
        z = finite_latents(z, source)
        alignment = context.alignment()
        if alignment.pinned:
            aligned = context.in_batches(model.encode, context.aligned(x), desc="encode aligned")[0]
            drawn, z = z, finite_latents(aligned, source)
        else:
            drawn = z
        levels = np.arange(model.n_levels)
        means, stds, kurtosis = level_statistics(z, model.latent_level, levels)
        drawn_means, drawn_stds, drawn_kurtosis = level_statistics(
            drawn, model.latent_level, levels
        )
        as_drawn = {"long_name": "the same, fields as drawn (not turned to the flow's direction)"}
        return xr.Dataset(
            {
                "latents": ("level", model.latents_per_level(), {"long_name": "latents per level"}),
                "mean": ("level", means, {"long_name": "mean of the level's latents"}),
                "std": (
                    "level",
                    stds,
                    {"long_name": "pooled std of the level's latents, each about its own mean"},
                ),
                "excess_kurtosis": (
                    "level",
                    kurtosis,
                    {"long_name": "pooled excess kurtosis, each latent about its own mean"},
                ),
                "mean_unaligned": ("level", drawn_means, as_drawn),
                "std_unaligned": ("level", drawn_stds, as_drawn),
                "excess_kurtosis_unaligned": ("level", drawn_kurtosis, as_drawn),
                "max_reconstruction_error": (
                    (),
                    float((x_again - x).abs().max()),
                    {"long_name": "max |decode(encode(x)) - x|"},
                ),
                "max_logdet_residual": (
                    (),
                    float((logdet_encode + logdet_decode).abs().max()),
                    {"long_name": "max |log det encode + log det decode|"},
                ),
            },
            coords={"level": ("level", levels, {"long_name": "RG level (0 = finest)"})},
            attrs={
                "source": source,
                "samples": len(x),
                "prior": model.prior.kind,
                "prior_std": model.prior.std(),
                "prior_excess_kurtosis": model.prior.excess_kurtosis(),
                "empty_comparison": EMPTY_COMPARISON if context.targets_are_model_samples else "",
                **alignment.attrs(),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return summary_section(dataset)
