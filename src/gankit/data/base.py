"""In-memory data and a resumable, deterministic batch order.

Data are decoded once: images are kept as one uint8 tensor (N, C, H, W) and normalised to [-1, 1]
a batch at a time on the device, never decoded per item per epoch. 2-D point sets are kept as
float32 (N, 2). A cached folder's tensor is memory-mapped from its cache file, so "in memory"
means "addressable": the page cache holds what is read. On a GPU, data larger than a quarter of its
free memory stay on the host and each batch is gathered there, pinned and copied
(:func:`stays_on_host`).
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


HOST_DATA_SHARE = 0.25
"""Data taking more than this share of an accelerator's free memory stay in host memory."""


def stays_on_host(nbytes: int, device: torch.device, free: int | None = None) -> bool:
    """Whether data of ``nbytes`` stay in host memory when training on ``device``: on a CUDA
    device, when they would take more than ``HOST_DATA_SHARE`` of its free memory (``free``, read
    from the device when not given). Elsewhere (CPU, MPS) the data move as they are."""
    if device.type != "cuda":
        return False
    if free is None:
        free, _ = torch.cuda.mem_get_info(device)
    return nbytes > HOST_DATA_SHARE * free


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
    batch_device: torch.device | None = None  # set by `to` when the data stay on the host

    @property
    def shape(self) -> DataShape:
        return DataShape(tuple(self.data.shape[1:]))

    def __len__(self) -> int:
        return self.data.shape[0]

    def to(self, device: torch.device | str) -> InMemoryData:
        """Train on ``device``: the data move there, unless they are too large for it
        (:func:`stays_on_host`); then they stay in host memory (memory-mapped, for a cached folder)
        and each batch is gathered there, pinned, and copied to ``device``."""
        device = torch.device(device)
        if stays_on_host(self.data.nbytes, device):
            self.data = self.data.cpu()
            self.labels = None if self.labels is None else self.labels.cpu()
            self.batch_device = device
            return self
        self.batch_device = None
        self.data = self.data.to(device)
        if self.labels is not None:
            self.labels = self.labels.to(device)
        return self

    @property
    def index_device(self) -> torch.device:
        """Where batch indices should be made, so that gathering a batch never syncs devices."""
        return self.data.device

    def _gather(self, source: Tensor, index: Tensor) -> Tensor:
        if index.device != source.device:
            index = index.to(source.device)
        x = source.index_select(0, index)
        if self.batch_device is not None:  # host data: the batch alone travels, from pinned memory
            x = (x.pin_memory() if self.batch_device.type == "cuda" else x).to(self.batch_device, non_blocking=True)
        return x

    def batch(self, index: Tensor) -> Tensor:
        """Rows ``index`` as float32 on the training device: images scaled from uint8 to [-1, 1]."""
        x = self._gather(self.data, index)
        if x.dtype == torch.uint8:  # channels-last, like the convolutional networks that read it
            return to_float(x, channels_last=True)
        return x.float()

    def labels_of(self, index: Tensor) -> Tensor | None:
        """The labels of rows ``index`` on the training device (None for unlabelled data)."""
        return None if self.labels is None else self._gather(self.labels, index)

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
