"""The Domain Transfer Network (Taigman, Polyak & Wolf 2017): pictures -> emoji with f kept constant.

G = g o f: f is a fixed feature function that reads both domains (the fmnist classifier's 128-d
features, frozen: ``gankit.models.dtn``), g a decoder learned from scratch. One iteration, as the
paper's public re-implementations order it (D first, then G), on a batch x of the source domain and
a batch t of the target domain:

    G(x) = g(f(x)), G(t) = g(f(t))
    D step: L_D, D's three-way cross-entropy: G(x) is "fake from source", G(t) "fake from target",
        t "real target" (eq. 3)
    G step (D frozen): L_G = L_GANG + alpha L_CONST + beta L_TID + gamma L_TV (eq. 8): D should call
        G(x) and G(t) real (eq. 4), f(G(x)) should equal f(x) (eq. 5), G(t) should equal t (eq. 6),
        and G(x) be smooth (eq. 7)

(``gankit.losses.dtn``; alpha, beta, gamma are ``translate.const``, ``tid``, ``tv``: 15, 15, 0 as the
paper's digit experiment. ``translate.const_on`` says how f(x) and f(G(x)) are compared: f's
features, as the paper; f's class scores, which ask G to keep the class evidence f sees and nothing
else; or f's verdict only (Hoffman et al. 2018's semantic consistency). ``translate.d_cond f-class``
tells D the class f's head reads on each image's input, x's for G(x) and t's for t and G(t), through
a projection (Miyato & Koyama 2018): D then learns what a real target of each class looks like, and
G(x) must look like one of x's class.)
The domain bridge: f reads 28 x 28 gray images, so every image it sees, photo, emoji or G's RGB
output, goes through its input adapter (BT.601 luma, bilinear resizing).
The grid shows, one column per class of held-out data (or the first held-out inputs of folders),
the source x, G(x), a target t and G(t).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from gankit.data.base import to_float
from gankit.errors import GankitError, display_path
from gankit.losses.dtn import (
    class_constancy,
    d_loss,
    f_constancy,
    g_gan_loss,
    real_probability,
    target_identity,
    total_variation,
)
from gankit.metrics.fmnist_classifier import REBUILD as FMNIST_REBUILD
from gankit.metrics.fmnist_classifier import WEIGHTS as FMNIST_WEIGHTS
from gankit.metrics.shipped import read_tensors
from gankit.models.dtn import DTNGenerator, check_size
from gankit.tasks.translation import TranslationTask
from gankit.train.state import adam
from gankit.translating import translate_images

MIN_TARGET = 10  # target images the DTN needs at least: D learns the target style from a set

# translate.const_on -> L_CONST from f's features of x and of G(x), h_x and h_gx (N, 128): the paper's
# squared distance of the features; that of f's class scores, which leaves G free in everything f's
# head ignores; or the cross-entropy of f's verdict on G(x) against its verdict on x (only the class)
CONST_LOSSES: dict[str, Callable[[DTNGenerator, Tensor, Tensor], Tensor]] = {
    "features": lambda G, h_x, h_gx: f_constancy(h_x, h_gx),
    "logits": lambda G, h_x, h_gx: f_constancy(G.class_scores(h_x), G.class_scores(h_gx)),
    "classes": lambda G, h_x, h_gx: class_constancy(G.class_scores(h_x), G.class_scores(h_gx)),
}


# translate.dtn_f's names: f's weights shipped with gankit (gankit/metrics/weights/), and the command
# that rebuilds each. fmnist: the Fashion-MNIST classifier, learnt from photos only (the paper's kind of
# f, a classifier of the source domain); fmnist-emoji: that classifier fine-tuned one epoch on the photos'
# labels and fashion2emoji's training emoji's labels, so that it reads both domains (it knows the
# emoji's classes, which the DTN's unsupervised setting does not give it)
NAMED_F: dict[str, tuple[str, str]] = {
    "fmnist": ("fmnist_cnn.safetensors", FMNIST_REBUILD),
    "fmnist-emoji": ("dtn_f_fmnist_emoji.safetensors", "python bench/train_dtn_f.py --mode joint --epochs 1 "
                     "--threads 1 --out src/gankit/metrics/weights/dtn_f_fmnist_emoji.safetensors"),
}


def _read_f(path: Path, spec: str, rebuild: str | None) -> dict[str, Tensor]:
    how = f"; rebuild it with `{rebuild}`" if rebuild else ""
    if rebuild:
        missing = f"translate.dtn_f {spec}: its weights are missing (no {path}){how}, or reinstall gankit"
    else:
        missing = (f"translate.dtn_f {display_path(spec)} is neither {' nor '.join(NAMED_F)} nor a file: give the "
                   "safetensors weights of a Fashion-MNIST-classifier-shaped network (bench/train_dtn_f.py trains one)")
    return read_tensors(path, missing, how, "translate.dtn_f: ")


def f_weights(spec: str) -> dict[str, Tensor]:
    """The weights of f named by ``translate.dtn_f``: a name of ``NAMED_F`` (weights shipped with gankit)
    or the path of a safetensors file of the Fashion-MNIST classifier's network."""
    if spec in NAMED_F:
        file, rebuild = NAMED_F[spec]
        return _read_f(FMNIST_WEIGHTS.parent / file, spec, rebuild)
    return _read_f(Path(spec), spec, None)


