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
import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr
from PIL import Image

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.atomic import atomic_path
from rginspect.model import RGFlowModel
from rginspect.nn.priors import Prior

LATENT_FORMAT = "level:channel:row:col"
GIF_FOLDER = "traverse"
GIF_MIN_SIDE = 128  # GIF frames are enlarged (nearest pixel) to at least this many pixels a side
GIF_FRAME_MS = 200


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
        steps = dataset.sizes["step"]
        figures = []
        for level in np.unique(dataset.level.values):
            subset = dataset.isel(latent=dataset.level.values == level)
            caption = (
                f"Level {level}, read like the grid of level {dataset.level.values.min()} above."
                if figures
                else f"Level {level}: each row sweeps one latent over {steps} prior quantiles, "
                "every other latent held at the source image's code. Orange frame: the step "
                "nearest the latent's own value z₀. Last column: the largest change of each "
                "pixel from the middle step (summed over channels)."
            )
            figures.append(
                Figure(_level_grid(subset, int(level), dataset.attrs["n_levels"]), caption)
            )
        pictures = dataset.images.values
        swing = np.ptp(pictures, axis=1).max(axis=(1, 2, 3))
        table = pd.DataFrame(
            {
                "level": dataset.level.values,
                "latent (channel, row, col)": [
                    f"({c}, {r}, {q})"
                    for c, r, q in zip(
                        dataset.latent_channel.values,
                        dataset.latent_row.values,
                        dataset.latent_col.values,
                        strict=True,
                    )
                ],
                "RF mass": dataset.rf_mass.values,
                "data spread (prior σ)": dataset.data_spread.values,
                "z₀": dataset.encoded_value.values,
                "largest pixel range over the sweep": swing,
            }
        ).set_index("level")
        span = dataset.attrs["span"]
        reach = float(np.abs(dataset.value).max()) / dataset.attrs["prior_std"]
        gifs = json.loads(dataset.attrs["gif_files"])
        text = (
            f"Latents: {dataset.attrs['selection']}. Values are the {dataset.attrs['prior']} "
            f"prior's quantiles at the probabilities a Gaussian gives to −{span:g}σ…+{span:g}σ, "
            f"which for this prior reach ±{reach:.2f} of its standard deviations. The other "
            f"latents come from input {dataset.attrs['image']} of {dataset.attrs['source']}; "
            f"decoding its code reproduces it to {float(dataset.reconstruction_error):.2g}."
        )
        if gifs:
            text += (
                f"\n\nAn animated GIF per latent is in the folder "
                f"{dataset.attrs['gif_folder']}/ beside results.nc: {', '.join(gifs)}."
            )
        return Section(
            title="Latent traversals",
            how_to_read=(
                "Each row changes one latent and nothing else, so the row shows what it draws: "
                "fine levels should move one small patch, coarse levels the whole image."
            ),
            figures=figures,
            tables=[Table(table, "The swept latents and why they were chosen")],
            text=text,
        )


def parse_latents(text: str, model: RGFlowModel) -> list[int]:
    """Flat indices of `level:channel:row:col,...`; the level must be the latent's, as a check."""
    channels, rows, cols = model.data_shape
    chosen = []
    for entry in filter(None, (part.strip() for part in text.split(","))):
        try:
            level, channel, row, col = (int(part) for part in entry.split(":"))
        except ValueError:
            raise ValueError(
                f"traverse.latents entry {entry!r} is not {LATENT_FORMAT}, e.g. 3:0:0:0"
            ) from None
        if not (0 <= channel < channels and 0 <= row < rows and 0 <= col < cols):
            raise ValueError(
                f"traverse.latents entry {entry!r} is outside the latents: "
                f"channel 0…{channels - 1}, row 0…{rows - 1}, col 0…{cols - 1}"
            )
        actual = int(model.latent_level[channel, row, col])
        if level != actual:
            raise ValueError(
                f"traverse.latents entry {entry!r}: latent ({channel}, {row}, {col}) is on level "
                f"{actual}, not {level}; write {actual}:{channel}:{row}:{col}"
            )
        chosen.append(int(np.ravel_multi_index((channel, row, col), model.data_shape)))
    if not chosen:
        raise ValueError(f"traverse.latents names no latent; write {LATENT_FORMAT},...")
    return list(dict.fromkeys(chosen))


def rf_mass_map(receptive: xr.Dataset, data_shape: tuple[int, int, int]) -> np.ndarray:
    """The receptive analysis' rf_mass laid out as the latents (NaN where it has none)."""
    if "rf_mass" not in receptive:
        raise ValueError("the receptive results have no rf_mass; rerun the receptive analysis")
    rf = receptive["rf_mass"]
    mass = np.full(data_shape, np.nan)
    mass[rf["channel"].values, rf["row"].values, rf["col"].values] = rf.values
    return mass


def strongest_latents(latent_level: np.ndarray, score: np.ndarray, per_level: int) -> list[int]:
    """Flat indices of the `per_level` highest finite scores of each level, finest level first."""
    levels, scores = latent_level.ravel(), score.ravel()
    chosen = []
    for level in range(int(levels.max()) + 1):
        candidates = np.flatnonzero((levels == level) & np.isfinite(scores))
        ranked = candidates[np.argsort(-scores[candidates], kind="stable")]
        chosen += ranked[:per_level].tolist()
    return chosen


