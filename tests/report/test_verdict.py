"""One reading of D(x) and D(G(z)): gankit.verdict.equilibrium, shared by doctor and the report."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path

import pytest

from gankit.cli import main as cli_main
from gankit.report import build_report
from gankit.verdict import equilibrium

CONFIG = """\
data: {source: ring}
model: {arch: mlp, latent_dim: 2}
train: {loss: nonsaturating, steps: 100}
"""


@pytest.mark.parametrize(
    ("d_real", "d_fake", "label", "start"),
    [
        (0.55, 0.47, "near equilibrium", "D can no longer tell real from fake"),
        (0.6, 0.4, "near equilibrium", "D can no longer tell real from fake"),  # on the edge: in
        (0.62, 0.55, "in between", "In between"),  # doctor said "near", the report "in between"
        (0.75, 0.5, "in between", "In between"),
        (0.93, 0.2, "D winning", "D is winning easily"),
        (0.3, 0.7, "fakes rated higher", "D rates the generated data above the real data"),
        (None, 0.5, "no data", "Not enough data yet"),
        (math.nan, 0.5, "no data", "Not enough data yet"),
    ],
)
def test_equilibrium_reads_d_outputs(d_real: float | None, d_fake: float | None, label: str,
                                     start: str) -> None:
    v = equilibrium(d_real, d_fake)
    assert v.label == label
    assert v.sentence.startswith(start)
    assert str(v) == v.sentence
    if label != "no data":  # every reading is against the same point, with its source
        assert "D(x) = D(G(z)) = 1/2 (Goodfellow et al. 2014)" in v.sentence
    if label == "D winning":
        assert "gradient may be diminishing" in v.sentence


def _run(root: Path, d_real: float, d_fake: float) -> Path:
    run = root / f"run-{d_real}-{d_fake}"
    run.mkdir()
    (run / "config.yaml").write_text(CONFIG)
    rows = [{"step": s, "loss_d": 1.3, "loss_g": 0.7, "d_real": d_real, "d_fake": d_fake} for s in (10, 20)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run


PAIRS = [(0.62, 0.55), (0.55, 0.47), (0.5, 0.5), (0.75, 0.5), (0.93, 0.2), (0.3, 0.7), (0.45, 0.58),
         (0.99, 0.01)]


@pytest.mark.parametrize(("d_real", "d_fake"), PAIRS)
def test_doctor_and_the_report_give_the_same_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], d_real: float, d_fake: float) -> None:
    run = _run(tmp_path, d_real, d_fake)
    capsys.readouterr()
    assert cli_main(["doctor", str(run)]) == 0
    doctor = capsys.readouterr().out
    page = html.unescape(build_report(run).read_text())
    verdict = equilibrium(d_real, d_fake)
    assert verdict.sentence in doctor
    assert verdict.sentence in page
    others = {equilibrium(a, b).sentence for a, b in PAIRS} - {verdict.sentence}
    assert not any(s in doctor or s in page for s in others)
