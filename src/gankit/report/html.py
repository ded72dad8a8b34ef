"""Assemble a self-contained HTML report for a gankit run directory.

The page leads with the result: a summary (what ran, how far, D's equilibrium verdict, any failure
warning still active), the latest samples large, then the curves (D(x) and D(G(z)) against 0.5
first), the evaluations as a table, the diagnosis, the samples over time, and the config folded
away. It needs no JavaScript and no network: plots and sample pictures are embedded as
``data:image/png;base64,...``. It is safe to build while training is still running: a
half-written last line of ``metrics.jsonl`` is skipped, and missing metrics or samples are
reported in the page instead of failing.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from gankit import __version__
from gankit.config.load import load_yaml
from gankit.errors import GankitError
from gankit.fsutil import atomic_write_bytes
from gankit.report import plots
from gankit.report.parts import (
    ARROW,
    SUMMARY_MIN_PX,
    THUMB_MIN_PX,
    TOP_GAP_PX,
    curves_html,
    diagnosis_html,
    esc,
    eval_html,
    fmt,
    headline,
    history_html,
    latest_html,
    read_samples,
    score,
)
from gankit.report.records import (
    Diagnosis,
    EvalTable,
    clean_records,
    diagnose,
    eval_table,
    is_eval,
    last,
    per_class_table,
)
from gankit.rundir import RunDir, step_of
from gankit.verdict import equilibrium

__all__ = ["build_report"]

#: The page's style: one column as wide as the curves are drawn (``plots.PLOT_WIDTH_PX``), so
#: they are shown at their own size, their text as large as it was set.
CSS = f"""
body{{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#222;margin:0 auto;
 max-width:{plots.PLOT_WIDTH_PX}px;padding:12px 24px;line-height:1.45;background:#fff}}
header{{display:flex;flex-wrap:wrap;align-items:baseline;gap:0 16px}}
h1{{font-size:1.45em;margin:.1em 0 0}}
h2{{font-size:1.15em;margin:1.3em 0 .45em;border-bottom:1px solid #ddd;padding-bottom:.15em}}
h2 .sub{{font-weight:normal;color:#666;font-size:.85em}}
.path{{color:#666;font-size:.85em;word-break:break-all}}
.top{{display:flex;flex-wrap:wrap;gap:0 {TOP_GAP_PX}px;align-items:flex-start}}
.top h2{{margin-top:.6em}}
#summary{{flex:1 1 {SUMMARY_MIN_PX}px}}
#latest{{flex:0 1 auto}}
.summary{{background:#f5f7fa;border:1px solid #e1e5ea;border-radius:6px;padding:6px 14px;margin-top:.8em}}
.summary p{{margin:.3em 0}}
.nums,table{{font-variant-numeric:tabular-nums}}
.badge{{display:inline-block;background:#2166ac;color:#fff;border-radius:4px;padding:0 6px;font-size:.9em}}
.warn{{color:#9a1b0f}}
.ok{{color:#1b6b3a}}
.note{{color:#666;font-style:italic}}
figure{{margin:0 0 14px}}
figure img{{max-width:100%;height:auto;display:block}}
figcaption{{font-size:.9em;color:#555}}
.pixel img{{image-rendering:pixelated}}
.latest img{{border:1px solid #ddd}}
.grid{{display:grid;grid-template-columns:repeat(auto-fill,minmax({THUMB_MIN_PX}px,1fr));gap:12px}}
.grid figure{{text-align:center}}
.grid img{{width:100%;border:1px solid #eee}}
.table{{overflow-x:auto}}
table{{border-collapse:collapse;margin:.3em 0 .6em;font-size:.93em}}
th,td{{padding:3px 7px;text-align:right;border-bottom:1px solid #e4e4e4;white-space:nowrap}}
th:first-child,td:first-child{{text-align:left}}
td.best{{font-weight:bold}}
li.active{{color:#9a1b0f}}
details{{margin:1.3em 0}}
details summary{{cursor:pointer;font-weight:bold;font-size:1.1em}}
pre.config{{background:#f8f8f8;border:1px solid #e4e4e4;border-radius:6px;padding:10px 14px;
 overflow-x:auto;font-size:.88em}}
footer{{margin-top:2em;color:#888;font-size:.85em;border-top:1px solid #eee;padding-top:.5em}}
"""


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
    return (f'<p class="note">precision: auto trained in {esc(str(meta["precision"]))} '
            f'(the newest checkpoint, step {esc(str(meta.get("step")))}).</p>')


def _load_config(path: Path) -> tuple[str, dict[str, Any], str | None]:
    """(text to show, parsed mapping or {}, note about problems or None)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise GankitError(f"cannot read {path}: {e}") from e
    if not text.strip():
        return "", {}, "config.yaml is empty (the run may just be starting)."
    try:  # the limits every YAML read gets (size, depth, aliases): config.yaml may be damaged
        cfg = load_yaml(path)
    except GankitError as e:
        return text, {}, f"config.yaml could not be parsed ({e}); shown as written."
    shown = yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return shown, cfg, None


def _section(cfg: dict[str, Any], name: str) -> dict[str, Any]:
    value = cfg.get(name)
    return value if isinstance(value, dict) else {}


def _what_ran(cfg: dict[str, Any]) -> str:
    """One line: the model, the data, the loss (``dcgan on fashion-mnist (28 px), nonsaturating
    loss, conditional cgan``), from config.yaml; empty if it says nothing usable."""
    model, data, train = _section(cfg, "model"), _section(cfg, "data"), _section(cfg, "train")
    if not model.get("arch") and not data.get("source"):
        return ""
    text = f"<b>{esc(model.get('arch') or '?')}</b> on <b>{esc(data.get('source') or '?')}</b>"
    size = data.get("image_size")
    if size not in (None, "", 0, "0"):
        text += f" ({esc(size)} px)"
    if train.get("loss") and model.get("arch") not in TRANSLATORS:  # translators' loss is their own
        text += f", {esc(train['loss'])} loss"
    if model.get("conditional"):
        text += f", conditional ({esc(model['conditional'])})"
    return text


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


#: Image translators: their sample grids' rows (the tasks' sample_rows, gankit.tasks).
TRANSLATORS = {
    "pix2pix": "row 1: the input A; row 2: the output G(A); row 3: the target, the true B",
    "cyclegan": "rows 1-3: the input A, its translation G_AB(A), and the cycle back G_BA(G_AB(A)); "
                "rows 4-6 the same from B: B, G_BA(B), G_AB(G_BA(B))",
    "dtn": "row 1: the source x (fashion2emoji: a photo of each class); row 2: its translation G(x) = "
           "g(f(x)); row 3: a target t (an emoji); row 4: G(t), which the target-identity loss keeps near t",
}


def _grid_caption(cfg: dict[str, Any]) -> str:
    """How to read a sample grid of this run."""
    model = _section(cfg, "model")
    rows = TRANSLATORS.get(str(model.get("arch")))
    if rows is not None:
        return (f"Image translation: held-out inputs, one per column; {rows}. Scores: gankit eval RUN "
                "(the Evaluation table below).")
    if model.get("conditional"):
        return "One row per class, named on the left; each column one fixed z."
    return "G(z) at the same fixed z at every step, so the grids over time compare like with like."


# --------------------------------------------------------------------------- summary


def _warnings_html(diag: Diagnosis) -> str:
    """The summary's warning line: every failure still active, one line each with the step it
    started at; else whether any was seen."""
    if not diag.rechecked and diag.findings:
        kinds = ", ".join(sorted({diag.title(f["kind"]) for f in diag.findings}))
        return (f'<p class="warn">&#9888; Training warned of: {esc(kinds)} (not re-checked, so it may '
                f'have cleared: {esc(diag.why)}). <a href="#diagnosis">Diagnosis</a></p>')
    active = [f for f in diag.findings if f["kind"] in diag.active]
    latest_start = {f["kind"]: f for f in active}  # a failure that came back: its last start
    lines = []
    for kind in sorted(diag.active):
        f = latest_start.get(kind)
        # the problem only: the cures ("... Try --pack 4, ...") are in the diagnosis below
        detail = f" since step {esc(f['step'])}: {esc(f['message'].split('. Try ')[0])}." if f else "."
        lines.append(f'<p class="warn">&#9888; <b>Active: {esc(diag.title(kind))}</b>{detail} '
                     '<a href="#diagnosis">What to try</a></p>')
    if lines:
        return "".join(lines)
    cleared = len(diag.findings)
    return ('<p class="ok">No failure warning is active'
            + (f" ({cleared} earlier warning{'s' * (cleared != 1)} cleared; "
               '<a href="#diagnosis">Diagnosis</a>)' if cleared else "")
            + ".</p>")


def _summary_html(cfg: dict[str, Any], records: list[dict[str, Any]], table: EvalTable,
                  diag: Diagnosis, metrics_exists: bool) -> str:
    what = _what_ran(cfg)
    head = f'<p class="ran">{what}</p>' if what else ""
    if not records:
        why = "" if metrics_exists else " (metrics.jsonl not found)"
        return (f'<div class="summary">{head}<p class="note">No metrics logged yet{esc(why)}. The page '
                "will fill in as training logs steps.</p></div>")
    step = records[-1]["step"]
    total = _section(cfg, "train").get("steps")
    progress = f"step <b>{esc(step)}</b>"
    if isinstance(total, int) and total > 0:
        progress += f" of {esc(total)}" + (" (finished)" if step >= total else f" ({100 * step / total:.0f}%)")
    for key, form in (("time", lambda v: f"in {_duration(v)}"), ("img_per_s", lambda v: f"{v:,.0f} img/s")):
        v = last(records, key)
        if v is not None and math.isfinite(v):
            progress += f" &middot; {esc(form(v))}"
    d_real, d_fake = last(records, "d_real"), last(records, "d_fake")
    verdict = equilibrium(d_real, d_fake)
    body = (f'{head}<p class="nums">{progress}</p>'
            f'<p class="verdict"><span class="badge">{esc(verdict.label)}</span> '
            f"D(x) <b>{esc(fmt(d_real))}</b> &middot; D(G(z)) <b>{esc(fmt(d_fake))}</b>: "
            f"{esc(verdict.sentence)}</p>")
    if table.steps:
        row, at = table.rows[-1], table.steps[-1]
        scores = ", ".join(f"{esc(k)} <b>{esc(score(row, k))}</b>{ARROW[table.higher.get(k)]}"
                           for k in headline(table, _section(cfg, "eval").get("eval_metric")) if k in row)
        body += (f'<p class="nums">Latest evaluation (step {esc(at)}): {scores}. '
                 '<a href="#evaluation">All scores</a></p>')
    rollbacks = [e for e in diag.events if e.get("event") == "rollback"]
    if rollbacks:
        body += (f'<p class="warn">&#9888; Diverged and rolled back {len(rollbacks)} time'
                 f"{'s' * (len(rollbacks) != 1)} (last at step {esc(rollbacks[-1]['step'])}).</p>")
    return f'<div class="summary">{body}{_warnings_html(diag)}</div>'


# --------------------------------------------------------------------------- page


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
    data_source = _section(cfg, "data").get("source")
    every = clean_records(run.records())
    measured = [r for r in every if "event" not in r]
    records = [r for r in measured if not is_eval(r)]  # training and diagnosis-probe records
    evals = [r for r in measured if is_eval(r)]
    table = eval_table(evals)  # directions from the metric registries: torch, where there are any
    diag = diagnose(run, [r for r in every if "event" in r])
    samples = read_samples(run.samples(), max_sample_grids)

    name = run.path.resolve().name or str(run.path)
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    config_block = f'<pre class="config">{esc(config_text)}</pre>' if config_text.strip() else ""
    if config_note:
        config_block = f'<p class="note">{esc(config_note)}</p>' + config_block
    config_block = _resolved_html(run, cfg) + config_block
    what = _what_ran(cfg)
    best = run.best_checkpoint()

    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>gankit report: {esc(name)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>gankit run: {esc(name)}</h1><div class="path">{esc(run.path.resolve())}</div></header>
<div class="top">
<section id="summary">{_summary_html(cfg, records, table, diag, run.metrics_path.exists())}</section>
{latest_html(samples, data_source, _grid_caption(cfg))}
</div>
{curves_html(records, diag)}
{eval_html(table, per_class_table(evals), step_of(best) if best else None)}
{diagnosis_html(records, diag)}
{history_html(samples)}
<details id="config"><summary>Config{f": {what}" if what else ""}</summary>{config_block}</details>
<footer>Generated {esc(generated)} by gankit {esc(__version__)}.</footer>
</body>
</html>
"""
    out_path = Path(out) if out is not None else run.report_path
    # a name that is not UTF-8 (a folder's path in data.source) is shown escaped, never a crash
    atomic_write_bytes(out_path, page.encode("utf-8", "backslashreplace"))
    return out_path
