"""Errors a user can fix. The CLI prints their message and exits with status 2, no traceback.

Also the two helpers every such message uses for what the user gave it: ``short_repr`` (a value,
never echoed whole) and ``display_path`` (a file name, never reaching the terminal raw).
"""

from __future__ import annotations

import os
import reprlib
from typing import Any

SHORT = 60
"""The most characters of a value a message shows (``short_repr``)."""


class GankitError(Exception):
    """A user-fixable problem: bad flag, bad config key, missing data, unwritable folder.

    The message must say what is wrong (naming the file or key) and what to do about it.
    """


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxdict, _REPR.maxlist, _REPR.maxtuple, _REPR.maxset = 2, 4, 4, 4, 4
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = SHORT + 8


def short_repr(value: Any, limit: int = SHORT) -> str:
    """``repr(value)`` cut to ``limit`` characters with an ellipsis, computed without ever forming
    the whole repr (a YAML "billion laughs" value, a 50 MB string, a 10^4000 integer cost no more
    than a short one); control characters and undecodable bytes shown as escapes."""
    try:  # a long text: the start of it (reprlib would keep both ends, "abc...xyz")
        text = repr(value[: limit + 1]) if isinstance(value, str | bytes) else _REPR.repr(value)
    except Exception:  # a repr that fails (or a value reprlib cannot bound)
        text = f"<{type(value).__name__}>"
    text = escape_text(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape_text(text: str, keep: str = "") -> str:
    """``text`` safe to print on a terminal: printable characters (normal names, any script) as
    they are; control characters (ESC, BEL, CR, newline, ...), other non-printable characters
    (bidi overrides, zero-width spaces) and lone surrogates as escapes: ``\\x1b``, ``\\n``,
    ``\\u202e``, and an undecodable byte of a file name (``os.fsdecode``'s surrogate) as the byte,
    ``\\xff``. Characters in ``keep`` are left alone. Applying it twice changes nothing more."""
    if text.isprintable() and not keep:
        return text
    out = []
    for ch in text:
        if ch.isprintable() or ch in keep:
            out.append(ch)
        elif "\udc80" <= ch <= "\udcff":  # a byte a file name held that is not UTF-8
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        else:
            out.append(repr(ch)[1:-1])
    return "".join(out)


def display_path(path: str | bytes | os.PathLike[str] | os.PathLike[bytes]) -> str:
    """A file name as a message shows it: readable names as they are, anything a terminal would
    act on (escape sequences, newlines) or that is not text (bytes that are not UTF-8) escaped,
    so ``b"\\xff.png"`` reads ``\\xff.png`` and ``"\\x1b[31mred.png"`` reads ``\\x1b[31mred.png``."""
    p = os.fspath(path)
    return escape_text(os.fsdecode(p) if isinstance(p, bytes) else p)


__all__ = ["SHORT", "GankitError", "display_path", "escape_text", "short_repr"]
