"""Adversarial losses, by name: pure functions of D's logits (penalties live apart)."""

from gankit.losses.gan import (
    MINIMAX,
    NONSATURATING,
    GANLoss,
    d_loss_bce,
    d_probability,
    g_loss_minimax,
    g_loss_nonsaturating,
)
from gankit.registry import Registry

LOSSES: Registry[GANLoss] = Registry("loss", "losses")
LOSSES.register(
    "minimax", MINIMAX,
    "the seeds' value function: D ascends log D(x) + log(1 - D(G(z))), G descends log(1 - D(G(z)))",
)
LOSSES.register(
    "nonsaturating", NONSATURATING,
    "G ascends log D(G(z)) instead (fakes labelled 1): strong gradients when D wins",
)

__all__ = [
    "LOSSES", "GANLoss", "MINIMAX", "NONSATURATING", "d_loss_bce", "d_probability",
    "g_loss_minimax", "g_loss_nonsaturating",
]
