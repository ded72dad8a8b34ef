"""Scoring text -> image on the built-in ``captioned-fashion`` set: does the image show what its
caption says? Each of the caption's four facts is read back from the pixels of the generated
48x48 canvas:

- the item: its pixels are those above ``FOREGROUND`` (0.1 of white); its bounding box is where the
  middle 99 % of their intensity lies along each axis (a stray faint pixel moves nothing);
- size: the box's longer side, small under ``SIZE_SPLIT`` pixels (the set's sizes are 20 and 28);
- position: along each axis, the place (of three) whose item centre for that size lies nearest the
  box's centre;
- brightness: the mean of the item's pixels, bright above ``BRIGHT_SPLIT`` (the set's are 0.25, 0.6);
- class: the box, made square about its centre (Fashion-MNIST frames its items so: longer side
  28, centred) and resampled to 28x28, its intensity scaled so its brightest pixel is white, read
  by gankit's Fashion-MNIST classifier (``gankit.metrics.fmnist_classifier``, 93.4 % on the test set).

On the set's own canvases the three attributes come out exact (tests/tasks/test_text2image.py), and
the class as often as the classifier is right on the crops (``bench/text2image.py`` prints this
ceiling). The FID here is between the generated and the real items' crops, in the classifier's
features.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from gankit.data.captioned import ATTRIBUTES, BRIGHTNESS, FOREGROUND, SIZES, offsets

SIZE_SPLIT = (SIZES[0] + SIZES[1]) / 2  # 24 px
BRIGHT_SPLIT = (BRIGHTNESS[0] + BRIGHTNESS[1]) / 2  # 0.425
TAIL = 0.005  # of the item's intensity left outside its box on each side
CROP = 28

#: the scores' keys, and whether higher is better: accuracies per attribute and their mean, on
#: test-seen (no suffix), the held-out combinations (_combos) and the held-out wordings (_wordings)
SPLIT_SUFFIX = {"test-seen": "", "test-heldout-combos": "_combos", "test-heldout-wordings": "_wordings"}
KEYS = [f"{k}{s}" for s in SPLIT_SUFFIX.values() for k in ("acc", *(f"{a}_acc" for a in ATTRIBUTES))]
HIGHER_IS_BETTER = {**dict.fromkeys(KEYS, True), **{f"fid{s}": False for s in SPLIT_SUFFIX.values()}}


def higher_is_better(key: str) -> bool:
    from gankit.errors import GankitError

    if key not in HIGHER_IS_BETTER:
        raise GankitError(f"unknown text -> image score {key!r}; one of: {', '.join(HIGHER_IS_BETTER)}")
    return HIGHER_IS_BETTER[key]


@dataclass
class Measured:
    """What the pixels of N canvases show: position (N,) 0-8, size (N,) 0/1, brightness (N,) 0/1,
    the item's box (N, 4) as top, bottom, left, right (inclusive) and its mean intensity (N,)."""

    position: Tensor
    size: Tensor
    brightness: Tensor
    box: Tensor
    intensity: Tensor


def _span(profile: Tensor) -> tuple[Tensor, Tensor]:
    """First and last index (N,) between which all but ``TAIL`` of each row's mass lies at each end."""
    total = profile.sum(1, keepdim=True)
    cdf = profile.cumsum(1) / total.clamp(min=1e-12)
    last = profile.shape[1] - 1
    lo = (cdf <= TAIL).sum(1).clamp(max=last)  # the first index where more than TAIL has passed
    hi = (cdf < 1 - TAIL).sum(1).clamp(max=last)  # the first index where all but TAIL has passed
    empty = total[:, 0] <= 0  # nothing there: the whole axis
    return torch.where(empty, 0, lo), torch.where(empty, last, hi)


def gray01(images: Tensor) -> Tensor:
    """Images (N, C, H, W) in [-1, 1] -> gray (N, H, W) in [0, 1]."""
    return ((images.float().mean(1) + 1) / 2).clamp(0, 1)


def measure(images: Tensor) -> Measured:
    """Read position, size and brightness off canvases (N, C, 48, 48) in [-1, 1] (see the module
    docstring); an empty canvas measures as its whole self: large, dark, centre."""
    x = gray01(images)
    mass = x * (x > FOREGROUND)
    top, bottom = _span(mass.sum(2))
    left, right = _span(mass.sum(1))
    extent = torch.maximum(bottom - top, right - left) + 1
    size = (extent >= SIZE_SPLIT).long()
    centres = torch.tensor([[o + side / 2 - 0.5 for o in offsets(side)] for side in SIZES])  # (2, 3)
    c = centres.to(x.device)[size]  # (N, 3): this size's three centres
    row = ((top + bottom).float()[:, None] / 2 - c).abs().argmin(1)
    col = ((left + right).float()[:, None] / 2 - c).abs().argmin(1)
    fg = x > FOREGROUND
    intensity = (x * fg).sum((1, 2)) / fg.sum((1, 2)).clamp(min=1)
    return Measured(3 * row + col, size, (intensity > BRIGHT_SPLIT).long(),
                    torch.stack([top, bottom, left, right], 1), intensity)


