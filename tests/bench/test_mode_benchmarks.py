"""Tiny versions of the mode-collapse benchmarks (bench/mode_collapse.py, bench/stacked_modes.py):
the protocol end to end, at a few steps, so the scripts cannot rot."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import needs_fmnist

BENCH = Path(__file__).resolve().parents[2] / "bench"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_mode_collapse_benchmark_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load("mode_collapse")
    assert {"plain", "best"} <= set(bench.RECIPES)  # the presets the table promises
    bench.main(["--seeds", "1", "--steps", "30", "--jobs", "2", "--root", str(tmp_path)])
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {(r["recipe"], r["data"]) for r in rows} == {(a, b) for a in ("plain", "best") for b in ("ring", "grid")}
    for r in rows:
        assert 0 <= r["modes"] <= {"ring": 8, "grid": 25}[r["data"]] and 0 <= r["hq"] <= 1
        assert isinstance(r["active_at_end"], list)
    out = capsys.readouterr().out
    assert "| GDPP (GDPP paper) | 8 | 71.7 | 24.8 | 68.5 |" in out and "| gankit best (1 seeds) |" in out
    bench.main(["--rescore", "--root", str(tmp_path)])  # the same table from the saved runs
    again = capsys.readouterr().out
    assert again.split("| gankit plain")[1].split("\n")[0] == out.split("| gankit plain")[1].split("\n")[0]
    # a sweep: --set on top of the preset, named by --tag in the rows, folders and table
    bench.main(["--seeds", "1", "--steps", "20", "--recipes", "r3", "--data", "grid", "--set", "r1=0.2", "r2=0.3",
                "--tag", "g", "--root", str(tmp_path / "sweep")])
    [row] = json.loads((tmp_path / "sweep" / "results.json").read_text())["rows"]
    assert row["recipe"] == "r3+g" and "| gankit r3+g (1 seeds) |" in capsys.readouterr().out
    saved = (tmp_path / "sweep" / "r3+g-grid-0" / "config.yaml").read_text()
    assert "r1: 0.2" in saved and "r2: 0.3" in saved and "loss: rpgan" in saved


@needs_fmnist
def test_stacked_benchmark_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The plain recipe and R3GAN's loss (RpGAN + R1 + R2, configs/r3-stacked-fmnist.yaml), a tiny
    stacked run each, and an ablation row made with --set/--tag."""
    bench = load("stacked_modes")
    bench.main(["--steps", "3", "--samples", "400", "--recipes", "plain", "r3", "--root", str(tmp_path)])
    res = json.loads((tmp_path / "results.json").read_text())
    modes, kl = res["real"]
    # 400 real images over 1000 modes: at most 400 distinct, and KL far from 0
    assert 100 < modes <= 400 and kl > 0.5
    assert [r["recipe"] for r in res["rows"]] == ["plain", "r3"]
    for row in res["rows"]:
        assert 1 <= row["modes"] <= 400 and row["steps"] == 3
    r3 = (tmp_path / "r3-0" / "config.yaml").read_text()
    assert "loss: rpgan" in r3 and "r1: 0.1" in r3 and "r2: 0.1" in r3  # the preset trained as written
    out = capsys.readouterr().out
    assert "| gankit plain (1 seed) |" in out and "| gankit r3 (1 seed) |" in out
    bench.main(["--steps", "2", "--samples", "400", "--recipes", "plain", "--set", "loss=rpgan", "r2=0.5",
                "--tag", "rp-r2", "--root", str(tmp_path / "abl")])
    (row,) = json.loads((tmp_path / "abl" / "results.json").read_text())["rows"]
    assert row["recipe"] == "plain+rp-r2" and row["steps"] == 2
    assert "r2: 0.5" in (tmp_path / "abl" / "plain+rp-r2-0" / "config.yaml").read_text()
