"""summary: the model card, an invertibility check, and per-level statistics of the latents.

A perfect RG flow maps data onto its prior: per-level latents with the prior's mean, spread and
tails. Kurtosis far from the prior's says which levels did not learn to factorize.
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

PRIOR_EXCESS_KURTOSIS = {"gaussian": 0.0, "laplace": 3.0}


class Summary(Analysis):
    name = "summary"
    description = "Model card, invertibility check and per-level latent statistics"
    version = "1"
    parameters = {"samples": Parameter(int, 256, "how many inputs to encode")}

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model = context.model
        x, _, source = context.model_inputs(context.parameters["samples"])
        z, logdet_encode = model.encode(x)
        x_again, logdet_decode = model.decode(z)
        z = z.double().cpu().numpy()
        levels = np.arange(model.n_levels)
        per_level = [z[:, model.latent_level == level].ravel() for level in levels]
        return xr.Dataset(
            {
                "latents": ("level", model.latents_per_level(), {"long_name": "latents per level"}),
                "mean": ("level", [values.mean() for values in per_level]),
                "std": ("level", [values.std() for values in per_level]),
                "excess_kurtosis": ("level", [scipy.stats.kurtosis(v) for v in per_level]),
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
                "prior_std": float(model.prior.scale)
                * (2**0.5 if model.prior.kind == "laplace" else 1),
                "prior_excess_kurtosis": PRIOR_EXCESS_KURTOSIS.get(model.prior.kind, float("nan")),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        frame = dataset[["latents", "mean", "std", "excess_kurtosis"]].to_dataframe()
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
            axis.set_title(name.replace("_", " "))
            axis.set_xticks(dataset.level.values)
        axes[0].legend(frameon=False)
        figure.tight_layout()
        error = float(dataset.max_reconstruction_error)
        residual = float(dataset.max_logdet_residual)
        return Section(
            title="Summary",
            how_to_read=(
                "Latents of a well-trained RG flow follow its prior at every level (dashed lines). "
                "Levels whose spread or tails differ from the prior are where the flow fails."
            ),
            figures=[Figure(figure, f"Per-level latent statistics of {dataset.attrs['source']}.")],
            tables=[Table(pd.DataFrame(frame), "Per-level statistics of the encoded inputs")],
            text=(
                f"Invertibility on {dataset.attrs['samples']} inputs: max |decode(encode(x)) − x| = "
                f"{error:.3g}, max log-det residual = {residual:.3g}."
            ),
        )
