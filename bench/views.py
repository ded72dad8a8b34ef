"""Novel-view benchmark (issue 18): new angles of held-out objects, the GAN against its L1-only twin
and copy-the-source.

Usage:  python bench/views.py [--steps 2500] [--max-time 570] [--threads 1] [--clf-steps 3000]
                              [--view-g flow] [--view-adv 0.1] [--runs runs/views] [--skip-train] [--out views.json]

1. Renders (or reads from the cache) ``--data views``: 128 POV-Ray objects x 48 views at 32 px,
   25 objects held out.
2. Trains the angle classifier (``gankit.metrics.view_angles``) on the training objects' true
   renders, deterministically (seed 0, ``--clf-steps`` steps, one thread), and reports its accuracy
   on held-out true pairs: the ceiling of ``angle_acc``.
3. Trains ``--model novel-view`` (adversarial + L1) and its L1-only twin (``--view-adv 0``), each
   ``--steps`` steps at batch 32 (``--max-time`` stops either sooner), in a subprocess with
   OMP_NUM_THREADS=--threads.
4. Scores both, and copy-the-source, on 1,200 fixed pairs of held-out views (every held-out view
   a source once, its target another view of its object): L1 and SSIM to the true render,
   identity retrieval, angle accuracy.
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
KEYS = ("l1", "ssim", "identity", "angle_acc")


def train(run: Path, steps: int, max_time: float, threads: int, adv: float, view_g: str) -> dict[str, object]:
    if run.exists():
        shutil.rmtree(run)
    args = ["--model", "novel-view", "--data", "views", "--steps", str(steps), "--batch-size", "32",
            "--max-time", str(max_time), "--view-adv", str(adv), "--view-g", view_g, "--eval-every", "500",
            "--eval-n", "600", "--sample-every", "500", "--checkpoint-every", "500", "--no-progress", "--out", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gankit", "train", *args], check=True, env=env)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return {"command": f"OMP_NUM_THREADS={threads} gankit train {' '.join(args)}",
            "wall_s": round(time.perf_counter() - t0, 1),
            "steps": max(r.get("step", 0) for r in records),
            "train_s": round(max(r.get("time", 0.0) for r in records), 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2500)
    p.add_argument("--max-time", type=float, default=570.0, help="seconds per training run (570)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--clf-steps", type=int, default=3000)
    p.add_argument("--view-g", default="flow", choices=("flow", "unet"), help="G of both models (flow)")
    p.add_argument("--view-adv", type=float, default=0.1, help="the GAN's adversarial weight (0.1, the default)")
    p.add_argument("--runs", default="runs/views")
    p.add_argument("--skip-train", action="store_true", help="score the runs already in --runs")
    p.add_argument("--out", default="views.json")
    a = p.parse_args()
    torch.set_num_threads(a.threads)

    from gankit.data.base import to_float
    from gankit.data.views import load_views
    from gankit.metrics.view_angles import train_angle_classifier
    from gankit.metrics.views import eval_pairs, score_views
    from gankit.view_sampling import load_view_generator

    train_views, test = load_views("views", "train"), load_views("views", "test")
    t0 = time.perf_counter()
    clf = train_angle_classifier(train_views, steps=a.clf_steps)
    src, tgt = eval_pairs(test, 10_000)
    truth = clf.classes(test.angles[src], test.angles[tgt])
    ceiling = (clf(to_float(test.images[src]), to_float(test.images[tgt])) == truth).double().mean().item()
    result: dict[str, object] = {
        "classifier": {"steps": a.clf_steps, "seconds": round(time.perf_counter() - t0, 1),
                       "classes": clf.classes.n, "acc_heldout_true_views": ceiling},
        "pairs": len(src), "heldout_objects": len(test.objects)}
    print(f"angle classifier: {clf.classes.n} classes, {ceiling:.1%} on held-out true views", file=sys.stderr)

    runs = Path(a.runs)
    for name, adv in (("gan", a.view_adv), ("l1_only", 0.0)):
        if not a.skip_train:
            result[f"train_{name}"] = train(runs / name, a.steps, a.max_time, a.threads, adv, a.view_g)
        lg = load_view_generator(runs / name)
        result[name] = score_views(lg.G, test, 10_000, angle_classes=(clf, clf.classes))
        result[name]["step"] = lg.step  # type: ignore[index]
    copy = {k: v for k, v in result["gan"].items() if k.startswith("copy_")}  # type: ignore[union-attr]
    result["copy_source"] = {k[5:]: v for k, v in copy.items()}
    for name in ("gan", "l1_only"):
        result[name] = {k: v for k, v in result[name].items() if not k.startswith("copy_")}  # type: ignore[union-attr]
    Path(a.out).write_text(json.dumps(result, indent=2))
    print(f"{'':12}" + "".join(f"{k:>11}" for k in KEYS))
    for name in ("gan", "l1_only", "copy_source"):
        row = result[name]
        print(f"{name:12}" + "".join(f"{row[k]:>11.4f}" for k in KEYS))  # type: ignore[index]
    print(f"-> {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
