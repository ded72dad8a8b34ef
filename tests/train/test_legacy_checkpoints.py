"""Runs written before the one engine (gankit at commit 470387f: config.yaml with '' and 0 for
unset values, checkpoints without a task name) still load, sample and resume, and a resumed run
ends bit-identical to what that gankit itself produced when resuming it (expected-after-resume.json
holds its tensors' hashes and its log)."""

from __future__ import annotations

import hashlib
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


def assert_as_expected(run: Path, expected: dict) -> None:
    last = find_checkpoint(run)
    assert json.loads((last / "state.json").read_text())["step"] == expected["step"]
    for f in ("model.safetensors", "train.safetensors"):
        got = {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()
               for k, v in sorted(load_file(str(last / f)).items())}
        assert got == expected[f], f
    logged = [{k: v for k, v in json.loads(line).items() if k not in VOLATILE}
              for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert logged == [{k: v for k, v in r.items() if k not in VOLATILE} for r in expected["metrics"]]


@pytest.mark.parametrize(("name", "steps"), [("ring", 40), pytest.param("pix2pix", 8, marks=needs_fmnist)])
def test_a_run_from_before_the_engine_resumes_to_what_the_old_code_made(
        tmp_path: Path, name: str, steps: int) -> None:
    torch.set_num_threads(1)  # as the expected run was made: oneDNN's sums depend on the thread count
    run = copy_run(name, tmp_path)
    expected = json.loads((run / "expected-after-resume.json").read_text())
    train_config(None, resume=run, overrides={"steps": steps})
    assert_as_expected(run, expected)


def test_a_gan_checkpoint_from_before_samples(tmp_path: Path) -> None:
    run = copy_run("ring", tmp_path)
    assert main(["sample", str(run), "-n", "16", "--out", str(tmp_path / "pts")]) == 0
    assert len((tmp_path / "pts" / "points.csv").read_text().splitlines()) == 17
