"""README.md's commands, run as written: every ```bash / ```sh / ```python block not marked
``<!-- no-test -->`` runs, in order, in one temporary folder (as a reader following the page
would), with the repository's environment. Only the amounts of work shrink: ``--steps N`` and
``steps=N`` become a few steps, a ``gankit train`` line without ``--steps`` gets one, and
``gankit eval``'s ``--n`` a few hundred samples. Each block must exit 0 and leave the files it
promises: the run folder of every ``--out`` / ``out=`` it names.

The folder holds what the README's reader has: links to the clone's .venv, scripts/ and configs/,
a HOME whose ~/datasets/fashion-mnist holds Fashion-MNIST (for GANKIT_FASHION_MNIST), and
``path/to/images``, a folder of a few small images.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import FMNIST, needs_fmnist

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
# the user's cache (as the README's reader has it): Fashion-MNIST's reference statistics for
# `gankit eval` are computed once, not in every test run (read before conftest's fixture isolates it)
USER_CACHE = os.environ.get("GANKIT_CACHE") or str(Path.home() / ".cache" / "gankit")
STEPS = 2  # what every step count becomes
EVAL_N = 200  # what `gankit eval --n N` becomes
MAX_LINES = 150


@dataclass
class Block:
    lang: str
    code: str
    test: bool  # False: marked <!-- no-test --> (set-up, multi-process)
    line: int  # where it starts in its file, for messages
    source: str


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, each marked runnable or not."""
    out = []
    text = path.read_text()
    for m in re.finditer(r"(?P<mark><!--\s*no-test\s*-->\s*\n)?```(?P<lang>\w*)\n(?P<code>.*?)^```", text,
                         re.S | re.M):
        line = text[: m.start("lang")].count("\n") + 1
        out.append(Block(m["lang"], m["code"], m["mark"] is None, line, path.name))
    return out


def shrink(code: str, lang: str) -> str:
    """The block with its amounts of work made tiny, and nothing else changed."""
    if lang == "python":
        return re.sub(r"\bsteps=\d+", f"steps={STEPS}", code)
    lines = []
    for line in code.splitlines():
        cmd = line.split("#", 1)[0]
        if re.search(r"(^|\s)gankit\s+train\b", cmd):
            if "--steps" in cmd:
                line = re.sub(r"--steps\s+\d+", f"--steps {STEPS}", line)
            else:
                line = cmd.rstrip() + f" --steps {STEPS}" + (" #" + line.split("#", 1)[1] if "#" in line else "")
        if re.search(r"(^|\s)gankit\s+eval\b", cmd):
            line = re.sub(r"--n\s+\d+", f"--n {EVAL_N}", line)
        lines.append(line)
    code = "\n".join(lines) + "\n"
    # the clone's entry point, wherever the block's shell looks for `gankit`
    return re.sub(r"(^|[\s;&|(])gankit(?=\s)", rf"\g<1>{VENV_BIN / 'gankit'}", code, flags=re.M)


def promised(code: str, lang: str) -> list[str]:
    """The paths a block says it writes: runs (their config, log, report, last checkpoint) and files."""
    out = []
    if lang == "python":
        for d in re.findall(r"\bout=\"([^\"]+)\"", code):
            out += [f"{d}/config.yaml", f"{d}/metrics.jsonl", f"{d}/checkpoints/last"]
        return out
    for line in code.splitlines():
        words = shlex.split(line.split("#", 1)[0])
        if "--out" not in words or words.index("--out") + 1 >= len(words):
            continue
        target = words[words.index("--out") + 1]
        if "train" in words:
            out += [f"{target}/{f}" for f in ("config.yaml", "metrics.jsonl", "report.html", "checkpoints/last")]
            out.append(f"{target}/samples")
        else:
            out.append(target)
    return out


def reader_folder(tmp: Path) -> None:
    """What the README's reader has around them (see the module docstring)."""
    for name in (".venv", "scripts", "configs"):
        (tmp / name).symlink_to(REPO / name)
    (tmp / "home" / "datasets").mkdir(parents=True)
    (tmp / "home" / "datasets" / "fashion-mnist").symlink_to(FMNIST)
    images = tmp / "path" / "to" / "images"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(images / f"img{i}.png")


def environment(tmp: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(HOME=str(tmp / "home"), GANKIT_CACHE=USER_CACHE,
               PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}")
    env.pop("VIRTUAL_ENV", None)
    env.pop("GANKIT_FASHION_MNIST", None)  # the README's reader sets it, or has Debian's package
    return env


def run_block(b: Block, tmp: Path) -> None:
    if not (tmp / ".venv").exists():
        reader_folder(tmp)
    code = shrink(b.code, b.lang)
    if b.lang == "python":
        argv = [str(VENV_BIN / "python"), "-c", code]
    else:  # the repository's environment (jemalloc preloaded) as run.sh has it, then the block as written
        argv = ["bash", "-c", f"set -e\nsource {REPO / 'scripts' / 'env.sh'}\n{code}"]
    r = subprocess.run(argv, cwd=tmp, env=environment(tmp), capture_output=True, text=True, timeout=300)
    where = f"{b.source}:{b.line} ({b.lang} block)"
    assert r.returncode == 0, f"{where} failed with status {r.returncode}:\n{code}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    missing = [p for p in promised(b.code, b.lang) if not (tmp / Path(p).expanduser()).exists()]
    assert not missing, f"{where} ran but did not write {missing}"


def test_readme_is_short_and_speaks_plainly() -> None:
    text = (REPO / "README.md").read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"README.md has {len(text.splitlines())} lines (at most {MAX_LINES})"
    assert "seeds" not in text.lower()
    assert not re.search(r"\bissue \d+", text, re.I)


def test_readme_marks_few_blocks_as_not_run() -> None:
    bs = blocks(REPO / "README.md")
    skipped = [b for b in bs if not b.test]
    assert len(skipped) <= 3, f"README.md skips {len(skipped)} blocks: {[b.line for b in skipped]}"
    assert sum(b.test and b.lang in ("bash", "sh", "python") for b in bs) >= 4


def test_shrink_makes_every_training_tiny() -> None:
    code = shrink("gankit train --out a --max-time 300\ngankit train --steps 5000 # x\ngankit eval r --n 10000\n", "sh")
    assert code.count(f"--steps {STEPS}") == 2 and f"--n {EVAL_N}" in code and "5000" not in code
    assert shrink('fit("x", steps=3000, out="r")', "python") == f'fit("x", steps={STEPS}, out="r")'


@needs_fmnist
def test_readme_blocks_run_as_written(tmp_path: Path) -> None:
    runnable = [b for b in blocks(REPO / "README.md") if b.test and b.lang in ("bash", "sh", "python")]
    for b in runnable:
        run_block(b, tmp_path)
    image = REPO / "docs" / "img" / "fmnist-samples.png"
    assert image.exists() and image.stat().st_size < 200_000


if __name__ == "__main__":
    pytest.main([__file__, "-q"])
