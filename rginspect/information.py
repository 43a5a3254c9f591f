"""Mutual information between latents: Gaussian closed forms for all pairs at once, kNN as a check.

A latent here is one site of the (C, L, L) latent array, a C-vector. Under a Gaussian fit,
I(i; j) = ½ [ln det Σ_i + ln det Σ_j − ln det Σ_ij] and the total correlation of a set S is
Σ_{i∈S} ½ ln det Σ_i − ½ ln det Σ_S, both in nats. Finite samples bias these upwards; the noise
floor is what the same estimator gives after shuffling each site's samples independently.
"""

from __future__ import annotations

import numpy as np
from sklearn.feature_selection import mutual_info_regression


def site_vectors(z: np.ndarray) -> np.ndarray:
    """(samples, C, L, L) latents -> (samples, sites, C), sites in row-major order."""
    n, channels = z.shape[:2]
    return np.moveaxis(z.reshape(n, channels, -1), 1, 2)


def pairwise_gaussian_mi(vectors: np.ndarray) -> np.ndarray:
    """(sites, sites) Gaussian mutual information of (samples, sites, C) data; NaN on the diagonal."""
    n, m, c = vectors.shape
    covariance = np.cov(vectors.reshape(n, m * c), rowvar=False).reshape(m, c, m, c)
    own = covariance[np.arange(m), :, np.arange(m), :]  # (m, c, c)
    own_logdet = np.linalg.slogdet(own)[1]
    joint = np.empty((m, m, 2 * c, 2 * c))
    joint[:, :, :c, :c] = own[:, None]
    joint[:, :, c:, c:] = own[None, :]
    joint[:, :, :c, c:] = covariance.transpose(0, 2, 1, 3)
    joint[:, :, c:, :c] = covariance.transpose(2, 0, 3, 1)
    mi = 0.5 * (own_logdet[:, None] + own_logdet[None, :] - np.linalg.slogdet(joint)[1])
    np.fill_diagonal(mi, np.nan)
    return mi


def pairwise_mi_bytes(model) -> int:
    """Peak memory of pairwise_gaussian_mi on a model's latent sites (joint blocks, float64, ×2)."""
    channels, height, width = model.data_shape
    sites = height * width
    return 2 * sites**2 * (2 * channels) ** 2 * 8


def shuffled(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each site's samples permuted independently: same marginals, no dependence between sites."""
    n, m = vectors.shape[:2]
    order = np.argsort(rng.random((n, m)), axis=0)
    return vectors[order, np.arange(m)[None, :]]


def gaussian_total_correlation(vectors: np.ndarray) -> float:
    """Σ_i H(z_i) − H(z_S) of the sites in (samples, sites, C), Gaussian fit, in nats."""
    n, m, c = vectors.shape
    covariance = np.atleast_2d(np.cov(vectors.reshape(n, m * c), rowvar=False))
    blocks = covariance.reshape(m, c, m, c)[np.arange(m), :, np.arange(m), :]
    return float(0.5 * (np.linalg.slogdet(blocks)[1].sum() - np.linalg.slogdet(covariance)[1]))


def knn_mi(x: np.ndarray, y: np.ndarray, neighbours: int = 3, seed: int = 0) -> float:
    """Kraskov k-nearest-neighbour estimate of I(x; y) for two scalar series, in nats."""
    return float(
        mutual_info_regression(x[:, None], y, n_neighbors=neighbours, random_state=seed)[0]
    )


def periodic_distance(rows: np.ndarray, cols: np.ndarray, L: int) -> np.ndarray:
    """(sites, sites) Euclidean distance with the minimum image on an L×L torus."""
    dy = np.abs(rows[:, None] - rows[None, :])
    dx = np.abs(cols[:, None] - cols[None, :])
    return np.hypot(np.minimum(dy, L - dy), np.minimum(dx, L - dx))
