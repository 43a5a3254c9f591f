"""mix: swap two images' latents level by level, to see which scales each RG level carries.

For images A and B and each cut h = 0…n_levels, the latents on levels ≥ h come from A and the finer
ones (< h) from B; cut 0 decodes to A and cut n_levels to B. If the hierarchy separates scales, the
mixed images keep A's coarse layout and take B's fine detail, as in the RG-Flow paper's face mixing.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.images import display_image


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
        n_levels = dataset.attrs["n_levels"]
        images = dataset.images.values
        sources = dataset.sources.values
        by_input = dict(zip(dataset.input_index.values.tolist(), sources, strict=True))
        a = np.stack([by_input[i] for i in dataset.image_a.values.tolist()])
        b = np.stack([by_input[i] for i in dataset.image_b.values.tolist()])
        distance_a = np.abs(images - a[:, None]).mean(axis=(0, 2, 3, 4))
        distance_b = np.abs(images - b[:, None]).mean(axis=(0, 2, 3, 4))
        table = pd.DataFrame(
            {
                "cut h": dataset.cut.values,
                "levels from A": [_levels(h, n_levels) for h in dataset.cut.values],
                "levels from B": [_levels(0, h) for h in dataset.cut.values],
                "mean |mix − A|": distance_a,
                "mean |mix − B|": distance_b,
            }
        ).set_index("cut h")
        end_a = float(np.abs(images[:, 0] - a).max())
        end_b = float(np.abs(images[:, -1] - b).max())
        return Section(
            title="Scale mixing",
            how_to_read=(
                "Each row mixes two images: moving right, more of the fine levels come from B "
                "while the coarse levels stay A's. Clean scale separation keeps A's layout and "
                "colours and swaps in B's small details."
            ),
            figures=[
                Figure(
                    _mixing_grid(dataset, a, b),
                    f"Rows: pairs of inputs from {dataset.attrs['source']}. Columns: image A, "
                    "decodes of A's latents on levels ≥ h with B's on levels < h, image B.",
                )
            ],
            tables=[Table(table, "Mean absolute pixel difference of the mixes to A and to B")],
            text=(
                f"Cut 0 (all from A) reproduces A to {end_a:.2g} and cut {n_levels} (all from B) "
                f"reproduces B to {end_b:.2g} (max absolute pixel difference), so the columns "
                "between them differ only by which levels came from which image."
            ),
        )


def parse_indices(text: str) -> list[int]:
    """Input indices from `0,1,2,3`; at least two, since images are mixed in pairs.

    `-p mix.images=0,1` reaches us as the text of a tuple, "(0, 1)", and a TOML list as "[0, 1]".
    """
    try:
        indices = [int(part) for part in text.strip("()[] ").split(",") if part.strip()]
    except ValueError:
        raise ValueError(
            f"mix.images must be whole numbers separated by commas, not {text!r}"
        ) from None
    if len(indices) < 2 or min(indices) < 0:
        raise ValueError(f"mix.images needs two or more input indices ≥ 0, e.g. 0,1; got {text!r}")
    return indices


def mix_latents(
    a: torch.Tensor, b: torch.Tensor, latent_level: torch.Tensor, cut: int
) -> torch.Tensor:
    """A's latents on levels ≥ cut, B's on the finer levels."""
    return torch.where(latent_level >= cut, a, b)


def _levels(start: int, stop: int) -> str:
    if start >= stop:
        return "none"
    return str(start) if stop - start == 1 else f"{start}–{stop - 1}"


def _mixing_grid(dataset: xr.Dataset, a: np.ndarray, b: np.ndarray) -> plt.Figure:
    n_levels = dataset.attrs["n_levels"]
    inner = range(1, n_levels)  # cuts 0 and n_levels are A and B again
    columns = [("A", a), *[(_cut_title(h), dataset.images.values[:, h]) for h in inner], ("B", b)]
    rows = dataset.sizes["pair"]
    figure, axes = plt.subplots(
        rows, len(columns), figsize=(1.35 * len(columns) + 1, 1.35 * rows + 0.8), squeeze=False
    )
    for j, (title, pictures) in enumerate(columns):
        shown = display_image(pictures)
        for i in range(rows):
            axis = axes[i, j]
            axis.imshow(shown[i], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            axis.set_xticks([])
            axis.set_yticks([])
        axes[0, j].set_title(title, fontsize=8)
    for i in range(rows):
        axes[i, 0].set_ylabel(
            f"A = input {int(dataset.image_a[i])}\nB = input {int(dataset.image_b[i])}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=8,
        )
    figure.tight_layout()
    return figure


def _cut_title(h: int) -> str:
    return f"levels ≥ {h} from A\nlevels < {h} from B"
