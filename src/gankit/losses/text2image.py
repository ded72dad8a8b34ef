"""The losses of text -> image (GAN-INT-CLS, Reed et al. 2016; conditioning augmentation,
Zhang et al. 2017): functions of D's logits and of the text code's mean and log-variance.

The matching-aware discriminator (Reed et al. 2016, section 4.2, Algorithm 1, GAN-CLS) sees three
kinds of pair: a real image with its own caption (s_r, "real"), a real image with a wrong caption
(s_w) and a generated image with the caption it was made from (s_f); the last two are both "fake".
D ascends log s_r + (log(1 - s_w) + log(1 - s_f)) / 2; as a descent on logits l (s = sigmoid(l),
-log sigmoid(l) = softplus(-l), -log(1 - sigmoid(l)) = softplus(l)):

    L_D = softplus(-l_r) + (softplus(l_w) + softplus(l_f)) / 2          (means over the batch)

So D must learn whether image and text match, not only whether the image looks real, and G is
pushed to match its caption. G's loss is the non-saturating one, softplus(-l) on its fakes with
their captions (Goodfellow et al. 2014, section 3).

A conditional G can learn to ignore its noise, one image per caption (the within-caption mode
collapse of conditional GANs); MSGAN's term (Mao et al. 2019) asks two draws of one caption from
two noises to be as far apart as the noises are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def matching_aware_d_loss(real_right: Tensor, real_wrong: Tensor, fake_right: Tensor) -> Tensor:
    """D's loss of GAN-CLS from its logits on (real, right text), (real, wrong text) and
    (fake, right text): softplus(-l_r) + (softplus(l_w) + softplus(l_f)) / 2, batch means."""
    return F.softplus(-real_right).mean() + 0.5 * (F.softplus(real_wrong).mean() + F.softplus(fake_right).mean())


def g_loss(fake_logits: Tensor) -> Tensor:
    """G's non-saturating loss -log D(G(z, c), t) = softplus(-l), the batch mean."""
    return F.softplus(-fake_logits).mean()


def ca_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """KL(N(mu, diag(sigma^2)) || N(0, I)) = 1/2 sum_d (mu_d^2 + sigma_d^2 - 1 - log sigma_d^2),
    summed over the code's dimensions, averaged over the batch (mu, logvar: (B, D))."""
    return 0.5 * (mu.square() + logvar.exp() - 1 - logvar).sum(1).mean()


def contrastive_loss(image: Tensor, text: Tensor, same: Tensor | None = None, tau: float = 0.1) -> Tensor:
    """The sentence-image contrastive loss of XMC-GAN (Zhang et al. 2021, eq. 3): each image's
    embedding (B, E) should be nearer, in cosine similarity over temperature ``tau``, to its own
    caption's embedding (B, E) than to the batch's other captions. The cross-entropy of
    softmax_j(cos(image_i, text_j) / tau) at j = i, the batch mean. ``same`` (B, B), True where two
    items share one caption: the other copies are left out of i's denominator (they are not wrong)."""
    logits = F.normalize(image.float(), dim=1) @ F.normalize(text.float(), dim=1).T / tau  # (B, B)
    if same is not None:
        others = same & ~torch.eye(len(logits), dtype=torch.bool, device=logits.device)
        logits = logits.masked_fill(others, float("-inf"))
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


def mode_seeking(fake_a: Tensor, fake_b: Tensor, z_a: Tensor, z_b: Tensor, eps: float = 1e-5) -> Tensor:
    """MSGAN's mode-seeking term (Mao et al. 2019, eq. 3), to be minimised: the inverse of the ratio
    of the distance between two images G drew for the same condition from noises ``z_a`` and ``z_b``
    (batch means of absolute differences) to the distance between the noises,
    1 / (mean |fake_a - fake_b| / mean |z_a - z_b| + eps). A G that ignores z, drawing one image per
    caption, makes the ratio 0 and the term 1 / eps; the further apart its draws, the smaller it is."""
    ratio = (fake_a.float() - fake_b.float()).abs().mean() / (z_a.float() - z_b.float()).abs().mean()
    return 1 / (ratio + eps)


__all__ = ["ca_kl", "contrastive_loss", "g_loss", "matching_aware_d_loss", "mode_seeking"]
