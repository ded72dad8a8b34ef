"""An angle classifier for scoring novel views: does G's output show the object turned as asked?

A small CNN reads a pair (source view, other view) side by side on channels and names the class of
their relation: the azimuth turned from the source, to the nearest of ``TURN_BINS`` equal steps
(45 degrees: finer steps are ambiguous for the many parts that look alike when turned a little),
and the other view's elevation (one of the set's E elevations), TURN_BINS x E classes. Azimuth only counts
relative to the source: a single view of an unknown object shows no front. It is trained on the
true renders of the training objects, deterministically (one seed, a fixed number of steps, one
thread), on the fly by bench/views.py; ``angle_acc`` is the share of G's outputs it reads as the
asked turn and elevation (``gankit.metrics.views.score_views``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.base import to_float
from gankit.data.views import ViewSet
from gankit.errors import GankitError

TURN_BINS = 8


@dataclass(frozen=True)
class AngleClasses:
    """The classes: the turn to the nearest of ``azimuths`` equal steps round the circle, the
    target's elevation the nearest of ``elevations``."""

    azimuths: int
    elevations: tuple[float, ...]

    @property
    def n(self) -> int:
        return self.azimuths * len(self.elevations)

    @staticmethod
    def of(views: ViewSet) -> AngleClasses:
        az = views.angles[:, 0].remainder(360).round(decimals=3).unique()
        el = views.angles[:, 1].round(decimals=3).unique()
        if len(az) < 2:
            raise GankitError(f"{views.name}: the angle classifier needs views at two azimuths or more")
        return AngleClasses(min(len(az), TURN_BINS), tuple(float(e) for e in el))

    def __call__(self, source: Tensor, target: Tensor) -> Tensor:
        """Angles (N, 2), (N, 2) in degrees -> class (N,): turn step * E + elevation index."""
        step = 360.0 / self.azimuths
        turn = ((target[:, 0] - source[:, 0]).remainder(360) / step).round().long() % self.azimuths
        el = torch.tensor(self.elevations)
        e = (target[:, 1, None] - el[None]).abs().argmin(1)
        return turn * len(self.elevations) + e


class AngleNet(nn.Module):
    """(source, view) (N, 3, H, W) each in [-1, 1] -> class logits (N, classes)."""

    def __init__(self, classes: int, width: int = 16) -> None:
        super().__init__()
        w = width
        self.net = nn.Sequential(
            nn.Conv2d(6, w, 3, 1, 1), nn.BatchNorm2d(w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, 1, 1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, 1, 1), nn.BatchNorm2d(4 * w), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
            nn.Flatten(), nn.Linear(16 * 4 * w, 256), nn.ReLU(), nn.Linear(256, classes))

    def forward(self, source: Tensor, view: Tensor) -> Tensor:
        return self.net(torch.cat([source, view], 1))


@dataclass
class AngleClassifier:
    """A trained ``AngleNet`` and its classes: called on (sources, views) it gives classes (N,)."""

    net: AngleNet
    classes: AngleClasses

    @torch.no_grad()
    def __call__(self, source: Tensor, view: Tensor, batch_size: int = 512) -> Tensor:
        self.net.eval()
        out = [self.net(source[i:i + batch_size].float(), view[i:i + batch_size].float()).argmax(1)
               for i in range(0, len(source), batch_size)]
        return torch.cat(out)


def train_angle_classifier(views: ViewSet, steps: int = 2000, batch_size: int = 64, seed: int = 0,
                           lr: float = 1e-3) -> AngleClassifier:
    """Train on random pairs of true views of one object (Adam, cross-entropy), from ``seed``:
    the same views and arguments give the same weights on the same machine and thread count."""
    classes = AngleClasses.of(views)
    torch.manual_seed(seed)
    net = AngleNet(classes.n)
    opt = torch.optim.Adam(net.parameters(), lr)
    starts, counts = views.starts_counts()
    g = torch.Generator().manual_seed(seed)
    x = to_float(views.images)
    net.train()
    for _ in range(steps):
        src = torch.randint(len(views), (batch_size,), generator=g)
        o = views.obj[src]
        tgt = starts[o] + (torch.rand(batch_size, generator=g) * counts[o]).long().clamp(max=counts[o] - 1)
        y = classes(views.angles[src], views.angles[tgt])
        loss = F.cross_entropy(net(x[src], x[tgt]), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return AngleClassifier(net.eval(), classes)


__all__ = ["AngleClasses", "AngleClassifier", "AngleNet", "TURN_BINS", "train_angle_classifier"]
