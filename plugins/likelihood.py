"""likelihood: bits/dim on data, split into per-level prior terms and per-RG-layer log-det terms.

−log q(x) = −Σ_levels log p(z_level) − Σ_layers log|det J_layer| (− the logit map's log-det for
images), so each term says how much of the code length a level or a layer accounts for.

Images are scored in [0, 1] image space, data and model samples alike (the logit's log-det is
taken at each decoded sample too). Quantised data (K levels per channel) are dequantised over
their bins and get log2 K per dimension, the bits a pixel's bin costs; continuous data get none.
Model samples get the 8-bit term of the grid the preprocessing dequantises onto, so that a
model's code length of its own samples reads on the same scale as on its 8-bit training data.
"""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table

MODEL_SAMPLE_LEVELS = 256  # LogitTransform dequantises onto the 8-bit grid, as RG-Flow trains


class Likelihood(Analysis):
    name = "likelihood"
    description = "Bits/dim on data, split by RG level (prior) and RG layer (log-det)"
    version = "2"
    parameters = {
        "inputs": Parameter(int, 256, "how many inputs"),
        "dequantization_draws": Parameter(
            int, 4, "noise draws averaged per image (quantised images only)"
        ),
        "dequantize": Parameter(
            bool, True, "spread quantised pixels over their bins, as RG-Flow trains"
        ),
    }

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model = context.model
        is_image = model.domain == "image"
        levels = quantisation_levels(context)
        dequantize = context.data is not None and levels and context.parameters["dequantize"]
        draws = context.parameters["dequantization_draws"] if dequantize else 1
        dims = math.prod(model.data_shape)
        prior_terms, layer_terms, preprocessing_terms = [], [], []
        for draw in range(draws):
            x, preprocessing_logdet, source = context.model_inputs(
                context.parameters["inputs"], dequantize=dequantize, offset=draw
            )
            z, layer_logdets, layer_levels = context.in_batches(
                model.encode_by_layer, x, desc="encode"
            )
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
        unit, scale = ("bits/dim", 1 / (dims * math.log(2))) if is_image else ("nats/dim", 1 / dims)
        offset = math.log2(levels) if levels else 0.0
        total = (prior.sum(0) + layers.sum(0) + preprocessing) * scale + offset
        if not np.isfinite(total).all():
            bad = int((~np.isfinite(total)).sum())
            raise ValueError(
                f"−log q(x) is not finite for {bad} of {len(total)} inputs ({source}): the model "
                "gives them no density; check that the data are what the model was trained on"
            )
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
                "quantization_levels": levels or 0,
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
        levels = dataset.attrs.get("quantization_levels", 256)
        if dataset.attrs["quantization_offset"]:
            terms[f"{levels} levels a pixel (log2 {levels})"] = float(
                dataset.attrs["quantization_offset"]
            )
        terms["total"] = mean
        table = pd.DataFrame({"term": list(terms), unit: list(terms.values())})
        return Section(
            title="Likelihood",
            how_to_read=(
                f"Mean code length of the data in {unit} (lower is better), split into what each RG "
                "level's latents cost under the prior and what each layer's volume change saves."
            ),
            figures=[Figure(figure, f"Terms of −log q(x) on {dataset.attrs['source']}.")],
            tables=[Table(table, f"The terms add up to the total. {_quantisation_note(dataset)}")],
            text=f"{mean:.4f} ± {float(dataset.mean_total_err):.4f} {unit} on {dataset.sizes['sample']} inputs.",
        )


def quantisation_levels(context: RunContext) -> int | None:
    """Intensity levels per channel of the inputs: the data's (None for continuous data and
    fields), or, for an image model's own samples, the grid its preprocessing dequantises onto."""
    if context.model.domain != "image":
        return None
    if context.data is None:
        return MODEL_SAMPLE_LEVELS
    return context.data.levels


def _quantisation_note(dataset: xr.Dataset) -> str:
    levels = dataset.attrs.get("quantization_levels", 256)
    if not levels:
        return "Continuous inputs: no quantisation term."
    if dataset.attrs["source"] == "model samples":
        return (
            f"Model samples: density in [0, 1] image space plus log2 {levels} for the 8-bit grid "
            "the model was trained to dequantise onto, comparable with bits/dim on 8-bit data."
        )
    return f"Inputs quantised to {levels} levels: the total includes log2 {levels} per dimension."
