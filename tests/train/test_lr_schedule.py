"""--lr-decay-start: constant, then linear decay to zero (CycleGAN's schedule)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.train.schedule import lr_factor
from tests.conftest import tiny_config
from tests.hooks import Signal
from tests.train.test_resume import assert_same_run


def test_lr_factor_is_constant_then_linear_to_zero() -> None:
    assert [lr_factor(s, 100, 0.5) for s in (0, 49, 50, 75, 99, 100)] == pytest.approx(
        [1.0, 1.0, 1.0, 0.5, 0.02, 0.0], abs=1e-12)
    assert lr_factor(30, 100, 1.0) == 1.0  # the default: no decay
    assert lr_factor(0, 100, 0.0) == 1.0 and lr_factor(25, 100, 0.0) == pytest.approx(0.75)


def test_learning_rates_follow_the_schedule_and_are_saved(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", steps=40, lr_decay_start=0.5))
    ck = load_checkpoint(tmp_path / "r")
    for name in ("opt_G", "opt_D"):
        group = ck.meta["optim"][name]["param_groups"][0]
        # the last update (step 39 -> 40) ran at base * (1 - (39 - 20) / 20)
        assert group["lr"] == pytest.approx(1e-3 * (1 - 19 / 20), rel=1e-9)
        assert group["base_lr"] == pytest.approx(1e-3, rel=1e-12)


def test_a_decaying_run_stopped_and_resumed_equals_one_never_stopped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train_config(tiny_config(tmp_path / "full", steps=40, lr_decay_start=0.25))
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C after the 20th generator update: saved at step 20
        train_config(tiny_config(tmp_path / "part", steps=40, lr_decay_start=0.25), hooks=[Signal(20)])
    assert load_checkpoint(tmp_path / "part").step == 20
    train_config(None, resume=tmp_path / "part")  # type: ignore[arg-type]
    assert_same_run(tmp_path / "full", tmp_path / "part", logs=False)
