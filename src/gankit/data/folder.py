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

import contextlib
import math
import os
import re
import stat
import warnings
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path, PurePath
from typing import IO, TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

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

_INPROCESS_MAX_FILES = 64
"""Folders with at most this many candidates are decoded in-process (a pool costs more)."""

_CHUNK_BYTES = 16 * 2**20
"""A worker's chunk of decoded images is at most about this large (more than 8 images' worth)."""

_COLOUR_MODES_VIA_RGB = frozenset({"CMYK", "YCbCr", "RGBX", "LAB", "HSV"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "PA", "LA", "La"})

# What one file turns into: the pixels plus "was the source gray", or a reason to skip it.
_Decoded = tuple[np.ndarray, bool] | str


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
# Decoding one file (runs in worker processes: no torch, never raises for a bad file)
# --------------------------------------------------------------------------------------------


def _short(exc: BaseException, limit: int = 100) -> str:
    """A one-line, human-sized version of an exception message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    # "image file is truncated (12 bytes not processed)" -> "image file is truncated"
    trimmed = re.sub(r"\s*\([^()]*\)\s*$", "", text)
    text = trimmed or text or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bomb_reason(pixels: str, max_pixels: int | None) -> str:
    return (
        f"too large: {pixels} pixels exceeds Pillow's decompression-bomb limit of {max_pixels} "
        "(raise PIL.Image.MAX_IMAGE_PIXELS if the file is trusted)"
    )


def _bomb_reason_from_exception(exc: BaseException, max_pixels: int | None) -> str:
    match = re.search(r"\((\d+) pixels\)", str(exc))
    return _bomb_reason(match.group(1) if match else "the image's", max_pixels)


def _over_white(base: Image.Image, alpha: Image.Image) -> Image.Image:
    """Composite ``base`` (L or RGB) over white using ``alpha`` (L) as coverage."""
    if alpha.getextrema() == (255, 255):
        return base
    background = Image.new(base.mode, base.size, 255 if base.mode == "L" else (255, 255, 255))
    background.paste(base, (0, 0), alpha)
    return background


def _sixteen_to_eight(img: Image.Image) -> Image.Image:
    """Scale a 16/32-bit integer image to 8 bit: value / 257, rounded, clipped to 0..255."""
    try:
        arr = np.asarray(img)
    except Exception:
        arr = np.asarray(img.convert("I"))
    arr = np.clip(arr.astype(np.int64), 0, 65535)
    return Image.fromarray(((arr + 128) // 257).astype(np.uint8))


def _float_to_eight(img: Image.Image) -> Image.Image:
    """Scale a float image to 8 bit: 0..1 if its maximum is at most 1, else 0..255; clipped."""
    arr = np.nan_to_num(np.asarray(img, dtype=np.float32), nan=0.0, posinf=255.0, neginf=0.0)
    if arr.size and float(arr.max()) <= 1.0:
        arr = arr * 255.0
    return Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))


def _to_8bit(img: Image.Image) -> tuple[Image.Image, bool] | str:
    """Convert a loaded image to 8-bit ``L`` or ``RGB``; returns (image, source_is_gray)."""
    mode = img.mode
    if mode == "L":
        return img, True
    if mode == "RGB":
        return img, False
    if mode == "1":
        return img.convert("L"), True
    if mode == "F":
        return _float_to_eight(img), True
    if mode == "I" or mode.startswith("I;16"):
        return _sixteen_to_eight(img), True
    if mode in ("LA", "La"):
        la = img.convert("LA") if mode == "La" else img
        return _over_white(la.getchannel("L"), la.getchannel("A")), True
    if mode in _ALPHA_MODES or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        return _over_white(rgba.convert("RGB"), rgba.getchannel("A")), False
    if mode == "P" or mode in _COLOUR_MODES_VIA_RGB:
        return img.convert("RGB"), False
    # Anything else Pillow can turn into RGB is taken as colour.
    return img.convert("RGB"), False


def _cover_crop(img: Image.Image, width: int, height: int) -> Image.Image:
    """Scale ``img`` to cover ``width`` x ``height`` (aspect kept) and crop the centre.

    Same crop box and resampling as ``ImageOps.fit(img, (width, height), Image.BICUBIC)``, plus
    ``reducing_gap`` so shrinking a large photo first takes a cheap integer reduction.
    """
    iw, ih = img.size
    if (iw, ih) == (width, height):
        return img
    out_ratio = width / height
    if iw / ih >= out_ratio:
        crop_w, crop_h = ih * out_ratio, float(ih)
    else:
        crop_w, crop_h = float(iw), iw / out_ratio
    left, top = (iw - crop_w) / 2, (ih - crop_h) / 2
    return img.resize(
        (width, height),
        Image.Resampling.BICUBIC,
        box=(left, top, left + crop_w, top + crop_h),
        reducing_gap=3.0,
    )


def _decode_open(
    img: Image.Image, size: tuple[int, int], channels: int | None, max_pixels: int | None
) -> _Decoded:
    height, width = size
    w0, h0 = img.size
    if max_pixels is not None and w0 * h0 > max_pixels:
        return _bomb_reason(f"{w0}x{h0}", max_pixels)

    if img.format in ("JPEG", "MPO"):
        # Let libjpeg decode at 1/2, 1/4 or 1/8 scale when the photo is much larger than needed;
        # a square request covers both orientations, the factor 2 leaves room for bicubic.
        side = 2 * max(height, width)
        with contextlib.suppress(Exception):
            img.draft(None, (side, side))
    try:
        img.load()
    except Image.DecompressionBombError as exc:
        return _bomb_reason_from_exception(exc, max_pixels)
    except MemoryError:
        return "too large (ran out of memory while decoding)"
    except Exception as exc:
        return f"truncated or corrupt ({_short(exc)})"

    try:
        upright = ImageOps.exif_transpose(img)
        if upright is not None:
            img = upright
    except Exception:
        pass  # a broken EXIF block is no reason to drop the pixels; keep them as stored

    try:
        converted = _to_8bit(img)
    except MemoryError:
        return "too large (ran out of memory while converting)"
    except Exception as exc:
        return f"unsupported image mode {img.mode} ({_short(exc)})"
    if isinstance(converted, str):
        return converted
    img8, source_gray = converted

    out = _cover_crop(img8, width, height)
    if channels == 1 and out.mode != "L":
        out = out.convert("L")
    arr = np.array(out, dtype=np.uint8, copy=True)
    expected = (height, width) if out.mode == "L" else (height, width, 3)
    if arr.shape != expected:  # pragma: no cover - defensive; Pillow guarantees this
        return f"cannot convert (decoded to shape {arr.shape}, expected {expected})"
    return arr, source_gray


def _decode_file(
    path: str, size: tuple[int, int], channels: int | None, max_pixels: int | None
) -> _Decoded:
    """Decode one file to ``(H, W)`` or ``(H, W, 3)`` uint8 plus a gray flag, or a skip reason."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot read ({(exc.strerror or _short(exc)).lower()})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "empty file (0 bytes)"

    return _open_and_decode(path, size, channels, max_pixels)


