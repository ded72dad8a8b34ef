"""Training on a user's messy folder: the bad files are named at the start, training goes on."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from gankit.cli import main

TINY = ["--model", "dcgan", "--image-size", "16", "--width", "8", "--latent-dim", "8", "--steps", "3",
        "--log-every", "1", "--no-progress"]


def test_messy_folder_trains_and_names_the_skipped_files(
        messy: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--data", str(messy), *TINY, "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    assert "6 images from" in err and "3 skipped" in err
    for name in ("truncated.jpg", "empty.png", "notes.png"):
        assert name in err
    # Cached: the second run decodes nothing and says so.
    assert main(["train", "--data", str(messy), *TINY, "--out", str(tmp_path / "r2")]) == 0
    assert "from cache" in capsys.readouterr().err


def test_one_image_with_batch_64_trains(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "one").mkdir()
    Image.new("RGB", (30, 20), (200, 10, 10)).save(tmp_path / "one" / "only.png")
    assert main(["train", "--data", str(tmp_path / "one"), *TINY, "--batch-size", "64",
                 "--out", str(tmp_path / "r")]) == 0
    assert "1 image" in capsys.readouterr().err


def test_empty_folder_fails_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "none").mkdir()
    (tmp_path / "none" / "readme.txt").write_text("no pictures here")
    assert main(["train", "--data", str(tmp_path / "none"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "contains no image files" in err and "Traceback" not in err
