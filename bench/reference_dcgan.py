"""The widely used reference DCGAN training pattern, timed against the same convolution peak as
``bench/train_speed.py``: how far is a plain PyTorch loop from this CPU's limit, and gankit?

Usage:  source scripts/env.sh; python bench/reference_dcgan.py [--seconds 8] [--batch 64] [--width 64]

The loop is the well-known DCGAN example's pattern, written out here (no download): NCHW tensors,
a Sigmoid at D's end and ``BCELoss``, torch's default Adam (lr 2e-4, betas 0.5 / 0.999), D(x) and
D(G(z).detach()) backpropagated separately, then G's step through D(G(z)) with D's weights still
requiring gradients (computed and thrown away), ``.item()`` on the three numbers it prints each
iteration. The 32 px, 1-channel architecture is the same as gankit's ``dcgan32`` case at the same
width; the batches are ready tensors in memory, so only the training step is compared.
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from train_speed import conv_peak_flops  # type: ignore[import-not-found]


def reference_pair(nz: int, w: int, nc: int = 1) -> tuple[nn.Module, nn.Module]:
    """G: z (B, nz, 1, 1) -> (B, nc, 32, 32); D: -> (B, 1, 1, 1) probabilities."""
    G = nn.Sequential(
        nn.ConvTranspose2d(nz, w * 4, 4, 1, 0, bias=False), nn.BatchNorm2d(w * 4), nn.ReLU(True),
        nn.ConvTranspose2d(w * 4, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.ReLU(True),
        nn.ConvTranspose2d(w * 2, w, 4, 2, 1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
        nn.ConvTranspose2d(w, nc, 4, 2, 1, bias=False), nn.Tanh())
    D = nn.Sequential(
        nn.Conv2d(nc, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True),
        nn.Conv2d(w, w * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 2), nn.LeakyReLU(0.2, True),
        nn.Conv2d(w * 2, w * 4, 4, 2, 1, bias=False), nn.BatchNorm2d(w * 4), nn.LeakyReLU(0.2, True),
        nn.Conv2d(w * 4, 1, 4, 1, 0, bias=False), nn.Sigmoid())
    return G, D


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--width", type=int, default=64)
    a = p.parse_args()
    torch.manual_seed(0)
    nz, b = 100, a.batch
    G, D = reference_pair(nz, a.width)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCELoss()
    reals = torch.rand(16, b, 1, 32, 32) * 2 - 1  # ready batches: the step alone is timed
    ones, zeros = torch.ones(b), torch.zeros(b)

    def iteration(i: int) -> None:
        real = reals[i % len(reals)]
        D.zero_grad()
        err_real = bce(D(real).view(-1), ones)
        err_real.backward()
        fake = G(torch.randn(b, nz, 1, 1))
        err_fake = bce(D(fake.detach()).view(-1), zeros)
        err_fake.backward()
        opt_D.step()
        G.zero_grad()
        err_g = bce(D(fake).view(-1), ones)
        err_g.backward()
        opt_G.step()
        _ = (err_real + err_fake).item(), err_g.item()  # the numbers it prints every iteration

    with FlopCounterMode(display=False) as fc:
        iteration(0)
    flops = fc.get_total_flops()
    for i in range(2):
        iteration(i)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < a.seconds:
        iteration(n)
        n += 1
    dt = (time.perf_counter() - t0) / n
    peak = conv_peak_flops()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, reference DCGAN pattern, "
          f"32 px, width {a.width}, batch {b}")
    print(f"img/s {b / dt:.0f}  s/it {dt:.4f}  GFLOP/it {flops / 1e9:.2f}  GFLOP/s {flops / dt / 1e9:.1f}  "
          f"conv peak {peak / 1e9:.1f}  ratio {flops / dt / peak:.2f}")


if __name__ == "__main__":
    main()
