"""traverse: what one latent draws, seen by sweeping it over its prior with every other latent fixed.

The other latents keep their values from one encoded image. The sweep visits the prior quantiles at
Φ(−span … +span), the probabilities a Gaussian gives to ±span standard deviations, so Gaussian and
Laplace priors are swept over the same probability range (for a Laplace prior ±2.5 "σ" reaches
±3.1 of its standard deviations, because its tails are heavier). A latent can move pixels only inside
its structural causal cone, so the strongest latents of each level show what that level draws.

"Strongest" is receptive-field mass × the latent's spread over the encoded inputs (the mean pixel
change a typical move of it makes in the data). The spread is a standard deviation in the sweep's
units, read from quantiles as the sweep is: the data's interquartile range over the prior's, times
the prior's standard deviation. Unlike the sample standard deviation it is not set by a few outlier
images, and on 1000 inputs disjoint input sets pick nearly the same latents (on 8 the ranking is
noise: many latents of a level are nearly equally strong).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section

from .compute import (
    LATENT_FORMAT,
    parse_latents,
    quantile_spread,
    rf_mass_map,
    strongest_latents,
    traversal_values,
    traverse_latent,
    write_gif,
)
from .draw import plot_sweeps, traverse_section

GIF_FOLDER = "traverse"


class Traverse(Analysis):
    name = "traverse"
    description = "Sweep single latents over prior quantiles, all others fixed at an encoded image"
    version = "2"
    parameters = {
        "latents": Parameter(
            str, "", f"{LATENT_FORMAT},... to sweep; empty picks the strongest of each level"
        ),
        "per_level": Parameter(int, 3, "latents picked per level when `latents` is empty"),
        "steps": Parameter(int, 7, "values per latent"),
        "span": Parameter(
            float, 2.5, "sweep the prior quantiles Φ(−span)…Φ(+span): ±span σ for a Gaussian"
        ),
        "image": Parameter(int, 0, "index of the input whose code holds the other latents"),
        "inputs": Parameter(int, 1000, "inputs encoded to rank the latents by their spread"),
    }
    domains = ("image",)
    requires = ("receptive",)
    plots = {"sweeps": plot_sweeps}

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        steps, span, image = settings["steps"], settings["span"], settings["image"]
        if steps < 2 or not span > 0:
            raise ValueError(f"traverse needs steps ≥ 2 and span > 0, not {steps} and {span}")
        x, _, source = context.model_inputs(max(settings["inputs"], image + 1))
        if not 0 <= image < len(x):
            raise ValueError(
                f"traverse.image={image} but there are {len(x)} inputs; pick 0…{len(x) - 1}"
            )
        z, _ = context.in_batches(model.encode, x, desc="encode")
        sigma, probability, value = traversal_values(model.prior, steps, span)
        prior_std = model.prior.std()
        spread = quantile_spread(z.double().cpu().numpy(), model.prior) * prior_std
        rf_mass = (
            rf_mass_map(context.results["receptive"], model.data_shape)
            if "receptive" in context.results
            else np.full(model.data_shape, np.nan)
        )
        if settings["latents"].strip():
            chosen, selection = parse_latents(settings["latents"], model), "given"
        else:
            chosen = strongest_latents(model.latent_level, rf_mass * spread, settings["per_level"])
            selection = (
                f"the {settings['per_level']} per level with the largest receptive-field mass × "
                f"spread (interquartile range in prior σ) over {len(x)} inputs"
            )
        if not chosen:
            raise ValueError(
                "no latent to sweep: run the receptive analysis (its rf_mass picks them), "
                "raise traverse.per_level, or name them with traverse.latents"
            )
        code = z[image]
        values = torch.as_tensor(value, dtype=code.dtype, device=code.device)
        sweeps = context.progress(chosen, desc="traverse: latents")
        images = torch.stack([traverse_latent(model, code, i, values) for i in sweeps])
        images = images.float().cpu().numpy()
        source_image = model.postprocess(x[image : image + 1])[0]
        reconstruction = model.postprocess(model.decode(code[None])[0])[0]
        channel, row, col = np.unravel_index(chosen, model.data_shape)
        level = model.latent_level.ravel()[chosen]
        gif_files = []
        if context.out_dir is not None:
            folder = Path(context.out_dir) / GIF_FOLDER
            folder.mkdir(parents=True, exist_ok=True)
            for frames, *where in zip(images, level, channel, row, col, strict=True):
                name = "latent_l{}_c{}_r{}_q{}.gif".format(*where)
                write_gif(folder / name, frames)
                gif_files.append(name)
        flat = code.double().cpu().numpy().ravel()
        return xr.Dataset(
            {
                "images": (
                    ("latent", "step", "channel", "y", "x"),
                    images,
                    {"long_name": "decoded image with one latent swept", "units": "1"},
                ),
                "source_image": (("channel", "y", "x"), source_image.float().cpu().numpy()),
                "encoded_value": (
                    "latent",
                    flat[chosen],
                    {"long_name": "the latent's value in the source image's code"},
                ),
                "rf_mass": (
                    "latent",
                    rf_mass.ravel()[chosen],
                    {"long_name": "receptive-field mass"},
                ),
                "data_spread": (
                    "latent",
                    spread.ravel()[chosen] / prior_std,
                    {
                        "long_name": f"interquartile range over {len(x)} inputs / the prior's",
                        "units": "prior standard deviations",
                    },
                ),
                "reconstruction_error": (
                    (),
                    float((reconstruction - source_image).abs().max()),
                    {"long_name": "max |decode(encode(image)) − image|"},
                ),
            },
            coords={
                "latent": ("latent", np.asarray(chosen), {"long_name": "flat latent index"}),
                "level": ("latent", level, {"long_name": "RG level (0 = finest)"}),
                "latent_channel": ("latent", channel, {"long_name": "channel of the latent"}),
                "latent_row": ("latent", row, {"long_name": "row of the latent"}),
                "latent_col": ("latent", col, {"long_name": "column of the latent"}),
                "step": np.arange(steps),
                "sigma": ("step", sigma, {"long_name": "Gaussian-equivalent σ of the quantile"}),
                "probability": ("step", probability, {"long_name": "prior CDF at the value"}),
                "value": ("step", value, {"long_name": "latent value"}),
            },
            attrs={
                "source": source,
                "image": image,
                "span": span,
                "prior": model.prior.kind,
                "prior_std": prior_std,
                "n_levels": model.n_levels,
                "selection": selection,
                "gif_folder": GIF_FOLDER,
                "gif_files": json.dumps(gif_files),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return traverse_section(dataset)
