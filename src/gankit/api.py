"""The Python API: train with ``fit``, draw with ``sample``.

    import gankit
    run = gankit.fit("ring", model="mlp", steps=2000, out="runs/ring")
    points = run.sample(1000)                  # (1000, 2)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor
from torch.utils.data import Dataset

from gankit.config import Config, build_config
from gankit.data import InMemoryData, from_dataset, from_tensor
from gankit.resolve import resolve
from gankit.sampling import load_generator
from gankit.tasks import TASKS, task_name_for
from gankit.tasks.gan import Run
from gankit.tasks.translation import TranslationRun
from gankit.train import lifecycle
from gankit.train.lifecycle import Hook
from gankit.train.rundir import resume_config


def train_config(cfg: Config | None, resume: str | Path | None = None,
                 overrides: dict[str, Any] | None = None, data: InMemoryData | None = None,
                 hooks: Sequence[Hook] = ()) -> Any:
    """Train as ``cfg`` says (resolved here, once), or continue the run in ``resume``: the
    engine under ``gankit train`` and ``fit``. Returns the task's result (``Run``, ``TranslationRun``)."""
    if resume is None:
        assert cfg is not None
        cfg = resolve(cfg)
    else:  # the run's own config, a few keys changeable (train.steps, log.*, ...)
        cfg = resolve(resume_config(resume, overrides or {}))
    name = task_name_for(cfg)
    return lifecycle.run(name, TASKS.get(name).make, cfg, resume, data, hooks)


def fit(
    data: str | Tensor | Dataset | InMemoryData = "fashion-mnist",
    config: Config | str | Path | None = None,
    **overrides: Any,
) -> Run | TranslationRun:
    """Train a GAN and return the run (its directory, G, D, and ``.sample(n)``); with
    ``model="pix2pix"`` or ``"cyclegan"`` an image translator on ``data`` = a task name
    (``edges2fashion``, ``day2night``, ``sneaker2sandal``) or a folder (``partner=`` a second one),
    returning a ``TranslationRun`` (``.translate(images, direction)``).

    ``data`` is a dataset name (``ring``, ``grid``, ``fashion-mnist``), a folder path, a tensor of
    images (N, C, H, W) (uint8, or float in [-1, 1]) or points (N, D), or a torch Dataset.
    ``config`` is a Config or a YAML file; ``overrides`` are flat keys such as ``steps=2000``,
    ``model="mlp"``, ``lr_g=1e-3``, ``out="runs/x"``, ``progress=False``.
    """
    in_memory: InMemoryData | None = None
    if isinstance(data, InMemoryData):
        in_memory = data
    elif isinstance(data, Tensor):
        in_memory = from_tensor(data)
    elif isinstance(data, Dataset):
        in_memory = from_dataset(data)
    else:
        overrides = {"data": str(data), **overrides}
    if in_memory is not None:
        overrides.setdefault("data", in_memory.name)
    if isinstance(config, Config):
        cfg = build_config(overrides=overrides, base=config)
    else:
        cfg = build_config(config, overrides)
    return train_config(cfg, data=in_memory)


def sample(source: str | Path | Run, n: int = 64, seed: int = 0) -> Tensor:
    """n samples from a run (or a run directory / checkpoint): images in [-1, 1] or points."""
    if isinstance(source, Run):
        return source.sample(n, seed)
    return load_generator(str(source)).sample(n, seed)


__all__ = ["Run", "TranslationRun", "fit", "sample", "train_config"]
