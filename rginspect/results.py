"""Results of a run: an xarray DataTree with one group per analysis, provenance on every group,
the model card in a `model` group; in memory (`rginspect.analyze`) or in one netCDF file.

The file is replaced atomically after each analysis, so a crash or a failing plugin never loses
what already finished, and the file is always readable with plain `xarray.open_datatree`. A new
group is appended to a copy of the file (rewriting every group each time made a run's writes grow
quadratically: 10 s of the demo); replacing a group or the root attributes rewrites the whole file.

Files follow the CF conventions (`Conventions = "CF-1.11"`): UDUNITS units ("1" for the many
dimensionless numbers, the lattice or pixel unit named in `long_name`), a `long_name` on every
coordinate, and each `<name>_error` (`_err`) linked to `<name>` by `ancillary_variables`
(`cf_conform`).
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from .atomic import atomic_output, stale_copies

BOOL_MARKER = "rginspect_dtype"  # how earlier files marked booleans (int8 with this attribute)
MODEL_GROUP = "model"  # the model card, as nested groups of attributes (not an analysis)
CONVENTIONS = "CF-1.11"
# units that UDUNITS does not know: stored as the dimensionless "1", the name kept in long_name
NAMED_DIMENSIONLESS_UNITS = frozenset(
    {"pixels", "lattice spacings", "nats", "nats/site", "nats/dim", "bits", "bits/dim", "ln nats",
     "site", "sites", "prior standard deviations", "lattice units"}
)  # fmt: skip
COORDINATE_NAMES = {  # long_name of the coordinates the built-in analyses use
    "level": "RG level (0 = finest)",
    "latent_level": "RG level of the latent (0 = finest)",
    "row": "row on the lattice or image",
    "col": "column on the lattice or image",
    "y": "row on the lattice or image",
    "x": "column on the lattice or image",
    "dy": "row offset from the latent's site",
    "dx": "column offset from the latent's site",
    "channel": "channel or field component",
    "distance": "separation",
    "ensemble": "ensemble of field configurations",
    "sampler": "how the ensemble was sampled",
    "form": "fitted decay form",
    "factor": "ground-truth factor",
    "hole": "inpainted hole",
    "method": "inpainting method",
    "latent_set": "set of latents",
    "sample": "sample index",
    "step": "step index",
    "checkpoint": "checkpoint of the sweep",
    "model": "model of the comparison",
}


# what a stored result must share with a new run to be reused by --resume
REUSE_KEYS = ("analysis_version", "parameters", "seed", "model_sha256", "data_sha256")


def provenance_attrs(
    *,
    analysis: str,
    analysis_version: str,
    parameters: dict[str, Any],
    seed: int,
    checkpoint_path: str,
    checkpoint_sha256: str,
    model_sha256: str = "",
    data_sha256: str = "",
    device: str = "cpu",
) -> dict[str, str | int]:
    """The attributes every analysis group carries, so a result says how it was made: what was
    analysed (the checkpoint file and the model's content, the data) with which settings."""
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
        "model_sha256": model_sha256,
        "data_sha256": data_sha256,
        "device": str(device),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "torch_version": str(torch.__version__),
        "xarray_version": xr.__version__,
    }


def root_attrs(*, title: str, history: str, **attrs: Any) -> dict[str, Any]:
    """The root group's attributes: CF's Conventions, title and history, then the run's own."""
    from . import __version__

    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return {
        "Conventions": CONVENTIONS,
        "title": title,
        "history": f"{stamp}: {history}",
        "source": f"rginspect {__version__}",
        **attrs,
    }


def card_groups(card: dict[str, Any], path: str = MODEL_GROUP) -> dict[str, xr.Dataset]:
    """A model card (model.info()) as nested groups of typed attributes: dicts become groups,
    numbers and strings attributes, lists of numbers or strings arrays; None is left out."""
    attrs: dict[str, Any] = {}
    groups: dict[str, xr.Dataset] = {}
    for key, value in card.items():
        if isinstance(value, dict):
            groups |= card_groups(value, f"{path}/{key}")
        elif value is not None:
            attrs[key] = _card_value(value)
    return {path: xr.Dataset(attrs=attrs)} | groups


def _card_value(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (str, int, float, np.integer, np.floating)):
        return value
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return np.asarray(value)
        if all(isinstance(v, str) for v in value):
            return list(value)
    return json.dumps(value, default=str)  # empty or mixed lists: rare, kept as text


def model_card(tree: xr.DataTree) -> dict[str, Any]:
    """The model card a results tree holds (nested dicts), {} when it has none (files written
    before the card had its group kept it as JSON text in `model_card`)."""
    if MODEL_GROUP not in tree.children:
        return json.loads(tree.attrs.get("model_card", "{}"))

    def read(node: xr.DataTree) -> dict[str, Any]:
        card = {
            key: value.tolist() if isinstance(value, np.ndarray) else _plain(value)
            for key, value in node.attrs.items()
        }
        return card | {name: read(child) for name, child in node.children.items()}

    return read(tree[MODEL_GROUP])


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def display_unit(attrs: dict[str, Any]) -> str:
    """The unit to show beside a stored variable: its UDUNITS unit, or for a dimensionless one
    the unit cf_conform named in its long_name ("pixels", "nats"), else nothing."""
    unit = attrs.get("units")
    if unit and unit != "1":
        return str(unit)
    named = re.search(r"\(in ([^()]+)\)$", str(attrs.get("long_name", "")))
    return named.group(1) if named else ""


