"""receptive: how far each latent reaches, from the exact decoder Jacobian.

RF_l(y, x) = mean over latent samples of Σ_c |∂x_c(y, x)/∂z_l|. The Jacobian comes from
rginspect.jacobian over the structural cone, exact to rounding. Sizes are measured on the periodic
lattice the flow lives on: a centre (circular mean), a radius (root second moment about it) and the
areas holding 50% and 90% of the mass. In a MERA the cone doubles per level, so should the size;
the growth is fitted only over levels whose structural cones do not close around the torus (there
the radius saturates near L/√6 whatever the flow learned).
"""

from __future__ import annotations

import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
import xarray as xr

from rginspect.analysis import Analysis, Figure, Parameter, RunContext, Section, Table
from rginspect.device import synchronize
from rginspect.jacobian import (
    cone_colouring,
    decoder_jacobian,
    overlap_clique,
    probe_lower_bound,
    receptive_fields,
)
from rginspect.model import RGFlowModel

SOURCES = ("data", "prior")


class Receptive(Analysis):
    name = "receptive"
    description = (
        "Exact receptive field of every latent: maps, centres, radii, 50%/90% areas per level"
    )
    version = "3"
    parameters = {
        "samples": Parameter(int, 8, "latent samples the |Jacobian| is averaged over"),
        "budget": Parameter(
            float,
            60.0,
            "seconds the Jacobians may take: fewer samples if the timed first one says so (0: all)",
        ),
        "source": Parameter(str, "data", "where the latent samples come from: data or prior"),
        "method": Parameter(str, "auto", "Jacobian method: auto, blocks or probes"),
        "per_level": Parameter(int, 4, "receptive-field maps kept per level (strongest latents)"),
    }

    def memory_estimate(self, model: RGFlowModel, parameters: dict) -> int:
        # the Jacobian values over the cone, float32, held about four times while composing
        return 16 * parameters["samples"] * model.cone_matrix().nnz

    def run(self, context: RunContext) -> xr.Dataset:
        model, settings = context.model, context.parameters
        if settings["source"] not in SOURCES:
            raise ValueError(
                f"receptive.source is {settings['source']!r}; use one of {', '.join(SOURCES)}"
            )
        z, source = self._latents(context)
        started = time.perf_counter()
        values, method = decoder_jacobian(model, z[:1], settings["method"], context.progress)
        synchronize(context.device)  # the clock must see the GPU's work, not its launch
        first_seconds = time.perf_counter() - started  # with the one-off plan: an upper bound
        used = _samples_within(len(z), settings["budget"], first_seconds)
        if used > 1:
            rest, _ = decoder_jacobian(model, z[1:used], method, context.progress)
            values = torch.cat([values, rest])
        synchronize(context.device)
        seconds = time.perf_counter() - started
        fields = receptive_fields(values, model)
        cone = model.cone_matrix()
        probes = int(cone_colouring(cone).max()) + 1
        C, H, W = model.data_shape
        mass = np.asarray(fields.sum(1)).ravel()
        centre_y, centre_x, radius, area50, area90 = field_sizes(fields, H, W)
        levels = model.latent_level.ravel()
        channel, row, col = np.unravel_index(np.arange(model.n_latents), model.data_shape)
        shown = strongest_per_level(levels, mass, settings["per_level"])
        site = "pixels" if model.domain == "image" else "sites"
        per_latent = {"units": site}
        dataset = xr.Dataset(
            {
                "rf_mass": ("latent", mass, {"long_name": "Σ over sites of the receptive field"}),
                "centre_y": ("latent", centre_y, per_latent),
                "centre_x": ("latent", centre_x, per_latent),
                "radius": (
                    "latent",
                    radius,
                    per_latent | {"long_name": "RMS distance from centre"},
                ),
                "area50": (
                    "latent",
                    area50,
                    per_latent | {"long_name": "sites holding 50% of mass"},
                ),
                "area90": (
                    "latent",
                    area90,
                    per_latent | {"long_name": "sites holding 90% of mass"},
                ),
                "rf_map": (
                    ("shown", "y", "x"),
                    fields[shown].toarray().reshape(len(shown), H, W).astype(np.float32),
                    {"long_name": "receptive fields of the strongest latents of each level"},
                ),
                "cone_wraps": (
                    "level",
                    cone_wraps(model),
                    {"long_name": "the level's structural cones close around the periodic lattice"},
                ),
                "mean_centred_map": (
                    ("level", "dy", "dx"),
                    centred_level_means(fields, levels, row, col, H, W, model.n_levels),
                    {"long_name": "mean receptive field of a level, latent moved to the centre"},
                ),
            },
            coords={
                "latent": np.arange(model.n_latents),
                "latent_level": ("latent", levels),
                "channel": ("latent", channel),
                "row": ("latent", row),
                "col": ("latent", col),
                "shown": np.asarray(shown, dtype=np.int64),
                "level": np.arange(model.n_levels),
                "dy": np.arange(H) - H // 2,
                "dx": np.arange(W) - W // 2,
            },
            attrs={
                "source": source,
                "samples": used,
                "samples_requested": len(z),
                "budget": settings["budget"],
                "method": method,
                "seconds": seconds,
                "n_latents": model.n_latents,
                "probes": probes,
                "probe_lower_bound": probe_lower_bound(cone),
                "overlap_clique": overlap_clique(cone),
            },
        )
        # one number per level, so that models (and sweeps) can be compared level by level
        dataset["level_radius"] = (
            "level",
            level_table(dataset).set_index("level")["radius"].reindex(dataset.level.values).values,
            per_latent | {"long_name": "median RMS radius of the level's receptive fields"},
        )
        return dataset

    @torch.no_grad()
    def _latents(self, context: RunContext) -> tuple[torch.Tensor, str]:
        samples = context.parameters["samples"]
        model = context.model
        if context.parameters["source"] == "prior":
            shape = (samples, *model.data_shape)
            z = model.prior.sample(shape, generator=context.generator())
            return z.to(model.prior.scale.device), "prior samples"
        x, _, source = context.model_inputs(samples)
        return model.encode(x)[0], f"encoded {source}"

    def render(self, dataset: xr.Dataset) -> Section:
        attrs = dataset.attrs
        table = level_table(dataset)
        fitted = [int(level) for level in dataset.level.values[dataset.cone_wraps.values == 0]]
        growth = size_growth(table[table["level"].isin(fitted)])
        unit = dataset.radius.attrs["units"]
        return Section(
            title="Receptive fields",
            how_to_read=(
                f"How much each latent moves each of the {unit}: Σ_c |∂x_c/∂z| averaged over "
                f"{attrs['samples']} {attrs['source']}{_cut_text(attrs)}. Fine levels should act "
                "locally, coarse levels globally, sizes roughly doubling per level."
            ),
            figures=[
                Figure(
                    map_grid(dataset), "Strongest latents per level; + marks the latent's site."
                ),
                Figure(
                    size_plot(dataset),
                    "Receptive-field size per latent against RG level (log scale); dashed: ∝ 2^level.",
                ),
                Figure(
                    centred_means(dataset),
                    "Mean receptive field of each level, every latent moved to the centre.",
                ),
            ],
            tables=[Table(table, f"Medians over the latents of each level (sizes in {unit})")],
            text=(
                f"{_growth_text(growth, fitted, dataset.sizes['level'])} "
                f"Exact Jacobian by {attrs['method']} in {attrs['seconds']:.2f} s. Forward-mode "
                f"compression needs {attrs['probes']} probes for {attrs['n_latents']} latents; no "
                f"colouring can use fewer than {attrs['overlap_clique']} (latents with pairwise "
                f"overlapping cones), above the {attrs['probe_lower_bound']} latents sharing one site."
            ),
        )


