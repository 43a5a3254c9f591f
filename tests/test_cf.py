"""Results files that other tools read without help: every built-in analysis' output, on the bundled
image and field models, written and read back, against the CF conventions as cf-xarray reads them
(UDUNITS units through its pint registry, ancillary variables, coordinate names)."""

import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import rginspect
from rginspect import plugin_manager
from rginspect.results import MODEL_GROUP, analysis_nodes, read_results

cf_xarray = pytest.importorskip("cf_xarray")
units = pytest.importorskip("cf_xarray.units").units

# small enough for the test suite; each is set only where the analysis declares it
SMALL = {
    "inputs": 64,
    "samples": 256,
    "resamples": 40,
    "steps": 3,
    "budget": 5,
    "per_level": 1,
    "images": "0,1",
    "budget_draws": 1,
}
SMALL_BY_ANALYSIS = {
    "receptive": {"samples": 2},
    "inpaint": {"inputs": 1, "steps": 3},
    # its fits need 5 resamples per distance, its HMC reference 4 steps of 64 chains
    "correlation": {"samples": 512, "inputs": 512, "resamples": 60},
}


def small_parameters() -> dict[str, dict]:
    params = {}
    for name, analysis in plugin_manager.available_analyses().items():
        chosen = {key: value for key, value in SMALL.items() if key in analysis.parameters}
        params[name] = chosen | SMALL_BY_ANALYSIS.get(name, {})
    return params


@pytest.fixture(scope="module", params=["msds1_rgflow.pt", "phi4_L16.pt"])
def stored(request, tmp_path_factory) -> xr.DataTree:
    """Every analysis that applies to the bundled model, written by rginspect.write, read back."""
    model = rginspect.load(f"rginspect/assets/{request.param}")
    data = "msds1:64" if model.domain == "image" else None
    params = {
        name: values
        for name, values in small_parameters().items()
        if plugin_manager.available_analyses()[name].applies_to(model) is None
    }
    tree = rginspect.analyze(model, "all", data=data, params=params, progress=False)
    results, _ = rginspect.write(tree, tmp_path_factory.mktemp("cf"))
    return read_results(results)


def test_the_root_says_which_conventions_what_and_how(stored):
    assert stored.attrs["Conventions"] == "CF-1.11"
    assert stored.attrs["title"].startswith("rginspect results")
    assert "rginspect.analyze(" in stored.attrs["history"]
    assert stored.attrs["source"].startswith("rginspect ")
    assert "model_card" not in stored.attrs  # the card lives once, as the `model` group
    assert stored[MODEL_GROUP].attrs["format"] == "native"


def test_every_analysis_ran(stored):
    failed = {
        name: node.attrs.get("error")
        for name, node in analysis_nodes(stored).items()
        if node.attrs["status"] != "ok"
    }
    assert not failed


def test_units_are_udunits_and_numbers_have_them(stored):
    for name, node in analysis_nodes(stored).items():
        for variable_name, variable in node.to_dataset().variables.items():
            unit = variable.attrs.get("units")
            where = f"{name}/{variable_name}"
            if variable.dtype.kind in "iuf":
                assert unit is not None, f"{where} is a number without units"
            if unit is not None:
                units(unit)  # raises for a unit UDUNITS (and cf-xarray's pint) does not know


def test_every_coordinate_has_a_long_name_and_errors_are_linked(stored):
    for name, node in analysis_nodes(stored).items():
        dataset = node.to_dataset()
        for coordinate in dataset.coords.values():
            assert coordinate.attrs.get("long_name"), f"{name}/{coordinate.name} has no long_name"
        for variable in dataset.data_vars:
            base = str(variable).removesuffix("_error").removesuffix("_err")
            if base == variable or base not in dataset.data_vars:
                continue
            linked = dataset.cf.get_associated_variable_names(base)["ancillary_variables"]
            assert variable in linked, f"{name}/{variable} is not {base}'s ancillary variable"


def test_values_survive_the_file(stored, tmp_path):
    """The file is plain netCDF-4: xarray alone reads it, values intact."""
    path = tmp_path / "again.nc"
    stored.to_netcdf(path, engine="h5netcdf")
    with xr.open_datatree(path, engine="h5netcdf") as again:
        for name, node in analysis_nodes(stored).items():
            for variable_name, variable in node.to_dataset().data_vars.items():
                if variable.dtype.kind == "f":
                    np.testing.assert_array_equal(
                        again[name][variable_name].values, variable.values
                    )


DOCS = Path(__file__).parents[1] / "docs" / "analyses"


def documented_variables(name: str) -> set[str]:
    """The variable names in the first column of an analysis page's "Output variables" table."""
    page = (DOCS / f"{name}.md").read_text()
    table = page.split("## Output variables")[1].split("\n## ")[0]
    names = set()
    for row in table.splitlines():
        if row.startswith("| `"):
            names |= set(re.findall(r"`(\w+)`", row.split("|")[1]))
    return names


def test_each_analysis_page_lists_exactly_the_variables_it_stores(stored):
    """The analysis pages are the contract a user cites: their tables of output variables name
    what the analysis really stores, no more, no less."""
    for name, node in analysis_nodes(stored).items():
        assert documented_variables(name) == set(node.to_dataset().data_vars), name
