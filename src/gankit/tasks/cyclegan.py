"""CycleGAN (Zhu et al. 2017): unpaired translation A <-> B with two GANs and cycle consistency.

One iteration follows the paper's code (``optimize_parameters``: both G first, then both D):

    fake_B = G_AB(real_A), rec_A = G_BA(fake_B); fake_A = G_BA(real_B), rec_B = G_AB(fake_A)
    G step (D_A, D_B frozen): fool D_B with fake_B and D_A with fake_A (LSGAN), close both cycles
        (eq. 2-3: lambda 10) and, if asked, change nothing of an image already in the target domain
        (identity, section 5.2)
    D step: D_B judges real_B against fakes drawn half from a history pool (section 4, after
        Shrivastava et al. 2017), D_A alike; each D's objective halved

The grid shows A, G_AB(A), G_BA(G_AB(A)), then B, G_BA(B), G_AB(G_BA(B)) for held-out inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.losses import d_probability
from gankit.losses.translation import cycle_loss, identity_loss
from gankit.tasks.translation import TranslationTask
from gankit.train.image_pool import ImagePool
from gankit.translating import translate_images


class CycleGANTask(TranslationTask):
    row_names = ("A", "G_AB(A)", "G_BA(G_AB(A))", "B", "G_BA(B)", "G_AB(G_BA(B))")

    def check_shapes(self) -> None:
        if self.cfg.translate.identity > 0 and self.shape_A[0] != self.shape_B[0]:
            raise GankitError(f"the identity loss feeds each domain to the other's generator, but A has "
                              f"{self.shape_A[0]} channel(s) and B {self.shape_B[0]}: set "
                              "translate.identity 0, or data.channels")

    def _build(self, data) -> None:  # type: ignore[no-untyped-def]
        super()._build(data)
        seed = self.cfg.train.seed
        # each pool its own seeded RNG: resumed runs draw the same old fakes
        self.pools = {"pool_A": ImagePool(self.cfg.translate.pool_size, seed + 11),
                      "pool_B": ImagePool(self.cfg.translate.pool_size, seed + 12)}

    def iteration(self, step: int) -> dict[str, Tensor]:
        real_A, real_B = self.batch(step)  # (B, Ca, H, W), (B, Cb, H, W), unpaired
        G_AB, G_BA, D_A, D_B = (self.nets[n] for n in ("G_AB", "G_BA", "D_A", "D_B"))
        tr = self.cfg.translate
        with self.autocast():  # bf16: the networks' passes; images, logits and losses stay fp32
            fake_B = G_AB(real_A).float()  # (B, Cb, H, W)
            rec_A = G_BA(fake_B).float()  # F(G(A)) ~ A: forward cycle consistency (eq. 2)
            fake_A = G_BA(real_B).float()
            rec_B = G_AB(fake_A).float()  # G(F(B)) ~ B: backward cycle consistency
        # G step, the Ds frozen: fool D_B with fake_B and D_A with fake_A, close both cycles.
        self.frozen([D_A, D_B], True)
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            logits_B, logits_A = D_B(fake_B).float(), D_A(fake_A).float()
        loss_G_GAN = self.loss.g_loss(logits_B) + self.loss.g_loss(logits_A)
        loss_cycle = cycle_loss(real_A, rec_A, real_B, rec_B, tr.cycle)
        if tr.identity > 0:  # section 5.2: a G fed its own output domain should change nothing
            with self.autocast():
                same_A, same_B = G_BA(real_A).float(), G_AB(real_B).float()
            loss_idt = identity_loss(real_A, same_A, real_B, same_B, tr.identity * tr.cycle)
        else:
            loss_idt = torch.zeros((), device=real_A.device)
        loss_G = loss_G_GAN + loss_cycle + loss_idt
        self.descend(loss_G, self.opt_G, self.gens)
        # D step: real against fakes half from the history pool.
        self.frozen([D_A, D_B], False)
        self.opt_D.zero_grad(set_to_none=True)
        old_B = self.pools["pool_B"].query(fake_B.detach())
        old_A = self.pools["pool_A"].query(fake_A.detach())
        with self.autocast():
            logits_real_B, logits_fake_B = D_B(real_B).float(), D_B(old_B).float()
            logits_real_A, logits_fake_A = D_A(real_A).float(), D_A(old_A).float()
        # each D's objective halved, as in the paper's code (D learns slower than G)
        loss_D = 0.5 * (self.loss.d_loss(logits_real_B, logits_fake_B)
                        + self.loss.d_loss(logits_real_A, logits_fake_A))
        self.descend(loss_D, self.opt_D, self.discs)
        d_real = 0.5 * (d_probability(logits_real_A) + d_probability(logits_real_B))
        d_fake = 0.5 * (d_probability(logits_fake_A) + d_probability(logits_fake_B))
        return {"loss_d": loss_D.detach(), "loss_g": loss_G.detach(), "d_real": d_real, "d_fake": d_fake,
                **self.grad_norms(), "loss_g_gan": loss_G_GAN.detach(), "loss_cycle": loss_cycle.detach(),
                "loss_idt": loss_idt.detach()}

    def sample_rows(self) -> list[Tensor]:
        G_AB, G_BA = self.nets["G_AB"], self.nets["G_BA"]
        fake_B, fake_A = translate_images(G_AB, self.fixed_A), translate_images(G_BA, self.fixed_B)
        return [self.fixed_A, fake_B, translate_images(G_BA, fake_B), self.fixed_B, fake_A,
                translate_images(G_AB, fake_A)]

    def default_eval_key(self) -> str:
        # the classifier's verdict where the domains are Fashion-MNIST classes or photos and emoji,
        # else the cycle error
        if self.target_classifier:
            return "class_agreement"
        return "target_acc_AtoB" if self.classes and self.classes[0] != "A" else "cycle_l1_A"


__all__ = ["CycleGANTask"]
