"""R3GAN's norm-free residual architecture (Huang et al. 2024, "The GAN is dead; long live the GAN!
A Modern GAN Baseline", section 4), written from the paper in plain PyTorch.

No normalisation layer anywhere. Each resolution holds ``blocks`` residual blocks, each
x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))): a ResNeXt block (Xie et al. 2017) as an
inverted bottleneck (the 1x1 widens the channels by 2, the 3x3 works in groups of 16 channels),
with leaky ReLU 0.2. Trained without normalisation thanks to a Fixup-style initialisation (Zhang
et al. 2019): each branch's last convolution starts at zero, so every block is the identity at
init, and the other two convolutions take He's initialisation scaled by L^(-1/(2m-2)), with L the
blocks of the network and m = 3 convolutions per branch (R3GAN, section 4).

Between resolutions, a 1x1 convolution changes the channels and a [1, 2, 1] binomial filter
resamples: G upsamples by zero insertion and then low-pass filters, D low-pass filters and then
keeps every other pixel (anti-aliased resampling, as in Karras et al. 2021 and R3GAN).

G's stem is a learned (h0, w0) basis: one learned map per channel, each scaled by a linear function
of z. D's end is its mirror: a learned (h0, w0) weighting per channel (a depthwise convolution over
the whole map) gives one feature per channel, and a linear layer the logit - so projection
conditioning (Miyato & Koyama 2018) takes those features as phi(x).

Sizes follow DCGAN's plan (``dcgan_plan``): 28 px starts at 7x7 with 2 doublings, 32 / 64 / 128 px
at 4x4 with 3 / 4 / 5. The full-resolution stage has ``width`` channels; each halving doubles them,
up to 8 x width. Deviation from the paper: G ends in tanh, since gankit's images live in [-1, 1].
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.errors import GankitError
from gankit.models.base import PLAIN_D, Builder, DataShape, DSpec, MinibatchStd
from gankit.models.dcgan import dcgan_plan

SLOPE = 0.2  # leaky ReLU's negative slope (R3GAN)
EXPANSION = 2  # inverted bottleneck: the branch works at 2x the channels
GROUP_SIZE = 16  # channels per group of the 3x3 convolution (R3GAN's)
MAX_MULT = 8  # the lowest resolutions hold at most 8 x width channels
DEFAULT_BLOCKS = 1  # residual blocks per resolution: the CPU-sized "nano" model
ACT_GAIN = math.sqrt(2 / (1 + SLOPE**2))  # He et al. 2015's gain for leaky ReLU


def binomial_filter() -> Tensor:
    """The normalised [1, 2, 1] low-pass filter in 2-D: outer([1, 2, 1], [1, 2, 1]) / 16 (3, 3).

    Its frequency response per axis is cos^2(w / 2): 1 at DC, 0 at Nyquist."""
    f = torch.tensor([1.0, 2.0, 1.0])
    return torch.outer(f, f) / 16


def _he(weight: Tensor, gain: float, fan_in: int) -> None:
    with torch.no_grad():
        weight.normal_(0.0, gain / math.sqrt(fan_in))


class _Resample(nn.Module):
    """A depthwise [1, 2, 1] filter (``binomial_filter()`` times ``gain``), run in fp32 whatever the
    autocast: oneDNN's depthwise convolutions are 5-9x slower in bf16 than in fp32 (casts
    included) on CPU, and the filter is exact in either."""

    def __init__(self, gain: float) -> None:
        super().__init__()
        self.register_buffer("kernel", (binomial_filter() * gain)[None, None], persistent=False)

    def filter(self, x: Tensor, up: bool) -> Tensor:
        k = self.kernel.expand(x.shape[1], 1, 3, 3)
        with torch.autocast(x.device.type, enabled=False):
            if up:
                y = F.conv_transpose2d(x.float(), k, stride=2, padding=1, output_padding=1, groups=x.shape[1])
            else:
                y = F.conv2d(x.float(), k, stride=2, padding=1, groups=x.shape[1])
        return y.to(x.dtype)


class Downsample(_Resample):
    """Low-pass [1, 2, 1] then keep every other pixel: (B, C, H, W) -> (B, C, H/2, W/2)."""

    def __init__(self) -> None:
        super().__init__(1.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.filter(x, up=False)


class Upsample(_Resample):
    """Zero insertion then [1, 2, 1] x 4 (the gain keeps DC): (B, C, H, W) -> (B, C, 2H, 2W).

    The adjoint of ``Downsample`` times 4: even pixels copy the input, odd ones average neighbours
    (bilinear interpolation)."""

    def __init__(self) -> None:
        super().__init__(4.0)

    def forward(self, x: Tensor) -> Tensor:
        return self.filter(x, up=True)


class ResidualBlock(nn.Module):
    """x + conv1x1(act(grouped conv3x3(act(conv1x1(x))))), identity at init (zero last conv).

    ``num_blocks``: L, the residual blocks of the whole network, for the Fixup-style scale
    L^(-1/(2m-2)) = L^(-1/4) of the first two convolutions' He initialisation (m = 3)."""

    def __init__(self, channels: int, num_blocks: int) -> None:
        super().__init__()
        wide = channels * EXPANSION
        groups = wide // GROUP_SIZE if wide % GROUP_SIZE == 0 else 1
        self.conv1 = nn.Conv2d(channels, wide, 1)
        self.conv2 = nn.Conv2d(wide, wide, 3, padding=1, groups=groups)
        self.conv3 = nn.Conv2d(wide, channels, 1)
        self.act = nn.LeakyReLU(SLOPE)
        scale = num_blocks ** (-1 / (2 * 3 - 2))
        _he(self.conv1.weight, ACT_GAIN * scale, channels)
        _he(self.conv2.weight, ACT_GAIN * scale, (wide // groups) * 9)
        for conv in (self.conv1, self.conv2, self.conv3):
            nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
        nn.init.zeros_(self.conv3.weight)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv3(self.act(self.conv2(self.act(self.conv1(x)))))


def _linear_conv(c_in: int, c_out: int) -> nn.Conv2d:
    """A 1x1 convolution between stages (no activation follows): variance-preserving init."""
    conv = nn.Conv2d(c_in, c_out, 1)
    _he(conv.weight, 1.0, c_in)
    nn.init.zeros_(conv.bias)  # type: ignore[arg-type]
    return conv


class GenerativeBasis(nn.Module):
    """G's stem: z (B, latent) -> (B, C, h0, w0) = basis[c] * (W z)[c], a learned map per channel."""

    def __init__(self, latent_dim: int, channels: int, h0: int, w0: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, h0, w0))
        self.linear = nn.Linear(latent_dim, channels)
        _he(self.linear.weight, 1.0, latent_dim)
        nn.init.zeros_(self.linear.bias)

    def forward(self, z: Tensor) -> Tensor:
        scale = self.linear(z)  # (B, C)
        out = self.basis[None] * scale[:, :, None, None]  # (B, C, h0, w0)
        return out.contiguous(memory_format=torch.channels_last)


class DiscriminativeBasis(nn.Module):
    """D's end: (B, C, h0, w0) -> (B, C), a learned (h0, w0) weighting of each channel's map (a
    depthwise convolution whose kernel covers the whole map)."""

    def __init__(self, channels: int, h0: int, w0: int) -> None:
        super().__init__()
        self.basis = nn.Parameter(torch.randn(channels, h0, w0) / math.sqrt(h0 * w0))

    def forward(self, x: Tensor) -> Tensor:
        return (x * self.basis[None].to(x.dtype)).sum((2, 3))


def stage_channels(width: int, n: int) -> list[int]:
    """Channels per resolution, lowest first: width x min(2^(n - s), 8) for s = 0..n."""
    return [width * min(2 ** (n - s), MAX_MULT) for s in range(n + 1)]


def r3_plan(h: int, w: int) -> tuple[int, int, int]:
    """(h0, w0, n) as DCGAN's plan, its error naming r3."""
    try:
        return dcgan_plan(h, w)
    except GankitError as e:
        raise GankitError(str(e).replace("dcgan", "r3")) from None


class R3Generator(nn.Module):
    """z (B, latent) -> basis at (h0, w0) -> [blocks, then 1x1 + upsample] per resolution ->
    1x1 to the image's channels -> tanh: (B, C, H, W) in [-1, 1]."""

    def __init__(self, shape: DataShape, latent_dim: int, width: int, blocks: int) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = r3_plan(h, w)
        self.shape, self.latent_dim = shape, latent_dim
        ch = stage_channels(width, n)
        total = blocks * (n + 1)
        layers: list[nn.Module] = [GenerativeBasis(latent_dim, ch[0], h0, w0)]
        for s in range(n + 1):
            if s:
                if ch[s] != ch[s - 1]:
                    layers.append(_linear_conv(ch[s - 1], ch[s]))  # fewer channels first: cheaper
                layers.append(Upsample())
            layers += [ResidualBlock(ch[s], total) for _ in range(blocks)]
        layers += [_linear_conv(ch[n], c), nn.Tanh()]
        self.net = nn.Sequential(*layers)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class R3Discriminator(nn.Module):
    """x (B, C, H, W) -> 1x1 -> [blocks, then downsample + 1x1] per resolution -> basis -> linear
    -> (B,) logits. ``net[-1]`` is the logit layer, ``net[:-1]`` gives the (B, C) features."""

    def __init__(self, shape: DataShape, width: int, blocks: int, spec: DSpec = PLAIN_D) -> None:
        super().__init__()
        c, h, w = shape.dims
        h0, w0, n = r3_plan(h, w)
        ch = stage_channels(width, n)[::-1]  # highest resolution first
        total = blocks * (n + 1)
        layers: list[nn.Module] = [_linear_conv(c * spec.pack, ch[0])]  # PacGAN: pack x channels
        for s in range(n + 1):
            if s:
                layers.append(Downsample())
                if ch[s] != ch[s - 1]:
                    layers.append(_linear_conv(ch[s - 1], ch[s]))
            layers += [ResidualBlock(ch[s], total) for _ in range(blocks)]
        features = ch[n] + spec.mbstd
        if spec.mbstd:
            layers.append(MinibatchStd())  # (B, C, h0, w0) -> (B, C + 1, h0, w0)
        layers.append(DiscriminativeBasis(features, h0, w0))
        head = nn.Linear(features, 1)
        _he(head.weight, 1.0, features)
        nn.init.zeros_(head.bias)
        layers.append(head)
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(1)


def r3_width(shape: DataShape) -> int:
    """r3's default width: 8 channels at full resolution, the CPU "nano" model (its training step
    takes about twice DCGAN's at width 32 on one CPU thread; docs/BENCHMARKS.md). Scale up by
    ``model.width`` and ``model.blocks``."""
    return 8


def r3_builder(blocks: int) -> Builder:
    """The r3 builder with ``blocks`` residual blocks per resolution (``model.blocks``)."""
    if blocks < 1:
        raise GankitError(f"model.blocks must be at least 1, got {blocks}")

    def build(shape: DataShape, latent_dim: int, width: int | None,
              d: DSpec = PLAIN_D) -> tuple[nn.Module, nn.Module]:
        if not shape.is_image:
            raise GankitError(f"r3 models images, but the data are {shape.describe()}; "
                              "use model.arch=mlp for 2-D points")
        wd = width or r3_width(shape)
        return R3Generator(shape, latent_dim, wd, blocks), R3Discriminator(shape, wd, blocks, d)

    return build


build_r3 = r3_builder(DEFAULT_BLOCKS)
