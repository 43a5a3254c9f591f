"""summary's numbers: the latents as float64 (refused if any is not finite) and their per-level
statistics, each latent centred on its own mean before a level is pooled."""

from __future__ import annotations

import numpy as np
import scipy.stats
import torch

EMPTY_COMPARISON = (
    "these inputs are the model's own samples: encoding them gives back prior draws "
    "(encode(decode(z)) = z), so the latent statistics compare the prior with itself"
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
