"""The 2-D mode-collapse benchmark of VEEGAN (Srivastava et al. 2017, Table 1), as GDPP reuses it.

Usage:  python bench/mode_collapse.py [--seeds 5] [--steps 25000] [--jobs 2] [--recipes plain best]
                [--set KEY=VALUE ...] [--tag NAME]

``--set``: config overrides on top of each recipe, as flags name them (a sweep: ``--set r1=0.1
r2=0.1``), with ``--tag`` naming the variant in the table and the run folders.

ring: 8 Gaussians at 8 distinct angles on a circle of radius 1, std 0.01; grid: 25 Gaussians at
{-4, -2, 0, 2, 4}^2, std 0.05. 2,500 generated samples; a sample is high quality when within 3 std
of its nearest mode; a mode is captured when at least one high-quality sample lands on it. Mean and
std over seeds. The papers' networks (configs/veegan-2d-plain.yaml: G 256-d noise -> two 128-unit
tanh layers -> 2; D two 128-unit tanh layers; Adam beta1 0.5, lr 1e-3 for G and 1e-4 for D, batch
512, 25k iterations). Each recipe is a preset in configs/. The diagnosis runs live in every run; the
table gives how often it warned of mode collapse on the collapsing runs (any mode missed) and on the
healthy ones (all captured).

Runs go --jobs at a time, each in its own process with one thread (tiny networks do not gain from
a second thread; two processes use both cores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# recipe name -> preset: configs/veegan-2d-NAME.yaml (plain: no cure; best: gankit's best recipe)
RECIPES = {p.stem.removeprefix("veegan-2d-"): p for p in sorted((REPO / "configs").glob("veegan-2d-*.yaml"))}
RECIPES["r3"] = REPO / "configs" / "r3-veegan-2d.yaml"  # R3GAN's loss with R1 + R2 (issue 20)
PAPERS = [  # (row, ring modes, ring % hq, grid modes, grid % hq) from VEEGAN Table 1 and GDPP
    ("GAN (papers)", "1", "99.3", "3.3", "0.5"),
    ("Unrolled GAN (papers)", "7.6", "35.6", "23.6", "16"),
    ("VEEGAN (papers)", "8", "52.9", "24.6", "40"),
    ("WGAN-GP (GDPP paper)", "6.8", "59.6", "24.2", "28.7"),
    ("GDPP (GDPP paper)", "8", "71.7", "24.8", "68.5"),
]


def one(recipe: str, data: str, seed: int, steps: int, root: Path, assignments: list[str] | None = None,
        tag: str = "") -> dict[str, object]:
    """Train one run and score it (in this process); ``assignments``: KEY=VALUE overrides."""
    import torch

    from gankit.api import train_config
    from gankit.config import build_config
    from gankit.config.load import parse_assignments
    from gankit.metrics import evaluate_generator

    torch.set_num_threads(1)
    name = f"{recipe}+{tag}" if tag else recipe
    out = root / f"{name}-{data}-{seed}"
    cfg = build_config(RECIPES[recipe], {**parse_assignments(assignments or []), "data": data, "seed": seed,
                                         "steps": steps, "out": str(out), "progress": False})
    t0 = time.perf_counter()
    run = train_config(cfg)
    seconds = time.perf_counter() - t0
    res = evaluate_generator(run.G, cfg, 2500, ["modes"], seed=seed + 1000)
    return {"recipe": name, "data": data, "seed": seed, "modes": res.values["modes"],
            "hq": res.values["hq"], **diagnosis(out), "seconds": round(seconds, 1)}


def diagnosis(run_dir: Path) -> dict[str, list[str]]:
    """The run's metrics.jsonl replayed through gankit's diagnosis: the failures it warned of at
    some point, and those still present at the last step."""
    from gankit.diagnosis import diagnose_run

    findings, _, last = diagnose_run(run_dir)
    return {"warnings": sorted({f.kind for f in findings}), "active_at_end": last["active"]}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0, help="seeds --first-seed, ..., + --seeds - 1")
    p.add_argument("--steps", type=int, default=25_000)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--recipes", nargs="*", default=["plain", "best"], choices=list(RECIPES))
    p.add_argument("--data", nargs="*", default=["ring", "grid"], choices=["ring", "grid"])
    p.add_argument("--root", default="runs/mode-collapse")
    p.add_argument("--rescore", action="store_true",
                   help="re-read ROOT/results.json and the runs' logs with the current diagnosis rules")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides for every recipe")
    p.add_argument("--tag", default="", help="a name for the --set variant")
    p.add_argument("--one", nargs=3, metavar=("RECIPE", "DATA", "SEED"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    root = Path(a.root)
    if a.one:
        print(json.dumps(one(a.one[0], a.one[1], int(a.one[2]), a.steps, root, a.set, a.tag)))
        return

    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}

    def launch(job: tuple[str, str, int]) -> dict[str, object]:
        out = subprocess.run([sys.executable, __file__, "--one", job[0], job[1], str(job[2]),
                              "--steps", str(a.steps), "--root", str(root), "--tag", a.tag,
                              *(["--set", *a.set] if a.set else [])],
                             capture_output=True, text=True, env=env)
        if out.returncode:
            raise SystemExit(f"{job} failed:\n{out.stderr[-3000:]}")
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(r), flush=True)
        return r

    names = [f"{x}+{a.tag}" if a.tag else x for x in a.recipes]  # as the rows and folders name them
    if a.rescore:
        saved = json.loads((root / "results.json").read_text())
        rows = [r | diagnosis(root / f"{r['recipe']}-{r['data']}-{r['seed']}") for r in saved["rows"]]
        wall = saved["wall_seconds"]
        names = [x for x in names if any(r["recipe"] == x for r in rows)]
        a.seeds = len({r["seed"] for r in rows})
    else:
        jobs = [(r, d, s) for r in a.recipes for d in a.data
                for s in range(a.first_seed, a.first_seed + a.seeds)]
        t0 = time.perf_counter()
        with ThreadPoolExecutor(a.jobs) as pool:
            rows = list(pool.map(launch, jobs))
        wall = time.perf_counter() - t0
        (root / "results.json").write_text(json.dumps({"rows": rows, "wall_seconds": wall}, indent=1))

    def ms(xs: list[float], pct: bool = False) -> str:
        k = 100 if pct else 1
        sd = statistics.stdev(xs) * k if len(xs) > 1 else 0.0
        return f"{statistics.mean(xs) * k:.1f} ± {sd:.1f}"

    print("\n| row | ring modes (of 8) | ring % high-quality | grid modes (of 25) | grid % high-quality |")
    print("|---|---|---|---|---|")
    for row in PAPERS:
        print("| " + " | ".join(row) + " |")
    for recipe in names:
        cells = []
        for data in ("ring", "grid"):
            rs = [r for r in rows if r["recipe"] == recipe and r["data"] == data]
            cells += [ms([r["modes"] for r in rs]), ms([r["hq"] for r in rs], pct=True)] if rs else ["-", "-"]
        print(f"| gankit {recipe} ({a.seeds} seeds) | " + " | ".join(cells) + " |")
    total = {"ring": 8, "grid": 25}
    collapsed = [r for r in rows if r["modes"] < total[r["data"]]]
    healthy = [r for r in rows if r["modes"] == total[r["data"]]]
    ever = lambda rs: sum("mode_collapse" in r["warnings"] for r in rs)  # noqa: E731
    end = lambda rs: sum("mode_collapse" in r["active_at_end"] for r in rs)  # noqa: E731
    print(f"\nmode-collapse warning still active at the last step: {end(collapsed)} of {len(collapsed)} "
          f"collapsing runs (a mode missed), {end(healthy)} of {len(healthy)} healthy runs (all captured); "
          f"raised at some point of the run: {ever(collapsed)} of {len(collapsed)} and {ever(healthy)} of "
          f"{len(healthy)}")
    print(f"{len(rows)} runs in {wall / 60:.1f} min wall-clock ({a.jobs} at a time)")


if __name__ == "__main__":
    main()
