"""The training loop: Goodfellow et al.'s Algorithm 1, in labelled sections.

    for each iteration:                         (one "step" = one generator update)
        for k = --d-steps times:
            sample m real examples and m noise vectors; update D by ascending
            log D(x) + log(1 - D(G(z)))
        sample m noise vectors; update G by descending its loss (minimax or non-saturating)

Around it: the run directory, metrics gathered on the device and read back only every
``--log-every`` steps (no host synchronisation per step), sample grids at fixed latents, atomic
checkpoints, and the report.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from tqdm import tqdm

from gankit.checkpoint import (
    clean_partial,
    load_checkpoint,
    mark_best,
    save_checkpoint,
)
from gankit.config import Config, load_yaml
from gankit.data import BatchOrder, InMemoryData, load_data
from gankit.diagnosis import FAILURES, Probe, Watcher, grad_norm
from gankit.errors import GankitError
from gankit.fsutil import atomic_write_bytes
from gankit.images import save_grid
from gankit.metrics.evaluate import higher_is_better
from gankit.models import sample_prior
from gankit.models.conditional import class_names, default_labels
from gankit.sampling import d_probability_field, generate, points_extent, sample_from
from gankit.train import distributed
from gankit.train.rundir import MetricsLog, NullLog, prepare_new, resume_config
from gankit.train.state import (
    GRID_COLUMNS,
    TrainState,
    check_precision,
    lr_factor,
    resolve_device,
    set_lr_factor,
)
from gankit.train.step import d_step, fake_for_d, g_step


class TrainingDiverged(GankitError):
    """A loss or gradient norm became NaN or infinite, at ``step``."""

    def __init__(self, step: int, message: str) -> None:
        super().__init__(message)
        self.step = step


MAX_ROLLBACKS = 3  # divergences a run recovers from (each halves the learning rates) before it stops


@dataclass
class Run:
    """What ``train`` returns: the run directory and the trained networks."""

    run_dir: Path
    G: nn.Module
    D: nn.Module
    config: Config
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)
    classes: list[str] | None = None  # a conditional run's classes, by index

    def sample(self, n: int = 64, seed: int = 0, y: Tensor | None = None) -> Tensor:
        """n samples from G (eval mode): (n, C, H, W) in [-1, 1], or (n, 2) points. A conditional
        G makes class ``y[i]`` for sample i (default: every class in turn)."""
        return sample_from(self.G, self.config, n, seed, y).cpu()


class Meter:
    """Sums of the logged quantities, kept on the device between log steps.

    Also remembers the first step whose loss was not finite, so a NaN is pinned to the step it
    appeared even though it is only read back every ``log_every`` steps.
    """

    NAMES = ("loss_d", "loss_g", "d_real", "d_fake", "grad_g", "grad_d")

    def __init__(self, device: torch.device, step: int, d: distributed.Dist = distributed.SINGLE) -> None:
        self.d = d
        self.sums = torch.zeros(len(self.NAMES), device=device)
        self.n = 0
        self.step = torch.tensor(step, device=device)  # advanced on the device, no host copy
        self.first_bad = torch.tensor(-1, device=device)

    def add(self, loss_d: Tensor, loss_g: Tensor, d_real: Tensor, d_fake: Tensor, grad_g: Tensor,
            grad_d: Tensor) -> None:
        v = torch.stack([loss_d, loss_g, d_real, d_fake, grad_g, grad_d]).float()
        self.sums += v
        self.step += 1
        # a loss or a gradient norm that is NaN or infinite (an exploding norm overflows to inf)
        bad = ~torch.isfinite(v[[0, 1, 4, 5]]).all() & (self.first_bad < 0)
        self.first_bad = torch.where(bad, self.step, self.first_bad)
        self.n += 1

    def check_finite(self, state: TrainState, last_good: int) -> None:
        first_bad = self.first_bad
        if self.d.enabled:  # the earliest bad step on any rank, on every rank
            big = torch.iinfo(torch.int64).max
            first_bad = torch.where(first_bad < 0, big, first_bad)
            torch.distributed.all_reduce(first_bad, op=torch.distributed.ReduceOp.MIN)
            first_bad = torch.where(first_bad == big, -1, first_bad)
        bad = int(first_bad)
        if bad >= 0:
            raise TrainingDiverged(bad,
                f"the losses became NaN or infinite at step {bad}: training diverged. The last "
                f"checkpoint (step {last_good}) is intact. Try lower learning rates (--lr-g/--lr-d), "
                "or --loss nonsaturating, and start a new run"
            )

    def read(self) -> dict[str, float]:
        means = distributed.all_mean(self.d, self.sums / max(self.n, 1)).tolist()  # one sync per log
        self.sums.zero_()
        self.n = 0
        return dict(zip(self.NAMES, means, strict=True))


class _StopFlag:
    """Ctrl-C asks the loop to stop at the end of the current step and save a checkpoint;
    a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old: Any = None

    def __enter__(self) -> _StopFlag:
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


