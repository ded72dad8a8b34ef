"""The lab's HTTP API (Starlette's TestClient, no training): the token, path confinement, the run
list, downsampling, the event stream and the control requests it writes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from gankit.lab.server import make_app  # noqa: E402
from gankit.report.runs import downsample  # noqa: E402

TOKEN = "t0k3n"
PNG = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                    "1f15c4890000000d49444154789c63f8ffff3f0005fe02fea7d6a2f90000000049454e44ae426082")


def _run(folder: Path, n: int = 10, steps: int = 100) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"train:\n  steps: {steps}\n")
    lines = [{"step": 10 * i, "loss_d": 1.0 + i, "loss_g": 0.5, "d_real": 0.6, "d_fake": 0.4,
              "grad_d": 1.0, "grad_g": 2.0} for i in range(1, n + 1)]
    lines.insert(2, {"step": 20, "event": "warning", "kind": "mode_collapse", "message": "m"})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (folder / "samples").mkdir()
    for s in (0, 50):
        (folder / "samples" / f"step-{s:06d}.png").write_bytes(PNG)
    return folder


@pytest.fixture
def lab(tmp_path: Path) -> tuple[TestClient, Path]:
    root = tmp_path / "runs"
    _run(root / "a")
    _run(root / "group" / "b", n=5000, steps=100_000)
    return TestClient(make_app(root, TOKEN)), root


def test_run_list_and_summary(lab: tuple[TestClient, Path]) -> None:
    client, _ = lab
    runs = client.get("/api/runs").json()["runs"]
    assert [r["run"] for r in runs] == ["a", "group/b"]
    a = runs[0]
    assert a["status"] == "finished" and a["step"] == 100 and a["d_real"] == 0.6 and a["d_fake"] == 0.4
    assert a["latest_sample"] == 50 and a["warning"]["kind"] == "mode_collapse"
    assert runs[1]["status"] == "failed"  # not running, short of its steps, no checkpoint there
    assert client.get("/").status_code == 200
    assert client.get("/static/vendor/uPlot.iife.min.js").status_code == 200
    r = client.get("/api/sample", params={"run": "a", "step": 50})
    assert r.status_code == 200 and r.content == PNG


def test_a_run_that_ended_early_says_how(tmp_path: Path) -> None:
    """Short of its steps and not training: its time budget spent is "finished"; a checkpoint at
    its last logged step (Ctrl-C, SIGTERM, a stop request save there) is "stopped"; else "failed"."""
    from gankit.report.runs import run_summary

    root = tmp_path / "runs"
    budget = _run(root / "budget")
    (budget / "config.yaml").write_text("train:\n  steps: 100000\n  max_time: 30.0\n")
    with open(budget / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 110, "loss_d": 1.0, "time": 30.2}) + "\n")
    stopped = _run(root / "stopped", steps=1000)
    (stopped / "checkpoints" / "step-000100").mkdir(parents=True)
    broke = _run(root / "broke", steps=1000)
    (broke / "checkpoints" / "step-000050").mkdir(parents=True)  # older than its last log: it broke off
    assert [run_summary(root, r)["status"] for r in ("budget", "stopped", "broke")] == ["finished", "stopped",
                                                                                       "failed"]


def test_paths_are_confined(lab: tuple[TestClient, Path], tmp_path: Path) -> None:
    client, root = lab
    outside = _run(tmp_path / "secret")
    (root / "link").symlink_to(outside)
    (root / "a" / "samples" / "step-000099.png").symlink_to(outside / "samples" / "step-000050.png")
    for bad in ("../secret", "a/../../secret", str(outside), "/etc", "a/..", ".."):
        r = client.get("/api/run", params={"run": bad})
        assert r.status_code in (400, 404), bad
        assert client.get("/api/metrics", params={"run": bad}).status_code in (400, 404)
    assert client.get("/api/run", params={"run": "link"}).status_code == 404  # a symlink out
    assert "link" not in [r["run"] for r in client.get("/api/runs").json()["runs"]]
    assert client.get("/api/sample", params={"run": "a", "step": 99}).status_code == 404
    assert client.get("/static/../server.py").status_code == 404
    r = client.post("/api/control", params={"run": "../secret"}, headers={"X-Gankit-Token": TOKEN},
                    json={"action": "pause"})
    assert r.status_code in (400, 404) and not (outside / "control.jsonl").exists()


def test_token_guards_control_and_requests_are_written(lab: tuple[TestClient, Path]) -> None:
    client, root = lab
    assert client.post("/api/control", params={"run": "a"}, json={"action": "pause"}).status_code == 403
    assert client.post("/api/control", params={"run": "a"}, headers={"X-Gankit-Token": "nope"},
                       json={"action": "pause"}).status_code == 403
    assert not (root / "a" / "control.jsonl").exists()
    ok = {"X-Gankit-Token": TOKEN}
    r = client.post("/api/control", params={"run": "a"}, headers=ok, json={"action": "set", "lr_d": 1e-4})
    assert r.status_code == 200, r.text
    r2 = client.post("/api/control", params={"run": "a", "token": TOKEN}, json={"action": "pause"})
    assert r2.status_code == 200
    lines = [json.loads(x) for x in (root / "a" / "control.jsonl").read_text().splitlines()]
    assert [(x["action"], x.get("lr_d")) for x in lines] == [("set", 1e-4), ("pause", None)]
    assert lines[0]["id"] == r.json()["id"]
    # the page's k and loss reach the training loop too (they were once dropped on the way)
    r3 = client.post("/api/control", params={"run": "a"}, headers=ok,
                     json={"action": "set", "d_steps": 3, "loss": "minimax"})
    assert r3.status_code == 200, r3.text
    last = json.loads((root / "a" / "control.jsonl").read_text().splitlines()[-1])
    assert (last["d_steps"], last["loss"]) == (3, "minimax")
    assert client.post("/api/control", params={"run": "a"}, headers=ok,
                       json={"action": "set", "d_steps": 0}).status_code == 400
    assert client.post("/api/control", params={"run": "a"}, headers=ok,
                       json={"action": "set", "lr_d": "x"}).status_code == 400
    assert client.post("/api/control", params={"run": "a"}, headers=ok,
                       json={"action": "rm -rf"}).status_code == 400
    assert client.post("/api/control", params={"run": "a"}, headers=ok,
                       content=b'{"action": "pause", "x": "' + b"y" * 10_000 + b'"}').status_code == 413
    # another host name while on the loopback (DNS rebinding): refused
    assert client.get("/api/runs", headers={"Host": "evil.example:8765"}).status_code == 403


def test_downsampling_and_zoom(lab: tuple[TestClient, Path]) -> None:
    client, _ = lab
    m = client.get("/api/metrics", params={"run": "group/b"}).json()
    xs, ys = m["train"]["loss_d"]
    assert len(xs) <= 2000 and not m["full"] and xs == sorted(xs)
    assert max(ys) == 5001.0 and min(ys) == 2.0  # the extremes survive
    assert m["events"][0]["kind"] == "mode_collapse"
    zoom = client.get("/api/metrics", params={"run": "group/b", "lo": 1000, "hi": 2000}).json()
    assert zoom["full"] and zoom["train"]["loss_d"][0] == list(range(1000, 2001, 10))  # every point
    xs, ys = downsample(list(range(10)), [0, 9, 1, 8, 2, 7, 3, 6, 4, 5], 4)
    assert 9 in ys and 0 in ys and len(xs) <= 6


def test_stream_sends_new_lines(lab: tuple[TestClient, Path]) -> None:
    client, root = lab
    offset = client.get("/api/metrics", params={"run": "a"}).json()["offset"]
    with open(root / "a" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 110, "loss_d": 9.0}) + "\n" + '{"step": 12')
    body = client.get("/api/stream", params={"run": "a", "offset": offset, "once": "1"}).text
    records = [json.loads(line[6:]) for line in body.splitlines() if line.startswith("data: {\"records")]
    assert [r["step"] for r in records[0]["records"]] == [110]  # the half-written line waits
    assert "event: status" in body
    assert os.path.getsize(root / "a" / "metrics.jsonl") > records[0]["offset"]


def test_status_running_paused_stopped(lab: tuple[TestClient, Path]) -> None:
    import socket

    client, root = lab
    b = root / "group" / "b"

    def status() -> dict:
        return client.get("/api/run", params={"run": "group/b"}).json()

    # a live trainer's lock record (this process stands in for it): running
    (b / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    assert status()["status"] == "running" and not status()["paused"]
    with open(b / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 50_000, "event": "control", "action": "pause", "id": "x"}) + "\n")
    assert status()["paused"]
    with open(b / "metrics.jsonl", "a") as f:  # a resumed trainer went on past that pause
        f.write(json.dumps({"step": 50_010, "loss_d": 1.0, "d_real": 0.5, "d_fake": 0.5}) + "\n")
    assert not status()["paused"] and status()["step"] == 50_010
    # the trainer is gone after a stop request
    (b / ".lock").write_text(json.dumps({"pid": 2**22 + 12345, "host": socket.gethostname()}))
    with open(b / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 50_010, "event": "control", "action": "stop", "id": "y"}) + "\n")
    assert status()["status"] == "stopped"
