"""Data for image translation: pairs (A_i, B_i) for pix2pix, two unpaired sets for CycleGAN.

Paired folders come in pix2pix's layout (each file holds A and B side by side, A on the left) or as
two folders whose files match by name (``A/x.png`` with ``B/x.png``; the extension may differ).
The built-in tasks are fixed, documented transforms of Fashion-MNIST, so their true B is known and
the translation can be scored:

- ``edges2fashion``: A = the item's edges (Sobel gradient magnitude of the image blurred by a 3x3
  binomial filter, white where it exceeds 0.25 of the full range), B = the item;
- ``day2night``: A = the item as a daylight photo (gray), B = the same at night: gamma 2
  (midtones sink), brightness x 0.6, and a blue cast (R x 0.55, G x 0.75, B x 1.0), in RGB;
- unpaired ``sneaker2sandal`` (any two classes): A = one class's images, B = another's;
- unpaired ``fashion2emoji``: A = the photos, B = clothing emoji of the same ten classes
  (``gankit.data.emoji``), the classes of both known.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.errors import GankitError, display_path, short_repr
from gankit.models.conditional import class_slug


@dataclass
class PairedData:
    """Aligned uint8 images ``A`` (N, Ca, H, W) and ``B`` (N, Cb, H, W); ``labels`` (N,) are the
    items' classes when known (built-in tasks), used to score translations with a classifier."""

    A: Tensor
    B: Tensor
    name: str
    labels: Tensor | None = None
    names: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the folders held: counts, skipped files

    def __post_init__(self) -> None:
        if self.A.shape[0] != self.B.shape[0] or self.A.shape[-2:] != self.B.shape[-2:]:
            raise GankitError(f"{self.name}: A {tuple(self.A.shape)} and B {tuple(self.B.shape)} do not pair up")

    def __len__(self) -> int:
        return self.A.shape[0]


@dataclass
class UnpairedData:
    """Two sets of uint8 images, ``A`` (Na, C, H, W) and ``B`` (Nb, C, H, W), in no correspondence."""

    A: Tensor
    B: Tensor
    name: str
    classes: tuple[str, str] = ("A", "B")
    notes: list[str] = field(default_factory=list)  # what the folders held: counts, skipped files
    # built-in tasks whose domains share classes (fashion2emoji): each image's class, and the name
    # of the classifier that reads domain B (``gankit.metrics.translation`` scores class agreement)
    labels_A: Tensor | None = None
    labels_B: Tensor | None = None
    target_classifier: str | None = None


# --------------------------------------------------------------------------- fixed transforms


def fmnist_edges(images: Tensor, threshold: float = 0.25) -> Tensor:
    """uint8 (N, 1, H, W) -> uint8 edge maps: Sobel magnitude of the binomially blurred image,
    255 where it exceeds ``threshold`` of the range of a unit step, else 0."""
    x = images.float() / 255
    blur = torch.tensor([1.0, 2.0, 1.0])
    blur = (blur[:, None] * blur[None, :] / 16).view(1, 1, 3, 3)
    x = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), blur)
    sx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]).view(1, 1, 3, 3) / 4  # a unit step -> 1
    gx = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), sx)
    gy = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), sx.transpose(2, 3))
    return ((gx.square() + gy.square()).sqrt() > threshold).to(torch.uint8) * 255


NIGHT_GAMMA, NIGHT_GAIN, NIGHT_RGB = 2.0, 0.6, (0.55, 0.75, 1.0)


def night_curve(x: Tensor) -> Tensor:
    """Day levels in [0, 1], (..., 3) or broadcastable to it -> night levels in [0, 1] per colour
    channel (the last dimension): gamma 2, gain 0.6, a blue cast."""
    return x.pow(NIGHT_GAMMA) * NIGHT_GAIN * torch.tensor(NIGHT_RGB)


def day_to_night(images: Tensor) -> Tensor:
    """uint8 (N, 1 or 3, H, W) -> uint8 (N, 3, H, W): ``night_curve`` of each pixel, looked up in a
    table of its 256 levels per channel (3x faster than the float arithmetic on 60,000 images)."""
    levels = torch.arange(256, dtype=torch.float32).div(255).view(256, 1)  # (256, 1)
    table = (night_curve(levels) * 255).round().clamp(0, 255).to(torch.uint8).T.numpy()  # (3, 256)
    src = images.numpy()
    return torch.from_numpy(np.stack([table[c][src[:, c if src.shape[1] == 3 else 0]] for c in range(3)], 1))


