"""Feature extractors, by name: what turns images into the vectors the metrics compare.

- ``fmnist``: gankit's own Fashion-MNIST classifier (weights shipped in the package); its
  penultimate layer gives features, its softmax class probabilities.
- ``inception:PATH``: Inception-v3 pool features with pytorch-fid's weights file, for numbers
  comparable with the literature. gankit never downloads the file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import torch
from torch import Tensor

from gankit.errors import GankitError
from gankit.registry import Registry


class FeatureExtractor(Protocol):
    """Images (N, C, H, W) in [-1, 1] -> features (N, dim); ``logits`` when it is a classifier."""

    name: str
    dim: int
    num_classes: int
    classes: list[str] | None

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]: ...


def _fmnist(arg: str, device: torch.device) -> FeatureExtractor:
    from gankit.metrics.fmnist_classifier import FMNISTFeatures

    if arg:
        raise GankitError("the feature extractor fmnist takes no argument (fmnist, not fmnist:...)")
    return FMNISTFeatures(device)


def _inception(arg: str, device: torch.device) -> FeatureExtractor:
    from gankit.metrics.inception import InceptionFeatures

    if not arg:
        raise GankitError(
            "the feature extractor inception needs the weights file: inception:PATH, where PATH is "
            "pytorch-fid's pt_inception-2015-12-05-6726825d.pth (gankit never downloads it)"
        )
    return InceptionFeatures(arg, device)


FEATURES: Registry[Callable[[str, torch.device], FeatureExtractor]] = Registry("feature extractor", "feature extractors (--features)")
FEATURES.register("fmnist", _fmnist, "gankit's Fashion-MNIST classifier (shipped): features and classes")
FEATURES.register("inception", _inception,
                  "inception:PATH: Inception-v3 pool3 with pytorch-fid's weights (comparable FID)")


def get_extractor(spec: str, device: torch.device | str = "cpu") -> FeatureExtractor:
    """``fmnist`` or ``inception:PATH`` -> a ready extractor."""
    name, _, arg = spec.partition(":")
    with torch.random.fork_rng(devices=[]):  # building one never moves the global RNG (training's)
        return FEATURES.get(name)(arg, torch.device(device))
