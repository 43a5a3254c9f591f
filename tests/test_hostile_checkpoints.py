"""Checkpoints from strangers: pickled code is never run, and any broken file is one rginspect error.

Every payload would create a marker file; the tests assert it never appears. The fuzz tests feed the
loaders random bytes, truncated and bit-flipped copies of real checkpoints and mutated state dicts:
each ends in a loaded model or a specific rginspect error, never another exception or a stray file.
"""

from __future__ import annotations

import io
import json
import math
import os
import pickle
import shutil
import string
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import NEURALRG_RUN, RGFLOW_STATE, STATE_DICT_MUTATIONS, mutate_state_dict
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import rginspect
from rginspect.cli import main
from rginspect.data import load_data
from rginspect.errors import DataSpecError, RGInspectError
from rginspect.formats.neuralrg import PARAMETERS
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
        assert type(error) is not RGInspectError, str(error)  # a specific error, not the base
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


@FUZZ
@given(mutation=st.sampled_from(STATE_DICT_MUTATIONS), which=st.integers(0, 10**6))
def test_mutated_state_dicts_are_specific_errors(tmp_path_factory, mutation, which):
    checkpoint = torch.load(PHI4, weights_only=True)
    key = mutate_state_dict(checkpoint["state_dict"], mutation, which)
    path = tmp_path_factory.mktemp("state") / "mutated.pt"
    buffer = io.BytesIO()
    torch.save(checkpoint, buffer)
    path.write_bytes(buffer.getvalue())
    result = outcome(path)
    assert result in ("ArchitectureMismatchError", "NonFiniteWeightsError"), (mutation, key, result)


# -- values read besides the strict state-dict match ---------------------------------------------
# A loader reads masks, the prior's scale, configs, hyper-parameters and run-folder names to decide
# what to build; each mutation below hits one of those, in every format.
REMOVE, GROUP = "<remove>", "<hdf5 group>"
ODD_NUMBERS = (  # booleans, small and huge integers, and floats with NaN and infinities
    st.booleans(),
    st.integers(-3, 70),
    st.integers(-(2**62), 2**62),
    st.floats(allow_nan=True, allow_infinity=True),
)
ODD_VALUES = st.one_of(
    st.just(REMOVE),
    st.none(),
    *ODD_NUMBERS,
    st.text(alphabet=string.printable, max_size=6),
    st.lists(st.integers(-1, 66), max_size=9),
    st.dictionaries(
        st.text(alphabet=string.ascii_letters, max_size=3), st.integers(0, 3), max_size=2
    ),
)
DTYPES = [torch.float32, torch.float64, torch.int64, torch.bool, torch.complex64]
FILLS = [0.0, 0.5, 1.0, -1.0, 2**-0.5, math.nan, math.inf, 1e30]
ODD_TENSORS = st.builds(
    lambda shape, dtype, fill: torch.full(shape, fill).to(dtype),
    st.lists(st.integers(0, 3), max_size=3).map(tuple),
    st.sampled_from(DTYPES),
    st.sampled_from(FILLS),
)
ANYTHING = st.one_of(ODD_VALUES, ODD_TENSORS)


def put(container: dict, path: tuple, value) -> None:
    """Set (or with REMOVE, delete) container[path[0]][path[1]]...; a missing parent is created."""
    for key in path[:-1]:
        if not isinstance(
            container.get(key) if isinstance(container, dict) else None, (dict, list)
        ):
            container[key] = {}
        container = container[key]
    if isinstance(container, list):
        index = path[-1] % len(container) if container else 0
        if value is REMOVE:
            del container[index : index + 1]
        elif container:
            container[index] = value
        return
    if value is REMOVE:
        container.pop(path[-1], None)
    else:
        container[path[-1]] = value


