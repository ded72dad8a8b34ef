"""DCGAN's first and last layers: oneDNN's convolution path against the matrix products gankit
runs them as (``models.dcgan.Project`` and ``Readout``), forward + backward at batch 64.

Usage:  source scripts/env.sh; python bench/dcgan_ends.py [--batch 64]

G's first layer is a transposed convolution of a 1x1 input (z) with a 4x4 kernel; D's last is a
convolution whose 4x4 kernel covers the whole 4x4 map. Both do little arithmetic (0.1 GFLOP and
0.001 GFLOP) but went through the general convolution code, which is slow at these shapes.
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from gankit.models.dcgan import Project, Readout


def per_call_ms(f, n: int = 300) -> float:  # type: ignore[no-untyped-def]
    for _ in range(10):
        f()
    t0 = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    b = p.parse_args().batch
    torch.manual_seed(0)
    proj = Project(100, 256, (4, 4), 1, 0, bias=False)
    z = torch.randn(b, 100)
    conv_g = per_call_ms(lambda: F.conv_transpose2d(z[:, :, None, None], proj.weight).sum().backward())
    mm_g = per_call_ms(lambda: proj(z).sum().backward())
    read = Readout(256, 1, (4, 4), 1, 0, bias=False)
    x = torch.randn(b, 256, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    conv_d = per_call_ms(lambda: F.conv2d(x, read.weight).sum().backward())
    mm_d = per_call_ms(lambda: read(x).sum().backward())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {b}, forward + backward")
    print(f"G's first layer (z -> 256x4x4): convolution {conv_g:.2f} ms, matrix product {mm_g:.2f} ms")
    print(f"D's last layer (256x4x4 -> 1):  convolution {conv_d:.2f} ms, matrix product {mm_d:.2f} ms")


if __name__ == "__main__":
    main()
