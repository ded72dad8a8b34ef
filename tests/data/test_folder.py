"""Tests for gankit.data.folder: every fixture is generated here with Pillow/numpy."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, ImageOps

from gankit.data.folder import FolderImages, load_image_folder
from gankit.errors import GankitError
from tests.data.conftest import BLUE, GREEN, RED, _colour_png, _gray_png, _noise_rgb


def _image(result: FolderImages, name: str) -> np.ndarray:
    """(H, W, C) numpy view of the image loaded from ``name``."""
    return result.images[result.files.index(name)].permute(1, 2, 0).numpy()


def test_messy_folder(messy: Path) -> None:
    result = load_image_folder(messy, (32, 16), workers=1)

    assert sorted(path for path, _ in result.skipped) == ["empty.png", "notes.png", "truncated.jpg"]
    reasons = dict(result.skipped)
    assert reasons["empty.png"] == "empty file (0 bytes)"
    assert reasons["notes.png"].startswith("not an image")
    assert reasons["truncated.jpg"].startswith("truncated or corrupt")
    assert "truncated" in reasons["truncated.jpg"]
    assert len(set(reasons.values())) == 3
    assert result.ignored == 1
    assert not result.from_cache

    assert result.files == [
        "cmyk.jpg",
        "gray16.png",
        "palette.gif",
        "rotated.jpg",
        "sub/deeper/nested.png",
        "transparent.png",
    ]
    assert result.images.dtype == torch.uint8
    assert result.images.shape == (6, 3, 32, 16)  # mixed gray and colour -> 3 channels
    assert result.images.is_contiguous()
    assert result.labels is None and result.classes is None  # top-level files present

    text = result.summary()
    first = text.splitlines()[0]
    assert first.startswith(f"6 images from {messy.resolve()} (3 channels, 32x16); 3 skipped:")
    for name in ("empty.png", "notes.png", "truncated.jpg"):
        assert f"  {name}: {reasons[name]}" in text

    gray16 = _image(result, "gray16.png").astype(int)
    assert np.all(np.abs(gray16 - 128) <= 2), "16-bit 32896 must scale to ~128, not saturate"
    assert np.all(_image(result, "transparent.png") >= 253), "transparent must become white"
    cmyk = _image(result, "cmyk.jpg").astype(int)
    assert np.all(np.abs(cmyk - RED) <= 12)
    assert np.all(np.abs(_image(result, "palette.gif").astype(int) - BLUE) <= 2)
    assert np.all(np.abs(_image(result, "sub/deeper/nested.png").astype(int) - GREEN) <= 2)

    # Upright 20x40 picture scaled by 0.8 to exactly 16x32: red in the top-right quadrant.
    rotated = _image(result, "rotated.jpg").astype(int)
    assert np.all(np.abs(rotated[4, 12] - RED) <= 40), rotated[4, 12]
    assert np.all(np.abs(rotated[4, 3] - BLUE) <= 40), rotated[4, 3]
    assert np.all(np.abs(rotated[28, 12] - BLUE) <= 40), rotated[28, 12]


def test_channels_auto_and_forced(tmp_path: Path) -> None:
    root = tmp_path / "gray"
    _gray_png(root / "a.png", 10)
    Image.fromarray(np.full((10, 12), 65535, dtype=np.uint16)).save(root / "b16.png")
    Image.new("LA", (12, 10), (0, 0)).save(root / "c_alpha.png")  # transparent gray -> white
    Image.new("1", (12, 10), 1).save(root / "d_bits.png")
    gray = load_image_folder(root, (8, 8))
    assert gray.images.shape == (4, 1, 8, 8)
    assert gray.images[0].unique().tolist() == [10]
    assert gray.images[1].unique().tolist() == [255]
    assert gray.images[2].unique().tolist() == [255]
    assert gray.images[3].unique().tolist() == [255]

    as_rgb = load_image_folder(root, (8, 8), channels=3)
    assert as_rgb.images.shape == (4, 3, 8, 8)
    assert torch.equal(as_rgb.images, gray.images.expand(-1, 3, -1, -1))

    _colour_png(root / "e.png", (200, 100, 50))
    mixed = load_image_folder(root, (8, 8))
    assert mixed.images.shape == (5, 3, 8, 8)
    forced_gray = load_image_folder(root, (8, 8), channels=1)
    assert forced_gray.images.shape == (5, 1, 8, 8)
    expected = Image.new("RGB", (1, 1), (200, 100, 50)).convert("L").getpixel((0, 0))
    assert forced_gray.images[4].unique().tolist() == [expected]  # ITU-R 601 luma


def test_float_image_scaling(tmp_path: Path) -> None:
    root = tmp_path / "float"
    root.mkdir()
    Image.fromarray(np.full((10, 12), 0.5, dtype=np.float32)).save(root / "unit.tif")
    Image.fromarray(np.full((10, 12), 300.0, dtype=np.float32)).save(root / "big.tif")
    result = load_image_folder(root, (8, 8))
    assert result.images.shape == (2, 1, 8, 8)
    assert result.images[result.files.index("unit.tif")].unique().tolist() == [128]
    assert result.images[result.files.index("big.tif")].unique().tolist() == [255]


def test_decompression_bomb_skipped_without_decoding(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "bombs"
    root.mkdir()
    _colour_png(root / "small.png", size=(20, 20))  # 400 pixels: fine
    _colour_png(root / "warn.png", size=(40, 40))  # 1600 > limit: Pillow would only warn
    _colour_png(root / "error.png", size=(64, 64))  # 4096 > 2 x limit: Pillow raises on open

    loaded: list[str] = []
    original_load = ImageFile.ImageFile.load

    def spy_load(self):
        loaded.append(os.path.basename(getattr(self, "filename", "") or ""))
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spy_load)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)  # must not leak out
        result = load_image_folder(root, (8, 8), workers=1)

    assert result.files == ["small.png"]
    reasons = dict(result.skipped)
    assert set(reasons) == {"error.png", "warn.png"}
    assert reasons["warn.png"].startswith("too large: 40x40 pixels")
    for reason in reasons.values():
        assert "decompression-bomb limit of 1000" in reason
    assert "small.png" in loaded
    assert "warn.png" not in loaded and "error.png" not in loaded


@pytest.mark.parametrize("kind", ["missing", "file", "empty", "only_text", "only_bad"])
def test_errors_name_the_path(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "data"
    if kind == "file":
        root.write_text("x")
    elif kind == "empty":
        root.mkdir()
    elif kind == "only_text":
        root.mkdir()
        (root / "notes.txt").write_text("x")
    elif kind == "only_bad":
        root.mkdir()
        (root / "a.png").write_bytes(b"")
        (root / "b.jpg").write_text("not a jpeg")

    with pytest.raises(GankitError) as info:
        load_image_folder(root, (8, 8))
    message = str(info.value)
    assert str(root.resolve()) in message
    if kind == "missing":
        assert "does not exist" in message
    elif kind == "file":
        assert "not a folder" in message
    elif kind in ("empty", "only_text"):
        assert "contains no image files" in message and ".png" in message
        assert "data.source" in message
    else:
        assert "a.png: empty file (0 bytes)" in message
        assert "b.jpg: not an image" in message


def test_bad_arguments(tmp_path: Path) -> None:
    _gray_png(tmp_path / "a.png")
    for kwargs in ({"size": (0, 8)}, {"size": (8,)}, {"channels": 2}, {"workers": 0}):
        args = {"size": (8, 8), **kwargs}
        with pytest.raises(GankitError):
            load_image_folder(tmp_path, **args)


def test_non_square_centre_crop(tmp_path: Path) -> None:
    # 40 wide x 20 high: red bands left and right, green centre 20 pixels wide.
    img = Image.new("RGB", (40, 20), RED)
    img.paste(GREEN, (10, 0, 30, 20))
    img.save(tmp_path / "wide.png")

    square = load_image_folder(tmp_path, (16, 16))
    centre = square.images[0].permute(1, 2, 0).numpy().astype(int)
    assert centre.shape == (16, 16, 3)
    assert np.all(np.abs(centre[:, 3:13] - GREEN) <= 8), "crop must keep the centre, not squash"

    wide = load_image_folder(tmp_path, (16, 24))
    assert wide.images.shape == (1, 3, 16, 24)
    expected = np.asarray(ImageOps.fit(img, (24, 16), method=Image.Resampling.BICUBIC))
    assert np.array_equal(wide.images[0].permute(1, 2, 0).numpy(), expected)

    tall = load_image_folder(tmp_path, (24, 8))
    assert tall.images.shape == (1, 3, 24, 8)


def test_cache_hit_invalidation_and_corruption(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    for i in range(3):
        _colour_png(root / f"{i}.png", (i * 50, 10, 200))
    (root / "bad.png").write_bytes(b"")
    cache = tmp_path / "cache"

    first = load_image_folder(root, (8, 8), cache_dir=cache)
    assert not first.from_cache
    entries = sorted(p.name for p in (cache / "folders").iterdir())
    assert len(entries) == 2 and entries[0].endswith(".json") and entries[1].endswith(".npy")
    json_path = cache / "folders" / entries[0]
    assert json.loads(json_path.read_text())["files"] == ["0.png", "1.png", "2.png"]
    assert np.load(cache / "folders" / entries[1], allow_pickle=False).shape == (3, 3, 8, 8)

    second = load_image_folder(root, (8, 8), cache_dir=cache)
    assert second.from_cache
    assert torch.equal(second.images, first.images)
    assert second.files == first.files and second.skipped == first.skipped
    assert second.ignored == first.ignored
    assert second.summary().splitlines()[0].endswith(", from cache; 1 skipped:")

    # Other size -> other entry.
    assert not load_image_folder(root, (4, 4), cache_dir=cache).from_cache

    # A changed file (new contents and mtime) invalidates.
    _colour_png(root / "1.png", (1, 2, 3))
    stat = (root / "1.png").stat()
    os.utime(root / "1.png", ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    third = load_image_folder(root, (8, 8), cache_dir=cache)
    assert not third.from_cache
    assert third.images[1, :, 0, 0].tolist() == [1, 2, 3]
    assert load_image_folder(root, (8, 8), cache_dir=cache).from_cache

    # A corrupt JSON is ignored and rebuilt.
    for meta in (cache / "folders").glob("*.json"):
        meta.write_text("{ not json")
    rebuilt = load_image_folder(root, (8, 8), cache_dir=cache)
    assert not rebuilt.from_cache
    assert torch.equal(rebuilt.images, third.images)
    assert load_image_folder(root, (8, 8), cache_dir=cache).from_cache

    # An npy of the wrong shape is ignored too.
    for array in (cache / "folders").glob("*.npy"):
        np.save(array, np.zeros((2, 3, 8, 8), dtype=np.uint8))
    assert not load_image_folder(root, (8, 8), cache_dir=cache).from_cache

    # No temp files left behind.
    assert not list((cache / "folders").glob("*.tmp"))


def test_unwritable_cache_only_warns(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    _gray_png(root / "a.png")
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should go")
    with pytest.warns(RuntimeWarning, match="could not write the image cache"):
        result = load_image_folder(root, (8, 8), cache_dir=blocker)
    assert result.images.shape == (1, 1, 8, 8)


def test_parallel_matches_in_process(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    rng = np.random.default_rng(1)
    for i in range(80):
        h, w = int(rng.integers(6, 20)), int(rng.integers(6, 20))
        if i % 3 == 0:
            Image.fromarray(rng.integers(0, 256, (h, w), dtype=np.uint8)).save(root / f"{i:03}.png")
        else:
            _noise_rgb(h, w, seed=i).save(root / f"{i:03}.png")
    (root / "zz_bad.png").write_text("nope")

    serial = load_image_folder(root, (8, 12), workers=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel = load_image_folder(root, (8, 12), workers=2)
    assert not [w for w in caught if "parallel image decoding failed" in str(w.message)]
    assert parallel.files == serial.files and len(serial.files) == 80
    assert (
        parallel.skipped
        == serial.skipped
        == [("zz_bad.png", "not an image (cannot identify image file)")]
    )
    assert torch.equal(parallel.images, serial.images)
    assert parallel.images.shape == (80, 3, 8, 12)


def test_parallel_honours_patched_bomb_limit(tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "many"
    for i in range(70):
        _colour_png(root / f"{i:03}.png", size=(10, 10))
    _colour_png(root / "big.png", size=(40, 40))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    result = load_image_folder(root, (4, 4), workers=2)
    assert len(result.files) == 70
    assert [p for p, _ in result.skipped] == ["big.png"]


def test_labels_from_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "pets"
    _colour_png(root / "dog" / "d1.png", BLUE)
    _colour_png(root / "cat" / "c1.png", RED)
    _colour_png(root / "cat" / "c2.png", RED)
    _colour_png(root / "dog" / "puppies" / "p1.png", BLUE)
    (root / "empty_class").mkdir()
    (root / "dog" / "broken.png").write_bytes(b"")
    result = load_image_folder(root, (8, 8))
    assert result.classes == ["cat", "dog"]
    assert result.files == ["cat/c1.png", "cat/c2.png", "dog/d1.png", "dog/puppies/p1.png"]
    assert result.labels is not None and result.labels.dtype == torch.int64
    assert result.labels.tolist() == [0, 0, 1, 1]

    cached = load_image_folder(root, (8, 8), cache_dir=tmp_path / "cache")
    again = load_image_folder(root, (8, 8), cache_dir=tmp_path / "cache")
    assert again.from_cache and again.classes == cached.classes == ["cat", "dog"]
    assert torch.equal(again.labels, result.labels)

    _colour_png(root / "loose.png")
    mixed = load_image_folder(root, (8, 8))
    assert mixed.labels is None and mixed.classes is None
