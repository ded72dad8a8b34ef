"""The report's sections below the lab's page, each a function from what the run logged to HTML:
the evaluation table and the diagnosis (its signals' plots, the doctor's words and cures).

``gankit.report.html`` puts them in order; each stands alone (its own heading, its own notes for
missing data).
"""

from __future__ import annotations

import base64
import html
import math
from typing import Any

from gankit.report import plots
from gankit.report.records import Diagnosis, EvalTable, PerClass, series

__all__ = ["ARROW", "diagnosis_html", "esc", "eval_html", "fmt", "headline", "score"]

#: The diagnosis failures each plot's warnings are marked on.
GRAD_KINDS = ("diminished_gradient", "divergence")
VARIETY_KINDS = ("mode_collapse",)


def esc(text: Any) -> str:
    """``text`` escaped for HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def fmt(value: float | None) -> str:
    """A number with 4 significant digits; an en dash for none."""
    if value is None:
        return "\u2013"
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"


def _img(data: bytes, alt: str, size: tuple[int, int] | None = None) -> str:
    b64 = base64.b64encode(data).decode("ascii")
    dims = f' width="{size[0]}" height="{size[1]}"' if size else ""
    return f'<img alt="{esc(alt)}"{dims} src="data:image/png;base64,{b64}">'


def _png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from a PNG's IHDR chunk, which always comes first."""
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


# --------------------------------------------------------------------------- curves and tables


