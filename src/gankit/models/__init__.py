"""Architectures, by name. Each file holds one; each builds a (G, D) pair for a data shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Generator, Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import Builder, DataShape, DSpec, MinibatchStd, Packed
from gankit.models.conditional import CONDITIONINGS, ConditionalG, ConditionalRequest
from gankit.models.dcgan import build_dcgan, dcgan_plan, dcgan_width
from gankit.models.mlp import build_mlp, build_mlp2_tanh, mlp2_width, mlp_width
from gankit.models.r3 import build_r3, r3_builder, r3_width
from gankit.nn_util import apply_spectral_norm
from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.config import Config

@dataclass(frozen=True)
class ModelEntry:
    """A registered architecture: how to build its (G, D) pair, and the width it takes when
    ``model.width`` is unset (recorded in a run's config.yaml as the value it used)."""

    build: Builder
    default_width: Callable[[DataShape], int]
    # ``model.blocks`` -> the builder with that many blocks per resolution; None: no such knob
    with_blocks: Callable[[int], Builder] | None = None
    # False: D cannot take spectral norm (r3's zero-initialised residual branches: 0 / 0)
    spectral_norm: bool = True


MODELS: Registry[ModelEntry] = Registry("model")
MODELS.register("mlp", ModelEntry(build_mlp, mlp_width),
                "fully connected G and D (Goodfellow et al. 2014): 2-D points and small images")
MODELS.register("mlp2-tanh", ModelEntry(build_mlp2_tanh, mlp2_width),
                "two 128-unit tanh layers in G and D: the 2-D mode-collapse benchmark's networks (VEEGAN)")
MODELS.register("dcgan", ModelEntry(build_dcgan, dcgan_width),
                "DCGAN (Radford et al. 2015): transposed convolutions; 28, 32, 64, 128 px or HxW")
MODELS.register("r3", ModelEntry(build_r3, r3_width, r3_builder, spectral_norm=False),
                "R3GAN's norm-free residual G and D (Huang et al. 2024): ResNeXt blocks, Fixup init, "
                "[1, 2, 1] resampling; 28, 32, 64, 128 px or HxW")


def default_width(arch: str, shape: DataShape) -> int:
    """The width ``arch`` is built with for ``shape`` when ``model.width`` is unset."""
    return MODELS.get(arch).default_width(shape)

PRIORS = ("normal", "uniform")


def build_models(
    arch: str, shape: DataShape, latent_dim: int = 100, width: int | None = None, pack: int = 1,
    mbstd: bool = False, spectral_norm: bool = False, conditional: str | None = None,
    num_classes: int = 0, embed_dim: int | None = None, blocks: int | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) of architecture ``arch`` for samples of ``shape``; ``width`` None = the default.

    D's cures: ``pack`` m samples per decision (PacGAN), a minibatch-std feature (``mbstd``), and
    ``spectral_norm`` on each of its layers. D takes (B, *dims) and returns (B / pack,) logits.

    ``conditional`` (``cgan``, ``acgan`` or ``projection``, with ``num_classes`` K): G(z, y) sees
    the label's embedding (``embed_dim``, None = K) beside z, and D(x, y) returns (logits (B,),
    class logits (B, K) or None) - see ``gankit.models.conditional``. ``blocks``: residual blocks
    per resolution, for the architectures that have them (r3); None = the default."""
    if latent_dim < 1:
        raise GankitError(f"model.latent_dim must be at least 1, got {latent_dim}")
    entry = MODELS.get(arch)
    build = entry.build
    if blocks is not None:
        if entry.with_blocks is None:
            raise GankitError(f"model.blocks does not apply to model.arch={arch}: it has no residual "
                              "blocks; leave it out")
        build = entry.with_blocks(blocks)
    if spectral_norm and not entry.spectral_norm:
        raise GankitError(f"reg.spectral_norm does not apply to model.arch={arch}: its residual branches "
                          "start at zero (Fixup init), which spectral norm cannot divide; leave it out")
    if not conditional:  # None (or an earlier version's ""): unconditional
        G, D = build(shape, latent_dim, width, DSpec(pack, mbstd))
        if spectral_norm:
            apply_spectral_norm(D)
        if pack > 1:
            D = Packed(D, pack)
        return G, D
    build_conditional = CONDITIONINGS.get(conditional)
    if num_classes < 2 or pack > 1:
        raise GankitError(f"model.conditional={conditional} needs labelled data of at least 2 classes "
                          f"(got {num_classes}) and no PacGAN packing (reg.pack)")
    return build_conditional(ConditionalRequest(build, shape, latent_dim, width, num_classes,
                                                embed_dim or num_classes, mbstd, spectral_norm))


def models_for(cfg: Config, shape: DataShape, num_classes: int = 0) -> tuple[nn.Module, nn.Module]:
    """(G, D) as a run's config describes them (architecture, D's cures, conditioning on
    ``num_classes`` classes)."""
    m, r = cfg.model, cfg.reg
    return build_models(m.arch, shape, m.latent_dim, m.width, r.pack, r.mbstd, r.spectral_norm,
                        m.conditional, num_classes, m.embed_dim, m.blocks)


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


__all__ = ["CONDITIONINGS", "MODELS", "PRIORS", "ConditionalG", "DSpec", "DataShape", "MinibatchStd", "Packed", "apply_spectral_norm",
           "ModelEntry", "build_models", "dcgan_plan", "default_width", "models_for", "sample_prior"]
