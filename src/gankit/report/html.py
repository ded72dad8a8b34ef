"""RUN/report.html: the lab's page exported (``gankit.report.page``), with what only a report has below.

One view, two modes: the report leads with what the lab shows (the latest samples, or a 2-D run's
field, with a step slider; D(x) and D(G(z)) against 0.5, the losses, gradient norms and scores as
uPlot charts; the timeline), self-contained, no server. Below it: the summary (what ran, how far,
D's equilibrium verdict, the failure warnings still active), the evaluations as a table over steps
with the best marked, the diagnosis in the doctor's words with its cures, and the config folded
away. Safe to build while training runs: a half-written last line of ``metrics.jsonl`` is skipped,
and missing metrics or samples are said in the page instead of failing.
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
from gankit.report.page import MAX_SAMPLES, export_html
from gankit.report.parts import (
    ARROW,
    diagnosis_html,
    esc,
    eval_html,
    fmt,
    headline,
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

#: The style of the part below the lab's page (scoped to it: the page's own is lab.css).
CSS = """
#report-below{margin:12px 16px;padding:8px 16px;background:#fff;border:1px solid #d9d9de;border-radius:6px;
 line-height:1.45;max-width:1200px}
#report-below h2{font-size:1.15em;margin:1.1em 0 .45em;border-bottom:1px solid #ddd;padding-bottom:.15em}
#report-below h2 .sub{font-weight:normal;color:#666;font-size:.85em}
#report-below .path{color:#666;font-size:.85em;word-break:break-all}
#report-below .summary p{margin:.3em 0}
#report-below .nums,#report-below table{font-variant-numeric:tabular-nums}
#report-below .badge{background:#2166ac;color:#fff;border-radius:4px;font-size:.9em}
#report-below .warn{color:#9a1b0f}
#report-below .ok{color:#1b6b3a}
#report-below .note{color:#666;font-style:italic}
#report-below figure{margin:0 0 14px}
#report-below figure img{max-width:100%;height:auto;display:block}
#report-below figcaption{font-size:.9em;color:#555}
#report-below .table{overflow-x:auto}
#report-below table{border-collapse:collapse;margin:.3em 0 .6em;font-size:.93em}
#report-below th,#report-below td{padding:3px 7px;text-align:right;border-bottom:1px solid #e4e4e4;white-space:nowrap}
#report-below th:first-child,#report-below td:first-child{text-align:left}
#report-below td.best{font-weight:bold}
#report-below li.active{color:#9a1b0f}
#report-below details{margin:1.1em 0}
#report-below details summary{cursor:pointer;font-weight:bold;font-size:1.1em}
#report-below pre.config{background:#f8f8f8;border:1px solid #e4e4e4;border-radius:6px;padding:10px 14px;
 overflow-x:auto;font-size:.88em}
#report-below footer{margin-top:1.5em;color:#888;font-size:.85em;border-top:1px solid #eee;padding-top:.5em}
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


#: The other tasks whose grids are not G(z) at fixed z (each task's save_samples, gankit.tasks).
OTHER_GRIDS = {
    "gan-int-cls": "Text to image: one row per caption, named on the left; each column one fixed z.",
    "nextframe": "Next frame: for each held-out sequence, the true frames (the context, then the horizon) "
                 "above G's (the same context, then its rollout on its own predictions).",
    "novel-view": "New angles: held-out objects, one pair per column; row 1: the source view; row 2: G's view "
                  "at the target angles; row 3: the true view at those angles.",
}


def _grid_caption(cfg: dict[str, Any]) -> str:
    """How to read a sample grid of this run."""
    model = _section(cfg, "model")
    arch = str(model.get("arch"))
    if arch in TRANSLATORS:
        return (f"Image translation: held-out inputs, one per column; {TRANSLATORS[arch]}. Scores: gankit eval "
                "RUN (the Evaluation table below).")
    if arch in OTHER_GRIDS:
        return OTHER_GRIDS[arch]
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
    train = _section(cfg, "train")
    total, budget, spent = train.get("steps"), train.get("max_time"), last(records, "time")
    progress = f"step <b>{esc(step)}</b>"
    if isinstance(total, int) and total > 0:
        if step >= total:
            progress += f" of {esc(total)} (finished)"
        elif isinstance(budget, (int, float)) and budget > 0 and spent is not None and spent >= budget:
            # a time-budgeted run (--max-time) ends before its --steps: the share of those says nothing
            progress += f" (stopped at its time budget, {esc(_duration(budget))})"
        else:
            progress += f" of {esc(total)} ({100 * step / total:.0f}%)"
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
    max_sample_grids: int = MAX_SAMPLES,
) -> Path:
    """Write RUN/report.html, the lab's page of the run exported, and return its path.

    Reads ``config.yaml``, ``metrics.jsonl`` and ``samples/`` from ``run_dir`` and writes one
    self-contained HTML file (default ``run_dir/report.html``) atomically: the lab's page (at most
    ``max_sample_grids`` sample steps on its slider, spread over the run), then the summary, the
    evaluation table, the diagnosis and the config. Works on a run that is still training and on
    one with no metrics or no samples yet.

    Raises:
        GankitError: if ``run_dir`` is not a directory or has no ``config.yaml``, or if
            ``max_sample_grids`` < 1.
    """
    run = RunDir(run_dir).require()
    if max_sample_grids < 1:
        raise GankitError(f"max_sample_grids must be at least 1, got {max_sample_grids}.")

    config_text, cfg, config_note = _load_config(run.config_path)
    every = clean_records(run.records())
    measured = [r for r in every if "event" not in r]
    records = [r for r in measured if not is_eval(r)]  # training and diagnosis-probe records
    evals = [r for r in measured if is_eval(r)]
    table = eval_table(evals)  # directions from the metric registries: torch, where there are any
    diag = diagnose(run, [r for r in every if "event" in r])

    name = run.path.resolve().name or str(run.path)
    generated = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    config_block = f'<pre class="config">{esc(config_text)}</pre>' if config_text.strip() else ""
    if config_note:
        config_block = f'<p class="note">{esc(config_note)}</p>' + config_block
    config_block = _resolved_html(run, cfg) + config_block
    what = _what_ran(cfg)
    best = run.best_checkpoint()
    below = f"""<style>{CSS}</style>
<h2 id="report">gankit run: {esc(name)} <span class="path">{esc(run.path.resolve())}</span></h2>
<section id="summary">{_summary_html(cfg, records, table, diag, run.metrics_path.exists())}
<p class="note">How to read the samples: {esc(_grid_caption(cfg))}</p></section>
{eval_html(table, per_class_table(evals), step_of(best) if best else None)}
{diagnosis_html(records, diag)}
<details id="config"><summary>Config{f": {what}" if what else ""}</summary>{config_block}</details>
<footer>Generated {esc(generated)} by gankit {esc(__version__)}: the page of <code>gankit lab</code>,
exported (self-contained, no server).</footer>
"""
    out_path = Path(out) if out is not None else run.report_path
    return export_html(run.path, out_path, max_samples=max_sample_grids, below=below,
                       title=f"gankit report: {name}")