def edges2fashion(split: str = "train", root: str = "", n: int = 0) -> PairedData:
    """Built-in paired task: Fashion-MNIST edges -> items (``n`` > 0 keeps the first n)."""
    from gankit.data.fashion_mnist import load_arrays

    images, labels = load_arrays(split, root)
    if n:
        images, labels = images[:n], labels[:n]
    # in chunks: the 60,000 images' float copies stay in cache (2.5x faster on 2 cores)
    edges = torch.cat([fmnist_edges(images[i:i + 4096]) for i in range(0, len(images), 4096)])
    return PairedData(edges, images, "edges2fashion", labels)


def day2night(split: str = "train", root: str = "", n: int = 0) -> PairedData:
    """Built-in paired task: a Fashion-MNIST item by day (RGB gray) -> the same at night."""
    from gankit.data.fashion_mnist import load_arrays

    images, labels = load_arrays(split, root)
    if n:
        images, labels = images[:n], labels[:n]
    # A is the gray image as RGB: a view whose three channels are one, so resizing it resizes one
    return PairedData(images.expand(-1, 3, -1, -1), day_to_night(images), "day2night", labels)


def fmnist_classes(a: str = "sneaker", b: str = "sandal", split: str = "train", root: str = "") -> UnpairedData:
    """Built-in unpaired task: two Fashion-MNIST classes as the two domains (by name or index)."""
    from gankit.data.fashion_mnist import CLASSES, load_arrays

    def index(c: str) -> int:
        names = [x.lower() for x in CLASSES]
        if c.isdigit() and int(c) < len(CLASSES):
            return int(c)
        if c.lower() in names:
            return names.index(c.lower())
        raise GankitError(f"unknown Fashion-MNIST class {short_repr(c)}; one of: {', '.join(CLASSES)} (or 0-9)")

    ia, ib = index(a), index(b)
    if ia == ib:
        raise GankitError(f"the two domains must be different classes, got {short_repr(a)} twice")
    images, labels = load_arrays(split, root)
    # Unpaired for real: each domain is its class's images, in no relation to the other's.
    name = f"{CLASSES[ia]}2{CLASSES[ib]}".lower().replace("/", "-")
    return UnpairedData(images[labels == ia], images[labels == ib], name, (CLASSES[ia], CLASSES[ib]))


# --------------------------------------------------------------------------- user folders


def load_paired_folder(path: str | os.PathLike, size: tuple[int, int], partner: str | os.PathLike | None = None,
                       cache_dir: str | os.PathLike | None = None, channels: int | None = None) -> PairedData:
    """A folder of side-by-side A|B images (pix2pix's datasets), or, with ``partner``, two folders
    whose files match by name without extension. Each image is scaled to ``size`` (H, W)."""
    from gankit.data.folder import load_image_folder

    if partner is None:
        h, w = size
        both = load_image_folder(path, (h, 2 * w), channels, cache_dir=cache_dir)  # (N, C, H, 2W)
        return PairedData(both.images[..., :w].contiguous(), both.images[..., w:].contiguous(),
                          display_path(Path(path).name), names=both.files,
                          notes=both.summary().splitlines())
    a = load_image_folder(path, size, channels, cache_dir=cache_dir)
    b = load_image_folder(partner, size, channels, cache_dir=cache_dir)
    stem = lambda f: str(Path(f).with_suffix(""))  # noqa: E731
    index_b = {stem(f): i for i, f in enumerate(b.files)}
    index_a = {stem(f): i for i, f in enumerate(a.files)}
    missing_b = [f for f in a.files if stem(f) not in index_b]
    missing_a = [f for f in b.files if stem(f) not in index_a]
    if missing_b or missing_a:
        lines = [f"{display_path(Path(path) / f)}: no file of that name in {display_path(partner)}"
                 for f in missing_b[:10]]
        lines += [f"{display_path(Path(partner) / f)}: no file of that name in {display_path(path)}"
                  for f in missing_a[:10]]
        more = len(missing_a) + len(missing_b) - len(lines)
        raise GankitError("paired folders must hold the same file names (extensions may differ):\n  "
                          + "\n  ".join(lines) + (f"\n  ... and {more} more" if more > 0 else "")
                          + "\nadd the partners, or remove the unpaired files")
    order = [index_b[stem(f)] for f in a.files]
    return PairedData(a.images, b.images[order], display_path(Path(path).name), names=a.files,
                      notes=a.summary().splitlines() + b.summary().splitlines())


# --------------------------------------------------------------------------- by name, for training

PAIRED_TASKS = ("edges2fashion", "day2night")
UNPAIRED_TASKS = ("fashion2emoji",)  # beside the A2B class pairs


def parse_class_pair(source: str) -> tuple[int, int] | None:
    """``sneaker2sandal`` -> (7, 5): two Fashion-MNIST class slugs joined by ``2`` (None if not)."""
    from gankit.data.fashion_mnist import CLASSES

    slugs = {class_slug(c): i for i, c in enumerate(CLASSES)}
    slugs.update({class_slug(c.split("/")[0]): i for i, c in enumerate(CLASSES) if "/" in c})  # t-shirt
    for cut in (i for i, ch in enumerate(source) if ch == "2"):
        a, b = source[:cut].lower(), source[cut + 1:].lower()
        if a in slugs and b in slugs:
            return slugs[a], slugs[b]
    return None


