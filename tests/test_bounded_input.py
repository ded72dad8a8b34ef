"""Input gankit cannot trust, through the command line: YAML bombs, binary and huge config files,
non-finite and huge numbers, an empty --data, file names that are not UTF-8 or hold terminal escape
sequences. Each ends in one line on stderr naming the key or the file, exit status 2, quickly, and
nothing reaches the terminal raw."""

from __future__ import annotations

import io
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import gankit.api  # noqa: F401  (imported now, so the timings below measure gankit, not imports)
from gankit.cli import main
from gankit.config import build_config, load_yaml
from gankit.config.load import MAX_YAML_ALIASES, MAX_YAML_BYTES, MAX_YAML_DEPTH, MAX_YAML_NODES
from gankit.errors import GankitError, display_path, escape_text, short_repr

ESC = "\x1b[31m"
TINY = ["--model", "mlp", "--image-size", "8", "--steps", "2", "--latent-dim", "8", "--width", "8",
        "--batch-size", "4", "--log-every", "1", "--sample-every", "2", "--checkpoint-every", "2",
        "--no-progress", "--precision", "fp32"]

BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
lr_g: [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def one_line_error(args: list[str], capsys: pytest.CaptureFixture[str], *named: str,
                   seconds: float = 5.0) -> str:
    """Run ``gankit ARGS``; it must exit 2 within ``seconds`` with one line on stderr, naming each
    of ``named``, no traceback and no raw control character. Returns the line."""
    t0 = time.perf_counter()
    try:
        code = main(args)
    except SystemExit as e:  # argparse
        code = int(e.code or 0)
    took = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("gankit: error: "), err
    assert "Traceback" not in err
    assert escape_text(err, keep="\n") == err, f"raw control characters reached stderr: {err!r}"
    for what in named:
        assert what in err, (what, err)
    assert took < seconds, f"took {took:.2f} s"
    return lines[0]


def write(tmp_path: Path, name: str, data: str | bytes) -> str:
    p = tmp_path / name
    p.write_bytes(data.encode() if isinstance(data, str) else data)
    return str(p)


# --------------------------------------------------------------------------- config files


def test_a_billion_laughs_fails_fast_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "laughs.yaml", BILLION_LAUGHS)
    assert len(BILLION_LAUGHS) < 400
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    line = one_line_error(["train", "--config", path], capsys, path, f"more than {MAX_YAML_NODES} values",
                          seconds=0.5)
    assert "line " in line and len(line) < 400
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 100_000  # KiB: nothing expanded
    t0 = time.perf_counter()
    with pytest.raises(GankitError, match="aliases counted as copies"):
        load_yaml(path)
    assert time.perf_counter() - t0 < 0.1


def test_too_many_aliases_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "x: &x 1\nsteps: 5\nother: [" + ", ".join(["*x"] * (MAX_YAML_ALIASES + 1)) + "]\n"
    path = write(tmp_path, "aliases.yaml", text)
    one_line_error(["train", "--config", path], capsys, path, f"more than {MAX_YAML_ALIASES} aliases")
    # a few anchors for shared values still load
    ok = write(tmp_path, "ok.yaml", "lr_g: &lr 0.001\nlr_d: *lr\n")
    assert build_config(ok).train.lr_d == 0.001


