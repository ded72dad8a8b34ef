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
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from safetensors.numpy import load_file, save
from torch import Tensor, nn
from tqdm import tqdm

from gankit.errors import GankitError
from gankit.fsutil import atomic_write_bytes
from gankit.metrics.features import FeatureExtractor
from gankit.metrics.kid import kid
from gankit.metrics.prdc import density_coverage, precision_recall
from gankit.metrics.scores import class_coverage, inception_score
from gankit.metrics.stats import FeatureStats, fid_from_stats
from gankit.nn_util import evaluating
from gankit.registry import Registry

if TYPE_CHECKING:
    from gankit.config import Config
    from gankit.data.base import InMemoryData


class SummaryScore(Protocol):
    """A metric computed from the two sides' feature summaries: (real, fake, extractor) -> values."""

    def __call__(self, real: SampleSummary, fake: SampleSummary,
                 extractor: FeatureExtractor) -> dict[str, float]: ...


class GeneratorScore(Protocol):
    """A metric counted from G's own samples under the data's protocol, not from feature summaries:
    (G, the run's config, its data, device, seed, samples or None for the protocol's) -> values."""

    def __call__(self, G: nn.Module, cfg: Config, real: InMemoryData, device: torch.device | str,
                 seed: int, n: int | None) -> dict[str, float]: ...


@dataclass(frozen=True)
class MetricSpec:
    """A metric as --metrics names it: the keys it writes, which way is better for each, and how it
    is computed. Exactly one of ``compute`` (the two sides' feature summaries (real, fake) and the
    extractor -> values, in ``compare``) and ``count`` (a generator's own samples, in
    ``gankit.metrics.evaluate_generator``) is set."""

    keys: tuple[str, ...]
    higher_is_better: tuple[bool, ...]
    compute: SummaryScore | None = None
    count: GeneratorScore | None = None
    needs_classifier: bool = False
    needs_probs: bool = False  # the fake side keeps the classifier's softmax per image

    def __post_init__(self) -> None:
        if (self.compute is None) == (self.count is None):
            raise ValueError(f"metric {self.keys}: give exactly one of compute and count")


METRICS: Registry[MetricSpec] = Registry("metric")  # entries: below, and `modes` in gankit.metrics


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
              keep_probs: bool = False, progress: str | None = None, total: int | None = None) -> SampleSummary:
    """Featurise image batches (N, C, H, W) in [-1, 1] into running statistics. ``progress``: a
    progress bar on stderr with this description (``total`` images)."""
    out = SampleSummary(FeatureStats(extractor.dim, keep))
    bar = tqdm(total=total, desc=progress, unit="img", file=sys.stderr, disable=progress is None,
               dynamic_ncols=True, leave=False)
    for x in batches:
        bar.update(len(x))
        feats, logits = extractor.features_and_logits(x)
        out.stats.update(feats)
        if logits is None:
            continue
        if extractor.classes is not None:  # class histograms need named classes
            out.preds.append(logits.argmax(1).cpu().numpy())
        if keep_probs:  # the Inception Score works with any classifier's softmax
            out.probs.append(torch.softmax(logits.float(), 1).cpu().numpy())
    bar.close()
    if out.stats.n < 2:
        raise GankitError("evaluation needs at least 2 images on each side")
    return out


# --------------------------------------------------------------------------- the metrics


def _fid(real: SampleSummary, fake: SampleSummary, extractor: FeatureExtractor) -> dict[str, float]:
    return {"fid": fid_from_stats(real.stats, fake.stats)}


def _kid(real: SampleSummary, fake: SampleSummary, extractor: FeatureExtractor) -> dict[str, float]:
    mean, std = kid(real.stats.features, fake.stats.features)
    return {"kid": mean, "kid_std": std}


def _is(real: SampleSummary, fake: SampleSummary, extractor: FeatureExtractor) -> dict[str, float]:
    if fake.prob.size == 0:
        raise GankitError("the metric is needs a classifier (features fmnist or inception:PATH)")
    mean, std = inception_score(fake.prob)
    return {"is": mean, "is_std": std}


