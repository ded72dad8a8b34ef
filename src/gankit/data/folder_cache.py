"""The decoded-folder cache: one ``.npy`` per (folder, size, channels, files), memory-mapped.

A folder's decoded ``(N, C, H, W)`` ``uint8`` images are written *as they are decoded* into a
preallocated ``.npy`` on disk (:class:`CacheWriter`): a hidden temporary beside its final name
(``.<key>.npy.<pid>.XXXX.tmp``, the naming of :mod:`gankit.fsutil`), its blocks reserved up front
(``posix_fallocate``: a full disk is an ``OSError`` now, not a ``SIGBUS`` mid-decode), renamed over
``<key>.npy`` only once every image is in, and described by ``<key>.json`` written last. A decode
that fails or is killed therefore leaves no file that a later load accepts; a killed writer's
temporary is removed by the next writer of the same key (``clean_stale_temps``).

Reading maps the file (:func:`cache_read`, ``np.load(mmap_mode="c")``): no image is read until a
batch asks for it, the page cache holds what is in use, and a folder larger than memory trains.
Copy-on-write keeps the array writable for ``torch.from_numpy`` without ever changing the file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from gankit.errors import display_path
from gankit.fsutil import atomic_write, clean_stale_temps, fsync_dir, temp_prefix

CACHE_FORMAT = "gankit-folder-cache-v1"
"""Part of the cache key; bump it whenever decoding changes what an image turns into."""

_COPY_BYTES = 64 * 2**20
"""Rows are copied between mapped files in slabs of about this many bytes (bounded memory)."""


def cache_key(
    root: str,
    size: tuple[int, int],
    channels: int | None,
    candidates: Sequence[str],
    ignored: int,
) -> str:
    """The entry's name: a hash of the folder's path, the request, and every candidate file's
    relative path, byte size and modification time (editing, adding or removing a file changes it)."""
    digest = hashlib.sha256()
    head = {
        "format": CACHE_FORMAT,
        "root": root,
        "size": list(size),
        "channels": channels,
        "ignored": ignored,  # keeps the stored count honest
        "max_pixels": Image.MAX_IMAGE_PIXELS,  # decides what is skipped as a bomb
    }
    digest.update(json.dumps(head, sort_keys=True).encode())
    for rel in candidates:
        try:
            st = os.stat(os.path.join(root, rel))
            sig = (st.st_size, st.st_mtime_ns)
        except OSError:
            sig = (-1, -1)
        # surrogateescape: a name that is not UTF-8 hashes as its bytes
        digest.update(f"\n{rel}\0{sig[0]}\0{sig[1]}".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def cache_read(folder: Path, key: str, size: tuple[int, int]) -> tuple[np.ndarray, dict] | None:
    """A valid entry as a memory-mapped (copy-on-write) array and its metadata, or None (missing,
    unreadable, corrupt or inconsistent)."""
    meta_path, array_path = folder / f"{key}.json", folder / f"{key}.npy"
    try:
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        if not isinstance(meta, dict) or meta.get("format") != CACHE_FORMAT:
            return None
        files, c = meta["files"], meta["channels"]
        if not isinstance(files, list) or c not in (1, 3):
            return None
        array = np.load(array_path, mmap_mode="c", allow_pickle=False)
        if array.dtype != np.uint8 or array.shape != (len(files), c, *size) or not array.flags.c_contiguous:
            return None
        skipped = [(str(p), str(r)) for p, r in meta["skipped"]]
        labels, classes = meta["labels"], meta["classes"]
        if (labels is None) != (classes is None):
            return None
        if labels is not None and len(labels) != len(files):
            return None
        meta["skipped"] = skipped
        return array, meta
    except Exception:
        return None


def disk_free(folder: Path) -> int | None:
    """Bytes free for this user on ``folder``'s file system, or None where it cannot be told."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _new_mapped(folder: Path, name: str, shape: tuple[int, ...]) -> tuple[Path, np.memmap]:
    """A hidden temporary ``.npy`` of ``shape`` uint8 for ``name``, its blocks reserved, mapped."""
    tmp = folder / f"{temp_prefix(name)}{secrets.token_hex(4)}.tmp"
    array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    try:
        if hasattr(os, "posix_fallocate") and array.nbytes:
            with open(tmp, "r+b") as f:
                os.posix_fallocate(f.fileno(), 0, os.fstat(f.fileno()).st_size)
    except BaseException:
        del array
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp, array


