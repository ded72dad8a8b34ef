"""The reconstruction terms of next-frame prediction (Mathieu, Couprie & LeCun 2016), beside the
adversarial loss (``gankit.losses.gan``), each summed over a frame's pixels and averaged over the
batch, as the paper writes them:

    L_p(X, Y) = ||Y - Y^||_p^p                                                         (eq. 2)
    L_gdl(X, Y) = sum_ij | |Y_ij - Y_i-1,j| - |Y^_ij - Y^_i-1,j| |^alpha
                       + | |Y_i,j-1 - Y_ij| - |Y^_i,j-1 - Y^_ij| |^alpha              (eq. 5)

The gradient difference loss (GDL) asks the prediction's edges to be as strong as the truth's,
where an L2 loss is content with a blur of the possible futures.
"""

from __future__ import annotations

from torch import Tensor


def lp_loss(pred: Tensor, target: Tensor, p: int = 1) -> Tensor:
    """Mathieu et al. 2016, eq. 2: sum over a frame's pixels of |Y - Y^|^p, mean over the batch.
    pred, target (B, C, H, W)."""
    return (pred - target).abs().pow(p).flatten(1).sum(1).mean()


def gdl_loss(pred: Tensor, target: Tensor, alpha: int = 1) -> Tensor:
    """Mathieu et al. 2016, eq. 5: the gradient difference loss, summed over a frame's pixels and
    the two directions, mean over the batch. pred, target (B, C, H, W)."""
    def grads(x: Tensor) -> tuple[Tensor, Tensor]:
        return (x[..., 1:, :] - x[..., :-1, :]).abs(), (x[..., :, 1:] - x[..., :, :-1]).abs()

    (py, px), (ty, tx) = grads(pred), grads(target)
    dy = (ty - py).abs().pow(alpha).flatten(1).sum(1)
    dx = (tx - px).abs().pow(alpha).flatten(1).sum(1)
    return (dy + dx).mean()


__all__ = ["gdl_loss", "lp_loss"]