def _pr(real: SampleSummary, fake: SampleSummary, extractor: FeatureExtractor) -> dict[str, float]:
    p, r = precision_recall(real.stats.features, fake.stats.features)
    return {"precision": p, "recall": r}


def _dc(real: SampleSummary, fake: SampleSummary, extractor: FeatureExtractor) -> dict[str, float]:
    d, c = density_coverage(real.stats.features, fake.stats.features)
    return {"density": d, "coverage": c}


def _classes(real: SampleSummary, fake: SampleSummary, extractor: FeatureExtractor) -> dict[str, float]:
    if extractor.classes is None:
        raise GankitError("the metric classes needs a classifier with known classes (features fmnist)")
    hit, kl = class_coverage(fake.pred, real.pred, extractor.num_classes)
    return {"classes_hit": float(hit), "class_kl": kl}


METRICS.register("fid", MetricSpec(("fid",), (False,), _fid),
                 "Fréchet distance of the feature distributions (Heusel et al. 2017)")
METRICS.register("kid", MetricSpec(("kid", "kid_std"), (False, False), _kid),
                 "kernel distance, unbiased, cubic kernel, mean and std over subsets (Bińkowski et al. 2018)")
METRICS.register("is", MetricSpec(("is", "is_std"), (True, False), _is, needs_classifier=True, needs_probs=True),
                 "Inception Score from the classifier's softmax (Salimans et al. 2016)")
METRICS.register("pr", MetricSpec(("precision", "recall"), (True, True), _pr),
                 "precision and recall, k = 3 (Kynkäänniemi et al. 2019)")
METRICS.register("dc", MetricSpec(("density", "coverage"), (True, True), _dc),
                 "density and coverage, k = 5 (Naeem et al. 2020)")
METRICS.register("classes", MetricSpec(("classes_hit", "class_kl"), (True, False), _classes, needs_classifier=True),
                 "classes hit by the samples, and KL of their class histogram from the data's")


def from_summaries(names: Iterable[str]) -> list[str]:
    """The metrics among ``names`` computed from feature summaries (the others count G's samples)."""
    return [m for m in names if METRICS.get(m).compute is not None]


def compare(real: SampleSummary, fake: SampleSummary, metrics: list[str],
            extractor: FeatureExtractor) -> dict[str, float]:
    """The numbers asked for, from the two summaries: each metric's entry computes its own."""
    res: dict[str, float] = {}
    for m in metrics:
        compute = METRICS.get(m).compute
        if compute is None:
            raise GankitError(f"the metric {m} is counted from a generator's samples, not compared "
                              "from two sets of images")
        res.update(compute(real, fake, extractor))
    return res


def parse_metrics(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    for m in names:
        METRICS.get(m)
    if not names:
        raise GankitError("the list of metrics is empty")
    return names


def default_metrics(extractor: FeatureExtractor) -> list[str]:
    base = ["fid", "kid", "pr", "dc"]
    return base + (["is", "classes"] if extractor.classes is not None else [])


# --------------------------------------------------------------------------- sources of images


def batches_of(images: Tensor | Iterable[Tensor | np.ndarray], batch_size: int = 500,
               order: Tensor | None = None) -> Iterator[Tensor]:
    """(N, C, H, W) uint8 or float in [-1, 1] -> float batches in [-1, 1]; in the order of the
    indices ``order`` if given (gathered a batch at a time: a memory-mapped set is never copied
    whole). An iterable of uint8 chunks (a streamed folder) is converted chunk by chunk."""
    if not isinstance(images, Tensor):
        for chunk in images:
            yield from batches_of(torch.as_tensor(chunk), batch_size)
        return
    for i in range(0, len(images), batch_size):
        x = images[i:i + batch_size] if order is None else images.index_select(0, order[i:i + batch_size])
        yield x.float().div(127.5).sub(1) if x.dtype == torch.uint8 else x.float()


def generated_batches(G: torch.nn.Module, prior: str, latent_dim: int, n: int, seed: int = 0,
                      batch_size: int = 500, device: torch.device | str = "cpu",
                      y_class: int | None = None) -> Iterator[Tensor]:
    """n samples of G (eval mode), batch by batch, from latents fixed by ``seed``. A conditional G
    makes every class in turn (the balanced marginal), or only class ``y_class``."""
    from gankit.models import sample_prior
    from gankit.models.conditional import num_classes_of

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
                      keep: int = DEFAULT_KEEP, cache: bool = True, progress: bool = False) -> SampleSummary:
    """The real side, computed once and cached by (dataset, size, extractor, keep) in safetensors.
    ``progress``: a progress bar while it is computed (the first time: 60,000 images take minutes)."""
    # The real side keeps `keep` features chosen at random, not the first ones (the data may be sorted).
    perm = torch.randperm(len(images), generator=torch.Generator().manual_seed(0))
    return summary_of(key, lambda: batches_of(images, order=perm), len(images), extractor, keep, cache,
                      progress)


