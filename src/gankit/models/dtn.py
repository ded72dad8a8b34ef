"""The Domain Transfer Network's networks (Taigman, Polyak & Wolf 2017): G = g o f, and a three-way D.

- f: a fixed, pretrained feature function that reads both domains. Here it is gankit's Fashion-MNIST
  classifier (``gankit.metrics.fmnist_classifier``) up to its 128-d penultimate layer, frozen (eval
  mode, no gradients to its weights): as the paper's digit f, a classifier of the source domain.
  Its input adapter is the domain bridge: any image (N, C, H, W) in [-1, 1] becomes the 28 x 28
  gray image it was trained on (RGB -> ITU-R BT.601 luma, then bilinear resizing with
  antialiasing), so f reads a source photo x, a target emoji t and G's RGB output G(x) alike, and
  L_CONST can compare f(x) with f(G(x)). Its weights travel in the checkpoint with G's.
- g: a decoder from f's 128 features to an image, as the paper's digit G: a transposed 4 x 4
  convolution to 4 x 4 (8 x width channels at 32 px), then stride-2 transposed convolutions with
  batch norm and ReLU halving the channels as they double the side, the last to C channels and
  tanh. Square sides of 8 to 512 pixels, powers of two.
- D: stride-2 4 x 4 convolutions (LeakyReLU 0.2, batch norm after the first) down to 4 x 4, then a
  4 x 4 convolution to the three logits of the paper's ternary D (fake from source, fake from
  target, real target).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gankit.errors import GankitError

Dims = tuple[int, int, int]


def check_size(shape: Dims) -> int:
    """The side of the target images, refused unless square and a power of two in [8, 512]."""
    _, h, w = shape
    if h != w or h < 8 or h > 512 or h & (h - 1):
        raise GankitError(f"model.arch=dtn builds square images of 8, 16, 32, 64, 128, 256 or 512 pixels "
                          f"(its decoder doubles the side per layer), not {h}x{w}; set data.image_size")
    return h


class DTNDecoder(nn.Module):
    """g: features (N, in_dim) -> images (N, channels, size, size) in [-1, 1]."""

    def __init__(self, in_dim: int, channels: int, size: int, width: int) -> None:
        super().__init__()
        ups = int(math.log2(size)) - 2  # 4 -> size
        ch = width * 2 ** ups
        layers: list[nn.Module] = [nn.ConvTranspose2d(in_dim, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch),
                                   nn.ReLU(True)]
        for _ in range(ups - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, h: Tensor) -> Tensor:
        return self.net(h[:, :, None, None])


class DTNGenerator(nn.Module):
    """G = g o f, f frozen (see the module docstring). ``G(x)`` translates; ``features(x)`` is f."""

    def __init__(self, f: nn.Module, g: DTNDecoder) -> None:
        super().__init__()
        self.f = f
        self.g = g
        self.f.requires_grad_(False)
        self.f.eval()

    def train(self, mode: bool = True) -> DTNGenerator:
        super().train(mode)
        self.f.eval()  # fixed: its batch norm keeps its statistics, its dropout never applies
        return self

    def features(self, x: Tensor) -> Tensor:
        """f(x): (N, C, H, W) in [-1, 1], any C in {1, 3} and size -> (N, 128)."""
        return self.f.features(x)  # type: ignore[operator]

    def forward(self, x: Tensor) -> Tensor:
        return self.g(self.features(x))

    def class_scores(self, h: Tensor) -> Tensor:
        """f's logits (N, 10) from its features h (N, 128): f's own head (no dropout: f is fixed)."""
        return self.f.head(h)  # type: ignore[operator]

    def f_constancy(self, x: Tensor) -> Tensor:
        """Per input (N,): mean over f's features of (f(x) - f(G(x)))^2 (the paper's L_CONST)."""
        fx = self.features(x)
        return (fx - self.features(self.g(fx))).square().mean(1)


class DTNDiscriminator(nn.Module):
    """D: images (N, C, size, size) -> (N, 3) logits: fake from source, fake from target, real.

    With ``classes`` > 0 it is also told a class c per image (``D(x, c)``) and adds to each logit the
    projection of its last features on c's embedding (the projection discriminator, Miyato & Koyama
    2018): logits_k(x, c) = head_k(phi(x)) + <e_{c,k}, sum over positions of phi(x)>. The embedding
    starts at zero, so D starts as the unconditional one and learns what each class's images look like.
    """

    def __init__(self, channels: int, size: int, width: int, classes: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        ch, side = width, size // 2
        while side > 4:
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch, side = ch * 2, side // 2
        layers += [nn.Conv2d(ch, 3, 4, 1, 0), nn.Flatten()]
        self.net = nn.Sequential(*layers)
        self.classes = classes
        if classes:
            self.embed = nn.Embedding(classes, ch * 3)  # one ch-d vector per class and logit
            nn.init.zeros_(self.embed.weight)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        if not self.classes:
            return self.net(x)
        if c is None:
            raise ValueError("this D is class-conditional: call D(x, c) with the classes c (N,)")
        phi = self.net[:-2](x)  # (N, ch, 4, 4): the features the head reads
        logits = self.net[-2:](phi)  # (N, 3)
        e = self.embed(c).view(len(c), phi.shape[1], 3)  # (N, ch, 3)
        return logits + torch.einsum("nc,nck->nk", phi.sum((2, 3)), e)


def build_dtn(shape_A: Dims, shape_B: Dims, width: int, d_cond: bool = False) -> dict[str, nn.Module]:
    """G: source (N, Ca, H, W) -> target (N, Cb, S, S) through f's features; D on the target's shape.
    f's weights are those of the (untrained) classifier's layout: the task loads the trained ones,
    and a checkpoint carries them. ``d_cond``: D is told the class of f's head (see DTNDiscriminator)."""
    # f is the metrics' classifier (the layer above): imported when a DTN is built, not with models
    from gankit.metrics.fmnist_classifier import FEATURE_DIM, NUM_CLASSES, FMNISTClassifier

    size = check_size(shape_B)
    with torch.random.fork_rng(devices=[]):  # f's random init is overwritten: it draws nothing
        f = FMNISTClassifier()
    return {"G": DTNGenerator(f, DTNDecoder(FEATURE_DIM, shape_B[0], size, width)),
            "D": DTNDiscriminator(shape_B[0], size, width, NUM_CLASSES if d_cond else 0)}


__all__ = ["DTNDecoder", "DTNDiscriminator", "DTNGenerator", "build_dtn", "check_size"]
