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

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section
from rginspect.device import synchronize
from rginspect.jacobian import (
    cone_colouring,
    decoder_jacobian,
    field_sizes,
    overlap_clique,
    probe_lower_bound,
    receptive_fields,
)
from rginspect.model import RGFlowModel

from .compute import (
    centred_level_means,
    cone_wraps,
    level_table,
    samples_within,
    strongest_per_level,
)
from .draw import plot_centred_means, plot_maps, plot_sizes, receptive_section

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
    plots = {"maps": plot_maps, "sizes": plot_sizes, "centred": plot_centred_means}

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
        used = samples_within(len(z), settings["budget"], first_seconds)
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
                "site_unit": site,
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
        return receptive_section(dataset)
