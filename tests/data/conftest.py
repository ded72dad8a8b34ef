"""Fixtures for the data tests: awkward image folders, generated with Pillow and numpy."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

RED = (255, 0, 0)
BLUE = (0, 0, 255)
GREEN = (0, 255, 0)


def _noise_rgb(h: int, w: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _gray_png(path: Path, value: int = 100, size: tuple[int, int] = (12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, value).save(path)


def _colour_png(path: Path, colour: tuple[int, int, int] = RED, size=(12, 10)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """A folder with every kind of awkward file a user might have."""
    root = tmp_path / "messy"
    root.mkdir()
    # Bad files.
    buf = BytesIO()
    _noise_rgb(64, 64).save(buf, "JPEG", quality=95)
    data = buf.getvalue()
    (root / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (root / "empty.png").write_bytes(b"")
    (root / "notes.png").write_text("these are my notes, not a picture\n")
    # Not an image extension at all: ignored, not skipped.
    (root / "readme.txt").write_text("hello")
    # Hidden: neither ignored nor skipped.
    (root / ".DS_Store").write_bytes(b"\0\1junk")
    (root / ".thumbs").mkdir()
    (root / ".thumbs" / "t.png").write_bytes(b"junk")
    # Good files.
    Image.fromarray(np.full((10, 12), 32896, dtype=np.uint16)).save(root / "gray16.png")
    Image.new("CMYK", (12, 10), (0, 255, 255, 0)).save(root / "cmyk.jpg", quality=95)
    pal = Image.new("RGB", (12, 10), BLUE).convert("P", palette=Image.Palette.ADAPTIVE)
    pal.save(root / "palette.gif")
    Image.new("RGBA", (12, 10), (0, 0, 0, 0)).save(root / "transparent.png")
    # Stored 40 wide x 20 high, red top-left quadrant; orientation 6 = "rotate 90 degrees
    # clockwise to display", so the upright picture is 20 wide x 40 high, red top-right.
    stored = Image.new("RGB", (40, 20), BLUE)
    stored.paste(RED, (0, 0, 20, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(root / "rotated.jpg", quality=95, exif=exif.tobytes())
    _colour_png(root / "sub" / "deeper" / "nested.png", GREEN)
    return root