def field_sizes(fields: sp.csr_matrix, H: int, W: int) -> tuple[np.ndarray, ...]:
    """Centre (circular mean), RMS radius about it, and the 50%/90% mass areas of every row.

    All rows at once over the stored entries (a loop over latents cost seconds at 3072 latents).
    """
    fields = fields.tocsr()
    n = fields.shape[0]
    row = np.repeat(np.arange(n), np.diff(fields.indptr))
    weight = fields.data
    total = np.bincount(row, weight, n)
    y, x = np.divmod(fields.indices, W)
    centre_y, dy = _circular_centre(y, weight, row, n, H)
    centre_x, dx = _circular_centre(x, weight, row, n, W)
    with np.errstate(invalid="ignore", divide="ignore"):
        radius = np.sqrt(np.bincount(row, weight * (dy**2 + dx**2), n) / total)
    # each row's weights in descending order, and the share of its mass up to each of them
    order = np.lexsort((-weight, row))
    cumulative = np.cumsum(weight[order])
    start = np.concatenate([[0.0], cumulative])[fields.indptr[:-1]]
    share = (cumulative - start[row[order]]) / total[row[order]]
    area50 = np.bincount(row[order][share < 0.5], minlength=n) + 1
    area90 = np.bincount(row[order][share < 0.9], minlength=n) + 1
    empty = ~(total > 0)
    centre_y[empty] = centre_x[empty] = radius[empty] = np.nan
    area50[empty] = area90[empty] = 0
    return centre_y, centre_x, radius, area50, area90


