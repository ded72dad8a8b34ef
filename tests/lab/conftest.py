"""The lab's fixtures: a live lab server in a thread (``lab_server``), and the browser of
tests/browser (Debian's Chromium driven by Playwright)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import browser  # noqa: F401 - the fixture, shared

TOKEN = "lab-test-token"


@pytest.fixture(scope="module")
def lab_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """(base URL with the token, runs folder) of a lab serving a fresh folder, for the module."""
    uvicorn = pytest.importorskip("uvicorn")
    from gankit.lab import _free_port
    from gankit.lab.server import make_app

    root = tmp_path_factory.mktemp("runs")
    port = _free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(make_app(root, TOKEN), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    end = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < end and thread.is_alive(), "the lab server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/?token={TOKEN}", root
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def lab_page(browser: Any, lab_server: tuple[str, Path]) -> Iterator[Callable[..., Any]]:  # noqa: F811
    """``lab_page(run)``: the lab opened on ``run`` in a 1400 x 900 page; JS errors fail the test."""
    pages: list[Any] = []
    errors: list[str] = []

    def _open(run: str) -> Any:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("dialog", lambda d: d.accept())
        pages.append(page)
        page.goto(f"{lab_server[0]}#run={run}")
        page.wait_for_function("window.lab && window.lab.run !== null && window.lab.charts['c-d']")
        return page

    yield _open
    for page in pages:
        page.close()
    assert not errors, errors
