"""Scores computed from a classifier's outputs: Inception Score, class coverage, and the
mode counts of the mode-collapse literature (2-D mixtures and stacked Fashion-MNIST)."""

from __future__ import annotations

import math

import numpy as np


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over ``splits`` splits: (mean, std) (Salimans et al. 2016)."""
    p = np.asarray(probs, np.float64)
    scores = []
    for part in np.array_split(p, splits):
        py = part.mean(0, keepdims=True)
        kl = (part * (np.log(part + 1e-12) - np.log(py + 1e-12))).sum(1).mean()
        scores.append(math.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def kl_divergence(p: np.ndarray, q: np.ndarray, eps: float = 1e-10) -> float:
    """KL(p || q) of two histograms (normalised here); eps keeps empty bins of q finite."""
    p = np.asarray(p, np.float64) / np.sum(p)
    q = np.asarray(q, np.float64) / np.sum(q)
    mask = p > 0
    q = np.where(q > 0, q, eps)
    return float((p[mask] * (np.log(p[mask]) - np.log(q[mask]))).sum())


def class_coverage(fake_pred: np.ndarray, real_pred: np.ndarray, num_classes: int) -> tuple[int, float]:
    """(classes hit, KL(fake class histogram || real class histogram)): a class is hit when at least
    one generated sample is classified into it. Both histograms come from the same classifier, so
    its errors affect them alike."""
    hf = np.bincount(fake_pred, minlength=num_classes)
    hr = np.bincount(real_pred, minlength=num_classes)
    return int((hf > 0).sum()), kl_divergence(hf, hr)


def modes_2d(points: np.ndarray, centers: np.ndarray, std: float) -> tuple[int, float]:
    """The 2-D mixture protocol of VEEGAN (Srivastava et al. 2017, section 5.1; also Unrolled GAN,
    Metz et al. 2017, and GDPP): a sample is high quality when it lies within 3 standard deviations
    of its nearest mode centre; a mode is captured when at least one high-quality sample is nearest
    to it. Returns (modes captured, share of high-quality samples). The papers use 2,500 samples."""
    d = np.linalg.norm(points[:, None, :] - centers[None, :, :], axis=2)
    nearest, dist = d.argmin(1), d.min(1)
    hq = dist <= 3 * std
    return int(len(np.unique(nearest[hq]))), float(hq.mean())


def stacked_modes(channel_preds: np.ndarray, num_classes: int = 10) -> tuple[int, float]:
    """Stacked MNIST's protocol (VEEGAN section 5.2; PacGAN, Lin et al. 2018) on Fashion-MNIST:
    each of the 3 channels is classified, giving one of 10^3 = 1000 modes. Returns (modes captured,
    KL(mode histogram || uniform over 1000)). The papers use 26,000 samples."""
    c = np.asarray(channel_preds)
    mode = c[:, 0] * num_classes**2 + c[:, 1] * num_classes + c[:, 2]
    hist = np.bincount(mode, minlength=num_classes**3)
    return int((hist > 0).sum()), kl_divergence(hist, np.ones(num_classes**3))
