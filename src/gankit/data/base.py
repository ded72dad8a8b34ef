"""In-memory data and a resumable, deterministic batch order.

Data that fits in memory is decoded once: images are kept as one uint8 tensor (N, C, H, W) and
normalised to [-1, 1] a batch at a time on the device, never decoded per item per epoch. 2-D point
sets are kept as float32 (N, 2).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import Tensor

from gankit.models.base import DataShape


def physical_memory() -> int | None:
    """This machine's memory in bytes (``os.sysconf``), or None where it cannot be told."""
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def gib(n: float) -> str:
    """Bytes as GiB for a message: ``12.5 GiB``."""
    return f"{n / 2**30:.1f} GiB"


def to_float(x: Tensor, channels_last: bool = False) -> Tensor:
    """uint8 images (N, C, H, W) -> float32 in [-1, 1], channels-last if the networks that read
    them are (a no-op for one channel)."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt).float().div_(127.5).sub_(1.0)


@dataclass(frozen=True, eq=False)
class ModeMixture:
    """A 2-D mixture of Gaussians whose modes can be counted: its centres (M, 2) and common std."""

    centers: Tensor
    std: float


@dataclass(frozen=True)
class DataTraits:
    """What is known of a built-in dataset beyond its tensor: what the metrics and the diagnosis
    may assume of it. Data given as a tensor or a folder have none (``NO_TRAITS``), whatever their
    name: a user's folder called ``ring`` is not the ring."""

    modes: ModeMixture | None = None  # 2-D mixtures: counted by the VEEGAN protocol
    # Stacked Fashion-MNIST: modes counted by classifying each channel with the fmnist classifier
    # (10^3 = 1000); 0 for data without such modes
    modes_total: int = 0
    classes: tuple[str, ...] | None = None  # the items' classes by index (Fashion-MNIST's ten)
    fmnist_classifier: bool = False  # Fashion-MNIST items: the shipped classifier reads them


NO_TRAITS = DataTraits()


@dataclass
class InMemoryData:
    """A whole dataset in one tensor, plus what the user should be told about it."""

    data: Tensor  # (N, C, H, W) uint8 images, or (N, 2) float32 points
    name: str
    labels: Tensor | None = None  # (N,) int64, when the data are labelled
    classes: list[str] | None = None
    notes: list[str] = field(default_factory=list)  # lines printed at the start of training
    extent: tuple[float, float, float, float] | None = None  # 2-D sets: region to draw D's field on
    traits: DataTraits = NO_TRAITS  # what a built-in set is known to be (none for user data)

    @property
    def shape(self) -> DataShape:
        return DataShape(tuple(self.data.shape[1:]))

    def __len__(self) -> int:
        return self.data.shape[0]

    def to(self, device: torch.device) -> InMemoryData:
        self.data = self.data.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        return self

    def batch(self, index: Tensor) -> Tensor:
        """Rows ``index`` as float32 on the data's device: images scaled from uint8 to [-1, 1]."""
        x = self.data.index_select(0, index)
        if x.dtype == torch.uint8:  # channels-last, like the convolutional networks that read it
            return to_float(x, channels_last=True)
        return x.float()

    def describe(self) -> str:
        return f"{self.name}: {len(self)} {self.shape.describe()}"


class BatchOrder:
    """The i-th batch of indices, for any i, without replaying the ones before it.

    The data are read in epochs; epoch e visits every index once in an order fixed by
    (seed, e). Batch i covers positions [i*B, (i+1)*B) of that endless sequence, so a batch may span
    two epochs, and a set smaller than one batch (one image, batch 64) still fills it. Resuming at
    batch i therefore needs only i: the data order is part of the checkpoint for free.
    """

    def __init__(self, n: int, batch_size: int, seed: int, device: torch.device | str = "cpu") -> None:
        if n < 1:
            raise ValueError("no data")
        self.n, self.batch_size, self.seed, self.device = n, batch_size, seed, torch.device(device)
        self._perms: OrderedDict[int, Tensor] = OrderedDict()

    def _perm(self, epoch: int) -> Tensor:
        perm = self._perms.get(epoch)
        if perm is None:
            g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
            perm = torch.randperm(self.n, generator=g).to(self.device)
            self._perms[epoch] = perm
            while len(self._perms) > 4:
                self._perms.popitem(last=False)
        return perm

    def indices(self, i: int) -> Tensor:
        start, stop = i * self.batch_size, (i + 1) * self.batch_size
        parts = []
        pos = start
        while pos < stop:
            epoch, offset = divmod(pos, self.n)
            take = min(self.n - offset, stop - pos)
            parts.append(self._perm(epoch)[offset:offset + take])
            pos += take
        return parts[0] if len(parts) == 1 else torch.cat(parts)
