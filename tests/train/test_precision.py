"""--precision: bf16 / fp16 autocast of G's and D's passes, fp16's gradient scalers, and resume."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest
import torch
from torch import nn

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.config import build_config
from gankit.data import from_tensor
from gankit.errors import GankitError
from gankit.resolve import resolve
from gankit.train.state import TrainState, resolve_precision
from gankit.train.step import d_step, fake_for_d, g_step
from tests.conftest import tiny_config, tiny_images
from tests.train.test_resume import assert_same_run

DCGAN = {"model": "dcgan", "width": 8, "latent_dim": 8, "batch_size": 32, "data": "tensor"}


def _conv_output_dtypes(module: nn.Module) -> list[torch.dtype]:
    """Hooks that record the dtype each convolution of ``module`` returns."""
    seen: list[torch.dtype] = []
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            m.register_forward_hook(lambda _m, _i, out: seen.append(out.dtype))
    return seen


@pytest.mark.parametrize(("precision", "dtype"), [("fp32", torch.float32), ("bf16", torch.bfloat16)])
def test_convolutions_run_in_the_asked_precision_and_losses_in_fp32(
        tmp_path: Path, precision: str, dtype: torch.dtype) -> None:
    cfg = tiny_config(tmp_path / "r", **DCGAN, precision=precision)
    real = tiny_images(32, 16)
    s = TrainState.create(cfg, from_tensor(real).shape, torch.device("cpu"))
    seen_G, seen_D = _conv_output_dtypes(s.G), _conv_output_dtypes(s.D)
    before = [p.detach().clone() for p in s.G.parameters()]
    fake = fake_for_d(s, 32, keep_graph=True)
    loss_d, d_real, d_fake = d_step(s, real.float() / 127.5 - 1, fake)
    loss_g = g_step(s, 32, fake)
    assert set(seen_G) == {dtype} and set(seen_D) == {dtype}
    # the logits come back as fp32, so the losses and D's probabilities are fp32 numbers
    for t in (loss_d, loss_g, d_real, d_fake):
        assert t.dtype == torch.float32 and torch.isfinite(t)
    # the weights and Adam's moments stay fp32, and G moved
    assert all(p.dtype == torch.float32 for p in s.G.parameters())
    assert all(v.dtype == torch.float32 for st in s.opt_G.state.values() for v in st.values() if v.dim())
    assert any(not torch.equal(a, b) for a, b in zip(before, s.G.parameters(), strict=True))


def test_bf16_step_follows_the_fp32_step_to_bf16_accuracy(tmp_path: Path) -> None:
    # The same D update in both precisions: bf16 keeps 8 bits of mantissa, so D's loss agrees to
    # about 1 %, not bit for bit - and it must not be some other number altogether.
    real = tiny_images(32, 16).float() / 127.5 - 1
    losses = {}
    for precision in ("fp32", "bf16"):
        cfg = tiny_config(tmp_path / precision, **DCGAN, precision=precision)
        s = TrainState.create(cfg, from_tensor(tiny_images(32, 16)).shape, torch.device("cpu"))
        losses[precision] = d_step(s, real, fake_for_d(s, 32))[0]
    torch.testing.assert_close(losses["bf16"], losses["fp32"], rtol=0.02, atol=0.0)
    assert not torch.equal(losses["bf16"], losses["fp32"])


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_resume_is_bit_identical_in_low_precision(tmp_path: Path, precision: str) -> None:
    images = tiny_images(48, 16)
    kw = DCGAN | {"precision": precision}
    train_config(tiny_config(tmp_path / "full", steps=20, **kw), data=from_tensor(images))
    train_config(tiny_config(tmp_path / "part", steps=10, checkpoint_every=10, **kw), data=from_tensor(images))
    train_config(None, data=from_tensor(images), resume=tmp_path / "part",  # type: ignore[arg-type]
          overrides={"steps": 20})
    assert_same_run(tmp_path / "full", tmp_path / "part")
    scalers = load_checkpoint(tmp_path / "full").meta["optim"].get("scalers")
    assert (scalers is not None) == (precision == "fp16")
    if scalers:
        assert scalers == load_checkpoint(tmp_path / "part").meta["optim"]["scalers"]


def test_fp16_steps_the_scaler_skips_are_not_divergence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A loss scale of 2^30 overflows fp16 on every backward at first: the scaler skips those
    # steps and halves the scale until the gradients fit. The run must go on (no rollback, no
    # "diverged" error) and the checkpoint must hold the reduced scale.
    from gankit.train import state as state_mod

    monkeypatch.setattr(state_mod, "gradient_scaler", lambda precision, device: torch.amp.GradScaler(
        device.type, init_scale=2.0**30) if precision == "fp16" else None)
    run = train_config(tiny_config(tmp_path / "r", steps=40, log_every=10, precision="fp16"))
    assert run.step == 40
    assert not any(r.get("event") == "rollback" for r in run.history)
    scale = load_checkpoint(tmp_path / "r").meta["optim"]["scalers"]["G"]["scale"]
    assert scale < 2.0**30
    # once the scale fits, steps are taken again: the last logged window has real gradients
    assert [r["grad_g"] for r in run.history if "grad_g" in r][-1] > 0


def test_precision_is_validated() -> None:
    with pytest.raises(GankitError, match="train.precision must be one of auto, fp32, bf16, fp16"):
        build_config(overrides={"precision": "fp8"})
    with pytest.raises(GankitError, match="fp16 cannot take the R1"):
        build_config(overrides={"precision": "fp16", "r1": 10.0})
    with pytest.raises(GankitError, match="fp16 cannot take the R1"):  # wgan-gp implies gp 10
        resolve(build_config(overrides={"precision": "fp16", "loss": "wgan-gp"}))
    with pytest.raises(GankitError, match="fp16 is for the noise-to-image GANs"):
        resolve(build_config(overrides={"model": "pix2pix", "data": "day2night", "precision": "fp16"}))
    assert resolve(build_config(overrides={"model": "cyclegan", "data": "sneaker2sandal",
                                           "precision": "bf16"})).train.precision == "bf16"
    assert build_config(overrides={"precision": "bf16", "r1": 10.0}).train.precision == "bf16"


def test_bf16_with_the_penalties_and_diffaugment_trains(tmp_path: Path) -> None:
    # R1 and the gradient penalty differentiate D at its input; DiffAugment transforms bf16 fakes.
    cfg = tiny_config(tmp_path / "r", **DCGAN, precision="bf16", r1=1.0, gp=1.0,
                      diffaugment="color,translation,cutout")
    s = TrainState.create(cfg, from_tensor(tiny_images(32, 16)).shape, torch.device("cpu"))
    real = tiny_images(32, 16).float() / 127.5 - 1
    for _ in range(2):
        fake = fake_for_d(s, 32, keep_graph=True)
        loss_d = d_step(s, real, fake)[0]
        loss_g = g_step(s, 32, fake)
    assert torch.isfinite(loss_d) and torch.isfinite(loss_g)
    assert all(torch.isfinite(p.grad).all() for p in s.D.parameters() if p.grad is not None)


@pytest.mark.parametrize("native", [True, False])
def test_auto_picks_bf16_for_images_where_bf16_pays_only(monkeypatch: pytest.MonkeyPatch,
                                                          native: bool) -> None:
    from gankit.train import state as state_mod

    monkeypatch.setattr(state_mod, "cpu_bf16_pays", lambda: native)
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu, is_image=True) == ("bf16" if native else "fp32")
    assert resolve_precision("auto", cpu, is_image=False) == "fp32"  # 2-D points: never bf16
    for explicit in ("fp32", "bf16", "fp16"):
        assert resolve_precision(explicit, cpu, is_image=False) == explicit


def test_auto_run_records_the_precision_it_chose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.train import state as state_mod

    monkeypatch.setattr(state_mod, "cpu_bf16_pays", lambda: True)
    images = from_tensor(tiny_images(32, 16))
    train_config(tiny_config(tmp_path / "img", steps=4, **DCGAN, precision="auto"), data=images)
    train_config(tiny_config(tmp_path / "pts", steps=4, precision="auto"))
    assert load_checkpoint(tmp_path / "img").meta["precision"] == "bf16"
    assert load_checkpoint(tmp_path / "pts").meta["precision"] == "fp32"
    # the report says what auto meant (config.yaml keeps "auto" as written)
    assert "precision: auto trained in bf16" in (tmp_path / "img" / "report.html").read_text()
    assert "precision: auto trained in fp32" in (tmp_path / "pts" / "report.html").read_text()


@pytest.mark.parametrize("reg", [{"spectral_norm": True}, {"mbstd": True}, {"pack": 2},
                                 {"instance_noise": 0.1}, {"conditional": "projection"},
                                 {"conditional": "acgan"}])
def test_bf16_trains_with_each_option(tmp_path: Path, reg: dict[str, object]) -> None:
    images, labels = tiny_images(32, 16), torch.arange(32) % 4
    data = from_tensor(images, labels) if "conditional" in reg else from_tensor(images)
    run = train_config(tiny_config(tmp_path / "r", steps=6, log_every=3, **DCGAN, precision="bf16", **reg), data=data)
    assert run.step == 6
    assert all(torch.isfinite(torch.tensor(r["loss_d"])) for r in run.history if "loss_d" in r)


def test_auto_resumes_in_the_precision_the_run_was_trained_in(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # Trained where auto meant fp32, resumed where it would mean bf16: the run goes on in fp32 and
    # ends equal to one never interrupted.
    state_mod = importlib.import_module("gankit.train.state")
    images = tiny_images(48, 16)
    kw = DCGAN | {"precision": "auto"}
    monkeypatch.setattr(state_mod, "cpu_bf16_pays", lambda: False)
    train_config(tiny_config(tmp_path / "full", steps=20, **kw), data=from_tensor(images))
    train_config(tiny_config(tmp_path / "part", steps=10, checkpoint_every=10, **kw), data=from_tensor(images))
    monkeypatch.setattr(state_mod, "cpu_bf16_pays", lambda: True)
    train_config(None, data=from_tensor(images), resume=tmp_path / "part",  # type: ignore[arg-type]
          overrides={"steps": 20})
    assert load_checkpoint(tmp_path / "part").meta["precision"] == "fp32"
    assert_same_run(tmp_path / "full", tmp_path / "part")


CPUINFO = "model name\t: Some CPU\nflags\t\t: fpu avx512f avx512_bf16\n"


def test_the_bf16_probe_measures_once_per_machine_and_keeps_the_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.train import bf16_probe

    calls: list[int] = []

    def slow_bf16() -> dict[str, float | bool]:
        calls.append(1)
        return {"fp32_ms": 27.0, "bf16_ms": 34.0, "bf16": False}

    monkeypatch.setattr(bf16_probe, "measure", slow_bf16)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert bf16_probe.bf16_pays(CPUINFO, tmp_path) is False and calls == [1]
    assert "measured at 0.79x fp32's speed" in capsys.readouterr().err
    kept = json.loads((tmp_path / bf16_probe.FILE).read_text())
    assert kept == {bf16_probe.machine_key(CPUINFO): {"fp32_ms": 27.0, "bf16_ms": 34.0, "bf16": False}}
    assert bf16_probe.bf16_pays(CPUINFO, tmp_path) is False and calls == [1]  # from the cache: not again
    # another CPU (or torch, or thread count) is another machine: measured, and kept beside the first
    other = CPUINFO.replace("Some CPU", "Another CPU")
    assert bf16_probe.machine_key(other) != bf16_probe.machine_key(CPUINFO)
    monkeypatch.setattr(bf16_probe, "measure", lambda: {"fp32_ms": 30.0, "bf16_ms": 15.0, "bf16": True})
    assert bf16_probe.bf16_pays(other, tmp_path) is True
    assert len(json.loads((tmp_path / bf16_probe.FILE).read_text())) == 2
    # a damaged cache file is measured over, not trusted
    (tmp_path / bf16_probe.FILE).write_text("{not json")
    assert bf16_probe.bf16_pays(other, tmp_path) is True
    assert json.loads((tmp_path / bf16_probe.FILE).read_text())[bf16_probe.machine_key(other)]["bf16"] is True


def test_under_torchrun_an_unmeasured_machine_gets_fp32_without_a_race(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.train import bf16_probe

    monkeypatch.setattr(bf16_probe, "measure", lambda: pytest.fail("every rank would measure at once"))
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert bf16_probe.bf16_pays(CPUINFO, tmp_path) is False
    assert not (tmp_path / bf16_probe.FILE).exists()


def test_the_probe_measures_both_precisions_and_leaves_the_random_state_alone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gankit.train import bf16_probe

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    answer = bf16_probe.bf16_pays(CPUINFO, tmp_path)  # measured for real
    # a run seeded before its precision is resolved draws the same numbers whether or not it probed
    assert torch.equal(torch.get_rng_state(), before)
    found = json.loads((tmp_path / bf16_probe.FILE).read_text())[bf16_probe.machine_key(CPUINFO)]
    assert 0 < found["fp32_ms"] < 5000 and 0 < found["bf16_ms"] < 5000
    assert answer == found["bf16"] == (found["fp32_ms"] / found["bf16_ms"] >= bf16_probe.MIN_SPEEDUP)
