"""Inception-v3 pool features for FID (and logits for IS), compatible with pytorch-fid's weights.

Inception-v3 is the network of Szegedy et al. 2016, "Rethinking the Inception Architecture
for Computer Vision". The Frechet Inception Distance (Heusel et al. 2017, "GANs Trained by a
Two Time-Scale Update Rule Converge to a Local Nash Equilibrium") compares the mean and
covariance of the 2048-d ``pool_3`` activations of one particular network: the TensorFlow
graph ``inception-2015-12-05``. To get numbers comparable with the literature this module
builds the same PyTorch port of that graph that pytorch-fid builds (its
``fid_inception_v3()``: torchvision's ``Inception3`` with ``num_classes=1008``,
``aux_logits=False`` and the FID blocks FIDInceptionA / FIDInceptionC / FIDInceptionE_1 /
FIDInceptionE_2), written here on torch alone (no torchvision), so that it loads
pytorch-fid's weights file ``pt_inception-2015-12-05-6726825d.pth`` unchanged.

The weights are never downloaded. The user passes the file with ``--features inception:PATH``;
it is released at :data:`FID_WEIGHTS_URL` (``6726825d`` is the start of its SHA-256, the
torch.hub naming convention).

What the network is (differences from torchvision's ImageNet Inception-v3, all TF quirks):

* ``BasicConv2d`` = ``Conv2d(bias=False)`` -> ``BatchNorm2d(eps=0.001)`` -> ReLU.
* The average pools inside the A (Mixed_5b..5d), C (Mixed_6b..6e) and first E (Mixed_7b)
  blocks use ``count_include_pad=False`` (TF does not count padded zeros).
* The pool branch of the last E block (Mixed_7c) uses a 3x3 *max* pool, not an average pool.
* ``fc`` is the TF graph's 1008-way softmax head (1000 ImageNet classes + 8 unused).
* No auxiliary classifier: the state dict has no ``AuxLogits.*`` keys.

The state dict has 566 entries (94 BasicConv2d x 6: ``conv.weight``, ``bn.weight``,
``bn.bias``, ``bn.running_mean``, ``bn.running_var``, ``bn.num_batches_tracked``; plus
``fc.weight`` (1008, 2048) and ``fc.bias`` (1008,)) and 23,850,960 parameters (fc included:
2,065,392 of them), plus 34,432 BatchNorm running statistics.

Preprocessing (exactly what :meth:`InceptionFeatures.features` does; see :func:`preprocess`):
gankit images are float (N, C, H, W) in [-1, 1] with C in {1, 3}.

1. ``x = (x + 1) / 2`` -> [0, 1] (the range of pytorch-fid's ``ToTensor()`` images); no
   clamping, no quantisation to 8 bits (quantise beforehand if you want PNG-equivalent
   numbers).
2. Gray (C = 1) is replicated to 3 channels (as PIL's ``convert("RGB")`` does for pytorch-fid).
3. pytorch-fid's ``InceptionV3(resize_input=True, normalize_input=True)``:
   ``F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)`` (no
   antialiasing; applied even when the input is already 299 x 299, where it is the
   identity), then ``x = 2 * x - 1`` -> [-1, 1].

Features are the output of the final adaptive average pool (``pool3``), shape (N, 2048),
float32. Logits are ``fc(pool3)``, shape (N, 1008). An Inception Score computed from them is
only approximately comparable with the TF-Inception IS of Salimans et al. 2016: the original
TF code feeds images through the graph's own resize, and multiplies ``pool3`` by the
``softmax/logits/MatMul`` weight *without* the bias that ``fc`` here adds.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from gankit.errors import GankitError
from gankit.images import check_images

__all__ = [
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_URL",
    "FIDInceptionV3",
    "InceptionFeatures",
    "load_fid_inception",
    "preprocess",
]

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + FID_WEIGHTS_NAME
)
INPUT_SIZE = 299
POOL_DIM = 2048
NUM_CLASSES = 1008


# --------------------------------------------------------------------------------------------
# Network
# --------------------------------------------------------------------------------------------


class _BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm(eps=0.001) -> ReLU. Keys: ``conv.weight``, ``bn.*``."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False
        )
        self.bn = nn.BatchNorm2d(out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_3x3_tf(x: torch.Tensor) -> torch.Tensor:
    """3x3 stride-1 'same' average pool that ignores padded zeros, as TF does."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class _InceptionA(nn.Module):
    """35x35 block (Mixed_5b/5c/5d): out = 64 + 64 + 96 + pool_features channels."""

    def __init__(self, in_channels: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = _BasicConv2d(in_channels, 64, 1)

        self.branch5x5_1 = _BasicConv2d(in_channels, 48, 1)
        self.branch5x5_2 = _BasicConv2d(48, 64, 5, padding=2)

        self.branch3x3dbl_1 = _BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = _BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _BasicConv2d(96, 96, 3, padding=1)

        self.branch_pool = _BasicConv2d(in_channels, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_3x3_tf(x))
        return torch.cat([b1, b5, b3, bp], dim=1)


class _InceptionB(nn.Module):
    """Grid reduction 35 -> 17 (Mixed_6a): out = 384 + 96 + in_channels channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3 = _BasicConv2d(in_channels, 384, 3, stride=2)

        self.branch3x3dbl_1 = _BasicConv2d(in_channels, 64, 1)
        self.branch3x3dbl_2 = _BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = _BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], dim=1)


class _InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convs (Mixed_6b..6e): out = 4 x 192 = 768 channels."""

    def __init__(self, in_channels: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = _BasicConv2d(in_channels, 192, 1)

        self.branch7x7_1 = _BasicConv2d(in_channels, c7, 1)
        self.branch7x7_2 = _BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = _BasicConv2d(c7, 192, (7, 1), padding=(3, 0))

        self.branch7x7dbl_1 = _BasicConv2d(in_channels, c7, 1)
        self.branch7x7dbl_2 = _BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = _BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = _BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = _BasicConv2d(c7, 192, (1, 7), padding=(0, 3))

        self.branch_pool = _BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        bd = self.branch7x7dbl_3(self.branch7x7dbl_2(bd))
        bd = self.branch7x7dbl_5(self.branch7x7dbl_4(bd))
        bp = self.branch_pool(_avg_pool_3x3_tf(x))
        return torch.cat([b1, b7, bd, bp], dim=1)


class _InceptionD(nn.Module):
    """Grid reduction 17 -> 8 (Mixed_7a): out = 320 + 192 + in_channels channels."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.branch3x3_1 = _BasicConv2d(in_channels, 192, 1)
        self.branch3x3_2 = _BasicConv2d(192, 320, 3, stride=2)

        self.branch7x7x3_1 = _BasicConv2d(in_channels, 192, 1)
        self.branch7x7x3_2 = _BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = _BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = _BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_2(self.branch7x7x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(b7))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], dim=1)


class _InceptionE(nn.Module):
    """8x8 block with expanded filter banks (Mixed_7b, Mixed_7c): out = 2048 channels.

    ``pool="avg"`` is pytorch-fid's FIDInceptionE_1 (average pool without padded zeros),
    ``pool="max"`` its FIDInceptionE_2 (the TF graph's Mixed_7c uses a max pool here).
    """

    def __init__(self, in_channels: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = _BasicConv2d(in_channels, 320, 1)

        self.branch3x3_1 = _BasicConv2d(in_channels, 384, 1)
        self.branch3x3_2a = _BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = _BasicConv2d(384, 384, (3, 1), padding=(1, 0))

        self.branch3x3dbl_1 = _BasicConv2d(in_channels, 448, 1)
        self.branch3x3dbl_2 = _BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = _BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = _BasicConv2d(384, 384, (3, 1), padding=(1, 0))

        self.branch_pool = _BasicConv2d(in_channels, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b1 = self.branch1x1(x)  # 320
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], dim=1)  # 768
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], dim=1)  # 768
        if self.pool == "max":
            pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        else:
            pooled = _avg_pool_3x3_tf(x)
        bp = self.branch_pool(pooled)  # 192
        return torch.cat([b1, b3, bd, bp], dim=1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3 (TF ``inception-2015-12-05`` as ported by pytorch-fid).

    Submodule names follow torchvision's ``Inception3`` so that ``state_dict()`` has exactly
    the keys and shapes of ``pt_inception-2015-12-05-6726825d.pth``. :meth:`forward` expects
    already preprocessed input, (N, 3, 299, 299) in [-1, 1] (see :func:`preprocess`).
    """

    def __init__(self) -> None:
        super().__init__()
        # Registration order = torchvision's, so state_dict() lists keys in the file's order.
        self.Conv2d_1a_3x3 = _BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = _BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = _BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = _BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = _BasicConv2d(80, 192, 3)
        self.Mixed_5b = _InceptionA(192, pool_features=32)
        self.Mixed_5c = _InceptionA(256, pool_features=64)
        self.Mixed_5d = _InceptionA(288, pool_features=64)
        self.Mixed_6a = _InceptionB(288)
        self.Mixed_6b = _InceptionC(768, channels_7x7=128)
        self.Mixed_6c = _InceptionC(768, channels_7x7=160)
        self.Mixed_6d = _InceptionC(768, channels_7x7=160)
        self.Mixed_6e = _InceptionC(768, channels_7x7=192)
        self.Mixed_7a = _InceptionD(768)
        self.Mixed_7b = _InceptionE(1280, pool="avg")
        self.Mixed_7c = _InceptionE(2048, pool="max")
        self.fc = nn.Linear(POOL_DIM, NUM_CLASSES)

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 299, 299) in [-1, 1] -> (N, 2048) output of the final average pool."""
        x = self.Conv2d_1a_3x3(x)  # N x 32 x 149 x 149
        x = self.Conv2d_2a_3x3(x)  # N x 32 x 147 x 147
        x = self.Conv2d_2b_3x3(x)  # N x 64 x 147 x 147
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # N x 64 x 73 x 73
        x = self.Conv2d_3b_1x1(x)  # N x 80 x 73 x 73
        x = self.Conv2d_4a_3x3(x)  # N x 192 x 71 x 71
        x = F.max_pool2d(x, kernel_size=3, stride=2)  # N x 192 x 35 x 35
        x = self.Mixed_5b(x)  # N x 256 x 35 x 35
        x = self.Mixed_5c(x)  # N x 288 x 35 x 35
        x = self.Mixed_5d(x)  # N x 288 x 35 x 35
        x = self.Mixed_6a(x)  # N x 768 x 17 x 17
        x = self.Mixed_6b(x)  # N x 768 x 17 x 17
        x = self.Mixed_6c(x)  # N x 768 x 17 x 17
        x = self.Mixed_6d(x)  # N x 768 x 17 x 17
        x = self.Mixed_6e(x)  # N x 768 x 17 x 17
        x = self.Mixed_7a(x)  # N x 1280 x 8 x 8
        x = self.Mixed_7b(x)  # N x 2048 x 8 x 8
        x = self.Mixed_7c(x)  # N x 2048 x 8 x 8
        x = F.adaptive_avg_pool2d(x, (1, 1))  # N x 2048 x 1 x 1
        return torch.flatten(x, 1)  # N x 2048

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, 299, 299) in [-1, 1] -> (pool3 (N, 2048), logits (N, 1008)).

        Dropout (identity at inference) is left out: it has no weights.
        """
        pool = self.pool3(x)
        return pool, self.fc(pool)


# --------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------


def preprocess(images: torch.Tensor) -> torch.Tensor:
    """gankit images (N, C, H, W) in [-1, 1], C in {1, 3} -> network input (N, 3, 299, 299).

    Steps, in this order and in float32: ``(x + 1) / 2`` to [0, 1]; gray replicated to 3
    channels; ``F.interpolate(size=(299, 299), mode="bilinear", align_corners=False)``;
    ``2 * x - 1`` to [-1, 1]. The last two are pytorch-fid's ``InceptionV3`` with
    ``resize_input=True, normalize_input=True``. Values are not clamped.
    """
    check_images(images)
    x = (images.float() + 1.0) / 2.0  # N x C x H x W in [0, 1]
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)  # N x 3 x H x W
    x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
    return 2.0 * x - 1.0  # N x 3 x 299 x 299 in [-1, 1]


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _not_found_message(path: Path) -> str:
    what = "is a folder, not a file" if path.is_dir() else "were not found"
    return (
        f"Inception weights {what} at {path}. gankit never downloads them. Get pytorch-fid's "
        f"FID Inception weights, the file {FID_WEIGHTS_NAME} (the TF inception-2015-12-05 graph "
        f"ported to PyTorch; 6726825d in its name is the start of its SHA-256), from "
        f"{FID_WEIGHTS_URL} and name it as the feature extractor inception:PATH, e.g. "
        f"inception:/path/to/{FID_WEIGHTS_NAME}"
    )


def _short_list(keys: list[str], limit: int = 5) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys)} in all)" if len(keys) > limit else "")


