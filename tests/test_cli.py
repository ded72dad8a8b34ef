"""The command line: the acceptance run, and user mistakes that end in one clear line and status 2."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from gankit.cli import main
from gankit.config import options_by_key
from tests.train.test_resume import logged

TINY = ["--latent-dim", "8", "--width", "16", "--batch-size", "32", "--no-progress"]


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(args)
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    err = capsys.readouterr().err
    return code, err


def test_ring_run_writes_every_artifact_then_report_and_sample(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "R"
    code, err = run_cli(["train", "--data", "ring", "--model", "mlp", "--loss", "nonsaturating",
                         "--steps", "200", "--log-every", "20", "--sample-every", "100",
                         "--checkpoint-every", "100", "--out", str(out), *TINY], capsys)
    assert code == 0, err
    assert f"report:  {out / 'report.html'}" in err
    assert {p.name for p in out.iterdir()} >= {"config.yaml", "metrics.jsonl", "checkpoints", "samples",
                                               "report.html"}
    assert sorted(p.name for p in (out / "samples").iterdir()) == [  # 2-D: the field as data beside each PNG
        "step-000000.json", "step-000000.png", "step-000100.json", "step-000100.png", "step-000200.json",
        "step-000200.png"]
    html = (out / "report.html").read_text()
    assert "probability field" in html and "equilibrium" in html
    (out / "report.html").unlink()
    assert run_cli(["report", str(out)], capsys)[0] == 0 and (out / "report.html").exists()
    assert run_cli(["sample", str(out), "-n", "64", "--out", str(tmp_path / "s.png")], capsys)[0] == 0
    assert Image.open(tmp_path / "s.png").size[0] > 100
    assert run_cli(["sample", str(out), "-n", "5", "--out", str(tmp_path / "pts")], capsys)[0] == 0
    assert len((tmp_path / "pts" / "points.csv").read_text().splitlines()) == 6


def test_sample_grid_files_and_interpolation(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.api import train_config
    from gankit.data import from_tensor
    from tests.conftest import tiny_config, tiny_images

    run = tmp_path / "img"
    train_config(tiny_config(run, model="dcgan", data="tensor", steps=10, width=8), data=from_tensor(tiny_images()))
    assert run_cli(["sample", str(run), "-n", "9", "--out", str(tmp_path / "g.png")], capsys)[0] == 0
    assert Image.open(tmp_path / "g.png").size == (3 * 18 + 2, 3 * 18 + 2)  # 3x3 tiles of 16 px, padding 2
    assert run_cli(["sample", str(run / "checkpoints" / "last"), "-n", "4", "--out",
                    str(tmp_path / "each")], capsys)[0] == 0
    assert len(list((tmp_path / "each").glob("*.png"))) == 4
    assert run_cli(["sample", str(run), "-n", "7", "--interpolate", "--out", str(tmp_path / "i.png")],
                   capsys)[0] == 0
    assert Image.open(tmp_path / "i.png").size == (7 * 18 + 2, 18 + 2)  # one strip of 7 frames
    # same seed, same picture; another seed, another
    run_cli(["sample", str(run), "-n", "9", "--seed", "0", "--out", str(tmp_path / "g2.png")], capsys)
    run_cli(["sample", str(run), "-n", "9", "--seed", "1", "--out", str(tmp_path / "g3.png")], capsys)
    b = (tmp_path / "g.png").read_bytes()
    assert b == (tmp_path / "g2.png").read_bytes() != (tmp_path / "g3.png").read_bytes()
    # --out honours the extension it is given: one JPEG (not a folder named s.jpg)
    assert run_cli(["sample", str(run), "-n", "9", "--out", str(tmp_path / "s.jpg")], capsys)[0] == 0
    assert (tmp_path / "s.jpg").is_file() and (tmp_path / "s.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    with Image.open(tmp_path / "s.jpg") as im:
        assert im.format == "JPEG" and im.size == (3 * 18 + 2, 3 * 18 + 2)


def test_a_2d_run_samples_to_a_jpeg_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.api import train_config
    from tests.conftest import tiny_config

    train_config(tiny_config(tmp_path / "r", steps=20, checkpoint_every=20))
    assert run_cli(["sample", str(tmp_path / "r"), "-n", "50", "--out", str(tmp_path / "f.jpeg")], capsys)[0] == 0
    with Image.open(tmp_path / "f.jpeg") as im:
        assert im.format == "JPEG"


@pytest.mark.parametrize(("args", "named"), [
    (["train", "--step", "5"], ["--steps"]),  # no abbreviation is taken silently
    (["train", "--lr", "1e-3"], ["--lr-g", "--lr-d"]),  # nor an ambiguous one
    (["train", "--latnt-dim", "8"], ["--latent-dim"]),
    (["eval", "--per_class"], ["--per-class"]),
])
def test_a_mistyped_flag_is_one_line_naming_the_flags_meant(
        capsys: pytest.CaptureFixture[str], args: list[str], named: list[str]) -> None:
    code, err = run_cli(args, capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gankit: error: ") and "usage:" not in err
    assert "did you mean" in err and all(flag in err for flag in named)


def test_every_command_has_the_same_device_default() -> None:
    from gankit.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    defaults = {name: next(a.default for a in p._actions if a.dest == "device")
                for name, p in sub.choices.items()
                if name != "train" and any(a.dest == "device" for a in p._actions)}
    assert defaults.keys() == {"sample", "eval", "translate", "predict"}
    assert set(defaults.values()) == {options_by_key()["device"].default} == {"auto"}  # as train


def test_class_names_have_one_spelling(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gankit.data.fashion_mnist import CLASSES
    from gankit.data.paired import class_pair_names
    from gankit.models.conditional import parse_class

    # what `gankit list` prints for the translation tasks is what --class takes, and the other way
    for slug, name in zip(class_pair_names(), CLASSES, strict=True):
        assert parse_class(slug, 10, CLASSES) == parse_class(name, 10, CLASSES) == CLASSES.index(name)


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--data", "nowhere/images"], "nowhere/images does not exist"),
    (["train", "--data", "fashion"], "is neither a dataset (ring, grid, fashion-mnist, stacked-fashion-mnist,"),
    (["train", "--data", "EMPTY"], "contains no image files"),
    (["train", "--data", "ring", "--model", "mlp", "--steps", "-3"], "--steps must be at least 1"),
    (["train", "--lr-g", "fast"], "--lr-g must be a number"),
    (["train", "--bogus", "1"], "unrecognized arguments: --bogus"),
    (["train", "--config", "BAD_YAML"], "not valid YAML at line 2"),
    (["train", "--config", "UNKNOWN_KEY"], "unknown config key 'ste'"),
    (["train", "--data", "ring", "--model", "mlp", "--out", "FILE/sub"], "cannot write to"),
    (["train", "--resume", "no-such-run"], "cannot resume no-such-run: no run there"),
    (["train", "--data", "ring", "--model", "dcgan"], "use --model mlp"),
    (["sample", "no-such-run", "--out", "x.png"], "does not exist"),
    (["report", "no-such-run"], "no-such-run"),
])
def test_user_errors_exit_2_with_one_clear_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    (tmp_path / "EMPTY").mkdir()
    (tmp_path / "BAD_YAML").write_text("steps: 3\nlr_g: ]\n")
    (tmp_path / "UNKNOWN_KEY").write_text("ste: 3\n")
    (tmp_path / "FILE").write_text("a file, not a folder")
    args = [a if a not in ("EMPTY", "BAD_YAML", "UNKNOWN_KEY") else str(tmp_path / a) for a in args]
    code, err = run_cli(args, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_missing_fashion_mnist_says_how_to_install(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANKIT_FASHION_MNIST", str(tmp_path))
    code, err = run_cli(["train", "--steps", "1"], capsys)
    assert code == 2 and "apt-get install dataset-fashion-mnist" in err and "Traceback" not in err


def test_resume_refuses_to_change_what_the_run_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = str(tmp_path / "r")
    base = ["--data", "ring", "--model", "mlp", "--steps", "10", "--out", out, *TINY]
    assert run_cli(["train", *base], capsys)[0] == 0
    code, err = run_cli(["train", "--resume", out, "--lr-g", "0.5"], capsys)
    assert code == 2 and "--lr-g cannot change when resuming" in err
    code, err = run_cli(["train", *base], capsys)  # same --out again: refuse to overwrite
    assert code == 2 and "already holds a run" in err and "--resume" in err
    assert run_cli(["train", "--resume", out, "--steps", "20"], capsys)[0] == 0


def test_console_script_end_to_end(tmp_path: Path) -> None:
    # The real entry point in a fresh interpreter: exit status and stderr as a user sees them.
    r = subprocess.run([sys.executable, "-m", "gankit", "train", "--data", str(tmp_path / "none")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("gankit: error:") and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "gankit", "list"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "dcgan" in r.stdout and "nonsaturating" in r.stdout


def test_a_torchrun_rank_exits_with_its_status_and_its_output_flushed() -> None:
    """Under torchrun (WORLD_SIZE > 1) the console script leaves by os._exit, skipping the
    finalisation where gloo ranks aborted; what the command printed must still arrive (piped, so
    block-buffered: lost without the flush) and its status be the exit status."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"} | {"WORLD_SIZE": "2"}
    r = subprocess.run([sys.executable, "-m", "gankit", "list"], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "dcgan" in r.stdout and "nonsaturating" in r.stdout
    r = subprocess.run([sys.executable, "-m", "gankit", "list", "--bogus"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 2 and r.stderr.strip().startswith("gankit: error:")


def test_output_cut_short_by_its_reader_is_no_traceback() -> None:
    # `gankit list | head`, at its most abrupt: the reader (`true`) has left before gankit has even
    # started, so gankit's first write meets a closed pipe; it exits 1 (pipefail), saying nothing
    r = subprocess.run(["bash", "-o", "pipefail", "-c", f"{sys.executable} -m gankit list | true"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and r.stderr == ""


def test_list_shows_the_conditionings(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("conditionings"):].splitlines()
    assert [line.split()[0] for line in section[1:4]] == ["cgan", "acgan", "projection"]
    assert "Mirza & Osindero 2014" in section[1] and "Odena et al. 2017" in section[2]
    assert "Miyato & Koyama 2018" in section[3]


def test_a_failed_start_leaves_nothing_and_the_fixed_command_trains(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "X"
    code, err = run_cli(["train", "--data", "ring", "--model", "dcgan", "--out", str(out)], capsys)
    assert code == 2 and "--model mlp" in err  # dcgan on 2-D points: refused ...
    assert not out.exists()  # ... before anything was created
    code, err = run_cli(["train", "--image-size", "7", "--out", str(out)], capsys)
    assert code == 2 and not out.exists()
    assert run_cli(["train", "--data", "ring", "--model", "mlp", "--steps", "10", "--out", str(out), *TINY],
                   capsys)[0] == 0


def test_a_run_killed_before_its_first_checkpoint_starts_again_with_the_same_command(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "r"
    args = ["train", "--data", "ring", "--model", "mlp", "--steps", "10", "--out", str(out), *TINY]
    assert run_cli(args, capsys)[0] == 0
    full = logged(out)
    shutil.rmtree(out / "checkpoints")  # what a kill before the first save leaves: no checkpoint
    (out / "checkpoints").mkdir()
    (out / "metrics.jsonl").write_text('{"step": 5, "loss_d": 1.0}\n{"step": 7, "lo')  # and a torn log
    code, err = run_cli(["train", "--resume", str(out)], capsys)
    assert code == 2 and "start it again without --resume" in err
    code, err = run_cli(args, capsys)  # the same command as the first time
    assert code == 0 and "never saved a checkpoint" in err
    assert logged(out) == full  # the old log is gone, the new one is as the first run's


def test_the_model_flag_lists_what_every_registered_task_trains() -> None:
    import re

    from gankit.cli import build_parser
    from gankit.tasks import TASKS

    train = next(a for a in build_parser()._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
                 if any(o.dest == "model" for o in a._actions) and any(o.dest == "resume" for o in a._actions))
    usage = train.format_help()
    listed = re.search(r"--model \{([^}]*)\}", usage)
    assert listed is not None
    every = [m for e in TASKS.entries() for m in e.obj.models()]
    assert listed.group(1).split(",") == every and {"novel-view", "nextframe", "dtn"} <= set(every)
