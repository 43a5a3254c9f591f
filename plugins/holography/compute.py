"""What holography measures: where each latent site sits in the bulk (`receptive_centres`,
`bulk_distances`), the scores of the effective action (`effective_action_gradient`), and what one
route reads from one ensemble (`read_geometry`): the pair statistic's law, the censored χ² fits of
each geometry (`decay_fit`), their jackknife errors and the verdict (`decide`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
from scipy.optimize import minimize

from rginspect.chains import Chains, jackknife_error
from rginspect.information import (
    PairLaw,
    jackknife_pair_mi,
    pair_effective_samples,
    pair_law,
    pairwise_gaussian_mi,
    periodic_distance,
)
from rginspect.jacobian import decoder_jacobian, field_sizes, receptive_fields
from rginspect.model import RGFlowModel

GEOMETRIES = ("hyperbolic", "flat")
MI_ROUTE, ACTION_ROUTE = "mutual information", "effective action"
NO_INFORMATION = "no residual information"
DECIDING_Z = 3.0  # jackknife errors by which a geometry must win, and a slope exceed 0
DECISIVE_LOG_LIKELIHOOD = 5.0  # and a likelihood ratio of e^5 (ΔAIC 10, equal parameters)
GRADIENT_BATCH = 64  # fields per effective-action gradient: its graph holds every layer's output
BULK_POINTS = (
    "bulk point of a latent site: boundary position at the centre (circular mean on the torus) of "
    "its receptive field, the mean |∂x/∂ζ| of the exact decoder Jacobian; depth 2^level; "
    "boundary separations by the minimum image on the periodic lattice"
)


@dataclass(frozen=True)
class DecayFit:
    """ln I = log_i0 − slope · distance, at the maximum of the censored χ² likelihood."""

    log_i0: float
    slope: float
    log_likelihood: float


NO_FIT = DecayFit(np.nan, np.nan, np.nan)


@dataclass(frozen=True)
class Reading:
    """What one route reads from one ensemble: the law of its pair statistic, the pairs, the
    fits per geometry with their jackknife errors, and the verdict."""

    law: PairLaw  # on the pairs (i < j)
    raw: np.ndarray  # plug-in pair statistic
    samples: int
    count: int
    excess: float
    fits: dict[str, DecayFit]
    slope_error: list[float]
    log_ratio: float
    log_ratio_error: float
    verdict: str

    @property
    def mi(self) -> np.ndarray:
        return self.raw - self.law.bias()

    @property
    def above(self) -> np.ndarray:
        return self.law.statistic(self.raw) > self.law.threshold


def read_geometry(
    vectors: np.ndarray,
    chains: Chains,
    distances: dict[str, np.ndarray],
    rng: np.random.Generator,
    null_ensembles: int,
    groups: int,
) -> Reading:
    """The bulk geometry that the pair statistic of (samples, sites, C) `vectors` in `chains`
    follows, with `distances` per geometry over the pairs i < j (np.triu_indices order)."""
    vectors = chains.kept(vectors)
    i, j = np.triu_indices(vectors.shape[1], 1)
    full_law = pair_law(vectors, chains, rng, null_ensembles=null_ensembles)
    law = full_law.on_pairs(i, j)
    raw = pairwise_gaussian_mi(vectors)[i, j]
    count = int((law.statistic(raw) > law.threshold).sum())
    nan_pair = [np.nan, np.nan]
    if not law.has_information(count):
        fits = dict.fromkeys(GEOMETRIES, NO_FIT)
        return Reading(
            law, raw, chains.n_samples, count, law.excess(count), fits, nan_pair, np.nan, np.nan,
            NO_INFORMATION,
        )  # fmt: skip
    usable = np.isfinite(raw)
    fits = {
        g: decay_fit(distances[g][usable], raw[usable], law_on(law, usable)) for g in GEOMETRIES
    }
    replicates = []
    parts = chains.jackknife_groups(groups)
    left_out = [part for part, _ in parts]
    for (_, rest), part_mi in zip(parts, jackknife_pair_mi(vectors, left_out), strict=True):
        part_raw = part_mi[i, j]
        # each replicate's own effective samples: their noise moves the bias it removes
        nu = pair_effective_samples(vectors, rest) / full_law.calibration
        part_law = replace(law, effective_samples=nu[i, j])
        ok = usable & np.isfinite(part_raw)
        part_fits = [
            decay_fit(distances[g][ok], part_raw[ok], law_on(part_law, ok), start=fits[g])
            for g in GEOMETRIES
        ]
        replicates.append(
            [f.slope for f in part_fits]
            + [part_fits[0].log_likelihood - part_fits[1].log_likelihood]
        )
    errors = jackknife_error(np.array(replicates))
    log_ratio = fits["hyperbolic"].log_likelihood - fits["flat"].log_likelihood
    slope_error = [float(errors[0]), float(errors[1])]
    verdict = decide(fits, slope_error, log_ratio, float(errors[2]))
    return Reading(
        law, raw, chains.n_samples, count, law.excess(count), fits, slope_error, log_ratio,
        float(errors[2]), verdict,
    )  # fmt: skip


def law_on(law: PairLaw, kept: np.ndarray) -> PairLaw:
    """The law of a subset (a boolean mask) of the pairs a pair law holds."""
    return replace(law, effective_samples=law.effective_samples[kept])


def decide(
    fits: dict[str, DecayFit], slope_error: list[float], log_ratio: float, log_ratio_error: float
) -> str:
    """The geometry whose likelihood wins decisively and whose information decays, else
    'undecided'."""
    winner = "hyperbolic" if log_ratio > 0 else "flat"
    decisive = abs(log_ratio) > max(DECIDING_Z * log_ratio_error, DECISIVE_LOG_LIKELIHOOD)
    error = slope_error[GEOMETRIES.index(winner)]
    decays = fits[winner].slope > DECIDING_Z * error
    return winner if decisive and decays else "undecided"


def decay_fit(
    distance: np.ndarray, raw: np.ndarray, law: PairLaw, start: DecayFit | None = None
) -> DecayFit:
    """Maximum likelihood of I = exp(log_i0 − slope · distance) given every pair's plug-in
    estimate and its censored noncentral χ² law (law.effective_samples over these pairs)."""

    def negative_log_likelihood(theta: np.ndarray) -> tuple[float, np.ndarray]:
        mi = np.exp(np.minimum(theta[0] - theta[1] * distance, 50.0))
        value, slope = law.log_likelihood(raw, mi)
        along = slope * mi  # ∂ℓ/∂ln I per pair
        return -float(value.sum()), -np.array([along.sum(), -(along * distance).sum()])

    if start is not None:
        starts = [np.array([start.log_i0, start.slope])]
    else:  # a line through the pairs above the floor, and a flat and a steep variant of it
        above = law.statistic(raw) > law.threshold
        level = np.log(max(float(np.mean(np.maximum(raw - law.bias(), 0))), 1e-8))
        slope = 0.0
        if above.sum() >= 3 and np.ptp(distance[above]) > 0:
            corrected = np.maximum(raw - law.bias(), law.bias())[above]
            slope, level = np.polyfit(distance[above], np.log(corrected), 1)
            slope = -slope
        starts = [np.array([level, s]) for s in (slope, 0.0, 2 * slope + 1)]
    best = min(
        (minimize(negative_log_likelihood, s, jac=True, method="L-BFGS-B") for s in starts),
        key=lambda fit: fit.fun,
    )
    return DecayFit(float(best.x[0]), float(best.x[1]), -float(best.fun))


def effective_action_gradient(model: RGFlowModel, z: torch.Tensor) -> torch.Tensor:
    """∇_ζ S_eff at each latent sample, S_eff(ζ) = S(G(ζ)) − ln|det ∂G/∂ζ| with G the decoder
    (a flow acts on each sample alone, so the gradient of the batch's sum is each sample's)."""

    def total(zeta: torch.Tensor) -> torch.Tensor:
        x, log_det = model.decode(zeta)
        return (model.action(x) - log_det).sum()

    with torch.enable_grad():  # detached: through the parameters it would keep its graph alive
        return torch.func.grad(total)(z).detach()


def receptive_centres(
    model: RGFlowModel, z: torch.Tensor, progress: Callable = lambda items, **_: items
) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each latent site's receptive-field centre: the circular mean of Σ over the
    site's channels of the mean |∂x/∂ζ| over the samples z, exact for any flow."""
    values, _ = decoder_jacobian(model, z, progress=progress)
    fields = receptive_fields(values, model)  # (latent, site), latents channel-major
    channels, height, width = model.data_shape
    sites = height * width
    per_site = sp.vstack([fields[c * sites : (c + 1) * sites] for c in range(channels)])
    summed = (
        sp.csr_matrix(
            (
                np.ones(channels * sites),
                (np.tile(np.arange(sites), channels), np.arange(channels * sites)),
            ),
            shape=(sites, channels * sites),
        )
        @ per_site
    )
    centre_y, centre_x, *_ = field_sizes(summed, height, width)
    return centre_y, centre_x


def bulk_distances(
    rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, L: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-radius hyperbolic geodesics and flat distances between all bulk points, symmetric
    exactly: every term is a sum, product or square of differences, whose order cannot matter."""
    boundary = periodic_distance(rows, cols, L)
    dz = depth[:, None] - depth[None, :]
    geodesic = np.arccosh(1 + (boundary**2 + dz**2) / (2 * depth[:, None] * depth[None, :]))
    return geodesic, np.hypot(boundary, dz)
