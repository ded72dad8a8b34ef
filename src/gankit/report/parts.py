"""The report's sections below the summary, each a function from what the run logged to HTML.

``gankit.report.html`` puts them in order; each stands alone (its own heading, its own notes for
missing data), so a later live page can render the same parts one at a time.
"""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gankit.report import plots
from gankit.report.records import Diagnosis, EvalTable, PerClass, extra_keys, series
from gankit.rundir import step_of

__all__ = ["ARROW", "Sample", "curves_html", "diagnosis_html", "esc", "eval_html", "fmt", "headline",
           "history_html", "latest_html", "read_samples", "score"]

#: data.source values whose samples are 2-D probability-field pictures.
TWO_D_SOURCES = frozenset({"ring", "grid"})
#: The diagnosis failures each plot's warnings are marked on.
D_KINDS = ("non_convergence", "diminished_gradient")
GRAD_KINDS = ("diminished_gradient", "divergence")
VARIETY_KINDS = ("mode_collapse",)
#: The latest samples are shown at most this high (CSS px), beside the summary: the D(x) / D(G(z))
#: plot below them starts in the first 800 px of a laptop's window, most of it on screen.
LATEST_MAX_HEIGHT = 540
SUMMARY_MIN_PX, TOP_GAP_PX = 400, 28  # the summary's narrowest, the space between the two
#: ... and at most this wide, so that it always fits beside the summary instead of under it.
LATEST_MAX_WIDTH = plots.PLOT_WIDTH_PX - SUMMARY_MIN_PX - TOP_GAP_PX
STACKED_SUMMARY_PX = 250  # about the height of the summary when it is above the samples
THUMB_MIN_PX = 250  # the samples over time: the narrowest a column of thumbnails gets

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


# --------------------------------------------------------------------------- samples


@dataclass
class Sample:
    """A saved sample picture: its step, file and bytes."""

    step: int
    path: Path
    data: bytes = b""


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


def read_samples(paths: list[Path], k: int) -> tuple[list[Sample], int]:
    """Up to ``k`` of the sample pictures ``paths`` (by step), evenly spaced with the first and the
    latest, that read as complete PNGs; and how many there were in all."""
    chosen = [paths[i] for i in _select_evenly(len(paths), k)]
    shown = []
    for p in chosen:
        data = _read_png(p)
        if data is not None:
            shown.append(Sample(step_of(p) or 0, p, data))
    return shown, len(paths)


def _display_size(width: int, height: int, pixels: bool) -> tuple[tuple[int, int], bool]:
    """CSS size of the latest picture, and whether to draw it with square pixels.

    The largest that fits ``LATEST_MAX_HEIGHT`` by ``LATEST_MAX_WIDTH`` (beside the summary): a
    grid enlarged 2x or more by a whole factor (every pixel square, labels sharp), less than 2x as
    it fits (1x would be small); a grid shrunk, smoothed (square pixels would drop whole rows of
    them); a rendered plot never enlarged (that would blur its text). A wide, low grid (a
    translator's three rows) that gets larger across the whole page, and still leaves the curves
    in view with the summary above it, goes there instead.
    """
    def fit(max_width: float) -> float:
        scale = min(LATEST_MAX_HEIGHT / max(height, 1), max_width / max(width, 1))
        if not pixels:
            return min(scale, 1.0)
        return math.floor(scale) if scale >= 2 else scale

    scale, across = fit(LATEST_MAX_WIDTH), fit(plots.PLOT_WIDTH_PX)
    if across > scale and height * across <= LATEST_MAX_HEIGHT - STACKED_SUMMARY_PX:
        scale = across
    return (round(width * scale), round(height * scale)), pixels and scale >= 1


