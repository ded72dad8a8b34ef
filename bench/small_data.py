"""Small data: adaptive discriminator augmentation (ADA; Karras et al. 2020) against none.

Usage:  python bench/small_data.py [--n 1500] [--steps 3000] [--seeds 0] [--root runs/small_data]
                                  [--set KEY=VALUE ...]

The case of project issue 20: a user's folder of a few thousand images, where D memorises the set.
A folder of ``--n`` Fashion-MNIST training images (a seeded random draw, written as 28x28 gray PNGs)
is built, and the default GAN (DCGAN, EMA of G) is trained on it for the same number of steps twice
per seed: as gankit trains such a folder by default (ADA on, since it holds fewer than 20,000
images) and with ``--no-ada``. A budget in steps keeps the comparison independent of the machine's
load; the seconds each run took are printed beside it.

Each run's G (its EMA) is scored by the FID of ``--n-fake`` samples in the shipped fmnist
classifier's features against Fashion-MNIST's 10,000 *test* images (none of which D has seen), and
against the ``--n`` training images themselves. Beside them: D(x), D(G(z)) and ADA's p and r_t on the
last log line, and the diagnosis warnings the run raised.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image


def build_folder(folder: Path, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` Fashion-MNIST training images drawn at random (``seed``) as PNGs in ``folder``
    (kept if already there); returns them as (n, 1, 28, 28) uint8."""
    from gankit.data.fashion_mnist import load_arrays

    images, _ = load_arrays("train")
    pick = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n]
    chosen = images[pick]
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.png"))) != n:
        for i, img in enumerate(chosen):
            Image.fromarray(img[0].numpy(), mode="L").save(folder / f"{i:05d}.png")
    return chosen


def fid_against(G: torch.nn.Module, cfg: object, real: torch.Tensor, name: str, n_fake: int) -> float:
    """FID (fmnist features) of ``n_fake`` samples of G against the uint8 images ``real``."""
    from gankit.metrics import get_extractor, images_key
    from gankit.metrics.evaluate import evaluate_images, generated_batches

    m = cfg.model  # type: ignore[attr-defined]
    fake = generated_batches(G, m.prior, m.latent_dim, n_fake, seed=12345)
    res = evaluate_images(fake, real, images_key(name, real), get_extractor("fmnist", "cpu"), ["fid"])
    return float(res.values["fid"])


def main(argv: list[str] | None = None) -> None:
    from gankit.api import train_config
    from gankit.config import build_config
    from gankit.config.load import parse_assignments
    from gankit.data.fashion_mnist import load_arrays

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1500, help="images in the folder")
    p.add_argument("--steps", type=int, default=3000, help="training budget per run (G updates)")
    p.add_argument("--seeds", type=int, nargs="*", default=[0], help="training seeds (one pair of runs each)")
    p.add_argument("--n-fake", type=int, default=10_000, help="samples per FID")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--root", default="runs/small_data")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides for both runs of a pair, as flags name them (e.g. ada_kimg=100)")
    p.add_argument("--precision", default="fp32", choices=["auto", "fp32", "bf16"])
    a = p.parse_args(argv)

    if a.threads:
        torch.set_num_threads(a.threads)
    root = Path(a.root)
    train_images = build_folder(root / f"fmnist-{a.n}", a.n)
    test_images, _ = load_arrays("test")
    rows = []
    for seed in a.seeds:
        for ada in (True, False):
            out = root / f"{'ada' if ada else 'no-ada'}-seed{seed}"
            cfg = build_config(overrides={
                **parse_assignments(a.set), "data": str(root / f"fmnist-{a.n}"), "image_size": 28,
                "steps": a.steps, "seed": seed,
                "out": str(out), "progress": False, "precision": a.precision, "ada": ada})
            t0 = time.perf_counter()
            run = train_config(cfg)
            seconds = time.perf_counter() - t0
            last = [r for r in run.history if "loss_d" in r][-1]
            warnings = sorted({r["kind"] for r in run.history if r.get("event") == "warning"})
            row = {"ada": ada, "seed": seed, "steps": run.step, "seconds": round(seconds),
                   "fid_test": round(fid_against(run.G, run.config, test_images, "fmnist-test", a.n_fake), 2),
                   "fid_train": round(fid_against(run.G, run.config, train_images, f"fmnist-{a.n}", a.n_fake), 2),
                   "d_real": round(last["d_real"], 3), "d_fake": round(last["d_fake"], 3),
                   "ada_p": round(last["ada_p"], 3) if "ada_p" in last else None,
                   "ada_rt": round(last["ada_rt"], 3) if "ada_rt" in last else None,
                   "warnings": warnings}
            rows.append(row)
            print(json.dumps(row), flush=True)
    (root / "results.json").write_text(json.dumps({"n": a.n, "steps": a.steps, "rows": rows}, indent=1))

    print(f"\n{a.n} Fashion-MNIST images in a folder, DCGAN, {a.steps} steps per run\n")
    print("| run | seed | FID vs test | FID vs train | D(x) | D(G(z)) | p | r_t | warnings | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        p_, rt = ("-", "-") if r["ada_p"] is None else (f"{r['ada_p']:.2f}", f"{r['ada_rt']:.2f}")
        print(f"| {'ADA (default)' if r['ada'] else '--no-ada'} | {r['seed']} | {r['fid_test']:.2f} | "
              f"{r['fid_train']:.2f} | {r['d_real']:.2f} | {r['d_fake']:.2f} | {p_} | {rt} | "
              f"{', '.join(r['warnings']) or 'none'} | {r['seconds']} |")


if __name__ == "__main__":
    main()