class DTNTask(TranslationTask):
    row_names = ("source x", "G(x)", "target t", "G(t)")

    def setup(self, data: Any | None = None) -> None:
        super().setup(data)
        held = self.held_out
        # one column per class where the classes are known (fashion2emoji), else the first inputs
        for side, labels in (("A", held.labels_A), ("B", held.labels_B)):
            if labels is not None:
                first = [int((labels == c).nonzero()[0]) for c in labels.unique().tolist()]
                setattr(self, f"fixed_{side}", to_float(getattr(held, side)[first]).to(self.device))
        n = min(len(self.fixed_A), len(self.fixed_B))
        self.fixed_A, self.fixed_B = self.fixed_A[:n], self.fixed_B[:n]

    def check_shapes(self) -> None:
        check_size(self.shape_B)  # type: ignore[arg-type]
        if len(self.B) < MIN_TARGET:
            where = self.cfg.translate.partner or self.cfg.data.source
            raise GankitError(f"{display_path(where)} holds {len(self.B)} target image"
                              f"{'' if len(self.B) == 1 else 's'}; the DTN needs at least {MIN_TARGET} (its "
                              "discriminator learns the target style from a set, not from one picture): add "
                              "images, augmented copies count (shifted, scaled, flipped, recoloured)")

    def _build(self, data) -> None:  # type: ignore[no-untyped-def]
        super()._build(data)
        G: DTNGenerator = self.nets["G"]  # type: ignore[assignment]
        try:
            G.f.load_state_dict(f_weights(self.cfg.translate.dtn_f))
        except RuntimeError as e:
            raise GankitError(f"translate.dtn_f {display_path(self.cfg.translate.dtn_f)} does not fit the "
                              f"Fashion-MNIST classifier's layout ({str(e).splitlines()[0]})") from None
        G.f.requires_grad_(False)
        G.f.eval()
        t = self.cfg.train
        self.opt_G = adam(G.g, t.lr_g, (t.beta1, t.beta2))  # g only: f is fixed

    def iteration(self, step: int) -> dict[str, Tensor]:
        x, t = self.batch(step)  # source (B, Ca, H, W), target (B, Cb, H, W), unpaired
        G, D = self.nets["G"], self.nets["D"]
        tr = self.cfg.translate
        with self.autocast():  # bf16: the networks' passes; images, logits and losses stay fp32
            f_x = G.features(x).float()  # fixed f: no graph (x needs no gradient, f's weights none)
            f_t = G.features(t).float()
            # g decodes both in one batch: its batch norm normalises source and target features by
            # the same statistics in training, and its running averages (what G uses when applied)
            # are of that same mixture
            fake_s, fake_t = G.g(torch.cat([f_x, f_t])).float().split([len(x), len(t)])
        # --d-cond f-class: D is told the class f reads on each image's input, x's for G(x), t's for
        # t and G(t) (None: the paper's unconditional D)
        c_x, c_t = (G.class_scores(f_x).argmax(1), G.class_scores(f_t).argmax(1)) if tr.d_cond == "f-class" \
            else (None, None)
        # D step: three classes, fake from source, fake from target, real target.
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            logits_fs, logits_ft = D(fake_s.detach(), c_x).float(), D(fake_t.detach(), c_t).float()
            logits_real = D(t, c_t).float()
        loss_D = d_loss(logits_fs, logits_ft, logits_real)
        self.descend(loss_D, self.opt_D, self.discs)
        # G step, D frozen: fool the updated D, keep f, map the target to itself, stay smooth.
        self.frozen([D], True)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            g_fs, g_ft = D(fake_s, c_x).float(), D(fake_t, c_t).float()
            f_gx = G.features(fake_s).float()  # the domain bridge: G's RGB output as f's 28 x 28 gray
        loss_gan = g_gan_loss(g_fs, g_ft)
        loss_const = tr.const * CONST_LOSSES[tr.const_on](G, f_x, f_gx)
        loss_tid = tr.tid * target_identity(t, fake_t)
        loss_tv = tr.tv * total_variation(fake_s)
        loss_G = loss_gan + loss_const + loss_tid + loss_tv
        self.descend(loss_G, self.opt_G, self.gens)
        self.frozen([D], False)
        return {"loss_d": loss_D.detach(), "loss_g": loss_G.detach(), "d_real": real_probability(logits_real),
                "d_fake": real_probability(logits_fs), **self.grad_norms(), "loss_g_gan": loss_gan.detach(),
                "loss_const": loss_const.detach(), "loss_tid": loss_tid.detach(), "loss_tv": loss_tv.detach()}

    def sample_rows(self) -> list[Tensor]:
        G = self.nets["G"]
        return [self.fixed_A, translate_images(G, self.fixed_A), self.fixed_B, translate_images(G, self.fixed_B)]

    def default_eval_key(self) -> str:
        # the emoji classifier's verdict on fashion2emoji; on folders, the DTN's own f-constancy
        return "class_agreement" if self.target_classifier else "f_const"


__all__ = ["CONST_LOSSES", "MIN_TARGET", "NAMED_F", "DTNTask", "f_weights"]
