"""The control channel (RUN/control.jsonl) against a real training loop: a tiny 2-D run trains in a
thread while the test steers it as ``gankit lab`` or a user's ``echo`` would."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gankit.api import train_config
from gankit.rundir import RunDir
from gankit.train.control import ControlChannel
from tests.conftest import tiny_config


def _send(run: Path, **req: Any) -> None:
    with open(run / "control.jsonl", "a") as f:
        f.write(json.dumps(req) + "\n")


def _wait(cond: Any, timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.2)  # the training thread shares the GIL with this one


def _last_step(run: Path) -> int:
    recs = [r for r in RunDir(run).records() if "loss_d" in r]
    return recs[-1]["step"] if recs else -1


def _events(run: Path) -> list[dict[str, Any]]:
    return [r for r in RunDir(run).events() if r["event"].startswith("control")]


def test_lr_change_pause_stop_and_resume(tmp_path: Path) -> None:
    run = tmp_path / "ring"
    cfg = tiny_config(run, steps=100_000, log_every=5, sample_every=100_000, checkpoint_every=100_000)
    errors: list[BaseException] = []

    def train() -> None:
        try:
            train_config(cfg)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    th = threading.Thread(target=train, daemon=True)
    th.start()
    try:
        _wait(lambda: _last_step(run) >= 10)
        _send(run, id="a", action="set", lr_d=2.5e-4)
        _send(run, id="b", action="bogus")
        _send(run, id="c", action="pause")
        _wait(lambda: any(e.get("action") == "pause" for e in _events(run)))
        time.sleep(0.3)
        paused_at = _last_step(run)
        time.sleep(1.0)
        assert _last_step(run) == paused_at  # pause stops the step count
        _send(run, id="s1", action="step")  # GAN Lab's step button: one step, then paused again
        _send(run, id="s2", action="step")
        _wait(lambda: any(e.get("id") == "s2" for e in _events(run)))
        time.sleep(0.8)
        _send(run, id="d", action="resume")
        _wait(lambda: _last_step(run) > paused_at + 10)
        _send(run, id="e", action="stop")
        th.join(30)
        assert not th.is_alive() and not errors, errors
    finally:
        if th.is_alive():
            _send(run, id="z", action="stop")
            th.join(30)

    events = _events(run)
    by_id = {e["id"]: e for e in events}
    assert by_id["a"]["event"] == "control" and by_id["a"]["lr_d"] == 2.5e-4
    assert by_id["b"]["event"] == "control_refused"
    assert [by_id[k]["action"] for k in "cde"] == ["pause", "resume", "stop"]
    assert by_id["d"]["step"] == by_id["c"]["step"] + 2  # each step request let exactly one through
    state = RunDir(run).checkpoint_state()
    assert state is not None and state["control"] == {"lr_d": 2.5e-4}
    assert state["optim"]["opt_D"]["param_groups"][0]["base_lr"] == 2.5e-4
    stopped_at = state["step"]

    # a resumed run keeps the steered rate (and ignores the old requests in control.jsonl)
    train_config(None, resume=run, overrides={"steps": stopped_at + 10})
    state = RunDir(run).checkpoint_state()
    assert state is not None and state["step"] == stopped_at + 10
    assert state["control"] == {"lr_d": 2.5e-4}
    assert state["optim"]["opt_D"]["param_groups"][0]["lr"] == pytest.approx(2.5e-4)
    assert state["optim"]["opt_G"]["param_groups"][0]["lr"] == pytest.approx(1e-3)


def test_channel_reads_only_new_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "control.jsonl"
    path.write_text('{"id": 1, "action": "stop"}\n')
    ch = ControlChannel(path, every_s=0.0)
    assert ch.poll() == []  # written before the run: not obeyed
    with open(path, "a") as f:
        f.write('{"id": 2, "action": "pause"}\n{"id": 3, "act')
    assert [r["id"] for r in ch.poll()] == [2]
    with open(path, "a") as f:
        f.write('ion": "resume"}\n')
    assert [r["action"] for r in ch.poll()] == ["resume"]
    with open(path, "a") as f:
        f.write('{"action": "set", "lr_g": -1}\n')
    assert "_bad" in ch.poll()[0]
