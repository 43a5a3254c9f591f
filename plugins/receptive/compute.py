"""What receptive measures: the sizes of receptive fields on the periodic lattice, the levels
whose structural cones close around it, and per-level summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import xarray as xr

from rginspect.model import RGFlowModel


def cone_wraps(model: RGFlowModel) -> np.ndarray:
    """Per level: whether some latent's structural cone covers every row or every column of the
    lattice, i.e. closes around the torus, so that its fields' sizes saturate."""
    C, H, W = model.data_shape
    cone = model.cone_matrix().tocoo()
    y, x = np.divmod(cone.col % (H * W), W)
    n = cone.shape[0]

    def covered(position: np.ndarray, period: int) -> np.ndarray:
        hits = sp.csr_matrix((np.ones(len(position)), (cone.row, position)), shape=(n, period))
        hits.sum_duplicates()
        return hits.getnnz(1) == period

    wraps = covered(y, H) | covered(x, W)
    levels = model.latent_level.ravel()
    return np.array([wraps[levels == level].any() for level in range(model.n_levels)])


def strongest_per_level(levels: np.ndarray, score: np.ndarray, per_level: int) -> list[int]:
    """The `per_level` highest-scoring latents of each level, finest level first."""
    chosen = []
    for level in np.unique(levels):
        candidates = np.flatnonzero(levels == level)
        chosen += candidates[np.argsort(-score[candidates], kind="stable")[:per_level]].tolist()
    return chosen


def centred_level_means(
    fields: sp.csr_matrix,
    levels: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    H: int,
    W: int,
    n_levels: int,
) -> np.ndarray:
    """(level, H, W): mean of each level's fields, each rolled so its latent's site is the centre."""
    means = np.zeros((n_levels, H, W))
    coo = fields.tocoo()
    y, x = np.divmod(coo.col, W)
    y = (y - row[coo.row] + H // 2) % H
    x = (x - col[coo.row] + W // 2) % W
    np.add.at(means, (levels[coo.row], y, x), coo.data)
    counts = np.bincount(levels, minlength=n_levels)
    return means / np.maximum(counts, 1)[:, None, None]


def level_table(dataset: xr.Dataset) -> pd.DataFrame:
    grouped = dataset[["radius", "area50", "area90", "rf_mass"]].groupby("latent_level")
    medians = grouped.median()
    return pd.DataFrame(
        {
            "level": medians.latent_level.values,
            "latents": grouped.count()["radius"].values,
            "radius": medians.radius.values,
            "area 50%": medians.area50.values,
            "area 90%": medians.area90.values,
            "mass": medians.rf_mass.values,
        }
    )


def samples_within(samples: int, budget: float, first_seconds: float) -> int:
    """All samples, or as many as fit in `budget` seconds at the first one's cost (at least 1)."""
    if budget <= 0:
        return samples
    return max(1, min(samples, int(budget / max(first_seconds, 1e-9))))
