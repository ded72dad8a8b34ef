"""The training-side cures: unrolled G steps, instance noise, DiffAugment, and every cure of the
catalogue in a real (tiny) run that resumes exactly."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from gankit.api import train_config
from gankit.config import RegConfig, build_config
from gankit.data import from_tensor, load_data
from gankit.errors import GankitError
from gankit.losses import LOSSES
from gankit.resolve import resolve
from gankit.train.augment import cutout, diff_augment, translation
from gankit.train.state import TrainState
from gankit.train.step import d_input, d_step, g_step
from tests.conftest import tiny_config, tiny_images
from tests.hooks import Signal
from tests.train.test_resume import assert_same_run


def _state(tmp_path: Path, **kw: object) -> tuple[TrainState, torch.Tensor]:
    cfg = tiny_config(tmp_path / "r", **kw)
    data = load_data(cfg.data)
    return TrainState.create(cfg, data.shape, torch.device("cpu")), data


def test_unrolled_g_step_differs_from_plain_and_restores_d(tmp_path: Path) -> None:
    import copy

    s, data = _state(tmp_path, unrolled=3)
    plain = copy.deepcopy(s)
    plain.cfg.reg.unrolled = 0
    batches = iter(range(0, 320, 32))
    next_real = lambda: data.batch(torch.arange(next(batches), 0, -1)[:32] % len(data))  # noqa: E731
    d_before = {k: v.clone() for k, v in s.D.state_dict().items()}
    opt_before = s.opt_D.state_dict()["state"][0]["exp_avg"].clone() if s.opt_D.state else None
    z_state = s.z_gen.get_state()
    fake = s.G(s.z(32))
    plain.z_gen.set_state(z_state)
    plain_fake = plain.G(plain.z(32))
    g_step(s, 32, fake, next_real=next_real)
    g_step(plain, 32, plain_fake)
    # D and its optimiser are exactly as before: the look-ahead was undone
    for k, v in s.D.state_dict().items():
        assert torch.equal(v, d_before[k]), k
    assert opt_before is None and not s.opt_D.state or torch.equal(
        s.opt_D.state_dict()["state"][0]["exp_avg"], opt_before)
    # ... but G's update differs from the plain one, which saw today's D
    assert any(not torch.equal(a, b) for a, b in zip(s.G.parameters(), plain.G.parameters(), strict=True))


def test_instance_noise_is_annealed_to_zero(tmp_path: Path) -> None:
    s, data = _state(tmp_path, instance_noise=0.5, steps=100)
    x = torch.zeros(20000, 2)
    assert d_input(s, x).std().item() == pytest.approx(0.5, rel=0.03)
    s.step = 50
    assert d_input(s, x).std().item() == pytest.approx(0.25, rel=0.03)
    s.step = 100
    assert torch.equal(d_input(s, x), x)


def test_translation_moves_content_and_fills_with_zeros() -> None:
    x = torch.zeros(200, 1, 16, 16)
    x[:, :, 8, 8] = 1.0  # one bright pixel
    out = translation(x, torch.Generator().manual_seed(0))
    assert torch.equal(out.sum((1, 2, 3)), torch.ones(200))  # a 2-pixel shift keeps it inside
    pos = out[:, 0].flatten(1).argmax(1)
    dy, dx = pos // 16 - 8, pos % 16 - 8
    assert dy.abs().max() == 2 and dx.abs().max() == 2 and len(set(zip(dy.tolist(), dx.tolist(), strict=True))) > 15
    assert translation(torch.ones(50, 1, 16, 16), torch.Generator().manual_seed(1)).min() == 0  # zero fill


def test_cutout_zeros_a_square_of_half_the_side() -> None:
    out = cutout(torch.ones(500, 3, 16, 16), torch.Generator().manual_seed(0))
    zeros = (out[:, 0] == 0).sum((1, 2)).float()
    assert zeros.max() == 64  # an 8x8 square when it lies wholly inside
    assert zeros.min() >= 16 and (out[:, 0] == out[:, 2]).all()  # at least a quarter; all channels


def test_diff_augment_is_differentiable_and_reproducible() -> None:
    x = torch.randn(8, 3, 16, 16, requires_grad=True)
    out = diff_augment(x, "color,translation,cutout", torch.Generator().manual_seed(3))
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    again = diff_augment(x.detach(), "color,translation,cutout", torch.Generator().manual_seed(3))
    assert torch.equal(out.detach(), again)
    assert not torch.equal(out.detach(), x.detach())


def test_named_losses_imply_their_recipe_and_it_is_saved(tmp_path: Path) -> None:
    assert resolve(build_config(overrides={"loss": "wgan"})).reg.clip == 0.01
    assert resolve(build_config(overrides={"loss": "wgan-gp"})).reg.gp == 10.0
    assert resolve(build_config(overrides={"loss": "wgan-gp", "gp": 1.0})).reg.gp == 1.0
    assert resolve(build_config(overrides={"loss": "hinge"})).reg == RegConfig()
    run = train_config(tiny_config(tmp_path / "r", loss="wgan-gp", steps=2, checkpoint_every=2))
    assert "gp: 10.0" in (run.run_dir / "config.yaml").read_text()


@pytest.mark.parametrize(("overrides", "message"), [
    ({"loss": "wgan", "label_smoothing": 0.1}, "label_smoothing needs a loss with labels"),
    ({"pack": 3, "batch_size": 32}, "multiple of reg.pack"),
    ({"diffaugment": "color,flip"}, "reg.diffaugment"),
    ({"r1": -1.0}, "reg.r1"),
    ({"label_smoothing": 0.7}, "label_smoothing must be in"),
])
def test_bad_cure_settings_are_named(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(GankitError, match=message):
        resolve(build_config(overrides=overrides))


def test_diffaugment_on_points_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="augments images"):
        train_config(tiny_config(tmp_path / "r", diffaugment="color", steps=2))


@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_loss_trains(tmp_path: Path, loss: str) -> None:
    run = train_config(tiny_config(tmp_path / "r", loss=loss, steps=12, log_every=4, checkpoint_every=12))
    assert run.step == 12
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["loss_g"]) for r in run.history)


CURES = [{"gp": 1.0}, {"r1": 0.1}, {"clip": 0.05}, {"spectral_norm": True}, {"label_smoothing": 0.1},
         {"instance_noise": 0.1}, {"mbstd": True}, {"pack": 4}, {"unrolled": 2}, {"ema": 0.9},
         {"lr_g": 1e-4, "lr_d": 4e-4}, {"r2": 0.1},
         {"r1": 0.1, "r2": 0.1, "r1_end": 0.01, "r2_end": 0.0, "schedule_images": 192}]


@pytest.mark.parametrize("cure", CURES, ids=lambda c: ",".join(c))
def test_every_cure_trains_on_points(tmp_path: Path, cure: dict[str, object]) -> None:
    run = train_config(tiny_config(tmp_path / "r", steps=12, log_every=4, checkpoint_every=12, **cure))
    assert run.step == 12
    assert all(math.isfinite(r["loss_d"]) for r in run.history)


def test_every_cure_of_the_catalogue_is_covered() -> None:
    # CURES must grow with RegConfig: a cure without an end-to-end run is an untested cure.
    # (DiffAugment below; ADA and its settings on images in tests/train/test_ada.py)
    covered = {k for c in CURES for k in c} | {"diffaugment", "ada", "ada_target", "ada_kimg", "ada_interval"}
    assert {f for f in RegConfig.__dataclass_fields__} <= covered


def test_images_with_all_d_cures_resume_bit_identically(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # DiffAugment, instance noise, PacGAN, minibatch std, spectral norm, R1, the unrolled look-ahead
    # and the EMA together: every random draw and every piece of state goes through the checkpoint.
    # The run is stopped as Ctrl-C stops it, so --steps (the noise's annealing horizon) is unchanged.
    images = tiny_images(48, 16)
    kw = {"model": "dcgan", "width": 8, "latent_dim": 8, "batch_size": 16, "data": "tensor",
          "diffaugment": "color,translation,cutout", "instance_noise": 0.1, "pack": 2, "mbstd": True,
          "spectral_norm": True, "r1": 1.0, "unrolled": 1, "ema": 0.9, "steps": 12, "checkpoint_every": 12}
    train_config(tiny_config(tmp_path / "full", **kw), data=from_tensor(images))

    with pytest.raises(KeyboardInterrupt, match="stopped at step 6"):  # Ctrl-C after step 6
        train_config(tiny_config(tmp_path / "part", **kw), data=from_tensor(images), hooks=[Signal(6)])
    train_config(None, data=from_tensor(images), resume=tmp_path / "part")  # type: ignore[arg-type]
    assert_same_run(tmp_path / "full", tmp_path / "part", logs=False)  # + one log line at the stop


def test_gradient_penalty_and_ragan_on_images(tmp_path: Path) -> None:
    images = tiny_images(48, 16)
    run = train_config(tiny_config(tmp_path / "r", model="dcgan", width=8, latent_dim=8, data="tensor",
                            loss="ragan", gp=1.0, steps=4, log_every=2, checkpoint_every=4),
                data=from_tensor(images))
    assert all(math.isfinite(r["loss_d"]) for r in run.history)


def test_rpgan_with_r1_and_r2_on_images(tmp_path: Path) -> None:
    # R3GAN's objective (Huang et al. 2024) on a convolutional D: both penalties differentiate D at
    # image inputs (channels-last), every step
    images = tiny_images(48, 16)
    run = train_config(tiny_config(tmp_path / "r", model="dcgan", width=8, latent_dim=8, data="tensor",
                                   loss="rpgan", r1=1.0, r2=1.0, beta1=0.0, steps=4, log_every=2,
                                   checkpoint_every=4), data=from_tensor(images))
    assert all(math.isfinite(r["loss_d"]) and math.isfinite(r["grad_d"]) for r in run.history)


def test_d_step_with_label_smoothing_uses_the_lowered_label(tmp_path: Path) -> None:
    s, data = _state(tmp_path, label_smoothing=0.2)
    real = data.batch(torch.arange(32))
    with torch.no_grad():
        fake = s.G(s.z(32))
    import copy

    twin = copy.deepcopy(s)
    loss, _, _ = d_step(s, real, fake)
    expected = twin.loss.d_loss(twin.D(real), twin.D(fake), 0.8)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
