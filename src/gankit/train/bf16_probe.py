"""Whether bf16 autocast pays on this CPU: measured once, then cached per machine.

A CPU's flags say whether it *has* bf16 instructions (AVX512-BF16, AMX), not whether oneDNN's bf16
kernels beat fp32 on it: on this project's AMD Zen 4 a DCGAN step ran 1.6-1.9x faster in bf16, on
an Intel Xeon with AVX512-BF16 but no AMX 0.71-0.88x as fast (docs/BENCHMARKS.md, "Mixed
precision"). So ``--precision auto`` times a few convolutions of DCGAN's shapes forward and
backward both ways (about a second) and picks bf16 only where it is at least ``MIN_SPEEDUP`` as
fast. The answer is kept in ``<cache>/precision-probe.json``, keyed by the CPU's model and flags,
torch's version and the thread count, so each machine measures once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import torch
from torch import nn

MIN_SPEEDUP = 1.2  # bf16 must be this much faster: below it the casts and bf16's rounding are not worth it
FILE = "precision-probe.json"


def machine_key(cpuinfo: str) -> str:
    """What the answer depends on: the CPU (its model name and flags), torch, the thread count."""
    lines = [ln for ln in cpuinfo.splitlines() if ln.startswith(("model name", "flags"))][:2]
    text = "\n".join([*lines, platform.machine(), torch.__version__, str(torch.get_num_threads())])
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def step_seconds(bf16: bool, reps: int = 6) -> float:
    """The fastest of ``reps`` forward + backward passes of a small DCGAN-shaped stack (batch 32:
    a stride-2 convolution 64 -> 128 channels at 16x16, another to 256 at 8x8, a transposed one
    back up), in fp32 or under bf16 autocast, after two passes of warm-up."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(64, 128, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(128, 256, 4, 2, 1),
                        nn.LeakyReLU(0.2), nn.ConvTranspose2d(256, 64, 4, 4, 0))
    net = net.to(memory_format=torch.channels_last)
    x = torch.randn(32, 64, 16, 16).to(memory_format=torch.channels_last)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = net(x)
        y.float().square().mean().backward()

    best = math.inf
    for i in range(reps + 2):
        t = time.perf_counter()
        step()
        if i >= 2:
            best = min(best, time.perf_counter() - t)
    return best


def measure() -> dict[str, float | bool]:
    """Both precisions' step times, interleaved twice (a machine's noise hits both alike)."""
    fp32, bf16 = step_seconds(False), step_seconds(True)
    fp32, bf16 = min(fp32, step_seconds(False)), min(bf16, step_seconds(True))
    fp32_ms, bf16_ms = round(fp32 * 1e3, 2), round(bf16 * 1e3, 2)
    return {"fp32_ms": fp32_ms, "bf16_ms": bf16_ms, "bf16": fp32_ms / bf16_ms >= MIN_SPEEDUP}


def bf16_pays(cpuinfo: str, cache_dir: Path) -> bool:
    """Whether bf16 autocast is at least ``MIN_SPEEDUP`` as fast as fp32 here: from the cache, or
    measured (and cached; a note on stderr says what was measured). Under torchrun with nothing
    cached, every rank would measure at once, on shared cores, and might disagree: fp32 then."""
    path = cache_dir / FILE
    key = machine_key(cpuinfo)
    known: dict = {}
    with contextlib.suppress(OSError, ValueError):
        known = json.loads(path.read_text())
    if isinstance(known, dict) and isinstance(known.get(key), dict) and isinstance(known[key].get("bf16"), bool):
        return bool(known[key]["bf16"])
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return False
    with torch.random.fork_rng(devices=[]):  # the run's random state is not the probe's to use
        found = measure()
    print(f"precision auto: bf16 autocast measured at {found['fp32_ms'] / found['bf16_ms']:.2f}x fp32's speed "
          f"on this CPU ({found['bf16_ms']} against {found['fp32_ms']} ms a probe step): "
          f"{'bf16' if found['bf16'] else 'fp32'} (kept in {path})", file=sys.stderr)
    from gankit.fsutil import atomic_write_text

    with contextlib.suppress(OSError):  # an unwritable cache: measured again next time
        known = known if isinstance(known, dict) else {}
        atomic_write_text(path, json.dumps({**known, key: found}, indent=1) + "\n")
    return bool(found["bf16"])


__all__ = ["FILE", "MIN_SPEEDUP", "bf16_pays", "machine_key", "measure", "step_seconds"]
