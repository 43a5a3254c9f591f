"""Results of a run: one netCDF file, one group per analysis, provenance on every group.

The file is replaced atomically after each analysis, so a crash or a failing plugin never loses
what already finished, and the file is always readable with plain `xarray.open_datatree`. A new
group is appended to a copy of the file (rewriting every group each time made a run's writes grow
quadratically: 10 s of the demo); replacing a group or the root attributes rewrites the whole file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .atomic import atomic_output, stale_copies

BOOL_MARKER = "rginspect_dtype"  # how earlier files marked booleans (int8 with this attribute)


def provenance_attrs(
    *,
    analysis: str,
    analysis_version: str,
    parameters: dict[str, Any],
    seed: int,
    checkpoint_path: str,
    checkpoint_sha256: str,
) -> dict[str, str | int]:
    """The attributes every analysis group carries, so a result says how it was made."""
    import torch

    from . import __version__

    return {
        "rginspect_version": __version__,
        "analysis": analysis,
        "analysis_version": str(analysis_version),
        "parameters": json.dumps(parameters, sort_keys=True),
        "seed": int(seed),
        "checkpoint_path": checkpoint_path,
        "checkpoint_sha256": checkpoint_sha256,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
        "xarray_version": xr.__version__,
    }


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's relative paths and contents (run folders are checkpoints)."""
    digest = hashlib.sha256()
    files = (
        sorted(p for p in Path(path).rglob("*") if p.is_file())
        if Path(path).is_dir()
        else [Path(path)]
    )
    for file in files:
        if Path(path).is_dir():
            digest.update(str(file.relative_to(path)).encode())
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def read_results(path: Path) -> xr.DataTree:
    """A results file, loaded into memory and closed, with booleans restored: for readers, who
    need not build a ResultsStore (which reads the file once more to hold it for writing)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        loaded = tree.load().copy()
    for node in loaded.subtree:
        if node is not loaded:
            node.dataset = _decode_bools(node.to_dataset())
    return loaded


class ResultsStore:
    """`results.nc` of one run. Groups are held in memory (booleans as booleans) and the file is
    replaced on every write."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._root_attrs: dict[str, Any] = {}
        self._groups: dict[str, xr.Dataset] = {}
        self._in_file: set[str] = set()  # groups the file holds
        self._unwritten: set[str] = set()  # groups set since the last write
        self._root_in_file = False
        if self.path.is_file():
            tree = read_results(self.path)
            self._root_attrs = dict(tree.attrs)
            self._groups = {name: node.to_dataset() for name, node in tree.children.items()}
            self._in_file, self._root_in_file = set(self._groups), True

    def discard_stale_copies(self) -> None:
        """Remove temporary copies a killed writer left beside the file (call as its only writer)."""
        for stale in stale_copies(self.path):
            stale.unlink(missing_ok=True)

    def set_root_attrs(self, **attrs: Any) -> None:
        self._set_root({key: _storable(value) for key, value in attrs.items()})
        self._flush()

    def write(self, name: str, dataset: xr.Dataset, attrs: dict[str, Any]) -> None:
        """Store (or replace) an analysis' dataset with status ok."""
        self.write_all({name: dataset}, attrs)

    def write_all(
        self, datasets: dict[str, xr.Dataset], attrs: dict[str, Any], root: dict | None = None
    ) -> None:
        """Store several datasets with status ok (and root attributes) in one atomic replacement."""
        self._set_root({key: _storable(v) for key, v in (root or {}).items()})
        for name, dataset in datasets.items():
            stored = dataset.copy()
            stored.attrs = {key: _storable(v) for key, v in {**dataset.attrs, **attrs}.items()}
            stored.attrs["status"] = "ok"
            self._set_group(name, stored)
        self._flush()

    def record_failure(self, name: str, message: str, attrs: dict[str, Any]) -> None:
        """An empty group that says the analysis failed (or was skipped) and why."""
        status = attrs.get("status", "failed")
        attrs = {key: _storable(v) for key, v in attrs.items()} | {
            "status": status,
            "error": message,
        }
        self._set_group(name, xr.Dataset(attrs=attrs))
        self._flush()

    def read(self) -> xr.DataTree:
        """The whole file, loaded into memory and closed, with booleans restored."""
        return read_results(self.path)

    def dataset(self, name: str) -> xr.Dataset:
        """The group `name` as stored (its attrs carry status and provenance)."""
        return self._groups[name]

    def datasets(self) -> dict[str, xr.Dataset]:
        return {
            name: dataset
            for name, dataset in self._groups.items()
            if dataset.attrs.get("status") == "ok"
        }

    def failures(self) -> dict[str, str]:
        return {
            name: dataset.attrs.get("error", "")
            for name, dataset in self._groups.items()
            if dataset.attrs.get("status") != "ok"
        }

    def reusable(
        self, name: str, analysis_version: str, parameters: dict[str, Any], checkpoint_sha256: str
    ) -> xr.Dataset | None:
        """The stored dataset if it was made by the same analysis version, parameters and checkpoint."""
        dataset = self._groups.get(name)
        if dataset is None or dataset.attrs.get("status") != "ok":
            return None
        same = (
            dataset.attrs.get("analysis_version") == str(analysis_version)
            and dataset.attrs.get("parameters") == json.dumps(parameters, sort_keys=True)
            and dataset.attrs.get("checkpoint_sha256") == checkpoint_sha256
        )
        return dataset if same else None

    def _set_root(self, attrs: dict[str, Any]) -> None:
        if any(self._root_attrs.get(key) != value for key, value in attrs.items()):
            self._root_attrs.update(attrs)
            self._root_in_file = False

    def _set_group(self, name: str, dataset: xr.Dataset) -> None:
        self._groups[name] = dataset
        self._unwritten.add(name)

    def _flush(self) -> None:
        appendable = self._root_in_file and not self._unwritten & self._in_file
        advice = (
            "free space or choose another --out (what was saved before stays in the previous copy)"
        )
        with atomic_output(self.path, advice=advice) as temporary:
            if appendable:
                shutil.copyfile(self.path, temporary)
                # booleans through xarray's own encoding, as in a full write
                for name in [name for name in self._groups if name in self._unwritten]:
                    self._groups[name].to_netcdf(temporary, mode="a", group=name, engine="h5netcdf")
            else:
                root = xr.Dataset(attrs=self._root_attrs)
                tree = xr.DataTree.from_dict({"/": root, **self._groups})
                tree.to_netcdf(temporary, engine="h5netcdf")
        self._in_file, self._unwritten, self._root_in_file = set(self._groups), set(), True


