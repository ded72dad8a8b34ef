"""Runs written before the one engine (gankit at commit 470387f: config.yaml with '' and 0 for
unset values, checkpoints without a task name) still load, sample and resume, and a resumed run
ends where that gankit itself ended when resuming it: expected-after-resume.safetensors holds its
tensors (model/ and train/), expected-after-resume.json its log.

On the machine that made them the two agree to the bit. On another CPU, oneDNN picks other kernels
(AVX2 against AVX-512) whose sums round differently, so the check is on what the resumed steps
changed: ours against the old code's, relative to its size. Two threads instead of one (another
order of the same sums) differ there by 6e-8; resuming pix2pix in bf16 instead of fp32 differs
by 1.5e-3 and fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from gankit.api import train_config
from gankit.checkpoint import find_checkpoint
from gankit.cli import main
from tests.conftest import needs_fmnist
from tests.train.test_resume import VOLATILE

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy"


def copy_run(name: str, tmp_path: Path) -> Path:
    run = tmp_path / name
    shutil.copytree(LEGACY / name, run, symlinks=True)
    return run


REL = 1e-4  # of the resumed steps' change; rounding across CPUs is ~1e-7 of it


def load_checkpoint(ckpt: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {f: load_file(str(ckpt / f"{f}.safetensors")) for f in ("model", "train")}


def assert_as_expected(run: Path, start: dict[str, dict[str, torch.Tensor]], expected: dict) -> None:
    """`run` resumed from the checkpoint whose tensors are `start` ends as the old code's resume did
    (see the docstring)."""
    last = find_checkpoint(run)
    assert json.loads((last / "state.json").read_text())["step"] == expected["step"]
    want = load_file(str(run / "expected-after-resume.safetensors"))
    for f in ("model", "train"):
        got, before = load_file(str(last / f"{f}.safetensors")), start[f]
        assert {f"{f}/{k}" for k in got} == {k for k in want if k.startswith(f + "/")}, f
        floats = sorted(k for k, v in got.items() if v.is_floating_point())
        for k in sorted(set(got) - set(floats)):  # step counters, RNG states: exact on any CPU
            assert torch.equal(got[k], want[f"{f}/{k}"]), k
        ours = torch.cat([(got[k] - before[k]).flatten().double() for k in floats])
        theirs = torch.cat([(want[f"{f}/{k}"] - before[k]).flatten().double() for k in floats])
        assert theirs.norm() > 0, f
        assert (ours - theirs).norm() <= REL * theirs.norm(), (f, ((ours - theirs).norm() / theirs.norm()).item())
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for ours_row, theirs_row in zip(logged, expected["metrics"], strict=True):
        keys = set(theirs_row) - VOLATILE
        assert set(ours_row) - VOLATILE == keys
        assert {k: ours_row[k] for k in keys} == pytest.approx({k: theirs_row[k] for k in keys}, rel=REL)


@pytest.mark.parametrize(("name", "steps"), [("ring", 40), pytest.param("pix2pix", 8, marks=needs_fmnist)])
def test_a_run_from_before_the_engine_resumes_to_what_the_old_code_made(
        tmp_path: Path, name: str, steps: int) -> None:
    torch.set_num_threads(1)  # as the expected run was made: oneDNN's sums depend on the thread count
    run = copy_run(name, tmp_path)
    expected = json.loads((run / "expected-after-resume.json").read_text())
    start = load_checkpoint(find_checkpoint(run))  # read now: the resumed run prunes it
    train_config(None, resume=run, overrides={"steps": steps})
    assert_as_expected(run, start, expected)


def test_a_gan_checkpoint_from_before_samples(tmp_path: Path) -> None:
    run = copy_run("ring", tmp_path)
    assert main(["sample", str(run), "-n", "16", "--out", str(tmp_path / "pts")]) == 0
    assert len((tmp_path / "pts" / "points.csv").read_text().splitlines()) == 17
