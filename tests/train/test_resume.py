"""A run stopped at step s and resumed ends bit-identical to one never stopped (on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.data import from_tensor
from tests.conftest import tiny_config, tiny_images

VOLATILE = {"time", "img_per_s"}


def logged(run: Path) -> list[dict[str, float]]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in VOLATILE} for line in lines]


def assert_same_run(a: Path, b: Path, logs: bool = True) -> None:
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    assert ca.step == cb.step
    for part in ("model", "train"):
        ta, tb = getattr(ca, part), getattr(cb, part)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{part} tensor {k} differs"
    assert ca.meta["real_batches"] == cb.meta["real_batches"]
    if logs:
        assert logged(a) == logged(b)


@pytest.mark.parametrize("d_steps", [1, 2])
def test_mlp_ring_resume_is_bit_identical(tmp_path: Path, d_steps: int) -> None:
    train_config(tiny_config(tmp_path / "full", steps=40, d_steps=d_steps))
    train_config(tiny_config(tmp_path / "part", steps=20, d_steps=d_steps))
    train_config(None, resume=tmp_path / "part", overrides={"steps": 40})  # type: ignore[arg-type]
    assert_same_run(tmp_path / "full", tmp_path / "part")


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_dcgan_resume_is_bit_identical_with_batch_norm(tmp_path: Path, ema: float) -> None:
    # Batch norm's running statistics and a data order spanning epochs (48 images, batch 32);
    # with --ema the moving average of G is part of the checkpoint too.
    images = tiny_images(48, 16)
    kw = {"model": "dcgan", "width": 8, "latent_dim": 8, "batch_size": 32, "data": "tensor", "ema": ema}
    train_config(tiny_config(tmp_path / "full", steps=30, **kw), data=from_tensor(images))
    train_config(tiny_config(tmp_path / "part", steps=10, checkpoint_every=10, **kw), data=from_tensor(images))
    train_config(None, data=from_tensor(images), resume=tmp_path / "part",  # type: ignore[arg-type]
          overrides={"steps": 30})
    assert_same_run(tmp_path / "full", tmp_path / "part")
    assert any(k.startswith("G_ema.") for k in load_checkpoint(tmp_path / "full").model) == (ema > 0)


def test_resume_after_metrics_past_checkpoint_logs_each_step_once(tmp_path: Path) -> None:
    # Logged every 10 steps, checkpointed every 20: a run killed at step 30 has logged step 30
    # but its last checkpoint is 20. Simulate by truncating to the checkpoint, then resuming.
    cfg = tiny_config(tmp_path / "r", steps=30, checkpoint_every=20)
    train_config(cfg)
    ckpts = tmp_path / "r" / "checkpoints"
    (ckpts / "last").unlink()
    import shutil

    shutil.rmtree(ckpts / "step-000030")  # as if killed before the final save
    with open(tmp_path / "r" / "metrics.jsonl", "a") as f:
        f.write('{"step": 31, "loss_d": 1')  # and half a line written as it died
    train_config(None, resume=tmp_path / "r", overrides={"steps": 40})  # type: ignore[arg-type]
    steps = [r["step"] for r in logged(tmp_path / "r")]
    assert steps == [10, 20, 30, 40]


def test_same_seed_same_run(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "a", steps=20))
    train_config(tiny_config(tmp_path / "b", steps=20))
    assert_same_run(tmp_path / "a", tmp_path / "b")
    train_config(tiny_config(tmp_path / "c", steps=20, seed=1))
    assert logged(tmp_path / "a") != logged(tmp_path / "c")
