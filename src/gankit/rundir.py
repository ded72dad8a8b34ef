"""A run directory, and the one reader (and writer) of each file in it.

Layout (README, *The run directory*)::

    RUN_DIR/
        config.yaml      the resolved config
        metrics.jsonl    one JSON object a line: training records, evaluation records, events
        samples/         step-000250.png ...: sample grids (2-D data: D's probability field,
                         and step-000250.json: the field, points and G's arrows as data)
        control.jsonl    requests to the running trainer (gankit lab, or echo: gankit.train.control)
        checkpoints/     step-000500/ ..., last -> the newest, best -> the best by --eval-metric
        tensorboard/     with --tensorboard: a mirror of metrics.jsonl (numbers as scalars,
                         warnings and rollbacks as text) and of the sample grids (images)
        report.html      written by ``gankit report`` and at the end of training

``RunDir`` is how the report, the diagnosis and the CLI find and read these, for a finished run and
for one still training (a half-written last line of metrics.jsonl is skipped, not an error).
``MetricsLog`` is how training and ``gankit eval`` append to metrics.jsonl.

This module is stdlib only (no torch, no safetensors; the config is imported when it is read), so
reading a run is cheap and ``gankit.checkpoint`` can take its path logic (``step_dirs``,
``resolve_link``, ``resolve_last``) from here without a cycle.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gankit.errors import GankitError, display_path
from gankit.fsutil import atomic_write_text

if TYPE_CHECKING:
    from gankit.config import Config

__all__ = ["MetricsLog", "NullLog", "RunDir", "note_skipped", "read_records", "record_problem", "resolve_last",
           "resolve_link", "step_dirs", "step_of"]

_STEP_NAME = re.compile(r"^step-(\d+)(\.png)?$")  # checkpoints: step-000500; sample grids: step-000500.png

#: Keys that mark an evaluation record: ``--eval-every`` during training writes ``eval_seconds``,
#: ``gankit eval`` writes ``eval_n`` (``n_per_class`` with ``--per-class``).
EVAL_KEYS = frozenset({"eval_seconds", "eval_n", "n_per_class"})


def step_of(path: Path) -> int | None:
    """The step in a checkpoint folder's or sample grid's name (``step-000500[.png]``), else None."""
    m = _STEP_NAME.match(path.name)
    return int(m.group(1)) if m else None


# --------------------------------------------------------------------------- checkpoints: paths


def step_dirs(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """Finished numbered checkpoints, oldest first (temporaries and the links are not listed)."""
    if not ckpt_dir.is_dir():
        return []
    found = []
    for p in ckpt_dir.iterdir():
        m = _STEP_NAME.match(p.name)
        if m and not m.group(2) and p.is_dir() and not p.is_symlink():
            found.append((int(m.group(1)), p))
    return sorted(found)


def resolve_link(ckpt_dir: Path, link_name: str) -> Path | None:
    """The checkpoint folder the link ``ckpt_dir/link_name`` (``last``, ``best``) points at, if it
    is a finished one (holds state.json)."""
    p = ckpt_dir / link_name
    try:
        if p.is_symlink() or p.is_dir():
            target = p.resolve(strict=True)
            if (target / "state.json").is_file():
                return target
    except (OSError, RuntimeError):  # a link loop, or to nothing: no checkpoint (gankit.checkpoint
        pass  # says what is wrong with it when one is loaded)
    return None


def resolve_last(ckpt_dir: Path) -> Path | None:
    """The checkpoint ``last`` points at, or the newest finished one if the link is missing."""
    target = resolve_link(ckpt_dir, "last")
    if target is not None:
        return target
    found = step_dirs(ckpt_dir)
    return found[-1][1] if found else None


# --------------------------------------------------------------------------- metrics.jsonl


#: Values of a measurement record that are numbers: the diagnosis and the report compute with them
#: (and with every ``loss*`` and ``grad*``).
NUMERIC_KEYS = frozenset({"d_real", "d_fake", "time", "img_per_s", "diversity", "modes", "modes_total", "hq",
                          "classes", "classes_total", "first_diversity", "eval_seconds", "eval_n", "lr_g",
                          "lr_d", "beta2", "gamma_r1", "gamma_r2", "ema_half_life", "ada_p", "ada_rt"})

#: the largest step a record may hold (as ``gankit.validate.MAX_COUNT``)
MAX_STEP = 10**15


def record_problem(record: Any) -> str | None:
    """What makes a metrics.jsonl line unusable (None if nothing): not an object, no whole
    non-negative ``step``, an event whose name is not a string, or a measurement whose loss,
    gradient norm, D output or probe signal is not a number."""
    if not isinstance(record, dict):
        return "not a JSON object"
    step = record.get("step")
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        return "its step is not a whole number >= 0"
    if "event" in record:
        return None if isinstance(record["event"], str) else "its event is not a string"
    for key, value in record.items():
        if (key in NUMERIC_KEYS or key.startswith(("loss", "grad"))) and not (
                value is None or isinstance(value, int | float)):
            return f"its {key[:40]!r} is not a number"
    return None


def _lines(path: Path) -> tuple[list[str], bool] | None:
    """The lines of the JSON-lines file ``path`` and whether it ends with a newline (None if there
    is no file). Only a regular file is read: a FIFO or device is ``Damaged``, not waited on."""
    from gankit.validate import read_regular  # stdlib only; rundir imports nothing else at load

    try:
        raw = read_regular(path)
    except FileNotFoundError:
        return None
    return raw.decode("utf-8", errors="replace").splitlines(), raw.endswith(b"\n")


def _classify(lines: list[str], complete: bool) -> list[tuple[int, Any, str | None]]:
    """(line number, record, problem) of each non-blank line; a last line without its newline
    that does not parse is a line a killed run was writing: problem "" (skipped, not noted)."""
    out = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record: Any = json.loads(line)
            problem = record_problem(record)
        except (ValueError, RecursionError):
            record, problem = None, "not JSON"
            if i == len(lines) and not complete:
                problem = ""
        out.append((i, record, problem))
    return out


_noted: set[tuple[str, tuple[int, ...]]] = set()


def note_skipped(path: Path, damaged: list[tuple[int, str]]) -> None:
    """Say once per process, in one line on stderr, which damaged lines of ``path`` were skipped."""
    key = (str(path), tuple(i for i, _ in damaged))
    if not damaged or key in _noted:
        return
    _noted.add(key)
    shown = "; ".join(f"line {i}: {why}" for i, why in damaged[:3])
    more = f"; and {len(damaged) - 3} more" if len(damaged) > 3 else ""
    print(f"gankit: note: {display_path(path)}: skipped {len(damaged)} damaged line(s) ({shown}{more}); "
          "the other lines are used", file=sys.stderr)


def read_records(path: Path, damaged: list[tuple[int, str]] | None = None) -> list[dict[str, Any]]:
    """The records of a JSON-lines file, in file order; a missing file gives [].

    Tolerant of what a running or killed run leaves, and of damage: a half-written last line, blank
    lines, bad bytes, lines that are not objects and records ``record_problem`` finds unusable are
    skipped; the damaged ones (all but a half-written last line) are added to ``damaged`` as (line
    number, what is wrong). ``NaN`` / ``Infinity`` literals (which ``json.dumps`` writes for a
    diverged value) are read as floats.
    """
    found = _lines(path)
    if found is None:
        return []
    records = []
    for i, record, problem in _classify(*found):
        if problem is None:
            records.append(record)
        elif problem and damaged is not None:
            damaged.append((i, problem))
    return records


def _summary_writer(tensorboard_dir: Path, purge_step: int | None = None) -> Any:
    try:  # only when asked for: reading and writing metrics needs no torch
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise GankitError(
            "log.tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'"
        ) from None
    return SummaryWriter(str(tensorboard_dir), purge_step=purge_step)


def _event_text(record: dict[str, Any]) -> tuple[str, str]:
    """An event record as TensorBoard text (markdown): its tag (``warnings/mode_collapse``,
    ``events/rollback``) and what it says, with its other fields (e.g. a rollback's halved
    learning rates) listed after the sentence."""
    event = str(record["event"])
    if event == "warning":
        kind = str(record.get("kind", "warning"))
        tag, head = f"warnings/{kind}", f"**warning** at step {record['step']}: {kind.replace('_', ' ')}"
    else:
        tag, head = f"events/{event}", f"**{event}** at step {record['step']}"
    rest = [f"- {k}: {v}" for k, v in record.items() if k not in ("step", "event", "kind", "message")]
    return tag, "\n\n".join([head, str(record.get("message", "")), "\n".join(rest)]).strip() + "\n"


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step, appended and flushed as it happens;
    optionally mirrored to TensorBoard (metrics.jsonl stays the record of truth).

    The mirror: a record's numbers are scalars (training, probe and evaluation records); an event
    (a diagnosis warning, a rollback) is text under ``warnings/KIND`` or ``events/EVENT``; and each
    image the run writes (``image``: the sample grids, a 2-D run's probability field) is an image
    under its tag, at its step."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None) -> None:
        self.path = path
        self.writer: Any = None
        self.tensorboard_dir = tensorboard_dir
        if tensorboard_dir is not None:
            self.writer = _summary_writer(tensorboard_dir)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint, so they are logged once, again.
        The TensorBoard mirror drops them too (TensorBoard discards what a log holds after a
        restart's ``purge_step``), so a step logged again is shown once."""
        if self.writer is not None and self.tensorboard_dir is not None:
            self.writer.close()
            self.writer = _summary_writer(self.tensorboard_dir, purge_step=step + 1)
        found = _lines(self.path)
        if found is None:
            return
        lines = found[0]
        keep, damaged = [], []
        for i, record, problem in _classify(*found):
            if problem is None and record["step"] <= step:
                keep.append(lines[i - 1])
            elif problem:  # a half-written last line from a killed run goes without a word
                damaged.append((i, problem))
        note_skipped(self.path, damaged)
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def records(self) -> list[dict[str, Any]]:
        """The lines logged so far (a half-written last line is skipped; damaged ones too, noted)."""
        damaged: list[tuple[int, str]] = []
        records = read_records(self.path, damaged)
        note_skipped(self.path, damaged)
        return records

    def append(self, record: dict[str, Any]) -> None:
        line = json.dumps(record) + "\n"
        if os.path.lexists(self.path) and not self.path.is_file():  # a FIFO would block, a loop fail
            from gankit.validate import Damaged

            raise Damaged(self.path, "it is not a regular file", "move it aside (gankit starts a new log)")
        with open(self.path, "ab+") as f:  # appends go to the end, wherever the file position is
            end = f.seek(0, os.SEEK_END)
            if end:
                f.seek(end - 1)
                if f.read(1) != b"\n":  # a killed run's half-written line: do not glue onto it
                    line = "\n" + line
            f.write(line.encode())
        if self.writer is not None:
            if "event" in record:  # words, not numbers: the doctor's sentence and its cures
                tag, text = _event_text(record)
                self.writer.add_text(tag, text, record["step"])
            else:
                for key, value in record.items():
                    if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                        self.writer.add_scalar(key, value, record["step"])
            self.writer.flush()

    def image(self, path: Path, step: int, tag: str = "samples") -> None:
        """The run wrote the image ``path`` (a PNG: a sample grid) at ``step``: mirror it to
        TensorBoard under ``tag``, pixel for pixel (a gray grid stays gray). metrics.jsonl holds no
        images, so without TensorBoard this does nothing; a task that wrote no file is skipped."""
        if self.writer is None:
            return
        import numpy as np  # gankit's own dependencies, imported only for the mirror
        from PIL import Image

        try:
            with Image.open(path) as im:
                gray = im.mode in ("1", "L", "I", "I;16", "F")
                pixels = np.asarray(im.convert("L" if gray else "RGB"))
        except FileNotFoundError:
            return
        self.writer.add_image(tag, pixels, step, dataformats="HW" if gray else "HWC")
        self.writer.flush()


