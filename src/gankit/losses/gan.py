"""The seeds' GAN losses, as pure functions of D's logits.

D outputs a logit ``l``; its probability that the input is real is ``D = sigmoid(l)``. Every log of a
probability is written through softplus, which is exact and stable at any logit:

    log D      = log sigmoid(l)      = -softplus(-l)
    log(1 - D) = log sigmoid(-l)     = -softplus(l)

so no ``log(sigmoid(x))`` ever underflows to ``-inf`` (Goodfellow et al. 2014, "Generative
Adversarial Nets", eq. 1; the same terms are binary cross-entropy with labels real = 1, fake = 0).
Losses are means over the batch, and each is what the optimiser *minimises*.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class DLoss(Protocol):
    def __call__(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor: ...


class GLoss(Protocol):
    def __call__(self, fake_logits: Tensor) -> Tensor: ...


def d_loss_bce(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """D's loss: -(E[log D(x)] + E[log(1 - D(G(z)))]).

    This is D *ascending* the value function V(D, G) of Algorithm 1, written as a descent:
    binary cross-entropy with real labelled 1 and fake labelled 0.
    """
    # softplus(-l) = -log sigmoid(l) = -log D(x);  softplus(l) = -log(1 - D(G(z)))
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def g_loss_minimax(fake_logits: Tensor) -> Tensor:
    """G's loss in the original minimax game: E[log(1 - D(G(z)))], which G descends.

    Its gradient with respect to the logit is -sigmoid(l) = -D(G(z)): when D confidently rejects
    the fakes (D(G(z)) -> 0) the gradient vanishes. This is the seeds' "diminished gradient"
    (Goodfellow et al. 2014, section 3).
    """
    return -F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: Tensor) -> Tensor:
    """G's non-saturating loss: -E[log D(G(z))], i.e. BCE with the fakes labelled 1.

    Same fixed point as the minimax game but a gradient of -(1 - D(G(z))) with respect to the logit,
    which is largest exactly when D rejects the fakes (Goodfellow et al. 2014, section 3).
    """
    return F.softplus(-fake_logits).mean()


@dataclass(frozen=True)
class GANLoss:
    """A pair of losses: the one D minimises and the one G minimises."""

    d_loss: DLoss
    g_loss: GLoss


MINIMAX = GANLoss(d_loss=d_loss_bce, g_loss=g_loss_minimax)
NONSATURATING = GANLoss(d_loss=d_loss_bce, g_loss=g_loss_nonsaturating)


def d_probability(logits: Tensor) -> Tensor:
    """D's mean probability that its inputs are real (a 0-dim tensor; no host sync)."""
    return torch.sigmoid(logits.detach().float()).mean()
