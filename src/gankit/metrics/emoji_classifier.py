"""gankit's clothing-emoji classifier: the judge of pictures -> emoji translation.

The Domain Transfer Network (Taigman, Polyak & Wolf 2017) is scored, as its paper scores
SVHN -> MNIST, by whether a classifier of the *target* domain gives G(x) the class of x. For
``fashion2emoji`` that classifier reads emoji: this small CNN is trained on the augmented emoji of
``gankit.data.emoji`` (every installed style, fresh augmentations each epoch, plus blur, noise and
gray copies so that generated images, which are never as crisp as a rendered glyph, are read by
shape and colour rather than by sharp edges). It is trained by ``bench/train_emoji_classifier.py``
(fixed seed, fixed data) and its weights, ``weights/emoji_cnn.safetensors`` beside this file
(safetensors, never pickle), are part of the package, as the fmnist classifier's are. Its
penultimate features are also where ``fid_emoji`` compares G(x) with held-out emoji (FID, Heusel
et al. 2017, in this classifier's features instead of Inception's).

The network (:class:`EmojiClassifier`), 32 x 32 x 3 in::

    conv 3x3, 3 -> 32,   BN, ReLU, max-pool 2  -> 32 x 16 x 16
    conv 3x3, 32 -> 64,  BN, ReLU, max-pool 2  -> 64 x 8 x 8
    conv 3x3, 64 -> 128, BN, ReLU, max-pool 2  -> 128 x 4 x 4
    flatten, linear 2048 -> 128, ReLU          -> the 128-d features
    dropout 0.3 (training only), linear 128 -> 10

Input (:func:`prepare`): float images (N, C, H, W) in [-1, 1], C = 1 (copied to RGB) or 3, any
size (resized to 32 x 32, bilinear with antialiasing).
"""

from __future__ import annotations

import functools
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.images import check_images
from gankit.metrics.shipped import load_shipped, shipped_metadata

WEIGHTS = Path(__file__).parent / "weights" / "emoji_cnn.safetensors"
FEATURE_DIM = 128
NUM_CLASSES = 10
INPUT_SIZE = 32
BATCH_SIZE = 1000
REBUILD = "python bench/train_emoji_classifier.py"


def prepare(images: Tensor) -> Tensor:
    """gankit images (N, C, H, W) in [-1, 1], C in {1, 3} -> (N, 3, 32, 32) float32: gray copied
    to the three channels, other sizes resized (bilinear, antialiased). Values are not clamped."""
    check_images(images)
    x = images.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False)
    return x.contiguous()


def _block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True), nn.MaxPool2d(2))


class EmojiClassifier(nn.Module):
    """A compact CNN for 32 x 32 clothing emoji: three conv blocks, a 128-d layer, 10 logits."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Sequential(_block(3, 32), _block(32, 64), _block(64, 128))
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(128 * 4 * 4, FEATURE_DIM), nn.ReLU())
        self.dropout = nn.Dropout(0.3)
        self.head = nn.Linear(FEATURE_DIM, NUM_CLASSES)

    def features_and_logits(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.fc(self.conv(prepare(x)))
        return h, self.head(self.dropout(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.features_and_logits(x)[1]


def _missing_message(path: Path) -> str:
    return (f"the emoji classifier's weights are missing: no {path}. They ship with gankit; rebuild them from "
            f"a source checkout with `{REBUILD}` (needs the emoji packages: apt-get install "
            "fonts-noto-color-emoji fonts-symbola ruby-gemojione libjs-emojify), or reinstall gankit")


@functools.cache
def _load(device: str) -> EmojiClassifier:
    return load_shipped(WEIGHTS, EmojiClassifier, REBUILD, _missing_message(WEIGHTS), device)


def load_emoji_classifier(device: str | torch.device = "cpu") -> EmojiClassifier:
    """The trained classifier on ``device``, eval mode, no gradients; cached and shared (do not train it)."""
    return _load(str(torch.device(device)))


def weights_metadata() -> dict[str, str]:
    """The metadata stored with the weights: held-out accuracy, render version, seed, command, ..."""
    return shipped_metadata(WEIGHTS, _missing_message(WEIGHTS))


def emoji_features_and_logits(images: Tensor, device: torch.device | str = "cpu") -> tuple[Tensor, Tensor]:
    """Images (N, C, H, W) in [-1, 1] -> (features (N, 128), logits (N, 10)) as float32 CPU tensors,
    in batches of at most 1000 under ``torch.inference_mode()``."""
    model = load_emoji_classifier(device)
    feats, logits = [], []
    with torch.inference_mode():
        prepare(images[:0])
        for i in range(0, images.shape[0], BATCH_SIZE):
            f, z = model.features_and_logits(images[i:i + BATCH_SIZE].to(device))
            feats.append(f.float().cpu())
            logits.append(z.float().cpu())
    if not feats:
        return torch.zeros(0, FEATURE_DIM), torch.zeros(0, NUM_CLASSES)
    return torch.cat(feats), torch.cat(logits)


__all__ = ["FEATURE_DIM", "NUM_CLASSES", "WEIGHTS", "EmojiClassifier", "emoji_features_and_logits",
           "load_emoji_classifier", "prepare", "weights_metadata"]
