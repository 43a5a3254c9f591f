"""Two-point functions and what their decay says about the phase.

C(r) = Σ_c ⟨φ_c(x) φ_c(x + r)⟩, averaged over sites x and both lattice axes, is computed for every
sample at once by FFT (Wiener–Khinchin), so it costs O(N log N) per sample at any lattice size.
Errors come from a moving-block bootstrap over samples: blocks as long as a few autocorrelation
times keep a Markov chain's correlated stretches (an independence-Metropolis chain repeats states)
together. Two forms are fitted to C(r):
- exponential decay, on a periodic lattice the sum of the two images A [e^{−r/ξ} + e^{−(L−r)/ξ}]
  (the cosh form A' cosh((r − L/2)/ξ), written so that no term overflows when ξ ≪ L);
- power-law decay B d(r)^{−η}, with the chord length d(r) = (L/π) sin(π r/L) on a periodic lattice.
Without periodicity (images) they reduce to A e^{−r/ξ} and B r^{−η}. Both have two parameters, so
the Akaike criterion AIC = χ² + 2k picks the form with the smaller χ², and refitting every bootstrap
resample says how often that choice would change. χ² is generalised least squares with the
bootstrap covariance of C(r) between distances: C(r) and C(r+1) share every sample, so their errors
are 90–99% correlated, and a χ² from the diagonal errors alone is far too small to reject a form.

A fit is only as good as its χ²: `DecaySelection.p_values` are the χ² tail probabilities (with
two parameters fitted), and a form with p < ACCEPTABLE_P does not describe C(r). Image correlations
need not decay monotonically (MSDS tiles repeat every few pixels, so C(r) crosses zero and rises
again); `decaying_range` is the stretch a decay form can describe at all.

The phase follows the form, with one physical bound: in a 2D O(2) field quasi-long-range order has
η ≤ 1/4 (the BKT value at the transition), and a one-component field is critical only at the Ising
point, η = 1/4; so a power law with a larger η is a correlation length, not order or criticality
(a short ξ, where a single cosh misses the Ornstein–Zernike form, is fitted better by a steep power
law); `eta_max` applies such a bound to the full sample and every resample.
A one-component field (Ising, real φ⁴) can order truly: C(r) then plateaus at m₀² and the site-
averaged magnetisation m sits at ±m₀. Neither decay form has a plateau, so order is read from m's
distribution instead, by Binder's cumulant U = 1 − ⟨m⁴⟩/(3⟨m²⟩²): 0 for a Gaussian m (disorder),
2/3 for m = ±m₀ (order), and the universal U* of the 2D Ising class at the critical point for
every L (up to small corrections), so U above U* beyond its errors means the ordered side.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import curve_fit
from scipy.stats import chi2 as chi2_distribution

FORMS = ("exponential", "power law")
# two parameters per form: with two points both fit exactly and AIC cannot choose
MIN_FIT_POINTS = 3
# a fit whose χ² is this improbable (for its degrees of freedom) does not describe the data
ACCEPTABLE_P = 1e-3
# below this many effective samples (n / τ_int) neither τ_int nor block-bootstrap errors can be
# trusted: a chain that holds a few states for long stretches looks precise and is not
MIN_EFFECTIVE_SAMPLES = 100
# Binder's cumulant at the critical point of the 2D Ising class on periodic L × L lattices
# (Salas & Sokal, J. Stat. Phys. 98, 551 (2000)); Ising and real φ⁴ both belong to it
ISING_CRITICAL_BINDER = 0.61069


def two_point_function(fields: torch.Tensor, *, periodic: bool = True) -> torch.Tensor:
    """Per-sample C(r) for r = 0..L//2, shape (n, L//2 + 1), summed over channels.

    Periodic fields wrap around; otherwise (images) the fields are zero-padded and each distance is
    averaged over the pairs that lie inside, L(L − r) of them per axis.
    """
    n, _, rows, cols = fields.shape
    if rows != cols:
        raise ValueError(f"two_point_function needs square fields, got {rows}×{cols}")
    L = rows
    size = (L, L) if periodic else (2 * L, 2 * L)
    spectrum = torch.fft.rfft2(fields.double(), s=size).abs().square().sum(1)
    autocorrelation = torch.fft.irfft2(spectrum, s=size)  # Σ_x f(x) f(x + d), (n, size)
    r = torch.arange(L // 2 + 1, device=fields.device)
    along_axes = (autocorrelation[:, r, 0] + autocorrelation[:, 0, r]) / 2
    pairs = torch.full_like(r, L * L, dtype=torch.float64) if periodic else L * (L - r).double()
    return along_axes / pairs


def zero_momentum_function(fields: torch.Tensor, *, periodic: bool = True) -> torch.Tensor:
    """Per-sample zero-momentum correlator C̃(t) for t = 0..L//2, shape (n, L//2 + 1): the
    correlation of row sums (and of column sums, averaged), Σ_c ⟨S_c(y) S_c(y + t)⟩ / L³ with
    S_c(y) = Σ_x φ_c(x, y). Summing a row projects onto zero transverse momentum, so on a periodic
    lattice C̃(t) is exactly a sum of cosh((t − L/2)/ξ_n) over the theory's states, where C(r)
    along an axis carries the two-dimensional r^{−½} of Ornstein–Zernike: the lowest state's ξ
    is the mass gap's inverse, the correlation length a fit of C(r) only approximates."""
    if not periodic:
        raise ValueError("the zero-momentum correlator needs a periodic lattice")
    n, _, L, cols = fields.shape
    if L != cols:
        raise ValueError(f"zero_momentum_function needs square fields, got {L}×{cols}")
    sums = torch.stack([fields.double().sum(2), fields.double().sum(3)])  # (axis, n, C, L)
    spectrum = torch.fft.rfft(sums, dim=-1).abs().square().sum(2)
    autocorrelation = torch.fft.irfft(spectrum, n=L, dim=-1).mean(0)  # (n, L)
    return autocorrelation[:, : L // 2 + 1] / L**3


def integrated_autocorrelation_time(series: np.ndarray, window_factor: float = 5.0) -> float:
    """τ_int = 1 + 2 Σ_t ρ(t), so that Var(mean) = τ_int σ²/n, with Sokal's automatic window
    (the smallest W ≥ window_factor · τ_int(W)). A constant series counts as fully correlated.
    A 2-D `series` is (chains, steps): ρ(t) is averaged over the chains about their common mean,
    so chains that sit at different values (a slow global mode) show as a long τ_int."""
    x = np.atleast_2d(np.asarray(series, dtype=np.float64))
    x = x - x.mean()
    n = x.shape[1]
    variance = float((x * x).sum())
    if variance <= 0:
        return float(n)
    spectrum = np.fft.rfft(x, 2 * n, axis=1)
    rho = np.fft.irfft(spectrum * spectrum.conj(), axis=1)[:, :n].sum(0) / variance
    tau = 1 + 2 * np.cumsum(rho[1:])
    window = np.nonzero(np.arange(1, n) >= window_factor * tau)[0]
    return float(tau[window[0]] if len(window) else tau[-1])


def bootstrap_weights(
    n: int, n_resamples: int, *, block_length: int = 1, rng: np.random.Generator
) -> np.ndarray:
    """(n_resamples, n) resampling weights summing to 1 per row: a moving-block bootstrap, blocks of
    `block_length` consecutive samples starting anywhere, ⌈n/block_length⌉ of them per resample."""
    block_length = max(1, min(int(block_length), n))
    n_blocks = math.ceil(n / block_length)
    starts = rng.integers(0, n - block_length + 1, size=(n_resamples, n_blocks))
    indices = (starts[:, :, None] + np.arange(block_length)).reshape(n_resamples, -1)[:, :n]
    counts = np.zeros((n_resamples, n))
    np.add.at(counts, (np.arange(n_resamples)[:, None], indices), 1.0)
    return counts / n


def binder_cumulant(
    fields: torch.Tensor, *, n_resamples: int, block_length: int, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """U = 1 − ⟨m⁴⟩/(3⟨m²⟩²) of the site-averaged one-component field m, and U of every
    moving-block bootstrap resample (blocks as for C(r)). The sign of m does not enter, so a chain
    that never tunnels between ±m₀ still measures it."""
    if fields.shape[1] != 1:
        raise ValueError(f"Binder's cumulant needs a one-component field, got {fields.shape[1]}")
    m = fields.double().mean((1, 2, 3)).cpu().numpy()
    weights = np.vstack(
        [
            np.full((1, len(m)), 1 / len(m)),
            bootstrap_weights(len(m), n_resamples, block_length=block_length, rng=rng),
        ]
    )
    u = 1 - (weights @ m**4) / (3 * (weights @ m**2) ** 2)
    return float(u[0]), u[1:]


@dataclass(frozen=True)
class CorrelationEstimate:
    """C(r) from all samples, its bootstrap error, and every bootstrap resample's C(r)."""

    distance: np.ndarray  # (R,) r = 0..L//2
    value: np.ndarray  # (R,)
    error: np.ndarray  # (R,)
    resamples: np.ndarray  # (n_resamples, R)
    block_length: int
    autocorrelation_time: float
    samples: int

    @property
    def effective_samples(self) -> float:
        """n / τ_int: how many independent samples the estimate is worth."""
        return self.samples / max(self.autocorrelation_time, 1.0)

    @property
    def reliable(self) -> bool:
        """Whether there are enough effective samples for the errors to mean what they say."""
        return self.effective_samples >= MIN_EFFECTIVE_SAMPLES


def estimate_correlation(
    fields: torch.Tensor,
    *,
    connected: bool = False,
    periodic: bool = True,
    n_resamples: int = 200,
    block_length: int | None = 1,
    autocorrelation_time: float | None = None,
    rng: np.random.Generator,
    correlator: Callable[..., torch.Tensor] = two_point_function,
) -> CorrelationEstimate:
    """C(r) with moving-block bootstrap errors; samples in chain order for a Markov chain.

    `block_length=None` sets it to ⌈2 τ_int⌉ of the per-sample C(1) series (for Markov chains and
    ensembles whose independence is not known), at most n/2; 1 is right for independent samples.
    Blocks shorter than 2 τ_int would make the errors too small, so none are capped shorter: a
    chain too short for them is not `reliable` instead. `connected` subtracts the mean field's
    own two-point function, with the mean recomputed in every resample: the site-averaged mean
    per channel on a periodic lattice (translation invariance), the mean per pixel and channel
    otherwise (images).
    `correlator` is the per-sample function: C(r) by default, or `zero_momentum_function`.
    `autocorrelation_time` is τ_int as the sampler measured it (across HMC chains, for the
    slowest observable); by default it is that of the per-sample C(1) series in the given order.
    """
    n = len(fields)
    if n < 2:
        raise ValueError(f"a correlation estimate needs at least 2 samples, got {n}")
    per_sample = correlator(fields, periodic=periodic).cpu().numpy()
    tau = (
        integrated_autocorrelation_time(per_sample[:, 1])
        if autocorrelation_time is None
        else autocorrelation_time
    )
    if block_length is None:
        block_length = max(1, min(math.ceil(2 * tau), n // 2))
    weights = np.vstack(
        [
            np.full((1, n), 1 / n),
            bootstrap_weights(n, n_resamples, block_length=block_length, rng=rng),
        ]
    )
    estimates = weights @ per_sample
    if connected:
        flat = fields.double().reshape(n, -1).cpu()
        mean = (torch.from_numpy(weights) @ flat).reshape(len(weights), *fields.shape[1:])
        if periodic:
            mean = mean.mean((2, 3), keepdim=True).expand(-1, -1, *fields.shape[2:])
        estimates = estimates - correlator(mean, periodic=periodic).numpy()
    return CorrelationEstimate(
        distance=np.arange(per_sample.shape[1]),
        value=estimates[0],
        error=estimates[1:].std(0, ddof=1),
        resamples=estimates[1:],
        block_length=int(block_length),
        autocorrelation_time=tau,
        samples=n,
    )


def exponential_form(
    r: np.ndarray, amplitude: float, xi: float, period: float | None = None
) -> np.ndarray:
    """A e^{−r/ξ}, plus the image A e^{−(L−r)/ξ} on a periodic lattice (the cosh form)."""
    r = np.asarray(r, dtype=np.float64)
    value = np.exp(-r / xi)
    if period is not None:
        value = value + np.exp(-(period - r) / xi)
    return amplitude * value


def chord_length(r: np.ndarray, period: float | None = None) -> np.ndarray:
    """(L/π) sin(π r/L), the distance a periodic lattice's power laws see; r itself when open."""
    r = np.asarray(r, dtype=np.float64)
    return r if period is None else period / np.pi * np.sin(np.pi * r / period)


def power_form(
    r: np.ndarray, amplitude: float, eta: float, period: float | None = None
) -> np.ndarray:
    """B d(r)^{−η} with d the chord length."""
    return amplitude * chord_length(r, period) ** (-eta)


@dataclass(frozen=True)
class FormFit:
    """One form's weighted least-squares fit: (amplitude, ξ or η), χ² and AIC = χ² + 2k."""

    form: str
    parameters: np.ndarray
    chi2: float

    @property
    def aic(self) -> float:
        return self.chi2 + 2 * len(self.parameters)

    def __call__(self, r: np.ndarray, period: float | None = None) -> np.ndarray:
        function = exponential_form if self.form == "exponential" else power_form
        return function(r, *self.parameters, period)


def enough_resamples(estimate: CorrelationEstimate, points: int) -> bool:
    """Whether an estimate has enough bootstrap resamples (more than twice the distances) for
    their covariance between `points` distances to weight a fit."""
    return len(estimate.resamples) > 2 * points


def fit_covariance(resamples: np.ndarray, value: np.ndarray) -> np.ndarray:
    """The covariance of C(r) between the fitted distances, from its bootstrap resamples (R, R).
    Each variance is floored, so that an exactly known point (C(0) of ±1 spins) stays invertible,
    and raised by a relative 1e-8, so that distances whose resamples move in lockstep (rank-
    deficient up to rounding) still give a Cholesky factor; neither changes χ² measurably."""
    covariance = np.atleast_2d(np.cov(resamples, rowvar=False))
    floor = (1e-12 * np.abs(value).max() + 1e-300) ** 2
    variance = np.diag(covariance)
    return covariance + np.diag(np.maximum(floor - variance, 0.0) + 1e-8 * variance + floor)


def fit_form(
    form: str,
    r: np.ndarray,
    value: np.ndarray,
    error: np.ndarray,
    period: float | None = None,
) -> FormFit:
    """Fit one form by scipy's curve_fit, weighted by `error`: standard deviations (R,) for
    independent errors or a covariance (R, R) for correlated ones (generalised least squares);
    starting values from the first two points' log-slope. Raises RuntimeError when the fit does
    not converge."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; choose one of {FORMS}")
    r, value = np.asarray(r, dtype=np.float64), np.asarray(value, dtype=np.float64)
    error = np.asarray(error, dtype=np.float64)
    if error.ndim == 1:
        sigma = np.maximum(error, 1e-12 * np.abs(value).max() + 1e-300)
        whiten = np.diag(1 / sigma)
    else:
        sigma = error
        whiten = np.linalg.inv(np.linalg.cholesky(error))  # χ² = |L⁻¹ residual|²
    size = 2 * r.max() if period is None else period
    positive = np.maximum(np.abs(value[:2]), 1e-300)
    if form == "exponential":
        function = exponential_form
        ratio = positive[0] / positive[1]
        shape = 1 / math.log(ratio) if ratio > 1 else size
        shape, bounds = float(np.clip(shape, 0.05, 100 * size)), (0.02, 1e3 * size)
    else:
        function = power_form
        d = chord_length(r[:2], period)
        shape = math.log(positive[0] / positive[1]) / math.log(d[1] / d[0])
        shape, bounds = float(np.clip(shape, 0.0, 5.0)), (0.0, 20.0)
    amplitude = positive[0] / function(r[0], 1.0, shape, period)
    parameters, _ = curve_fit(
        lambda x, a, s: function(x, a, s, period),
        r,
        value,
        p0=(amplitude, shape),
        sigma=sigma,
        absolute_sigma=True,
        bounds=((0.0, bounds[0]), (np.inf, bounds[1])),
        maxfev=10_000,
    )
    residual = whiten @ (function(r, *parameters, period) - value)
    return FormFit(form, parameters, float(residual @ residual))


SHAPE_GRID = 2000  # shapes tried per refit before parabolic refinement


def refit_resamples(
    form: str,
    r: np.ndarray,
    resamples: np.ndarray,
    covariance: np.ndarray,
    period: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """χ² and shape (ξ or η) of one form refitted to every bootstrap resample (B, R) at once,
    within fit_form's bounds and weights: for a fixed shape the best amplitude A ≥ 0 is linear
    least squares, so χ² is profiled over a grid of shapes (log-spaced for ξ) and the minimum
    refined by a parabola through its neighbours. Milliseconds for 200 resamples, where a
    scipy fit of each took seconds."""
    r = np.asarray(r, dtype=np.float64)
    whiten = np.linalg.inv(np.linalg.cholesky(covariance))
    data = np.asarray(resamples, dtype=np.float64) @ whiten.T  # (B, R), whitened
    size = 2 * r.max() if period is None else period
    if form == "exponential":
        function, grid = (
            exponential_form,
            np.linspace(math.log(0.02), math.log(1e3 * size), SHAPE_GRID),
        )
        shape_of = np.exp  # the grid is in ln ξ
    else:
        function, grid = power_form, np.linspace(0.0, 20.0, SHAPE_GRID)
        shape_of = np.asarray

    def curves(coordinates: np.ndarray) -> np.ndarray:  # (N, R) whitened unit-amplitude forms
        shapes = shape_of(coordinates)
        return np.stack([function(r, 1.0, shape, period) for shape in shapes]) @ whiten.T

    total = (data * data).sum(1)
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        on_grid = curves(grid)
        overlap = np.maximum(data @ on_grid.T, 0)  # (B, S); A = overlap / norm ≥ 0
        chi2 = total[:, None] - overlap**2 / (on_grid * on_grid).sum(1)
        best = np.clip(np.nanargmin(chi2, axis=1), 1, SHAPE_GRID - 2)
        rows = np.arange(len(data))
        left, middle, right = chi2[rows, best - 1], chi2[rows, best], chi2[rows, best + 1]
        curvature = left - 2 * middle + right
        step = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
        refined = grid[best] + np.clip(step, -1, 1) * (grid[1] - grid[0])
        at_refined = curves(refined)
        refined_overlap = np.maximum(np.einsum("br,br->b", data, at_refined), 0)
        refined_chi2 = total - refined_overlap**2 / np.einsum("br,br->b", at_refined, at_refined)
    better = refined_chi2 <= middle
    return np.where(better, refined_chi2, middle), shape_of(np.where(better, refined, grid[best]))


def fit_correlation_length(
    estimate: CorrelationEstimate, *, r_min: int = 1, period: float | None = None
) -> tuple[float, float]:
    """ξ of the cosh form fitted to an estimate (with its bootstrap covariance) for r ≥ r_min, and
    the 68% half-width of ξ refitted on every resample; for the zero-momentum correlator this is
    the inverse mass gap. NaN where the fit does not converge."""
    keep = fit_mask(estimate.distance, r_min)
    if keep.sum() < MIN_FIT_POINTS or not enough_resamples(estimate, int(keep.sum())):
        return math.nan, math.nan
    r, covariance = (
        estimate.distance[keep],
        fit_covariance(estimate.resamples[:, keep], estimate.value[keep]),
    )
    try:
        xi = fit_form("exponential", r, estimate.value[keep], covariance, period).parameters[1]
    except (RuntimeError, ValueError):
        return math.nan, math.nan
    _, refits = refit_resamples("exponential", r, estimate.resamples[:, keep], covariance, period)
    return float(xi), _half_width(refits)


def _half_width(values: np.ndarray) -> float:
    """The 68% half-width of bootstrap refits (NaN without any)."""
    values = values[~np.isnan(values)]
    return float(np.subtract(*np.percentile(values, [84, 16])) / 2) if len(values) else np.nan


@dataclass(frozen=True)
class DecaySelection:
    """Both fits on the full-sample C(r), their Akaike weights, and bootstrap statistics: the
    fraction of resamples in which each form has the lower AIC, and the 68% half-width of the
    refitted ξ and η (NaN where a refit failed)."""

    fits: tuple[FormFit, FormFit]
    akaike_weights: np.ndarray  # (2,) in FORMS order
    win_fraction: np.ndarray  # (2,)
    xi_error: float
    eta_error: float
    fit_distance: np.ndarray
    phase_fraction: np.ndarray  # (2,): resamples whose phase is each form's (with eta_max)
    eta_max: float | None = None

    @property
    def p_values(self) -> np.ndarray:
        """(2,) probability of a χ² at least this large if the form were right (NaN without dof)."""
        dof = len(self.fit_distance) - 2
        if dof < 1:
            return np.full(2, np.nan)
        return np.array([chi2_distribution.sf(fit.chi2, dof) for fit in self.fits])

    @property
    def accepted(self) -> np.ndarray:
        """(2,) whether each form's χ² is acceptable (p ≥ ACCEPTABLE_P)."""
        return self.p_values >= ACCEPTABLE_P

    @property
    def best(self) -> str:
        return FORMS[int(np.argmin([fit.aic for fit in self.fits]))]

    @property
    def phase(self) -> str:
        """The decay form that names the phase: the AIC choice, unless η exceeds eta_max."""
        return _phase(self.best, float(self.fits[1].parameters[1]), self.eta_max)

    @property
    def confidence(self) -> float:
        """Fraction of bootstrap resamples that agree with the full-sample phase."""
        return float(self.phase_fraction[FORMS.index(self.phase)])


def _phase(best: str, eta: float, eta_max: float | None) -> str:
    if best == "power law" and eta_max is not None and eta > eta_max:
        return "exponential"
    return best


def fit_mask(distance: np.ndarray, r_min: int) -> np.ndarray:
    """The distances the fits use: r ≥ r_min, and never r = 0, where the power law is infinite."""
    return np.asarray(distance) >= max(r_min, 1)


def decaying_range(value: np.ndarray, error: np.ndarray, r_min: int) -> np.ndarray:
    """Mask of the distances r_min ≤ r < r_stop, where r_stop is the first distance at which C(r)
    is no longer above twice its error or no longer falling: beyond it a decay form cannot hold."""
    keep = np.zeros(len(value), dtype=bool)
    start = max(r_min, 1)
    for r in range(start, len(value)):
        if value[r] <= 2 * error[r] or (r > start and value[r] >= value[r - 1]):
            break
        keep[r] = True
    return keep


def select_decay(
    estimate: CorrelationEstimate,
    *,
    r_min: int = 1,
    r_max: int | None = None,
    period: float | None = None,
    eta_max: float | None = None,
) -> DecaySelection:
    """Fit both forms for r_min ≤ r ≤ r_max (default: every distance) and choose by AIC (and
    `eta_max`, see the module docstring), weighted by the resamples' covariance; refit every
    bootstrap resample with the same covariance to see how stable the choice and the parameters
    are."""
    keep = fit_mask(estimate.distance, r_min)
    if r_max is not None:
        keep &= estimate.distance <= r_max
    if keep.sum() < MIN_FIT_POINTS:
        raise ValueError(
            f"r_min={r_min} leaves {int(keep.sum())} distance(s) up to "
            f"{estimate.distance[-1] if r_max is None else r_max}; the fits need at least "
            f"{MIN_FIT_POINTS}: lower r_min (it must stay ≥ 1) or use a larger lattice"
        )
    if not enough_resamples(estimate, int(keep.sum())):
        raise ValueError(
            f"{len(estimate.resamples)} bootstrap resamples cannot estimate the covariance of "
            f"C(r) at {int(keep.sum())} distances: use at least {2 * keep.sum() + 1} resamples"
        )
    r = estimate.distance[keep]
    error = fit_covariance(estimate.resamples[:, keep], estimate.value[keep])
    try:
        fits = tuple(fit_form(form, r, estimate.value[keep], error, period) for form in FORMS)
    except RuntimeError:
        raise ValueError(
            f"a fit of C(r) for r ≥ {r_min} did not converge: try another r_min or more samples"
        ) from None
    aic = np.array([fit.aic for fit in fits])
    akaike = np.exp(-(aic - aic.min()) / 2)
    refits = np.full((len(estimate.resamples), 2, 2), np.nan)  # (resample, form, [aic, shape])
    for f, form in enumerate(FORMS):
        chi2, shape = refit_resamples(form, r, estimate.resamples[:, keep], error, period)
        refits[:, f] = np.column_stack([chi2 + 2 * 2, shape])  # AIC = χ² + 2k, k = 2
    both = np.isfinite(refits[:, :, 0]).all(1)
    winners = np.argmin(refits[both, :, 0], axis=1)
    win_fraction = np.bincount(winners, minlength=2) / max(1, both.sum())
    phases = [
        FORMS.index(_phase(FORMS[w], eta, eta_max))
        for w, eta in zip(winners, refits[both, 1, 1], strict=True)
    ]
    phase_fraction = np.bincount(phases, minlength=2) / max(1, both.sum())

    return DecaySelection(
        fits=fits,
        akaike_weights=akaike / akaike.sum(),
        win_fraction=win_fraction,
        xi_error=_half_width(refits[:, 0, 1]),
        eta_error=_half_width(refits[:, 1, 1]),
        fit_distance=r,
        phase_fraction=phase_fraction,
        eta_max=eta_max,
    )
