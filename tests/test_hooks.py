"""Every hook is documented, in its docstring and in the README (as datasette checks its hooks)."""

import inspect
from pathlib import Path

import pytest

from rginspect import hooks

HOOKS = [
    name
    for name, f in inspect.getmembers(hooks, inspect.isfunction)
    if name.startswith("rginspect_")
]


def test_there_are_hooks():
    assert set(HOOKS) == {"rginspect_checkpoint_formats", "rginspect_analyses"}


@pytest.mark.parametrize("name", HOOKS)
def test_hook_is_documented(name):
    assert len(inspect.getdoc(getattr(hooks, name))) > 100
    assert name in (Path(__file__).parents[1] / "README.md").read_text()
