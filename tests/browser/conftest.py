"""A headless Chromium for the module's tests, and pages opened in it at a given window size."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import launch, missing


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One browser per test module (starting one takes about a second)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("the playwright package is not installed (pip install -e '.[dev]')")
    with sync_playwright() as p:
        b = launch(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def open_page(browser: Any) -> Iterator[Callable[..., Any]]:
    """``open_page(path, width=1400, height=900)``: a local HTML file opened in a fresh page of
    that viewport; the pages are closed after the test."""
    pages: list[Any] = []

    def _open(path: Path, width: int = 1400, height: int = 900) -> Any:
        page = browser.new_page(viewport={"width": width, "height": height})
        pages.append(page)
        page.goto(path.resolve().as_uri(), wait_until="load")
        return page

    yield _open
    for page in pages:
        page.close()
