"""What disentangle measures: each latent's activity, and the cross-validated R² of MSDS
ground-truth factors from each level's latents (all of them, an equal budget, the ellipse's cone)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import xarray as xr
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold

from rginspect.data.msds import FACTOR_NAMES as MSDS_FACTOR_NAMES

if TYPE_CHECKING:
    from rginspect.model import RGFlowModel

ACTIVE_THRESHOLD = 0.01  # a latent is active when its encoded variance exceeds 1% of the prior's
RIDGE_ALPHAS = np.logspace(-3, 6, 19)  # wide enough for 48 to 2304 standardized features
MSDS1_COLOUR_RANGE = 64  # MSDS1 colours are c0 + U{-32..32}: within an image no channel spans more


@dataclass(frozen=True)
class Factor:
    """A ground-truth factor as regression targets (sample, ellipse, component); ellipse has
    length 1 for a global factor. Its R² is the mean over ellipses and components."""

    name: str
    scale: str  # "global" or "local"
    description: str
    targets: np.ndarray


def activity_dataset(model: RGFlowModel, z: np.ndarray) -> xr.Dataset:
    """Each latent's variance over the encoded inputs against the prior's, and per level its
    mean and the fraction above ACTIVE_THRESHOLD."""
    prior_variance = model.prior.std() ** 2
    ratio = z.var(axis=0) / prior_variance
    levels = np.arange(model.n_levels)
    level_of = model.latent_level
    return xr.Dataset(
        {
            "latent_variance_ratio": (
                ("channel", "row", "col"),
                ratio,
                {"long_name": "variance of the encoded inputs / prior variance"},
            ),
            "activity_ratio": (
                "level",
                [ratio[level_of == level].mean() for level in levels],
                {"long_name": "mean over the level of encoded variance / prior variance"},
            ),
            "active_fraction": (
                "level",
                [(ratio[level_of == level] > ACTIVE_THRESHOLD).mean() for level in levels],
                {"long_name": f"fraction of latents with variance ratio > {ACTIVE_THRESHOLD}"},
            ),
            "latents": ("level", model.latents_per_level(), {"long_name": "latents"}),
        },
        coords={
            "level": ("level", levels, {"long_name": "RG level (0 = finest)"}),
            "channel": np.arange(model.data_shape[0]),
            "row": np.arange(model.data_shape[1]),
            "col": np.arange(model.data_shape[2]),
            "latent_level": (("channel", "row", "col"), level_of),
        },
        attrs={
            "samples": len(z),
            "prior": model.prior.kind,
            "prior_variance": prior_variance,
            "active_threshold": ACTIVE_THRESHOLD,
        },
    )


def r2_tables(
    model: RGFlowModel,
    z: np.ndarray,
    factors: list[Factor],
    centres: np.ndarray,
    parameters: dict,
    seed: int,
) -> xr.Dataset:
    """The three R² tables: all latents of a level, an equal budget of them, the ellipse's cone."""
    folds, draws = parameters["folds"], parameters["budget_draws"]
    latent_sets = _latent_sets(model)
    budget = parameters["budget"] or len(latent_sets[-1])
    rng = np.random.default_rng(seed)
    r2_all, r2_budget, r2_budget_std = [], [], []
    for latents in latent_sets:
        r2_all.append(factor_r2(z[:, latents], factors, folds, seed))
        subsets = budget_subsets(latents, budget, draws, rng)
        scores = np.array([factor_r2(z[:, subset], factors, folds, seed) for subset in subsets])
        r2_budget.append(scores.mean(0))
        r2_budget_std.append(scores.std(0))
    local = [f for f in factors if f.scale == "local"]
    r2_cone, cone_latents = cone_r2(z, model, local, centres, folds, seed)
    r2 = {"units": "1"}
    return xr.Dataset(
        {
            "r2_all": (("level", "factor"), r2_all, r2 | {"long_name": "CV R² from all latents"}),
            "r2_budget": (
                ("level", "factor"),
                r2_budget,
                r2 | {"long_name": "CV R² from an equal budget of random latents per level"},
            ),
            "r2_budget_std": (
                ("level", "factor"),
                r2_budget_std,
                r2 | {"long_name": "spread of the equal-budget R² over the random draws"},
            ),
            "r2_cone": (
                ("level", "local_factor"),
                r2_cone,
                r2 | {"long_name": "CV R² from the latents whose cone covers the ellipse centre"},
            ),
            "budget_latents": (
                "level",
                [min(budget, len(latents)) for latents in latent_sets],
                {"long_name": "latents in the budget"},
            ),
            "cone_latents": (
                ("level", "ellipse"),
                cone_latents,
                {"long_name": "latents of the level whose cone covers the ellipse centre"},
            ),
        },
        coords={
            "level": np.arange(model.n_levels),
            "factor": [f.name for f in factors],
            "factor_scale": ("factor", [f.scale for f in factors]),
            "factor_description": ("factor", [f.description for f in factors]),
            "local_factor": [f.name for f in local],
            "ellipse": np.arange(len(centres)),
            "ellipse_x": ("ellipse", centres[:, 0], {"long_name": "centre column used for cones"}),
            "ellipse_y": ("ellipse", centres[:, 1], {"long_name": "centre row used for cones"}),
        },
        attrs={
            "budget": budget,
            "budget_draws": draws,
            "ridge_alphas": json.dumps(RIDGE_ALPHAS.tolist()),
        },
    )


