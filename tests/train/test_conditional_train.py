"""Class-conditional training end to end: labels reach G and D, the run resumes exactly, the
checkpoint describes its classes, and `gankit sample --class` / `eval --per-class` use them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from gankit.data import from_tensor
from gankit.data.toy import RING
from gankit.errors import GankitError
from gankit.images import label_rows, make_grid
from gankit.sampling import load_generator
from tests.conftest import needs_fmnist, tiny_config, tiny_images
from tests.train.test_resume import assert_same_run

RING_CENTERS = RING.modes.centers


def nearest_mode(points: torch.Tensor) -> np.ndarray:
    return ((points[:, None, :] - RING_CENTERS[None]) ** 2).sum(-1).argmin(1).numpy()


@pytest.mark.parametrize("kind", ["cgan", "acgan", "projection"])
def test_each_class_goes_to_its_own_mode_of_the_ring(tmp_path: Path, kind: str) -> None:
    # The ring's labels are its 8 modes: a G that uses its label puts class k on mode k. An
    # unconditional G (or a D that never saw the right labels) could not.
    run = train_config(tiny_config(tmp_path / kind, conditional=kind, steps=300, batch_size=128, width=32,
                            lr_g=2e-3, lr_d=2e-3, ema=0.0, checkpoint_every=300, sample_every=300,
                            log_every=50, diagnose_every=0))
    assert run.classes == [f"mode {k}" for k in range(8)]
    hits = [float((nearest_mode(run.sample(200, y=torch.full((200,), k))) == k).mean()) for k in range(8)]
    assert min(hits) > 0.9, hits
    if kind == "acgan":  # D's second head has learnt to classify the real data (chance: 1/8)
        from gankit.data import load_data

        data = load_data(run.config.data)
        with torch.no_grad():
            _, class_logits = run.D.eval()(data.data[:2000], None)
        assert float((class_logits.argmax(1) == data.labels[:2000]).float().mean()) > 0.95


@pytest.mark.parametrize("kind", ["acgan", "projection"])
def test_conditional_resume_is_bit_identical(tmp_path: Path, kind: str) -> None:
    # images with labels and batch norm: the label draws ride on the checkpointed RNG
    images, labels = tiny_images(48, 16), torch.arange(48) % 3
    kw = {"model": "dcgan", "width": 8, "latent_dim": 8, "batch_size": 16, "data": "tensor",
          "conditional": kind, "ema": 0.9}
    train_config(tiny_config(tmp_path / "full", steps=20, **kw), data=from_tensor(images, labels))
    train_config(tiny_config(tmp_path / "part", steps=10, checkpoint_every=10, **kw), data=from_tensor(images, labels))
    train_config(None, data=from_tensor(images, labels), resume=tmp_path / "part",  # type: ignore[arg-type]
          overrides={"steps": 20})
    assert_same_run(tmp_path / "full", tmp_path / "part")
    meta = load_checkpoint(tmp_path / "full").meta
    assert meta["num_classes"] == 3 and meta["classes"] is None


def test_resume_with_other_classes_is_refused(tmp_path: Path) -> None:
    images = tiny_images(48, 16)
    kw = {"model": "dcgan", "width": 8, "latent_dim": 8, "batch_size": 16, "data": "tensor",
          "conditional": "cgan"}
    train_config(tiny_config(tmp_path / "r", steps=10, **kw), data=from_tensor(images, torch.arange(48) % 3))
    with pytest.raises(GankitError, match="now have 4 classes, but .* was trained on 3"):
        train_config(None, data=from_tensor(images, torch.arange(48) % 4), resume=tmp_path / "r",  # type: ignore[arg-type]
              overrides={"steps": 20})


def test_conditional_needs_labels_and_rejects_packing(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="needs labelled data"):
        train_config(tiny_config(tmp_path / "u", conditional="cgan", data="tensor"),
              data=from_tensor(torch.randn(64, 2)))
    with pytest.raises(GankitError, match="reg.pack or reg.unrolled"):
        tiny_config(tmp_path / "p", conditional="cgan", pack=2)
    with pytest.raises(GankitError, match="cgan, acgan, projection"):
        tiny_config(tmp_path / "k", conditional="infogan")


def test_grid_rows_are_classes_and_sample_class_from_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, labels = tiny_images(60, 16), torch.arange(60) % 3
    run_dir = tmp_path / "img"
    train_config(tiny_config(run_dir, model="dcgan", width=8, latent_dim=8, batch_size=12, data="tensor",
                      conditional="projection", steps=10, sample_every=10, checkpoint_every=10),
          data=from_tensor(images, labels))
    grid = np.asarray(Image.open(run_dir / "samples" / "step-000010.png"))
    assert grid.shape[0] == 3 * (16 + 2) + 2  # one row per class
    assert grid.shape[1] > 8 * (16 + 2) + 2  # 8 columns plus the margin naming the rows

    lg = load_generator(str(run_dir))
    assert lg.num_classes == 3
    assert main(["sample", str(run_dir), "--class", "2", "-n", "5", "--out", str(tmp_path / "c2")]) == 0
    assert len(list((tmp_path / "c2").glob("*.png"))) == 5
    assert "of class 2" in capsys.readouterr().out
    # the default: one row per class, ceil(7 / 3) = 3 samples each, the same z down each column
    assert main(["sample", str(run_dir), "-n", "7", "--out", str(tmp_path / "all")]) == 0
    each = sorted((tmp_path / "all").glob("*.png"))
    assert len(each) == 9
    assert main(["sample", str(run_dir), "--class", "shoe", "--out", str(tmp_path / "x.png")]) == 2
    assert "not one of this run's 3 classes" in capsys.readouterr().err
    plain = tmp_path / "plain"
    train_config(tiny_config(plain, steps=10))
    assert main(["sample", str(plain), "--class", "1", "--out", str(tmp_path / "y.png")]) == 2
    assert "needs a conditional run" in capsys.readouterr().err


def test_label_rows_adds_a_margin_and_keeps_the_tiles() -> None:
    x = torch.rand(6, 3, 8, 8) * 2 - 1
    grid = make_grid(x, nrow=3)
    labelled = label_rows(grid, ["first", "second"], 8)
    margin = labelled.shape[1] - grid.shape[1]
    assert labelled.shape[0] == grid.shape[0] and margin > 0
    assert np.array_equal(labelled[:, margin:], grid)
    assert (labelled[:, :margin] < 128).any()  # some text was drawn


class _Bank(torch.nn.Module):
    """A stand-in G base that returns real images of the class its one-hot label names (shifted by
    ``shift`` classes): a perfect conditional G when shift = 0, a systematically wrong one else."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, shift: int) -> None:
        super().__init__()
        self.by_class = [images[labels == k].float() / 127.5 - 1 for k in range(10)]
        self.shift = shift
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        y = (h[:, -10:].argmax(1) + self.shift) % 10
        pick = (h[:, 0].abs() * 1e4).long()
        return torch.stack([self.by_class[int(c)][int(i) % len(self.by_class[int(c)])] for c, i in zip(y, pick, strict=True)])


