"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

D overfits a small training set: it memorises the real images and its feedback to G degrades. The
cure is to show D only augmented images, real *and* fake, with augmentations that are
differentiable so G's gradient flows back through them (augmenting only the real images would
teach G to make augmented-looking images). Policies, as in the paper, on images in [-1, 1]:

- ``color``: random brightness (+U(-0.5, 0.5)), saturation (x U(0, 2) around the pixel's channel
  mean) and contrast (x U(0.5, 1.5) around the image mean);
- ``translation``: a random shift of up to 1/8 of the image size, zeros filling in;
- ``cutout``: a random square of half the image size set to zero.

All random numbers come from the run's generator, so augmented runs resume bit-identically, and
are drawn for the global batch under torchrun (``Draw``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass
class Draw:
    """Per-sample random numbers for a batch that may be one rank's shard of a global batch.

    Under torchrun every rank holds the same generator state; each draws the numbers of the whole
    global batch (``world`` x its own) and keeps its slice, exactly as the noise z is drawn. So 2
    ranks at batch B see the same random numbers as 1 process at batch 2B."""

    generator: torch.Generator | None = None
    world: int = 1
    rank: int = 0

    def _shard(self, t: Tensor, n: int) -> Tensor:
        return t[self.rank * n:(self.rank + 1) * n] if self.world > 1 else t

    def rand(self, n: int, *rest: int, device: torch.device | None = None) -> Tensor:
        return self._shard(torch.rand(n * self.world, *rest, device=device, generator=self.generator), n)

    def randn(self, n: int, *rest: int, device: torch.device | None = None) -> Tensor:
        return self._shard(torch.randn(n * self.world, *rest, device=device, generator=self.generator), n)

    def randint(self, low: int, high: int, n: int, *rest: int, device: torch.device | None = None) -> Tensor:
        t = torch.randint(low, high, (n * self.world, *rest), device=device, generator=self.generator)
        return self._shard(t, n)


def _as_draw(g: torch.Generator | Draw | None) -> Draw:
    return g if isinstance(g, Draw) else Draw(g)


def _u(n: int, x: Tensor, g: Draw) -> Tensor:
    """(n, 1, 1, 1) uniform [0, 1) numbers on x's device and dtype."""
    return g.rand(n, 1, 1, 1, device=x.device).to(x.dtype)


def color(x: Tensor, g: torch.Generator | Draw | None = None) -> Tensor:
    g, b = _as_draw(g), x.shape[0]
    x = x + (_u(b, x, g) - 0.5)  # brightness
    mean_c = x.mean(1, keepdim=True)
    x = (x - mean_c) * (_u(b, x, g) * 2) + mean_c  # saturation
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * (_u(b, x, g) + 0.5) + mean  # contrast


def translation(x: Tensor, g: torch.Generator | Draw | None = None, ratio: float = 0.125) -> Tensor:
    g, (b, c, h, w) = _as_draw(g), x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = g.randint(-sh, sh + 1, b, 1, device=x.device)  # shift per sample
    dx = g.randint(-sw, sw + 1, b, 1, device=x.device)
    padded = F.pad(x, [sw, sw, sh, sh])  # zeros around: (B, C, H + 2 sh, W + 2 sw)
    iy = torch.arange(h, device=x.device)[None] + sh - dy  # (B, H) source rows
    ix = torch.arange(w, device=x.device)[None] + sw - dx  # (B, W) source columns
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[bi, ci, iy[:, None, :, None], ix[:, None, None, :]]


def cutout(x: Tensor, g: torch.Generator | Draw | None = None, ratio: float = 0.5) -> Tensor:
    g, (b, _, h, w) = _as_draw(g), x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the square's top-left corner, so that its centre lies anywhere in the image (as in the paper)
    y0 = g.randint(0, h + (1 - ch % 2), b, 1, 1, device=x.device) - ch // 2
    x0 = g.randint(0, w + (1 - cw % 2), b, 1, 1, device=x.device) - cw // 2
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)  # (B, H, W)
    return x * (~inside)[:, None].to(x.dtype)


POLICIES = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x: Tensor, policy: str, generator: torch.Generator | Draw | None = None) -> Tensor:
    """Apply the comma-separated ``policy`` (e.g. ``"color,translation,cutout"``) to a batch of
    images (B, C, H, W), each sample with its own random parameters; differentiable in x."""
    for name in policy.split(","):
        if name:
            x = POLICIES[name](x, generator)
    return x
