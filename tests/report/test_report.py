"""Tests for gankit.report: HTML run report, tolerant metrics reader, field plot."""

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
        if i % 4 == 3:
            rec["fid"] = 50.0 - i
        lines.append(json.dumps(rec))
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


@pytest.fixture
def image_run(tmp_path: Path) -> Path:
    run = tmp_path / "run-img"
    _write_config(run)
    _write_metrics(run)
    _write_image_samples(run, [500, 1000, 1500])
    return run


def test_build_report_full_page(image_run: Path) -> None:
    out = build_report(image_run)
    assert out == image_run / "report.html"
    assert out.is_file()
    page = out.read_text(encoding="utf-8")

    # Self-contained: no external resources, no scripts.
    assert 'src="http' not in page
    assert "<script" not in page.lower()
    assert "<link" not in page.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page  # config text is escaped

    # 2 main plots (losses, D beliefs) + 1 "fid" plot + 3 sample grids; not a 2-D run.
    assert page.count(B64) == 6
    assert "D&#x27;s probability field (latest)" not in page
    assert "D's probability field (latest)" not in page
    for step in (500, 1000, 1500):
        assert f"step {step}</figcaption>" in page
    assert 'alt="fid against step"' in page
    assert "Losses" in page and "What D believes" in page

    # Config rendered as YAML, nested mappings included.
    for text in ("nonsaturating", "latent_dim: 2", "lr_g: 0.0002", "deep_key: 7", "source: mnist"):
        assert text in page
    assert "run-img" in page  # title

    # Summary: latest parsed step (half-written line skipped) and the equilibrium sentence.
    assert "latest step <b>600</b>" in page
    assert "D can no longer tell real from fake" in page
    assert "equilibrium D = 0.5" in page
    assert "gankit" in page and "Generated" in page

    # Every embedded image decodes; samples are embedded byte for byte.
    pngs = _embedded_pngs(page)
    assert len(pngs) == 6
    for data in pngs:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            assert im.width > 10 and im.height > 10
    for path in sorted((image_run / "samples").iterdir()):
        assert path.read_bytes() in pngs

    # Written atomically: no temp files left next to the report.
    assert sorted(p.name for p in image_run.iterdir()) == [
        "config.yaml",
        "metrics.jsonl",
        "report.html",
        "samples",
    ]


def test_build_report_custom_out_and_rebuild(image_run: Path, tmp_path: Path) -> None:
    out = build_report(image_run, out=tmp_path / "elsewhere" / "r.html")
    assert out == tmp_path / "elsewhere" / "r.html"
    assert out.is_file()
    # Training goes on: a new sample and more metrics appear; rebuilding picks them up.
    _write_image_samples(image_run, [2000])
    with (image_run / "metrics.jsonl").open("a") as f:
        f.write('\n{"step": 2000, "loss_d": 1.0, "d_real": 0.95, "d_fake": 0.2}\n')
    page = build_report(image_run).read_text()
    assert "step 2000</figcaption>" in page
    assert "latest step <b>2000</b>" in page
    assert "D is winning easily" in page


def test_sample_selection_even_with_first_and_latest(tmp_path: Path) -> None:
    run = tmp_path / "many"
    _write_config(run)
    steps = [500 * (i + 1) for i in range(20)]
    _write_image_samples(run, steps)
    (run / "samples" / ".step-010500.png.123.tmp").write_bytes(b"partial")  # ignored
    (run / "samples" / "step-011000.png").write_bytes(b"\x89PNG\r\n\x1a\n half")  # partial
    page = build_report(run, max_sample_grids=5).read_text()
    captions = [int(s) for s in re.findall(r"step (\d+)</figcaption>", page)]
    # 21 candidates, the partial latest one is skipped when read, so 4 of the evenly spaced 5.
    assert captions[0] == 500
    assert captions == sorted(captions)
    assert len(captions) == 4
    page = build_report(run, max_sample_grids=50).read_text()
    captions = [int(s) for s in re.findall(r"step (\d+)</figcaption>", page)]
    assert captions == steps
    (run / "samples" / "step-011000.png").unlink()
    page = build_report(run, max_sample_grids=5).read_text()
    captions = [int(s) for s in re.findall(r"step (\d+)</figcaption>", page)]
    assert len(captions) == 5
    assert captions[0] == 500 and captions[-1] == 10000
    # No metrics file in this run: plots are replaced by a note; only the 5 samples embed.
    assert page.count(B64) == 5
    assert "No metrics logged yet" in page


def test_two_d_run_shows_latest_field_large(tmp_path: Path) -> None:
    run = tmp_path / "ring-run"
    _write_config(run, source="ring")
    _write_metrics(run, d_real=0.97, d_fake=0.1)
    rng = np.random.default_rng(1)
    xs = np.linspace(-2, 2, 32)
    xx, yy = np.meshgrid(xs, xs)
    prob = 1.0 / (1.0 + np.exp(-(1.0 - np.hypot(xx, yy)) * 4))
    (run / "samples").mkdir()
    for s in (500, 1000):
        data = plot_field(rng.normal(size=(50, 2)), rng.normal(size=(40, 2)), prob, (-2, 2, -2, 2))
        (run / "samples" / f"step-{s:04d}.png").write_bytes(data)
    page = build_report(run).read_text()
    assert "D&#x27;s probability field (latest)" in page or "D's probability field (latest)" in page
    # 2 main plots + fid + 2 samples + the latest again, large.
    assert page.count(B64) == 6
    assert "D is winning easily" in page


def test_field_detected_from_png_marker(tmp_path: Path) -> None:
    run = tmp_path / "spiral-run"
    _write_config(run, source="spiral")
    (run / "samples").mkdir()
    data = plot_field(np.zeros((3, 2)), np.ones((3, 2)), np.full((8, 8), 0.7), (-1, 2, -1, 2))
    (run / "samples" / "step-500.png").write_bytes(data)
    page = build_report(run).read_text()
    assert "probability field (latest)" in page
    assert page.count(B64) == 2


def test_config_only_run_still_builds(tmp_path: Path) -> None:
    run = tmp_path / "fresh"
    _write_config(run)
    page = build_report(run).read_text()
    assert "No metrics logged yet" in page
    assert "No samples yet" in page
    assert "nonsaturating" in page
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
    rows += [{"step": 200, "fid": 12.5}, {"step": 100, "fid": 20.0}]  # gankit eval, appended later
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    page = build_report(run).read_text()
    assert "latest step <b>300</b>" in page
    assert "D can no longer tell real from fake" in page
    assert "fid against step" in page


def test_plot_field_returns_png() -> None:
    rng = np.random.default_rng(0)
    prob = rng.uniform(size=(40, 40))
    data = plot_field(
        rng.normal(size=(100, 2)), rng.normal(size=(80, 2)), prob, (-3, 3, -2, 2), title="t"
    )
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
