"""Tests that open gankit's pages in a real browser: Debian's Chromium driven by Playwright.

``scripts/setup.sh`` installs both (apt ``chromium``, PyPI ``playwright``); Playwright's own
browser download (``playwright install``) is never used. :func:`chromium_path` is the one place
that finds the browser, and :func:`launch` the one way to start it, for every browser test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

#: Looked up on PATH in this order; ``GANKIT_CHROMIUM`` names another binary.
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: Headless in containers and CI: no sandbox (often no user namespaces), no GPU, and /tmp instead
#: of a small /dev/shm.
CHROMIUM_ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage")


def chromium_path() -> str | None:
    """The Chromium (or Chrome) binary to drive: ``$GANKIT_CHROMIUM`` if set, else the first of
    ``CHROMIUM_NAMES`` on PATH; None if there is none."""
    named = os.environ.get("GANKIT_CHROMIUM")
    if named:
        return named if Path(named).is_file() else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def missing(reason: str) -> None:
    """Skip a browser test for want of the browser, but fail it in CI (``$CI`` set), where a
    missing browser means a broken set-up rather than a laptop without one."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set, so browser tests must run; see scripts/setup.sh)")
    pytest.skip(f"{reason}; scripts/setup.sh installs it")


def launch(playwright: Any) -> Any:
    """Start headless Chromium from ``chromium_path()`` under a Playwright instance (skipping, or
    in CI failing, when there is none)."""
    path = chromium_path()
    if path is None:
        named = os.environ.get("GANKIT_CHROMIUM")
        missing(f"$GANKIT_CHROMIUM names no file: {named}" if named
                else f"no Chromium found (looked for {', '.join(CHROMIUM_NAMES)} on PATH)")
    return playwright.chromium.launch(executable_path=path, args=list(CHROMIUM_ARGS))
