"""Novel-view synthesis: new angles of an object from one view (Tatarchenko et al. 2016; Zhou et
al. 2016), as a conditional GAN with L1 (Isola et al. 2017's recipe).

A training pair is two views of one object: the source x_s at angles a_s and the target x_t at
a_t; c = angle_code(a_s, a_t) (sin/cos of the azimuth turned and of both elevations). One
iteration, D first, then G (pix2pix's ``optimize_parameters``):

    fake = G(x_s, c)
    D step: D judges (x_s, x_t, c) real and (x_s, fake, c) fake, loss halved
    G step: view_adv * (fool the updated D on (x_s, fake, c)) + view_l1 * ||fake - x_t||_1

``--view-adv 0`` is the L1-only twin (D still trains, so the runs differ only in G's loss). Pairs
are drawn per step from a generator seeded by (seed, step): any step's batch is known without
replaying the ones before it, so resume is exact. Held-out objects are scored by
``gankit.metrics.views``.
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
from gankit.data.base import to_float
from gankit.data.views import ViewSet, load_views
from gankit.diagnosis import grad_norm
from gankit.errors import GankitError
from gankit.images import save_grid
from gankit.losses import LOSSES, GANLoss, d_probability
from gankit.losses.translation import l1
from gankit.models.views import ARCH, DEFAULT_WIDTH, angle_code, build_views
from gankit.tasks.translation import init_weights
from gankit.train import distributed
from gankit.train.state import adam, resolve_precision, resumed_precision
from gankit.train.task import Task

N_FIXED = 8  # held-out pairs in every sample grid: one column each
TASK = "views"


@dataclass
class ViewRun:
    """What ``gankit.fit`` returns for novel-view synthesis: the run directory and G and D."""

    run_dir: Path
    nets: dict[str, nn.Module]
    config: Config
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def G(self) -> nn.Module:
        return self.nets["G"]


def load_run_views(cfg: Config, split: str) -> ViewSet:
    """The run's view set (``split`` train or test), rendered or read from the cache."""
    d = cfg.data
    size = d.size()
    if size is not None and size[0] != size[1]:
        raise GankitError(f"data.image_size {d.image_size}: views are square; give one number")
    return load_views(d.source, split, size[0] if size else None, 0, d.cache_dir, cfg.log.progress)