@pytest.mark.parametrize("shape", ["flow", "block"])
def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str], shape: str) -> None:
    depth = 50_000 if shape == "flow" else 500
    text = ("lr_g: " + "[" * depth + "]" * depth + "\n" if shape == "flow"
            else "lr_g:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, depth)))
    path = write(tmp_path, "deep.yaml", text)
    one_line_error(["train", "--config", path], capsys, path, f"nested more than {MAX_YAML_DEPTH} levels",
                   seconds=2)


def test_a_50_mb_yaml_is_refused_by_its_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.write(b"lr_g: 0.001\n#")
        f.truncate(50 * 2**20)  # sparse: 50 MB to the reader, nothing to write
    one_line_error(["train", "--config", str(path)], capsys, str(path), "over the limit of 1 MiB",
                   seconds=0.5)
    assert MAX_YAML_BYTES == 2**20


def test_a_binary_config_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    path = write(tmp_path, "config.yaml", png.getvalue())
    one_line_error(["train", "--config", path], capsys, path, "binary")
    latin1 = write(tmp_path, "latin1.yaml", "out: caf\xe9\n".encode("latin-1"))
    one_line_error(["train", "--config", latin1], capsys, latin1, "not UTF-8 text")
    ctrl = write(tmp_path, "ctrl.yaml", "out: a\x07b\n")  # UTF-8, but not YAML text
    one_line_error(["train", "--config", ctrl], capsys, ctrl, "not YAML text")


@pytest.mark.parametrize(("text", "what"), [("- 1\n- 2\n", "not list"), ("just words\n", "not str"),
                                            ("42\n", "not int")])
def test_the_top_level_is_a_mapping(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str,
                                    what: str) -> None:
    path = write(tmp_path, "c.yaml", text)
    one_line_error(["train", "--config", path], capsys, path, "must hold a mapping", what)


def test_values_are_never_echoed_whole(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "list.yaml": "lr_g: [" + ", ".join(["1"] * 5000) + "]\n",  # wrong type
        "string.yaml": "prior: " + "u" * 100_000 + "\n",  # not a choice
        "key.yaml": "x" * 100_000 + ": 1\n",  # unknown key (no did-you-mean over 100k characters)
        "digits.yaml": "steps: " + "9" * 5000 + "\n",  # more digits than Python reads
        "huge.yaml": "steps: " + "9" * 4000 + "\n",  # over the limit
        "model.yaml": "model: " + "m" * 3000 + "\n",  # no registered name
    }
    for name, text in cases.items():
        path = write(tmp_path, name, text)
        # the schema's errors name the file; a registry's (the model) names the key
        line = one_line_error(["train", "--config", path], capsys,
                              "--model" if name == "model.yaml" else path, seconds=2)
        assert len(line) < 400 + len(path), line
    line = one_line_error(["train", "--steps", "9" * 5000], capsys, "--steps must be an integer")
    assert len(line) < 400
    assert short_repr("z" * 10**6).endswith("…") and len(short_repr("z" * 10**6)) == 60
    nested: list = [1]
    for _ in range(40):
        nested = [nested] * 9  # 9^40 leaves if formatted whole
    assert len(short_repr(nested)) <= 60


def test_a_run_config_yaml_is_read_through_the_same_limits(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(BILLION_LAUGHS)
    one_line_error(["train", "--resume", str(run)], capsys, "config.yaml", "aliases counted as copies",
                   seconds=0.5)


# --------------------------------------------------------------------------- numbers


@pytest.mark.parametrize(("flag", "value"), [("--lr-g", "inf"), ("--lr-d", "nan"), ("--lr-g", "-inf"),
                                             ("--r1", "inf"), ("--max-time", "nan"), ("--ema", "nan")])
def test_non_finite_numbers_are_refused(capsys: pytest.CaptureFixture[str], flag: str, value: str) -> None:
    one_line_error(["train", "--data", "ring", "--model", "mlp", f"{flag}={value}"], capsys, flag,
                   "must be a finite number")


@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", ".NaN"])
def test_non_finite_numbers_in_yaml_are_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    path = write(tmp_path, "c.yaml", f"data: ring\nmodel: mlp\ntrain:\n  lr_g: {value}\n")
    one_line_error(["train", "--config", path], capsys, path, "--lr-g must be a finite number")
    with pytest.raises(GankitError, match="train.lr_d must be a finite number"):
        build_config(overrides={"lr_d": float("inf")})
    with pytest.raises(GankitError, match="train.lr_d must be a finite number"):
        build_config(overrides={"lr_d": 10**400})  # an int no float holds


@pytest.mark.parametrize(("flag", "value", "limit"), [
    ("--batch-size", "1000000000", "at most 65536"),
    ("--latent-dim", "100000000", "at most 4096"),
    ("--width", "1000000", "at most 1024"),
    ("--steps", "10000000000", "at most 1000000000"),
    ("--d-steps", "100000", "at most 1000"),
    ("--eval-n", "1000000000", "at most 1000000"),
    ("--seed", "-1", "0 or positive"),
    ("--image-size", "100000", "each side must be 4..4096 pixels"),
    ("--image-size", "99999999", "each side must be 4..4096 pixels"),
    ("--image-size", "64x" + "9" * 5000, "over the limit of 4096"),
    ("--image-size", "64x" + "9" * 100, "is not N or HxW"),
])
def test_huge_sizes_are_refused_before_anything_is_allocated(
        capsys: pytest.CaptureFixture[str], flag: str, value: str, limit: str) -> None:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    one_line_error(["train", "--data", "ring", "--model", "mlp", flag, value], capsys, flag, limit)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak < 200_000  # KiB


def test_a_batch_that_cannot_fit_in_memory_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "imgs" / "a.png")
    # within every single limit, together 8.8 TB: more than any machine
    one_line_error(["train", "--data", str(tmp_path / "imgs"), "--batch-size", "65536", "--image-size",
                    "4096"], capsys, "--batch-size 65536", "--image-size", "of memory")
    import gankit.resolve

    monkeypatch.setattr(gankit.resolve, "physical_memory", lambda: 2**30)  # a 1 GiB machine
    line = one_line_error(["train", "--data", str(tmp_path / "imgs"), "--model", "mlp", "--batch-size",
                           "4096", "--image-size", "256", "--channels", "3"], capsys,
                          "--batch-size 4096", "this machine's 1.0 GiB of memory")
    assert "needs at least 6.0 GiB" in line
    # a folder larger than memory trains from its memory-mapped cache ...
    import gankit.data.base
    import gankit.data.folder_cache

    monkeypatch.setattr(gankit.data.base, "physical_memory", lambda: 100)
    assert main(["train", "--data", str(tmp_path / "imgs"), *TINY, "--out", str(tmp_path / "r")]) == 0
    capsys.readouterr()
    # ... but one whose decoded images fit neither in memory nor on the cache's disk is refused
    # before it is decoded
    monkeypatch.setattr(gankit.data.folder_cache, "disk_free", lambda folder: 100)
    with pytest.warns(RuntimeWarning, match="could not write the image cache"):
        one_line_error(["train", "--data", str(tmp_path / "imgs"), *TINY, "--image-size", "16"], capsys,
                       "1 images at 16x16", "--image-size", "could not be written")


# --------------------------------------------------------------------------- --data


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_an_empty_data_path_is_an_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "here.png")  # what --data '' used to train on
    one_line_error(["train", "--data", value, *TINY], capsys, "--data is empty", "folder of images")
    path = write(tmp_path, "c.yaml", f"data: {json.dumps(value)}\n")  # a JSON string is YAML
    one_line_error(["train", "--config", path], capsys, "--data is empty")


