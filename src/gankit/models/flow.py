"""Moving pixels instead of drawing them: a frame read through a flow field (Zhou et al. 2016's
appearance flow; the flow half of Liang et al. 2017's dual-motion GAN). Used by the novel-view G,
which moves the source view's pixels, and by the next-frame G of ``--frame-g flow``, which moves
the last frame's."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def warp(frame: Tensor, flow: Tensor) -> Tensor:
    """``frame`` (B, C, H, W) read at every pixel's position plus ``flow`` (B, 2, H, W: x then y, in
    [-1, 1] image units, 2 = the whole side). Bilinear; a pixel read from outside the frame takes the
    nearest edge's value (the background, on these data). A zero flow returns ``frame``."""
    # the identity grid (every pixel read from itself, at the pixels' centres) plus the flow
    identity = torch.eye(2, 3, device=frame.device, dtype=frame.dtype).expand(len(frame), 2, 3)
    grid = F.affine_grid(identity, list(frame.shape), align_corners=False) + flow.permute(0, 2, 3, 1)
    return F.grid_sample(frame, grid, mode="bilinear", padding_mode="border", align_corners=False)


def blend(moved: Tensor, drawn: Tensor, mask: Tensor) -> Tensor:
    """The moved pixels where ``mask`` (B, 1, H, W) in [0, 1] is 1, the drawn ones where it is 0."""
    return mask * moved + (1 - mask) * drawn
