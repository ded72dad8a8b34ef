"""Row labels of sample grids (class names, input / output / target) are set in a real font at
a size matched to the tiles, so they stay legible when the report enlarges the grid."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import ImageFont

from gankit import images
from gankit.images import label_font, label_rows, label_size, make_grid

NAMES = ["T-shirt/top", "Trouser", "Ankle boot"]


def _labelled(tile: int) -> tuple[np.ndarray, int]:
    grid = make_grid(torch.zeros(3 * 8, 1, tile, tile), nrow=8)
    out = label_rows(grid, NAMES, tile)
    return out, out.shape[1] - grid.shape[1]


def test_labels_are_truetype_and_grow_with_the_tiles() -> None:
    assert isinstance(label_font(label_size(28)), ImageFont.FreeTypeFont)
    assert label_size(8) == 10 and label_size(28) == 14 and label_size(256) == 28
    _, small = _labelled(16)
    _, mid = _labelled(28)
    _, large = _labelled(64)
    assert small < mid < large
    assert mid >= 2.5 * 28  # "Ankle boot" at 14 px: wider than two tiles and a half


@pytest.mark.parametrize("tile", [28, 64])
def test_each_label_is_inked_within_its_row_at_a_legible_height(tile: int) -> None:
    out, margin = _labelled(tile)
    for r in range(len(NAMES)):
        top = 2 + r * (tile + 2)
        band = out[top:top + tile, :margin]
        rows = np.flatnonzero((band < 128).any(axis=1))
        assert rows.size, f"row {r} has no label"
        ink = rows[-1] - rows[0] + 1
        assert ink >= min(0.3 * tile, 10), (r, ink)  # capitals and descenders: >= 10 px at 28 px tiles
    assert (out[:, :margin] < 128).sum() > 50 * len(NAMES)


def test_matplotlib_font_when_the_system_has_none(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(images, "SYSTEM_FONT", tmp_path / "none.ttf")
    label_font.cache_clear()
    try:
        font = label_font(13)
        assert isinstance(font, ImageFont.FreeTypeFont) and "DejaVu" in font.getname()[0]
    finally:
        label_font.cache_clear()
