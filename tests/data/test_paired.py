"""Paired and unpaired data for image translation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data.paired import (
    day2night,
    day_to_night,
    edges2fashion,
    fmnist_classes,
    fmnist_edges,
    load_paired_folder,
)
from gankit.errors import GankitError
from tests.conftest import needs_fmnist


def test_edges_of_a_square_are_its_outline() -> None:
    img = torch.zeros(1, 1, 16, 16, dtype=torch.uint8)
    img[..., 4:12, 4:12] = 255
    e = fmnist_edges(img)[0, 0] > 0
    assert e[4, 8] and e[11, 8] and e[8, 4] and e[8, 11]  # on the border
    assert not e[8, 8] and not e[0, 0]  # not inside, not in the flat background


def test_night_is_darker_and_bluer_by_the_documented_formula() -> None:
    day = torch.full((1, 1, 2, 2), 200, dtype=torch.uint8)
    night = day_to_night(day)[0, :, 0, 0].float()
    v = (200 / 255) ** 2 * 0.6 * 255
    assert night.tolist() == pytest.approx([round(v * 0.55), round(v * 0.75), round(v)], abs=0.5)


def test_night_by_table_equals_the_float_arithmetic_at_every_level() -> None:
    levels = torch.arange(256, dtype=torch.uint8).view(1, 1, 16, 16)
    x = (levels.float() / 255).expand(-1, 3, -1, -1)  # the formula, pixel by pixel
    by_hand = (x.pow(2.0) * 0.6 * torch.tensor([0.55, 0.75, 1.0]).view(1, 3, 1, 1) * 255).round().to(torch.uint8)
    assert torch.equal(day_to_night(levels), by_hand)
    rgb = torch.cat([levels, levels.flip(3), levels.flip(2)], 1)  # three channels: each by its own
    assert torch.equal(day_to_night(rgb)[:, 2], by_hand[:, 2].flip(1))  # (N, H, W): rows flipped
    assert torch.equal(day_to_night(rgb)[:, 0], by_hand[:, 0])


@needs_fmnist
def test_day2night_resized_once_per_gray_equals_resizing_rgb() -> None:
    from gankit.data.fashion_mnist import resize_cover
    from gankit.data.paired import load_translation

    d = load_translation("day2night", True, "test", (16, 16))
    raw = day2night("test")
    assert d.A.is_contiguous() and d.A.shape == (10_000, 3, 16, 16)
    assert torch.equal(d.A[:50], resize_cover(raw.A[:50].contiguous(), (16, 16)))
    assert torch.equal(d.B[:50], resize_cover(raw.B[:50], (16, 16)))


def write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_side_by_side_folder_splits_A_left_and_B_right(tmp_path: Path) -> None:
    for i in range(3):
        ab = np.zeros((8, 16), np.uint8)
        ab[:, :8] = 10 * i  # A
        ab[:, 8:] = 200  # B
        write(tmp_path / "ab" / f"{i}.png", ab)
    p = load_paired_folder(tmp_path / "ab", (8, 8), cache_dir=tmp_path / "c")
    assert p.A.shape == (3, 1, 8, 8) and p.B.shape == (3, 1, 8, 8)
    assert p.A[:, 0, 4, 4].tolist() == [0, 10, 20] and (p.B == 200).all()


def test_two_folders_pair_by_name_whatever_their_order_and_extension(tmp_path: Path) -> None:
    for i, name in enumerate(["x", "y", "z"]):
        write(tmp_path / "A" / f"{name}.png", np.full((8, 8), 10 * i, np.uint8))
        write(tmp_path / "B" / f"{name}.bmp", np.full((8, 8), 100 + 10 * i, np.uint8))
    p = load_paired_folder(tmp_path / "A", (8, 8), partner=tmp_path / "B", cache_dir=tmp_path / "c")
    assert (p.B.int() - p.A.int() == 100).all()


def test_a_missing_partner_file_is_named(tmp_path: Path) -> None:
    for name in ("x", "y"):
        write(tmp_path / "A" / f"{name}.png", np.zeros((8, 8), np.uint8))
    write(tmp_path / "B" / "x.png", np.zeros((8, 8), np.uint8))
    write(tmp_path / "B" / "w.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(GankitError) as e:
        load_paired_folder(tmp_path / "A", (8, 8), partner=tmp_path / "B", cache_dir=tmp_path / "c")
    msg = str(e.value)
    assert f"{tmp_path / 'A' / 'y.png'}: no file of that name in {tmp_path / 'B'}" in msg
    assert f"{tmp_path / 'B' / 'w.png'}: no file of that name" in msg


@needs_fmnist
def test_builtin_tasks() -> None:
    e = edges2fashion(n=100)
    assert e.A.shape == e.B.shape == (100, 1, 28, 28) and set(e.A.unique().tolist()) <= {0, 255}
    assert e.labels is not None and len(e.labels) == 100
    d = day2night(n=10)
    assert d.A.shape == d.B.shape == (10, 3, 28, 28) and d.B.float().mean() < d.A.float().mean()
    u = fmnist_classes("sneaker", "5")
    assert u.name == "sneaker2sandal" and len(u.A) == len(u.B) == 6000
    with pytest.raises(GankitError, match="unknown Fashion-MNIST class 'boot'"):
        fmnist_classes("boot", "sandal")


@needs_fmnist
def test_fmnist_items_cuts_the_training_split_of_builtin_tasks_only() -> None:
    from gankit.config import build_config
    from gankit.translating import load_data

    cfg = build_config(overrides={"model": "pix2pix", "data": "day2night", "image_size": "16", "fmnist_items": 300})
    train, test = load_data(cfg, "train"), load_data(cfg, "test")
    assert len(train.A) == len(train.B) == 300 and len(test.A) == 10_000  # the test split stays whole
    whole = load_data(build_config(overrides={"model": "pix2pix", "data": "day2night", "image_size": "16"}))
    assert len(whole.A) == 60_000 and torch.equal(whole.A[:300], train.A) and torch.equal(whole.B[:300], train.B)
    pair = load_data(build_config(overrides={"model": "cyclegan", "data": "sneaker2sandal", "fmnist_items": 40}))
    assert len(pair.A) == len(pair.B) == 40  # of each domain
    emoji = load_data(build_config(overrides={"model": "dtn", "data": "fashion2emoji", "image_size": "16",
                                              "fmnist_items": 50}))
    assert len(emoji.A) == len(emoji.labels_A) == 50 and len(emoji.B) > 50  # the photos only


def test_fmnist_items_on_a_folder_is_refused(tmp_path: Path) -> None:
    from gankit.data.paired import load_translation

    write(tmp_path / "a" / "0.png", np.zeros((8, 16, 3), np.uint8))
    with pytest.raises(GankitError, match="fmnist_items cuts the built-in Fashion-MNIST tasks"):
        load_translation(str(tmp_path / "a"), True, items=10)
