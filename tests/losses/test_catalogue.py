"""Every loss of the catalogue against a hand computation, and its gradient's sign."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.losses import (
    LOSSES,
    d_loss_bce,
    d_loss_hinge,
    d_loss_lsgan,
    d_loss_ragan,
    d_loss_rpgan,
    d_loss_wasserstein,
    g_loss_lsgan,
    g_loss_ragan,
    g_loss_rpgan,
    g_loss_wasserstein,
)

REAL = [2.0, -1.0, 0.5]
FAKE = [-3.0, 0.0, 1.5]
R, F = torch.tensor(REAL, dtype=torch.float64), torch.tensor(FAKE, dtype=torch.float64)


def sig(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def test_lsgan_by_hand() -> None:
    d = 0.5 * mean([(r - 1) ** 2 for r in REAL]) + 0.5 * mean([f**2 for f in FAKE])
    g = 0.5 * mean([(f - 1) ** 2 for f in FAKE])
    assert d_loss_lsgan(R, F).item() == pytest.approx(d, rel=1e-12)
    assert g_loss_lsgan(F).item() == pytest.approx(g, rel=1e-12)
    smoothed = 0.5 * mean([(r - 0.9) ** 2 for r in REAL]) + 0.5 * mean([f**2 for f in FAKE])
    assert d_loss_lsgan(R, F, 0.9).item() == pytest.approx(smoothed, rel=1e-12)


def test_wasserstein_by_hand() -> None:
    assert d_loss_wasserstein(R, F).item() == pytest.approx(mean(FAKE) - mean(REAL), rel=1e-12)
    assert g_loss_wasserstein(F).item() == pytest.approx(-mean(FAKE), rel=1e-12)


def test_hinge_by_hand() -> None:
    d = mean([max(0.0, 1 - r) for r in REAL]) + mean([max(0.0, 1 + f) for f in FAKE])
    assert d_loss_hinge(R, F).item() == pytest.approx(d, rel=1e-12)  # 1.1667 + 1.1667


def test_ragan_by_hand() -> None:
    mr, mf = mean(REAL), mean(FAKE)
    d = -mean([math.log(sig(r - mf)) for r in REAL]) - mean([math.log(1 - sig(f - mr)) for f in FAKE])
    g = -mean([math.log(sig(f - mr)) for f in FAKE]) - mean([math.log(1 - sig(r - mf)) for r in REAL])
    assert d_loss_ragan(R, F).item() == pytest.approx(d, rel=1e-10)
    assert g_loss_ragan(F, R).item() == pytest.approx(g, rel=1e-10)
    with pytest.raises(ValueError, match="real"):
        g_loss_ragan(F)


def test_rpgan_by_hand() -> None:
    # pairs (2, -3), (-1, 0), (0.5, 1.5): D pays -log sigmoid(r - f) per pair, G -log sigmoid(f - r)
    d = mean([-math.log(sig(r - f)) for r, f in zip(REAL, FAKE, strict=True)])
    g = mean([-math.log(sig(f - r)) for r, f in zip(REAL, FAKE, strict=True)])
    assert d_loss_rpgan(R, F).item() == pytest.approx(d, rel=1e-12)
    assert g_loss_rpgan(F, R).item() == pytest.approx(g, rel=1e-12)
    assert d == pytest.approx((math.log1p(math.exp(-5)) + math.log1p(math.e) + math.log1p(math.e)) / 3)
    # pairwise, not against the batch's mean: swapping two fakes changes the loss
    assert d_loss_rpgan(R, F[[1, 0, 2]]).item() != pytest.approx(d)
    # gradients: d/dr_i = -sigmoid(f_i - r_i) / n < 0 for D (raise real), and d/df_i the opposite
    r, f = R.clone().requires_grad_(True), F.clone().requires_grad_(True)
    d_loss_rpgan(r, f).backward()
    by_hand = torch.tensor([sig(fv - rv) / 3 for rv, fv in zip(REAL, FAKE, strict=True)], dtype=torch.float64)
    assert torch.allclose(r.grad, -by_hand) and torch.allclose(f.grad, by_hand)  # type: ignore[arg-type]
    f2 = F.clone().requires_grad_(True)
    g_loss_rpgan(f2, R).backward()  # G raises its fakes above their partners
    assert torch.allclose(f2.grad, -torch.tensor([sig(rv - fv) / 3 for rv, fv in zip(REAL, FAKE, strict=True)],  # type: ignore[arg-type]
                                                 dtype=torch.float64))
    with pytest.raises(ValueError, match="real"):
        g_loss_rpgan(F)
    # logits of any size: softplus, never log(sigmoid), so a lost pair costs its margin, not inf
    big = torch.tensor([-200.0], dtype=torch.float64)
    assert d_loss_rpgan(big, -big).item() == pytest.approx(400.0)


def test_one_sided_label_smoothing_is_bce_against_the_lowered_label() -> None:
    t = 0.9
    d = -mean([t * math.log(sig(r)) + (1 - t) * math.log(1 - sig(r)) for r in REAL]) \
        - mean([math.log(1 - sig(f)) for f in FAKE])
    assert d_loss_bce(R, F, t).item() == pytest.approx(d, rel=1e-10)
    # one-sided: the fake term is unchanged, and D's optimum on real logits is logit(0.9), not +inf
    x = torch.tensor([math.log(9.0)], dtype=torch.float64, requires_grad=True)
    d_loss_bce(x, torch.tensor([-50.0], dtype=torch.float64), t).backward()
    assert abs(float(x.grad[0])) < 1e-9  # type: ignore[index]


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_trains_d_to_separate_and_g_to_fool(name: str) -> None:
    # Descending D's loss raises real scores and lowers fake ones; descending G's raises fake ones.
    loss = LOSSES.get(name)
    real = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    fake = torch.zeros(4, dtype=torch.float64, requires_grad=True)
    # scores inside every loss's active region: below the real target / hinge margin of 1, above
    # the least-squares fake target 0 and the hinge's fake margin -1
    real_v = fake_v = torch.tensor([0.1, 0.2, 0.3, 0.4])
    with torch.no_grad():
        real += real_v
        fake += fake_v
    loss.d_loss(real, fake).backward()
    assert (real.grad < 0).all() and (fake.grad > 0).all()  # type: ignore[operator]
    fake_g = fake.detach().clone().requires_grad_(True)
    loss.g_loss(fake_g, real.detach() if loss.g_needs_real else None).backward()
    assert (fake_g.grad < 0).all()  # type: ignore[operator]
