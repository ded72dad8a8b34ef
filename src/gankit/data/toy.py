"""The standard 2-D mode-collapse sets (a mixture of Gaussians whose modes can be counted).

Following the protocol of VEEGAN (Srivastava et al. 2017, arXiv 1705.07761, section 5.1) and
Unrolled GAN (Metz et al. 2017): ``ring`` is 8 Gaussians with std 0.01 at 8 *distinct* angles on a
circle of radius 1 (the released VEEGAN code's ``linspace(0, 2*pi, 8)`` repeats a centre; this does
not), ``grid`` is 25 Gaussians with std 0.05 at {-4, -2, 0, 2, 4}^2.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gankit.data.base import DataTraits, InMemoryData, ModeMixture

N_POINTS = 65_536  # a fixed sample of the mixture; far more than any model can memorise per mode


def ring_centers(n_modes: int = 8, radius: float = 1.0) -> Tensor:
    """(8, 2) centres at angles 2*pi*k/8, k = 0..7 (distinct: the endpoint is excluded)."""
    angles = torch.arange(n_modes, dtype=torch.float64) * (2 * math.pi / n_modes)
    return torch.stack([radius * torch.cos(angles), radius * torch.sin(angles)], 1).float()


def grid_centers() -> Tensor:
    """(25, 2) centres at {-4, -2, 0, 2, 4}^2."""
    v = torch.tensor([-4.0, -2.0, 0.0, 2.0, 4.0])
    return torch.cartesian_prod(v, v)


RING_STD, GRID_STD = 0.01, 0.05
# What the mode counters (gankit.metrics, gankit.diagnosis) know of each set
RING = DataTraits(modes=ModeMixture(ring_centers(), RING_STD))
GRID = DataTraits(modes=ModeMixture(grid_centers(), GRID_STD))


def _mixture(centers: Tensor, std: float, n: int, seed: int) -> tuple[Tensor, Tensor]:
    g = torch.Generator().manual_seed(seed)
    mode = torch.randint(len(centers), (n,), generator=g)
    points = centers[mode] + std * torch.randn(n, 2, generator=g)
    return points, mode


def ring(seed: int = 0) -> InMemoryData:
    points, mode = _mixture(ring_centers(), RING_STD, N_POINTS, seed)
    return InMemoryData(
        points, "ring", labels=mode, classes=[f"mode {k}" for k in range(8)],
        notes=["ring: 8 Gaussians (std 0.01) on a circle of radius 1"],
        extent=(-1.5, 1.5, -1.5, 1.5), traits=RING,
    )


def grid(seed: int = 0) -> InMemoryData:
    points, mode = _mixture(grid_centers(), GRID_STD, N_POINTS, seed)
    return InMemoryData(
        points, "grid", labels=mode, classes=[f"mode {k}" for k in range(25)],
        notes=["grid: 25 Gaussians (std 0.05) at {-4, -2, 0, 2, 4}^2"],
        extent=(-5.5, 5.5, -5.5, 5.5), traits=GRID,
    )

