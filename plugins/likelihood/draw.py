"""How likelihood shows its results, from the stored dataset alone: the prior term of each level
and the log-det term of each layer, and a table of the terms that add up to the total."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import xarray as xr

from rginspect.analysis import Figure, Section, Table
from rginspect.plotting import axes_grid, figure_of

if TYPE_CHECKING:
    from matplotlib.axes import Axes


def likelihood_section(dataset: xr.Dataset) -> Section:
    """The report section: the terms per level and layer, their table and the mean code length."""
    unit = dataset.attrs["unit"]
    mean = float(dataset.mean_total)
    terms = {
        "prior (all levels)": float(dataset.prior_term.sum()),
        "log-det (all layers)": float(dataset.logdet_term.sum()),
        "preprocessing": float(dataset.preprocessing_term),
    }
    levels = dataset.attrs.get("quantization_levels", 256)
    if dataset.attrs["quantization_offset"]:
        terms[f"{levels} levels a pixel (log2 {levels})"] = float(
            dataset.attrs["quantization_offset"]
        )
    terms["total"] = mean
    table = pd.DataFrame({"term": list(terms), unit: list(terms.values())})
    return Section(
        title="Likelihood",
        how_to_read=(
            f"Mean code length of the data in {unit} (lower is better), split into what each RG "
            "level's latents cost under the prior and what each layer's volume change saves."
        ),
        figures=[
            Figure(
                figure_of(plot_terms(dataset)), f"Terms of −log q(x) on {dataset.attrs['source']}."
            )
        ],
        tables=[Table(table, f"The terms add up to the total. {_quantisation_note(dataset)}")],
        text=f"{mean:.4f} ± {float(dataset.mean_total_err):.4f} {unit} on {dataset.sizes['sample']} inputs.",
    )


def plot_terms(dataset: xr.Dataset, ax: Axes | np.ndarray | None = None) -> np.ndarray:
    """The prior term of each RG level and the log-det term of each layer, in the dataset's unit
    (bits or nats per dimension). `ax`: two Axes."""
    unit = dataset.attrs["unit"]
    axes = axes_grid(ax, 1, 2, figsize=(9, 3))[0]
    axes[0].bar(dataset.level, dataset.prior_term, color="tab:blue")
    axes[0].set_xlabel("RG level (0 = finest)")
    axes[0].set_xticks(dataset.level.values)
    axes[0].set_title(f"prior term ({unit})")
    axes[1].bar(dataset.layer, dataset.logdet_term, color="tab:orange")
    axes[1].set_xlabel("RG layer (encode order)")
    axes[1].set_xticks(dataset.layer.values)
    axes[1].set_title(f"log-det term ({unit})")
    return axes


def _quantisation_note(dataset: xr.Dataset) -> str:
    levels = dataset.attrs.get("quantization_levels", 256)
    if not levels:
        return "Continuous inputs: no quantisation term."
    if dataset.attrs["source"] == "model samples":
        return (
            f"Model samples: density in [0, 1] image space plus log2 {levels} for the 8-bit grid "
            "the model was trained to dequantise onto, comparable with bits/dim on 8-bit data."
        )
    return f"Inputs quantised to {levels} levels: the total includes log2 {levels} per dimension."