def analysis_nodes(tree: xr.DataTree) -> dict[str, xr.DataTree]:
    """The analysis groups of a results tree, in the order they were written."""
    return {name: node for name, node in tree.children.items() if name != MODEL_GROUP}


def cf_conform(dataset: xr.Dataset) -> xr.Dataset:
    """The dataset as CF readers expect it: units UDUNITS knows ("1" for dimensionless numbers,
    a named unit such as pixels or nats moved into long_name), a long_name on every coordinate,
    and every `<name>_error` (or `<name>_err`) listed in `<name>`'s ancillary_variables."""
    dataset = dataset.copy()
    for name, variable in dataset.variables.items():
        attrs = dict(variable.attrs)
        unit = attrs.get("units")
        if isinstance(unit, str) and unit in NAMED_DIMENSIONLESS_UNITS:
            described = attrs.get("long_name", str(name).replace("_", " "))
            attrs["long_name"] = f"{described} (in {unit})"
            attrs["units"] = "1"
        elif unit is None and variable.dtype.kind in "iuf" and variable.dtype != bool:
            attrs["units"] = "1"
        if name in dataset.coords and "long_name" not in attrs:
            attrs["long_name"] = COORDINATE_NAMES.get(str(name), str(name).replace("_", " "))
        variable.attrs = attrs
    for name in list(dataset.data_vars):
        base = str(name).removesuffix("_error").removesuffix("_err")
        if base != name and base in dataset.data_vars:
            linked = dataset[base].attrs.get("ancillary_variables", "").split()
            if name not in linked:
                dataset[base].attrs["ancillary_variables"] = " ".join([*linked, str(name)])
    return dataset


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
    """The results of one run: groups held in memory (booleans as booleans), and, with a `path`,
    the file replaced on every write; without one (`rginspect.analyze`) nothing is written."""

    def __init__(self, path: Path | None) -> None:
        self.path = None if path is None else Path(path)
        self._root_attrs: dict[str, Any] = {}
        self._card: dict[str, xr.Dataset] = {}
        self._groups: dict[str, xr.Dataset] = {}
        self._in_file: set[str] = set()  # groups the file holds
        self._unwritten: set[str] = set()  # groups set since the last write
        self._root_in_file = False
        if self.path is not None and self.path.is_file():
            tree = read_results(self.path)
            self._root_attrs = dict(tree.attrs)
            self._card = {
                node.path.lstrip("/"): node.to_dataset()
                for node in (tree[MODEL_GROUP].subtree if MODEL_GROUP in tree.children else ())
            }
            self._groups = {name: node.to_dataset() for name, node in analysis_nodes(tree).items()}
            self._in_file, self._root_in_file = set(self._groups), True

    def discard_stale_copies(self) -> None:
        """Remove temporary copies a killed writer left beside the file (call as its only writer)."""
        if self.path is not None:
            for stale in stale_copies(self.path):
                stale.unlink(missing_ok=True)

    def set_root_attrs(self, *, model_card: dict[str, Any] | None = None, **attrs: Any) -> None:
        """The root attributes (provenance of the run) and, when given, the model card."""
        self._set_root({key: _storable(value) for key, value in attrs.items()})
        if model_card is not None:
            card = card_groups(model_card)
            if set(card) != set(self._card) or any(
                not card[k].identical(self._card[k]) for k in card
            ):
                self._card, self._root_in_file = card, False
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
            stored = cf_conform(dataset)
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

    def tree(self) -> xr.DataTree:
        """Everything stored, as the DataTree the file holds (root, model card, analyses)."""
        root = xr.Dataset(attrs=self._root_attrs)
        return xr.DataTree.from_dict({"/": root, **self._card, **self._groups})

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

    def reusable(self, name: str, attrs: dict[str, Any]) -> xr.Dataset | None:
        """The stored dataset if it was made from the same inputs as a run with these provenance
        `attrs` would be: analysis version, parameters, seed, the model's content and the data."""
        dataset = self._groups.get(name)
        if dataset is None or dataset.attrs.get("status") != "ok":
            return None
        same = all(str(dataset.attrs.get(key)) == str(attrs.get(key)) for key in REUSE_KEYS)
        return dataset if same else None

    def _set_root(self, attrs: dict[str, Any]) -> None:
        if any(self._root_attrs.get(key) != value for key, value in attrs.items()):
            self._root_attrs.update(attrs)
            self._root_in_file = False

    def _set_group(self, name: str, dataset: xr.Dataset) -> None:
        self._groups[name] = dataset
        self._unwritten.add(name)

    def _flush(self) -> None:
        if self.path is None:
            return
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
                self.tree().to_netcdf(temporary, engine="h5netcdf")
        self._in_file, self._unwritten, self._root_in_file = set(self._groups), set(), True


def write_tree(path: Path, root: dict[str, Any], groups: dict[str, xr.Dataset]) -> Path:
    """A file of nested groups ("a/b" paths) written whole and atomically, each group with the
    attributes it has (derived files such as compare.nc, rebuilt from the runs every time)."""
    path = Path(path)
    conformed = {name: cf_conform(group) for name, group in groups.items()}
    tree = xr.DataTree.from_dict(
        {"/": xr.Dataset(attrs={k: _storable(v) for k, v in root.items()}), **conformed}
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


def write_results(tree: xr.DataTree, path: Path) -> Path:
    """A results tree (`rginspect.analyze`'s, or one read back) as one netCDF file, atomically."""
    path = Path(path)
    with atomic_output(path) as temporary:
        tree.to_netcdf(temporary, engine="h5netcdf")
    return path
