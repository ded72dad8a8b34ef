"""Scores of next-frame prediction, per horizon (frame t + h predicted from frames up to t).

On pixels in [0, 1], for each horizon h = 1 .. H, averaged over the sequences:

- ``mse``, ``mae``: OpenSTL's convention (Tan et al. 2023): the squared (absolute) error summed
  over a frame's pixels, averaged over frames and sequences, so its MFMNIST figures compare;
- ``ssim``: Wang et al. 2004 (``gankit.metrics.translation.ssim``);
- ``psnr``: 10 log10(1 / per-pixel MSE) in dB, capped for identical frames;
- ``sharp``: Mathieu, Couprie & LeCun 2016's sharpness difference, in dB:
  10 log10(max^2 / mean_ij |(grad_i Y + grad_j Y) - (grad_i Y^ + grad_j Y^)|), grad_i Y = |Y_ij -
  Y_i-1,j|, max = 1; higher is sharper edges in the right places (capped like the PSNR).

Keys are ``mse@h`` per horizon and ``mse`` the mean over horizons (likewise for the others).
"""

from __future__ import annotations

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.metrics.translation import PSNR_CAP, psnr, ssim

SCORES = ("mse", "mae", "ssim", "psnr", "sharp")
HIGHER = {"mse": False, "mae": False, "ssim": True, "psnr": True, "sharp": True}


def higher_is_better(key: str) -> bool:
    """Direction of a next-frame score: ``ssim@3`` up, ``mse`` down."""
    base = key.partition("@")[0]
    if base not in HIGHER or (key != base and not key.partition("@")[2].isdigit()):
        raise GankitError(f"{key!r} is not a next-frame score; one of: {', '.join(SCORES)} (or NAME@H for "
                          "horizon H)")
    return HIGHER[base]


def _unit(x: Tensor) -> Tensor:
    return (x.double() + 1) / 2


def mse(pred: Tensor, truth: Tensor) -> Tensor:
    """Per frame (N,): squared error summed over the pixels in [0, 1]. (N, C, H, W) in [-1, 1]."""
    return (_unit(pred) - _unit(truth)).square().flatten(1).sum(1)


def mae(pred: Tensor, truth: Tensor) -> Tensor:
    """Per frame (N,): absolute error summed over the pixels in [0, 1]."""
    return (_unit(pred) - _unit(truth)).abs().flatten(1).sum(1)


def sharpness(pred: Tensor, truth: Tensor, cap: float = PSNR_CAP) -> Tensor:
    """Per frame (N,): Mathieu et al. 2016's sharpness difference in dB (see the module docstring)."""
    def grad_sum(x: Tensor) -> Tensor:
        gi = (x[..., 1:, 1:] - x[..., :-1, 1:]).abs()
        gj = (x[..., 1:, 1:] - x[..., 1:, :-1]).abs()
        return gi + gj

    diff = (grad_sum(_unit(truth)) - grad_sum(_unit(pred))).abs().flatten(1).mean(1)
    return (10 * torch.log10(1 / diff)).clamp(max=cap)


FRAME_SCORES = {"mse": mse, "mae": mae, "ssim": ssim, "psnr": psnr, "sharp": sharpness}


def score_rollouts(pred: Tensor, truth: Tensor) -> dict[str, float]:
    """``pred``, ``truth`` (N, H, C, h, w) in [-1, 1]: every score at each horizon (``mse@1``) and
    averaged over the horizons (``mse``)."""
    if pred.shape != truth.shape:
        raise GankitError(f"predictions {tuple(pred.shape)} and truth {tuple(truth.shape)} differ in shape")
    out: dict[str, float] = {}
    for name, fn in FRAME_SCORES.items():
        per_h = [float(fn(pred[:, h], truth[:, h]).mean()) for h in range(pred.shape[1])]
        out[name] = sum(per_h) / len(per_h)
        out.update({f"{name}@{h + 1}": v for h, v in enumerate(per_h)})
    return out


def copy_last(context: Tensor, horizon: int) -> Tensor:
    """The copy-last-frame baseline: context (N, T, C, H, W) -> its last frame repeated ``horizon``
    times, (N, horizon, C, H, W)."""
    return context[:, -1:].expand(-1, horizon, -1, -1, -1)


__all__ = ["FRAME_SCORES", "HIGHER", "SCORES", "copy_last", "higher_is_better", "mae", "mse", "score_rollouts",
           "sharpness"]
