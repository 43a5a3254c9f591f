"""A comparison's report, from compare.nc alone: per analysis, one table per compared scalar with a
column per model, and each model's own figures side by side in columns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import xarray as xr

from .. import __version__
from .build import analysis_section
from .render import SectionView, render_template, table_html, write_report

MODELS_GROUP = "models"  # compare.nc keeps each model's whole results under models/<name>/


def render_compare_report(compare_path: Path, report_path: Path) -> Path:
    """compare.html: the models' cards, then one section per analysis that any model ran."""
    from ..results import analysis_nodes, model_card, read_results

    tree = read_results(Path(compare_path))
    models = json.loads(tree.attrs["models"])
    runs = {name: tree[f"{MODELS_GROUP}/{name}"] for name in models}
    analyses = dict.fromkeys(
        analysis for run in runs.values() for analysis in analysis_nodes(run)
    )  # every analysis, in run order, also those that failed on every model
    sections = [
        _section(
            analysis,
            tree[analysis].to_dataset() if analysis in analysis_nodes(tree) else None,
            {
                name: run[analysis].to_dataset()
                for name, run in runs.items()
                if analysis in analysis_nodes(run)
            },
        )
        for analysis in analyses
    ]
    cards = {name: _card(model_card(run), run.attrs) for name, run in runs.items()}
    html = render_template(
        "compare.html.j2",
        title=f"rginspect comparison: {', '.join(models)}",
        models=cards,
        model_keys=list(dict.fromkeys(key for card in cards.values() for key in card)),
        run_info={
            "rginspect version": __version__,
            "data": tree.attrs.get("data", ""),
            "seed": tree.attrs.get("seed", ""),
            "analyses": ", ".join(analyses),
        },
        sections=sections,
    )
    return write_report(Path(report_path), html)


def _section(
    name: str, combined: xr.Dataset | None, per_model: dict[str, xr.Dataset]
) -> dict[str, Any]:
    columns: dict[str, SectionView] = {
        model: analysis_section(name, dataset) for model, dataset in per_model.items()
    }
    drawn = next((view for view in columns.values() if view["status"] == "ok"), None)
    tables = []
    if combined is not None:
        for key, variable in combined.data_vars.items():
            frame = scalar_table(variable)
            if frame.notna().any().any():
                tables.append({"html": table_html(frame), "caption": _caption(key, variable)})
    return {
        "name": name,
        "title": drawn["title"] if drawn else name,
        "how_to_read": (
            "Tables: one number per model in each column, from the same data and seed. "
            "Below: each model's own figures, side by side. "
        )
        + (drawn["how_to_read"] if drawn else ""),
        "tables": tables,
        "columns": columns,
    }


def scalar_table(variable: xr.DataArray) -> pd.DataFrame:
    """A compared scalar as a table: one column per model, one row per entry of its other
    dimensions (level, factor, hole, ...), or one row for a single number."""
    models = [str(m) for m in variable.model.values]
    if variable.dims == ("model",):
        return pd.DataFrame([variable.values], columns=models, index=[str(variable.name)])
    others = [dim for dim in variable.dims if dim != "model"]
    frame = variable.transpose(*others, "model").to_series().unstack("model")
    return frame[models].rename_axis(columns=None)


def _caption(key: str, variable: xr.DataArray) -> str:
    meaning = variable.attrs.get("long_name", "")
    unit = variable.attrs.get("units", "")  # a named dimensionless unit is in the long name
    return (
        key + (f": {meaning}" if meaning else "") + (f" ({unit})" if unit not in ("", "1") else "")
    )


def _card(card: dict[str, Any], attrs: dict[str, Any]) -> dict[str, Any]:
    """What the models table shows about one model."""
    shown = {
        "checkpoint": Path(str(attrs.get("checkpoint_path", ""))).name,
        "format": card.get("format", ""),
        "architecture": card.get("architecture", ""),
        "parameters": card.get("parameters", ""),
        "latents per level": card.get("latents_per_level", ""),
    }
    training = (card.get("provenance") or {}).get("training") or {}
    if training:
        shown["trained"] = (
            f"{training.get('steps', '?')} steps on {training.get('data', '?')}, "
            f"{training.get('loss_unit', '')} {training.get('final_loss', float('nan')):.3g}, "
            f"{training.get('wall_seconds', float('nan')):.0f} s"
        )
    return shown
