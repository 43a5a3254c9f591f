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

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section

from .compute import quantisation_levels
from .draw import likelihood_section, plot_terms


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
    plots = {"terms": plot_terms}

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
        return likelihood_section(dataset)
