"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

D overfits a small training set: it memorises the real images and its feedback to G degrades. The
cure is to show D only augmented images, real *and* fake, with augmentations that are
differentiable so G's gradient flows back through them (augmenting only the real images would
teach G to make augmented-looking images). Policies, as in the paper, on images in [-1, 1]:

- ``color``: random brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel
  mean) and contrast (x U(0.5, 1.5) around the image mean);
- ``translation``: a random shift of up to 1/8 of the image size, zeros filling in;
- ``cutout``: a random square of half the image size set to zero.

All random numbers come from the run's generator, so augmented runs resume bit-identically.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _u(n: int, x: Tensor, g: torch.Generator | None) -> Tensor:
    """(n, 1, 1, 1) uniform [0, 1) numbers on x's device and dtype."""
    return torch.rand(n, 1, 1, 1, device=x.device, generator=g).to(x.dtype)


def color(x: Tensor, g: torch.Generator | None = None) -> Tensor:
    b = x.shape[0]
    x = x + (_u(b, x, g) - 0.5)  # brightness
    mean_c = x.mean(1, keepdim=True)
    x = (x - mean_c) * (_u(b, x, g) * 2) + mean_c  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_u(b, x, g) + 0.5) + mean  # contrast


def translation(x: Tensor, g: torch.Generator | None = None, ratio: float = 0.125) -> Tensor:
    b, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (b, 1), device=x.device, generator=g)  # shift per sample
    dx = torch.randint(-sw, sw + 1, (b, 1), device=x.device, generator=g)
    padded = F.pad(x, [sw, sw, sh, sh])  # zeros around: (B, C, H + 2 sh, W + 2 sw)
    iy = torch.arange(h, device=x.device)[None] + sh - dy  # (B, H) source rows
    ix = torch.arange(w, device=x.device)[None] + sw - dx  # (B, W) source columns
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, iy[:, None, :, None], ix[:, None, None, :]]


def cutout(x: Tensor, g: torch.Generator | None = None, ratio: float = 0.5) -> Tensor:
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the square's top-left corner, so that its centre lies anywhere in the image (as in the paper)
    y0 = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device, generator=g) - ch // 2
    x0 = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device, generator=g) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | None = None) -> Tensor:
    """Apply the comma-separated ``policy`` (e.g. ``"color,translation,cutout"``) to a batch of
    images (B, C, H, W), each sample with its own random parameters; differentiable in x."""
    for name in policy.split(","):
        if name:
            x = POLICIES[name](x, generator)
    return x
