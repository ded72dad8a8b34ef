"""The step functions: fake-batch reuse with K = 1, and the EMA of G's weights."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from gankit.api import train_config
from gankit.data import from_tensor, load_data
from gankit.sampling import load_generator
from gankit.train.state import TrainState
from gankit.train.step import d_step, fake_for_d, g_step
from tests.conftest import tiny_config, tiny_images


def _state(tmp_path: Path, **kw: object) -> tuple[TrainState, torch.Tensor]:
    cfg = tiny_config(tmp_path / "r", **kw)
    data = load_data(cfg.data)
    return TrainState.create(cfg, data.shape, torch.device("cpu")), data.batch(torch.arange(32))


def test_reused_fake_gives_g_the_same_update_as_a_fresh_forward_on_the_same_z(tmp_path: Path) -> None:
    # G's step on D's fake batch must equal G's step computed afresh on the same z, *after* D's
    # update: reuse saves G's forward pass, it must not change what G learns.
    s, real = _state(tmp_path)
    twin = copy.deepcopy(s)
    fake = fake_for_d(s, 32, keep_graph=True)
    d_step(s, real, fake)
    g_step(s, 32, fake)

    z = twin.z(32)  # the same z: twin's noise generator is a copy of s's
    d_step(twin, real, twin.G(z).detach())
    g_step(twin, 32, twin.G(z))
    for a, b in zip(s.G.parameters(), twin.G.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)
    for a, b in zip(s.D.parameters(), twin.D.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize(("d_steps", "reuse", "forwards_per_step"), [(1, True, 1), (1, False, 2), (2, True, 3)])
def test_forwards_of_g_per_iteration(tmp_path: Path, d_steps: int, reuse: bool,
                                     forwards_per_step: int) -> None:
    n = {"forwards": 0}
    from gankit.train import state as state_mod

    create = state_mod.TrainState.create

    def counting_create(*a, **k):  # type: ignore[no-untyped-def]
        st = create(*a, **k)
        # training forwards only: sample grids and the report run G in eval mode
        st.G.register_forward_hook(lambda m, *_: n.__setitem__("forwards", n["forwards"] + m.training))
        return st

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(state_mod.TrainState, "create", counting_create)
        train_config(tiny_config(tmp_path / "r", steps=5, d_steps=d_steps, reuse_fake=reuse,
                          sample_every=100, checkpoint_every=5))
    assert n["forwards"] == 5 * forwards_per_step


def test_ema_after_one_step_is_its_formula(tmp_path: Path) -> None:
    # no warm-up: the plain decay from the first step (tests/train/test_ema.py covers the warm-up)
    s, real = _state(tmp_path, ema=0.9, ema_rampup=0.0)
    assert s.G_ema is not None and s.G_sample is s.G_ema
    g0 = [p.detach().clone() for p in s.G.parameters()]
    d_step(s, real)
    g_step(s, 32)
    for e, p0, p1 in zip(s.G_ema.parameters(), g0, s.G.parameters(), strict=True):
        assert not torch.equal(p0, p1)  # G moved ...
        torch.testing.assert_close(e, 0.9 * p0 + 0.1 * p1, rtol=1e-6, atol=1e-8)  # ... EMA a tenth of it


def test_without_ema_samples_come_from_g(tmp_path: Path) -> None:
    s, _ = _state(tmp_path, ema=0.0)
    assert s.G_ema is None and s.G_sample is s.G


def test_ema_copy_is_what_a_run_returns_and_a_checkpoint_samples(tmp_path: Path) -> None:
    images = tiny_images(48, 16)
    cfg = tiny_config(tmp_path / "r", model="dcgan", width=8, latent_dim=8, data="tensor", steps=6,
                      checkpoint_every=6, ema=0.5)
    run = train_config(cfg, data=from_tensor(images))
    loaded = load_generator(str(tmp_path / "r"))
    for a, b in zip(run.G.state_dict().values(), loaded.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    from gankit.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "r")
    assert not torch.equal(ck.model["G_ema.net.0.weight"], ck.model["G.net.0.weight"])
    assert torch.equal(ck.model["G_ema.net.0.weight"], loaded.G.state_dict()["net.0.weight"])


def test_max_time_stops_a_run_with_everything_saved(tmp_path: Path) -> None:
    run = train_config(tiny_config(tmp_path / "r", steps=10_000_000, max_time=1.0, log_every=50,
                            checkpoint_every=10_000_000, sample_every=10_000_000))
    assert 0 < run.step < 10_000_000
    from gankit.checkpoint import load_checkpoint

    ck = load_checkpoint(tmp_path / "r")
    assert ck.step == run.step and ck.meta["elapsed"] >= 1.0
    assert (tmp_path / "r" / "report.html").exists()
    assert (tmp_path / "r" / "samples" / f"step-{run.step:06d}.png").exists()
