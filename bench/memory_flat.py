"""Does memory stay flat over a long run? Resident memory of a real `gankit train` process,
sampled while it trains, against the step it has reached.

Usage:  python bench/memory_flat.py [--model mlp] [--steps 10000] [--every 5]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def last_step(metrics: Path) -> int:
    try:
        lines = metrics.read_text().splitlines()
        return json.loads(lines[-1])["step"] if lines else 0
    except (OSError, ValueError, KeyError):
        return 0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="mlp")
    p.add_argument("--steps", type=int, default=10_000)
    p.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        proc = subprocess.Popen([sys.executable, "-m", "gankit", "train", "--model", a.model, "--steps",
                                 str(a.steps), "--out", str(out), "--no-progress"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        print(f"{'step':>6} {'RSS MB':>7}")
        while proc.poll() is None:
            time.sleep(a.every)
            if proc.poll() is None:
                print(f"{last_step(out / 'metrics.jsonl'):>6} {rss_mb(proc.pid):>7.0f}", flush=True)
        print(f"exit {proc.returncode}")


if __name__ == "__main__":
    main()
