"""Training speed of gankit's own loop: img/s, s/iteration and peak memory.

Usage:  python bench/train_speed.py [--steps 50] [--warmup 5] [--threads N]

Each case runs in a fresh process (so peak RSS is its own) through the same ``d_step``/``g_step``
the trainer uses, on Fashion-MNIST held in memory, K = 1, batch 64. Run it through ./scripts/env.sh
(jemalloc) for the numbers in docs/BENCHMARKS.md:  source scripts/env.sh; python bench/train_speed.py
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = [  # (name, model, image size, batch size)
    ("mlp 28px", "mlp", 28, 64),
    ("dcgan 32px", "dcgan", 32, 64),
]


def run_case(model: str, size: int, batch: int, steps: int, warmup: int) -> dict[str, float]:
    import torch

    from gankit.config import build_config
    from gankit.data import BatchOrder, load_data
    from gankit.train.state import TrainState
    from gankit.train.step import d_step, g_step

    cfg = build_config(overrides={"model": model, "image_size": str(size), "batch_size": batch})
    data = load_data(cfg.data)
    s = TrainState.create(cfg, data.shape, torch.device("cpu"))
    order = BatchOrder(len(data), batch, 0)
    t_data = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t0, t_data = time.perf_counter(), 0.0
        td = time.perf_counter()
        real = data.batch(order.indices(i))
        t_data += time.perf_counter() - td
        d_step(s, real)
        g_step(s, batch)
    dt = time.perf_counter() - t0
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"img_per_s": batch * steps / dt, "s_per_it": dt / steps, "data_share": t_data / dt,
            "peak_rss_mb": peak_mb}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    a = p.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.case:
        name, model, size, batch = next(c for c in CASES if c[0] == a.case)
        print(json.dumps(run_case(model, size, batch, a.steps, a.warmup)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '') or '(none)'}")
    print(f"{'case':<12} {'batch':>5} {'img/s':>8} {'s/it':>8} {'data %':>7} {'peak RSS MB':>12}")
    for name, _, _, batch in CASES:
        out = subprocess.run([sys.executable, __file__, "--case", name, "--steps", str(a.steps),
                              "--warmup", str(a.warmup), "--threads", str(a.threads)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{name:<12} {batch:>5} {r['img_per_s']:>8.0f} {r['s_per_it']:>8.4f} "
              f"{100 * r['data_share']:>6.1f}% {r['peak_rss_mb']:>12.0f}")


if __name__ == "__main__":
    main()
