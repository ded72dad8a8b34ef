"""Networks of novel-view synthesis: a view of an object and two angles in, the object seen from
the second angle out (Tatarchenko et al. 2016, "Multi-view 3D models from single images with a
convolutional network"; Zhou et al. 2016, "View synthesis by appearance flow"), trained as a
conditional GAN with L1 as pix2pix is (Isola et al. 2017).

- G: pix2pix's U-Net (``gankit.models.unet``) whose input is the source view with the angle code
  broadcast over the image as extra channels: the skips carry the source's appearance, the code
  says how far to turn it.
- D: pix2pix's PatchGAN (``gankit.models.patchgan``) judging (source, target view, angle code)
  concatenated on channels: real pairs at their true angles against G's output.

The angle code (``ANGLE_DIMS`` = 6) is (sin, cos) of the azimuth turned, target minus source, and
of the source's and the target's elevations: azimuth only counts relative to the source (an
object has no front that a single view shows), elevation is absolute (the ground is seen).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from gankit.models.patchgan import PatchDiscriminator, patch_layers
from gankit.models.unet import UNetGenerator

ARCH = "novel-view"
ANGLE_DIMS = 6
DEFAULT_WIDTH = 32


def angle_code(source: Tensor, target: Tensor) -> Tensor:
    """(B, 2), (B, 2) angles (azimuth, elevation) in degrees -> (B, 6) float32:
    sin/cos of the azimuth turned, of the source's elevation, of the target's elevation."""
    rad = math.pi / 180
    turn = (target[:, 0] - source[:, 0]) * rad
    es, et = source[:, 1] * rad, target[:, 1] * rad
    return torch.stack([turn.sin(), turn.cos(), es.sin(), es.cos(), et.sin(), et.cos()], 1).float()


def planes(code: Tensor, like: Tensor) -> Tensor:
    """The code (B, K) as K constant images the size of ``like`` (B, C, H, W): (B, K, H, W)."""
    return code.to(like.dtype)[:, :, None, None].expand(-1, -1, like.shape[2], like.shape[3])


class ViewGenerator(nn.Module):
    """(source (B, C, H, W) in [-1, 1], code (B, 6)) -> the target view (B, C, H, W) in [-1, 1]."""

    def __init__(self, channels: int, size: tuple[int, int], width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.unet = UNetGenerator(channels + ANGLE_DIMS, channels, size, width=width)

    def forward(self, source: Tensor, code: Tensor) -> Tensor:
        return self.unet(torch.cat([source, planes(code, source)], 1))


class ViewDiscriminator(nn.Module):
    """(source, view (B, C, H, W), code (B, 6)) -> patch logits (B, 1, H', W')."""

    def __init__(self, channels: int, size: tuple[int, int], width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.patch = PatchDiscriminator(2 * channels + ANGLE_DIMS, width=width, n_layers=patch_layers(size))

    def forward(self, source: Tensor, view: Tensor, code: Tensor) -> Tensor:
        return self.patch(torch.cat([source, view, planes(code, source)], 1))


def build_views(shape: tuple[int, int, int], width: int | None = None) -> dict[str, nn.Module]:
    """G and D for views of ``shape`` (C, H, W); ``width`` None = ``DEFAULT_WIDTH``."""
    c, h, w = shape
    width = width or DEFAULT_WIDTH
    return {"G": ViewGenerator(c, (h, w), width), "D": ViewDiscriminator(c, (h, w), width)}


__all__ = ["ANGLE_DIMS", "ARCH", "DEFAULT_WIDTH", "ViewDiscriminator", "ViewGenerator", "angle_code",
           "build_views", "planes"]
