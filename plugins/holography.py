"""holography: the bulk geometry that residual mutual information between latents defines.

After Hu, Li, Wang, You (PRR 2, 023369): each latent is a bulk point at its boundary position x (on
the periodic lattice) and depth z = 2^level. If the flow is a holographic map, the residual mutual
information decays with bulk distance, I_ij = I_0 exp(−d_ij/ξ), and in the hyperbolic upper half
space with radius R
    cosh(d_ij / R) = 1 + (|Δx|² + (z_i − z_j)²) / (2 z_i z_j).
With distances in units of ξ this is a straight line, ln I_ij = ln I_0 − R·g_ij with
g_ij = arccosh(…) the unit-radius geodesic; a flat bulk gives ln I_ij = ln I_0 − s·|(Δx, Δz)|. Pairs
whose MI is below the noise floor are not dropped but censored: they say "ln I is below the floor"
and nothing more (a Tobit fit). Keeping only the pairs above the floor would keep, at large
distances, only the pairs whose noise lifted them, and flatten the slope. The better R² of ln I
over the pairs above the floor says which geometry the flow's latents follow. R's error is the spread over bootstrap resamples of the inputs. The distances
−ln(I_ij/I_0) are also embedded in the plane by metric MDS, to look at.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
import xarray as xr
from scipy.optimize import minimize
from scipy.stats import norm
from sklearn.manifold import MDS

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.information import (
    pairwise_gaussian_mi,
    pairwise_mi_bytes,
    periodic_distance,
    shuffled,
    site_vectors,
)
from rginspect.model import RGFlowModel

GEOMETRIES = ("hyperbolic", "flat")


class Holography(Analysis):
    name = "holography"
    description = (
        "Bulk geometry from residual MI between latents: hyperbolic radius R vs a flat fit"
    )
    version = "4"  # 4: censored fits over every pair
    parameters = {
        "inputs": Parameter(int, 4096, "inputs to encode"),
        "resamples": Parameter(int, 20, "bootstrap resamples of the inputs for R's error"),
    }
    domains = ("field",)

    def memory_estimate(self, model: RGFlowModel, parameters: dict) -> int:
        return pairwise_mi_bytes(model)

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        _, z, source = context.target_latents(settings["inputs"])
        vectors = site_vectors(z.double().cpu().numpy())
        L = model.data_shape[1]
        level = model.latent_level[0].ravel()
        rows, cols = np.divmod(np.arange(L * L), L)
        depth = 2.0**level
        geodesic, flat = bulk_distances(rows, cols, depth, L)
        rng = np.random.default_rng(context.seed)
        floor = float(np.nanpercentile(pairwise_gaussian_mi(shuffled(vectors, rng)), 99))
        mi = pairwise_gaussian_mi(vectors)
        upper = np.triu(np.ones_like(mi, dtype=bool), 1)
        reliable = upper & (mi > floor)
        if reliable.sum() < 3:
            raise ValueError(
                f"only {int(reliable.sum())} latent pairs have MI above the noise floor "
                f"({floor:.2g} nats): use more samples"
            )
        log_floor = np.log(floor)
        fits = {
            "hyperbolic": line_fit(geodesic[upper], np.log(mi[upper]), log_floor),
            "flat": line_fit(flat[upper], np.log(mi[upper]), log_floor),
        }
        chains = context.target_chains(settings["inputs"])
        if chains is None:  # data: taken as independent inputs
            bootstrap, effective = "inputs", float(len(vectors))
        else:  # the slowest global mode bounds how many independent fields the chains hold
            bootstrap = f"whole HMC chains ({chains.n_chains})"
            effective = len(vectors) / max(max(chains.global_autocorrelation_times()), 1.0)
        radii = []
        for _ in range(settings["resamples"]):  # HMC: whole chains, so their correlation counts
            drawn = (
                rng.integers(0, len(vectors), len(vectors))
                if chains is None
                else chains.chain_bootstrap(rng)
            )
            resample = vectors[drawn]
            log_mi_b = np.log(pairwise_gaussian_mi(resample)[upper])
            radii.append(line_fit(geodesic[upper], log_mi_b, log_floor)[0])
        log_i0 = fits["hyperbolic"][1]
        dissimilarity = np.clip(
            log_i0 - np.log(np.where(upper | upper.T, np.maximum(mi, floor), 1)), 0, None
        )
        np.fill_diagonal(dissimilarity, 0)
        embedding = MDS(
            n_components=2, metric="precomputed", init="classical_mds", random_state=context.seed
        ).fit_transform((dissimilarity + dissimilarity.T) / 2)
        pair_i, pair_j = np.nonzero(reliable)
        return xr.Dataset(
            {
                "radius": ((), fits["hyperbolic"][0], {"long_name": "hyperbolic radius R / ξ"}),
                "radius_err": ((), float(np.std(radii, ddof=1)), {"long_name": "bootstrap std"}),
                "slope": ("geometry", [fits[g][0] for g in GEOMETRIES]),
                "log_i0": ("geometry", [fits[g][1] for g in GEOMETRIES], {"units": "ln nats"}),
                "r2": ("geometry", [fits[g][2] for g in GEOMETRIES], {"long_name": "R² of ln I"}),
                "hyperbolic_advantage": (
                    (),
                    fits["hyperbolic"][2] - fits["flat"][2],
                    {"long_name": "R² hyperbolic − R² flat (> 0: hyperbolic fits better)"},
                ),
                "pair_mi": ("pair", mi[reliable], {"units": "nats"}),
                "pair_geodesic": ("pair", geodesic[reliable], {"long_name": "unit-R geodesic"}),
                "pair_flat": ("pair", flat[reliable], {"long_name": "|(Δx, Δz)|"}),
                "pair_levels": (("pair", "end"), np.stack([level[pair_i], level[pair_j]], 1)),
                "embedding": (("site", "axis"), embedding),
                "noise_floor": ((), floor, {"units": "nats", "long_name": "99th pct of shuffled"}),
            },
            coords={
                "geometry": list(GEOMETRIES),
                "site": np.arange(L * L),
                "site_level": ("site", level),
                "axis": ["u", "v"],
            },
            attrs={
                "source": source,
                "samples": len(vectors),
                "bootstrap": bootstrap,
                "effective_samples": effective,
                "reliable_pairs": int(reliable.sum()),
                "all_pairs": int(upper.sum()),
            },
        )

    def render(self, dataset: xr.Dataset) -> Section:
        figure, axes = plt.subplots(1, 3, figsize=(13, 3.8))
        log_mi = np.log(dataset.pair_mi.values)
        same = dataset.pair_levels.values[:, 0] == dataset.pair_levels.values[:, 1]
        for ax, geometry, distance, label in [
            (
                axes[0],
                "hyperbolic",
                dataset.pair_geodesic.values,
                "geodesic arccosh(1 + …) (R = 1)",
            ),
            (axes[1], "flat", dataset.pair_flat.values, "flat distance |(Δx, Δz)|"),
        ]:
            ax.scatter(distance[same], log_mi[same], s=2, alpha=0.3, label="same level")
            ax.scatter(distance[~same], log_mi[~same], s=2, alpha=0.3, label="across levels")
            line = np.linspace(distance.min(), distance.max(), 50)
            fit = dataset.sel(geometry=geometry)
            ax.plot(line, float(fit.log_i0) - float(fit.slope) * line, color="black")
            ax.set_xlabel(label)
            ax.set_ylabel("ln I (nats)")
            ax.set_title(f"{geometry}: R² = {float(fit.r2):.3f}", fontsize=9)
            ax.legend(fontsize=7, markerscale=4)
        points = axes[2].scatter(
            dataset.embedding[:, 0],
            dataset.embedding[:, 1],
            c=dataset.site_level,
            s=8,
            cmap="viridis",
        )
        figure.colorbar(points, ax=axes[2], label="RG level")
        axes[2].set_title("bulk embedded by MDS of −ln(I/I₀)", fontsize=9)
        axes[2].set_aspect("equal")
        figure.tight_layout()
        table = pd.DataFrame(
            {
                "geometry": dataset.geometry.values,
                "scale (R/ξ or s/ξ)": dataset.slope.values,
                "ln I₀": dataset.log_i0.values,
                "R² of ln I": dataset.r2.values,
            }
        )
        winner = GEOMETRIES[int(np.argmax(dataset.r2.values))]
        radius, radius_err = float(dataset.radius), float(dataset.radius_err)
        # ln I rising with bulk distance is no decay, so R is no radius whatever the R² say
        rising = (
            " ln I rises with hyperbolic distance (R < 0 beyond its error): the latents' "
            "information does not decay into the bulk, so this R is no holographic radius."
            if radius + 2 * radius_err < 0
            else ""
        )
        return Section(
            title="Holographic bulk geometry",
            how_to_read=(
                "Latents are bulk points (position, depth 2^level); if residual mutual information "
                "decays with hyperbolic distance, the learned map is holographic with radius R."
            ),
            figures=[
                Figure(
                    figure,
                    f"Pairs above the noise floor ({dataset.attrs['reliable_pairs']} of "
                    f"{dataset.attrs['all_pairs']}) from {dataset.attrs['samples']} "
                    f"{dataset.attrs['source']}; the lines are censored fits, in which the "
                    "pairs below the floor count as lying below it.",
                )
            ],
            tables=[
                Table(table, "Censored straight-line fits of ln I against each geometry's distance")
            ],
            text=(
                f"R = {radius:.3g} ± {radius_err:.2g} ξ (bootstrap "
                f"over {dataset.attrs['bootstrap']}; the slowest global mode leaves "
                f"{dataset.attrs['effective_samples']:.0f} effective samples of "
                f"{dataset.attrs['samples']}). The {winner} "
                f"geometry fits better (R² {dataset.r2.sel(geometry='hyperbolic').item():.3f} "
                f"hyperbolic vs {dataset.r2.sel(geometry='flat').item():.3f} flat).{rising}"
            ),
        )


def bulk_distances(
    rows: np.ndarray, cols: np.ndarray, depth: np.ndarray, L: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit-radius hyperbolic geodesics and flat distances between all bulk points, symmetric
    exactly: every term is a sum, product or square of differences, whose order cannot matter."""
    boundary = periodic_distance(rows, cols, L)
    dz = depth[:, None] - depth[None, :]
    geodesic = np.arccosh(1 + (boundary**2 + dz**2) / (2 * depth[:, None] * depth[None, :]))
    return geodesic, np.hypot(boundary, dz)


