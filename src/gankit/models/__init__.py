"""Architectures, by name. Each file holds one; each builds a (G, D) pair for a data shape."""

from __future__ import annotations

import torch
from torch import Generator, Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import Builder, DataShape
from gankit.models.dcgan import build_dcgan, dcgan_plan
from gankit.models.mlp import build_mlp
from gankit.registry import Registry

MODELS: Registry[Builder] = Registry("model")
MODELS.register("mlp", build_mlp, "fully connected G and D (Goodfellow et al. 2014): 2-D points and small images")
MODELS.register("dcgan", build_dcgan, "DCGAN (Radford et al. 2015): transposed convolutions; 28, 32, 64, 128 px or HxW")

PRIORS = ("normal", "uniform")


def build_models(
    arch: str, shape: DataShape, latent_dim: int = 100, width: int = 0
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) of architecture ``arch`` for samples of ``shape``; ``width`` 0 = the default."""
    if latent_dim < 1:
        raise GankitError(f"latent_dim must be at least 1, got {latent_dim}")
    return MODELS.get(arch)(shape, latent_dim, width)


def sample_prior(
    prior: str, n: int, latent_dim: int, device: torch.device | str = "cpu",
    generator: Generator | None = None,
) -> Tensor:
    """z ~ p(z): N(0, I) for ``normal``, U(-1, 1)^d for ``uniform`` -> (n, latent_dim)."""
    if prior == "normal":
        return torch.randn(n, latent_dim, device=device, generator=generator)
    if prior == "uniform":
        return torch.rand(n, latent_dim, device=device, generator=generator) * 2 - 1
    raise GankitError(f"unknown prior {prior!r}; choose one of: {', '.join(PRIORS)}")


__all__ = ["MODELS", "PRIORS", "DataShape", "build_models", "dcgan_plan", "sample_prior"]
