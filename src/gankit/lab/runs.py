"""What the lab reads of the runs under its folder: which runs there are, each one's state, and its
curves downsampled for the page. Stdlib (and PyYAML) only: watching costs the trainers nothing.

Every path comes from the page as a name relative to the lab's root and goes through
:func:`resolve_run`, which refuses absolute paths, ``..`` and anything (a symlink included) that
resolves outside the root.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from gankit.lab.events.tail import Tail
from gankit.rundir import EVAL_KEYS, RunDir, step_of

__all__ = ["MAX_POINTS", "Refused", "downsample", "find_runs", "resolve_run", "run_series", "run_summary",
           "sample_steps"]

#: Points per series sent to the page at once (the full range loads when the page zooms in).
MAX_POINTS = 2000
#: How deep under the root runs are looked for (runs/, runs/experiment/, runs/experiment/seed/).
MAX_DEPTH = 3
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


def _total_steps(run: RunDir) -> int | None:
    """train.steps of config.yaml, read with PyYAML's safe loader (no registries, no torch)."""
    import yaml

    try:
        with open(run.config_path, encoding="utf-8") as f:
            cfg = yaml.safe_load(f.read(1 << 20))
        steps = cfg["train"]["steps"]
    except (OSError, ValueError, yaml.YAMLError, KeyError, TypeError):
        return None
    return steps if isinstance(steps, int) and not isinstance(steps, bool) else None


def _trainer(run: RunDir) -> dict[str, Any] | None:
    """The live trainer holding the run's lock (pid, command), or None."""
    from gankit.train.rundir import RunLock  # reads the lock record; takes no lock a trainer needs

    return RunLock.holder(run.path)


def run_summary(root: Path, rel: str) -> dict[str, Any]:
    """One line of the run list: status (running, finished, stopped or failed), step of total,
    the last D(x), D(G(z)) and losses, the latest sample's step, the last warning, 2-D or not."""
    run = resolve_run(root, rel)
    records = run.records()
    train = [r for r in records if "event" not in r and "loss_d" in r]
    events = [r for r in records if "event" in r]
    last = train[-1] if train else {}
    total = _total_steps(run)
    step = last.get("step", 0)
    if _trainer(run) is not None:
        status = "running"
    elif total is not None and step >= total:
        status = "finished"
    elif any(e["event"] == "control" and e.get("action") == "stop" for e in events[-5:]):
        status = "stopped"
    else:
        status = "failed" if train else "new"
    warnings = [e for e in events if e["event"] in ("warning", "rollback")]
    samples = sample_steps(run)
    latest = samples[-1] if samples else None
    return {"run": rel, "name": run.path.name if rel != "." else run.path.name, "status": status,
            "step": step, "steps": total, "d_real": last.get("d_real"), "d_fake": last.get("d_fake"),
            "loss_d": last.get("loss_d"), "loss_g": last.get("loss_g"),
            "warning": warnings[-1] if warnings else None, "latest_sample": latest, "samples": samples,
            "two_d": any((run.samples_dir / f"step-{s:06d}.json").is_file() for s in samples[:1] + samples[-2:]),
            "paused": _paused(events)}


def _paused(events: list[dict[str, Any]]) -> bool:
    controls = [e for e in events if e["event"] == "control" and e.get("action") in ("pause", "resume", "stop")]
    return bool(controls) and controls[-1]["action"] == "pause"


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
