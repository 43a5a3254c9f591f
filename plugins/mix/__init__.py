"""mix: swap two images' latents level by level, to see which scales each RG level carries.

For images A and B and each cut h = 0…n_levels, the latents on levels ≥ h come from A and the finer
ones (< h) from B; cut 0 decodes to A and cut n_levels to B. If the hierarchy separates scales, the
mixed images keep A's coarse layout and take B's fine detail, as in the RG-Flow paper's face mixing.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section

from .compute import mix_latents, parse_indices
from .draw import mix_section, plot_mixes


class Mix(Analysis):
    name = "mix"
    description = "Decode coarse levels of one image with the fine levels of another"
    version = "1"
    parameters = {
        "images": Parameter(
            str, "0,1,2,3", "input indices; each one and the next form a pair A, B (0,1 then 1,2…)"
        ),
    }
    domains = ("image",)
    plots = {"mixes": plot_mixes}

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model = context.model
        indices = parse_indices(context.parameters["images"])
        x, _, source = context.model_inputs(max(indices) + 1)
        if max(indices) >= len(x):
            raise ValueError(
                f"mix.images asks for input {max(indices)} but there are {len(x)} inputs; "
                f"pick 0…{len(x) - 1}"
            )
        x = x[indices]
        z, _ = model.encode(x)
        level = torch.as_tensor(model.latent_level, device=z.device)
        cuts = range(model.n_levels + 1)
        mixed = torch.stack(
            [
                torch.stack([mix_latents(z[i], z[i + 1], level, h) for h in cuts])
                for i in range(len(indices) - 1)
            ]
        )
        decoded, _ = model.decode(mixed.flatten(0, 1))
        images = model.postprocess(decoded).reshape(mixed.shape).float().cpu().numpy()
        sources = model.postprocess(x)
        reconstructions = model.postprocess(model.decode(z)[0])
        errors = (reconstructions - sources).abs().flatten(1).max(1).values
        return xr.Dataset(
            {
                "images": (
                    ("pair", "cut", "channel", "y", "x"),
                    images,
                    {"long_name": "levels ≥ cut from image A, levels < cut from B", "units": "1"},
                ),
                "sources": (
                    ("source", "channel", "y", "x"),
                    sources.float().cpu().numpy(),
                    {"long_name": "the source images", "units": "1"},
                ),
                "reconstruction_error": (
                    "source",
                    errors.double().cpu().numpy(),
                    {"long_name": "max |decode(encode(image)) − image|"},
                ),
            },
            coords={
                "pair": np.arange(len(indices) - 1),
                "image_a": ("pair", indices[:-1], {"long_name": "input index of image A"}),
                "image_b": ("pair", indices[1:], {"long_name": "input index of image B"}),
                "cut": ("cut", np.arange(model.n_levels + 1), {"long_name": "first level from A"}),
                "source": np.arange(len(indices)),
                "input_index": ("source", indices, {"long_name": "index into the inputs"}),
            },
            attrs={"source": source, "n_levels": model.n_levels},
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return mix_section(dataset)