class NullLog(MetricsLog):
    """What ranks other than 0 log to under torchrun: nothing."""

    def __init__(self) -> None:
        self.writer = None
        self.tensorboard_dir = None

    def truncate_after(self, step: int) -> None:
        pass

    def append(self, record: dict[str, Any]) -> None:
        pass

    def records(self) -> list[dict[str, Any]]:
        return []


# --------------------------------------------------------------------------- the run directory


class RunDir:
    """A gankit run directory: where each of its files lives, and how to read it.

    Nothing is read on construction; every method reads the files as they are now, so the same
    object serves a run that is still training.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @classmethod
    def of_checkpoint(cls, ckpt: Path) -> RunDir | None:
        """The run a checkpoint folder belongs to (RUN_DIR/checkpoints/step-N), or None for a
        checkpoint copied out of its run."""
        if ckpt.parent.name != "checkpoints":
            return None
        run = cls(ckpt.parent.parent)
        return run if run.is_run() else None

    # ------------------------------------------------------------------ where things are

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def control_path(self) -> Path:
        """control.jsonl: requests to the training run (``gankit.train.control``)."""
        return self.path / "control.jsonl"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"

    @property
    def report_path(self) -> Path:
        return self.path / "report.html"

    def is_run(self) -> bool:
        """Whether this folder holds a gankit run (its config.yaml is written first)."""
        return self.config_path.is_file()

    def require(self) -> RunDir:
        """This run directory, or a GankitError saying why it is not one."""
        if not self.path.is_dir():
            raise GankitError(f"run directory {str(self.path)!r} does not exist (or is not a folder); "
                              "pass the folder a training run wrote (the log.out setting)")
        if not self.is_run():
            raise GankitError(f"{str(self.path)!r} has no config.yaml, so it is not a gankit run "
                              "directory; pass the folder a training run wrote (the log.out setting)")
        return self

    # ------------------------------------------------------------------ config.yaml

    def config(self) -> Config:
        """The run's config, read and validated (GankitError if it is missing or invalid)."""
        from gankit.config import config_from_dict, load_yaml  # the registries: only when read
        from gankit.validate import Damaged, read_regular

        path = self.config_path
        fix = ("restore it from a backup (each checkpoint's state.json holds the config the run "
               "trained with, under \"config\")")
        try:
            read_regular(path).decode("utf-8")  # a FIFO is refused, not waited on; binary is no YAML
        except FileNotFoundError:
            raise GankitError(f"{display_path(path)} does not exist, so {display_path(self.path)} is not a "
                              "gankit run directory; pass the folder a training run wrote") from None
        except UnicodeDecodeError:
            raise Damaged(path, "it is not UTF-8 text (config.yaml is YAML)", fix) from None
        except Damaged as e:
            raise e.with_fix(fix) from None
        try:
            return config_from_dict(load_yaml(path), str(path))
        except RecursionError:
            raise Damaged(path, "it is nested too deeply to be a config", fix) from None
        except GankitError as e:
            raise GankitError(f"{e}; {fix}") from None

    # ------------------------------------------------------------------ metrics.jsonl

    def records(self) -> list[dict[str, Any]]:
        """Every line of metrics.jsonl, in file order (a half-written last line is skipped; damaged
        lines too, noted once on stderr)."""
        damaged: list[tuple[int, str]] = []
        records = read_records(self.metrics_path, damaged)
        note_skipped(self.metrics_path, damaged)
        return records

    def events(self) -> list[dict[str, Any]]:
        """The event lines: warnings of the diagnosis, rollbacks after a divergence."""
        return [r for r in self.records() if "event" in r]

    def measurements(self) -> list[dict[str, Any]]:
        """Every line that is not an event: training, diagnosis-probe and evaluation records."""
        return [r for r in self.records() if "event" not in r]

    def training_records(self) -> list[dict[str, Any]]:
        """The lines the training loop logs every --log-every steps (they carry the losses)."""
        return [r for r in self.records() if "event" not in r and "loss_d" in r]

    def eval_records(self) -> list[dict[str, Any]]:
        """The evaluation lines: --eval-every during training, and ``gankit eval``'s."""
        return [r for r in self.records() if "event" not in r and not EVAL_KEYS.isdisjoint(r)]

    def metrics_log(self) -> MetricsLog:
        """A writer appending to this run's metrics.jsonl."""
        return MetricsLog(self.metrics_path)

    def append(self, record: dict[str, Any]) -> None:
        """Append one record to metrics.jsonl (``gankit eval`` does, after training's lines)."""
        self.metrics_log().append(record)

    # ------------------------------------------------------------------ samples and checkpoints

    def sample_path(self, step: int) -> Path:
        """Where the sample grid of ``step`` is written: samples/step-NNNNNN.png."""
        return self.samples_dir / f"step-{step:06d}.png"

    def samples(self) -> list[Path]:
        """The saved sample grids (samples/step-N.png), by step; partial files (hidden
        temporaries) are not listed."""
        try:
            paths = [p for p in self.samples_dir.iterdir() if p.suffix == ".png"]
        except OSError:
            return []
        steps = {p: step_of(p) for p in paths}
        return sorted((p for p, s in steps.items() if s is not None), key=lambda p: (steps[p], p.name))

    def checkpoints(self) -> list[tuple[int, Path]]:
        """The finished numbered checkpoints, oldest first."""
        return step_dirs(self.checkpoints_dir)

    def last_checkpoint(self) -> Path | None:
        """The checkpoint a resume would start from, or None before the first one."""
        return resolve_last(self.checkpoints_dir)

    def best_checkpoint(self) -> Path | None:
        """With --eval-every: the best checkpoint by --eval-metric, or None."""
        return resolve_link(self.checkpoints_dir, "best")

    def checkpoint_state(self, ckpt: Path | None = None) -> dict[str, Any] | None:
        """The JSON half of a checkpoint (default: the last one): step, precision, versions, ...;
        None if there is none or it cannot be read."""
        ckpt = ckpt if ckpt is not None else self.last_checkpoint()
        if ckpt is None:
            return None
        from gankit.validate import read_regular

        try:
            meta = json.loads(read_regular(ckpt / "state.json", 64 << 20))
        except (GankitError, OSError, ValueError, RecursionError):  # damaged: no state to show
            return None
        return meta if isinstance(meta, dict) else None
