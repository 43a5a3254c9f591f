"""Checkpoints from strangers: pickled code is never run, and any broken file is one rginspect error.

Every payload would create a marker file; the tests assert it never appears. The fuzz tests feed the
loaders random bytes, truncated and bit-flipped copies of real checkpoints and mutated state dicts:
each ends in a loaded model or a specific rginspect error, never another exception or a stray file.
"""

from __future__ import annotations

import io
import os
import pickle
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import NEURALRG_RUN, RGFLOW_STATE
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import rginspect
from rginspect.cli import main
from rginspect.data import load_data
from rginspect.errors import DataSpecError, RGInspectError
from rginspect.model import RGFlowModel

PHI4 = Path(rginspect.__file__).parent / "assets" / "phi4_L16.pt"
NEURALRG_SAVING = next((NEURALRG_RUN / "savings").glob("*.saving"))
FUZZ = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


# -- payloads -------------------------------------------------------------------------------------
class SystemCall:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class Exec:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').close()",))


class FileWrite:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


PAYLOADS = {"os.system": SystemCall, "builtins.exec": Exec, "file write": FileWrite}


def raw_pickle(payload, folder: Path) -> Path:
    path = folder / "evil.pt"
    path.write_bytes(pickle.dumps(payload, protocol=2))
    return path


def torch_top_level(payload, folder: Path) -> Path:
    torch.save(payload, folder / "evil.pt")
    return folder / "evil.pt"


def legacy_torch(payload, folder: Path) -> Path:
    torch.save({"flow": payload}, folder / "evil.pt", _use_new_zipfile_serialization=False)
    return folder / "evil.pt"


def inside_state_dict(payload, folder: Path) -> Path:
    checkpoint = torch.load(PHI4, weights_only=True)
    checkpoint["state_dict"]["flow.blocks.0.masks"] = payload
    torch.save(checkpoint, folder / "evil.pt")
    return folder / "evil.pt"


def nested_entry(payload, folder: Path) -> Path:
    torch.save({"flow": {"layers": [{"weights": (1, payload)}]}}, folder / "evil.pt")
    return folder / "evil.pt"


