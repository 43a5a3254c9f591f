"""Sweeps: the same analyses over many checkpoints, combined along a `checkpoint` dimension.

Each checkpoint is one independent job (`run_job`): load, run, write its own results.nc and report.
Jobs share nothing but read-only settings, so any scheduler can map them over workers; combining
reads only the files they wrote. The combined file keeps each analysis' scalar results, with the
couplings and training state every checkpoint recorded as coordinates (κ, λ, T, β, L, steps, epoch).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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
    """One checkpoint of a sweep and where its results go."""

    checkpoint: str
    out: Path
    settings: RunSettings


@dataclass(frozen=True)
class JobOutcome:
    """What one job left behind: its results file, or the error that stopped it before any."""

    checkpoint: str
    results_path: Path | None
    failed_analyses: tuple[str, ...] = ()
    error: str = ""


def plan_sweep(checkpoints: Iterable[str], out: Path, settings: RunSettings) -> list[SweepJob]:
    """One job per checkpoint, each with its own folder under `out` (names made unique)."""
    jobs, used = [], set()
    for checkpoint in checkpoints:
        stem = folder_name(checkpoint)
        name, n = stem, 1
        while name in used:
            n += 1
            name = f"{stem}-{n}"
        used.add(name)
        jobs.append(SweepJob(str(checkpoint), Path(out) / name, settings))
    if not jobs:
        raise RGInspectError("a sweep needs at least one checkpoint")
    return jobs


def run_job(job: SweepJob) -> JobOutcome:
    """Run one checkpoint; never raises for a bad checkpoint, so one job cannot sink the sweep."""
    try:
        result = run_checkpoint(job.checkpoint, job.out, job.settings)
    except RGInspectError as error:
        return JobOutcome(job.checkpoint, None, error=str(error))
    failed = tuple(outcome.name for outcome in result.failed)
    return JobOutcome(job.checkpoint, result.results_path, failed)


def run_sweep(
    jobs: list[SweepJob],
    out: Path,
    map_jobs: Callable[
        [Callable[[SweepJob], JobOutcome], list[SweepJob]], Iterable[JobOutcome]
    ] = map,
) -> tuple[list[JobOutcome], Path | None]:
    """Run the jobs with `map_jobs` (serial by default), then combine and report what finished."""
    outcomes = list(map_jobs(run_job, jobs))
    finished = [o.results_path for o in outcomes if o.results_path is not None]
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


def combine_results(results_paths: list[Path]) -> dict[str, xr.Dataset]:
    """Per analysis, every scalar result of every checkpoint along a `checkpoint` dimension
    (an analysis that wants a number in sweeps stores it as a scalar, its error as `<name>_err`).

    A checkpoint where an analysis failed, or a variable it lacks, gets NaN (or "" for text).
    """
    from .results import ResultsStore

    cards, per_analysis, variable_attrs = [], {}, {}
    for index, path in enumerate(results_paths):
        tree = ResultsStore(Path(path)).read()
        cards.append(json.loads(tree.attrs.get("model_card", "{}")))
        for name, node in tree.children.items():
            if node.attrs.get("status", "ok") != "ok":
                continue
            scalars = {}
            for key, variable in node.to_dataset().data_vars.items():
                if variable.ndim == 0:
                    scalars[key] = variable.values.item()
                    variable_attrs.setdefault((name, key), dict(variable.attrs))
            per_analysis.setdefault(name, {})[index] = scalars
    coordinates = _coordinates(results_paths, cards)
    combined = {}
    for name, found in per_analysis.items():
        keys = dict.fromkeys(key for scalars in found.values() for key in scalars)
        columns = {
            key: (
                "checkpoint",
                _column([found.get(i, {}).get(key) for i in range(len(cards))]),
                variable_attrs[(name, key)],
            )
            for key in keys
        }
        combined[name] = xr.Dataset(columns, coords=coordinates)
    return combined


def _coordinates(results_paths: list[Path], cards: list[dict]) -> dict[str, Any]:
    recorded = [sweep_coordinates(card) for card in cards]
    keys = dict.fromkeys(key for coordinates in recorded for key in coordinates)
    coordinates: dict[str, Any] = {"checkpoint": [Path(path).parent.name for path in results_paths]}
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
    """One netCDF group per analysis, written atomically like a run's results."""
    from .results import ResultsStore

    Path(path).unlink(missing_ok=True)  # derived from the runs' files: rebuilt whole every time
    store = ResultsStore(path)
    store.set_root_attrs(kind="rginspect sweep")
    for name, dataset in combined.items():
        store.write(name, dataset, {"analysis": name})
    return store.path


def sweep_axis(dataset: xr.Dataset) -> str:
    """The recorded coordinate that varies across the sweep (the first, in recorded order)."""
    for name, coordinate in dataset.coords.items():
        if name != "checkpoint" and len(np.unique(coordinate.values)) > 1:
            return str(name)
    return "checkpoint"
