"""What traverse measures: which latents to sweep (named, or the strongest of each level), the
prior quantiles they visit, the decoded sweeps, and the animated GIF of each."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from PIL import Image

from rginspect.atomic import atomic_path
from rginspect.images import display_image
from rginspect.model import RGFlowModel
from rginspect.nn.priors import Prior

LATENT_FORMAT = "level:channel:row:col"
GIF_MIN_SIDE = 128  # GIF frames are enlarged (nearest pixel) to at least this many pixels a side
GIF_FRAME_MS = 200


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
