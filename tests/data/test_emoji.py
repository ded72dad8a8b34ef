"""Clothing emoji from Debian's packages: every style renders, the mapping covers the ten classes,
the augmented set is deterministic and cached, and a machine without the packages is told what to
install."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gankit.data import emoji
from gankit.data.emoji import (
    CLASS_EMOJI,
    STYLES,
    Style,
    augment,
    installed_styles,
    load_bases,
    render_emoji,
)
from gankit.data.fashion_mnist import CLASSES
from gankit.errors import GankitError
from tests.conftest import needs_fmnist

HERE = {s.name for s in installed_styles()[0]}


@pytest.mark.parametrize("style", STYLES, ids=[s.name for s in STYLES])
def test_each_installed_style_renders_every_class_deterministically(style: Style) -> None:
    if style.name not in HERE:
        pytest.skip(f"{style.package} is not installed (apt-get install {style.package})")
    bases = load_bases([style])
    assert set(bases.labels.tolist()) == set(range(10))  # every class has a glyph in every style
    assert bases.images.shape[1:] == (4, emoji.BASE, emoji.BASE)
    images, labels = augment(bases, 3, 32, seed=5)
    again, _ = augment(bases, 3, 32, seed=5)
    other, _ = augment(bases, 3, 32, seed=6)
    assert images.shape == (30, 3, 32, 32) and images.dtype == torch.uint8
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert labels.tolist() == [i % 10 for i in range(30)]
    ink = (images.float().amax(1) > 40).flatten(1).float().mean(1)  # share of pixels drawn
    assert (ink > 0.08).all() and (ink < 0.95).all(), ink  # an item on a black ground, in every image
    assert images[:, :, 0, 0].float().mean() < 10  # the ground is black, as Fashion-MNIST's


def test_the_mapping_covers_the_ten_classes_without_sharing_a_glyph() -> None:
    assert len(CLASS_EMOJI) == len(CLASSES) == 10
    assert all(len(glyphs) >= 1 for glyphs in CLASS_EMOJI)
    chars = [g.char for glyphs in CLASS_EMOJI for g in glyphs]
    assert len(chars) == len(set(chars))
    assert CLASS_EMOJI[0][0].char == "\U0001F455" and CLASS_EMOJI[9][0].char == "\U0001F462"  # T-shirt, boot
    assert emoji.__doc__ is not None and all(c in emoji.__doc__ for c in chars)  # the mapping is documented


def test_the_rendered_set_is_cached_and_gray_on_request(tmp_path: Path) -> None:
    if not HERE:
        pytest.skip("no emoji package installed")
    images, labels, notes = render_emoji(2, 16, seed=3, cache_dir=tmp_path)
    assert images.shape == (20, 3, 16, 16) and notes[0].startswith("emoji: ")
    assert len(list((tmp_path / "emoji").glob("*.npz"))) == 1
    cached, cached_labels, _ = render_emoji(2, 16, seed=3, cache_dir=tmp_path)
    assert torch.equal(images, cached) and torch.equal(labels, cached_labels)
    gray, _, _ = render_emoji(2, 16, seed=3, channels=1, cache_dir=tmp_path)
    assert gray.shape == (20, 1, 16, 16)


def test_missing_packages_say_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gone = tuple(Style(s.name, s.package, str(tmp_path / "nowhere" / s.name), s.kind) for s in STYLES)
    monkeypatch.setattr(emoji, "STYLES", gone)
    with pytest.raises(GankitError, match="apt-get install fonts-noto-color-emoji fonts-symbola ruby-gemojione "
                                          "libjs-emojify"):
        render_emoji(2, 16, cache_dir=tmp_path)
    if "gemojione" in HERE:  # one set is enough; the note names the others
        monkeypatch.setattr(emoji, "STYLES", (gone[0], STYLES[2]))
        _, _, notes = render_emoji(2, 16, cache_dir=tmp_path)
        assert "not installed: noto" in notes[0] and "apt-get install fonts-noto-color-emoji" in notes[0]


@needs_fmnist
def test_fashion2emoji_pairs_photos_and_emoji_of_the_same_classes(tmp_path: Path) -> None:
    if not HERE:
        pytest.skip("no emoji package installed")
    d = emoji.fashion2emoji("test", size=(16, 16), cache_dir=tmp_path)
    assert d.A.shape == (10_000, 1, 16, 16) and d.B.shape == (2_000, 3, 16, 16)
    assert d.labels_A is not None and d.labels_B is not None and d.target_classifier == "emoji"
    assert torch.bincount(d.labels_B).tolist() == [200] * 10
    rgb = emoji.fashion2emoji("test", size=(16, 16), channels=3, cache_dir=tmp_path)
    assert rgb.A.shape[1] == rgb.B.shape[1] == 3
    with pytest.raises(GankitError, match="square"):
        emoji.fashion2emoji("test", size=(16, 32), cache_dir=tmp_path)
