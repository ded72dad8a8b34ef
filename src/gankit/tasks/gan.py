"""The noise-to-data GAN (Goodfellow et al. 2014), unconditional or class-conditional.

One iteration is Algorithm 1 of the paper, ``algorithm1``:

    for k = d_steps times:
        sample m real examples and m noise vectors; update D by ascending
        log D(x) + log(1 - D(G(z)))
    sample m noise vectors; update G by descending its loss (minimax or non-saturating)

A conditional run (``model.conditional``: cgan, acgan, projection) draws each real batch's labels
with it and asks G for uniformly drawn classes. Samples are a grid of G(fixed z) (one row per class
when conditional), or for 2-D points D's probability field with both point sets; evaluation is FID
and friends for images, the mode count for 2-D mixtures; the diagnosis probe measures G's
diversity and its mode or class coverage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import Checkpoint, restoring
from gankit.config import Config
from gankit.data import DATASETS, BatchOrder, InMemoryData, load_data
from gankit.diagnosis import Probe, grad_norm
from gankit.errors import GankitError
from gankit.fsutil import atomic_write_bytes, atomic_write_text
from gankit.images import save_grid
from gankit.losses import LOSSES
from gankit.models import sample_prior
from gankit.models.conditional import class_names, default_labels
from gankit.sampling import (
    check_gan_meta,
    d_probability_field,
    field_snapshot,
    generate,
    points_extent,
    sample_from,
)
from gankit.train import distributed, step
from gankit.train.ada import auto_ada
from gankit.train.control import CannotSplit
from gankit.train.state import GRID_COLUMNS, TrainState
from gankit.train.task import Task


@dataclass
class Run:
    """What ``gankit.fit`` returns for a GAN: the run directory and the trained networks."""

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


def class_count(data: InMemoryData) -> tuple[int, list[str] | None]:
    """(K, the classes' names) of labelled data, for ``model.conditional``; a clear error otherwise."""
    if data.labels is None:
        raise GankitError(f"model.conditional needs labelled data, and {data.name} has no labels: use "
                          "data fashion-mnist, or a folder whose subfolders are the classes")
    k = len(data.classes) if data.classes else int(data.labels.max()) + 1
    if k < 2:
        raise GankitError(f"model.conditional needs at least 2 classes; {data.name} has {k}")
    return k, list(data.classes) if data.classes else None


def algorithm1(s: TrainState, next_labelled: Any, d_steps: int | None = None) -> dict[str, Tensor]:
    """One iteration of Goodfellow et al.'s Algorithm 1: ``d_steps`` updates of D, then one of G.

    ``next_labelled()`` draws the next real minibatch of the data order (and its labels if the run
    is conditional). With ``d_steps`` 1 and ``train.reuse_fake``, G's update reuses the fake batch
    of D's (one forward pass of G less; G's loss still goes through the *updated* D). ``d_steps``:
    k when steered away from the config's (gankit lab)."""
    t = s.cfg.train
    k = d_steps or t.d_steps
    reuse = t.reuse_fake and k == 1
    for _ in range(k):  # k discriminator updates ...
        real, y_real = next_labelled()  # (B, *dims), and (B,) labels if conditional
        y_fake = s.y(t.batch_size)  # (B,) classes asked of G if conditional, else None
        fake = step.fake_for_d(s, t.batch_size, keep_graph=reuse, y=y_fake)
        loss_d, d_real, d_fake = step.d_step(s, real, fake, y_real, y_fake)
    # ... then one generator update (on D's fake batch when K = 1 and reuse_fake)
    loss_g = step.g_step(s, t.batch_size, fake if reuse else None, real, lambda: next_labelled()[0],
                         y_fake if reuse else None, y_real)
    ada = {}
    if s.ada is not None:  # logged before this iteration's adjustment: the p the steps ran with
        ada = {"ada_p": s.ada.p, "ada_rt": s.ada.rt}
        s.ada.after_iteration(s.step + 1)
    # gradient norms (kept on the device): the diminished-gradient and divergence signals
    grad_g, grad_d = grad_norm(s.G), grad_norm(s.D)
    if s.scaler_G is not None:  # fp16: a step the scaler skipped for overflowing gradients is the
        # scaler at work, not divergence; it counts 0 in the means
        grad_g, grad_d = (torch.where(torch.isfinite(g), g, 0.0) for g in (grad_g, grad_d))
    return {"loss_d": loss_d, "loss_g": loss_g, "d_real": d_real, "d_fake": d_fake,
            "grad_g": grad_g, "grad_d": grad_d, **ada}


class GANTask(Task):
    """G: z -> data, D: data -> logit; trained by Algorithm 1 (see the module docstring)."""

    def setup(self, data: InMemoryData | None = None) -> None:
        cfg, t, d, device = self.cfg, self.cfg.train, self.dist, self.device
        self.d_steps: int | None = None  # k steered by gankit lab (None: train.d_steps)
        self.loss_name: str | None = None  # the loss switched to by gankit lab (None: train.loss)
        folder = data is None and cfg.data.source not in DATASETS  # a folder of the user's
        if data is None:
            data = load_data(cfg.data, t.seed)
        self.ctx.notes.extend(data.notes)
        self.data = data = data.to(device)
        self.unit = "img" if data.shape.is_image else "pt"
        self.data_size = len(data) if data.shape.is_image else None
        num_classes, classes = class_count(data) if cfg.model.conditional else (0, None)
        # Every rank walks the same global order of world * B indices and keeps its own slice.
        self.order = BatchOrder(len(data), t.batch_size * d.world, t.seed, data.index_device)
        # reg.ada unset: on for a small folder of images (Karras et al. 2020), said and recorded
        self.ada_auto: tuple[bool, str] | None = None  # (on?, why) when reg.ada was left unset
        ada = cfg.reg.ada
        if ada is None:
            self.ada_auto = auto_ada(len(data) if folder else None, data.shape.is_image)
            ada = self.ada_auto[0]
            if ada:
                self.ctx.notes.append(f"adaptive augmentation (ADA) on: {self.ada_auto[1]}")
        self.state = s = TrainState.create(cfg, data.shape, device, d, num_classes, classes, ada)
        self.precision = s.precision
        self.real_points = None
        if not data.shape.is_image:
            g = torch.Generator().manual_seed(t.seed + 2)
            self.real_points = data.batch(torch.randperm(len(data), generator=g)[:1024].to(device))
            s.extent = data.extent or points_extent(self.real_points.cpu().numpy())
        self._probe: Probe | None = None
        if cfg.log.diagnose_every and d.is_main:
            g = torch.Generator().manual_seed(t.seed + 3)  # its own RNG: training's streams are untouched
            probe_real = data.batch(torch.randperm(len(data), generator=g)[:Probe.N].to(device))
            probe_z = sample_prior(cfg.model.prior, Probe.N, cfg.model.latent_dim, generator=g)
            probe_y = default_labels(Probe.N, num_classes) if num_classes else None
            self._probe = Probe(data.traits, data.shape, probe_real, probe_z, y=probe_y, device=device)

    def resolved(self) -> dict[str, tuple[Any, str]]:
        """The width the networks were built with; for images, the size and channels of the data."""
        out: dict[str, tuple[Any, str]] = {"model.width": (self.state.width, "the architecture's default")}
        if self.data.shape.is_image:
            c, h, w = self.data.shape.dims
            out["data.image_size"] = (str(h) if h == w else f"{h}x{w}", "from the data")
            out["data.channels"] = (c, "from the data")
        if self.ada_auto is not None:
            out["reg.ada"] = self.ada_auto
        return {k: v for k, v in out.items() if self.cfg.get(k) is None}  # what the user set stays

    # ------------------------------------------------------------------ checkpoint round trip

    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        s = self.state
        tensors, optim_meta = s.train_tensors()
        return s.model_tensors(), tensors, s.meta() | {"optim": optim_meta, "data_size": self.data_size}

    def check_resume(self, meta: dict[str, Any]) -> None:
        s = self.state
        if list(meta["data_shape"]) != list(s.shape.dims):
            raise GankitError(f"the data now give {s.shape.describe()}, but this run was trained on "
                              f"{meta['data_shape']}; resume with the same data")
        if int(meta.get("num_classes") or 0) != s.num_classes:
            raise GankitError(f"the data now have {s.num_classes} classes, but this run was trained on "
                              f"{meta.get('num_classes') or 0}; resume with the same data")

    def validate_checkpoint(self, ckpt: Checkpoint) -> None:
        check_gan_meta(ckpt)  # the types of what check_resume compares, then:
        self.check_resume(ckpt.meta)  # other data are a refusal, not damage to fall back from
        self.state.check_checkpoint(ckpt)

    def restore(self, ckpt: Checkpoint) -> None:
        with restoring(ckpt):
            self.state.restore(ckpt)
        self.precision = self.state.precision

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.state.opt_G, self.state.opt_D]

    def generators(self) -> list[torch.Generator]:
        return [self.state.z_gen]  # every z, and the regularisers' noise (TrainState.draw)

    # ------------------------------------------------------------------ training

    def next_labelled(self) -> tuple[Tensor, Tensor | None]:
        """The next real minibatch of the run's data order, this rank's shard of it, with its class
        labels for a conditional run (else None)."""
        s, data = self.state, self.data
        index = distributed.shard(self.dist, self.order.indices(s.real_batches))
        s.real_batches += 1
        labels = data.labels_of(index) if s.num_classes else None
        return data.batch(index), labels

    def iteration(self, step: int) -> dict[str, Tensor]:
        self.state.step = step  # instance noise anneals with it
        logged = algorithm1(self.state, self.next_labelled, self.d_steps)
        self.state.step = step + 1
        return logged

    @property
    def diagnosis_loss(self) -> str:
        return self.loss_name or self.cfg.train.loss

    def set_loss(self, name: str) -> str:
        """GAN Lab's loss switch (e.g. minimax against non-saturating, Goodfellow et al. 2014): only
        to a loss whose D outputs mean what the current one's do (probabilities or scores), that
        brings no settings of its own (wgan's clipping, wgan-gp's penalty) and that the run's
        regularisers allow."""
        try:
            new = LOSSES.get(name)
        except GankitError as e:
            raise CannotSplit(str(e)) from None
        now = self.state.loss
        if new.implies:
            raise CannotSplit(f"{name} brings settings of its own ({', '.join(new.implies)}): train a new run with it")
        if new.probabilities != now.probabilities:
            raise CannotSplit(f"{name}'s D outputs {'are' if new.probabilities else 'are not'} probabilities, "
                              f"unlike {self.diagnosis_loss}'s: the run's readings would change meaning")
        if self.cfg.reg.label_smoothing and not new.smoothable:
            raise CannotSplit(f"{name} has no real label for this run's label smoothing")
        self.state.loss, self.loss_name = new, name
        return f"loss = {name}"

    def set_d_steps(self, k: int) -> str:
        self.d_steps = k
        return f"d_steps = {k} (D updates per G update, k of Algorithm 1)"

    def half_step(self, player: str) -> str:
        """One update of D (one of Algorithm 1's k, on the data order's next real batch and fresh
        z) or of G (on fresh z, D held fixed), as ``algorithm1`` makes them; the step count stays."""
        s, t = self.state, self.cfg.train
        if player == "d":
            real, y_real = self.next_labelled()
            y_fake = s.y(t.batch_size)
            fake = step.fake_for_d(s, t.batch_size, y=y_fake)
            loss_d, d_real, d_fake = step.d_step(s, real, fake, y_real, y_fake)
            return (f"one update of D alone: loss_d {float(loss_d):.4g}, D(x) {float(d_real):.3f}, "
                    f"D(G(z)) {float(d_fake):.3f}")
        real, y_real = self.next_labelled() if s.loss.g_needs_real else (None, None)
        loss_g = step.g_step(s, t.batch_size, None, real, lambda: self.next_labelled()[0], None, y_real)
        return f"one update of G alone: loss_g {float(loss_g):.4g}"

    # ------------------------------------------------------------------ watching and scoring

    def save_samples(self, path: Path, step: int) -> None:
        """A grid of G(fixed z) (a conditional run's: one row per class, named on the left), or for
        2-D data D's probability field with the real and the generated points (and the same as data,
        samples/step-N.json: ``gankit.sampling.field_snapshot``)."""
        s = self.state
        fake = generate(s.G_sample, s.fixed_z, s.fixed_y)
        if s.shape.is_image:
            rows = None
            if s.fixed_y is not None:
                rows = class_names(s.num_classes, s.classes)[:len(s.fixed_y) // GRID_COLUMNS]
            save_grid(fake, path, nrow=GRID_COLUMNS, row_labels=rows)
            return
        from gankit.report import plot_field

        assert s.extent is not None and self.real_points is not None
        # D's field was trained against G itself, not its moving average: the points drawn over it
        # are G's own, so the picture shows the game as it is played (the average is what
        # `gankit sample` and evaluation use; it lags G by the EMA's half-life).
        played = generate(s.G, s.fixed_z, s.fixed_y) if s.G_ema is not None else fake
        prob = d_probability_field(s.D, s.extent, device=s.device)
        png = plot_field(self.real_points.cpu().numpy(), played.float().cpu().numpy(), prob, s.extent,
                         title=f"step {step}")
        atomic_write_bytes(path, png)
        # the same game as data, for gankit lab's canvas: samples/step-N.json beside the PNG
        snap = field_snapshot(s.D, self.real_points.cpu().numpy(), played, s.extent, step)
        atomic_write_text(path.with_suffix(".json"), json.dumps(snap, separators=(",", ":")))

    def default_eval_key(self) -> str:
        return "fid" if self.data.shape.is_image else "modes"

    def higher_is_better(self, key: str) -> bool:
        from gankit.metrics import higher_is_better

        return higher_is_better(key)

    def evaluate(self, key: str) -> dict[str, float]:
        from gankit.metrics import evaluate_generator, metric_for_key

        ev = self.cfg.eval
        metrics = [metric_for_key(key)] if self.data.shape.is_image else None
        res = evaluate_generator(self.state.G_sample, self.cfg, ev.eval_n, metrics, ev.eval_features,
                                 self.device, data=self.data)
        if key not in res.values:
            raise GankitError(f"eval.eval_metric {key} is not produced for this data; it gave "
                              f"{', '.join(res.values)}")
        return res.values

    def probe(self) -> dict[str, float]:
        return self._probe.measure(self.state.G_sample) if self._probe is not None else {}

    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> Run:
        s = self.state
        return Run(run_dir, s.G_sample, s.D, self.cfg, step, history,
                   class_names(s.num_classes, s.classes) if s.num_classes else None)


__all__ = ["GANTask", "Run", "algorithm1", "class_count"]
