"""gankit's own Fashion-MNIST classifier: features and class probabilities for the metrics.

FID, KID and precision/recall compare generated and real images in the feature space of a
network; the Inception Score, class coverage and the stacked-Fashion-MNIST mode count need a
classifier's softmax. Inception-v3 (``--features inception:PATH``) is the literature's choice,
but it is an ImageNet network: a 28 x 28 gray garment is a poor fit for it, its weights (about
90 MB) are not gankit's to ship, and 10,000 images take minutes on a CPU. So gankit ships a
small CNN trained on Fashion-MNIST itself (Xiao, Rasul & Vollgraf 2017, "Fashion-MNIST: a
Novel Image Dataset for Benchmarking Machine Learning Algorithms", arXiv:1708.07747), the same
idea as the MNIST classifiers used to score GANs on MNIST. It is trained by
``bench/train_fmnist_classifier.py`` (reproducible: fixed seed, fixed data order) and its
weights, ``weights/fmnist_cnn.safetensors`` beside this file (1.6 MB, safetensors, never
pickle), are part of the package: nothing is downloaded at run time.

The network (:class:`FMNISTClassifier`), 28 x 28 x 1 in, 389,482 parameters::

    conv 3x3, 1 -> 32,   BN, ReLU, max-pool 2   -> 32 x 14 x 14
    conv 3x3, 32 -> 64,  BN, ReLU, max-pool 2   -> 64 x 7 x 7
    conv 3x3, 64 -> 128, BN, ReLU
    conv 3x3, 128 -> 128, BN, ReLU, max-pool 2  -> 128 x 3 x 3
    flatten, linear 1152 -> 128, ReLU           -> the 128-d features (FEATURE_DIM)
    dropout 0.3 (training only), linear 128 -> 10 -> the logits

Test accuracy 93.4 % (10,000 images). Training also blurs a quarter of the images by a bilinear
round trip through 29..64 px, so images of other sizes survive the input adapter: the test set
upsampled to 32, 64 or 128 px and given as RGB scores 92.8 %, 93.1 %, 93.1 %.

The features are the penultimate activations (after the ReLU, so non-negative). The
convolutions run in channels-last memory layout, which is about twice as fast on a CPU
(oneDNN); that changes no result beyond float rounding.

Input (every public method goes through :func:`prepare`): float images (N, C, H, W) in
[-1, 1], gankit's image convention, with C = 1 or 3 and any H, W:

* C = 3 becomes gray by ITU-R BT.601 luma, 0.299 R + 0.587 G + 0.114 B. The weights sum to 1,
  so the same linear combination is correct directly in [-1, 1] space.
* Any other size than 28 x 28 is resized to 28 x 28 with ``F.interpolate(mode="bilinear",
  antialias=True, align_corners=False)``; a non-square image is stretched, not cropped.
* Values are not clamped; integer images are refused (convert uint8 ``p`` with
  ``p / 127.5 - 1``).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.fashion_mnist import CLASSES
from gankit.images import check_images
from gankit.metrics.shipped import load_shipped, shipped_metadata

WEIGHTS = Path(__file__).parent / "weights" / "fmnist_cnn.safetensors"
FEATURE_DIM = 128
NUM_CLASSES = 10
INPUT_SIZE = 28
BATCH_SIZE = 1000
REBUILD = "python bench/train_fmnist_classifier.py"
LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601


def prepare(images: Tensor) -> Tensor:
    """gankit images (N, C, H, W) in [-1, 1], C in {1, 3}, any H x W -> (N, 1, 28, 28) float32.

    RGB becomes BT.601 luma gray (0.299 R + 0.587 G + 0.114 B, exact in [-1, 1] space because
    the weights sum to 1); any size other than 28 x 28 is resized with bilinear interpolation,
    ``antialias=True, align_corners=False`` (non-square images are stretched). The result is on
    the input's device, in channels-last layout; values are not clamped.
    """
    check_images(images)
    x = images.float()
    if x.shape[1] == 3:
        r, g, b = LUMA
        x = r * x[:, 0:1] + g * x[:, 1:2] + b * x[:, 2:3]
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True,
                          align_corners=False)
    return x.contiguous(memory_format=torch.channels_last)


def _block(c_in: int, c_out: int, convs: int = 1) -> nn.Sequential:
    """``convs`` x (3x3 conv without bias, batch norm, ReLU), then a 2x2 max-pool."""
    layers: list[nn.Module] = []
    for i in range(convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1, bias=False),
                   nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, nn.MaxPool2d(2))


class FMNISTClassifier(nn.Module):
    """A compact CNN for Fashion-MNIST: conv-BN-ReLU blocks, max-pools, a 128-d layer, 10 logits.

    Every public method accepts what :func:`prepare` accepts (1 or 3 channels, any size, in
    [-1, 1]). Build it trained with :func:`load_fmnist_classifier`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(_block(1, 32), _block(32, 64), _block(64, 128, convs=2))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(128 * 3 * 3, FEATURE_DIM), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)
        self.to(memory_format=torch.channels_last)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Images -> (penultimate features (N, FEATURE_DIM), logits (N, NUM_CLASSES)), one pass."""
        h = self.fc(self.conv(prepare(x)))
        return h, self.head(self.dropout(h))

    def forward(self, x: Tensor) -> Tensor:
        """Images -> logits (N, NUM_CLASSES)."""
        return self.features_and_logits(x)[1]

    def features(self, x: Tensor) -> Tensor:
        """Images -> penultimate activations (N, FEATURE_DIM) float32 (after the ReLU)."""
        return self.fc(self.conv(prepare(x)))


def _missing_message(path: Path) -> str:
    return (
        f"the Fashion-MNIST classifier's weights are missing: no {path}. They ship with gankit; "
        f"rebuild them from a source checkout with `{REBUILD}` (needs Fashion-MNIST: "
        "apt-get install dataset-fashion-mnist), or reinstall gankit"
    )


@functools.cache
def _load(device: str) -> FMNISTClassifier:
    return load_shipped(WEIGHTS, FMNISTClassifier, REBUILD, _missing_message(WEIGHTS), device)


def load_fmnist_classifier(device: str | torch.device = "cpu") -> FMNISTClassifier:
    """The trained classifier on ``device``, in eval mode, without gradients; one per device.

    Loads :data:`WEIGHTS` with ``safetensors.torch.load_file`` (no pickle). The instance is
    cached and shared: do not train or modify it. Raises :class:`GankitError` if the file is
    missing or damaged, saying how to rebuild it.
    """
    return _load(str(torch.device(device)))


def weights_metadata() -> dict[str, str]:
    """The metadata stored in the weights file: test accuracy, epochs, seed, torch version, ..."""
    return shipped_metadata(WEIGHTS, _missing_message(WEIGHTS))


class FMNISTFeatures:
    """``fmnist`` feature extractor: the shipped classifier's 128-d features and 10 logits.

    Protocol: ``name``, ``dim``, ``num_classes``, ``classes`` (Fashion-MNIST's class names);
    ``features``, ``logits``, ``features_and_logits``. Each method takes gankit images
    (N, C, H, W) in [-1, 1] on any device (see :func:`prepare`), runs under
    ``torch.inference_mode()`` in batches of at most 1000 on ``device``, and returns float32
    CPU tensors.
    """

    name = "fmnist"
    dim: int = FEATURE_DIM
    num_classes: int = NUM_CLASSES

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = load_fmnist_classifier(self.device)
        self.classes: list[str] = list(CLASSES)

    def __repr__(self) -> str:
        return f"FMNISTFeatures(device={str(self.device)!r})"

    def features_and_logits(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Images (N, C, H, W) in [-1, 1] -> (features (N, dim), logits (N, 10)), one pass."""
        feats: list[Tensor] = []
        logits: list[Tensor] = []
        with torch.inference_mode():
            prepare(images[:0])  # validate type, shape and dtype even for an empty batch
            for start in range(0, images.shape[0], BATCH_SIZE):
                chunk = images[start:start + BATCH_SIZE].to(self.device)
                f, z = self.model.features_and_logits(chunk)
                feats.append(f.float().cpu())
                logits.append(z.float().cpu())
        if not feats:
            return torch.zeros(0, self.dim), torch.zeros(0, self.num_classes)
        return torch.cat(feats), torch.cat(logits)

    def features(self, images: Tensor) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] -> penultimate features (N, dim) float32."""
        return self.features_and_logits(images)[0]

    def logits(self, images: Tensor) -> Tensor:
        """Images (N, C, H, W) in [-1, 1] -> logits (N, 10) float32; softmax for probabilities."""
        return self.features_and_logits(images)[1]
