"""gankit eval on folders and on image runs, with the shipped fmnist features."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.cli import main
from tests.conftest import needs_fmnist


def _folder(path: Path, images: np.ndarray) -> Path:
    path.mkdir(parents=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(path / f"{i:04d}.png")
    return path


@needs_fmnist
def test_eval_two_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.data.fashion_mnist import load_arrays

    test, labels = load_arrays("test")
    real = _folder(tmp_path / "real", test[:400, 0].numpy())
    same = _folder(tmp_path / "same", test[400:800, 0].numpy())
    # "Mode collapse": 400 copies of trousers only
    trousers = test[labels == 1][:1, 0].numpy()
    collapsed = _folder(tmp_path / "collapsed", np.repeat(trousers, 400, axis=0))
    args = ["eval", "--real", str(real), "--metrics", "fid,pr,classes", "--json"]
    assert main([*args, "--fake", str(same)]) == 0
    good = json.loads(capsys.readouterr().out)
    assert main([*args, "--fake", str(collapsed)]) == 0
    bad = json.loads(capsys.readouterr().out)
    assert good["n_fake"] == good["n_real"] == 400 and good["features"] == "fmnist"
    assert good["fid"] < bad["fid"] / 10
    assert good["recall"] > 0.5 > bad["recall"]
    assert good["classes_hit"] == 10 and bad["classes_hit"] == 1
    assert bad["class_kl"] > 2


def test_eval_image_run_with_fmnist_features(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.api import train_config
    from gankit.data import from_tensor
    from tests.conftest import tiny_config, tiny_images

    run = tmp_path / "r"
    train_config(tiny_config(run, model="dcgan", data="tensor", steps=4, width=8), data=from_tensor(tiny_images()))
    capsys.readouterr()
    # The run's data was a tensor, which `gankit eval` cannot reload: a clear error.
    assert main(["eval", str(run)]) == 2
    assert "neither a dataset" in capsys.readouterr().err


def test_missing_inception_weights_say_where_to_get_them(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a").mkdir()
    Image.new("L", (8, 8)).save(tmp_path / "a" / "x.png")
    code = main(["eval", "--real", str(tmp_path / "a"), "--fake", str(tmp_path / "a"),
                 "--features", f"inception:{tmp_path / 'nope.pth'}"])
    err = capsys.readouterr().err
    assert code == 2 and "pt_inception-2015-12-05-6726825d.pth" in err and "Traceback" not in err


@needs_fmnist
def test_eval_stacked_fashion_mnist_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import gankit.metrics as gm

    monkeypatch.setattr(gm, "N_MODES_STACKED", 600)  # the protocol's 26,000, cut for the test
    run = tmp_path / "s"
    assert main(["train", "--data", "stacked-fashion-mnist", "--model", "dcgan", "--width", "8",
                 "--latent-dim", "8", "--steps", "3", "--no-progress", "--out", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--metrics", "modes", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 1 <= out["modes"] <= 600 and out["modes_kl"] > 0


def test_eval_warns_about_mismatched_folders_and_tiny_samples(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(0)
    real = _folder(tmp_path / "real", rng.integers(0, 256, (200, 28, 28), dtype=np.uint8))  # gray 28 px
    fake = _folder(tmp_path / "fake", rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8))  # colour 32 px
    assert main(["eval", "--real", str(real), "--fake", str(fake), "--metrics", "fid,kid"]) == 0
    out, err = capsys.readouterr()
    assert "the real images are 28x28 and the generated 32x32" in err
    assert "the real images have 1 channel and the generated 3" in err
    assert "generated side: 40 images: fid, kid on 40 images is dominated by bias; use >= 2,000" in err
    assert "real side: 200 images" in err
    assert "fid          " in out and "↓" in out  # each number says which way is better
    # the same folders compared with themselves at a size that suffices: no size or channel warning
    assert main(["eval", "--real", str(real), "--fake", str(real), "--metrics", "fid"]) == 0
    assert "resized" not in capsys.readouterr().err


def test_eval_table_says_which_way_is_better() -> None:
    from gankit.metrics import higher_is_better

    assert not higher_is_better("fid") and higher_is_better("recall") and higher_is_better("coverage")
