"""Comparisons: the same analyses, with the same data and seed, on several models side by side.

Every model is one job of a sweep (`rginspect.sweep.plan_sweep` and `run_job`), so each gets its own
folder with its results.nc and report.html, a model that fails to load is reported and skipped, and
`--resume` reuses what finished. Combining reads only those files: `compare.nc` holds, per analysis,
the scalars of every model along a `model` dimension (the variables whose dimensions are summaries
such as level, factor, hole), and under `models/<model>/` the complete results of each model, one
group per analysis, with its model card and provenance. `compare.html` is drawn from that file alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import xarray as xr

from .engine import RunSettings
from .errors import RGInspectError
from .report.compare import MODELS_GROUP, render_compare_report
from .sweep import JobOutcome, plan_sweep, run_job

COMPARE_FILE = "compare.nc"
COMPARE_REPORT = "compare.html"
# dimensions along which a result is a short list of numbers that mean the same on every model
# (an RG level, a ground-truth factor, a hole, a set of latents); any other dimension (latent,
# sample, image, layer) is not comparable entry by entry and stays in the model's own group
COMPARED_DIMS = frozenset({"level", "factor", "hole", "latent_set"})
# what each model's group under models/ keeps of its run's root attributes
MODEL_ATTRS = ("checkpoint_path", "checkpoint_sha256", "model_sha256", "seed", "data", "device")


def run_compare(
    checkpoints: Iterable[str],
    out: Path,
    settings: RunSettings,
) -> tuple[list[JobOutcome], Path | None]:
    """Run the analyses on every checkpoint (each into `out/<model>/`), then write compare.nc and
    compare.html from what finished; the path of compare.nc, or None when no model finished."""
    checkpoints = list(checkpoints)
    if len(checkpoints) < 2:
        raise RGInspectError("a comparison needs at least two checkpoints")
    # not strict: an analysis that does not apply to one model is skipped there, not fatal
    jobs = plan_sweep(checkpoints, out, replace(settings, strict=False))
    outcomes = [run_job(job) for job in jobs]
    finished = {o.name: o.results_path for o in outcomes if o.results_path is not None}
    if not finished:
        return outcomes, None
    path = write_comparison(finished, Path(out) / COMPARE_FILE)
    render_compare_report(path, Path(out) / COMPARE_REPORT)
    return outcomes, path


def compared_scalars(dataset: xr.Dataset) -> xr.Dataset:
    """The numbers of one analysis that compare across models: those whose dimensions are all in
    COMPARED_DIMS (0-d included), with the analysis' wall time as `elapsed_s`."""
    kept = [
        name
        for name, variable in dataset.data_vars.items()
        if set(variable.dims) <= COMPARED_DIMS and variable.dtype.kind in "iuf"
    ]
    # as numbers, not as the file stored them: a model without an entry gets NaN in an int
    scalars = dataset[kept].drop_attrs(deep=False).drop_encoding()
    if "elapsed_s" in dataset.attrs:
        scalars["elapsed_s"] = ((), float(dataset.attrs["elapsed_s"]), {"units": "s"})
    return scalars.drop_vars(
        [name for name in scalars.coords if not set(scalars[name].dims) <= COMPARED_DIMS]
    )


def combine_models(results: dict[str, xr.DataTree]) -> dict[str, xr.Dataset]:
    """Per analysis, the compared scalars of every model along `model` (in the order given);
    NaN where an analysis failed on a model or a model lacks an entry (a level, a hole's method)."""
    from .results import analysis_nodes

    names = list(results)
    nodes = {name: analysis_nodes(tree) for name, tree in results.items()}
    analyses = dict.fromkeys(analysis for found in nodes.values() for analysis in found)
    combined = {}
    for analysis in analyses:
        parts = [
            compared_scalars(found[analysis].to_dataset()).expand_dims(model=[name])
            for name, found in nodes.items()
            if analysis in found and found[analysis].attrs.get("status", "ok") == "ok"
        ]
        if not parts:
            continue
        joined = xr.concat(
            parts, "model", join="outer", combine_attrs="drop_conflicts", fill_value=float("nan")
        )
        combined[analysis] = joined.reindex(model=names)
    return combined


def write_comparison(runs: dict[str, Path], path: Path) -> Path:
    """compare.nc from the runs' results files (model name -> results.nc), written atomically:
    the combined scalars as one group per analysis, each run whole under models/<name>/."""
    from .results import read_results, root_attrs, write_tree

    trees = {name: read_results(Path(results)) for name, results in runs.items()}
    groups: dict[str, xr.Dataset] = dict(combine_models(trees))
    for name, tree in trees.items():
        attrs = {key: tree.attrs[key] for key in MODEL_ATTRS if key in tree.attrs}
        groups[f"{MODELS_GROUP}/{name}"] = xr.Dataset(attrs=attrs)
        for node in tree.subtree:  # the model card and every analysis, as the run stored them
            if node is not tree:
                groups[f"{MODELS_GROUP}/{name}{node.path}"] = node.to_dataset()
    seeds = {str(tree.attrs.get("seed", "")) for tree in trees.values()}
    data = {str(tree.attrs.get("data", "")) for tree in trees.values()}
    root = root_attrs(
        title=f"rginspect comparison of {', '.join(trees)}",
        history=f"compared from {', '.join(str(Path(r)) for r in runs.values())}",
        kind="rginspect comparison",
        models=json.dumps(list(trees)),
        seed=", ".join(sorted(seeds)),
        data=", ".join(sorted(data)),
    )
    return write_tree(path, root, groups)  # each group keeps its own attributes and status
