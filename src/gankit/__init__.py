"""gankit: train, watch, diagnose, evaluate and apply generative adversarial networks.

The notebook API in a few lines::

    import gankit
    run = gankit.train("ring", model="mlp", steps=2000, out="runs/ring")
    points = run.sample(1000)                  # (1000, 2)
    G, D = gankit.build_models("dcgan", gankit.DataShape((1, 28, 28)), latent_dim=100)
"""

from __future__ import annotations

__version__ = "0.1.0"

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from torch import Tensor  # noqa: E402
from torch.utils.data import Dataset  # noqa: E402

from gankit.config import Config, build_config  # noqa: E402
from gankit.data import InMemoryData, from_dataset, from_tensor  # noqa: E402
from gankit.errors import GankitError  # noqa: E402
from gankit.models import DataShape, build_models, sample_prior  # noqa: E402
from gankit.sampling import load_generator  # noqa: E402
from gankit.train.loop import Run  # noqa: E402
from gankit.train.translation import TranslationRun  # noqa: E402


def train(
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
    from gankit.train.loop import train as _train

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
    return _train(cfg, data=in_memory)


def sample(source: str | Path | Run, n: int = 64, seed: int = 0) -> Tensor:
    """n samples from a run (or a run directory / checkpoint): images in [-1, 1] or points."""
    if isinstance(source, Run):
        return source.sample(n, seed)
    return load_generator(str(source)).sample(n, seed)


__all__ = [
    "Config", "DataShape", "GankitError", "InMemoryData", "Run", "__version__", "build_config",
    "build_models", "from_dataset", "from_tensor", "load_generator", "sample", "sample_prior", "train", "TranslationRun",
]
