"""Schedules as config (R3GAN, Huang et al. 2024): cosine from a start to an end value over
train.schedule_images, for the learning rates, beta2, the R1 and R2 gammas and the EMA's
half-life in images; R2 in D's step; a scheduled run resumed across the schedule's end."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.config import Config
from gankit.data import load_data
from gankit.errors import GankitError
from gankit.losses import r2_penalty
from gankit.train.schedule import Schedule, cosine
from gankit.train.state import TrainState, ema_beta, ema_beta_images, ema_decay
from gankit.train.step import d_step, g_step
from tests.conftest import tiny_config
from tests.train.test_resume import assert_same_run

# every schedule at once, ending at step 25 of 40 (batch 32: 800 images)
R3 = {"loss": "rpgan", "r1": 0.2, "r2": 0.2, "r1_end": 0.02, "r2_end": 0.05, "schedule_images": 800,
      "lr_g_end": 2e-4, "lr_d_end": 5e-4, "beta2": 0.9, "beta2_end": 0.99, "beta1": 0.0,
      "ema_half_life": 500.0, "ema_half_life_end": 2000.0}


def test_cosine_against_its_closed_form() -> None:
    assert cosine(2.0, 0.5, 0, 100) == 2.0
    assert cosine(2.0, 0.5, 50, 100) == pytest.approx(1.25, rel=1e-15)  # the midpoint
    assert cosine(2.0, 0.5, 25, 100) == pytest.approx(0.5 + 1.5 * (1 + math.sqrt(0.5)) / 2, rel=1e-15)
    assert cosine(2.0, 0.5, 100, 100) == 0.5  # exactly the end, and beyond it
    assert cosine(2.0, 0.5, 10**6, 100) == 0.5
    assert cosine(0.0, 10.0, 50, 100) == pytest.approx(5.0)  # upwards alike
    values = [cosine(2.0, 0.5, i, 100) for i in range(0, 120, 7)]
    assert values == sorted(values, reverse=True)


def _cfg(tmp_path: Path, **kw: object) -> Config:
    return tiny_config(tmp_path / "r", **{**R3, **kw})


def test_the_schedule_counts_images_of_the_global_batch(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path)
    s1, s2 = Schedule(cfg), Schedule(cfg, world=2)
    assert s1.images(10) == 320 and s2.images(10) == 640
    assert s1.gammas(0) == (0.2, 0.2)  # the first update trains at the start values
    assert s1.gammas(25) == (pytest.approx(0.02), pytest.approx(0.05))  # step 25: 800 images, the end
    assert s1.gammas(12.5) == (pytest.approx(0.11), pytest.approx(0.125))  # type: ignore[arg-type]
    assert s2.beta2(12.5) == pytest.approx(0.99) and s1.beta2(12.5) == pytest.approx(0.945)  # type: ignore[arg-type]
    fg, fd = s1.lr_factors(25)  # lr_g 1e-3 -> 2e-4, lr_d 1e-3 -> 5e-4
    assert (fg, fd) == (pytest.approx(0.2), pytest.approx(0.5))
    assert s1.ema_half_life(0) == 500.0 and s1.ema_half_life(99) == pytest.approx(2000.0)
    plain = Schedule(tiny_config(tmp_path / "p", r1=0.3, lr_decay_start=0.5))  # no schedule_images
    assert plain.gammas(30) == (0.3, 0.0) and plain.beta2(30) == 0.999
    assert plain.lr_factors(30) == (0.5, 0.5)  # CycleGAN's linear decay alone, as before


def test_the_ema_half_life_in_images_is_the_per_step_decay_in_other_units() -> None:
    # decay 0.9 per step of 32 images is a half-life of 32 ln(1/2) / ln(0.9) images
    h = 32 * math.log(0.5) / math.log(0.9)
    for step in (1, 3, 10, 1000):
        assert ema_beta_images(h, 0.05, 32 * step, 32) == pytest.approx(ema_beta(0.9, 0.05, step), rel=1e-12)
    assert ema_beta_images(h, 0.0, 32, 32) == pytest.approx(0.9, rel=1e-12)  # no warm-up
    assert ema_beta_images(1000.0, 0.5, 64, 32) == 0.5  # warm-up: half-life 0.5 x 64 = one batch


def test_ema_after_one_step_follows_the_half_life(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, ema_rampup=0.0, loss="nonsaturating", r1=0.0, r2=0.0, r1_end=None, r2_end=None)
    s = TrainState.create(cfg, load_data(cfg.data).shape, torch.device("cpu"))
    data = load_data(cfg.data)
    s.step = 10  # 320 images into the 800: half-life 500 + 1500 (1 - cos(0.4 pi)) / 2
    beta = ema_decay(s.schedule, s.step)
    assert beta == pytest.approx(0.5 ** (32 / (2000 - 1500 * (1 + math.cos(0.4 * math.pi)) / 2)), rel=1e-12)
    g0 = [p.detach().clone() for p in s.G.parameters()]
    assert s.G_ema is not None
    d_step(s, data.batch(torch.arange(32)))
    g_step(s, 32)
    for e, p0, p1 in zip(s.G_ema.parameters(), g0, s.G.parameters(), strict=True):
        torch.testing.assert_close(e, beta * p0 + (1 - beta) * p1, rtol=1e-6, atol=1e-8)


def test_d_step_adds_gamma_over_two_times_r2_at_the_scheduled_gamma(tmp_path: Path) -> None:
    # D's gradient with R2 minus D's gradient without it is the gradient of gamma/2 E||grad_x D(fake)||^2,
    # gamma the value of the schedule at the step (here halfway: (0.2 + 0.05) / 2)
    cfg = _cfg(tmp_path, r1=0.0, r1_end=None)
    data = load_data(cfg.data)
    s = TrainState.create(cfg, data.shape, torch.device("cpu"))
    s.step = 12
    gamma = s.gammas()[1]
    assert gamma == pytest.approx(0.05 + 0.15 * (1 + math.cos(math.pi * 384 / 800)) / 2)
    real = data.batch(torch.arange(32))
    fake = s.G(s.z(32)).detach()
    twin = copy.deepcopy(s)
    twin.cfg = copy.deepcopy(cfg)
    twin.cfg.reg.r2 = twin.cfg.reg.r2_end = 0.0
    grads = []
    for st in (s, twin):
        st.opt_D.step = lambda *a, **k: None  # type: ignore[method-assign]  # keep D where it is
        d_step(st, real, fake)
        grads.append([p.grad.clone() for p in st.D.parameters()])  # type: ignore[union-attr]
    x = fake.clone().requires_grad_(True)
    params = list(s.D.parameters())
    by_hand = torch.autograd.grad(0.5 * gamma * r2_penalty(s.D(x).float(), x), params, allow_unused=True)
    for with_r2, without, expected, p in zip(*grads, by_hand, params, strict=True):
        expected = torch.zeros_like(p) if expected is None else expected  # the last bias: no input gradient
        torch.testing.assert_close(with_r2 - without, expected, rtol=1e-4, atol=1e-7)
    assert any(float(e.abs().max()) > 1e-4 for e in by_hand if e is not None)  # not trivially zero


def test_a_scheduled_r3gan_run_resumed_across_the_schedule_s_end_equals_one_never_stopped(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "full", steps=40, **R3))
    train_config(tiny_config(tmp_path / "part", steps=20, **R3))  # stops before the end at step 25
    train_config(None, resume=tmp_path / "part", overrides={"steps": 40})  # type: ignore[arg-type]
    assert_same_run(tmp_path / "full", tmp_path / "part")
    groups = load_checkpoint(tmp_path / "full").meta["optim"]
    for name in ("opt_G", "opt_D"):  # Adam's beta2 at its end value, beta1 0 as R3GAN's
        assert list(groups[name]["param_groups"][0]["betas"]) == [0.0, pytest.approx(0.99)]
    rows = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "lr_g" in r]
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    sched = Schedule(tiny_config(tmp_path / "x", steps=40, **R3))
    for r in rows:  # the values step - 1 trained with
        assert r["lr_g"] == pytest.approx(1e-3 * sched.lr_factors(r["step"] - 1)[0], rel=1e-12)
        assert r["lr_d"] == pytest.approx(1e-3 * sched.lr_factors(r["step"] - 1)[1], rel=1e-12)
        assert r["gamma_r1"] == pytest.approx(sched.gammas(r["step"] - 1)[0])
        assert r["beta2"] == pytest.approx(sched.beta2(r["step"] - 1))
        assert r["ema_half_life"] == pytest.approx(sched.ema_half_life(r["step"] - 1))
    assert rows[-1]["lr_g"] == pytest.approx(2e-4) and rows[-1]["gamma_r2"] == pytest.approx(0.05)


def test_a_schedule_without_end_values_changes_nothing(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "a", steps=20, r1=0.1))
    train_config(tiny_config(tmp_path / "b", steps=20, r1=0.1, schedule_images=320))
    assert_same_run(tmp_path / "a", tmp_path / "b", logs=False)


@pytest.mark.parametrize(("kw", "message"), [
    ({"lr_g_end": 1e-4}, "train.lr_g_end is the value at the end of the schedule: set train.schedule_images"),
    ({"schedule_images": 100, "ema_half_life_end": 10.0}, "needs train.ema_half_life"),
    ({"ema_half_life": 100.0, "ema": 0.0}, "train.ema is 0"),
    ({"r2": 1.0, "precision": "fp16"}, "reg.r2"),
    ({"beta2_end": 1.0, "schedule_images": 100}, r"train.beta2_end must be in \[0, 1\)"),
])
def test_bad_schedules_are_one_clear_line(tmp_path: Path, kw: dict[str, object], message: str) -> None:
    with pytest.raises(GankitError, match=message):
        tiny_config(tmp_path / "r", **kw)


def test_a_rate_set_from_the_lab_is_the_schedule_s_new_start(tmp_path: Path) -> None:
    from gankit.train.control import apply_lrs

    sched = Schedule(_cfg(tmp_path))  # lr_g 1e-3 -> 2e-4, lr_d 1e-3 -> 5e-4 over 25 steps
    opts = [torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1e-3) for _ in range(2)]
    sched.apply(opts, 10)
    fg, fd = sched.lr_factors(10)
    assert opts[0].param_groups[0]["lr"] == pytest.approx(1e-3 * fg) and opts[1].param_groups[0]["betas"] == (
        0.9, pytest.approx(sched.beta2(10)))
    apply_lrs(opts, {"lr_g": 4e-3})  # at once: the new base at the current factor ...
    assert opts[0].param_groups[0]["lr"] == pytest.approx(4e-3 * fg)
    sched.apply(opts, 30)  # ... and the cosine goes on from it, ending at end / start of it
    assert opts[0].param_groups[0]["lr"] == pytest.approx(4e-3 * 0.2)
    assert opts[1].param_groups[0]["lr"] == pytest.approx(1e-3 * 0.5)
