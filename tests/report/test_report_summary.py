"""The report's summary names what ran, D's verdict and every failure warning still active (as
``gankit doctor`` reads them); evaluations are a table over steps, not a plot per number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gankit.api import train_config
from gankit.report import build_report
from gankit.report.records import direction, eval_table, per_class_table
from tests.conftest import tiny_config

B64 = "data:image/png;base64,"


@pytest.fixture(scope="module")
def ring_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The config.yaml of a real (tiny) ring run, so the diagnosis can be replayed over it."""
    out = tmp_path_factory.mktemp("ring") / "r"
    train_config(tiny_config(out, steps=40))
    return (out / "config.yaml").read_text()


def _run(tmp_path: Path, config: str, records: list[dict[str, Any]]) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(config)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return run


def _train(step: int, d_real: float, d_fake: float) -> dict[str, Any]:
    return {"step": step, "loss_d": 1.0, "loss_g": 1.0, "d_real": d_real, "d_fake": d_fake,
            "grad_g": 1.0, "grad_d": 1.0, "time": step / 100, "img_per_s": 500.0}


def _summary(page: str) -> str:
    start = page.index('id="summary"')
    return page[start:min(page.find(m, start) % (len(page) + 1) for m in ('id="evaluation"', 'id="diagnosis"'))]


def _swinging(steps: range) -> list[dict[str, Any]]:
    """D's margin swinging between 0.8 and 0: non-convergence (gankit.diagnosis)."""
    return [_train(s, 0.9, 0.1) if i % 2 else _train(s, 0.5, 0.5) for i, s in enumerate(steps)]


def test_an_active_warning_leads_the_summary(tmp_path: Path, ring_config: str) -> None:
    records = _swinging(range(10, 210, 10))
    records.insert(12, {"step": 120, "event": "warning", "kind": "non_convergence", "message": "logged"})
    page = build_report(_run(tmp_path, ring_config, records)).read_text()
    summary = _summary(page)
    assert "Active: non-convergence</b> since step" in summary
    assert "swings by" in summary and "Try " not in summary  # the cures are in the diagnosis
    assert 'href="#diagnosis"' in summary
    assert "<b>mlp</b> on <b>ring</b>" in summary and "step <b>200</b> of 40 (finished)" in summary
    diagnosis = page[page.index('id="diagnosis"'):]
    assert "(still present)" in diagnosis and "Try lower learning rates" in diagnosis
    assert 'alt="gradient norms of G and D against step"' in page


def test_a_cleared_warning_is_not_active(tmp_path: Path, ring_config: str) -> None:
    records = _swinging(range(10, 160, 10)) + [_train(s, 0.52, 0.48) for s in range(160, 300, 10)]
    page = build_report(_run(tmp_path, ring_config, records)).read_text()
    summary = _summary(page)
    assert "Active:" not in summary
    assert "No failure warning is active (1 earlier warning cleared" in summary
    assert "(since cleared)" in page


def test_without_a_replay_the_logged_warnings_are_named(tmp_path: Path) -> None:
    # a config this gankit cannot read: the report still names what training warned of
    config = "data: {source: ring}\nmodel: {arch: mlp}\nnot_a_section: {x: 1}\n"
    records = [_train(10, 0.9, 0.01), {"step": 10, "event": "warning", "kind": "mode_collapse",
                                       "message": "G's samples cover only 2 of the 8 modes"},
               {"step": 20, "event": "rollback", "message": "loss_d was nan: rolled back"}]
    page = build_report(_run(tmp_path, config, records)).read_text()
    summary = _summary(page)
    assert "Training warned of: mode collapse (not re-checked" in summary
    assert "Diverged and rolled back 1 time (last at step 20)" in summary
    assert "logged during training" in page and "rolled back" in page[page.index('id="diagnosis"'):]


def test_evaluations_are_a_table_over_steps(tmp_path: Path, ring_config: str) -> None:
    records = [_train(s, 0.5, 0.5) for s in range(10, 110, 10)]
    records += [{"step": 50, "fid": 40.0, "eval_seconds": 2.0},  # --eval-every
                {"step": 100, "fid": 30.0, "eval_seconds": 2.0},
                {"step": 100, "fid": 31.0, "kid": 0.02, "kid_std": 0.004, "precision": 0.6,
                 "eval_n": 500, "eval_features": "fmnist"},  # gankit eval: other n, own row
                {"step": 100, "class_fid": 50.0, "class_acc": 0.5, "fid/T-shirt/top": 45.0,
                 "acc/T-shirt/top": 0.75, "fid/Bag": 55.0, "acc/Bag": 0.25, "n_per_class": 100}]
    page = build_report(_run(tmp_path, ring_config, records)).read_text()
    table = page[page.index('<table class="evals">'):]
    table = table[:table.index("</table>")]
    heads = [h.split("</th>")[0] for h in table.split("<th>")[1:]]
    assert heads == ["step", "fid \u2193", "kid \u2193", "precision \u2191", "samples"]
    rows = table.split("<tr>")[2:]
    assert [r.split("</td>")[0] for r in rows] == ["<td>50", "<td>100", "<td>100"]
    assert '<td class="best">30</td>' in rows[1] and "0.02 \u00b1 0.004" in rows[2] and "<td>500</td>" in rows[2]
    per_class = page[page.index('<table class="per-class">'):]
    assert "<td>T-shirt/top</td><td>45</td><td>0.75</td>" in per_class
    assert "<td>mean</td><td>50</td><td>0.5</td>" in per_class
    assert "against step" not in page.replace("D(G(z)) against step", "").replace(
        "loss_g against step", "").replace("G and D against step", "")  # no plot per number
    assert "Latest evaluation (step 100): fid <b>31</b> \u2193, kid <b>0.02 \u00b1 0.004</b> \u2193" in _summary(page)


def test_directions_of_every_kind_of_score() -> None:
    assert direction("fid") is False and direction("precision") is True and direction("hq") is True
    assert direction("psnr") is True and direction("l1") is False  # translators
    assert direction("fid/Coat") is False and direction("acc/Coat") is True
    assert direction("class_fid") is False and direction("nonsense") is None
    table = eval_table([{"step": 5, "nonsense": 1.0, "eval_n": 3}, {"step": 6, "nonsense": 2.0, "eval_n": 3}])
    assert table.best("nonsense") is None  # no direction, no "best"
    assert per_class_table([{"step": 1, "fid": 2.0, "eval_n": 3}]) is None


def test_a_run_stopped_by_its_time_budget_says_so_not_a_share_of_its_steps(tmp_path: Path,
                                                                           ring_config: str) -> None:
    config = ring_config.replace("steps: 40", "steps: 1000000").replace("max_time: 0.0", "max_time: 2.0")
    assert "max_time: 2.0" in config and "steps: 1000000" in config
    records = [_train(s, 0.5, 0.5) for s in range(10, 210, 10)]  # time = step / 100: 2 s at step 200
    summary = _summary(build_report(_run(tmp_path, config, records)).read_text())
    assert "step <b>200</b> (stopped at its time budget, 2 s)" in summary and "of 1000000" not in summary
    (tmp_path / "b").mkdir()
    still = _summary(build_report(_run(tmp_path / "b", config, records[:-1])).read_text())  # 1.9 s: going on
    assert "step <b>190</b> of 1000000 (0%)" in still
