"""Next-frame benchmark (issue 18): Mathieu, Couprie & LeCun 2016's multi-scale GAN on moving
Fashion-MNIST (``--data mfmnist``: 64x64, two items, 10 frames in, 10 out; OpenSTL's MFMNIST).

Usage:  python bench/nextframe.py [--root runs/nextframe] [--budget 1200] [--width 16] [--batch-size 8]
                                  [--n 500] [--threads 1] [--rollout 1] [--seed 0] [--models ...]
                                  [--then-rollout 2 (--switch-at 600 | --rollout-from 2500)] [--ema 0]
                                  [--frame-g flow]
                                  [--lr-d 1e-4] [--gdl-weight 2] [--side-by-side]
                                  [--skip-train] [--out nextframe.json]

Trains the models for the same wall-clock budget each (``gankit train --max-time``, one thread each,
one after the other, or all at once with ``--side-by-side``, as the tables in docs/BENCHMARKS.md
were made on 2 cores):

- ``gan``: the paper's loss, adversarial (0.05) + L1 (1) + GDL (1), multi-scale G and D (D's rate
  ``--lr-d`` and the GDL weight ``--gdl-weight`` may be set for it: the twin has neither);
- ``l2``: the same G trained with L2 only (``--adv-weight 0 --gdl-weight 0 --lp 2``), no D;

each predicting with the moving average of its G (gankit's ``--ema`` 0.999; ``--ema 0``: the last G,
as the paper and this bench before 2026-12-02), both with ``--rollout R`` (1: the paper's one-step training; R: each clip trains G on R frames
rolled out on its own predictions), or the GAN with a curriculum (``--then-rollout R --switch-at S``:
one step ahead for S seconds, then resumed with ``--rollout R`` for the rest of the budget; or
``--then-rollout R --rollout-from N``: the same in one run, switching at step N, as
``configs/mfmnist-nextframe-flow.yaml`` does), and with R > 1 also

- ``l2-onestep``: the L2 twin trained one step ahead (R = 1), the stronger L2 baseline then;

then rolls each out for 10 frames from the first 10 of the first ``--n`` test sequences, and scores
each horizon 1..10 (``gankit.metrics.nextframe``: MSE and MAE summed over a frame's pixels in
[0, 1] as OpenSTL reports them, SSIM, PSNR, Mathieu's sharpness difference), beside the
copy-last-frame baseline and an all-black prediction (what a rollout faded to the background
scores: the frames are mostly background, so its SSIM is far from 0). For the trained models it also
gives the haze (the mean prediction in [0, 1] where the truth is black) and the SSIM with pixels
under 0.05 snapped to black: a faint haze on the black background costs SSIM more than the motion.
OpenSTL's 200-epoch GPU figures on MFMNIST (PredRNN MSE 22.01, SSIM 0.909; ConvLSTM 28.87, 0.879;
all 10,000 test sequences) are the ceiling quoted beside these.
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
L2 = ["--adv-weight", "0", "--gdl-weight", "0", "--lp", "2"]
# name -> (flags, rollout: None = --rollout's); l2-onestep: the L2 twin trained one step ahead,
# which under --rollout R > 1 is the stronger L2 baseline (the twin trained on its rollouts hazes)
MODELS: dict[str, tuple[list[str], int | None]] = {"gan": ([], None), "l2": (L2, None), "l2-onestep": (L2, 1)}
SCORES = ("mse", "mae", "ssim", "psnr", "sharp")
LOWER_IS_BETTER = ("mse", "mae", "haze")
FORMATS = {"mse": ".1f", "mae": ".1f", "ssim": ".3f", "ssim_snapped": ".3f", "haze": ".4f"}  # else .2f
HORIZON = 10


def start(name: str, run: Path, args: argparse.Namespace) -> dict[str, object]:
    """Start training one model (and wait for it unless --side-by-side); the job to wait for."""
    if run.exists():
        shutil.rmtree(run)
    loss_flags, rollout = MODELS[name]
    rollout = rollout or args.rollout
    # the curriculum (the GAN only): one step ahead for --switch-at seconds, then resumed on rollouts;
    # with --rollout-from, one run that switches at that step (nextframe.rollout_from)
    switch_step = args.rollout_from if args.then_rollout and not loss_flags else 0
    curriculum = bool(args.then_rollout) and not loss_flags and not switch_step
    if switch_step:
        rollout = args.then_rollout
    flags = ["--model", "nextframe", "--data", "mfmnist", "--width", str(args.width), "--batch-size",
             str(args.batch_size), "--max-time", str(args.switch_at if curriculum else args.budget),
             "--steps", "1000000", "--precision", "fp32",
             "--sample-every", "500", "--checkpoint-every", "1000", "--eval-n", "64", "--no-progress",
             "--seed", str(args.seed), "--rollout", str(1 if curriculum else rollout), *loss_flags,
             *(["--rollout-from", str(switch_step)] if switch_step else []),
             *(["--ema", str(args.ema)] if args.ema is not None else []),
             *(["--frame-g", args.frame_g] if args.frame_g is not None else []),
             *(gan_flags(args) if not loss_flags else [])]
    cmd = [sys.executable, "-m", "gankit", "train", *flags, "--out", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
    t0 = time.perf_counter()
    job = {"name": name, "run": run, "flags": flags, "curriculum": curriculum, "rollout": rollout,
           "switch_step": switch_step,
           "env": env, "t0": t0, "process": subprocess.Popen(cmd, env=env)}
    if not args.side_by_side:
        finish([job])
    return job


def finish(jobs: list[dict]) -> None:
    """Wait for the jobs' training processes, each one's wall-clock seconds counted up to its own end
    (side by side the models end at different times: polled, not waited for in turn)."""
    pending = [job for job in jobs if "t1" not in job]
    while pending:
        for job in [job for job in pending if job["process"].poll() is not None]:
            job["t1"] = time.perf_counter()
            pending.remove(job)
        time.sleep(0.2 if pending else 0)
    for job in jobs:
        if job["process"].returncode != 0:
            raise subprocess.CalledProcessError(job["process"].returncode, job["process"].args)


def trained(job: dict, args: argparse.Namespace) -> dict[str, object]:
    """What a finished training run did (after its curriculum's second part, run here)."""
    run, flags, curriculum, rollout, env = job["run"], job["flags"], job["curriculum"], job["rollout"], job["env"]
    wall = job["t1"] - job["t0"]
    switched, at = last_step(run), job["switch_step"]
    if at:  # one run: one frame a clip before step --rollout-from, rollout frames after
        frames = (min(switched, at) + max(0, switched - at) * rollout) * args.batch_size
    else:
        frames = switched * args.batch_size * (1 if curriculum else rollout)
    if curriculum:  # --max-time counts the training time of both parts
        more = ["--resume", str(run), "--rollout", str(args.then_rollout), "--max-time", str(args.budget)]
        t1 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gankit", "train", *more], check=True, env=env)
        wall += time.perf_counter() - t1
        frames += (last_step(run) - switched) * args.batch_size * args.then_rollout
        flags += ["--out", str(run), "&&", "gankit", "train", *more]
    steps = last_step(run)
    return {"command": f"OMP_NUM_THREADS={args.threads} gankit train {' '.join(flags)}"
                       + ("" if curriculum else f" --out {run}"),
            "wall_s": round(wall, 1), "steps": steps,
            "clips": steps * args.batch_size, "frames_predicted": frames}


def gan_flags(args: argparse.Namespace) -> list[str]:
    """The GAN's own settings (the L2 twin has no D and no GDL term)."""
    return [*(["--lr-d", str(args.lr_d)] if args.lr_d is not None else []),
            *(["--gdl-weight", str(args.gdl_weight)] if args.gdl_weight is not None else [])]


def last_step(run: Path) -> int:
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return max(int(r.get("step", 0)) for r in records)


def score(args: argparse.Namespace, runs: dict[str, Path]) -> dict[str, dict[str, float]]:
    from gankit.config import build_config
    from gankit.data.base import to_float
    from gankit.diagnosis import mean_pairwise_distance, pooled_pixels
    from gankit.metrics.nextframe import copy_last, score_rollouts
    from gankit.predicting import load_predictor, load_run_videos
    from gankit.tasks.nextframe import N_PROBE

    cfg = build_config(overrides={"data": "mfmnist", "model": "nextframe"})
    test = load_run_videos(cfg, "test", 10, args.n)
    seqs = to_float(test.frames).view(args.n, 20, *test.frame_shape)  # (N, 20, 1, 64, 64)
    context, truth = seqs[:, :10], seqs[:, 10:10 + HORIZON]
    out = {"copy-last": score_rollouts(copy_last(context, HORIZON), truth),
           # an empty (black) frame: what a rollout faded to the background scores
           "black": score_rollouts(-torch.ones_like(truth), truth)}
    # what the diagnosis reads while a run trains (NextFrameTask.probe): the variety of the next
    # frames of the first N_PROBE sequences against the true ones' (0: one frame whatever the past)
    truth_variety = mean_pairwise_distance(pooled_pixels(truth[:N_PROBE, 0]))

    def diversity(pred: torch.Tensor) -> float:
        return mean_pairwise_distance(pooled_pixels(pred[:N_PROBE, 0])) / truth_variety

    out["copy-last"]["diversity"] = diversity(copy_last(context, 1))
    out["black"]["diversity"] = diversity(-torch.ones_like(truth))
    background = truth <= -1 + 1 / 127.5  # the pixels black in the truth (under 1/255 in [0, 1])
    for name, run in runs.items():
        t0 = time.perf_counter()
        pred = load_predictor(run).predict(context, HORIZON)
        out[name] = score_rollouts(pred, truth) | {"diversity": diversity(pred)}
        # SSIM on a black background is hurt most by a faint haze there (its luminance term, with
        # C1 = 0.01^2, is 0.2 for a flat 0.02 against 0): the haze per horizon, and the SSIM of the
        # same frames with every pixel under 0.05 snapped to black, tell the haze from the motion
        p01 = (pred + 1) / 2
        snapped = score_rollouts(torch.where(p01 < 0.05, -1.0, pred), truth)
        for h in range(1, HORIZON + 1):
            out[name][f"haze@{h}"] = p01[:, h - 1][background[:, h - 1]].mean().item()
            out[name][f"ssim_snapped@{h}"] = snapped[f"ssim@{h}"]
        out[name]["haze"] = sum(out[name][f"haze@{h}"] for h in range(1, HORIZON + 1)) / HORIZON
        out[name]["ssim_snapped"] = snapped["ssim"]
        print(f"{name}: scored {args.n} sequences in {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def table(scores: dict[str, dict[str, float]]) -> str:
    lines = []
    for s in (*SCORES, "haze", "ssim_snapped"):
        arrow = "↓" if s in LOWER_IS_BETTER else "↑"
        rows = {k: v for k, v in scores.items() if f"{s}@1" in v}  # haze: the trained models only
        lines.append(f"\n{s} {arrow}\n\n| model | " + " | ".join(f"h={h}" for h in range(1, HORIZON + 1))
                     + " | mean |\n|---|" + "---|" * (HORIZON + 1))
        fmt = FORMATS.get(s, ".2f")
        for name, v in rows.items():
            lines.append(f"| {name} | " + " | ".join(f"{v[f'{s}@{h}']:{fmt}}" for h in range(1, HORIZON + 1))
                         + f" | {v[s]:{fmt}} |")
    lines.append("\ndiversity of the next frame (the diagnosis' reading; 1 = as varied as the truth): "
                 + ", ".join(f"{name} {v['diversity']:.2f}" for name, v in scores.items()))
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default="runs/nextframe")
    p.add_argument("--budget", type=float, default=1200.0, help="training seconds per model (1200)")
    p.add_argument("--width", type=int, default=16, help="base width of G and D (16; the paper's is 128)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--n", type=int, default=500, help="test sequences scored (500 of OpenSTL's 10,000)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rollout", type=int, default=1, help="frames G predicts per training clip (1)")
    p.add_argument("--then-rollout", type=int, default=0,
                   help="a curriculum for the GAN: one step ahead for --switch-at seconds, then resumed "
                        "with --rollout this for the rest of --budget, or one run switching at step "
                        "--rollout-from (0 = off; the L2 twin stays one step ahead)")
    p.add_argument("--switch-at", type=float, default=0.0, help="training seconds before --then-rollout")
    p.add_argument("--rollout-from", type=int, default=0,
                   help="with --then-rollout: the step the GAN switches at, in one run (gankit train "
                        "--rollout-from), instead of --switch-at's seconds and a resume")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ema", type=float, default=None,
                   help="gankit train --ema for every model: the moving average of G, which predicts and is "
                        "scored (unset: gankit's 0.999; 0 = the last G, as Mathieu et al. 2016)")
    p.add_argument("--frame-g", choices=("draw", "flow"), default=None,
                   help="G's output, for both models (unset: gankit's default; flow: G moves the last frame's pixels)")
    p.add_argument("--lr-d", type=float, default=None, help="the GAN's D learning rate (unset: gankit's 4e-4)")
    p.add_argument("--gdl-weight", type=float, default=None,
                   help="the GAN's gradient difference loss weight (unset: the paper's 1; the twin has none)")
    p.add_argument("--side-by-side", action="store_true",
                   help="train the models at once (one process each, --threads each), not one after the other "
                        "(a curriculum's second part still runs after the first parts)")
    p.add_argument("--models", nargs="*", choices=list(MODELS),
                   help="gan and l2 (default), and l2-onestep when --rollout > 1")
    p.add_argument("--skip-train", action="store_true", help="score the runs already in --root")
    p.add_argument("--out", default="nextframe.json")
    args = p.parse_args()
    if args.then_rollout and bool(args.switch_at) == bool(args.rollout_from):
        p.error("--then-rollout needs one of --switch-at (seconds, then a resume) and --rollout-from (a step)")
    args.models = args.models or ["gan", "l2", *(["l2-onestep"] if args.rollout > 1 else [])]
    torch.set_num_threads(args.threads)
    root = Path(args.root)
    runs = {m: root / m for m in args.models}
    jobs = [] if args.skip_train else [start(m, run, args) for m, run in runs.items()]
    finish(jobs)
    done = {job["name"]: trained(job, args) for job in jobs}
    scores = score(args, runs)
    result = {"budget_s": args.budget, "width": args.width, "batch_size": args.batch_size, "n_test": args.n,
              "threads": args.threads, "rollout": args.rollout, "seed": args.seed,
              "then_rollout": args.then_rollout, "switch_at": args.switch_at,
              "rollout_from": args.rollout_from, "ema": args.ema, "frame_g": args.frame_g, "lr_d": args.lr_d, "gdl_weight": args.gdl_weight,
              "side_by_side": args.side_by_side, "train": done, "scores": scores}
    Path(args.out).write_text(json.dumps(result, indent=1))
    for m, t in done.items():
        print(f"{m}: {t['steps']} steps ({t['clips']} clips) in {t['wall_s']} s: {t['command']}")
    print(table(scores))


if __name__ == "__main__":
    main()
