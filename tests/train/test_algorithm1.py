"""Goodfellow et al.'s Algorithm 1: k D updates, then one G update; NaNs caught the step they appear."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.train import step as step_mod
from gankit.train.lifecycle import MAX_ROLLBACKS, TrainingDiverged
from tests.conftest import tiny_config
from tests.hooks import NaNLoss


@pytest.mark.parametrize("k", [1, 3])
def test_k_d_updates_per_g_update(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, k: int) -> None:
    calls: list[str] = []
    real_d, real_g = step_mod.d_step, step_mod.g_step

    def d(*a):  # type: ignore[no-untyped-def]
        calls.append("D")
        return real_d(*a)

    def g(*a):  # type: ignore[no-untyped-def]
        calls.append("G")
        return real_g(*a)

    monkeypatch.setattr(step_mod, "d_step", d)
    monkeypatch.setattr(step_mod, "g_step", g)
    train_config(tiny_config(tmp_path / "r", steps=7, d_steps=k, checkpoint_every=7))
    assert calls == (["D"] * k + ["G"]) * 7
    # And the optimisers agree: Adam counts its own updates.
    ck = load_checkpoint(tmp_path / "r")
    assert ck.train is not None
    assert float(ck.train["opt_D.0.step"]) == 7 * k
    assert float(ck.train["opt_G.0.step"]) == 7
    assert ck.meta["real_batches"] == 7 * k


def test_g_step_leaves_d_untouched_and_d_step_leaves_g_untouched(tmp_path: Path) -> None:
    from gankit.data import load_data
    from gankit.train.state import TrainState
    from gankit.train.step import d_step, g_step

    cfg = tiny_config(tmp_path / "r")
    data = load_data(cfg.data)
    s = TrainState.create(cfg, data.shape, torch.device("cpu"))
    snap = lambda m: [p.detach().clone() for p in m.parameters()]  # noqa: E731
    d0, g0 = snap(s.D), snap(s.G)
    g_step(s, 16)
    assert all(torch.equal(a, b) for a, b in zip(d0, snap(s.D), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(g0, snap(s.G), strict=True))
    assert all(p.grad is None for p in s.D.parameters())  # D was frozen: no gradient computed
    g1 = snap(s.G)
    d_step(s, data.batch(torch.arange(16)))
    assert all(torch.equal(a, b) for a, b in zip(g1, snap(s.G), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(d0, snap(s.D), strict=True))


def test_nan_is_caught_at_the_step_it_appears(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hook = NaNLoss(lambda n: n >= 13)  # from step 13 on, for good
    # pinned to step 13 although read back at step 20; rolled back to step 10 (with halved learning
    # rates) MAX_ROLLBACKS times, each diverging again at once (step 11), then stopped
    with pytest.raises(TrainingDiverged, match="at step 11.*checkpoint \\(step 10\\)"):
        train_config(tiny_config(tmp_path / "r", steps=40, log_every=20, checkpoint_every=10), hooks=[hook])
    assert load_checkpoint(tmp_path / "r").step == 10  # the diverged state was never saved
    events = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    rollbacks = [e for e in events if e.get("event") == "rollback"]
    assert [e["diverged_at"] for e in rollbacks] == [13, 11, 11] == [13] + [11] * (MAX_ROLLBACKS - 1)
