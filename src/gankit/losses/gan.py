"""Adversarial losses, as pure functions of D's logits (D's raw outputs).

For the losses of Goodfellow et al. 2014 D outputs a logit ``l``; its probability that the input is real is
``D = sigmoid(l)``. Every log of a probability is written through softplus, which is exact and
stable at any logit:

    log D      = log sigmoid(l)      = -softplus(-l)
    log(1 - D) = log sigmoid(-l)     = -softplus(l)

so no ``log(sigmoid(x))`` ever underflows to ``-inf`` (Goodfellow et al. 2014, "Generative
Adversarial Nets", eq. 1; the same terms are binary cross-entropy with labels real = 1, fake = 0).
The other losses of the catalogue (least squares, Wasserstein, hinge, relativistic) read the same
raw outputs as scores. Losses are means over the batch, and each is what the optimiser *minimises*.

Every D loss takes ``real_label``: 1 normally, 1 - s with one-sided label smoothing (Salimans et
al. 2016, section 3.4), for the losses whose targets are labels (``GANLoss.smoothable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import Tensor


class DLoss(Protocol):
    def __call__(self, real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor: ...


class GLoss(Protocol):
    def __call__(self, fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor: ...


def _bce(logits: Tensor, target: float) -> Tensor:
    """Mean binary cross-entropy of sigmoid(logits) against a constant target t:
    -(t log sigmoid(l) + (1 - t) log(1 - sigmoid(l))) = t softplus(-l) + (1 - t) softplus(l)."""
    if target == 1.0:
        return F.softplus(-logits).mean()
    if target == 0.0:
        return F.softplus(logits).mean()
    return (target * F.softplus(-logits) + (1 - target) * F.softplus(logits)).mean()


# --------------------------------------------------------------------------- Goodfellow et al. 2014's game


def d_loss_bce(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """D's loss: -(E[log D(x)] + E[log(1 - D(G(z)))]).

    This is D *ascending* the value function V(D, G) of Algorithm 1, written as a descent:
    binary cross-entropy with real labelled 1 (or ``real_label``) and fake labelled 0.
    """
    # softplus(-l) = -log sigmoid(l) = -log D(x);  softplus(l) = -log(1 - D(G(z)))
    return _bce(real_logits, real_label) + _bce(fake_logits, 0.0)


def g_loss_minimax(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G's loss in the original minimax game: E[log(1 - D(G(z)))], which G descends.

    Its gradient with respect to the logit is -sigmoid(l) = -D(G(z)): when D confidently rejects
    the fakes (D(G(z)) -> 0) the gradient vanishes. This is the "diminished gradient" of Goodfellow et al. 2014
    (Goodfellow et al. 2014, section 3).
    """
    return -F.softplus(fake_logits).mean()