def zip_member(payload, folder: Path) -> Path:
    """A real checkpoint whose data.pkl member is replaced by the payload."""
    path = folder / "evil.pt"
    with zipfile.ZipFile(PHI4) as source, zipfile.ZipFile(path, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename.endswith("data.pkl"):
                data = pickle.dumps(payload, protocol=2)
            target.writestr(item, data)
    return path


def neuralrg_run(payload, folder: Path) -> Path:
    run = folder / "run"
    (run / "savings").mkdir(parents=True)
    shutil.copy(NEURALRG_RUN / "parameters.hdf5", run)
    torch.save(payload, run / "savings" / "SymmMERA_l6_M3H16_R1_IsingSaving_epoch400.saving")
    return run


def rgflow_run(payload, folder: Path) -> Path:
    out_save = folder / "laplace_nl2_nr1_nm1_nh64" / "out_save"
    out_save.mkdir(parents=True)
    torch.save({"flow": {"layers.0.mask_left": payload}}, out_save / "9.state")
    return out_save.parent


LOCATIONS = {
    f.__name__: f
    for f in (
        raw_pickle,
        torch_top_level,
        legacy_torch,
        inside_state_dict,
        nested_entry,
        zip_member,
        neuralrg_run,
        rgflow_run,
    )  # fmt: skip
}


@pytest.mark.parametrize("location", LOCATIONS)
@pytest.mark.parametrize("kind", PAYLOADS)
def test_code_in_a_checkpoint_never_runs(tmp_path, kind, location):
    marker = tmp_path / "pwned"
    path = LOCATIONS[location](PAYLOADS[kind](marker), tmp_path)
    with pytest.raises(RGInspectError, match="--trust-checkpoint"):
        rginspect.load(path)
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert "--trust-checkpoint" in result.output
    assert not marker.exists()


@pytest.mark.parametrize("kind", PAYLOADS)
def test_code_in_npz_data_never_runs(tmp_path, kind):
    marker = tmp_path / "pwned"
    objects = np.empty(1, dtype=object)
    objects[0] = PAYLOADS[kind](marker)
    np.save(tmp_path / "fields.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "fields.npz", fields=objects)
    for name in ("fields.npy", "fields.npz"):
        with pytest.raises(DataSpecError, match="not a readable numpy"):
            load_data(f"npz:{tmp_path / name}", channels=2, size=16)
    assert not marker.exists()


# -- fuzzing ----------------------------------------------------------------------------------------
def outcome(path: Path) -> str:
    """Load and say how it ended; anything but a model or an rginspect error fails the test."""
    before = sorted(p.name for p in path.parent.iterdir())
    try:
        model = rginspect.load(path)
    except RGInspectError as error:
        assert "\n" not in str(error)
        result = type(error).__name__
    else:
        assert isinstance(model, RGFlowModel)
        result = "loaded"
    assert sorted(p.name for p in path.parent.iterdir()) == before  # nothing written beside it
    event(result)  # --hypothesis-show-statistics counts the outcomes
    return result


REAL = {"native": PHI4, "rgflow": RGFLOW_STATE, "neuralrg": NEURALRG_SAVING}


def copy_of(kind: str, folder: Path, data: bytes) -> Path:
    """`data` written where a checkpoint of this kind sits (RG-Flow and NeuralRG need their run
    folder around the file to be recognised)."""
    if kind == "native":
        path = folder / "model.pt"
    elif kind == "rgflow":
        path = folder / "laplace_nl2_nr1_nm1_nh64" / "out_save" / "60.state"
    else:
        path = folder / "run" / "savings" / NEURALRG_SAVING.name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(NEURALRG_RUN / "parameters.hdf5", path.parent.parent)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@FUZZ
@given(data=st.binary(max_size=4096), suffix=st.sampled_from([".pt", ".state", ".safetensors"]))
def test_random_bytes_are_refused(tmp_path_factory, data, suffix):
    folder = tmp_path_factory.mktemp("bytes")
    path = folder / f"random{suffix}"
    path.write_bytes(data)
    assert outcome(path) != "loaded"


@FUZZ
@given(kind=st.sampled_from(list(REAL)), fraction=st.floats(0, 0.999))
def test_truncated_checkpoints_are_refused(tmp_path_factory, kind, fraction):
    data = REAL[kind].read_bytes()
    path = copy_of(kind, tmp_path_factory.mktemp("cut"), data[: int(len(data) * fraction)])
    assert outcome(path) != "loaded"


@FUZZ
@given(
    kind=st.sampled_from(list(REAL)), flips=st.lists(st.integers(0, 10**9), min_size=1, max_size=8)
)
def test_bit_flipped_checkpoints_load_or_are_refused(tmp_path_factory, kind, flips):
    data = bytearray(REAL[kind].read_bytes())
    for flip in flips:
        data[flip % len(data)] ^= 1 << (flip // len(data) % 8)
    path = copy_of(kind, tmp_path_factory.mktemp("flip"), bytes(data))
    outcome(path)  # a flip inside a weight may leave a valid model; all else is an rginspect error


MUTATIONS = ("remove", "rename", "reshape", "int", "complex", "bool", "nan", "inf")


@FUZZ
@given(mutation=st.sampled_from(MUTATIONS), which=st.integers(0, 10**6))
def test_mutated_state_dicts_are_specific_errors(tmp_path_factory, mutation, which):
    checkpoint = torch.load(PHI4, weights_only=True)
    state = checkpoint["state_dict"]
    key = sorted(state)[which % len(state)]
    tensor = state[key]
    if mutation == "remove":
        del state[key]
    elif mutation == "rename":
        state[key + "_renamed"] = state.pop(key)
    elif mutation == "reshape":
        state[key] = tensor.reshape(-1) if tensor.dim() != 1 else tensor.reshape(1, -1)
    elif mutation in ("int", "complex", "bool"):
        state[key] = tensor.to(
            {"int": torch.int32, "complex": torch.complex64, "bool": torch.bool}[mutation]
        )
    else:
        state[key] = tensor.float().fill_(float(mutation))
    path = tmp_path_factory.mktemp("state") / "mutated.pt"
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    path.write_bytes(buffer.getvalue())
    result = outcome(path)
    assert result in ("ArchitectureMismatchError", "NonFiniteWeightsError"), (mutation, key, result)
