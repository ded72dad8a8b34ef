"""Tests for gankit.images: value mapping, grid geometry, PNG writing."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.images import make_grid, png_bytes, save_each, save_grid, save_png, to_uint8


def test_to_uint8_value_mapping() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0, -0.5, 0.5]).view(1, 1, 1, 5)
    out = to_uint8(x)
    assert out.dtype == torch.uint8
    assert out.shape == x.shape
    # (x+1)*127.5 = 0, 127.5, 255, 63.75, 191.25; torch.round is half-to-even: 127.5 -> 128.
    assert out.flatten().tolist() == [0, 128, 255, 64, 191]


def test_to_uint8_clamps_and_handles_nonfinite() -> None:
    x = torch.tensor([-3.0, 2.0, 1.5, float("nan"), float("inf"), float("-inf")]).view(1, 1, 2, 3)
    assert to_uint8(x).flatten().tolist() == [0, 255, 255, 128, 255, 0]


def test_to_uint8_returns_cpu_and_accepts_half() -> None:
    x = torch.zeros(2, 3, 4, 4, dtype=torch.float16)
    out = to_uint8(x)
    assert out.device.type == "cpu"
    assert out.dtype == torch.uint8
    assert int(out.min()) == int(out.max()) == 128


def _tiles(n: int, c: int, h: int, w: int) -> torch.Tensor:
    """Image k is constant with value giving pixel 10*(k+1) (exactly representable)."""
    levels = torch.tensor([10.0 * (k + 1) for k in range(n)]) / 127.5 - 1.0
    return levels.view(n, 1, 1, 1).expand(n, c, h, w).clone()


def test_make_grid_geometry_and_placement_gray() -> None:
    n, h, w, nrow, pad = 5, 3, 4, 2, 1
    grid = make_grid(_tiles(n, 1, h, w), nrow=nrow, padding=pad, pad_value=255)
    # 2 columns, 3 rows: H = 3*(3+1)+1 = 13, W = 2*(4+1)+1 = 11
    assert grid.shape == (13, 11)
    assert grid.dtype == np.uint8
    expected = np.full((13, 11), 255, dtype=np.uint8)
    for k in range(n):
        r, c = divmod(k, nrow)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        expected[top : top + h, left : left + w] = 10 * (k + 1)
    np.testing.assert_array_equal(grid, expected)
    # The unused last cell stays padding colour.
    assert (grid[9:12, 6:10] == 255).all()


def test_make_grid_rgb_shape_and_default_nrow() -> None:
    grid = make_grid(_tiles(5, 3, 3, 4), padding=2, pad_value=0)
    # default nrow = ceil(sqrt(5)) = 3 -> 3 cols, 2 rows
    assert grid.shape == (2 * (3 + 2) + 2, 3 * (4 + 2) + 2, 3)
    assert grid[0, 0].tolist() == [0, 0, 0]
    assert grid[2, 2].tolist() == [10, 10, 10]
    assert grid[2, 2 + 6].tolist() == [20, 20, 20]


def test_make_grid_nrow_larger_than_n_and_no_padding() -> None:
    grid = make_grid(_tiles(2, 1, 3, 3), nrow=8, padding=0)
    assert grid.shape == (3, 6)
    assert (grid[:, :3] == 10).all() and (grid[:, 3:] == 20).all()


@pytest.mark.parametrize("shape", [(3, 3, 3), (2, 2, 3, 3), (0, 1, 3, 3)])
def test_make_grid_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError):
        make_grid(torch.zeros(shape))


def test_save_png_round_trip(tmp_path) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(7, 5, 3), dtype=np.uint8)
    gray = rng.integers(0, 256, size=(6, 9), dtype=np.uint8)
    save_png(rgb, tmp_path / "rgb.png")
    save_png(gray, tmp_path / "sub" / "gray.png")
    with Image.open(tmp_path / "rgb.png") as im:
        assert im.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(im), rgb)
    with Image.open(tmp_path / "sub" / "gray.png") as im:
        assert im.mode == "L"
        np.testing.assert_array_equal(np.asarray(im), gray)
    # No temp files left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rgb.png", "sub"]
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["gray.png"]


def test_save_png_overwrites_and_rejects_bad_input(tmp_path) -> None:
    path = tmp_path / "x.png"
    save_png(np.zeros((2, 2), np.uint8), path)
    save_png(np.full((3, 3), 7, np.uint8), path)
    with Image.open(path) as im:
        assert im.size == (3, 3)
    with pytest.raises(ValueError):
        save_png(np.zeros((2, 2), np.float32), path)
    with pytest.raises(ValueError):
        save_png(np.zeros((2, 2, 4), np.uint8), path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]


def test_png_bytes_decodes() -> None:
    arr = np.arange(12, dtype=np.uint8).reshape(3, 4)
    data = png_bytes(arr)
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    with Image.open(io.BytesIO(data)) as im:
        np.testing.assert_array_equal(np.asarray(im), arr)


def test_save_grid_matches_make_grid(tmp_path) -> None:
    images = _tiles(4, 3, 5, 5)
    save_grid(images, tmp_path / "g.png", nrow=2)
    with Image.open(tmp_path / "g.png") as im:
        np.testing.assert_array_equal(np.asarray(im), make_grid(images, nrow=2))


def test_save_each_names_and_content(tmp_path) -> None:
    images = _tiles(3, 1, 4, 2)
    paths = save_each(images, tmp_path / "out", prefix="img")
    assert [p.name for p in paths] == ["img-00000.png", "img-00001.png", "img-00002.png"]
    assert all(p.parent == tmp_path / "out" for p in paths)
    for k, p in enumerate(paths):
        with Image.open(p) as im:
            arr = np.asarray(im)
        assert arr.shape == (4, 2)
        assert (arr == 10 * (k + 1)).all()
    rgb_paths = save_each(_tiles(1, 3, 2, 2), tmp_path / "out")
    assert rgb_paths[0].name == "sample-00000.png"
    with Image.open(rgb_paths[0]) as im:
        assert np.asarray(im).shape == (2, 2, 3)
