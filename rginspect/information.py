"""Mutual information between latents: Gaussian closed forms for all pairs at once, kNN as a check.

A latent here is one site of the (C, L, L) latent array, a C-vector. Under a Gaussian fit,
I(i; j) = ½ [ln det Σ_i + ln det Σ_j − ln det Σ_ij] and the total correlation of a set S is
Σ_{i∈S} ½ ln det Σ_i − ½ ln det Σ_S, both in nats. Finite samples bias these upwards; the noise
floor is what the same estimator gives after shuffling each site's samples independently.

Total correlation needs care when samples are few against dimensions: the plain estimate is biased
by about d²/(4n) and undefined once d ≥ n. For Gaussian data the bias of ln det of a sample
covariance is known exactly (a Wishart matrix: a sum of digammas, independent of the true Σ), so it
is subtracted. Where a level has more than half as many dimensions as samples, the estimate would be
too noisy, so the level is cut into blocks of contiguous sites that are small enough and the blocks'
total correlations are summed: by the chain rule that sum is a lower bound of the level's. Ledoit–Wolf
shrinkage was measured and rejected: it is defined for d > n, but it pulls the estimate towards 0
by an unknown amount (27 nats for an exact 109 at d = 2304, n = 4096).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma
from sklearn.feature_selection import mutual_info_regression

# dimensions per block at most this fraction of the degrees of freedom n − 1: the bias-corrected
# estimate's spread is then about 1 nat per block (Var ln det = Σ trigamma, ≈ 2 ln 2 at d = ν/2)
MAX_DIMENSIONS_PER_DOF = 0.5


def site_vectors(z: np.ndarray) -> np.ndarray:
    """(samples, C, L, L) latents -> (samples, sites, C), sites in row-major order."""
    n, channels = z.shape[:2]
    return np.moveaxis(z.reshape(n, channels, -1), 1, 2)


def pairwise_gaussian_mi(vectors: np.ndarray) -> np.ndarray:
    """(sites, sites) Gaussian mutual information of (samples, sites, C) data; NaN on the diagonal.

    Each pair's joint covariance [[Σ_i, Σ_ij], [Σ_ijᵀ, Σ_j]] is built for i < j only and the result
    mirrored, so I(i; j) = I(j; i) exactly whatever the floating-point order of the arithmetic.
    A pair whose joint covariance is not positive definite (a degenerate component) gets NaN.
    """
    n, m, c = vectors.shape
    covariance = np.cov(vectors.reshape(n, m * c), rowvar=False).reshape(m, c, m, c)
    own = covariance[np.arange(m), :, np.arange(m), :]  # (m, c, c)
    own_sign, own_logdet = np.linalg.slogdet(own)
    i, j = np.triu_indices(m, 1)
    joint = np.empty((len(i), 2 * c, 2 * c))
    joint[:, :c, :c] = own[i]
    joint[:, c:, c:] = own[j]
    joint[:, :c, c:] = covariance[i, :, j, :]  # Cov(z_i, z_j), (pairs, c, c)
    joint[:, c:, :c] = joint[:, :c, c:].transpose(0, 2, 1)
    sign, logdet = np.linalg.slogdet(joint)
    with np.errstate(invalid="ignore"):  # −inf − (−inf) of a degenerate site, set to NaN below
        upper = 0.5 * (own_logdet[i] + own_logdet[j] - logdet)
    upper[(sign <= 0) | (own_sign[i] <= 0) | (own_sign[j] <= 0)] = np.nan
    mi = np.full((m, m), np.nan)
    mi[i, j] = upper
    mi[j, i] = upper
    return mi


def pairwise_mi_bytes(model) -> int:
    """Peak memory of pairwise_gaussian_mi on a model's latent sites (pair blocks, float64, ×2)."""
    channels, height, width = model.data_shape
    sites = height * width
    return 2 * (sites * (sites - 1) // 2) * (2 * channels) ** 2 * 8 + (sites * channels) ** 2 * 8


def shuffled(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each site's samples permuted independently: same marginals, no dependence between sites."""
    n, m = vectors.shape[:2]
    order = rng.permuted(np.broadcast_to(np.arange(n)[:, None], (n, m)), axis=0)
    return vectors[order, np.arange(m)[None, :]]


def gaussian_total_correlation(vectors: np.ndarray) -> float:
    """Σ_i H(z_i) − H(z_S) of the sites in (samples, sites, C), plain Gaussian fit, in nats
    (biased upwards by the sample size; see `total_correlation`)."""
    n, m, c = vectors.shape
    covariance = np.atleast_2d(np.cov(vectors.reshape(n, m * c), rowvar=False))
    blocks = covariance.reshape(m, c, m, c)[np.arange(m), :, np.arange(m), :]
    return float(0.5 * (np.linalg.slogdet(blocks)[1].sum() - np.linalg.slogdet(covariance)[1]))


def log_det_bias(n: int, dimensions: int) -> float:
    """E[ln det Ŝ] − ln det Σ for the unbiased sample covariance Ŝ of n Gaussian samples in
    `dimensions` dimensions: Σ_{k<d} ψ((ν − k)/2) + d ln(2/ν) with ν = n − 1 (Wishart)."""
    nu = n - 1
    return float(digamma((nu - np.arange(dimensions)) / 2).sum() + dimensions * math.log(2 / nu))


def corrected_total_correlation(vectors: np.ndarray) -> float:
    """Gaussian total correlation of (samples, sites, C) minus its exact small-sample bias."""
    n, m, c = vectors.shape
    bias = 0.5 * (m * log_det_bias(n, c) - log_det_bias(n, m * c))
    return gaussian_total_correlation(vectors) - bias


@dataclass(frozen=True)
class TotalCorrelation:
    """A level's total correlation with what it rests on; NaN with a `reason` where undefined.

    `value` is the bias-corrected estimate (a lower bound when `blocks` > 1: the sum over blocks of
    contiguous sites), `floor` and `floor_error` the mean and spread of the same estimator on
    shuffled samples (≈ 0 ± its noise for Gaussian marginals), `samples_per_dimension` n / (sites·C).
    """

    value: float
    floor: float
    floor_error: float
    blocks: int
    samples_per_dimension: float
    reason: str = ""


def total_correlation(
    vectors: np.ndarray, rng: np.random.Generator, shuffles: int = 5
) -> TotalCorrelation:
    """The bias-corrected Gaussian total correlation of (samples, sites, C) with its shuffled floor."""
    n, m, c = vectors.shape
    per_dimension = n / (m * c)
    nan = math.nan

    def refuse(reason: str) -> TotalCorrelation:
        return TotalCorrelation(nan, nan, nan, 0, per_dimension, reason)

    if m < 2:
        return refuse("a single site has no total correlation")
    sites_per_block = int(MAX_DIMENSIONS_PER_DOF * (n - 1)) // c
    if sites_per_block < 2:
        need = math.ceil(2 * c / MAX_DIMENSIONS_PER_DOF) + 1
        return refuse(f"{n} samples are too few for {c}-component sites: need at least {need}")
    if not np.isfinite(vectors).all():
        return refuse("the latents hold NaN or Inf values")
    if (vectors.std(0) <= 1e-12 * np.abs(vectors).max()).any():
        return refuse(
            "a latent component is constant: its entropy and the total correlation diverge"
        )
    n_blocks = math.ceil(m / sites_per_block)
    blocks = np.array_split(np.arange(m), n_blocks)

    def estimate(data: np.ndarray) -> float:
        return sum(corrected_total_correlation(data[:, block]) for block in blocks)

    floors = [estimate(shuffled(vectors, rng)) for _ in range(shuffles)]
    return TotalCorrelation(
        value=estimate(vectors),
        floor=float(np.mean(floors)),
        floor_error=float(np.std(floors, ddof=1)) if shuffles > 1 else nan,
        blocks=n_blocks,
        samples_per_dimension=per_dimension,
    )


def knn_mi(x: np.ndarray, y: np.ndarray, neighbours: int = 3, seed: int = 0) -> float:
    """Kraskov k-nearest-neighbour estimate of I(x; y) for two scalar series, in nats."""
    return float(
        mutual_info_regression(x[:, None], y, n_neighbors=neighbours, random_state=seed)[0]
    )


def periodic_distance(rows: np.ndarray, cols: np.ndarray, L: int) -> np.ndarray:
    """(sites, sites) Euclidean distance with the minimum image on an L×L torus (symmetric exactly:
    |a − b| and their squares' sum do not depend on the order of the two sites)."""
    dy = np.abs(rows[:, None] - rows[None, :])
    dx = np.abs(cols[:, None] - cols[None, :])
    return np.hypot(np.minimum(dy, L - dy), np.minimum(dx, L - dx))
