"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", section 4).

The squared MMD between the two feature distributions under the cubic polynomial kernel
k(x, y) = (x.y / d + 1)^3, estimated without bias on subsets and averaged over them; the spread
over subsets is reported as its standard deviation (as torch-fidelity and clean-fid do).
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2: off-diagonal means of k(x, x') and k(y, y'), minus twice the mean of k(x, y)."""
    m, n = len(x), len(y)
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sxx = (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
    syy = (kyy.sum() - np.trace(kyy)) / (n * (n - 1))
    return float(sxx + syy - 2 * kxy.mean())


def kid(real: np.ndarray, fake: np.ndarray, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of each set."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    size = min(subset_size, len(real), len(fake))
    if size < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    rng = np.random.default_rng(seed)
    vals = [
        mmd2_unbiased(real[rng.choice(len(real), size, replace=False)],
                      fake[rng.choice(len(fake), size, replace=False)])
        for _ in range(subsets)
    ]
    return float(np.mean(vals)), float(np.std(vals))
