"""Self-describing, atomic checkpoints: tensors in safetensors, everything else in JSON.

Layout of a run's ``checkpoints/`` folder::

    step-000500/
        model.safetensors   G.* and D.* weights and buffers; its metadata holds the config, so a
                            checkpoint alone can rebuild G (``gankit sample CKPT``)
        train.safetensors   optimiser moments, RNG states, the fixed latent vectors
        state.json          step, data position, elapsed time, optimiser hyper-parameters, versions
    step-001000/ ...
    last -> step-001000     a symbolic link, replaced atomically
    best -> step-000500     with --eval-every: the best checkpoint by --eval-metric, never pruned

A checkpoint is written into a hidden temporary folder, every file fsynced, and only then renamed
to ``step-NNNNNN``; ``last`` moves after that. A save killed at any moment (SIGKILL, a full disk)
therefore leaves the previous checkpoint whole and ``last`` pointing at it. Loading never unpickles:
safetensors and JSON only.

Finding checkpoints (``step_dirs``, ``resolve_link``, ``resolve_last``) is path logic and lives in
``gankit.rundir``, which reads a run without torch; it is imported here.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor
from torch.optim import Optimizer

from gankit.errors import GankitError
from gankit.fsutil import fsync_dir
from gankit.rundir import resolve_last, resolve_link, step_dirs

FORMAT = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: ``model`` (G.*, D.*), ``train`` (optimisers, RNG) and ``meta`` (JSON)."""

    path: Path
    meta: dict[str, Any]
    model: dict[str, Tensor]
    train: dict[str, Tensor] | None

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    def module_state(self, prefix: str) -> dict[str, Tensor]:
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.model.items() if k.startswith(p)}


# --------------------------------------------------------------------------- optimiser <-> flat


def optimizer_to_flat(prefix: str, opt: Optimizer) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Split an optimiser's state_dict into tensors (for safetensors) and JSON."""
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"{prefix}.{pid}.{k}"] = v.detach().contiguous()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_flat(prefix: str, opt: Optimizer, tensors: dict[str, Tensor], meta: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    p = prefix + "."
    for key, v in tensors.items():
        if key.startswith(p):
            pid, name = key[len(p):].split(".", 1)
            state.setdefault(int(pid), {})[name] = v
    for pid, extra in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(extra)
    groups = []
    for g in meta["param_groups"]:
        g = dict(g)
        if isinstance(g.get("betas"), list):
            g["betas"] = tuple(g["betas"])
        groups.append(g)
    opt.load_state_dict({"state": state, "param_groups": groups})
    # safetensors stores contiguous tensors; give each moment its parameter's memory layout again
    # (channels-last convolutions), which the fused Adam kernel needs to compute the same update.
    params = [q for g in opt.param_groups for q in g["params"]]
    for q in params:
        for name, v in opt.state.get(q, {}).items():
            if isinstance(v, Tensor) and v.shape == q.shape and v.stride() != q.stride():
                opt.state[q][name] = torch.empty_like(q).copy_(v)


# --------------------------------------------------------------------------- writing


def _write_safetensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path), metadata=metadata)
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def clean_partial(ckpt_dir: Path) -> None:
    """Remove temporaries left by a save that was killed."""
    if ckpt_dir.is_dir():
        for p in ckpt_dir.iterdir():
            if p.name.startswith((".tmp-", ".old-")) or p.name in (".last-tmp", ".best-tmp"):
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    with contextlib.suppress(OSError):
                        p.unlink()


