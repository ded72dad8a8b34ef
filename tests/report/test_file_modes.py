"""Files gankit writes (reports, sample grids, checkpoints: all through fsutil.atomic_write) are
readable by others as the umask allows, like any file the user's programs create, not 0600."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gankit import fsutil
from gankit.report import build_report

WRITE = ("import sys; from gankit.fsutil import atomic_write_text; "
         "atomic_write_text(sys.argv[1], 'x')")


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_follows_the_umask(tmp_path: Path, umask: int, mode: int) -> None:
    path = tmp_path / "f.txt"
    # a child process, as fsutil reads the umask once, when it is imported
    subprocess.run([sys.executable, "-c", WRITE, str(path)], check=True, timeout=120,
                   preexec_fn=lambda: os.umask(umask))  # the child's umask only
    assert stat.S_IMODE(path.stat().st_mode) == mode


def test_the_umask_is_read_without_changing_it() -> None:
    mask = os.umask(0o022)
    os.umask(mask)
    assert (mask, 0o666 & ~mask) == (fsutil.UMASK, fsutil.FILE_MODE)
    assert fsutil._read_umask() == mask


def test_the_report_is_readable_by_others(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "config.yaml").write_text("data: {source: ring}\n")
    out = build_report(tmp_path / "r")
    assert stat.S_IMODE(out.stat().st_mode) == fsutil.FILE_MODE
