"""Self-describing, atomic, verified checkpoints: tensors in safetensors, everything else in JSON.

Layout of a run's ``checkpoints/`` folder::

    step-000500/
        model.safetensors   G.* and D.* weights and buffers; its metadata holds the config, so a
                            checkpoint alone can rebuild G (``gankit sample CKPT``)
        train.safetensors   optimiser moments, RNG states, the fixed latent vectors
        state.json          step, data position, elapsed time, optimiser hyper-parameters, versions,
                            and the sha256 of both .safetensors files
    step-001000/ ...
    last -> step-001000     a symbolic link, replaced atomically
    best -> step-000500     with --eval-every: the best checkpoint by --eval-metric, never pruned

A checkpoint is written into a hidden temporary folder, every file fsynced, and only then renamed
to ``step-NNNNNN``; ``last`` moves after that. A save killed at any moment (SIGKILL, a full disk)
therefore leaves the previous checkpoint whole and ``last`` pointing at it. Loading never unpickles:
safetensors and JSON only.

Loading verifies before anything uses a checkpoint (``load_checkpoint``): only regular files are
read (a FIFO, a device or a link loop is refused, never waited on); state.json's keys have their
types and ranges (``gankit.validate``); each .safetensors file has the checksum state.json recorded
(checkpoints saved before checksums load without); every floating-point tensor is finite; and the
task's own check (``check``: its metadata, its tensors' names and shapes) passes. Only then is a
checkpoint *intact*. A damaged one is a ``Damaged`` error naming the file, what is wrong and the
newest intact checkpoint to use instead; ``--resume`` falls back to that one by itself
(``newest_intact``), keeping the damaged one aside (``set_aside``).

Finding checkpoints (``step_dirs``, ``resolve_link``, ``resolve_last``) is path logic and lives in
``gankit.rundir``, which reads a run without torch; it is imported here.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn
from torch.optim import Optimizer

from gankit.config import config_from_dict
from gankit.errors import GankitError, display_path, escape_text, short_repr
from gankit.fsutil import DiskFull, disk_full_reason, fsync_dir, is_disk_full
from gankit.rundir import resolve_last, resolve_link, step_dirs, step_of
from gankit.validate import Damaged, Fields, kind_of, read_regular

FORMAT = 1
STATE, MODEL, TRAIN = "state.json", "model.safetensors", "train.safetensors"
PRECISIONS = ("fp32", "bf16", "fp16")
MAX_STATE_BYTES = 64 << 20  # a state.json is a few kB; more is not one gankit wrote

#: a task's (or a reader's) own check of a loaded checkpoint: raises ``Damaged``
Check = Callable[["Checkpoint"], None]


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

    @property
    def sampling_G(self) -> str:
        """The prefix of the generator to sample or predict with: ``G_ema``, the moving average of
        G, where the run kept one (--ema; it is what the run's grids, report and evaluation showed),
        else ``G``."""
        return "G_ema" if any(k.startswith("G_ema.") for k in self.model) else "G"

    def module_state(self, prefix: str) -> dict[str, Tensor]:
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.model.items() if k.startswith(p)}

    def fields(self, key: str | None = None) -> Fields:
        """state.json (or its object under ``key``) for checking: ``ckpt.fields().integer("step")``."""
        f = Fields(self.meta, self.path / STATE)
        if key is None:
            return f
        sub = f.object(key)
        assert sub is not None
        return sub


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


def _write_safetensors(path: Path, tensors: dict[str, Tensor], metadata: dict[str, str]) -> str:
    """Write ``tensors`` as a safetensors file, fsynced; returns the sha256 of its bytes."""
    data = safetensors_bytes({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, metadata=metadata)
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    return hashlib.sha256(data).hexdigest()


def _write_json(path: Path, obj: Any) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.flush()
        os.fsync(f.fileno())


def clean_partial(ckpt_dir: Path) -> None:
    """Remove temporaries left by a save that was killed or failed (the trainer calls this holding
    the run's lock: no other save is under way). A checkpoint set aside by a re-save that died
    half-way through its swap (``.old-step-N-PID`` with no ``step-N``) is put back first."""
    if ckpt_dir.is_dir():
        for p in sorted(ckpt_dir.iterdir()):
            if p.name.startswith(".old-") and p.is_dir() and not p.is_symlink():
                final = ckpt_dir / p.name[len(".old-"):].rpartition("-")[0]
                if final.name.startswith("step-") and not os.path.lexists(final):
                    with contextlib.suppress(OSError):
                        os.replace(p, final)
                    continue  # put back, or (if that failed) kept for the next try
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
        sha_model = _write_safetensors(tmp / MODEL, model, {"format": str(FORMAT), "step": str(step),
                                                            "config": json.dumps(meta["config"])})
        sha_train = _write_safetensors(tmp / TRAIN, train, {"format": str(FORMAT), "step": str(step)})
        meta["sha256"] = {MODEL: sha_model, TRAIN: sha_train}  # verified when loaded
        _write_json(tmp / STATE, meta)
        fsync_dir(tmp)
        if final.exists():  # re-saving a step (a resumed run ending where it resumed): swap
            _swap_in(tmp, final, ckpt_dir / f".old-{name}-{os.getpid()}")
        else:
            os.replace(tmp, final)
        _point(ckpt_dir, "last", name)
    except BaseException as e:  # a full disk, an unwritable folder, a second Ctrl-C: no partial save stays
        shutil.rmtree(tmp, ignore_errors=True)
        old = ckpt_dir / f".old-{name}-{os.getpid()}"
        if old.is_dir() and not final.exists():  # failed half-way through the swap: put it back
            with contextlib.suppress(OSError):
                os.replace(old, final)
        full = is_disk_full(e)  # an OSError, or a library's error that says so (SafetensorError)
        if not (full or isinstance(e, OSError)):
            raise
        prev = resolve_last(ckpt_dir)
        kept = f"; the previous checkpoint {prev.name} is kept" if prev else ""
        why = (e.strerror if isinstance(e, OSError) else None) or str(e)
        if full:
            why = "No space left on device" if disk_full_reason(e) == "disk full" else "Disk quota exceeded"
        message = (f"could not write checkpoint {final}: {why}{kept}. "
                   "Free some disk space (or choose another log.out) and resume the run")
        if full:
            raise DiskFull(final, e, message) from None
        raise GankitError(message) from None
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
    dest = ckpt_dir / link_name
    if dest.is_dir() and not dest.is_symlink():
        # a run copied by following links (cp -L, shutil.copytree) holds a folder here, a copy of the
        # checkpoint it named: a link cannot replace a folder
        _swap_in(link, dest, ckpt_dir / f".old-{link_name}-{os.getpid()}")
    else:
        os.replace(link, dest)
    fsync_dir(ckpt_dir)


def _swap_in(new: Path, folder: Path, aside: Path) -> None:
    """Put ``new`` where the folder ``folder`` is (os.replace cannot replace a folder that is not
    empty, nor a folder by a link): the folder moves to ``aside`` first, and is removed after."""
    os.replace(folder, aside)
    os.replace(new, folder)
    shutil.rmtree(aside, ignore_errors=True)


def mark_best(ckpt_dir: Path, step: int) -> None:
    """Point ``best`` at the checkpoint of ``step`` (which must exist); it is never pruned."""
    _point(ckpt_dir, "best", f"step-{step:06d}")


# --------------------------------------------------------------------------- finding


def _is_checkpoint_folder(p: Path) -> bool:
    return p.is_dir() and any(os.path.lexists(p / name) for name in (STATE, MODEL))


def _link_problem(link: Path) -> str:
    """Why the symbolic link ``link`` leads nowhere usable (a loop, a target that is gone)."""
    try:
        os.stat(link)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "it is a symbolic link loop"
        try:
            target = os.readlink(link)
        except OSError:
            target = "?"
        return f"it points at {display_path(target)}, which does not exist"
    return "it is not a checkpoint folder"


def _last(ckpt_dir: Path) -> Path | None:
    """The checkpoint ``ckpt_dir/last`` points at (``Damaged`` if the link leads nowhere: a loop,
    a target that is gone, a file), or without the link the newest numbered checkpoint, or None."""
    link = ckpt_dir / "last"
    if not os.path.lexists(link):
        found = step_dirs(ckpt_dir)
        return found[-1][1] if found else None
    if not link.is_dir():
        raise Damaged(link, _link_problem(link))
    return Path(os.path.realpath(link))


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder from a run dir, a ``checkpoints`` dir, a checkpoint dir or a file in one.
    A ``last`` link that leads nowhere is ``Damaged``; without the link, the newest checkpoint."""
    p = Path(path)
    if not p.exists():
        if os.path.lexists(p):
            raise Damaged(p, _link_problem(p))
        raise GankitError(f"{display_path(p)} does not exist; give a run directory or a checkpoint folder")
    if not p.is_dir():  # a file of a checkpoint (a FIFO there is refused when it is read)
        p = p.parent
    if _is_checkpoint_folder(p):
        return p
    for ckpt_dir in (p / "checkpoints", p):
        found = _last(ckpt_dir) if ckpt_dir.is_dir() else None
        if found is not None:
            return found
    raise GankitError(f"{display_path(p)} holds no checkpoint yet (looked for checkpoints/last); "
                      "train longer than log.checkpoint_every steps, or check the path")


def checkpoint_is(path: str | os.PathLike, by_meta: Callable[[dict[str, Any]], bool],
                  by_arch: Callable[[str], bool]) -> bool:
    """Whether the run directory or checkpoint at ``path`` is of one kind of run: ``by_meta`` of its
    state.json, or, where that cannot be read (no checkpoint yet, a damaged one), ``by_arch`` of the
    ``model.arch`` in the run's config.yaml (the run is ``path``, or a folder up to two above it)."""
    from gankit.rundir import RunDir  # the config's registries: only when a state.json fails

    try:
        meta = json.loads(read_regular(find_checkpoint(path) / STATE, 64 << 20))
        if isinstance(meta, dict):
            return by_meta(meta)
    except (GankitError, OSError, ValueError, RecursionError):
        pass
    for run_dir in (Path(path), Path(path).parent, Path(path).parent.parent):
        run = RunDir(run_dir)
        if run.is_run():
            try:
                return by_arch(run.config().model.arch)
            except GankitError:
                return False
    return False


# --------------------------------------------------------------------------- reading and verifying


def _read(path: Path, limit: int | None = None) -> bytes:
    try:
        return read_regular(path, limit)
    except FileNotFoundError:
        raise Damaged(path, "it is missing") from None


def _short(e: BaseException, limit: int = 160) -> str:
    """An exception's message, its first clause, cut to ``limit`` characters, safe to print."""
    text = escape_text(str(e).split(";")[0].strip() or type(e).__name__)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def check_state(meta: Any, path: Path, folder: Path | None = None) -> dict[str, Any]:
    """state.json's keys that every checkpoint has, whatever its task, with their types and ranges
    (``Damaged`` naming the key otherwise); the task's own are checked by its ``check``."""
    f = Fields(meta, path)
    fmt = f.integer("format")
    if fmt > FORMAT:
        raise GankitError(f"checkpoint {display_path(path.parent)} has format {fmt}, and this gankit reads "
                          f"{FORMAT}: it was written by a newer gankit; update gankit to use it")
    if fmt != FORMAT:
        raise f.bad("format", f"must be {FORMAT}, got {kind_of(fmt)}")
    step = f.integer("step")
    named = step_of(folder) if folder is not None else None
    if named is not None and named != step:
        raise f.bad("step", f"is {step}, but the checkpoint's folder is {display_path(folder.name)}")  # type: ignore[union-attr]
    f.number("elapsed", lo=0)
    f.integer("real_batches", default=0)  # every task gankit ships has one; required by them
    f.integer("rollbacks", hi=1_000_000, default=0)
    f.string("precision", PRECISIONS, default=None)
    f.string("task", default=None)
    f.object("versions", default=None)
    best = f.object("best", default=None)
    if best is not None:
        best.string("key")
        best.integer("step")
        value = best.obj.get("value")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise best.bad("value", f"must be a number, got {kind_of(value)}")
    sums = f.object("sha256", default=None)
    if sums is not None:
        for name in (MODEL, TRAIN):
            digest = sums.string(name, default=None)
            if digest is not None and (len(digest) != 64 or digest.strip("0123456789abcdef")):
                raise sums.bad(name, f"must be a sha256 (64 hex digits), got {kind_of(digest)}")
    optim = f.object("optim")  # every task's optimisers: {name: {param_groups, scalars}}, scalers
    assert optim is not None
    for name, _ in optim.items():
        part = optim.object(name, default=None)
        if part is not None and name != "scalers":
            for i, group in enumerate(part.array("param_groups", 1, 1024)):
                Fields(group, path, f"{part.where}.param_groups[{i}]")
            part.object("scalars")
    cfg = f.object("config")
    assert cfg is not None
    model = cfg.object("model")
    assert model is not None
    model.string("arch")
    try:
        config_from_dict(cfg.obj, "config")
    except GankitError as e:
        # config.model.width: a key of this file's config, not a flag of this command
        msg = re.sub(r"(?<![\w.])((?:data|model|train|reg|log|eval|translate)\.\w)", r"config.\1",
                     str(e).removeprefix("config: "))
        raise Damaged(path, f"its 'config' is not a valid config ({_short(GankitError(msg), 200)})") from None
    return f.obj


def _read_state(folder: Path) -> dict[str, Any]:
    path = folder / STATE
    raw = _read(path, MAX_STATE_BYTES)
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise Damaged(path, "it is not UTF-8 text (state.json is JSON)") from None
    except (ValueError, RecursionError) as e:
        raise Damaged(path, f"it is not valid JSON ({_short(e)})") from None
    return check_state(meta, path, folder)


def _header(raw: bytes) -> dict[str, Any]:
    """The ``__metadata__`` of a safetensors file's JSON header ({} if none)."""
    try:
        n = int.from_bytes(raw[:8], "little")
        md = json.loads(raw[8:8 + n]).get("__metadata__") or {}
    except (ValueError, AttributeError, RecursionError):
        return {}
    return md if isinstance(md, dict) else {}


def _tensors(folder: Path, name: str, meta: dict[str, Any]) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """The tensors of ``folder/name`` and its header's metadata, after its checksum (if state.json
    recorded one) and before any use: every floating-point tensor finite."""
    path = folder / name
    raw = _read(path)
    want = (meta.get("sha256") or {}).get(name)
    if want is not None and hashlib.sha256(raw).hexdigest() != want:
        raise Damaged(path, "checksum mismatch (its sha256 is not the one state.json recorded when it was "
                            "saved: its bytes changed since)")
    try:
        tensors = load_safetensors(raw)
    except Exception as e:  # noqa: BLE001 - any bytes may be here: each parse failure is damage
        raise Damaged(path, f"it is not a valid safetensors file ({_short(e)})") from None
    for key, t in tensors.items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise Damaged(path, f"its tensor {short_repr(key)} holds {bad} NaN or infinite value(s) of "
                                f"{t.numel()} (gankit saves only finite weights)")
    return tensors, _header(raw)


def _load(folder: Path, with_train_state: bool, check: Check | None) -> Checkpoint:
    """Read and verify the checkpoint in ``folder`` (see the module docstring): ``Damaged`` unless intact."""
    meta = _read_state(folder)
    model, header = _tensors(folder, MODEL, meta)
    if "config" in header:  # written with the weights: a state.json edited since disagrees
        try:
            saved = json.loads(header["config"])
        except ValueError:
            saved = None
        if saved is not None and saved != meta["config"]:
            raise Damaged(folder / STATE, f"its 'config' is not the one {MODEL} was saved with (in the "
                                          "weights' metadata)")
    if str(header.get("step", meta["step"])) != str(meta["step"]):
        raise Damaged(folder / STATE, f"its 'step' is {meta['step']}, but {MODEL} was saved at step "
                                      f"{short_repr(header['step'])}")
    train = _tensors(folder, TRAIN, meta)[0] if with_train_state else None
    ckpt = Checkpoint(folder, meta, model, train)
    if check is not None:
        check(ckpt)
    return ckpt


def _why(e: Damaged, folder: Path) -> str:
    """What is wrong with the checkpoint ``folder``, naming its file."""
    return f"{display_path(e.path.name)}: {e.reason}" if e.path.parent == folder else e.reason


def _instead(ckpt_dir: Path, damaged: Path | None, with_train_state: bool, check: Check | None) -> str:
    """What to do about a damaged checkpoint: use the newest intact one beside it, if any."""
    others = [p for _, p in reversed(step_dirs(ckpt_dir))
              if damaged is None or os.path.realpath(p) != os.path.realpath(damaged)]
    for p in others:
        try:
            c = _load(p, with_train_state, check)
        except GankitError:
            continue
        return (f"the newest intact checkpoint is {display_path(p)} (step {c.step}): give that path instead "
                "(gankit train --resume falls back to it by itself); the damaged one is left as it is")
    if others or ckpt_dir.name == "checkpoints":
        return (f"no intact checkpoint is left in {display_path(ckpt_dir)}: restore the run from a backup, "
                "or train a new one")
    return "restore it from a backup, or use another checkpoint"


def load_checkpoint(path: str | os.PathLike, with_train_state: bool = True, check: Check | None = None) -> Checkpoint:
    """Load and verify a checkpoint (a run dir's ``last``, or the folder given), never unpickling.

    ``with_train_state``: also train.safetensors (resuming needs it, sampling does not). ``check``:
    the caller's own check of the loaded checkpoint (its metadata, its tensors), which raises
    ``Damaged``. A damaged checkpoint is ``Damaged``: the file, what is wrong, and the newest intact
    checkpoint to use instead."""
    folder = None
    try:
        folder = find_checkpoint(path)
        return _load(folder, with_train_state, check)
    except Damaged as e:
        ckpt_dir = e.path.parent if folder is None else folder.parent
        raise e.with_fix(_instead(ckpt_dir, folder, with_train_state, check)) from None


def newest_intact(run_dir: str | os.PathLike, check: Check | None = None,
                  with_train_state: bool = True) -> tuple[Checkpoint, list[tuple[Path, str]]]:
    """The checkpoint to resume the run in ``run_dir`` from: the one ``last`` names if it is intact,
    else the newest intact numbered one; with the damaged ones passed over, each with what is wrong
    (none is deleted; ``set_aside`` keeps them out of the resumed run's way). ``GankitError`` if
    no checkpoint is intact."""
    p = Path(run_dir)
    ckpt_dir = p / "checkpoints" if (p / "checkpoints").is_dir() else p
    skipped: list[tuple[Path, str]] = []
    candidates: list[Path] = []
    try:
        last = _last(ckpt_dir)
    except Damaged as e:
        skipped.append((e.path, e.reason))
        last = None
    if last is not None:
        candidates.append(last)
    candidates += [q for _, q in reversed(step_dirs(ckpt_dir))
                   if last is None or os.path.realpath(q) != os.path.realpath(last)]
    for folder in candidates:
        try:
            return _load(folder, with_train_state, check), skipped
        except Damaged as e:
            skipped.append((folder, _why(e, folder)))
    if not skipped:
        raise GankitError(f"{display_path(p)} holds no checkpoint yet; start the run again without --resume")
    raise GankitError(
        f"no intact checkpoint in {display_path(ckpt_dir)} to resume from: "
        + "; ".join(f"{display_path(q.name)} is damaged ({why})" for q, why in skipped)
        + ". Restore the checkpoints from a backup, or start a new run; the damaged ones are left as they are")


def set_aside(ckpt: Checkpoint, skipped: list[tuple[Path, str]]) -> list[str]:
    """Resuming from ``ckpt`` past the damaged checkpoints ``skipped`` (``newest_intact``): rename
    each damaged folder ``step-NNNNNN.damaged`` (kept, never deleted: left in place, the resumed run
    would replace it when it saves that step again, and pruning would delete it), point ``last`` at
    ``ckpt``, and return one line per damaged one saying what was wrong and where it is kept."""
    ckpt_dir = ckpt.path.parent
    lines = []
    for path, why in skipped:
        kept = f"{display_path(path.name)} now points at {ckpt.path.name}"
        if path.name != "last" and step_of(path) is not None and path.parent == ckpt_dir:
            aside = ckpt_dir / f"{path.name}.damaged"
            n = 1
            while os.path.lexists(aside):
                n += 1
                aside = ckpt_dir / f"{path.name}.damaged-{n}"
            try:
                os.rename(path, aside)
                kept = f"it is kept, renamed {display_path(aside.name)}"
            except OSError as e:
                kept = f"it is left where it is ({e.strerror})"
        lines.append(f"checkpoint {display_path(path)} is damaged ({why}); resuming from {ckpt.path.name}, "
                     f"the newest intact checkpoint (step {ckpt.step}); {kept}")
    if skipped and os.path.realpath(ckpt_dir / "last") != os.path.realpath(ckpt.path):
        with contextlib.suppress(OSError):
            _point(ckpt_dir, "last", ckpt.path.name)
    return lines


# --------------------------------------------------------------------------- checking a task's part


def check_module(ckpt: Checkpoint, prefix: str, module: nn.Module) -> None:
    """``Damaged`` unless model.safetensors holds every tensor of ``module`` (as this run's config
    builds it) under ``prefix.``, each of its shape, and nothing else under that prefix."""
    want, got, path = module.state_dict(), ckpt.module_state(prefix), ckpt.path / MODEL
    missing = [k for k in want if k not in got]
    if missing:
        more = f" and {len(missing) - 1} more of {prefix}'s tensors" if len(missing) > 1 else ""
        raise Damaged(path, f"it lacks the tensor {prefix}.{missing[0]}{more}")
    extra = [k for k in got if k not in want]
    if extra:
        raise Damaged(path, f"it holds a tensor {short_repr(prefix + '.' + extra[0])} that {prefix} does not have")
    for k, v in want.items():
        t = got[k]
        if tuple(t.shape) != tuple(v.shape) or t.is_floating_point() != v.is_floating_point():
            raise Damaged(path, f"its tensor {prefix}.{k} is {t.dtype} {list(t.shape)}, where {prefix} as "
                                f"its config builds it has {v.dtype} {list(v.shape)}")


def load_module(ckpt: Checkpoint, prefix: str, module: nn.Module) -> None:
    """Load ``module`` from the tensors under ``prefix.``, checked first (:func:`check_module`):
    weights that do not fit the networks of the checkpoint's own config are ``Damaged``."""
    check_module(ckpt, prefix, module)
    try:
        module.load_state_dict(ckpt.module_state(prefix))
    except RuntimeError as e:
        raise Damaged(ckpt.path / MODEL, f"its weights do not fit the networks of its own config ({e})") from None


def check_train_tensor(ckpt: Checkpoint, key: str, shape: tuple[int, ...] | torch.Size | None = None,
                       dtype: torch.dtype | None = None, floating: bool = False) -> Tensor:
    """The tensor ``key`` of train.safetensors, ``Damaged`` if absent or of another shape or dtype."""
    path = ckpt.path / TRAIN
    tensors = ckpt.train or {}
    if key not in tensors:
        raise Damaged(path, f"it lacks the tensor {key}")
    t = tensors[key]
    if shape is not None and tuple(t.shape) != tuple(shape):
        raise Damaged(path, f"its tensor {key} has shape {list(t.shape)}, not {list(shape)}")
    if (dtype is not None and t.dtype != dtype) or (floating and not t.is_floating_point()):
        raise Damaged(path, f"its tensor {key} is {t.dtype}, not {dtype or 'floating point'}")
    return t


def check_rng(ckpt: Checkpoint, key: str, generator: torch.Generator) -> None:
    """``Damaged`` unless train.safetensors holds a state for ``generator`` under ``key``."""
    state = generator.get_state()
    check_train_tensor(ckpt, key, state.shape, state.dtype)


def check_players(ckpt: Checkpoint, nets: dict[str, nn.Module], optimizers: dict[str, Optimizer]) -> None:
    """``Damaged`` unless the checkpoint's ``real_batches`` is a count, its weights fit ``nets``
    (by prefix) and its optimiser states fit ``optimizers`` (by prefix): what every two-player task
    (translators, text -> image, next frame, new angles) saves besides its own random streams."""
    ckpt.fields().integer("real_batches")
    for name, net in nets.items():
        check_module(ckpt, name, net)
    for name, opt in optimizers.items():
        check_optimizer(ckpt, name, opt)


def load_players(ckpt: Checkpoint, nets: dict[str, nn.Module], optimizers: dict[str, Optimizer]) -> int:
    """Load what :func:`check_players` checked into ``nets`` and ``optimizers``; returns the
    checkpoint's ``real_batches`` (the data order's position)."""
    assert ckpt.train is not None
    for name, net in nets.items():
        net.load_state_dict(ckpt.module_state(name))
    for name, opt in optimizers.items():
        optimizer_from_flat(name, opt, ckpt.train, ckpt.meta["optim"][name])
    return int(ckpt.meta["real_batches"])


def check_optimizer(ckpt: Checkpoint, prefix: str, opt: Optimizer) -> None:
    """``Damaged`` unless state.json's ``optim.<prefix>`` and train.safetensors' ``<prefix>.*``
    tensors are a state ``opt`` can load: its parameter groups with their options of the right
    types, and moments of its parameters' shapes, the same for every parameter that has any."""
    optim = ckpt.fields("optim")
    o = optim.object(prefix)
    assert o is not None
    live = opt.state_dict()["param_groups"]
    groups = o.array("param_groups", len(live), len(live))
    shapes: dict[int, tuple[int, ...]] = {}
    for i, (g, lg) in enumerate(zip(groups, live, strict=True)):
        gf = Fields(g, o.path, f"{o.where}.param_groups[{i}]")
        if gf.obj.get("params") != lg["params"]:
            raise gf.bad("params", f"must be {short_repr(lg['params'])} (this run's parameters), got "
                                   f"{kind_of(gf.obj.get('params'))}")
        gf.number("lr", lo=0)
        for key, v0 in lg.items():
            if key in ("params", "lr") or key not in gf.obj:
                continue
            if isinstance(v0, bool):
                gf.boolean(key)
            elif isinstance(v0, int | float):
                gf.number(key, lo=0)
            elif isinstance(v0, tuple | list):
                for b in gf.numbers(key, len(v0), len(v0)):
                    if key == "betas" and not 0 <= b < 1:
                        raise gf.bad(key, f"must hold numbers in [0, 1), got {short_repr(gf.obj[key])}")
            elif v0 is None and gf.obj[key] is not None:
                gf.boolean(key)
        for key in ("base_lr", "initial_lr"):
            gf.number(key, lo=0, default=None)
        for pid, q in zip(lg["params"], opt.param_groups[i]["params"], strict=True):
            shapes[pid] = tuple(q.shape)
    names: dict[int, set[str]] = {}
    scalars = o.object("scalars")
    assert scalars is not None
    for pid_text, extra in scalars.items():
        if not pid_text.isdigit() or int(pid_text) not in shapes:
            raise scalars.bad(short_repr(pid_text), "is not one of this run's parameters")
        ef = Fields(extra, o.path, f"{scalars.where}.{pid_text}")
        for k in list(ef.obj):
            ef.number(k)
            names.setdefault(int(pid_text), set()).add(k)
    path = ckpt.path / TRAIN
    for key, t in (ckpt.train or {}).items():
        if not key.startswith(prefix + "."):
            continue
        pid_text, _, name = key[len(prefix) + 1:].partition(".")
        if not pid_text.isdigit() or int(pid_text) not in shapes or not name:
            raise Damaged(path, f"its tensor {short_repr(key)} is not a moment of one of {prefix}'s parameters")
        pid = int(pid_text)
        if t.dim() > 0 and tuple(t.shape) != shapes[pid]:
            raise Damaged(path, f"its tensor {key} has shape {list(t.shape)}, but its parameter has "
                                f"{list(shapes[pid])}")
        names.setdefault(pid, set()).add(name)
    if names:
        full = set().union(*names.values())
        for pid, have in sorted(names.items()):
            if have != full:
                raise Damaged(path, f"it lacks the tensor {prefix}.{pid}.{sorted(full - have)[0]} (the other "
                                    f"parameters of {prefix} have one)")


@contextlib.contextmanager
def restoring(ckpt: Checkpoint) -> Any:
    """Around a task's ``restore``: what a check let through and the restore cannot take is one
    clear error naming the checkpoint, not a traceback."""
    try:
        yield
    except (KeyError, ValueError, TypeError, RuntimeError, IndexError, AttributeError) as e:
        raise GankitError(f"checkpoint {display_path(ckpt.path)} cannot be restored into this run "
                          f"({type(e).__name__}: {_short(e)}); point checkpoints/last at an older checkpoint "
                          "and resume, or start a new run") from None


# --------------------------------------------------------------------------- random states


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