def quantile_spread(z: np.ndarray, prior: Prior) -> np.ndarray:
    """Each latent's interquartile range over the inputs (axis 0) divided by the prior's: 1 for
    latents distributed as the prior, whatever its shape."""
    low, high = np.percentile(z, [25, 75], axis=0)
    quartiles = prior.quantile(torch.tensor([0.25, 0.75]).to(prior.scale)).double()
    return (high - low) / float(quartiles[1] - quartiles[0])


def traversal_values(prior: Prior, steps: int, span: float) -> tuple[np.ndarray, ...]:
    """(σ, Φ(σ), prior quantile at Φ(σ)) for σ evenly spaced over ±span."""
    sigma = torch.linspace(-span, span, steps, dtype=torch.float64)
    probability = torch.special.ndtr(sigma)
    try:
        value = prior.quantile(probability.to(prior.scale.device)).double().cpu()
    except NotImplementedError:
        raise ValueError(
            f"traverse sweeps prior quantiles, but this model's {prior.kind!r} prior has no "
            "quantile(); give the Prior a quantile method (its inverse CDF)"
        ) from None
    return sigma.numpy(), probability.numpy(), value.numpy()


def traverse_latent(
    model: RGFlowModel, code: torch.Tensor, latent: int, values: torch.Tensor
) -> torch.Tensor:
    """Images in [0, 1], one per value: `code` (C, L, L) decoded with latent `latent` set to it.

    One decode per value: batched matrix products may round rows differently, and decoding each
    image alone keeps every pixel outside the latent's cone bitwise unchanged.
    """
    images = []
    for value in values:
        changed = code.clone()
        changed.view(-1)[latent] = value
        decoded, _ = model.decode(changed[None])
        images.append(model.postprocess(decoded)[0])
    return torch.stack(images)


def display_image(images: np.ndarray) -> np.ndarray:
    """(..., C, H, W) in [0, 1] -> (..., H, W, 3) for colour, (..., H, W) otherwise (channel mean)."""
    moved = np.moveaxis(np.asarray(images), -3, -1)
    return moved if moved.shape[-1] == 3 else moved.mean(-1)


def write_gif(path: Path, frames: np.ndarray) -> None:
    """A looping ping-pong GIF of (steps, C, H, W) frames in [0, 1], enlarged to be visible."""
    pictures = np.round(display_image(frames) * 255).astype(np.uint8)
    scale = max(1, math.ceil(GIF_MIN_SIDE / pictures.shape[1]))
    pictures = pictures.repeat(scale, axis=1).repeat(scale, axis=2)
    sweep = [Image.fromarray(picture) for picture in pictures]
    there_and_back = sweep + sweep[-2:0:-1]
    with atomic_path(path) as temporary:
        there_and_back[0].save(
            temporary,
            save_all=True,
            append_images=there_and_back[1:],
            duration=GIF_FRAME_MS,
            loop=0,
        )


def _level_grid(subset: xr.Dataset, level: int, n_levels: int) -> plt.Figure:
    """Rows = latents, columns = steps, and a last column of where the sweep changes pixels."""
    rows, steps = subset.sizes["latent"], subset.sizes["step"]
    figure, axes = plt.subplots(
        rows,
        steps + 1,
        figsize=(0.95 * (steps + 1) + 1.5, 0.95 * rows + 0.9),
        squeeze=False,
        gridspec_kw={"width_ratios": [1] * steps + [1.0]},
    )
    images = subset.images.values
    pictures = display_image(images)
    change = np.abs(images - images[:, steps // 2 : steps // 2 + 1]).sum(2).max(1)
    values = subset.value.values
    for i in range(rows):
        nearest = int(np.argmin(np.abs(values - float(subset.encoded_value[i]))))
        for j in range(steps):
            axes[i, j].imshow(pictures[i, j], cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            if j == nearest:
                for spine in axes[i, j].spines.values():
                    spine.set(color="tab:orange", linewidth=2.5)
        axes[i, steps].imshow(
            change[i], cmap="magma", vmin=0, vmax=max(float(change[i].max()), 1e-6)
        )
        axes[i, steps].set_xlabel(f"max {change[i].max():.2f}", fontsize=7)
        axes[i, 0].set_ylabel(
            f"({int(subset.latent_channel[i])}, {int(subset.latent_row[i])}, "
            f"{int(subset.latent_col[i])})\nz₀ = {float(subset.encoded_value[i]):+.2f}",
            rotation=0,
            ha="right",
            va="center",
            fontsize=8,
        )
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    for j in range(steps):
        sigma = float(subset.sigma[j])
        axes[0, j].set_title(f"{sigma:+.1f}σ" if round(sigma, 1) else "0σ", fontsize=8)
        axes[-1, j].set_xlabel(f"z = {round(values[j], 2) + 0.0:+.2f}", fontsize=8)
    axes[0, steps].set_title("where it acts", fontsize=8)
    name = "finest" if level == 0 else "coarsest" if level == n_levels - 1 else ""
    figure.suptitle(
        f"Level {level}{f' ({name})' if name else ''}: latent (channel, row, col) × prior quantile",
        fontsize=9,
    )
    figure.tight_layout()
    return figure
