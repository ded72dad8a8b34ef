"""GAN metrics: feature extractors, streaming statistics, and the numbers computed from them.

    result = evaluate_generator(G, cfg, n=10_000, metrics=["fid", "kid"], features="fmnist")
    result.values  # {"fid": ..., "kid": ..., "kid_std": ...}
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from gankit.config import Config
from gankit.data.base import InMemoryData
from gankit.errors import GankitError
from gankit.metrics.evaluate import (
    METRICS,
    EvalResult,
    MetricSpec,
    batches_of,
    default_metrics,
    evaluate_images,
    from_summaries,
    generated_batches,
    higher_is_better,
    metric_for_key,
    parse_metrics,
)
from gankit.metrics.features import FEATURES, get_extractor
from gankit.metrics.scores import modes_2d, stacked_modes
from gankit.metrics.stats import fid_from_stats

N_MODES_2D = 2_500  # samples of the 2-D protocol (VEEGAN, Srivastava et al. 2017)
N_MODES_STACKED = 26_000  # samples of the stacked-MNIST protocol (VEEGAN; PacGAN, Lin et al. 2018)


def images_key(name: str, images: torch.Tensor) -> dict[str, object]:
    """What identifies the real side for the reference cache: the data's name and a hash of the
    decoded images themselves, so a changed folder or another tensor never reuses stale statistics."""
    h = hashlib.sha256()
    rows = max(1, 2**26 // max(1, images[:1].nbytes))  # ~64 MB at a time: a mapped set is never copied whole
    for i in range(0, len(images), rows):
        h.update(images[i:i + rows].contiguous().cpu().numpy().tobytes())
    return {"data": name, "shape": list(images.shape), "sha256": h.hexdigest()}


def evaluate_generator(
    G: nn.Module,
    cfg: Config,
    n: int = 10_000,
    metrics: list[str] | None = None,
    features: str = "fmnist",
    device: torch.device | str = "cpu",
    seed: int = 12345,
    data: object | None = None,
    modes_n: int | None = None,
    progress: bool = False,
) -> EvalResult:
    """Evaluate G (trained under ``cfg``) against its own training data.

    Points (ring, grid): the 2-D mode protocol. Images: the metrics named (default: all that the
    extractor supports) from ``n`` samples; ``modes`` on stacked-fashion-mnist counts its 1000 modes
    in ``modes_n`` samples (default: the protocol's 26,000).
    """
    from gankit.data import load_data

    t0 = time.perf_counter()
    real = data if isinstance(data, InMemoryData) else load_data(cfg.data, cfg.train.seed)
    m = cfg.model
    if not real.shape.is_image:
        if metrics and set(metrics) != {"modes"}:
            raise GankitError(f"the metrics {','.join(metrics)} need images; 2-D data are scored by "
                              "the metric modes (the mode counter of ring and grid)")
        return EvalResult(count_modes(G, cfg, real, device, seed), N_MODES_2D, len(real),
                          time.perf_counter() - t0, "none")
    extractor = get_extractor(features, device)
    names = metrics or default_metrics(extractor)
    values: dict[str, float] = {}
    for name in names:  # the metrics counted from G's samples (modes) first, as they always were
        count = METRICS.get(name).count
        if count is not None:
            values.update(count(G, cfg, real, device, seed, modes_n))
    rest = from_summaries(names)
    res = EvalResult({}, 0, len(real), 0.0, extractor.name)
    if rest:
        res = evaluate_images(generated_batches(G, m.prior, m.latent_dim, n, seed, device=device),
                              real.data.cpu(), images_key(cfg.data.source, real.data), extractor, rest,
                              progress=progress)
    res.values = {**values, **res.values}
    res.seconds = time.perf_counter() - t0
    return res


def evaluate_per_class(
    G: nn.Module,
    cfg: Config,
    classes: list[str],
    n_per_class: int = 1000,
    features: str = "fmnist",
    device: torch.device | str = "cpu",
    seed: int = 12345,
    data: object | None = None,
) -> dict[str, float]:
    """Score a class-conditional G class by class: FID of its samples of class c against the real
    images of class c (``fid/<name>``), and, where the data's classes are the `fmnist` classifier's
    (Fashion-MNIST, or a folder of subfolders named after its classes), the share of samples asked
    for class c that the classifier puts in c (``acc/<name>``). ``class_fid`` and ``class_acc`` are
    the means over the classes. FID from ``n_per_class`` samples is biased upward at small n (Chong &
    Forsyth 2020): compare runs at the same n."""
    from gankit.data import load_data
    from gankit.metrics.evaluate import reference_summary, summarise

    real = data if isinstance(data, InMemoryData) else load_data(cfg.data, cfg.train.seed)
    if real.labels is None or not real.shape.is_image:
        raise GankitError("per-class scores need labelled images (the run's data have no labels)")
    extractor = get_extractor(features, device)
    # the classifier's index of each of the data's classes, matched by name
    known = [c.lower() for c in extractor.classes] if extractor.classes is not None else []
    to_clf = [known.index(c.lower()) if c.lower() in known else -1 for c in classes]
    m = cfg.model
    labels = real.labels.cpu()
    out: dict[str, float] = {}
    for k, name in enumerate(classes):
        images = real.data.cpu()[labels == k]
        if len(images) < 2:
            raise GankitError(f"class {name!r} has {len(images)} real image(s); per-class FID needs 2")
        ref = reference_summary(images_key(f"{cfg.data.source}#class={k}", images), images, extractor)
        fake = summarise(generated_batches(G, m.prior, m.latent_dim, n_per_class, seed + k,
                                           device=device, y_class=k), extractor)
        out[f"fid/{name}"] = fid_from_stats(ref.stats, fake.stats)
        if to_clf[k] >= 0 and fake.preds:
            out[f"acc/{name}"] = float((fake.pred == to_clf[k]).mean())
    fids = [v for key, v in out.items() if key.startswith("fid/")]
    accs = [v for key, v in out.items() if key.startswith("acc/")]
    summary = {"class_fid": float(np.mean(fids))}
    if len(accs) == len(classes):
        summary["class_acc"] = float(np.mean(accs))
    return summary | out


def count_modes(G: nn.Module, cfg: Config, real: InMemoryData, device: torch.device | str,
                seed: int, n: int | None = None) -> dict[str, float]:
    """The modes G captures, by the protocol the data's traits name: a 2-D mixture's (VEEGAN,
    ``N_MODES_2D`` samples; ``n`` is not used) -> modes, hq; stacked Fashion-MNIST's (``n``
    samples, default ``N_MODES_STACKED``) -> modes, modes_kl. Data without known modes (a tensor,
    a folder, whatever its name) cannot be scored so."""
    traits, m = real.traits, cfg.model
    if traits.modes is not None:
        pts = torch.cat(list(generated_batches(G, m.prior, m.latent_dim, N_MODES_2D, seed, device=device)))
        modes, hq = modes_2d(pts.cpu().numpy(), traits.modes.centers.numpy(), traits.modes.std)
        return {"modes": float(modes), "hq": hq}
    if traits.modes_total:
        return stacked_mode_count(G, cfg, device, seed, n or N_MODES_STACKED)
    if real.shape.is_image:
        raise GankitError("the metric modes on images needs data.source=stacked-fashion-mnist "
                          "(or ring/grid for 2-D points)")
    raise GankitError("2-D data can only be scored by the mode counter of ring and grid")


def stacked_mode_count(G: nn.Module, cfg: Config, device: torch.device | str, seed: int,
                       n: int = N_MODES_STACKED) -> dict[str, float]:
    """Classify each channel of n (the protocol: 26,000) samples with the fmnist classifier:
    modes and KL to uniform."""
    m = cfg.model
    modes, kl = count_stacked_modes(generated_batches(G, m.prior, m.latent_dim, n, seed, device=device), device)
    return {"modes": float(modes), "modes_kl": kl}


def count_stacked_modes(batches: Iterable[Tensor], device: torch.device | str = "cpu") -> tuple[int, float]:
    """Stacked images (B, 3, H, W) in [-1, 1], batch by batch -> (modes hit, KL to uniform): each
    channel classified as one Fashion-MNIST image by the fmnist classifier."""
    from gankit.metrics.fmnist_classifier import FMNISTFeatures

    clf = FMNISTFeatures(device)
    preds = []
    with torch.inference_mode():
        for x in batches:
            # (B, 3, H, W) -> (3B, 1, H, W): each channel is one Fashion-MNIST image
            b = x.shape[0]
            logits = clf.logits(x.reshape(b * 3, 1, *x.shape[2:]))
            preds.append(logits.argmax(1).reshape(b, 3).cpu().numpy())
    return stacked_modes(np.concatenate(preds))


def evaluate_folders(real_dir: str, fake_dir: str, metrics: list[str] | None = None,
                     features: str = "fmnist", size: tuple[int, int] | None = None,
                     device: torch.device | str = "cpu", progress: bool = False,
                     workers: int | None = None, cache: bool = True) -> EvalResult:
    """Compare two folders of images, streamed: each is decoded a chunk at a time (in ``workers``
    processes, in a shuffled order) and featurised as it comes, so only features and statistics are
    held, never the images at the extractor's size. The real side's statistics are cached (keyed
    by its files' names, sizes and times). The result's warnings say when the two sides' images
    differ in size or channels (both are resized to the extractor's input, which hides it) or are
    too few for the metrics."""
    from gankit.data.folder import stream_image_folder
    from gankit.metrics.evaluate import evaluate_summary, summary_of

    t0 = time.perf_counter()
    extractor = get_extractor(features, device)
    if size is None:
        size = (28, 28) if extractor.name == "fmnist" else (299, 299)
    channels = 1 if extractor.name == "fmnist" else 3
    real = stream_image_folder(real_dir, size, channels, workers)
    fake = stream_image_folder(fake_dir, size, channels, workers)
    names = from_summaries(metrics or default_metrics(extractor))
    key = {"data": real.root, "folder": real.key, "order": "shuffled:0"}
    reference = summary_of(key, lambda: batches_of(real.batches()), len(real.files), extractor,
                           cache=cache, progress=progress)
    res = evaluate_summary(reference, batches_of(fake.batches()), extractor, names, t0=t0)
    res.warnings = shape_warnings(real.root, sorted(real.kept or real.files), fake.root,
                                  sorted(fake.kept)) + res.warnings
    return res


def _shapes(root: str, files: list[str], k: int = 64) -> Counter[tuple[int, int, int]]:
    """(width, height, channels) of up to ``k`` of a folder's images, read from their headers."""
    from PIL import Image

    seen: Counter[tuple[int, int, int]] = Counter()
    for name in files[:k]:
        with contextlib.suppress(OSError), Image.open(Path(root) / name) as im:
            seen[(im.width, im.height, len(im.getbands()) if im.mode != "P" else 3)] += 1
    return seen


def shape_warnings(real_dir: str, real_files: list[str], fake_dir: str, fake_files: list[str]) -> list[str]:
    """Warnings where the two folders' images are of different sizes or channel counts: the
    metrics then also measure the resizing, not only the images."""
    real, fake = _shapes(real_dir, real_files), _shapes(fake_dir, fake_files)
    if not real or not fake:
        return []
    (rw, rh, rc), (fw, fh, fc) = real.most_common(1)[0][0], fake.most_common(1)[0][0]
    out = []
    if (rw, rh) != (fw, fh):
        out.append(f"the real images are {rw}x{rh} and the generated {fw}x{fh}: both are resized to the "
                   "extractor's input, so the scores also measure the resizing; compare images of one size")
    if (rc > 1) != (fc > 1):
        out.append(f"the real images have {'3 channels' if rc > 1 else '1 channel'} and the generated "
                   f"{'3' if fc > 1 else '1'}: compare images of the same kind (gray or colour)")
    return out


METRICS.register("modes", MetricSpec(("modes", "hq", "modes_kl"), (True, True, False), count=count_modes),
                 "modes captured: 2-D mixtures (VEEGAN protocol, 2,500 samples) or "
                 "stacked Fashion-MNIST (1000 modes, 26,000 samples)")

__all__ = [
    "FEATURES", "METRICS", "MetricSpec", "count_modes", "EvalResult", "evaluate_folders", "evaluate_generator", "evaluate_per_class",
    "get_extractor",
    "higher_is_better", "metric_for_key", "parse_metrics",
]
