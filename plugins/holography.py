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
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import xarray as xr
from scipy.optimize import minimize

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.chains import Chains, jackknife_error, target_chains
from rginspect.information import (
    PairLaw,
    jackknife_pair_mi,
    pair_effective_samples,
    pair_law,
    pairwise_gaussian_mi,
    pairwise_mi_bytes,
    periodic_distance,
    site_vectors,
)
from rginspect.jacobian import decoder_jacobian, receptive_fields
from rginspect.model import RGFlowModel

from .receptive import field_sizes

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
        figure, axes = plt.subplots(1, 2, figsize=(10, 3.8))
        mi = dataset.pair_mi.values
        above = dataset.pair_above_floor.values.astype(bool)
        for ax, geometry, distance, label in [
            (axes[0], "hyperbolic", dataset.pair_geodesic.values, "geodesic (R = 1)"),
            (axes[1], "flat", dataset.pair_flat.values, "flat distance |(Δx, Δz)|"),
        ]:
            centres, means, errors = binned_means(distance, mi)
            shown = means > 0
            ax.errorbar(
                centres[shown], means[shown], errors[shown], fmt="o", ms=3, color="black",
                label="mean over all pairs",
            )  # fmt: skip
            ax.scatter(distance[above], mi[above], s=2, alpha=0.3, label="pairs above the floor")
            fit = dataset.sel(route=MI_ROUTE, geometry=geometry)
            if np.isfinite(float(fit.slope)):
                line = np.linspace(distance.min(), distance.max(), 50)
                ax.plot(line, np.exp(float(fit.log_i0) - float(fit.slope) * line), color="red")
            ax.set_yscale("log")
            ax.set_xlabel(label)
            ax.set_ylabel("MI, bias removed (nats)")
            ax.set_title(f"{geometry}: slope {_value(fit.slope, fit.slope_error)}", fontsize=9)
            ax.legend(fontsize=7, markerscale=3)
        figure.tight_layout()
        rows = []
        for route in dataset.route.values:
            for geometry in GEOMETRIES:
                fit = dataset.sel(route=route, geometry=geometry)
                rows.append(
                    {
                        "fields": "aligned" if dataset.attrs["aligned"] else "as drawn",
                        "route": route,
                        "geometry": geometry,
                        "slope": _value(fit.slope, fit.slope_error),
                        "ln I₀": float(fit.log_i0),
                        "pairs above floor (chance)": (
                            f"{int(fit.pairs_above_floor)} ({float(fit.pairs_by_chance):.0f})"
                        ),
                        "verdict": str(fit.verdict.values),
                    }
                )
        if dataset.attrs["aligned"]:
            for geometry in GEOMETRIES:
                rows.append(
                    {
                        "fields": "as drawn",
                        "route": MI_ROUTE,
                        "geometry": geometry,
                        "slope": _value(
                            dataset.unaligned_slope.sel(geometry=geometry),
                            dataset.unaligned_slope_error.sel(geometry=geometry),
                        ),
                        "ln I₀": np.nan,
                        "pairs above floor (chance)": str(int(dataset.unaligned_pairs_above_floor)),
                        "verdict": str(dataset.unaligned_verdict.values),
                    }
                )
        return Section(
            title="Holographic bulk geometry",
            how_to_read=(
                "Latent sites are bulk points (receptive-field centre, depth 2^level). If the "
                "residual information between them decays with hyperbolic distance, the learned "
                "map is holographic; it may also decay flat, or there may be none to read."
            ),
            figures=[
                Figure(
                    figure,
                    f"Pair MI of {dataset.attrs['samples']} {dataset.attrs['source']}, "
                    f"{'aligned' if dataset.attrs['aligned'] else 'as drawn'}: means over all "
                    f"{dataset.attrs['all_pairs']} pairs in distance bins (positive ones shown) "
                    "and the pairs above the floor; red: the censored χ² fit over every pair.",
                )
            ],
            tables=[
                Table(
                    pd.DataFrame(rows),
                    "Decay of residual information with bulk distance, both routes (errors: "
                    "jackknife over whole chains); 'as drawn': fields not turned to the flow's "
                    "global direction, which measures how the flow treats the symmetry",
                )
            ],
            text=holography_text(dataset),
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


def binned_means(
    distance: np.ndarray, values: np.ndarray, bins: int = 12
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and standard error of `values` in equal-count bins of `distance`."""
    order = np.argsort(distance)
    parts = np.array_split(order, bins)
    centres = np.array([distance[p].mean() for p in parts])
    means = np.array([np.nanmean(values[p]) for p in parts])
    errors = np.array([np.nanstd(values[p], ddof=1) / np.sqrt(len(p)) for p in parts])
    return centres, means, errors


def holography_text(dataset: xr.Dataset) -> str:
    """What the report says: the alignment, the bulk points, and per route what there is to read."""
    parts = [f"{dataset.attrs['alignment'][0].upper()}{dataset.attrs['alignment'][1:]}."]
    for route in dataset.route.values:
        reading = dataset.sel(route=route)
        verdict = str(reading.verdict.values)
        head = (
            f"{route.capitalize()} ({reading.pairs_above_floor.item()} of "
            f"{dataset.attrs['all_pairs']} pairs above the floor, "
            f"{float(reading.pairs_by_chance):.0f} by chance; {float(reading.excess):+.1f} null "
            "spreads): "
        )
        if verdict == NO_INFORMATION:
            parts.append(
                head + "no more pairs clear the floor than chance puts there: there is no "
                "residual information between latents, so no bulk geometry to read."
            )
            continue
        slopes = ", ".join(
            f"{g} {_value(reading.slope.sel(geometry=g), reading.slope_error.sel(geometry=g))}"
            for g in GEOMETRIES
        )
        ratio = (
            f"{float(reading.likelihood_ratio):+.1f} ± {float(reading.likelihood_ratio_error):.1f}"
        )
        if verdict == "undecided":
            call = (
                "neither geometry is decisively better, or the winner's information does not decay"
            )
        else:
            call = f"the information decays with {verdict} bulk distance"
        parts.append(head + f"slopes {slopes}; ln L hyperbolic − flat {ratio}: {call}.")
    if dataset.attrs["aligned"]:
        parts.append(
            f"As drawn (not aligned), the MI route reads '{dataset.unaligned_verdict.item()}' "
            f"({dataset.unaligned_pairs_above_floor.item()} pairs above the floor; mean pair MI "
            f"{float(dataset.unaligned_mean_mi):.2g} nats against {float(dataset.mean_mi):.2g} "
            "aligned): the difference is the global direction, spread over the latents of fields "
            "the flow was not trained at."
        )
    parts.append(
        f"Samples: {dataset.attrs['chains']}; errors from a jackknife over "
        f"{dataset.attrs['groups']} groups of them. The {dataset.attrs['bulk_points']}."
    )
    return " ".join(parts)


def _value(value: object, error: object) -> str:
    value, error = float(value), float(error)
    if not np.isfinite(value):
        return "—"
    return f"{value:.3g} ± {error:.2g}"
