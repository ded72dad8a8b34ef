"""Assemble a self-contained HTML report for a gankit run directory.

The page needs no JavaScript and no network: plots and sample pictures are embedded as
``data:image/png;base64,...``. It is safe to build while training is still running: a
half-written last line of ``metrics.jsonl`` is skipped, and missing metrics or samples are
reported in the page instead of failing.
"""

from __future__ import annotations

import base64
import html
import math
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from gankit import __version__
from gankit.errors import GankitError
from gankit.fsutil import atomic_write_text
from gankit.report import plots
from gankit.rundir import RunDir, step_of
from gankit.verdict import equilibrium

__all__ = ["build_report"]

#: Keys with their own plot or no plot; every other numeric key gets a small plot.
STANDARD_KEYS = frozenset({"step", "time", "img_per_s", "loss_d", "loss_g", "d_real", "d_fake",
                           "modes_total", "classes_total", "eval_seconds"})
#: The diagnosis signal each failure is read from: its warnings are marked on that plot.
SIGNAL_OF = {"diversity": "mode_collapse", "modes": "mode_collapse", "classes": "mode_collapse",
             "grad_g": "diminished_gradient", "grad_d": "divergence"}
#: data.source values whose samples are 2-D probability-field pictures.
TWO_D_SOURCES = frozenset({"ring", "grid"})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# --------------------------------------------------------------------------- metrics


def _number(value: Any) -> float | None:
    """A JSON value as float, or None if it is not a number (bools are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _clean_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with a numeric step, sorted by step (stable). gankit never logs a step twice for
    training (a resumed run drops the lines past its checkpoint), but ``gankit eval`` may append
    the metrics of an earlier checkpoint after later training lines."""
    out: list[dict[str, Any]] = []
    for rec in records:
        step = _number(rec.get("step"))
        if step is None or not math.isfinite(step):
            continue
        out.append({**rec, "step": int(step) if step.is_integer() else step})
    out.sort(key=lambda r: r["step"])
    return out


