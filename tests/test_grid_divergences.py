"""The 2-D view's divergence estimates (GAN Lab's KL and JS on a grid): closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gankit.sampling import PSEUDO_COUNT, grid_divergences

EXTENT = (-1.0, 1.0, -1.0, 1.0)


def test_identical_point_sets_are_zero_apart() -> None:
    pts = np.random.default_rng(0).uniform(-1, 1, (300, 2))
    assert grid_divergences(pts, pts.copy(), EXTENT) == (0.0, 0.0)


def test_one_point_each_in_opposite_cells_of_a_2x2_grid_by_hand() -> None:
    a = PSEUDO_COUNT
    real, fake = np.array([[-0.5, -0.5]]), np.array([[0.5, 0.5]])
    p = np.array([1 + a, a, a, a]) / (1 + 4 * a)  # real's cell first; fake's mass in the last
    q = np.array([a, a, a, 1 + a]) / (1 + 4 * a)
    m = (p + q) / 2
    kl = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q, strict=True))
    js = 0.5 * sum(pi * math.log(pi / mi) for pi, mi in zip(p, m, strict=True)) \
        + 0.5 * sum(qi * math.log(qi / mi) for qi, mi in zip(q, m, strict=True))
    got_kl, got_js = grid_divergences(real, fake, EXTENT, bins=2)
    assert got_kl == pytest.approx(kl, rel=1e-9) and got_js == pytest.approx(js, rel=1e-9)
    assert 0.6 < got_js < math.log(2) and got_kl > 3  # near JS's bound; KL finite all the same


def test_points_outside_the_view_count_in_its_border_cells() -> None:
    inside, outside = np.array([[0.99, 0.99]]), np.array([[5.0, 7.0]])
    assert grid_divergences(inside, outside, EXTENT, bins=4) == (0.0, 0.0)