def _circular_centre(
    position: np.ndarray, weight: np.ndarray, row: np.ndarray, n: int, period: int
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted circular mean of each of n rows on a ring of `period` sites, and each entry's
    signed offset from its row's centre."""
    angle = 2 * np.pi * position / period
    mean = np.arctan2(
        np.bincount(row, weight * np.sin(angle), n), np.bincount(row, weight * np.cos(angle), n)
    )
    centre = np.round(mean * period / (2 * np.pi), 9) % period
    offset = (position - centre[row] + period / 2) % period - period / 2
    return centre, offset


def cone_wraps(model: RGFlowModel) -> np.ndarray:
    """Per level: whether some latent's structural cone covers every row or every column of the
    lattice, i.e. closes around the torus, so that its fields' sizes saturate."""
    C, H, W = model.data_shape
    cone = model.cone_matrix().tocoo()
    y, x = np.divmod(cone.col % (H * W), W)
    n = cone.shape[0]

    def covered(position: np.ndarray, period: int) -> np.ndarray:
        hits = sp.csr_matrix((np.ones(len(position)), (cone.row, position)), shape=(n, period))
        hits.sum_duplicates()
        return hits.getnnz(1) == period

    wraps = covered(y, H) | covered(x, W)
    levels = model.latent_level.ravel()
    return np.array([wraps[levels == level].any() for level in range(model.n_levels)])


def strongest_per_level(levels: np.ndarray, score: np.ndarray, per_level: int) -> list[int]:
    """The `per_level` highest-scoring latents of each level, finest level first."""
    chosen = []
    for level in np.unique(levels):
        candidates = np.flatnonzero(levels == level)
        chosen += candidates[np.argsort(-score[candidates], kind="stable")[:per_level]].tolist()
    return chosen


def centred_level_means(
    fields: sp.csr_matrix,
    levels: np.ndarray,
    row: np.ndarray,
    col: np.ndarray,
    H: int,
    W: int,
    n_levels: int,
) -> np.ndarray:
    """(level, H, W): mean of each level's fields, each rolled so its latent's site is the centre."""
    means = np.zeros((n_levels, H, W))
    coo = fields.tocoo()
    y, x = np.divmod(coo.col, W)
    y = (y - row[coo.row] + H // 2) % H
    x = (x - col[coo.row] + W // 2) % W
    np.add.at(means, (levels[coo.row], y, x), coo.data)
    counts = np.bincount(levels, minlength=n_levels)
    return means / np.maximum(counts, 1)[:, None, None]


def level_table(dataset: xr.Dataset) -> pd.DataFrame:
    grouped = dataset[["radius", "area50", "area90", "rf_mass"]].groupby("latent_level")
    medians = grouped.median()
    return pd.DataFrame(
        {
            "level": medians.latent_level.values,
            "latents": grouped.count()["radius"].values,
            "radius": medians.radius.values,
            "area 50%": medians.area50.values,
            "area 90%": medians.area90.values,
            "mass": medians.rf_mass.values,
        }
    )


def size_growth(table: pd.DataFrame) -> float:
    """Factor by which the median radius grows per level (least squares on log2), over the levels
    in `table`."""
    usable = table[table["radius"] > 0]
    if len(usable) < 2:
        return float("nan")
    slope = np.polyfit(usable["level"], np.log2(usable["radius"]), 1)[0]
    return float(2**slope)


def _samples_within(samples: int, budget: float, first_seconds: float) -> int:
    """All samples, or as many as fit in `budget` seconds at the first one's cost (at least 1)."""
    if budget <= 0:
        return samples
    return max(1, min(samples, int(budget / max(first_seconds, 1e-9))))


def _cut_text(attrs: dict) -> str:
    if attrs["samples"] >= attrs["samples_requested"]:
        return ""
    return (
        f" (cut from {attrs['samples_requested']} to fit the {attrs['budget']:g} s budget; "
        "-p receptive.budget=0 takes them all)"
    )


def _growth_text(growth: float, fitted: list[int], n_levels: int) -> str:
    wrapping = n_levels - len(fitted)
    if not np.isfinite(growth):
        return (
            "No size growth is fitted: fewer than two levels have cones that fit on the lattice "
            f"without closing around it ({wrapping} of {n_levels} levels wrap)."
        )
    return (
        f"Radius grows ×{growth:.2f} per level (fit of log radius on levels "
        f"{', '.join(map(str, fitted))}; the other {wrapping} have structural cones that close "
        "around the periodic lattice, where the radius saturates)."
    )


def map_grid(dataset: xr.Dataset) -> plt.Figure:
    levels = dataset.latent_level.values[dataset.shown.values]
    n_levels = int(dataset.sizes["level"])
    columns = max(int(np.sum(levels == level)) for level in range(n_levels))
    figure, axes = plt.subplots(
        n_levels, columns, figsize=(1.9 * columns, 1.9 * n_levels), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    slot = dict.fromkeys(range(n_levels), 0)
    for index, latent in enumerate(dataset.shown.values):
        level = int(levels[index])
        ax = axes[level, slot[level]]
        slot[level] += 1
        ax.imshow(dataset.rf_map[index], cmap="magma")
        ax.plot(dataset.col.values[latent], dataset.row.values[latent], "+", color="cyan", ms=8)
        ax.set_title(
            f"L{level} c{dataset.channel.values[latent]} "
            f"({dataset.row.values[latent]},{dataset.col.values[latent]})",
            fontsize=8,
        )
    figure.tight_layout()
    return figure


def size_plot(dataset: xr.Dataset) -> plt.Figure:
    figure, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    level = dataset.latent_level.values
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(level))
    for ax, name, label in [
        (axes[0], "radius", f"radius ({dataset.radius.attrs['units']})"),
        (axes[1], "area90", f"area holding 90% ({dataset.radius.attrs['units']})"),
    ]:
        values = dataset[name].values
        ax.scatter(level + jitter, values, s=2, alpha=0.3, color="tab:blue")
        medians = [np.nanmedian(values[level == lv]) for lv in dataset.level.values]
        ax.plot(dataset.level, medians, "o-", color="tab:red", label="median")
        power = 1 if name == "radius" else 2
        reference = medians[0] * 2.0 ** (power * dataset.level.values)
        ax.plot(dataset.level, reference, "--", color="gray", label=f"∝ {2**power}^level")
        ax.set_yscale("log")
        ax.set_xlabel("RG level (0 = finest)")
        ax.set_xticks(dataset.level.values)
        ax.set_ylabel(label)
        ax.legend(fontsize=8)
    figure.tight_layout()
    return figure


def centred_means(dataset: xr.Dataset) -> plt.Figure:
    n_levels = dataset.sizes["level"]
    figure, axes = plt.subplots(1, n_levels, figsize=(2.4 * n_levels, 2.6), squeeze=False)
    extent = [
        float(dataset.dx[0]) - 0.5,
        float(dataset.dx[-1]) + 0.5,
        float(dataset.dy[-1]) + 0.5,
        float(dataset.dy[0]) - 0.5,
    ]
    for level, ax in zip(dataset.level.values, axes[0], strict=True):
        ax.imshow(dataset.mean_centred_map.sel(level=level), cmap="magma", extent=extent)
        ax.set_title(f"level {level}", fontsize=9)
        ax.set_xlabel("Δx")
    axes[0, 0].set_ylabel("Δy")
    figure.tight_layout()
    return figure