def summary_of(key: dict[str, object], batches: Callable[[], Iterable[Tensor]], total: int,
               extractor: FeatureExtractor, keep: int = DEFAULT_KEEP, cache: bool = True,
               progress: bool = False) -> SampleSummary:
    """The summary of the real images that ``batches()`` yields (``total`` of them, for the
    progress bar), cached under ``key``; ``batches`` is only called when the cache misses."""
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
    summary = summarise(batches(), extractor, keep, total=total,
                        progress="featurising the real images (once, then cached)" if progress else None)
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
    warnings: list[str] = field(default_factory=list)  # what makes the numbers less meaningful


# Below this many images a side, FID, KID and the nearest-neighbour metrics are dominated by their
# bias: FID's expected value falls as 1/n (Chong & Forsyth 2020, "Effectively unbiased FID and
# Inception Score"); 2,000 is the smallest sample the FID literature reports with.
MIN_IMAGES = 2_000


def size_warnings(n_real: int, n_fake: int, metrics: list[str]) -> list[str]:
    """A warning per side with fewer images than the metrics need to mean much."""
    sample_based = [m for m in metrics if m in ("fid", "kid", "pr", "dc")]
    if not sample_based:
        return []
    return [f"{name} side: {n:,} images: {', '.join(sample_based)} on {n:,} images is dominated by bias; "
            f"use >= {MIN_IMAGES:,}" for name, n in (("real", n_real), ("generated", n_fake)) if n < MIN_IMAGES]


def evaluate_images(fake: Iterable[Tensor], real_images: Tensor, real_key: dict[str, object],
                    extractor: FeatureExtractor, metrics: list[str], keep: int = DEFAULT_KEEP,
                    cache: bool = True, progress: bool = False) -> EvalResult:
    """Compare generated batches with a real image set under ``metrics`` (``progress``: bars on
    stderr while the real side is first featurised)."""
    t0 = time.perf_counter()
    real = reference_summary(real_key, real_images, extractor, keep, cache, progress)
    return evaluate_summary(real, fake, extractor, metrics, keep, t0)


def evaluate_summary(real: SampleSummary, fake: Iterable[Tensor], extractor: FeatureExtractor,
                     metrics: list[str], keep: int = DEFAULT_KEEP, t0: float | None = None) -> EvalResult:
    """Compare generated batches with the real side's summary under ``metrics`` (``t0``: when
    the evaluation started, for its seconds)."""
    t0 = time.perf_counter() if t0 is None else t0
    fake_s = summarise(fake, extractor, keep, keep_probs=any(METRICS.get(m).needs_probs for m in metrics))
    values = compare(real, fake_s, from_summaries(metrics), extractor)
    return EvalResult(values, fake_s.stats.n, real.stats.n, time.perf_counter() - t0, extractor.name,
                      size_warnings(real.stats.n, fake_s.stats.n, metrics))
