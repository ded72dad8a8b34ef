"""When things go wrong (issue 16): a full disk, SIGTERM, a second trainer, a killed writer's
temporaries. Every case ends in one line and a run that ``--resume`` continues.

A full disk is simulated at the lowest write gankit does: ``os.fsync`` of the file named (what a
real ENOSPC looks like: the temporary was made, its data did not fit), or the safetensors writer
raising ``SafetensorError("... No space left on device")``.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError

from gankit import checkpoint as ck
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from gankit.fsutil import DiskFull, atomic_write_bytes, clean_stale_temps, is_disk_full
from gankit.images import save_each
from gankit.train.rundir import LOCK_NAME, RunLock
from tests.train.test_resume import assert_same_run

RING = ["--data", "ring", "--model", "mlp", "--latent-dim", "8", "--width", "16", "--batch-size", "32",
        "--lr-g", "1e-3", "--lr-d", "1e-3", "--precision", "fp32", "--no-progress", "--log-every", "10"]


def tiny(out: Path, steps: int = 40, **flags: int) -> list[str]:
    """A ring run of a second or so: `gankit train` arguments (a 2-D run's sample plot is what
    costs most, so it draws only at the start and the end unless asked)."""
    extra = {"sample_every": steps, "checkpoint_every": 20} | flags
    return ["train", *RING, "--steps", str(steps), "--out", str(out),
            *[a for k, v in extra.items() for a in (f"--{k.replace('_', '-')}", str(v))]]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


def error_line(err: str) -> str:
    """The one line an error ends with (gankit's own notes on stderr before it are allowed)."""
    lines = [line for line in err.splitlines()
             if line.startswith("gankit: ") and not line.startswith("gankit: warning:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Hidden files and folders a write left anywhere under ``folder`` (the lock is meant to stay)."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*") if p.name != LOCK_NAME)


def full_disk_at(monkeypatch: pytest.MonkeyPatch, match: Callable[[str], bool]) -> list[str]:
    """Make ``os.fsync`` fail with ENOSPC for files whose path ``match``es; returns the paths hit."""
    real, hit = os.fsync, []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if match(path):
            hit.append(path)
            raise OSError(errno.ENOSPC, "No space left on device")
        real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return hit


needs_proc = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs Linux's /proc/self/fd")


def dead_pid() -> int:
    """The pid of a process that has exited."""
    p = subprocess.Popen([sys.executable, "-c", ""])
    p.wait()
    return p.pid


# --------------------------------------------------------------------------- a full disk


def test_disk_full_in_a_checkpoint_keeps_the_last_one_and_resume_continues(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    real = ck._write_safetensors

    def write(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> object:
        if metadata.get("step") == "30":  # safetensors' own writer on a full disk: half a file, then this
            path.write_bytes(b"\0" * 100)
            raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
        return real(path, tensors, metadata)

    monkeypatch.setattr(ck, "_write_safetensors", write)
    code, err = run_cli(tiny(run, checkpoint_every=10), capsys)
    line = error_line(err)
    assert code == 2
    assert line == (f"gankit: error: disk full while writing {run}/checkpoints/step-000030: the last good "
                    f"checkpoint (step 20) is kept as checkpoints/last; free some space and resume with "
                    f"gankit train --resume {run}")
    assert leftovers(run) == []  # the partial .tmp-step folder and every temporary removed
    assert os.readlink(run / "checkpoints" / "last") == "step-000020"
    assert load_checkpoint(run).step == 20

    monkeypatch.setattr(ck, "_write_safetensors", real)  # space freed
    assert main(["train", "--resume", str(run)]) == 0
    assert main(tiny(tmp_path / "full", checkpoint_every=10)) == 0
    assert_same_run(tmp_path / "full", run)


@needs_proc
def test_disk_full_in_a_sample_grid_saves_the_step_reached_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    hit = full_disk_at(monkeypatch, lambda p: ".step-000030.png." in p)
    code, err = run_cli(tiny(run, sample_every=30), capsys)  # checkpoints every 20: the last was step 20
    assert code == 2 and hit
    assert error_line(err) == (
        f"gankit: error: disk full while writing {run}/samples/step-000030.png: the last good checkpoint "
        f"(step 30) is kept as checkpoints/last; free some space and resume with gankit train --resume {run}")
    assert load_checkpoint(run).step == 30  # the disk still took a checkpoint of the step reached
    assert leftovers(run) == []

    monkeypatch.undo()
    assert main(["train", "--resume", str(run)]) == 0
    assert load_checkpoint(run).step == 40 and (run / "samples" / "step-000040.png").is_file()


@needs_proc
def test_disk_full_for_report_and_sample_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    assert main(tiny(run, steps=20)) == 0
    capsys.readouterr()
    full_disk_at(monkeypatch, lambda p: True)
    for argv, written in ((["report", str(run)], run / "report.html"),
                          (["sample", str(run), "-n", "4", "--out", str(tmp_path / "g.png")], tmp_path / "g.png"),
                          (["sample", str(run), "-n", "4", "--out", str(tmp_path / "pts")], tmp_path / "pts"),
                          (["train", "--resume", str(run), "--steps", "30"], run / "config.yaml")):
        code, err = run_cli(argv, capsys)
        assert code == 2, argv
        assert error_line(err).startswith(f"gankit: error: disk full while writing {written}"), err
    assert leftovers(tmp_path) == []
    assert load_checkpoint(run).step == 20


def test_disk_full_is_recognised_however_it_is_said() -> None:
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert is_disk_full(SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)"))
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("no"))
    e = DiskFull("/x/y.png", OSError(errno.EDQUOT, "Disk quota exceeded"))
    assert isinstance(e, OSError) and e.errno == errno.EDQUOT  # a cache that catches OSError still does
    assert str(e).startswith("disk quota exceeded while writing /x/y.png")


def test_cli_turns_any_full_disk_into_one_line(capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    def doctor(ns: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/metrics.jsonl")

    monkeypatch.setattr("gankit.cli.cmd_doctor", doctor)
    code, err = run_cli(["doctor", "runs/x"], capsys)
    assert code == 2
    assert error_line(err).startswith("gankit: error: disk full while writing runs/x/metrics.jsonl")


# --------------------------------------------------------------------------- temporaries


def test_temporaries_name_their_writer_and_stale_ones_are_removed(tmp_path: Path) -> None:
    seen: list[str] = []
    atomic_write_bytes(tmp_path / "a.txt", b"x")
    from gankit.fsutil import atomic_write

    atomic_write(tmp_path / "b.txt", lambda f: seen.extend(os.listdir(tmp_path)))
    assert [n for n in seen if n.startswith(".b.txt.")][0].startswith(f".b.txt.{os.getpid()}.")
    dead, alive = dead_pid(), os.getppid()
    stale = tmp_path / f".a.txt.{dead}.k3j2h1g0.tmp"
    live = tmp_path / f".a.txt.{alive}.abcdefgh.tmp"
    other = tmp_path / f".b.txt.{dead}.abcdefgh.tmp"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    assert clean_stale_temps(tmp_path, "a.txt") == [stale]
    assert live.exists() and other.exists()
    assert clean_stale_temps(tmp_path) == [other]


def test_each_command_removes_its_stale_temporaries(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(tiny(run, steps=20)) == 0
    dead, alive = dead_pid(), os.getppid()
    made = {
        "report": [run / f".report.html.{dead}.aaaaaaaa.tmp"],
        "sample": [tmp_path / f".g.png.{dead}.aaaaaaaa.tmp"],
        "train": [run / f".metrics.jsonl.{dead}.aaaaaaaa.tmp", run / f".config.yaml.{dead}.aaaaaaaa.tmp",
                  run / "samples" / f".step-000030.png.{dead}.aaaaaaaa.tmp",
                  run / "checkpoints" / ".tmp-step-000030-1"],
    }
    kept = run / f".report.html.{alive}.aaaaaaaa.tmp"  # a live writer's
    for paths in made.values():
        for p in paths:
            p.mkdir() if p.name.startswith(".tmp-") else p.write_bytes(b"partial")
    kept.write_bytes(b"partial")
    assert main(["report", str(run)]) == 0
    assert not any(p.exists() for p in made["report"]) and kept.exists()
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "g.png")]) == 0
    assert not made["sample"][0].exists()
    assert main(["train", "--resume", str(run), "--steps", "30"]) == 0
    assert not any(p.exists() for p in made["train"])
    kept.unlink()
    assert leftovers(run) == []


def test_a_folder_of_samples_appears_whole_or_not_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gankit.images as images

    x = torch.zeros(5, 1, 4, 4)
    real, n = images.png_bytes, [0]

    def png_bytes(a: object) -> bytes:
        n[0] += 1
        if n[0] == 3:
            raise KeyboardInterrupt  # killed half-way
        return real(a)  # type: ignore[arg-type]

    monkeypatch.setattr(images, "png_bytes", png_bytes)
    with pytest.raises(KeyboardInterrupt):
        save_each(x, tmp_path / "pngs")
    assert os.listdir(tmp_path) == []  # no folder with 2 of 5 files, no temporary
    monkeypatch.undo()
    paths = save_each(x, tmp_path / "pngs")
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [p.name for p in paths] and len(paths) == 5
    assert oct((tmp_path / "pngs").stat().st_mode & 0o777) == oct(0o777 & ~_umask())
    (tmp_path / "pngs" / "mine.txt").write_text("kept")  # an existing folder: the files move in
    assert len(save_each(x[:2], tmp_path / "pngs", prefix="b")) == 2
    assert (tmp_path / "pngs" / "mine.txt").read_text() == "kept"
    assert len(list((tmp_path / "pngs").glob("b-*.png"))) == 2 and leftovers(tmp_path) == []


@needs_proc
def test_a_full_disk_while_saving_samples_leaves_no_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk_at(monkeypatch, lambda p: p.endswith("sample-00002.png"))
    with pytest.raises(DiskFull, match=f"disk full while writing {tmp_path / 'pngs'}"):
        save_each(torch.zeros(5, 1, 4, 4), tmp_path / "pngs")
    assert os.listdir(tmp_path) == []


def _umask() -> int:
    from gankit.fsutil import UMASK

    return UMASK


# --------------------------------------------------------------------------- the lock


def test_a_locked_run_is_refused_and_a_stale_lock_recovered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert main(tiny(run, steps=20)) == 0
    with RunLock().acquire(run):  # another trainer (this process, another open file: flock refuses)
        for argv in (["train", "--resume", str(run)], tiny(run)):
            code, err = run_cli(argv, capsys)
            assert code == 2
            line = error_line(err)
            assert line.startswith(f"gankit: error: {run} is being trained by process {os.getpid()} ("), line
            assert re.search(r", started \d\d:\d\d\); wait for it to finish or stop it$", line), line
        assert load_checkpoint(run).step == 20  # nothing was changed
        assert main(["report", str(run)]) == 0  # readers are welcome
    # a lock left by a process that died: flock was released with it; its record is overwritten
    (run / LOCK_NAME).write_text(f'{{"pid": {dead_pid()}, "host": "x", "started": 0, "command": "gankit"}}')
    assert main(["train", "--resume", str(run), "--steps", "30"]) == 0
    assert f'"pid": {os.getpid()}' in (run / LOCK_NAME).read_text()
    assert RunLock.holder(run) is None  # released at the end


# --------------------------------------------------------------------------- SIGTERM

# `gankit train` in a child that sends itself SIGTERM right after iteration KILL_AT (tests.hooks.Signal):
# the signal arrives at an exact step.
CHILD = r"""
import os, signal, sys
from gankit import api
from gankit.cli import main
from tests.hooks import Signal

real = api.train_config
api.train_config = lambda *a, **k: real(*a, **k, hooks=[Signal(int(os.environ["TERM_AT"]), signal.SIGTERM)])
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_saves_the_step_it_stopped_at_and_resume_completes(tmp_path: Path) -> None:
    run = tmp_path / "run"
    r = subprocess.run([sys.executable, "-c", CHILD, *tiny(run)], env={**os.environ, "TERM_AT": "25"},
                       capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parents[2])
    assert r.returncode == 128 + signal.SIGTERM, r.stderr
    assert error_line(r.stderr) == (f"gankit: stopped by SIGTERM at step 25; checkpoint saved. Continue with: "
                                    f"gankit train --resume {run}")
    assert load_checkpoint(run).step == 25  # not a scheduled checkpoint (every 20): where it stopped
    # (resumed from there, it ends as if never stopped: the same path as Ctrl-C's, tests/train/test_kill.py)
    assert main(["train", "--resume", str(run)]) == 0
    assert load_checkpoint(run).step == 40


def test_external_sigterm_on_a_live_run_with_a_second_trainer_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """docker stop / systemd / SLURM: SIGTERM from outside, while another trainer is turned away."""
    run = tmp_path / "live"
    argv = ["train", *RING, "--steps", "20000", "--sample-every", "20000", "--checkpoint-every", "20",
            "--out", str(run)]
    p = subprocess.Popen([sys.executable, "-m", "gankit", *argv], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not (run / "checkpoints" / "last").exists() and p.poll() is None:
            time.sleep(0.02)
        if p.poll() is None:
            code, err = run_cli(["train", "--resume", str(run)], capsys)
            assert code == 2 and f"is being trained by process {p.pid} (gankit train --data ring" in err, err
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    if p.returncode == 0:
        pytest.skip("the run finished before SIGTERM arrived")
    assert p.returncode == 128 + signal.SIGTERM, err
    m = re.search(r"gankit: stopped by SIGTERM at step (\d+); checkpoint saved\. Continue with: "
                  r"gankit train --resume (\S+)$", err.strip())
    assert m and m.group(2) == str(run), err
    step = int(m.group(1))
    assert load_checkpoint(run).step == step
    assert main(["train", "--resume", str(run), "--steps", str(step + 20)]) == 0
    assert load_checkpoint(run).step == step + 20