def _open_and_decode(source: str | IO[bytes], size: tuple[int, int], channels: int | None,
                     max_pixels: int | None) -> _Decoded:
    """Open an image (a path, or an upload's bytes) and decode it (``_decode_open``), Pillow's
    decompression-bomb warnings and every failure turned into a skip reason."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            img = Image.open(source)
        except UnidentifiedImageError:
            return "not an image (cannot identify image file)"
        except Image.DecompressionBombError as exc:
            return _bomb_reason_from_exception(exc, max_pixels)
        except OSError as exc:
            if not isinstance(source, str):  # no file to read: the bytes themselves are bad
                return f"truncated or corrupt ({_short(exc)})"
            return f"cannot read ({(exc.strerror or _short(exc)).lower()})"
        except Exception as exc:
            return f"truncated or corrupt ({_short(exc)})"
        try:
            with img:
                result = _decode_open(img, size, channels, max_pixels)
        except MemoryError:
            return "too large (ran out of memory while decoding)"
        except Exception as exc:
            return f"cannot decode ({_short(exc)})"
        if isinstance(result, str):
            return result
        for warning in caught:  # e.g. a later frame or tile claiming too many pixels
            if issubclass(warning.category, Image.DecompressionBombWarning):
                return _bomb_reason_from_exception(warning.message, max_pixels)  # type: ignore[arg-type]
    return result


def decode_image_bytes(data: bytes, size: tuple[int, int], channels: int | None) -> np.ndarray | str:
    """One image file's bytes (an upload) decoded as a folder's files are: (H, W) or (H, W, 3) uint8
    scaled to cover ``size`` and centre-cropped, or the reason it is refused (not an image, a
    decompression bomb, corrupt). Never raises for bad bytes."""
    import io

    if not data:
        return "empty file (0 bytes)"
    result = _open_and_decode(io.BytesIO(data), size, channels, Image.MAX_IMAGE_PIXELS)
    return result if isinstance(result, str) else result[0]


def _decode_chunk(
    paths: Sequence[str], size: tuple[int, int], channels: int | None, max_pixels: int | None
) -> list[_Decoded]:
    """Worker entry point: decode several files. Never raises for a bad file."""
    # A spawned worker starts with Pillow's default limit; use the caller's.
    if max_pixels != Image.MAX_IMAGE_PIXELS:
        Image.MAX_IMAGE_PIXELS = max_pixels
    return [_decode_file(p, size, channels, max_pixels) for p in paths]


def _default_workers() -> int:
    if hasattr(os, "process_cpu_count"):
        count = os.process_cpu_count()
    elif hasattr(os, "sched_getaffinity"):
        count = len(os.sched_getaffinity(0))
    else:
        count = os.cpu_count()
    return max(1, min(count or 1, 8))


def _decode_stream(
    paths: Sequence[str],
    size: tuple[int, int],
    channels: int | None,
    workers: int,
) -> Iterator[tuple[int, list[_Decoded]]]:
    """Decode every path, yielding ``(start, results)`` chunk by chunk in order: ``results[j]`` is
    path ``start + j``'s. At most a few chunks per worker are in flight, so memory stays bounded
    however large the folder (a consumer that writes each chunk away streams the whole decode)."""
    max_pixels = Image.MAX_IMAGE_PIXELS  # read now, so a patched or raised limit is honoured
    n = len(paths)
    if workers <= 1 or n <= _INPROCESS_MAX_FILES:
        for s in range(0, n, _INPROCESS_MAX_FILES):
            yield s, [_decode_file(p, size, channels, max_pixels) for p in paths[s:s + _INPROCESS_MAX_FILES]]
        return

    # ~8 chunks per worker balances load; 8..256 files (and at most ~16 MB decoded) per chunk
    # keeps the overhead and the memory in flight low.
    per_image = (channels or 3) * size[0] * size[1]
    chunk = max(8, min(256, _CHUNK_BYTES // per_image, math.ceil(n / (workers * 8))))
    starts = iter(range(0, n, chunk))
    resume = 0  # the first path not yet yielded
    pool: ProcessPoolExecutor | None = None
    try:
        pool = ProcessPoolExecutor(max_workers=min(workers, math.ceil(n / chunk)))
        pending: deque[tuple[int, Future[list[_Decoded]]]] = deque()

        def submit(start: int) -> None:
            assert pool is not None
            pending.append((start, pool.submit(_decode_chunk, list(paths[start:start + chunk]), size,
                                               channels, max_pixels)))

        for start in islice(starts, 4 * workers):
            submit(start)
        while pending:
            start, future = pending[0]
            results = future.result()
            pending.popleft()
            following = next(starts, None)
            if following is not None:
                submit(following)
            resume = start + chunk
            yield start, results
    except Exception as exc:  # broken pool, no semaphores in a sandbox, worker killed (OOM) ...
        warnings.warn(
            f"parallel image decoding failed ({type(exc).__name__}: {_short(exc)}); "
            "decoding the remaining files in this process",
            RuntimeWarning,
            stacklevel=3,
        )
        for start in range(resume, n, chunk):
            yield start, [_decode_file(p, size, channels, max_pixels) for p in paths[start:start + chunk]]
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


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
