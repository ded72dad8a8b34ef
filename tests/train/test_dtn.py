"""The Domain Transfer Network end to end: a tiny run on folders and on fashion2emoji, `gankit
translate` on a folder of photos, its scores, f kept fixed, and the inputs it refuses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from gankit.api import train_config
from gankit.cli import main
from gankit.config import build_config
from gankit.data.emoji import installed_styles
from gankit.errors import GankitError
from gankit.metrics.fmnist_classifier import WEIGHTS, load_fmnist_classifier
from gankit.metrics.translation import emoji_scores
from gankit.resolve import resolve
from gankit.translating import evaluate_translator, load_translator
from tests.conftest import needs_fmnist

needs_emoji = pytest.mark.skipif(not installed_styles()[0], reason="no emoji package installed "
                                 "(apt-get install fonts-noto-color-emoji)")


def tiny(out: Path, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"model": "dtn", "image_size": "16", "width": 8, "steps": 2, "batch_size": 4,
                            "log_every": 1, "sample_every": 2, "checkpoint_every": 2, "progress": False,
                            "out": str(out), "precision": "fp32"}
    return base | kw


def folder(root: Path, n: int, rgb: bool, seed: int) -> Path:
    """n pictures of 20x20: a bright blob on black (RGB ones in colour)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True)
    for k in range(n):
        img = np.zeros((20, 20, 3) if rgb else (20, 20), np.uint8)
        i, j = rng.integers(0, 10, 2)
        img[i:i + 9, j:j + 9] = rng.integers(100, 256, 3) if rgb else rng.integers(100, 256)
        Image.fromarray(img).save(root / f"x{k:02d}.png")
    return root


