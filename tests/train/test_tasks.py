"""Tests generated from the task catalogue (``gankit.tasks.TASKS``): every registered task, the
tests' own toy task included (tests/toy_task.py), gets every capability of the one lifecycle.

For each task, on its registry entry's ``smoke`` run of a few seconds:
- SIGKILL in the middle of training, then ``--resume``: the same weights, optimiser state, RNG
  state and log as a run never killed;
- Ctrl-C saves a checkpoint where it stopped, and resuming ends as the uninterrupted run;
- a NaN loss rolls the run back to its last checkpoint with halved learning rates; a second
  one halves them again and draws fresh noise, and the budget of rollbacks survives a resume;
- torchrun on gloo: 2 ranks at batch B equal 1 process at 2B (tasks whose networks allow it;
  the others train, checkpoint and resume under torchrun);
- its sample grids are written;
- its evaluation runs during training and keeps ``checkpoints/best``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import tests.toy_task  # noqa: F401  (registers the toy task)
from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.config import build_config, options_by_key
from gankit.rundir import RunDir
from gankit.tasks import TASKS
from gankit.train.lifecycle import TrainingDiverged
from tests.conftest import HAS_FMNIST, REPO, launch_once_more_on_teardown, needs_fmnist
from tests.hooks import NaNLoss, Signal
from tests.train.test_resume import logged

NAMES = TASKS.names()
BASE: dict[str, Any] = {"steps": 8, "batch_size": 4, "log_every": 2, "sample_every": 4,
                        "checkpoint_every": 4, "diagnose_every": 4, "progress": False, "precision": "fp32",
                        "lr_g": 1e-3, "lr_d": 1e-3}
# the built-in translation tasks are made from Fashion-MNIST
FMNIST_DATA = {"day2night", "edges2fashion", "sneaker2sandal", "fashion2emoji", "fashion-mnist", "captioned-fashion",
                "mfmnist", "mfmnist-small"}


def overrides(name: str, out: Path, **kw: Any) -> dict[str, Any]:
    return {**BASE, **TASKS.get(name).smoke, "out": str(out), **kw}


def config(name: str, out: Path, **kw: Any):  # type: ignore[no-untyped-def]
    return build_config(overrides=overrides(name, out, **kw))


def flags(values: dict[str, Any]) -> list[str]:
    """Config keys as the command line spells them."""
    by_key, out = options_by_key(), []
    for key, value in values.items():
        flag = by_key[key].flag
        if isinstance(value, bool):
            out.append(flag if value else "--no-" + flag[2:])
        else:
            out += [flag, str(value)]
    return out


def gankit(args: list[str], nproc: int = 0, **env: str) -> subprocess.CompletedProcess[str]:
    """``gankit ARGS`` in a child process (with the toy task registered); under torchrun with
    ``nproc`` ranks."""
    script = str(REPO / "tests" / "run_gankit.py")
    launch = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
              script] if nproc else [sys.executable, script]
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    return launch_once_more_on_teardown([*launch, *args], env)


def same_run(a: Path, b: Path, logs: bool = True) -> None:
    """Bit-identical checkpoints (every tensor), and the same log."""
    ca, cb = load_checkpoint(a), load_checkpoint(b)
    assert ca.step == cb.step
    assert ca.train is not None and cb.train is not None
    for part, ta, tb in (("model", ca.model, cb.model), ("train", ca.train, cb.train)):
        assert ta.keys() == tb.keys()
        for k in ta:
            assert torch.equal(ta[k], tb[k]), f"{part} tensor {k} differs"
    if logs:
        assert logged(a) == logged(b)


@pytest.fixture(params=NAMES)
def name(request: pytest.FixtureRequest) -> str:
    if TASKS.get(request.param).smoke.get("data") in FMNIST_DATA and not HAS_FMNIST:
        pytest.skip("Fashion-MNIST is not installed")
    return str(request.param)


def test_the_toy_task_is_in_the_catalogue() -> None:
    assert {"gan", "pix2pix", "cyclegan", "toy"} <= set(NAMES)


def test_sigkill_mid_run_then_resume_is_bit_exact(name: str, tmp_path: Path) -> None:
    torch.set_num_threads(1)  # as the children run: oneDNN's sums depend on the thread count
    train_config(config(name, tmp_path / "full"))
    part = tmp_path / "part"
    r = gankit(["train", *flags(overrides(name, part))], GANKIT_TEST_KILL_AT="6")
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    assert load_checkpoint(part).step == 4  # the last checkpoint before the kill
    # resumed here, not in a third process: a fresh process's resume is tests/train/test_kill.py's
    # (the engine's, the same for every task), and each launch costs seconds of imports
    train_config(None, resume=part)
    same_run(tmp_path / "full", part)


def test_ctrl_c_saves_a_checkpoint_and_resume_ends_as_never_stopped(name: str, tmp_path: Path) -> None:
    train_config(config(name, tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt, match="stopped at step 5"):
        train_config(config(name, tmp_path / "part"), hooks=[Signal(5)])
    assert load_checkpoint(tmp_path / "part").step == 5
    train_config(None, resume=tmp_path / "part")
    same_run(tmp_path / "full", tmp_path / "part", logs=False)  # + one log line at the stop


def test_a_nan_rolls_back_to_the_last_checkpoint(name: str, tmp_path: Path) -> None:
    out = train_config(config(name, tmp_path / "r"), hooks=[NaNLoss(lambda n: n == 6)])
    del out
    events = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    (rollback,) = [e for e in events if e.get("event") == "rollback"]
    assert rollback["step"] == 4 and rollback["diverged_at"] == 6
    assert rollback["lr_g"] == pytest.approx(0.5e-3) and rollback["lr_d"] == pytest.approx(0.5e-3)
    ckpt = load_checkpoint(tmp_path / "r")
    assert ckpt.step == 8
    for opt in ("opt_G", "opt_D"):  # the halved rate (the base of a decaying schedule)
        group = ckpt.meta["optim"][opt]["param_groups"][0]
        assert group.get("base_lr", group["lr"]) == pytest.approx(0.5e-3)


class LossAt:
    """Remember loss_d of each attempt at iteration ``step`` (0-based): computed before the
    update, it depends only on the restored weights, the data and the noise drawn."""

    def __init__(self, step: int) -> None:
        self.step, self.seen = step, []

    def after_iteration(self, step: int, logged: dict[str, Any]) -> None:
        if step == self.step:
            self.seen.append(float(logged["loss_d"]))


def test_repeated_rollbacks_learn_and_the_budget_survives_a_resume(name: str, tmp_path: Path) -> None:
    # steps 1-6, NaN at 6 -> back to 4; step 5 retried, NaN again -> back to 4 once more
    seen = LossAt(4)
    train_config(config(name, tmp_path / "r"), hooks=[seen, NaNLoss(lambda n: n in (6, 7))])
    events = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    first, second = [e for e in events if e.get("event") == "rollback"]
    assert (first["step"], second["step"]) == (4, 4)
    # the second halves the first's rates, not the checkpoint's again
    assert second["lr_g"] == pytest.approx(0.25e-3) and second["lr_d"] == pytest.approx(0.25e-3)
    assert len(seen.seen) == 3 and all(np.isfinite(seen.seen))
    if name in ("gan", "toy"):  # a fresh draw of z for each retry (translators draw no noise per step)
        assert len(set(seen.seen)) == 3, seen.seen
    assert load_checkpoint(tmp_path / "r").meta["rollbacks"] == 2
    # one rollback left after a resume: a divergence at once uses it, the next (at the first retried
    # step, iteration 3: a NaN is seen at the log step after it) stops the run
    with pytest.raises(TrainingDiverged, match=r"rolled back 3 time"):
        train_config(None, resume=tmp_path / "r", overrides={"steps": 16},
                     hooks=[NaNLoss(lambda n: n in (1, 3))])


@pytest.mark.slow
@pytest.mark.distributed
def test_torchrun_on_gloo(name: str, tmp_path: Path) -> None:
    exact = TASKS.get(name).ddp_exact
    if exact is None:  # per-rank state: train and checkpoint under torchrun, then resume alone
        # (resuming under torchrun is the engine's, the same for every task: tests/train/test_ddp.py)
        run = tmp_path / "ddp"
        r = gankit(["train", *flags(overrides(name, run, steps=4, batch_size=2))], nproc=2)
        assert r.returncode == 0, r.stderr[-3000:]
        assert load_checkpoint(run).step == 4
        train_config(None, resume=run, overrides={"steps": 6})
        assert load_checkpoint(run).step == 6
        return
    # Two iterations: the same arithmetic up to the order of float sums, which a GAN's dynamics
    # and Adam's normalised steps amplify over longer runs (CycleGAN: 7e-7 after 1 step, 4e-3 after 8).
    short = {**exact, "steps": 2, "log_every": 1, "checkpoint_every": 2}
    r = gankit(["train", *flags(overrides(name, tmp_path / "ddp", batch_size=2, **short))], nproc=2)
    assert r.returncode == 0, r.stderr[-3000:]
    torch.set_num_threads(1)
    train_config(config(name, tmp_path / "one", batch_size=4, **short))
    a, b = load_checkpoint(tmp_path / "ddp"), load_checkpoint(tmp_path / "one")
    assert a.step == b.step == 2
    for k in b.model:
        assert torch.allclose(a.model[k].float(), b.model[k].float(), rtol=1e-4, atol=1e-5), k
    la, lb = logged(tmp_path / "ddp"), logged(tmp_path / "one")
    for ra, rb in zip(la, lb, strict=True):  # logged values are means over the ranks
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            if key in ra:
                assert abs(ra[key] - rb[key]) < 1e-3, (key, ra[key], rb[key])
    # only rank 0 wrote
    assert sorted(p.name for p in (tmp_path / "ddp" / "samples").glob("*.png")) == [
        "step-000000.png", "step-000002.png"]


def test_sample_grids_are_written_and_show_something(name: str, tmp_path: Path) -> None:
    train_config(config(name, tmp_path / "r"))
    # config.yaml holds what the run used, and says who chose it
    saved = RunDir(tmp_path / "r").config()
    assert saved.log.out == str(tmp_path / "r") and "log.out" in saved.provenance.user_set
    for key, why in saved.provenance.resolved.items():
        assert saved.get(key) is not None and why, key
    grids = sorted((tmp_path / "r" / "samples").glob("*.png"))  # (2-D runs: a .json beside each)
    assert [p.name for p in grids] == ["step-000000.png", "step-000004.png", "step-000008.png"]
    with Image.open(grids[-1]) as im:
        pixels = np.asarray(im.convert("L"), dtype=np.float64)
    assert pixels.std() > 1.0  # not a blank image
    # report.html, written at the end, is the lab's page with this task's curves and samples
    page = (tmp_path / "r" / "report.html").read_text()
    found = re.search(r"window\.LAB_STATIC = (.*?);</script>", page, re.S)
    assert found and 'id="c-d"' in page and 'id="report-below"' in page
    data = json.loads(found.group(1))
    assert data["summary"]["samples"] == [0, 4, 8] and data["summary"]["status"] == "finished"
    assert any(k.startswith("loss") for k in data["metrics"]["train"]), sorted(data["metrics"]["train"])
    assert len(data["fields"] or data["images"]) == 3


def test_evaluation_during_training_keeps_the_best_checkpoint(name: str, tmp_path: Path) -> None:
    train_config(config(name, tmp_path / "r", eval_every=4, eval_n=64))
    evals = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    evals = [e for e in evals if "eval_seconds" in e]
    assert [e["step"] for e in evals] == [4, 8]
    best = tmp_path / "r" / "checkpoints" / "best"
    assert best.is_symlink() and (best / "state.json").is_file()
    meta = json.loads((best / "state.json").read_text())
    assert meta["best"]["key"] in evals[0] and meta["best"]["step"] in (4, 8)


@needs_fmnist
def test_an_image_run_saves_its_real_image_size_channels_and_width(tmp_path: Path) -> None:
    p2p = {k: v for k, v in overrides("pix2pix", tmp_path / "p", steps=1).items()
           if k not in ("image_size", "width")}  # left unset: the run settles them
    train_config(build_config(overrides=p2p))
    train_config(build_config(overrides={**BASE, "data": "fashion-mnist", "model": "dcgan", "steps": 1,
                                         "latent_dim": 8, "out": str(tmp_path / "d")}))
    for run, size, width in (("p", "28", 64), ("d", "28", 32)):
        text = (tmp_path / run / "config.yaml").read_text()
        saved = RunDir(tmp_path / run).config()
        assert (saved.data.image_size, saved.data.channels, saved.model.width) == (size, 1 if run == "d" else 3, width)
        assert "image_size: ''" not in text and "width: 0" not in text
        assert saved.provenance.resolved["data.image_size"] == "from the data"
        assert "model.width" in saved.provenance.resolved and "train.steps" in saved.provenance.user_set