def save_checkpoint(
    ckpt_dir: Path,
    step: int,
    model: dict[str, Tensor],
    train: dict[str, Tensor],
    meta: dict[str, Any],
    keep: int,
) -> Path:
    """Write checkpoint ``step`` atomically, point ``last`` at it, keep the ``keep`` newest."""
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:06d}"
    final = ckpt_dir / name
    tmp = ckpt_dir / f".tmp-{name}-{os.getpid()}"
    meta = {"format": FORMAT, "step": step, **meta}
    try:
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        _write_safetensors(tmp / "model.safetensors", model,
                           {"format": str(FORMAT), "step": str(step), "config": json.dumps(meta["config"])})
        _write_safetensors(tmp / "train.safetensors", train, {"format": str(FORMAT), "step": str(step)})
        _write_json(tmp / "state.json", meta)
        fsync_dir(tmp)
        if final.exists():  # re-saving a step (a resumed run ending where it resumed): swap
            old = ckpt_dir / f".old-{name}-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
        _point(ckpt_dir, "last", name)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        prev = resolve_last(ckpt_dir)
        kept = f"; the previous checkpoint {prev.name} is intact" if prev else ""
        raise GankitError(
            f"could not write checkpoint {final}: {e.strerror or e}{kept}. "
            "Free some disk space (or choose another log.out) and resume the run"
        ) from None
    # Prune: the newest ``keep`` numbered checkpoints stay, and never one that ``best`` names.
    best = resolve_link(ckpt_dir, "best")
    for _, p in step_dirs(ckpt_dir)[:-keep]:
        if p.name != name and (best is None or p.name != best.name):
            shutil.rmtree(p, ignore_errors=True)
    return final


def _point(ckpt_dir: Path, link_name: str, target: str) -> None:
    """Atomically make ``ckpt_dir/link_name`` a symbolic link to ``target`` (a sibling folder)."""
    link = ckpt_dir / f".{link_name}-tmp"
    with contextlib.suppress(FileNotFoundError):
        link.unlink()
    os.symlink(target, link)
    os.replace(link, ckpt_dir / link_name)
    fsync_dir(ckpt_dir)


def mark_best(ckpt_dir: Path, step: int) -> None:
    """Point ``best`` at the checkpoint of ``step`` (which must exist); it is never pruned."""
    _point(ckpt_dir, "best", f"step-{step:06d}")


# --------------------------------------------------------------------------- reading


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder from a run dir, a ``checkpoints`` dir, a checkpoint dir or a file in one."""
    p = Path(path)
    if not p.exists():
        raise GankitError(f"{p} does not exist; give a run directory or a checkpoint folder")
    if p.is_file():
        p = p.parent
    if (p / "state.json").is_file() and (p / "model.safetensors").is_file():
        return p
    for ckpt_dir in (p / "checkpoints", p):
        found = resolve_last(ckpt_dir) if ckpt_dir.is_dir() else None
        if found is not None:
            return found
    raise GankitError(f"{p} holds no checkpoint yet (looked for checkpoints/last); "
                      "train longer than log.checkpoint_every steps, or check the path")


def load_checkpoint(path: str | os.PathLike, with_train_state: bool = True) -> Checkpoint:
    """Load a checkpoint without unpickling anything."""
    ckpt = find_checkpoint(path)
    try:
        meta = json.loads((ckpt / "state.json").read_text())
        model = load_file(str(ckpt / "model.safetensors"))
        train = load_file(str(ckpt / "train.safetensors")) if with_train_state else None
    except (OSError, ValueError, SafetensorError) as e:
        raise GankitError(f"checkpoint {ckpt} is damaged ({e}); use an older one from its folder") from None
    if meta.get("format") != FORMAT:
        raise GankitError(f"checkpoint {ckpt} has format {meta.get('format')}, this gankit reads {FORMAT}")
    return Checkpoint(ckpt, meta, model, train)


def rng_state_tensors(z_gen: torch.Generator) -> dict[str, Tensor]:
    out = {"rng.torch": torch.get_rng_state(), "rng.z": z_gen.get_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        out["rng.cuda"] = torch.cuda.get_rng_state()
    return out


def restore_rng(tensors: dict[str, Tensor], z_gen: torch.Generator) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    z_gen.set_state(tensors["rng.z"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
