"""Adversarial losses, by name: pure functions of D's logits (penalties live apart, in
``gankit.losses.penalties``)."""

from gankit.losses.gan import (
    HINGE,
    LSGAN,
    MINIMAX,
    NONSATURATING,
    RAGAN,
    RPGAN,
    WGAN,
    WGAN_GP,
    GANLoss,
    class_loss,
    d_loss_bce,
    d_loss_hinge,
    d_loss_lsgan,
    d_loss_ragan,
    d_loss_rpgan,
    d_loss_wasserstein,
    d_probability,
    g_loss_lsgan,
    g_loss_minimax,
    g_loss_nonsaturating,
    g_loss_ragan,
    g_loss_rpgan,
    g_loss_wasserstein,
)
from gankit.losses.penalties import clip_weights_, gradient_penalty, r1_penalty, r2_penalty
from gankit.registry import Registry

LOSSES: Registry[GANLoss] = Registry("loss", "losses")
LOSSES.register(
    "minimax", MINIMAX,
    "Goodfellow et al. 2014's value function: D ascends log D(x) + log(1 - D(G(z))), G descends log(1 - D(G(z)))",
)
LOSSES.register(
    "nonsaturating", NONSATURATING,
    "G ascends log D(G(z)) instead (fakes labelled 1): strong gradients when D wins",
)
LOSSES.register(
    "lsgan", LSGAN, "least squares (Mao et al. 2017): D regresses real to 1 and fake to 0",
)
LOSSES.register(
    "wgan", WGAN,
    "Wasserstein (Arjovsky et al. 2017) with D's weights clipped to [-0.01, 0.01] (--clip); "
    "use --d-steps 5",
)
LOSSES.register(
    "wgan-gp", WGAN_GP,
    "Wasserstein with a gradient penalty (Gulrajani et al. 2017), weight 10 (--gp); use --d-steps 5",
)
LOSSES.register("hinge", HINGE, "hinge loss (Lim & Ye 2017; Miyato et al. 2018's SN-GAN)")
LOSSES.register(
    "ragan", RAGAN,
    "relativistic average (Jolicoeur-Martineau 2018): is real more realistic than the average fake?",
)
LOSSES.register(
    "rpgan", RPGAN,
    "relativistic pairing (Jolicoeur-Martineau 2018's RSGAN; R3GAN, Huang et al. 2024): each real score must beat "
    "its paired fake's; R3GAN adds --r1 and --r2 of the same gamma",
)

__all__ = [
    "HINGE", "LOSSES", "LSGAN", "MINIMAX", "NONSATURATING", "RAGAN", "RPGAN", "WGAN", "WGAN_GP", "GANLoss",
    "class_loss", "clip_weights_", "d_loss_bce", "d_loss_hinge", "d_loss_lsgan", "d_loss_ragan", "d_loss_rpgan",
    "d_loss_wasserstein", "d_probability", "g_loss_lsgan", "g_loss_minimax", "g_loss_nonsaturating",
    "g_loss_ragan", "g_loss_rpgan", "g_loss_wasserstein", "gradient_penalty", "r1_penalty", "r2_penalty",
]
