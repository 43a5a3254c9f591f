"""mutual_info: how information is spread over the latents, level by level.

A perfect RG leaves the latents it discards independent of each other. On encoded samples of the
target distribution (the data, else HMC samples of the action) this measures how far the flow is
from that: mutual information between latent sites (each site's C components as one vector) against
their separation within each level, between levels, and the total correlation of each level.
Gaussian estimates cover all pairs, their bias removed and their floor the upper 5% of the null
ensemble that keeps the chains' time correlation (rginspect.chains); a level's total correlation is
bias-corrected and, where samples are few against its dimensions, summed over blocks (a lower bound;
see rginspect.information), with the same estimator on the null ensemble beside it. A
k-nearest-neighbour estimate (unclipped) on a subset of scalar pairs checks whether the Gaussian fit
misses non-Gaussian dependence, each estimator counted beyond what it reads on the null ensemble.

Where the flow pins the field's global symmetry, the fields are turned to its direction before
encoding (RunContext.alignment); the per-level numbers of the fields as drawn are kept beside.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
import torch
import xarray as xr

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.chains import Chains, target_chains
from rginspect.information import (
    knn_mi,
    pair_law,
    pairwise_gaussian_mi,
    pairwise_mi_bytes,
    periodic_distance,
    site_vectors,
    total_correlation,
)
from rginspect.model import RGFlowModel

FLOOR_ALPHA = 0.05  # a pair is above the floor beyond the null ensembles' 95th percentile


class MutualInfo(Analysis):
    name = "mutual_info"
    description = "Mutual information between latents against separation, between levels, per level"
    version = "4"  # 4: aligned fields, bias removed, floors that keep the chains' correlation
    parameters = {
        "inputs": Parameter(int, 4096, "inputs to encode"),
        "knn_pairs": Parameter(
            int, 30, "scalar pairs checked with the k-nearest-neighbour estimator"
        ),
        "null_ensembles": Parameter(
            int, 8, "null ensembles (sites moved apart along their chains) for the floors"
        ),
    }

    def applies_to(self, model: RGFlowModel) -> str | None:
        reason = super().applies_to(model)
        if reason is None and not (model.latent_level == model.latent_level[:1]).all():
            reason = (
                "it treats each site's channels as one latent of one RG level; this model's "
                "channels at a site belong to different levels (squeezed levels, as in a Glow)"
            )
        return reason

    def memory_estimate(self, model: RGFlowModel, parameters: dict) -> int:
        return pairwise_mi_bytes(model)

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        alignment = context.alignment()
        _, z, source = context.target_latents(settings["inputs"], aligned=True)
        chains = target_chains(context, len(z))
        vectors = site_vectors(z.double().cpu().numpy())
        L = model.data_shape[1]
        level = model.latent_level[0].ravel()
        rows, cols = np.divmod(np.arange(L * L), L)
        rng = np.random.default_rng(context.seed)
        shifts = settings["null_ensembles"]
        law = pair_law(vectors, chains, rng, null_ensembles=shifts, alpha=FLOOR_ALPHA)
        raw = pairwise_gaussian_mi(chains.kept(vectors))
        mi = raw - law.bias()
        floor = law.floor() - law.bias()  # the floor of the bias-corrected estimate
        upper = np.triu(np.ones_like(mi, dtype=bool), 1)
        count = law.exceedances(raw, upper)
        distance = periodic_distance(rows, cols, L)
        levels = np.arange(model.n_levels)
        bins = np.arange(1, L // 2 + 1)
        within = level_profile(mi, distance, level, levels, bins)
        between = np.array(
            [[np.nanmean(mi[np.ix_(level == a, level == b)]) for b in levels] for a in levels]
        )
        totals = [total_correlation(vectors[:, level == a], chains, rng, shifts) for a in levels]
        if alignment.pinned:
            _, drawn, _ = context.target_latents(settings["inputs"])
            drawn_vectors = site_vectors(drawn.double().cpu().numpy())
            # as drawn: only the estimates (bias from 2 null ensembles' calibration), no floors
            drawn_law = pair_law(drawn_vectors, chains, rng, null_ensembles=2)
            drawn_mi = pairwise_gaussian_mi(chains.kept(drawn_vectors)) - drawn_law.bias()
            drawn_totals = [
                total_correlation(drawn_vectors[:, level == a], chains, rng, 2) for a in levels
            ]
        else:
            drawn_mi, drawn_totals = mi, totals
        latents = np.bincount(level, minlength=model.n_levels) * model.data_shape[0]
        knn = knn_check(vectors, chains, distance, settings["knn_pairs"], rng)
        per_level_mean = {
            "long_name": "mean bias-corrected pair MI within a level",
            "units": "nats",
        }
        return xr.Dataset(
            {
                "mi": (
                    ("site", "site_b"),
                    mi.astype(np.float32),
                    {"units": "nats", "long_name": "pair MI, Gaussian, bias removed"},
                ),
                "mi_floor": (
                    ("site", "site_b"),
                    floor.astype(np.float32),
                    {"units": "nats", "long_name": "95th percentile of the null ensembles"},
                ),
                "mi_vs_distance": (
                    ("level", "distance"),
                    within,
                    {"units": "nats", "long_name": "mean pair MI within a level"},
                ),
                "mi_between_levels": (
                    ("level", "level_b"),
                    between,
                    {"units": "nats", "long_name": "mean pair MI between latents of two levels"},
                ),
                "mean_mi": ("level", level_means(mi, level, levels), per_level_mean),
                "unaligned_mean_mi": (
                    "level",
                    level_means(drawn_mi, level, levels),
                    per_level_mean | {"long_name": "mean pair MI within a level, fields as drawn"},
                ),
                "pairs_above_floor": ((), count),
                "pairs_by_chance": (
                    (),
                    float(law.null_exceedances.mean()),
                    {"long_name": "mean pairs above the floor in the null ensembles"},
                ),
                "excess": (
                    (),
                    law.excess(count),
                    {"long_name": "pairs above the floor beyond chance, in null spreads"},
                ),
                "noise_floor": (
                    (),
                    float(np.median(floor[upper])),
                    {"units": "nats", "long_name": "median over pairs of the 95% floor"},
                ),
                "total_correlation": (
                    "level",
                    [t.value for t in totals],
                    {
                        "units": "nats",
                        "long_name": "Σ H(z_i) − H(z_level), Gaussian, bias-corrected "
                        "(a lower bound when summed over blocks)",
                    },
                ),
                "total_correlation_per_latent": (
                    "level",
                    [t.value for t in totals] / latents,
                    {"units": "nats", "long_name": "per latent component"},
                ),
                "total_correlation_floor": (
                    "level",
                    [t.floor for t in totals],
                    {"units": "nats", "long_name": "same estimator on the null ensembles, mean"},
                ),
                "total_correlation_floor_error": (
                    "level",
                    [t.floor_error for t in totals],
                    {"units": "nats", "long_name": "same estimator on the null ensembles, std"},
                ),
                "unaligned_total_correlation": (
                    "level",
                    [t.value for t in drawn_totals],
                    {"units": "nats", "long_name": "total correlation of the fields as drawn"},
                ),
                "total_correlation_blocks": (
                    "level",
                    [t.blocks for t in totals],
                    {"long_name": "blocks of contiguous sites summed (1: the whole level)"},
                ),
                "samples_per_dimension": (
                    "level",
                    [t.samples_per_dimension for t in totals],
                    {"long_name": "inputs per latent component of the level"},
                ),
                "total_correlation_reason": (
                    "level",
                    [t.reason for t in totals],
                    {"long_name": "why the total correlation is NaN (empty: estimated)"},
                ),
                "knn_mi": (
                    "pair",
                    knn.knn,
                    {"units": "nats", "long_name": "kNN (KSG, k=3, unclipped), component 0"},
                ),
                "knn_mi_null": (
                    "pair",
                    knn.knn_null,
                    {"units": "nats", "long_name": "kNN of the pair on the null ensembles, mean"},
                ),
                "gaussian_mi_scalar": ("pair", knn.gaussian, {"units": "nats"}),
                "gaussian_mi_scalar_null": ("pair", knn.gaussian_null, {"units": "nats"}),
                "pair_distance": ("pair", knn.distance),
                "knn_excess": (
                    (),
                    knn.excess,
                    {
                        "units": "nats",
                        "long_name": "mean kNN − Gaussian MI beyond the same on the null "
                        "ensembles (> 0: dependence a Gaussian fit misses)",
                    },
                ),
                "knn_excess_error": ((), knn.excess_error, {"units": "nats"}),
            },
            coords={
                "site": np.arange(L * L),
                "site_b": np.arange(L * L),
                "site_level": ("site", level),
                "site_row": ("site", rows),
                "site_col": ("site", cols),
                "level": levels,
                "level_b": levels,
                "distance": bins,
            },
            attrs={
                "source": source,
                "samples": chains.n_samples,
                "chains": chains.describe(),
                "lattice_size": L,
                **alignment.attrs(),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        floor = float(dataset.noise_floor)
        figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
        for level in dataset.level.values:
            curve = dataset.mi_vs_distance.sel(level=level)
            shown = np.isfinite(curve.values) & (curve.values > 0)
            axes[0].plot(dataset.distance[shown], curve[shown], "o-", ms=3, label=f"level {level}")
        axes[0].axhline(floor, ls="--", color="gray", label="noise floor (median)")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("separation (sites, periodic)")
        axes[0].set_ylabel("mean MI, bias removed (nats)")
        axes[0].legend(fontsize=7)
        sns.heatmap(
            dataset.mi_between_levels.to_pandas(), annot=True, fmt=".2g", cmap="viridis",
            ax=axes[1], cbar_kws={"label": "nats"},
        )  # fmt: skip
        axes[1].set_xlabel("level")
        axes[1].set_ylabel("level")
        axes[1].set_title("mean pair MI between levels", fontsize=9)
        axes[2].scatter(dataset.gaussian_mi_scalar, dataset.knn_mi, s=8, c=dataset.pair_distance)
        values = np.concatenate([dataset.gaussian_mi_scalar.values, dataset.knn_mi.values])
        low, top = float(min(values.min(), 0)), float(max(values.max(), 1e-3))
        axes[2].plot([low, top], [low, top], ls=":", color="gray")
        axes[2].set_xlabel("Gaussian MI (nats)")
        axes[2].set_ylabel("kNN MI (nats)")
        axes[2].set_title("estimators on scalar pairs (colour: distance)", fontsize=9)
        figure.tight_layout()
        aligned = bool(dataset.attrs["aligned"])
        columns = {
            "level": dataset.level.values,
            "total correlation (nats)": [
                value if np.isfinite(value) else f"not estimated: {reason}"
                for value, reason in zip(
                    dataset.total_correlation.values,
                    dataset.total_correlation_reason.values,
                    strict=True,
                )
            ],
            "null floor (nats)": [
                f"{mean:.3g} ± {spread:.2g}"
                for mean, spread in zip(
                    dataset.total_correlation_floor.values,
                    dataset.total_correlation_floor_error.values,
                    strict=True,
                )
            ],
            "per latent (nats)": dataset.total_correlation_per_latent.values,
            "mean pair MI (nats)": dataset.mean_mi.values,
            "samples per dimension": dataset.samples_per_dimension.values,
            "blocks": dataset.total_correlation_blocks.values,
        }
        if aligned:
            columns["total correlation as drawn"] = dataset.unaligned_total_correlation.values
            columns["mean pair MI as drawn"] = dataset.unaligned_mean_mi.values
        blocked = dataset.level.values[dataset.total_correlation_blocks.values > 1]
        count, chance = int(dataset.pairs_above_floor), float(dataset.pairs_by_chance)
        return Section(
            title="Mutual information between latents",
            how_to_read=(
                "A perfect RG leaves discarded latents independent: no more pairs above the noise "
                "floor than chance and total correlation at its floor. MI that decays slowly with "
                "separation is structure the flow left in the latents."
            ),
            figures=[
                Figure(
                    figure,
                    f"Gaussian estimates on {dataset.attrs['samples']} encoded "
                    f"{dataset.attrs['source']} ({'aligned' if aligned else 'as drawn'}).",
                )
            ],
            tables=[
                Table(
                    pd.DataFrame(columns),
                    "Per level: total correlation (Gaussian fit with its exact small-sample bias "
                    "subtracted) beside the same estimator on the null ensembles (independent "
                    "latents with the same time correlation), and the mean pair MI"
                    + (
                        "; 'as drawn': fields not turned to the flow's direction" if aligned else ""
                    ),
                )
            ],
            text=(
                f"{dataset.attrs['alignment'][0].upper()}{dataset.attrs['alignment'][1:]}. "
                f"{count} pairs lie above the floor (the 95th percentile of the null ensembles, "
                f"which move each site's series along its chains: {dataset.attrs['chains']}), "
                f"{chance:.0f} by chance ({float(dataset.excess):+.1f} null spreads). "
                f"The kNN estimator exceeds the Gaussian one by "
                f"{float(dataset.knn_excess):+.4f} ± {float(dataset.knn_excess_error):.4f} nats "
                "per scalar pair beyond what both read on the null ensembles (positive: "
                "dependence a Gaussian fit misses)."
                + (
                    f" Level(s) {', '.join(map(str, blocked))}: too few samples per dimension "
                    "for one estimate, so the total correlation is summed over blocks of "
                    "contiguous sites, a lower bound that misses the dependence between blocks."
                    if len(blocked)
                    else ""
                )
            ),
        )


def level_means(mi: np.ndarray, level: np.ndarray, levels: np.ndarray) -> list[float]:
    """Mean pair MI within each level (NaN for a level of one site)."""
    means = []
    for a in levels:
        block = mi[np.ix_(level == a, level == a)]
        means.append(
            float(np.nanmean(block[np.triu_indices(len(block), 1)])) if len(block) > 1 else np.nan
        )
    return means


def level_profile(
    mi: np.ndarray, distance: np.ndarray, level: np.ndarray, levels: np.ndarray, bins: np.ndarray
) -> np.ndarray:
    """(level, distance) mean pair MI within each level in shells of separation."""
    within = np.full((len(levels), len(bins)), np.nan)
    for a in levels:
        members = level == a
        d, values = distance[np.ix_(members, members)], mi[np.ix_(members, members)]
        for b, r in enumerate(bins):
            shell = np.abs(d - r) < 0.5
            if shell.any():
                within[a, b] = np.nanmean(values[shell])
    return within


@dataclass(frozen=True)
class KnnCheck:
    """kNN against Gaussian MI on scalar pairs, each also on the null ensembles."""

    knn: np.ndarray
    knn_null: np.ndarray
    gaussian: np.ndarray
    gaussian_null: np.ndarray
    distance: np.ndarray

    @property
    def differences(self) -> np.ndarray:
        """Per pair: (kNN − Gaussian) beyond the same on the null ensembles."""
        return (self.knn - self.gaussian) - (self.knn_null - self.gaussian_null)

    @property
    def excess(self) -> float:
        return float(np.mean(self.differences))

    @property
    def excess_error(self) -> float:
        """The pairs' scatter: each pair is an independent draw of the estimators' noise."""
        return float(np.std(self.differences, ddof=1) / np.sqrt(len(self.differences)))


def knn_check(
    vectors: np.ndarray,
    chains: Chains,
    distance: np.ndarray,
    n_pairs: int,
    rng: np.random.Generator,
    resamples: int = 1,
    max_samples: int = 4000,
) -> KnnCheck:
    """kNN (unclipped KSG) and Gaussian MI of component 0 on site pairs (half of them nearest
    neighbours), on the latents and averaged over `resamples` null ensembles. No site is in two
    pairs (while sites last), so that the pairs' estimation errors are nearly independent and
    their scatter gives the error of the mean."""
    used: set[int] = set()
    pairs = []
    for i, j in rng.permutation(np.argwhere(np.triu(distance == 1))):
        if len(pairs) < n_pairs // 2 and not {i, j} & used:
            pairs.append((i, j))
            used |= {i, j}
    free = rng.permutation([s for s in range(vectors.shape[1]) if s not in used])
    pairs += [tuple(p) for p in free[: 2 * (n_pairs - len(pairs))].reshape(-1, 2)]
    while len(pairs) < n_pairs:  # too few sites for disjoint pairs
        pairs.append(tuple(rng.choice(vectors.shape[1], 2, replace=False)))
    scalar = chains.kept(vectors[:, :, 0])[:max_samples]
    nulls = [chains.null_ensemble(vectors[:, :, 0], rng)[:max_samples] for _ in range(resamples)]

    def gaussian(x: np.ndarray, y: np.ndarray) -> float:
        return float(-0.5 * np.log1p(-(np.corrcoef(x, y)[0, 1] ** 2)))

    def on_nulls(estimate: Callable[[np.ndarray, np.ndarray], float], i: int, j: int) -> float:
        return float(np.mean([estimate(null[:, i], null[:, j]) for null in nulls]))

    return KnnCheck(
        knn=np.array([knn_mi(scalar[:, i], scalar[:, j]) for i, j in pairs]),
        knn_null=np.array([on_nulls(knn_mi, i, j) for i, j in pairs]),
        gaussian=np.array([gaussian(scalar[:, i], scalar[:, j]) for i, j in pairs]),
        gaussian_null=np.array([on_nulls(gaussian, i, j) for i, j in pairs]),
        distance=np.array([distance[i, j] for i, j in pairs]),
    )
