"""What keeps a training run safe, for every task alike (used by ``gankit.train.lifecycle``).

- ``Meter``: logged values summed on the device between log steps (one host synchronisation per
  log), with the first step whose losses or gradient norms were not finite pinned for the rollback;
- ``TrainingDiverged`` and the rollback's fresh seeds;
- ``StopFlag``: Ctrl-C and SIGTERM ask the loop to stop at the end of the step, with a checkpoint;
- ``SaveOnDiskFull``: a full disk during any write saves what it can and ends in one line.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor

from gankit.errors import GankitError, display_path
from gankit.fsutil import DiskFull, disk_full_reason, is_disk_full, written_path
from gankit.rundir import RunDir
from gankit.train import distributed


class TrainingDiverged(GankitError):
    """A loss or gradient norm became NaN or infinite, at ``step``."""

    def __init__(self, step: int, message: str) -> None:
        super().__init__(message)
        self.step = step


class Hook(Protocol):
    """Called by the lifecycle at each step boundary (tests use it to inject faults; a live view
    can use it to watch). ``logged`` may be changed in place before it is metered."""

    def after_iteration(self, step: int, logged: dict[str, Tensor]) -> None: ...


class Meter:
    """Sums of the logged quantities, kept on the device between log steps.

    Also remembers the first step whose losses or gradient norms were not finite, so a NaN is
    pinned to the step it appeared even though it is only read back every ``log_every`` steps."""

    def __init__(self, device: torch.device, step: int, d: distributed.Dist = distributed.SINGLE) -> None:
        self.d, self.device = d, device
        self.names: list[str] = []
        self.sums: Tensor | None = None
        self.n = 0
        self.step = torch.tensor(step, device=device)  # advanced on the device, no host copy
        self.first_bad = torch.tensor(-1, device=device)

    def add(self, logged: dict[str, Tensor]) -> None:
        if self.sums is None:  # the task's keys, in its order, fixed at the first iteration
            self.names = list(logged)
            self.sums = torch.zeros(len(self.names), device=self.device)
            self._checked = torch.tensor([i for i, k in enumerate(self.names)
                                          if k.startswith(("loss", "grad"))], device=self.device)
        v = torch.stack([logged[k] for k in self.names]).float()
        self.sums += v
        self.step += 1
        # a loss or a gradient norm that is NaN or infinite (an exploding norm overflows to inf)
        bad = ~torch.isfinite(v[self._checked]).all() & (self.first_bad < 0)
        self.first_bad = torch.where(bad, self.step, self.first_bad)
        self.n += 1

    def first_bad_step(self) -> int:
        """The first step since the last reset whose values were not finite, or -1 (the earliest
        on any rank, on every rank: a collective under torchrun)."""
        first_bad = self.first_bad
        if self.d.enabled:
            big = torch.iinfo(torch.int64).max
            first_bad = torch.where(first_bad < 0, big, first_bad)
            torch.distributed.all_reduce(first_bad, op=torch.distributed.ReduceOp.MIN)
            first_bad = torch.where(first_bad == big, -1, first_bad)
        return int(first_bad)

    def read(self) -> dict[str, float]:
        if self.sums is None:
            return {}
        means = distributed.all_mean(self.d, self.sums / max(self.n, 1)).tolist()  # one sync per log
        self.sums.zero_()
        self.n = 0
        return dict(zip(self.names, means, strict=True))


def diverged(step: int, last_good: int | None) -> TrainingDiverged:
    kept = (f"The last checkpoint (step {last_good}) is kept" if last_good is not None
            else "No checkpoint had been saved yet")
    return TrainingDiverged(step, (
        f"the losses became NaN or infinite at step {step}: training diverged. {kept}. Try lower "
        "learning rates (train.lr_g, train.lr_d), or train.loss nonsaturating, and start a new run"))


def rollback_seed(seed: int, rollbacks: int) -> int:
    """The seed of the random streams after rollback number ``rollbacks`` (1, 2, ...): fresh noise
    for the retried steps, and the same on every rerun of the run (a function of the run's seed)."""
    return (seed * 1_000_003 + 7_919 * rollbacks) % 2**63


class Stopped(KeyboardInterrupt):
    """Training stopped by a signal (``signum``): the CLI exits with status 128 + signum."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum


class StopFlag:
    """Ctrl-C (SIGINT) or SIGTERM (``docker stop``, systemd, SLURM pre-emption) asks the loop to
    stop at the end of the current step and save a checkpoint; a second one stops at once.
    ``signum`` is the signal that asked first."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for signum in self.SIGNALS:
                self._old[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise Stopped(f"stopped at once by a second {signal.Signals(signum).name}; the last checkpoint "
                          "is kept", signum)
        self.requested, self.signum = True, signum

    def __exit__(self, *exc: Any) -> None:
        for signum, old in self._old.items():
            signal.signal(signum, old)
        self._old = {}


class SaveOnDiskFull:
    """Around the loop: a full disk while writing anything but a checkpoint (a sample grid,
    metrics.jsonl, an evaluation's cache) calls ``rescue`` (save a checkpoint of the step reached,
    if the disk still takes one), then lets the error go on to ``run``."""

    def __init__(self, rescue: Any) -> None:
        self.rescue = rescue

    def __enter__(self) -> SaveOnDiskFull:
        return self

    def __exit__(self, typ: Any, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and is_disk_full(exc):
            self.rescue(exc)


def disk_full_error(e: BaseException, run_dir: Path | None) -> DiskFull:
    """The one line a run ends with on a full disk: what was being written, and the checkpoint
    that is kept (read from the disk: whatever was saved last, a rescue included)."""
    path = written_path(e)
    what = f"{disk_full_reason(e)} while writing {display_path(path) if path else 'the run'}"
    if run_dir is None:
        return DiskFull(path or ".", e, f"{what}: free some space and start the run again")
    state = RunDir(run_dir).checkpoint_state()
    if state is None:
        return DiskFull(path or run_dir, e, f"{what}: no checkpoint had been saved yet; free some space and "
                                            "start the run again")
    return DiskFull(path or run_dir, e, (
        f"{what}: the last good checkpoint (step {state.get('step')}) is kept as checkpoints/last; free "
        f"some space and resume with gankit train --resume {display_path(run_dir)}"))


__all__ = ["Hook", "Meter", "SaveOnDiskFull", "StopFlag", "Stopped", "TrainingDiverged", "disk_full_error",
           "diverged", "rollback_seed"]
