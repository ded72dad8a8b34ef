"""One discriminator update and one generator update: the two halves of Algorithm 1.

D's step comes first and sees a fake batch made without a graph through G (CycleGAN's explicit
D-then-G order); G's step freezes D's parameters so no gradient is computed for them.
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.losses import d_probability
from gankit.train.state import TrainState

# The modules a step updates are ``s.G_train`` / ``s.D_train``: the networks themselves, or their
# DistributedDataParallel wrappers under torchrun (gradients averaged across ranks).


def d_step(s: TrainState, real: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Ascend log D(x) + log(1 - D(G(z))) once. Returns (loss_d, D(x), D(G(z))) as 0-dim tensors."""
    z = s.z(real.shape[0])  # (B, latent_dim)
    with torch.no_grad():
        fake = s.G(z)  # (B, *dims); no graph: only D is updated here
    real_logits = s.D_train(real)  # (B,)
    fake_logits = s.D_train(fake)  # (B,)
    loss_d = s.loss.d_loss(real_logits, fake_logits)
    s.opt_D.zero_grad(set_to_none=True)
    loss_d.backward()
    s.opt_D.step()
    return loss_d.detach(), d_probability(real_logits), d_probability(fake_logits)


def g_step(s: TrainState, batch_size: int) -> Tensor:
    """Descend G's loss once, with D held fixed. Returns loss_g as a 0-dim tensor."""
    z = s.z(batch_size)
    s.D.requires_grad_(False)  # "fix the discriminator's weights" (the seeds' training recipe)
    try:
        # G_train: under DDP G's gradients are averaged across ranks; D is only looked through.
        fake_logits = s.D(s.G_train(z))  # (B,)
        loss_g = s.loss.g_loss(fake_logits)
        s.opt_G.zero_grad(set_to_none=True)
        loss_g.backward()
        s.opt_G.step()
    finally:
        s.D.requires_grad_(True)
    return loss_g.detach()
