"""The PatchGAN discriminator of pix2pix and CycleGAN (Isola et al. 2017, section 3.2.2).

Instead of one real/fake logit per image, D gives one logit per overlapping patch: a grid of
logits whose receptive fields each cover ``receptive_field(n_layers)`` pixels square (70 for the
paper's 256 px images). It models only high frequencies (local texture and sharpness); the L1 or
cycle loss takes care of the low ones. ``patch_layers`` scales the patch to the image size.
"""

from __future__ import annotations

from torch import Tensor, nn


def receptive_field(n_layers: int) -> int:
    """Pixels (per side) one output logit sees: ``n_layers`` stride-2 4x4 convolutions, then two
    stride-1 4x4 convolutions. 1 -> 16, 2 -> 34, 3 -> 70 (the paper's 70x70 PatchGAN)."""
    rf = 1
    for stride in [1, 1] + [2] * n_layers:  # from the output back to the input
        rf = (rf - 1) * stride + 4
    return rf


def patch_layers(size: tuple[int, int]) -> int:
    """The most stride-2 layers whose patch is at most half the image's shorter side (at least
    1): 256 px -> 3 (70 px patches, the paper's), 64 px -> 1 (16), 28 or 32 px -> 1 (16)."""
    n = 1
    while receptive_field(n + 1) <= min(size) // 2:
        n += 1
    return n


class PatchDiscriminator(nn.Module):
    """(B, in_ch, H, W) -> patch logits (B, 1, H', W'); for pix2pix in_ch holds A and B
    concatenated (D judges the pair), for CycleGAN one domain's images."""

    def __init__(self, in_ch: int, width: int = 64, n_layers: int = 3,
                 norm: type[nn.Module] = nn.BatchNorm2d) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_ch, width, 4, 2, 1), nn.LeakyReLU(0.2)]
        c = width
        for i in range(1, n_layers + 1):
            co = width * min(2**i, 8)
            stride = 2 if i < n_layers else 1  # the last of these keeps the resolution
            layers += [nn.Conv2d(c, co, 4, stride, 1, bias=False), norm(co), nn.LeakyReLU(0.2)]
            c = co
        layers.append(nn.Conv2d(c, 1, 4, 1, 1))  # one logit per patch
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
