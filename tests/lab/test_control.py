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


def test_k_and_the_loss_steered_mid_run_are_kept_by_the_checkpoint_and_the_resume(tmp_path: Path) -> None:
    """``set`` with ``d_steps``: from the step it is read, each iteration takes k updates of D (k
    real batches); ``loss`` switches within the losses whose D outputs mean the same; the
    checkpoint keeps both and a resumed run goes on with them."""
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
        _send(run, id="k", action="set", d_steps=3)
        _send(run, id="bad", action="set", d_steps=0)
        _send(run, id="mm", action="set", loss="minimax")  # GAN Lab's switch: minimax against non-saturating
        _send(run, id="wgan", action="set", loss="wgan")  # brings weight clipping: refused
        _send(run, id="ls", action="set", loss="lsgan", lr_g=0.5)  # D's outputs not probabilities: refused
        _wait(lambda: any(e.get("id") == "k" for e in _events(run)))
        _wait(lambda: _last_step(run) >= max(e["step"] for e in _events(run) if e.get("id") == "k") + 10)
        _send(run, id="e", action="stop")
        th.join(30)
        assert not th.is_alive() and not errors, errors
    finally:
        if th.is_alive():
            _send(run, id="z", action="stop")
            th.join(30)
    by_id = {e["id"]: e for e in _events(run)}
    assert by_id["k"]["event"] == "control" and by_id["k"]["d_steps"] == 3
    assert by_id["bad"]["event"] == "control_refused" and "d_steps must be" in by_id["bad"]["message"]
    assert by_id["mm"]["event"] == "control" and by_id["mm"]["loss"] == "minimax"
    assert by_id["wgan"]["event"] == "control_refused" and "clip" in by_id["wgan"]["message"]
    assert by_id["ls"]["event"] == "control_refused" and "probabilities" in by_id["ls"]["message"]
    state = RunDir(run).checkpoint_state()
    assert state is not None and state["control"] == {"d_steps": 3, "loss": "minimax"}  # lr_g 0.5 not applied
    set_at, stopped_at = by_id["k"]["step"], state["step"]
    assert state["real_batches"] == set_at + 3 * (stopped_at - set_at)  # one real batch per D update
    train_config(None, resume=run, overrides={"steps": stopped_at + 10})
    after = RunDir(run).checkpoint_state()
    assert after is not None and after["control"] == {"d_steps": 3, "loss": "minimax"}
    assert after["real_batches"] == state["real_batches"] + 30


def test_a_task_without_k_refuses_it(tmp_path: Path) -> None:
    ch = ControlChannel(tmp_path / "control.jsonl", every_s=0.0)
    event = ch.apply({"id": "1", "action": "set", "d_steps": 2, "lr_d": 1e-4}, 7, [])
    assert event["event"] == "control_refused" and "no k" in event["message"]
    assert ch.d_steps is None and ch.overrides == {}  # the rate in the same request was not applied either


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


# --------------------------------------------------------------------------- step D, step G


class _PauseAfter:
    """A hook writing a pause request after iteration ``at`` (a step count), then waiting longer
    than the channel's check interval: the run pauses at exactly the next step boundary."""

    def __init__(self, run: Path, at: int) -> None:
        self.run, self.at = run, at

    def after_iteration(self, step: int, logged: dict[str, Any]) -> None:
        if step + 1 == self.at:
            _send(self.run, id="p", action="pause")
            time.sleep(0.4)


def _steered(run: Path, requests: list[str], then: str = "stop", steps: int = 1000) -> list[dict[str, Any]]:
    """Train a tiny 2-D run in a thread, paused at step 6 by a hook; send ``requests`` (actions)
    one at a time, each once the previous one's event is logged, then ``then`` (stop or resume).
    Returns the control events."""
    cfg = tiny_config(run, steps=steps, log_every=2, sample_every=1000, checkpoint_every=1000)
    errors: list[BaseException] = []

    def train() -> None:
        try:
            train_config(cfg, hooks=[_PauseAfter(run, 6)])
        except BaseException as e:  # noqa: BLE001 - reported by the test
            errors.append(e)

    th = threading.Thread(target=train, daemon=True)
    th.start()
    try:
        _wait(lambda: any(e.get("id") == "p" for e in _events(run)))
        for i, action in enumerate(requests):
            _send(run, id=f"r{i}", action=action)
            _wait(lambda i=i: any(e.get("id") == f"r{i}" for e in _events(run)))
        _send(run, id="end", action=then)
        th.join(60)
        assert not th.is_alive() and not errors, errors
    finally:
        if th.is_alive():
            _send(run, id="z", action="stop")
            th.join(30)
    return _events(run)


