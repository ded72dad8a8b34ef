"""--tensorboard mirrors a run: its numbers as scalars, its warnings and rollbacks as text, and
every sample grid it saves as an image at its step (tests/train/test_checkpoint.py checks the
scalars equal metrics.jsonl's)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor

from gankit.api import train_config
from gankit.config import build_config
from gankit.data import from_tensor
from gankit.rundir import MetricsLog, RunDir
from tests.conftest import needs_fmnist, tiny_config, tiny_images

pytest.importorskip("tensorboard", reason="the optional extra: pip install 'gankit[tensorboard]'")


def events(run_dir: Path) -> Any:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def texts(acc: Any, tag: str) -> list[tuple[int, str]]:
    """The text events of ``tag`` (torch's SummaryWriter.add_text stores it as TAG/text_summary)."""
    return [(e.step, e.tensor_proto.string_val[0].decode()) for e in acc.Tensors(tag + "/text_summary")]


def tb_pixels(event: Any) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(event.encoded_image_string)).convert("RGB"))


def assert_samples_mirrored(run: RunDir) -> list[int]:
    """Every saved sample grid is the image ``samples`` at its step, pixel for pixel; the steps."""
    acc = events(run.tensorboard_dir)
    assert "samples" in acc.Tags()["images"]
    mirrored = acc.Images("samples")
    grids = run.samples()
    assert [e.step for e in mirrored] == [int(p.stem.split("-")[1]) for p in grids]
    for event, path in zip(mirrored, grids, strict=True):
        with Image.open(path) as grid:
            assert (event.width, event.height) == grid.size
            assert np.array_equal(tb_pixels(event), np.asarray(grid.convert("RGB")))
    return [e.step for e in mirrored]


class DWins:
    """D rejects every fake with near certainty (as logged): the diminished-gradient rule fires."""

    def after_iteration(self, step: int, logged: dict[str, Tensor]) -> None:
        logged["d_real"] = torch.full_like(logged["d_real"], 0.99)
        logged["d_fake"] = torch.full_like(logged["d_fake"], 0.01)


def test_a_ring_run_mirrors_its_field_plots_and_its_warnings(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", steps=40, sample_every=20, tensorboard=True, loss="minimax"),
                 hooks=[DWins()])
    run = RunDir(tmp_path / "r")
    assert assert_samples_mirrored(run) == [0, 20, 40]  # D's probability field with the points, in RGB(A)
    (warning,) = [r for r in run.events() if r["event"] == "warning"]
    assert warning["kind"] == "diminished_gradient"
    acc = events(run.tensorboard_dir)
    ((step, text),) = texts(acc, "warnings/diminished_gradient")
    assert step == warning["step"] == 30
    assert warning["message"] in text and "Try --loss nonsaturating" in text
    assert "diminished_gradient" not in acc.Tags()["scalars"]  # words, not numbers
    assert [e.step for e in acc.Scalars("d_fake")] == [10, 20, 30, 40]


def test_an_image_run_mirrors_its_gray_sample_grids(tmp_path: Path) -> None:
    train_config(tiny_config(tmp_path / "r", model="dcgan", data="tensor", steps=6, log_every=3, sample_every=3,
                             width=8, batch_size=8, tensorboard=True), data=from_tensor(tiny_images()))
    run = RunDir(tmp_path / "r")
    with Image.open(run.sample_path(6)) as grid:
        assert grid.mode == "L"  # one channel: mirrored as gray
    assert assert_samples_mirrored(run) == [0, 3, 6]


@needs_fmnist
def test_a_translation_run_mirrors_its_sample_grids(tmp_path: Path) -> None:
    from gankit.tasks import TASKS

    train_config(build_config(overrides={
        **TASKS.get("pix2pix").smoke, "steps": 4, "batch_size": 4, "log_every": 2, "sample_every": 2,
        "checkpoint_every": 4, "progress": False, "precision": "fp32", "tensorboard": True,
        "out": str(tmp_path / "r")}))
    assert assert_samples_mirrored(RunDir(tmp_path / "r")) == [0, 2, 4]


def test_the_log_mirrors_events_as_text_and_images_as_written(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb")
    log.append({"step": 10, "loss_d": 1.25, "fid": 30.0, "eval_seconds": 0.5})
    log.append({"step": 10, "event": "warning", "kind": "mode_collapse",
                "message": "G's samples cover only 2 of the 8 modes. Try --pack 4 (PacGAN)."})
    log.append({"step": 20, "event": "rollback", "diverged_at": 23, "lr_g": 5e-4, "lr_d": 5e-4,
                "message": "rolled back to the checkpoint of step 20"})
    gray = np.arange(12 * 20, dtype=np.uint8).reshape(12, 20)
    rgba = np.zeros((6, 5, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    log.image(tmp_path / "gray.png", 10)
    log.image(tmp_path / "rgba.png", 20, tag="field")
    log.image(tmp_path / "missing.png", 30)  # a task that writes no grid: nothing to mirror
    log.close()

    acc = events(tmp_path / "tb")
    assert sorted(acc.Tags()["scalars"]) == ["eval_seconds", "fid", "loss_d"]  # events are not scalars
    ((step, text),) = texts(acc, "warnings/mode_collapse")
    assert step == 10 and "mode collapse" in text and "Try --pack 4 (PacGAN)." in text
    ((step, text),) = texts(acc, "events/rollback")
    assert step == 20 and "rolled back" in text and "diverged_at: 23" in text and "lr_g: 0.0005" in text
    (g,) = acc.Images("samples")
    assert (g.step, g.width, g.height) == (10, 20, 12)
    assert np.array_equal(tb_pixels(g), np.stack([gray] * 3, -1))
    (f,) = acc.Images("field")
    assert (f.step, f.width, f.height) == (20, 5, 6) and tb_pixels(f)[0, 0].tolist() == [200, 0, 0]
    assert [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [10, 10, 20]


def test_a_resumed_log_shows_each_step_once(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb")
    for step in (10, 20, 30):
        log.append({"step": step, "loss_d": float(step)})
    log.close()
    log = MetricsLog(tmp_path / "metrics.jsonl", tmp_path / "tb")  # resumed from step 20's checkpoint
    log.truncate_after(20)
    log.append({"step": 30, "loss_d": 31.0})
    log.close()
    assert [(e.step, e.value) for e in events(tmp_path / "tb").Scalars("loss_d")] == \
        [(10, 10.0), (20, 20.0), (30, 31.0)]


def test_without_tensorboard_images_are_not_read(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.image(tmp_path / "not-a-png.png", 0)  # no writer: the file is never opened
    log.append({"step": 1, "event": "warning", "kind": "mode_collapse", "message": "m"})
    assert log.records() == [{"step": 1, "event": "warning", "kind": "mode_collapse", "message": "m"}]