def latest_html(samples: tuple[list[Sample], int], data_source: Any, caption: str) -> str:
    """The latest sample picture, large: a grid of G's samples, or for 2-D data D's field."""
    shown, total = samples
    if not shown:
        note = "Sample files exist but none could be read yet (still being written?)." if total \
            else "No samples yet."
        return f'<section id="latest"><h2>Latest samples</h2><p class="note">{esc(note)}</p></section>'
    s = shown[-1]
    field = str(data_source) in TWO_D_SOURCES or plots.FIELD_MARKER.encode() in s.data
    if field:
        title, caption = "Latest samples: D&#x27;s probability field", (
            "Blue = D says real, red = D says fake, white = 0.5 (black line); real points green, "
            "generated points black crosses.")
    else:
        title = "Latest samples"
    size, square = _display_size(*_png_size(s.data), pixels=not field)
    return (f'<section id="latest" style="max-width:{max(size[0], 320)}px">'
            f'<h2>{title} <span class="sub">step {esc(s.step)}</span></h2>'
            f'<figure class="latest{" pixel" if square else ""}">'
            f"{_img(s.data, f'latest samples, step {s.step}', size)}"
            f"<figcaption>{esc(caption)}</figcaption></figure></section>")


def _thumb_pixels(data: bytes) -> bool:
    """Whether a thumbnail is a grid of pixels that the page shows enlarged (cells are 250 px or
    more wide), so that it is drawn with square pixels rather than smoothed."""
    return plots.FIELD_MARKER.encode() not in data and _png_size(data)[0] <= THUMB_MIN_PX


def history_html(samples: tuple[list[Sample], int]) -> str:
    """The saved sample pictures over the run, evenly spaced, small."""
    shown, total = samples
    if len(shown) < 2:
        return ""
    # pixelated only where enlarged: shrunk so, a grid loses whole rows of pixels (and its labels)
    figs = "".join(f"<figure{PIXEL if _thumb_pixels(s.data) else ''}>"
                   f"{_img(s.data, f'samples at step {s.step}')}"
                   f"<figcaption>step {esc(s.step)}</figcaption></figure>" for s in shown)
    note = f"{len(shown)} of {total} saved sample pictures, evenly spaced over the run."
    return (f'<h2 id="history">Samples over time</h2><p class="note">{esc(note)}</p>'
            f'<div class="grid">{figs}</div>')


# --------------------------------------------------------------------------- curves and tables


def steps_of(records: list[dict[str, Any]]) -> tuple[float, float] | None:
    """(first, last) step of the run's records: every curve is drawn over the same steps."""
    return (float(records[0]["step"]), float(records[-1]["step"])) if records else None


def _marks(diag: Diagnosis, kinds: tuple[str, ...]) -> list[float]:
    return [float(f["step"]) for f in diag.findings if f["kind"] in kinds]


def _figure(png: bytes, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f'<figure class="plot">{_img(png, alt, _png_size(png))}{cap}</figure>'


def curves_html(records: list[dict[str, Any]], diag: Diagnosis) -> str:
    """D(x) and D(G(z)) against the equilibrium first, then the losses, then any other value the
    task logs (a translator's loss terms), each the full width of the page."""
    head = '<h2 id="curves">Training curves</h2>'
    if not records:
        return head + '<p class="note">No metrics yet, so nothing to plot.</p>'
    out = [head]
    xlim = steps_of(records)
    real, fake = series(records, "d_real"), series(records, "d_fake")
    if real[1] or fake[1]:
        out.append(_figure(
            plots.plot_d_beliefs(real, fake, _marks(diag, D_KINDS), xlim), "D(x) and D(G(z)) against step",
            "Mean probability &ldquo;real&rdquo; D gives real data, D(x), and generated data, D(G(z)). "
            "At the equilibrium both are 0.5 (dashed): D cannot tell them apart."))
    else:
        out.append('<p class="note">No d_real / d_fake values logged yet.</p>')
    loss_d, loss_g = series(records, "loss_d"), series(records, "loss_g")
    if loss_d[1] or loss_g[1]:
        out.append(_figure(plots.plot_losses(loss_d, loss_g, xlim), "Losses: loss_d and loss_g against step"))
    for key in extra_keys(records):
        xs, ys = series(records, key)
        out.append(_figure(plots.plot_metric(key, xs, ys, xlim=xlim), f"{key} against step"))
    return "".join(out)


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
BEST, PIXEL = ' class="best"', ' class="pixel"'


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
