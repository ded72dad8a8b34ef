"""The reconstruction losses of pix2pix and CycleGAN against hand computations."""

from __future__ import annotations

import pytest
import torch

from gankit.losses.translation import cycle_loss, identity_loss, l1


def test_l1_by_hand() -> None:
    a = torch.tensor([[[[0.0, 1.0], [-1.0, 0.5]]]])
    b = torch.tensor([[[[0.5, 1.0], [1.0, 0.0]]]])
    assert l1(a, b).item() == pytest.approx((0.5 + 0 + 2 + 0.5) / 4, rel=1e-7)


def test_cycle_loss_by_hand() -> None:
    A, rec_A = torch.zeros(1, 1, 1, 2), torch.tensor([[[[0.2, -0.4]]]])  # |.| mean 0.3
    B, rec_B = torch.ones(1, 1, 1, 2), torch.tensor([[[[1.0, 0.0]]]])  # mean 0.5
    assert cycle_loss(A, rec_A, B, rec_B, weight=10).item() == pytest.approx(10 * (0.3 + 0.5), rel=1e-6)
    assert cycle_loss(A, A, B, B).item() == 0  # a perfect cycle costs nothing


def test_identity_loss_by_hand_and_its_gradient_pulls_toward_the_input() -> None:
    A = torch.zeros(1, 1, 1, 1)
    idt_A = torch.full((1, 1, 1, 1), 0.4, requires_grad=True)
    B, idt_B = torch.ones(1, 1, 1, 1), torch.ones(1, 1, 1, 1)
    loss = identity_loss(A, idt_A, B, idt_B, weight=5)
    assert loss.item() == pytest.approx(5 * 0.4, rel=1e-6)
    loss.backward()
    assert idt_A.grad is not None and idt_A.grad.item() > 0  # descending moves F(A) back to A = 0
