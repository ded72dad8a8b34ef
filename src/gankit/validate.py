"""Checking the files gankit reads back from a run folder before anything uses them (stdlib only).

Everything a run writes (state.json, the .safetensors files, metrics.jsonl, config.yaml) may be
damaged by the time it is read again: a disk error, a copy cut short, a hand edit, a tool that put
a pipe or a link where a file was. Two helpers make every such file one clear error instead of a
traceback, a hang or a silent acceptance:

- ``read_regular(path)``: the bytes of a *regular* file. Anything else (a FIFO, which would block
  ``open`` forever; a device; a folder; a symbolic link loop) is refused before it is read.
- ``Fields(obj, path)``: the keys of a JSON object, taken with their type and range checked
  (``fields.integer("step")``), so a missing key, a list where an object belongs, a string where
  a number belongs, ``-1`` or ``10**30`` for a count each name the file and the key.

Both raise ``Damaged`` (a ``GankitError``: the CLI prints it as one line, exit status 2), which
carries the file and what is wrong, so a caller can add what to do (``with_fix``) or, like
``--resume``, fall back to an older checkpoint.
"""

from __future__ import annotations

import errno
import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gankit.errors import GankitError, display_path, short_repr

#: the largest count (step, batches drawn, ...) a run file may hold: far beyond any run, far below
#: where an int64 tensor or a float would lose it
MAX_COUNT = 10**15

_MISSING: Any = object()


class Damaged(GankitError):
    """The file ``path`` cannot be used: ``reason`` says why; ``fix`` (optional) what to do."""

    def __init__(self, path: str | os.PathLike[str], reason: str, fix: str = "") -> None:
        self.path = Path(path)
        self.reason = reason
        self.fix = fix
        super().__init__(f"{display_path(self.path)} is damaged: {reason}" + (f"; {fix}" if fix else ""))

    def __reduce__(self) -> tuple[Any, ...]:  # pickled (torchrun) and copied whole
        return (Damaged, (self.path, self.reason, self.fix))

    def with_fix(self, fix: str) -> Damaged:
        """The same finding, saying ``fix`` as what to do."""
        return Damaged(self.path, self.reason, fix)


# --------------------------------------------------------------------------- reading a file


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def os_reason(e: OSError) -> str:
    """What an OSError on opening or reading a file means, in words."""
    if e.errno == errno.ELOOP:
        return "it is a symbolic link loop"
    if e.errno == errno.ENOENT:
        return "it is missing (or a symbolic link to nothing)"
    if e.errno in (errno.EACCES, errno.EPERM):
        return "it cannot be read (permission denied)"
    return f"it cannot be read ({e.strerror or e})"


