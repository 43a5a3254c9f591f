"""Mutual information between latents: Gaussian closed forms for all pairs at once, with the law of
their noise; kNN as a check.

A latent here is one site of the (C, L, L) latent array, a C-vector. Under a Gaussian fit,
I(i; j) = ½ [ln det Σ_i + ln det Σ_j − ln det Σ_ij] and the total correlation of a set S is
Σ_{i∈S} ½ ln det Σ_i − ½ ln det Σ_S, both in nats.

The pairwise estimate Î has a known law: 2ν Î is asymptotically a noncentral χ² with C² degrees of
freedom and noncentrality 2ν I (the likelihood-ratio statistic of independence between two
C-vectors), so its bias is C²/(2ν) and, under independence, its law does not depend on the sites'
marginals. ν is the pair's effective number of samples: n − 1 for independent samples, n / T_ij for
samples in chains (Bartlett's factor T_ij of the two sites' autocorrelations), calibrated on a null
ensemble that keeps every site's time correlation (rginspect.chains). Pairs whose statistic is below
that null's upper quantile are "below the floor" and enter a likelihood only as lying below it.

Total correlation needs care when samples are few against dimensions: the plain estimate is biased
by about d²/(4n) and undefined once d ≥ n. For Gaussian data the bias of ln det of a sample
covariance is known exactly (a Wishart matrix: a sum of digammas, independent of the true Σ), so it
is subtracted. Where a level has more than half as many dimensions as samples, the estimate would be
too noisy, so the level is cut into blocks of contiguous sites that are small enough and the blocks'
total correlations are summed: by the chain rule that sum is a lower bound of the level's. Ledoit–Wolf
shrinkage was measured and rejected: it is defined for d > n, but it pulls the estimate towards 0
by an unknown amount (27 nats for an exact 109 at d = 2304, n = 4096). Time correlation along chains
biases it further; its floor (the same estimator on the null ensemble) carries that bias too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.interpolate import CubicHermiteSpline, PPoly
from scipy.special import digamma, i0e, i1e, ive
from scipy.stats import ncx2
from sklearn.neighbors import KDTree, NearestNeighbors

from .chains import Chains, bartlett_factor

# dimensions per block at most this fraction of the degrees of freedom n − 1: the bias-corrected
# estimate's spread is then about 1 nat per block (Var ln det = Σ trigamma, ≈ 2 ln 2 at d = ν/2)
MAX_DIMENSIONS_PER_DOF = 0.5


def site_vectors(z: np.ndarray) -> np.ndarray:
    """(samples, C, L, L) latents -> (samples, sites, C), sites in row-major order."""
    n, channels = z.shape[:2]
    return np.ascontiguousarray(np.moveaxis(z.reshape(n, channels, -1), 1, 2))


def pairwise_gaussian_mi(vectors: np.ndarray) -> np.ndarray:
    """(sites, sites) Gaussian mutual information of (samples, sites, C) data; NaN on the diagonal."""
    n, m, c = vectors.shape
    return covariance_pair_mi(np.cov(vectors.reshape(n, m * c), rowvar=False), c)


def covariance_pair_mi(covariance: np.ndarray, c: int) -> np.ndarray:
    """(sites, sites) Gaussian mutual information between the C-vectors of sites from their joint
    (sites·C, sites·C) covariance, sites outer, components inner; NaN on the diagonal.

    Each pair's joint covariance [[Σ_i, Σ_ij], [Σ_ijᵀ, Σ_j]] is built for i < j only and the result
    mirrored, so I(i; j) = I(j; i) exactly whatever the floating-point order of the arithmetic.
    A pair whose joint covariance is not positive definite (a degenerate component) gets NaN.
    """
    m = len(covariance) // c
    covariance = covariance.reshape(m, c, m, c)
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


def jackknife_pair_mi(vectors: np.ndarray, parts: list[np.ndarray]) -> list[np.ndarray]:
    """pairwise_gaussian_mi of (samples, sites, C) data without each of the disjoint sample sets
    `parts`, from the parts' sums and cross-products (one pass over the data, not one each)."""
    n, m, c = vectors.shape
    flat = vectors.reshape(n, m * c)
    sums = [flat[part].sum(0) for part in parts]
    products = [flat[part].T @ flat[part] for part in parts]
    total_sum, total_product = sum(sums), sum(products)
    result = []
    for part, part_sum, part_product in zip(parts, sums, products, strict=True):
        kept = n - len(part)
        mean = (total_sum - part_sum) / kept
        covariance = (total_product - part_product - kept * np.outer(mean, mean)) / (kept - 1)
        result.append(covariance_pair_mi(covariance, c))
    return result


