"""The run directory: created, checked writable, and read back for ``--resume``."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from gankit.checkpoint import resolve_last
from gankit.config import (
    Config,
    apply_mapping,
    config_from_dict,
    load_yaml,
    options_by_key,
    validate,
)
from gankit.errors import GankitError
from gankit.fsutil import atomic_write_text

# What may change when a run is resumed: how long it runs and how it is watched, not what it is.
RESUMABLE_KEYS = {"steps", "log_every", "sample_every", "checkpoint_every", "keep", "progress", "device",
                  "tensorboard", "eval_every", "eval_n", "compile",
                  "max_time", "diagnose_every", "precision", "cudnn_benchmark"}


def default_out(cfg: Config) -> Path:
    """runs/<data>-<model>, with -2, -3, ... if that already holds a run."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(cfg.data.source).name or "data").strip("-")
    base = Path("runs") / f"{name}-{cfg.model.arch}"
    out, i = base, 1
    while (out / "config.yaml").exists():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def check_new(cfg: Config) -> Config:
    """The config of a new run with its directory decided (``log.out``, or runs/<data>-<model>);
    refuses a directory that holds another run. Creates nothing: a start that fails later (bad
    data, a model that does not fit them) leaves no folder behind to block the next try."""
    out = Path(cfg.log.out) if cfg.log.out else default_out(cfg)
    if (out / "config.yaml").exists() or resolve_last(out / "checkpoints") is not None:
        raise GankitError(
            f"{out} already holds a run; continue it with `gankit train --resume {out}` "
            "or choose another log.out"
        )
    cfg.log.out = str(out)
    return cfg


def create_new(cfg: Config, resolved: dict[str, tuple[Any, str]]) -> Path:
    """Create the run directory and write its config.yaml: the values the run uses, those settled
    from its data and networks (``resolved``: key -> (value, why)) included."""
    out = Path(str(cfg.log.out))
    try:
        for sub in ("", "checkpoints", "samples"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise GankitError(f"cannot write to {out}: {e.strerror}; choose another log.out") from None
    for key, (value, why) in resolved.items():
        cfg.resolve_value(key, value, why)
    atomic_write_text(out / "config.yaml", cfg.to_yaml())
    return out


def saved_config(run_dir: str | os.PathLike) -> Config:
    """The config a run directory was started with (its config.yaml)."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise GankitError(f"cannot resume {run}: no run there (no config.yaml); check the path")
    return config_from_dict(load_yaml(run / "config.yaml"), str(run / "config.yaml"))


def resume_config(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> Config:
    """The config of the run in ``run_dir``, with only the keys in RESUMABLE_KEYS overridable."""
    run = Path(run_dir)
    cfg = saved_config(run)
    if resolve_last(run / "checkpoints") is None:
        raise GankitError(f"cannot resume {run}: it has no checkpoint yet; start it again without --resume")
    changed = {k: v for k, v in overrides.items() if k not in RESUMABLE_KEYS}
    by_key = options_by_key()
    for key, value in changed.items():
        opt = by_key[key]
        if getattr(getattr(cfg, opt.section), opt.name) != value:
            raise GankitError(
                f"{opt.dotted} cannot change when resuming {run} (it is part of what the run is); only "
                f"{', '.join(by_key[k].dotted for k in sorted(RESUMABLE_KEYS))} can. Start a new run to "
                "change it"
            )
    cfg = validate(apply_mapping(cfg, {k: v for k, v in overrides.items() if k in RESUMABLE_KEYS},
                                 "command line"))
    cfg.log.out = str(run)
    atomic_write_text(run / "config.yaml", cfg.to_yaml())
    return cfg


class MetricsLog:
    """metrics.jsonl: one JSON object per logged step, appended and flushed as it happens;
    optionally mirrored to TensorBoard (metrics.jsonl stays the record of truth)."""

    def __init__(self, path: Path, tensorboard_dir: Path | None = None) -> None:
        self.path = path
        self.writer: Any = None
        if tensorboard_dir is not None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise GankitError(
                    "--tensorboard needs the tensorboard package: pip install 'gankit[tensorboard]'"
                ) from None
            self.writer = SummaryWriter(str(tensorboard_dir))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def truncate_after(self, step: int) -> None:
        """On resume: drop lines logged after the checkpoint, so they are logged once, again."""
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                continue  # a half-written last line from a killed run
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def records(self) -> list[dict[str, Any]]:
        """The lines logged so far (a half-written last line is skipped)."""
        out = []
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, int | float) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, record["step"])
            self.writer.flush()


class NullLog(MetricsLog):
    """What ranks other than 0 log to under torchrun: nothing."""

    def __init__(self) -> None:
        self.writer = None

    def truncate_after(self, step: int) -> None:
        pass

    def append(self, record: dict[str, Any]) -> None:
        pass

    def records(self) -> list[dict[str, Any]]:
        return []
