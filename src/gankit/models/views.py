"""Networks of novel-view synthesis: a view of an object and two angles in, the object seen from
the second angle out (Tatarchenko et al. 2016, "Multi-view 3D models from single images with a
convolutional network"; Zhou et al. 2016, "View synthesis by appearance flow"), trained as a
conditional GAN with L1 as pix2pix is (Isola et al. 2017).

- G: pix2pix's U-Net (``gankit.models.unet``) whose input is the source view with the angle code
  broadcast over the image as extra channels: the skips carry the source's appearance, the code
  says how far to turn it. With ``flow`` (``--view-g flow``, the default) its output is not the
  view itself but an appearance flow, where in the source each output pixel is read from (Zhou
  et al. 2016), a view drawn outright, and a mask that chooses between the two per pixel (as Sun
  et al. 2018, "Multi-view to novel view", blend a flow's and a generator's predictions): parts of
  the object the source shows are moved, keeping their colours and edges; parts it hides are
  drawn. With ``unet`` the U-Net draws the whole view.
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

from gankit.models.flow import blend, warp
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


class FlowViewGenerator(nn.Module):
    """(source (B, C, H, W) in [-1, 1], code (B, 6)) -> the target view (B, C, H, W) in [-1, 1]:
    the U-Net's C + 3 outputs are a drawn view (C), a flow (2: where each pixel is read from in the
    source, as an offset in [-1, 1] image units) and a mask (1: the share of the moved pixels)."""

    def __init__(self, channels: int, size: tuple[int, int], width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.channels = channels
        self.unet = UNetGenerator(channels + ANGLE_DIMS, channels + 3, size, width=width)

    def forward(self, source: Tensor, code: Tensor) -> Tensor:
        out = self.unet(torch.cat([source, planes(code, source)], 1))  # (B, C + 3, H, W) in [-1, 1]
        c = self.channels
        drawn, flow, mask = out[:, :c], out[:, c:c + 2], (out[:, c + 2:] + 1) / 2  # mask (B, 1, H, W) in [0, 1]
        return blend(warp(source, flow), drawn, mask)


class ViewDiscriminator(nn.Module):
    """(source, view (B, C, H, W), code (B, 6)) -> patch logits (B, 1, H', W')."""

    def __init__(self, channels: int, size: tuple[int, int], width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        self.patch = PatchDiscriminator(2 * channels + ANGLE_DIMS, width=width, n_layers=patch_layers(size))

    def forward(self, source: Tensor, view: Tensor, code: Tensor) -> Tensor:
        return self.patch(torch.cat([source, view, planes(code, source)], 1))


#: views.view_g -> G: moves the source's pixels and draws the rest, or draws the whole view
GENERATORS: dict[str, type[nn.Module]] = {"flow": FlowViewGenerator, "unet": ViewGenerator}


def build_views(shape: tuple[int, int, int], width: int | None = None, g: str = "flow") -> dict[str, nn.Module]:
    """G and D for views of ``shape`` (C, H, W); ``width`` None = ``DEFAULT_WIDTH``; ``g`` a key of
    ``GENERATORS``."""
    c, h, w = shape
    width = width or DEFAULT_WIDTH
    return {"G": GENERATORS[g](c, (h, w), width), "D": ViewDiscriminator(c, (h, w), width)}


__all__ = ["ANGLE_DIMS", "ARCH", "DEFAULT_WIDTH", "GENERATORS", "FlowViewGenerator", "ViewDiscriminator",
           "ViewGenerator", "angle_code", "build_views", "planes"]
