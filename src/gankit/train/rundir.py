"""Starting a run directory (checked first, created once the task is built), reading it back
for ``--resume``, and locking it (``RunLock``: one trainer per run directory);
``gankit.rundir.RunDir`` is how every command reads one."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shlex
import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from gankit.config import (
    Config,
    apply_mapping,
    coerce,
    options_by_key,
)
from gankit.errors import GankitError, display_path
from gankit.fsutil import FILE_MODE, DiskFull, atomic_write_text, is_disk_full
from gankit.rundir import RunDir

# What may change when a run is resumed: how long it runs and how it is watched, not what it is.
RESUMABLE_KEYS = {"steps", "log_every", "sample_every", "checkpoint_every", "keep", "progress", "device",
                  "tensorboard", "eval_every", "eval_n", "compile",
                  "max_time", "diagnose_every", "precision", "cudnn_benchmark",
                  # how long next-frame G's training clips roll out: the same networks, trained on
                  # longer clips (a curriculum: one step ahead first, then on its rollouts)
                  "rollout", "rollout_from"}


def default_out(cfg: Config) -> Path:
    """runs/<data>-<model>, with -2, -3, ... if that already holds a run."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(cfg.data.source).name or "data").strip("-")
    base = Path("runs") / f"{name}-{cfg.model.arch}"
    out, i = base, 1
    while RunDir(out).is_run():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def check_new(cfg: Config) -> Config:
    """The config of a new run with its directory decided (``log.out``, or runs/<data>-<model>);
    refuses a directory that holds another run's checkpoint. Creates nothing: a start that fails
    later (bad data, a model that does not fit them) leaves no folder behind to block the next try.
    A folder whose run never saved a checkpoint (killed early) holds nothing to resume: the new run
    starts in it again (``create_new`` clears that run's log and samples)."""
    out = Path(cfg.log.out) if cfg.log.out else default_out(cfg)
    run = RunDir(out)
    holder = RunLock.holder(out)
    if holder is not None:  # a run still training there, even before its first checkpoint
        raise RunLocked(out, holder)
    if run.last_checkpoint() is not None:
        raise GankitError(
            f"{out} already holds a run; continue it with `gankit train --resume {out}` "
            "or choose another log.out"
        )
    if run.is_run():
        print(f"{out} holds a run that never saved a checkpoint (stopped before its first): starting "
              "it again", file=sys.stderr)
    if cfg.log.out is None:
        cfg.resolve_value("log.out", str(out), "unset: runs/<data>-<model>")
    return cfg


