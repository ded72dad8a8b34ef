"""The run report in a real browser, as a new user first sees it: report.html is the lab's page
exported, opened from a file:// URL with no server; in a 1400 x 900 window the latest samples
(or a 2-D run's field) and the D(x) / D(G(z)) chart are both on screen without scrolling, and
every chart is drawn.

Each test trains a real (tiny) run, whose end writes report.html, and opens it in headless
Chromium. The screenshots are kept in ``$GANKIT_SCREENSHOTS`` when that is set, for people to look at.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from gankit.api import train_config
from gankit.config import build_config
from gankit.data import from_tensor
from gankit.tasks import TASKS
from tests.conftest import HAS_FMNIST, tiny_config, tiny_images

WIDTH, HEIGHT = 1400, 900
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
D_CHART = "#c-d"
#: How many pixels of a canvas are drawn (not transparent), in the page.
INKED = """sel => { const c = document.querySelector(sel); const d = c.getContext('2d')
  .getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) n += d[i] > 0;
  return n; }"""


def _train(out: Path, kind: str) -> Path:
    """A run of a few seconds shaped like the real thing: 28 px tiles as Fashion-MNIST's (the
    conditional grid, ten named rows, is the tallest), the 2-D ring, or a translator (pix2pix)."""
    if kind == "ring":
        train_config(tiny_config(out, steps=40, sample_every=20, checkpoint_every=40))
        return out
    if kind == "pix2pix":
        if not HAS_FMNIST:
            pytest.skip("pix2pix's smoke run is made from Fashion-MNIST, not here")
        train_config(build_config(overrides={
            **TASKS.get("pix2pix").smoke, "steps": 8, "batch_size": 4, "log_every": 2, "sample_every": 4,
            "checkpoint_every": 8, "progress": False, "precision": "fp32", "out": str(out)}))
        return out
    images, labels = tiny_images(100, 28), torch.arange(100) % 10
    data = from_tensor(images, labels if kind == "conditional" else None)
    data.classes = FASHION if kind == "conditional" else None
    train_config(tiny_config(out, model="dcgan", width=8, latent_dim=8, batch_size=20, data="tensor",
                             steps=30, sample_every=10, checkpoint_every=30,
                             conditional="cgan" if kind == "conditional" else None),
                 data=data)
    return out


def _box(page: Any, selector: str) -> dict[str, float]:
    element = page.locator(selector)
    assert element.count() == 1, selector
    assert element.is_visible(), selector
    box = element.bounding_box()
    assert box is not None, selector
    return box


def _keep(path: Path) -> None:
    where = os.environ.get("GANKIT_SCREENSHOTS")
    if where:
        Path(where).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(where) / path.name)


@pytest.mark.parametrize("kind", ["image", "conditional", "ring", "pix2pix"])
def test_the_report_is_the_lab_page_and_leads_with_samples_and_d(tmp_path: Path, kind: str,
                                                                  browser: Any) -> None:
    run = _train(tmp_path / kind, kind)
    report = run / "report.html"  # built by training, at its end
    assert report.stat().st_mtime >= (run / "metrics.jsonl").stat().st_mtime
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: errors.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
    try:
        page.goto(report.resolve().as_uri(), wait_until="load")  # no server: a file
        page.wait_for_function("window.lab && window.lab.charts['c-d'] && window.lab.charts['c-loss']")
        latest = page.evaluate("lab.samples[lab.samples.length - 1]")
        shown = "#field" if kind == "ring" else "#grid"
        page.wait_for_function(f"document.querySelector('{shown}').dataset.step === '{latest}'")
        if kind != "ring":
            page.wait_for_function("document.querySelector('#grid').complete")
            assert page.evaluate("document.querySelector('#grid').naturalWidth") > 0
        else:
            assert page.evaluate(INKED, "#field") > 1000  # D's field drawn
        # the charts are drawn: uPlot's canvases have ink (curves, axes)
        for chart in ("#c-d", "#c-loss"):
            assert page.evaluate(INKED, f"{chart} canvas") > 100, chart
        stage, d_chart = _box(page, shown), _box(page, D_CHART)
        assert stage["y"] < HEIGHT and d_chart["y"] < HEIGHT, (stage, d_chart)
        assert d_chart["y"] + 100 < HEIGHT, d_chart  # more of it on screen than its title
        assert not page.is_visible("#controls")  # nothing to steer in a report
        # below the page: the report's summary, evaluations, diagnosis; the config folded away
        assert page.locator("#report-below #summary").inner_text().count("D(x)") >= 1
        assert not page.locator("pre.config").is_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
        page.screenshot(path=str(tmp_path / f"report-{kind}.png"))
        _keep(tmp_path / f"report-{kind}.png")
    finally:
        page.close()
    assert not errors, errors


def test_a_narrow_window_does_not_scroll_sideways(tmp_path: Path, open_page: Callable[..., Any]) -> None:
    run = _train(tmp_path / "image", "image")
    narrow = open_page(run / "report.html", 900, 800)
    narrow.wait_for_function("window.lab && window.lab.charts['c-d']")
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 900
    _box(narrow, "#grid")
