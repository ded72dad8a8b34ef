"""The lab's page as one static HTML file: a run's curves, samples (or 2-D fields) and timeline as
they are now, with no server. It is RUN/report.html (``build_report``, written at the end of
training and by ``gankit report RUN``) and ``gankit lab RUN_DIR --export FILE.html``: one view, two
modes, so the report and the lab never disagree. Stdlib only: training imports it, never the lab's
web server.

The page is the lab's own (``static/index.html``, ``field.js``, ``lab.js``; ``explore.js``,
``compare.js`` and ``launch.js`` remove their panels in an export) with uPlot, the styles and the data
inlined: the downsampled series, the events, and up to ``MAX_SAMPLES`` sample steps spread over the
run (grids as PNG data URIs; a 2-D run's field snapshots as JSON). ``lab.js`` sees
``window.LAB_STATIC`` and reads from it instead of the server; the steering buttons are hidden.
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
from pathlib import Path
from typing import Any

from gankit.errors import GankitError
from gankit.fsutil import atomic_write_bytes
from gankit.report.runs import Refused, resolve_run, run_series, run_summary

__all__ = ["MAX_SAMPLES", "STATIC", "export_html", "finite"]

#: The page's files (index.html, lab.js, field.js, lab.css, vendor/uPlot), served by the lab too.
STATIC = Path(__file__).parent / "static"

#: Sample steps kept in an export, spread evenly over the run (the first and the last included).
MAX_SAMPLES = 40


def _spread(steps: list[int], most: int) -> list[int]:
    if len(steps) <= most:
        return steps
    return sorted({steps[round(i * (len(steps) - 1) / (most - 1))] for i in range(most)})


def finite(obj: Any) -> Any:
    """JSON-safe: NaN and infinities (a diverged loss) become None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite(v) for v in obj]
    return obj


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element (no ``</script>`` can end it early)."""
    return json.dumps(data, allow_nan=False).replace("</", "<\\/").replace("<!--", "<\\!--")


def export_html(run_dir: str | os.PathLike, out: str | os.PathLike | None = None,
                max_samples: int = MAX_SAMPLES, below: str = "", title: str | None = None) -> Path:
    """Write the lab's page of ``run_dir`` as a self-contained HTML file ``out`` (default
    RUN_DIR/lab.html) and return its path. ``below``: HTML put under the page's timeline (the
    report's summary, evaluation table, diagnosis and config); ``title``: the page's title."""
    path = Path(run_dir).resolve()
    try:
        run = resolve_run(path.parent, path.name)
    except Refused:
        raise GankitError(f"{run_dir} is not a gankit run directory (no config.yaml)") from None
    summary = run_summary(path.parent, path.name, count_self=False)
    metrics = run_series(run) | {"full": True}  # no server to load a zoomed range from
    steps = _spread(summary["samples"], max_samples)
    images: dict[int, str] = {}
    fields: dict[int, Any] = {}
    for step in steps:
        if summary["two_d"]:
            try:
                fields[step] = json.loads((run.samples_dir / f"step-{step:06d}.json").read_text())
            except (OSError, ValueError):
                continue
        else:
            try:
                png = (run.samples_dir / f"step-{step:06d}.png").read_bytes()
            except OSError:
                continue
            images[step] = "data:image/png;base64," + base64.b64encode(png).decode()
    status = summary["status"] if summary["status"] != "running" else "running (exported)"
    summary |= {"samples": sorted(fields or images), "latest_sample": max(fields or images, default=None),
                "status": status}
    data = finite({"summary": summary, "metrics": metrics, "images": images, "fields": fields})
    page = (STATIC / "index.html").read_text(encoding="utf-8")
    vendor = STATIC / "vendor"

    def js(path: Path) -> str:  # inside <script>: a "</script" in a string literal must not end it
        return "<script>" + path.read_text(encoding="utf-8").replace("</script", "<\\/script") + "</script>"

    inline = {
        '<link rel="stylesheet" href="/static/vendor/uPlot.min.css">':
            "<style>" + (vendor / "uPlot.min.css").read_text(encoding="utf-8") + "</style>",
        '<link rel="stylesheet" href="/static/lab.css">':
            "<style>" + (STATIC / "lab.css").read_text(encoding="utf-8") + "</style>",
        '<script src="/static/vendor/uPlot.iife.min.js"></script>': js(vendor / "uPlot.iife.min.js"),
        '<script src="/static/field.js"></script>': js(STATIC / "field.js"),
        '<script src="/static/lab.js"></script>':
            f"<script>window.LAB_STATIC = {_script_json(data)};</script>\n" + js(STATIC / "lab.js"),
        '<script src="/static/explore.js"></script>': js(STATIC / "explore.js"),  # removes its panel
        '<script src="/static/compare.js"></script>': js(STATIC / "compare.js"),  # removes its panel
        '<script src="/static/launch.js"></script>': js(STATIC / "launch.js"),  # removes its panels
    }
    if below:
        inline['<!-- below -->'] = f'<section id="report-below">{below}</section>'
    if title is not None:  # the report's own name, in the tab and the heading (the lab's page says "gankit lab")
        inline["<title>gankit lab</title>"] = f"<title>{html.escape(title)}</title>"
        inline["<h1>gankit lab</h1>"] = f"<h1>{html.escape(title)}</h1>"
    for tag, text in inline.items():
        if tag not in page:
            raise AssertionError(f"static/index.html lacks {tag}")
        page = page.replace(tag, text)
    target = Path(out) if out is not None else run.path / "lab.html"
    # a name that is not UTF-8 (a folder's path in data.source) is shown escaped, never a crash
    atomic_write_bytes(target, page.encode("utf-8", "backslashreplace"))
    return target
