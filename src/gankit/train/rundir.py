"""Starting a run directory (checked first, created once the task is built) and reading it back
for ``--resume``; ``gankit.rundir.RunDir`` is how every command reads one."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from gankit.config import (
    Config,
    apply_mapping,
    coerce,
    options_by_key,
)
from gankit.errors import GankitError
from gankit.fsutil import atomic_write_text
from gankit.rundir import RunDir

# What may change when a run is resumed: how long it runs and how it is watched, not what it is.
RESUMABLE_KEYS = {"steps", "log_every", "sample_every", "checkpoint_every", "keep", "progress", "device",
                  "tensorboard", "eval_every", "eval_n", "compile",
                  "max_time", "diagnose_every", "precision", "cudnn_benchmark"}


def default_out(cfg: Config) -> Path:
    """runs/<data>-<model>, with -2, -3, ... if that already holds a run."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(cfg.data.source).name or "data").strip("-")
    base = Path("runs") / f"{name}-{cfg.model.arch}"
    out, i = base, 1
    while RunDir(out).is_run():
        i += 1
        out = base.with_name(f"{base.name}-{i}")
    return out


def check_new(cfg: Config) -> Config:
    """The config of a new run with its directory decided (``log.out``, or runs/<data>-<model>);
    refuses a directory that holds another run's checkpoint. Creates nothing: a start that fails
    later (bad data, a model that does not fit them) leaves no folder behind to block the next try.
    A folder whose run never saved a checkpoint (killed early) holds nothing to resume: the new run
    starts in it again (``create_new`` clears that run's log and samples)."""
    out = Path(cfg.log.out) if cfg.log.out else default_out(cfg)
    run = RunDir(out)
    if run.last_checkpoint() is not None:
        raise GankitError(
            f"{out} already holds a run; continue it with `gankit train --resume {out}` "
            "or choose another log.out"
        )
    if run.is_run():
        print(f"{out} holds a run that never saved a checkpoint (stopped before its first): starting "
              "it again", file=sys.stderr)
    if cfg.log.out is None:
        cfg.resolve_value("log.out", str(out), "unset: runs/<data>-<model>")
    return cfg


def create_new(cfg: Config, resolved: dict[str, tuple[Any, str]]) -> Path:
    """Create the run directory and write its config.yaml: the values the run uses, those settled
    from its data and networks (``resolved``: key -> (value, why)) included."""
    out = Path(str(cfg.log.out))
    run = RunDir(out)
    try:
        for folder in (out, run.checkpoints_dir, run.samples_dir):
            folder.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("ok")
        probe.unlink()
        # what a run that never saved a checkpoint left: its log and its grids (nothing else)
        for stale in [run.metrics_path, run.report_path, *run.samples_dir.glob("step-*.png")]:
            stale.unlink(missing_ok=True)
    except OSError as e:
        raise GankitError(f"cannot write to {out}: {e.strerror}; choose another log.out") from None
    for key, (value, why) in resolved.items():
        cfg.resolve_value(key, value, why)
    atomic_write_text(run.config_path, cfg.to_yaml())
    return out


def resume_config(run_dir: str | os.PathLike, overrides: dict[str, Any]) -> Config:
    """The config of the run in ``run_dir``, with only the keys in RESUMABLE_KEYS overridable
    (not yet resolved, nor written: ``gankit.api`` resolves it, the lifecycle saves it)."""
    run, path = RunDir(run_dir), Path(run_dir)
    if not run.is_run():
        raise GankitError(f"cannot resume {path}: no run there (no config.yaml); check the path")
    cfg = run.config()
    if run.last_checkpoint() is None:
        raise GankitError(f"cannot resume {path}: it has no checkpoint yet; start it again without --resume")
    changed = {k: v for k, v in overrides.items() if k not in RESUMABLE_KEYS}
    by_key = options_by_key()
    for key, value in changed.items():
        opt = by_key[key]
        if cfg.get(opt.dotted) != coerce(opt, value, "command line"):
            raise GankitError(
                f"{opt.dotted} cannot change when resuming {path} (it is part of what the run is); only "
                f"{', '.join(by_key[k].dotted for k in sorted(RESUMABLE_KEYS))} can. Start a new run to "
                "change it"
            )
    cfg = apply_mapping(cfg, {k: v for k, v in overrides.items() if k in RESUMABLE_KEYS}, "command line",
                        user=True)
    cfg.log.out = str(path)
    return cfg


def save_config(cfg: Config) -> None:
    """Write the run's config.yaml (a resumed run's, with the keys changed at resume)."""
    atomic_write_text(RunDir(str(cfg.log.out)).config_path, cfg.to_yaml())