def class_pair_names() -> list[str]:
    """The Fashion-MNIST class slugs an ``A2B`` task may join."""
    from gankit.data.fashion_mnist import CLASSES

    return [class_slug(c) for c in CLASSES]


def _is_folder(source: str) -> bool:
    return os.sep in source or source.startswith(".") or Path(source).exists()


def _sized(images: Tensor, size: tuple[int, int] | None) -> Tensor:
    from gankit.data.fashion_mnist import resize_cover

    if images.shape[1] == 3 and images.stride(1) == 0:  # one channel shown as three: resize it once
        return _sized(images[:, :1], size).expand(-1, 3, -1, -1).contiguous()
    return images.contiguous() if size is None else resize_cover(images, size)


def load_translation(source: str, paired: bool, split: str = "train", size: tuple[int, int] | None = None,
                     channels: int | None = None, partner: str | None = None, root: str | None = None,
                     cache_dir: str | os.PathLike | None = None, items: int = 0) -> PairedData | UnpairedData:
    """The data ``source`` (``data.source``) names for a translator: a built-in task (``edges2fashion``,
    ``day2night``, or ``A2B`` of two Fashion-MNIST classes such as ``sneaker2sandal``), or folders.

    ``paired`` (pix2pix): a built-in paired task, a folder of side-by-side A|B images, or with
    ``partner`` two folders matching by name. Unpaired (CycleGAN): a class pair, or ``source`` and
    ``partner`` as the two domains. ``split`` "test" is Fashion-MNIST's test set for built-in tasks;
    folders have one split. ``size`` (H, W) resizes (default: 28 for built-ins, 64 for folders).
    ``items`` > 0 keeps a built-in task's first ``items`` (of each domain for a class pair)."""
    from gankit.data.folder import load_image_folder

    kind = "pix2pix" if paired else "cyclegan"
    if not source.strip():  # Path("") is this folder: never read it unasked
        raise GankitError(f"data.source is empty: give a {kind} task or the path of a folder of images")
    pair = parse_class_pair(source)
    if source in PAIRED_TASKS:
        if not paired:
            raise GankitError(f"data.source={source} is a paired task (pix2pix); for model.arch=cyclegan "
                              "name two Fashion-MNIST classes, e.g. data.source=sneaker2sandal, or give "
                              "data.source=A_DIR translate.partner=B_DIR")
        d = (edges2fashion if source == "edges2fashion" else day2night)(split, root, items)
        return PairedData(_sized(d.A, size), _sized(d.B, size), d.name, d.labels)
    if source in UNPAIRED_TASKS:
        if paired:
            raise GankitError("data.source=fashion2emoji is an unpaired task (photos and emoji in no "
                              "correspondence): train it with model.arch=dtn or cyclegan")
        from gankit.data.emoji import fashion2emoji

        return fashion2emoji(split, root, size, channels, cache_dir, items)
    if pair is not None:
        if paired:
            raise GankitError(f"data.source={source} is an unpaired task (two classes, cyclegan); "
                              f"model.arch=pix2pix needs pairs: data.source={' or '.join(PAIRED_TASKS)}, "
                              "or a folder")
        u = fmnist_classes(str(pair[0]), str(pair[1]), split, root)
        cut = slice(None, items or None)
        return UnpairedData(_sized(u.A[cut], size), _sized(u.B[cut], size), u.name, u.classes)
    if not _is_folder(source):
        raise GankitError(f"data.source {short_repr(source)} is neither a {kind} task ("
                          + (", ".join(PAIRED_TASKS) if paired else
                             "fashion2emoji, or A2B of two Fashion-MNIST classes: "
                             + ", ".join(class_pair_names()))
                          + ") nor an existing folder of images")
    if items:
        raise GankitError(f"translate.fmnist_items cuts the built-in Fashion-MNIST tasks; data.source="
                          f"{display_path(source)} is a folder: leave it out")
    size = size or (64, 64)
    if paired:
        return load_paired_folder(source, size, partner, cache_dir, channels)
    if partner is None:
        raise GankitError("an unpaired translator (model.arch=cyclegan or dtn) learns between two folders: give "
                          f"data.source={display_path(source)} "
                          "translate.partner=B_DIR (the other domain's images)")
    a = load_image_folder(source, size, channels, cache_dir=cache_dir)
    b = load_image_folder(partner, size, channels, cache_dir=cache_dir)
    names = (display_path(Path(source).name), display_path(Path(partner).name))
    return UnpairedData(a.images, b.images, names[0], names,
                        a.summary().splitlines() + b.summary().splitlines())