def pairwise_mi_bytes(model) -> int:
    """Peak memory of pairwise_gaussian_mi on a model's latent sites (pair blocks, float64, ×2)."""
    channels, height, width = model.data_shape
    sites = height * width
    return 2 * (sites * (sites - 1) // 2) * (2 * channels) ** 2 * 8 + (sites * channels) ** 2 * 8


DETECTION_Z = 3.0  # exceedances this many null standard deviations above chance: information


@dataclass(frozen=True)
class PairLaw:
    """The sampling law of the pairwise Gaussian MI estimate Î of (samples, sites, C) latents.

    u = 2ν_ij Î_ij is noncentral χ² with `dof` = C² degrees of freedom and noncentrality
    2ν_ij I_ij; ν_ij (`effective_samples`) comes from Bartlett's factor of the two sites'
    autocorrelations, scaled by `calibration` so that the null ensemble's mean u is `dof`
    exactly. `threshold` is the null's (1 − alpha) quantile of u: the floor. `null_exceedances`
    counts, per null ensemble, the pairs above it: what chance puts there.
    """

    effective_samples: np.ndarray  # (sites, sites)
    dof: int
    threshold: float
    alpha: float
    null_exceedances: np.ndarray  # (null ensembles,)
    calibration: float
    _censored: tuple[CubicHermiteSpline, PPoly] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # ln P(u ≤ threshold | λ) and its derivative −f(threshold; dof + 2, λ) / P on a grid of λ,
        # joined by cubic Hermite pieces: a smooth function of λ alone, where scipy's
        # ncx2.logcdf costs microseconds a pair. Beyond the grid (λ far above the floor, which a
        # fit only visits on its way) it continues linearly.
        grid = np.concatenate([[0.0], np.geomspace(1e-4, 4 * self.threshold + 400, 400)])
        log_cdf = ncx2.logcdf(self.threshold, self.dof, grid)
        slope = -np.exp(ncx2_logpdf(self.threshold, self.dof + 2, grid) - log_cdf)
        finite = np.isfinite(log_cdf) & np.isfinite(slope)
        spline = CubicHermiteSpline(grid[finite], log_cdf[finite], slope[finite])
        object.__setattr__(self, "_censored", (spline, spline.derivative()))

    def statistic(self, raw: np.ndarray) -> np.ndarray:
        return 2 * self.effective_samples * raw

    def bias(self) -> np.ndarray:
        """E[Î] − I to leading order: C² / (2ν_ij)."""
        return self.dof / (2 * self.effective_samples)

    def floor(self) -> np.ndarray:
        """(sites, sites) the plug-in MI above which a pair clears the floor, in nats."""
        return self.threshold / (2 * self.effective_samples)

    def exceedances(self, raw: np.ndarray, pairs: np.ndarray) -> int:
        return int((self.statistic(raw)[pairs] > self.threshold).sum())

    def excess(self, count: int) -> float:
        """How many null standard deviations `count` exceedances lie above what chance gives
        (the null ensembles' spread, or the binomial one if that is larger)."""
        expected = float(self.null_exceedances.mean())
        spread = max(
            float(self.null_exceedances.std(ddof=1)) if len(self.null_exceedances) > 1 else 0.0,
            math.sqrt(max(expected, 1.0) * (1 - self.alpha)),
        )
        return (count - expected) / spread

    def has_information(self, count: int) -> bool:
        """More pairs above the floor than chance puts there, by DETECTION_Z spreads."""
        return self.excess(count) > DETECTION_Z

    def on_pairs(self, i: np.ndarray, j: np.ndarray, fraction: float = 1.0) -> PairLaw:
        """The law of the pairs (i, j) only (effective_samples a vector), for `fraction` of the
        samples (a jackknife replicate: ν scales with the samples kept), same floor."""
        return replace(self, effective_samples=self.effective_samples[i, j] * fraction)

    def log_likelihood(self, raw: np.ndarray, mi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ln p(Î | I) of each pair and its derivative in I (plug-in estimates `raw`, true values
        `mi`, shaped as `effective_samples`; see on_pairs): the noncentral χ² density of u above
        the floor, its probability of lying below the floor otherwise (censored)."""
        u = self.statistic(raw)
        scale = 2 * self.effective_samples
        lam = scale * np.maximum(mi, 0.0)
        value, slope = np.empty_like(u), np.empty_like(u)
        seen = u > self.threshold
        lam_seen = np.maximum(lam[seen], 1e-12)
        root = np.sqrt(u[seen] * lam_seen)
        order = self.dof / 2 - 1
        lower, upper = scaled_bessel_pair(order, root)
        value[seen] = (
            -math.log(2)
            - (u[seen] + lam_seen) / 2
            + (order / 2) * np.log(u[seen] / lam_seen)
            + np.log(lower)
            + root
        )
        # ∂ ln f / ∂λ = ½ [f(u; k + 2, λ) / f(u; k, λ) − 1], a ratio of Bessel functions
        slope[seen] = 0.5 * (np.sqrt(u[seen] / lam_seen) * upper / lower - 1)
        spline, derivative = self._censored
        end = spline.x[-1]
        below = np.minimum(lam[~seen], end)
        beyond = lam[~seen] - below  # λ past the grid: the last piece continued linearly
        end_slope = derivative(end)
        value[~seen] = spline(below) + end_slope * beyond
        slope[~seen] = np.where(beyond > 0, end_slope, derivative(below))
        return value, slope * scale


def scaled_bessel_pair(order: float, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """e^{−x} I_order(x) and e^{−x} I_{order+1}(x): by i0e/i1e for C = 2 (order 1) and closed forms
    for C = 1 (order −½), a hundred times faster than the general ive, which does the rest."""
    if order == 1:
        first = i1e(x)
        with np.errstate(divide="ignore", invalid="ignore"):  # small x: the series instead
            second = np.where(
                x > 1e-2, i0e(x) - 2 * first / x, np.exp(-x) * x**2 / 8 * (1 + x**2 / 12)
            )
        return first, second
    if order == -0.5:
        root = np.sqrt(2 / (np.pi * x))
        return root * (1 + np.exp(-2 * x)) / 2, -root * np.expm1(-2 * x) / 2
    return ive(order, x), ive(order + 1, x)


def ncx2_logpdf(x: np.ndarray, dof: int, noncentrality: np.ndarray) -> np.ndarray:
    """ln of the noncentral χ² density through the exponentially scaled Bessel function, finite
    wherever x > 0 (scipy's underflows to −inf far in the tails, which stalls an optimiser)."""
    lam = np.maximum(noncentrality, 1e-12)
    root = np.sqrt(x * lam)
    order = dof / 2 - 1
    return (
        -math.log(2)
        - (x + lam) / 2
        + (order / 2) * np.log(x / lam)
        + np.log(ive(order, root))
        + root
    )


def pair_effective_samples(vectors: np.ndarray, chains: Chains) -> np.ndarray:
    """(sites, sites) ν_ij = (n − 1) / T_ij of (samples, sites, C) latents in `chains`."""
    factor = bartlett_factor(chains.autocorrelation(vectors))
    return (chains.n_samples - 1) / np.maximum(factor, 1e-3)


def pair_law(
    vectors: np.ndarray,
    chains: Chains,
    rng: np.random.Generator,
    *,
    null_ensembles: int = 16,
    alpha: float = 0.01,
) -> PairLaw:
    """The law of pairwise_gaussian_mi on these latents, calibrated on null ensembles of the
    chains (each site's series moved as a whole, see Chains.null_ensemble)."""
    n, m, c = vectors.shape
    nu = pair_effective_samples(vectors, chains)
    i, j = np.triu_indices(m, 1)
    null = np.stack(
        [
            2 * nu[i, j] * pairwise_gaussian_mi(chains.null_ensemble(vectors, rng))[i, j]
            for _ in range(null_ensembles)
        ]
    )
    calibration = float(np.nanmean(null)) / c**2
    null /= calibration
    threshold = float(np.nanquantile(null, 1 - alpha))
    return PairLaw(
        effective_samples=nu / calibration,
        dof=c**2,
        threshold=threshold,
        alpha=alpha,
        null_exceedances=(null > threshold).sum(1),
        calibration=calibration,
    )


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
    contiguous sites), `floor` and `floor_error` the mean and spread of the same estimator on the
    chains' null ensemble (independent sites with the same marginals and time correlation: ≈ 0 ±
    its noise for independent Gaussian samples, above 0 for correlated ones), so that
    (value − floor) / floor_error says how far the latents are from independent;
    `samples_per_dimension` n / (sites·C).
    """

    value: float
    floor: float
    floor_error: float
    blocks: int
    samples_per_dimension: float
    reason: str = ""


def total_correlation(
    vectors: np.ndarray, chains: Chains, rng: np.random.Generator, shifts: int = 5
) -> TotalCorrelation:
    """The bias-corrected Gaussian total correlation of (samples, sites, C) with its floor on
    `shifts` null ensembles of the chains the samples come in."""
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

    floors = [estimate(chains.null_ensemble(vectors, rng)) for _ in range(shifts)]
    return TotalCorrelation(
        value=estimate(chains.kept(vectors)),
        floor=float(np.mean(floors)),
        floor_error=float(np.std(floors, ddof=1)) if shifts > 1 else nan,
        blocks=n_blocks,
        samples_per_dimension=per_dimension,
    )


def knn_mi(x: np.ndarray, y: np.ndarray, neighbours: int = 3) -> float:
    """Kraskov–Stögbauer–Grassberger estimate (their first) of I(x; y) for two scalar series, in
    nats, not clipped at 0: ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩, n_x the points closer in x
    than the k-th neighbour in the joint max-norm. Unclipped, it scatters about 0 on independent
    series, so its floor can be subtracted without bias (scikit-learn's version clips at 0)."""
    x = (x - x.mean()) / x.std()
    y = (y - y.mean()) / y.std()
    joint = np.stack([x, y], 1)
    distances, _ = (
        NearestNeighbors(n_neighbors=neighbours, metric="chebyshev").fit(joint).kneighbors()
    )
    radius = np.nextafter(distances[:, -1], 0)  # strictly closer than the k-th neighbour
    counts = [
        KDTree(v[:, None], metric="chebyshev").query_radius(v[:, None], radius, count_only=True)
        for v in (x, y)
    ]  # each point counts itself: n_x + 1
    return float(
        digamma(neighbours) + digamma(len(x)) - np.mean(digamma(counts[0]) + digamma(counts[1]))
    )


def periodic_distance(rows: np.ndarray, cols: np.ndarray, L: int) -> np.ndarray:
    """(sites, sites) Euclidean distance with the minimum image on an L×L torus (symmetric exactly:
    |a − b| and their squares' sum do not depend on the order of the two sites)."""
    dy = np.abs(rows[:, None] - rows[None, :])
    dx = np.abs(cols[:, None] - cols[None, :])
    return np.hypot(np.minimum(dy, L - dy), np.minimum(dx, L - dx))