def load_fid_inception(path: str | os.PathLike[str]) -> FIDInceptionV3:
    """Build :class:`FIDInceptionV3` from the weights file ``path`` (float32, on the CPU).

    Strict on every weight, bias and running statistic: any missing or unexpected key or
    wrong shape raises :class:`GankitError`. The network is first built on the meta device
    (no random initialisation to pay for), checked against the file, then materialised.

    The released file contains ``bn.num_batches_tracked`` entries (pytorch-fid issue #34 shows
    torch < 0.4.1 rejecting them as unexpected keys); a file without them is accepted too,
    the missing counters are filled with 0 (they are unused at inference).
    """
    path = Path(path)
    if not path.is_file():
        raise GankitError(_not_found_message(path))
    not_it = f"{path} is not the pytorch-fid FID Inception weights ({FID_WEIGHTS_NAME})"
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable / non-tensor pickle / truncated file
        raise GankitError(
            f"{not_it}: torch.load could not read it ({type(exc).__name__}: {exc}). "
            f"Get the file from {FID_WEIGHTS_URL}"
        ) from exc
    if not isinstance(loaded, Mapping):
        raise GankitError(
            f"{not_it}: it holds a {type(loaded).__name__}, not a state dict. "
            f"Get the file from {FID_WEIGHTS_URL}"
        )

    with torch.device("meta"):
        model = FIDInceptionV3()
    expected = model.state_dict()
    state = dict(loaded)
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)

    missing = [k for k in expected if k not in state]
    unexpected = [str(k) for k in state if k not in expected]
    mismatched = [
        f"{k} {tuple(state[k].shape) if isinstance(state[k], torch.Tensor) else '?'} "
        f"(expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state
        and (not isinstance(state[k], torch.Tensor) or tuple(state[k].shape) != tuple(v.shape))
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"missing keys: {_short_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_short_list(unexpected)}")
        if mismatched:
            parts.append(f"wrong shapes: {_short_list(mismatched)}")
        raise GankitError(f"{not_it}; {'; '.join(parts)}. Get the file from {FID_WEIGHTS_URL}")
    model = model.to_empty(device="cpu")  # uninitialised storage, every entry overwritten below
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:  # e.g. a dtype that cannot be copied
        raise GankitError(f"{not_it}: {exc}") from exc
    return model


