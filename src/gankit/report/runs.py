"""What the lab reads of the runs under its folder: which runs there are, each one's state, and its
curves downsampled for the page. Stdlib (and PyYAML) only: watching costs the trainers nothing.

Every path comes from the page as a name relative to the lab's root and goes through
:func:`resolve_run`, which refuses absolute paths, ``..`` and anything (a symlink included) that
resolves outside the root.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from pathlib import Path
from typing import Any

from gankit.report.tail import Tail
from gankit.rundir import EVAL_KEYS, RunDir, step_dirs, step_of

__all__ = ["MAX_POINTS", "Refused", "downsample", "find_runs", "resolve_run", "run_series", "run_summary",
           "sample_steps"]

#: Points per series sent to the page at once (the full range loads when the page zooms in).
MAX_POINTS = 2000
#: How deep under the root runs are looked for (runs/, runs/experiment/, runs/experiment/seed/).
MAX_DEPTH = 3
#: Control actions after which the run is paused.
PAUSING = ("pause", "step_d", "step_g")
_NAME = re.compile(r"^[^/\\\x00]{1,255}$")


class Refused(Exception):
    """A path the lab does not serve; ``status`` is the HTTP status to answer with."""

    def __init__(self, why: str, status: int = 404) -> None:
        super().__init__(why)
        self.status = status


def resolve_run(root: Path, rel: str) -> RunDir:
    """The run directory ``rel`` names under ``root``: absolute paths, ``..``, empty or odd parts
    are ``Refused`` (400); a path resolving outside ``root`` (through a symlink) or not a run
    directory is ``Refused`` (404)."""
    if rel in ("", "."):
        path = root
    else:
        if rel.startswith(("/", "\\")) or os.path.isabs(rel) or (len(rel) > 1 and rel[1] == ":"):
            raise Refused("absolute paths are not served", 400)
        parts = rel.split("/")
        if any(p in ("", ".", "..") or not _NAME.match(p) for p in parts):
            raise Refused("the path must name a folder under the lab's root, without '..'", 400)
        path = root.joinpath(*parts)
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        raise Refused("no such run") from None
    if real != root and root not in real.parents:
        raise Refused("no such run")  # a symlink out of the root: not served, not even named
    run = RunDir(real)
    if not run.is_run():
        raise Refused("no such run")
    return run


def find_runs(root: Path) -> list[str]:
    """The run directories under ``root`` (itself included), as paths relative to it, sorted;
    symlinks are not followed, hidden folders and checkpoints/samples are skipped."""
    found: list[str] = []

    def walk(folder: Path, depth: int) -> None:
        if (folder / "config.yaml").is_file():
            found.append(folder.relative_to(root).as_posix() or ".")
            return  # a run's own folders hold no runs
        if depth >= MAX_DEPTH:
            return
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for e in entries:
            if not e.name.startswith(".") and e.is_dir(follow_symlinks=False):
                walk(Path(e.path), depth + 1)

    walk(root, 0)
    return sorted(found)


def sample_steps(run: RunDir) -> list[int]:
    """The steps with a sample grid (samples/step-N.png), ascending."""
    return [s for s in (step_of(p) for p in run.samples()) if s is not None]


def _train_setting(run: RunDir, key: str) -> Any:
    """train.KEY of config.yaml, read with PyYAML's safe loader (no registries, no torch); None if
    it cannot be read."""
    import yaml

    try:
        with open(run.config_path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f.read(1 << 20))
        return cfg["train"][key]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return None


def _total_steps(run: RunDir) -> int | None:
    """train.steps of config.yaml."""
    steps = _train_setting(run, "steps")
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _ended_early(run: RunDir, last: dict[str, Any]) -> str | None:
    """How a run that is not training and short of its steps ended, read off its files: "finished"
    when its time budget (train.max_time) was spent, "stopped" when its newest checkpoint is at its
    last logged step (Ctrl-C, SIGTERM and a stop request all save there before leaving), else None
    (it broke off: an error, a kill)."""
    max_time = _train_setting(run, "max_time")
    if isinstance(max_time, (int, float)) and max_time > 0 and float(last.get("time", 0.0)) >= max_time:
        return "finished"
    steps = step_dirs(run.path / "checkpoints")
    if steps and last and steps[-1][0] == last.get("step"):
        return "stopped"
    return None


def _training(run: RunDir, count_self: bool = True) -> bool:
    """Whether a trainer is at work on the run: the process its lock file records (RUN/.lock:
    pid, host) is alive. Read without taking any lock (a shared lock, even for an instant, could
    refuse a trainer starting then); a trainer on another host counts while metrics.jsonl grew in
    the last two minutes."""
    try:
        with open(run.path / ".lock", "rb") as f:
            holder = json.loads(f.read(4096) or b"{}")
    except (OSError, ValueError, RecursionError):
        return False
    pid = holder.get("pid") if isinstance(holder, dict) else None
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    if not count_self and pid == os.getpid() and holder.get("host") == socket.gethostname():
        return False  # the trainer itself, writing its report as it ends
    if holder.get("host") != socket.gethostname():
        try:
            return time.time() - os.stat(run.metrics_path).st_mtime < 120
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, another user's
        return True
    return True


class _Digest:
    """What the run list needs of one metrics.jsonl, kept up to date incrementally (a long run's
    file is read once, then only its new lines)."""

    def __init__(self, path: Path) -> None:
        self.tail = Tail(path)
        self._clear()

    def _clear(self) -> None:
        self.last: dict[str, Any] = {}
        self.warning: dict[str, Any] | None = None
        self.control: dict[str, Any] | None = None  # the last pause, half step, resume or stop

    def update(self) -> _Digest:
        while True:
            recs, reset = self.tail.read()
            if reset:  # a resumed run rewrote the file: start over (the tail reads it from its start)
                self._clear()
                continue
            if not recs:
                return self
            for r in recs:
                event = r.get("event")
                if event is None and "loss_d" in r:
                    self.last = r
                elif event in ("warning", "rollback"):
                    self.warning = r
                elif event in ("control", "control_refused") and r.get("action") in PAUSING + ("resume", "stop"):
                    self.control = r  # a half step (step_d, step_g), done or refused, leaves the run paused


_digests: dict[Path, _Digest] = {}


def run_summary(root: Path, rel: str, count_self: bool = True) -> dict[str, Any]:
    """One line of the run list: status (running, finished, stopped or failed), step of total,
    the last D(x), D(G(z)) and losses, the latest sample's step, the last warning, 2-D or not.
    ``count_self`` False: a lock this process holds does not make the run "running" (a trainer
    exporting its page as it ends)."""
    run = resolve_run(root, rel)
    if len(_digests) > 1000:
        _digests.clear()
    digest = _digests.setdefault(run.metrics_path, _Digest(run.metrics_path)).update()
    last, control = digest.last, digest.control
    total = _total_steps(run)
    step = last.get("step", 0)
    if _training(run, count_self):
        status = "running"
    elif total is not None and step >= total:
        status = "finished"
    elif control is not None and control["action"] == "stop":
        status = "stopped"
    else:
        status = (_ended_early(run, last) or "failed") if last else "new"
    samples = sample_steps(run)
    latest = samples[-1] if samples else None
    return {"run": rel, "name": run.path.name if rel != "." else run.path.name, "status": status,
            "step": step, "steps": total, "d_real": last.get("d_real"), "d_fake": last.get("d_fake"),
            "loss_d": last.get("loss_d"), "loss_g": last.get("loss_g"),
            "warning": digest.warning, "latest_sample": latest, "samples": samples,
            "two_d": any((run.samples_dir / f"step-{s:06d}.json").is_file() for s in samples[:1] + samples[-2:]),
            # a pause that training went on after was one of an earlier trainer (a resume ignores it)
            "paused": control is not None and control["action"] in PAUSING and control["step"] >= step}


def downsample(xs: list[float], ys: list[float], max_points: int = MAX_POINTS) -> tuple[list[float], list[float]]:
    """At most about ``max_points`` of a series, keeping its shape: the minimum and the maximum of
    each of ``max_points / 2`` buckets, in step order (spikes survive, unlike a stride's)."""
    n = len(xs)
    if n <= max_points:
        return xs, ys
    buckets = max(1, max_points // 2)
    size = math.ceil(n / buckets)
    ox: list[float] = []
    oy: list[float] = []
    for start in range(0, n, size):
        idx = range(start, min(start + size, n))
        lo = min(idx, key=lambda i: ys[i])
        hi = max(idx, key=lambda i: ys[i])
        for i in sorted({lo, hi}):
            ox.append(xs[i])
            oy.append(ys[i])
    return ox, oy


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v) if math.isfinite(v) else None


def run_series(run: RunDir, lo: float | None = None, hi: float | None = None,
               max_points: int = MAX_POINTS) -> dict[str, Any]:
    """The run's numbers as ``{"train": {key: [steps, values]}, "eval": {...}, "events": [...],
    "offset": bytes read}``: training and probe records' numbers, evaluation scores, and every
    event; within steps [lo, hi] if given, each series downsampled to ``max_points`` (``full``:
    none needed it)."""
    tail, records = Tail(run.metrics_path), []
    while True:  # to the last complete line: the stream goes on from exactly there
        more, _ = tail.read()
        if not more:
            break
        records.extend(more)
    train: dict[str, tuple[list[float], list[float]]] = {}
    evals: dict[str, tuple[list[float], list[float]]] = {}
    events = []
    for rec in records:
        step = rec["step"]
        if "event" in rec:
            events.append(rec)
            continue
        if (lo is not None and step < lo) or (hi is not None and step > hi):
            continue
        into = evals if not EVAL_KEYS.isdisjoint(rec) else train
        for key, value in rec.items():
            v = _num(value)
            if key == "step" or v is None or key in EVAL_KEYS:
                continue
            xs, ys = into.setdefault(key, ([], []))
            xs.append(step)
            ys.append(v)
    full = all(len(xs) <= max_points for xs, _ in [*train.values(), *evals.values()])
    return {"train": {k: list(downsample(*v, max_points)) for k, v in train.items()},
            "eval": {k: list(downsample(*v, max_points)) for k, v in evals.items()},
            "events": events, "offset": tail.position, "max_points": max_points, "full": full}
