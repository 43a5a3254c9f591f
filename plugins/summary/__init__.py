"""summary: the model card, an invertibility check, and per-level statistics of the latents.

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

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.stats
import torch
import xarray as xr

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table

EMPTY_COMPARISON = (
    "these inputs are the model's own samples: encoding them gives back prior draws "
    "(encode(decode(z)) = z), so the latent statistics compare the prior with itself"
)


class Summary(Analysis):
    name = "summary"
    description = "Model card, invertibility check and per-level latent statistics"
    version = "3"  # 3: fields turned to the flow's pinned global direction, as drawn beside
    parameters = {"inputs": Parameter(int, 256, "how many inputs to encode")}

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
                "model_card": json.dumps(model.info(), default=str),
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
        aligned = bool(dataset.attrs.get("aligned", 0))
        columns = ["latents", "mean", "std", "excess_kurtosis"]
        if aligned:
            columns += ["std_unaligned", "excess_kurtosis_unaligned"]
        frame = dataset[columns].to_dataframe()
        figure, axes = plt.subplots(1, 2, figsize=(8, 3))
        for axis, name, prior in [
            (axes[0], "std", dataset.attrs["prior_std"]),
            (axes[1], "excess_kurtosis", dataset.attrs["prior_excess_kurtosis"]),
        ]:
            axis.bar(dataset.level, dataset[name], color="tab:blue")
            axis.axhline(
                prior, color="black", linestyle="--", label=f"{dataset.attrs['prior']} prior"
            )
            axis.set_xlabel("RG level (0 = finest)")
            axis.set_title(f"pooled {name.replace('_', ' ')}")
            axis.set_xticks(dataset.level.values)
        axes[0].legend(frameon=False)
        figure.tight_layout()
        error = float(dataset.max_reconstruction_error)
        residual = float(dataset.max_logdet_residual)
        empty = dataset.attrs.get("empty_comparison", "")
        text = (
            f"Invertibility on {dataset.attrs['samples']} inputs: max |decode(encode(x)) − x| = "
            f"{error:.3g}, max log-det residual = {residual:.3g}."
        )
        if "alignment" in dataset.attrs:
            text += f" Latent statistics: {dataset.attrs['alignment']}"
            text += " (the columns *_unaligned: as drawn)." if aligned else "."
        if empty:
            text += (
                f"\n\nNo test of the latents here: {empty}. Run with --data to compare the "
                "encoded data with the prior."
            )
        return Section(
            title="Summary",
            how_to_read=(
                "Encoded data of a well-trained RG flow have the prior's spread and tails at every "
                "level (dashed lines); a level that differs is where the flow misfits. A marginal "
                "check: it cannot show whether the latents are independent."
            ),
            figures=[Figure(figure, f"Per-level latent statistics of {dataset.attrs['source']}.")],
            tables=[
                Table(
                    pd.DataFrame(frame),
                    "Per-level statistics of the encoded inputs (std and kurtosis pooled over the "
                    "level after centring each latent on its own mean)",
                )
            ],
            text=text,
        )


def finite_latents(z: torch.Tensor, source: str) -> np.ndarray:
    """The latents as float64 numpy, refused with a reason if any is NaN or Inf."""
    z = z.double().cpu().numpy()
    if not np.isfinite(z).all():
        bad = int((~np.isfinite(z)).reshape(len(z), -1).any(1).sum())
        raise ValueError(
            f"encoding gives NaN/Inf latents for {bad} of {len(z)} inputs ({source}); "
            "check that the data are what the model was trained on"
        )
    return z


def level_statistics(
    z: np.ndarray, latent_level: np.ndarray, levels: np.ndarray
) -> tuple[list[float], list[float], list[float]]:
    """Per level: mean of its latents, and std and excess kurtosis pooled after centring each
    latent on its own mean."""
    centred = z - z.mean(axis=0)  # each latent about its own mean, before pooling a level
    pooled = [centred[:, latent_level == level].ravel() for level in levels]
    return (
        [float(z[:, latent_level == level].mean()) for level in levels],
        [float(values.std()) for values in pooled],
        [float(scipy.stats.kurtosis(values)) for values in pooled],
    )
