"""The memory-mapped folder cache, the streamed first decode, host-side batches, streamed eval."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import gankit.data.decode as decode_mod
from gankit.data.base import InMemoryData, stays_on_host, to_float
from gankit.data.folder import load_image_folder, stream_image_folder
from gankit.data.folder_cache import cache_key
from tests.data.conftest import _gray_png, _noise_rgb


def _mapped_file(t: torch.Tensor) -> str | None:
    """The file whose mapping holds ``t``'s memory (from /proc/self/maps), or None (anonymous)."""
    ptr = t.data_ptr()
    for line in Path("/proc/self/maps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        lo, hi = (int(v, 16) for v in parts[0].split("-"))
        if lo <= ptr < hi:
            return parts[5].strip() if len(parts) == 6 and parts[5].startswith("/") else None
    return None


def _folder(root: Path, n: int, size: tuple[int, int] = (12, 10)) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        _noise_rgb(*size, seed=i).save(root / f"{i:03}.png")
    return root


def _entries(cache: Path) -> list[str]:
    folder = cache / "folders"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc (Linux)")
def test_cache_is_mapped_and_equals_the_in_memory_decode(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", 20)
    cache = tmp_path / "cache"
    plain = load_image_folder(root, (8, 8), workers=1)  # no cache: decoded into memory
    first = load_image_folder(root, (8, 8), cache_dir=cache, workers=1)
    second = load_image_folder(root, (8, 8), cache_dir=cache, workers=1)
    assert not first.from_cache and second.from_cache
    assert torch.equal(first.images, plain.images) and torch.equal(second.images, plain.images)
    (npy,) = (cache / "folders").glob("*.npy")
    # both the fresh decode and the cache hit are views of the cache file, not private copies
    assert _mapped_file(first.images) == _mapped_file(second.images) == str(npy)
    assert _mapped_file(plain.images) is None
    # copy-on-write: writing to the tensor never changes the file
    second.images[0].fill_(7)
    assert torch.equal(load_image_folder(root, (8, 8), cache_dir=cache).images, plain.images)
    # a batch gathered from the mapped set is the same batch as from memory
    index = torch.tensor([3, 0, 19, 3])
    assert torch.equal(InMemoryData(first.images, "m").batch(index), InMemoryData(plain.images, "p").batch(index))


def test_skipped_files_and_gray_sets_are_compacted_into_the_cache(tmp_path: Path) -> None:
    root = tmp_path / "gray"
    for i in range(5):
        _gray_png(root / f"{i}.png", value=40 * i)
    (root / "2b.png").write_bytes(b"not a png")
    cache = tmp_path / "cache"
    plain = load_image_folder(root, (6, 6), workers=1)
    cached = load_image_folder(root, (6, 6), cache_dir=cache, workers=1)
    again = load_image_folder(root, (6, 6), cache_dir=cache, workers=1)
    assert plain.images.shape == cached.images.shape == again.images.shape == (5, 1, 6, 6)
    assert torch.equal(cached.images, plain.images) and torch.equal(again.images, plain.images)
    assert again.from_cache and again.skipped == plain.skipped == [("2b.png", "not an image (cannot identify image file)")]
    names = _entries(cache)  # the entry alone: both temporaries are gone
    assert len(names) == 2 and names[0].endswith(".json") and names[1].endswith(".npy")


def test_a_decode_that_fails_midway_leaves_nothing_a_later_load_accepts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _folder(tmp_path / "imgs", 12)
    cache = tmp_path / "cache"
    real_decode, calls = decode_mod._decode_file, []

    def dies_at_the_seventh(*args: object) -> object:
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt  # the user's Ctrl-C, half-way through the first decode
        return real_decode(*args)

    monkeypatch.setattr(decode_mod, "_decode_file", dies_at_the_seventh)
    with pytest.raises(KeyboardInterrupt):
        load_image_folder(root, (8, 8), cache_dir=cache, workers=1)
    assert _entries(cache) == []  # the temporary went with it
    monkeypatch.setattr(decode_mod, "_decode_file", real_decode)
    redone = load_image_folder(root, (8, 8), cache_dir=cache, workers=1)
    assert not redone.from_cache and torch.equal(redone.images, load_image_folder(root, (8, 8)).images)


def test_a_killed_writers_temporary_is_removed_and_never_read(tmp_path: Path) -> None:
    root = _folder(tmp_path / "imgs", 4)
    cache = tmp_path / "cache"
    folders = cache / "folders"
    folders.mkdir(parents=True)
    key = cache_key(str(root), (8, 8), None, sorted(p.name for p in root.iterdir()), 0)
    dead = subprocess.Popen(["true"])  # a process now gone
    dead.wait()
    # what `kill -9` leaves mid-decode: a half-written temporary (and no .npy or .json)
    leftover = folders / f".{key}.npy.{dead.pid}.dead.tmp"
    np.lib.format.open_memmap(leftover, mode="w+", dtype=np.uint8, shape=(4, 3, 8, 8))
    # what a kill between publishing the array and its description leaves: an .npy alone
    np.save(folders / f"{key}.npy", np.zeros((4, 3, 8, 8), np.uint8))
    result = load_image_folder(root, (8, 8), cache_dir=cache, workers=1)
    assert not result.from_cache and int(result.images.max()) > 0
    assert not leftover.exists() and _entries(cache) == [f"{key}.json", f"{key}.npy"]
    assert load_image_folder(root, (8, 8), cache_dir=cache, workers=1).from_cache


def test_parallel_streamed_decode_matches_in_process(tmp_path: Path) -> None:
    root = _folder(tmp_path / "many", 90, size=(9, 14))
    (root / "zz.png").write_text("nope")
    serial = load_image_folder(root, (8, 12), cache_dir=tmp_path / "c1", workers=1)
    parallel = load_image_folder(root, (8, 12), cache_dir=tmp_path / "c2", workers=2)
    assert torch.equal(parallel.images, serial.images) and parallel.skipped == serial.skipped
    stream = stream_image_folder(root, (8, 12), 3, workers=2, seed=None)
    chunks = list(stream.batches())
    assert len(chunks) > 1  # read a worker's chunk at a time, never the folder at once
    streamed = np.concatenate(chunks)
    assert np.array_equal(streamed, serial.images.numpy()) and stream.skipped == serial.skipped
    shuffled = stream_image_folder(root, (8, 12), 3, workers=1, seed=0)
    rows = np.concatenate(list(shuffled.batches()))
    order = [serial.files.index(f) for f in shuffled.kept]
    assert sorted(order) == list(range(90)) and order != list(range(90))
    assert np.array_equal(rows, serial.images.numpy()[order])


def test_data_too_large_for_the_gpu_stay_on_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    assert not stays_on_host(10**12, torch.device("cpu"))
    assert stays_on_host(26, cuda, free=100) and not stays_on_host(25, cuda, free=100)
    data = InMemoryData(torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).reshape(2, 3, 4, 4), "x",
                        labels=torch.tensor([4, 5]))
    assert data.to("cpu").batch_device is None and data.index_device == torch.device("cpu")
    assert torch.equal(data.batch(torch.tensor([1, 1])), to_float(data.data[[1, 1]], channels_last=True))
    assert data.labels_of(torch.tensor([1, 0])).tolist() == [5, 4]
    # the host path (on a GPU: gathered on the host, pinned, copied) gives the same batches
    import gankit.data.base

    monkeypatch.setattr(gankit.data.base, "stays_on_host", lambda nbytes, device: True)
    host = InMemoryData(data.data.clone(), "host", labels=data.labels.clone()).to("cpu")
    assert host.batch_device == torch.device("cpu")
    index = torch.tensor([1, 0, 1])
    assert torch.equal(host.batch(index), data.batch(index))
    assert torch.equal(host.labels_of(index), data.labels_of(index))


def test_streamed_eval_gives_the_in_memory_fid(tmp_path: Path) -> None:
    from gankit.metrics import evaluate_folders, get_extractor, images_key
    from gankit.metrics.evaluate import batches_of, evaluate_images

    rng = np.random.default_rng(0)
    for side, shift in (("real", 0), ("fake", 60)):
        (tmp_path / side).mkdir()
        for i in range(70):
            base = rng.integers(0, 196, (28, 28)).astype(np.uint8) + shift
            Image.fromarray(base).save(tmp_path / side / f"{i:03}.png")
    streamed = evaluate_folders(str(tmp_path / "real"), str(tmp_path / "fake"), ["fid", "pr"],
                                workers=2, cache=False)
    real = load_image_folder(tmp_path / "real", (28, 28), 1)
    fake = load_image_folder(tmp_path / "fake", (28, 28), 1)
    in_memory = evaluate_images(batches_of(fake.images), real.images, images_key("r", real.images),
                                get_extractor("fmnist", "cpu"), ["fid", "pr"], cache=False)
    assert streamed.n_real == in_memory.n_real == 70 and streamed.n_fake == 70
    assert streamed.values["fid"] == pytest.approx(in_memory.values["fid"], rel=1e-6)
    assert streamed.values["fid"] > 1  # the two sides do differ
    assert streamed.values["recall"] == pytest.approx(in_memory.values["recall"])
