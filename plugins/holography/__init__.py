"""holography: the bulk geometry that residual information between latents defines, if any.

After Hu, Li, Wang, You (PRR 2, 023369): each latent site is a bulk point, at the centre of its
receptive field on the periodic lattice (from the exact decoder Jacobian, so for any flow) and at
depth z = 2^level. If the flow is a holographic map, the residual information between latents
decays with bulk distance, I_ij = I_0 exp(−slope · d_ij), with d_ij either the unit-radius
hyperbolic geodesic arccosh(1 + (|Δx|² + Δz²) / (2 z_i z_j)) (slope = R/ξ) or the flat distance
|(Δx, Δz)|, Δx the minimum image on the torus.

Two routes read the residual information:
- mutual information: the pairwise Gaussian MI of the encoded fields' latent sites;
- effective action: the same statistic of the scores ∇_ζ S_eff, where S_eff(ζ) = S(G(ζ)) −
  ln|det ∂G/∂ζ| is the exact negative log density of the latents of the action's ensemble. By the
  Fisher identity E[∇S_eff ∇S_effᵀ] = E[∇²S_eff], their second moments are the mean curvature of
  S_eff: the residual couplings between latents (the identity for a perfect flow), read without
  any estimate of the latents' own covariance.
Both are measured on the fields of the target ensemble turned to the flow's global direction where
the flow pins one (RunContext.alignment); the MI route also on the fields as drawn, beside it.

Every step keeps the chains' time correlation (rginspect.chains): the floor is the null ensemble's
upper 1% of the statistic 2ν Î (each site's series moved as a whole to another chain, or shifted
in time), and errors come from a delete-a-group jackknife over whole chains (`--data` inputs count
as one chain, in their order). The MI estimate's bias is removed and its noncentral χ² law is the
likelihood of each pair's estimate given I_ij (pairs below the floor censored: known only to lie
below it), so a fit over every pair neither keeps the pairs noise lifted nor drops the rest.

Verdict: "no residual information" when no more pairs clear the floor than the null ensembles put
there (then there is no geometry to read, and no slope); otherwise the geometry whose maximum
likelihood is higher, by DECIDING_Z jackknife errors and by a ΔAIC of at least
2·DECISIVE_LOG_LIKELIHOOD, whose information decays (slope above DECIDING_Z errors); "undecided"
when neither holds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section
from rginspect.chains import Chains, target_chains
from rginspect.information import pairwise_mi_bytes, site_vectors
from rginspect.model import RGFlowModel

from .compute import (
    ACTION_ROUTE,
    BULK_POINTS,
    GEOMETRIES,
    GRADIENT_BATCH,
    MI_ROUTE,
    Reading,
    bulk_distances,
    effective_action_gradient,
    read_geometry,
    receptive_centres,
)
from .draw import holography_section, plot_decay


class Holography(Analysis):
    name = "holography"
    description = (
        "Bulk geometry from residual information between latents (MI and effective action): "
        "hyperbolic vs flat decay, or none"
    )
    version = "5"  # 5: aligned fields, chain-aware floors, χ² likelihood, two routes, verdict
    parameters = {
        "inputs": Parameter(int, 4096, "fields to encode (data, else HMC samples of the action)"),
        "action_inputs": Parameter(
            int, 512, "of those, fields whose effective-action gradient is taken (0: none)"
        ),
        "null_ensembles": Parameter(int, 8, "null ensembles for the floor and its chance rate"),
        "groups": Parameter(int, 16, "jackknife groups of whole chains (or blocks of one chain)"),
        "jacobian_samples": Parameter(int, 2, "fields whose decoder Jacobian places the latents"),
    }
    domains = ("field",)
    plots = {"decay": plot_decay}

    def memory_estimate(self, model: RGFlowModel, parameters: dict) -> int:
        return pairwise_mi_bytes(model)

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        rng = np.random.default_rng(context.seed)
        alignment = context.alignment()
        _, z, source = context.target_latents(settings["inputs"], aligned=True)
        chains = target_chains(context, len(z))
        L = model.data_shape[1]
        level = model.latent_level[0].ravel()
        # a copy: forward-mode duals of a view would copy its whole base, every probe
        probe_latents = z[: settings["jacobian_samples"]].clone()
        centre_y, centre_x = receptive_centres(model, probe_latents, context.progress)
        geodesic, flat = bulk_distances(centre_y, centre_x, 2.0**level, L)
        i, j = np.triu_indices(L * L, 1)
        distances = {"hyperbolic": geodesic[i, j], "flat": flat[i, j]}

        def read(vectors: np.ndarray, on: Chains) -> Reading:
            return read_geometry(
                vectors, on, distances, rng, settings["null_ensembles"], settings["groups"]
            )

        readings = {MI_ROUTE: read(site_vectors(z.double().cpu().numpy()), chains)}
        action_inputs = min(settings["action_inputs"], len(z))
        if model.action is not None and action_inputs > 0:
            part = target_chains(context, action_inputs)
            batches = z[: part.n_samples].split(GRADIENT_BATCH)  # the graph holds every layer
            scores = torch.cat(
                [
                    effective_action_gradient(model, batch)
                    for batch in context.progress(batches, desc="effective action")
                ]
            )
            readings[ACTION_ROUTE] = read(site_vectors(scores.double().cpu().numpy()), part)
        if alignment.pinned:
            _, drawn, _ = context.target_latents(settings["inputs"])
            unaligned = read(site_vectors(drawn.double().cpu().numpy()), chains)
        else:
            unaligned = readings[MI_ROUTE]
        routes = list(readings)
        main = readings[MI_ROUTE]

        def per_route(value: Callable[[Reading], object]) -> list:
            return [value(readings[route]) for route in routes]

        def by_geometry(reading: Reading, field: str) -> list[float]:
            return [getattr(reading.fits[g], field) for g in GEOMETRIES]

        return xr.Dataset(
            {
                "slope": (
                    ("route", "geometry"),
                    per_route(lambda r: by_geometry(r, "slope")),
                    {"long_name": "−d ln I / d distance (hyperbolic: R/ξ)"},
                ),
                "slope_error": (
                    ("route", "geometry"),
                    per_route(lambda r: r.slope_error),
                    {"long_name": "jackknife error over whole chains"},
                ),
                "log_i0": (
                    ("route", "geometry"),
                    per_route(lambda r: by_geometry(r, "log_i0")),
                    {"units": "ln nats"},
                ),
                "log_likelihood": (
                    ("route", "geometry"),
                    per_route(lambda r: by_geometry(r, "log_likelihood")),
                    {"long_name": "maximum censored χ² log-likelihood over every pair"},
                ),
                "likelihood_ratio": (
                    "route",
                    per_route(lambda r: r.log_ratio),
                    {"long_name": "ln L hyperbolic − ln L flat (> 0: hyperbolic fits better)"},
                ),
                "likelihood_ratio_error": ("route", per_route(lambda r: r.log_ratio_error)),
                "verdict": ("route", per_route(lambda r: r.verdict)),
                "pairs_above_floor": ("route", per_route(lambda r: r.count)),
                "pairs_by_chance": (
                    "route",
                    per_route(lambda r: float(r.law.null_exceedances.mean())),
                    {"long_name": "mean pairs above the floor in the null ensembles"},
                ),
                "excess": (
                    "route",
                    per_route(lambda r: r.excess),
                    {"long_name": "pairs above the floor beyond chance, in null spreads"},
                ),
                "floor_statistic": (
                    "route",
                    per_route(lambda r: r.law.threshold),
                    {"long_name": "99th percentile of 2νÎ in the null ensembles"},
                ),
                "law_calibration": (
                    "route",
                    per_route(lambda r: r.law.calibration),
                    {"long_name": "null mean of 2νÎ / C² with Bartlett's ν (1: as predicted)"},
                ),
                "unaligned_slope": (
                    "geometry",
                    by_geometry(unaligned, "slope"),
                    {"long_name": "slope, MI of the fields as drawn (not aligned)"},
                ),
                "unaligned_slope_error": ("geometry", unaligned.slope_error),
                "unaligned_verdict": ((), unaligned.verdict),
                "unaligned_excess": ((), unaligned.excess),
                "unaligned_pairs_above_floor": ((), unaligned.count),
                "unaligned_mean_mi": (
                    (),
                    float(np.nanmean(unaligned.mi)),
                    {"units": "nats", "long_name": "mean bias-corrected pair MI, as drawn"},
                ),
                "mean_mi": (
                    (),
                    float(np.nanmean(main.mi)),
                    {"units": "nats", "long_name": "mean bias-corrected pair MI"},
                ),
                "pair_mi": (
                    "pair",
                    main.mi,
                    {"units": "nats", "long_name": "pair MI, bias removed"},
                ),
                "pair_above_floor": ("pair", main.above.astype(np.int8)),
                "pair_geodesic": (
                    "pair",
                    distances["hyperbolic"],
                    {"long_name": "unit-R geodesic"},
                ),
                "pair_flat": ("pair", distances["flat"], {"long_name": "|(Δx, Δz)|"}),
                "pair_levels": (("pair", "end"), np.stack([level[i], level[j]], 1)),
                "site_centre_y": (
                    "site",
                    centre_y,
                    {"units": "sites", "long_name": "receptive-field centre, row"},
                ),
                "site_centre_x": (
                    "site",
                    centre_x,
                    {"units": "sites", "long_name": "receptive-field centre, col"},
                ),
            },
            coords={
                "route": routes,
                "geometry": list(GEOMETRIES),
                "site": np.arange(L * L),
                "site_level": ("site", level),
            },
            attrs={
                "source": source,
                "samples": chains.n_samples,
                "chains": chains.describe(),
                "action_samples": readings[ACTION_ROUTE].samples if ACTION_ROUTE in readings else 0,
                "bulk_points": BULK_POINTS,
                "all_pairs": len(i),
                "null_ensembles": settings["null_ensembles"],
                "groups": settings["groups"],
                **alignment.attrs(),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        return holography_section(dataset)
