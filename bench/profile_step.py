"""Where one training step of the default run spends its time.

Usage:  source scripts/env.sh; python bench/profile_step.py [--steps 60] [--threads 2] [--set key=value ...]

Builds the default run (``gankit train`` with no flags: DCGAN on Fashion-MNIST, its precision
resolved as the trainer resolves it) or the run the ``--set`` overrides describe, warms up, then
runs ``--steps`` iterations of the GAN task's own ``iteration`` (Algorithm 1 with the EMA and the
gradient-norm signals, exactly as ``gankit train`` runs it) under ``torch.profiler``. Each
operator's *self* time (time in it, not in the operators it calls) is put in one category:

- convolutions: forward and backward of (transposed) convolutions and matrix products;
- normalisation and activations: batch norm, leaky ReLU, ReLU, tanh, their backward passes;
- optimiser: Adam's update (the fused kernel, or the foreach ops) and zeroing the gradients;
- EMA: the moving average of G's weights;
- data: drawing the real minibatch (indexing the uint8 set, converting to [-1, 1] floats);
- other: losses, casts, copies, autograd's own bookkeeping, everything else.

It prints each category's share and the ten costliest operators. Self times add up to the
profiled wall time only roughly (the profiler's own overhead is excluded); the shares are what
matter, and the wall time per step without the profiler is printed beside them.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import torch

CATEGORIES = (  # (category, substrings of an operator's name), first match wins
    ("optimiser", ("adam", "optimizer", "zero_", "_foreach_add", "_foreach_mul", "_foreach_addcmul",
                   "_foreach_addcdiv", "_foreach_sqrt", "_foreach_div")),
    ("EMA", ("_foreach_lerp",)),
    ("convolutions", ("conv", "mkldnn_convolution", "addmm", "mm", "linear", "matmul", "bmm")),
    ("normalisation/activations", ("batch_norm", "leaky_relu", "relu", "tanh", "sigmoid", "threshold",
                                   "native_layer_norm", "gelu", "silu", "elu")),
)


def category(name: str, in_data: bool) -> str:
    if in_data:
        return "data"
    low = name.lower()
    for cat, keys in CATEGORIES:
        if any(k in low for k in keys):
            return cat
    return "other"


def main(argv: list[str] | None = None) -> None:
    from gankit.config import build_config
    from gankit.config.load import parse_assignments
    from gankit.data import BatchOrder, load_data
    from gankit.resolve import resolve
    from gankit.tasks.gan import algorithm1
    from gankit.train.state import TrainState

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=60, help="profiled iterations (after 10 warm-up ones)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides, as flags")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    overrides = parse_assignments(a.set)
    cfg = resolve(build_config(overrides=overrides))
    data = load_data(cfg.data, cfg.train.seed)
    s = TrainState.create(cfg, data.shape, torch.device("cpu"))
    b = cfg.train.batch_size
    order = BatchOrder(len(data), b, cfg.train.seed)
    data_time = [0.0]

    def next_labelled() -> tuple[torch.Tensor, None]:
        t0 = time.perf_counter()
        with torch.profiler.record_function("gankit.data"):
            x = data.batch(order.indices(s.real_batches))
        s.real_batches += 1
        data_time[0] += time.perf_counter() - t0
        return x, None

    def iteration() -> None:
        algorithm1(s, next_labelled)
        s.step += 1

    for _ in range(10):
        iteration()
    data_time[0] = 0.0
    t0 = time.perf_counter()
    for _ in range(a.steps):
        iteration()
    wall = (time.perf_counter() - t0) / a.steps
    data_share_wall = data_time[0] / a.steps / wall

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        for _ in range(a.steps):
            iteration()
    events = prof.events()
    # the data scope's interval, to put the operators inside it in "data"
    data_spans = [(e.time_range.start, e.time_range.end) for e in events if e.name == "gankit.data"]

    def inside_data(e) -> bool:
        return any(s0 <= e.time_range.start and e.time_range.end <= s1 for s0, s1 in data_spans)

    per_cat: dict[str, float] = defaultdict(float)
    per_op: dict[str, float] = defaultdict(float)
    for e in events:
        if e.name == "gankit.data" or e.name.startswith("Optimizer.") or e.name.startswith("##"):
            continue  # scopes, not operators: their operators are counted themselves
        self_us = e.self_cpu_time_total
        per_cat[category(e.name, inside_data(e))] += self_us
        per_op[e.name] += self_us
    total = sum(per_cat.values())
    print(f"config: {cfg.model.arch} width {s.width}, {cfg.data.source}, batch {b}, loss {cfg.train.loss}, "
          f"precision {s.precision}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"wall time per step (no profiler): {1000 * wall:.2f} ms ({b / wall:.0f} img/s); "
          f"data {100 * data_share_wall:.1f} % of it")
    print(f"{'category':<28} {'share':>6} {'ms/step':>8}")
    for cat, us in sorted(per_cat.items(), key=lambda kv: -kv[1]):
        print(f"{cat:<28} {100 * us / total:>5.1f}% {us / 1000 / a.steps:>8.2f}")
    print("\ncostliest operators (self time):")
    for name, us in sorted(per_op.items(), key=lambda kv: -kv[1])[:10]:
        print(f"  {name:<48} {100 * us / total:>5.1f}% {us / 1000 / a.steps:>7.2f} ms/step")
    print("\n'other', its costliest operators:")
    others = {n: us for n, us in per_op.items() if category(n, False) == "other"}
    for name, us in sorted(others.items(), key=lambda kv: -kv[1])[:8]:
        print(f"  {name:<48} {100 * us / total:>5.1f}% {us / 1000 / a.steps:>7.2f} ms/step")


if __name__ == "__main__":
    main()
