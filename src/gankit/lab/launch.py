"""Starting training from the lab: a new run from a preset, or a stopped run resumed.

Both start ``sys.executable -m gankit train ...`` as a detached process (its own session, so it
outlives the lab; no shell: an argv list whose user-given parts are a validated run name, a preset
file the lab found itself and a whole number of steps). Its output goes to ``RUN/lab-launch.log``,
opened for appending. A new run's folder is created here first (``mkdir``, which fails if the name
is taken: two clicks cannot start two trainers in one folder), then training fills it.

Presets are the YAML files shipped in ``gankit/presets/`` and those of ``RUNS_DIR/presets/`` (the
latter win on a shared name), listed by name and their first comment line.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from gankit.report.runs import Refused, resolve_run, run_summary

__all__ = ["LOG_NAME", "MAX_STEPS", "PRESETS", "RUN_NAME", "find_preset", "launch", "list_presets", "spawn"]

#: The presets shipped with gankit (package data).
PRESETS = Path(__file__).resolve().parent.parent / "presets"
#: A new run's name: one folder directly under the lab's root.
RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: The most steps a run started from the page may ask for.
MAX_STEPS = 10**7
#: The launched trainer's stdout and stderr, in its run folder.
LOG_NAME = "lab-launch.log"


def _description(path: Path) -> str:
    """The first comment line of a preset file, without its ``#``."""
    try:
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.startswith("#"):
                    return line.lstrip("#").strip()
                if line.strip():
                    break
    except (OSError, UnicodeDecodeError):
        pass
    return ""


def _folders(root: Path) -> list[tuple[str, Path]]:
    """Where presets are looked for, the user's first: (source, folder)."""
    return [("runs", root / "presets"), ("gankit", PRESETS)]


def _preset_files(root: Path) -> dict[str, tuple[str, Path]]:
    """name -> (source, file) of every preset; a user's preset hides gankit's of the same name.
    Files that are not plain files inside their folder (a symlink leading out) are skipped."""
    found: dict[str, tuple[str, Path]] = {}
    for source, folder in _folders(root):
        try:
            real_folder = folder.resolve(strict=True)
            files = sorted(folder.glob("*.yaml"))
        except (OSError, RuntimeError):
            continue
        for path in files:
            name = path.stem
            if name in found or not RUN_NAME.match(name):
                continue
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                continue
            if real.parent == real_folder and real.is_file():
                found[name] = (source, real)
    return found


def list_presets(root: Path) -> list[dict[str, str]]:
    """The presets, sorted by name: ``{"name", "description", "source"}`` (source ``gankit`` or
    ``runs`` for ``RUNS_DIR/presets/``)."""
    return [{"name": name, "description": _description(path), "source": source}
            for name, (source, path) in sorted(_preset_files(root).items())]


def find_preset(root: Path, name: str) -> Path:
    """The file of the preset ``name``; ``Refused`` (404) if there is none."""
    if not isinstance(name, str) or not RUN_NAME.match(name):
        raise Refused("no such preset")
    found = _preset_files(root).get(name)
    if found is None:
        raise Refused("no such preset")
    return found[1]


def spawn(argv: list[str], log: Path) -> int:
    """Start ``argv`` detached (a new session, no shell, stdin from /dev/null), its stdout and
    stderr appended to ``log``; the process id. A thread waits for it, so that an ended trainer
    leaves no zombie behind (whose pid would still look alive to the run list's lock check, the
    run shown running for good). Tests replace this function to record argv."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(log, flags, 0o644)
    except OSError:
        raise Refused(f"{LOG_NAME} cannot be written (a symlink, or no permission)", 403) from None
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                start_new_session=True, close_fds=True)
    finally:
        os.close(fd)
    threading.Thread(target=proc.wait, name=f"gankit-lab-reap-{proc.pid}", daemon=True).start()
    return proc.pid


def _steps(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_STEPS:
        raise Refused(f"steps must be a whole number from 1 to {MAX_STEPS}", 400)
    return value


def launch(root: Path, asked: dict[str, Any]) -> dict[str, Any]:
    """Do what the page asked: ``{"action": "resume", "run": REL}`` continues a run that is not
    running (409 if it is) from its last checkpoint; ``{"action": "start", "preset": NAME,
    "name": RUN_NAME[, "steps": N]}`` trains a new run ``root/RUN_NAME`` from a preset (400: a bad
    name or steps, 404: no such preset, 409: the name is taken). Returns ``{"pid", "run", "argv"}``."""
    action = asked.get("action")
    base = [sys.executable, "-m", "gankit", "train"]
    if action == "resume":
        rel = asked.get("run")
        if not isinstance(rel, str):
            raise Refused("run must name a run under the lab's root", 400)
        run = resolve_run(root, rel)
        if run_summary(root, rel)["status"] == "running":
            raise Refused("the run is running: stop it before resuming it", 409)
        argv = base + ["--resume", str(run.path), "--no-progress"]
        return {"pid": spawn(argv, run.path / LOG_NAME), "run": rel, "argv": argv}
    if action == "start":
        name = asked.get("name")
        if not isinstance(name, str) or not RUN_NAME.match(name) or name == "presets":
            raise Refused("the name must be 1 to 64 letters, digits, '.', '_' or '-', starting "
                          "with a letter or digit", 400)
        steps = _steps(asked.get("steps"))
        preset = find_preset(root, asked.get("preset", ""))
        out = root / name
        try:
            out.mkdir()  # atomic: a name taken (or a second click) fails here
        except FileExistsError:
            raise Refused(f"{name} exists already: pick another name", 409) from None
        argv = base + ["--config", str(preset), "--out", str(out), "--no-progress"]
        if steps is not None:
            argv += ["--steps", str(steps)]
        return {"pid": spawn(argv, out / LOG_NAME), "run": name, "argv": argv}
    raise Refused("action must be resume or start", 400)
