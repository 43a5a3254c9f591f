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

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section
from rginspect.chains import target_chains
from rginspect.information import (
    pair_law,
    pairwise_gaussian_mi,
    pairwise_mi_bytes,
    periodic_distance,
    site_vectors,
    total_correlation,
)
from rginspect.model import RGFlowModel

from .compute import FLOOR_ALPHA, knn_check, level_means, level_profile
from .draw import mutual_info_section, plot_information


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
    plots = {"information": plot_information}

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
        return mutual_info_section(dataset)
