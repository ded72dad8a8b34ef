"""Each metric against a closed form or a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gankit.errors import GankitError
from gankit.metrics import METRICS, higher_is_better, metric_for_key, parse_metrics
from gankit.metrics.kid import kid, mmd2_unbiased, polynomial_kernel
from gankit.metrics.prdc import density_coverage, kth_neighbour_radii, precision_recall
from gankit.metrics.scores import (
    class_coverage,
    inception_score,
    kl_divergence,
    modes_2d,
    stacked_modes,
)
from gankit.metrics.stats import FeatureStats, fid_from_stats, frechet_distance, sqrtm_psd

RNG = np.random.default_rng(0)


def test_frechet_distance_closed_form_diagonal() -> None:
    # For diagonal covariances: ||mu1 - mu2||^2 + sum (s1 - s2)^2 with s the standard deviations.
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    s1, s2 = np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])
    expected = 1 + 0 + 4 + (1 + 0 + 4)
    got = frechet_distance(mu1, np.diag(s1**2), mu2, np.diag(s2**2))
    assert got == pytest.approx(expected, rel=1e-10)


def test_frechet_distance_closed_form_full_covariance() -> None:
    # Same covariance up to a rotation R: C2 = R C1 R^T, means equal. Then
    # FID = 2 tr(C) - 2 tr((C1 C2)^(1/2)); check against an independent eigen computation.
    a = RNG.normal(size=(4, 4))
    c1 = a @ a.T + np.eye(4)
    q, _ = np.linalg.qr(RNG.normal(size=(4, 4)))
    c2 = q @ c1 @ q.T
    w, v = np.linalg.eig(c1 @ c2)  # eigenvalues of C1 C2 are real and positive
    tr_sqrt = np.sqrt(w.real).sum()
    assert frechet_distance(np.zeros(4), c1, np.zeros(4), c2) == pytest.approx(
        2 * np.trace(c1) - 2 * tr_sqrt, rel=1e-8)


def test_fid_of_a_set_with_itself_is_zero_and_sampled_gaussians_match() -> None:
    x = RNG.normal(size=(5000, 8))
    a, b = FeatureStats(8), FeatureStats(8)
    a.update(x)
    b.update(x)
    assert abs(fid_from_stats(a, b)) < 1e-8
    # Two samples of N(0, I) vs N(m, 4I): closed form |m|^2 + 8 (2 - 1)^2
    m = np.full(8, 0.5)
    c, d = FeatureStats(8), FeatureStats(8)
    for _ in range(10):  # streamed in batches
        c.update(RNG.normal(size=(4000, 8)))
        d.update(m + 2 * RNG.normal(size=(4000, 8)))
    assert fid_from_stats(c, d) == pytest.approx(8 * 0.25 + 8, rel=0.03)


def test_streaming_statistics_equal_numpy() -> None:
    x = RNG.normal(size=(1000, 5)) @ RNG.normal(size=(5, 5))
    s = FeatureStats(5, keep=300)
    for chunk in np.array_split(x, 7):
        s.update(chunk)
    assert np.allclose(s.mean, x.mean(0), atol=1e-12)
    assert np.allclose(s.cov, np.cov(x, rowvar=False), atol=1e-10)
    assert s.features.shape == (300, 5) and np.allclose(s.features, x[:300], atol=1e-6)


def test_sqrtm_psd() -> None:
    a = RNG.normal(size=(6, 6))
    c = a @ a.T
    r = sqrtm_psd(c)
    assert np.allclose(r @ r, c, atol=1e-9)


def test_mmd_unbiased_by_hand() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 1.0], [0.0, 0.0], [2.0, 0.0]])
    k = lambda a, b: (a @ b / 2 + 1) ** 3  # noqa: E731
    kxx = k(x[0], x[1])  # off-diagonal pairs, each counted twice over 2 * 1
    kyy = np.mean([k(y[i], y[j]) for i in range(3) for j in range(3) if i != j])
    kxy = np.mean([k(a, b) for a in x for b in y])
    assert mmd2_unbiased(x, y) == pytest.approx(kxx + kyy - 2 * kxy, rel=1e-12)
    assert polynomial_kernel(x, y).shape == (2, 3)


def test_kid_is_about_zero_for_one_distribution_and_positive_for_two() -> None:
    a, b = RNG.normal(size=(3000, 16)), RNG.normal(size=(3000, 16))
    mean, std = kid(a, b, subsets=20, subset_size=500)
    assert abs(mean) < 3 * std + 1e-4
    mean2, _ = kid(a, b + 1.0, subsets=20, subset_size=500)
    assert mean2 > 10 * max(abs(mean), 1e-3)


def test_precision_recall_density_coverage_identical_and_disjoint() -> None:
    x = RNG.normal(size=(500, 4)).astype(np.float32)
    assert precision_recall(x, x) == (1.0, 1.0)
    d, c = density_coverage(x, x)
    assert c == 1.0 and d >= 1.0  # each fake also sits in its own ball
    # An independent sample of the same distribution: density ~ 1 in expectation (Naeem et al. 2020)
    y = RNG.normal(size=(2000, 4)).astype(np.float32)
    y2 = RNG.normal(size=(2000, 4)).astype(np.float32)
    d2, c2 = density_coverage(y, y2)
    assert d2 == pytest.approx(1.0, abs=0.1) and c2 > 0.95
    far = x + 1000
    assert precision_recall(x, far) == (0.0, 0.0)
    assert density_coverage(x, far) == (0.0, 0.0)
    # Half the fakes collapsed onto one real point: precision stays high, recall falls.
    collapsed = np.repeat(x[:1], 500, axis=0)
    p, r = precision_recall(x, collapsed)
    assert p == 1.0 and r < 0.1


def test_kth_neighbour_radii_by_hand() -> None:
    pts = np.array([[0.0], [1.0], [3.0], [7.0]], dtype=np.float32)
    assert kth_neighbour_radii(pts, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert kth_neighbour_radii(pts, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_inception_score_bounds() -> None:
    uniform = np.full((100, 10), 0.1)
    assert inception_score(uniform, splits=2)[0] == pytest.approx(1.0)
    onehot = np.eye(10)[np.arange(100) % 10]
    assert inception_score(onehot, splits=2)[0] == pytest.approx(10.0, rel=1e-6)


def test_class_coverage_and_kl() -> None:
    hit, kl = class_coverage(np.array([0, 0, 1, 1]), np.array([0, 1, 2, 3]), 4)
    assert hit == 2
    assert kl == pytest.approx(math.log(2), rel=1e-6)  # [.5, .5, 0, 0] against uniform over 4
    assert kl_divergence(np.array([1, 1]), np.array([1, 1])) == 0


def test_modes_2d_on_hand_placed_points() -> None:
    centers = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    std = 0.01
    pts = np.array([[0.0, 0.0], [0.02, 0.0],  # mode 0, both within 3 std
                    [1.0, 0.029],              # mode 1, just inside
                    [0.0, 1.05],               # near mode 2 but 5 std away: low quality
                    [0.5, 0.5]])               # nowhere
    modes, hq = modes_2d(pts, centers, std)
    assert modes == 2 and hq == pytest.approx(3 / 5)


def test_stacked_modes() -> None:
    preds = np.array([[1, 2, 3], [1, 2, 3], [9, 9, 9], [0, 0, 0]])
    modes, kl = stacked_modes(preds)
    assert modes == 3
    # histogram [2, 1, 1]/4 over 3 of 1000 bins vs uniform: sum p log(p * 1000)
    expected = 0.5 * math.log(0.5 * 1000) + 2 * 0.25 * math.log(0.25 * 1000)
    assert kl == pytest.approx(expected, rel=1e-6)


def test_registry_and_directions() -> None:
    assert set(METRICS.names()) == {"fid", "kid", "is", "pr", "dc", "classes", "modes"}
    assert not higher_is_better("fid") and higher_is_better("recall") and higher_is_better("modes")
    assert metric_for_key("coverage") == "dc"
    assert parse_metrics("fid, kid") == ["fid", "kid"]
    with pytest.raises(GankitError, match="unknown metric 'fdi'"):
        parse_metrics("fdi")


def test_feature_stats_round_trip_through_arrays() -> None:
    s = FeatureStats(3, keep=5)
    s.update(RNG.normal(size=(8, 3)))
    r = FeatureStats.from_arrays(s.to_arrays(), keep=5)
    assert r.n == 8 and np.array_equal(r.cov, s.cov) and np.array_equal(r.features, s.features)


def test_evaluating_a_perfect_grid_generator_finds_all_25_modes() -> None:
    # The grid's modes lie at +-4: generated points must not be clamped to [-1, 1] as images are.
    import torch
    from torch import nn

    from gankit.config import build_config
    from gankit.data.toy import GRID
    from gankit.metrics import evaluate_generator

    centers, std = GRID.modes.centers, GRID.modes.std

    class PerfectG(nn.Module):  # z -> a mode centre picked by z, plus the data's own noise
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            idx = (z[:, 0].abs() * 1000).long() % len(centers)
            return centers[idx] + std * z[:, 1:3]

    cfg = build_config(overrides={"data": "grid", "model": "mlp", "latent_dim": 3})
    res = evaluate_generator(PerfectG(), cfg, metrics=["modes"])
    assert res.values["modes"] == 25 and res.values["hq"] > 0.95
