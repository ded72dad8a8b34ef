"""Damaged run files (issue 16, "Faults"): each ends in one clear line, never a traceback, a hang
or a silent acceptance.

One tiny ring run (checkpoints at steps 4 and 8) is made once; each case copies it, damages its
newest checkpoint (or its config.yaml, metrics.jsonl, the ``last`` link) and runs the three
commands that read it through ``gankit.cli.main``:

- ``gankit sample`` and ``gankit eval``: exit 2 and one line on stderr naming the damaged file, what
  is wrong and the newest intact checkpoint to use instead (damage to train.safetensors, config.yaml
  or a log line does not concern them: they read state.json and model.safetensors only);
- ``gankit train --resume``: falls back to the newest intact checkpoint, says so in one line naming
  the damaged one and why, and keeps it (renamed ``step-NNNNNN.damaged``); with no intact
  checkpoint left, exit 2 and one line.

A FIFO would block ``open`` forever: every command runs under an alarm, so a regression fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from gankit.api import train_config
from gankit.checkpoint import load_checkpoint
from gankit.cli import main
from tests.conftest import tiny_config

HANG_S = 60  # far beyond any of these commands (each well under 2 s): only a hang reaches it


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("base") / "r"
    train_config(tiny_config(run, steps=8, checkpoint_every=4, log_every=4, keep=3, sample_every=8))
    assert os.readlink(run / "checkpoints" / "last") == "step-000008"
    return run


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    def hung(signum: int, frame: object) -> None:
        raise TimeoutError(f"a command blocked for {HANG_S} s (a FIFO opened for reading?)")

    torch.set_num_threads(1)  # a tiny MLP: a second thread only waits on a busy machine
    old = signal.signal(signal.SIGALRM, hung)
    signal.alarm(HANG_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


# --------------------------------------------------------------------------- ways to damage a run


def state_edit(change: Callable[[dict], object]) -> Callable[[Path], None]:
    """Rewrite the newest checkpoint's state.json as ``change(meta)`` leaves it."""
    def damage(run: Path) -> None:
        path = run / "checkpoints" / "step-000008" / "state.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))
    return damage


def rewritten(name: str, change: Callable[[dict[str, torch.Tensor]], None]) -> Callable[[Path], None]:
    """Rewrite a .safetensors file of the newest checkpoint as a valid one with ``change``d tensors
    and its metadata, and record its new checksum: only the tensors themselves are wrong."""
    def damage(run: Path) -> None:
        import hashlib

        ckpt = run / "checkpoints" / "step-000008"
        with safe_open(str(ckpt / name), "pt") as f:
            metadata = f.metadata()
        tensors = load_file(str(ckpt / name))
        change(tensors)
        save_file(tensors, str(ckpt / name), metadata=metadata)
        state = json.loads((ckpt / "state.json").read_text())
        state["sha256"][name] = hashlib.sha256((ckpt / name).read_bytes()).hexdigest()
        (ckpt / "state.json").write_text(json.dumps(state))
    return damage


