"""The command line, through click's runner: one-line errors with exit status 2, train -> info."""

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from conftest import NEURALRG_RUN, RGFLOW_STATE

import rginspect
from rginspect.cli import main


@pytest.fixture
def run():
    def invoke(*args: str):
        return CliRunner().invoke(main, [str(a) for a in args])

    return invoke


def test_info_json_describes_the_fixture(run):
    result = run("info", RGFLOW_STATE, "--json")
    assert result.exit_code == 0, result.output
    card = json.loads(result.output)
    assert card["format"] == "rgflow" and card["latents_per_level"] == [2304, 576, 144, 48]
    assert card["load_check"]["max_reconstruction_error"] < 1e-4


def test_info_text_names_the_action(run):
    result = run("info", NEURALRG_RUN)
    assert result.exit_code == 0, result.output
    assert "neuralrg" in result.output and "'name': 'ising'" in result.output


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing.pt", "no such file"),
        (lambda tmp: (tmp / "bad.state").write_text("x") and tmp / "bad.state", "not a PyTorch"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(run, tmp_path, make, message):
    result = run("info", make(tmp_path))
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output


def test_crafted_pickle_is_refused_by_the_cli(run, tmp_path):
    class CreatesAFile:
        def __reduce__(self):
            return (open, (str(tmp_path / "pwned"), "w"))

    torch.save({"flow": CreatesAFile()}, tmp_path / "evil.state")
    result = run("info", tmp_path / "evil.state")
    assert result.exit_code == 2 and "--trust-checkpoint" in result.output
    assert not (tmp_path / "pwned").exists()


def test_train_image_writes_a_native_checkpoint(run, tmp_path):
    out = tmp_path / "tiny.pt"
    result = run("train", "image", "--data", "msds1:64", "--steps", 3, "--batch-size", 8,
                 "--nhidden", 8, "--nlayers", "1,1,1,1", "--quiet", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    model = rginspect.load(out)
    training = model.provenance["training"]
    assert training["command"] == "train image" and training["loss_unit"] == "bits/dim"
    assert len(training["loss_curve"]["loss"]) == 3 and training["data"] == "msds1:64"
    assert model.config["nhidden"] == [8] * 8 and model.domain == "image"


def test_train_image_glow_writes_a_normflows_checkpoint_with_its_training(run, tmp_path):
    out = tmp_path / "glow.pt"
    result = run("train", "image", "--architecture", "glow", "--data", "msds1:64", "--steps", 3,
                 "--batch-size", 8, "--nhidden", 8, "--levels", 3, "--quiet", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    model = rginspect.load(out)
    assert model.info()["format"] == "normflows" and model.n_levels == 3
    assert model.provenance["normflows"]["hidden_channels"] == 8
    training = model.provenance["training"]
    assert training["architecture"] == "glow" and training["data"] == "msds1:64"
    assert len(training["loss_curve"]["loss"]) == 3
    # Glow's data-dependent ActNorm initialisation ran on the first batch: no layer was unfitted
    assert "never saw data" not in result.output


def test_train_image_refuses_options_of_the_other_architecture(run, tmp_path):
    result = run("train", "image", "--architecture", "glow", "--kernel", 2, "-o", tmp_path / "x")
    assert result.exit_code == 2 and "does not take --kernel" in result.output
    result = run("train", "image", "--levels", 3, "-o", tmp_path / "x")
    assert result.exit_code == 2 and "does not take --levels" in result.output


def test_train_field_records_the_action(run, tmp_path):
    out = tmp_path / "phi4.safetensors"
    result = run("train", "field", "--action", "phi4", "--kappa", 0.3, "--lamb", 1.0, "--size", 4,
                 "--steps", 2, "--batch-size", 4, "--nhidden", 4, "--quality-samples", 64,
                 "--quiet", "-o", out)  # fmt: skip
    assert result.exit_code == 0, result.output
    model = rginspect.load(out)
    assert model.action.config()["kappa"] == 0.3 and model.data_shape == (2, 4, 4)
    training = model.provenance["training"]
    assert training["loss_unit"] == "free energy per site"
    # the sampler quality on as many own samples as asked, plain and mixed over the symmetries
    assert training["sampler_quality"]["n_samples"] == 64
    assert training["symmetrized_sampler_quality"]["n_samples"] == 64


def test_train_field_needs_its_couplings(run, tmp_path):
    result = run("train", "field", "--action", "ising", "-o", tmp_path / "x.pt")
    assert result.exit_code == 2 and "--temperature" in result.output


def test_training_is_reproducible_from_the_command(run, tmp_path):
    arguments = ["train", "field", "--action", "ising", "--temperature", 2.5, "--size", 4,
                 "--steps", 3, "--batch-size", 4, "--nhidden", 4, "--quiet", "-o"]  # fmt: skip
    for name in ("a.pt", "b.pt"):
        assert run(*arguments, tmp_path / name).exit_code == 0
    first, second = (rginspect.load(tmp_path / name).state_dict() for name in ("a.pt", "b.pt"))
    for key in first:  # same machine, same seed: equal up to rounding, not bit for bit
        torch.testing.assert_close(first[key], second[key], rtol=1e-6, atol=1e-7)


IMAGE_MODEL = str(Path(rginspect.__file__).parent / "assets" / "msds1_rgflow.pt")
FIELD_MODEL = str(Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt")


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((IMAGE_MODEL, "--plugins", "recepitve"), "did you mean receptive"),
        ((IMAGE_MODEL, "--plugins", "mix", "-p", "mix.images=0,1", "-p", "mix.x=1"), "'x'"),
        (
            (IMAGE_MODEL, "--plugins", "summary", "-p", "summary.inputs"),
            "analysis.parameter=value",
        ),
        ((IMAGE_MODEL, "--data", "npz:/nonexistent.npz"), "no such file"),
        ((IMAGE_MODEL, "--data", "msds3"), "msds3"),
        ((IMAGE_MODEL, "--plugins", "goldstone"), "for field models"),
        ((FIELD_MODEL, "--plugins", "traverse"), "for image models"),
        ((FIELD_MODEL, "--plugins", "summary", "--timeout", "-1"), "--timeout"),
        ((IMAGE_MODEL, "--plugins", "summary", "--samples", "0"), "--samples"),
    ],
)
def test_run_usage_errors_are_one_line_with_exit_status_2(run, tmp_path, arguments, message):
    result = run("run", *arguments, "--out", tmp_path / "out", "--quiet")
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 or result.output.startswith("Usage:")  # click's own usage errors
    assert not (tmp_path / "out" / "results.nc").exists()


def test_jobs_run_checkpoints_in_processes_with_the_serial_results(run, tmp_path):
    """--jobs 2: each checkpoint in its own process; the output lines come in the order given,
    a checkpoint that fails to load does not stop the other, and the numbers equal a serial run."""
    import shutil

    from rginspect.results import read_results

    bundled = Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt"
    first, second = tmp_path / "first.pt", tmp_path / "second.pt"
    shutil.copy(bundled, first)
    shutil.copy(bundled, second)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    common = ["--plugins", "likelihood,free_energy", "--quiet"]
    parallel = run("run", first, broken, second, "--jobs", "2", "--out", tmp_path / "p", *common)
    assert parallel.exit_code == 2, parallel.output
    lines = parallel.output.splitlines()
    assert lines[0] == f"report: {tmp_path / 'p' / 'first' / 'report.html'}"
    assert lines[1].startswith("error: ") and "broken.pt" in lines[1]
    assert lines[2] == f"report: {tmp_path / 'p' / 'second' / 'report.html'}"
    serial = run("run", first, "--out", tmp_path / "s", *common)
    assert serial.exit_code == 0, serial.output
    expected = read_results(tmp_path / "s" / "results.nc")
    for name in ("first", "second"):
        got = read_results(tmp_path / "p" / name / "results.nc")
        for analysis in ("likelihood", "free_energy"):
            for variable, values in expected[analysis].to_dataset().data_vars.items():
                assert got[analysis][variable].values.tolist() == pytest.approx(
                    values.values.tolist(), rel=1e-6, nan_ok=True
                ), (name, analysis, variable)