# --------------------------------------------------------------------------- file names


def png_bytes(value: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((8, 8, 3), value, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def make_folder(root: Path, names: list[bytes], bad: list[bytes] = ()) -> Path:
    """A folder of 8x8 PNGs under the given byte names, and files that are no image."""
    root.mkdir()
    for i, name in enumerate(names):
        try:
            with open(os.fsencode(root) + b"/" + name, "wb") as f:
                f.write(png_bytes(30 * i))
        except OSError as e:  # a file system that takes UTF-8 names only
            pytest.skip(f"cannot create {name!r}: {e}")
    for name in bad:
        with open(os.fsencode(root) + b"/" + name, "wb") as f:
            f.write(b"not an image")
    return root


def test_names_that_are_not_utf8_or_hold_escapes_train_and_are_shown_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path / "imgs", [b"a.png", b"\xff.png", ESC.encode() + b"red.png", b"b\n.png"],
                         bad=[ESC.encode() + b"bad\x07.png", b"\xfe\xfd bad.png"])
    code = main(["train", "--data", str(folder), *TINY, "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "4 images from" in err and "2 skipped" in err
    assert "  \\x1b[31mbad\\x07.png: not an image" in err and "  \\xfe\\xfd bad.png: not an image" in err
    assert "\x1b" not in err and "\x07" not in err and "\udcfe" not in err
    # a second run reads the names back from the cache
    assert main(["train", "--data", str(folder), *TINY, "--out", str(tmp_path / "run2")]) == 0
    err = capsys.readouterr().err
    assert "from cache" in err and "\\x1b[31mbad\\x07.png" in err and "\x1b" not in err


def test_a_folder_of_only_bad_files_names_them_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = make_folder(tmp_path / "bad", [], bad=[ESC.encode() + b"x.png", b"\xff.png"])
    code = main(["train", "--data", str(folder), *TINY])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "none of the 2 image file(s)" in err
    assert "\\x1b[31mx.png: not an image" in err and "\\xff.png: not an image" in err
    assert "\x1b" not in err


def test_class_folders_that_are_not_utf8_are_labelled_escaped(tmp_path: Path) -> None:
    from gankit.data.folder import load_image_folder

    root = tmp_path / "classes"
    root.mkdir()
    for cls in (b"\xffcat", ESC.encode() + b"dog"):
        make_folder(Path(os.fsdecode(os.fsencode(root) + b"/" + cls)), [b"1.png", b"2.png"])
    found = load_image_folder(root, (8, 8), workers=1)
    assert found.classes is not None and sorted(found.classes) == ["\\x1b[31mdog", "\\xffcat"]
    assert len(found.files) == 4 and found.labels is not None


def test_an_escape_in_a_path_given_on_the_command_line_is_escaped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one_line_error(["train", "--data", f"{tmp_path}/{ESC}nowhere\r\x07/x"], capsys,
                   "\\x1b[31mnowhere\\r\\x07/x", "does not exist")
    one_line_error(["train", "--config", f"{tmp_path}/{ESC}.yaml"], capsys, "\\x1b[31m.yaml",
                   "does not exist")


def test_display_path_and_escape_text() -> None:
    assert display_path(b"\xff.png") == "\\xff.png" == display_path(os.fsdecode(b"\xff.png"))
    assert display_path(f"{ESC}red.png") == "\\x1b[31mred.png"
    assert display_path(Path("ñandú/照片 1.png")) == "ñandú/照片 1.png"  # readable names stay readable
    assert display_path("a\u202eb\u200b.png") == "a\\u202eb\\u200b.png"  # bidi override, zero width
    assert escape_text("one\ntwo\r", keep="\n") == "one\ntwo\\r"
    once = display_path(b"\x1b\xff\n")
    assert display_path(once) == once  # escaping twice changes nothing more
