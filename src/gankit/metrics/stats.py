"""Streaming feature statistics and the Fréchet distance (FID).

features -> statistics -> number, as in stylegan2-ada-pytorch's ``metrics/``: a ``FeatureStats``
accumulates the mean and covariance of features batch by batch in float64 (so 50,000 samples never
sit in memory as images), optionally keeping the features themselves (for KID, precision/recall,
density/coverage, which need them) up to a cap.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


class FeatureStats:
    """Running sum and sum of outer products of feature vectors, in float64."""

    def __init__(self, dim: int, keep: int = 0) -> None:
        self.dim = dim
        self.n = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.outer = np.zeros((dim, dim), dtype=np.float64)
        self.keep = keep
        self._kept: list[np.ndarray] = []
        self._n_kept = 0

    def update(self, features: Tensor | np.ndarray) -> None:
        """Add a batch (B, dim)."""
        f = features.detach().to("cpu", torch.float64).numpy() if isinstance(features, Tensor) \
            else np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != self.dim:
            raise ValueError(f"expected features (B, {self.dim}), got {f.shape}")
        self.n += f.shape[0]
        self.sum += f.sum(0)
        self.outer += f.T @ f
        if self._n_kept < self.keep:
            take = f[: self.keep - self._n_kept].astype(np.float32)
            self._kept.append(take)
            self._n_kept += len(take)

    @property
    def mean(self) -> np.ndarray:
        return self.sum / self.n

    @property
    def cov(self) -> np.ndarray:
        """Unbiased sample covariance (n - 1), like numpy.cov and pytorch-fid."""
        mu = self.mean
        return (self.outer - self.n * np.outer(mu, mu)) / (self.n - 1)

    @property
    def features(self) -> np.ndarray:
        """The kept features (up to ``keep``), (n_kept, dim) float32."""
        return np.concatenate(self._kept) if self._kept else np.zeros((0, self.dim), np.float32)

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Everything needed to rebuild these statistics (for a safetensors cache)."""
        return {"n": np.array([self.n], np.int64), "sum": self.sum, "outer": self.outer,
                "kept": self.features}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], keep: int) -> FeatureStats:
        kept = np.asarray(arrays["kept"], np.float32)
        st = cls(kept.shape[1], keep)
        st.n, st.sum, st.outer = int(arrays["n"][0]), arrays["sum"], arrays["outer"]
        st._kept, st._n_kept = [kept], len(kept)
        return st


def sqrtm_psd(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix through its eigendecomposition
    (negative eigenvalues from round-off clipped to 0): stable where Newton-Schulz or a general
    ``sqrtm`` may return complex parts."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(C1 + C2 - 2 (C1 C2)^(1/2)) (Heusel et al. 2017, eq. 6; Dowson & Landau 1982).

    tr((C1 C2)^(1/2)) = tr((C1^(1/2) C2 C1^(1/2))^(1/2)): the inner matrix is symmetric PSD, so its
    root is the sum of the square roots of its eigenvalues, computed in float64.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    s1 = sqrtm_psd(cov1)
    inner = s1 @ cov2 @ s1
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_sqrt = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(cov1) + np.trace(cov2) - 2 * tr_sqrt)


def fid_from_stats(a: FeatureStats, b: FeatureStats) -> float:
    return frechet_distance(a.mean, a.cov, b.mean, b.cov)
