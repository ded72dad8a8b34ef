"""Decoding image files for :mod:`gankit.data.folder`: one file to 8-bit pixels at the requested
size (every rule is listed in that module's docstring), and many files in worker processes, streamed
chunk by chunk. Runs in worker processes: no torch, and never raises for a bad file.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import stat
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from typing import IO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

__all__ = ["decode_image_bytes"]

_INPROCESS_MAX_FILES = 64
"""Folders with at most this many candidates are decoded in-process (a pool costs more)."""

_CHUNK_BYTES = 16 * 2**20
"""A worker's chunk of decoded images is at most about this large (more than 8 images' worth)."""

_COLOUR_MODES_VIA_RGB = frozenset({"CMYK", "YCbCr", "RGBX", "LAB", "HSV"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "PA", "LA", "La"})

# What one file turns into: the pixels plus "was the source gray", or a reason to skip it.
_Decoded = tuple[np.ndarray, bool] | str


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
