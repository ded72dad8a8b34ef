"""The training lifecycle: one loop around every task, in labelled sections.

    1. config and run directory        (new: checked first, created once the task is built;
                                        resume: the run's own config, a few keys changeable)
    2. the task: data, networks, RNG   (``Task.setup``; a resumed run restores its checkpoint)
    3. iterations                      (``Task.iteration``: for the GAN, Goodfellow et al.'s
                                        Algorithm 1; the learning-rate schedule set before each)
    4. cadence                         every log_every: finite check, metrics.jsonl, progress bar
                                       every diagnose_every: the task's probe -> failure rules
                                       every sample_every: the task's sample grid
                                       every eval_every: the task's score -> ``best`` checkpoint
                                       every checkpoint_every, at the end, on Ctrl-C: checkpoint
    5. the report

Around it, for every task alike: logged values stay on the device between log steps (one host
synchronisation per log, none per step); a NaN or Inf is pinned to the step it appeared and the
run rolls back to its last checkpoint with halved learning rates; under ``torchrun`` every rank
runs this loop on its shard and rank 0 writes; ``max_time`` and Ctrl-C stop with a checkpoint.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import Tensor
from tqdm import tqdm

from gankit.checkpoint import clean_partial, load_checkpoint, mark_best, save_checkpoint
from gankit.config import Config
from gankit.diagnosis import FAILURES, Watcher
from gankit.errors import GankitError
from gankit.rundir import MetricsLog, NullLog, RunDir
from gankit.train import distributed
from gankit.train.rundir import check_new, create_new, save_config
from gankit.train.state import check_precision, lr_factor, resolve_device, run_meta, set_lr_factor
from gankit.train.task import Context, Task
from gankit.verdict import equilibrium

MAX_ROLLBACKS = 3  # divergences a run recovers from (each halves the learning rates) before it stops


class TrainingDiverged(GankitError):
    """A loss or gradient norm became NaN or infinite, at ``step``."""

    def __init__(self, step: int, message: str) -> None:
        super().__init__(message)
        self.step = step


class Hook(Protocol):
    """Called by the lifecycle at each step boundary (tests use it to inject faults; a live view
    can use it to watch). ``logged`` may be changed in place before it is metered."""

    def after_iteration(self, step: int, logged: dict[str, Tensor]) -> None: ...


class Meter:
    """Sums of the logged quantities, kept on the device between log steps.

    Also remembers the first step whose losses or gradient norms were not finite, so a NaN is
    pinned to the step it appeared even though it is only read back every ``log_every`` steps."""

    def __init__(self, device: torch.device, step: int, d: distributed.Dist = distributed.SINGLE) -> None:
        self.d, self.device = d, device
        self.names: list[str] = []
        self.sums: Tensor | None = None
        self.n = 0
        self.step = torch.tensor(step, device=device)  # advanced on the device, no host copy
        self.first_bad = torch.tensor(-1, device=device)

    def add(self, logged: dict[str, Tensor]) -> None:
        if self.sums is None:  # the task's keys, in its order, fixed at the first iteration
            self.names = list(logged)
            self.sums = torch.zeros(len(self.names), device=self.device)
            self._checked = torch.tensor([i for i, k in enumerate(self.names)
                                          if k.startswith(("loss", "grad"))], device=self.device)
        v = torch.stack([logged[k] for k in self.names]).float()
        self.sums += v
        self.step += 1
        # a loss or a gradient norm that is NaN or infinite (an exploding norm overflows to inf)
        bad = ~torch.isfinite(v[self._checked]).all() & (self.first_bad < 0)
        self.first_bad = torch.where(bad, self.step, self.first_bad)
        self.n += 1

    def first_bad_step(self) -> int:
        """The first step since the last reset whose values were not finite, or -1 (the earliest
        on any rank, on every rank: a collective under torchrun)."""
        first_bad = self.first_bad
        if self.d.enabled:
            big = torch.iinfo(torch.int64).max
            first_bad = torch.where(first_bad < 0, big, first_bad)
            torch.distributed.all_reduce(first_bad, op=torch.distributed.ReduceOp.MIN)
            first_bad = torch.where(first_bad == big, -1, first_bad)
        return int(first_bad)

    def read(self) -> dict[str, float]:
        if self.sums is None:
            return {}
        means = distributed.all_mean(self.d, self.sums / max(self.n, 1)).tolist()  # one sync per log
        self.sums.zero_()
        self.n = 0
        return dict(zip(self.names, means, strict=True))


def diverged(step: int, last_good: int | None) -> TrainingDiverged:
    kept = (f"The last checkpoint (step {last_good}) is kept" if last_good is not None
            else "No checkpoint had been saved yet")
    return TrainingDiverged(step, (
        f"the losses became NaN or infinite at step {step}: training diverged. {kept}. Try lower "
        "learning rates (train.lr_g, train.lr_d), or train.loss nonsaturating, and start a new run"))


def rollback_seed(seed: int, rollbacks: int) -> int:
    """The seed of the random streams after rollback number ``rollbacks`` (1, 2, ...): fresh noise
    for the retried steps, and the same on every rerun of the run (a function of the run's seed)."""
    return (seed * 1_000_003 + 7_919 * rollbacks) % 2**63


def all_finite(tensors: dict[str, Tensor]) -> bool:
    """Whether every floating-point tensor is finite (a checkpoint is intact only then)."""
    return all(bool(torch.isfinite(v).all()) for v in tensors.values() if v.is_floating_point())


class StopFlag:
    """Ctrl-C asks the loop to stop at the end of the current step and save a checkpoint;
    a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc: Any) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def run(name: str, make_task: Any, cfg: Config, resume: str | Path | None = None,
        data: Any | None = None, hooks: Sequence[Hook] = ()) -> Any:
    """Train the task ``make_task(ctx)`` builds (registered as ``name``) as the resolved ``cfg``
    says; with ``resume``, continue the run in that directory (``cfg``: its config, with the keys
    changed at resume). Under ``torchrun`` this runs in every process, data-parallel."""
    d = distributed.from_env()
    distributed.init(d, resolve_device(cfg.train.device, d.local_rank))
    try:
        out = _run(d, name, make_task, cfg, resume, data, hooks)
        # Leave together: a rank that tore its process group down while rank 0 was still writing
        # the report was seen to abort in gloo ("terminate called without an active exception").
        distributed.barrier(d)
        return out
    finally:
        distributed.shutdown(d)


def _run(d: distributed.Dist, name: str, make_task: Any, cfg: Config, resume: str | Path | None,
         data: Any | None, hooks: Sequence[Hook]) -> Any:
    # ---------------------------------------------------------------- 1. config and run directory
    main = d.is_main
    assert cfg is not None
    if main:  # rank 0 owns the run directory; the others receive its config
        if resume is not None:
            save_config(cfg)  # with the keys changed at resume
        else:
            cfg = check_new(cfg)  # refuses a log.out that holds a run; creates nothing yet
    cfg = distributed.broadcast_object(d, cfg)
    run_dir = Path(str(cfg.log.out))
    run = RunDir(run_dir)
    t, lg, ev = cfg.train, cfg.log, cfg.eval
    device = resolve_device(t.device, d.local_rank)
    if device.type == "cuda":  # shapes are fixed for the run: timing cuDNN's algorithms once pays
        torch.backends.cudnn.benchmark = t.cudnn_benchmark

    # ---------------------------------------------------------------- 2. the task
    ctx = Context(cfg, device, d, run_dir)
    task: Task = make_task(ctx)
    task.setup(data)
    for line in ctx.notes if main else ():
        print(line, file=sys.stderr)
    if main:
        if resume is None:  # only now, with data and networks built, is there a run to keep
            create_new(cfg, task.resolved())
        clean_partial(run.checkpoints_dir)
    distributed.barrier(d)
    ckpt_dir = run.checkpoints_dir
    metrics = MetricsLog(run.metrics_path, run.tensorboard_dir if lg.tensorboard else None) \
        if main else NullLog()
    step, elapsed_before, best = 0, 0.0, None
    rollbacks = 0  # the run's divergences recovered from, kept in its checkpoints: a resume keeps the budget
    if resume is not None:
        ckpt = load_checkpoint(run_dir)
        task.check_resume(ckpt.meta)
        task.restore(ckpt)
        step, elapsed_before, best = ckpt.step, float(ckpt.meta["elapsed"]), ckpt.meta.get("best")
        rollbacks = int(ckpt.meta.get("rollbacks", 0))
        metrics.truncate_after(step)
        if main:
            print(f"resuming {run_dir} at step {step}", file=sys.stderr)
    if main:
        check_precision(task.precision, device, t.precision)
    last_ckpt = step  # step of the newest checkpoint on disk, once there is one:
    saved_now = resume is not None  # a resumed run starts from one; a new run has none yet
    eval_key = ev.eval_metric or (task.default_eval_key() if ev.eval_every else "")
    t0 = time.perf_counter()

    def elapsed() -> float:
        return elapsed_before + (time.perf_counter() - t0)

    def check_finite() -> None:
        bad = meter.first_bad_step()
        if bad >= 0:
            raise diverged(bad, last_ckpt if saved_now else None)

    def checkpoint() -> None:
        nonlocal last_ckpt, saved_now
        if saved_now and last_ckpt == step:
            return  # already saved at this step (e.g. just now, as the new best)
        check_finite()  # never save a diverged model (a collective under torchrun)
        if main:  # the replicas are identical: rank 0 writes for all
            model, train, meta = task.checkpoint()
            meta = run_meta(cfg, task.precision, step, elapsed(), best) | {"task": name,
                                                                           "rollbacks": rollbacks} | meta
            save_checkpoint(ckpt_dir, step, model, train, meta, lg.keep)
        distributed.barrier(d)
        last_ckpt, saved_now = step, True

    # ---------------------------------------------------------------- diagnosis (gankit.diagnosis)
    watcher = Watcher(task.diagnosis_loss, t.steps)
    for old in metrics.records() if resume is not None else ():  # warnings already given stay given
        if "event" not in old:
            watcher.add(old)
    history: list[dict[str, Any]] = []

    def record(rec: dict[str, Any]) -> None:
        """Log a record, and any failure it reveals (rank 0 decides; all ranks log nothing else)."""
        metrics.append(rec)
        history.append(rec)
        for finding in watcher.add(rec):
            metrics.append(finding.to_dict())
            history.append(finding.to_dict())
            bar.write("gankit: warning: " + finding.line(), file=sys.stderr)

    def rollback(e: TrainingDiverged) -> None:
        """Divergence: return to the last checkpoint with the learning rates of the attempt that
        diverged halved and fresh noise for the retried steps, log the event and go on. After
        MAX_ROLLBACKS in the run (resumes included), or with no intact checkpoint to return to,
        stop with the error."""
        nonlocal rollbacks, meter, t_log, step_log, step, best
        if rollbacks >= MAX_ROLLBACKS or not saved_now:
            if rollbacks:  # say what was tried before giving up
                raise TrainingDiverged(e.step, f"{e}; gankit had already rolled back {rollbacks} "
                                               f"time(s), halving the learning rates each time") from None
            raise e
        # the rates of the attempt that diverged: the checkpoint's may be higher (a second rollback
        # to the same checkpoint would otherwise retry the first one's rates, noise and data exactly)
        tried = [[g.get("base_lr", g["lr"]) for g in opt.param_groups] for opt in task.optimizers()]
        ckpt = load_checkpoint(run_dir)
        if not all_finite(ckpt.model):
            raise TrainingDiverged(e.step, f"{e}. The checkpoint of step {ckpt.step} ({ckpt.path}) "
                                           "holds non-finite weights, so there is nothing intact to "
                                           "roll back to") from None
        rollbacks += 1
        task.restore(ckpt)
        step, best = ckpt.step, ckpt.meta.get("best")
        factor = lr_factor(step, t.steps, t.lr_decay_start)
        for opt, rates in zip(task.optimizers(), tried, strict=True):
            for group, rate in zip(opt.param_groups, rates, strict=True):
                group["base_lr"] = 0.5 * rate
                group["lr"] = group["base_lr"] * factor
        for g in task.generators():
            g.manual_seed(rollback_seed(t.seed, rollbacks))
        meter = Meter(device, step, d)
        metrics.truncate_after(step)
        watcher.truncate_after(step)
        opts = task.optimizers()
        event = {"step": step, "event": "rollback", "diverged_at": e.step,
                 "lr_g": opts[0].param_groups[0]["lr"], "lr_d": opts[-1].param_groups[0]["lr"],
                 "message": f"the losses became NaN or infinite at step {e.step}; rolled back to the "
                            f"checkpoint of step {step}, halved the learning rates and drew fresh noise "
                            f"(rollback {rollbacks} of at most {MAX_ROLLBACKS}). Cures for divergence: "
                            f"{FAILURES['divergence'].cures}"}
        metrics.append(event)
        history.append(event)
        bar.n = step
        bar.write("gankit: warning: " + event["message"], file=sys.stderr)
        t_log, step_log = time.perf_counter(), step

    # ---------------------------------------------------------------- 3. iterations
    meter = Meter(device, step, d)
    out_of_time = False
    t_log, step_log = t0, step

    def save_samples() -> None:  # the task's grid, and the log's TensorBoard mirror of it
        task.save_samples(run.sample_path(step), step)
        metrics.image(run.sample_path(step), step)

    if step == 0 and main:
        save_samples()
    bar = tqdm(total=t.steps, initial=step, disable=not (lg.progress and main), unit="it",
               dynamic_ncols=True, file=sys.stderr, desc=run_dir.name)
    with StopFlag() as stop:
        while step < t.steps:
            if t.lr_decay_start < 1:  # the learning rates of this step (a function of it: resumes alike)
                set_lr_factor(task.optimizers(), lr_factor(step, t.steps, t.lr_decay_start))
            logged = task.iteration(step)
            for hook in hooks:
                hook.after_iteration(step, logged)
            step += 1
            meter.add(logged)
            bar.update(1)

            # ------------------------------------------------------------ 4. cadence
            final = step == t.steps
            # max_time: the training-time budget is spent (host clock only: no device sync)
            out_of_time = t.max_time > 0 and elapsed() >= t.max_time
            stopping = stop.requested
            if d.enabled:  # agree at log steps: a rank leaving alone would hang the others
                if step % lg.log_every == 0:
                    votes = distributed.all_mean(d, torch.tensor(
                        [float(stop.requested), float(out_of_time)], device=device)).tolist()
                    stopping, out_of_time = votes[0] > 0, votes[1] > 0
                else:
                    stopping = out_of_time = False
            final = final or out_of_time
            # (not at the last step unless it is a multiple: a run resumed later must log alike)
            diagnose_now = main and lg.diagnose_every and step % lg.diagnose_every == 0
            if any(step % n == 0 for n in (lg.log_every, lg.sample_every, lg.checkpoint_every,
                                            ev.eval_every or t.steps)) or final or stopping:
                try:  # NaN or Inf since the last check: roll back instead of going on broken
                    check_finite()
                except TrainingDiverged as e:
                    rollback(e)
                    continue
            log_now = step % lg.log_every == 0 or final or stopping
            if log_now:
                now = time.perf_counter()
                rec: dict[str, Any] = {"step": step, **meter.read()}
                rec["time"] = round(elapsed(), 3)
                rec["img_per_s"] = round(t.batch_size * (step - step_log) / max(now - t_log, 1e-9), 1)
                t_log, step_log = now, step
            signals = task.probe() if diagnose_now else {}
            if log_now:  # one line per step: the probe's signals join the training record
                record(rec | signals)
            elif signals:  # diversity and coverage of G's samples at fixed latents
                record({"step": step, **signals})
            if log_now:
                bar.set_postfix_str(_postfix(rec, task.unit, watcher), refresh=False)
            if main and (step % lg.sample_every == 0 or final):
                save_samples()
            if ev.eval_every and (step % ev.eval_every == 0 or final):
                better = False
                if main:
                    t_eval = time.perf_counter()
                    values = task.evaluate(eval_key)
                    rec = {"step": step, **values, "eval_seconds": round(time.perf_counter() - t_eval, 2)}
                    metrics.append(rec)
                    history.append(rec)
                    value = values[eval_key]
                    better = best is None or (value > best["value"] if task.higher_is_better(eval_key)
                                              else value < best["value"])
                    if better:
                        best = {"key": eval_key, "value": value, "step": step}
                    bar.write(f"step {step}: " + ", ".join(f"{k} {v:.4g}" for k, v in values.items())
                              + (" (best so far)" if better else ""), file=sys.stderr)
                best, better = distributed.broadcast_object(d, (best, better))
                if better:  # save now and point `best` at it
                    checkpoint()
                    if main:
                        mark_best(ckpt_dir, step)
            if step % lg.checkpoint_every == 0 or final or stopping:
                checkpoint()
            if stopping or out_of_time:
                break
    bar.close()
    metrics.close()

    # ---------------------------------------------------------------- 5. report
    if main:
        from gankit.report import build_report

        report = build_report(run_dir)
    if step < t.steps and not out_of_time:  # left the loop early: Ctrl-C
        raise KeyboardInterrupt(f"stopped at step {step}; checkpoint saved. "
                                f"Continue with: gankit train --resume {run_dir}")
    if main:
        print(f"samples: {run.samples_dir}\nreport:  {report}", file=sys.stderr)
    return task.result(run_dir, step, history)


def _postfix(rec: dict[str, Any], unit: str, watcher: Watcher) -> str:
    """The progress bar's line: speed, losses, D(x) and D(G(z)) with the equilibrium verdict,
    diversity, active warnings."""
    last = watcher.records[-1] if watcher.records else {}
    warn = ",".join(sorted(watcher.active))
    game = equilibrium(rec["d_real"], rec["d_fake"]).label  # the words doctor and the report use
    return (f"{unit}/s={rec['img_per_s']:.0f} loss_d={rec['loss_d']:.3f} loss_g={rec['loss_g']:.3f} "
            f"D(x)={rec['d_real']:.2f} D(G(z))={rec['d_fake']:.2f} ({game})"
            + (f" div={last['diversity']:.2f}" if "diversity" in last else "")
            + (f" WARNING: {warn}" if warn else ""))


__all__ = ["MAX_ROLLBACKS", "Hook", "Meter", "StopFlag", "TrainingDiverged", "run"]
