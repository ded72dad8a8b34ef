"""The floor of the metrics: Fashion-MNIST's test set scored as if it were generated.

Usage:  python bench/eval_floor.py [--features fmnist] [--n 10000]

No generator can be told from the training data better than fresh real data can, so the test set
against the training set gives the best numbers any model can reach with these features.
"""

from __future__ import annotations

import argparse
import time

from gankit.data.fashion_mnist import load_arrays
from gankit.metrics import get_extractor, images_key
from gankit.metrics.evaluate import METRICS, batches_of, evaluate_images


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--features", default="fmnist")
    p.add_argument("--n", type=int, default=10_000, help="test images used (10000 = all)")
    a = p.parse_args()
    train, _ = load_arrays("train")
    test, _ = load_arrays("test")
    extractor = get_extractor(a.features)
    metrics = [m for m in METRICS.names() if m != "modes"]
    key = images_key("fashion-mnist", train)  # what a default run's evaluation uses: cache shared
    t0 = time.perf_counter()
    res = evaluate_images(batches_of(test[: a.n]), train, key, extractor, metrics)
    print(f"Fashion-MNIST test ({res.n_fake}) vs train ({res.n_real}), features {res.features}, "
          f"{time.perf_counter() - t0:.1f} s")
    for k, v in res.values.items():
        print(f"  {k:<12} {v:.6g}")


if __name__ == "__main__":
    main()
