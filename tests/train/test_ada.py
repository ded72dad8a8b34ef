"""Adaptive discriminator augmentation (Karras et al. 2020): the controller of p, the per-sample
ops, the checkpointed state and the default resolution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.config import Config, config_from_dict, load_yaml
from gankit.data import from_tensor
from gankit.diagnosis import _data_size
from gankit.rundir import RunDir
from gankit.train.ada import DEFAULT_POLICY, Ada, auto_ada
from gankit.train.augment import Draw, diff_augment
from tests.conftest import tiny_config, tiny_images
from tests.train.test_resume import assert_same_run

CPU = torch.device("cpu")


def load_config(path: Path) -> Config:
    return config_from_dict(load_yaml(path), str(path))


def _ada(target: float = 0.6, kimg: float = 1.0, interval: int = 4, policy: str = DEFAULT_POLICY) -> Ada:
    return Ada(policy, target, kimg, interval, CPU)


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_p_rises_by_the_images_shown_when_d_is_sure_of_every_real() -> None:
    ada = _ada(kimg=1.0)  # p moves by images / 1000
    for it in range(1, 9):
        ada.observe(torch.full((32,), 3.0), 32)  # every D(x) logit positive: r_t = 1 > 0.6
        ada.after_iteration(it)
    # two adjustments (after iterations 4 and 8), each by 4 x 32 images / 1000
    assert torch.allclose(ada.p, torch.tensor(2 * 128 / 1000))
    assert float(ada.rt) == 1.0 and torch.equal(ada.acc, torch.zeros(3))


def test_p_falls_when_d_doubts_the_reals_and_stays_in_0_1() -> None:
    ada = _ada(kimg=0.1)  # 128 images per adjustment move p by 1.28: clamped
    for it in range(1, 5):
        ada.observe(torch.full((32,), 2.0), 32)
        ada.after_iteration(it)
    assert float(ada.p) == 1.0
    for it in range(5, 9):
        ada.observe(torch.tensor([-1.0, -2.0, 1.0, -0.5]), 4)  # r_t = -0.5 < 0.6
        ada.after_iteration(it)
    assert torch.allclose(ada.p, torch.tensor(1.0 - 16 / 100))
    for it in range(9, 41):
        ada.observe(-torch.ones(32), 32)
        ada.after_iteration(it)
    assert float(ada.p) == 0.0


def test_r_t_is_the_mean_sign_over_the_interval() -> None:
    ada = _ada(target=0.5, kimg=1.0, interval=2)
    ada.observe(torch.tensor([1.0, 1.0, -1.0, 1.0]), 4)  # signs sum 2
    ada.observe(torch.tensor([-1.0, -1.0, -1.0, 1.0]), 4)  # signs sum -2: r_t = 0 < 0.5
    ada.after_iteration(2)
    assert float(ada.p) == 0.0  # would have fallen below 0: clamped
    ada.observe(torch.tensor([1.0, 1.0, 1.0, -1.0]), 4)  # r_t = 0.5 over the interval: no move
    ada.observe(torch.tensor([1.0, 1.0, 1.0, -1.0]), 4)
    ada.after_iteration(4)
    assert float(ada.p) == 0.0
    ada.observe(torch.ones(4), 4)
    ada.observe(torch.ones(4), 4)
    ada.after_iteration(6)
    assert torch.allclose(ada.p, torch.tensor(8 / 1000))


def test_two_ranks_steer_the_p_of_one_process_at_the_global_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    # Under torchrun each rank sums its own shard's signs; the adjustment averages the sums over
    # the ranks (an all-reduce, simulated here) and must then move p exactly as one process seeing
    # the global batch would.
    from gankit.train import ada as ada_mod
    from gankit.train.distributed import Dist

    ranks = [Ada(DEFAULT_POLICY, 0.6, 1.0, 2, CPU, Dist(rank=r, world=2)) for r in range(2)]
    one = _ada(kimg=1.0, interval=2)
    reduced: list[torch.Tensor] = []
    monkeypatch.setattr(ada_mod.distributed, "all_mean", lambda d, t: reduced[0] if d.enabled else t)
    g = torch.Generator().manual_seed(3)
    for it in range(1, 7):
        logits = torch.randn(32, generator=g) + 1.5  # mostly positive: r_t above the target
        for r, a in enumerate(ranks):
            a.observe(logits[16 * r:16 * (r + 1)], 16)
        one.observe(logits, 32)
        reduced[:] = [(ranks[0].acc + ranks[1].acc) / 2]  # what the all-reduce hands every rank
        for a in ranks:
            a.after_iteration(it)
        one.after_iteration(it)
        assert torch.allclose(ranks[0].p, one.p) and torch.allclose(ranks[1].p, one.p)
    assert torch.allclose(one.p, torch.tensor(3 * 64 / 1000))  # up at each of the 3 adjustments


def test_p_0_leaves_the_images_as_they_are() -> None:
    x = _images()
    out = _ada().augment(x, Draw(torch.Generator().manual_seed(1)))
    assert torch.equal(out, x)


def test_p_1_is_the_always_on_policy_with_the_same_draws() -> None:
    x = _images()
    ada = _ada(policy="translation,color,cutout")
    ada.p = torch.ones(())
    out = ada.augment(x, Draw(torch.Generator().manual_seed(1)))
    g = torch.Generator().manual_seed(1)  # the same stream: one coin per sample before each op
    want = x
    for name in ("translation", "color", "cutout"):
        torch.rand(x.shape[0], generator=g)
        want = diff_augment(want, name, g)
    assert torch.equal(out, want)


def test_half_p_augments_about_half_the_samples_and_is_differentiable() -> None:
    x = _images(n=400).requires_grad_(True)
    ada = _ada(policy="cutout")
    ada.p = torch.full((), 0.5)
    out = ada.augment(x, Draw(torch.Generator().manual_seed(2)))
    changed = (out != x).flatten(1).any(1).float().mean()
    assert 0.4 < float(changed) < 0.6
    out.sum().backward()  # cutout zeroes pixels: their gradient is 0, the others' 1
    assert x.grad is not None and torch.equal(x.grad, (out == x).float())


def test_auto_resolution() -> None:
    assert auto_ada(1432, True)[0] and "1,432" in auto_ada(1432, True)[1]
    assert not auto_ada(20_000, True)[0]
    assert not auto_ada(None, True)[0]  # fashion-mnist (60,000) and other built-in sets
    assert not auto_ada(100, False)[0]  # 2-D points


def _folder(root: Path, n: int = 40) -> Path:
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    for i in range(n):
        pixels = torch.randint(0, 256, (12, 12, 3), generator=g, dtype=torch.uint8).numpy()
        Image.fromarray(pixels).save(root / f"{i}.png")
    return root


TINY = {"model": "dcgan", "width": 8, "latent_dim": 8, "batch_size": 16, "image_size": 16, "steps": 8,
        "log_every": 4, "sample_every": 8, "checkpoint_every": 8, "diagnose_every": 0, "ada_kimg": 0.05}


@pytest.mark.parametrize(("flag", "on"), [(None, True), (False, False)])
def test_a_small_folder_gets_ada_unless_the_user_says_no(tmp_path: Path, flag: bool | None, on: bool) -> None:
    kw = TINY | {"data": str(_folder(tmp_path / "imgs"))} | ({} if flag is None else {"ada": flag})
    train_config(tiny_config(tmp_path / "r", **kw))
    cfg = load_config(tmp_path / "r" / "config.yaml")
    assert cfg.reg.ada is on
    assert ("reg.ada" in cfg.provenance.resolved) == (flag is None)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert all(("ada_p" in r and "ada_rt" in r) == on for r in rows if "loss_d" in r)
    assert ("ada.p" in load_checkpoint(tmp_path / "r").train) == on
    assert _data_size(RunDir(tmp_path / "r")) == 40  # what `gankit doctor` weighs D's confidence by
    report = (tmp_path / "r" / "report.html").read_text()
    assert ("augmentation probability p and its overfitting signal" in report) == on  # plotted


def test_builtin_and_given_data_keep_ada_off_unless_asked(tmp_path: Path) -> None:
    images = from_tensor(tiny_images(40, 16, 3))
    train_config(tiny_config(tmp_path / "r", **TINY, data="tensor"), data=images)
    assert load_config(tmp_path / "r" / "config.yaml").reg.ada is False
    train_config(tiny_config(tmp_path / "r2", **TINY, data="tensor", ada=True), data=images)
    rows = [json.loads(line) for line in (tmp_path / "r2" / "metrics.jsonl").read_text().splitlines()]
    assert any("ada_p" in r for r in rows)


def test_ada_resume_is_bit_identical_and_p_moves(tmp_path: Path) -> None:
    images = tiny_images(40, 16, 3)
    kw = TINY | {"data": "tensor", "ada": True, "steps": 12, "checkpoint_every": 4}
    train_config(tiny_config(tmp_path / "full", **kw), data=from_tensor(images))
    train_config(tiny_config(tmp_path / "part", **kw | {"steps": 6}), data=from_tensor(images))
    train_config(None, data=from_tensor(images), resume=tmp_path / "part",  # type: ignore[arg-type]
                 overrides={"steps": 12})
    assert_same_run(tmp_path / "full", tmp_path / "part", logs=False)  # the part run also logged step 6
    p = load_checkpoint(tmp_path / "full").train["ada.p"]
    assert 0.0 < float(p) <= 1.0  # D separates random noise images quickly: p went up
