"""The moving average of G's weights warms up (Karras et al. 2020; Huang et al. 2024): a short
run's samples show what G has learned, and a long run's average is the plain --ema decay."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from gankit.api import train_config
from gankit.checkpoint import find_checkpoint, load_checkpoint
from gankit.config import config_from_dict, load_yaml
from gankit.train.state import ema_beta
from tests.conftest import tiny_config


def test_the_half_life_grows_with_the_steps_until_the_decay_s() -> None:
    # decay 0.999: half-life ln(1/2) / ln(0.999) = 692.8 steps, reached at 692.8 / 0.05 = 13,856
    h = math.log(0.5) / math.log(0.999)
    assert ema_beta(0.999, 0.05, 1) == pytest.approx(0.5 ** (1 / 0.05))  # ~1e-6: the average is G
    assert ema_beta(0.999, 0.05, 300) == pytest.approx(0.5 ** (1 / 15))  # half-life 15 steps
    assert ema_beta(0.999, 0.05, 2000) == pytest.approx(0.5 ** (1 / 100))
    assert ema_beta(0.999, 0.05, 20000) == pytest.approx(0.999)
    assert ema_beta(0.999, 0.05, math.ceil(h / 0.05)) == pytest.approx(0.999)
    betas = [ema_beta(0.999, 0.05, t) for t in range(1, 20000, 97)]
    assert betas == sorted(betas) and max(betas) <= 0.999
    assert ema_beta(0.999, 0.0, 1) == 0.999  # no warm-up: the fixed decay from the first step
    assert ema_beta(0.0, 0.05, 10) == 0.0


def test_a_short_run_s_average_follows_g_and_without_the_warm_up_it_stays_near_the_start(
        tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "init", steps=1, ema=0.0, checkpoint_every=1))
    g0 = load_checkpoint(find_checkpoint(tmp_path / "init")).module_state("G")  # same seed: G near its start
    for name, rampup in (("warm", 0.05), ("fixed", 0.0)):
        train_config(tiny_config(tmp_path / name, steps=60, ema=0.999, ema_rampup=rampup))
        ckpt = load_checkpoint(find_checkpoint(tmp_path / name))
        G, ema = ckpt.module_state("G"), ckpt.module_state("G_ema")
        to_g = sum(float((ema[k] - G[k]).norm()) for k in G)
        to_start = sum(float((ema[k] - g0[k]).norm()) for k in G)
        if name == "warm":  # half-life 3 steps at step 60: the average is near G
            assert to_g < 0.2 * to_start
        else:  # 60 steps of a 693-step half-life: still mostly the initial G
            assert to_start < to_g


def test_a_run_saved_before_the_warm_up_resumes_without_it(tmp_path: Path) -> None:
    run = train_config(tiny_config(tmp_path / "r", steps=20))
    data = load_yaml(tmp_path / "r" / "config.yaml")
    assert data["train"]["ema_rampup"] == 0.05
    del data["train"]["ema_rampup"]
    assert config_from_dict(data, "old config.yaml").train.ema_rampup == 0.0  # what such runs did
    assert config_from_dict({"train": {"ema": 0.99}}, "x").train.ema_rampup == 0.0
    assert config_from_dict({"ema_rampup": 0.1}, "x").train.ema_rampup == 0.1
    assert run.step == 20