@needs_fmnist
@pytest.mark.parametrize("shift", [0, 1])
def test_per_class_scores_of_a_perfect_and_of_a_wrong_generator(shift: int) -> None:
    from gankit.config import build_config
    from gankit.data import InMemoryData
    from gankit.data.fashion_mnist import CLASSES, load_arrays
    from gankit.metrics import evaluate_per_class
    from gankit.models.conditional import ConditionalG

    images, labels = load_arrays("test")
    images, labels = images[:3000], labels[:3000]
    G = ConditionalG(_Bank(images, labels, shift), 10, 10)
    with torch.no_grad():
        G.embed.weight.copy_(torch.eye(10))  # the embedding is the one-hot label
    cfg = build_config(overrides={"conditional": "cgan"})
    data = InMemoryData(images, "fashion-mnist", labels=labels, classes=list(CLASSES))
    scores = evaluate_per_class(G, cfg, list(CLASSES), 200, data=data)
    if shift == 0:  # real images of the right class: the classifier's own accuracy, FID near 0
        assert scores["class_acc"] > 0.85 and scores["class_fid"] < 5
    else:  # every class answered with the next class's images
        assert scores["class_acc"] < 0.15 and scores["class_fid"] > 20
    assert set(scores) == {"class_acc", "class_fid"} | {f"{m}/{c}" for c in CLASSES for m in ("acc", "fid")}
