"""Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) from local IDX files; nothing is downloaded.

On Debian: ``apt-get install dataset-fashion-mnist`` puts the four gzipped IDX files in
/usr/share/datasets/fashion-mnist. Another folder can be named with ``--data-root`` or the
environment variable GANKIT_FASHION_MNIST.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.base import DataTraits, InMemoryData
from gankit.errors import GankitError, display_path

DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
# Fashion-MNIST's items: their ten classes, read by the shipped fmnist classifier
FASHION_MNIST = DataTraits(classes=tuple(CLASSES), fmnist_classifier=True)
STACKED_MODES = 10**3  # a class per channel
# Stacked: its modes are counted channel by channel (VEEGAN's stacked-MNIST protocol)
STACKED = DataTraits(modes_total=STACKED_MODES)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def find_root(root: str | None = None) -> Path:
    """The folder holding the IDX files: ``root``, else $GANKIT_FASHION_MNIST, else Debian's."""
    return Path(root or os.environ.get("GANKIT_FASHION_MNIST") or DEFAULT_ROOT)


def _open(folder: Path, stem: str) -> bytes:
    for name in (stem + ".gz", stem):
        p = folder / name
        if p.exists():
            opener = gzip.open if name.endswith(".gz") else open
            try:
                with opener(p, "rb") as f:
                    return f.read()
            except (OSError, EOFError) as e:
                raise GankitError(f"cannot read {display_path(p)}: {e}; the file is damaged, reinstall it") from None
    raise GankitError(
        f"Fashion-MNIST not found: no {stem}.gz in {display_path(folder)}. Install it with "
        "`apt-get install dataset-fashion-mnist`, or point data.data_root (or GANKIT_FASHION_MNIST) "
        "at a folder holding the IDX files"
    )


def read_idx(raw: bytes, where: str) -> np.ndarray:
    """Parse an IDX file (LeCun's MNIST format): magic 0x00 0x00 0x08 ndim, big-endian sizes, uint8."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise GankitError(f"{display_path(where)} is not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise GankitError(f"{display_path(where)} is truncated: expected {int(np.prod(dims))} values, found {data.size}")
    return data.reshape(tuple(dims))


def load_arrays(split: str = "train", root: str | None = None) -> tuple[Tensor, Tensor]:
    """(images (N, 1, 28, 28) uint8, labels (N,) int64) of one split."""
    folder = find_root(root)
    img_stem, lbl_stem = FILES[split]
    images = read_idx(_open(folder, img_stem), str(folder / img_stem))
    labels = read_idx(_open(folder, lbl_stem), str(folder / lbl_stem))
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def resize_cover(images: Tensor, size: tuple[int, int], chunk: int = 4096) -> Tensor:
    """Resize uint8 (N, C, h, w) to cover (H, W) keeping the aspect ratio, then centre-crop."""
    h, w = images.shape[-2:]
    H, W = size
    if (h, w) == (H, W):
        return images
    scale = max(H / h, W / w)
    nh, nw = max(H, round(h * scale)), max(W, round(w * scale))
    top, left = (nh - H) // 2, (nw - W) // 2
    out = torch.empty(images.shape[0], images.shape[1], H, W, dtype=torch.uint8)
    for i in range(0, images.shape[0], chunk):
        x = images[i:i + chunk].float()
        x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
        out[i:i + chunk] = x[..., top:top + H, left:left + W].round_().clamp_(0, 255).to(torch.uint8)
    return out


def fashion_mnist(size: tuple[int, int] | None = None, channels: int | None = None, root: str | None = None,
                  split: str = "train") -> InMemoryData:
    """The 60,000 training images (or the 10,000 test ones) as one uint8 tensor."""
    images, labels = load_arrays(split, root)
    if size is not None:
        images = resize_cover(images, size)
    if channels == 3:
        images = images.expand(-1, 3, -1, -1).contiguous()
    h, w = images.shape[-2:]
    return InMemoryData(
        images, "fashion-mnist", labels=labels, classes=list(CLASSES),
        notes=[f"fashion-mnist ({split}): {len(images)} images, {images.shape[1]}x{h}x{w}, "
               f"from {find_root(root)}"],
        traits=FASHION_MNIST,
    )


STACKED_SIZE = 60_000


def stacked_fashion_mnist(root: str | None = None, size: tuple[int, int] | None = None) -> InMemoryData:
    """Stacked Fashion-MNIST: three random training images in the R, G and B channels of one
    image, giving 10^3 = 1000 modes (the stacked-MNIST protocol of VEEGAN, Srivastava et al. 2017,
    and PacGAN, Lin et al. 2018, with Fashion-MNIST in place of MNIST). The triples are fixed
    (seed 0), so every run sees the same set; label = 100 * c_R + 10 * c_G + c_B."""
    images, labels = load_arrays("train", root)
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(len(images), (STACKED_SIZE, 3), generator=g)
    stacked = images[idx].squeeze(2)  # (N, 3, 28, 28): one gray image per channel
    if size is not None:
        stacked = resize_cover(stacked, size)
    lab = labels[idx]
    mode = lab[:, 0] * 100 + lab[:, 1] * 10 + lab[:, 2]
    return InMemoryData(
        stacked, "stacked-fashion-mnist", labels=mode,
        notes=[f"stacked-fashion-mnist: {STACKED_SIZE} images, 3 Fashion-MNIST images per RGB image, "
               "1000 modes"],
        traits=STACKED,
    )
