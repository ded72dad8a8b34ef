"""Videos for next-frame prediction (Mathieu, Couprie & LeCun 2016): built-in moving Fashion-MNIST
and a user's own clips.

Every video set ends as one uint8 tensor of frames ``frames`` (F, C, H, W), the sequences laid end
to end (``starts``, ``lengths``): a clip of L frames of sequence s from offset o is frames
``starts[s] + o .. + L``, gathered a batch at a time, never decoded per item.

Built in (``--data``), generated deterministically from a seed out of Fashion-MNIST (Xiao, Rasul &
Vollgraf 2017) in the layout of the video-prediction literature (Srivastava et al. 2015's Moving
MNIST, as OpenSTL's MFMNIST, Tan et al. 2023, builds it):

- ``mfmnist``: 64x64, two 28x28 items bouncing, 20 frames (10 in, 10 out); each item starts at a
  uniform place with a uniform direction, moves 0.1 of the free range a frame and bounces off the
  edges (OpenSTL's ``get_random_trajectory``); overlapping items keep the brighter pixel;
- ``mfmnist-small``: 32x32, one item scaled to 16x16, 5 frames (4 in, 1 out), for tests.

Training sequences draw their items from Fashion-MNIST's training images, test sequences from its
test images. Sequence i of a split depends only on (seed, split, i), so the first n test sequences
are the same whatever n; the frames are cached as uint8 under the cache folder, keyed by every
parameter and the source files' sizes and times.

A user's videos (``--data DIR``): DIR holds one entry per sequence, a folder of frames (image files,
in name order) or a video file (.gif and .webp through Pillow, .mp4 .avi .mov .mkv .webm through
imageio, ``pip install 'gankit[video]'``). Frames of one sequence must share a size; each sequence
is then scaled to cover ``data.image_size`` (64) and centre-cropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from gankit.errors import GankitError, display_path, short_repr
from gankit.registry import Registry

CACHE_FORMAT = 1
STEP_LENGTH = 0.1  # of the free range per frame (OpenSTL, Srivastava et al. 2015)
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")
PILLOW_VIDEOS = (".gif", ".webp")
IMAGEIO_VIDEOS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".mpg", ".mpeg")
SPLIT_IDS = {"train": 0, "test": 1}


@dataclass
class VideoData:
    """Sequences of uint8 frames laid end to end: ``frames`` (F, C, H, W); sequence s is
    ``frames[starts[s]:starts[s] + lengths[s]]``. ``context`` and ``horizon``: the data's
    layout (frames in, frames out) where it has one."""

    frames: Tensor
    starts: Tensor
    lengths: Tensor
    name: str
    context: int = 4
    horizon: int = 1
    names: list[str] = field(default_factory=list)  # a folder's sequences, by path
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        c, h, w = self.frames.shape[1:]
        return int(c), int(h), int(w)

    def clip_starts(self, length: int) -> Tensor:
        """The first frame of every clip of ``length`` frames inside a sequence, (K,) int64:
        sequence by sequence, offset by offset."""
        out = [self.starts[s] + torch.arange(int(self.lengths[s]) - length + 1)
               for s in range(len(self)) if int(self.lengths[s]) >= length]
        return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)

    def clips(self, first: Tensor, length: int) -> Tensor:
        """Clips (K, length, C, H, W) uint8 starting at frames ``first`` (K,)."""
        index = first[:, None] + torch.arange(length, device=first.device)
        return self.frames[index.flatten()].view(len(first), length, *self.frames.shape[1:])

    def sequence(self, s: int) -> Tensor:
        return self.frames[int(self.starts[s]):int(self.starts[s]) + int(self.lengths[s])]


# --------------------------------------------------------------------------- moving Fashion-MNIST


@dataclass(frozen=True)
class MovingSpec:
    """A moving Fashion-MNIST layout: canvas side, items per sequence, item side, frames in and out,
    sequences in the training and test splits."""

    size: int
    items: int
    item_size: int
    context: int
    horizon: int
    train_sequences: int
    test_sequences: int

    @property
    def length(self) -> int:
        return self.context + self.horizon


VIDEOS: Registry[MovingSpec] = Registry("video set")
VIDEOS.register("mfmnist", MovingSpec(64, 2, 28, 10, 10, 10_000, 10_000),
                "moving Fashion-MNIST: 64x64, two items bouncing, 10 frames in, 10 out (OpenSTL's MFMNIST)")
VIDEOS.register("mfmnist-small", MovingSpec(32, 1, 16, 4, 1, 2_000, 500),
                "moving Fashion-MNIST, small: 32x32, one 16x16 item, 4 frames in, 1 out (for tests)")


def trajectories(rngs: list[np.random.Generator], items: int, length: int) -> np.ndarray:
    """Top-left corners of ``items`` items over ``length`` frames, as fractions of the free range
    in [0, 1]: (N, items, length, 2) as (y, x). One draw of start (y, x) and direction theta per
    item from its sequence's generator, then OpenSTL's loop: a step of ``STEP_LENGTH`` along the
    velocity, and at an edge the position is clamped and that component of the velocity flips."""
    draws = np.stack([r.random((items, 3)) for r in rngs])  # (N, items, 3): y, x, theta / 2 pi
    pos = draws[..., :2].copy()
    theta = draws[..., 2] * 2 * np.pi
    vel = np.stack([np.sin(theta), np.cos(theta)], -1)  # (v_y, v_x)
    out = np.empty((len(rngs), items, length, 2))
    for t in range(length):
        pos += vel * STEP_LENGTH
        low, high = pos <= 0, pos >= 1
        vel = np.where(low | high, -vel, vel)
        pos = pos.clip(0, 1)
        out[:, :, t] = pos
    return out


def moving_fashion_mnist(spec: MovingSpec, split: str = "train", n: int | None = None, seed: int = 0,
                         root: str | None = None, cache_dir: str | os.PathLike | None = None,
                         name: str = "mfmnist") -> VideoData:
    """``n`` sequences (the split's count if None) of ``spec`` drawn from ``seed``; sequence i
    depends only on (seed, split, i)."""
    from gankit.data.fashion_mnist import find_root, load_arrays, resize_cover

    if split not in SPLIT_IDS:
        raise GankitError(f"unknown split {short_repr(split)}; one of {', '.join(SPLIT_IDS)}")
    n = n if n is not None else (spec.train_sequences if split == "train" else spec.test_sequences)
    if n < 1:
        raise GankitError(f"{name} needs at least one sequence, not {n}")
    folder = find_root(root)
    stamp = [f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(folder.glob("*idx3*"))
             if p.is_file()]
    key = hashlib.sha256(json.dumps([CACHE_FORMAT, spec.__dict__, split, n, seed, stamp]).encode()
                         ).hexdigest()[:32]
    cache = Path(cache_dir) / "video" / f"{key}.npy" if cache_dir is not None else None
    shape = (n * spec.length, 1, spec.size, spec.size)
    frames = _cache_read(cache, shape) if cache is not None else None
    hit = frames is not None
    if frames is None:
        images, _ = load_arrays(split, root)
        if spec.item_size != images.shape[-1]:
            images = resize_cover(images, (spec.item_size, spec.item_size))
        frames = compose(images[:, 0], spec, split, n, seed)
        if cache is not None:
            _cache_write(cache, frames)
    starts = torch.arange(n) * spec.length
    note = (f"{name} ({split}): {n} sequences of {spec.length} {spec.size}x{spec.size} frames, "
            f"{spec.items} item(s), seed {seed}" + (", from cache" if hit else ""))
    return VideoData(frames, starts, torch.full((n,), spec.length), name, spec.context, spec.horizon,
                     notes=[note])


def compose(items: Tensor, spec: MovingSpec, split: str, n: int, seed: int) -> Tensor:
    """The frames (n * length, 1, size, size) uint8 of ``n`` sequences whose items come from
    ``items`` (M, s, s) uint8."""
    rngs = [np.random.default_rng([seed, SPLIT_IDS[split], i]) for i in range(n)]
    which = torch.from_numpy(np.stack([r.integers(0, len(items), spec.items) for r in rngs]))  # (n, items)
    free = spec.size - spec.item_size
    corner = torch.from_numpy((trajectories(rngs, spec.items, spec.length) * free).astype(np.int64))
    s, T = spec.item_size, spec.length
    canvas = torch.zeros(n, T, spec.size, spec.size, dtype=torch.uint8)
    grid = torch.arange(s)
    seq = torch.arange(n)[:, None, None]
    for k in range(spec.items):
        patch = items[which[:, k]]  # (n, s, s)
        for t in range(T):
            rows = (corner[:, k, t, 0][:, None] + grid)[:, :, None]  # (n, s, 1)
            cols = (corner[:, k, t, 1][:, None] + grid)[:, None, :]  # (n, 1, s)
            view = canvas[:, t]
            view[seq, rows, cols] = torch.maximum(view[seq, rows, cols], patch)
    return canvas.view(n * T, 1, spec.size, spec.size)


def _cache_read(path: Path, shape: tuple[int, ...]) -> Tensor | None:
    try:
        array = np.load(path, allow_pickle=False)
        if array.dtype != np.uint8 or array.shape != shape:
            return None
        return torch.from_numpy(np.ascontiguousarray(array))
    except Exception:  # missing, unreadable or damaged: generated again
        return None


def _cache_write(path: Path, frames: Tensor) -> None:
    from gankit.fsutil import atomic_write

    with contextlib.suppress(OSError):  # an unwritable cache: generated again next time
        atomic_write(path, lambda f: np.save(f, frames.numpy(), allow_pickle=False))


# --------------------------------------------------------------------------- a user's videos


def _frames_of_folder(folder: Path, channels: int) -> list[np.ndarray]:
    from PIL import Image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    out: list[np.ndarray] = []
    for p in files:
        try:
            with Image.open(p) as im:
                out.append(np.asarray(im.convert("L" if channels == 1 else "RGB")))
        except (OSError, ValueError) as e:
            raise GankitError(f"{display_path(p)}: cannot read this frame ({e})") from None
        if out[-1].shape != out[0].shape:
            raise GankitError(f"{display_path(p)}: a frame of {out[-1].shape[1]}x{out[-1].shape[0]}, but "
                              f"{display_path(files[0])} is {out[0].shape[1]}x{out[0].shape[0]}; the frames "
                              "of one sequence must share a size")
    return out


def _frames_of_video(path: Path, channels: int) -> list[np.ndarray]:
    mode = "L" if channels == 1 else "RGB"
    if path.suffix.lower() in PILLOW_VIDEOS:
        from PIL import Image, ImageSequence

        try:
            with Image.open(path) as im:
                return [np.asarray(f.convert(mode)) for f in ImageSequence.Iterator(im)]
        except (OSError, ValueError, EOFError) as e:
            raise GankitError(f"{display_path(path)}: cannot decode this video ({e})") from None
    try:
        import imageio.v3 as iio
    except ImportError:
        raise GankitError(f"{display_path(path)}: decoding {path.suffix} videos needs imageio and PyAV: "
                          "pip install 'gankit[video]'") from None
    try:
        frames = [np.asarray(f) for f in iio.imiter(path)]
    except Exception as e:  # imageio's plugins raise many kinds for a damaged or unknown file
        raise GankitError(f"{display_path(path)}: cannot decode this video ({type(e).__name__}: {e})") from None
    from PIL import Image

    return [np.asarray(Image.fromarray(f).convert(mode)) for f in frames]


def load_video_folder(source: str | os.PathLike, size: tuple[int, int] = (64, 64), channels: int | None = None,
                      min_length: int = 2, context: int = 4, horizon: int = 1) -> VideoData:
    """The sequences of folder ``source`` (see the module docstring): a sequence shorter than
    ``min_length`` frames, frames of different sizes or an unreadable video stop the load with a
    one-line message naming the file."""
    from gankit.data.fashion_mnist import resize_cover

    root = Path(source)
    if not root.is_dir():
        raise GankitError(f"{display_path(root)} is not a folder of videos (a folder of frame folders or "
                          "video files)")
    entries = sorted(p for p in root.iterdir() if p.is_dir() or p.suffix.lower() in PILLOW_VIDEOS + IMAGEIO_VIDEOS)
    if not entries:
        raise GankitError(f"{display_path(root)} holds no sequences: give one folder of frames or one video "
                          f"file ({', '.join(PILLOW_VIDEOS + IMAGEIO_VIDEOS)}) per sequence")
    c = channels or 3
    seqs, names = [], []
    for p in entries:
        frames = _frames_of_folder(p, c) if p.is_dir() else _frames_of_video(p, c)
        if len(frames) < min_length:
            raise GankitError(f"{display_path(p)}: {len(frames)} frame(s), shorter than the {min_length} needed "
                              f"(the context and one frame to predict)")
        x = torch.from_numpy(np.stack(frames))
        x = x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)
        seqs.append(resize_cover(x.contiguous(), size))
        names.append(display_path(p))
    if channels is None and all(bool((s[:, 0] == s[:, 1]).all() and (s[:, 1] == s[:, 2]).all()) for s in seqs):
        seqs = [s[:, :1].contiguous() for s in seqs]  # all gray: one channel
    lengths = torch.tensor([len(s) for s in seqs])
    starts = torch.cumsum(lengths, 0) - lengths
    note = f"{display_path(root)}: {len(seqs)} sequences, {int(lengths.sum())} frames of {size[0]}x{size[1]}"
    return VideoData(torch.cat(seqs), starts, lengths, display_path(root.name or str(root)), context, horizon,
                     names, [note])


def read_sequence(path: str | os.PathLike, size: tuple[int, int], channels: int) -> Tensor:
    """One sequence (a folder of frames or a video file) as uint8 (T, C, H, W) at ``size``."""
    from gankit.data.fashion_mnist import resize_cover

    p = Path(path)
    if not p.exists():
        raise GankitError(f"{display_path(p)}: no such folder of frames or video file")
    frames = _frames_of_folder(p, channels) if p.is_dir() else _frames_of_video(p, channels)
    if not frames:
        raise GankitError(f"{display_path(p)}: no frames in it")
    x = torch.from_numpy(np.stack(frames))
    x = x[:, None] if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return resize_cover(x.contiguous(), size)


def is_video_source(source: str) -> bool:
    return source in VIDEOS


def load_video(source: str, split: str = "train", size: tuple[int, int] | None = None,
               channels: int | None = None, root: str | None = None, cache_dir: str | os.PathLike | None = None,
               sequences: int | None = None, seed: int = 0, min_length: int = 2,
               context: int = 4, horizon: int = 1) -> VideoData:
    """The videos ``source`` (``data.source``) names: a built-in set (its ``split``; ``sequences``
    > 0: the first of them) or a folder (one split)."""
    if source in VIDEOS:
        spec = VIDEOS.get(source)
        if size not in (None, (spec.size, spec.size)):
            raise GankitError(f"data.source={source} is {spec.size}x{spec.size}; leave data.image_size out")
        if channels not in (None, 1):
            raise GankitError(f"data.source={source} is gray; leave data.channels out (or 1)")
        return moving_fashion_mnist(spec, split, sequences or None, seed, root, cache_dir, source)
    if not (os.sep in source or source.startswith(".") or Path(source).exists()):
        raise GankitError(f"data.source {short_repr(source)} is neither a video set ({', '.join(VIDEOS.names())}) "
                          "nor a folder of videos")
    return load_video_folder(source, size or (64, 64), channels, min_length, context, horizon)


__all__ = ["VIDEOS", "MovingSpec", "VideoData", "compose", "is_video_source", "load_video", "load_video_folder",
           "moving_fashion_mnist", "read_sequence", "trajectories"]
