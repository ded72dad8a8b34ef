"""The within-caption diversity probe of text -> image (``Text2ImageTask.probe``).

A caption-conditioned G can be varied across captions and still draw one image per caption whatever
its noise: mode collapse within each caption, which a probe over all of G's samples does not see
(the failure Mao et al. 2019 name for conditional GANs). The probe takes K training captions that
two or more real images share, draws PROBE_DRAWS images of each from fixed noises, and compares their
mean pairwise distance (images pooled to 16x16) with that of the real images sharing each caption:
1 = as varied as the data, 0 = one image per caption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from gankit.data.base import to_float
from gankit.diagnosis import mean_group_distance, pooled_pixels
from gankit.models.text2image import TextGenerator, generate, noise

PROBE_CAPTIONS, PROBE_DRAWS = 32, 8  # captions shared by real images, G's draws of each
PROBE_SEED = 12352  # the probe's fixed noises, apart from the task's evaluation ones (its EVAL_SEED 12345)


def caption_groups(caption_index: Tensor, k: int = PROBE_CAPTIONS, m: int = PROBE_DRAWS) -> list[Tensor]:
    """The items of up to ``k`` captions that two or more items share (at most ``m`` items each; the
    first such captions, in the order the distinct captions are numbered): the real images that one
    caption stands for, whose variety G's draws of that caption are measured against."""
    index = caption_index.cpu()
    shared = torch.nonzero(torch.bincount(index) >= 2).flatten()[:k]
    return [torch.nonzero(index == c).flatten()[:m] for c in shared.tolist()]


def real_caption_variety(images: Tensor, groups: list[Tensor]) -> float:
    """How varied the real images of one caption are: the mean over ``groups`` (``caption_groups``)
    of their images' mean pairwise distance, pooled to 16x16 (``gankit.diagnosis.pooled_pixels``)."""
    return mean_group_distance([pooled_pixels(to_float(images[g.to(images.device)])) for g in groups])


@torch.no_grad()
def caption_variety(G: TextGenerator, phi: Tensor, z: Tensor, eps: Tensor) -> float:
    """How varied G's draws of one caption are: for each of the K captions' embeddings ``phi``
    (K, 384), G's M images from the noises ``z`` (M, latent) and ``eps`` (M, cond), their mean pairwise
    distance pooled as ``real_caption_variety``'s, averaged over the captions."""
    K, M = len(phi), len(z)
    fake = generate(G, phi.repeat_interleave(M, 0), z.repeat(K, 1), eps.repeat(K, 1))  # caption k at k*M ...
    return mean_group_distance(list(pooled_pixels(fake).reshape(K, M, -1)))


@dataclass
class CaptionProbe:
    """The within-caption diversity probe's fixed inputs: the embeddings ``phi`` (K, 384) of K training
    captions that two or more real images share (``caption_groups``), PROBE_DRAWS noises ``z`` and
    ``eps`` drawn from PROBE_SEED, and how varied the real images of each caption are (``real``)."""

    phi: Tensor
    z: Tensor
    eps: Tensor
    real: float

    @classmethod
    def of(cls, images: Tensor, caption_index: Tensor, embed: Callable[[Tensor], Tensor], G: TextGenerator,
           prior: str) -> CaptionProbe | None:
        """The probe of training ``images`` whose captions are ``caption_index`` (N,) among the distinct
        ones; ``embed`` maps distinct-caption numbers (K,) to their embeddings (K, 384). None where
        fewer than two captions are shared (a folder of one caption per image: nothing to compare)."""
        groups = caption_groups(caption_index)
        if len(groups) < 2:
            return None
        z, eps = noise(PROBE_DRAWS, G, prior, PROBE_SEED)
        firsts = caption_index.cpu()[torch.stack([g[0] for g in groups])]  # (K,) each group's caption
        return cls(embed(firsts), z, eps, real_caption_variety(images, groups))

    def read(self, G: TextGenerator) -> float:
        """G's within-caption variety against the real images' (1 = as varied; 0 = one image per caption)."""
        return caption_variety(G, self.phi, self.z, self.eps) / max(self.real, 1e-12)
