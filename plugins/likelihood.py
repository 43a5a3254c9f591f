"""likelihood: bits/dim on data, split into per-level prior terms and per-RG-layer log-det terms.

−log q(x) = −Σ_levels log p(z_level) − Σ_layers log|det J_layer| (− the logit map's log-det for
images), so each term says how much of the code length a level or a layer accounts for.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table


class Likelihood(Analysis):
    name = "likelihood"
    description = "Bits/dim on data, split by RG level (prior) and RG layer (log-det)"
    version = "1"
    parameters = {
        "samples": Parameter(int, 256, "how many inputs"),
        "dequantization_draws": Parameter(int, 4, "noise draws averaged per image (images only)"),
        "dequantize": Parameter(bool, True, "add uniform noise to 8-bit images, as RG-Flow does"),
    }

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model = context.model
        is_image = model.domain == "image"
        dequantize = is_image and context.parameters["dequantize"]
        draws = context.parameters["dequantization_draws"] if dequantize else 1
        dims = math.prod(model.data_shape)
        prior_terms, layer_terms, preprocessing_terms = [], [], []
        for draw in range(draws):
            x, preprocessing_logdet, source = context.model_inputs(
                context.parameters["samples"], dequantize=dequantize, offset=draw
            )
            z, layer_logdets, layer_levels = model.encode_by_layer(x)
            log_density = model.prior.log_density(z).double().cpu().numpy()
            prior_terms.append(
                [
                    -log_density[:, model.latent_level == level].sum(1)
                    for level in range(model.n_levels)
                ]
            )
            layer_terms.append(-layer_logdets.double().cpu().numpy().T)
            preprocessing_terms.append(-preprocessing_logdet.double().cpu().numpy())
        # nats per sample, averaged over the dequantization draws
        prior = np.mean(prior_terms, axis=0)  # (level, sample)
        layers = np.mean(layer_terms, axis=0)  # (layer, sample)
        preprocessing = np.mean(preprocessing_terms, axis=0)  # (sample,)
        unit, scale, offset = (
            ("bits/dim", 1 / (dims * math.log(2)), 8.0) if is_image else ("nats/dim", 1 / dims, 0.0)
        )
        total = (prior.sum(0) + layers.sum(0) + preprocessing) * scale + offset
        return xr.Dataset(
            {
                "total": ("sample", total, {"units": unit, "long_name": "−log q(x) per dimension"}),
                "mean_total": ((), total.mean(), {"units": unit, "long_name": "mean −log q(x)"}),
                "mean_total_err": (
                    (),
                    total.std(ddof=1) / np.sqrt(len(total)) if len(total) > 1 else np.nan,
                    {"units": unit, "long_name": "standard error of mean_total"},
                ),
                "prior_term": ("level", prior.mean(1) * scale, {"units": unit}),
                "logdet_term": ("layer", layers.mean(1) * scale, {"units": unit}),
                "preprocessing_term": ((), preprocessing.mean() * scale, {"units": unit}),
            },
            coords={
                "level": np.arange(model.n_levels),
                "layer": np.arange(len(layer_levels)),
                "layer_level": ("layer", layer_levels, {"long_name": "RG level of the layer"}),
            },
            attrs={
                "unit": unit,
                "source": source,
                "dequantization_draws": draws,
                "quantization_offset": offset,
            },  # fmt: skip
        )

    def render(self, dataset: xr.Dataset) -> Section:
        unit = dataset.attrs["unit"]
        figure, axes = plt.subplots(1, 2, figsize=(9, 3))
        axes[0].bar(dataset.level, dataset.prior_term, color="tab:blue")
        axes[0].set_xlabel("RG level (0 = finest)")
        axes[0].set_xticks(dataset.level.values)
        axes[0].set_title(f"prior term ({unit})")
        axes[1].bar(dataset.layer, dataset.logdet_term, color="tab:orange")
        axes[1].set_xlabel("RG layer (encode order)")
        axes[1].set_xticks(dataset.layer.values)
        axes[1].set_title(f"log-det term ({unit})")
        figure.tight_layout()
        mean = float(dataset.mean_total)
        terms = {
            "prior (all levels)": float(dataset.prior_term.sum()),
            "log-det (all layers)": float(dataset.logdet_term.sum()),
            "preprocessing": float(dataset.preprocessing_term),
        }
        if dataset.attrs["quantization_offset"]:
            terms["8-bit pixels (log2 256)"] = float(dataset.attrs["quantization_offset"])
        terms["total"] = mean
        table = pd.DataFrame({"term": list(terms), unit: list(terms.values())})
        return Section(
            title="Likelihood",
            how_to_read=(
                f"Mean code length of the data in {unit} (lower is better), split into what each RG "
                "level's latents cost under the prior and what each layer's volume change saves."
            ),
            figures=[Figure(figure, f"Terms of −log q(x) on {dataset.attrs['source']}.")],
            tables=[
                Table(table, "The terms add up to the total (bits/dim includes 8 for quantization)")
            ],
            text=f"{mean:.4f} ± {float(dataset.mean_total_err):.4f} {unit} on {dataset.sizes['sample']} inputs.",
        )
