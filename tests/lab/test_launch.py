"""Starting and resuming runs from the lab (``gankit.lab.launch``, ``/api/presets``,
``/api/launch``): the presets listed, names and paths refused, the token required, the argv launched
(recorded instead of spawned), and one real trainer started from a preset to its last step."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette")
pytest.importorskip("httpx")

from starlette.testclient import TestClient  # noqa: E402

from gankit.lab import launch as launch_mod  # noqa: E402
from gankit.lab.server import make_app  # noqa: E402

TOKEN = "t0k3n"
H = {"X-Gankit-Token": TOKEN}


def _run(folder: Path, step: int, steps: int = 100, stop: bool = True) -> Path:
    """A run folder at ``step`` of ``steps``, stopped by the control channel when ``stop``."""
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(f"train:\n  steps: {steps}\n")
    lines = [{"step": step, "loss_d": 1.0, "loss_g": 0.5, "d_real": 0.6, "d_fake": 0.4}]
    if stop:
        lines.append({"step": step, "event": "control", "action": "stop", "id": "1", "message": "stop"})
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return folder


@pytest.fixture
def lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[TestClient, Path, list[list[str]]]:
    """(client, runs folder, the argv lists 'launched': recorded, nothing spawned)."""
    root = tmp_path / "runs"
    _run(root / "stopped", 40)
    launched: list[list[str]] = []

    def record(argv: list[str], log: Path) -> int:
        launched.append(argv)
        return 4242

    monkeypatch.setattr(launch_mod, "spawn", record)
    return TestClient(make_app(root, TOKEN)), root, launched


def test_presets_listed_with_their_first_comment_line(lab: tuple[TestClient, Path, list]) -> None:
    client, root, _ = lab
    presets = {p["name"]: p for p in client.get("/api/presets").json()["presets"]}
    assert {"ring-mlp", "fashion-mnist-dcgan", "conditional-fmnist-cgan"} <= set(presets)
    assert presets["ring-mlp"]["description"].startswith("The seeds' GAN on the 2-D ring")
    assert presets["ring-mlp"]["source"] == "gankit"
    # a user's presets folder in RUNS_DIR: its files listed too, and one of gankit's names overridden
    (root / "presets").mkdir()
    (root / "presets" / "mine.yaml").write_text("# my own ring\ndata: ring\nmodel: mlp\n")
    (root / "presets" / "ring-mlp.yaml").write_text("# my ring\ndata: ring\n")
    presets = {p["name"]: p for p in client.get("/api/presets").json()["presets"]}
    assert presets["mine"] == {"name": "mine", "description": "my own ring", "source": "runs"}
    assert presets["ring-mlp"]["source"] == "runs"
    # and a symlink leading out of the folder is not a preset
    outside = root.parent / "outside.yaml"
    outside.write_text("# outside\n")
    (root / "presets" / "link.yaml").symlink_to(outside)
    assert "link" not in {p["name"] for p in client.get("/api/presets").json()["presets"]}


def test_launch_needs_the_token(lab: tuple[TestClient, Path, list]) -> None:
    client, root, launched = lab
    start = {"action": "start", "preset": "ring-mlp", "name": "new"}
    assert client.post("/api/launch", json=start).status_code == 403
    assert client.post("/api/launch", json={"action": "resume", "run": "stopped"},
                       headers={"X-Gankit-Token": "wrong"}).status_code == 403
    assert launched == [] and not (root / "new").exists()


def test_start_from_a_preset_launches_train_with_the_config(lab: tuple[TestClient, Path, list]) -> None:
    client, root, launched = lab
    r = client.post("/api/launch", headers=H,
                    json={"action": "start", "preset": "ring-mlp", "name": "ring-1", "steps": 20})
    assert r.status_code == 200 and r.json() == {"pid": 4242, "run": "ring-1"}
    assert (root / "ring-1").is_dir()
    argv = launched[0]
    assert argv[:4] == [sys.executable, "-m", "gankit", "train"]
    assert argv[argv.index("--config") + 1] == str(launch_mod.PRESETS / "ring-mlp.yaml")
    assert argv[argv.index("--out") + 1] == str(root.resolve() / "ring-1")
    assert argv[argv.index("--steps") + 1] == "20" and "--no-progress" in argv
    # the same name again: taken
    again = client.post("/api/launch", headers=H, json={"action": "start", "preset": "ring-mlp", "name": "ring-1"})
    assert again.status_code == 409 and len(launched) == 1
    assert client.post("/api/launch", headers=H,
                       json={"action": "start", "preset": "ring-mlp", "name": "stopped"}).status_code == 409


@pytest.mark.parametrize("asked, status", [
    ({"name": "../evil"}, 400), ({"name": "-x"}, 400), ({"name": ""}, 400), ({"name": "a b"}, 400),
    ({"name": "x" * 65}, 400), ({"name": 3}, 400), ({"name": "presets"}, 400),
    ({"steps": 0}, 400), ({"steps": 10**7 + 1}, 400), ({"steps": "20"}, 400), ({"steps": True}, 400),
    ({"preset": "nope"}, 404), ({"preset": "../configs/ring-mlp"}, 404), ({"preset": None}, 404),
])
def test_start_refuses_bad_names_presets_and_steps(lab: tuple[TestClient, Path, list], asked: dict,
                                                   status: int) -> None:
    client, root, launched = lab
    body = {"action": "start", "preset": "ring-mlp", "name": "ok", **asked}
    r = client.post("/api/launch", headers=H, json=body)
    assert r.status_code == status and "error" in r.json()
    assert launched == [] and not (root / "ok").exists()


def test_resume_launches_resume_for_a_run_not_running(lab: tuple[TestClient, Path, list]) -> None:
    client, root, launched = lab
    r = client.post("/api/launch", headers=H, json={"action": "resume", "run": "stopped"})
    assert r.status_code == 200 and r.json()["pid"] == 4242
    run = str((root / "stopped").resolve())
    assert launched == [[sys.executable, "-m", "gankit", "train", "--resume", run, "--no-progress"]]


def test_resume_refuses_a_running_run_and_paths_outside(lab: tuple[TestClient, Path, list]) -> None:
    client, root, launched = lab
    # a live trainer's lock (this process stands in for it): running, so no second trainer
    (root / "stopped" / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": socket.gethostname()}))
    r = client.post("/api/launch", headers=H, json={"action": "resume", "run": "stopped"})
    assert r.status_code == 409 and "running" in r.json()["error"]
    _run(root.parent / "elsewhere", 10)
    (root / "link").symlink_to(root.parent / "elsewhere")
    for rel, status in (("link", 404), ("../elsewhere", 400), ("/etc", 400), ("nothing", 404)):
        assert client.post("/api/launch", headers=H, json={"action": "resume", "run": rel}).status_code == status
    assert client.post("/api/launch", headers=H, json={"action": "fly"}).status_code == 400
    assert client.post("/api/launch", headers=H, content=b"[1]").status_code == 400
    assert launched == []


def test_a_preset_run_started_from_the_lab_trains_to_its_last_step(tmp_path: Path) -> None:
    """The real thing: ring-mlp for 20 steps, a detached trainer, its output in lab-launch.log."""
    root = tmp_path / "runs"
    root.mkdir()
    client = TestClient(make_app(root, TOKEN))
    r = client.post("/api/launch", headers=H,
                    json={"action": "start", "preset": "ring-mlp", "name": "ring", "steps": 20})
    assert r.status_code == 200
    pid = r.json()["pid"]
    run = root / "ring"

    def gone() -> bool:  # reaped by the lab (no zombie left to look alive): the pid is free
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    end = time.monotonic() + 60
    while not gone():
        if time.monotonic() > end:
            os.kill(pid, 9)
            pytest.fail("the launched trainer did not end within 60 s: " + (run / "lab-launch.log").read_text())
        time.sleep(0.2)
    log = (run / "lab-launch.log").read_text()
    steps = [json.loads(line).get("step") for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert max(s for s in steps if s is not None) == 20, log
    assert "Traceback" not in log and "error" not in log.lower(), log
    # the lab sees it ended (its lock's pid is no zombie): finished, and not refused as running
    assert client.get("/api/run", params={"run": "ring"}).json()["status"] == "finished"
