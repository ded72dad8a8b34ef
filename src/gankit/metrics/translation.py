"""Scores of image translation: how close G(A) is to the true B, and whether it is the right thing.

Paired tasks (pix2pix) know the true B of every input, so the output is compared with it pixel by
pixel: L1 (mean absolute error), PSNR and SSIM (Wang et al. 2004, "Image quality assessment: from
error visibility to structural similarity"), all on pixels in [0, 1]. Unpaired tasks (CycleGAN)
have no true B; they are scored by what a classifier makes of the translation (is G_AB(A) of B's
class?) and by the cycle reconstruction error ||G_BA(G_AB(A)) - A||_1 (Zhu et al. 2017, eq. 2).
For the built-in Fashion-MNIST tasks the classifier is gankit's shipped ``fmnist`` network.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gankit.data.base import to_float
from gankit.data.paired import PairedData, UnpairedData
from gankit.errors import GankitError
from gankit.nn_util import apply_in_batches

PSNR_CAP = 100.0  # dB: identical images have an infinite PSNR; averaged, they count as this
SSIM_WINDOW, SSIM_SIGMA = 11, 1.5  # Wang et al. 2004: an 11x11 circular-symmetric Gaussian, sigma 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03  # their constants: C1 = (K1 L)^2, C2 = (K2 L)^2, L = 1 (the range)


# Which way is better for each score ``score_translation`` gives (``eval.eval_metric`` during
# training keeps the best checkpoint by one of them).
HIGHER_IS_BETTER = {"l1": False, "psnr": True, "ssim": True, "class_acc": True, "class_acc_real": True,
                    "target_acc_AtoB": True, "target_acc_BtoA": True, "source_acc_A": True,
                    "cycle_l1_A": False, "cycle_l1_B": False,
                    # fashion2emoji (any unpaired translator): the emoji classifier's verdict and FID in
                    # its features; the DTN's own f-constancy error
                    "class_agreement": True, "fid_emoji": False, "f_const": False}


def higher_is_better(key: str) -> bool:
    """Direction of a translation score (``psnr`` up, ``l1`` down)."""
    if key not in HIGHER_IS_BETTER:
        raise GankitError(f"{key!r} is not a translation score; one of: "
                          f"{', '.join(HIGHER_IS_BETTER)}")
    return HIGHER_IS_BETTER[key]


def _unit(x: Tensor) -> Tensor:
    """gankit images in [-1, 1] -> float64 pixels in [0, 1]."""
    return (x.double() + 1) / 2


def l1_error(x: Tensor, y: Tensor) -> Tensor:
    """Per image (N,): mean |x - y| over pixels in [0, 1]; x, y (N, C, H, W) in [-1, 1]."""
    return (_unit(x) - _unit(y)).abs().flatten(1).mean(1)


def psnr(x: Tensor, y: Tensor, cap: float = PSNR_CAP) -> Tensor:
    """Per image (N,): 10 log10(1 / MSE) in dB for pixels in [0, 1] (peak 1); identical images give
    ``cap`` instead of infinity, so a mean stays finite. x, y (N, C, H, W) in [-1, 1]."""
    mse = (_unit(x) - _unit(y)).square().flatten(1).mean(1)
    out = 10 * torch.log10(1 / mse)
    return out.clamp(max=cap)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> Tensor:
    """The normalised (size, size) Gaussian weights, float64, summing to 1."""
    r = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-r.square() / (2 * sigma**2))
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: Tensor, y: Tensor) -> Tensor:
    """Per image (N,): the mean SSIM map of Wang et al. 2004 (eq. 13) on pixels in [0, 1]:

        SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2))

    with local statistics under an 11x11 Gaussian window (sigma 1.5), computed only where the window
    fits inside the image (their reference code's 'valid'), per channel, then averaged over the map
    and the channels. x, y (N, C, H, W) in [-1, 1]; sides of at least 11 pixels."""
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise GankitError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got "
                          f"{x.shape[-2]}x{x.shape[-1]}")
    a, b = _unit(x), _unit(y)
    c = a.shape[1]
    w = gaussian_window().to(a.device).expand(c, 1, SSIM_WINDOW, SSIM_WINDOW)

    def local(t: Tensor) -> Tensor:  # Gaussian-weighted local mean, per channel: (N, C, H-10, W-10)
        return F.conv2d(t, w, groups=c)

    mu_a, mu_b = local(a), local(b)
    var_a = local(a * a) - mu_a.square()
    var_b = local(b * b) - mu_b.square()
    cov = local(a * b) - mu_a * mu_b
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    m = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.square() + mu_b.square() + c1) * (var_a + var_b + c2))
    return m.flatten(1).mean(1)


@dataclass
class TranslationScores:
    """What ``score_translation`` measured: on ``n`` held-out inputs translated A -> B, and (a
    CycleGAN's) ``n_BtoA`` the other way; the two differ where the domains' test sets do."""

    values: dict[str, float]
    n: int
    split: str
    seconds: float
    notes: list[str] = field(default_factory=list)
    n_BtoA: int | None = None


def _classify(images: Tensor, device: torch.device | str) -> Tensor:
    """The fmnist classifier's class (N,) of images (N, C, H, W) in [-1, 1]."""
    from gankit.metrics.fmnist_classifier import FMNISTFeatures

    return FMNISTFeatures(device).logits(images).argmax(1)


def _fmnist_index(name: str) -> int | None:
    from gankit.data.fashion_mnist import CLASSES

    return CLASSES.index(name) if name in CLASSES else None


class _FConst(nn.Module):
    """A DTN's per-input f-constancy error as a module (so it runs in eval mode, in batches)."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, x: Tensor) -> Tensor:
        return self.G.f_constancy(x)  # type: ignore[operator]


def emoji_scores(fake: Tensor, labels: Tensor, real: Tensor, device: torch.device | str = "cpu") -> dict[str, float]:
    """Pictures -> emoji, judged by gankit's emoji classifier (``gankit.metrics.emoji_classifier``):
    ``class_agreement``, how often it gives the translation G(x) (N, C, H, W) the class ``labels``
    (N,) of x (the DTN paper's measure, Taigman et al. 2017, section 5.1), and ``fid_emoji``, the
    Frechet distance (Heusel et al. 2017) between the translations and held-out emoji ``real`` in
    its 128-d features."""
    from gankit.metrics.emoji_classifier import emoji_features_and_logits
    from gankit.metrics.stats import FeatureStats, fid_from_stats

    f_fake, logits = emoji_features_and_logits(fake, device)
    out = {"class_agreement": float((logits.argmax(1) == labels.cpu()).double().mean())}
    if len(fake) >= 2 and len(real) >= 2:
        f_real = emoji_features_and_logits(real, device)[0]
        a, b = FeatureStats(f_fake.shape[1]), FeatureStats(f_real.shape[1])
        a.update(f_fake)
        b.update(f_real)
        out["fid_emoji"] = fid_from_stats(a, b)
    return out


def score_translation(generators: Mapping[str, nn.Module | None], data: PairedData | UnpairedData,
                      n: int = 10_000, device: torch.device | str = "cpu", batch_size: int = 256,
                      split: str = "test") -> TranslationScores:
    """Score translators on held-out data: ``generators`` {"AtoB": G_AB, "BtoA": G_BA or None}, on
    at most ``n`` inputs per direction of ``data`` (whose ``split`` is recorded in the result).

    Paired data: ``l1``, ``psnr``, ``ssim`` of G_AB(A) against the true B; with labels (the built-in
    Fashion-MNIST tasks) also ``class_acc`` (the classifier gives G_AB(A) the input's class) and, for
    reference, ``class_acc_real`` (the same for the true B). Unpaired data (both generators needed):
    ``target_acc_AtoB`` (G_AB(A) is classified as B's class), ``target_acc_BtoA`` and
    ``source_acc_A`` where the domains are Fashion-MNIST classes, and the cycle errors
    ``cycle_l1_A`` = L1(G_BA(G_AB(A)), A) and ``cycle_l1_B``. Pictures -> emoji (``fashion2emoji``,
    any unpaired translator, G_BA optional): ``class_agreement`` and ``fid_emoji`` (``emoji_scores``);
    a DTN's G adds ``f_const``, the mean of (f(x) - f(G(x)))^2 over inputs and features."""
    if n < 1:
        raise GankitError(f"n (inputs to translate) must be at least 1, got {n}")
    t0 = time.perf_counter()
    values: dict[str, float] = {}

    def run(G: nn.Module, x: Tensor) -> Tensor:
        return apply_in_batches(G, x.to(device), batch_size).cpu()

    G_AB, G_BA = generators.get("AtoB"), generators.get("BtoA")
    if G_AB is None:
        raise GankitError("score_translation needs the AtoB generator")
    A, B = to_float(data.A[:n]), to_float(data.B[:n])
    if isinstance(data, PairedData):
        fake_B = run(G_AB, A)
        values["l1"] = float(l1_error(fake_B, B).mean())
        values["psnr"] = float(psnr(fake_B, B).mean())
        if min(B.shape[-2:]) >= SSIM_WINDOW:
            values["ssim"] = float(ssim(fake_B, B).mean())
        if data.labels is not None:
            labels = data.labels[:n]
            values["class_acc"] = float((_classify(fake_B, device) == labels).double().mean())
            values["class_acc_real"] = float((_classify(B, device) == labels).double().mean())
    else:
        fake_B = run(G_AB, A)
        if data.target_classifier == "emoji" and data.labels_A is not None:
            values.update(emoji_scores(fake_B, data.labels_A[:n], B, device))
        f_constancy = getattr(G_AB, "f_constancy", None)  # a DTN's G = g o f: how well f(G(x)) keeps f(x)
        if callable(f_constancy):
            values["f_const"] = float(apply_in_batches(_FConst(G_AB), A.to(device), batch_size).double().mean())
        if G_BA is not None:
            fake_A = run(G_BA, B)
            rec_A, rec_B = run(G_BA, fake_B), run(G_AB, fake_A)
            index = [_fmnist_index(c) for c in data.classes]
            if None not in index:
                values["target_acc_AtoB"] = float((_classify(fake_B, device) == index[1]).double().mean())
                values["target_acc_BtoA"] = float((_classify(fake_A, device) == index[0]).double().mean())
                values["source_acc_A"] = float((_classify(A, device) == index[0]).double().mean())
            values["cycle_l1_A"] = float(l1_error(rec_A, A).mean())
            values["cycle_l1_B"] = float(l1_error(rec_B, B).mean())
        elif not values:
            raise GankitError("unpaired data are scored in both directions: give the BtoA generator "
                              "too (a cyclegan's)")
    for k, v in values.items():
        if not math.isfinite(v):
            raise GankitError(f"the translation score {k} is {v}: the generator's outputs are not finite")
    n_BtoA = len(B) if G_BA is not None and not isinstance(data, PairedData) else None
    return TranslationScores(values, len(A), split, time.perf_counter() - t0, n_BtoA=n_BtoA)


__all__ = ["HIGHER_IS_BETTER", "PSNR_CAP", "TranslationScores", "gaussian_window", "higher_is_better", "l1_error",
           "psnr", "score_translation", "ssim"]
