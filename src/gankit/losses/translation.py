"""The reconstruction terms of image translation, beside the adversarial loss (gankit.losses.gan).

pix2pix (Isola et al. 2017, eq. 4): G* = arg min_G max_D L_cGAN(G, D) + lambda L_L1(G), with
L_L1 = E ||y - G(x)||_1 (L1 rather than L2: less blurring). CycleGAN (Zhu et al. 2017, eqs. 2
and 3): L_cyc = E ||F(G(x)) - x||_1 + E ||G(F(y)) - y||_1, weighted by lambda = 10, and the
identity term ||G(y) - y||_1 + ||F(x) - x||_1 weighted by 0.5 lambda (section 5.2), which keeps
colours when they need not change. All are means over pixels, as the papers' code computes them.
"""

from __future__ import annotations

from torch import Tensor


def l1(a: Tensor, b: Tensor) -> Tensor:
    """Mean absolute difference of two batches of images (pix2pix's L_L1)."""
    return (a - b).abs().mean()


def cycle_loss(real_A: Tensor, rec_A: Tensor, real_B: Tensor, rec_B: Tensor, weight: float = 10.0) -> Tensor:
    """weight * (||F(G(A)) - A||_1 + ||G(F(B)) - B||_1): both directions of the cycle."""
    return weight * (l1(rec_A, real_A) + l1(rec_B, real_B))


def identity_loss(real_A: Tensor, idt_A: Tensor, real_B: Tensor, idt_B: Tensor, weight: float = 5.0) -> Tensor:
    """weight * (||F(A) - A||_1 + ||G(B) - B||_1): each generator fed its own output domain
    should leave the image alone (``idt_A`` = F(A), ``idt_B`` = G(B)); 0.5 * the cycle weight."""
    return weight * (l1(idt_A, real_A) + l1(idt_B, real_B))
