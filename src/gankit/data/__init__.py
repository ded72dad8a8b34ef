"""Datasets, by name, or a folder of images by path; all end as one in-memory tensor."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset

from gankit.config import DataConfig
from gankit.data.base import NO_TRAITS, BatchOrder, DataTraits, InMemoryData
from gankit.data.captioned import CAPTIONED, cache_root, captioned_fashion
from gankit.data.fashion_mnist import FASHION_MNIST, STACKED, fashion_mnist, stacked_fashion_mnist
from gankit.data.toy import GRID, RING, grid, ring
from gankit.errors import GankitError, display_path, short_repr
from gankit.registry import Registry

Loader = Callable[[DataConfig, int], InMemoryData]


@dataclass(frozen=True)
class BuiltinDataset:
    """A registered dataset: how to load it (config, seed) -> data, and its traits, which the
    loaded data carry too (``InMemoryData.traits``) so nothing downstream tests names."""

    load: Loader
    traits: DataTraits = NO_TRAITS


DATASETS: Registry[BuiltinDataset] = Registry("dataset")
DATASETS.register("ring", BuiltinDataset(lambda cfg, seed: ring(seed), RING),
                  "8 Gaussians on a circle (2-D, mode collapse)")
DATASETS.register("grid", BuiltinDataset(lambda cfg, seed: grid(seed), GRID),
                  "5x5 Gaussians on a grid (2-D, mode collapse)")
DATASETS.register(
    "fashion-mnist",
    BuiltinDataset(lambda cfg, seed: fashion_mnist(cfg.size(), cfg.channels, cfg.data_root), FASHION_MNIST),
    "Fashion-MNIST, 60,000 28x28 gray images of 10 kinds of clothing (Debian package)",
)
DATASETS.register(
    "stacked-fashion-mnist",
    BuiltinDataset(lambda cfg, seed: stacked_fashion_mnist(cfg.data_root, cfg.size()), STACKED),
    "three Fashion-MNIST images in the RGB channels of one: 1000 modes (mode-collapse benchmark)",
)

DATASETS.register(
    "captioned-fashion",
    BuiltinDataset(lambda cfg, seed: captioned_fashion("train", root=cfg.data_root,
                                                       cache_dir=cache_root(cfg)).as_images(), CAPTIONED),
    "60,000 captioned 48x48 canvases of a Fashion-MNIST item at 9 places, 2 sizes, 2 brightnesses "
    "(text -> image: --model gan-int-cls)",
)

DEFAULT_FOLDER_SIZE = (64, 64)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GANKIT_CACHE") or Path.home() / ".cache" / "gankit")


def load_folder(cfg: DataConfig) -> InMemoryData:
    """A folder of images (recursive), decoded in parallel once and cached."""
    from gankit.data.folder import load_image_folder  # Pillow decoding: only when needed

    cache = Path(cfg.cache_dir) if cfg.cache_dir is not None else default_cache_dir()
    found = load_image_folder(
        cfg.source, cfg.size() or DEFAULT_FOLDER_SIZE, cfg.channels, cache, cfg.workers
    )
    return InMemoryData(
        found.images, display_path(cfg.source), labels=found.labels, classes=found.classes,
        notes=found.summary().splitlines(),
    )


def load_data(cfg: DataConfig, seed: int = 0) -> InMemoryData:
    """The dataset named by ``cfg.source``: a registered name, else a path to a folder of images."""
    if not cfg.source.strip():  # Path("") is this folder: never read it unasked
        raise GankitError("data.source is empty: give a dataset name (see `gankit list`) or the path "
                          "of a folder of images (`.` for this one)")
    if cfg.source in DATASETS:
        entry = DATASETS.get(cfg.source)
        data = entry.load(cfg, seed)
        data.traits = entry.traits  # the registered traits hold, whatever the loader set
        return data
    if os.sep in cfg.source or Path(cfg.source).exists() or cfg.source.startswith("."):
        return load_folder(cfg)
    raise GankitError(
        f"data.source {short_repr(cfg.source)} is neither a dataset ({', '.join(DATASETS.names())}) "
        "nor an existing folder of images"
    )


def from_tensor(x: Tensor, labels: Tensor | None = None, name: str = "tensor") -> InMemoryData:
    """Wrap user data: images (N, C, H, W) as uint8 or float in [-1, 1], or points (N, D) float."""
    if x.ndim == 4:
        if x.shape[1] not in (1, 3):
            raise GankitError(f"images must have 1 or 3 channels (N, C, H, W); got shape {tuple(x.shape)}")
        if x.dtype != torch.uint8:
            # Stored as uint8 like every image set: 4x less memory, one normalisation path.
            x = ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    elif x.ndim == 2:
        x = x.float()
    else:
        raise GankitError(f"data must be images (N, C, H, W) or points (N, D); got shape {tuple(x.shape)}")
    if x.shape[0] == 0:
        raise GankitError("the data tensor is empty")
    return InMemoryData(x.contiguous(), name, labels=labels, notes=[f"{name}: {tuple(x.shape)}"])


def from_dataset(ds: Dataset, name: str = "dataset") -> InMemoryData:
    """Materialise a map-style torch Dataset whose items are tensors or (tensor, label) pairs."""
    xs, ys = [], []
    for i in range(len(ds)):  # type: ignore[arg-type]
        item = ds[i]
        if isinstance(item, tuple | list):
            xs.append(torch.as_tensor(item[0]))
            if len(item) > 1:
                ys.append(int(item[1]))
        else:
            xs.append(torch.as_tensor(item))
    if not xs:
        raise GankitError("the dataset is empty")
    labels = torch.tensor(ys) if len(ys) == len(xs) else None
    return from_tensor(torch.stack(xs), labels, name)


__all__ = ["DATASETS", "BatchOrder", "BuiltinDataset", "DataTraits", "InMemoryData", "from_dataset", "from_tensor", "load_data"]