def steps_of(records: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(first, last) step of the run's records: every curve is drawn over the same steps."""
    return (float(records[0]["step"]), float(records[-1]["step"])) if records else None


def _marks(diag: Diagnosis, kinds: tuple[str, ...]) -> list[float]:
    return [float(f["step"]) for f in diag.findings if f["kind"] in kinds]


def _figure(png: bytes, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="plot">{_img(png, alt, _png_size(png))}{cap}</figure>'


def _share(records: list[dict[str, Any]], key: str) -> plots.Series:
    """``key`` as a share of ``key_total`` (modes or classes hit, out of those known)."""
    xs, ys = [], []
    for r in records:
        v, total = r.get(key), r.get(f"{key}_total")
        if isinstance(v, (int, float)) and isinstance(total, (int, float)) and total > 0:
            xs.append(float(r["step"]))
            ys.append(float(v) / float(total))
    return xs, ys


def diagnosis_html(records: list[dict[str, Any]], diag: Diagnosis) -> str:
    """The failures seen (still present or cleared), rollbacks, and the signals they are read
    from: G's and D's gradient norms, and the variety of G's samples."""
    out = ['<h2 id="diagnosis">Diagnosis</h2>']
    if diag.findings:
        items = []
        for f in diag.findings:
            status = ("still present" if f["kind"] in diag.active else "since cleared") if diag.rechecked \
                else "logged during training"
            cls = ' class="active"' if diag.rechecked and f["kind"] in diag.active else ""
            items.append(f"<li{cls}><b>step {esc(f['step'])}: {esc(diag.title(f['kind']))}</b> "
                         f"({esc(status)}): {esc(f['message'])}</li>")
        out.append(f"<ul>{''.join(items)}</ul>")
        if not diag.rechecked:
            out.append(f'<p class="note">Could not replay the diagnosis to see which warnings are '
                       f"still present: {esc(diag.why)}</p>")
    else:
        out.append("<p>No failure seen: no diminished gradient, mode collapse or non-convergence "
                   "was detected.</p>")
    for e in diag.events:
        out.append(f"<p><b>step {esc(e['step'])}: {esc(e.get('event'))}</b>: {esc(e.get('message', ''))}</p>")
    grad = [("|grad G|", series(records, "grad_g"), plots.C_G), ("|grad D|", series(records, "grad_d"), plots.C_D)]
    if any(s[1][1] for s in grad):
        out.append(_figure(plots.plot_curves("Gradient norms", grad, log=True, marks=_marks(diag, GRAD_KINDS),
                                             xlim=steps_of(records)),
                           "gradient norms of G and D against step",
                           "L2 norms of G's and D's gradients: G's collapsing while D wins is a "
                           "diminished gradient."))
    variety = [("diversity", series(records, "diversity"), plots.C_OTHER[0]),
               ("share of modes hit", _share(records, "modes"), plots.C_OTHER[1]),
               ("share of classes hit", _share(records, "classes"), plots.C_OTHER[2])]
    variety = [c for c in variety if c[1][1]]
    if variety:
        out.append(_figure(plots.plot_curves("Variety of G's samples", variety, hline=(1.0, "as varied as the data"),
                                             marks=_marks(diag, VARIETY_KINDS), xlim=steps_of(records)),
                           "variety of G's samples against step",
                           "Diversity: mean pairwise distance of G's samples at fixed z in feature space, "
                           "relative to the real data's (1 = as varied); the share of the data's known "
                           "modes or classes the samples hit. Falling: mode collapse."))
    ada = [("p (augmentation probability)", series(records, "ada_p"), plots.C_OTHER[0]),
           ("r_t = E[sign(D(x))]", series(records, "ada_rt"), plots.C_REAL)]
    if ada[0][1][1]:
        out.append(_figure(plots.plot_curves("Adaptive augmentation (ADA)", ada, ylim=(-1.05, 1.05),
                                             marks=_marks(diag, ("overfitting",)), xlim=steps_of(records)),
                           "ADA's augmentation probability p and its overfitting signal r_t against step",
                           "ADA (Karras et al. 2020): p, the probability each augmentation is applied "
                           "to each image D sees, rises while D is surer of the real images than "
                           "reg.ada_target (r_t above it) and falls otherwise. p at 1 with r_t still "
                           "high: D memorises the set even so."))
    return "".join(out)


ARROW = {True: " \u2191", False: " \u2193", None: ""}


def score(row: dict[str, float], key: str) -> str:
    """A score as shown: ``14.47 \u00b1 1.822`` where the row has its ``key_std`` (KID, IS)."""
    std = row.get(f"{key}_std")
    return fmt(row.get(key)) + (f" \u00b1 {std:.2g}" if std is not None and key in row else "")


def headline(table: EvalTable, first: str | None, k: int = 3) -> list[str]:
    """The scores the summary names: ``first`` (the run's eval metric) if measured, then the
    table's others, at most ``k``, leaving out standard deviations."""
    keys = [c for c in table.keys if not c.endswith("_std")]
    if first in keys:
        keys.remove(first)
        keys.insert(0, first)
    return keys[:k]
BEST = ' class="best"'


def eval_html(table: EvalTable, per_class: PerClass | None, best_step: int | None) -> str:
    """The evaluations as a table over steps (one row per evaluated step, one column per score,
    each headed with its direction, the best of each column in bold), and the latest per-class
    scores."""
    if not table.steps and per_class is None:
        return ""
    out = ['<h2 id="evaluation">Evaluation</h2>']
    if table.steps:
        has_n = any(n is not None for n in table.n)
        keys = [k for k in table.keys if not (k.endswith("_std") and k[:-4] in table.keys)]
        head = "".join(f"<th>{esc(k)}{ARROW[table.higher.get(k)]}</th>" for k in keys)
        rows = []
        for step, row, n in zip(table.steps, table.rows, table.n, strict=True):
            cells = "".join(f"<td{BEST if k in row and row[k] == table.best(k) else ''}>"
                            f"{esc(score(row, k))}</td>" for k in keys)
            mark = " (best)" if best_step is not None and step == best_step else ""
            rows.append(f"<tr><td>{esc(step)}{mark}</td>{cells}"
                        + (f"<td>{esc(fmt(n))}</td>" if has_n else "") + "</tr>")
        n_head = "<th>samples</th>" if has_n else ""
        out.append(f'<div class="table"><table class="evals"><thead><tr><th>step</th>{head}{n_head}'
                   f"</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
                   '<p class="note">\u2193 lower is better, \u2191 higher is better; bold: the best '
                   "of each column; (best): the checkpoint kept as best"
                   + ("; \u00b1 the standard deviation over subsets" if len(keys) < len(table.keys) else "")
                   + ".</p>")
    if per_class is not None:
        step, n, rows = per_class
        body = "".join(f"<tr><td>{esc(c)}</td><td>{esc(fmt(fid))}</td><td>{esc(fmt(acc))}</td></tr>"
                       for c, fid, acc in rows)
        each = f", {esc(fmt(n))} samples per class" if n is not None else ""
        out.append(f"<p>Per class at step {esc(step)}{each} (<code>gankit eval --per-class</code>; "
                   "accuracy: the share the fmnist classifier puts in the class asked for):</p>"
                   '<div class="table"><table class="per-class"><thead><tr><th>class</th>'
                   f"<th>fid \u2193</th><th>accuracy \u2191</th></tr></thead><tbody>{body}</tbody></table></div>")
    return "".join(out)
