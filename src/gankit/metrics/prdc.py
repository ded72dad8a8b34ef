"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020).

Each set of features approximates its manifold by the union of balls around its points, each ball's
radius the distance to that point's k-th nearest neighbour in the same set.
- precision: share of fake points inside the real manifold; recall: share of real points inside
  the fake manifold (k = 3, the paper's choice).
- density: how many real balls contain each fake point, averaged and divided by k; coverage: share
  of real balls that contain at least one fake point (k = 5, the paper's choice).
Distances are computed in chunks, so 10,000 x 10,000 pairs never form one matrix in float64.
"""

from __future__ import annotations

import numpy as np
import torch


def _cdist_chunks(a: np.ndarray, b: np.ndarray, chunk: int = 2048):  # type: ignore[no-untyped-def]
    bt = torch.from_numpy(np.ascontiguousarray(b, np.float32))
    for i in range(0, len(a), chunk):
        at = torch.from_numpy(np.ascontiguousarray(a[i:i + chunk], np.float32))
        yield i, torch.cdist(at, bt)


def kth_neighbour_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each point to its k-th nearest other point of the same set."""
    out = np.empty(len(x), np.float32)
    for i, d in _cdist_chunks(x, x):
        # k + 1 smallest: the point itself (distance 0) comes first
        out[i:i + len(d)] = d.topk(k + 1, dim=1, largest=False).values[:, k].numpy()
    return out


def _inside_counts(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> np.ndarray:
    """For each point, how many balls (centre, radius) contain it."""
    r = torch.from_numpy(radii)
    counts = np.empty(len(points), np.int64)
    for i, d in _cdist_chunks(points, centres):
        counts[i:i + len(d)] = (d <= r[None, :]).sum(1).numpy()
    return counts


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> tuple[float, float]:
    precision = float((_inside_counts(fake, real, kth_neighbour_radii(real, k)) > 0).mean())
    recall = float((_inside_counts(real, fake, kth_neighbour_radii(fake, k)) > 0).mean())
    return precision, recall


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> tuple[float, float]:
    radii = kth_neighbour_radii(real, k)
    density = float(_inside_counts(fake, real, radii).sum() / (k * len(fake)))
    # coverage: real balls holding a fake point = real points whose nearest fake is within radius
    nearest_fake = np.empty(len(real), np.float32)
    for i, d in _cdist_chunks(real, fake):
        nearest_fake[i:i + len(d)] = d.min(1).values.numpy()
    coverage = float((nearest_fake <= radii).mean())
    return density, coverage
