"""Two-point functions and what their decay says about the phase.

C(r) = Σ_c ⟨φ_c(x) φ_c(x + r)⟩, averaged over sites x and both lattice axes, is computed for every
sample at once by FFT (Wiener–Khinchin), so it costs O(N log N) per sample at any lattice size.
Errors come from resampling independent units of samples (rginspect.physics.montecarlo: single
samples, whole HMC chains, or a single chain's stretches raised to arviz's Monte Carlo error), each
resample with its own covariance of C(r). Two forms are fitted to C(r):
- exponential decay, on a periodic lattice the sum of the two images A [e^{−r/ξ} + e^{−(L−r)/ξ}]
  (the cosh form A' cosh((r − L/2)/ξ), written so that no term overflows when ξ ≪ L);
- power-law decay B d(r)^{−η}, with the chord length d(r) = (L/π) sin(π r/L) on a periodic lattice.
Without periodicity (images) they reduce to A e^{−r/ξ} and B r^{−η}. Both have two parameters, so
the Akaike criterion AIC = χ² + 2k picks the form with the smaller χ², and refitting every bootstrap
resample says how often that choice would change. χ² is generalised least squares with the
covariance of C(r) between distances estimated from the units: C(r) and C(r+1) share every sample,
so their errors are 90–99% correlated, and a χ² from the diagonal errors alone is far too small to
reject a form. Its inverse is too large by the Hartlap factor for a covariance estimated from N
units, so χ² is scaled by it. Every resample is refitted with its own covariance: a form that
misses C(r) (χ²/dof in the hundreds at 4096 flow samples) moves with the noise of its weights,
which one covariance shared by all refits hid (η's errors were 2.6× too small).

A fit is only as good as its χ²: `DecaySelection.p_values` are the χ² tail probabilities (with
two parameters fitted), and a form with p < ACCEPTABLE_P does not describe C(r). Image correlations
need not decay monotonically (MSDS tiles repeat every few pixels, so C(r) crosses zero and rises
again); `decaying_range` is the stretch a decay form can describe at all.

The phase follows the form, with one physical bound: in a 2D O(2) field quasi-long-range order has
η ≤ 1/4 (the BKT value at the transition), and a one-component field is critical only at the Ising
point, η = 1/4; so a power law whose η lies above 1/4 beyond its error is a correlation length, not
order or criticality (a short ξ, where a single cosh misses the Ornstein–Zernike form, is fitted
better by a steep power law); `eta_max` applies such a bound to the full sample (on η's 68%
interval) and to every resample (on its η).
A one-component field (Ising, real φ⁴) can order truly: C(r) then plateaus at m₀² and the site-
averaged magnetisation m sits at ±m₀. Neither decay form has a plateau, so order is read from m's
distribution instead, by Binder's cumulant U = 1 − ⟨m⁴⟩/(3⟨m²⟩²): 0 for a Gaussian m (disorder),
2/3 for m = ±m₀ (order), and at the critical point a value that falls towards the universal U* of
the 2D Ising class as L grows, from above (0.6172 at L = 4, 0.6131 at L = 8, U* = 0.6107): U above
U* alone reads the critical point as ordered, so the ordered side needs U above the finite-size
U_L(K_c) (rginspect.physics.exact.ising_critical_binder) beyond its errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import curve_fit
from scipy.stats import chi2 as chi2_distribution

from .montecarlo import Layout, hartlap_factor, resample

FORMS = ("exponential", "power law")
# two parameters per form: with two points both fit exactly and AIC cannot choose
MIN_FIT_POINTS = 3
# a fit whose χ² is this improbable (for its degrees of freedom) does not describe the data
ACCEPTABLE_P = 1e-3
# below this many effective samples (arviz's ESS) neither τ_int nor the errors can be trusted: a
# chain that holds a few states for long stretches looks precise and is not
MIN_EFFECTIVE_SAMPLES = 100
# bootstrap resamples per fitted distance, so that the refits' spread is not itself noise
RESAMPLES_PER_POINT = 5
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


def binder_cumulant(
    fields: torch.Tensor, *, n_resamples: int, layout: Layout | None, rng: np.random.Generator
) -> tuple[float, np.ndarray]:
    """U = 1 − ⟨m⁴⟩/(3⟨m²⟩²) of the site-averaged one-component field m, and U of every bootstrap
    resample of the layout's units (None: independent samples). The sign of m does not enter, so
    a chain that never tunnels between ±m₀ still measures it."""
    if fields.shape[1] != 1:
        raise ValueError(f"Binder's cumulant needs a one-component field, got {fields.shape[1]}")
    m = fields.double().mean((1, 2, 3)).cpu().numpy()
    layout = Layout.independent(len(m)) if layout is None else layout
    moments = resample(np.column_stack([m**2, m**4]), layout, n_resamples, rng).estimates
    u = 1 - moments[:, 1] / (3 * moments[:, 0] ** 2)
    return float(u[0]), u[1:]


@dataclass(frozen=True)
class CorrelationEstimate:
    """C(r) from all samples, its error and covariance between distances, and every bootstrap
    resample's C(r) with that resample's own covariance."""

    distance: np.ndarray  # (R,) r = 0..L//2
    value: np.ndarray  # (R,)
    error: np.ndarray  # (R,)
    resamples: np.ndarray  # (n_resamples, R)
    covariance: np.ndarray  # (R, R) of value
    resample_covariances: np.ndarray  # (n_resamples, R, R)
    units: int  # independent units of samples behind the covariance
    effective_samples: float  # arviz's ESS of the slowest distance (n for independent samples)
    samples: int
    inflation: float = 1.0  # a single chain's units' spread raised to arviz's MCSE by this factor

    @property
    def autocorrelation_time(self) -> float:
        """τ_int = n / ESS."""
        return self.samples / max(self.effective_samples, 1e-300)

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
    layout: Layout | None = None,
    rng: np.random.Generator,
    correlator: Callable[..., torch.Tensor] = two_point_function,
) -> CorrelationEstimate:
    """C(r) with errors from resampling the units of `layout` (None: independent samples; a
    Markov chain in its order: Layout.chains or Layout.chain). `connected` subtracts the mean
    field's own two-point function, with the mean recomputed in every resample: the site-averaged
    mean per channel on a periodic lattice (translation invariance), the mean per pixel and
    channel otherwise (images); its covariance is that of the full C(r), the subtracted part
    being a square of means whose noise is smaller by a factor √n.
    `correlator` is the per-sample function: C(r) by default, or `zero_momentum_function`."""
    n = len(fields)
    if n < 2:
        raise ValueError(f"a correlation estimate needs at least 2 samples, got {n}")
    per_sample = correlator(fields, periodic=periodic).cpu().numpy()
    layout = Layout.independent(n) if layout is None else layout
    resampled = resample(per_sample, layout, n_resamples, rng)
    estimates = resampled.estimates
    if connected:
        flat = fields.double().reshape(n, -1).cpu()
        mean = (torch.from_numpy(resampled.weights) @ flat).reshape(-1, *fields.shape[1:])
        if periodic:
            mean = mean.mean((2, 3), keepdim=True).expand(-1, -1, *fields.shape[2:])
        estimates = estimates - resampled.spread(correlator(mean, periodic=periodic).numpy())
    return CorrelationEstimate(
        distance=np.arange(per_sample.shape[1]),
        value=estimates[0],
        error=np.sqrt(np.diag(resampled.covariance)),
        resamples=estimates[1:],
        covariance=resampled.covariance,
        resample_covariances=resampled.covariances,
        units=resampled.units,
        effective_samples=resampled.effective_samples,
        samples=n,
        inflation=resampled.inflation,
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
    """Whether an estimate can weight a fit over `points` distances: RESAMPLES_PER_POINT bootstrap
    resamples per distance, and more independent units than points + 2 (the Hartlap factor)."""
    return len(estimate.resamples) >= RESAMPLES_PER_POINT * points and estimate.units > points + 2


def fit_covariance(covariance: np.ndarray, value: np.ndarray) -> np.ndarray:
    """A covariance of C(r) (R, R), or one per resample (B, R, R), made safe to invert: each
    variance is floored, so that an exactly known point (C(0) of ±1 spins) stays invertible, and
    raised by a relative 1e-8, so that distances that move in lockstep (rank-deficient up to
    rounding) still give a Cholesky factor; neither changes χ² measurably."""
    floor = (1e-12 * np.abs(value).max() + 1e-300) ** 2
    variance = np.diagonal(covariance, axis1=-2, axis2=-1)
    raise_by = np.maximum(floor - variance, 0.0) + 1e-8 * variance + floor
    return covariance + raise_by[..., None] * np.eye(covariance.shape[-1])


def _fitted(estimate: CorrelationEstimate, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The covariance of the kept distances and every resample's, divided by the Hartlap factor
    of the estimate's units, so that χ² with their inverses is unbiased."""
    hartlap = hartlap_factor(estimate.units, int(keep.sum()))
    value = estimate.value[keep]
    covariance = fit_covariance(estimate.covariance[np.ix_(keep, keep)], value)
    resampled = fit_covariance(estimate.resample_covariances[:, keep][:, :, keep], value)
    return covariance / hartlap, resampled / hartlap


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


