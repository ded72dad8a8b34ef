"""Load a folder of images into one ``uint8`` tensor, decoded once, in parallel, cached and memory-mapped.

:func:`load_image_folder` walks a folder recursively, decodes every file whose extension Pillow
knows, resizes it to one common size and stacks the result into an ``(N, C, H, W)`` ``uint8``
tensor. Files that cannot be used are never fatal on their own: each one is listed in
``FolderImages.skipped`` with a short reason, and :meth:`FolderImages.summary` prints them.

What happens to each kind of image:

* **Hidden files and folders** (names starting with ``.``) are not looked at. Files whose
  extension is not an image extension Pillow knows (``readme.txt``, ``.heic`` without a plugin)
  are counted in ``ignored`` and otherwise left alone. Symlinked folders are not followed.
* **Unreadable files** -- empty, not an image, truncated or corrupt, unreadable from disk -- are
  skipped with a reason. Truncated files are *not* patched up (``LOAD_TRUNCATED_IMAGES`` stays
  off): half a photo is a bad training example.
* **Decompression bombs**: an image whose header claims more than ``PIL.Image.MAX_IMAGE_PIXELS``
  pixels is skipped *before* its pixels are decoded. The limit is read when
  :func:`load_image_folder` is called, so raising or lowering it beforehand works.
* **EXIF orientation** is applied, so a photo taken with a rotated phone comes out upright.
* **Gray** images (modes ``1``, ``L``, ``LA``, ``I``, ``I;16*``, ``F``) stay gray. With
  ``channels=None`` the output has 1 channel if every kept image is gray, else 3 channels; gray
  images in a 3-channel output are replicated to R=G=B, colour images in a 1-channel output are
  converted with ITU-R 601 luma (as Pillow's ``convert("L")``). Palette images count as colour,
  even when the palette happens to be gray.
* **Alpha** (``RGBA``, ``LA``, ``PA``, palette transparency) is composited over a **white**
  background: alpha means "nothing here", and white matches the usual product and icon photos
  (a transparent PNG of a shoe becomes a shoe on white, not on black).
* **16-bit** images (``I;16``, ``I;16B``, ``I;16L``, ``I``) are scaled to 8 bit by dividing by 257
  (0..65535 -> 0..255) with rounding and clipping, rather than saturated at 255. 32-bit float
  (``F``) images are taken as 0..1 if their maximum is at most 1, else as 0..255, and clipped.
* **CMYK** and other colour spaces Pillow can convert (``YCbCr``, ``RGBX``) become RGB.
* **Multi-frame** files (animated GIF, multi-page TIFF) contribute their first frame.
* **Non-square** images (and any image whose aspect ratio differs from ``size``) are scaled so
  they *cover* the target size, keeping their aspect ratio, and the centre is cropped out
  (like ``ImageOps.fit`` with bicubic resampling). Small images are scaled up.

Decoding runs in ``workers`` processes (in-process for small folders or ``workers=1``). With
``cache_dir`` set, the decoded array is stored as ``<cache_dir>/folders/<key>.npy`` next to a
``<key>.json`` describing it; the key covers the folder's absolute path, the requested size and
channels, and every candidate file's relative path, byte size and modification time, so editing,
adding or removing an image triggers a fresh decode. The cache holds no pickles. The first decode
streams into the cache file (workers' chunks are written as they arrive, a few chunks in flight),
and a load maps it (:mod:`gankit.data.folder_cache`): a folder larger than memory loads and trains.
:func:`stream_image_folder` reads a folder a chunk at a time without any cache (``gankit eval``).

File names are bytes to the system: a name that is not UTF-8 (``b"\xff.png"``) is read like any
other (Python holds it as ``os.fsdecode`` does). Wherever a name is shown -- the summary, skipped
files, errors, class names taken from subfolders -- it goes through
:func:`gankit.errors.display_path`, so such a name reads ``\xff.png`` and a name holding a terminal
escape sequence cannot act on the terminal. ``files`` and ``skipped`` keep the names as they are.

Without a cache, the ``(N, C, H, W)`` buffer is checked against the machine's memory before
decoding: a folder that cannot fit at the requested size is refused by name instead of being
decoded until the system runs out. With one, the cache file's blocks are reserved first, so a disk
too small for it is a warning (and the in-memory path) rather than a crash.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from gankit.data.decode import _decode_stream, _default_workers, decode_image_bytes
from gankit.data.folder_cache import (
    CACHE_FORMAT,
    CacheWriter,
    cache_key,
    cache_read,
    cache_warning,
    open_writer,
)
from gankit.errors import GankitError, display_path, short_repr

if TYPE_CHECKING:
    import torch

__all__ = ["FolderImages", "FolderStream", "decode_image_bytes", "load_image_folder", "stream_image_folder"]


@dataclass
class FolderImages:
    """The images of one folder, decoded, resized and stacked.

    ``images`` is ``(N, C, H, W)`` ``uint8`` and contiguous; ``files[i]`` is the path of
    ``images[i]`` relative to the folder (POSIX separators, sorted). ``labels``/``classes`` are set
    only when every kept image lies in a first-level subfolder (``root/<class>/...``).
    """

    images: torch.Tensor
    files: list[str]
    skipped: list[tuple[str, str]]
    ignored: int
    labels: torch.Tensor | None
    classes: list[str] | None
    from_cache: bool
    root: str = ""

    def summary(self) -> str:
        """Multi-line summary for people: counts, shape, and every skipped file with its reason."""
        n, c, h, w = self.images.shape
        head = f"{n} images from {display_path(self.root)} ({c} channel{'' if c == 1 else 's'}, {h}x{w})"
        if self.from_cache:
            head += ", from cache"
        head += f"; {len(self.skipped)} skipped"
        if not self.skipped:
            return head
        lines = [head + ":"]
        lines += [f"  {display_path(path)}: {reason}" for path, reason in self.skipped]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# Walking the folder, the cache, assembly
# --------------------------------------------------------------------------------------------


def _scan(root: str) -> tuple[list[str], int, Counter[str]]:
    """Candidate files (sorted relative POSIX paths), ignored count, ignored extensions."""
    extensions = {ext.lower() for ext in Image.registered_extensions()}
    candidates: list[str] = []
    ignored = 0
    ignored_exts: Counter[str] = Counter()

    def onerror(exc: OSError) -> None:
        warnings.warn(f"cannot list {display_path(exc.filename)}: {exc.strerror}; skipping it", stacklevel=4)

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=onerror):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in extensions:
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                candidates.append(PurePath(rel).as_posix())
            else:
                ignored += 1
                ignored_exts[ext or "(no extension)"] += 1
    candidates.sort()
    return candidates, ignored, ignored_exts


def _labels_for(files: Sequence[str]) -> tuple[list[int] | None, list[str] | None]:
    """Class = first-level subfolder, when every file lies in one; else (None, None). A class is
    named as it is shown (``display_path``: a folder name that is not UTF-8 or holds control
    characters is escaped), since its name is only ever a label."""
    tops = []
    for rel in files:
        parts = rel.split("/")
        if len(parts) < 2:
            return None, None
        tops.append(parts[0])
    if not tops:
        return None, None
    classes = sorted(set(tops))
    index = {name: i for i, name in enumerate(classes)}
    return [index[t] for t in tops], [display_path(c) for c in classes]


def _format_skipped(skipped: Sequence[tuple[str, str]], limit: int = 20) -> str:
    lines = [f"  {display_path(path)}: {reason}" for path, reason in skipped[:limit]]
    if len(skipped) > limit:
        lines.append(f"  ... and {len(skipped) - limit} more")
    return "\n".join(lines)


def _check_args(
    size: tuple[int, int], channels: int | None, workers: int | None
) -> tuple[tuple[int, int], int]:
    try:
        height, width = (int(v) for v in size)
        ok = height > 0 and width > 0 and (height, width) == tuple(size)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise GankitError(f"image size must be two positive integers (height, width), got {short_repr(size)}")
    if channels not in (None, 1, 3):
        raise GankitError(f"channels must be 1, 3 or None (automatic), got {short_repr(channels)}")
    if workers is None:
        workers = _default_workers()
    elif not isinstance(workers, int) or workers < 1:
        raise GankitError(f"workers must be a positive integer, got {short_repr(workers)}")
    return (height, width), workers


def _open_folder(root: str | os.PathLike) -> tuple[str, list[str], int]:
    """The folder's absolute path, its candidate files (sorted) and its count of ignored files;
    a missing folder, a file, or a folder without image files is refused by name."""
    given = os.fspath(root)
    if isinstance(given, bytes):
        given = os.fsdecode(given)
    if not given.strip():
        raise GankitError("the data folder's path is empty; point data.source at a folder of images "
                          "(`.` for this one)")
    root_str = os.path.abspath(os.path.expanduser(given))
    shown = display_path(root_str)
    if not os.path.exists(root_str):
        raise GankitError(
            f"data folder {shown} does not exist; check the path, or point data.source at a folder "
            "of images"
        )
    if not os.path.isdir(root_str):
        raise GankitError(
            f"data path {shown} is a file, not a folder; point data.source at the folder that "
            "holds your images"
        )
    candidates, ignored, ignored_exts = _scan(root_str)
    if not candidates:
        common = ".png, .jpg, .jpeg, .webp, .bmp, .gif, .tif, .tiff"
        other = ""
        if ignored:
            top = ", ".join(ext for ext, _ in ignored_exts.most_common(5))
            other = f"; found {ignored} other file(s) ({top}) that Pillow cannot read as images"
        raise GankitError(
            f"{shown} contains no image files (looked for {common} and the other extensions "
            f"Pillow knows, recursively, ignoring hidden files{other}); point data.source at a folder "
            "of images"
        )
    return root_str, candidates, ignored


def _none_usable(n: int, root: str, skipped: Sequence[tuple[str, str]]) -> GankitError:
    return GankitError(
        f"none of the {n} image file(s) in {display_path(root)} could be used:\n"
        f"{_format_skipped(skipped)}\n"
        "fix or remove these files, or point data.source at another folder"
    )


def load_image_folder(
    root: str | os.PathLike,
    size: tuple[int, int],
    channels: int | None = None,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
) -> FolderImages:
    """Decode every image under ``root`` into one ``(N, C, H, W)`` uint8 tensor.

    With ``cache_dir`` the tensor is memory-mapped from the cache (see
    :mod:`gankit.data.folder_cache`): a first decode streams into the cache file as the workers
    finish their chunks, so neither decoding nor training holds the folder in memory. Without it
    (or where the cache cannot be written) the images are decoded into memory, which must hold them.

    Args:
        root: folder to walk recursively (hidden files/folders skipped, symlinked folders not
            followed).
        size: output ``(height, width)``; images are scaled to cover it and centre-cropped.
        channels: 1 or 3, or None for 1 when every usable image is gray, else 3.
        cache_dir: if set, the decoded array is cached under ``<cache_dir>/folders/`` and reused
            while no image file changed; an unwritable cache only warns.
        workers: decoding processes; default ``min(cpu_count, 8)``. Folders of at most 64 files,
            or ``workers=1``, are decoded in this process.

    Returns:
        A :class:`FolderImages`; files that could not be used are listed in ``skipped``.

    Raises:
        GankitError: ``root`` is missing or not a folder, holds no image files, or none of its
            image files could be used.
    """
    import torch

    (height, width), workers = _check_args(size, channels, workers)
    size = (height, width)
    root_str, candidates, ignored = _open_folder(root)

    cache_folder = key = None
    if cache_dir is not None:
        cache_folder = Path(os.path.expanduser(os.fspath(cache_dir))) / "folders"
        key = cache_key(root_str, size, channels, candidates, ignored)
        hit = cache_read(cache_folder, key, size)
        if hit is not None:
            array, meta = hit
            labels, classes = meta["labels"], meta["classes"]
            return FolderImages(
                images=torch.from_numpy(array),
                files=list(meta["files"]),
                skipped=meta["skipped"],
                ignored=int(meta["ignored"]),
                labels=None if labels is None else torch.tensor(labels, dtype=torch.int64),
                classes=None if classes is None else [display_path(str(c)) for c in classes],
                from_cache=True,
                root=root_str,
            )

    # Decode straight into a (n, C, H, W) buffer -- the cache's mapped file, else memory; with
    # channels=None it has 3 channels and gray images are replicated, then channel 0 is kept if
    # every kept image turned out gray.
    n = len(candidates)
    shape = (n, channels or 3, height, width)
    writer = None if cache_folder is None or key is None else open_writer(cache_folder, key, shape)
    try:
        array, files, skipped, labels, classes = _decode_into(
            writer, root_str, candidates, ignored, size, channels, workers, cache_folder)
    except BaseException:
        if writer is not None:
            writer.discard()  # a failed or interrupted decode leaves nothing a later load accepts
        raise
    return FolderImages(
        images=torch.from_numpy(array),
        files=files,
        skipped=skipped,
        ignored=ignored,
        labels=None if labels is None else torch.tensor(labels, dtype=torch.int64),
        classes=classes,
        from_cache=False,
        root=root_str,
    )


def _decode_into(writer: CacheWriter | None, root: str, candidates: list[str], ignored: int,
                 size: tuple[int, int], channels: int | None, workers: int, cache_folder: Path | None
                 ) -> tuple[np.ndarray, list[str], list[tuple[str, str]], list[int] | None, list[str] | None]:
    """Decode ``candidates`` into the writer's mapped file (else a buffer in memory), then keep the
    usable rows: (array, files, skipped, labels, classes). ``cache_folder``: where the cache was
    to be (named when the images fit neither there nor in memory)."""
    from gankit.data.base import gib, physical_memory

    n, (height, width) = len(candidates), size
    if writer is None:
        need, memory = n * (channels or 3) * height * width, physical_memory()
        if memory is not None and need > memory:
            cache = "" if cache_folder is None else \
                f" and its cache in {display_path(cache_folder)} could not be written (free disk there, or set data.cache_dir)"
            raise GankitError(
                f"{n} images at {height}x{width} need {gib(need)} decoded, more than this machine's "
                f"{gib(memory)} of memory{cache}; lower data.image_size or give a folder of fewer images"
            )
        buffer: np.ndarray = np.empty((n, channels or 3, height, width), dtype=np.uint8)
    else:
        buffer = writer.array
    kept = np.zeros(n, dtype=bool)
    gray = np.zeros(n, dtype=bool)
    reasons: dict[int, str] = {}
    abs_paths = [os.path.join(root, *rel.split("/")) for rel in candidates]
    for start, results in _decode_stream(abs_paths, size, channels, workers):
        for i, result in enumerate(results, start):
            if isinstance(result, str):
                reasons[i] = result
                continue
            arr, source_gray = result
            buffer[i] = arr if arr.ndim == 2 else arr.transpose(2, 0, 1)
            kept[i] = True
            gray[i] = source_gray

    skipped = [(candidates[i], reasons[i]) for i in sorted(reasons)]
    kept_idx = np.flatnonzero(kept)
    if kept_idx.size == 0:
        raise _none_usable(n, root, skipped)
    out_channels = 1 if channels is None and bool(gray[kept_idx].all()) else channels or 3
    files = [candidates[i] for i in kept_idx]
    labels, classes = _labels_for(files)
    if writer is not None:
        meta = {
            "format": CACHE_FORMAT,
            "root": root,
            "size": [height, width],
            "channels": out_channels,
            "files": files,
            "skipped": [list(s) for s in skipped],
            "ignored": ignored,
            "labels": labels,
            "classes": classes,
        }
        try:
            return writer.finish(kept_idx, out_channels, meta), files, skipped, labels, classes
        except Exception as exc:  # the cache could not be published: keep the images in memory
            cache_warning(writer.folder, exc)
            buffer = np.array(buffer)
            writer.discard()
    if out_channels == 1 and buffer.shape[1] == 3:
        array = np.ascontiguousarray(buffer[kept_idx, :1])
    else:
        if kept_idx.size < n:  # compact in place (destination never overtakes source)
            for dst, src in enumerate(kept_idx):
                if dst != src:
                    buffer[dst] = buffer[src]
        array = buffer[: kept_idx.size]
    return array, files, skipped, labels, classes


@dataclass
class FolderStream:
    """A folder's images decoded chunk by chunk and never held all at once (``gankit eval
    --real/--fake``): :meth:`batches` yields them; ``kept`` and ``skipped`` fill as it goes."""

    root: str
    files: list[str]  # the candidate files, in the order they are read
    ignored: int
    key: str  # the folder cache's key: changes when any file changes
    size: tuple[int, int]
    channels: int
    workers: int
    kept: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def batches(self) -> Iterator[np.ndarray]:
        """The usable images as ``(b, C, H, W)`` uint8 arrays, a worker's chunk at a time."""
        self.kept, self.skipped = [], []
        paths = [os.path.join(self.root, *rel.split("/")) for rel in self.files]
        for start, results in _decode_stream(paths, self.size, self.channels, self.workers):
            chunk = []
            for rel, result in zip(self.files[start:start + len(results)], results, strict=True):
                if isinstance(result, str):
                    self.skipped.append((rel, result))
                    continue
                arr = result[0]
                chunk.append(arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1))
                self.kept.append(rel)
            if chunk:
                yield np.stack(chunk)
        if not self.kept:
            raise _none_usable(len(self.files), self.root, self.skipped)


def stream_image_folder(root: str | os.PathLike, size: tuple[int, int], channels: int,
                        workers: int | None = None, seed: int | None = 0) -> FolderStream:
    """A folder read as :func:`load_image_folder` reads it, but streamed: decoded a chunk at a
    time in ``workers`` processes, in an order shuffled by ``seed`` (None: sorted), so the first
    images read are a random sample of the folder. ``channels`` is 1 or 3."""
    size, workers = _check_args(size, channels, workers)
    if channels is None:
        raise GankitError("a streamed folder needs channels 1 or 3")
    root_str, candidates, ignored = _open_folder(root)
    key = cache_key(root_str, size, channels, candidates, ignored)
    if seed is not None:
        order = np.random.default_rng(seed).permutation(len(candidates))
        candidates = [candidates[i] for i in order]
    return FolderStream(root_str, candidates, ignored, key, size, channels, workers)
