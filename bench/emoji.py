"""Pictures -> emoji benchmark (issue 17): the DTN against CycleGAN on fashion2emoji, same data, same budget.

Usage:  python bench/emoji.py [--variants dtn dtn-const3 dtn-cond dtn-joint-f dtn-joint-cond cyclegan]
                              [--root runs/emoji] [--out emoji.json] [--threads 1] [--n 10000] [--seed 0]

Each variant (``VARIANTS``: a preset of configs/ and flags added to it) trains with ``gankit train
--config`` in a subprocess on
``--threads`` threads (OMP_NUM_THREADS and torch's own count; 1 by default: the budget below is one
core's), then ``gankit eval RUN`` scores it on fashion2emoji's test split, 10,000 Fashion-MNIST test
photos against 2,000 held-out emoji:

- ``class_agreement``: how often gankit's emoji classifier (``gankit.metrics.emoji_classifier``,
  99.95 % on held-out emoji) gives the translation G(x) the class of the photo x (the DTN paper's
  measure, Taigman, Polyak & Wolf 2017). Target: at least 80 %, and above the CycleGAN baseline;
- ``fid_emoji``: FID (Heusel et al. 2017) of the translations against the held-out emoji in that
  classifier's 128-d features (0 for the emoji themselves; lower is better);
- ``f_const`` (DTN only): the mean of (f(x) - f(G(x)))^2 over photos and f's features.

The variants: ``dtn``, the preset (f = the shipped fmnist classifier, learnt from photos only; the
paper's weights); ``dtn-const3``, the same with f-constancy weight 3; ``dtn-cond``, the preset with a
D told the class f reads on each image (``--d-cond f-class``, a projection D, Miyato & Koyama 2018);
``dtn-joint-f``, f-constancy 3 with the shipped ``fmnist-emoji`` f, the classifier fine-tuned to read
both domains by ``bench/train_dtn_f.py --mode joint`` (it uses the training emoji's labels, which the
DTN's unsupervised setting does not have); ``dtn-joint-cond``, that f and the class-conditional D
(``configs/fashion2emoji-dtn-joint.yaml``); ``cyclegan``, the baseline.

For reference it also prints the floor and the ceiling of class agreement: the classifier's verdict
on the photos themselves (a G that copied its input) and on the held-out emoji. The budget of each
variant is its preset's ``steps`` and its ``max_time`` (training seconds, checkpoints and evaluations
included), whichever comes first; the seconds and steps each took are saved beside the scores.
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

REPO = Path(__file__).resolve().parent.parent
TARGET = 0.80  # issue 17: class agreement of the DTN's translations
# variant -> (preset in configs/, flags added to it)
VARIANTS: dict[str, tuple[str, list[str]]] = {
    "dtn": ("fashion2emoji-dtn", []),
    "dtn-const3": ("fashion2emoji-dtn", ["--const", "3"]),  # a fifth of the paper's f-constancy weight
    # D told the class f reads (a projection D): f still learnt from photos only
    "dtn-cond": ("fashion2emoji-dtn", ["--d-cond", "f-class"]),
    # f fine-tuned to read both domains (shipped; bench/train_dtn_f.py --mode joint: uses the emoji's labels)
    "dtn-joint-f": ("fashion2emoji-dtn", ["--dtn-f", "fmnist-emoji", "--const", "3"]),
    # that f and the class-conditional D: the preset that meets the target
    "dtn-joint-cond": ("fashion2emoji-dtn-joint", []),
    "cyclegan": ("fashion2emoji-cyclegan", []),
}


def train_variant(name: str, root: Path, threads: int, seed: int) -> dict[str, object]:
    """Train VARIANTS[name] into root/NAME on ``threads`` threads; its command, steps and seconds."""
    preset, extra = VARIANTS[name]
    extra = [*extra, "--seed", str(seed)]
    out = root / name
    if out.exists():
        shutil.rmtree(out)
    cmd = [sys.executable, "-m", "gankit", "train", "--config", str(REPO / "configs" / f"{preset}.yaml"),
           *extra, "--out", str(out), "--no-progress"]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    wall = time.perf_counter() - t0
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    train_s = max(r.get("time", 0.0) for r in records)
    steps = max(r.get("step", 0) for r in records)
    shown = ["OMP_NUM_THREADS=" + str(threads or "all"), "gankit", "train", "--config", f"configs/{preset}.yaml",
             *extra, "--out", f"{root}/{name}"]
    return {"command": " ".join(shown), "wall_s": round(wall, 1), "train_s": round(train_s, 1), "steps_done": steps}


def references(n: int) -> dict[str, float]:
    """The emoji classifier on the photos themselves (class agreement of a G that copies its input)
    and on held-out emoji (the ceiling)."""
    from gankit.data.base import to_float
    from gankit.data.emoji import fashion2emoji
    from gankit.metrics.translation import emoji_scores

    d = fashion2emoji("test")
    assert d.labels_A is not None and d.labels_B is not None
    B = to_float(d.B)
    return {"identity_class_agreement": round(emoji_scores(to_float(d.A[:n]), d.labels_A[:n], B)["class_agreement"], 4),
            "emoji_class_accuracy": round(emoji_scores(B, d.labels_B, B)["class_agreement"], 4)}


def main(argv: list[str] | None = None) -> None:
    import torch

    from gankit.config import build_config
    from gankit.translating import evaluate_translator

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--root", default="runs/emoji")
    p.add_argument("--out", default="emoji.json", help="JSON file of the scores")
    p.add_argument("--n", type=int, default=10_000, help="held-out photos scored per model")
    p.add_argument("--threads", type=int, default=1, help="training threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=0, help="each variant's train.seed")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    root = Path(a.root)
    results: dict[str, dict[str, object]] = {"references": references(a.n)}
    print(json.dumps(results), flush=True)
    for name in a.variants:
        cfg = build_config(REPO / "configs" / f"{VARIANTS[name][0]}.yaml")
        row: dict[str, object] = {"steps": cfg.train.steps, "max_time": cfg.train.max_time,
                                  "batch_size": cfg.train.batch_size, "width": cfg.model.width,
                                  "precision": cfg.train.precision, **train_variant(name, root, a.threads, a.seed)}
        t0 = time.perf_counter()
        scores = evaluate_translator(str(root / name), a.n)
        row |= {"eval_s": round(time.perf_counter() - t0, 1), "eval_n": scores.n, "split": scores.split,
                **{k: round(v, 4) for k, v in scores.values.items()}}
        row["target_met"] = scores.values["class_agreement"] >= TARGET
        results[name] = row
        print(json.dumps({name: row}), flush=True)
        Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"scores: {a.out}")


if __name__ == "__main__":
    main()