def read_regular(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``: ``Damaged`` if it is anything else (FIFO, device,
    folder, symbolic link loop) or cannot be read, ``FileNotFoundError`` if there is nothing there
    at all (the caller decides whether that is an error). Never blocks: the type is checked before
    the file is opened, and it is opened non-blocking and checked again (it may have been swapped)."""
    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        if os.path.lexists(p):  # a symbolic link to nothing
            raise Damaged(p, "it is a symbolic link to a file that does not exist") from None
        raise
    except OSError as e:
        raise Damaged(p, os_reason(e)) from None
    if not stat.S_ISREG(st.st_mode):
        raise Damaged(p, f"it is {_kind(st.st_mode)}, not a regular file")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(p, flags)
    except OSError as e:
        raise Damaged(p, os_reason(e)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Damaged(p, f"it is {_kind(st.st_mode)}, not a regular file")
        if limit is not None and st.st_size > limit:
            raise Damaged(p, f"it is {st.st_size} bytes, more than the {limit} such a file can hold")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 24)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as e:
        raise Damaged(p, os_reason(e)) from None
    finally:
        os.close(fd)


# --------------------------------------------------------------------------- JSON objects


def kind_of(value: Any) -> str:
    """A JSON value's kind, as a message names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a boolean)"
    if isinstance(value, int | float):
        return short_repr(value)
    if isinstance(value, str):
        return f"the string {short_repr(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _count(n: int) -> str:
    return "10^15" if n == MAX_COUNT else str(n)


class Fields:
    """The keys of the JSON object ``obj`` read from ``path``, each taken with its type and range
    checked; ``where`` is the object's place in the file (``optim.opt_G``), for the messages.

    Every getter takes ``default``: without it the key is required; with it an absent key or a
    ``null`` gives ``default``."""

    def __init__(self, obj: Any, path: str | os.PathLike[str], where: str = "") -> None:
        self.path = Path(path)
        self.where = where
        if not isinstance(obj, dict):
            raise Damaged(self.path, f"{self._name(where) if where else 'it'} must be a JSON object, "
                                     f"got {kind_of(obj)}")
        self.obj = obj

    @staticmethod
    def _name(key: str) -> str:
        return f"'{key}'"

    def key_name(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def bad(self, key: str, problem: str) -> Damaged:
        """The error for ``key``: ``'step' must be ..., got ...``."""
        return Damaged(self.path, f"{self._name(self.key_name(key))} {problem}")

    def _take(self, key: str, default: Any, what: str) -> tuple[bool, Any]:
        """(present, value); absent or null with a default: (False, default)."""
        value = self.obj.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is not _MISSING:
                return False, default
            raise self.bad(key, f"is missing (it must be {what})" if value is _MISSING
                           else f"must be {what}, got null")
        return True, value

    def has(self, key: str) -> bool:
        return self.obj.get(key) is not None

    def integer(self, key: str, lo: int = 0, hi: int = MAX_COUNT, default: Any = _MISSING) -> int:
        what = f"a whole number from {_count(lo)} to {_count(hi)}"
        present, v = self._take(key, default, what)
        if not present:
            return v  # type: ignore[no-any-return]
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.bad(key, f"must be {what}, got {kind_of(v)}")
        return v

    def number(self, key: str, lo: float = -math.inf, hi: float = math.inf, default: Any = _MISSING) -> float:
        what = ("a finite number" + (f" of at least {lo:g}" if lo > -math.inf else "")
                + (f" of at most {hi:g}" if hi < math.inf else ""))
        present, v = self._take(key, default, what)
        if not present:
            return v  # type: ignore[no-any-return]
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise self.bad(key, f"must be {what}, got {kind_of(v)}")
        try:
            f = float(v)
        except OverflowError:
            raise self.bad(key, f"must be {what}, got {kind_of(v)}") from None
        if not (math.isfinite(f) and lo <= f <= hi):
            raise self.bad(key, f"must be {what}, got {kind_of(v)}")
        return f

    def string(self, key: str, choices: Sequence[str] | None = None, default: Any = _MISSING) -> str:
        what = "one of " + ", ".join(choices) if choices else "a string"
        present, v = self._take(key, default, what)
        if not present:
            return v  # type: ignore[no-any-return]
        if not isinstance(v, str) or (choices and v not in choices) or (not choices and not v):
            raise self.bad(key, f"must be {what}, got {kind_of(v)}")
        return v

    def boolean(self, key: str, default: Any = _MISSING) -> bool:
        present, v = self._take(key, default, "true or false")
        if present and not isinstance(v, bool):
            raise self.bad(key, f"must be true or false, got {kind_of(v)}")
        return v  # type: ignore[no-any-return]

    def object(self, key: str, default: Any = _MISSING) -> Fields | None:
        """The object under ``key``, as Fields (None if optional and absent)."""
        present, v = self._take(key, default, "a JSON object")
        if not present:
            return v  # type: ignore[no-any-return]
        return Fields(v, self.path, self.key_name(key))

    def array(self, key: str, min_len: int = 0, max_len: int = 1 << 20, default: Any = _MISSING) -> list[Any]:
        size = f"{min_len}" if min_len == max_len else f"{min_len} to {max_len}"
        what = f"a list of {size} items"
        present, v = self._take(key, default, what)
        if not present:
            return v  # type: ignore[no-any-return]
        if not isinstance(v, list) or not min_len <= len(v) <= max_len:
            got = f"a list of {len(v)}" if isinstance(v, list) else kind_of(v)
            raise self.bad(key, f"must be {what}, got {got}")
        return v

    def integers(self, key: str, lo: int = 0, hi: int = MAX_COUNT, min_len: int = 0, max_len: int = 1 << 20,
                 default: Any = _MISSING) -> list[int]:
        items = self.array(key, min_len, max_len, default)
        if items is default and default is not _MISSING:
            return items
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise self.bad(f"{key}[{i}]", f"must be a whole number from {_count(lo)} to {_count(hi)}, "
                                              f"got {kind_of(v)}")
        return items

    def numbers(self, key: str, min_len: int = 0, max_len: int = 1 << 20, default: Any = _MISSING) -> list[float]:
        items = self.array(key, min_len, max_len, default)
        if items is default and default is not _MISSING:
            return items
        for i, v in enumerate(items):
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
                raise self.bad(f"{key}[{i}]", f"must be a finite number, got {kind_of(v)}")
        return [float(v) for v in items]

    def strings(self, key: str, min_len: int = 0, max_len: int = 1 << 20, default: Any = _MISSING) -> list[str]:
        items = self.array(key, min_len, max_len, default)
        if items is default and default is not _MISSING:
            return items
        for i, v in enumerate(items):
            if not isinstance(v, str):
                raise self.bad(f"{key}[{i}]", f"must be a string, got {kind_of(v)}")
        return items

    def items(self) -> list[tuple[str, Any]]:
        return list(self.obj.items())


__all__ = ["MAX_COUNT", "Damaged", "Fields", "kind_of", "os_reason", "read_regular"]
