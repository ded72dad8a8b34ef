"""The metric registry holds behaviour: compare() computes each metric through its entry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import gankit.metrics.evaluate as ev
from gankit.errors import GankitError
from gankit.metrics import METRICS, count_modes
from gankit.metrics.evaluate import MetricSpec, SampleSummary, compare, from_summaries
from gankit.metrics.kid import kid
from gankit.metrics.prdc import density_coverage, precision_recall
from gankit.metrics.stats import FeatureStats, fid_from_stats
from gankit.registry import Registry

RNG = np.random.default_rng(3)


class NoClassifier:
    """An extractor without a classifier (no classes, no logits)."""

    name, dim, num_classes, classes = "none", 3, 0, None

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, None]:
        return images.flatten(1)[:, :3], None


def summary(n: int, shift: float = 0.0) -> SampleSummary:
    stats = FeatureStats(3, keep=100)
    stats.update(RNG.normal(size=(n, 3)) + shift)
    return SampleSummary(stats)


def test_compare_computes_through_the_entries_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    reg: Registry[MetricSpec] = Registry("metric")
    # a "fid" entry that is not the FID: a loop that ignored the entries would give the real number
    reg.register("fid", MetricSpec(("fid",), (False,), lambda r, f, e: {"fid": -1.0}), "stand-in")
    reg.register("sizes", MetricSpec(("n_real", "n_fake"), (True, True),
                                     lambda r, f, e: {"n_real": float(r.stats.n), "n_fake": float(f.stats.n)}),
                 "the two sides' sizes")
    monkeypatch.setattr(ev, "METRICS", reg)
    assert compare(summary(5), summary(7), ["fid", "sizes"], NoClassifier()) == \
        {"fid": -1.0, "n_real": 5.0, "n_fake": 7.0}
    assert compare(summary(5), summary(7), ["sizes"], NoClassifier()) == {"n_real": 5.0, "n_fake": 7.0}
    with pytest.raises(GankitError, match="unknown metric 'kid'"):  # only what is registered
        compare(summary(5), summary(7), ["kid"], NoClassifier())


def test_the_registered_entries_give_the_functions_numbers() -> None:
    real, fake = summary(60), summary(50, shift=0.5)
    got = compare(real, fake, ["fid", "kid", "pr", "dc"], NoClassifier())
    k, ks = kid(real.stats.features, fake.stats.features)
    p, r = precision_recall(real.stats.features, fake.stats.features)
    d, c = density_coverage(real.stats.features, fake.stats.features)
    assert got == {"fid": fid_from_stats(real.stats, fake.stats), "kid": k, "kid_std": ks,
                   "precision": p, "recall": r, "density": d, "coverage": c}
    assert list(got) == ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage"]


def test_each_entry_says_what_it_needs() -> None:
    real, fake = summary(10), summary(10)
    with pytest.raises(GankitError, match="classes needs a classifier with known classes"):
        compare(real, fake, ["classes"], NoClassifier())
    with pytest.raises(GankitError, match="is needs a classifier"):
        compare(real, fake, ["is"], NoClassifier())
    with pytest.raises(GankitError, match="counted from a generator's samples"):
        compare(real, fake, ["modes"], NoClassifier())


def test_modes_is_counted_from_a_generator_and_the_rest_from_summaries() -> None:
    spec = METRICS.get("modes")
    assert spec.compute is None and spec.count is count_modes
    assert all(METRICS.get(m).compute is not None and METRICS.get(m).count is None
               for m in METRICS.names() if m != "modes")
    assert from_summaries(["fid", "modes", "pr"]) == ["fid", "pr"]
    assert [m for m in METRICS.names() if METRICS.get(m).needs_probs] == ["is"]
    with pytest.raises(ValueError, match="exactly one"):
        MetricSpec(("x",), (True,))
    with pytest.raises(ValueError, match="exactly one"):
        MetricSpec(("x",), (True,), compute=lambda r, f, e: {}, count=count_modes)


def test_modes_follow_the_data_traits_not_their_name() -> None:
    from gankit.config import build_config
    from gankit.data import from_tensor
    from gankit.data.toy import grid

    class AtTheCentres(torch.nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            c = grid().traits.modes.centers  # type: ignore[union-attr]
            return c[(z[:, 0].abs() * 1000).long() % len(c)]

    cfg = build_config(overrides={"data": "grid", "model": "mlp", "latent_dim": 3})
    real = grid()
    assert count_modes(AtTheCentres(), cfg, real, "cpu", 0)["modes"] == 25
    # The same points given as a tensor called "grid": user data, no known modes.
    impostor = from_tensor(real.data, name="grid")
    with pytest.raises(GankitError, match="mode counter of ring and grid"):
        count_modes(AtTheCentres(), cfg, impostor, "cpu", 0)
    images = from_tensor(torch.zeros(4, 3, 8, 8, dtype=torch.uint8), name="stacked-fashion-mnist")
    with pytest.raises(GankitError, match="needs data.source=stacked-fashion-mnist"):
        count_modes(AtTheCentres(), cfg, images, "cpu", 0)
