"""Does a change keep training bit-identical? Train tiny runs of every kind, hash what they end with.

Usage:  python bench/same_training.py --out DIR [--only ring pix2pix ...]     # train, write DIR/hashes.json
        python bench/same_training.py --compare A/hashes.json B/hashes.json   # SAME or what differs

Each run (the GAN on 2-D points with 2 D-steps and the diagnosis probe, DCGAN on Fashion-MNIST, DCGAN
with R1 + DiffAugment + minibatch std + a decaying learning rate, projection and ACGAN conditional
GANs, pix2pix, CycleGAN) trains for a few dozen steps in fp32 through ``gankit train`` in a child
process; its last checkpoint's every tensor (weights, Adam's moments, RNG states) is hashed, and its
metrics.jsonl is kept without the wall-clock fields. Training the same runs with two versions of
gankit and comparing the two files tells whether the change moved a single bit of any training
trajectory: the restructuring of issue 14 was checked this way against commit 470387f, with the old
code on PYTHONPATH (``git worktree add /tmp/old 470387f; PYTHONPATH=/tmp/old/src python
bench/same_training.py --out /tmp/old-hashes``). Threads are pinned to 1 (oneDNN's sums depend on
the thread count).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

SMALL_DCGAN = ["--data", "fashion-mnist", "--model", "dcgan", "--width", "8", "--latent-dim", "16",
               "--batch-size", "16", "--log-every", "5", "--sample-every", "20", "--checkpoint-every", "20"]
RUNS = {
    "ring": ["--data", "ring", "--model", "mlp", "--latent-dim", "8", "--width", "16", "--steps", "60",
             "--log-every", "10", "--sample-every", "30", "--checkpoint-every", "30", "--d-steps", "2",
             "--lr-g", "1e-3", "--lr-d", "1e-3", "--batch-size", "32", "--diagnose-every", "20"],
    "dcgan": [*SMALL_DCGAN, "--steps", "40", "--diagnose-every", "20"],
    "dcgan_cures": [*SMALL_DCGAN, "--steps", "20", "--r1", "1", "--diffaugment", "color,translation",
                    "--mbstd", "--lr-decay-start", "0.5"],
    "projection": [*SMALL_DCGAN, "--steps", "20", "--conditional", "projection"],
    "acgan": [*SMALL_DCGAN, "--steps", "20", "--conditional", "acgan"],
    "pix2pix": ["--data", "edges2fashion", "--model", "pix2pix", "--width", "8", "--batch-size", "8",
                "--steps", "20", "--log-every", "5", "--sample-every", "20", "--checkpoint-every", "10"],
    "cyclegan": ["--data", "sneaker2sandal", "--model", "cyclegan", "--width", "8", "--batch-size", "4",
                 "--steps", "20", "--log-every", "5", "--sample-every", "20", "--checkpoint-every", "10"],
}
VOLATILE = ("time", "img_per_s", "eval_seconds")


def train_and_hash(name: str, out: Path) -> dict:
    from safetensors.torch import load_file

    run = out / name
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "gankit", "train", *RUNS[name], "--no-progress", "--precision",
                    "fp32", "--out", str(run)], check=True, capture_output=True, env=env)
    last = (run / "checkpoints" / "last").resolve()
    hashes: dict = {}
    for f in ("model.safetensors", "train.safetensors"):
        tensors = load_file(str(last / f))
        hashes[f] = {k: hashlib.sha256(v.contiguous().numpy().tobytes()).hexdigest()[:16]
                     for k, v in sorted(tensors.items())}
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    hashes["metrics"] = [{k: v for k, v in r.items() if k not in VOLATILE} for r in records]
    return hashes


def compare(a: dict, b: dict) -> bool:
    same_all = True
    for name in a:
        if name not in b:
            print(f"{name}: missing from the second file")
            same_all = False
            continue
        problems = []
        for f in ("model.safetensors", "train.safetensors"):
            if set(a[name][f]) != set(b[name][f]):
                problems.append(f"{f}: other tensors {sorted(set(a[name][f]) ^ set(b[name][f]))[:5]}")
            problems += [f"{f}: {k} differs" for k in a[name][f] if a[name][f][k] != b[name][f].get(k, a[name][f][k])]
        if a[name]["metrics"] != b[name]["metrics"]:
            problems.append("metrics.jsonl differs")
        print(f"{name}: " + ("SAME" if not problems else "DIFFERENT: " + "; ".join(problems[:5])))
        same_all = same_all and not problems
    return same_all


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, help="folder for the runs and hashes.json")
    p.add_argument("--only", nargs="*", choices=list(RUNS), help="these runs only")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"), help="two hashes.json files")
    args = p.parse_args()
    if args.compare:
        a, b = (json.loads(path.read_text()) for path in args.compare)
        sys.exit(0 if compare(a, b) else 1)
    if args.out is None:
        p.error("give --out DIR (or --compare A B)")
    args.out.mkdir(parents=True, exist_ok=True)
    hashes = {}
    for name in args.only or RUNS:
        hashes[name] = train_and_hash(name, args.out)
        print(f"{name}: trained", flush=True)
    (args.out / "hashes.json").write_text(json.dumps(hashes, indent=1, sort_keys=True))


if __name__ == "__main__":
    main()