def create_new(cfg: Config, resolved: dict[str, tuple[Any, str]], lock: RunLock | None = None) -> Path:
    """Create the run directory and write its config.yaml: the values the run uses, those settled
    from its data and networks (``resolved``: key -> (value, why)) included. With ``lock``, the
    folder is locked (``RunLock.acquire``) as soon as it exists, before anything in it changes."""
    out = Path(str(cfg.log.out))
    run = RunDir(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        if lock is not None:
            lock.acquire(out)
        for folder in (run.checkpoints_dir, run.samples_dir):
            folder.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        # what a run that never saved a checkpoint left: its log and its grids (nothing else)
        for stale in [run.metrics_path, run.report_path, *run.samples_dir.glob("step-*.png")]:
            stale.unlink(missing_ok=True)
    except OSError as e:
        if is_disk_full(e):
            raise DiskFull(out, e) from None
        raise GankitError(f"cannot write to {out}: {e.strerror}; choose another log.out") from None
    for key, (value, why) in resolved.items():
        cfg.resolve_value(key, value, why)
    atomic_write_text(run.config_path, cfg.to_yaml())
    return out


def resume_config(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> Config:
    """The config of the run in ``run_dir``, with only the keys in RESUMABLE_KEYS overridable
    (not yet resolved, nor written: ``gankit.api`` resolves it, the lifecycle saves it)."""
    run, path = RunDir(run_dir), Path(run_dir)
    if not run.is_run():
        raise GankitError(f"cannot resume {path}: no run there (no config.yaml); check the path")
    cfg = run.config()
    if run.last_checkpoint() is None:
        raise GankitError(f"cannot resume {path}: it has no checkpoint yet; start it again without --resume")
    changed = {k: v for k, v in overrides.items() if k not in RESUMABLE_KEYS}
    by_key = options_by_key()
    for key, value in changed.items():
        opt = by_key[key]
        if cfg.get(opt.dotted) != coerce(opt, value, "command line"):
            raise GankitError(
                f"{opt.dotted} cannot change when resuming {path} (it is part of what the run is); only "
                f"{', '.join(by_key[k].dotted for k in sorted(RESUMABLE_KEYS))} can. Start a new run to "
                "change it"
            )
    cfg = apply_mapping(cfg, {k: v for k, v in overrides.items() if k in RESUMABLE_KEYS}, "command line",
                        user=True)
    cfg.log.out = str(path)
    return cfg


def save_config(cfg: Config) -> None:
    """Write the run's config.yaml (a resumed run's, with the keys changed at resume)."""
    atomic_write_text(RunDir(str(cfg.log.out)).config_path, cfg.to_yaml())


# --------------------------------------------------------------------------- the lock

LOCK_NAME = ".lock"


class RunLocked(GankitError):
    """The run directory is in use by another trainer (a live process holds its lock)."""

    def __init__(self, run_dir: Path, holder: dict[str, Any]) -> None:
        self.run_dir, self.holder = run_dir, holder
        super().__init__(f"{display_path(run_dir)} is being trained by {describe_holder(holder)}; wait for it "
                         "to finish or stop it")


def describe_holder(holder: dict[str, Any]) -> str:
    """``process 1234 (gankit train ..., started 13:02)``, from what a lock file records (as much
    of it as is there: a lock taken a moment ago may not have written its record yet)."""
    pid = holder.get("pid")
    who = f"process {pid}" if isinstance(pid, int) else "another process"
    host = holder.get("host")
    if isinstance(host, str) and host and host != socket.gethostname():
        who += f" on {display_path(host)}"
    details = []
    command = holder.get("command")
    if isinstance(command, str) and command:
        details.append(display_path(command if len(command) <= 80 else command[:79] + "…"))
    started = holder.get("started")
    if isinstance(started, int | float):
        when = datetime.fromtimestamp(started)
        same_day = when.date() == datetime.now().date()
        details.append("started " + when.strftime("%H:%M" if same_day else "%Y-%m-%d %H:%M"))
    return who + (f" ({', '.join(details)})" if details else "")


def _command_line() -> str:
    """How this process was started, as a user would type it (``gankit train --resume runs/x``)."""
    argv = list(sys.argv) or ["python"]
    first = Path(argv[0])
    gankit = first.name == "gankit" or (first.name == "__main__.py" and first.parent.name == "gankit")
    return shlex.join(["gankit" if gankit else first.name or "python", *argv[1:]])


class RunLock:
    """One trainer per run directory: an exclusive ``flock`` on RUN/.lock, held for the run's life.

    The file records who holds it (pid, host, start time, command line), so a second trainer (or
    ``--resume`` of a run that is still training) is refused with a message naming the other
    process. The kernel releases the lock when its process dies however it dies (SIGKILL
    included), so a stale lock needs no clean-up: the next trainer takes it and overwrites the
    record. The file itself stays (removing it would let two processes lock two different files).
    Readers (``gankit sample``, ``eval``, ``report``) never lock. Where ``flock`` does not exist
    (Windows) or the file system refuses it (some network file systems), the run is not locked.
    """

    def __init__(self) -> None:
        self.fd: int | None = None
        self.run_dir: Path | None = None  # the folder asked for, locked or not

    @property
    def held(self) -> bool:
        return self.fd is not None

    def acquire(self, run_dir: str | os.PathLike) -> RunLock:
        """Lock ``run_dir`` (which must exist) or raise ``RunLocked``; a no-op if already held."""
        if self.fd is not None:
            return self
        self.run_dir = Path(run_dir)
        try:
            import fcntl
        except ImportError:  # Windows: no flock
            return self
        path = self.run_dir / LOCK_NAME
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
        except OSError as e:
            if is_disk_full(e):
                raise DiskFull(path, e) from None
            raise GankitError(f"cannot write to {display_path(self.run_dir)} ({display_path(path)}: "
                              f"{e.strerror}); train as a user who may write there") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            holder = _read_record(fd)
            os.close(fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise RunLocked(Path(run_dir), holder) from None
            print(f"gankit: warning: cannot lock {display_path(path)} ({e.strerror}): nothing stops a second "
                  "trainer from using this run directory at the same time", file=sys.stderr)
            return self
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "command": _command_line()}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(record) + "\n").encode(), 0)
        except OSError:  # a full disk: the lock holds all the same, its record is empty
            pass
        self.fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (closing the file releases it); safe to call twice."""
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    @staticmethod
    def holder(run_dir: str | os.PathLike) -> dict[str, Any] | None:
        """What the live process holding ``run_dir``'s lock recorded, or None if none holds it.
        Reads only: asks for a shared lock for an instant, which fails while a trainer holds it."""
        try:
            import fcntl
        except ImportError:
            return None
        try:
            fd = os.open(Path(run_dir) / LOCK_NAME, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as e:
            return _read_record(fd) if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK) else None
        else:
            return None
        finally:
            os.close(fd)  # closing releases the shared lock, if it was granted


def _read_record(fd: int) -> dict[str, Any]:
    try:
        record = json.loads(os.pread(fd, 4096, 0) or b"{}")
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}

