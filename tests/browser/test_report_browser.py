"""The run report in a real browser, as a new user first sees it: in a 1400 x 900 window the
latest samples and the D(x) / D(G(z)) plot are both on screen without scrolling.

Each test trains a real (tiny) run, builds its report and opens it in headless Chromium. The
screenshots are kept in ``$GANKIT_SCREENSHOTS`` when that is set, for people to look at.
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
from gankit.data import from_tensor
from tests.conftest import tiny_config, tiny_images

WIDTH, HEIGHT = 1400, 900
FASHION = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
           "Ankle boot"]
LATEST = "#latest img"
D_PLOT = 'img[alt="D(x) and D(G(z)) against step"]'


def _train(out: Path, kind: str) -> Path:
    """A run of a few seconds shaped like the real thing: 28 px tiles as Fashion-MNIST's (the
    conditional grid, ten named rows, is the tallest), or the 2-D ring."""
    if kind == "ring":
        train_config(tiny_config(out, steps=40, sample_every=20, checkpoint_every=40))
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


@pytest.mark.parametrize("kind", ["image", "conditional", "ring"])
def test_samples_and_d_plot_are_in_the_first_screen(tmp_path: Path, kind: str,
                                                     open_page: Callable[..., Any]) -> None:
    run = _train(tmp_path / kind, kind)
    report = run / "report.html"  # built by training, at its end
    assert report.stat().st_mtime >= (run / "metrics.jsonl").stat().st_mtime
    page = open_page(report, WIDTH, HEIGHT)

    latest, d_plot = _box(page, LATEST), _box(page, D_PLOT)
    assert latest["y"] < HEIGHT and d_plot["y"] < HEIGHT, (latest, d_plot)
    assert d_plot["y"] + 100 < HEIGHT, d_plot  # more of it on screen than its title
    assert latest["height"] >= 480, latest  # large: a grid of 28 px tiles enlarged about twice
    assert latest["y"] + latest["height"] <= d_plot["y"]  # samples above the curves, not over them
    # the plot is shown at its own size, so its text is as large as it was set; every picture loaded
    sizes = page.eval_on_selector(D_PLOT, "e => [e.clientWidth, e.naturalWidth]")
    assert sizes[0] == sizes[1], sizes
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    # nothing sticks out sideways, here or in a narrower window; the config is folded away
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    assert not page.locator("pre.config").is_visible()
    assert page.locator("#summary").inner_text().count("D(x)") >= 1
    page.screenshot(path=str(tmp_path / f"report-{kind}.png"))
    _keep(tmp_path / f"report-{kind}.png")

    narrow = open_page(report, 900, 800)
    assert narrow.evaluate("document.documentElement.scrollWidth") <= 900
    _box(narrow, LATEST)  # still shown, now above the summary's right edge wraps
