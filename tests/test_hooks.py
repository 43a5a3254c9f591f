"""The plugin contract is documented and enforced, as datasette checks its hooks: every hook, every
Analysis member and every public RunContext member has a docstring (or a declared meaning) and a
heading of its own in the plugin guide."""

import dataclasses
import inspect
import re
from pathlib import Path

import pytest

from rginspect import hooks
from rginspect.analysis import Analysis, RunContext

GUIDE = Path(__file__).parents[1] / "docs" / "guides" / "plugins.md"
HOOKS = [
    name
    for name, f in inspect.getmembers(hooks, inspect.isfunction)
    if name.startswith("rginspect_")
]
ANALYSIS_MEMBERS = [name for name in vars(Analysis) if not name.startswith("_")]


def context_members() -> list[str]:
    fields = [f.name for f in dataclasses.fields(RunContext)]
    methods = [
        name
        for name, value in vars(RunContext).items()
        if not name.startswith("_") and (callable(value) or isinstance(value, property))
    ]
    return [name for name in dict.fromkeys([*fields, *methods]) if not name.startswith("_")]


def headings(section: str) -> set[str]:
    """The level-3 headings under one level-2 heading of the guide."""
    text = GUIDE.read_text().split(f"\n## {section}\n")[1].split("\n## ")[0]
    return set(re.findall(r"^### (\w+)$", text, flags=re.MULTILINE))


def test_there_are_hooks():
    assert set(HOOKS) == {"rginspect_checkpoint_formats", "rginspect_analyses"}


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_has_a_docstring_with_an_example_and_a_typed_return(name):
    function = getattr(hooks, name)
    assert "Example::" in inspect.getdoc(function)
    assert inspect.signature(function).return_annotation.startswith("list[")


def test_every_hook_has_its_heading():
    assert headings("Hooks") == set(HOOKS)


def test_every_analysis_member_has_its_heading():
    assert headings("Analysis members") == set(ANALYSIS_MEMBERS)


def test_every_public_run_context_member_has_its_heading():
    assert headings("RunContext members") == set(context_members())


def test_every_method_says_why_in_a_docstring():
    for cls, names in ((Analysis, ANALYSIS_MEMBERS), (RunContext, context_members())):
        for name in names:
            value = getattr(cls, name, None)
            if callable(value) or isinstance(value, property):
                assert inspect.getdoc(value), f"{cls.__name__}.{name} has no docstring"
