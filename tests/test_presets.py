"""Every YAML preset in configs/ is a valid config (generated from the folder)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gankit.config import Config, build_config
from gankit.resolve import resolve
from tests.conftest import REPO

PRESETS = sorted((REPO / "configs").glob("*.yaml"))


def test_there_are_presets() -> None:
    assert PRESETS


@pytest.mark.parametrize("path", PRESETS, ids=lambda p: p.name)
def test_preset_is_valid(path: Path) -> None:
    resolve(build_config(path))  # the schema's checks and the rules that need the registries


def test_default_preset_is_the_default() -> None:
    assert build_config(REPO / "configs" / "fashion-mnist-dcgan.yaml") == Config()


def test_shipped_presets_are_copies_of_configs() -> None:
    """src/gankit/presets/ (package data, the lab's New run) holds copies of configs/ files, kept equal."""
    shipped = sorted((REPO / "src" / "gankit" / "presets").glob("*.yaml"))
    assert len(shipped) >= 3
    for path in shipped:
        assert path.read_bytes() == (REPO / "configs" / path.name).read_bytes(), path.name
