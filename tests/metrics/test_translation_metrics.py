"""L1, PSNR and SSIM of image translation against closed forms and a slow reference."""

from __future__ import annotations

import math

import pytest
import torch

from gankit.errors import GankitError
from gankit.metrics.translation import PSNR_CAP, gaussian_window, l1_error, psnr, ssim


def unit_to_gankit(x: torch.Tensor) -> torch.Tensor:
    """Pixels in [0, 1] -> gankit's [-1, 1]."""
    return x * 2 - 1


def test_identical_images_score_perfectly() -> None:
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert l1_error(x, x).tolist() == [0.0] * 3
    assert psnr(x, x).tolist() == [PSNR_CAP] * 3  # infinite, capped so a mean stays finite
    assert ssim(x, x) == pytest.approx(torch.ones(3, dtype=torch.float64), abs=1e-12)


@pytest.mark.parametrize("offset", [0.1, 0.01, 0.5])
def test_a_constant_offset_has_the_known_psnr_and_l1(offset: float) -> None:
    base = torch.rand(2, 3, 12, 12) * 0.4  # pixels in [0, 0.4], so base + offset stays in [0, 1]
    x, y = unit_to_gankit(base), unit_to_gankit(base + offset)
    assert l1_error(x, y) == pytest.approx(torch.full((2,), offset, dtype=torch.float64), rel=1e-5)
    # MSE = offset^2, peak 1: PSNR = 10 log10(1 / offset^2) = -20 log10(offset)
    assert psnr(x, y) == pytest.approx(torch.full((2,), -20 * math.log10(offset), dtype=torch.float64), rel=1e-5)


def test_ssim_of_two_flat_images_is_the_luminance_term() -> None:
    # Flat images: no variance, no covariance, so SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    a, b = 0.2, 0.7
    x = unit_to_gankit(torch.full((1, 1, 16, 16), a))
    y = unit_to_gankit(torch.full((1, 1, 16, 16), b))
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)
    assert float(ssim(x, y)[0]) == pytest.approx(expected, rel=1e-6)  # float32 inputs


def slow_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    """SSIM of one gray image pair in [0, 1], written out window by window (Wang et al. 2004)."""
    w = gaussian_window()
    h, wd = x.shape
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(h - 10):
        for j in range(wd - 10):
            px, py = x[i:i + 11, j:j + 11].double(), y[i:i + 11, j:j + 11].double()
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cov = (w * (px - mx) * (py - my)).sum()
            vals.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(torch.stack(vals).mean())


def test_ssim_matches_a_window_by_window_reference() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.rand(14, 13, generator=g)
    b = (a + 0.2 * torch.rand(14, 13, generator=g)).clamp(0, 1)
    got = float(ssim(unit_to_gankit(a)[None, None], unit_to_gankit(b)[None, None])[0])
    assert got == pytest.approx(slow_ssim(a, b), rel=1e-9)
    assert 0 < got < 1


def test_ssim_falls_with_noise_and_is_symmetric() -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(1, 1, 20, 20, generator=g) * 2 - 1
    small = (x + 0.05 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    large = (x + 0.5 * torch.randn(x.shape, generator=g)).clamp(-1, 1)
    assert ssim(x, large) < ssim(x, small) < 1
    assert ssim(x, small) == pytest.approx(ssim(small, x), abs=1e-12)


def test_gaussian_window_is_normalised_and_centred() -> None:
    w = gaussian_window()
    assert w.shape == (11, 11) and float(w.sum()) == pytest.approx(1.0)
    assert w.argmax() == 5 * 11 + 5
    assert float(w[5, 5] / w[5, 6]) == pytest.approx(math.exp(1 / (2 * 1.5**2)))


def test_ssim_needs_the_window_to_fit() -> None:
    with pytest.raises(GankitError, match="at least 11x11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


def test_score_translation_of_identity_generators_is_perfect() -> None:
    from torch import nn

    from gankit.data.paired import PairedData, UnpairedData
    from gankit.metrics.translation import score_translation

    g = torch.Generator().manual_seed(0)
    A = torch.randint(0, 256, (6, 1, 16, 16), dtype=torch.uint8, generator=g)
    same = {"AtoB": nn.Identity(), "BtoA": None}
    paired = score_translation(same, PairedData(A, A.clone(), "same"), n=4, batch_size=3)
    assert paired.values == {"l1": 0.0, "psnr": PSNR_CAP, "ssim": pytest.approx(1.0, abs=1e-12)}
    assert paired.n == 4 and paired.split == "test"
    # a generator that changes its input is measured as such
    brighter = score_translation({"AtoB": nn.Hardtanh(-0.9, 1.0)}, PairedData(A, A.clone(), "same"))
    assert brighter.values["l1"] > 0 and brighter.values["psnr"] < PSNR_CAP
    # unpaired: both ways; identities reconstruct their inputs exactly
    B = torch.randint(0, 256, (5, 1, 16, 16), dtype=torch.uint8, generator=g)
    both = {"AtoB": nn.Identity(), "BtoA": nn.Identity()}
    unpaired = score_translation(both, UnpairedData(A, B, "ab"), split="train")
    assert unpaired.values == {"cycle_l1_A": 0.0, "cycle_l1_B": 0.0}  # classes "A", "B": no classifier
    # the count of each direction: 6 A inputs translated to B, 5 B inputs back (not min(6, 5) for both)
    assert (unpaired.n, unpaired.n_BtoA, paired.n_BtoA) == (6, 5, None) and unpaired.split == "train"
    with pytest.raises(GankitError, match="BtoA"):
        score_translation(same, UnpairedData(A, B, "ab"))
    with pytest.raises(GankitError, match="at least 1"):
        score_translation(same, PairedData(A, A.clone(), "same"), n=0)