def g_loss_nonsaturating(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """G's non-saturating loss: -E[log D(G(z))], i.e. BCE with the fakes labelled 1.

    Same fixed point as the minimax game but a gradient of -(1 - D(G(z))) with respect to the logit,
    which is largest exactly when D rejects the fakes (Goodfellow et al. 2014, section 3).
    """
    return F.softplus(-fake_logits).mean()


# --------------------------------------------------------------------------- least squares


def d_loss_lsgan(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """LSGAN (Mao et al. 2017, eq. 2 with a = 0, b = 1): 1/2 E[(D(x) - 1)^2] + 1/2 E[D(G(z))^2].

    A quadratic penalises fakes by their distance from the real target even when they are on the
    right side of the boundary, so G's gradient does not vanish as it does under the sigmoid."""
    return 0.5 * ((real_logits - real_label) ** 2).mean() + 0.5 * (fake_logits**2).mean()


def g_loss_lsgan(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """LSGAN's G (c = 1): 1/2 E[(D(G(z)) - 1)^2]."""
    return 0.5 * ((fake_logits - 1) ** 2).mean()


# --------------------------------------------------------------------------- Wasserstein and hinge


def d_loss_wasserstein(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """WGAN's critic (Arjovsky et al. 2017, Algorithm 1): maximise E[D(x)] - E[D(G(z))], an
    estimate of the Wasserstein-1 distance when D is 1-Lipschitz (weight clipping or a gradient
    penalty make it so)."""
    return fake_logits.mean() - real_logits.mean()


def g_loss_wasserstein(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """WGAN's and the hinge loss's G: -E[D(G(z))]."""
    return -fake_logits.mean()


def d_loss_hinge(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """Hinge loss (Lim & Ye 2017; Miyato et al. 2018): E[relu(1 - D(x))] + E[relu(1 + D(G(z)))].
    D stops pushing on samples already beyond the margin."""
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


# --------------------------------------------------------------------------- relativistic average


def d_loss_ragan(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """Relativistic average GAN (Jolicoeur-Martineau 2018, RaSGAN): D estimates the probability
    that real data are *more realistic than the average fake*, and fake less than the average real:
    -E[log sigmoid(C(x) - E C(G(z)))] - E[log(1 - sigmoid(C(G(z)) - E C(x)))]."""
    return _bce(real_logits - fake_logits.mean(), real_label) + _bce(fake_logits - real_logits.mean(), 0.0)


def g_loss_ragan(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """RaSGAN's G: the same with the roles swapped. It needs D's outputs on real data too, so G's
    gradient also flows through how real data look relative to its fakes."""
    if real_logits is None:
        raise ValueError("the relativistic loss needs D's logits on real data for G's step")
    return _bce(fake_logits - real_logits.mean(), 1.0) + _bce(real_logits - fake_logits.mean(), 0.0)


# --------------------------------------------------------------------------- relativistic pairing


def d_loss_rpgan(real_logits: Tensor, fake_logits: Tensor, real_label: float = 1.0) -> Tensor:
    """The relativistic pairing GAN's D (RSGAN of Jolicoeur-Martineau 2018, the RpGAN loss of
    Huang et al. 2024's R3GAN, eq. 2): E[softplus(-(D(x_i) - D(G(z_i))))], each real sample against
    the fake of the same index. D is asked only that each real score beat its partner's fake one,
    so no single decision boundary separates all the data from all the fakes (which lets G drop
    modes). ``real_label`` is not used: the loss has no label to smooth."""
    return F.softplus(fake_logits - real_logits).mean()


def g_loss_rpgan(fake_logits: Tensor, real_logits: Tensor | None = None) -> Tensor:
    """RpGAN's G, the mirror: E[softplus(-(D(G(z_i)) - D(x_i)))] over the index-matched pairs; it
    needs D's logits on real data too."""
    if real_logits is None:
        raise ValueError("the relativistic pairing loss needs D's logits on real data for G's step")
    return F.softplus(real_logits - fake_logits).mean()


@dataclass(frozen=True)
class GANLoss:
    """A pair of losses: the one D minimises and the one G minimises, and what they need.

    ``implies``: config values that are part of the named recipe, applied when the user leaves the
    key at its default (``wgan`` clips D's weights at 0.01, ``wgan-gp`` adds a gradient penalty of
    weight 10); the run's saved config.yaml shows them resolved.
    """

    d_loss: DLoss
    g_loss: GLoss
    g_needs_real: bool = False  # G's loss reads D's logits on a real batch (relativistic losses)
    smoothable: bool = False  # D's loss has a real label that one-sided smoothing may lower
    probabilities: bool = True  # sigmoid(logit) is D's probability "real" (the BCE family)
    implies: dict[str, float] = field(default_factory=dict)


MINIMAX = GANLoss(d_loss=d_loss_bce, g_loss=g_loss_minimax, smoothable=True)
NONSATURATING = GANLoss(d_loss=d_loss_bce, g_loss=g_loss_nonsaturating, smoothable=True)
LSGAN = GANLoss(d_loss=d_loss_lsgan, g_loss=g_loss_lsgan, smoothable=True, probabilities=False)
WGAN = GANLoss(d_loss=d_loss_wasserstein, g_loss=g_loss_wasserstein, probabilities=False,
               implies={"clip": 0.01})
WGAN_GP = GANLoss(d_loss=d_loss_wasserstein, g_loss=g_loss_wasserstein, probabilities=False,
                  implies={"gp": 10.0})
HINGE = GANLoss(d_loss=d_loss_hinge, g_loss=g_loss_wasserstein, probabilities=False)
RAGAN = GANLoss(d_loss=d_loss_ragan, g_loss=g_loss_ragan, g_needs_real=True, smoothable=True)
# only differences of D's outputs matter, so sigmoid(D(x)) is no probability
RPGAN = GANLoss(d_loss=d_loss_rpgan, g_loss=g_loss_rpgan, g_needs_real=True, probabilities=False)


def d_probability(logits: Tensor) -> Tensor:
    """D's mean probability that its inputs are real (a 0-dim tensor; no host sync). For losses
    without probabilities (Wasserstein, hinge, least squares) this is sigmoid of the score: a
    monotone summary, not a probability."""
    return torch.sigmoid(logits.detach().float()).mean()


def class_loss(class_logits: Tensor, y: Tensor) -> Tensor:
    """ACGAN's auxiliary term (Odena et al. 2017, eq. 2): the cross-entropy of D's class head
    against the labels, -E[log P(C = y | x)], from logits (log-softmax inside, never log(softmax)).
    D minimises it on real and fake samples; G minimises it on its fakes of class y."""
    return F.cross_entropy(class_logits.float(), y)
