"""The task catalogue: every kind of training gankit runs on its one lifecycle.

Each entry builds its task from a resolved config and names the ``model.arch`` values it trains;
the CLI (``gankit train --model NAME``), the Python API (``gankit.fit``) and the generated tests
(tests/train/test_tasks.py) all read this one registry. Adding an application is one task file
(a ``gankit.train.task.Task``) plus one ``TASKS.register`` line here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gankit.config import Config
from gankit.errors import GankitError, short_repr
from gankit.models import MODELS
from gankit.models.nextframe import ARCH as NEXTFRAME_ARCH
from gankit.models.text2image import ARCH as TEXT_ARCH
from gankit.models.views import ARCH as VIEWS_ARCH
from gankit.registry import Registry
from gankit.tasks.cyclegan import CycleGANTask
from gankit.tasks.dtn import DTNTask
from gankit.tasks.gan import GANTask
from gankit.tasks.nextframe import NextFrameTask
from gankit.tasks.pix2pix import Pix2PixTask
from gankit.tasks.text2image import Text2ImageTask
from gankit.tasks.views import ViewsTask
from gankit.train.task import Context, Task


@dataclass(frozen=True)
class TaskEntry:
    """A registered task: how to build it, which ``model.arch`` values it trains, and a run of a
    few seconds on data that installs offline (``smoke``: config keys), which the generated tests
    train, kill, resume, roll back and run under torchrun."""

    make: Callable[[Context], Task]
    models: Callable[[], list[str]]
    smoke: dict[str, Any]
    # torchrun: with these keys added, 2 ranks at batch B take exactly the steps of 1 process at
    # 2B (no statistics across the batch, every random draw made for the global batch); None: the
    # task's networks keep per-rank state, and only the checkpoint and resume are exact
    ddp_exact: dict[str, Any] | None = field(default_factory=dict)


TASKS: Registry[TaskEntry] = Registry("task")
TASKS.register("gan", TaskEntry(GANTask, MODELS.names,
                                {"data": "ring", "model": "mlp", "latent_dim": 8, "width": 16}),
               "noise -> data (Goodfellow et al. 2014), unconditional or class-conditional: "
               "Algorithm 1 with the loss and cures of the config")
TASKS.register("pix2pix", TaskEntry(Pix2PixTask, lambda: ["pix2pix"],
                                    {"data": "day2night", "model": "pix2pix", "image_size": "16", "width": 8,
                                     "fmnist_items": 512},
                                    # batch norm's statistics and dropout's masks are per rank
                                    ddp_exact=None),
               "paired image translation A -> B (Isola et al. 2017)")
TASKS.register("cyclegan", TaskEntry(CycleGANTask, lambda: ["cyclegan"],
                                     {"data": "sneaker2sandal", "model": "cyclegan", "image_size": "16",
                                      "width": 8, "fmnist_items": 512},
                                     # each rank's image pool holds its own shard's fakes
                                     ddp_exact={"pool_size": 0}),
               "unpaired image translation A <-> B (Zhu et al. 2017)")
TASKS.register("text2image", TaskEntry(Text2ImageTask, lambda: [TEXT_ARCH],
                                       {"data": "captioned-fashion", "model": TEXT_ARCH, "caption_items": 64,
                                        "latent_dim": 8, "width": 8, "cond_dim": 8},
                                       # batch norm's statistics are per rank
                                       ddp_exact=None),
               "text -> image (GAN-INT-CLS, Reed et al. 2016): G(z, caption) against a matching-aware D")
TASKS.register("dtn", TaskEntry(DTNTask, lambda: ["dtn"],
                                {"data": "fashion2emoji", "model": "dtn", "image_size": "16", "width": 8,
                                 "fmnist_items": 512},
                                # batch norm's statistics are per rank
                                ddp_exact=None),
               "pictures -> emoji, A -> B with a fixed f kept constant (Taigman et al. 2017)")
TASKS.register("nextframe", TaskEntry(NextFrameTask, lambda: [NEXTFRAME_ARCH],
                                      {"data": "mfmnist-small", "model": NEXTFRAME_ARCH, "width": 4,
                                       "sequences": 64}),
               "the next video frame (Mathieu, Couprie & LeCun 2016): a multi-scale G against a multi-scale D, "
               "with L_p and the gradient difference loss, rolled out for longer horizons")

TASKS.register("views", TaskEntry(ViewsTask, lambda: [VIEWS_ARCH],
                                  {"data": "views-tiny", "model": VIEWS_ARCH, "width": 8},
                                  # batch norm's statistics and dropout's masks are per rank
                                  ddp_exact=None),
               "new angles of an object from one view (Tatarchenko et al. 2016): a U-Net G conditioned on "
               "the angles (moving the source's pixels by an appearance flow, Zhou et al. 2016, by default), "
               "a PatchGAN D on (source, view, angles), adversarial + L1")


def model_names() -> list[str]:
    """Every ``model.arch`` some task trains, in the catalogue's order (what ``--model`` may say)."""
    return [m for e in TASKS.entries() for m in e.obj.models()]


def task_name_for(cfg: Config) -> str:
    """The task that trains ``cfg.model.arch``."""
    by_model = {m: e.name for e in TASKS.entries() for m in e.obj.models()}
    if cfg.model.arch not in by_model:
        raise GankitError(f"unknown model {short_repr(cfg.model.arch)}; choose one of: {', '.join(by_model)}")
    return by_model[cfg.model.arch]


def task_cures(cfg: Config) -> dict[str, str]:
    """The cures the task training ``cfg.model.arch`` names for a failure in place of the
    catalogue's (``Task.cures``; what ``gankit doctor`` and the report say, as the live warnings);
    none for a model no task here trains (a run of a task registered by another program, read
    without it: the catalogue's cures, as before tasks could name their own)."""
    if cfg.model.arch not in model_names():
        return {}
    make = TASKS.get(task_name_for(cfg)).make
    return dict(make.cures) if isinstance(make, type) and issubclass(make, Task) else {}


def task_name_of(meta: dict[str, Any]) -> str:
    """The task a checkpoint was trained by (checkpoints from before tasks were recorded: a
    translator's names its architecture, anything else is the GAN's)."""
    if isinstance(meta.get("task"), str):
        return str(meta["task"])
    translator = meta.get("translator")
    return str(translator["arch"]) if isinstance(translator, dict) else "gan"


__all__ = ["TASKS", "TaskEntry", "model_names", "task_cures", "task_name_for", "task_name_of"]
