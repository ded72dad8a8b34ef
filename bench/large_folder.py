"""Data at scale: a synthetic folder of JPEGs, its first decode into the memory-mapped cache, and
batches read from that cache against the same images held in memory.

Usage:  python bench/large_folder.py [--n 200000] [--size 128] [--root /tmp/gankit-large]
                                     [--workers 2] [--train-steps 150] [--clean]

Phases (each prints one JSON line; the last line sums them up):

1. ``make``: N smooth random JPEGs (gradients plus a few shapes, quality 90) in ``ROOT/imgs``,
   written by ``--workers`` processes; kept between runs (skipped when already there).
2. ``decode``: the first decode, ``load_image_folder`` with the cache in ``ROOT/cache``: img/s and
   this process's resident memory sampled every 0.2 s (anonymous memory, i.e. private, and
   file-backed, i.e. mapped pages of the cache that the kernel may drop at any time), plus the
   workers' resident memory.
3. ``loader``: ``InMemoryData.batch`` on the run's batch order (batch 64) from the mapped cache --
   cold (the cache file's pages dropped first with ``posix_fadvise(DONTNEED)``) and warm -- and
   from the same rows copied into memory (the first ``--memory-n`` images, so that the copy fits;
   the mapped set is measured on the same rows too).
4. ``train``: ``gankit train`` on the folder (dcgan at ``--size``, width ``--width``, 3 channels:
   the cache of phase 2, no second decode) in a child process, its resident memory sampled every second: private memory stays flat while the mapped
   share is whatever the page cache keeps.

``--clean`` removes ``ROOT`` at the end (the 200,000-image cache is 9.8 GB).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np


def _status(pid: int | str = "self") -> dict[str, float]:
    """VmRSS, RssAnon, RssFile of a process, in MB (0 where the process is gone)."""
    out = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key = line.split(":", 1)[0]
            if key in out:
                out[key] = int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return out


def _children(pid: int) -> list[int]:
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            kids += [int(k) for k in task.read_text().split()]
    return kids


class Sampler:
    """Samples a process's memory (and its children's) in a thread until stopped: the peaks."""

    def __init__(self, pid: int, every: float) -> None:
        self.pid, self.every, self.peak = pid, every, {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
        self.samples: list[tuple[float, float, float]] = []  # (seconds, RssAnon, RssFile)
        self.children_peak = 0.0
        self._stop = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            s = _status(self.pid)
            for k, v in s.items():
                self.peak[k] = max(self.peak[k], v)
            self.samples.append((time.perf_counter() - self._t0, s["RssAnon"], s["RssFile"]))
            kids = sum(_status(k)["VmRSS"] for k in _children(self.pid))
            self.children_peak = max(self.children_peak, kids)

    def stop(self) -> dict[str, object]:
        self._stop.set()
        self._thread.join()
        anon = [a for _, a, _ in self.samples]
        half = anon[len(anon) // 2:] or [0.0]
        return {"peak_rss_mb": round(self.peak["VmRSS"]), "peak_anon_mb": round(self.peak["RssAnon"]),
                "peak_file_mb": round(self.peak["RssFile"]), "children_peak_rss_mb": round(self.children_peak),
                "anon_mb_second_half": [round(min(half)), round(max(half))], "samples": len(self.samples)}


def _make_one(args: tuple[int, int, str]) -> None:
    from PIL import Image, ImageDraw

    i, size, folder = args
    rng = np.random.default_rng(i)
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    a = rng.uniform(-255, 255, (3, 3)).astype(np.float32)
    rgb = np.stack([a[c, 0] * x + a[c, 1] * y + a[c, 2] for c in range(3)], -1)
    img = Image.fromarray(np.clip(rgb + 128, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.integers(0, size, 2)
        w, h = rng.integers(size // 8, size // 2, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x0 + w, y0 + h), fill=colour)
    img.save(os.path.join(folder, f"{i:07d}.jpg"), quality=90)


def make(folder: Path, n: int, size: int, workers: int) -> dict[str, object]:
    from multiprocessing import Pool

    folder.mkdir(parents=True, exist_ok=True)
    have = sum(1 for _ in os.scandir(folder))
    t0 = time.perf_counter()
    if have != n:
        shutil.rmtree(folder)
        folder.mkdir(parents=True)
        with Pool(workers) as pool:
            for _ in pool.imap_unordered(_make_one, ((i, size, str(folder)) for i in range(n)), chunksize=256):
                pass
    seconds = time.perf_counter() - t0
    disk = sum(e.stat().st_size for e in os.scandir(folder))
    return {"phase": "make", "n": n, "seconds": round(seconds, 1), "reused": have == n,
            "folder_mb": round(disk / 2**20)}


def decode(folder: Path, cache: Path, size: int, workers: int) -> tuple[dict[str, object], object]:
    from gankit.data.folder import load_image_folder

    if cache.exists():
        shutil.rmtree(cache)
    sampler = Sampler(os.getpid(), 0.2)
    t0 = time.perf_counter()
    found = load_image_folder(folder, (size, size), 3, cache_dir=cache, workers=workers)
    seconds = time.perf_counter() - t0
    mem = sampler.stop()
    n = len(found.files)
    return {"phase": "decode", "n": n, "seconds": round(seconds, 1), "img_per_s": round(n / seconds),
            "workers": workers, "cache_gb": round(found.images.nbytes / 2**30, 2), **mem}, found


def _loader(data: object, n: int, steps: int, batch: int) -> float:
    import torch

    from gankit.data.base import BatchOrder

    order = BatchOrder(n, batch, seed=0)
    for i in range(5):  # warm-up (allocator)
        data.batch(order.indices(i))  # type: ignore[attr-defined]
    t0 = time.perf_counter()
    x = None
    for i in range(5, 5 + steps):
        x = data.batch(order.indices(i))  # type: ignore[attr-defined]
    assert x is not None and x.dtype == torch.float32
    return steps * batch / (time.perf_counter() - t0)


def _drop_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def loader(folder: Path, cache: Path, size: int, steps: int, batch: int, memory_n: int) -> dict[str, object]:
    from gankit.data.base import InMemoryData
    from gankit.data.folder import load_image_folder

    (npy,) = (cache / "folders").glob("*.npy")
    _drop_page_cache(npy)  # no mapping of it is left in this process: its pages really go
    found = load_image_folder(folder, (size, size), 3, cache_dir=cache)
    assert found.from_cache
    images = found.images
    n = len(images)
    mapped = InMemoryData(images, "mapped")
    sampler = Sampler(os.getpid(), 0.2)
    cold = _loader(mapped, n, steps, batch)
    warm = _loader(mapped, n, steps, batch)
    mem = sampler.stop()
    m = min(memory_n, n)
    rows, copy = InMemoryData(images[:m], "mapped rows"), InMemoryData(images[:m].clone(), "in memory")
    mapped_m = in_memory = 0.0
    for _ in range(3):  # interleaved, best of three: the machine's load changes under the runs
        mapped_m = max(mapped_m, _loader(rows, m, steps, batch))
        in_memory = max(in_memory, _loader(copy, m, steps, batch))
    del copy
    return {"phase": "loader", "batch": batch, "steps": steps, "n": n,
            "mapped_cold_img_per_s": round(cold), "mapped_warm_img_per_s": round(warm),
            "rows": m, "mapped_rows_img_per_s": round(mapped_m), "in_memory_rows_img_per_s": round(in_memory),
            "mapped_vs_memory": round(mapped_m / in_memory, 3), **mem}


def train(folder: Path, cache: Path, size: int, steps: int, width: int, threads: int) -> dict[str, object]:
    out = folder.parent / "run"
    shutil.rmtree(out, ignore_errors=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "gankit", "train", "--data", str(folder), "--image-size", str(size),
           "--channels", "3", "--cache-dir", str(cache), "--model", "dcgan", "--width", str(width), "--steps", str(steps),
           "--batch-size", "64", "--out", str(out), "--no-progress", "--sample-every", str(10 * steps),
           "--checkpoint-every", str(10 * steps), "--log-every", "10"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = Sampler(proc.pid, 1.0)
    _, err = proc.communicate()
    mem = sampler.stop()
    seconds = time.perf_counter() - t0
    tail = err.decode(errors="replace").strip().splitlines()[-3:]
    every = max(1, len(sampler.samples) // 8)
    series = [[round(t), round(a), round(f)] for t, a, f in sampler.samples[::every]]
    return {"phase": "train", "steps": steps, "width": width, "seconds": round(seconds, 1),
            "exit": proc.returncode, **mem, "seconds_anon_file_mb": series,
            **({"stderr": tail} if proc.returncode else {})}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=200_000)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--root", default="/tmp/gankit-large")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads (OMP_NUM_THREADS)")
    p.add_argument("--loader-steps", type=int, default=2000)
    p.add_argument("--memory-n", type=int, default=50_000, help="rows copied into memory for the comparison")
    p.add_argument("--train-steps", type=int, default=150)
    p.add_argument("--width", type=int, default=16)
    p.add_argument("--phases", default="make,decode,loader,train")
    p.add_argument("--clean", action="store_true", help="remove --root when done")
    a = p.parse_args()
    import torch

    torch.set_num_threads(a.threads)
    root = Path(a.root)
    folder, cache = root / "imgs", root / "cache"
    phases, results = a.phases.split(","), []
    try:
        if "make" in phases:
            results.append(make(folder, a.n, a.size, a.workers))
            print(json.dumps(results[-1]), flush=True)
        if "decode" in phases:
            res, found = decode(folder, cache, a.size, a.workers)
            del found  # unmapped, so that the loader's cold pass starts from disk
            results.append(res)
            print(json.dumps(res), flush=True)
        if "loader" in phases:
            results.append(loader(folder, cache, a.size, a.loader_steps, 64, a.memory_n))
            print(json.dumps(results[-1]), flush=True)
        if "train" in phases:
            results.append(train(folder, cache, a.size, a.train_steps, a.width, a.threads))
            print(json.dumps(results[-1]), flush=True)
    finally:
        if a.clean:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps({"summary": {r["phase"]: {k: v for k, v in r.items() if k != "phase"} for r in results},
                      "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