# --------------------------------------------------------------------------------------------
# Feature extractor
# --------------------------------------------------------------------------------------------


class InceptionFeatures:
    """``inception:PATH`` feature extractor: FID Inception-v3 pool3 features and logits.

    Protocol: ``name``, ``dim`` (2048), ``num_classes`` (1008), ``classes`` (None: the 1008
    TF class names are not shipped); ``features``, ``logits``, ``features_and_logits``. Each
    method takes gankit images (N, C, H, W) in [-1, 1] (any device), runs under
    ``torch.inference_mode()`` in batches of ``batch_size`` on ``device``, preprocesses
    exactly as :func:`preprocess` documents, and returns float32 CPU tensors.
    """

    name = "inception"
    dim = POOL_DIM
    num_classes = NUM_CLASSES
    classes: list[str] | None = None

    def __init__(
        self,
        path: str | os.PathLike[str],
        device: str | torch.device = "cpu",
        batch_size: int = 50,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise GankitError(_not_found_message(self.path))
        self.device = torch.device(device)
        self.batch_size = batch_size
        model = load_fid_inception(self.path)
        self.model = model.to(self.device).eval().requires_grad_(False)

    def __repr__(self) -> str:
        return f"InceptionFeatures(path={str(self.path)!r}, device={str(self.device)!r})"

    def _run(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, C, H, W) in [-1, 1] -> ((N, 2048), (N, 1008)) float32 on the CPU."""
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"expected a torch.Tensor, got {type(images).__name__}")
        pools: list[torch.Tensor] = []
        logits: list[torch.Tensor] = []
        with torch.inference_mode():
            preprocess(images[:0])  # validate shape and dtype even for an empty batch
            for start in range(0, images.shape[0], self.batch_size):
                chunk = images[start : start + self.batch_size].to(self.device)
                pool, logit = self.model(preprocess(chunk))
                pools.append(pool.float().cpu())
                logits.append(logit.float().cpu())
        if not pools:
            return torch.zeros(0, self.dim), torch.zeros(0, self.num_classes)
        return torch.cat(pools), torch.cat(logits)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> pool3 features (N, 2048) float32."""
        return self._run(images)[0]

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, C, H, W) in [-1, 1] -> fc logits (N, 1008) float32 (1008-way TF head)."""
        return self._run(images)[1]

    def features_and_logits(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, C, H, W) in [-1, 1] -> (features (N, 2048), logits (N, 1008)), one pass."""
        return self._run(images)
