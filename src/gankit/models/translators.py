"""Image-to-image translators, by name: pix2pix (paired), CycleGAN and the DTN (unpaired).

A translator is not a (G, D) pair mapping noise to data, so it has its own registry beside
``MODELS``: ``TRANSLATORS`` names what ``--model`` may also say. Each entry builds its named
networks for the shapes of the two domains and carries the recipe its paper trains with
(``implies``: config values applied where the user left the GAN default, as ``GANLoss.implies``).

- ``pix2pix`` (Isola et al. 2017): G = U-Net A -> B (``gankit.models.unet``), D = PatchGAN that
  judges the pair (A, B) concatenated on channels (a conditional GAN, section 3.1); batch norm.
- ``cyclegan`` (Zhu et al. 2017): G_AB: A -> B and G_BA: B -> A = ResNet generators
  (``gankit.models.resnet_gen``), D_A and D_B = PatchGANs on one domain each, with instance
  normalisation (appendix 7.2).
- ``dtn`` (Taigman, Polyak & Wolf 2017): G = g o f with f a fixed feature function (the fmnist
  classifier's) and g a decoder, D a three-way classifier (``gankit.models.dtn``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from gankit.config.schema import TranslateConfig
from gankit.models.dtn import build_dtn
from gankit.models.patchgan import PatchDiscriminator, patch_layers
from gankit.models.resnet_gen import ResnetGenerator
from gankit.models.unet import UNetGenerator
from gankit.registry import Registry

Dims = tuple[int, int, int]  # (C, H, W) of one image

# The networks a translator builds, by the papers' names: G, D (pix2pix) or G_AB, G_BA, D_A, D_B.
Builder = Callable[..., dict[str, nn.Module]]  # (shape_A, shape_B, width, **options)


@dataclass(frozen=True)
class Translator:
    """A registered translator: how to build its networks, and its paper's training recipe."""

    build: Builder
    paired: bool  # trains on aligned pairs (A_i, B_i): pix2pix; else two unpaired sets: CycleGAN
    generators: tuple[str, ...]  # the names of its generators, A -> B first
    default_width: int
    # channels-last layout: faster for pix2pix's batch-normed U-Net on a CPU, but slower (2x for
    # the 28 px width-32 ResNet G on 2 cores) for CycleGAN's instance norm
    channels_last: bool
    implies: dict[str, Any] = field(default_factory=dict)
    # the translate.* settings it reads (translate.partner: all), and the train.loss values it takes
    settings: tuple[str, ...] = ()
    losses: tuple[str, ...] = ("minimax", "nonsaturating", "lsgan", "hinge")
    # translate.* settings -> the builder's keyword arguments that change the networks' layout
    options: Callable[[TranslateConfig], dict[str, Any]] = lambda tr: {}


def build_pix2pix(shape_A: Dims, shape_B: Dims, width: int) -> dict[str, nn.Module]:
    """G: U-Net (B, Ca, H, W) -> (B, Cb, H, W); D: PatchGAN on (B, Ca + Cb, H, W) -> patch logits."""
    size = shape_A[1:]
    G = UNetGenerator(shape_A[0], shape_B[0], size, width=width)
    D = PatchDiscriminator(shape_A[0] + shape_B[0], width=width, n_layers=patch_layers(size))
    return {"G": G, "D": D}


def build_cyclegan(shape_A: Dims, shape_B: Dims, width: int) -> dict[str, nn.Module]:
    """G_AB: A -> B, G_BA: B -> A (ResNet generators); D_A, D_B: PatchGANs with instance norm."""
    size = shape_A[1:]
    return {
        "G_AB": ResnetGenerator(shape_A[0], shape_B[0], size, width=width),
        "G_BA": ResnetGenerator(shape_B[0], shape_A[0], size, width=width),
        "D_A": PatchDiscriminator(shape_A[0], width=width, n_layers=patch_layers(size), norm=nn.InstanceNorm2d),
        "D_B": PatchDiscriminator(shape_B[0], width=width, n_layers=patch_layers(size), norm=nn.InstanceNorm2d),
    }


TRANSLATORS: Registry[Translator] = Registry("translator")
TRANSLATORS.register(
    "pix2pix",
    Translator(build_pix2pix, paired=True, generators=("G",), default_width=64, channels_last=True,
               # the paper: vanilla GAN loss (BCE), Adam 2e-4, beta1 0.5; its code decays the rate
               # linearly over the second half of training. No EMA of G.
               implies={"loss": "nonsaturating", "lr_g": 2e-4, "lr_d": 2e-4, "lr_decay_start": 0.5,
                        "ema": 0.0, "data": "edges2fashion"}, settings=("l1",)),
    "pix2pix (Isola et al. 2017): U-Net G + PatchGAN D on (A, B) pairs, adversarial + L1 (paired)",
)
TRANSLATORS.register(
    "cyclegan",
    Translator(build_cyclegan, paired=False, generators=("G_AB", "G_BA"), default_width=64, channels_last=False,
               # the paper: least-squares loss (section 4), Adam 2e-4, constant then linear decay
               implies={"loss": "lsgan", "lr_g": 2e-4, "lr_d": 2e-4, "lr_decay_start": 0.5,
                        "ema": 0.0, "data": "sneaker2sandal"}, settings=("cycle", "identity", "pool_size")),
    "CycleGAN (Zhu et al. 2017): two ResNet Gs + PatchGAN Ds, cycle + identity losses (unpaired)",
)


TRANSLATORS.register(
    "dtn",
    Translator(build_dtn, paired=False, generators=("G",), default_width=64, channels_last=False,
               # the paper's three-way D with cross-entropy: G's loss is the nonsaturating form.
               # Adam 2e-4, beta1 0.5 as its public re-implementations; constant rate, no EMA.
               implies={"loss": "nonsaturating", "lr_g": 2e-4, "lr_d": 2e-4, "ema": 0.0, "data": "fashion2emoji"},
               settings=("const", "tid", "tv", "dtn_f", "const_on", "d_cond"), losses=("nonsaturating",),
               options=lambda tr: {"d_cond": tr.d_cond == "f-class"}),
    "Domain Transfer Network (Taigman et al. 2017): G = g(f(x)) with f fixed, a three-way D, "
    "f-constancy + target identity + TV (unpaired)",
)

# The adversarial losses a PatchGAN's logits work with unaided (no penalty, no relativism).
TRANSLATOR_LOSSES = ("minimax", "nonsaturating", "lsgan", "hinge")


def build_translator(arch: str, shape_A: Dims, shape_B: Dims, width: int | None = None,
                     translate: TranslateConfig | None = None) -> dict[str, nn.Module]:
    """The networks of translator ``arch`` for images of ``shape_A`` and ``shape_B`` (C, H, W);
    ``width`` None (or an earlier version's 0) = the paper's 64; ``translate``: the settings that
    shape the networks (None: the defaults)."""
    t = TRANSLATORS.get(arch)
    return t.build(shape_A, shape_B, width or t.default_width, **t.options(translate or TranslateConfig()))


__all__ = ["TRANSLATORS", "TRANSLATOR_LOSSES", "Translator", "build_cyclegan", "build_pix2pix",
           "build_translator"]
