"""What every architecture shares: the shape of the data it models and the builder contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
from torch import Tensor, nn


@dataclass(frozen=True)
class DataShape:
    """The shape of one sample: ``(2,)`` for 2-D points, ``(C, H, W)`` for images."""

    dims: tuple[int, ...]

    @property
    def is_image(self) -> bool:
        return len(self.dims) == 3

    @property
    def numel(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    def describe(self) -> str:
        if self.is_image:
            c, h, w = self.dims
            return f"{c}x{h}x{w} images"
        return f"{self.dims[0]}-D points"


@dataclass(frozen=True)
class DSpec:
    """What the cures change in D's architecture.

    ``pack``: D's input holds m samples (PacGAN), so its first layer takes m times the channels
    (images) or features (points); ``mbstd``: a minibatch standard-deviation feature enters D's
    last layer, which takes one more channel or feature."""

    pack: int = 1
    mbstd: bool = False


PLAIN_D = DSpec()  # no cures

class Builder(Protocol):
    """Builds (G, D) for a data shape. G maps z (B, latent_dim) to samples (B, *dims);
    D maps samples (B / pack, pack * C, H, W) or (B / pack, pack * F) to one logit each."""

    def __call__(self, shape: DataShape, latent_dim: int, width: int | None,
                 d: DSpec = ...) -> tuple[nn.Module, nn.Module]: ...


class MinibatchStd(nn.Module):
    """Karras et al. 2018 (ProGAN), section 3: append the average standard deviation of each
    feature over a group of samples as one more channel (images) or feature (vectors).

    A collapsed G produces near-identical samples; their small spread is then visible to D, which
    can reject them as a group. Groups of ``group`` samples (4 in the paper) keep it a per-batch
    statistic that still varies between groups. (B, C, H, W) -> (B, C + 1, H, W); (B, F) -> (B, F + 1).
    """

    def __init__(self, group: int = 4) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        g = min(self.group, b)
        while b % g:  # the largest group size <= self.group dividing the batch
            g -= 1
        y = x.reshape(g, b // g, *x.shape[1:]).float()  # (g, B/g, ...): sample i in group i % (B/g)
        std = (y.var(0, unbiased=False) + 1e-8).sqrt()  # (B/g, ...)
        s = std.flatten(1).mean(1).to(x.dtype)  # (B/g,) one number per group
        s = s.repeat(g)  # (B,), matching the reshape above
        if x.dim() == 4:
            return torch.cat([x, s[:, None, None, None].expand(b, 1, *x.shape[2:])], 1)
        return torch.cat([x, s[:, None]], 1)


class Packed(nn.Module):
    """PacGAN (Lin et al. 2018): D judges ``m`` samples at once, all real or all fake.

    (B, C, H, W) -> (B/m, m*C, H, W) (points: (B, F) -> (B/m, m*F)) -> D -> (B/m,) logits. A D that
    sees several samples together can tell a set of near-copies from a set of real, varied data,
    which penalises mode collapse; the paper proves the packed D's divergence grows with it."""

    def __init__(self, D: nn.Module, m: int) -> None:
        super().__init__()
        self.D, self.m = D, m

    def forward(self, x: Tensor) -> Tensor:
        b = x.shape[0]
        if b % self.m:
            raise ValueError(f"PacGAN packs {self.m} samples per decision; got a batch of {b}")
        return self.D(x.reshape(b // self.m, self.m * x.shape[1], *x.shape[2:]))


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. 2015, section 4: all weights from N(0, 0.02); batch-norm scales from N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d) and module.affine:  # not one without its own
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
