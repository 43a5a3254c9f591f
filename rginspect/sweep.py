"""Sweeps: the same analyses over many checkpoints, combined along a `checkpoint` dimension.

A job (`run_job`) is one checkpoint, or one (checkpoint, analysis) pair when the work is spread over
a cluster: it loads the checkpoint from its path, runs, and writes its own results.nc and report.
Jobs share nothing but read-only settings and file paths, so any scheduler can map them over workers;
combining reads only the files they wrote. The combined file keeps each analysis' scalar results, with the
couplings and training state every checkpoint recorded as coordinates (κ, λ, T, β, L, steps, epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .engine import RunSettings, folder_name, run_checkpoint
from .errors import RGInspectError

SWEEP_FILE = "sweep.nc"
SWEEP_REPORT = "sweep.html"


@dataclass(frozen=True)
class SweepJob:
    """One checkpoint (and, on a cluster, one analysis) of a sweep and where its results go."""

    checkpoint: str
    name: str  # the checkpoint's folder under the sweep's output, unique within the sweep
    out: Path
    settings: RunSettings
    threads: int | None = None  # torch threads in the process that runs it (None: leave as is)


@dataclass(frozen=True)
class JobOutcome:
    """What one job left behind: its results file, or the error that stopped it before any."""

    checkpoint: str
    name: str
    results_path: Path | None
    failed_analyses: tuple[str, ...] = ()
    error: str = ""


def plan_sweep(
    checkpoints: Iterable[str],
    out: Path,
    settings: RunSettings,
    *,
    analyses: list[str] | None = None,
    threads: int | None = None,
) -> list[SweepJob]:
    """One job per checkpoint, each in its own folder under `out` (names made unique); with
    `analyses`, one job per (checkpoint, analysis), in `out/<checkpoint>/<analysis>/`."""
    jobs, used = [], set()
    for checkpoint in checkpoints:
        stem = folder_name(checkpoint)
        name, n = stem, 1
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        folder = Path(out) / name
        if analyses is None:
            jobs.append(SweepJob(str(checkpoint), name, folder, settings, threads))
        else:
            jobs += [
                SweepJob(str(checkpoint), name, folder / a, replace(settings, plugins=a), threads)
                for a in analyses
            ]
    if not jobs:
        raise RGInspectError("a sweep needs at least one checkpoint")
    return jobs


def run_job(job: SweepJob) -> JobOutcome:
    """Run one job; never raises for a bad checkpoint, so one job cannot sink the sweep."""
    if job.threads is not None:
        import torch

        torch.set_num_threads(job.threads)
    try:
        result = run_checkpoint(job.checkpoint, job.out, job.settings)
    except RGInspectError as error:
        return JobOutcome(job.checkpoint, job.name, None, error=str(error))
    failed = tuple(outcome.name for outcome in result.failed)
    return JobOutcome(job.checkpoint, job.name, result.results_path, failed)


def run_sweep(
    jobs: list[SweepJob],
    out: Path,
    map_jobs: Callable[
        [Callable[[SweepJob], JobOutcome], list[SweepJob]], Iterable[JobOutcome]
    ] = map,
) -> tuple[list[JobOutcome], Path | None]:
    """Run the jobs with `map_jobs` (serial by default), then combine and report what finished."""
    outcomes = list(map_jobs(run_job, jobs))
    finished: dict[str, list[Path]] = {}
    for outcome in outcomes:
        if outcome.results_path is not None:
            finished.setdefault(outcome.name, []).append(outcome.results_path)
    if not finished:
        return outcomes, None
    sweep_path = write_sweep(combine_results(finished), Path(out) / SWEEP_FILE)
    from .report.sweep import render_sweep_report

    render_sweep_report(sweep_path, Path(out) / SWEEP_REPORT)
    return outcomes, sweep_path


def sweep_coordinates(model_card: dict[str, Any]) -> dict[str, float]:
    """Numbers a checkpoint recorded about itself: the action's couplings, L, training state."""
    coordinates: dict[str, float] = {}
    action = model_card.get("action") or {}
    for key, value in action.items():
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and key not in ("L", "n_channels"):  # couplings first: they are what is swept
            coordinates[key] = float(value)
    shape = model_card.get("data_shape")
    if shape:
        coordinates.setdefault("L", float(shape[-1]))
    provenance = model_card.get("provenance") or {}
    steps = (provenance.get("training") or {}).get("steps")
    if isinstance(steps, (int, float)):
        coordinates["steps"] = float(steps)
    if isinstance(provenance.get("epoch"), (int, float)):
        coordinates["epoch"] = float(provenance["epoch"])
    return coordinates


