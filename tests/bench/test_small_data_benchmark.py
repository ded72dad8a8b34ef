"""A tiny version of the small-data benchmark (bench/small_data.py): the folder, the two runs (ADA
as the folder's default, and --no-ada) and their FIDs, end to end, so the script cannot rot."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.bench.test_mode_benchmarks import load
from tests.conftest import needs_fmnist


@needs_fmnist
def test_small_data_benchmark_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load("small_data")
    bench.main(["--n", "60", "--steps", "8", "--n-fake", "100", "--root", str(tmp_path)])
    assert len(list((tmp_path / "fmnist-60").glob("*.png"))) == 60
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["ada"] for r in rows] == [True, False]
    assert rows[0]["ada_p"] is not None and rows[1]["ada_p"] is None  # on by default for the folder
    assert all(r["steps"] == 8 and r["fid_test"] > 0 and r["fid_train"] > 0 for r in rows)
    assert "| ADA (default) | 0 |" in capsys.readouterr().out
