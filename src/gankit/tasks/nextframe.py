"""Next-frame prediction (Mathieu, Couprie & LeCun 2016): a multi-scale G predicts frame t + 1
from the last ``context`` frames, against a multi-scale D, with the L_p and gradient difference
losses beside the adversarial one.

One iteration, as the paper's section 3 (D first, then G, one step each):

    draw clips of context + 1 frames: X = the first context, Y = the last
    Y^_k = G_k(X) at the four scales k (``gankit.models.nextframe``)
    D step: sum_k L_adv(D_k(X_k, Y_k), real) + L_adv(D_k(X_k, Y^_k), fake)
    G step: lambda_adv sum_k L_adv(D_k(X_k, Y^_k), real)
            + lambda_lp sum_k ||Y_k - Y^_k||_p^p + lambda_gdl sum_k L_gdl(Y^_k, Y_k)

(nextframe.adv_weight 0: no D, a plain regression, the L2-only twin with --lp 2 --gdl-weight 0.)

For longer horizons G is rolled out on its own predictions. The sample grid shows, for held-out
sequences, the true frames above G's (the context, then the rolled-out horizon); evaluation scores
the rollouts per horizon (``gankit.metrics.nextframe``).

With nextframe.rollout R > 1 a clip holds context + R frames and G predicts R of them in turn,
each from the last ``context`` frames with its own earlier predictions among them (gradients flow
through them): G then trains on the inputs it meets when rolled out at test time, instead of only
on true frames (one-step training's exposure bias; Bengio et al. 2015). D judges the j-th
prediction against the true j-th frame given the true frames before it, so a rollout that fades is
told apart from the truth; every loss is the mean over the R predictions. With nextframe.rollout_from
N (a curriculum) G trains one frame ahead until step N and on rollouts of R after: it learns to
predict one frame well first, then to go on from its own predictions (the flow G at width 16 then
beats its L2-only twin at every horizon at six seeds of six, where rollouts from the start cost
its first frame and one-step training alone its third and fourth: docs/BENCHMARKS.md).

With train.ema > 0 (the default, as the GANs') the task keeps a moving average of G's weights
(Yazici et al. 2019), which predicts in the grids, the evaluation, the diagnosis and ``gankit
predict``. The paper keeps none (``--ema 0``), but the last G of a run swings from checkpoint to
checkpoint (one width-16 run of two ended with rollouts that spread into a haze where its step-3000
G's had faded cleanly); the average's rollouts beat the L2-only twin's in SSIM at three seeds
of three and in sharpness at two (docs/BENCHMARKS.md). Training is the same either way: the average only predicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import (
    Checkpoint,
    check_players,
    check_rng,
    load_players,
    optimizer_to_flat,
    restoring,
)
from gankit.config import Config
from gankit.data.base import BatchOrder, to_float
from gankit.data.video import VIDEOS, VideoData
from gankit.diagnosis import grad_norm
from gankit.errors import GankitError
from gankit.images import save_grid
from gankit.losses import LOSSES, GANLoss, d_probability
from gankit.losses.nextframe import gdl_loss, lp_loss
from gankit.models.nextframe import (
    DEFAULT_WIDTH,
    SCALES,
    MultiScaleDiscriminator,
    MultiScaleGenerator,
    build_nextframe,
    pyramid,
    rollout,
)
from gankit.predicting import check_nextframe_meta, load_run_videos, score_in_chunks
from gankit.tasks.translation import init_weights
from gankit.train import distributed
from gankit.train.schedule import Schedule
from gankit.train.state import (
    adam,
    ema_copy,
    ema_decay,
    lerp_ema,
    resolve_precision,
    resumed_precision,
)
from gankit.train.task import Task

N_SHOWN = 4  # held-out sequences in the sample grid: two rows each
N_PROBE = 64  # held-out sequences whose next frames the diagnosis compares (``probe``)


@dataclass
class NextFrameRun:
    """What ``gankit.fit`` returns for next-frame prediction: the run directory and the networks."""

    run_dir: Path
    G: MultiScaleGenerator
    D: MultiScaleDiscriminator
    config: Config
    step: int
    context: int
    history: list[dict[str, Any]] = field(default_factory=list)

    def predict(self, frames: Tensor, horizon: int = 1) -> Tensor:
        """frames (N, T >= context, C, H, W) in [-1, 1] -> the next ``horizon`` (N, horizon, C, H, W)."""
        device = next(self.G.parameters()).device
        return rollout(self.G, frames[:, -self.context:].to(device), horizon).cpu()


def eval_windows(data: VideoData, context: int, horizon: int, n: int) -> Tensor:
    """The first frame of the first clip of context + horizon frames of each of the first ``n``
    sequences long enough, (K,)."""
    firsts = [int(data.starts[s]) for s in range(len(data)) if int(data.lengths[s]) >= context + horizon][:n]
    if not firsts:
        raise GankitError(f"no held-out sequence holds nextframe.context + nextframe.horizon = {context + horizon} "
                          "frames; lower nextframe.horizon")
    return torch.tensor(firsts)


class NextFrameTask(Task):
    """G(X) -> the next frame against D(X, Y) at four scales (see the module docstring)."""

    unit = "clip"
    # the catalogue's cures name the image GAN's flags; these are the ones a next-frame run has
    cures = {
        "mode_collapse": "a lower --adv-weight (D's pull on G; Mathieu et al. 2016: 0.05), --rollout 1 "
                         "(training on G's own rollouts sends gradients through its predictions), lower "
                         "--lr-g and --lr-d, or resuming from a checkpoint before it (checkpoints/step-N) "
                         "with those",
        "diminished_gradient": "a lower --adv-weight, or a slower D (--lr-d under --lr-g)",
        "non_convergence": "lower --lr-g and --lr-d, or a lower --adv-weight",
    }

    def setup(self, data: Any | None = None) -> None:
        if data is not None:
            raise GankitError("next-frame prediction reads its videos from data.source (mfmnist, mfmnist-small "
                              "or a folder), not from an in-memory dataset")
        cfg, t, d, device = self.cfg, self.cfg.train, self.dist, self.device
        nf = cfg.nextframe
        context = nf.context or self._data_default("context")
        train = load_run_videos(cfg, "train", context, nf.sequences or None)
        self.context = context
        self.horizon = nf.horizon or train.horizon
        builtin = cfg.data.source in VIDEOS
        held = (load_run_videos(cfg, "test", context, min(cfg.eval.eval_n, VIDEOS.get(cfg.data.source).test_sequences))
                if builtin else train)
        self.ctx.notes.extend(train.notes)
        self.data_name, self.n_sequences = train.name, len(train)
        self.frames = train.frames.to(device)
        # the clips of each rollout length trained on, and their order: with a curriculum
        # (nextframe.rollout_from) one frame ahead first, then nextframe.rollout; each order is the one a
        # run resumed with that --rollout would draw, so the curriculum is that resume, in one run
        self.rollout, self.rollout_from = nf.rollout, nf.rollout_from or 0
        self.clip_sets: dict[int, tuple[Tensor, BatchOrder]] = {}
        for R in sorted({1, nf.rollout} if self.rollout_from else {nf.rollout}):
            first = train.clip_starts(context + R).to(device)
            if not len(first):
                raise GankitError(f"{train.name}: no training sequence holds nextframe.context + nextframe.rollout "
                                  f"= {context} + {R} frames; lower nextframe.rollout")
            self.ctx.notes.append(f"{train.name}: {len(first)} clips of {context} + {R} frames {train.frame_shape}"
                                  + (f" (from step {self.rollout_from})" if self.rollout_from and R > 1 else ""))
            self.clip_sets[R] = first, BatchOrder(len(first), t.batch_size * d.world, t.seed, device)
        first = eval_windows(held, context, self.horizon, len(held))
        self.held = held.clips(first, context + self.horizon)  # (K, context + horizon, C, H, W) uint8, CPU
        self._probe_truth: float | None = None  # the true next frames' diversity (``probe``)
        self._build(train.frame_shape)

    def _data_default(self, key: str) -> int:
        src = self.cfg.data.source
        return int(getattr(VIDEOS.get(src), key)) if src in VIDEOS else {"context": 4, "horizon": 1}[key]

    def _build(self, shape: tuple[int, int, int]) -> None:
        cfg, t = self.cfg, self.cfg.train
        self.shape = shape
        self.width = cfg.model.width or DEFAULT_WIDTH
        torch.manual_seed(t.seed)  # the same weights on every rank and in every run of this seed
        G, D = build_nextframe(self.context, shape, self.width, cfg.nextframe.frame_g)
        for net in (G, D):
            init_weights(net)
        G.start()
        self.G, self.D = G.to(self.device), D.to(self.device)
        self.G_ema = ema_copy(self.G, t.ema)
        self.opt_G = adam(self.G, t.lr_g, (t.beta1, t.beta2))
        self.opt_D = adam(self.D, t.lr_d, (t.beta1, t.beta2))
        self.loss: GANLoss = LOSSES.get(t.loss)
        self.real_batches = 0
        self.precision = resolve_precision(t.precision, self.device, is_image=True)

    def resolved(self) -> dict[str, tuple[Any, str]]:
        c, h, w = self.shape
        out = {"data.image_size": (str(h) if h == w else f"{h}x{w}", "from the data"),
               "data.channels": (c, "from the data"),
               "model.width": (DEFAULT_WIDTH, "the architecture's default"),
               "nextframe.context": (self.context, "the data's layout"),
               "nextframe.horizon": (self.horizon, "the data's layout")}
        return {k: v for k, v in out.items() if self.cfg.get(k) is None}

    # ------------------------------------------------------------------ one iteration

    def descend(self, loss: Tensor, opt: torch.optim.Optimizer, net: nn.Module) -> None:
        loss.backward()
        distributed.average_gradients(self.dist, net.parameters())
        opt.step()

    def rollout_at(self, step: int) -> int:
        """The frames G predicts per clip at ``step``: 1 before nextframe.rollout_from, then nextframe.rollout."""
        return 1 if step < self.rollout_from else self.rollout

    def clips(self, step: int) -> Tensor:
        """This rank's clips of batch ``step``: (B, context + R, C, H, W) in [-1, 1], R = ``rollout_at(step)``."""
        R = self.rollout_at(step)
        clip_first, order = self.clip_sets[R]
        index = distributed.shard(self.dist, order.indices(step))
        first = clip_first.index_select(0, index)
        length = self.context + R
        clips = to_float(self.frames[(first[:, None] + torch.arange(length, device=self.device)).flatten()])
        return clips.view(len(index), length, *self.shape)

    def iteration(self, step: int) -> dict[str, Tensor]:
        nf, G, D, ctx = self.cfg.nextframe, self.G, self.D, self.context
        self.real_batches = step + 1
        clips = self.clips(step)  # (B, context + R, C, H, W)
        # G rolled out R frames: prediction j reads the last ctx frames, its own predictions among them
        window, X, preds, targets = clips[:, :ctx], [], [], []
        for j in range(clips.shape[1] - ctx):  # R = rollout_at(step) predictions
            with self.autocast():
                pyr = [p.float() for p in G.pyramid(window.flatten(1, 2))]  # the frame at 4 scales
            preds.append(pyr)
            targets.append(pyramid(clips[:, ctx + j]))
            X.append(clips[:, j:j + ctx].flatten(1, 2))  # D's condition: the true frames before it
            window = torch.cat([window[:, 1:], pyr[-1][:, None].to(window.dtype)], 1)
        # the R predictions as one batch (R * B) for D and the losses: each term a mean over them
        X_all = torch.cat(X)
        preds_all = [torch.cat(ps) for ps in zip(*preds, strict=True)]
        targets_all = [torch.cat(ts) for ts in zip(*targets, strict=True)]
        zero = torch.zeros((), device=self.device)
        loss_D, p_real, p_fake, grad_d = zero, zero + 0.5, zero + 0.5, zero
        adv = nf.adv_weight > 0
        if adv:  # D step: D_k judges (X_k, Y_k) real and (X_k, Y^_k) fake at every scale
            self.opt_D.zero_grad(set_to_none=True)
            with self.autocast():
                l_real = D(X_all, targets_all).float()  # (R * B, SCALES): one logit per scale
                l_fake = D(X_all, [p.detach() for p in preds_all]).float()
            loss_D = SCALES * self.loss.d_loss(l_real, l_fake)  # summed over the scales
            self.descend(loss_D, self.opt_D, D)
            p_real, p_fake, grad_d = d_probability(l_real), d_probability(l_fake), grad_norm(D)
            D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        loss_adv = zero
        if adv:
            with self.autocast():
                loss_adv = SCALES * self.loss.g_loss(D(X_all, preds_all).float())
        loss_lp = sum((lp_loss(p, y, nf.lp) for p, y in zip(preds_all, targets_all, strict=True)), zero)
        loss_gdl = sum((gdl_loss(p, y) for p, y in zip(preds_all, targets_all, strict=True)), zero) \
            if nf.gdl_weight > 0 else zero
        loss_G = nf.adv_weight * loss_adv + nf.lp_weight * loss_lp + nf.gdl_weight * loss_gdl
        self.descend(loss_G, self.opt_G, G)
        if self.G_ema is not None:
            lerp_ema(self.G_ema, G, ema_decay(Schedule(self.cfg, self.dist.world), step))
        if adv:
            D.requires_grad_(True)
        return {"loss_d": loss_D.detach(), "loss_g": loss_G.detach(), "d_real": p_real, "d_fake": p_fake,
                "grad_g": grad_norm(G), "grad_d": grad_d, "loss_g_adv": loss_adv.detach(),
                "loss_lp": loss_lp.detach(), "loss_gdl": loss_gdl.detach()}

    # ------------------------------------------------------------------ checkpoint round trip

    @property
    def G_sample(self) -> MultiScaleGenerator:
        """The generator that predicts in the grids, evaluation and probe: the moving average if kept."""
        return self.G_ema if self.G_ema is not None else self.G

    def nets(self) -> dict[str, nn.Module]:
        return {"G": self.G, "D": self.D, **({"G_ema": self.G_ema} if self.G_ema is not None else {})}

    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        model = {f"{name}.{k}": v for name, net in self.nets().items() for k, v in net.state_dict().items()}
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        meta = {"real_batches": self.real_batches, "optim": {"opt_G": mG, "opt_D": mD},
                # self-describing: `gankit predict` rebuilds G from it
                "nextframe": {"shape": list(self.shape), "context": self.context, "horizon": self.horizon,
                              "width": self.width, "data": self.data_name, "sequences": self.n_sequences}}
        return model, {**tG, **tD, "rng.torch": torch.get_rng_state()}, meta

    def check_resume(self, meta: dict[str, Any]) -> None:
        saved = meta["nextframe"]
        if [saved["shape"], saved["context"]] != [list(self.shape), self.context] or \
                saved.get("sequences") != self.n_sequences:
            raise GankitError(f"the data now give {self.n_sequences} sequences of {list(self.shape)} frames with a "
                              f"context of {self.context}, other than the {saved.get('sequences')} of "
                              f"{saved['shape']} with {saved['context']} this run was trained on; resume with the "
                              "same data")

    def validate_checkpoint(self, ckpt: Checkpoint) -> None:
        check_nextframe_meta(ckpt)
        self.check_resume(ckpt.meta)
        check_players(ckpt, self.nets(), {"opt_G": self.opt_G, "opt_D": self.opt_D})
        check_rng(ckpt, "rng.torch", torch.default_generator)

    def restore(self, ckpt: Checkpoint) -> None:
        with restoring(ckpt):
            self.real_batches = load_players(ckpt, self.nets(), {"opt_G": self.opt_G, "opt_D": self.opt_D})
            torch.set_rng_state(ckpt.train["rng.torch"])
            self.precision = resumed_precision(self.cfg.train.precision, self.precision, ckpt.meta)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_G, self.opt_D]

    def generators(self) -> list[torch.Generator]:
        return [torch.default_generator]  # nothing random is drawn per step: the data order is the step's

    # ------------------------------------------------------------------ watching and scoring

    def save_samples(self, path: Path, step: int) -> None:
        """For each of the first held-out sequences, two rows: the true frames (context, then the
        horizon) above G's (the same context, then its rollout)."""
        shown = to_float(self.held[:N_SHOWN]).to(self.device)  # (S, context + horizon, C, H, W)
        pred = rollout(self.G_sample, shown[:, :self.context], self.horizon)
        rows, labels = [], []
        for i in range(len(shown)):
            rows += [shown[i], torch.cat([shown[i, :self.context], pred[i]])]
            labels += [f"truth {i + 1}", f"G {i + 1}"]
        save_grid(torch.cat(rows).float().cpu(), path, nrow=self.context + self.horizon, row_labels=labels)

    @torch.no_grad()
    def probe(self) -> dict[str, float]:
        """``diversity``: how varied G's next frames of the first held-out sequences are, against
        the true next frames (mean pairwise distance, frames pooled to 16x16; 1 = as varied). A G
        that draws one frame whatever the past, a blank one say, scores 0: the diagnosis calls it
        mode collapse (a prediction fading over a long rollout is not measured: one step only)."""
        from gankit.diagnosis import mean_pairwise_distance, pooled_pixels

        held = to_float(self.held[:N_PROBE]).to(self.device)  # (K, context + horizon, C, H, W)
        if len(held) < 2:
            return {}
        if self._probe_truth is None:
            self._probe_truth = mean_pairwise_distance(pooled_pixels(held[:, self.context]))
        pred = rollout(self.G_sample, held[:, :self.context], 1)[:, 0]
        return {"diversity": round(mean_pairwise_distance(pooled_pixels(pred)) / max(self._probe_truth, 1e-12), 4)}

    def default_eval_key(self) -> str:
        return "ssim"

    def higher_is_better(self, key: str) -> bool:
        from gankit.metrics.nextframe import higher_is_better

        return higher_is_better(key)

    def evaluate(self, key: str) -> dict[str, float]:
        """The scores of G's rollouts on up to eval.eval_n held-out sequences: each averaged over the
        horizons, and at the first and the last horizon (``ssim@1``, ``ssim@10``)."""
        from gankit.metrics.nextframe import SCORES

        every = score_in_chunks(lambda x, h: rollout(self.G_sample, x.to(self.device), h).cpu(),
                                self.held[:self.cfg.eval.eval_n], self.context, self.horizon)
        keep = {k for s in SCORES for k in (s, f"{s}@1", f"{s}@{self.horizon}")}
        values = {k: v for k, v in every.items() if k in keep}
        if key not in every:
            raise GankitError(f"eval.eval_metric {key} is not produced for next-frame prediction; it gives "
                              f"{', '.join(values)}")
        values[key] = every[key]
        return values

    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> NextFrameRun:
        return NextFrameRun(run_dir, self.G_sample, self.D, self.cfg, step, self.context, history)


__all__ = ["NextFrameRun", "NextFrameTask", "eval_windows"]
