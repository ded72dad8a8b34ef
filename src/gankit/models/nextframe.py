"""The multi-scale networks of next-frame prediction (Mathieu, Couprie & LeCun 2016, section 2.1
and appendix).

G sees the last ``context`` frames stacked on channels and predicts the next frame at four scales,
coarsest first (sides H/8, H/4, H/2, H). Scale k reads the input frames downsampled to its side and
the previous scale's prediction upsampled to it, so each scale only refines (the paper's
Y^_k = u_k(Y^_k-1) + G'_k(X_k, u_k(Y^_k-1)); here the refinement passes through tanh, as in the
common reimplementation, so every scale's frame stays in [-1, 1]):

    Y^_1 = tanh(G'_1(X_1)),   Y^_k = tanh(G'_k(X_k, u(Y^_k-1)))

Each G'_k is a stack of padded convolutions with ReLU, the paper's feature maps and kernels with
its 128 replaced by ``width`` (G'_1, G'_2: 3 layers, G'_3, G'_4: 5; kernels 3 to 7). D is one
discriminator per scale, D_k(X_k, Y_k): the input frames beside a true or predicted next frame,
strided convolutions, then fully connected layers to one logit (appendix: D_1 ... D_4). No
normalisation layers: nothing is shared across a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ARCH = "nextframe"
SCALES = 4
DEFAULT_WIDTH = 32  # the paper's 128, divided by 4 for a CPU
# G'_k: (feature maps as multiples of width, kernels) per scale, coarsest first (the paper's
# 128-256-128 with kernels 3,3,3,3 and 5,3,3,5; 128-256-512-256-128 with 5,3,3,3,3,5 and 7,5,5,5,5,7)
G_LAYERS = (((1, 2, 1), (3, 3, 3, 3)), ((1, 2, 1), (5, 3, 3, 5)),
            ((1, 2, 4, 2, 1), (5, 3, 3, 3, 3, 5)), ((1, 2, 4, 2, 1), (7, 5, 5, 5, 5, 7)))
# D_k: convolution maps (multiples of width) and kernels per scale, then two hidden linear layers
D_LAYERS = (((1,), (3,)), ((1, 1, 1), (3, 3, 3)), ((1, 2, 2), (5, 5, 5)), ((1, 2, 4, 1), (7, 7, 5, 5)))


def check_size(h: int, w: int) -> None:
    if h % 2 ** (SCALES - 1) or w % 2 ** (SCALES - 1) or min(h, w) < 2 ** (SCALES - 1):
        from gankit.errors import GankitError

        raise GankitError(f"next-frame prediction works at {SCALES} scales, halving the side each time: the "
                          f"frames' sides must be multiples of {2 ** (SCALES - 1)}, got {h}x{w}")


def pyramid(x: Tensor) -> list[Tensor]:
    """x at the four scales, coarsest first (average pooling by 2 per step)."""
    out = [x]
    for _ in range(SCALES - 1):
        out.append(F.avg_pool2d(out[-1], 2))
    return out[::-1]


class ScaleGenerator(nn.Module):
    """G'_k: padded convolutions with ReLU, the last to ``channels`` with tanh."""

    def __init__(self, c_in: int, channels: int, maps: tuple[int, ...], kernels: tuple[int, ...], width: int):
        super().__init__()
        sizes = [c_in, *(m * width for m in maps), channels]
        assert len(kernels) == len(sizes) - 1, "one kernel per layer"
        layers: list[nn.Module] = []
        for i, k in enumerate(kernels):
            layers.append(nn.Conv2d(sizes[i], sizes[i + 1], k, padding=k // 2))
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(self.net(x))


class MultiScaleGenerator(nn.Module):
    """G: ``context`` frames (B, context * C, H, W) in [-1, 1] -> the next frame at every scale,
    [(B, C, H/8, W/8), ..., (B, C, H, W)]; ``forward`` returns the finest."""

    def __init__(self, context: int, channels: int, width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.context, self.channels = context, channels
        self.scales = nn.ModuleList(
            ScaleGenerator(context * channels + (channels if k else 0), channels, maps, kernels, width)
            for k, (maps, kernels) in enumerate(G_LAYERS))

    def pyramid(self, x: Tensor) -> list[Tensor]:
        inputs, out = pyramid(x), []
        for k, g in enumerate(self.scales):
            if k == 0:
                out.append(g(inputs[0]))
            else:
                up = F.interpolate(out[-1], scale_factor=2, mode="bilinear", align_corners=False)
                out.append(g(torch.cat([inputs[k], up], 1)))
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self.pyramid(x)[-1]


class ScaleDiscriminator(nn.Module):
    """D_k: strided convolutions with ReLU, then linear layers to one logit per sample."""

    def __init__(self, c_in: int, side: tuple[int, int], maps: tuple[int, ...], kernels: tuple[int, ...],
                 width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, (h, w) = c_in, side
        for m, k in zip(maps, kernels, strict=True):
            stride = 2 if min(h, w) >= 4 else 1
            layers += [nn.Conv2d(c, m * width, k, stride=stride, padding=k // 2), nn.ReLU()]
            c, h, w = m * width, (h + stride - 1) // stride, (w + stride - 1) // stride
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 4 * width), nn.ReLU(),
                                  nn.Linear(4 * width, 2 * width), nn.ReLU(), nn.Linear(2 * width, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.convs(x))


class MultiScaleDiscriminator(nn.Module):
    """D: (input frames, next frame) at every scale -> one logit per scale, (B, SCALES)."""

    def __init__(self, context: int, channels: int, size: tuple[int, int], width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        h, w = size
        self.scales = nn.ModuleList(
            ScaleDiscriminator((context + 1) * channels, (h >> (SCALES - 1 - k), w >> (SCALES - 1 - k)),
                               maps, kernels, width)
            for k, (maps, kernels) in enumerate(D_LAYERS))

    def forward(self, x: Tensor, frames: list[Tensor]) -> Tensor:
        """x: the input frames (B, context * C, H, W) at full size; frames: the next frame at every
        scale, coarsest first."""
        inputs = pyramid(x)
        return torch.cat([d(torch.cat([inputs[k], frames[k]], 1)) for k, d in enumerate(self.scales)], 1)


def build_nextframe(context: int, shape: tuple[int, int, int], width: int | None = None
                    ) -> tuple[MultiScaleGenerator, MultiScaleDiscriminator]:
    """G and D for ``context`` frames of ``shape`` (C, H, W)."""
    c, h, w = shape
    check_size(h, w)
    width = width or DEFAULT_WIDTH
    return MultiScaleGenerator(context, c, width), MultiScaleDiscriminator(context, c, (h, w), width)


@torch.no_grad()
def rollout(G: nn.Module, frames: Tensor, horizon: int, batch_size: int = 64) -> Tensor:
    """G rolled out autoregressively: frames (N, context, C, H, W) in [-1, 1] -> the next
    ``horizon`` frames (N, horizon, C, H, W), each predicted from the last ``context`` frames,
    its own predictions included. In eval mode, in batches."""
    was = G.training
    G.eval()
    out = []
    try:
        for i in range(0, len(frames), batch_size):
            window = frames[i:i + batch_size]
            preds = []
            for _ in range(horizon):
                y = G(window.flatten(1, 2)).float()
                preds.append(y)
                window = torch.cat([window[:, 1:], y[:, None].to(window.dtype)], 1)
            out.append(torch.stack(preds, 1))
    finally:
        G.train(was)
    return torch.cat(out)


__all__ = ["ARCH", "DEFAULT_WIDTH", "SCALES", "MultiScaleDiscriminator", "MultiScaleGenerator", "build_nextframe",
           "check_size", "pyramid", "rollout"]
