"""gankit lab's performance targets (issue 19), measured in Debian's Chromium driven by Playwright.

Usage:  python bench/lab.py [--root /tmp/labbench] [--steps 400] [--lines 200000] [--out lab.json]

1. **Cost to training.** The same DCGAN run (Fashion-MNIST, width 16, ``--steps``, one thread) is
   trained without the lab, with the lab serving its folder and nobody watching, and with a browser
   page open on it (curves and samples streaming), twice each in turn (A B C A B C, so drift on a
   shared machine hits all alike); the img/s of each is its steps x batch over its training
   seconds after the first log (metrics.jsonl's ``time``).
2. **200,000 metrics lines.** A run folder whose metrics.jsonl holds ``--lines`` training records
   (synthetic numbers; the lab reads any run's file alike): the time the page takes to draw its
   curves, the size and time of the downsampled ``/api/metrics`` answer, and of a zoomed one.
3. **The 2-D animation.** A short ring run's samples (D's field, points, arrows as JSON): the time
   the page takes to draw one frame (``drawField``, averaged over every snapshot), i.e. the frame
   rate the browser can animate at, and the frames actually shown by the play button in 3 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.browser: Debian's Chromium, as the tests launch it


def serve(root: Path, token: str) -> tuple[str, Any]:
    import uvicorn

    from gankit.lab import _free_port
    from gankit.lab.server import make_app

    port = _free_port("127.0.0.1")
    server = uvicorn.Server(uvicorn.Config(make_app(root, token), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}/?token={token}", server


def train_cmd(out: Path, steps: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "gankit", "train", "--out", str(out), "--steps", str(steps), "--no-progress",
            "--checkpoint-every", str(steps), *extra]


def img_per_s(run: Path, batch: int) -> float:
    recs = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    recs = [r for r in recs if "loss_d" in r and "time" in r]
    first, last = recs[0], recs[-1]  # from the first log on: the start-up is not the lab's cost
    return (last["step"] - first["step"]) * batch / (last["time"] - first["time"])


def cost(root: Path, steps: int, browser: Any) -> dict[str, Any]:
    extra = ["--data", "fashion-mnist", "--model", "dcgan", "--width", "16", "--batch-size", "64",
             "--log-every", "20", "--sample-every", "100"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    rows = []
    for i, mode in enumerate(("no lab", "lab, nobody watching", "lab, page open") * 2):
        run = root / f"dcgan-{i}"
        shutil.rmtree(run, ignore_errors=True)
        server = None
        if mode != "no lab":
            base, server = serve(root, "bench")
        proc = subprocess.Popen(train_cmd(run, steps, extra), env=env, stdout=subprocess.DEVNULL)
        page = None
        if mode == "lab, page open":
            while not (run / "metrics.jsonl").exists() and proc.poll() is None:
                time.sleep(0.1)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"{base}#run={run.name}")
        assert proc.wait() == 0
        if page is not None:
            page.close()
        if server is not None:
            server.should_exit = True
        rows.append({"mode": mode, "img_per_s": round(img_per_s(run, 64), 1)})
    mean = {m: sum(r["img_per_s"] for r in rows if r["mode"] == m) / 2 for m in dict.fromkeys(r["mode"] for r in rows)}
    return {"runs": rows, "ratio_to_no_lab": {m: round(v / mean["no lab"], 3) for m, v in mean.items()}}


def many_lines(root: Path, lines: int, browser: Any) -> dict[str, Any]:
    import urllib.request

    run = root / "long"
    shutil.rmtree(run, ignore_errors=True)
    (run / "samples").mkdir(parents=True)
    (run / "config.yaml").write_text(f"data:\n  source: fashion-mnist\ntrain:\n  steps: {lines * 10}\n")
    rnd = random.Random(0)
    with open(run / "metrics.jsonl", "w") as f:
        for i in range(lines):
            step = (i + 1) * 10
            f.write(json.dumps({"step": step, "loss_d": 1.2 + rnd.random() * 0.1, "loss_g": 0.8 + rnd.random() * 0.1,
                                "d_real": 0.5 + rnd.random() * 0.05, "d_fake": 0.45 + rnd.random() * 0.05,
                                "grad_g": rnd.random(), "grad_d": rnd.random(), "time": step * 0.01}) + "\n")
    base, server = serve(root, "bench")
    try:
        api = base.split("?")[0] + "api/metrics?run=long"
        t0 = time.perf_counter()
        body = urllib.request.urlopen(api).read()
        full_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        zoom = urllib.request.urlopen(api + f"&lo={lines * 5}&hi={lines * 5 + 20_000}").read()
        zoom_s = time.perf_counter() - t0
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        t0 = time.perf_counter()
        page.goto(f"{base}#run=long")
        page.wait_for_function("window.lab && lab.charts['c-d'] && lab.charts['c-d'].data[0].length > 0",
                               timeout=120_000)
        page_s = time.perf_counter() - t0
        points = page.evaluate("lab.charts['c-d'].data[0].length")
        # responsive: a click on the page's slider is handled at once
        t0 = time.perf_counter()
        page.evaluate("1 + 1")
        roundtrip_ms = (time.perf_counter() - t0) * 1000
        page.close()
    finally:
        server.should_exit = True
    return {"lines": lines, "api_s": round(full_s, 3), "api_bytes": len(body), "zoom_s": round(zoom_s, 3),
            "zoom_bytes": len(zoom), "page_drawn_s": round(page_s, 2), "points_drawn": points,
            "page_roundtrip_ms": round(roundtrip_ms, 1)}


def animation(root: Path, browser: Any) -> dict[str, Any]:
    run = root / "ring"
    shutil.rmtree(run, ignore_errors=True)
    subprocess.run(train_cmd(run, 600, ["--data", "ring", "--model", "mlp", "--sample-every", "20"]), check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    base, server = serve(root, "bench")
    try:
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{base}#run=ring")
        page.wait_for_function("document.querySelector('#field').dataset.points > 0", timeout=30_000)
        steps = page.evaluate("lab.samples")
        snaps = [page.evaluate(f"fetch('api/sample?run=ring&step={s}&kind=json&token=bench').then(r => r.json())")
                 for s in steps]
        page.evaluate("(s) => { window._snaps = s; }", snaps)
        ms = page.evaluate("""() => { const c = document.querySelector('#field'); const t0 = performance.now();
            for (let k = 0; k < 3; k++) for (const s of window._snaps) drawField(c, s);
            return (performance.now() - t0) / (3 * window._snaps.length); }""")
        page.evaluate("document.querySelector('#slider').value = 0")
        page.click("#btn-play")
        seen = page.evaluate("""() => new Promise(done => { const s = document.querySelector('#slider');
            let n = 0, last = s.value; const t0 = performance.now();
            const tick = () => { if (s.value !== last) { n++; last = s.value; }
              if (performance.now() - t0 < 3000) requestAnimationFrame(tick); else done(n); };
            requestAnimationFrame(tick); })""")
        page.close()
    finally:
        server.should_exit = True
    return {"snapshots": len(steps), "draw_ms": round(ms, 2), "drawable_fps": round(1000 / ms, 1),
            "played_frames_in_3s": seen, "played_fps": round(seen / 3, 1)}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=Path("/tmp/labbench"))
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--lines", type=int, default=200_000)
    p.add_argument("--out", type=Path, default=Path("lab.json"))
    p.add_argument("--only", choices=("cost", "lines", "animation"), action="append")
    a = p.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from tests.browser import launch

    a.root.mkdir(parents=True, exist_ok=True)
    parts = a.only or ["animation", "lines", "cost"]
    out: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = launch(pw)
        if "animation" in parts:
            out["animation"] = animation(a.root, browser)
            print("2-D animation:", out["animation"], flush=True)
        if "lines" in parts:
            out["lines"] = many_lines(a.root, a.lines, browser)
            print("many lines:", out["lines"], flush=True)
        if "cost" in parts:
            out["cost"] = cost(a.root, a.steps, browser)
            print("cost to training:", out["cost"], flush=True)
        browser.close()
    a.out.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