def save_samples(state: TrainState, data: InMemoryData, run_dir: Path, real_points: Tensor | None) -> Path:
    """samples/step-NNNNNN.png: a grid of G(fixed z), or for 2-D data D's field with both point sets."""
    path = run_dir / "samples" / f"step-{state.step:06d}.png"
    fake = generate(state.G_sample, state.fixed_z, state.fixed_y)
    if state.shape.is_image:
        # a conditional run's grid has one row per class, named on the left
        rows = None
        if state.fixed_y is not None:
            rows = class_names(state.num_classes, state.classes)[:len(state.fixed_y) // GRID_COLUMNS]
        save_grid(fake, path, nrow=GRID_COLUMNS, row_labels=rows)
    else:
        from gankit.report import plot_field

        assert state.extent is not None and real_points is not None
        prob = d_probability_field(state.D, state.extent, device=state.device)
        png = plot_field(real_points.cpu().numpy(), fake.float().cpu().numpy(), prob, state.extent,
                         title=f"step {state.step}")
        atomic_write_bytes(path, png)
    return path


def class_count(data: InMemoryData) -> tuple[int, list[str] | None]:
    """(K, the classes' names) of labelled data, for ``--conditional``; a clear error otherwise."""
    if data.labels is None:
        raise GankitError(f"--conditional needs labelled data, and {data.name} has no labels: use "
                          "--data fashion-mnist, or a folder whose subfolders are the classes")
    k = len(data.classes) if data.classes else int(data.labels.max()) + 1
    if k < 2:
        raise GankitError(f"--conditional needs at least 2 classes; {data.name} has {k}")
    return k, list(data.classes) if data.classes else None


def evaluate(state: TrainState, cfg: Config, data: InMemoryData, key: str) -> dict[str, Any]:
    """Evaluate G now (eval mode, its own RNG: training's random streams are untouched)."""
    from gankit.metrics import evaluate_generator, metric_for_key

    metrics = [metric_for_key(key)] if data.shape.is_image else None
    res = evaluate_generator(state.G_sample, cfg, cfg.eval.eval_n, metrics, cfg.eval.eval_features,
                             state.device, data=data)
    if key not in res.values:
        raise GankitError(f"--eval-metric {key} is not produced for this data; it gave "
                          f"{', '.join(res.values)}")
    return {"step": state.step, **res.values, "eval_seconds": round(res.seconds, 2)}


def train(
    cfg: Config,
    data: InMemoryData | None = None,
    resume: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
) -> Run:
    """Train a GAN as ``cfg`` says; with ``resume``, continue the run in that directory.

    Under ``torchrun`` this runs in every process, data-parallel (see ``train.distributed``).
    With ``--model pix2pix`` or ``cyclegan`` the image translator's loop runs instead
    (``gankit.train.translation``) and returns its ``TranslationRun``.
    """
    from gankit.train.translation import train_translator, wants_translator

    d = distributed.from_env()
    if wants_translator(cfg, resume):
        if d.enabled:
            raise GankitError("image translators train in one process; run them without torchrun")
        if data is not None:
            raise GankitError("a translator reads its two domains from --data (a task or folders), not "
                              "from an in-memory dataset; pass data by name or path")
        return train_translator(cfg, resume, overrides)  # type: ignore[return-value]
    try:
        run = _train(d, cfg, data, resume, overrides)
        # Leave together: a rank that tore its process group down while rank 0 was still writing
        # the report was seen to abort in gloo ("terminate called without an active exception").
        distributed.barrier(d)
        return run
    finally:
        distributed.shutdown(d)


def _device_name(cfg: Config | None, resume: str | Path | None, overrides: dict[str, Any] | None) -> str:
    """The --device a run will use, known before the run directory is read in full (the process
    group's backend depends on it)."""
    if resume is None and cfg is not None:
        return cfg.train.device
    if overrides and "device" in overrides:
        return str(overrides["device"])
    try:
        saved = load_yaml(Path(str(resume)) / "config.yaml")
        return str(saved.get("train", {}).get("device", "auto"))
    except (GankitError, AttributeError):
        return "auto"


def _train(
    d: distributed.Dist,
    cfg: Config,
    data: InMemoryData | None,
    resume: str | Path | None,
    overrides: dict[str, Any] | None,
) -> Run:
    # ---------------------------------------------------------------- 1. config and run directory
    distributed.init(d, resolve_device(_device_name(cfg, resume, overrides), d.local_rank))
    if d.is_main:  # rank 0 owns the run directory; the others receive its resolved config
        if resume is not None:
            cfg = resume_config(resume, overrides or {})
        else:
            prepare_new(cfg)
        clean_partial(Path(cfg.log.out) / "checkpoints")
    cfg = distributed.broadcast_object(d, cfg)
    run_dir = Path(cfg.log.out)
    t, lg = cfg.train, cfg.log
    device = resolve_device(t.device, d.local_rank)
    ckpt_dir = run_dir / "checkpoints"
    main = d.is_main
    if device.type == "cuda":  # shapes are fixed for the run: timing cuDNN's algorithms once pays
        torch.backends.cudnn.benchmark = t.cudnn_benchmark

    # ---------------------------------------------------------------- 2. data, in memory, on the device
    if data is None:
        data = load_data(cfg.data, t.seed)
    for line in data.notes if main else ():
        print(line, file=sys.stderr)
    data = data.to(device)
    num_classes, classes = class_count(data) if cfg.model.conditional else (0, None)
    # Every rank walks the same global order of world * B indices and keeps its own slice.
    order = BatchOrder(len(data), t.batch_size * d.world, t.seed, device)

    # ---------------------------------------------------------------- 3. models, optimisers, RNG
    state = TrainState.create(cfg, data.shape, device, d, num_classes, classes)
    metrics = MetricsLog(run_dir / "metrics.jsonl", run_dir / "tensorboard" if lg.tensorboard else None) \
        if main else NullLog()
    if resume is not None:
        ckpt = load_checkpoint(run_dir)
        if list(ckpt.meta["data_shape"]) != list(data.shape.dims):
            raise GankitError(f"the data now give {data.shape.describe()}, but {run_dir} was trained on "
                              f"{ckpt.meta['data_shape']}; resume with the same data")
        if int(ckpt.meta.get("num_classes") or 0) != num_classes:
            raise GankitError(f"the data now have {num_classes} classes, but {run_dir} was trained on "
                              f"{ckpt.meta.get('num_classes') or 0}; resume with the same data")
        state.restore(ckpt)
        metrics.truncate_after(state.step)
        if main:
            print(f"resuming {run_dir} at step {state.step}", file=sys.stderr)
    if main:
        check_precision(state.precision, device, t.precision)
    real_points = None
    if not data.shape.is_image:
        g = torch.Generator().manual_seed(t.seed + 2)
        real_points = data.batch(torch.randperm(len(data), generator=g)[:1024].to(device))
        state.extent = data.extent or points_extent(real_points.cpu().numpy())
    last_ckpt = state.step  # step of the newest checkpoint on disk, once there is one:
    saved_now = resume is not None  # a resumed run starts from one; a new run has none yet
    ev = cfg.eval
    eval_key = ev.eval_metric or ("fid" if data.shape.is_image else "modes")

    def checkpoint() -> None:
        nonlocal last_ckpt, saved_now
        if saved_now and last_ckpt == state.step:
            return  # already saved at this step (e.g. just now, as the new best)
        meter.check_finite(state, last_ckpt)  # never save a diverged model (a collective under DDP)
        if main:  # the replicas are identical: rank 0 writes for all
            tensors, optim_meta = state.train_tensors()
            meta = state.meta(elapsed())
            meta["optim"] = optim_meta
            save_checkpoint(ckpt_dir, state.step, state.model_tensors(), tensors, meta, lg.keep)
        distributed.barrier(d)
        last_ckpt, saved_now = state.step, True

    def next_labelled() -> tuple[Tensor, Tensor | None]:
        """The next real minibatch of the run's data order, this rank's shard of it, with its class
        labels for a conditional run (else None)."""
        index = distributed.shard(d, order.indices(state.real_batches))
        state.real_batches += 1
        labels = data.labels.index_select(0, index) if num_classes and data.labels is not None else None
        return data.batch(index), labels

    def next_real() -> Tensor:
        return next_labelled()[0]

    def elapsed() -> float:
        return state.elapsed + (time.perf_counter() - t0)

    # ---------------------------------------------------------------- diagnosis (gankit.diagnosis)
    watcher = Watcher(t.loss, t.steps)
    for old in metrics.records() if resume is not None else ():  # warnings already given stay given
        if "event" not in old:
            watcher.add(old)
    probe = None
    if lg.diagnose_every and main:
        g = torch.Generator().manual_seed(t.seed + 3)  # its own RNG: training's streams are untouched
        probe_real = data.batch(torch.randperm(len(data), generator=g)[:Probe.N].to(device))
        probe_z = sample_prior(cfg.model.prior, Probe.N, cfg.model.latent_dim, generator=g)
        probe_y = default_labels(Probe.N, num_classes) if num_classes else None
        probe = Probe(data.name, data.shape, probe_real, probe_z, y=probe_y, device=device)
    rollbacks = 0

    def record(rec: dict[str, Any]) -> None:
        """Log a record, and any failure it reveals (rank 0 decides; all ranks log nothing else)."""
        metrics.append(rec)
        history.append(rec)
        for finding in watcher.add(rec):
            metrics.append(finding.to_dict())
            history.append(finding.to_dict())
            bar.write("gankit: warning: " + finding.line(), file=sys.stderr)

    def rollback(e: TrainingDiverged) -> None:
        """Divergence: return to the last checkpoint with both learning rates halved, log the event
        and go on. After MAX_ROLLBACKS, or with no checkpoint yet to return to, stop with the error."""
        nonlocal rollbacks, meter, t_log, step_log
        if rollbacks >= MAX_ROLLBACKS or not saved_now:
            if rollbacks:  # say what was tried before giving up
                raise TrainingDiverged(e.step, f"{e}; gankit had already rolled back {rollbacks} "
                                               f"time(s), halving both learning rates each time") from None
            raise e
        rollbacks += 1
        state.restore(load_checkpoint(run_dir))
        for opt in (state.opt_G, state.opt_D):
            for group in opt.param_groups:
                group["lr"] *= 0.5
                if "base_lr" in group:  # --lr-decay-start: the schedule scales the halved rate
                    group["base_lr"] *= 0.5
        meter = Meter(device, state.step, d)
        metrics.truncate_after(state.step)
        watcher.truncate_after(state.step)
        event = {"step": state.step, "event": "rollback", "diverged_at": e.step,
                 "lr_g": state.opt_G.param_groups[0]["lr"], "lr_d": state.opt_D.param_groups[0]["lr"],
                 "message": f"the losses became NaN or infinite at step {e.step}; rolled back to the "
                            f"checkpoint of step {state.step} and halved both learning rates "
                            f"(rollback {rollbacks} of at most {MAX_ROLLBACKS}). Cures for divergence: "
                            f"{FAILURES['divergence'].cures}"}
        metrics.append(event)
        history.append(event)
        bar.n = state.step
        bar.write("gankit: warning: " + event["message"], file=sys.stderr)
        t_log, step_log = time.perf_counter(), state.step

    # ---------------------------------------------------------------- 4. Algorithm 1
    meter = Meter(device, state.step, d)
    reuse = t.reuse_fake and t.d_steps == 1
    out_of_time = False
    t0 = time.perf_counter()
    t_log, step_log = t0, state.step
    history: list[dict[str, Any]] = []
    if state.step == 0 and main:
        save_samples(state, data, run_dir, real_points)
    bar = tqdm(total=t.steps, initial=state.step, disable=not (lg.progress and main), unit="it",
               dynamic_ncols=True, file=sys.stderr, desc=run_dir.name)
    with _StopFlag() as stop:
        while state.step < t.steps:
            if t.lr_decay_start < 1:  # the learning rates of this step (a function of it: resumes alike)
                set_lr_factor((state.opt_G, state.opt_D), lr_factor(state.step, t.steps, t.lr_decay_start))
            for _ in range(t.d_steps):  # k discriminator updates ...
                real, y_real = next_labelled()  # (B, *dims), and (B,) labels if --conditional
                y_fake = state.y(t.batch_size)  # (B,) classes asked of G if --conditional, else None
                fake = fake_for_d(state, t.batch_size, keep_graph=reuse, y=y_fake)
                loss_d, d_real, d_fake = d_step(state, real, fake, y_real, y_fake)
            # ... then one generator update (on D's fake batch when K = 1 and --reuse-fake)
            loss_g = g_step(state, t.batch_size, fake if reuse else None, real, next_real,
                            y_fake if reuse else None, y_real)
            del fake, real
            state.step += 1
            # gradient norms (kept on the device): the diminished-gradient and divergence signals
            grad_g, grad_d = grad_norm(state.G), grad_norm(state.D)
            if state.scaler_G is not None:  # fp16: a step the scaler skipped for overflowing
                # gradients is the scaler at work, not divergence; it counts 0 in the means
                grad_g, grad_d = (torch.where(torch.isfinite(g), g, 0.0) for g in (grad_g, grad_d))
            meter.add(loss_d, loss_g, d_real, d_fake, grad_g, grad_d)
            bar.update(1)

            # ------------------------------------------------------------ 5. log, sample, save
            final = state.step == t.steps
            # --max-time: the training-time budget is spent (host clock only: no device sync)
            out_of_time = t.max_time > 0 and elapsed() >= t.max_time
            stopping = stop.requested
            if d.enabled:  # agree at log steps: a rank leaving alone would hang the others
                if state.step % lg.log_every == 0:
                    votes = distributed.all_mean(d, torch.tensor(
                        [float(stop.requested), float(out_of_time)], device=device)).tolist()
                    stopping, out_of_time = votes[0] > 0, votes[1] > 0
                else:
                    stopping = out_of_time = False
            final = final or out_of_time
            # (not at the last step unless it is a multiple: a run resumed later must log alike)
            diagnose_now = lg.diagnose_every and state.step % lg.diagnose_every == 0
            if any(state.step % n == 0 for n in (lg.log_every, lg.sample_every, lg.checkpoint_every,
                                                  ev.eval_every or t.steps)) or final or stopping:
                try:  # NaN or Inf since the last check: roll back instead of going on broken
                    meter.check_finite(state, last_ckpt)
                except TrainingDiverged as e:
                    rollback(e)
                    continue
            log_now = state.step % lg.log_every == 0 or final or stopping
            if log_now:
                now = time.perf_counter()
                rec: dict[str, Any] = {"step": state.step, **meter.read()}
                rec["time"] = round(elapsed(), 3)
                rec["img_per_s"] = round(t.batch_size * (state.step - step_log) / max(now - t_log, 1e-9), 1)
                t_log, step_log = now, state.step
            signals = probe.measure(state.G_sample) if diagnose_now and probe is not None else {}
            if log_now:  # one line per step: the probe's signals join the training record
                record(rec | signals)
            elif signals:  # diversity and coverage of G's samples at fixed latents
                record({"step": state.step, **signals})
            if log_now:
                last = watcher.records[-1] if watcher.records else {}
                warn = ",".join(sorted(watcher.active))
                bar.set_postfix_str(
                    f"img/s={rec['img_per_s']:.0f} loss_d={rec['loss_d']:.3f} loss_g={rec['loss_g']:.3f} "
                    f"D(x)={rec['d_real']:.2f} D(G(z))={rec['d_fake']:.2f}"
                    + (f" div={last['diversity']:.2f}" if "diversity" in last else "")
                    + (f" WARNING: {warn}" if warn else ""), refresh=False)
            if main and (state.step % lg.sample_every == 0 or final):
                save_samples(state, data, run_dir, real_points)
            if ev.eval_every and (state.step % ev.eval_every == 0 or final):
                rec = evaluate(state, cfg, data, eval_key) if main else {}
                better = False
                if main:
                    metrics.append(rec)
                    history.append(rec)
                    value, best = rec[eval_key], state.best
                    better = best is None or (value > best["value"] if higher_is_better(eval_key)
                                              else value < best["value"])
                    if better:
                        state.best = {"key": eval_key, "value": value, "step": state.step}
                    bar.write(f"step {state.step}: " + ", ".join(
                        f"{k} {v:.4g}" for k, v in rec.items() if k not in ("step", "eval_seconds"))
                        + (" (best so far)" if better else ""), file=sys.stderr)
                state.best, better = distributed.broadcast_object(d, (state.best, better))
                if better:  # save now and point `best` at it
                    checkpoint()
                    if main:
                        mark_best(ckpt_dir, state.step)
            if state.step % lg.checkpoint_every == 0 or final or stopping:
                checkpoint()
            if stopping or out_of_time:
                break
    bar.close()
    metrics.close()

    # ---------------------------------------------------------------- 6. report
    if main:
        from gankit.report import build_report

        report = build_report(run_dir)
    if state.step < t.steps and not out_of_time:  # left the loop early: Ctrl-C
        raise KeyboardInterrupt(f"stopped at step {state.step}; checkpoint saved. "
                                f"Continue with: gankit train --resume {run_dir}")
    if main:
        print(f"samples: {run_dir / 'samples'}\nreport:  {report}", file=sys.stderr)
    return Run(run_dir, state.G_sample, state.D, cfg, state.step, history,
               class_names(num_classes, classes) if num_classes else None)


__all__ = ["Run", "TrainingDiverged", "train"]
