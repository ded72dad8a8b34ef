"""Evaluating a generator: samples -> features -> statistics -> numbers, streaming.

Generated images are produced, featurised and dropped batch by batch: only the float64 running
statistics, the class predictions and a capped set of feature vectors (for KID and the
nearest-neighbour metrics) are kept. The real data's side is computed once per (dataset, image
size, extractor) and cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save
from torch import Tensor

from gankit.errors import GankitError
from gankit.fsutil import atomic_write_bytes
from gankit.metrics.features import FeatureExtractor
from gankit.metrics.kid import kid
from gankit.metrics.prdc import density_coverage, precision_recall
from gankit.metrics.scores import class_coverage, inception_score
from gankit.metrics.stats import FeatureStats, fid_from_stats
from gankit.registry import Registry


@dataclass(frozen=True)
class MetricSpec:
    """A metric as --metrics names it: the keys it writes and which way is better for each."""

    keys: tuple[str, ...]
    higher_is_better: tuple[bool, ...]
    needs_classifier: bool = False


METRICS: Registry[MetricSpec] = Registry("metric")
METRICS.register("fid", MetricSpec(("fid",), (False,)),
                 "Fréchet distance of the feature distributions (Heusel et al. 2017)")
METRICS.register("kid", MetricSpec(("kid", "kid_std"), (False, False)),
                 "kernel distance, unbiased, cubic kernel, mean and std over subsets (Bińkowski et al. 2018)")
METRICS.register("is", MetricSpec(("is", "is_std"), (True, False), needs_classifier=True),
                 "Inception Score from the classifier's softmax (Salimans et al. 2016)")
METRICS.register("pr", MetricSpec(("precision", "recall"), (True, True)),
                 "precision and recall, k = 3 (Kynkäänniemi et al. 2019)")
METRICS.register("dc", MetricSpec(("density", "coverage"), (True, True)),
                 "density and coverage, k = 5 (Naeem et al. 2020)")
METRICS.register("classes", MetricSpec(("classes_hit", "class_kl"), (True, False), needs_classifier=True),
                 "classes hit by the samples, and KL of their class histogram from the data's")
METRICS.register("modes", MetricSpec(("modes", "hq", "modes_kl"), (True, True, False)),
                 "modes captured: 2-D mixtures (VEEGAN protocol, 2,500 samples) or "
                 "stacked Fashion-MNIST (1000 modes, 26,000 samples)")


def metric_for_key(key: str) -> str:
    """The --metrics name that produces output key ``key`` (``recall`` -> ``pr``)."""
    for e in METRICS.entries():
        if key in e.obj.keys:
            return e.name
    raise GankitError(f"unknown metric key {key!r}; one of: "
                      f"{', '.join(k for e in METRICS.entries() for k in e.obj.keys)}")


def higher_is_better(key: str) -> bool:
    """Direction of an output key such as ``fid`` or ``recall`` (for keeping the best checkpoint)."""
    for e in METRICS.entries():
        if key in e.obj.keys:
            return e.obj.higher_is_better[e.obj.keys.index(key)]
    raise GankitError(f"unknown metric key {key!r}; one of: "
                      f"{', '.join(k for e in METRICS.entries() for k in e.obj.keys)}")


DEFAULT_KEEP = 10_000  # feature vectors kept per side for KID / precision-recall / density-coverage


@dataclass
class SampleSummary:
    """What is kept of one side (real or fake) after featurising it."""

    stats: FeatureStats
    preds: list[np.ndarray] = field(default_factory=list)  # argmax class per image
    probs: list[np.ndarray] = field(default_factory=list)  # softmax per image (fake side, for IS)

    @property
    def pred(self) -> np.ndarray:
        return np.concatenate(self.preds) if self.preds else np.zeros(0, np.int64)

    @property
    def prob(self) -> np.ndarray:
        return np.concatenate(self.probs) if self.probs else np.zeros((0, 0), np.float32)


def summarise(batches: Iterable[Tensor], extractor: FeatureExtractor, keep: int = DEFAULT_KEEP,
              keep_probs: bool = False) -> SampleSummary:
    """Featurise image batches (N, C, H, W) in [-1, 1] into running statistics."""
    out = SampleSummary(FeatureStats(extractor.dim, keep))
    for x in batches:
        feats, logits = extractor.features_and_logits(x)
        out.stats.update(feats)
        if logits is None:
            continue
        if extractor.classes is not None:  # class histograms need named classes
            out.preds.append(logits.argmax(1).cpu().numpy())
        if keep_probs:  # the Inception Score works with any classifier's softmax
            out.probs.append(torch.softmax(logits.float(), 1).cpu().numpy())
    if out.stats.n < 2:
        raise GankitError("evaluation needs at least 2 images on each side")
    return out


def compare(real: SampleSummary, fake: SampleSummary, metrics: list[str],
            extractor: FeatureExtractor) -> dict[str, float]:
    """The numbers asked for, from the two summaries."""
    res: dict[str, float] = {}
    for m in metrics:
        if m == "classes" and extractor.classes is None:
            raise GankitError("--metrics classes needs a classifier with known classes (--features fmnist)")
        if m == "fid":
            res["fid"] = fid_from_stats(real.stats, fake.stats)
        elif m == "kid":
            res["kid"], res["kid_std"] = kid(real.stats.features, fake.stats.features)
        elif m == "pr":
            res["precision"], res["recall"] = precision_recall(real.stats.features, fake.stats.features)
        elif m == "dc":
            res["density"], res["coverage"] = density_coverage(real.stats.features, fake.stats.features)
        elif m == "is":
            if fake.prob.size == 0:
                raise GankitError("--metrics is needs a classifier (--features fmnist or inception:PATH)")
            res["is"], res["is_std"] = inception_score(fake.prob)
        elif m == "classes":
            hit, kl = class_coverage(fake.pred, real.pred, extractor.num_classes)
            res["classes_hit"], res["class_kl"] = float(hit), kl
        elif m != "modes":
            METRICS.get(m)  # names the choices
    return res


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    for m in names:
        METRICS.get(m)
    if not names:
        raise GankitError("--metrics is empty")
    return names


def default_metrics(extractor: FeatureExtractor) -> list[str]:
    base = ["fid", "kid", "pr", "dc"]
    return base + (["is", "classes"] if extractor.classes is not None else [])


# --------------------------------------------------------------------------- sources of images


def batches_of(images: Tensor, batch_size: int = 500) -> Iterator[Tensor]:
    """(N, C, H, W) uint8 or float in [-1, 1] -> float batches in [-1, 1]."""
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size]
        yield x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float()


def generated_batches(G: torch.nn.Module, prior: str, latent_dim: int, n: int, seed: int = 0,
                      batch_size: int = 500, device: torch.device | str = "cpu",
                      y_class: int | None = None) -> Iterator[Tensor]:
    """n samples of G (eval mode), batch by batch, from latents fixed by ``seed``. A conditional G
    makes every class in turn (the balanced marginal), or only class ``y_class``."""
    from gankit.models import sample_prior
    from gankit.models.conditional import num_classes_of
    from gankit.sampling import evaluating

    g = torch.Generator().manual_seed(seed)
    K = num_classes_of(G)
    with evaluating(G):
        for i in range(0, n, batch_size):
            b = min(batch_size, n - i)
            z = sample_prior(prior, b, latent_dim, generator=g).to(device)
            if K:
                y = torch.arange(i, i + b, device=device) % K if y_class is None else \
                    torch.full((b,), y_class, device=device)
                x = G(z, y).float()
            else:
                x = G(z).float()
            # images live in [-1, 1]; 2-D points are coordinates (the grid spans [-4, 4]): no clamp
            yield x.clamp(-1, 1) if x.dim() == 4 else x


# --------------------------------------------------------------------------- cached reference side


def _cache_dir() -> Path:
    from gankit.data import default_cache_dir

    return default_cache_dir() / "reference"


def reference_summary(key: dict[str, object], images: Tensor, extractor: FeatureExtractor,
                      keep: int = DEFAULT_KEEP, cache: bool = True) -> SampleSummary:
    """The real side, computed once and cached by (dataset, size, extractor, keep) in safetensors."""
    digest = hashlib.sha256(json.dumps({**key, "extractor": extractor.name, "dim": extractor.dim,
                                        "keep": keep, "v": 1}, sort_keys=True).encode()).hexdigest()[:24]
    path = _cache_dir() / f"{digest}.safetensors"
    if cache and path.exists():
        try:
            t = load_file(str(path))
            st = FeatureStats.from_arrays(t, keep)
            return SampleSummary(st, preds=[t["pred"]] if "pred" in t else [])
        except Exception:  # noqa: BLE001 - a damaged cache entry is recomputed
            pass
    # The real side keeps `keep` features chosen at random, not the first ones (the data may be sorted).
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    summary = summarise(batches_of(images[perm]), extractor, keep)
    if cache:
        arrays = summary.stats.to_arrays()
        if summary.preds:
            arrays["pred"] = summary.pred.astype(np.int64)
        with contextlib.suppress(OSError):  # an unwritable cache only costs time
            atomic_write_bytes(path, save(arrays))
    return summary


@dataclass
class EvalResult:
    values: dict[str, float]
    n_fake: int
    n_real: int
    seconds: float
    features: str


def evaluate_images(fake: Iterable[Tensor], real_images: Tensor, real_key: dict[str, object],
                    extractor: FeatureExtractor, metrics: list[str], keep: int = DEFAULT_KEEP,
                    cache: bool = True) -> EvalResult:
    """Compare generated batches with a real image set under ``metrics``."""
    t0 = time.perf_counter()
    real = reference_summary(real_key, real_images, extractor, keep, cache)
    fake_s = summarise(fake, extractor, keep, keep_probs="is" in metrics)
    values = compare(real, fake_s, [m for m in metrics if m != "modes"], extractor)
    return EvalResult(values, fake_s.stats.n, real.stats.n, time.perf_counter() - t0, extractor.name)
