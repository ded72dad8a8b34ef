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

    # 2 curves (D beliefs, losses) + the latest grid large + 3 grids over time; no plot per
    # evaluated number (fid is a table); not a 2-D run.
    assert page.count(B64) == 6
    assert "probability field" not in page
    for step in (500, 1000, 1500):
        assert f"step {step}</figcaption>" in page
    assert "fid against step" not in page and "<th>fid \u2193</th>" in page
    assert 'alt="D(x) and D(G(z)) against step"' in page and 'alt="Losses: loss_d and loss_g against step"' in page

    # Config rendered as YAML, nested mappings included, folded away at the end.
    for text in ("nonsaturating", "latent_dim: 2", "lr_g: 0.0002", "deep_key: 7", "source: mnist"):
        assert text in page
    config = page.index('<details id="config">')
    assert page.index("latent_dim: 2") > config and "<details open" not in page
    assert "run-img" in page  # title

    # Summary: what ran, the latest parsed step (half-written line skipped), the equilibrium.
    assert "<b>mlp</b> on <b>mnist</b>" in page
    assert "step <b>600</b> of 2000 (30%)" in page
    assert "D can no longer tell real from fake" in page
    assert "Latest evaluation (step 600): fid <b>39</b> \u2193" in page
    assert "No failure warning is active" in page
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


def test_the_page_leads_with_the_result(image_run: Path) -> None:
    # summary, latest samples, D(x)/D(G(z)) then the losses, the evaluations, the diagnosis,
    # the samples over time, and the config last
    page = build_report(image_run).read_text()
    marks = ['id="summary"', 'id="latest"', 'alt="D(x) and D(G(z)) against step"', 'alt="Losses',
             'id="evaluation"', 'id="diagnosis"', 'id="history"', '<details id="config">', "<footer>"]
    where = [page.index(m) for m in marks]
    assert where == sorted(where), dict(zip(marks, where, strict=True))
    # the latest grid is enlarged by a whole factor (20 px -> 540 px, the most shown), its pixels square
    latest = page[page.index('id="latest"'):page.index('id="curves"')]
    assert 'width="540" height="540"' in latest and "step 1500" in latest
    assert 'class="latest pixel"' in latest


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
    assert "step <b>2000</b> of 2000 (finished)" in page
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
    # No metrics file in this run: plots are replaced by a note; the 5 samples embed, and the
    # latest once more, large.
    assert page.count(B64) == 6
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
    assert "Latest samples: D&#x27;s probability field" in page
    # 2 main curves + 2 samples over time + the latest again, large (a rendered plot: its own size).
    assert page.count(B64) == 5
    latest = page[page.index('id="latest"'):page.index('id="curves"')]
    assert 'class="latest"' in latest and 'width="620" height="500"' in latest
    assert "D is winning easily" in page


def test_field_detected_from_png_marker(tmp_path: Path) -> None:
    run = tmp_path / "spiral-run"
    _write_config(run, source="spiral")
    (run / "samples").mkdir()
    data = plot_field(np.zeros((3, 2)), np.ones((3, 2)), np.full((8, 8), 0.7), (-1, 2, -1, 2))
    (run / "samples" / "step-500.png").write_bytes(data)
    page = build_report(run).read_text()
    assert "probability field" in page
    assert page.count(B64) == 1  # the latest only: one picture has no history


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


@pytest.mark.parametrize(("size", "pixels", "shown", "square"), [
    ((242, 242), True, (484, 484), True),  # Fashion-MNIST 8 x 8: twice, beside the summary
    ((330, 302), True, (590, 540), True),  # ten named class rows: as high as is shown
    ((335, 92), True, (1005, 276), True),  # a translator's three rows: 3x, under the summary
    ((1042, 1042), True, (540, 540), False),  # 128 px tiles: shrunk, smoothed
    ((620, 500), False, (620, 500), False),  # D's field, a rendered plot: its own size
])
def test_the_latest_samples_are_shown_large(size: tuple[int, int], pixels: bool,
                                            shown: tuple[int, int], square: bool) -> None:
    from gankit.report.parts import _display_size

    assert _display_size(*size, pixels=pixels) == (shown, square)
