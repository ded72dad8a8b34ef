"""The task protocol: what one kind of training owns, as the lifecycle sees it.

gankit trains several kinds of model (the noise-to-data GAN with its conditional variants,
pix2pix, CycleGAN, ...) on one lifecycle (``gankit.train.lifecycle``). The lifecycle owns
everything that is the same for all of them: the run directory, resume, precision, device and
torchrun, metering, NaN rollback, the log / sample / checkpoint / eval / diagnose cadence, Ctrl-C,
``max_time``, the learning-rate schedule and the report. A task owns the rest:

- its networks, optimisers and random state, and their checkpoint tensors (``checkpoint`` /
  ``restore``);
- how a batch is drawn, and one iteration (``iteration``: for the GAN, Goodfellow et al.'s
  Algorithm 1, k D-steps then one G-step), returning what it logs as 0-dim tensors on the device;
- its sample grid with row names (``save_samples``) and its evaluation (``evaluate``);
- the diagnosis signals it can give (``probe``), and its own cures where the catalogue's flags
  do not apply (``cures``).

A task is built from a resolved config by its registry entry (``gankit.tasks.TASKS``), then
``setup`` loads its data and builds its networks. The lifecycle never asks what kind of task it
runs.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor

from gankit.checkpoint import Checkpoint
from gankit.config import Config
from gankit.train import distributed
from gankit.train.control import CannotSplit
from gankit.train.state import autocast

# Keys every task logs (means over the log interval). Tasks add their own (e.g. loss_l1).
#   loss_d, loss_g: the players' adversarial losses; d_real, d_fake: D's mean probability "real"
#   on real and generated samples (the equilibrium is D(x) = D(G(z)) = 1/2, Goodfellow et al.
#   2014); grad_g, grad_d: the L2 norms of the players' gradients (the diminished-gradient signal).
STANDARD_KEYS = ("loss_d", "loss_g", "d_real", "d_fake", "grad_g", "grad_d")


@dataclass
class Context:
    """Where a task runs: its config, device, place in a torchrun launch and run directory."""

    cfg: Config
    device: torch.device
    dist: distributed.Dist = distributed.SINGLE
    run_dir: Path | None = None
    notes: list[str] = field(default_factory=list)  # lines for the user (data found, skipped files)

    @property
    def main(self) -> bool:
        return self.dist.is_main


class Task(ABC):
    """One kind of training, run by the lifecycle. See the module docstring."""

    #: what a batch holds, for the progress bar's rate (img/s, pt/s)
    unit: str = "img"
    #: how many real images D is shown over and over (set by tasks that know it): the diagnosis
    #: names augmentation first when D memorises a small set
    data_size: int | None = None
    #: the task's own cures of a failure (``gankit.diagnosis.FAILURES``' kinds), where the
    #: catalogue's, which name the image GAN's flags, do not apply to it
    cures: ClassVar[dict[str, str]] = {}

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.cfg = ctx.cfg
        self.device = ctx.device
        self.dist = ctx.dist
        self.precision = "fp32"  # resolved in setup (auto -> bf16 or fp32)

    # ------------------------------------------------------------------ setup

    @abstractmethod
    def setup(self, data: Any | None = None) -> None:
        """Load the data (``data``: an in-memory set handed in by the API, if the task takes
        one), build the networks and optimisers, and seed every random stream from the config."""

    def resolved(self) -> dict[str, tuple[Any, str]]:
        """Config values the run settled from its data and networks (``data.image_size`` ->
        (value, why)), written into the run's config.yaml."""
        return {}

    def autocast(self) -> contextlib.AbstractContextManager:
        """The networks' forward passes in the run's precision (``torch.autocast``, or a no-op)."""
        return autocast(self.device, self.precision)

    # ------------------------------------------------------------------ checkpoint round trip

    @abstractmethod
    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        """(model tensors, training tensors, metadata) for a checkpoint: weights; optimiser
        moments and RNG states; JSON-able facts (data shape, optimiser scalars under "optim")."""

    def validate_checkpoint(self, ckpt: Checkpoint) -> None:
        """Raise ``gankit.validate.Damaged`` (naming the file and the key or tensor) unless ``ckpt``
        holds what ``restore`` reads, of the right types, ranges and shapes: the task's own keys
        of state.json, its weights, optimiser moments and RNG states. Called on a loaded checkpoint
        before ``check_resume`` and ``restore``, so ``--resume`` falls back to an older checkpoint
        instead of failing half-way (what every checkpoint has, the loader has checked already).
        The default checks nothing more."""
        return

    @abstractmethod
    def check_resume(self, meta: dict[str, Any]) -> None:
        """Refuse (GankitError) to resume a checkpoint whose data do not match this run's."""

    @abstractmethod
    def restore(self, ckpt: Checkpoint) -> None:
        """Weights, optimiser moments, RNG states and the data position of ``ckpt``; afterwards
        the run continues exactly as if never stopped."""

    @abstractmethod
    def optimizers(self) -> list[torch.optim.Optimizer]:
        """Every optimiser (the schedule scales, and a rollback halves, their learning rates):
        the generators' first and the discriminators' last (the rollback event logs their rates
        as lr_g and lr_d)."""

    @abstractmethod
    def generators(self) -> list[torch.Generator]:
        """The random streams training draws from (checkpointed with the run): a rollback reseeds
        them, so the retried steps draw fresh noise instead of repeating the ones that diverged."""

    # ------------------------------------------------------------------ training

    @abstractmethod
    def iteration(self, step: int) -> dict[str, Tensor]:
        """One training iteration (``step`` iterations are done); returns what it logs, each a
        0-dim tensor on the device (no host synchronisation): ``STANDARD_KEYS`` and the task's own."""

    def half_step(self, player: str) -> str:
        """Update one player alone, once, outside an iteration: ``"d"`` one of D's updates,
        ``"g"`` one of G's (GAN Lab's "step D" / "step G"; the control requests ``step_d`` and
        ``step_g``, while paused). Returns what was done, in words, for the event. The step count
        stays; the update draws from the run's streams as the next iteration would. A task whose
        iteration does not split into the two players' updates raises ``CannotSplit`` (this
        default)."""
        raise CannotSplit(f"the {type(self).__name__} task's iteration does not split into D's and "
                          "G's updates; use step for a whole iteration")

    def set_d_steps(self, k: int) -> str:
        """Make each iteration from now on take ``k`` updates of D before G's (k of Goodfellow et
        al.'s Algorithm 1; the control request ``set`` with ``d_steps``). Returns what was done,
        in words. A task without such a k raises ``CannotSplit`` (this default)."""
        raise CannotSplit(f"the {type(self).__name__} task has no k (D updates per G update) to change")

    def set_loss(self, name: str) -> str:
        """Train with the loss ``name`` from now on (the control request ``set`` with ``loss``).
        Returns what was done, in words. A task whose loss is fixed raises ``CannotSplit`` (this
        default)."""
        raise CannotSplit(f"the {type(self).__name__} task trains with its paper's loss")

    # ------------------------------------------------------------------ watching and scoring

    @abstractmethod
    def save_samples(self, path: Path, step: int) -> None:
        """Write the task's sample grid (rows named) to ``path`` (a .png)."""

    def default_eval_key(self) -> str:
        """The number that picks the ``best`` checkpoint when ``eval.eval_metric`` is unset."""
        raise NotImplementedError

    def higher_is_better(self, key: str) -> bool:
        raise NotImplementedError

    def evaluate(self, key: str) -> dict[str, float]:
        """Score the model now (eval mode, its own random streams: training's are untouched).
        Must produce ``key``."""
        raise NotImplementedError

    def probe(self) -> dict[str, float]:
        """Diagnosis signals that need the networks (diversity, modes, classes), or {}."""
        return {}

    @property
    def diagnosis_loss(self) -> str:
        """The loss whose values the diagnosis rules read (it says whether D's outputs are
        probabilities)."""
        return self.cfg.train.loss

    # ------------------------------------------------------------------ the result

    @abstractmethod
    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> Any:
        """What ``gankit.fit`` returns: the run directory and the trained networks."""


__all__ = ["STANDARD_KEYS", "Context", "Task"]
