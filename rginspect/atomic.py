"""Every file rginspect writes for the user appears whole or not at all, readable as open() would make it.

A writer fills a temporary file beside the target and the temporary replaces the target in one
rename, so a reader (a browser, a resumed run, a web server) never sees half a file. The temporary is
created with mode 0o666 and the kernel applies the user's umask, exactly as for a plain open(); mkstemp
would give 0o600, which the rename keeps, so a shared results folder could not be read by the group.
That mode is set again once the writer is done, because some writers (safetensors) replace the file
they are given by a 0o600 temporary of their own.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import OutputError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write to; on success it replaces `path`.

    The temporary keeps the target's suffix (writers such as PIL choose the format by it) and is
    named `.<stem>-<random><suffix>`, so stale copies of a killed writer are found by that pattern.
    On any exception the temporary is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary, mode = _create_beside(path)
    try:
        yield temporary
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def atomic_output(
    path: str | Path,
    *,
    advice: str = "free space or choose another --out",
    errors: tuple[type[BaseException], ...] = (OSError,),
) -> Iterator[Path]:
    """`atomic_path` for a file the user asked for: a failing write (`errors`) becomes one
    OutputError line that names the file, the reason and `advice`."""
    try:
        with atomic_path(path) as temporary:
            yield temporary
    except errors as error:
        reason = getattr(error, "strerror", None) or error
        raise OutputError(f"cannot write {path} ({reason}); {advice}") from None


def stale_copies(path: str | Path) -> list[Path]:
    """Temporaries that a killed writer of `path` left behind (remove them only as its sole writer)."""
    path = Path(path)
    return sorted(path.parent.glob(f".{path.stem}-*{path.suffix}"))


def _create_beside(path: Path) -> tuple[Path, int]:
    """Create an empty, new file (O_EXCL: never an existing file or a planted link) with mode 0o666
    less the umask; return it with that mode, read back rather than computed (os.umask cannot be
    read without setting it, which would race with other threads)."""
    while True:
        temporary = path.with_name(f".{path.stem}-{secrets.token_hex(6)}{path.suffix}")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            mode = stat.S_IMODE(os.fstat(descriptor).st_mode)
        finally:
            os.close(descriptor)
        return temporary, mode
