"""The multi-scale networks of next-frame prediction (Mathieu, Couprie & LeCun 2016, section 2.1
and appendix).

G sees the last ``context`` frames stacked on channels and predicts the next frame at four scales,
coarsest first (sides H/8, H/4, H/2, H). Scale k reads the input frames downsampled to its side and
the previous scale's prediction upsampled to it, so each scale only refines (the paper's
Y^_k = u_k(Y^_k-1) + G'_k(X_k, u_k(Y^_k-1)); here the refinement passes through tanh, as in the
common reimplementation, so every scale's frame stays in [-1, 1]):

    Y^_1 = tanh(G'_1(X_1)),   Y^_k = tanh(G'_k(X_k, u(Y^_k-1)))

Each G'_k is a stack of padded convolutions with ReLU, the paper's feature maps and kernels with
its 128 replaced by ``width`` (G'_1, G'_2: 3 layers, G'_3, G'_4: 5; kernels 3 to 7).

With ``g="flow"`` (``--frame-g flow``) each scale does not draw its frame but moves the last input
frame's pixels: G'_k outputs a drawn frame, a flow (where each pixel is read from in the last frame)
and a mask, and Y^_k = mask * warp(last_k, flow) + (1 - mask) * drawn. Items keep their looks when
they move, and a rolled-out prediction stays as crisp as the frame it moves (the flow-and-frame
fusion of Liang et al. 2017, "Dual motion GAN"; pixels moved, not drawn, as Finn et al. 2016's
masks do). The mask lets G draw what no pixel of the last frame shows (an item coming out from
behind another). The flow is bounded (``MAX_FLOW``: 8 pixels of 64 a frame, the same share of the
side at every scale) and G starts as the copy-last baseline (zero flow, a mask of 0.95: ``start``):
a first version with a tanh flow in whole-image units and a tanh mask from DCGAN's random start
saturated within 1,400 steps into blank frames (docs/BENCHMARKS.md).

D is one discriminator per scale, D_k(X_k, Y_k): the input frames beside a true or predicted next frame,
strided convolutions, then fully connected layers to one logit (appendix: D_1 ... D_4). No
normalisation layers: nothing is shared across a batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.models.flow import blend, warp

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


#: nextframe.frame_g: what G'_k outputs at each scale
FRAME_GS = ("draw", "flow")
MAX_FLOW = 2 * 8 / 64  # the largest move in a frame: 8 pixels of 64 (image units: 2 = a side)
MASK_START = 3.0  # sigmoid(3) = 0.95 of the moved frame at the start


class ScaleGenerator(nn.Module):
    """G'_k: padded convolutions with ReLU, the last to ``channels`` with tanh; ``flow``: to
    ``channels`` + 3, the drawn frame (tanh), the flow (bounded by ``MAX_FLOW``) and the mask
    (sigmoid), and the output is the last frame moved by the flow, blended with the drawn one."""

    def __init__(self, c_in: int, channels: int, maps: tuple[int, ...], kernels: tuple[int, ...], width: int,
                 flow: bool = False):
        super().__init__()
        self.channels, self.flow = channels, flow
        sizes = [c_in, *(m * width for m in maps), channels + (3 if flow else 0)]
        assert len(kernels) == len(sizes) - 1, "one kernel per layer"
        layers: list[nn.Module] = []
        for i, k in enumerate(kernels):
            layers.append(nn.Conv2d(sizes[i], sizes[i + 1], k, padding=k // 2))
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    @torch.no_grad()
    def start_as_copy(self) -> None:
        """(``flow`` only) the flow and mask channels of the last layer at zero weight: a zero flow and
        a mask of sigmoid(MASK_START), so G starts as the copy-last baseline, mostly moved pixels."""
        last, c = self.net[-1], self.channels
        assert isinstance(last, nn.Conv2d) and self.flow
        last.weight[c:].zero_()
        last.bias[c:].zero_()
        last.bias[c + 2] = MASK_START

    def forward(self, x: Tensor, last: Tensor) -> Tensor:
        """x: this scale's input (B, c_in, h, w); last: the last input frame at this scale (B, C, h, w)."""
        a = self.net(x)
        if not self.flow:
            return torch.tanh(a)
        c = self.channels
        drawn = torch.tanh(a[:, :c])
        # a bounded flow, in image units (the same displacement at every scale), and a mask in [0, 1]
        flow = MAX_FLOW * torch.tanh(a[:, c:c + 2] / MAX_FLOW)
        mask = torch.sigmoid(a[:, c + 2:])
        return blend(warp(last, flow), drawn, mask)


class MultiScaleGenerator(nn.Module):
    """G: ``context`` frames (B, context * C, H, W) in [-1, 1] -> the next frame at every scale,
    [(B, C, H/8, W/8), ..., (B, C, H, W)]; ``forward`` returns the finest."""

    def __init__(self, context: int, channels: int, width: int = DEFAULT_WIDTH, g: str = "draw") -> None:
        super().__init__()
        if g not in FRAME_GS:
            raise ValueError(f"frame_g {g!r}: one of {FRAME_GS}")
        self.context, self.channels, self.g = context, channels, g
        self.scales = nn.ModuleList(
            ScaleGenerator(context * channels + (channels if k else 0), channels, maps, kernels, width, g == "flow")
            for k, (maps, kernels) in enumerate(G_LAYERS))

    def pyramid(self, x: Tensor) -> list[Tensor]:
        inputs, out = pyramid(x), []
        c = self.channels
        for k, g in enumerate(self.scales):
            last = inputs[k][:, -c:]  # the last input frame at this scale (B, C, h, w)
            if k == 0:
                out.append(g(inputs[0], last))
            else:
                up = F.interpolate(out[-1], scale_factor=2, mode="bilinear", align_corners=False)
                out.append(g(torch.cat([inputs[k], up], 1), last))
        return out

    def start(self) -> None:
        """After the weights' initialisation: a flow G starts as the copy-last baseline."""
        if self.g == "flow":
            for g in self.scales:
                g.start_as_copy()

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


def build_nextframe(context: int, shape: tuple[int, int, int], width: int | None = None, g: str = "draw"
                    ) -> tuple[MultiScaleGenerator, MultiScaleDiscriminator]:
    """G and D for ``context`` frames of ``shape`` (C, H, W); ``g``: G draws each frame or moves the
    last one's pixels (``FRAME_GS``)."""
    c, h, w = shape
    check_size(h, w)
    width = width or DEFAULT_WIDTH
    return MultiScaleGenerator(context, c, width, g), MultiScaleDiscriminator(context, c, (h, w), width)


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
