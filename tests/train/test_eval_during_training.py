"""--eval-every: metrics during training, in metrics.jsonl and the report, and a `best` checkpoint."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from tests.conftest import tiny_config


def test_best_checkpoint_follows_the_eval_metric(tmp_path: Path) -> None:
    run = tmp_path / "r"
    train_config(tiny_config(run, steps=60, eval_every=20, eval_metric="hq", checkpoint_every=10, keep=1))
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in lines if "hq" in r]
    assert [r["step"] for r in evals] == [20, 40, 60]
    best = max(evals, key=lambda r: (r["hq"], -r["step"]))  # first of the best wins ties
    ckpts = run / "checkpoints"
    assert os.readlink(ckpts / "best") == f"step-{best['step']:06d}"
    assert (ckpts / "best" / "state.json").exists()  # kept despite --keep 1
    assert load_checkpoint(ckpts / "best").meta["best"]["value"] == best["hq"]
    assert "<th>hq \u2191</th>" in (run / "report.html").read_text()


def test_eval_cli_on_a_2d_run_appends_to_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "r"
    train_config(tiny_config(run, steps=20))
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 20 and 0 <= out["modes"] <= 8 and 0 <= out["hq"] <= 1 and out["n_fake"] == 2500
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 20 and last["modes"] == out["modes"]


@pytest.mark.parametrize(("args", "message"), [
    (["eval"], "give a run directory"),
    (["eval", "--real", "a"], "--real DIR --fake DIR"),
    (["eval", "RUN", "--metrics", "fdi"], "unknown metric 'fdi'"),
    (["eval", "RUN", "--features", "inception:/nonexistent.pth", "--metrics", "fid"], "2-D data"),
])
def test_eval_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                          message: str) -> None:
    run = tmp_path / "r"
    train_config(tiny_config(run, steps=10))
    capsys.readouterr()
    assert main([str(run) if a == "RUN" else a for a in args]) == 2
    assert message in capsys.readouterr().err


def test_unknown_eval_metric_is_a_config_error(tmp_path: Path) -> None:
    from gankit.errors import GankitError

    with pytest.raises(GankitError, match="unknown metric key 'fidd'"):
        tiny_config(tmp_path / "r", eval_every=5, eval_metric="fidd")
