"""Videos for next-frame prediction: moving Fashion-MNIST is deterministic from its seed and its
items bounce inside the frame; a folder of frame folders or video files loads, and bad input
stops with one line naming the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.data.video import (
    VIDEOS,
    load_video,
    load_video_folder,
    moving_fashion_mnist,
    trajectories,
)
from gankit.errors import GankitError
from tests.conftest import needs_fmnist

SMALL = VIDEOS.get("mfmnist-small")


@needs_fmnist
def test_moving_fashion_mnist_is_a_function_of_its_seed(tmp_path: Path) -> None:
    a = moving_fashion_mnist(SMALL, "train", 8, seed=0)
    b = moving_fashion_mnist(SMALL, "train", 8, seed=0, cache_dir=tmp_path)
    assert torch.equal(a.frames, b.frames) and a.frames.dtype == torch.uint8
    assert a.frames.shape == (8 * 5, 1, 32, 32) and (a.context, a.horizon) == (4, 1)
    # sequence i depends only on (seed, split, i): the first 4 of 8 are the 4 drawn alone
    assert torch.equal(moving_fashion_mnist(SMALL, "train", 4, seed=0).frames, a.frames[:20])
    assert not torch.equal(moving_fashion_mnist(SMALL, "train", 8, seed=1).frames, a.frames)
    assert not torch.equal(moving_fashion_mnist(SMALL, "test", 8, seed=0).frames, a.frames)
    cached = moving_fashion_mnist(SMALL, "train", 8, seed=0, cache_dir=tmp_path)  # read back, the same
    assert torch.equal(cached.frames, a.frames) and "from cache" in cached.notes[0]


@needs_fmnist
def test_the_item_bounces_and_never_leaves_the_frame() -> None:
    data = moving_fashion_mnist(SMALL, "train", 32, seed=3)
    seqs = data.frames.view(32, 5, 32, 32).long()
    mass = seqs.sum((2, 3))  # one item, never cut by an edge: the same pixels in every frame
    assert (mass == mass[:, :1]).all() and (mass > 0).all()
    assert not all(torch.equal(s[0], s[1]) for s in seqs)  # and it moves


def test_trajectories_reflect_at_the_edges() -> None:
    rngs = [np.random.default_rng([0, 0, i]) for i in range(64)]
    pos = trajectories(rngs, 2, 40)  # (N, items, T, 2) in [0, 1]
    assert pos.min() >= 0 and pos.max() <= 1
    step = np.abs(np.diff(pos, axis=2))
    assert step.max() <= 0.1 + 1e-9  # at most one step length a frame
    # somewhere an item reaches an edge and then moves back inside: a bounce
    at_edge = (pos[..., :-1, :] == 0) | (pos[..., :-1, :] == 1)
    assert at_edge.any() and (np.abs(pos[..., 1:, :] - pos[..., :-1, :])[at_edge] > 0).all()


def _frames(folder: Path, n: int, size: tuple[int, int] = (20, 20)) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((size[1], size[0]), 40 * i, np.uint8)).save(folder / f"{i:03d}.png")


def test_a_folder_of_frame_folders_and_gifs(tmp_path: Path) -> None:
    _frames(tmp_path / "v" / "a", 6)
    _frames(tmp_path / "v" / "b", 3, (24, 20))
    frames = [Image.fromarray(np.full((16, 16, 3), 30 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "v" / "c.gif", save_all=True, append_images=frames[1:], duration=100)
    data = load_video(str(tmp_path / "v"), size=(16, 16), min_length=3)
    assert data.lengths.tolist() == [6, 3, 4] and data.frames.shape == (13, 1, 16, 16)  # all gray: 1 channel
    assert data.starts.tolist() == [0, 6, 9]
    assert data.clip_starts(4).tolist() == [0, 1, 2, 9]  # 3 clips of 4 in a, none in b, 1 in c


def test_bad_videos_are_named_in_one_line(tmp_path: Path) -> None:
    _frames(tmp_path / "mixed" / "s", 3)
    Image.fromarray(np.zeros((10, 12), np.uint8)).save(tmp_path / "mixed" / "s" / "004.png")
    with pytest.raises(GankitError, match=r"004\.png: a frame of 12x10.*share a size"):
        load_video_folder(tmp_path / "mixed")
    _frames(tmp_path / "short" / "s", 2)
    with pytest.raises(GankitError, match=r"short/s: 2 frame\(s\), shorter than the 5 needed"):
        load_video_folder(tmp_path / "short", min_length=5)
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "clip.gif").write_bytes(b"GIF89a not really")
    with pytest.raises(GankitError, match=r"clip\.gif: cannot decode this video"):
        load_video_folder(tmp_path / "broken")
    with pytest.raises(GankitError, match="neither a video set"):
        load_video("no-such-set")


def test_video_files_need_the_video_extra_or_are_named_when_broken(tmp_path: Path) -> None:
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "clip.mp4").write_bytes(b"\x00" * 64)
    import importlib.util

    if importlib.util.find_spec("imageio") is None:
        with pytest.raises(GankitError, match=r"clip\.mp4: decoding \.mp4 videos needs imageio.*gankit\[video\]"):
            load_video_folder(tmp_path / "v")
    else:
        with pytest.raises(GankitError, match=r"clip\.mp4: cannot decode this video"):
            load_video_folder(tmp_path / "v")