def _checkpoint_tensors(run: Path) -> tuple[int, dict[str, Any]]:
    from gankit.checkpoint import load_checkpoint

    ck = load_checkpoint(run)
    assert ck.train is not None
    return ck.step, {**{f"model {k}": v for k, v in ck.model.items()}, **{f"train {k}": v for k, v in ck.train.items()}}


def test_step_d_updates_d_alone_and_step_g_g_alone_and_resume_is_exact(tmp_path: Path, monkeypatch: Any) -> None:
    import torch

    from gankit.tasks.gan import GANTask

    seen: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    half_step = GANTask.half_step

    def spy(self: GANTask, player: str) -> str:  # the weights right before and after the half step
        before = {k: v.clone() for k, v in self.state.model_tensors().items()}
        message = half_step(self, player)
        seen[player] = before, {k: v.clone() for k, v in self.state.model_tensors().items()}
        return message

    monkeypatch.setattr(GANTask, "half_step", spy)
    events = _steered(tmp_path / "stopped", ["step_d", "step_g"])
    for player, other in (("d", "G"), ("g", "D")):
        before, after = seen[player]
        changed = {k.split(".")[0] for k in before if not torch.equal(before[k], after[k])}
        assert changed == {player.upper()} or (player == "g" and changed == {"G", "G_ema"}), (player, changed)
        assert other not in changed
    by_id = {e["id"]: e for e in events}
    assert [by_id[i]["action"] for i in ("r0", "r1")] == ["step_d", "step_g"]
    assert all(by_id[i]["event"] == "control" and by_id[i]["step"] == 6 for i in ("r0", "r1"))  # no training step
    assert "one update of D alone" in by_id["r0"]["message"] and "(paused)" in by_id["r0"]["message"]
    assert "one update of G alone" in by_id["r1"]["message"]

    # exact resume: stopped after the half steps and resumed ends as the run that went on after them
    _steered(tmp_path / "went-on", ["step_d", "step_g"], then="resume", steps=12)
    train_config(None, resume=tmp_path / "stopped", overrides={"steps": 12})
    (sa, a), (sb, b) = _checkpoint_tensors(tmp_path / "went-on"), _checkpoint_tensors(tmp_path / "stopped")
    assert sa == sb == 12 and a.keys() == b.keys()
    assert [k for k in a if not torch.equal(a[k], b[k])] == []


def test_a_task_that_cannot_split_its_iteration_refuses_half_steps(tmp_path: Path) -> None:
    from gankit.tasks import TASKS
    from gankit.tasks.gan import GANTask
    from gankit.train.control import CannotSplit
    from gankit.train.task import Task

    # every task but the noise-to-data GAN keeps the default, which refuses
    for name in TASKS.names():
        make = TASKS.get(name).make
        if make is not GANTask and isinstance(make, type):
            assert make.half_step is Task.half_step, name
            with pytest.raises(CannotSplit, match="does not split"):
                make.half_step(object.__new__(make), "d")
    ch = ControlChannel(tmp_path / "control.jsonl", every_s=0.0)

    def cannot(player: str) -> str:
        raise CannotSplit("the Pix2PixTask task's iteration does not split into D's and G's updates")

    event = ch.apply({"id": "x", "action": "step_g"}, 5, [], cannot)
    assert event["event"] == "control_refused" and event["action"] == "step_g"
    assert "step_g refused: the Pix2PixTask task's iteration does not split" in event["message"]
    assert ch.paused  # refused or not, a half step request leaves the run paused
