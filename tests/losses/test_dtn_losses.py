"""The Domain Transfer Network's losses (Taigman, Polyak & Wolf 2017) against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.losses.dtn import (
    FAKE_SOURCE,
    FAKE_TARGET,
    REAL_TARGET,
    TV_EPS,
    class_constancy,
    d_loss,
    f_constancy,
    g_gan_loss,
    real_probability,
    target_identity,
    total_variation,
)


def test_f_constancy_is_the_mean_squared_feature_difference() -> None:
    f_x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    f_gx = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    # differences 0, 2, 3, 0 -> squares 0, 4, 9, 0 -> mean 13 / 4
    assert f_constancy(f_x, f_gx).item() == pytest.approx(3.25)
    assert f_constancy(f_x, f_x).item() == 0


def test_class_constancy_is_the_cross_entropy_against_fs_class_on_x() -> None:
    logits_x = torch.tensor([[0.0, 3.0, 1.0], [2.0, 0.0, 0.0]])  # f reads class 1, then class 0
    logits_gx = torch.tensor([[1.0, 1.0, 1.0], [0.0, math.log(3.0), 0.0]])
    # -log softmax: row 1 at class 1: log 3; row 2 at class 0: log(1 + 3 + 1) - 0 = log 5
    assert class_constancy(logits_x, logits_gx).item() == pytest.approx((math.log(3) + math.log(5)) / 2)
    # only f's verdict on x counts, not its confidence: x's scores scaled leave the loss as it is
    assert class_constancy(10 * logits_x, logits_gx).item() == pytest.approx(class_constancy(logits_x, logits_gx).item())
    # G(x) read confidently as x's class costs almost nothing
    assert class_constancy(logits_x, 20 * logits_x).item() < 1e-6


def test_target_identity_is_the_mean_squared_pixel_difference() -> None:
    t = torch.zeros(2, 3, 2, 2)
    g_t = t.clone()
    g_t[0, 1, 0, 0] = 0.5  # one pixel of 24 off by 0.5, one by -1
    g_t[1, 2, 1, 1] = -1.0
    assert target_identity(t, g_t).item() == pytest.approx((0.25 + 1.0) / 24)


def test_total_variation_by_hand() -> None:
    z = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])  # one 2x2 gray image: one position (0, 0)
    # dx = 1 - 0, dy = 2 - 0 -> sqrt(1 + 4)
    assert total_variation(z).item() == pytest.approx(math.sqrt(5 + TV_EPS))
    rgb = torch.zeros(1, 3, 3, 3)
    rgb[0, 0, 0, 1] = 1.0  # red steps right of (0, 0); green steps below it
    rgb[0, 1, 1, 0] = 2.0
    # (0,0): red dx 1, green dy 2 -> sqrt(5); (0,1): red dx -1, dy -1 -> sqrt(2);
    # (1,0): green dx -2, dy -2 -> sqrt(8); (1,1): flat -> sqrt(eps)
    want = (math.sqrt(5) + math.sqrt(2) + math.sqrt(8) + math.sqrt(TV_EPS)) / 4
    assert total_variation(rgb).item() == pytest.approx(want, rel=1e-6)
    flat = torch.full((2, 3, 4, 4), 0.3, requires_grad=True)
    total_variation(flat).backward()
    assert torch.isfinite(flat.grad).all()  # the epsilon keeps a flat image's gradient finite


def test_the_three_way_d_loss_on_known_logits() -> None:
    zero = torch.zeros(4, 3)  # D undecided: every class 1/3
    assert d_loss(zero, zero, zero).item() == pytest.approx(3 * math.log(3))
    assert g_gan_loss(zero, zero).item() == pytest.approx(2 * math.log(3))
    # one confident logit: CE of [2, 0, 0] against class c is log(e^2 + 2) - logit_c
    z = torch.tensor([[2.0, 0.0, 0.0]])
    lse = math.log(math.exp(2) + 2)
    assert d_loss(z, z, z).item() == pytest.approx((lse - 2) + lse + lse)
    assert g_gan_loss(z, z).item() == pytest.approx(2 * lse)
    # classes as the paper numbers them (1, 2, 3): fake from source, fake from target, real target
    assert (FAKE_SOURCE, FAKE_TARGET, REAL_TARGET) == (0, 1, 2)
    perfect = torch.eye(3) * 30  # D right on each: G(x) class 0, G(t) class 1, t class 2
    assert d_loss(perfect[0:1], perfect[1:2], perfect[2:3]).item() == pytest.approx(0, abs=1e-10)
    assert g_gan_loss(perfect[0:1], perfect[1:2]).item() == pytest.approx(60, abs=1e-6)


def test_real_probability_is_real_against_fake_from_source_with_its_equilibrium_at_one_half() -> None:
    # columns: fake from source, fake from target, real target
    logits = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, math.log(3)]])
    assert real_probability(logits).item() == pytest.approx((1 / 2 + 3 / 4) / 2)
    # a D that cannot tell G(x) from t says 1/2, however sure it is that an image is not G(t)
    undecided = torch.tensor([[1.0, -7.0, 1.0], [-2.0, 5.0, -2.0]])
    assert real_probability(undecided).item() == pytest.approx(0.5)
    assert real_probability(torch.tensor([[-20.0, 0.0, 20.0]])).item() > 0.999
