"""Quality per second: FID (fmnist features) of every checkpoint of a run against the training
wall-clock at which it was saved.

Usage:  python bench/fid_vs_time.py RUN_DIR [--n 10000] [--at 60 300 900]

Train first, keeping every checkpoint, e.g. the default config for 10,000 steps:
    gankit train --steps 10000 --checkpoint-every 1000 --keep 20 --out runs/bench-long
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gankit.metrics import evaluate_generator
from gankit.rundir import step_dirs
from gankit.sampling import load_generator


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run_dir")
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--at", type=float, nargs="*",
                   help="only the checkpoints saved nearest to these training seconds")
    a = p.parse_args()
    run = Path(a.run_dir)
    ckpts = [(step, path, json.loads((path / "state.json").read_text())["elapsed"])
             for step, path in step_dirs(run / "checkpoints")]
    if a.at:
        ckpts = sorted({min(ckpts, key=lambda c: abs(c[2] - t)) for t in a.at})
    print(f"{'step':>6} {'train s':>8} {'FID':>8}")
    for step, path, elapsed in ckpts:
        lg = load_generator(str(path))
        fid = evaluate_generator(lg.G, lg.config, a.n, ["fid"]).values["fid"]
        print(f"{step:>6} {elapsed:>8.1f} {fid:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
