"""Stacked Fashion-MNIST mode count (VEEGAN, Srivastava et al. 2017, Table 2; PacGAN, Lin et al. 2018).

Usage:  python bench/stacked_modes.py [--steps 5000] [--recipes plain best] [--seeds 1] [--threads 2]
                [--max-time SECONDS] [--precision fp32] [--set KEY=VALUE ...] [--tag NAME]

``--max-time``: a budget in seconds of training instead (the steps become a cap); ``--set``: config
overrides on top of each recipe, as flags name them (an ablation: ``--set loss=nonsaturating``),
with ``--tag`` naming the variant in the table and the run folders.

Three Fashion-MNIST training images in the R, G and B channels of one image give 10^3 = 1000
modes. Each recipe (configs/stacked-fmnist-NAME.yaml) trains for the same number of steps (a
budget in steps keeps the result independent of the machine's load; the seconds it took are printed
beside it), then 26,000 samples are drawn, each channel is classified by gankit's fmnist
classifier, and the table gives the modes hit and the KL divergence of the mode histogram from the
uniform one. The same count on 26,000 *real* stacked images is printed first: it is the floor that
the classifier's own errors (about 9 % of single images) leave.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
RECIPES = {p.stem.removeprefix("stacked-fmnist-"): p
           for p in sorted((REPO / "configs").glob("stacked-fmnist-*.yaml"))}
RECIPES["r3"] = REPO / "configs" / "r3-stacked-fmnist.yaml"  # R3GAN's loss (issue 20)
PAPERS = [  # (row, modes, KL) on stacked MNIST, as the issue quotes VEEGAN Table 2 and PacGAN
    ("DCGAN (VEEGAN paper, stacked MNIST)", "99", "3.4"),
    ("PacGAN (PacGAN paper, stacked MNIST)", "1000", "0.06"),
]


def real_reference(n: int) -> tuple[int, float]:
    """Modes and KL of n real stacked images, through the same classifier."""
    from gankit.data import stacked_fashion_mnist
    from gankit.metrics import count_stacked_modes

    x = stacked_fashion_mnist().data[:n]  # (n, 3, 28, 28) uint8
    # gankit's images live in [-1, 1]
    return count_stacked_modes(x[i:i + 1000].float() / 127.5 - 1 for i in range(0, n, 1000))


def main(argv: list[str] | None = None) -> None:
    from gankit.api import train_config
    from gankit.config import build_config
    from gankit.metrics import N_MODES_STACKED, evaluate_generator

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5000, help="training budget per run (G updates)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--recipes", nargs="*", default=["plain", "best"], choices=list(RECIPES))
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--root", default="runs/stacked")
    p.add_argument("--max-time", type=float, default=0.0, help="seconds of training per run (0: --steps only)")
    p.add_argument("--precision", default="fp32", help="as gankit train's (the documented figures: fp32)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every recipe")
    p.add_argument("--tag", default="", help="a name for the --set variant")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=N_MODES_STACKED, help="the protocol's 26,000 (cut only for tests)")
    a = p.parse_args(argv)

    if a.threads:
        torch.set_num_threads(a.threads)
    from gankit.config.load import parse_assignments

    extra = parse_assignments(a.set)
    t0 = time.perf_counter()
    ref = real_reference(a.samples)
    print(json.dumps({"recipe": "real data", "modes": ref[0], "kl": round(ref[1], 4)}), flush=True)
    rows = []
    for recipe in a.recipes:
        name = f"{recipe}+{a.tag}" if a.tag else recipe
        for seed in range(a.first_seed, a.first_seed + a.seeds):
            out = Path(a.root) / f"{name}-{seed}"
            cfg = build_config(RECIPES[recipe], {**extra, "seed": seed, "steps": a.steps, "out": str(out),
                                                 "progress": False, "max_time": a.max_time,
                                                 "precision": a.precision})
            t1 = time.perf_counter()
            run = train_config(cfg)
            seconds = time.perf_counter() - t1
            res = evaluate_generator(run.G, cfg, metrics=["modes"], seed=seed + 1000, modes_n=a.samples)
            warned = sorted({str(r["kind"]) for r in run.history if r.get("event") == "warning"})
            rows.append({"recipe": name, "seed": seed, "steps": run.step, "modes": int(res.values["modes"]),
                         "kl": round(res.values["modes_kl"], 4), "seconds": round(seconds), "warnings": warned})
            print(json.dumps(rows[-1]), flush=True)
    wall = time.perf_counter() - t0
    Path(a.root).mkdir(parents=True, exist_ok=True)
    (Path(a.root) / "results.json").write_text(json.dumps({"real": ref, "rows": rows}, indent=1))

    print("\n| row | modes (of 1000) | KL to uniform | budget |\n|---|---|---|---|")
    for row in PAPERS:
        print(f"| {row[0]} | {row[1]} | {row[2]} | GPU, paper's |")
    print(f"| real stacked Fashion-MNIST, {a.samples} images (classifier floor) | {ref[0]} | {ref[1]:.3f} | - |")
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        rs = [r for r in rows if r["recipe"] == recipe]
        modes = np.mean([r["modes"] for r in rs])
        kl = np.mean([r["kl"] for r in rs])
        secs = np.mean([r["seconds"] for r in rs])
        print(f"| gankit {recipe} ({len(rs)} seed{'s' * (len(rs) > 1)}) | {modes:.1f} | {kl:.3f} | "
              f"{np.mean([r['steps'] for r in rs]):.0f} steps, {secs:.0f} s of training here |")
    print(f"\n{len(rows)} runs in {wall / 60:.1f} min wall-clock")


if __name__ == "__main__":
    main()
