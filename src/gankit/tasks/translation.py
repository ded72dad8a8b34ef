"""What the image translators share: pix2pix (Isola et al. 2017), CycleGAN (Zhu et al. 2017) and the
Domain Transfer Network (Taigman, Polyak & Wolf 2017).

A translator learns G: A -> B from two domains of images (aligned pairs for pix2pix, two unpaired
sets for CycleGAN). This base owns their networks by the papers' names (G, D or G_AB, G_BA, D_A,
D_B), one Adam over the generators and one over the discriminators, the data order of each domain,
the sample grid (input / output / target rows on held-out inputs), the checkpoint round trip and the
scores; ``Pix2PixTask`` and ``CycleGANTask`` (one file each) add their iteration.

Under torchrun every rank draws the same global batch of world * B indices and keeps its slice;
after each backward pass the gradients are averaged over the ranks (``distributed.
average_gradients``) before the optimiser steps, so 2 ranks at batch B take the step of one
process at 2B wherever the networks hold no statistics across the batch (CycleGAN's instance
norm; not pix2pix's batch norm, whose statistics are per rank).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gankit.checkpoint import (
    TRAIN,
    Checkpoint,
    check_players,
    check_rng,
    check_train_tensor,
    load_players,
    optimizer_to_flat,
    restoring,
)
from gankit.config import Config
from gankit.data.base import BatchOrder, to_float
from gankit.data.paired import PairedData, UnpairedData
from gankit.diagnosis import grad_norm
from gankit.errors import GankitError
from gankit.images import save_grid
from gankit.losses import LOSSES, GANLoss
from gankit.models.translators import TRANSLATORS, Translator, build_translator
from gankit.train import distributed
from gankit.train.image_pool import ImagePool
from gankit.train.state import adam, resolve_precision, resumed_precision
from gankit.train.task import Task
from gankit.translating import check_translator_meta, generator_for, load_data, translate_images
from gankit.validate import Damaged

N_FIXED = 8  # held-out inputs shown in every sample grid: one column each

Data = PairedData | UnpairedData


def init_weights(net: nn.Module) -> None:
    """Both papers' initialisation (their code's ``init_type normal``): convolution weights from
    N(0, 0.02), biases 0; normalisation scales from N(1, 0.02), shifts 0."""
    for m in net.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d | nn.InstanceNorm2d) and m.weight is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


@dataclass
class TranslationRun:
    """What ``gankit.fit`` returns for a translator: the run directory and the trained networks."""

    run_dir: Path
    nets: dict[str, nn.Module]
    config: Config
    step: int
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def G(self) -> nn.Module:
        """The A -> B generator (pix2pix's G, CycleGAN's G_AB)."""
        return self.nets["G"] if "G" in self.nets else self.nets["G_AB"]

    def translate(self, images: Tensor, direction: str = "AtoB") -> Tensor:
        """images (N, C, H, W) in [-1, 1] -> translations (N, C', H, W) in [-1, 1], on the CPU."""
        G = generator_for(self.nets, self.config.model.arch, direction)
        return translate_images(G, images.to(next(G.parameters()).device)).cpu()


class TranslationTask(Task):
    """The shared machinery of the translators (see the module docstring)."""

    #: the names of the grid's rows, top to bottom
    row_names: tuple[str, ...] = ()

    def setup(self, data: Any | None = None) -> None:
        if data is not None:
            raise GankitError("a translator reads its two domains from data.source (a task or folders), "
                              "not from an in-memory dataset; pass data by name or path")
        cfg, t, d, device = self.cfg, self.cfg.train, self.dist, self.device
        self.translator: Translator = TRANSLATORS.get(cfg.model.arch)
        data = load_data(cfg)
        held_out = load_data(cfg, "test")  # built-in tasks: Fashion-MNIST's test set; folders: the same
        self.ctx.notes.extend(data.notes)  # folders: what was found, and every file skipped with its reason
        self.ctx.notes.append(f"{data.name}: A {len(data.A)} x {tuple(data.A.shape[1:])}, B {len(data.B)} x "
                              f"{tuple(data.B.shape[1:])}" + (" (paired)" if self.translator.paired
                                                               else " (unpaired)"))
        self.task_name = data.name
        self.classes = list(data.classes) if isinstance(data, UnpairedData) else None
        # the classifier that reads domain B where the data name one (fashion2emoji: "emoji")
        self.target_classifier = data.target_classifier if isinstance(data, UnpairedData) else None
        self.A, self.B = data.A.to(device), data.B.to(device)
        self.order_A = BatchOrder(len(self.A), t.batch_size * d.world, t.seed, device)
        # paired: B follows A's order; unpaired: B in its own order, as CycleGAN's unaligned loader
        self.order_B = self.order_A if self.translator.paired else \
            BatchOrder(len(self.B), t.batch_size * d.world, t.seed + 1, device)
        self.held_out = held_out  # scored by ``evaluate``, kept on the CPU
        self.fixed_A = to_float(held_out.A[:N_FIXED]).to(device)
        self.fixed_B = to_float(held_out.B[:N_FIXED]).to(device)
        self._build(data)

    def _build(self, data: Data) -> None:
        """Fresh networks (same seed, same weights on every rank) and optimisers."""
        cfg, t = self.cfg, self.cfg.train
        torch.manual_seed(t.seed)
        self.shape_A = tuple(data.A.shape[1:])
        self.shape_B = tuple(data.B.shape[1:])
        self.check_shapes()
        self.nets: dict[str, nn.Module] = build_translator(
            cfg.model.arch, self.shape_A, self.shape_B, cfg.model.width or 0, cfg.translate)  # type: ignore[arg-type]
        for net in self.nets.values():
            init_weights(net)
            net.to(self.device)
            if self.translator.channels_last:
                net.to(memory_format=torch.channels_last)
        self.gens = nn.ModuleList([self.nets[n] for n in self.translator.generators])
        self.discs = nn.ModuleList([m for n, m in self.nets.items() if n not in self.translator.generators])
        self.opt_G = adam(self.gens, t.lr_g, (t.beta1, t.beta2))
        self.opt_D = adam(self.discs, t.lr_d, (t.beta1, t.beta2))
        self.loss: GANLoss = LOSSES.get(t.loss)
        self.pools: dict[str, ImagePool] = {}
        self.real_batches = 0  # batches drawn from each domain's order so far
        self.precision = resolve_precision(t.precision, self.device, is_image=True)

    def check_shapes(self) -> None:
        """Refuse domain shapes the task cannot translate between (CycleGAN's identity loss)."""

    def resolved(self) -> dict[str, tuple[Any, str]]:
        """The width the networks were built with, the size and channels of the data."""
        c, h, w = self.shape_A
        out = {"data.image_size": (str(h) if h == w else f"{h}x{w}", "from the data"),
               "data.channels": (c, "from the data (domain A)"),
               "model.width": (self.translator.default_width, "the translator's default")}
        if self.shape_B[0] != c:  # gray A, RGB B (fashion2emoji): unset, so a resume reads them so again
            del out["data.channels"]
        return {k: v for k, v in out.items() if self.cfg.get(k) is None}  # what the user set stays

    # ------------------------------------------------------------------ one iteration's helpers

    def batch(self, step: int) -> tuple[Tensor, Tensor]:
        """This rank's shard of batch ``step`` of each domain's order: real_A (B, Ca, H, W),
        real_B (B, Cb, H, W) in [-1, 1]."""
        self.real_batches = step + 1
        layout = self.translator.channels_last
        index_A = distributed.shard(self.dist, self.order_A.indices(step))
        index_B = distributed.shard(self.dist, self.order_B.indices(step))
        return (to_float(self.A.index_select(0, index_A), layout),
                to_float(self.B.index_select(0, index_B), layout))

    def descend(self, loss: Tensor, opt: torch.optim.Optimizer, nets: nn.Module) -> None:
        """Backward, gradients averaged over the ranks (torchrun), one optimiser step."""
        loss.backward()
        distributed.average_gradients(self.dist, nets.parameters())
        opt.step()

    def grad_norms(self) -> dict[str, Tensor]:
        return {"grad_g": grad_norm(self.gens), "grad_d": grad_norm(self.discs)}

    @staticmethod
    def frozen(nets: Iterable[nn.Module], frozen: bool) -> None:
        for net in nets:
            net.requires_grad_(not frozen)

    # ------------------------------------------------------------------ checkpoint round trip

    def checkpoint(self) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Any]]:
        model = {f"{name}.{k}": v for name, net in self.nets.items() for k, v in net.state_dict().items()}
        tG, mG = optimizer_to_flat("opt_G", self.opt_G)
        tD, mD = optimizer_to_flat("opt_D", self.opt_D)
        tensors = {**tG, **tD, "rng.torch": torch.get_rng_state()}  # dropout in pix2pix's U-Net
        for name, pool in self.pools.items():
            tensors.update(pool.state_tensors(name))
        meta = {
            "real_batches": self.real_batches,  # batch i of the data order: a function of seed and i
            "optim": {"opt_G": mG, "opt_D": mD},
            # self-describing: ``gankit translate`` rebuilds the generators from it
            "translator": {"arch": self.cfg.model.arch, "task": self.task_name,
                           "paired": self.translator.paired, "generators": list(self.translator.generators),
                           "shape_A": list(self.shape_A), "shape_B": list(self.shape_B),
                           "classes": self.classes},
        }
        return model, tensors, meta

    def check_resume(self, meta: dict[str, Any]) -> None:
        saved = meta["translator"]
        if [saved["shape_A"], saved["shape_B"]] != [list(self.shape_A), list(self.shape_B)]:
            raise GankitError(f"the data now give A {self.shape_A} and B {self.shape_B}, but this run was "
                              f"trained on A {tuple(saved['shape_A'])} and B {tuple(saved['shape_B'])}; "
                              "resume with the same data")

    def validate_checkpoint(self, ckpt: Checkpoint) -> None:
        check_translator_meta(ckpt)  # what `gankit translate` rebuilds the generators from, then:
        self.check_resume(ckpt.meta)  # other data are a refusal, not damage to fall back from
        check_players(ckpt, self.nets, {"opt_G": self.opt_G, "opt_D": self.opt_D})
        check_rng(ckpt, "rng.torch", torch.default_generator)
        for name, pool in self.pools.items():
            check_rng(ckpt, f"{name}.rng", pool.gen)
            if f"{name}.images" in (ckpt.train or {}):
                images = check_train_tensor(ckpt, f"{name}.images", floating=True)
                if images.dim() != 4:
                    raise Damaged(ckpt.path / TRAIN, f"its tensor {name}.images has shape {list(images.shape)}, "
                                                     "not (N, C, H, W)")

    def restore(self, ckpt: Checkpoint) -> None:
        with restoring(ckpt):
            self._restore(ckpt)

    def _restore(self, ckpt: Checkpoint) -> None:
        self.real_batches = load_players(ckpt, self.nets, {"opt_G": self.opt_G, "opt_D": self.opt_D})
        torch.set_rng_state(ckpt.train["rng.torch"])
        for name, pool in self.pools.items():
            pool.load_state_tensors({k: v.to(self.device) if k.endswith(".images") else v
                                     for k, v in ckpt.train.items() if k.startswith(name + ".")}, name)
        self.precision = resumed_precision(self.cfg.train.precision, self.precision, ckpt.meta)

    def optimizers(self) -> list[torch.optim.Optimizer]:
        return [self.opt_G, self.opt_D]

    def generators(self) -> list[torch.Generator]:
        return [torch.default_generator]  # the data order, and dropout in pix2pix's U-Net

    # ------------------------------------------------------------------ watching and scoring

    def sample_rows(self) -> list[Tensor]:
        """The rows of the sample grid, each (N_FIXED, C, H, W), named by ``row_names``."""
        raise NotImplementedError

    def save_samples(self, path: Path, step: int) -> None:
        """One column per held-out input, rows as ``sample_rows`` and ``row_names`` say (gray rows
        become RGB when another row is in colour: one grid holds both)."""
        rows = self.sample_rows()
        c = max(r.shape[1] for r in rows)
        rows = [r.expand(-1, c, -1, -1) for r in rows]
        save_grid(torch.cat(rows).float().cpu(), path, nrow=len(self.fixed_A), row_labels=list(self.row_names))

    def evaluate(self, key: str) -> dict[str, float]:
        """The translation scores (``gankit.metrics.translation``) on up to ``eval.eval_n`` held-out
        inputs, generators in eval mode (no random stream of training is drawn from)."""
        from gankit.metrics.translation import score_translation

        gens = {"AtoB": generator_for(self.nets, self.cfg.model.arch, "AtoB"),
                "BtoA": self.nets.get("G_BA")}
        values = score_translation(gens, self.held_out, self.cfg.eval.eval_n, self.device).values
        if key not in values:
            raise GankitError(f"eval.eval_metric {key} is not produced for model.arch={self.cfg.model.arch} on "
                              f"this data; it gives {', '.join(values)}")
        return values

    def higher_is_better(self, key: str) -> bool:
        from gankit.metrics.translation import higher_is_better

        return higher_is_better(key)

    def result(self, run_dir: Path, step: int, history: list[dict[str, Any]]) -> TranslationRun:
        return TranslationRun(run_dir, self.nets, self.cfg, step, history)


__all__ = ["N_FIXED", "TranslationRun", "TranslationTask", "init_weights"]
