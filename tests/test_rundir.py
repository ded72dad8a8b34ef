"""gankit.rundir: the run directory's paths, and the one reader of each of its files."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from gankit.errors import GankitError
from gankit.rundir import MetricsLog, NullLog, RunDir, read_records, resolve_last, step_dirs

CONFIG = "data: {source: ring}\nmodel: {arch: mlp, latent_dim: 3}\ntrain: {loss: hinge, steps: 70}\n"


def _checkpoint(run: Path, step: int, **meta: object) -> Path:
    ckpt = run / "checkpoints" / f"step-{step:06d}"
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text(json.dumps({"format": 1, "step": step, **meta}))
    return ckpt


@pytest.fixture
def run(tmp_path: Path) -> RunDir:
    path = tmp_path / "r"
    path.mkdir()
    (path / "config.yaml").write_text(CONFIG)
    lines = [{"step": 10, "loss_d": 1.3, "d_real": 0.6, "d_fake": 0.4},
             {"step": 10, "event": "warning", "kind": "mode_collapse", "message": "m"},
             {"step": 20, "diversity": 0.8},
             {"step": 20, "loss_d": float("nan"), "d_real": 0.5, "d_fake": 0.5},
             {"step": 20, "fid": 12.0, "eval_seconds": 1.5},
             {"step": 20, "event": "rollback", "message": "r"},
             {"step": 10, "fid": 15.0, "eval_n": 100, "eval_features": "fmnist"}]
    text = "".join(json.dumps(r) + "\n" for r in lines)
    (path / "metrics.jsonl").write_bytes(text.encode() + b"\n[1, 2]\nnot json \xff\n" + b'{"step": 30, "loss_')
    return RunDir(path)


def test_paths(tmp_path: Path) -> None:
    r = RunDir(tmp_path)
    assert (r.config_path, r.metrics_path, r.samples_dir, r.checkpoints_dir, r.report_path) == (
        tmp_path / "config.yaml", tmp_path / "metrics.jsonl", tmp_path / "samples",
        tmp_path / "checkpoints", tmp_path / "report.html")
    assert os.fspath(r) == str(tmp_path) and RunDir(r).path == tmp_path
    assert not r.is_run()
    with pytest.raises(GankitError, match="no config.yaml"):
        r.require()
    with pytest.raises(GankitError, match="does not exist"):
        RunDir(tmp_path / "nope").require()


def test_records_and_their_views_tolerate_what_a_running_run_leaves(run: RunDir) -> None:
    records = run.records()
    assert len(records) == 7  # the list, the bad bytes and the half-written last line are skipped
    assert math.isnan(records[3]["loss_d"])
    assert [e["event"] for e in run.events()] == ["warning", "rollback"]
    assert [r["step"] for r in run.training_records()] == [10, 20]
    assert [r["fid"] for r in run.eval_records()] == [12.0, 15.0]
    assert len(run.measurements()) == 5
    assert read_records(run.path / "missing.jsonl") == []
    assert MetricsLog(run.metrics_path).records() == records
    assert NullLog().records() == []


def test_append_and_truncate(run: RunDir) -> None:
    run.append({"step": 40, "fid": 9.0, "eval_n": 10})
    # the half-written line stays where a killed run left it; the new record is read back after it
    assert run.records()[-1] == {"step": 40, "fid": 9.0, "eval_n": 10}
    run.metrics_log().truncate_after(10)
    assert {r["step"] for r in run.records()} == {10}


def test_config_is_read_and_validated(run: RunDir) -> None:
    cfg = run.config()
    assert (cfg.data.source, cfg.model.latent_dim, cfg.train.loss, cfg.train.steps) == ("ring", 3, "hinge", 70)
    run.config_path.write_text("train: {steps: -1}\n")
    with pytest.raises(GankitError, match="steps"):
        run.config()


def test_samples_by_step_without_partial_files(run: RunDir) -> None:
    run.samples_dir.mkdir()
    for name in ("step-000200.png", "step-000010.png", "step-1000.png", ".step-000300.png.12.tmp", "notes.txt",
                 "step-000400.jpg"):
        (run.samples_dir / name).write_bytes(b"x")
    assert [p.name for p in run.samples()] == ["step-000010.png", "step-000200.png", "step-1000.png"]
    assert RunDir(run.path / "nope").samples() == []


def test_checkpoints_last_best_and_state(run: RunDir) -> None:
    assert run.last_checkpoint() is None and run.checkpoint_state() is None
    first = _checkpoint(run.path, 10, precision="fp32")
    second = _checkpoint(run.path, 20, precision="bf16")
    (run.checkpoints_dir / ".tmp-step-000030-99").mkdir()  # a save that was killed
    assert run.last_checkpoint() == second  # no ``last`` link: the newest finished one
    (run.checkpoints_dir / "last").symlink_to("step-000010")
    (run.checkpoints_dir / "best").symlink_to("step-000020")
    assert [s for s, _ in run.checkpoints()] == [10, 20] == [s for s, _ in step_dirs(run.checkpoints_dir)]
    assert run.last_checkpoint() == first.resolve() == resolve_last(run.checkpoints_dir)
    assert run.best_checkpoint() == second.resolve()
    assert run.checkpoint_state() == {"format": 1, "step": 10, "precision": "fp32"}
    assert run.checkpoint_state(second)["precision"] == "bf16"  # type: ignore[index]
    (first / "state.json").write_text('{"step": 1')  # damaged: None, not an exception
    assert run.checkpoint_state(first) is None
    assert RunDir.of_checkpoint(second) is not None and RunDir.of_checkpoint(second).path == run.path  # type: ignore[union-attr]
    assert RunDir.of_checkpoint(run.path) is None