@pytest.fixture(scope="module")
def emoji_test_split(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """fashion2emoji's held-out split at 32x32 (never trained on), built once for this file's tests."""
    from gankit.data.emoji import fashion2emoji

    return fashion2emoji("test", size=(32, 32), cache_dir=tmp_path_factory.mktemp("emoji"))


def test_dtn_trains_on_two_folders_and_keeps_f_fixed(tmp_path: Path) -> None:
    photos, emoji = folder(tmp_path / "photos", 12, False, 0), folder(tmp_path / "emoji", 12, True, 1)
    # f named by its file (here the shipped classifier's own weights, so f is known below)
    run = train_config(build_config(overrides=tiny(tmp_path / "r", data=str(photos), partner=str(emoji),
                                                    eval_every=2, eval_n=8, dtn_f=str(WEIGHTS))))
    G = run.nets["G"]
    fixed = load_fmnist_classifier().state_dict()
    assert all(torch.equal(v, fixed[k]) for k, v in G.f.state_dict().items())  # f never trained
    assert not G.f.training  # ... and stays in eval mode while G trains
    lt = load_translator(tmp_path / "r")
    assert lt.meta["shape_A"] == [1, 16, 16] and lt.meta["shape_B"] == [3, 16, 16]
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    assert run.translate(x).shape == (5, 3, 16, 16)
    with pytest.raises(GankitError, match="BtoA needs a model trained both ways"):
        lt.generator("BtoA")
    scores = evaluate_translator(tmp_path / "r", n=8)  # folders: f-constancy only, no classes to agree on
    assert set(scores.values) == {"f_const"} and scores.values["f_const"] >= 0
    text = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert '"f_const"' in text and '"loss_const"' in text and '"loss_tid"' in text


def test_an_emoji_folder_of_one_image_is_refused_by_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos, emoji = folder(tmp_path / "photos", 5, False, 0), folder(tmp_path / "my-emoji", 1, True, 1)
    with pytest.raises(GankitError, match=r"my-emoji holds 1 target image; the DTN needs at least 10"):
        train_config(build_config(overrides=tiny(tmp_path / "r", data=str(photos), partner=str(emoji))))
    assert not (tmp_path / "r").exists()  # refused before a run folder was made
    assert main(["train", "--model", "dtn", "--data", str(photos), "--partner", str(emoji), "--image-size",
                 "16", "--out", str(tmp_path / "r2")]) == 2
    assert "my-emoji holds 1 target image" in capsys.readouterr().err


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model": "dtn", "cycle": 5.0}, "translate.cycle is a cyclegan setting"),
    ({"model": "cyclegan", "const": 3.0}, "translate.const is a dtn setting"),
    ({"model": "pix2pix", "dtn_f": "x"}, "translate.dtn_f is a dtn setting"),
    ({"model": "cyclegan", "const_on": "logits"}, "translate.const_on is a dtn setting"),
    ({"model": "dtn", "const_on": "pixels"}, "translate.const_on"),
    ({"model": "cyclegan", "d_cond": "f-class"}, "translate.d_cond is a dtn setting"),
    ({"model": "dtn", "d_cond": "labels"}, "translate.d_cond"),
    ({"model": "dtn", "loss": "lsgan"}, "'lsgan' does not suit model.arch=dtn: it trains with its paper's loss"),
    ({"model": "dtn", "tv": -1.0}, "translate.tv must be 0"),
])
def test_the_dtn_refuses_what_is_not_its_own(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(build_config(overrides=overrides))


@needs_fmnist
def test_constancy_on_logits_ignores_what_fs_head_ignores(tmp_path: Path) -> None:
    from gankit.models.dtn import build_dtn
    from gankit.tasks.dtn import CONST_LOSSES

    G = build_dtn((1, 28, 28), (3, 32, 32), 8)["G"]
    G.f.load_state_dict(load_fmnist_classifier().state_dict())
    W = G.f.head.weight.detach()  # (10, 128)
    h = torch.rand(4, 128)
    v = torch.randn(4, 128)
    v = v - v @ torch.linalg.pinv(W) @ W  # v in the head's null space: the class scores cannot see it
    h2 = h + v
    with torch.no_grad():
        feat = CONST_LOSSES["features"](G, h, h2)
        logit = CONST_LOSSES["logits"](G, h, h2)
        moved = CONST_LOSSES["logits"](G, h, h + W[3])
    assert feat == pytest.approx(v.square().mean().item(), rel=1e-5) and feat > 0.1
    assert logit < 1e-8  # only the class evidence must stay ...
    assert moved > 1e-2  # ... and a move along a class direction is seen
    photos, emoji = folder(tmp_path / "photos", 8, False, 0), folder(tmp_path / "emoji", 10, True, 1)
    train_config(build_config(overrides=tiny(tmp_path / "r", data=str(photos), partner=str(emoji),
                                             const_on="logits")))
    assert "const_on: logits" in (tmp_path / "r" / "config.yaml").read_text()


def test_the_dtn_takes_its_papers_weights_and_a_bad_f_is_named(tmp_path: Path) -> None:
    cfg = resolve(build_config(overrides={"model": "dtn"}))
    assert (cfg.data.source, cfg.train.loss, cfg.train.lr_g, cfg.train.ema) == ("fashion2emoji", "nonsaturating",
                                                                               2e-4, 0.0)
    assert (cfg.translate.const, cfg.translate.tid, cfg.translate.tv, cfg.translate.dtn_f) == (15, 15, 0, "fmnist")
    photos, emoji = folder(tmp_path / "photos", 4, False, 0), folder(tmp_path / "emoji", 10, True, 1)
    with pytest.raises(GankitError, match="translate.dtn_f .*nowhere.safetensors is neither fmnist nor fmnist-emoji nor a file"):
        train_config(build_config(overrides=tiny(tmp_path / "r", data=str(photos), partner=str(emoji),
                                                 dtn_f=str(tmp_path / "nowhere.safetensors"))))
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(b"\x00" * 16)  # a file, not safetensors: named, never unpickled
    with pytest.raises(GankitError, match="translate.dtn_f: cannot read .*damaged.safetensors as safetensors"):
        train_config(build_config(overrides=tiny(tmp_path / "r", data=str(photos), partner=str(emoji),
                                                 dtn_f=str(damaged))))
    with pytest.raises(GankitError, match="image_size"):
        train_config(build_config(overrides=tiny(tmp_path / "r", data=str(photos), partner=str(emoji),
                                                 image_size="20")))


@needs_fmnist
@needs_emoji
def test_translate_writes_an_emoji_for_each_of_50_photos(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.data.fashion_mnist import load_arrays

    run = train_config(build_config(overrides=tiny(tmp_path / "r", data="fashion2emoji")))
    grid = sorted((tmp_path / "r" / "samples").iterdir())[-1]
    with Image.open(grid) as im:  # 4 rows (photo, G(photo), emoji, G(emoji)) of 10 columns, one per class
        assert im.size[0] > 10 * 16 and im.size[1] >= 4 * 16
    photos, _ = load_arrays("test")
    src = tmp_path / "photos"
    src.mkdir()
    for k in range(50):
        Image.fromarray(photos[k, 0].numpy()).save(src / f"photo{k:02d}.png")
    assert main(["translate", str(tmp_path / "r"), str(src), "--out", str(tmp_path / "emoji")]) == 0
    assert "50 images translated AtoB" in capsys.readouterr().out
    out = sorted((tmp_path / "emoji").iterdir())
    assert [p.name for p in out] == [f"photo{k:02d}.png" for k in range(50)]
    with Image.open(out[0]) as im:
        assert im.size == (16, 16) and im.mode == "RGB"
        pixels = torch.from_numpy(np.array(im)).permute(2, 0, 1).float() / 127.5 - 1
    x = torch.from_numpy(photos[:1].numpy()).float() / 127.5 - 1
    x = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    # what the run's G gives the same photo, as the folder loader resized it (to within a pixel level)
    assert (run.translate(x)[0] - pixels).abs().max() < 0.05


@needs_fmnist
@needs_emoji
def test_class_agreement_of_real_emoji_is_their_classifiers_accuracy(emoji_test_split: Any) -> None:
    d = emoji_test_split
    real = d.B.float() / 127.5 - 1
    s = emoji_scores(real[:500], d.labels_B[:500], real[500:1000])
    assert s["class_agreement"] > 0.97 and 0 <= s["fid_emoji"] < 50  # the same distribution: FID near 0
    wrong = emoji_scores(real[:500], (d.labels_B[:500] + 1) % 10, real[500:1000])
    assert wrong["class_agreement"] < 0.05


def test_a_class_conditional_d_starts_as_the_unconditional_one_and_then_reads_the_class() -> None:
    from gankit.models.dtn import DTNDiscriminator

    torch.manual_seed(0)
    plain, cond = DTNDiscriminator(3, 16, 8), DTNDiscriminator(3, 16, 8, classes=10)
    cond.load_state_dict(plain.state_dict() | {"embed.weight": cond.embed.weight})  # same body and head
    plain.eval(), cond.eval()
    x, c = torch.rand(4, 3, 16, 16) * 2 - 1, torch.tensor([0, 3, 3, 9])
    with torch.no_grad():
        assert torch.equal(cond(x, c), plain(x))  # a zero embedding: no class has said anything yet
        cond.embed.weight.normal_()
        a, b = cond(x, c), cond(x, (c + 1) % 10)
        phi = cond.net[:-2](x).sum((2, 3))  # (4, 32): the pooled features the projection reads
        by_hand = plain(x) + torch.einsum("nc,nck->nk", phi, cond.embed.weight[c].view(4, -1, 3))
    assert not torch.allclose(a, b)  # another class, another verdict on the same image
    torch.testing.assert_close(a, by_hand)
    with pytest.raises(ValueError, match="class-conditional"):
        cond(x)


@needs_fmnist
def test_a_dtn_with_a_class_conditional_d_trains_resumes_and_translates(tmp_path: Path) -> None:
    photos, emoji = folder(tmp_path / "photos", 8, False, 0), folder(tmp_path / "emoji", 10, True, 1)
    kw = {"data": str(photos), "partner": str(emoji), "d_cond": "f-class", "const_on": "classes", "steps": 4}
    whole = train_config(build_config(overrides=tiny(tmp_path / "whole", **kw)))
    train_config(build_config(overrides=tiny(tmp_path / "half", **kw) | {"steps": 2}))
    half = train_config(None, resume=tmp_path / "half", overrides={"steps": 4})
    assert whole.nets["D"].embed.weight.abs().sum() > 0  # D learnt something of the classes ...
    for k, v in whole.nets["D"].state_dict().items():  # ... and a resumed run learnt the same
        assert torch.equal(v, half.nets["D"].state_dict()[k]), k
    config = (tmp_path / "whole" / "config.yaml").read_text()
    assert "d_cond: f-class" in config and "const_on: classes" in config
    lt = load_translator(tmp_path / "whole")  # the checkpoint rebuilds the conditional D's layout
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    torch.testing.assert_close(lt.generator("AtoB")(x), whole.translate(x))


@needs_fmnist
@needs_emoji
def test_the_shipped_fmnist_emoji_f_reads_both_domains_where_the_photo_f_reads_one(emoji_test_split: Any) -> None:
    from gankit.metrics.fmnist_classifier import FMNISTClassifier
    from gankit.tasks.dtn import NAMED_F, f_weights

    d = emoji_test_split  # held-out: never trained on
    photos, emoji = d.A[:1000].float() / 127.5 - 1, d.B[:1000].float() / 127.5 - 1
    read = {}
    for name in NAMED_F:
        f = FMNISTClassifier()
        f.load_state_dict(f_weights(name))
        f.eval()
        with torch.no_grad():
            read[name] = [float((f(x).argmax(1) == y).double().mean())
                          for x, y in ((photos, d.labels_A[:1000]), (emoji, d.labels_B[:1000]))]
    assert read["fmnist"][0] > 0.9 and read["fmnist"][1] < 0.7  # photos only: emoji half wrong
    assert read["fmnist-emoji"][0] > 0.9 and read["fmnist-emoji"][1] > 0.97  # both domains