class CacheWriter:
    """One entry being written: ``array`` is the mapped ``(n, C, H, W)`` temporary that decoding
    fills row by row; :meth:`finish` keeps the decoded rows and publishes the entry, :meth:`discard`
    removes the temporary."""

    def __init__(self, folder: Path, key: str, shape: tuple[int, int, int, int]) -> None:
        from gankit.data.base import gib

        folder.mkdir(parents=True, exist_ok=True)
        clean_stale_temps(folder, f"{key}.npy")  # a killed writer's leftover of this entry
        need, free = int(np.prod(shape)), disk_free(folder)
        if free is not None and need > free:
            raise OSError(errno.ENOSPC, f"{gib(need)} needed, {gib(free)} free on its disk")
        self.folder, self.key = folder, key
        self._paths: list[Path] = []
        tmp, self.array = _new_mapped(folder, f"{key}.npy", shape)
        self._paths.append(tmp)

    def finish(self, rows: np.ndarray, channels: int, meta: dict) -> np.ndarray:
        """Publish the rows ``rows`` (kept images, ascending) with their first ``channels``
        channels as ``<key>.npy`` (renamed into place), then ``<key>.json``; return the published
        array, memory-mapped. Only the rows kept are copied, and only when some were not."""
        src = self.array
        n, c, h, w = src.shape
        tmp = self._paths[-1]
        if rows.size != n or channels != c:  # skipped files or a gray set: copy the kept rows over
            tmp, out = _new_mapped(self.folder, f"{self.key}.npy", (rows.size, channels, h, w))
            self._paths.append(tmp)
            step = max(1, _COPY_BYTES // (channels * h * w))
            for i in range(0, rows.size, step):
                out[i:i + step] = src[rows[i:i + step], :channels]
            src = out
        src.flush()
        del src, self.array
        with open(tmp, "r+b") as f:
            os.fsync(f.fileno())
        final = self.folder / f"{self.key}.npy"
        os.replace(tmp, final)
        fsync_dir(self.folder)
        self._paths.remove(tmp)
        self.discard()  # the first temporary, when the kept rows were copied out of it
        atomic_write(self.folder / f"{self.key}.json", lambda f: f.write(json.dumps(meta).encode()))
        hit = cache_read(self.folder, self.key, (h, w))
        if hit is None:  # pragma: no cover - only if the file changed under us
            raise OSError(f"the cache entry {display_path(final)} did not read back")
        return hit[0]

    def discard(self) -> None:
        """Remove what was written (a failed or abandoned decode leaves nothing behind)."""
        self.__dict__.pop("array", None)
        for path in self._paths:
            with contextlib.suppress(OSError):
                path.unlink()
        self._paths.clear()


def open_writer(folder: Path, key: str, shape: tuple[int, int, int, int]) -> CacheWriter | None:
    """A :class:`CacheWriter`, or None with a warning where the cache cannot be written (an
    unwritable folder, too little disk): the folder is then decoded into memory."""
    try:
        return CacheWriter(folder, key, shape)
    except Exception as exc:
        cache_warning(folder, exc)
        return None


def cache_warning(folder: Path, exc: BaseException) -> None:
    """Say that the cache could not be written and that loading goes on without it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    warnings.warn(
        f"could not write the image cache in {display_path(folder)} ({type(exc).__name__}: "
        f"{text[:100]}); continuing without it (the folder will be decoded again next time)",
        RuntimeWarning,
        stacklevel=4,
    )
