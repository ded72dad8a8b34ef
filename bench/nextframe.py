"""Next-frame benchmark (issue 18): Mathieu, Couprie & LeCun 2016's multi-scale GAN on moving
Fashion-MNIST (``--data mfmnist``: 64x64, two items, 10 frames in, 10 out; OpenSTL's MFMNIST).

Usage:  python bench/nextframe.py [--root runs/nextframe] [--budget 540] [--width 16] [--batch-size 8]
                                  [--n 500] [--threads 1] [--skip-train] [--out nextframe.json]

Trains two models for the same wall-clock budget (``gankit train --max-time``, one thread each, one
after the other):

- ``gan``: the paper's loss, adversarial (0.05) + L1 (1) + GDL (1), multi-scale G and D;
- ``l2``: the same G trained with L2 only (``--adv-weight 0 --gdl-weight 0 --lp 2``), no D;

then rolls each out for 10 frames from the first 10 of the first ``--n`` test sequences, and scores
each horizon 1..10 (``gankit.metrics.nextframe``: MSE and MAE summed over a frame's pixels in
[0, 1] as OpenSTL reports them, SSIM, PSNR, Mathieu's sharpness difference), beside the
copy-last-frame baseline and an all-black prediction (what a rollout faded to the background
scores: the frames are mostly background, so its SSIM is far from 0). OpenSTL's 200-epoch GPU figures on MFMNIST (PredRNN MSE 22.01, SSIM 0.909;
ConvLSTM 28.87, 0.879; all 10,000 test sequences) are the ceiling quoted beside these.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
MODELS = {"gan": [], "l2": ["--adv-weight", "0", "--gdl-weight", "0", "--lp", "2"]}
SCORES = ("mse", "mae", "ssim", "psnr", "sharp")
HORIZON = 10


def train(name: str, run: Path, args: argparse.Namespace) -> dict[str, object]:
    if run.exists():
        shutil.rmtree(run)
    flags = ["--model", "nextframe", "--data", "mfmnist", "--width", str(args.width), "--batch-size",
             str(args.batch_size), "--max-time", str(args.budget), "--steps", "1000000", "--precision", "fp32",
             "--sample-every", "500", "--checkpoint-every", "1000", "--eval-n", "64", "--no-progress", *MODELS[name]]
    cmd = [sys.executable, "-m", "gankit", "train", *flags, "--out", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = max(int(r.get("step", 0)) for r in records)
    return {"command": f"OMP_NUM_THREADS={args.threads} gankit train {' '.join(flags)} --out {run}",
            "wall_s": round(time.perf_counter() - t0, 1), "steps": steps,
            "clips": steps * args.batch_size}


def score(args: argparse.Namespace, runs: dict[str, Path]) -> dict[str, dict[str, float]]:
    from gankit.config import build_config
    from gankit.data.base import to_float
    from gankit.metrics.nextframe import copy_last, score_rollouts
    from gankit.predicting import load_predictor, load_run_videos

    cfg = build_config(overrides={"data": "mfmnist", "model": "nextframe"})
    test = load_run_videos(cfg, "test", 10, args.n)
    seqs = to_float(test.frames).view(args.n, 20, *test.frame_shape)  # (N, 20, 1, 64, 64)
    context, truth = seqs[:, :10], seqs[:, 10:10 + HORIZON]
    out = {"copy-last": score_rollouts(copy_last(context, HORIZON), truth),
           # an empty (black) frame: what a rollout faded to the background scores
           "black": score_rollouts(-torch.ones_like(truth), truth)}
    for name, run in runs.items():
        t0 = time.perf_counter()
        lp = load_predictor(run)
        out[name] = score_rollouts(lp.predict(context, HORIZON), truth)
        print(f"{name}: scored {args.n} sequences in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def table(scores: dict[str, dict[str, float]]) -> str:
    lines = []
    for s in SCORES:
        arrow = "↓" if s in ("mse", "mae") else "↑"
        lines.append(f"\n{s} {arrow}\n\n| model | " + " | ".join(f"h={h}" for h in range(1, HORIZON + 1))
                     + " | mean |\n|---|" + "---|" * (HORIZON + 1))
        for name, v in scores.items():
            fmt = ".3f" if s == "ssim" else ".1f" if s in ("mse", "mae") else ".2f"
            lines.append(f"| {name} | " + " | ".join(f"{v[f'{s}@{h}']:{fmt}}" for h in range(1, HORIZON + 1))
                         + f" | {v[s]:{fmt}} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/nextframe")
    p.add_argument("--budget", type=float, default=540.0, help="training seconds per model (540)")
    p.add_argument("--width", type=int, default=16, help="base width of G and D (16; the paper's is 128)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n", type=int, default=500, help="test sequences scored (500 of OpenSTL's 10,000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--models", nargs="*", default=list(MODELS), choices=list(MODELS))
    p.add_argument("--skip-train", action="store_true", help="score the runs already in --root")
    p.add_argument("--out", default="nextframe.json")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    runs = {m: root / m for m in args.models}
    trained = {} if args.skip_train else {m: train(m, run, args) for m, run in runs.items()}
    scores = score(args, runs)
    result = {"budget_s": args.budget, "width": args.width, "batch_size": args.batch_size, "n_test": args.n,
              "threads": args.threads, "train": trained, "scores": scores}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for m, t in trained.items():
        print(f"{m}: {t['steps']} steps ({t['clips']} clips) in {t['wall_s']} s: {t['command']}")
    print(table(scores))


if __name__ == "__main__":
    main()
