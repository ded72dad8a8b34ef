"""Lifecycle hooks that inject faults at exact steps: the seam tests use instead of patching the
training code (``gankit.train.lifecycle.Hook``)."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable

from torch import Tensor


class NaNLoss:
    """Make G's logged loss NaN at the iterations (counted from 1, retried ones included) where
    ``bad(n)`` holds: what the lifecycle sees when a run diverges."""

    def __init__(self, bad: Callable[[int], bool]) -> None:
        self.bad, self.n = bad, 0

    def after_iteration(self, step: int, logged: dict[str, Tensor]) -> None:
        self.n += 1
        if self.bad(self.n):
            logged["loss_g"] = logged["loss_g"] * float("nan")


class Signal:
    """Send this process ``signum`` after iteration number ``at`` (counted from 1): SIGINT is
    Ctrl-C, SIGKILL a crash."""

    def __init__(self, at: int, signum: int = signal.SIGINT) -> None:
        self.at, self.signum, self.n = at, signum, 0

    def after_iteration(self, step: int, logged: dict[str, Tensor]) -> None:
        self.n += 1
        if self.n == self.at:
            os.kill(os.getpid(), self.signum)
