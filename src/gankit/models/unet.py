"""pix2pix's U-Net generator (Isola et al. 2017, section 3.2.1 and appendix 6.1.1).

An encoder of stride-2 4x4 convolutions halves the image ``depth`` times; a decoder of stride-2
transposed convolutions doubles it back, and each decoder level also receives the encoder's
features of the same resolution (the skip connections: low-level structure such as edges passes
straight from input to output instead of squeezing through the bottleneck). There is no z: as in
the paper, dropout in the innermost decoder levels is G's only noise.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gankit.errors import GankitError


def unet_depth(size: tuple[int, int], max_depth: int = 8) -> int:
    """Levels of halving an HxW image allows: while both sides stay even (at most ``max_depth``,
    pix2pix's 256 px U-Net has 8, down to 1x1). 28 px -> 2 (28, 14, 7); 32 px -> 5 (to 1x1)."""
    h, w = size
    depth = 0
    while depth < max_depth and h % 2 == 0 and w % 2 == 0 and min(h, w) >= 2:
        h, w, depth = h // 2, w // 2, depth + 1
    return depth


class UNetGenerator(nn.Module):
    """A (B, in_ch, H, W) in [-1, 1] -> B (B, out_ch, H, W) in [-1, 1], with skips at every level."""

    def __init__(self, in_ch: int, out_ch: int, size: tuple[int, int], width: int = 64, depth: int = 0,
                 dropout: float = 0.5) -> None:
        super().__init__()
        depth = depth or unet_depth(size)
        if depth < 1 or size[0] % 2**depth or size[1] % 2**depth:
            raise GankitError(f"a U-Net of depth {depth} needs image sides divisible by {2 ** max(depth, 1)}, "
                              f"got {size[0]}x{size[1]}; set data.image_size to an even size such as 32 or 64")
        self.depth = depth
        # encoder output channels per level: width, 2w, 4w, 8w, 8w, ... (C64-C128-C256-C512-C512...)
        chans = [min(width * 2**i, width * 8) for i in range(depth)]
        self.down = nn.ModuleList()
        c = in_ch
        for i, co in enumerate(chans):
            layers: list[nn.Module] = [] if i == 0 else [nn.LeakyReLU(0.2)]
            innermost = i == depth - 1
            layers.append(nn.Conv2d(c, co, 4, 2, 1, bias=i == 0 or innermost))
            if i > 0 and not innermost:  # no norm on the first layer (the paper) or the bottleneck
                layers.append(nn.BatchNorm2d(co))
            self.down.append(nn.Sequential(*layers))
            c = co
        self.up = nn.ModuleList()
        for j in range(depth):  # j = 0 is the innermost level
            level = depth - 1 - j
            cin = chans[level] * (1 if j == 0 else 2)  # deeper features, concatenated with the skip
            outermost = level == 0
            cout = out_ch if outermost else chans[level - 1]
            layers = [nn.ReLU(), nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=outermost)]
            if outermost:
                layers.append(nn.Tanh())  # images live in [-1, 1]
            else:
                layers.append(nn.BatchNorm2d(cout))
                if dropout and 0 < j <= 3:  # CD512 x 3: dropout after the bottleneck's first levels
                    layers.append(nn.Dropout(dropout))
            self.up.append(nn.Sequential(*layers))

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = x  # (B, in_ch, H, W)
        for down in self.down:
            h = down(h)  # level i: (B, chans[i], H / 2^(i+1), W / 2^(i+1))
            skips.append(h)
        h = self.up[0](h)  # innermost: (B, chans[depth-2], H / 2^(depth-1), ...)
        for j in range(1, self.depth):
            h = self.up[j](torch.cat([h, skips[self.depth - 1 - j]], 1))  # skip from the same size
        return h  # (B, out_ch, H, W)
