"""What every architecture shares: the shape of the data it models and the builder contract."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from torch import nn


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


class Builder(Protocol):
    """Builds (G, D) for a data shape. G maps z (B, latent_dim) to samples (B, *dims);
    D maps samples to one logit each, shape (B,)."""

    def __call__(self, shape: DataShape, latent_dim: int, width: int) -> tuple[nn.Module, nn.Module]: ...


def init_dcgan_weights(module: nn.Module) -> None:
    """Radford et al. 2015, section 4: all weights from N(0, 0.02); batch-norm scales from N(1, 0.02)."""
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
