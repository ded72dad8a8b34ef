"""SIGKILL at any moment loses nothing: killed during training, and while a checkpoint is being
written, a resumed run completes and ends bit-identical to one never killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from tests.conftest import needs_fmnist
from tests.train.test_resume import assert_same_run, logged

FMNIST_TINY = ["--data", "fashion-mnist", "--model", "dcgan", "--width", "8", "--latent-dim", "16",
               "--batch-size", "16", "--log-every", "5", "--sample-every", "20", "--checkpoint-every", "10",
               "--steps", "40", "--no-progress"]

# Runs `gankit train` in a child that SIGKILLs itself at an exact point: after G update number
# KILL_AT_STEP, or in the middle of writing the checkpoint of step KILL_IN_SAVE (after its tensors,
# before its state.json), the worst moment for a save.
CHILD = r"""
import os, signal, sys
from gankit import api, checkpoint as ck
from gankit.cli import main

at_step, in_save = int(os.environ.get("KILL_AT_STEP", 0)), int(os.environ.get("KILL_IN_SAVE", 0))
real_train, real_json = api.train_config, ck._write_json

class KillAt:  # a lifecycle hook: SIGKILL right after generator update number at_step
    n = 0
    def after_iteration(self, step, logged):
        KillAt.n += 1
        if KillAt.n == at_step:
            os.kill(os.getpid(), signal.SIGKILL)

def train_config(*a, **k):
    return real_train(*a, **k, hooks=[KillAt()])

def write_json(path, obj):
    if obj.get("step") == in_save:
        path.write_text('{"step": ')  # half a file, then death
        os.kill(os.getpid(), signal.SIGKILL)
    return real_json(path, obj)

api.train_config, ck._write_json = train_config, write_json
sys.exit(main(sys.argv[1:]))
"""


def child(args: list[str], **env: int) -> int:
    e = {**os.environ, **{k: str(v) for k, v in env.items()}}
    r = subprocess.run([sys.executable, "-c", CHILD, "train", *args], env=e, timeout=300,
                       capture_output=True, text=True)
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode


@needs_fmnist
def test_dcgan_fashion_mnist_killed_twice_then_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    full, run = tmp_path / "full", tmp_path / "killed"
    assert main(["train", *FMNIST_TINY, "--out", str(full)]) == 0

    # 1. killed during training, at step 25 (last checkpoint: 20)
    assert child([*FMNIST_TINY, "--out", str(run)], KILL_AT_STEP=25) == -signal.SIGKILL
    assert load_checkpoint(run).step == 20

    # 2. resumed, and killed again half-way through writing checkpoint 30
    assert child(["--resume", str(run)], KILL_IN_SAVE=30) == -signal.SIGKILL
    ckpts = run / "checkpoints"
    assert any(p.name.startswith(".tmp-step-000030") for p in ckpts.iterdir())  # the torn save
    assert os.readlink(ckpts / "last") == "step-000020"  # ... never became `last`
    assert load_checkpoint(run).step == 20

    # 3. resumed again: completes, and equals the run that was never killed
    assert main(["train", "--resume", str(run)]) == 0
    assert not any(p.name.startswith(".") for p in ckpts.iterdir())
    assert_same_run(full, run)


def ring_args(checkpoint_every: int) -> list[str]:
    """A 1500-step ring run, long enough (a few seconds) to be interrupted from outside."""
    return ["--data", "ring", "--model", "mlp", "--latent-dim", "8", "--width", "16", "--batch-size", "32",
            "--steps", "1500", "--log-every", "50", "--sample-every", "1500",
            "--checkpoint-every", str(checkpoint_every), "--no-progress"]


def test_external_sigkill_at_a_random_moment(tmp_path: Path) -> None:
    args = ring_args(checkpoint_every=100)
    run = tmp_path / "killed"
    p = subprocess.Popen([sys.executable, "-m", "gankit", "train", *args, "--out", str(run)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "checkpoints" / "last").exists():
        time.sleep(0.02)
    time.sleep(0.3)
    p.send_signal(signal.SIGKILL)
    p.wait()
    if p.returncode == 0:
        pytest.skip("the run finished before it could be killed")
    assert main(["train", "--resume", str(run)]) == 0
    assert main(["train", *args, "--out", str(tmp_path / "full")]) == 0
    assert_same_run(tmp_path / "full", run)


def test_ctrl_c_saves_a_checkpoint_and_resume_equals_uninterrupted(tmp_path: Path) -> None:
    args = ring_args(checkpoint_every=1000)
    run = tmp_path / "stopped"
    p = subprocess.Popen([sys.executable, "-m", "gankit", "train", *args, "--out", str(run)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run / "metrics.jsonl").exists():
        time.sleep(0.02)
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    if p.returncode == 0:
        pytest.skip("the run finished before Ctrl-C arrived")
    assert p.returncode == 130 and "checkpoint saved" in err and "--resume" in err
    step = load_checkpoint(run).step
    assert 0 < step < 1500 and step % 1000 != 0  # saved where it stopped, not at a scheduled step
    assert main(["train", "--resume", str(run)]) == 0
    assert main(["train", *args, "--out", str(tmp_path / "full")]) == 0
    # Weights, optimisers and RNG end identical. The logs differ by design around the stop: the
    # stopped run wrote one extra line at the step where it stopped (the mean of the steps since
    # the last log), so its next line averages fewer steps. Every other line is the same.
    assert_same_run(tmp_path / "full", run, logs=False)
    stopped, full = logged(run), logged(tmp_path / "full")
    if step % 50 == 0:  # it stopped on a log step: nothing extra was logged
        assert stopped == full
        return
    after = min(r["step"] for r in full if r["step"] > step)
    assert [r["step"] for r in stopped if r["step"] != step] == [r["step"] for r in full]
    assert [r for r in stopped if r["step"] not in (step, after)] == \
        [r for r in full if r["step"] != after]