SHAPE_GRID = 2000  # shapes tried per refit before the minimum is refined
REFINEMENTS = 3  # zooms of a 21-point grid about the minimum, each 10× finer


def refit_resamples(
    form: str,
    r: np.ndarray,
    resamples: np.ndarray,
    covariance: np.ndarray,
    period: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """χ² and shape (ξ or η) of one form refitted to every bootstrap resample (B, R) at once,
    within fit_form's bounds, weighted by one covariance (R, R) or each resample's own
    (B, R, R): for a fixed shape the best amplitude A ≥ 0 is linear least squares, so χ² is
    profiled over a grid of shapes (log-spaced for ξ), then over finer grids about each
    minimum and a last parabola, to a thousandth of a percent of the first grid's step (a
    parabola through the first grid alone moved η by a good part of its error)."""
    r = np.asarray(r, dtype=np.float64)
    resamples = np.asarray(resamples, dtype=np.float64)
    whiten = np.linalg.inv(np.linalg.cholesky(covariance))  # (R, R) or (B, R, R)
    if whiten.ndim == 2:
        whiten = np.broadcast_to(whiten, (len(resamples), *whiten.shape))
    data = np.einsum("bij,bj->bi", whiten, resamples)  # whitened
    size = 2 * r.max() if period is None else period
    if form == "exponential":
        function, low, high = exponential_form, math.log(0.02), math.log(1e3 * size)
        shape_of = np.exp  # the grid is in ln ξ
    else:
        function, low, high = power_form, 0.0, 20.0
        shape_of = np.asarray
    total = (data * data).sum(1)

    def profile(coordinates: np.ndarray) -> np.ndarray:  # (B, S) χ² profiled over A ≥ 0
        unit = function(r, 1.0, shape_of(coordinates)[..., None], period)  # (..., R)
        if unit.ndim == 2:
            curves = np.einsum("bij,sj->bsi", whiten, unit)
        else:
            curves = np.einsum("bij,bsj->bsi", whiten, unit)
        overlap = np.maximum(np.einsum("bi,bsi->bs", data, curves), 0)
        return total[:, None] - overlap**2 / np.einsum("bsi,bsi->bs", curves, curves)

    rows = np.arange(len(data))
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        grid = np.linspace(low, high, SHAPE_GRID)
        chi2 = profile(grid)
        best = np.nanargmin(np.where(np.isfinite(chi2), chi2, np.nan), axis=1)
        centre, step = grid[best], grid[1] - grid[0]
        for _ in range(REFINEMENTS):
            local = np.clip(centre[:, None] + step * np.linspace(-1, 1, 21), low, high)
            chi2 = profile(local)
            best = np.clip(np.nanargmin(chi2, axis=1), 1, 19)
            centre, step = local[rows, best], step / 10
        left, middle, right = chi2[rows, best - 1], chi2[rows, best], chi2[rows, best + 1]
        curvature = left - 2 * middle + right
        shift = np.where(curvature > 0, 0.5 * (left - right) / curvature, 0.0)
        refined = np.clip(centre + np.clip(shift, -1, 1) * step, low, high)
        refined_chi2 = profile(refined[:, None])[:, 0]
    better = refined_chi2 <= middle
    return np.where(better, refined_chi2, middle), shape_of(np.where(better, refined, centre))


def fit_correlation_length(
    estimate: CorrelationEstimate, *, r_min: int = 1, period: float | None = None
) -> tuple[float, float]:
    """ξ of the cosh form fitted to an estimate (with its covariance) for r ≥ r_min, and the 68%
    half-width of ξ refitted on every resample with its own covariance; for the zero-momentum
    correlator this is the inverse mass gap. NaN where the fit does not converge."""
    keep = fit_mask(estimate.distance, r_min)
    if keep.sum() < MIN_FIT_POINTS or not enough_resamples(estimate, int(keep.sum())):
        return math.nan, math.nan
    r = estimate.distance[keep]
    covariance, resampled = _fitted(estimate, keep)
    try:
        xi = fit_form("exponential", r, estimate.value[keep], covariance, period).parameters[1]
    except (RuntimeError, ValueError):
        return math.nan, math.nan
    _, refits = refit_resamples("exponential", r, estimate.resamples[:, keep], resampled, period)
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
    hartlap: float = 1.0  # the factor χ² was scaled by (a covariance from finitely many units)

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
        """The decay form that names the phase: the AIC choice, unless η's 68% interval lies
        above eta_max."""
        eta = float(self.fits[1].parameters[1])
        error = self.eta_error if np.isfinite(self.eta_error) else 0.0
        return _phase(self.best, eta - error, self.eta_max)

    @property
    def confidence(self) -> float:
        """Fraction of bootstrap resamples that agree with the full-sample phase."""
        return float(self.phase_fraction[FORMS.index(self.phase)])


def _phase(best: str, eta: float, eta_max: float | None) -> str:
    """The AIC choice, or the exponential (a correlation length) for a power law steeper than
    eta_max."""
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
    `eta_max`, see the module docstring), weighted by the estimate's covariance with the Hartlap
    factor; refit every bootstrap resample with its own covariance to see how stable the choice
    and the parameters are."""
    keep = fit_mask(estimate.distance, r_min)
    if r_max is not None:
        keep &= estimate.distance <= r_max
    if keep.sum() < MIN_FIT_POINTS:
        raise ValueError(
            f"r_min={r_min} leaves {int(keep.sum())} distance(s) up to "
            f"{estimate.distance[-1] if r_max is None else r_max}; the fits need at least "
            f"{MIN_FIT_POINTS}: lower r_min (it must stay ≥ 1) or use a larger lattice"
        )
    points = int(keep.sum())
    if len(estimate.resamples) < RESAMPLES_PER_POINT * points:
        raise ValueError(
            f"{len(estimate.resamples)} bootstrap resamples are too few for fits at {points} "
            f"distances: use at least {RESAMPLES_PER_POINT * points} resamples"
        )
    if estimate.units <= points + 2:
        raise ValueError(
            f"a covariance of C(r) at {points} distances needs more than {points + 2} "
            f"independent units of samples, got {estimate.units}: draw more samples or chains"
        )
    r = estimate.distance[keep]
    error, resampled = _fitted(estimate, keep)
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
        chi2, shape = refit_resamples(form, r, estimate.resamples[:, keep], resampled, period)
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
        hartlap=hartlap_factor(estimate.units, points),
    )
