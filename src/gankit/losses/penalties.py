"""Penalties and constraints on D that are not part of the adversarial loss itself.

Each penalty is differentiable with respect to D's parameters (``create_graph=True``), so adding it
to D's loss trains D to keep it small.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn


def _input_grad_sq_norm(logits: Tensor, inputs: Tensor) -> Tensor:
    """||d sum(D(x)) / dx||^2 per sample, with the graph kept for the outer backward. (B,)"""
    (grad,) = torch.autograd.grad(logits.sum(), inputs, create_graph=True)
    return grad.pow(2).flatten(1).sum(1)


def r1_penalty(real_logits: Tensor, real: Tensor) -> Tensor:
    """R1 (Mescheder et al. 2018, "Which training methods for GANs do actually converge?", eq. 9):
    E[||grad_x D(x)||^2] on real data; ``real`` must require grad and ``real_logits = D(real)``.
    The trainer adds gamma/2 times this to D's loss."""
    return _input_grad_sq_norm(real_logits, real).mean()


def r2_penalty(fake_logits: Tensor, fake: Tensor) -> Tensor:
    """R2 (Mescheder et al. 2018, eq. 10, after Roth et al. 2017's penalty on both distributions;
    Huang et al. 2024's R3GAN pairs it with R1):
    E[||grad_x D(x)||^2] on generated samples; ``fake`` must require grad (and be detached from
    G) and ``fake_logits = D(fake)``. The trainer adds gamma/2 times this to D's loss."""
    return _input_grad_sq_norm(fake_logits, fake).mean()


def gradient_penalty(D: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor,
                     generator: torch.Generator | None = None, eps: Tensor | None = None) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017, Algorithm 1): E[(||grad D(x_hat)||_2 - 1)^2] at random points
    x_hat = eps x + (1 - eps) G(z) on the lines between real and fake samples, eps ~ U[0, 1] per
    sample (or ``eps``). The trainer adds lambda (10 in the paper) times this to D's loss."""
    if eps is None:  # (B,) mixing weights; the trainer passes its own (drawn for the global batch)
        eps = torch.rand(real.shape[0], device=real.device, generator=generator)
    eps = eps.view(-1, *[1] * (real.dim() - 1)).to(real.dtype)
    x_hat = (eps * real.detach() + (1 - eps) * fake.detach()).requires_grad_(True)
    norm = (_input_grad_sq_norm(D(x_hat), x_hat) + 1e-12).sqrt()
    return ((norm - 1) ** 2).mean()


@torch.no_grad()
def clip_weights_(D: nn.Module, c: float) -> None:
    """WGAN's weight clipping (Arjovsky et al. 2017, Algorithm 1): every parameter of D into [-c, c]
    after each of D's updates, a crude way to keep D K-Lipschitz."""
    torch._foreach_clamp_min_(ps := list(D.parameters()), -c)
    torch._foreach_clamp_max_(ps, c)
