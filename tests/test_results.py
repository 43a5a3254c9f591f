"""The results store: netCDF round trips, provenance, atomic replacement, --resume lookups."""

import errno
import hashlib
import json

import numpy as np
import pytest
import xarray as xr

from rginspect.errors import OutputError
from rginspect.results import (
    ResultsStore,
    cf_conform,
    file_sha256,
    model_card,
    provenance_attrs,
    read_results,
)


def attrs(parameters=None, sha="abc", version="1", seed=7, model="m1", data="d1"):
    return provenance_attrs(analysis="demo", analysis_version=version,
                            parameters=parameters or {"k": 3}, seed=seed,
                            checkpoint_path="model.pt", checkpoint_sha256=sha, model_sha256=model,
                            data_sha256=data)  # fmt: skip


def example() -> xr.Dataset:
    return xr.Dataset(
        {
            "value": (("level", "row"), np.arange(6.0).reshape(2, 3), {"units": "nats"}),
            "mask": ("row", np.array([True, False, True])),
        },
        coords={"level": [0, 1], "row": [0, 1, 2], "name": ("level", ["fine", "coarse"])},
        attrs={"note": {"nested": [1, 2]}},
    )


def test_round_trip_with_provenance(tmp_path):
    store = ResultsStore(tmp_path / "results.nc")
    card = {"format": "native", "latents_per_level": [384, 96], "prior": {"kind": "gaussian"}}
    store.set_root_attrs(model_card=card, seed=7)
    store.write("demo", example(), attrs())
    tree = xr.open_datatree(tmp_path / "results.nc", engine="h5netcdf")  # plain xarray can read it
    np.testing.assert_array_equal(tree["demo"]["value"].values, example()["value"].values)
    # nats are no UDUNITS unit: dimensionless, named in the long name (CF)
    assert tree["demo"]["value"].attrs["units"] == "1"
    assert tree["demo"]["value"].attrs["long_name"] == "value (in nats)"
    assert list(tree["demo"]["name"].values) == ["fine", "coarse"]
    group = tree["demo"].attrs
    assert json.loads(group["parameters"]) == {"k": 3} and group["seed"] == 7
    assert group["status"] == "ok" and group["checkpoint_sha256"] == "abc"
    for key in (
        "rginspect_version",
        "analysis_version",
        "created_at",
        "torch_version",
        "xarray_version",
    ):
        assert group[key]
    assert model_card(read_results(tmp_path / "results.nc")) == card  # once, as typed groups
    np.testing.assert_array_equal(tree["model"].attrs["latents_per_level"], [384, 96])
    assert tree["model/prior"].attrs["kind"] == "gaussian"
    assert "model_card" not in tree.attrs and "model_card" not in group
    reread = ResultsStore(tmp_path / "results.nc").datasets()["demo"]
    assert reread["mask"].dtype == bool and reread["mask"].values.tolist() == [True, False, True]


def test_groups_survive_later_writes_and_failures(tmp_path):
    store = ResultsStore(tmp_path / "results.nc")
    store.write("first", example(), attrs())
    store.record_failure("second", "ValueError: broken", attrs())
    reopened = ResultsStore(tmp_path / "results.nc")
    assert set(reopened.datasets()) == {"first"}
    assert reopened.failures() == {"second": "ValueError: broken"}
    reopened.write("third", example(), attrs())
    assert set(ResultsStore(tmp_path / "results.nc").datasets()) == {"first", "third"}


def test_a_crash_mid_write_keeps_the_previous_file(tmp_path, monkeypatch):
    store = ResultsStore(tmp_path / "results.nc")
    store.write("first", example(), attrs())
    before = (tmp_path / "results.nc").read_bytes()

    def crash(self, path, **kwargs):
        open(path, "wb").write(b"half a file")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(xr.DataTree, "to_netcdf", crash)  # a whole rewrite
    monkeypatch.setattr(xr.Dataset, "to_netcdf", crash)  # a group appended to a copy
    with pytest.raises(OutputError, match="No space left on device.*another --out"):
        store.write("second", example(), attrs())
    with pytest.raises(OutputError, match="No space left on device.*another --out"):
        store.write("first", example(), attrs())
    assert (tmp_path / "results.nc").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["results.nc"]


def test_appended_and_replaced_groups_read_back_as_written(tmp_path):
    """New groups are appended to a copy of the file, replaced ones rewrite it: both read back."""
    store = ResultsStore(tmp_path / "results.nc")
    store.set_root_attrs(seed=1)
    first, second = example(), example().assign(value=lambda d: d["value"] * 2)
    store.write("first", first, attrs())
    store.write("second", second, attrs())
    store.write("first", second, attrs())  # replaced: the whole file is rewritten
    store.record_failure("third", "ValueError: broken", attrs())
    store.set_root_attrs(seed=2)
    tree = xr.open_datatree(tmp_path / "results.nc", engine="h5netcdf")
    assert list(tree.children) == ["first", "second", "third"]
    assert tree.attrs["seed"] == 2
    for name in ("first", "second"):
        stored = tree[name].to_dataset()
        np.testing.assert_allclose(stored["value"], second["value"])
        assert stored["mask"].dtype == bool and stored.attrs["status"] == "ok"
    assert tree["third"].attrs["error"] == "ValueError: broken"


def test_reusable_only_for_identical_inputs(tmp_path):
    """The reuse key is what was analysed and how: not the file's path or hash (a factory model
    has none), but the model's content, the data, the parameters, the seed and the version."""
    store = ResultsStore(tmp_path / "results.nc")
    store.write("demo", example(), attrs())
    assert store.reusable("demo", attrs()) is not None
    assert store.reusable("demo", attrs(sha="another file, same content")) is not None
    for changed in (
        attrs(version="2"),
        attrs(parameters={"k": 4}),
        attrs(seed=8),
        attrs(model="m2"),
        attrs(data="d2"),
    ):
        assert store.reusable("demo", changed) is None
    assert store.reusable("missing", attrs()) is None


def test_cf_conform_links_errors_and_names_every_coordinate():
    conformed = cf_conform(
        xr.Dataset(
            {
                "xi": ((), 1.5, {"units": "lattice spacings"}),
                "xi_error": ((), 0.1, {"units": "lattice spacings"}),
                "count": ("level", [3, 4]),
                "label": ((), "disordered"),
                "flag": ((), True),
            },
            coords={"level": [0, 1], "dy": ("dy", [-1, 0, 1])},
        )
    )
    assert conformed["xi"].attrs == {
        "units": "1",
        "long_name": "xi (in lattice spacings)",
        "ancillary_variables": "xi_error",
    }
    assert conformed["count"].attrs["units"] == "1"
    assert "units" not in conformed["label"].attrs and "units" not in conformed["flag"].attrs
    assert conformed["level"].attrs["long_name"] == "RG level (0 = finest)"
    assert conformed["dy"].attrs["long_name"] == "row offset from the latent's site"


def test_file_sha256_of_files_and_folders(tmp_path):
    (tmp_path / "run" / "savings").mkdir(parents=True)
    (tmp_path / "run" / "savings" / "a.saving").write_bytes(b"weights")
    file_hash, folder_hash = (
        file_sha256(tmp_path / "run" / "savings" / "a.saving"),
        file_sha256(tmp_path / "run"),
    )
    assert file_hash == hashlib.sha256(b"weights").hexdigest()
    assert file_hash != folder_hash
    (tmp_path / "run" / "parameters.hdf5").write_bytes(b"L=8")
    assert file_sha256(tmp_path / "run") != folder_hash