def write_tree(path: Path, root: dict[str, Any], groups: dict[str, xr.Dataset]) -> Path:
    """A file of nested groups ("a/b" paths) written whole and atomically, each group with the
    attributes it has (derived files such as compare.nc, rebuilt from the runs every time)."""
    path = Path(path)
    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset(attrs={k: _storable(v) for k, v in root.items()}), **groups}
    )
    with atomic_output(path) as temporary:
        tree.to_netcdf(temporary, engine="h5netcdf")
    return path


def _storable(value: Any) -> Any:
    """netCDF attributes hold numbers and strings; anything else is stored as JSON text."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float, np.integer, np.floating)):
        return json.dumps(value, default=str)
    return value


def _decode_bools(dataset: xr.Dataset) -> xr.Dataset:
    return _convert(dataset, lambda a: a.attrs.get(BOOL_MARKER) == "bool", bool, {})


def _convert(dataset: xr.Dataset, selected, dtype, marker: dict[str, str]) -> xr.Dataset:
    """Cast the selected variables and coordinates, setting (or, with no marker, dropping) the marker."""

    def cast(array: xr.DataArray) -> xr.DataArray:
        attrs = {k: v for k, v in array.attrs.items() if k != BOOL_MARKER} | marker
        return array.astype(dtype).assign_attrs(attrs)

    data = {name: cast(array) for name, array in dataset.data_vars.items() if selected(array)}
    coords = {name: cast(array) for name, array in dataset.coords.items() if selected(array)}
    return dataset.assign(data).assign_coords(coords)