def crops(images: Tensor, box: Tensor) -> Tensor:
    """The items (N, 1, 28, 28) in [-1, 1] for the classifier: each box made square about its
    centre, resampled to 28x28 (bilinear) and scaled so its brightest pixel is white."""
    x = gray01(images)[:, None]  # (N, 1, H, W)
    n, _, H, W = x.shape
    top, bottom, left, right = box.float().unbind(1)
    side = torch.maximum(bottom - top, right - left) + 1
    cy, cx = (top + bottom + 1) / 2, (left + right + 1) / 2  # in pixel-edge coordinates
    theta = torch.zeros(n, 2, 3, device=x.device)
    theta[:, 0, 0], theta[:, 0, 2] = side / W, 2 * cx / W - 1
    theta[:, 1, 1], theta[:, 1, 2] = side / H, 2 * cy / H - 1
    grid = F.affine_grid(theta, [n, 1, CROP, CROP], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    out = out / out.amax((1, 2, 3), keepdim=True).clamp(min=1e-3)
    return out * 2 - 1


def read_items(images: Tensor, device: torch.device | str = "cpu", batch: int = 1000) -> tuple[Measured, Tensor, Tensor]:
    """(what the pixels show, the classifier's class (N,), its features (N, 128)) of canvases."""
    from gankit.metrics.fmnist_classifier import FMNISTFeatures

    parts, classes, feats = [], [], []
    clf = FMNISTFeatures(device)
    for i in range(0, len(images), batch):
        chunk = images[i:i + batch].to(device)
        m = measure(chunk)
        f, logits = clf.features_and_logits(crops(chunk, m.box))
        parts.append(m)
        classes.append(logits.argmax(1))
        feats.append(f)
    cat = lambda k: torch.cat([getattr(p, k).cpu() for p in parts])  # noqa: E731
    measured = Measured(cat("position"), cat("size"), cat("brightness"), cat("box"), cat("intensity"))
    return measured, torch.cat(classes), torch.cat(feats)


def accuracies(measured: Measured, classes: Tensor, attrs: Tensor, suffix: str = "") -> dict[str, float]:
    """How often each fact read from the pixels is the one asked for (attrs (N, 4): class,
    position, size, brightness), and their mean ``acc``."""
    got = torch.stack([classes.cpu(), measured.position, measured.size, measured.brightness], 1)
    per = (got == attrs.cpu()).float().mean(0).tolist()
    out = {f"{a}_acc{suffix}": float(v) for a, v in zip(ATTRIBUTES, per, strict=True)}
    return {f"acc{suffix}": float(sum(per) / len(per)), **out}


def fid_of_features(a: Tensor, b: Tensor) -> float:
    """FID (Heusel et al. 2017) between two sets of features (N, D)."""
    from gankit.metrics.stats import FeatureStats, fid_from_stats

    sa, sb = FeatureStats(a.shape[1]), FeatureStats(b.shape[1])
    sa.update(a)
    sb.update(b)
    return fid_from_stats(sa, sb)




def real_features(images: Tensor, device: torch.device | str = "cpu") -> Tensor:
    """The classifier's features (N, 128) of real canvases' items (uint8 (N, C, H, W)), for the FID."""
    return read_items(images.float().div(127.5).sub(1), device)[2]


def score_split(G: torch.nn.Module, prior: str, attrs: Tensor, phi: Tensor, seed: int,
                device: torch.device | str = "cpu", suffix: str = "", real: Tensor | None = None,
                shuffle: bool = False) -> dict[str, float]:
    """Generate one image per caption embedding ``phi`` (N, 384) with G (a ``TextGenerator``, eval
    mode, noise from ``seed``) and score it against the items' attributes ``attrs`` (N, 4):
    ``accuracies`` with ``suffix``, and, given the real items' features ``real``
    (``real_features``), the FID of the crops (``fid{suffix}``). ``shuffle``: the caption-agnostic
    baseline, the same G given the captions in a random order (each image is scored against the
    item it was not asked for)."""
    from gankit.models.text2image import generate, noise

    if shuffle:
        phi = phi[torch.randperm(len(phi), generator=torch.Generator().manual_seed(seed))]
    z, eps = noise(len(phi), G, prior, seed)  # type: ignore[arg-type]
    fake = generate(G, phi, z, eps)  # type: ignore[arg-type]
    measured, classes, feats = read_items(fake, device)
    values = accuracies(measured, classes, attrs, suffix)
    if real is not None:
        values[f"fid{suffix}"] = fid_of_features(feats, real)
    return values


__all__ = ["HIGHER_IS_BETTER", "KEYS", "SPLIT_SUFFIX", "Measured", "accuracies", "crops", "fid_of_features",
           "higher_is_better", "measure", "read_items", "real_features", "score_split"]