def _series(records: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(steps, values) for the records whose ``key`` holds a finite number."""
    xs, ys = [], []
    for rec in records:
        v = _number(rec.get(key))
        if v is not None and math.isfinite(v):
            xs.append(float(rec["step"]))
            ys.append(v)
    return xs, ys


def _last(records: list[dict[str, Any]], key: str) -> float | None:
    """Value of ``key`` in the last record that has it as a number (may be NaN)."""
    for rec in reversed(records):
        v = _number(rec.get(key))
        if v is not None:
            return v
    return None


def _extra_keys(records: list[dict[str, Any]]) -> list[str]:
    """Numeric keys beyond the standard ones, in order of first appearance."""
    seen: dict[str, None] = {}
    for rec in records:
        for key, value in rec.items():
            if key not in STANDARD_KEYS and key not in seen and _number(value) is not None:
                seen[key] = None
    return list(seen)


# --------------------------------------------------------------------------- samples


@dataclass
class _Sample:
    step: int
    path: Path
    data: bytes = b""


def _find_samples(run: RunDir) -> list[_Sample]:
    return [_Sample(step_of(p) or 0, p) for p in run.samples()]


def _select_evenly(n: int, k: int) -> list[int]:
    """Up to k indices of range(n), evenly spaced, always with the first and the last."""
    if n <= k:
        return list(range(n))
    if k == 1:
        return [n - 1]
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


def _read_png(path: Path) -> bytes | None:
    """The file's bytes if it is a complete PNG, else None (vanished, partial, not PNG)."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(_PNG_SIGNATURE) or data[-8:-4] != b"IEND":
        return None
    return data


# --------------------------------------------------------------------------- config


def _resolved_html(run: RunDir, cfg: dict[str, Any]) -> str:
    """What ``precision: auto`` resolved to on the machine that trained, read from the newest
    checkpoint's state.json (config.yaml keeps ``auto`` as written)."""
    train = cfg.get("train")
    if not isinstance(train, dict) or train.get("precision", "auto") != "auto":
        return ""
    meta = run.checkpoint_state()
    if meta is None or not meta.get("precision"):
        return ""
    return (f'<p class="note">precision: auto trained in {_esc(str(meta["precision"]))} '
            f'(the newest checkpoint, step {_esc(str(meta.get("step")))}).</p>')


def _load_config(path: Path) -> tuple[str, dict[str, Any], str | None]:
    """(text to show, parsed mapping or {}, note about problems or None)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise GankitError(f"cannot read {path}: {e}") from e
    if not text.strip():
        return "", {}, "config.yaml is empty (the run may just be starting)."
    try:
        cfg = yaml.safe_load(text)
    except yaml.YAMLError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        return text, {}, f"config.yaml could not be parsed ({first}); shown as written."
    if not isinstance(cfg, dict):
        return text, {}, "config.yaml is not a mapping of sections; shown as written."
    shown = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return shown, cfg, None


# --------------------------------------------------------------------------- page


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;
 max-width:1180px;margin:0 auto;padding:16px 24px;line-height:1.45;background:#fff}
h1{font-size:1.5em;margin:.2em 0}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.path{color:#666;font-size:.9em;word-break:break-all}
.summary{background:#f5f7fa;border:1px solid #e1e5ea;border-radius:6px;padding:10px 14px}
.summary .nums{font-variant-numeric:tabular-nums}
.verdict{margin:.4em 0 0}
.note{color:#666;font-style:italic}
pre.config{background:#f8f8f8;border:1px solid #e4e4e4;border-radius:6px;padding:10px 14px;
 overflow-x:auto;font-size:.88em}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plots figure{margin:0}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.grid figure{margin:0;text-align:center}
figure img{max-width:100%;height:auto;border:1px solid #eee}
.pixel img{image-rendering:pixelated;width:100%}
figcaption{font-size:.85em;color:#555}
.field img{width:auto;max-width:100%}
footer{margin-top:2.5em;color:#888;font-size:.85em;border-top:1px solid #eee;padding-top:.5em}
"""


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _img(data: bytes, alt: str, css_class: str = "") -> str:
    cls = f' class="{_esc(css_class)}"' if css_class else ""
    b64 = base64.b64encode(data).decode("ascii")
    return f'<img{cls} alt="{_esc(alt)}" src="data:image/png;base64,{b64}">'


def _fmt(value: float | None) -> str:
    if value is None:
        return "\u2013"
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def _summary_html(records: list[dict[str, Any]], metrics_exists: bool) -> str:
    if not records:
        why = "" if metrics_exists else " (metrics.jsonl not found)"
        return (
            '<div class="summary"><p class="note">No metrics logged yet'
            f"{_esc(why)}. The page will fill in as training logs steps.</p></div>"
        )
    d_real, d_fake = _last(records, "d_real"), _last(records, "d_fake")
    parts = [
        f"latest step <b>{_esc(records[-1]['step'])}</b>",
        f"loss_d {_esc(_fmt(_last(records, 'loss_d')))}",
        f"loss_g {_esc(_fmt(_last(records, 'loss_g')))}",
        f"D(x) {_esc(_fmt(d_real))}",
        f"D(G(z)) {_esc(_fmt(d_fake))}",
    ]
    ips = _last(records, "img_per_s")
    if ips is not None:
        parts.append(f"{_esc(_fmt(ips))} img/s")
    return (
        '<div class="summary"><div class="nums">'
        + " &middot; ".join(parts)
        + f'</div><p class="verdict">{_esc(equilibrium(d_real, d_fake).sentence)}</p></div>'
    )


def _plots_html(records: list[dict[str, Any]], events: list[dict[str, Any]] | None = None) -> str:
    if not records:
        return '<p class="note">No metrics yet, so nothing to plot.</p>'
    events = events or []
    out = []
    d_x, d_y = _series(records, "loss_d")
    g_x, g_y = _series(records, "loss_g")
    if d_y or g_y:
        png = plots.plot_losses((d_x, d_y), (g_x, g_y))
        out.append(f"<figure>{_img(png, 'Losses: loss_d and loss_g against step')}</figure>")
    else:
        out.append('<p class="note">No loss_d / loss_g values logged yet.</p>')
    r_x, r_y = _series(records, "d_real")
    f_x, f_y = _series(records, "d_fake")
    if r_y or f_y:
        png = plots.plot_d_beliefs((r_x, r_y), (f_x, f_y))
        out.append(
            f"<figure>{_img(png, 'What D believes: D(x) and D(G(z)) against step')}"
            "<figcaption>Mean probability &ldquo;real&rdquo; that D gives real data, D(x), and "
            "generated data, D(G(z)). Dashed: the equilibrium D = 0.5, where D cannot tell "
            "them apart.</figcaption></figure>"
        )
    else:
        out.append('<p class="note">No d_real / d_fake values logged yet.</p>')
    body = '<div class="plots">' + "".join(out) + "</div>"
    extra = _extra_keys(records)
    if extra:
        figs = []
        for key in extra:
            xs, ys = _series(records, key)
            marks = [float(e["step"]) for e in events if e.get("kind") == SIGNAL_OF.get(key)]
            png = plots.plot_metric(key, xs, ys, marks, log=key.startswith("grad_"))
            figs.append(f"<figure>{_img(png, f'{key} against step')}</figure>")
        body += ("<h2>Other metrics and diagnosis signals</h2>"
                 '<p class="note">grad_g, grad_d: norms of G\'s and D\'s gradients; diversity: mean '
                 "pairwise distance of samples at fixed z in feature space, relative to real data's "
                 "(1 = as varied); modes / classes: how many of the data's known modes or classes "
                 "the samples hit.</p>"
                 '<div class="plots">' + "".join(figs) + "</div>")
    return body


def _diagnosis_html(events: list[dict[str, Any]]) -> str:
    """The failures the trainer (or ``gankit doctor``) saw, tied to their steps."""
    if not events:
        return ('<p>No failure seen: no diminished gradient, mode collapse, non-convergence or '
                "divergence was detected.</p>")
    items = "".join(
        f"<li><b>step {_esc(e['step'])}</b>: {_esc(e.get('kind') or e.get('event'))}: "
        f"{_esc(e.get('message', ''))}</li>" for e in events)
    return f"<ul>{items}</ul>"


def _samples_html(samples: list[_Sample], max_sample_grids: int, data_source: Any) -> str:
    if not samples:
        return '<h2>Samples over time</h2><p class="note">No samples yet.</p>'
    chosen = [samples[i] for i in _select_evenly(len(samples), max_sample_grids)]
    shown = []
    for s in chosen:
        data = _read_png(s.path)
        if data is not None:
            s.data = data
            shown.append(s)
    note = f"{len(shown)} of {len(samples)} saved sample pictures, evenly spaced over the run."
    if not shown:
        return (
            '<h2>Samples over time</h2><p class="note">Sample files exist but none could be '
            "read yet (still being written?).</p>"
        )
    latest = shown[-1]
    is_field = str(data_source) in TWO_D_SOURCES or plots.FIELD_MARKER.encode() in latest.data
    figs = "".join(
        f"<figure>{_img(s.data, f'samples at step {s.step}')}"
        f"<figcaption>step {_esc(s.step)}</figcaption></figure>"
        for s in shown
    )
    grid_class = "grid" if is_field else "grid pixel"
    body = (
        f'<h2>Samples over time</h2><p class="note">{_esc(note)}</p>'
        f'<div class="{grid_class}">{figs}</div>'
    )
    if is_field:
        body += (
            "<h2>D's probability field (latest)</h2>"
            f'<figure class="field">{_img(latest.data, f"D probability field at step {latest.step}")}'
            f"<figcaption>step {_esc(latest.step)}: blue = D says real, red = D says fake, "
            "white = 0.5; real and generated points on top.</figcaption></figure>"
        )
    return body


#: What the rows of an image translator's sample grids are (the tasks' sample_rows, gankit.tasks).
TRANSLATION_ROWS = {
    "pix2pix": "row 1: the input A; row 2: the output G(A); row 3: the target, the true B",
    "cyclegan": "rows 1-3: the input A, its translation G_AB(A), and the cycle back G_BA(G_AB(A)); "
                "rows 4-6 the same from B: B, G_BA(B), G_AB(G_BA(B))",
}


def _translation_html(cfg: dict[str, Any]) -> str:
    """For image-translation runs: how to read the sample grids (empty for GANs)."""
    model = cfg.get("model")
    rows = TRANSLATION_ROWS.get(model.get("arch")) if isinstance(model, dict) else None
    if rows is None:
        return ""
    return (f'<h2>Image translation</h2><p>Each sample grid shows 8 held-out inputs, one per column: '
            f"{_esc(rows)}. Scores (L1, PSNR, SSIM, classifier accuracy, cycle error) come from "
            "<code>gankit eval RUN</code> and are plotted below once measured.</p>")


def build_report(
    run_dir: str | os.PathLike,
    out: str | os.PathLike | None = None,
    max_sample_grids: int = 12,
) -> Path:
    """Write a self-contained HTML report for a run directory and return its path.

    Reads ``config.yaml``, ``metrics.jsonl`` and ``samples/step-*.png`` from ``run_dir`` and
    writes one HTML file (default ``run_dir/report.html``) atomically. Works on a run that is
    still training and on one with no metrics or no samples yet.

    Raises:
        GankitError: if ``run_dir`` is not a directory or has no ``config.yaml``, or if
            ``max_sample_grids`` < 1.
    """
    run = RunDir(run_dir).require()
    if max_sample_grids < 1:
        raise GankitError(f"max_sample_grids must be at least 1, got {max_sample_grids}.")

    config_text, cfg, config_note = _load_config(run.config_path)
    data_cfg = cfg.get("data")
    data_source = data_cfg.get("source") if isinstance(data_cfg, dict) else None
    every = _clean_records(run.records())
    records = [r for r in every if "event" not in r]
    events = [r for r in every if "event" in r]  # warnings and rollbacks (gankit.diagnosis)
    samples = _find_samples(run)

    name = run.path.resolve().name or str(run.path)
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    config_block = f'<pre class="config">{_esc(config_text)}</pre>' if config_text.strip() else ""
    if config_note:
        config_block = f'<p class="note">{_esc(config_note)}</p>' + config_block
    config_block = _resolved_html(run, cfg) + config_block

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gankit report: {_esc(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<h1>gankit run: {_esc(name)}</h1>
<div class="path">{_esc(run.path.resolve())}</div>
<h2>Summary</h2>
{_summary_html(records, run.metrics_path.exists())}
<h2>Config</h2>
{config_block}
<h2>Diagnosis</h2>
{_diagnosis_html(events)}
<h2>Training curves</h2>
{_plots_html(records, events)}
{_translation_html(cfg)}
{_samples_html(samples, max_sample_grids, data_source)}
<footer>Generated {_esc(generated)} by gankit {_esc(__version__)}.</footer>
</body>
</html>
"""
    out_path = Path(out) if out is not None else run.report_path
    atomic_write_text(out_path, page)
    return out_path
