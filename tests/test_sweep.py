"""Sweeps: coordinates from what checkpoints record, one job per checkpoint, combined results."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from conftest import NEURALRG_RUN, untrained_phi4_checkpoints

import rginspect
from rginspect.cli import main
from rginspect.engine import RunSettings
from rginspect.report.sweep import sweep_section
from rginspect.results import ResultsStore
from rginspect.sweep import plan_sweep, run_sweep, sweep_coordinates

KAPPAS = (0.2, 0.5)


@pytest.fixture(scope="module")
def phi4_checkpoints(tmp_path_factory):
    return untrained_phi4_checkpoints(tmp_path_factory.mktemp("phi4"), KAPPAS)


def test_coordinates_come_from_the_recorded_action_and_training():
    card = {
        "action": {"name": "phi4", "L": 16, "kappa": 0.6, "lamb": 1.0, "n_channels": 2},
        "data_shape": [2, 16, 16],
        "provenance": {"training": {"steps": 3000}, "epoch": None},
    }
    assert sweep_coordinates(card) == {"kappa": 0.6, "lamb": 1.0, "L": 16.0, "steps": 3000.0}
    ising = rginspect.load(NEURALRG_RUN).info()
    assert sweep_coordinates(ising) == {"T": 2.269, "L": 8.0, "epoch": 400.0}


def test_jobs_get_unique_folders(tmp_path):
    jobs = plan_sweep(["a/model.pt", "b/model.pt", "c"], tmp_path, RunSettings())
    assert [job.out.name for job in jobs] == ["model", "model-2", "c"]


def test_sweep_combines_scalars_along_checkpoint(phi4_checkpoints, tmp_path):
    out = tmp_path / "sweep"
    missing = tmp_path / "missing.pt"
    result = CliRunner().invoke(
        main,
        ["sweep", *map(str, phi4_checkpoints), str(NEURALRG_RUN), str(missing), "--plugins",
         "likelihood,goldstone", "--samples", "64", "--out", str(out), "--quiet"],
    )  # fmt: skip
    # the missing checkpoint fails the sweep's exit status but loses nothing else
    assert result.exit_code == 1
    assert "missing.pt" in result.output and "no such file" in result.output
    sweep = ResultsStore(out / "sweep.nc").read()
    likelihood = sweep["likelihood"].to_dataset()
    assert list(likelihood.checkpoint.values) == ["phi4_k0.2", "phi4_k0.5", "ising_L8"]
    np.testing.assert_array_equal(likelihood.kappa.values[:2], KAPPAS)
    assert np.isnan(likelihood.kappa.values[2]) and likelihood["T"].values[2] == 2.269
    for name in likelihood.checkpoint.values:  # each value is the one its own run stored
        own = ResultsStore(out / name / "results.nc").read()["likelihood"].to_dataset()
        assert float(likelihood.mean_total.sel(checkpoint=name)) == float(own.mean_total)
    # goldstone does not apply to the one-component Ising field: skipped there, NaN in the sweep
    goldstone = sweep["goldstone"].to_dataset()
    assert np.isnan(goldstone.phase_concentration.sel(checkpoint="ising_L8"))
    ising_run = ResultsStore(out / "ising_L8" / "results.nc").read()
    assert ising_run["goldstone"].attrs["status"] == "skipped"
    assert "2 components" in ising_run["goldstone"].attrs["error"]
    html = (out / "sweep.html").read_text()
    assert "likelihood across the sweep" in html and "kappa" in html


def test_jobs_can_be_mapped_by_any_scheduler(phi4_checkpoints, tmp_path):
    """The per-checkpoint work is a plain function over picklable jobs: a scheduler maps it."""
    seen = []

    def recording_map(function, jobs):
        for job in jobs:
            seen.append(job.checkpoint)
            yield function(job)

    settings = RunSettings(plugins="likelihood", samples=32, progress=False)
    jobs = plan_sweep(map(str, phi4_checkpoints), tmp_path, settings)
    outcomes, sweep_path = run_sweep(jobs, tmp_path, map_jobs=recording_map)
    assert seen == [str(p) for p in phi4_checkpoints]
    assert all(o.results_path is not None and not o.failed_analyses for o in outcomes)
    combined = xr.open_datatree(sweep_path)["likelihood"].to_dataset()
    assert combined.sizes["checkpoint"] == 2


def test_sweep_with_nothing_usable_is_an_error(tmp_path):
    result = CliRunner().invoke(main, ["sweep", str(tmp_path / "nope.pt"), "--out", str(tmp_path)])
    assert result.exit_code != 0
    assert "no checkpoint of the sweep could be analysed" in result.output


@pytest.mark.parametrize("scheduler", ["bogus", "local:x"])
def test_a_bad_scheduler_is_one_line(tmp_path, scheduler):
    result = CliRunner().invoke(
        main, ["sweep", "x.pt", "--scheduler", scheduler, "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert (
        result.output.startswith(f"error: --scheduler {scheduler!r}")
        and "tcp://HOST:PORT" in result.output
    )
    assert result.output.count("\n") == 1


def test_the_report_shades_where_a_phase_label_changes():
    """Checkpoints in any order: the band lies between the neighbours, in κ, whose labels differ."""
    kappa = [0.5, 0.3, 0.35, 0.4, 0.1]
    label = ["ordered", "disordered", "disordered", "ordered", "disordered"]
    dataset = xr.Dataset(
        {"label": ("checkpoint", label), "xi": ("checkpoint", [9.0, 3.0, 4.0, 8.0, 2.0])},
        coords={"checkpoint": list("abcde"), "kappa": ("checkpoint", kappa)},
    )
    section = sweep_section("correlation", dataset, "kappa")
    assert section.how_to_read.endswith(
        "label goes from disordered to ordered between kappa = 0.35 and 0.4 (shaded)."
    )
    panels = [ax for ax in section.figures[0].figure.axes if ax.axison]
    assert len(panels) == 2
    for ax in panels:
        (band,) = ax.patches
        np.testing.assert_allclose(band.get_extents().x0, ax.transData.transform((0.35, 0))[0])
        np.testing.assert_allclose(band.get_extents().x1, ax.transData.transform((0.4, 0))[0])
    unchanged = dataset.assign(label=("checkpoint", ["disordered"] * 5))
    assert "shaded" not in sweep_section("correlation", unchanged, "kappa").how_to_read


def test_sweep_trains_one_model_per_coupling_first(tmp_path):
    """`--train field` trains through the Python training API, then sweeps what it wrote."""
    out = tmp_path / "scan"
    result = CliRunner().invoke(main, ["sweep", "--train", "field", "--action", "ising",
                                       "--temperature", "2.0:3.0:2", "--size", "4", "--steps", "3",
                                       "--plugins", "summary", "--out", str(out), "--quiet"])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(path.name for path in (out / "models").glob("*.pt"))
    assert written == ["ising_L4_t2.pt", "ising_L4_t3.pt"]
    swept = ResultsStore(out / "sweep.nc").read()["summary"].to_dataset()
    np.testing.assert_allclose(sorted(swept["T"].values), [2.0, 3.0])
    for path in (out / "models").glob("*.pt"):
        assert rginspect.load(path).provenance["training"]["steps"] == 3


def test_results_along_ensemble_become_one_line_each(phi4_checkpoints, tmp_path):
    """correlation measures the action's HMC ensemble and the flow's samples: the sweep keeps both
    as (checkpoint, ensemble) columns, each equal to its own run's value, plots one line per
    ensemble in the same panel, and shades only where the action's label changes."""
    out = tmp_path / "sweep"
    result = CliRunner().invoke(
        main,
        ["sweep", *map(str, phi4_checkpoints), "--plugins", "correlation", "--samples", "512",
         "-p", "correlation.resamples=20", "--out", str(out), "--quiet"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    swept = ResultsStore(out / "sweep.nc").read()["correlation"].to_dataset()
    assert list(swept.ensemble.values) == ["action", "flow", "flow + Metropolis"]
    assert swept.xi_zero_momentum.dims == ("checkpoint", "ensemble")
    for name in swept.checkpoint.values:
        own = ResultsStore(out / name / "results.nc").read()["correlation"].to_dataset()
        np.testing.assert_array_equal(
            swept.xi_zero_momentum.sel(checkpoint=name).values, own.xi_zero_momentum.values
        )
        assert swept.phase.sel(checkpoint=name).item() == own.label.values[0]
    section = sweep_section("correlation", swept, "kappa")
    panel = next(ax for ax in section.figures[0].figure.axes if ax.get_title() == "eta")
    assert panel.get_legend_handles_labels()[1] == ["action", "flow", "flow + Metropolis"]
    assert "eta (flow)" in section.tables[0].frame.columns

    kappa = [0.1, 0.2, 0.3]  # the flow's label changes where the action's does not: no band
    labels = [["disordered", "disordered"], ["disordered", "ordered"], ["ordered", "ordered"]]
    made_up = xr.Dataset(
        {"label": (("checkpoint", "ensemble"), labels), "xi": ("checkpoint", [1.0, 2.0, 3.0])},
        coords={"checkpoint": list("abc"), "kappa": ("checkpoint", kappa),
                "ensemble": ["action", "flow"]},
    )  # fmt: skip
    text = sweep_section("correlation", made_up, "kappa").how_to_read
    assert text.endswith("from disordered to ordered between kappa = 0.2 and 0.3 (shaded).")
    assert "0.1 and 0.2" not in text
