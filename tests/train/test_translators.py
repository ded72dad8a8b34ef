"""Image translation end to end: pix2pix and CycleGAN train from the API and the CLI, resume
exactly, are applied to a folder by `gankit translate`, scored by `gankit eval`, and refuse the
options that are not theirs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import gankit
from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from gankit.config import build_config
from gankit.data.paired import parse_class_pair
from gankit.errors import GankitError
from gankit.resolve import resolve
from gankit.tasks.translation import TranslationRun
from gankit.translating import load_translator
from tests.conftest import needs_fmnist
from tests.train.test_resume import logged

SIZE = 16


def shapes(n: int, seed: int) -> list[np.ndarray]:
    """n gray 16x16 pictures: a bright square at a random place on black."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        img = np.zeros((SIZE, SIZE), np.uint8)
        i, j = rng.integers(0, SIZE - 6, 2)
        img[i:i + 6, j:j + 6] = rng.integers(128, 256)
        out.append(img)
    return out


@pytest.fixture
def side_by_side(tmp_path: Path) -> Path:
    """pix2pix's layout: A (a square) left, B (its negative) right, 16x32 each."""
    root = tmp_path / "pairs"
    root.mkdir()
    for k, a in enumerate(shapes(12, 0)):
        Image.fromarray(np.concatenate([a, 255 - a], 1)).save(root / f"p{k:02d}.png")
    return root


@pytest.fixture
def two_domains(tmp_path: Path) -> tuple[Path, Path]:
    """CycleGAN's layout: two folders of unrelated images (squares; their negatives)."""
    a_dir, b_dir = tmp_path / "A", tmp_path / "B"
    a_dir.mkdir()
    b_dir.mkdir()
    for k, a in enumerate(shapes(10, 1)):
        Image.fromarray(a).save(a_dir / f"a{k}.png")
    for k, b in enumerate(shapes(9, 2)):
        Image.fromarray(255 - b).save(b_dir / f"b{k}.png")
    return a_dir, b_dir


def tiny(out: Path, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"image_size": str(SIZE), "width": 8, "steps": 6, "batch_size": 4, "log_every": 2,
                            "sample_every": 3, "checkpoint_every": 3, "progress": False, "out": str(out),
                            "precision": "fp32"}  # the same numbers on every machine
    return base | kw


def grid_size(path: Path) -> tuple[int, int]:
    """(W, H) of a sample grid's tiles, without the margin naming its rows (checked to be there)."""
    with Image.open(path) as im:
        w, h = im.size
        tiles_w = 8 * 18 + 2  # 8 columns of 16 px tiles
        assert w > tiles_w  # the row names' margin
        return tiles_w, h


# --------------------------------------------------------------------------- end to end


def test_pix2pix_trains_from_the_api(tmp_path: Path, side_by_side: Path) -> None:
    run = gankit.fit(str(side_by_side), **tiny(tmp_path / "p", model="pix2pix"))
    assert isinstance(run, TranslationRun) and run.step == 6
    ckpt = load_checkpoint(tmp_path / "p")
    info = ckpt.meta["translator"]
    assert info["arch"] == "pix2pix" and info["paired"] is True
    assert info["shape_A"] == [1, SIZE, SIZE] and info["shape_B"] == [1, SIZE, SIZE]
    assert {k.split(".")[0] for k in ckpt.model} == {"G", "D"}
    # the sample grid: 3 rows (input, output, target) of the 8 fixed inputs, 2 px padding
    assert grid_size(tmp_path / "p" / "samples" / "step-000006.png") == (8 * 18 + 2, 3 * 18 + 2)
    assert [r["step"] for r in logged(tmp_path / "p")] == [2, 4, 6]
    assert {"loss_d", "loss_g", "loss_l1", "loss_g_gan"} <= logged(tmp_path / "p")[-1].keys()
    # the translation is G applied in eval mode: the same image gives the same output in any batch
    x = torch.rand(5, 1, SIZE, SIZE) * 2 - 1
    y = run.translate(x)
    assert y.shape == (5, 1, SIZE, SIZE) and torch.equal(run.translate(x[2:3]), y[2:3])
    report = (tmp_path / "p" / "report.html").read_text()
    assert "Image translation" in report and "the target, the true B" in report


def test_pix2pix_pairs_two_folders_by_name(tmp_path: Path, two_domains: tuple[Path, Path]) -> None:
    a_dir, _ = two_domains
    b_dir = tmp_path / "B2"
    b_dir.mkdir()
    for f in sorted(a_dir.iterdir()):  # the partner of a3.png is B2/a3.jpg: its negative
        Image.fromarray(255 - np.asarray(Image.open(f))).save(b_dir / (f.stem + ".jpg"))
    run = gankit.fit(str(a_dir), **tiny(tmp_path / "p", model="pix2pix", partner=str(b_dir), steps=2))
    assert run.step == 2


