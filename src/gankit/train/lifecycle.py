"""The training lifecycle: one loop around every task, in labelled sections.

    1. config and run directory        (new: checked first, created once the task is built;
                                        resume: the run's own config, a few keys changeable)
    2. the task: data, networks, RNG   (``Task.setup``; a resumed run restores its checkpoint)
    3. iterations                      (``Task.iteration``: for the GAN, Goodfellow et al.'s
                                        Algorithm 1; the learning rates and beta2 of
                                        ``gankit.train.schedule`` set before each)
    4. cadence                         every log_every: finite check, metrics.jsonl, progress bar
                                       every diagnose_every: the task's probe -> failure rules
                                       every sample_every: the task's sample grid
                                       every eval_every: the task's score -> ``best`` checkpoint
                                       every checkpoint_every, at the end, on Ctrl-C: checkpoint
                                       every step: the control channel (RUN/control.jsonl, a stat
                                       every 0.25 s: pause, resume, learning rates, stop)
    5. the report

Around it, for every task alike: logged values stay on the device between log steps (one host
synchronisation per log, none per step); a NaN or Inf is pinned to the step it appeared and the
run rolls back to its last checkpoint with halved learning rates; under ``torchrun`` every rank
runs this loop on its shard and rank 0 writes; ``max_time``, Ctrl-C and SIGTERM stop with a
checkpoint.

When things go wrong: a run directory has one trainer (``RunLock`` on RUN/.lock, taken by rank 0
before anything in the folder changes); a full disk (ENOSPC, EDQUOT) during any write ends the run
with one line (``DiskFull``, exit status 2) after saving what it can, its partial files removed and
the last good checkpoint kept as ``last``; a killed writer's temporaries are removed at the start.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from gankit.checkpoint import (
    clean_partial,
    load_checkpoint,
    mark_best,
    newest_intact,
    save_checkpoint,
    set_aside,
)
from gankit.config import Config
from gankit.diagnosis import FAILURES, Watcher
from gankit.errors import GankitError, display_path
from gankit.fsutil import (
    DiskFull,
    clean_stale_temps,
    is_disk_full,
    writing,
)
from gankit.rundir import MetricsLog, NullLog, RunDir
from gankit.train import distributed
from gankit.train.control import ControlChannel
from gankit.train.guards import (
    Hook,
    Meter,
    SaveOnDiskFull,
    StopFlag,
    Stopped,
    TrainingDiverged,
    disk_full_error,
    diverged,
    rollback_seed,
)
from gankit.train.rundir import RunLock, check_new, create_new, save_config
from gankit.train.schedule import Schedule
from gankit.train.state import check_precision, resolve_device, run_meta
from gankit.train.task import Context, Task
from gankit.verdict import equilibrium

MAX_ROLLBACKS = 3  # divergences a run recovers from (each halves the learning rates) before it stops


def run(name: str, make_task: Any, cfg: Config, resume: str | Path | None = None,
        data: Any | None = None, hooks: Sequence[Hook] = ()) -> Any:
    """Train the task ``make_task(ctx)`` builds (registered as ``name``) as the resolved ``cfg``
    says; with ``resume``, continue the run in that directory (``cfg``: its config, with the keys
    changed at resume). Under ``torchrun`` this runs in every process, data-parallel."""
    d = distributed.from_env()
    distributed.init(d, resolve_device(cfg.train.device, d.local_rank))
    lock = RunLock()  # rank 0's hold on the run directory, taken before anything in it changes
    try:
        out = _run(d, name, make_task, cfg, resume, data, hooks, lock)
        # Leave together: a rank that tore its process group down while rank 0 was still writing
        # the report was seen to abort in gloo ("terminate called without an active exception").
        distributed.barrier(d)
        return out
    except Exception as e:
        if not is_disk_full(e):
            raise
        if lock.held and lock.run_dir is not None:  # only the lock's holder may remove partial saves
            clean_partial(lock.run_dir / "checkpoints")
        raise disk_full_error(e, lock.run_dir) from None
    finally:
        lock.release()
        distributed.shutdown(d)


def _run(d: distributed.Dist, name: str, make_task: Any, cfg: Config, resume: str | Path | None,
         data: Any | None, hooks: Sequence[Hook], lock: RunLock) -> Any:
    # ---------------------------------------------------------------- 1. config and run directory
    main = d.is_main
    assert cfg is not None
    if main:  # rank 0 owns the run directory; the others receive its config
        if resume is not None:
            lock.acquire(Path(str(cfg.log.out)))  # refused while another process trains it
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
            create_new(cfg, task.resolved(), lock)  # locked as soon as the folder exists
        clean_partial(run.checkpoints_dir)  # what a killed or failed save left
        for folder in (run_dir, run.samples_dir):  # temporaries of writers that are gone
            clean_stale_temps(folder)
    distributed.barrier(d)
    ckpt_dir = run.checkpoints_dir
    metrics = MetricsLog(run.metrics_path, run.tensorboard_dir if lg.tensorboard else None) \
        if main else NullLog()
    step, elapsed_before, best = 0, 0.0, None
    # ``gankit lab``'s steering (gankit.train.control); not under torchrun: one rank cannot pause all
    control = ControlChannel(run.control_path if main and not d.enabled else None)
    setters = {"d_steps": task.set_d_steps, "loss": task.set_loss}  # what `set` may change besides rates
    schedule = Schedule(cfg, d.world)  # train.lr_decay_start, train.schedule_images (gankit.train.schedule)
    rollbacks = 0  # the run's divergences recovered from, kept in its checkpoints: a resume keeps the budget
    if resume is not None:  # the newest intact checkpoint; a damaged newer one is named, kept aside
        ckpt, damaged = newest_intact(run_dir, task.validate_checkpoint)
        for line in set_aside(ckpt, damaged) if main else ():
            print(f"gankit: warning: {line}", file=sys.stderr)
        task.check_resume(ckpt.meta)
        task.restore(ckpt)
        step, elapsed_before, best = ckpt.step, float(ckpt.meta["elapsed"]), ckpt.meta.get("best")
        rollbacks = int(ckpt.meta.get("rollbacks", 0))
        control.restore(ckpt.meta, task.optimizers(), setters)  # rates, k and loss steered before it
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
            meta |= control.meta(task.optimizers())
            save_checkpoint(ckpt_dir, step, model, train, meta, lg.keep)
        distributed.barrier(d)
        last_ckpt, saved_now = step, True

    def log(rec: dict[str, Any]) -> None:  # one line of metrics.jsonl (a full disk names the file)
        with writing(run.metrics_path):
            metrics.append(rec)

    def rescue(exc: BaseException) -> None:
        """A full disk while writing anything but a checkpoint: save the step reached, if the disk
        still takes it (a failed save removes its partial folder). Not under torchrun, where the
        other ranks cannot join a save now; a checkpoint that just failed is not retried."""
        if d.enabled or (isinstance(exc, DiskFull) and exc.path.parent == ckpt_dir):
            return
        with contextlib.suppress(GankitError, OSError):  # full again; or diverged: nothing to save
            checkpoint()

    # ---------------------------------------------------------------- diagnosis (gankit.diagnosis)
    watcher = Watcher(task.diagnosis_loss, t.steps, task.data_size, bool(cfg.reg.diffaugment), t.max_time, task.cures)
    for old in metrics.records() if resume is not None else ():  # warnings already given stay given
        if "event" not in old:
            watcher.add(old)
    history: list[dict[str, Any]] = []

    def record(rec: dict[str, Any]) -> None:
        """Log a record, and any failure it reveals (rank 0 decides; all ranks log nothing else)."""
        log(rec)
        history.append(rec)
        for finding in watcher.add(rec):
            log(finding.to_dict())
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
        try:  # verified: checksums, the task's own checks, finite weights
            ckpt = load_checkpoint(run_dir, check=task.validate_checkpoint)
        except GankitError as damaged:
            raise TrainingDiverged(e.step, f"{e}. The checkpoint to roll back to is not intact "
                                           f"({damaged})") from None
        rollbacks += 1
        task.restore(ckpt)
        step, best = ckpt.step, ckpt.meta.get("best")
        for opt, rates in zip(task.optimizers(), tried, strict=True):
            for group, rate in zip(opt.param_groups, rates, strict=True):
                group["base_lr"] = 0.5 * rate
        schedule.apply(task.optimizers(), step)  # the halved base rates at this step's factors
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
        log(event)
        history.append(event)
        bar.n = step
        bar.write("gankit: warning: " + event["message"], file=sys.stderr)
        t_log, step_log = time.perf_counter(), step

    def emit(event: dict[str, Any]) -> None:  # a control request obeyed (or refused): logged, shown
        watcher.loss = task.diagnosis_loss  # a loss switched mid-run: the rules read the new one
        log(event)
        history.append(event)
        bar.write(f"gankit: control: step {event['step']}: {event['message']}", file=sys.stderr)

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
    with StopFlag() as stop, SaveOnDiskFull(rescue):
        while step < t.steps:
            control.boundary(step, task.optimizers(), emit, lambda: stop.requested, task.half_step, setters)
            if schedule.on:  # the learning rates (and beta2) of this step: a function of it, resumes alike
                schedule.apply(task.optimizers(), step)
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
            stopping = stop.requested or control.stop_requested
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
                if t.schedule_images is not None:  # the values the last step trained with (host numbers)
                    rec |= schedule.record(step - 1, task.optimizers())
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
                    log(rec)
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
    if control.stop_requested and main:
        print(f"stopped by the control channel at step {step}; checkpoint saved. "
              f"Continue with: gankit train --resume {run_dir}", file=sys.stderr)
    elif step < t.steps and not out_of_time:  # left the loop early: Ctrl-C or SIGTERM
        by = " by SIGTERM" if stop.signum == signal.SIGTERM else ""
        raise Stopped(f"stopped{by} at step {step}; checkpoint saved. "
                      f"Continue with: gankit train --resume {run_dir}", stop.signum or signal.SIGINT)
    if main:
        print(f"samples: {display_path(run.samples_dir)}\nreport:  {display_path(report)}", file=sys.stderr)
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


__all__ = ["MAX_ROLLBACKS", "Hook", "Meter", "StopFlag", "Stopped", "TrainingDiverged", "run"]
