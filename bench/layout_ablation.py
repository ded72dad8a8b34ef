"""A first look at two of PyTorch's CPU levers for the DCGAN step: channels-last memory layout
and fused Adam. Not yet applied in the trainer; the numbers feed that decision.

Usage:  source scripts/env.sh; python bench/layout_ablation.py MODE SIZE BATCH
        MODE: base | cl | fused | cl+fused      (prints seconds per iteration over 8 s)
"""

from __future__ import annotations

import sys
import time

import torch

from gankit.config import build_config
from gankit.data import BatchOrder, load_data
from gankit.resolve import resolve
from gankit.train.state import TrainState
from gankit.train.step import d_step, g_step


def main() -> None:
    mode, size, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    cfg = resolve(build_config(overrides={"model": "dcgan", "image_size": str(size), "batch_size": batch,
                                  "precision": "fp32"}))
    data = load_data(cfg.data)
    s = TrainState.create(cfg, data.shape, torch.device("cpu"))
    if "cl" in mode:
        s.G.to(memory_format=torch.channels_last)
        s.D.to(memory_format=torch.channels_last)
    if "fused" in mode:
        t = cfg.train
        s.opt_G = torch.optim.Adam(s.G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2), fused=True)
        s.opt_D = torch.optim.Adam(s.D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2), fused=True)
    order = BatchOrder(len(data), batch, 0)

    def iteration(i: int) -> None:
        real = data.batch(order.indices(i))
        if "cl" in mode:
            real = real.contiguous(memory_format=torch.channels_last)
        d_step(s, real)
        g_step(s, batch)

    for i in range(3):
        iteration(i)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < 8:
        iteration(3 + n)
        n += 1
    print(mode, size, batch, round((time.perf_counter() - t0) / n, 4), "s/it")


if __name__ == "__main__":
    main()
