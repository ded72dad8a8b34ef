"""Scores of novel-view synthesis on held-out objects: is G(source, angles) the true render?

On fixed (source, target) pairs of views of objects never trained on:
- ``l1``, ``ssim``: G's output against the true render of the target angle (pixels in [0, 1];
  SSIM of Wang et al. 2004, ``gankit.metrics.translation``);
- ``identity``: nearest-neighbour retrieval (L1) of the output among every held-out object's true
  view at the target angle: the share that finds their own object;
- ``angle_acc`` (with an angle classifier, ``gankit.metrics.view_angles``): the share of outputs
  the classifier reads as turned by the asked azimuth, to the asked elevation;
- the same of the copy-the-source baseline (``copy_*``: the source view given as the answer).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from gankit.data.base import to_float
from gankit.data.views import ViewSet
from gankit.errors import GankitError
from gankit.metrics.translation import l1_error, ssim
from gankit.models.views import angle_code

HIGHER_IS_BETTER = {"l1": False, "ssim": True, "identity": True, "angle_acc": True,
                    "copy_l1": False, "copy_ssim": True, "copy_identity": True, "copy_angle_acc": True}


def higher_is_better(key: str) -> bool:
    """Direction of a novel-view score."""
    if key not in HIGHER_IS_BETTER:
        raise GankitError(f"{key!r} is not a novel-view score; one of: {', '.join(HIGHER_IS_BETTER)}")
    return HIGHER_IS_BETTER[key]


def eval_pairs(views: ViewSet, n: int, seed: int = 0) -> tuple[Tensor, Tensor]:
    """Fixed (source, target) view indices (P,), (P,): each view a source in turn (at most ``n``,
    spread over the set), its target a view of the same object drawn by ``seed``."""
    starts, counts = views.starts_counts()
    g = torch.Generator().manual_seed(seed)
    src = torch.arange(len(views))
    if n < len(src):
        src = src[torch.randperm(len(src), generator=g)[:n]].sort().values
    o = views.obj[src]
    tgt = starts[o] + (torch.rand(len(src), generator=g) * counts[o]).long().clamp(max=counts[o] - 1)
    return src, tgt


def identity_hits(out: Tensor, views: ViewSet, tgt: Tensor) -> Tensor:
    """(P,) bool: whether each output (P, C, H, W) in [-1, 1] is nearest (mean L1) to its own
    object's true view among every object's view at the same angle as its target."""
    hits = torch.zeros(len(tgt), dtype=torch.bool)
    key = views.angles.round(decimals=3)
    for angle in key[tgt].unique(dim=0):
        cand = (key == angle).all(1).nonzero().squeeze(1)  # the views at this angle, one per object mostly
        rows = (key[tgt] == angle).all(1).nonzero().squeeze(1)
        real = to_float(views.images[cand]).flatten(1)
        dist = torch.cdist(out[rows].float().flatten(1), real, p=1)  # (r, c)
        hits[rows] = views.obj[cand][dist.argmin(1)] == views.obj[tgt[rows]]
    return hits


Classifier = Callable[[Tensor, Tensor], Tensor]  # (sources, views) in [-1, 1] -> class (N,)


def score_views(G: nn.Module, views: ViewSet, n: int = 10_000, device: torch.device | str = "cpu",
                batch_size: int = 256, angle_classes: tuple[Classifier, Callable[[Tensor, Tensor], Tensor]] | None = None,
                ) -> dict[str, float]:
    """G's scores and the copy-the-source baseline's on at most ``n`` pairs of ``views``; with
    ``angle_classes`` = (classifier, true class of (source angles, target angles)) also the
    angle accuracies. G is put in eval mode and back."""
    src, tgt = eval_pairs(views, n)
    was = G.training
    G.eval()
    outs = []
    with torch.no_grad():
        for i in range(0, len(src), batch_size):
            s, t = src[i:i + batch_size], tgt[i:i + batch_size]
            code = angle_code(views.angles[s], views.angles[t]).to(device)
            outs.append(G(to_float(views.images[s]).to(device), code).float().cpu())
    G.train(was)
    out = torch.cat(outs)
    source, target = to_float(views.images[src]), to_float(views.images[tgt])
    values = {"l1": l1_error(out, target).mean().item(), "ssim": ssim(out, target).mean().item(),
              "identity": identity_hits(out, views, tgt).double().mean().item(),
              "copy_l1": l1_error(source, target).mean().item(), "copy_ssim": ssim(source, target).mean().item(),
              "copy_identity": identity_hits(source, views, tgt).double().mean().item()}
    if angle_classes is not None:
        classify, truth = angle_classes
        want = truth(views.angles[src], views.angles[tgt])
        values["angle_acc"] = (classify(source, out) == want).double().mean().item()
        values["copy_angle_acc"] = (classify(source, source) == want).double().mean().item()
    return values


__all__ = ["HIGHER_IS_BETTER", "eval_pairs", "higher_is_better", "identity_hits", "score_views"]
