"""Following metrics.jsonl as training appends to it, line by line, from a byte offset.

A tail remembers how far it has read; :meth:`Tail.read` returns the complete lines written since
(a half-written last line waits for its newline). A resumed run rewrites the file shorter
(``MetricsLog.truncate_after``, by an atomic rename): the tail sees the file shrink or its inode
change and says ``reset``, and the page reloads the run's curves.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gankit.rundir import record_problem

__all__ = ["MAX_CHUNK", "Tail"]

#: The most bytes one read takes (a huge backlog is delivered over several reads).
MAX_CHUNK = 4 << 20


@dataclass
class Tail:
    """The new records of ``path`` since byte ``offset``."""

    path: Path
    offset: int = 0
    inode: int | None = None
    _partial: bytes = field(default=b"", repr=False)

    def read(self) -> tuple[list[dict[str, Any]], bool]:
        """(records appended since the last read, whether the file was replaced or shortened:
        then the caller starts over, and this tail reads it again from its start next time)."""
        try:
            st = os.stat(self.path)
        except OSError:
            return [], False
        if self.inode is None:
            self.inode = st.st_ino
        if st.st_ino != self.inode or st.st_size < self.offset:
            self.offset, self.inode, self._partial = 0, st.st_ino, b""
            return [], True
        if st.st_size == self.offset:
            return [], False
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(min(st.st_size - self.offset, MAX_CHUNK))
        except OSError:
            return [], False
        self.offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        out = []
        for raw in lines:
            try:
                rec = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if record_problem(rec) is None:
                out.append(rec)
        return out, False

    @property
    def position(self) -> int:
        """The offset of the first byte not yet returned as a complete line."""
        return self.offset - len(self._partial)
