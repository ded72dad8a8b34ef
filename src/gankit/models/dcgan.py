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
from gankit.models.base import PLAIN_D, DataShape, DSpec, MinibatchStd, init_dcgan_weights


def dcgan_plan(h: int, w: int) -> tuple[int, int, int]:
    """(h0, w0, n): the starting map size and number of doublings for an h x w image."""
    n = 0
    while h % 2 ** (n + 1) == 0 and w % 2 ** (n + 1) == 0 and min(h, w) // 2 ** (n + 1) >= 4:
        n += 1
    if n < 2:
        raise GankitError(
            f"dcgan cannot make {h}x{w} images: each side must be divisible by 4 and the smaller "
            "at least 16 (e.g. 28, 32, 64, 128 or 48x64); choose another data.image_size or model.arch=mlp"
        )
    return h // 2**n, w // 2**n, n


class Project(nn.ConvTranspose2d):
    """G's first layer: a transposed convolution of a 1x1 input, z -> (B, ch, h0, w0).

    On a 1x1 input it is exactly a matrix product, out[b, c, i, j] = sum_k z[b, k] W[k, c, i, j],
    which runs as one GEMM: 2.3 ms less per forward + backward at batch 64 on 2 CPU cores than
    oneDNN's convolution path (docs/BENCHMARKS.md). Same parameters and state-dict keys.
    """

    def forward(self, z: Tensor) -> Tensor:  # (B, latent) -> (B, ch, h0, w0)
        latent, ch, h0, w0 = self.weight.shape
        # Flattened in (i, j, c) order: a view of a channels-last weight (flatten(1) would copy it,
        # forward and backward), and the product comes out channels-last, as the next layers want.
        w = self.weight.permute(0, 2, 3, 1).reshape(latent, h0 * w0 * ch)
        out = z @ w  # (B, h0 * w0 * ch)
        return out.view(z.shape[0], h0, w0, ch).permute(0, 3, 1, 2)  # (B, ch, h0, w0)


class Readout(nn.Conv2d):
    """D's last layer: a convolution whose kernel covers the whole (h0, w0) map -> one logit.

    That is a dot product per sample, logit[b] = sum_{c,i,j} x[b, c, i, j] W[0, c, i, j]; run as a
    matrix-vector product (6x faster than the convolution path here). Same parameters and keys.
    """

    def forward(self, x: Tensor) -> Tensor:  # (B, ch, h0, w0) -> (B,)
        # Flattened in (i, j, c) order, which for a channels-last x is a view, not a copy.
        x = x.permute(0, 2, 3, 1).reshape(x.shape[0], -1)  # (B, h0 * w0 * ch)
        w = self.weight[0].permute(1, 2, 0).reshape(-1)  # (h0 * w0 * ch,)
        return x @ w


class DCGANGenerator(nn.Module):
    def __init__(self, shape: DataShape, latent_dim: int, width: int) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = dcgan_plan(h, w)
        self.shape, self.latent_dim = shape, latent_dim
        ch = width * 2 ** (n - 1)  # e.g. 64 px, width 64: 512 -> 256 -> 128 -> 64 -> c
        layers: list[nn.Module] = [
            # (B, latent, 1, 1) -> (B, ch, h0, w0)
            Project(latent_dim, ch, (h0, w0), 1, 0, bias=False),
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
        return self.net(z)


class DCGANDiscriminator(nn.Module):
    def __init__(self, shape: DataShape, width: int, spec: DSpec = PLAIN_D) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = dcgan_plan(h, w)
        ch = width
        # (B, c, h, w) -> (B, width, h/2, w/2); no batch norm on D's input layer (DCGAN section 3).
        # PacGAN: the input holds pack samples stacked along the channels.
        layers: list[nn.Module] = [nn.Conv2d(c * spec.pack, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]
        for _ in range(n - 1):
            layers += [
                nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch * 2),
                nn.LeakyReLU(0.2, True),
            ]
            ch *= 2
        if spec.mbstd:
            layers.append(MinibatchStd())  # (B, ch, h0, w0) -> (B, ch + 1, h0, w0)
        layers.append(Readout(ch + spec.mbstd, 1, (h0, w0), 1, 0, bias=False))  # -> (B,)
        self.net = nn.Sequential(*layers)
        self.apply(init_dcgan_weights)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def dcgan_width(shape: DataShape) -> int:
    """DCGAN's default width: 32 channels in G's last hidden layer, for every image size."""
    return 32


def build_dcgan(shape: DataShape, latent_dim: int, width: int | None,
                d: DSpec = PLAIN_D) -> tuple[nn.Module, nn.Module]:
    """DCGAN pair for image data; ``width`` is the channel count of G's last hidden layer: 32 by
    default (``width`` None, or an earlier version's 0), half the paper's 64, which on 2 CPU cores
    reached a lower FID in 300 s of training (2.6x the steps; docs/BENCHMARKS.md)."""
    if not shape.is_image:
        raise GankitError(
            f"dcgan models images, but the data are {shape.describe()}; use model.arch=mlp for 2-D points"
        )
    w = width or dcgan_width(shape)
    return DCGANGenerator(shape, latent_dim, w), DCGANDiscriminator(shape, w, d)
