"""The code a reader copies from the docs runs: every Python block of a page, in order, in one
namespace and an empty working folder (with an RG-Flow run folder where the loading guide expects
one). A block that only illustrates is marked `<!-- illustration -->` on the line before it."""

import os
import re
from pathlib import Path

import pytest
from conftest import RGFLOW_RUN

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BLOCK = re.compile(r"(<!-- illustration -->\n)?```python\n(.*?)```", re.DOTALL)


def python_blocks(page: Path) -> list[str]:
    return [code for marker, code in BLOCK.findall(page.read_text()) if not marker]


@pytest.mark.parametrize(
    "page",
    [page for page in PAGES if python_blocks(page)],
    ids=lambda page: str(page.relative_to(ROOT)),
)
def test_the_python_blocks_of_a_page_run(page, tmp_path, monkeypatch):
    run_folder = tmp_path / "saved_model" / "msds1" / RGFLOW_RUN.name
    run_folder.parent.mkdir(parents=True)
    run_folder.symlink_to(RGFLOW_RUN.resolve())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
    namespace: dict = {}
    for code in python_blocks(page):
        exec(compile(code, str(page), "exec"), namespace)
