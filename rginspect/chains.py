"""Samples that come in chains: the resamplings whose noise keeps the chains' time correlation.

HMC fields (and ordered data) are correlated along their chains, so a statistic's noise is that of
fewer samples than there are. Shuffling samples independently, or resampling them one by one,
destroys that correlation and makes every floor and error bar too small. Here:
- a null ensemble that keeps each site's own time correlation and takes away any dependence
  between sites: for many chains, each site's deviation from its mean flipped in sign on a random
  half of the chains, independently per site; for few, each site's series shifted circularly in
  time by its own random offset;
- a delete-a-group jackknife over whole chains (or, for a single chain, over contiguous blocks of
  it), for the errors of smooth statistics;
- the autocorrelation of each site, for Bartlett's variance of a cross-correlation between two
  correlated series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .analysis import RunContext

# from this many chains on, the null ensemble flips signs per chain instead of shifting in time
FLIPPED_CHAINS = 16


@dataclass(frozen=True)
class Chains:
    """Where each sample sits: `index[c, t]` is the sample at step t of chain c; the chains hold
    the samples 0 … n_samples − 1 (later ones, an incomplete last step, are left out), or, for a
    jackknife's remaining chains, a subset of them."""

    index: np.ndarray  # (n_chains, steps) of sample indices

    @classmethod
    def interleaved(cls, n_samples: int, n_chains: int) -> Chains:
        """Samples stored step-major, chain-minor (as HMCResult's): whole steps only."""
        steps = n_samples // n_chains
        return cls(np.arange(steps * n_chains).reshape(steps, n_chains).T)

    @classmethod
    def one_chain(cls, n_samples: int) -> Chains:
        """Samples taken in their order as one chain (data of unknown provenance)."""
        return cls(np.arange(n_samples)[None, :])

    @property
    def n_chains(self) -> int:
        return self.index.shape[0]

    @property
    def steps(self) -> int:
        return self.index.shape[1]

    @property
    def n_samples(self) -> int:
        return self.index.size

    def describe(self) -> str:
        if self.n_chains == 1:
            return f"one chain of {self.steps} samples, in their order"
        return f"{self.n_chains} chains of {self.steps} steps"

    def by_chain(self, values: np.ndarray) -> np.ndarray:
        """(samples, ...) values as (n_chains, steps, ...)."""
        return np.asarray(values)[self.index]

    def null_ensemble(self, values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(samples, sites, ...) values as they would be if the sites were independent, each
        site's own time correlation kept.

        With at least FLIPPED_CHAINS chains: each site's deviation from its mean multiplied by a
        random sign s_ci per chain and site, so a pair's cross-covariance becomes Σ_c s_ci s_cj
        S_c(i, j) / n, mean zero and, under independence, the variance of the real one, the
        chains being independent. This keeps what the sites' series share besides dependence:
        in HMC every site of a chain waits through the same rejected steps, which widens the
        noise of a cross-covariance well beyond Bartlett's factor of the averaged
        autocorrelations; moving sites to other chains or times would lose it.
        With fewer chains: each site's chains shifted circularly by its own random number of
        steps (a shift comparable to the correlation time would leave part of a dependence, and
        the wrap-around joins would lower the series' correlation, so chains must be long).
        The result holds the chains' samples (see kept), in their places."""
        values = self.kept(values)
        n_sites = values.shape[1]
        if self.n_chains >= FLIPPED_CHAINS:
            signs = rng.choice([-1.0, 1.0], size=(self.n_chains, n_sites))
            per_sample = np.empty((self.n_samples, n_sites))
            per_sample[self.index] = signs[:, None, :]
            per_sample = per_sample.reshape(per_sample.shape + (1,) * (values.ndim - 2))
            mean = values.mean(0)
            return (mean + per_sample * (values - mean)).astype(values.dtype)
        steps = (np.arange(self.steps)[:, None] + rng.integers(0, self.steps, n_sites)) % self.steps
        source = self.index[:, steps] * n_sites + np.arange(n_sites)  # (chains, steps, sites)
        rest = values.shape[2:]
        flat = np.ascontiguousarray(values).reshape(-1, *rest)
        moved = np.take(flat, source.ravel(), axis=0).reshape(-1, n_sites, *rest)
        result = np.empty_like(values)
        result[self.index.ravel()] = moved  # back in the samples' own places
        return result

    def kept(self, values: np.ndarray) -> np.ndarray:
        """The samples the chains hold (without an incomplete last step)."""
        return np.asarray(values)[: self.n_samples]

    def jackknife_groups(self, groups: int) -> list[tuple[np.ndarray, Chains]]:
        """For each of `groups` groups a delete-a-group jackknife leaves out in turn: the samples
        left out and the chains that remain (sample indices as before). Whole chains when there
        are at least `groups` of them, else contiguous blocks of steps of every chain."""
        if self.n_chains >= groups:
            parts = np.array_split(np.arange(self.n_chains), groups)
            return [(self.index[p].ravel(), Chains(np.delete(self.index, p, 0))) for p in parts]
        parts = np.array_split(np.arange(self.steps), groups)
        return [(self.index[:, p].ravel(), Chains(np.delete(self.index, p, 1))) for p in parts]

    def autocorrelation(self, values: np.ndarray, max_lag: int | None = None) -> np.ndarray:
        """(sites, lags) autocorrelation of each site of (samples, sites, C) values along the
        chains, averaged over chains and over the site's components after whitening them with
        the site's covariance: ρ_i(t) = tr(Σ_i⁻¹ C_i(t)) / C, lag 0 ... max_lag (default: half
        the steps), each lag normalised by the pairs of steps it has."""
        x = self.by_chain(values).astype(np.float64)  # (chains, steps, sites, C)
        x = x - x.mean((0, 1))
        covariance = np.einsum("ktsa,ktsb->sab", x, x) / (self.n_samples - 1)
        eigenvalues, eigenvectors = np.linalg.eigh(covariance)
        # whitened by Σ_i^(−½) on the components that vary (a constant one has no correlation)
        varies = eigenvalues > 1e-12 * eigenvalues.max(-1, keepdims=True)
        scale = np.where(varies, 1 / np.sqrt(np.where(varies, eigenvalues, 1)), 0)
        white = np.einsum("sab,ktsa->ktsb", eigenvectors * scale[:, None, :], x)
        rank = np.maximum(varies.sum(-1), 1)  # (sites,)
        max_lag = self.steps // 2 if max_lag is None else min(max_lag, self.steps - 1)
        spectrum = np.fft.rfft(white, 2 * self.steps, axis=1)
        lagged = np.fft.irfft(spectrum * spectrum.conj(), axis=1)[:, : max_lag + 1]
        pairs = self.n_chains * (self.steps - np.arange(max_lag + 1))
        rho = lagged.sum((0, 3)) / pairs[:, None] / rank  # (lags, sites)
        return (rho / np.where(rho[:1] > 0, rho[:1], 1)).T


def target_chains(context: RunContext, n: int) -> Chains:
    """How an analysis' target_latents(n) sit in chains: the run's HMC chains (whole steps),
    else one chain of the data in their order."""
    hmc = context.target_chains(n)
    return Chains.one_chain(n) if hmc is None else Chains.interleaved(n, hmc.n_chains)


def bartlett_factor(autocorrelation: np.ndarray, window_factor: float = 5.0) -> np.ndarray:
    """(sites, sites) T_ij = Σ_t ρ_i(t) ρ_j(t) over lags −W..W: Bartlett's factor by which time
    correlation inflates the variance of the cross-correlation of two independent series, so
    that the pair carries n / T_ij effective samples (1 for uncorrelated samples). W is the
    largest of the sites' Sokal windows (the smallest W ≥ window_factor · τ_int(W)), so that
    lags where every ρ is noise add none of it."""
    rho = np.asarray(autocorrelation, dtype=np.float64)
    if rho.shape[1] < 2:  # chains one step long: no lag to see, the samples are independent
        return np.outer(rho[:, 0], rho[:, 0])
    tau = 1 + 2 * np.cumsum(rho[:, 1:], axis=1)  # τ_int(W) for W = 1, 2, ...
    reached = np.arange(1, rho.shape[1]) >= window_factor * tau
    windows = np.where(reached.any(1), reached.argmax(1) + 1, rho.shape[1] - 1)
    kept = rho[:, : int(windows.max()) + 1]
    return 2 * kept @ kept.T - np.outer(kept[:, 0], kept[:, 0])


def jackknife_error(replicates: np.ndarray) -> np.ndarray:
    """Standard error from delete-a-group jackknife replicates (groups along axis 0):
    √((g − 1)/g · Σ (θ_k − θ̄)²)."""
    replicates = np.asarray(replicates, dtype=np.float64)
    g = replicates.shape[0]
    spread = ((replicates - replicates.mean(0)) ** 2).sum(0)
    return np.sqrt((g - 1) / g * spread) if g > 1 else np.full(spread.shape, math.nan)