def flipped(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "checkpoints" / "step-000008" / name
        data = bytearray(path.read_bytes())
        data[-3] ^= 0x10  # inside the last tensor: the file still parses
        path.write_bytes(bytes(data))
    return damage


def truncated(name: str, keep_checksum: bool = True) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "checkpoints" / "step-000008" / name
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        if not keep_checksum:  # as a checkpoint saved before checksums: the parse must catch it
            state_edit(lambda m: m.pop("sha256"))(run)
    return damage


def fifo(name: str) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "checkpoints" / "step-000008" / name
        path.unlink()
        os.mkfifo(path)
    return damage


def nan_weights(tensors: dict[str, torch.Tensor]) -> None:
    for k, v in tensors.items():
        if k.startswith("G") and v.is_floating_point():
            v.fill_(float("nan"))


def in_a_list(run: Path) -> None:
    path = run / "checkpoints" / "step-000008" / "state.json"
    path.write_text(f"[{path.read_text()}]")


def link_loop(run: Path) -> None:
    last = run / "checkpoints" / "last"
    last.unlink()
    last.symlink_to("last")


def garbage_log_lines(run: Path) -> None:
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines()
    lines[1:1] = ["\x00\x01 not json {", '{"step": "four", "loss_d": 1.0}', '{"step": 6, "loss_d": [1]}']
    path.write_text("\n".join(lines) + "\n")


def write(name: str, data: bytes) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        (run / name).write_bytes(data)
    return damage


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    damage: Callable[[Path], None]
    file: str  # the damaged file, as the message names it (the end of its path)
    words: str  # what the message says is wrong
    # what the damage concerns: "checkpoint" (all three commands), "train" (train.safetensors:
    # resume only), "link" (the last link), "config" (config.yaml: resume only), "log" (metrics.jsonl)
    scope: str = "checkpoint"


STATE = "step-000008/state.json"
MODEL = "step-000008/model.safetensors"
TRAIN = "step-000008/train.safetensors"

CASES = {
    # state.json: a missing key, each required one
    "step missing": Case(state_edit(lambda m: m.pop("step")), STATE, "'step' is missing"),
    "data_shape missing": Case(state_edit(lambda m: m.pop("data_shape")), STATE, "'data_shape' is missing"),
    "optim missing": Case(state_edit(lambda m: m.pop("optim")), STATE, "'optim' is missing"),
    "config missing": Case(state_edit(lambda m: m.pop("config")), STATE, "'config' is missing"),
    "elapsed missing": Case(state_edit(lambda m: m.pop("elapsed")), STATE, "'elapsed' is missing"),
    "real_batches missing": Case(state_edit(lambda m: m.pop("real_batches")), STATE, "'real_batches' is missing"),
    # ... a wrong type, a list where an object belongs, out of range
    "step not a number": Case(state_edit(lambda m: m.update(step="forty")), STATE, "'step' must be a whole number"),
    "step -1": Case(state_edit(lambda m: m.update(step=-1)), STATE, "got -1"),
    "step huge": Case(state_edit(lambda m: m.update(step=10**30)), STATE, "'step' must be a whole number from 0"),
    "step not its folder's": Case(state_edit(lambda m: m.update(step=4)), STATE, "the checkpoint's folder is"),
    "real_batches -5": Case(state_edit(lambda m: m.update(real_batches=-5)), STATE, "'real_batches' must be"),
    "config not an object": Case(state_edit(lambda m: m.update(config="mlp")), STATE, "'config' must be a JSON object"),
    "config invalid": Case(state_edit(lambda m: m["config"]["model"].update(latent_dim="eight")), STATE,
                           "not a valid config"),
    "optim a list": Case(state_edit(lambda m: m.update(optim=[])), STATE, "'optim' must be a JSON object"),
    "param_groups an object": Case(state_edit(lambda m: m["optim"]["opt_G"].update(param_groups={})), STATE,
                                   "'optim.opt_G.param_groups' must be a list"),
    "data_shape of strings": Case(state_edit(lambda m: m.update(data_shape=["2"])), STATE, "'data_shape[0]'"),
    "task unknown": Case(state_edit(lambda m: m.update(task="gann")), STATE, "'task'"),
    "whole file a list": Case(in_a_list, STATE, "must be a JSON object, got a list"),
    "not JSON": Case(write("checkpoints/step-000008/state.json", b'{"step": 4'), STATE, "not valid JSON"),
    "binary": Case(write("checkpoints/step-000008/state.json", b"\xff\xfe\x00garbage"), STATE, "not UTF-8"),
    # the weights
    "model byte flipped": Case(flipped("model.safetensors"), MODEL, "checksum mismatch"),
    "model truncated": Case(truncated("model.safetensors"), MODEL, "checksum mismatch"),
    "model truncated, no checksum": Case(truncated("model.safetensors", keep_checksum=False), MODEL,
                                         "not a valid safetensors file"),
    "model all NaN": Case(rewritten("model.safetensors", nan_weights), MODEL, "NaN or infinite"),
    "model tensor missing": Case(rewritten("model.safetensors", lambda t: t.pop("D.net.0.weight")), MODEL,
                                 "lacks the tensor D.net.0.weight"),
    "model a FIFO": Case(fifo("model.safetensors"), MODEL, "FIFO"),
    "model missing": Case(lambda run: (run / "checkpoints/step-000008/model.safetensors").unlink(), MODEL,
                          "missing"),
    "state.json a FIFO": Case(fifo("state.json"), STATE, "FIFO"),
    # the training state: only resume reads it
    "train byte flipped": Case(flipped("train.safetensors"), TRAIN, "checksum mismatch", "train"),
    "rng.torch missing": Case(rewritten("train.safetensors", lambda t: t.pop("rng.torch")), TRAIN,
                              "lacks the tensor rng.torch", "train"),
    "moment of a wrong shape": Case(rewritten("train.safetensors", lambda t: t.update({"opt_G.0.exp_avg": t[
        "opt_G.0.exp_avg"][:1]})), TRAIN, "opt_G.0.exp_avg has shape", "train"),
    "train a FIFO": Case(fifo("train.safetensors"), TRAIN, "FIFO", "train"),
    # the last link, the config, the log
    "last a link loop": Case(link_loop, "checkpoints/last", "symbolic link loop", "link"),
    "config.yaml binary": Case(write("config.yaml", b"\x89PNG\r\n\x1a\n\x00\x00"), "config.yaml", "not UTF-8", "config"),
    "config.yaml a list": Case(write("config.yaml", b"- steps\n- 40\n"), "config.yaml", "mapping", "config"),
    "config.yaml garbage": Case(write("config.yaml", b"model: {arch: [\n"), "config.yaml", "not valid YAML", "config"),
    "metrics.jsonl damaged lines": Case(garbage_log_lines, "metrics.jsonl", "skipped 3 damaged line(s)", "log"),
}


def damaged_copy(base: Path, tmp_path: Path, case: Case) -> Path:
    run = tmp_path / "r"
    shutil.copytree(base, run, symlinks=True, ignore=shutil.ignore_patterns("report.html"))
    case.damage(run)
    return run


def gankit(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    rc = main(list(argv))
    return rc, capsys.readouterr().err


def assert_one_line(rc: int, err: str, case: Case) -> str:
    assert rc == 2, err
    assert err.startswith("gankit: error: ") and err.count("\n") == 1, err
    assert case.file in err and case.words in err, err
    assert "Traceback" not in err
    return err


def intact(case: Case) -> str:
    return "step-000008" if case.scope == "link" else "step-000004"


@pytest.mark.parametrize("name", CASES)
def test_sample_and_eval_name_the_damaged_file(name: str, base: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    run = damaged_copy(base, tmp_path, case)
    for argv in (["sample", str(run), "-n", "8", "--out", str(tmp_path / "pts")],
                 ["eval", str(run), "--metrics", "modes", "--n", "64"]):
        rc, err = gankit(capsys, *argv)
        if case.scope in ("checkpoint", "link"):
            err = assert_one_line(rc, err, case)
            assert f"the newest intact checkpoint is {run}/checkpoints/{intact(case)}" in err, err
        else:  # not a file these commands read
            assert rc == 0, err
    if case.scope in ("checkpoint", "link"):  # ... and the one named works
        rc, err = gankit(capsys, "sample", str(run / "checkpoints" / intact(case)), "-n", "8", "--out",
                         str(tmp_path / "pts"))
        assert rc == 0, err


@pytest.mark.parametrize("name", CASES)
def test_resume_falls_back_to_the_newest_intact_checkpoint(name: str, base: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    run = damaged_copy(base, tmp_path, case)
    ckpts = run / "checkpoints"
    before = sorted(p.name for p in (ckpts / "step-000008").iterdir()) if case.scope != "link" else []
    rc, err = gankit(capsys, "train", "--resume", str(run))
    if case.scope == "config":  # the run's own config: nothing to fall back to
        assert_one_line(rc, err, case)
        return
    assert rc == 0, err
    assert "Traceback" not in err
    if case.scope == "log":
        notes = [line for line in err.splitlines() if line.startswith("gankit: note:")]
        assert len(notes) == 1 and case.file in notes[0] and case.words in notes[0], err
        return
    said = [line for line in err.splitlines() if "is damaged" in line]
    assert len(said) == 1, err
    assert said[0].startswith("gankit: warning: ") and case.file.split("/")[0] in said[0], err
    assert case.words in said[0] and f"resuming from {intact(case)}" in said[0], err
    assert load_checkpoint(run).step == 8  # trained on from the intact one, saved again
    if case.scope == "link":
        assert os.readlink(ckpts / "last") == "step-000008"
    else:  # the damaged checkpoint is kept, out of the resumed run's way
        kept = ckpts / "step-000008.damaged"
        assert sorted(p.name for p in kept.iterdir()) == before
        assert "renamed step-000008.damaged" in said[0]


@pytest.mark.parametrize("name", [n for n, c in CASES.items() if c.scope in ("checkpoint", "train")][::3])
def test_resume_with_no_intact_checkpoint_is_one_line(name: str, base: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    case = CASES[name]
    run = damaged_copy(base, tmp_path, case)
    shutil.rmtree(run / "checkpoints" / "step-000004")
    rc, err = gankit(capsys, "train", "--resume", str(run))
    assert rc == 2 and err.count("gankit: error:") == 1, err
    last = err.splitlines()[-1]  # after the lines training prints as it starts (the data found)
    assert last.startswith("gankit: error: no intact checkpoint"), err
    assert case.file.split("/")[-1] in last and case.words in last, err
    assert (run / "checkpoints" / "step-000008").is_dir()  # nothing deleted, nothing moved


def test_checkpoints_record_checksums_and_old_ones_load_without(base: Path, tmp_path: Path) -> None:
    import hashlib

    ckpt = base / "checkpoints" / "step-000008"
    sums = json.loads((ckpt / "state.json").read_text())["sha256"]
    for name in ("model.safetensors", "train.safetensors"):
        assert sums[name] == hashlib.sha256((ckpt / name).read_bytes()).hexdigest()
    run = damaged_copy(base, tmp_path, Case(state_edit(lambda m: m.pop("sha256")), "", ""))
    assert load_checkpoint(run).step == 8


LEGACY_PIX2PIX = Path(__file__).resolve().parents[1] / "fixtures" / "legacy" / "pix2pix"  # one checkpoint, step 4


def pix2pix_edit(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def damage(run: Path) -> None:
        path = run / "checkpoints" / "step-000004" / "state.json"
        meta = json.loads(path.read_text())
        change(meta)
        path.write_text(json.dumps(meta))
    return damage


def pix2pix_nan(run: Path) -> None:  # a checkpoint from before checksums: nothing to update
    path = run / "checkpoints" / "step-000004" / "model.safetensors"
    tensors = load_file(str(path))
    nan_weights(tensors)
    save_file(tensors, str(path))


TRANSLATOR_CASES = {
    "last a link loop": Case(link_loop, "checkpoints/last", "symbolic link loop", "link"),
    "shape_A a string": Case(pix2pix_edit(lambda m: m["translator"].update(shape_A="16x16")),
                             "step-000004/state.json", "'translator.shape_A' must be a list"),
    "translator a list": Case(pix2pix_edit(lambda m: m.update(translator=[])), "step-000004/state.json",
                              "'translator' must be a JSON object"),
    "model cut short": Case(write("checkpoints/step-000004/model.safetensors", b"\x40\x00\x00\x00\x00\x00\x00\x00{"),
                            "step-000004/model.safetensors", "not a valid safetensors file"),
    "model all NaN": Case(pix2pix_nan, "step-000004/model.safetensors", "NaN or infinite"),
}


@pytest.mark.parametrize("name", TRANSLATOR_CASES)
def test_a_damaged_translator_is_one_line_for_eval_and_translate(name: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    case = TRANSLATOR_CASES[name]
    run = tmp_path / "p"
    shutil.copytree(LEGACY_PIX2PIX, run, symlinks=True)
    case.damage(run)
    (tmp_path / "in").mkdir()
    for argv in (["eval", str(run)], ["translate", str(run), str(tmp_path / "in"), "--out", str(tmp_path / "out")]):
        err = assert_one_line(*gankit(capsys, *argv), case)
        if case.scope == "link":  # the checkpoint itself is intact
            assert f"the newest intact checkpoint is {run}/checkpoints/step-000004" in err, err
        else:
            assert "no intact checkpoint is left" in err, err
