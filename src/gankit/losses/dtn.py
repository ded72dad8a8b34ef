"""The losses of the Domain Transfer Network (Taigman, Polyak & Wolf 2017): G = g o f maps a source
sample x to the target domain so that a fixed function f is unchanged, f(G(x)) ~ f(x).

D is a three-way classifier (its logits: (N, 3)): class 1 of the paper, ``FAKE_SOURCE``, is G(x)
for a source x; class 2, ``FAKE_TARGET``, is G(t) for a target t; class 3, ``REAL_TARGET``, a real
t. With cross-entropy over those logits (each term a mean over its batch):

    L_D    = CE(D(G(x)), fake-from-source) + CE(D(G(t)), fake-from-target) + CE(D(t), real)   (eq. 3)
    L_GANG = CE(D(G(x)), real) + CE(D(G(t)), real)                                               (eq. 4)
    L_CONST = mean (f(x) - f(G(x)))^2   over the batch and f's feature dims (d = MSE, eq. 5)
              (or, ``class_constancy``, the cross-entropy of f's class scores on G(x) against the
              class f reads on x: Hoffman et al. 2018's semantic consistency)
    L_TID   = mean (t - G(t))^2         over the batch, channels and pixels (d2 = MSE, eq. 6)
    L_TV    = mean over the batch and pixels of sqrt(sum over channels of
              (z[i, j+1] - z[i, j])^2 + (z[i+1, j] - z[i, j])^2 + TV_EPS)      (eq. 7 with B = 1)
    L_G     = L_GANG + alpha L_CONST + beta L_TID + gamma L_TV                                   (eq. 8)

Means rather than the paper's sums, as its public re-implementations compute them (so the weights
do not scale with the image or the feature size); TV_EPS keeps the square root's gradient finite
where the image is flat. All functions see tensors, never networks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

FAKE_SOURCE, FAKE_TARGET, REAL_TARGET = 0, 1, 2
TV_EPS = 1e-8


def _ce(logits: Tensor, label: int) -> Tensor:
    """Mean cross-entropy of (N, 3) logits against one class for the whole batch."""
    return F.cross_entropy(logits, torch.full((logits.shape[0],), label, dtype=torch.long, device=logits.device))


def d_loss(logits_fake_source: Tensor, logits_fake_target: Tensor, logits_real_target: Tensor) -> Tensor:
    """L_D (eq. 3): D tells G(x), G(t) and real t apart (three classes)."""
    return (_ce(logits_fake_source, FAKE_SOURCE) + _ce(logits_fake_target, FAKE_TARGET)
            + _ce(logits_real_target, REAL_TARGET))


def g_gan_loss(logits_fake_source: Tensor, logits_fake_target: Tensor) -> Tensor:
    """L_GANG (eq. 4): G wants D to call both G(x) and G(t) real target samples."""
    return _ce(logits_fake_source, REAL_TARGET) + _ce(logits_fake_target, REAL_TARGET)


def f_constancy(f_x: Tensor, f_gx: Tensor) -> Tensor:
    """L_CONST (eq. 5): mean squared difference of f(x) and f(G(x)), features (N, D)."""
    return (f_x - f_gx).square().mean()


def class_constancy(logits_x: Tensor, logits_gx: Tensor) -> Tensor:
    """f-constancy on f's verdict only: the cross-entropy of f's class scores on G(x) against the class
    f reads on x (the semantic consistency loss of CyCADA, Hoffman et al. 2018), both (N, classes)."""
    return F.cross_entropy(logits_gx, logits_x.argmax(1))


def target_identity(t: Tensor, g_t: Tensor) -> Tensor:
    """L_TID (eq. 6): mean squared difference of a target image and G of it."""
    return (t - g_t).square().mean()


def total_variation(z: Tensor) -> Tensor:
    """L_TV (eq. 7, B = 1) of images z (N, C, H, W): the mean gradient magnitude (see the module)."""
    dx = z[..., :-1, 1:] - z[..., :-1, :-1]
    dy = z[..., 1:, :-1] - z[..., :-1, :-1]
    return (dx.square() + dy.square()).sum(1).add(TV_EPS).sqrt().mean()


def real_probability(logits: Tensor) -> Tensor:
    """D's mean probability that an image is a real target rather than G of a source, read from its
    three logits (N, 3) as the softmax over those two classes, sigmoid(real - fake from source): the
    D(x) and D(G(z)) of the game G plays against D (a 0-dim tensor, no host sync). Its equilibrium is
    1/2, where D cannot tell G(x) from a real t, as the two-player GAN's (Goodfellow et al. 2014); the
    third class, G(t), is G's identity task and does not move it. (The softmax over all three would
    sit at 1/3 there, and the verdicts read D(x) and D(G(z)) against 1/2.)"""
    logits = logits.detach().float()
    return torch.sigmoid(logits[:, REAL_TARGET] - logits[:, FAKE_SOURCE]).mean()


__all__ = ["FAKE_SOURCE", "FAKE_TARGET", "REAL_TARGET", "TV_EPS", "class_constancy", "d_loss", "f_constancy",
           "g_gan_loss", "real_probability", "target_identity", "total_variation"]
