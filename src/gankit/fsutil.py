"""Atomic file writes: a reader (or a crash) never sees half a file.

Also what every writer shares when things go wrong: a full disk (``DiskFull``, ``is_disk_full``,
``writing``) and the temporaries a killed writer leaves (``clean_stale_temps``). A temporary's name
carries its writer's process id (``.NAME.<pid>.XXXX.tmp``), so "stale" means "its writer is gone".
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from gankit.errors import GankitError, display_path


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

    The temporary name is hidden and names its writer (``.name.<pid>.XXXX.tmp``), so globs such as
    ``step-*.png`` never see a partial file and ``clean_stale_temps`` can tell a killed writer's
    leftover from a live one's; the parent folder is created if needed. The file ends up with mode
    ``FILE_MODE`` (0o666 less the umask), like any file the user's programs create. A full disk
    raises ``DiskFull`` naming ``path``, the temporary removed.
    """
    path = Path(path)
    with writing(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path.name), suffix=".tmp")
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


# --------------------------------------------------------------------------- a full disk

#: The errors of a full disk and of an exceeded quota (EDQUOT is not defined everywhere).
DISK_FULL_ERRNOS = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if e is not None)
# How libraries that do not raise OSError say it: safetensors raises SafetensorError("Error while
# serializing: I/O error: No space left on device (os error 28)").
_DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded", "(os error 28)", "(os error 122)")


def is_disk_full(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or the exception it was raised ``from``) is a full disk or an exceeded
    quota: an OSError with ENOSPC or EDQUOT, or another library's error that says so
    (safetensors' ``SafetensorError``)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            return True
        if any(text in str(exc) for text in _DISK_FULL_TEXT):
            return True
        exc = exc.__cause__
    return False


class DiskFull(GankitError, OSError):
    """A write failed because the disk (or the user's quota) is full.

    A ``GankitError`` (the CLI prints one line and exits with status 2) and an ``OSError`` with
    errno ENOSPC or EDQUOT (code that treats an unwritable file as a cost, such as a cache, still
    catches it). ``path`` is the file being written; ``message`` replaces the default sentence."""

    def __init__(self, path: str | os.PathLike, cause: BaseException | None = None,
                 message: str | None = None) -> None:
        code = getattr(cause, "errno", None)
        code = code if code in DISK_FULL_ERRNOS else errno.ENOSPC
        super().__init__(code, os.strerror(code), os.fspath(path))
        self.path = Path(path)
        reason = "disk quota exceeded" if code == getattr(errno, "EDQUOT", None) else "disk full"
        self.message = message or (f"{reason} while writing {display_path(path)}: free some space (or write "
                                   "elsewhere) and run it again")

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:  # pickles (torch.multiprocessing) as it was made
        return (type(self), (self.path, OSError(self.errno, self.strerror), self.message))


def disk_full_reason(exc: BaseException) -> str:
    """``disk full``, or ``disk quota exceeded`` when that is what ``exc`` says."""
    quota = getattr(errno, "EDQUOT", None)
    if (isinstance(exc, OSError) and quota is not None and exc.errno == quota) or "quota" in str(exc).lower():
        return "disk quota exceeded"
    return "disk full"


def written_path(exc: BaseException) -> str | None:
    """The file a failed write was writing, where the error says (``DiskFull.path``, an
    OSError's ``filename``)."""
    if isinstance(exc, DiskFull):
        return str(exc.path)
    name = getattr(exc, "filename", None)
    return os.fsdecode(name) if isinstance(name, str | bytes) else None


@contextlib.contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, a full disk (``is_disk_full``) raises ``DiskFull`` naming ``path``."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        if is_disk_full(e):
            raise DiskFull(path, e) from e
        raise


# --------------------------------------------------------------------------- temporaries

#: A temporary gankit writes: ``.NAME.<pid>.XXXX.tmp`` (a file, or a folder of files).
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)\.(?P<rand>[^.]+)\.tmp$", re.DOTALL)
#: What gankit before pid-named temporaries wrote: ``.NAME.XXXXXXXX.tmp`` (mkstemp's 8 characters).
_OLD_TEMP = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp$", re.DOTALL)
#: An old-style temporary (no pid in its name) is stale once this old: no write takes an hour.
OLD_TEMP_AGE = 3600.0


def temp_prefix(name: str) -> str:
    """The start of the name of a temporary for ``name`` written by this process: ``.NAME.<pid>.``."""
    return f".{name}.{os.getpid()}."


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this machine (``os.kill(pid, 0)``); where that cannot be
    asked (Windows, where os.kill would end the process), every process counts as alive."""
    if pid == os.getpid() or os.name == "nt":
        return True
    if pid <= 0:  # not a process (and os.kill(0, ...) would ask the process group)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: another user's process, alive
        return True
    return True


def clean_stale_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Remove the temporaries in ``folder`` that a killed writer left (of the file ``name`` only,
    if given): those whose writer's process is gone, and old-style ones (no pid) over an hour old.
    A live writer's temporary is left alone. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TEMP.match(entry.name)
        if m is not None:
            if (name is not None and m["name"] != name) or pid_alive(int(m["pid"])):
                continue
        else:
            old = _OLD_TEMP.match(entry.name)
            if old is None or (name is not None and old["name"] != name):
                continue
            try:
                if now - entry.stat(follow_symlinks=False).st_mtime < OLD_TEMP_AGE:
                    continue
            except OSError:
                continue
        path = Path(entry.path)
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
        removed.append(path)
    return removed

