"""Shared fixtures: tiny configs that train in well under a second."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from gankit.config import Config, build_config
from gankit.resolve import resolve

REPO = Path(__file__).resolve().parents[1]
FMNIST = Path(os.environ.get("GANKIT_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"))
HAS_FMNIST = (FMNIST / "train-images-idx3-ubyte.gz").exists()
needs_fmnist = pytest.mark.skipif(
    not HAS_FMNIST, reason=f"Fashion-MNIST not installed at {FMNIST} (apt-get install dataset-fashion-mnist)"
)


@pytest.fixture(autouse=True)
def _isolate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    # two cores: two threads, or one per worker when the suite runs on two (test.sh sets OMP_NUM_THREADS)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or min(2, os.cpu_count() or 1)))


def tiny_config(out: Path, **overrides: object) -> Config:
    """A resolved config (as training gets it) of a run that takes well under a second."""
    base = {"data": "ring", "model": "mlp", "latent_dim": 8, "width": 16, "steps": 40, "batch_size": 32,
            "log_every": 10, "sample_every": 20, "checkpoint_every": 20, "progress": False,
            "out": str(out), "lr_g": 1e-3, "lr_d": 1e-3,
            # the suite's numbers are fp32 on every machine; tests/train/test_precision.py covers the rest
            "precision": "fp32"}
    base.update(overrides)
    return resolve(build_config(overrides=base))


def tiny_images(n: int = 48, size: int = 16, channels: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, size, size), generator=g, dtype=torch.uint8)


GLOO_TEARDOWN = "terminate called without an active exception"


def launch_once_more_on_teardown(cmd: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (``gankit train ... --out RUN``, under torchrun or not); if a rank aborted in gloo's teardown
    after the run had finished (its report written), run it once more from scratch. That abort was
    seen once in many suites on 2 loaded cores (2026-12-02), after the barrier before
    destroy_process_group (gankit.train.lifecycle) had made it rare; it is PyTorch's, not the
    run's. Any other failure, the same one twice, or one before the report fails the caller's test."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    if r.returncode != 0 and GLOO_TEARDOWN in r.stderr and "--out" in cmd and "--resume" not in cmd:
        out = Path(cmd[cmd.index("--out") + 1])
        if (out / "report.html").exists():
            shutil.rmtree(out)
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    return r
