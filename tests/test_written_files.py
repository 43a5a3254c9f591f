"""Every file rginspect writes for the user gets the mode a plain open() would give under the umask.

Shared results folders, groups and web servers read them; a temporary renamed into place would keep
mkstemp's 0o600. Each writer is driven through its public entry point (the CLI, rginspect.save),
but the traverse GIF, whose analysis is too slow to run three times here, through its writer.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from rginspect_plugins.traverse.compute import write_gif

import rginspect
from rginspect.atomic import atomic_path
from rginspect.cli import main
from rginspect.sweep import SWEEP_FILE, SWEEP_REPORT


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o077, 0o002], ids=oct)
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def invoke(*arguments: str) -> None:
    result = CliRunner().invoke(main, [str(a) for a in arguments])
    assert result.exit_code == 0, result.output


def test_every_written_file_gets_the_mode_open_gives(tmp_path, umask):
    expected = 0o666 & ~umask
    control = tmp_path / "control.txt"
    with open(control, "w"):  # the reference: what the user's own open() does here
        pass
    assert mode(control) == expected

    trained = tmp_path / "trained.safetensors"  # safetensors swaps in a 0o600 file of its own
    invoke("train", "field", "--action", "phi4", "--size", "4", "--kappa", "0.3", "--lamb", "1",
           "--steps", "1", "--nhidden", "4", "--out", trained, "--quiet")  # fmt: skip
    saved = rginspect.save(rginspect.load(trained), tmp_path / "saved.pt")
    sweep = tmp_path / "sweep"  # a sweep of one: its run writes results.nc and report.html too
    invoke("sweep", saved, "--plugins", "summary", "--out", sweep, "--quiet")
    gif = tmp_path / "gifs" / "latent.gif"
    write_gif(gif, np.random.default_rng(0).uniform(size=(3, 3, 8, 8)))

    written = {
        "train": trained,
        "save": saved,
        "results": sweep / "saved" / "results.nc",
        "report": sweep / "saved" / "report.html",
        "sweep": sweep / SWEEP_FILE,
        "sweep report": sweep / SWEEP_REPORT,
        "traverse gif": gif,
    }
    assert {name: oct(mode(path)) for name, path in written.items()} == dict.fromkeys(
        written, oct(expected)
    )
    assert not [p for p in tmp_path.rglob(".*") if p.is_file()]  # no temporaries left behind


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "results.nc"
    target.write_text("before")
    with pytest.raises(OSError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise OSError("disk full")
    assert target.read_text() == "before"
    assert [p.name for p in tmp_path.iterdir()] == ["results.nc"]
