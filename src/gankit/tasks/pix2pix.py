"""pix2pix (Isola et al. 2017): paired translation A_i -> B_i with a conditional GAN and L1.

One iteration follows the paper's code (``optimize_parameters``: D first, then G):

    fake_B = G(real_A)
    D step: D judges (real_A, real_B) real and (real_A, fake_B) fake, loss halved (section 3.3)
    G step: fool the updated D on (real_A, fake_B) + lambda_L1 ||fake_B - real_B||_1 (eq. 4: 100)

G is a U-Net, D a PatchGAN that sees the input beside the output (section 3.1). The grid shows
input A, output G(A) and target B for held-out inputs.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.losses import d_probability
from gankit.losses.translation import l1
from gankit.tasks.translation import TranslationTask
from gankit.translating import translate_images


class Pix2PixTask(TranslationTask):
    row_names = ("input A", "output G(A)", "target B")

    def iteration(self, step: int) -> dict[str, Tensor]:
        real_A, real_B = self.batch(step)  # (B, Ca, H, W), (B, Cb, H, W)
        G, D = self.nets["G"], self.nets["D"]
        with self.autocast():  # bf16: the networks' passes; images, logits and losses stay fp32
            fake_B = G(real_A).float()  # (B, Cb, H, W)
        # D step: a conditional GAN: D sees the input beside the real or the fake output.
        self.opt_D.zero_grad(set_to_none=True)
        with self.autocast():
            logits_real = D(torch.cat([real_A, real_B], 1)).float()  # (B, 1, H', W'): one logit per patch
            logits_fake = D(torch.cat([real_A, fake_B.detach()], 1)).float()
        # halved as in the paper (section 3.3): slows D's learning relative to G's
        loss_D = 0.5 * self.loss.d_loss(logits_real, logits_fake)
        self.descend(loss_D, self.opt_D, self.discs)
        # G step: fool the updated D, and stay near the true B in L1.
        self.frozen([D], True)  # no gradients for D's weights from G's loss
        self.opt_G.zero_grad(set_to_none=True)
        with self.autocast():
            logits_G = D(torch.cat([real_A, fake_B], 1)).float()
        loss_G_GAN = self.loss.g_loss(logits_G)
        loss_G_L1 = self.cfg.translate.l1 * l1(fake_B, real_B)
        loss_G = loss_G_GAN + loss_G_L1
        self.descend(loss_G, self.opt_G, self.gens)
        self.frozen([D], False)
        return {"loss_d": loss_D.detach(), "loss_g": loss_G.detach(), "d_real": d_probability(logits_real),
                "d_fake": d_probability(logits_fake), **self.grad_norms(),
                "loss_g_gan": loss_G_GAN.detach(), "loss_l1": loss_G_L1.detach()}

    def sample_rows(self) -> list[Tensor]:
        return [self.fixed_A, translate_images(self.nets["G"], self.fixed_A), self.fixed_B]

    def default_eval_key(self) -> str:
        return "l1"  # mean absolute error of G(A) against the true B, on held-out pairs


__all__ = ["Pix2PixTask"]
