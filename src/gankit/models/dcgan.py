"""DCGAN (Radford, Metz & Chintala 2015): transposed convolutions up, strided convolutions down.

Generator: z -> a (h0, w0) map by one transposed convolution, then ``n`` stride-2 transposed
convolutions each doubling the size and halving the channels, batch norm + ReLU between, tanh out.
Discriminator: the mirror, stride-2 convolutions with LeakyReLU(0.2), batch norm everywhere but the
first layer, and a final convolution over the whole (h0, w0) map giving one logit. No pooling, no
fully connected hidden layers (the paper's architecture guidelines, section 3).

Sizes: ``n`` is the largest number of halvings that keeps both sides whole and the smaller side
at least 4. So 28 px (Fashion-MNIST) starts at 7x7 with n = 2; 32 / 64 / 128 px start at 4x4 with
n = 3 / 4 / 5; non-square sizes such as 48x64 start at 6x8.
"""

from __future__ import annotations

from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import DataShape, init_dcgan_weights


def dcgan_plan(h: int, w: int) -> tuple[int, int, int]:
    """(h0, w0, n): the starting map size and number of doublings for an h x w image."""
    n = 0
    while h % 2 ** (n + 1) == 0 and w % 2 ** (n + 1) == 0 and min(h, w) // 2 ** (n + 1) >= 4:
        n += 1
    if n < 2:
        raise GankitError(
            f"dcgan cannot make {h}x{w} images: each side must be divisible by 4 and the smaller "
            "at least 16 (e.g. 28, 32, 64, 128 or 48x64); choose another --image-size or --model mlp"
        )
    return h // 2**n, w // 2**n, n


class DCGANGenerator(nn.Module):
    def __init__(self, shape: DataShape, latent_dim: int, width: int) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = dcgan_plan(h, w)
        self.shape, self.latent_dim = shape, latent_dim
        ch = width * 2 ** (n - 1)  # e.g. 64 px, width 64: 512 -> 256 -> 128 -> 64 -> c
        layers: list[nn.Module] = [
            # (B, latent, 1, 1) -> (B, ch, h0, w0)
            nn.ConvTranspose2d(latent_dim, ch, (h0, w0), 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(n - 1):
            # (B, ch, s, t) -> (B, ch/2, 2s, 2t)
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, c, 4, 2, 1, bias=False), nn.Tanh()]  # -> (B, c, h, w)
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: DataShape, width: int) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = dcgan_plan(h, w)
        ch = width
        # (B, c, h, w) -> (B, width, h/2, w/2); no batch norm on D's input layer (DCGAN section 3)
        layers: list[nn.Module] = [nn.Conv2d(c, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        layers.append(nn.Conv2d(ch, 1, (h0, w0), 1, 0, bias=False))  # (B, ch, h0, w0) -> (B, 1, 1, 1)
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).flatten()


def build_dcgan(shape: DataShape, latent_dim: int, width: int) -> tuple[nn.Module, nn.Module]:
    """DCGAN pair for image data; ``width`` is the channel count of G's last hidden layer (64)."""
    if not shape.is_image:
        raise GankitError(
            f"dcgan models images, but the data are {shape.describe()}; use --model mlp for 2-D points"
        )
    w = width or 64
    return DCGANGenerator(shape, latent_dim, w), DCGANDiscriminator(shape, w)