def write_state(payload, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


RGFLOW_READ_KEYS = [
    "prior.scale",
    *(f"layers.{s}.mask_{side}" for s in range(8) for side in ("left", "right")),
    *(f"layers.{s}.s_layers.0.res_blocks.0.1.weight_v" for s in range(8)),
]


@FUZZ
@given(
    key=st.sampled_from([*RGFLOW_READ_KEYS, "<the state dict>", "<a key that is not text>"]),
    value=ANYTHING,
    in_run_folder=st.booleans(),
)
def test_rgflow_values_read_before_the_match_are_checked(
    tmp_path_factory, key, value, in_run_folder
):
    payload = torch.load(RGFLOW_STATE, weights_only=True)
    if key == "<the state dict>":
        payload["flow"] = value
    elif key == "<a key that is not text>":
        payload["flow"][0] = value
    else:
        put(payload["flow"], (key,), value)
    folder = "laplace_nl2_nr1_nm1_nh64" if in_run_folder else "renamed"
    outcome(write_state(payload, tmp_path_factory.mktemp("rg") / folder / "out_save" / "60.state"))


SIZES = st.lists(st.integers(0, 70), min_size=1, max_size=5)


@FUZZ
@given(
    prefix=st.sampled_from(["laplace_", "", "ar_", "laplace_ar_"]),
    kernel=st.sampled_from(["", "ks4_", "ks04_", "ks2_", "ks0_"]),
    sizes=st.tuples(SIZES, SIZES, SIZES, SIZES),
    fixture_sizes=st.booleans(),
)
def test_rgflow_run_folder_names_must_agree_with_the_weights(
    tmp_path_factory, prefix, kernel, sizes, fixture_sizes
):
    actual = (2, 1, 1, 64)  # the fixture: nl2_nr1_nm1_nh64 on 4 levels of 4x4 blocks
    if fixture_sizes:  # half the examples state the right sizes, once or per level
        sizes = tuple(
            [value] * (1 if len(stated) % 2 else 4)
            for value, stated in zip(actual, sizes, strict=True)
        )
    name = prefix + kernel + "nl{}_nr{}_nm{}_nh{}".format(*(",".join(map(str, v)) for v in sizes))
    path = tmp_path_factory.mktemp("name") / name / "out_save" / "60.state"
    path.parent.mkdir(parents=True)
    shutil.copy(RGFLOW_STATE, path)
    describes = (
        "ar_" not in prefix
        and kernel in ("", "ks4_", "ks04_")
        and all(set(v) == {a} and len(v) in (1, 4) for v, a in zip(sizes, actual, strict=True))
    )
    assert (outcome(path) == "loaded") == describes, name


def hdf5_value(handle, key: str, value) -> None:
    if value is GROUP:
        handle.create_group(key)
    elif isinstance(value, list):
        handle[key] = np.asarray(value, dtype=float if not value else None)
    elif value is not REMOVE:
        handle[key] = value


HDF5_VALUES = st.one_of(
    st.just(REMOVE),
    st.just(GROUP),
    *ODD_NUMBERS,
    st.text(alphabet=string.ascii_letters, max_size=6),
    st.lists(st.integers(-1, 66), max_size=4),
)
NEURALRG_READ_KEYS = [
    "prior.sigma",
    "flow.prior.sigma",
    *(f"flow.layerList.{b}.maskList{r}" for b in range(6) for r in ("", "R")),
    "flow.layerList.0.sList.0.layerList.0.weight",
]


@FUZZ
@given(
    target=st.one_of(
        st.tuples(
            st.just("hdf5"),
            st.sampled_from(["L", "T", "nrepeat", "depthMERA", "d", "new"]),
            HDF5_VALUES,
        ),
        st.tuples(st.just("state"), st.sampled_from(NEURALRG_READ_KEYS), ANYTHING),
        st.tuples(st.just("garbage hdf5"), st.just(""), st.binary(max_size=64)),
    )  # fmt: skip
)
def test_neuralrg_parameters_and_values_read_before_the_match_are_checked(tmp_path_factory, target):
    where, key, value = target
    run = tmp_path_factory.mktemp("nrg") / "run"
    (run / "savings").mkdir(parents=True)
    state = torch.load(NEURALRG_SAVING, weights_only=True)
    with (
        h5py.File(NEURALRG_RUN / PARAMETERS, "r") as source,
        h5py.File(run / PARAMETERS, "w") as copy,
    ):
        for name in source:
            if not (where == "hdf5" and name == key):
                copy[name] = source[name][()]
        if where == "hdf5":
            hdf5_value(copy, key, value)
    if where == "state":
        put(state, (key,), value)
    elif where == "garbage hdf5":
        (run / PARAMETERS).write_bytes(value)
    outcome(write_state(state, run / "savings" / NEURALRG_SAVING.name))


NATIVE_CONFIG = torch.load(PHI4, weights_only=True)
NATIVE_PATHS = [
    ("rginspect_format",),
    ("config",),
    *(("config", key) for key in [*NATIVE_CONFIG["config"], "logit_constraint", "new"]),
    *(("config", key, index) for key in ("nlayers", "nresblocks", "nmlp", "nhidden")
      for index in (0, 5)),
    ("action",),
    *(("action", key) for key in [*NATIVE_CONFIG["action"], "new"]),
    ("provenance",),
    ("provenance", "loss_curve"),
    ("state_dict",),
    ("state_dict", "prior.scale"),
    *(("state_dict", f"flow.blocks.{s}.masks") for s in (0, 7)),
]  # fmt: skip


@FUZZ
@given(where=st.sampled_from(NATIVE_PATHS), value=ANYTHING)
def test_native_values_read_before_the_match_are_checked(tmp_path_factory, where, value):
    checkpoint = torch.load(PHI4, weights_only=True)
    put(checkpoint, where, value)
    outcome(write_state(checkpoint, tmp_path_factory.mktemp("native") / "model.pt"))


@pytest.fixture(scope="module")
def phi4_safetensors(tmp_path_factory) -> Path:
    return rginspect.save(rginspect.load(PHI4), tmp_path_factory.mktemp("st") / "phi4.safetensors")


@FUZZ
@given(
    where=st.sampled_from([path for path in NATIVE_PATHS if path[0] != "state_dict"]),
    value=ODD_VALUES,
    raw_text=st.one_of(st.none(), st.text(max_size=12)),
    tensor=st.one_of(st.none(), st.tuples(st.sampled_from(["prior.scale", "flow.blocks.0.masks"]),
                                          ODD_TENSORS)),
)  # fmt: skip
def test_native_safetensors_metadata_is_checked(
    tmp_path_factory, phi4_safetensors, where, value, raw_text, tensor
):
    with safe_open(str(phi4_safetensors), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(phi4_safetensors))
    decoded = {key: json.loads(text) for key, text in metadata.items()}
    put(decoded, where, value)
    metadata = {key: json.dumps(entry) for key, entry in decoded.items()}
    if raw_text is not None:  # the metadata entry as arbitrary text instead of JSON
        metadata[where[0]] = raw_text
    if tensor is not None and tensor[1].numel() > 0:  # safetensors stores no empty tensors' data
        tensors[tensor[0]] = tensor[1].contiguous()
    path = tmp_path_factory.mktemp("st") / "mutated.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    outcome(path)


@pytest.mark.parametrize("shape", [(1,), (2,), (1, 1), (0,), (3, 4)])
@pytest.mark.parametrize("folder", ["laplace_nl2_nr1_nm1_nh64", "renamed"])
def test_a_prior_scale_of_any_shape_but_a_scalar_is_one_line_from_info(tmp_path, shape, folder):
    payload = torch.load(RGFLOW_STATE, weights_only=True)
    payload["flow"]["prior.scale"] = torch.full(shape, 2**-0.5)
    path = write_state(payload, tmp_path / folder / "out_save" / "60.state")
    result = CliRunner().invoke(main, ["info", str(path)])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and result.output.count("\n") == 1
    assert f"prior.scale {shape} != ()" in result.output
