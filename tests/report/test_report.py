"""Tests for gankit.report: report.html (the lab's page exported, the report's sections below it),
the tolerant metrics reader, the field plot."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gankit.errors import GankitError
from gankit.report import build_report, plot_field
from gankit.report.plots import FIELD_MARKER

B64 = "data:image/png;base64,"

CONFIG = """\
data: {source: SOURCE, image_size: '28', channels: 0}
model: {arch: mlp, latent_dim: 2, prior: normal, width: 0}
train: {loss: nonsaturating, d_steps: 1, steps: 2000, batch_size: 64, lr_g: 0.0002}
log: {out: R, log_every: 50, sample_every: 500, checkpoint_every: 1000, keep: 3}
extra: {nested: {deep_key: 7}, note: "<script>alert(1)</script>"}
"""


def _write_config(run: Path, source: str = "mnist") -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.yaml").write_text(CONFIG.replace("SOURCE", source))


def _write_metrics(run: Path, n: int = 12, d_real: float = 0.55, d_fake: float = 0.45) -> None:
    lines = []
    for i in range(n):
        rec = {
            "step": (i + 1) * 50,
            "loss_d": 1.2 + 0.01 * i,
            "loss_g": 0.9 - 0.01 * i,
            "d_real": d_real,
            "d_fake": d_fake,
            "time": 0.5 * i,
            "img_per_s": 1000.0,
        }
        lines.append(json.dumps(rec))
        if i % 4 == 3:  # an --eval-every evaluation, as training logs it
            lines.append(json.dumps({"step": rec["step"], "fid": 50.0 - i, "eval_seconds": 1.5}))
    lines.insert(3, json.dumps({"step": 175, "loss_d": None, "loss_g": float("nan")}))
    text = "\n".join(lines) + '\n{"step": 9999, "loss_d": 1.'  # half-written last line
    (run / "metrics.jsonl").write_text(text)


def _write_image_samples(run: Path, steps: list[int]) -> list[Path]:
    rng = np.random.default_rng(0)
    (run / "samples").mkdir(parents=True, exist_ok=True)
    paths = []
    for s in steps:
        arr = rng.integers(0, 256, size=(20, 20, 3), dtype=np.uint8)
        path = run / "samples" / f"step-{s:06d}.png"
        Image.fromarray(arr).save(path)
        paths.append(path)
    return paths


def _embedded_pngs(page: str) -> list[bytes]:
    return [
        base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    ]


def _data(page: str) -> dict:
    """What the exported lab page reads instead of a server (``window.LAB_STATIC``)."""
    m = re.search(r"window\.LAB_STATIC = (.*?);</script>", page, re.S)
    assert m, "no LAB_STATIC in the page"
    return json.loads(m.group(1))


def _below(page: str) -> str:
    """The report's part under the lab's page."""
    return page[page.index('<section id="report-below">'):]


@pytest.fixture
def image_run(tmp_path: Path) -> Path:
    run = tmp_path / "run-img"
    _write_config(run)
    _write_metrics(run)
    _write_image_samples(run, [500, 1000, 1500])
    return run


def test_build_report_is_the_lab_page_exported(image_run: Path) -> None:
    out = build_report(image_run)
    assert out == image_run / "report.html"
    assert out.is_file()
    page = out.read_text(encoding="utf-8")

    # Self-contained: the lab's page with uPlot, its scripts and styles inlined, nothing loaded.
    assert 'src="http' not in page and 'src="/static' not in page and "<link rel=\"stylesheet\"" not in page
    assert "uplot" in page.lower() and 'id="c-d"' in page and 'id="slider"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # config text is escaped
    assert "<title>gankit report: run-img</title>" in page and "<h1>gankit report: run-img</h1>" in page

    # The page's data: the curves (the half-written last line skipped, NaN as null), the
    # samples byte for byte, fid as an evaluation series.
    data = _data(page)
    assert data["metrics"]["full"] is True
    assert data["metrics"]["train"]["d_real"][0][-1] == 600
    assert data["metrics"]["eval"]["fid"][0] == [200, 400, 600]
    assert data["summary"]["samples"] == [500, 1000, 1500] and data["summary"]["latest_sample"] == 1500
    assert data["summary"]["two_d"] is False
    pngs = _embedded_pngs(page)
    for path in sorted((image_run / "samples").iterdir()):
        assert path.read_bytes() in pngs

    # Below the page: the summary, the evaluations table, the diagnosis, the config folded away.
    below = _below(page)
    marks = ['id="summary"', 'id="evaluation"', 'id="diagnosis"', '<details id="config">', "<footer>"]
    where = [below.index(m) for m in marks]
    assert where == sorted(where), dict(zip(marks, where, strict=True))
    assert page.index('id="c-d"') < page.index('id="report-below"')
    for text in ("nonsaturating", "latent_dim: 2", "lr_g: 0.0002", "deep_key: 7", "source: mnist"):
        assert text in below
    assert below.index("latent_dim: 2") > below.index('<details id="config">') and "<details open" not in page
    assert "<b>mlp</b> on <b>mnist</b>" in below
    assert "step <b>600</b> of 2000 (30%)" in below
    assert "D can no longer tell real from fake" in below
    assert "Latest evaluation (step 600): fid <b>39</b> \u2193" in below
    assert "<th>fid \u2193</th>" in below
    assert "No failure warning is active" in below
    assert "Generated" in below

    # Written atomically: no temp files left next to the report.
    assert sorted(p.name for p in image_run.iterdir()) == [
        "config.yaml",
        "metrics.jsonl",
        "report.html",
        "samples",
    ]


def test_build_report_needs_no_web_server() -> None:
    import subprocess
    import sys

    code = ("import sys, gankit.report, gankit.report.page; "
            "bad = [m for m in sys.modules if m.startswith(('starlette', 'uvicorn', 'gankit.lab'))]; "
            "assert not bad, bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_build_report_custom_out_and_rebuild(image_run: Path, tmp_path: Path) -> None:
    out = build_report(image_run, out=tmp_path / "elsewhere" / "r.html")
    assert out == tmp_path / "elsewhere" / "r.html"
    assert out.is_file()
    # Training goes on: a new sample and more metrics appear; rebuilding picks them up.
    _write_image_samples(image_run, [2000])
    with (image_run / "metrics.jsonl").open("a") as f:
        f.write('\n{"step": 2000, "loss_d": 1.0, "d_real": 0.95, "d_fake": 0.2}\n')
    page = build_report(image_run).read_text()
    assert _data(page)["summary"]["latest_sample"] == 2000
    assert _data(page)["summary"]["status"] == "finished"
    assert "step <b>2000</b> of 2000 (finished)" in page
    assert "D is winning easily" in page


def test_sample_selection_even_with_first_and_latest(tmp_path: Path) -> None:
    run = tmp_path / "many"
    _write_config(run)
    steps = [500 * (i + 1) for i in range(20)]
    _write_image_samples(run, steps)
    (run / "samples" / ".step-010500.png.123.tmp").write_bytes(b"partial")  # ignored
    page = build_report(run, max_sample_grids=5).read_text()
    shown = _data(page)["summary"]["samples"]
    assert shown[0] == 500 and shown[-1] == 10000 and len(shown) == 5 and shown == sorted(shown)
    assert _data(build_report(run, max_sample_grids=50).read_text())["summary"]["samples"] == steps
    # No metrics file in this run: the summary says so.
    assert "No metrics logged yet" in page


def test_two_d_run_exports_its_fields(tmp_path: Path) -> None:
    run = tmp_path / "ring-run"
    _write_config(run, source="ring")
    _write_metrics(run, d_real=0.97, d_fake=0.1)
    (run / "samples").mkdir()
    snap = {"extent": [-2, 2, -2, 2], "prob": [[0.2, 0.8], [0.7, 0.1]], "real": [[0, 1]], "fake": [[1, 0]]}
    for s in (500, 1000):
        (run / "samples" / f"step-{s:06d}.png").write_bytes(
            plot_field(np.zeros((3, 2)), np.ones((3, 2)), np.full((8, 8), 0.7), (-1, 2, -1, 2)))
        (run / "samples" / f"step-{s:06d}.json").write_text(json.dumps(snap))
    page = build_report(run).read_text()
    data = _data(page)
    assert data["summary"]["two_d"] is True
    assert sorted(data["fields"]) == ["1000", "500"] and data["fields"]["1000"] == snap
    assert data["images"] == {}
    assert "D is winning easily" in page


def test_config_only_run_still_builds(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    _write_config(run)
    page = build_report(run).read_text()
    assert "No metrics logged yet" in page
    assert "nonsaturating" in page
    assert _data(page)["summary"]["samples"] == []
    assert B64 not in page


def test_empty_or_broken_config_does_not_fail(tmp_path: Path) -> None:
    run = tmp_path / "broken"
    run.mkdir()
    (run / "config.yaml").write_text("")
    assert "config.yaml is empty" in build_report(run).read_text()
    (run / "config.yaml").write_text("data: {source: [ring\n")
    assert "could not be parsed" in build_report(run).read_text()


def test_errors_for_missing_dir_or_config(tmp_path: Path) -> None:
    with pytest.raises(GankitError, match="does not exist"):
        build_report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(GankitError, match="config.yaml"):
        build_report(tmp_path / "empty")
    _write_config(tmp_path / "ok")
    with pytest.raises(GankitError, match="max_sample_grids"):
        build_report(tmp_path / "ok", max_sample_grids=0)


def test_eval_of_an_earlier_checkpoint_keeps_later_training_lines(tmp_path: Path) -> None:
    run = tmp_path / "evaluated"
    _write_config(run)
    rows = [{"step": s, "loss_d": 1.0, "d_real": 0.52, "d_fake": 0.49} for s in (100, 200, 300)]
    rows += [{"step": 200, "fid": 12.5, "eval_n": 500}, {"step": 100, "fid": 20.0, "eval_n": 500}]  # gankit eval, later
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    page = build_report(run).read_text()
    assert "step <b>300</b> of 2000" in page
    assert "D can no longer tell real from fake" in page
    table = page[page.index('<table class="evals">'):page.index("</table>")]
    assert table.index("<td>100</td>") < table.index("<td>200</td>")  # rows by step
    assert '<td class="best">12.5</td>' in table


def test_plot_field_returns_png() -> None:
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=(40, 40))
    data = plot_field(
        rng.normal(size=(100, 2)), rng.normal(size=(80, 2)), prob, (-3, 3, -2, 2), title="t"
    )  # 620 x 500: shown at its own size as a 2-D run's latest samples
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert FIELD_MARKER.encode() in data
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        assert im.format == "PNG"
        assert 300 < im.width < 1000 and 300 < im.height < 1000
    # Degenerate but valid inputs: no points, constant field (no 0.5 contour).
    data = plot_field(np.zeros((0, 2)), np.zeros((0, 2)), np.full((5, 5), 0.5), (0, 1, 0, 1))
    with Image.open(io.BytesIO(data)) as im:
        im.load()
    with pytest.raises(ValueError):
        plot_field(np.zeros((1, 2)), np.zeros((1, 2)), prob, (1, 0, 0, 1))


@pytest.mark.parametrize(("arch", "says"), [("dcgan", "G(z) at the same fixed z"), ("pix2pix", "the input A"),
                                            ("gan-int-cls", "one row per caption"),
                                            ("nextframe", "its rollout on its own predictions"),
                                            ("novel-view", "G's view at the target angles")])
def test_the_grid_caption_describes_the_task_s_own_grid(arch: str, says: str) -> None:
    from gankit.report.html import _grid_caption

    caption = _grid_caption({"model": {"arch": arch}})
    assert says in caption
    assert ("fixed z at every step" in caption) == (arch == "dcgan")  # only a GAN's grid is G(z) at fixed z
