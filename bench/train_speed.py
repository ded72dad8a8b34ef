"""Training speed of gankit's own loop, as a share of what this CPU can do.

Usage:  source scripts/env.sh; python bench/train_speed.py [--seconds 10] [--threads N] [--cases ...]

For each case (model, image size, batch) in a fresh process, through the same ``fake_for_d`` /
``d_step`` / ``g_step`` the trainer runs (K = 1, the fake batch reused for G's step as the trainer
does by default, Fashion-MNIST in memory): img/s, seconds per iteration split into data / D step
(including G's forward pass that makes the fake batch) / G step, peak RSS, and the achieved FLOP/s (FLOPs of one iteration counted by
``torch.utils.flop_counter``) against this machine's dense-convolution throughput, measured in the
same process with the same thread count. Every figure is therefore a ratio to the machine's limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

CASES = {  # name: (model, image size, batch)
    "mlp28-b64": ("mlp", 28, 64), "mlp28-b256": ("mlp", 28, 256),
    "dcgan32-b64": ("dcgan", 32, 64), "dcgan32-b256": ("dcgan", 32, 256),
    "dcgan64-b64": ("dcgan", 64, 64), "dcgan64-b256": ("dcgan", 64, 256),
    "dcgan28-b64": ("dcgan", 28, 64), "r3-28-b64": ("r3", 28, 64), "r3-32-b64": ("r3", 32, 64),
}


def conv_peak_flops(seconds: float = 3.0, precision: str = "fp32") -> float:
    """Best FLOP/s of a few dense convolutions (forward) at this thread count and precision: 4x4
    kernels as in DCGAN, strided and not, and a 1x1 (a plain matrix product). 3x3 kernels are left
    out: oneDNN may run them as Winograd, doing fewer multiplications than the nominal count."""
    import torch

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    best = 0.0
    for k, c, hw, stride in ((4, 256, 16, 1), (4, 256, 32, 2), (1, 512, 16, 1)):
        conv = torch.nn.Conv2d(c, c, k, stride=stride, padding=k // 2, bias=False).to(dtype)
        x = torch.randn(64, c, hw, hw, dtype=dtype)
        with torch.inference_mode():
            out = conv(x)
            flops = 2 * out.numel() * c * k * k
            n, t0 = 0, time.perf_counter()
            while time.perf_counter() - t0 < seconds / 3:
                conv(x)
                n += 1
        best = max(best, flops * n / (time.perf_counter() - t0))
    return best


def run_case(model: str, size: int, batch: int, seconds: float, reuse: bool = True,
             compile_: bool = False, adam: str = "fused", width: int = 0,
             precision: str = "fp32") -> dict[str, float]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from gankit.config import build_config
    from gankit.data import BatchOrder, load_data
    from gankit.resolve import resolve
    from gankit.train.state import TrainState
    from gankit.train.step import d_step, fake_for_d, g_step

    cfg = resolve(build_config(overrides={"model": model, "image_size": str(size), "batch_size": batch,
                                  "reuse_fake": reuse, "compile": compile_, "width": width,
                                  "precision": precision}))
    data = load_data(cfg.data)
    s = TrainState.create(cfg, data.shape, torch.device("cpu"))
    if adam != "fused":  # the trainer's default is fused; compare with torch's other two
        kw = {"foreach": adam == "foreach"}
        t = cfg.train
        s.opt_G = torch.optim.Adam(s.G.parameters(), lr=t.lr_g, betas=(t.beta1, t.beta2), **kw)
        s.opt_D = torch.optim.Adam(s.D.parameters(), lr=t.lr_d, betas=(t.beta1, t.beta2), **kw)
    order = BatchOrder(len(data), batch, 0)

    def iteration(i: int) -> tuple[float, float, float]:
        t0 = time.perf_counter()
        real = data.batch(order.indices(i))
        t1 = time.perf_counter()
        fake = fake_for_d(s, batch, keep_graph=reuse)
        d_step(s, real, fake)
        t2 = time.perf_counter()
        g_step(s, batch, fake if reuse else None)
        return t1 - t0, t2 - t1, time.perf_counter() - t2

    if not compile_:  # the flop counter cannot see inside compiled graphs: count in a twin
        with FlopCounterMode(display=False) as fc:
            iteration(0)
        flops = fc.get_total_flops()
    else:
        flops = run_case(model, size, batch, 0.0, reuse, False, adam, width, precision)["gflop_per_it"] * 1e9
    t_warm = time.perf_counter()
    for i in range(1, 4 if compile_ else 3):  # warm-up (and compilation)
        iteration(i)
    t_warm = time.perf_counter() - t_warm
    parts, n, t0 = [0.0, 0.0, 0.0], 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or n < 1:
        for k, v in enumerate(iteration(3 + n)):
            parts[k] += v
        n += 1
    dt = time.perf_counter() - t0
    peak = conv_peak_flops(precision=precision) if seconds else 0.0
    return {"img_per_s": batch * n / dt, "s_per_it": dt / n, "data": parts[0] / n, "d_step": parts[1] / n,
            "g_step": parts[2] / n, "gflop_per_it": flops / 1e9, "gflops": flops * n / dt / 1e9,
            "conv_peak_gflops": peak / 1e9, "warmup_s": t_warm, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0, help="timed seconds per case (10)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--cases", nargs="*", default=list(CASES), choices=list(CASES))
    p.add_argument("--no-reuse", action="store_true",
                   help="fresh noise for G's step (a second forward pass of G), as --no-reuse-fake")
    p.add_argument("--compile", action="store_true", help="torch.compile G and D, as --compile")
    p.add_argument("--adam", default="fused", choices=["fused", "foreach", "loop"],
                   help="Adam implementation (the trainer uses fused)")
    p.add_argument("--width", type=int, default=64,
                   help="DCGAN width: 64 (the DCGAN paper's, which the reference figures use); 0 = "
                        "gankit's default (32 for dcgan, 256 for mlp images); mlp cases keep their default")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                   help="as --precision of gankit train; the conv peak is measured in the same precision")
    p.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    a = p.parse_args()
    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
    if a.case:
        width = a.width if CASES[a.case][0] == "dcgan" else 0
        print(json.dumps(run_case(*CASES[a.case], a.seconds, not a.no_reuse, a.compile, a.adam, width,
                                  a.precision)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"LD_PRELOAD={os.environ.get('LD_PRELOAD', '') or '(none)'}, "
          f"fake batch {'not reused' if a.no_reuse else 'reused'}, {a.adam} Adam"
          f"{', compiled' if a.compile else ''}, dcgan width {a.width or 'default (32)'}, {a.precision}")
    print(f"{'case':<13} {'img/s':>7} {'s/it':>7} {'data':>6} {'D step':>7} {'G step':>7} "
          f"{'GFLOP/it':>9} {'GFLOP/s':>8} {'conv peak':>9} {'ratio':>6} {'RSS MB':>7}")
    for name in a.cases:
        flags = ["--no-reuse"] * a.no_reuse + ["--compile"] * a.compile + ["--adam", a.adam, "--width",
                                                                          str(a.width), "--precision", a.precision]
        out = subprocess.run([sys.executable, __file__, "--case", name, "--seconds", str(a.seconds),
                              "--threads", str(a.threads), *flags], capture_output=True, text=True,
                             check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        it = r["s_per_it"]
        print(f"{name:<13} {r['img_per_s']:>7.0f} {it:>7.4f} {100 * r['data'] / it:>5.1f}% "
              f"{100 * r['d_step'] / it:>6.1f}% {100 * r['g_step'] / it:>6.1f}% {r['gflop_per_it']:>9.2f} "
              f"{r['gflops']:>8.1f} {r['conv_peak_gflops']:>9.1f} {r['gflops'] / r['conv_peak_gflops']:>6.2f} "
              f"{r['peak_rss_mb']:>7.0f}" + (f"  (warm-up {r['warmup_s']:.0f} s)" if a.compile else ""))


if __name__ == "__main__":
    main()