class ViewsTask(Task):
    row_names = ("source", "G(source, angles)", "target")

    def setup(self, data: Any | None = None) -> None:
        if data is not None:
            raise GankitError("novel-view synthesis reads its views from data.source (views, views-tiny or a "
                              "folder of object folders), not from an in-memory dataset")
        cfg, device = self.cfg, self.device
        train, test = load_run_views(cfg, "train"), load_run_views(cfg, "test")
        self.ctx.notes.extend(train.notes)
        self.ctx.notes.append(f"{train.name}: {len(train.objects)} objects ({len(train)} views) to train on, "
                              f"{len(test.objects)} held out ({len(test)} views)")
        if train.images.shape[1:] != test.images.shape[1:]:
            raise GankitError(f"{train.name}: the held-out views are {tuple(test.images.shape[1:])}, the training "
                              f"views {tuple(train.images.shape[1:])}")
        self.data_name = train.name
        self.images, self.angles = train.images.to(device), train.angles.to(device)
        starts, counts = train.starts_counts()
        self.view_start = starts[train.obj].to(device)  # (M,): first view of each view's object
        self.view_count = counts[train.obj].to(device)  # (M,): its object's number of views
        self.held_out = test
        from gankit.metrics.views import eval_pairs

        s, t = eval_pairs(test, N_FIXED, seed=1)
        self.fixed = (to_float(test.images[s]).to(device), angle_code(test.angles[s], test.angles[t]).to(device),
                      to_float(test.images[t]).to(device))
        elevations = train.angles[:, 1]
        self.source_elevation = float(elevations.mode().values)  # `gankit sample --angles` turns at this
        self._build(tuple(train.images.shape[1:]))  # type: ignore[arg-type]

    def _build(self, shape: tuple[int, int, int]) -> None:
        t = self.cfg.train
        torch.manual_seed(t.seed)
        self.shape = shape
        self.nets = build_views(shape, self.cfg.model.width, self.cfg.views.view_g)
        for net in self.nets.values():
            init_weights(net)
            net.to(self.device)
        self.opt_G = adam(self.nets["G"], t.lr_g, (t.beta1, t.beta2))
        self.opt_D = adam(self.nets["D"], t.lr_d, (t.beta1, t.beta2))
        self.loss: GANLoss = LOSSES.get(t.loss)
        self.real_batches = 0
        self.precision = resolve_precision(t.precision, self.device, is_image=True)

    def resolved(self) -> dict[str, tuple[Any, str]]:
        out = {"data.image_size": (str(self.shape[1]), "from the data"),
               "data.channels": (self.shape[0], "from the data"),
               "model.width": (DEFAULT_WIDTH, "novel-view's default")}
        return {k: v for k, v in out.items() if self.cfg.get(k) is None}

    # ------------------------------------------------------------------ one iteration

    def batch(self, step: int) -> tuple[Tensor, Tensor, Tensor]:
        """This rank's shard of batch ``step``: source views, target views (B, C, H, W) in
        [-1, 1] and their angle codes (B, 6). Drawn from (seed, step) alone."""
        self.real_batches = step + 1
        n = self.cfg.train.batch_size * self.dist.world
        # drawn on the device (no copy from the host each step): the same pairs on the same device
        g = torch.Generator(self.device).manual_seed((self.cfg.train.seed * 1_000_003 + step) % 2**63)
        src = torch.randint(len(self.images), (n,), generator=g, device=self.device)
        u = torch.rand(n, generator=g, device=self.device)
        tgt = self.view_start[src] + (u * self.view_count[src]).long().clamp(max=self.view_count[src] - 1)
        src, tgt = distributed.shard(self.dist, src), distributed.shard(self.dist, tgt)
        code = angle_code(self.angles[src], self.angles[tgt])
        return to_float(self.images[src]), to_float(self.images[tgt]), code

    def descend(self, loss: Tensor, opt: torch.optim.Optimizer, net: nn.Module) -> None:
        loss.backward()
        distributed.average_gradients(self.dist, net.parameters())
        opt.step()

    def iteration(self, step: int) -> dict[str, Tensor]:
        source, target, code = self.batch(step)
        G, D = self.nets["G"], self.nets["D"]
        with self.autocast():
            fake = G(source, code).float()
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            logits_real = D(source, target, code).float()
            logits_fake = D(source, fake.detach(), code).float()
        loss_D = 0.5 * self.loss.d_loss(logits_real, logits_fake)  # halved as pix2pix (section 3.3)
        self.descend(loss_D, self.opt_D, D)
        D.requires_grad_(False)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            logits_G = D(source, fake, code).float()
        loss_G_GAN = self.loss.g_loss(logits_G)
        loss_G_L1 = self.cfg.views.view_l1 * l1(fake, target)
        loss_G = self.cfg.views.view_adv * loss_G_GAN + loss_G_L1
        self.descend(loss_G, self.opt_G, G)
        D.requires_grad_(True)
        return {"loss_d": loss_D.detach(), "loss_g": loss_G.detach(), "d_real": d_probability(logits_real),
                "d_fake": d_probability(logits_fake), "grad_g": grad_norm(G), "grad_d": grad_norm(D),
                "loss_g_gan": loss_G_GAN.detach(), "loss_l1": loss_G_L1.detach()}

    # ------------------------------------------------------------------ checkpoint round trip

    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        model = {f"{name}.{k}": v for name, net in self.nets.items() for k, v in net.state_dict().items()}
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        meta = {"real_batches": self.real_batches, "optim": {"opt_G": mG, "opt_D": mD},
                # self-describing: `gankit sample --angles` rebuilds G from it
                "views": {"shape": list(self.shape), "data": self.data_name,
                          "source_elevation": self.source_elevation}}
        return model, {**tG, **tD, "rng.torch": torch.get_rng_state()}, meta

    def check_resume(self, meta: dict[str, Any]) -> None:
        saved = meta["views"]["shape"]
        if list(saved) != list(self.shape):
            raise GankitError(f"the data now give views of {tuple(self.shape)}, but this run was trained on "
                              f"{tuple(saved)}; resume with the same data")

    def validate_checkpoint(self, ckpt: Checkpoint) -> None:
        from gankit.view_sampling import check_views_meta

        check_views_meta(ckpt)
        self.check_resume(ckpt.meta)
        check_players(ckpt, self.nets, {"opt_G": self.opt_G, "opt_D": self.opt_D})
        check_rng(ckpt, "rng.torch", torch.default_generator)

    def restore(self, ckpt: Checkpoint) -> None:
        with restoring(ckpt):
            self.real_batches = load_players(ckpt, self.nets, {"opt_G": self.opt_G, "opt_D": self.opt_D})
            torch.set_rng_state(ckpt.train["rng.torch"])
            self.precision = resumed_precision(self.cfg.train.precision, self.precision, ckpt.meta)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_G, self.opt_D]

    def generators(self) -> list[torch.Generator]:
        return [torch.default_generator]  # dropout in the U-Net

    # ------------------------------------------------------------------ watching and scoring

    def save_samples(self, path: Path, step: int) -> None:
        """One column per held-out pair: source, G's view at the target angles, the true target."""
        source, code, target = self.fixed
        G = self.nets["G"]
        was = G.training
        G.eval()
        with torch.no_grad():
            fake = G(source, code).float()
        G.train(was)
        save_grid(torch.cat([source, fake, target]).cpu(), path, nrow=len(source), row_labels=list(self.row_names))

    def default_eval_key(self) -> str:
        return "ssim"

    def higher_is_better(self, key: str) -> bool:
        from gankit.metrics.views import higher_is_better

        return higher_is_better(key)

    def evaluate(self, key: str) -> dict[str, float]:
        from gankit.metrics.views import score_views

        values = score_views(self.nets["G"], self.held_out, self.cfg.eval.eval_n, self.device)
        if key not in values:
            raise GankitError(f"eval.eval_metric {key} is not produced during training for model.arch={ARCH}; "
                              f"it gives {', '.join(values)} (angle_acc: bench/views.py)")
        return values

    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> ViewRun:
        return ViewRun(run_dir, self.nets, self.cfg, step, history)


__all__ = ["TASK", "ViewRun", "ViewsTask", "load_run_views"]
