"""D's penalties and constraints against hand computations."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from gankit.losses import clip_weights_, gradient_penalty, r1_penalty, r2_penalty


def test_r1_equals_the_squared_gradient_norm_by_hand() -> None:
    # D(x) = sum(w * x^2): grad_x D = 2 w x, so ||grad||^2 = sum (2 w x)^2 per sample.
    w = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64, requires_grad=True)
    x = torch.tensor([[1.0, 2.0, -1.0], [0.0, 1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    logits = (w * x**2).sum(1)
    r1 = r1_penalty(logits, x)
    by_hand = ((2 * w.detach() * x.detach()) ** 2).sum(1).mean()
    assert r1.item() == pytest.approx(by_hand.item(), rel=1e-12)  # (1+16+16 + 0+4+144) / 2 = 90.5
    assert r1.item() == pytest.approx(90.5, rel=1e-12)
    # differentiable in D's parameters: d r1 / d w_j = mean_b 8 w_j x_bj^2
    r1.backward()
    assert torch.allclose(w.grad, (8 * w.detach() * x.detach() ** 2).mean(0))  # type: ignore[arg-type]


@pytest.mark.parametrize("penalty", [r1_penalty, r2_penalty])
def test_r1_and_r2_and_their_gradients_in_d_s_parameters_by_closed_form(penalty: object) -> None:
    # D(x) = sum_j w_j x_j^2 + b: grad_x D = 2 w x, so the penalty is mean_b sum_j 4 w_j^2 x_bj^2
    # and d penalty / d w_j = mean_b 8 w_j x_bj^2 (b drops out). R1 takes the real batch and R2 the
    # fake one (Mescheder et al. 2018, eqs. 9 and 10): the same formula on a different batch.
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, dtype=torch.float64, generator=g).requires_grad_(True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    x = torch.randn(4, 5, dtype=torch.float64, generator=g).requires_grad_(True)
    value = penalty(((w * x**2).sum(1) + b), x)  # type: ignore[operator]
    closed = (4 * w.detach() ** 2 * x.detach() ** 2).sum(1).mean()
    assert value.item() == pytest.approx(closed.item(), rel=1e-12)
    dw, db = torch.autograd.grad(value, (w, b), allow_unused=True)
    assert torch.allclose(dw, (8 * w.detach() * x.detach() ** 2).mean(0), rtol=1e-12)
    assert db is None or float(db) == 0.0
    # and against autograd of the closed form itself
    w2 = w.detach().clone().requires_grad_(True)
    (4 * w2**2 * x.detach() ** 2).sum(1).mean().backward()
    assert torch.allclose(dw, w2.grad, rtol=1e-12)  # type: ignore[arg-type]


def test_gradient_penalty_by_hand_for_a_linear_critic() -> None:
    # D(x) = a . x has gradient a everywhere: GP = (||a|| - 1)^2 wherever x_hat lies.
    a = torch.tensor([3.0, 4.0], dtype=torch.float64, requires_grad=True)
    real, fake = torch.randn(6, 2, dtype=torch.float64), torch.randn(6, 2, dtype=torch.float64)
    gp = gradient_penalty(lambda x: x @ a, real, fake)
    assert gp.item() == pytest.approx((5.0 - 1.0) ** 2, rel=1e-9)
    gp.backward()  # d/da (||a|| - 1)^2 = 2 (||a|| - 1) a / ||a||
    assert torch.allclose(a.grad, 2 * 4.0 * a.detach() / 5.0)  # type: ignore[arg-type]


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic() -> None:
    a = torch.tensor([0.6, 0.8])
    assert gradient_penalty(lambda x: x @ a, torch.randn(5, 2), torch.randn(5, 2)).item() < 1e-10


def test_gradient_penalty_samples_between_real_and_fake() -> None:
    seen: list[torch.Tensor] = []

    def D(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach())
        return x.sum(1)

    real, fake = torch.zeros(500, 1), torch.ones(500, 1)
    gradient_penalty(D, real, fake, torch.Generator().manual_seed(0))
    x_hat = seen[0]
    assert x_hat.min() >= 0 and x_hat.max() <= 1 and 0.4 < x_hat.mean() < 0.6  # eps ~ U[0, 1]


def test_weight_clipping() -> None:
    D = nn.Linear(4, 3)
    with torch.no_grad():
        D.weight.mul_(100)
    clip_weights_(D, 0.01)
    for p in D.parameters():
        assert p.abs().max() <= 0.01
    assert (D.weight.abs() == 0.01).any()  # clipped, not zeroed
