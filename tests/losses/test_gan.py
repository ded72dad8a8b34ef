"""Goodfellow et al. 2014's losses against hand computations, their gradients, and their numerical range."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.losses import LOSSES, d_loss_bce, g_loss_minimax, g_loss_nonsaturating


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


REAL = [2.0, -1.0, 0.5]
FAKE = [-3.0, 0.0, 1.5]


def test_d_loss_is_negative_value_function() -> None:
    # V = mean log D(x) + mean log(1 - D(G(z))); D minimises -V.
    v = sum(math.log(sig(r)) for r in REAL) / 3 + sum(math.log(1 - sig(f)) for f in FAKE) / 3
    got = d_loss_bce(torch.tensor(REAL), torch.tensor(FAKE)).item()
    assert got == pytest.approx(-v, rel=1e-6, abs=1e-6)


def test_minimax_g_loss_is_log_one_minus_d() -> None:
    expected = sum(math.log(1 - sig(f)) for f in FAKE) / 3
    assert g_loss_minimax(torch.tensor(FAKE)).item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_nonsaturating_g_loss_is_minus_log_d() -> None:
    expected = -sum(math.log(sig(f)) for f in FAKE) / 3
    assert g_loss_nonsaturating(torch.tensor(FAKE)).item() == pytest.approx(expected, rel=1e-6, abs=1e-6)


def test_d_loss_equals_bce_with_real_one_fake_zero() -> None:
    real, fake = torch.tensor(REAL), torch.tensor(FAKE)
    bce = torch.nn.functional.binary_cross_entropy(torch.sigmoid(real), torch.ones(3)) + \
        torch.nn.functional.binary_cross_entropy(torch.sigmoid(fake), torch.zeros(3))
    assert d_loss_bce(real, fake).item() == pytest.approx(bce.item(), rel=1e-5)


def test_equilibrium_value() -> None:
    # At D = 1/2 everywhere, -V = 2 log 2 (Goodfellow et al. 2014, Theorem 1: C(G) = -log 4).
    zero = torch.zeros(5)
    assert d_loss_bce(zero, zero).item() == pytest.approx(2 * math.log(2), rel=1e-6)


def _grad(loss_fn, logit: float) -> float:  # type: ignore[no-untyped-def]
    x = torch.tensor([logit], dtype=torch.float64, requires_grad=True)
    loss_fn(x).backward()
    return float(x.grad[0])  # type: ignore[index]


@pytest.mark.parametrize("logit", [-8.0, -2.0, 0.0, 3.0])
def test_g_gradients_match_closed_form(logit: float) -> None:
    # d/dl log(1 - sigmoid(l)) = -sigmoid(l);  d/dl -log sigmoid(l) = -(1 - sigmoid(l))
    assert _grad(g_loss_minimax, logit) == pytest.approx(-sig(logit), rel=1e-9)
    assert _grad(g_loss_nonsaturating, logit) == pytest.approx(-(1 - sig(logit)), rel=1e-9)


def test_diminished_gradient_when_d_rejects_fakes() -> None:
    # D(G(z)) = sigmoid(-10) ~ 4.5e-5: D wins. The minimax G barely moves; the non-saturating one does.
    mm, ns = abs(_grad(g_loss_minimax, -10.0)), abs(_grad(g_loss_nonsaturating, -10.0))
    assert mm == pytest.approx(4.5398e-5, rel=1e-3)
    assert ns == pytest.approx(1 - 4.5398e-5, rel=1e-6)
    assert ns / mm > 2e4


def test_gradient_signs_push_fakes_towards_real() -> None:
    # Descending either G loss raises the fake logit (dL/dl < 0); descending D's loss raises real
    # logits and lowers fake ones.
    assert _grad(g_loss_minimax, 0.3) < 0 and _grad(g_loss_nonsaturating, 0.3) < 0
    real = torch.zeros(2, requires_grad=True)
    fake = torch.zeros(2, requires_grad=True)
    d_loss_bce(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()  # type: ignore[operator]


@pytest.mark.parametrize("name", LOSSES.names())
def test_stable_at_extreme_logits(name: str) -> None:
    loss = LOSSES.get(name)
    big = torch.tensor([-1e4, -100.0, 100.0, 1e4], requires_grad=True)
    for value in (loss.d_loss(big, big.flip(0)), loss.g_loss(big, big.flip(0))):
        assert torch.isfinite(value)
        (g,) = torch.autograd.grad(value, big)
        assert torch.isfinite(g).all()
    # log(1 - D) at a logit of 1e4 is -1e4 exactly, not -inf.
    assert g_loss_minimax(torch.tensor([1e4])).item() == pytest.approx(-1e4)