def msds_kind(labels: np.ndarray | None, factor_names: tuple[str, ...] | None) -> str | None:
    """ "msds1" or "msds2" for MSDS ellipse labels, else None (no labels, or other labels).

    Told apart by colour: MSDS1 ellipses share a base colour, so within an image no channel
    spans more than 64 levels; sixteen independent MSDS2 colours essentially always do.
    """
    if labels is None or tuple(factor_names or ()) != MSDS_FACTOR_NAMES or labels.ndim != 3:
        return None
    colours = labels[..., _columns(factor_names, "R", "G", "B")]
    spread = colours.max(axis=1) - colours.min(axis=1)
    return "msds1" if spread.max() <= MSDS1_COLOUR_RANGE else "msds2"


def msds_factors(kind: str, labels: np.ndarray) -> list[Factor]:
    """The global factor of an MSDS dataset, each ellipse's angle and colour, and the purely local
    part of whichever of the two the global factor sets (MSDS1: colour, MSDS2: angle).

    Angles are orientations modulo 180°, so they enter as (cos 2θ, sin 2θ).
    """
    angle = np.deg2rad(labels[..., MSDS_FACTOR_NAMES.index("angle")])
    doubled = np.stack([np.cos(2 * angle), np.sin(2 * angle)], axis=-1)  # (n, ellipse, 2)
    colour = labels[..., _columns(MSDS_FACTOR_NAMES, "R", "G", "B")] / 255.0
    local = [
        Factor("angle", "local", "ellipse angle as (cos 2θ, sin 2θ)", doubled),
        Factor("colour", "local", "ellipse RGB / 255", colour),
    ]
    if kind == "msds1":
        base = colour.mean(axis=1, keepdims=True)
        return [
            Factor("base_colour", "global", "mean RGB of the ellipses / 255 (≈ c0)", base),
            *local,
            Factor("colour_offset", "local", "ellipse RGB minus the image's mean", colour - base),
        ]
    mean_direction = np.arctan2(doubled[..., 1].mean(1), doubled[..., 0].mean(1))  # = 2θ̄
    base = np.stack([np.cos(mean_direction), np.sin(mean_direction)], axis=-1)[:, None]
    offset = (np.rad2deg(2 * angle - mean_direction[:, None]) + 180) % 360 / 2 - 90
    return [
        Factor(
            "base_angle", "global", "circular mean angle θ̄ (≈ θ0 + 22.5°) as (cos, sin) 2θ̄", base
        ),
        *local,
        Factor("angle_offset", "local", "ellipse angle minus θ̄, in degrees", offset[..., None]),
    ]


