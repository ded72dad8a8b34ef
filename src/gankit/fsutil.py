"""Atomic file writes: a reader (or a crash) never sees half a file."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def _read_umask() -> int:
    """The process's umask. Linux shows it in /proc/self/status, which reads it without changing
    it; elsewhere it can only be read by setting it, which is done once, here at import, before
    any thread of ours could create a file under the wrong mask in between."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The umask at import. A process that changes its umask later keeps this one for gankit's files.
UMASK = _read_umask()
#: Mode of every file gankit writes: what ``open(path, "w")`` would give (``mkstemp``'s temporary
#: files are 0600, and renaming one over ``path`` would make reports, sample grids and checkpoints
#: readable by their owner only).
FILE_MODE = 0o666 & ~UMASK


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary name is hidden (``.name.XXXX.tmp``), so globs such as ``step-*.png`` never see
    a partial file; the parent folder is created if needed. The file ends up with mode
    ``FILE_MODE`` (0o666 less the umask), like any file the user's programs create.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            if hasattr(os, "fchmod"):  # not on Windows, where modes mean little anyway
                os.fchmod(f.fileno(), FILE_MODE)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:func:`atomic_write`)."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` as UTF-8, atomically (:func:`atomic_write`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def fsync_dir(path: str | os.PathLike) -> None:
    """Make a rename inside ``path`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
