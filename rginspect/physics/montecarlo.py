"""Monte Carlo errors of averages over samples that are not all independent.

Every ensemble an analysis averages over comes with a `Layout`: which groups of its samples
("units") are independent of each other. Independent samples are their own units; HMC chains
are independent of each other (after burn-in), so each chain is a unit; a single Markov chain (an
independence-Metropolis chain, or data in an unknown order) has no exactly independent parts, so
its units are the stretches it holds one state (or blocks of ⌈τ_int⌉ samples), and their spread is
raised to arviz's Monte Carlo standard error, whose initial-sequence estimate of τ_int is what
stays calibrated on such chains (hand-made blocks of 2 τ_int gave 0.4–0.9 of the real error).

`resample` turns a layout into everything an error needs: the covariance of the mean between
observables, bootstrap resamples of whole units, and each resample's own covariance, so that a
fit weighted by an estimated covariance is resampled with the weights it would have had: a
misspecified fit moves with the noise of its weights, which one shared covariance hides.
Effective sample sizes are arviz's (over chains when there are several).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


def effective_sample_size(series: np.ndarray) -> float:
    """arviz's effective sample size of the mean of a per-sample series, (steps,) for one chain or
    (chains, steps) for several, so that Var(mean) = σ²/ESS. A constant series counts as one
    sample; fewer than 4 steps per chain give NaN."""
    from arviz_stats.base import array_stats  # slow to import: only where an error is computed

    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    if x.shape[1] < 4:
        return math.nan
    if np.ptp(x) == 0:
        return 1.0
    return float(array_stats.ess(x, method="mean"))


def integrated_autocorrelation_time(series: np.ndarray) -> float:
    """τ_int = n / ESS of a per-sample series (steps,) or (chains, steps): Var(mean) = τ_int σ²/n.
    Chains that sit at different values (a slow global mode) show as a long τ_int."""
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    return x.size / effective_sample_size(x)


@dataclass(frozen=True)
class Layout:
    """Which samples are independent of which: `units[i]` labels the independent unit sample i
    belongs to; `n_chains` equal chains lie one after another (0: independent samples); a single
    chain's units are only nearly independent, so `calibrate` raises their spread to arviz's MCSE."""

    units: np.ndarray
    n_chains: int
    calibrate: bool = False

    @classmethod
    def independent(cls, n: int) -> Layout:
        return cls(np.arange(n), 0)

    @classmethod
    def chains(cls, n: int, n_chains: int) -> Layout:
        """n samples chain after chain, n_chains chains of equal length (each chain a unit)."""
        if n % n_chains:
            raise ValueError(f"{n} samples do not split into {n_chains} chains of equal length")
        return cls(np.repeat(np.arange(n_chains), n // n_chains), n_chains)

    @classmethod
    def chain(cls, units: np.ndarray) -> Layout:
        """One Markov chain in its order, cut into the given units (labels rising along it)."""
        return cls(np.asarray(units), 1, calibrate=True)

    @classmethod
    def blocks(cls, n: int, length: int) -> Layout:
        """One chain cut into consecutive blocks of `length` samples."""
        return cls.chain(np.arange(n) // max(1, int(length)))


@dataclass(frozen=True)
class Resampled:
    """Means of per-sample observables, their covariance, and bootstrap resamples of units.

    weights: (1 + B, n), row 0 the plain mean, row b the share of each sample in resample b (a
    single chain's resamples are then moved away from row 0 by √inflation); estimates: (1 + B, p)
    the means they give; covariance: (p, p) of the mean; covariances: (B, p, p), each resample's
    own estimate of it; units: the independent units behind the covariance; inflation: the
    factor (≥ 1) a single chain's spread was raised by; effective_samples: arviz's ESS, the
    smallest over the observables (n for independent samples)."""

    weights: np.ndarray
    estimates: np.ndarray
    covariance: np.ndarray
    covariances: np.ndarray
    units: int
    inflation: float
    effective_samples: float

    def spread(self, estimates: np.ndarray) -> np.ndarray:
        """Any estimates (1 + B, ...) made with `weights`, their resamples' spread about row 0
        raised by √inflation as the means' were."""
        moved = estimates[0] + math.sqrt(self.inflation) * (estimates[1:] - estimates[0])
        return np.concatenate([estimates[:1], moved])


def _unit_covariances(sums: np.ndarray, lengths: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(B, p, p) covariance of the ratio mean Σ c_k S_k / Σ c_k L_k over units drawn with
    multiplicities counts (B, K): Σ_k c_k (S_k − L_k m)(S_k − L_k m)ᵀ / (Σ c_k L_k)² · K/(K − 1)."""
    k = len(lengths)
    total = counts @ lengths  # (B,)
    mean = (counts @ sums) / total[:, None]  # (B, p)
    outer = (counts @ (sums[:, :, None] * sums[:, None, :]).reshape(k, -1)).reshape(
        len(counts), sums.shape[1], sums.shape[1]
    )
    cross = counts @ (lengths[:, None] * sums)  # (B, p)
    square = counts @ lengths**2  # (B,)
    covariance = (
        outer
        - cross[:, :, None] * mean[:, None, :]
        - mean[:, :, None] * cross[:, None, :]
        + square[:, None, None] * mean[:, :, None] * mean[:, None, :]
    )
    if k < 2:
        return np.full_like(covariance, np.nan)
    return covariance / total[:, None, None] ** 2 * k / (k - 1)


def resample(
    values: np.ndarray, layout: Layout, n_resamples: int, rng: np.random.Generator
) -> Resampled:
    """The mean of per-sample observables `values` (n, p), its covariance under `layout`, and
    `n_resamples` bootstrap resamples of whole units. A single unit (a chain that never moved)
    has no covariance: NaN, and resamples equal to the mean."""
    values = np.asarray(values, dtype=np.float64)
    p = values.shape[1]
    labels, index, lengths = np.unique(layout.units, return_inverse=True, return_counts=True)
    sums = np.zeros((len(labels), p))
    np.add.at(sums, index, values)
    lengths = lengths.astype(np.float64)
    drawn = rng.integers(0, len(labels), (n_resamples, len(labels)))
    counts = np.vstack(
        [np.ones((1, len(labels)))]
        + [np.bincount(row, minlength=len(labels))[None].astype(np.float64) for row in drawn]
    )
    covariances = _unit_covariances(sums, lengths, counts)
    weights = counts[:, index] / (counts @ lengths)[:, None]
    estimates = weights @ values
    inflation = _inflation(values, covariances[0]) if layout.calibrate else 1.0
    resampled = Resampled(
        weights=weights,
        estimates=estimates,
        covariance=covariances[0] * inflation,
        covariances=covariances[1:] * inflation,
        units=len(labels),
        inflation=inflation,
        effective_samples=_effective_samples(values, layout),
    )
    return replace(resampled, estimates=resampled.spread(estimates))


def _inflation(values: np.ndarray, covariance: np.ndarray) -> float:
    """The largest ratio of arviz's MCSE² of a single chain's mean to the units' variance of it
    (at least 1): the factor that raises the units' spread to the initial-sequence estimate."""
    ratios = [
        np.var(column, ddof=1) / effective_sample_size(column) / variance
        for column, variance in zip(values.T, np.diag(covariance), strict=True)
        if np.ptp(column) > 0 and variance > 0
    ]
    return max([1.0, *ratios])


def _effective_samples(values: np.ndarray, layout: Layout) -> float:
    """arviz's ESS of the slowest varying observable (n for independent samples)."""
    n = len(values)
    if layout.n_chains == 0:
        return float(n)
    steps = n // layout.n_chains
    sizes = [
        effective_sample_size(column[: steps * layout.n_chains].reshape(layout.n_chains, steps))
        for column in values.T
        if np.ptp(column) > 0
    ]
    return float(min(sizes)) if sizes else float(n)


def hartlap_factor(units: int, points: int) -> float:
    """(N − p − 2)/(N − 1): the inverse of a covariance estimated from N independent units is
    that much too large for p points on average (Hartlap, Simon & Schneider 2007), so χ² with it
    is scaled down by this factor. NaN where N ≤ p + 2."""
    return (units - points - 2) / (units - 1) if units > points + 2 else math.nan
