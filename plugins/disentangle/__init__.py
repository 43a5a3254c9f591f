"""disentangle: which RG level carries which ground-truth factor, measured by cross-validated R².

The RG-Flow paper claims the hierarchy separates scales: coarse levels hold an image's global
factors (MSDS1's base colour, MSDS2's base angle) and fine levels the local ones (each ellipse's
angle or colour). Here that is a number: ridge regression, k-fold cross-validated, of each factor
from one level's latents; from all of them, from an equal budget per level (levels differ 4× in
size), and from the latents whose structural cone covers the ellipse. Without MSDS labels only the
latent activity (encoded variance against the prior's) is measured. Both need data: the model's
own samples encode back to prior draws, whose activity is the prior's by construction.
"""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from rginspect.analysis import Analysis, Parameter, RunContext, Section

from .compute import activity_dataset, ellipse_centres, msds_factors, msds_kind, r2_tables
from .draw import disentangle_section, plot_activity, plot_r2


class Disentangle(Analysis):
    name = "disentangle"
    description = "Latent activity per level and R² of MSDS ground-truth factors from each level"
    version = "2"
    parameters = {
        "inputs": Parameter(int, 2000, "how many labelled inputs to encode"),
        "folds": Parameter(int, 5, "cross-validation folds"),
        "budget": Parameter(int, 0, "latents per level in the equal-budget R² (0: top level size)"),
        "budget_draws": Parameter(int, 5, "random latent subsets averaged in the equal-budget R²"),
    }
    domains = ("image",)
    needs_data = True
    plots = {"r2": plot_r2, "activity": plot_activity}

    @torch.no_grad()
    def run(self, context: RunContext) -> xr.Dataset:
        model, parameters = context.model, context.parameters
        if context.targets_are_model_samples:
            raise ValueError(
                "disentangle needs data (--data msds1, or any images): the model's own samples "
                "encode back to prior draws, so their activity would compare the prior with itself"
            )
        x, z, source = context.target_latents(parameters["inputs"])
        z = z.double().cpu().numpy()
        if not np.isfinite(z).all():
            raise ValueError(
                f"encoding {source} gives NaN/Inf latents; check that the data are what the "
                "model was trained on"
            )
        dataset = activity_dataset(model, z).assign_attrs(source=source, folds=parameters["folds"])
        data = context.data
        kind = None if data is None else msds_kind(data.labels, data.factor_names)
        dataset.attrs["dataset_kind"] = kind or "unlabelled"
        if kind is None:
            return dataset
        if len(z) < 2 * parameters["folds"]:
            raise ValueError(
                f"disentangle needs at least {2 * parameters['folds']} inputs for "
                f"{parameters['folds']}-fold cross-validation, got {len(z)}; raise "
                "disentangle.inputs or use more data"
            )
        labels = np.asarray(data.labels[: len(z)], dtype=np.float64)
        factors = msds_factors(kind, labels)
        centres = ellipse_centres(labels, data.factor_names, model.data_shape[1])
        tables = r2_tables(model, z.reshape(len(z), -1), factors, centres, parameters, context.seed)
        return dataset.merge(tables, combine_attrs="no_conflicts")

    def render(self, dataset: xr.Dataset) -> Section:
        return disentangle_section(dataset)