def test_cyclegan_trains_without_pool_or_identity(tmp_path: Path, two_domains: tuple[Path, Path],
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    a_dir, b_dir = two_domains
    (b_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    run = gankit.fit(str(a_dir), **tiny(tmp_path / "c", model="cyclegan", partner=str(b_dir), steps=2,
                                          pool_size=0, identity=0.0))
    assert run.step == 2 and logged(tmp_path / "c")[-1]["loss_idt"] == 0
    assert "pool_B.images" not in (load_checkpoint(tmp_path / "c").train or {})
    assert "broken.png" in capsys.readouterr().err  # a corrupt file is skipped and named


def test_cyclegan_trains_from_the_cli(tmp_path: Path, two_domains: tuple[Path, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    a_dir, b_dir = two_domains
    out = tmp_path / "c"
    argv = ["train", "--model", "cyclegan", "--data", str(a_dir), "--partner", str(b_dir), "--image-size",
            str(SIZE), "--width", "8", "--steps", "4", "--batch-size", "4", "--log-every", "2",
            "--sample-every", "2", "--checkpoint-every", "2", "--pool-size", "3", "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    ckpt = load_checkpoint(out)
    assert {k.split(".")[0] for k in ckpt.model} == {"G_AB", "G_BA", "D_A", "D_B"}
    assert ckpt.train is not None and ckpt.train["pool_B.images"].shape == (3, 1, SIZE, SIZE)
    assert ckpt.meta["translator"]["classes"] == ["A", "B"]
    cfg = ckpt.meta["config"]
    assert cfg["train"]["loss"] == "lsgan" and cfg["translate"]["pool_size"] == 3  # CycleGAN's recipe
    # 6 rows: A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B)); 9 B images, 8 shown
    assert grid_size(out / "samples" / "step-000004.png") == (8 * 18 + 2, 6 * 18 + 2)
    assert {"loss_cycle", "loss_idt"} <= logged(out)[-1].keys()
    # scored on the only split a folder has, written to metrics.jsonl
    capsys.readouterr()
    assert main(["eval", str(out), "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["step"] == 4 and {"cycle_l1_A", "cycle_l1_B"} <= res.keys()
    assert "target_acc_AtoB" not in res  # folders have no classifier classes
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["cycle_l1_A"] == res["cycle_l1_A"]
    assert main(["eval", str(out), "--metrics", "fid"]) == 2
    assert "leave out --metrics" in capsys.readouterr().err


@needs_fmnist
def test_builtin_tasks_train_and_score(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for model, task, keys in [("pix2pix", "edges2fashion", {"l1", "psnr", "ssim", "class_acc", "class_acc_real"}),
                              ("pix2pix", "day2night", {"l1", "psnr", "ssim", "class_acc"}),
                              ("cyclegan", "sneaker2sandal", {"target_acc_AtoB", "target_acc_BtoA", "cycle_l1_A"})]:
        out = tmp_path / task
        kw = tiny(out, model=model, data=task, steps=2, image_size="")
        assert main(["train", *(f"--{k.replace('_', '-')}={v}" for k, v in kw.items() if k != "progress"),
                     "--no-progress"]) == 0
        capsys.readouterr()
        assert main(["eval", str(out), "--n", "40", "--json"]) == 0
        res = json.loads(capsys.readouterr().out)
        assert keys <= res.keys(), task
        assert res["eval_n"] == 40
        if task == "edges2fashion":
            assert res["class_acc_real"] > 0.8  # the classifier knows the true items
            assert 0 <= res["ssim"] <= 1 and res["psnr"] > 0


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize(("model", "precision"), [("pix2pix", "fp32"), ("cyclegan", "fp32"),
                                                  ("pix2pix", "bf16"), ("cyclegan", "bf16")])
def test_stopped_and_resumed_equals_uninterrupted(tmp_path: Path, model: str, precision: str,
                                                  side_by_side: Path, two_domains: tuple[Path, Path]) -> None:
    # pix2pix: dropout draws from the global RNG; cyclegan: a small pool is full, so its random
    # swaps and its buffer must come back too. Both decay the learning rate over --steps.
    a_dir, b_dir = two_domains
    data = {"data": str(side_by_side)} if model == "pix2pix" else {"data": str(a_dir), "partner": str(b_dir),
                                                                   "pool_size": 3}
    kw = tiny(tmp_path, model=model, steps=8, checkpoint_every=8, sample_every=8, log_every=1,
              precision=precision, **data)
    train_config(build_config(overrides=kw | {"out": str(tmp_path / "full")}))
    # stopped after its first step (a training-time budget of ~0 s), with a checkpoint
    train_config(build_config(overrides=kw | {"out": str(tmp_path / "part"), "max_time": 1e-9}))
    assert load_checkpoint(tmp_path / "part").step == 1
    train_config(None, resume=tmp_path / "part", overrides={"max_time": 0.0})  # type: ignore[arg-type]
    full, part = load_checkpoint(tmp_path / "full"), load_checkpoint(tmp_path / "part")
    assert full.step == part.step == 8
    assert full.meta["precision"] == part.meta["precision"] == precision
    assert full.train is not None and part.train is not None
    for name, a, b in [("model", full.model, part.model), ("train", full.train, part.train)]:
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), f"{name} tensor {k} differs"
    # the same log: every step logged, once (the stop's extra line falls on a logged step)
    assert logged(tmp_path / "part") == logged(tmp_path / "full")


def test_a_divergence_is_named_and_nothing_diverged_is_saved(tmp_path: Path, side_by_side: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.tasks import pix2pix

    monkeypatch.setattr(pix2pix, "l1", lambda a, b: torch.tensor(float("nan")))  # G's loss NaN
    with pytest.raises(GankitError, match="NaN or infinite at step 1"):
        gankit.fit(str(side_by_side), **tiny(tmp_path / "p", model="pix2pix", steps=4, log_every=4))
    assert not (tmp_path / "p" / "checkpoints" / "step-000003").exists()


# --------------------------------------------------------------------------- gankit translate


def test_translate_writes_one_png_per_input_with_its_name(tmp_path: Path, side_by_side: Path,
                                                          two_domains: tuple[Path, Path],
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = gankit.fit(str(side_by_side), **tiny(tmp_path / "p", model="pix2pix", steps=2))
    inputs = tmp_path / "in"
    (inputs / "sub").mkdir(parents=True)
    pics = shapes(3, 5)
    Image.fromarray(pics[0]).save(inputs / "one.jpg")
    Image.fromarray(pics[1]).save(inputs / "sub" / "two.png")
    Image.fromarray(np.pad(pics[2], 8)).save(inputs / "big.png")  # 32x32: scaled to the run's 16
    (inputs / "notes.png").write_text("not an image")
    assert main(["translate", str(tmp_path / "p"), str(inputs), "--out", str(tmp_path / "out")]) == 0
    written = sorted(str(p.relative_to(tmp_path / "out")) for p in (tmp_path / "out").rglob("*.png"))
    assert written == ["big.png", "one.png", "sub/two.png"]
    assert "notes.png" in capsys.readouterr().err  # skipped and named
    # exactly the trained G's output (eval mode) on the decoded input
    got = np.asarray(Image.open(tmp_path / "out" / "sub" / "two.png")).astype(np.float32)
    x = torch.from_numpy(pics[1]).float()[None, None] / 127.5 - 1
    want = ((run.translate(x)[0, 0] + 1) * 127.5).round().clamp(0, 255).numpy()
    assert np.abs(got - want).max() <= 1

    # errors a user can fix: exit 2, one line naming what to do
    assert main(["translate", str(tmp_path / "p"), str(inputs), "--out", str(tmp_path / "o2"),
                 "--direction", "BtoA"]) == 2
    assert "BtoA needs a model trained both ways (cyclegan)" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "p"), str(tmp_path / "missing"), "--out", str(tmp_path / "o3")]) == 2
    assert "missing is not a folder" in capsys.readouterr().err
    assert main(["translate", str(tmp_path / "nowhere"), str(inputs), "--out", str(tmp_path / "o4")]) == 2
    assert main(["sample", str(tmp_path / "p"), "--out", str(tmp_path / "s.png")]) == 2
    assert "gankit translate" in capsys.readouterr().err

    # a cyclegan run translates both ways; BtoA uses G_BA and B's shape
    a_dir, b_dir = two_domains
    gankit.fit(str(a_dir), **tiny(tmp_path / "c", model="cyclegan", partner=str(b_dir), steps=2))
    assert main(["translate", str(tmp_path / "c"), str(b_dir), "--out", str(tmp_path / "back"),
                 "--direction", "BtoA"]) == 0
    assert len(list((tmp_path / "back").glob("*.png"))) == 9
    lt = load_translator(tmp_path / "c")
    assert lt.generator("BtoA") is lt.nets["G_BA"]


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize(("overrides", "message"), [
    ({"model": "pix2pix", "latent_dim": 64}, "model.latent_dim does not apply to model.arch=pix2pix"),
    ({"model": "cyclegan", "spectral_norm": True}, "reg.spectral_norm does not apply"),
    ({"model": "cyclegan", "d_steps": 2}, "train.d_steps does not apply"),
    ({"model": "pix2pix", "ema": 0.5}, "train.ema does not apply"),
    ({"model": "pix2pix", "eval_metric": "fid"}, "eval.eval_metric: 'fid' is not a translation score"),
    ({"model": "cyclegan", "loss": "wgan-gp"}, "'wgan-gp' does not suit model.arch=cyclegan"),
    ({"model": "pix2pix", "cycle": 5.0}, "translate.cycle is a cyclegan setting"),
    ({"model": "cyclegan", "l1": 10.0}, "translate.l1 is a pix2pix setting"),
    ({"model": "cyclegan", "identity": -1.0}, "translate.identity must be 0 (off) or positive"),
    ({"model": "dcgan", "pool_size": 10}, "translate.pool_size is for image translation"),
    ({"model": "dcgan", "partner": "x"}, "translate.partner is for image translation"),
    ({"model": "pix3pix"}, "unknown model 'pix3pix'; choose one of: mlp, mlp2-tanh, dcgan, r3, pix2pix, cyclegan"),
])
def test_options_of_the_other_kind_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(GankitError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(build_config(overrides=overrides))


def test_a_translator_takes_its_papers_recipe_where_the_gan_defaults_were_left() -> None:
    cfg = resolve(build_config(overrides={"model": "cyclegan"}))
    assert (cfg.train.loss, cfg.train.lr_g, cfg.train.lr_decay_start, cfg.train.ema) == ("lsgan", 2e-4, 0.5, 0.0)
    assert cfg.data.source == "sneaker2sandal" and cfg.translate.cycle == 10 and cfg.translate.identity == 0.5
    cfg = resolve(build_config(overrides={"model": "pix2pix", "loss": "lsgan", "lr_g": 1e-3}))
    assert (cfg.data.source, cfg.train.loss, cfg.train.lr_g, cfg.train.lr_d) == ("edges2fashion", "lsgan", 1e-3, 2e-4)


def test_the_cli_reports_a_wrong_task_for_the_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["train", "--model", "cyclegan", "--data", "edges2fashion", "--out", str(tmp_path / "x")]) == 2
    assert "edges2fashion is a paired task (pix2pix)" in capsys.readouterr().err
    assert main(["train", "--model", "pix2pix", "--data", "sneaker2sandal", "--out", str(tmp_path / "y")]) == 2
    assert "is an unpaired task" in capsys.readouterr().err
    assert main(["train", "--model", "cyclegan", "--data", str(tmp_path), "--out", str(tmp_path / "z")]) == 2
    assert "--partner B_DIR" in capsys.readouterr().err
    assert main(["train", "--model", "pix2pix", "--latent-dim", "8"]) == 2
    assert "--latent-dim" in capsys.readouterr().err


def test_a_translator_will_not_take_an_in_memory_dataset(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="not from an in-memory dataset"):
        gankit.fit(torch.zeros(4, 1, 16, 16), model="pix2pix", out=str(tmp_path / "x"))


@pytest.mark.parametrize(("task", "pair"), [("sneaker2sandal", (7, 5)), ("t-shirt2ankle-boot", (0, 9)),
                                            ("bag2t-shirt-top", (8, 0)), ("edges2fashion", None),
                                            ("sneaker2sneaker-x", None)])
def test_class_pair_tasks_are_named_by_fashion_mnist_classes(task: str, pair: tuple[int, int] | None) -> None:
    assert parse_class_pair(task) == pair


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_translator_convolutions_run_in_the_asked_precision(tmp_path: Path, side_by_side: Path,
                                                            precision: str, dtype: torch.dtype) -> None:
    from gankit.tasks.pix2pix import Pix2PixTask
    from gankit.train.task import Context

    cfg = build_config(overrides=tiny(tmp_path, model="pix2pix", data=str(side_by_side), precision=precision))
    s = Pix2PixTask(Context(resolve(cfg), torch.device("cpu")))
    s.setup()
    seen: list[torch.dtype] = []
    for net in s.nets.values():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d | torch.nn.ConvTranspose2d):
                m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    out = s.iteration(0)
    assert set(seen) == {dtype}
    assert all(t.dtype == torch.float32 and torch.isfinite(t) for t in out.values())  # losses in fp32