def line_fit(
    distance: np.ndarray, log_mi: np.ndarray, log_floor: float = -np.inf
) -> tuple[float, float, float]:
    """ln I = ln I₀ − slope·d + Gaussian noise, with every ln I ≤ log_floor censored (known only to
    lie below it): maximum likelihood (Tobit), which is least squares when nothing is censored.
    Returns (slope, ln I₀, R² of the line over the uncensored pairs)."""
    seen = log_mi > log_floor
    if seen.sum() < 3:
        raise ValueError(f"{int(seen.sum())} pairs above the floor cannot fix a line and its noise")
    slope, intercept = np.polyfit(distance[seen], log_mi[seen], 1)
    residual = log_mi[seen] - (intercept + slope * distance[seen])
    start = np.array([intercept, slope, np.log(residual.std() + 1e-12)])
    if not seen.all():

        def negative_log_likelihood(theta: np.ndarray) -> float:
            line, sigma = theta[0] + theta[1] * distance, np.exp(theta[2])
            seen_density = norm.logpdf((log_mi[seen] - line[seen]) / sigma) - theta[2]
            censored_mass = norm.logcdf((log_floor - line[~seen]) / sigma)
            return -float(seen_density.sum() + censored_mass.sum())

        options = {"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000}
        fit = minimize(negative_log_likelihood, start, method="Nelder-Mead", options=options)
        intercept, slope, _ = fit.x
        residual = log_mi[seen] - (intercept + slope * distance[seen])
    r2 = 1 - np.mean(residual**2) / log_mi[seen].var()  # the line need not centre them
    return float(-slope), float(intercept), float(r2)