def combine_results(runs: dict[str, list[Path]]) -> dict[str, xr.Dataset]:
    """Per analysis, every scalar result of every checkpoint along a `checkpoint` dimension
    (an analysis that wants a number in sweeps stores it as a scalar, its error as `<name>_err`),
    and every result along `ensemble` alone (correlation's reference and flow) as a
    (checkpoint, ensemble) column, ensembles in the order they first appear.

    A checkpoint where an analysis failed, or a variable or ensemble it lacks, gets NaN (or "" for
    text).
    """
    from .results import analysis_nodes, model_card, read_results

    cards, per_analysis, variable_attrs, ensembles = [], {}, {}, {}
    for index, paths in enumerate(runs.values()):
        trees = [read_results(Path(path)) for path in paths]
        cards.append(model_card(trees[0]))
        children = {}
        for tree in trees:  # one file per analysis on a cluster; a shared requirement may repeat
            for name, node in analysis_nodes(tree).items():
                if node.attrs.get("status", "ok") == "ok":
                    children.setdefault(name, node)
        for name, node in children.items():
            values = {}
            for key, variable in node.to_dataset().data_vars.items():
                if variable.ndim == 0:
                    values[key] = variable.values.item()
                elif variable.dims == ("ensemble",):
                    names = [str(e) for e in variable.ensemble.values]
                    ensembles.setdefault(name, {}).update(dict.fromkeys(names))
                    values[key] = dict(zip(names, variable.values.tolist(), strict=True))
                else:
                    continue
                variable_attrs.setdefault((name, key), dict(variable.attrs))
            per_analysis.setdefault(name, {})[index] = values
    coordinates = _coordinates(list(runs), cards)
    combined = {}
    for name, found in per_analysis.items():
        keys = dict.fromkeys(key for values in found.values() for key in values)
        along = list(ensembles.get(name, {}))
        columns = {}
        for key in keys:
            column = [found.get(i, {}).get(key) for i in range(len(cards))]
            if any(isinstance(value, dict) for value in column):
                table = [[(v or {}).get(e) for e in along] for v in column]
                flat = _column([value for row in table for value in row])
                columns[key] = (
                    ("checkpoint", "ensemble"),
                    flat.reshape(len(cards), len(along)),
                    variable_attrs[(name, key)],
                )
            else:
                columns[key] = ("checkpoint", _column(column), variable_attrs[(name, key)])
        extra = {"ensemble": along} if along else {}
        combined[name] = xr.Dataset(columns, coords=coordinates | extra)
    return combined


def _coordinates(names: list[str], cards: list[dict]) -> dict[str, Any]:
    recorded = [sweep_coordinates(card) for card in cards]
    keys = dict.fromkeys(key for coordinates in recorded for key in coordinates)
    coordinates: dict[str, Any] = {"checkpoint": names}
    for key in keys:
        coordinates[key] = ("checkpoint", [c.get(key, math.nan) for c in recorded])
    return coordinates


def _column(values: list[Any]) -> np.ndarray:
    """Numbers as float64 (NaN where missing), anything else as text ("" where missing)."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, (int, float, np.number)) and not isinstance(v, str) for v in present):
        return np.array([math.nan if v is None else float(v) for v in values])
    return np.array(["" if v is None else str(v) for v in values])


def write_sweep(combined: dict[str, xr.Dataset], path: Path) -> Path:
    """One netCDF group per analysis, written once, atomically."""
    from .results import ResultsStore

    Path(path).unlink(missing_ok=True)  # derived from the runs' files: rebuilt whole every time
    from .results import root_attrs

    store = ResultsStore(path)
    root = root_attrs(
        title=f"rginspect sweep of {len(next(iter(combined.values())).checkpoint)} checkpoints",
        history="the scalars of each checkpoint's results.nc, combined",
        kind="rginspect sweep",
    )
    store.write_all(combined, {}, root=root)
    return store.path
