"""Modules depend downward only (DESIGN.md): the report reads stored results, never the engine or a
sweep; sweeps, the Dask layer and the engine use the Python API, never the command line."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "rginspect"

# module (relative to the package) -> package modules it must never import
FORBIDDEN = {
    "report": ("engine", "sweep", "compare", "distributed", "cli", "train"),
    "engine": ("cli", "sweep", "distributed"),
    "sweep": ("cli", "distributed"),
    "compare": ("cli", "distributed"),
    "distributed": ("cli",),
    "train": ("cli", "engine", "sweep", "distributed"),
    "formats": ("cli", "engine", "sweep", "distributed", "report"),
}


def imported_modules(source: str, path: Path) -> set[str]:
    """Package modules that `source`, living at `path`, imports, as names relative to `rginspect`."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = parts[: len(parts) - node.level]
            module = [*base, *(node.module.split(".") if node.module else [])]
            names = [".".join(module)] if node.module else []
            names += [".".join([*module, alias.name]) for alias in node.names]
            found.update(names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rginspect."):
            found.add(node.module.removeprefix("rginspect."))
        elif isinstance(node, ast.Import):
            found.update(a.name.removeprefix("rginspect.") for a in node.names)
    return found


def files_of(module: str) -> list[Path]:
    folder = PACKAGE / module
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{module}.py"]


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_modules_depend_downward_only(module):
    for path in files_of(module):
        upward = upward_imports(module, imported_modules(path.read_text(), path))
        assert not upward, f"{path.relative_to(PACKAGE)} imports {upward}"


def upward_imports(module: str, imported: set[str]) -> list[str]:
    banned = FORBIDDEN[module]
    return sorted(n for n in imported for b in banned if n == b or n.startswith(b + "."))


def test_the_checker_sees_upward_imports():
    """The test above can fail: the report once imported the engine, and workers the CLI."""
    report = imported_modules(
        "from ..engine import available_analyses\nfrom .. import sweep\n",
        PACKAGE / "report" / "build.py",
    )
    assert upward_imports("report", report) == ["engine", "engine.available_analyses", "sweep"]
    workers = imported_modules("from .cli import main\n", PACKAGE / "distributed.py")
    assert upward_imports("distributed", workers) == ["cli", "cli.main"]