def cross_validated_r2(
    features: np.ndarray, targets: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """Out-of-fold R² of each target column from standardized features: ridge with its alpha
    chosen per target and per training fold by leave-one-out error over RIDGE_ALPHAS.

    This is scikit-learn's StandardScaler + RidgeCV(alpha_per_target=True) under
    cross_val_predict (a test holds the two equal), computed from one SVD per fold for every
    alpha and target at once: RidgeCV loops over alphas in Python, which made the cone R² of the
    demo (84 small fits) 11 s of its 13."""
    predicted = np.empty_like(targets, dtype=np.float64)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(features):
        predicted[test] = _ridge_loo_predict(features[train], targets[train], features[test])
    return r2_score(targets, predicted, multioutput="raw_values")


def _ridge_loo_predict(x: np.ndarray, y: np.ndarray, x_new: np.ndarray) -> np.ndarray:
    """Standardize on x, pick each target's alpha by exact leave-one-out error (intercept
    unpenalised, as in RidgeCV), and predict y at x_new."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0  # constant features stay as they are, as in StandardScaler
    x, x_new = (x - mean) / scale, (x_new - mean) / scale
    x_centre, y_centre = x.mean(axis=0), y.mean(axis=0)
    u, s, vt = _thin_svd(x - x_centre)
    shrink = s**2 / (s**2 + RIDGE_ALPHAS[:, None])  # (alphas, k)
    uty = u.T @ (y - y_centre)  # (k, targets)
    fitted = u @ (shrink[:, :, None] * uty)  # (alphas, n, targets): centred in-sample fits
    leverage = 1 / len(x) + (u**2) @ shrink.T  # (n, alphas): the hat matrix' diagonal
    loo = (y - y_centre - fitted) / (1 - leverage.T)[:, :, None]
    best = np.argmin((loo**2).mean(axis=1), axis=0)  # per target; first of ties, as RidgeCV
    weights = shrink[best] / np.where(s > 0, s, 1) * uty.T  # (targets, k) at each one's alpha
    return y_centre + (x_new - x_centre) @ (vt.T @ weights.T)


def _thin_svd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x = u·diag(s)·vt from the eigenvectors of the smaller Gram matrix (as RidgeCV does: a
    full SVD of a 1600×2304 fold is 4× slower); directions with s ≈ 0 get zero vectors."""
    wide = x.shape[0] < x.shape[1]
    eigenvalues, vectors = np.linalg.eigh(x @ x.T if wide else x.T @ x)
    s = np.sqrt(np.clip(eigenvalues, 0, None))
    kept = s > s.max() * 1e-10
    inverse = np.where(kept, 1 / np.where(kept, s, 1), 0)
    other = (x.T if wide else x) @ vectors * inverse  # the other side's singular vectors
    return (vectors, s, other.T) if wide else (other, s, vectors.T)


def factor_r2(features: np.ndarray, factors: list[Factor], folds: int, seed: int) -> np.ndarray:
    """Each factor's R², averaged over its ellipses and components; one fit for all targets."""
    n = len(features)
    columns = np.concatenate([f.targets.reshape(n, -1) for f in factors], axis=1)
    scores = cross_validated_r2(features, columns, folds, seed)
    bounds = np.cumsum([0] + [f.targets[0].size for f in factors])
    return np.array([scores[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])


def budget_subsets(
    latents: np.ndarray, budget: int, draws: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Random subsets of `budget` latents (the whole level when it is no larger): random rather
    than highest-variance, since a well-trained flow gives every latent about the prior's variance."""
    if len(latents) <= budget:
        return [latents]
    return [rng.choice(latents, budget, replace=False) for _ in range(draws)]


def ellipse_centres(labels: np.ndarray, factor_names: tuple[str, ...], size: int) -> np.ndarray:
    """Each ellipse's typical centre pixel (x, y): the median over inputs (MSDS jitters it ±1)."""
    centre = np.median(labels[..., _columns(factor_names, "x", "y")], axis=0)
    return np.clip(np.rint(centre), 0, size - 1).astype(int)


def cone_r2(
    z: np.ndarray,
    model: RGFlowModel,
    factors: list[Factor],
    centres: np.ndarray,
    folds: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """R² of each local factor from the latents of each level whose cone covers the ellipse's
    centre pixel (any channel), averaged over ellipses; and how many latents that was.

    Ellipses whose covering latents are the same set are fitted together (one fit, a target
    column per ellipse: the same per-target alphas and folds, so the same mean R²). Without block
    tables every cone is the whole level, and this is one fit per level instead of one per ellipse.
    """
    cone = model.cone_matrix()
    level_of = model.latent_level.ravel()
    channels = model.data_shape[0]
    scores = np.zeros((model.n_levels, len(factors)))
    counts = np.zeros((model.n_levels, len(centres)), dtype=int)
    covering = [
        np.asarray(
            cone[:, np.ravel_multi_index((np.arange(channels), y, x), model.data_shape)].sum(1)
        ).ravel()
        > 0
        for x, y in centres
    ]
    for level in range(model.n_levels):
        groups: dict[bytes, list[int]] = {}
        for k, covers in enumerate(covering):
            groups.setdefault(np.flatnonzero(covers & (level_of == level)).tobytes(), []).append(k)
        for key, ellipses in groups.items():
            latents = np.frombuffer(key, dtype=np.int64)
            counts[level, ellipses] = len(latents)
            if len(latents):  # else the best prediction is the mean: R² 0
                chosen = [
                    Factor(f.name, f.scale, f.description, f.targets[:, ellipses]) for f in factors
                ]
                # factor_r2 averages over the group's ellipses: weighted by their number
                scores[level] += factor_r2(z[:, latents], chosen, folds, seed) * len(ellipses)
    return scores / len(centres), counts


def _latent_sets(model: RGFlowModel) -> list[np.ndarray]:
    """Flat latent indices of each level, finest first."""
    level_of = model.latent_level.ravel()
    return [np.flatnonzero(level_of == level) for level in range(model.n_levels)]


def _columns(factor_names: tuple[str, ...], *names: str) -> list[int]:
    return [list(factor_names).index(name) for name in names]
