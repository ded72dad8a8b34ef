"""CycleGAN's ResNet generator (Zhu et al. 2017, appendix 7.2; after Johnson et al. 2016).

c7s1-w, d2w, d4w, n residual blocks R4w, u2w, uw, c7s1-out: two stride-2 convolutions down, a
stack of residual blocks at a quarter of the resolution, two transposed convolutions back up.
Instance normalisation and reflection padding as in the paper (no border artefacts). Image sides
must be divisible by 4.
"""

from __future__ import annotations

from torch import Tensor, nn

from gankit.errors import GankitError


class ResidualBlock(nn.Module):
    """x + conv(IN(relu(conv(x)))): the block keeps the resolution and the channels."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), nn.InstanceNorm2d(c, affine=True), nn.ReLU(),
            nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3, bias=False), nn.InstanceNorm2d(c, affine=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """X (B, in_ch, H, W) in [-1, 1] -> Y (B, out_ch, H, W) in [-1, 1]."""

    def __init__(self, in_ch: int, out_ch: int, size: tuple[int, int], width: int = 64,
                 n_blocks: int = 0) -> None:
        super().__init__()
        if size[0] % 4 or size[1] % 4:
            raise GankitError(f"the ResNet generator halves the image twice: sides must be divisible "
                              f"by 4, got {size[0]}x{size[1]}; set data.image_size to 28, 32, 64, ...")
        # the paper: 6 blocks for 128 px, 9 for 256 px and up; small images need fewer
        n_blocks = n_blocks or (9 if min(size) >= 256 else 6 if min(size) >= 128 else 4)
        w = width
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3), nn.Conv2d(in_ch, w, 7, bias=False), nn.InstanceNorm2d(w, affine=True), nn.ReLU(),
        ]  # (B, w, H, W)
        for c in (w, 2 * w):  # d2w, d4w: (B, 4w, H/4, W/4)
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1, bias=False), nn.InstanceNorm2d(2 * c, affine=True), nn.ReLU()]
        layers += [ResidualBlock(4 * w) for _ in range(n_blocks)]
        for c in (4 * w, 2 * w):  # u2w, uw: back to (B, w, H, W)
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1, bias=False),
                       nn.InstanceNorm2d(c // 2, affine=True), nn.ReLU()]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(w, out_ch, 7), nn.Tanh()]  # images live in [-1, 1]
        self.net = nn.Sequential(*layers)
        self.n_blocks = n_blocks

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)
