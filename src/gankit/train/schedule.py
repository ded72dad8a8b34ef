"""Training hyper-parameters as pure functions of the step: the learning rates, Adam's beta2, the
R1 and R2 gammas and the EMA's half-life.

Huang et al. 2024 (R3GAN, "The GAN is dead; long live the GAN! A Modern GAN Baseline") anneal
them all on a cosine over the first part of training: ``train.schedule_images`` images, after
which each stays at its end value. A value without an ``*_end`` key stays at its start value.
With the images seen i and the schedule's length T::

    v(i) = end + (start - end) * (1 + cos(pi * min(i / T, 1))) / 2

The images seen before G update ``step`` are ``step x batch_size x processes`` (the global batch:
one per G update, as StyleGAN and R3GAN count them, whatever ``train.d_steps`` is), so the first
update trains at the start values. Being a function of the step alone, the schedule needs nothing
in a checkpoint: a resumed run trains at the values an uninterrupted one would.

The learning rates are applied as a factor of the optimisers' base rates (``base_lr``, as
CycleGAN's linear decay ``train.lr_decay_start`` is, and multiplied with it): a rate set from
``gankit lab``, or halved by a rollback, sets the schedule's base, and the cosine scales it by
``end / start`` at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gankit.config import Config

if TYPE_CHECKING:  # the pure functions load without torch
    import torch

__all__ = ["Schedule", "cosine", "lr_factor"]


def cosine(start: float, end: float, images: float, total: float) -> float:
    """``start`` at ``images`` 0, ``end`` at ``total`` and beyond, on half a cosine between."""
    frac = min(images / total, 1.0) if total > 0 else 1.0
    return end + (start - end) * (1.0 + math.cos(math.pi * frac)) / 2.0


def lr_factor(step: int, steps: int, decay_start: float) -> float:
    """The share of the base learning rate at ``step``: 1 until ``decay_start * steps``, then
    falling linearly to 0 at ``steps`` (CycleGAN, Zhu et al. 2017: constant for half the run,
    then linear decay; on the 2-D mixtures it lets G settle sharply on the modes)."""
    start = decay_start * steps
    if step < start or steps <= start:
        return 1.0
    return max(0.0, 1.0 - (step - start) / (steps - start))


@dataclass(frozen=True)
class Schedule:
    """A run's schedule: ``cfg`` (resolved) and the processes sharing the global batch."""

    cfg: Config
    world: int = 1

    @property
    def on(self) -> bool:
        """Whether the learning rates or beta2 move during the run (else the loop leaves them)."""
        return self.cfg.train.lr_decay_start < 1 or self.cfg.train.schedule_images is not None

    def images(self, step: int) -> int:
        """Images seen before G update ``step`` (0, 1, ...): step x the global batch."""
        return step * self.cfg.train.batch_size * self.world

    def at(self, start: float, end: float | None, step: int) -> float:
        """A scheduled value at G update ``step``: ``start`` itself without an end or a schedule."""
        total = self.cfg.train.schedule_images
        if end is None or total is None:
            return start
        return cosine(start, end, self.images(step), total)

    def lr_factors(self, step: int) -> tuple[float, float]:
        """(G's, D's) share of their base learning rates at ``step``: the linear decay times the
        cosine from 1 to ``lr_*_end / lr_*``."""
        t = self.cfg.train
        linear = lr_factor(step, t.steps, t.lr_decay_start)
        g = self.at(1.0, None if t.lr_g_end is None else t.lr_g_end / t.lr_g, step)
        d = self.at(1.0, None if t.lr_d_end is None else t.lr_d_end / t.lr_d, step)
        return linear * g, linear * d

    def beta2(self, step: int) -> float:
        return self.at(self.cfg.train.beta2, self.cfg.train.beta2_end, step)

    def gammas(self, step: int) -> tuple[float, float]:
        """The R1 and R2 gammas at ``step``."""
        r = self.cfg.reg
        return self.at(r.r1, r.r1_end, step), self.at(r.r2, r.r2_end, step)

    def ema_half_life(self, step: int) -> float | None:
        """The EMA's half-life in images at ``step`` (None: ``train.ema``'s decay per step)."""
        t = self.cfg.train
        return None if t.ema_half_life is None else self.at(t.ema_half_life, t.ema_half_life_end, step)

    def apply(self, optimizers: Sequence[torch.optim.Optimizer], step: int) -> None:
        """Set the optimisers' rates (and beta2, when scheduled) for ``step``: the last optimiser
        is D's, the others G's (``Task.optimizers``). Rates are the base rates times the factor."""
        fg, fd = self.lr_factors(step)
        beta2 = self.beta2(step) if self.cfg.train.beta2_end is not None else None
        for i, opt in enumerate(optimizers):
            factor = fd if i == len(optimizers) - 1 else fg
            for group in opt.param_groups:
                group["lr"] = group.setdefault("base_lr", group["lr"]) * factor
                if beta2 is not None:
                    group["betas"] = (group["betas"][0], beta2)

    def record(self, step: int, optimizers: Sequence[torch.optim.Optimizer]) -> dict[str, float]:
        """What metrics.jsonl logs of the values G update ``step`` trained with (host numbers)."""
        r1, r2 = self.gammas(step)
        out = {"lr_g": float(optimizers[0].param_groups[0]["lr"]),
               "lr_d": float(optimizers[-1].param_groups[0]["lr"]),
               "beta2": self.beta2(step), "gamma_r1": r1, "gamma_r2": r2}
        half_life = self.ema_half_life(step)
        if half_life is not None:
            out["ema_half_life"] = half_life
        return out
