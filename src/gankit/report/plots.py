"""Plots for the run report, each returned as PNG bytes.

Uses ``matplotlib.figure.Figure`` with the Agg canvas directly: no pyplot, no global figure
state, safe to call from any thread or process without a display.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

__all__ = [
    "FIELD_MARKER",
    "PLOT_WIDTH_PX",
    "Curve",
    "Series",
    "draw_curves",
    "plot_curves",
    "plot_field",
    "smooth",
    "step_label",
]

#: Text stored in a PNG tEXt chunk by :func:`plot_field`, so a report can tell field plots
#: from image sample grids just by looking at the file's bytes.
FIELD_MARKER = "gankit:probability-field"

DPI = 100
#: Width in pixels of the report's curves: the width of the page's text column (``gankit.report.html``
#: shows them at their own size), so their text is as large on the page as it is set here.
PLOT_WIDTH_PX = 1120
SMALL_HEIGHT_PX = 250  # diagnosis signals and the other logged values
TICK_PT, LABEL_PT, TITLE_PT, LEGEND_PT = 11, 12, 13, 11

# Colours that stay readable on a white background and on each other.
C_D = "#d95f02"  # loss_d / D
C_G = "#1b9e77"  # loss_g / G
C_REAL = "#2166ac"  # D(x)
C_FAKE = "#b2182b"  # D(G(z))
C_OTHER = ("#5e3c99", "#e66101", "#1b7837", "#762a83")
C_WARN = "#d7301f"


def _new_figure(figsize: tuple[float, float], constrained: bool = True) -> Figure:
    """A figure outside pyplot; ``constrained``: matplotlib lays it out (a third of a small
    figure's drawing time: figures drawn at every sample step set their margins instead)."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained" if constrained else None)
    FigureCanvasAgg(fig)
    return fig


def _to_png(fig: Figure, metadata: dict[str, str] | None = None) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata=metadata)
    fig.clear()  # drop artists right away; Figure is not registered with pyplot
    return buf.getvalue()


def _as_float(values: Sequence[float | None] | np.ndarray) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of width ``window`` that ignores NaN (NaN stays NaN)."""
    v = np.asarray(values, dtype=float)
    if window < 2 or v.size < 3:
        return v.copy()
    ok = np.isfinite(v)
    kernel = np.ones(window)
    total = np.convolve(np.where(ok, v, 0.0), kernel, mode="same")
    count = np.convolve(ok.astype(float), kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / count
    out[~ok] = np.nan
    return out


def step_label(x: float, _pos: object = None) -> str:
    """A step as a short tick label: 800, 1.5k, 12k, 2M. Long plain numbers ran into each other
    ("80001000012000") once a run passed 10,000 steps."""
    for scale, suffix in ((1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:g}"


def _plot_series(ax, x: np.ndarray, y: np.ndarray, color: str, label: str) -> None:
    """Raw series as a faint line plus a lightly smoothed curve (or markers if few points)."""
    n = int(np.isfinite(y).sum())
    if n == 0:
        return
    window = max(1, len(y) // 25)
    if n < 2:
        ax.plot(x, y, "o", color=color, label=label, markersize=6)
    elif window >= 2:
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.9)
        ax.plot(x, smooth(y, window), color=color, linewidth=2.0, label=label)
    else:
        marker = "o" if len(y) <= 30 else None
        ax.plot(x, y, color=color, linewidth=1.8, marker=marker, markersize=4, label=label)


def _finish(ax, title: str, ylabel: str, legend: bool) -> None:
    """Title on the left, legend on the right above the axes (never over the data), steps as
    at most 8 short ticks, and every text at a size readable where the report shows it."""
    ax.set_title(title, fontsize=TITLE_PT, loc="left", fontweight="bold")
    ax.set_xlabel("step", fontsize=LABEL_PT)
    if ylabel:
        ax.set_ylabel(ylabel, fontsize=LABEL_PT)
    ax.tick_params(labelsize=TICK_PT)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True, min_n_ticks=2))
    ax.xaxis.set_major_formatter(FuncFormatter(step_label))
    if legend:
        ax.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=4, fontsize=LEGEND_PT,
                  frameon=False, borderaxespad=0.2, handlelength=1.8)


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4",
            fontsize=LABEL_PT)


Series = tuple[Sequence[float], Sequence[float | None]]
"""(steps, values) of one curve; values may hold None/NaN (drawn as gaps)."""

Curve = tuple[str, Series, str]
"""(legend label, (steps, values), colour) of one line of :func:`plot_curves`."""


def _minor_label(y: float, _pos: object = None) -> str:
    """Minor ticks of a log axis named at 2 and 5 times a power of ten only: all eight crowd."""
    mantissa = y / 10 ** np.floor(np.log10(y)) if y > 0 else 0.0
    return f"{y:g}" if round(mantissa, 6) in (2.0, 5.0) else ""


def draw_curves(title: str, curves: Sequence[Curve], ylabel: str = "", marks: Sequence[float] = (),
                log: bool = False, ylim: tuple[float, float] | None = None,
                hline: tuple[float, str] | None = None, height_px: int = SMALL_HEIGHT_PX,
                xlim: tuple[float, float] | None = None) -> Figure:
    """The figure :func:`plot_curves` saves (drawn, not yet saved: tests measure its ticks)."""
    fig = _new_figure((PLOT_WIDTH_PX / DPI, height_px / DPI))
    ax = fig.add_subplot()
    if hline is not None:
        ax.axhline(hline[0], color="0.35", linestyle="--", linewidth=1.2, label=hline[1])
    finite = []
    for label, (xs, ys), color in curves:
        y = _as_float(ys)
        _plot_series(ax, _as_float(xs), y, color, label)
        finite.append(y[np.isfinite(y)])
    values = np.concatenate(finite) if finite else np.zeros(0)
    if not values.size:
        _empty_note(ax, "no values logged yet")
    elif log and (values > 0).all():
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _pos: f"{y:g}"))  # 20, not 2 x 10^1
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_label) if values.max() / values.min() < 100
                                     else NullFormatter())
    for i, m in enumerate(marks):
        ax.axvline(m, color=C_WARN, linewidth=1.2, linestyle="--", label="warning" if i == 0 else None)
    if ylim is not None:
        ax.set_ylim(*ylim)
    if xlim is not None and xlim[0] < xlim[1]:  # every plot of a run over the same steps
        pad = 0.02 * (xlim[1] - xlim[0])
        ax.set_xlim(xlim[0] - pad, xlim[1] + pad)
    # one curve alone is named by the title; a legend would only repeat it
    _finish(ax, title, ylabel, legend=bool(values.size) and (len(curves) > 1 or hline is not None or bool(marks)))
    return fig


def plot_curves(title: str, curves: Sequence[Curve], ylabel: str = "", marks: Sequence[float] = (),
                log: bool = False, ylim: tuple[float, float] | None = None,
                hline: tuple[float, str] | None = None, height_px: int = SMALL_HEIGHT_PX,
                xlim: tuple[float, float] | None = None) -> bytes:
    """A full-width plot (``PLOT_WIDTH_PX`` wide) of one or more curves against step.

    ``marks``: steps of diagnosis warnings, drawn as dashed red vertical lines; ``log``: a log
    y-axis when every value is positive; ``hline``: (y, label) of a dashed reference line;
    ``xlim``: the steps to show (default: the data's). Returns PNG bytes.
    """
    return _to_png(draw_curves(title, curves, ylabel, marks, log, ylim, hline, height_px, xlim))


def plot_field(
    real: np.ndarray,
    fake: np.ndarray,
    prob: np.ndarray,
    extent: tuple[float, float, float, float],
    title: str = "",
) -> bytes:
    """Picture of a 2-D discriminator's belief, GAN Lab style. Returns PNG bytes.

    Args:
        real: (N, 2) real points.
        fake: (M, 2) generated points.
        prob: (R, R) array, D's probability "real" sampled on a regular grid over ``extent``
            including its edges: ``prob[i, j]`` is at ``(x_j, y_i)`` with
            ``x = linspace(xmin, xmax, R)``, ``y = linspace(ymin, ymax, R)`` (row 0 = ymin).
        extent: (xmin, xmax, ymin, ymax).
        title: optional title.

    Blue means D says "real", red means D says "fake", white is 0.5; a black contour marks
    D = 0.5. Real points are drawn as white-edged dark-green dots, generated points as
    black crosses. The PNG carries a tEXt chunk ``Description = FIELD_MARKER``.
    """
    prob = np.asarray(prob, dtype=float)
    real = np.asarray(real, dtype=float).reshape(-1, 2)
    fake = np.asarray(fake, dtype=float).reshape(-1, 2)
    if prob.ndim != 2 or min(prob.shape) < 1:
        raise ValueError(f"prob must be a 2-D (R, R) array, got shape {prob.shape}")
    xmin, xmax, ymin, ymax = (float(v) for v in extent)
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"extent must be (xmin, xmax, ymin, ymax) with min < max, got {extent}")
    rows, cols = prob.shape
    # Pixel centres sit on the sample points, so widen the image by half a cell each side.
    hx = (xmax - xmin) / (2 * max(cols - 1, 1))
    hy = (ymax - ymin) / (2 * max(rows - 1, 1))

    # shown at this size as a run's latest samples (500 px high); drawn at every sample step of a
    # 2-D run, so with fixed margins, not a layout engine
    fig = _new_figure((6.2, 5.0), constrained=False)
    fig.subplots_adjust(left=0.07, right=0.88, bottom=0.06, top=0.94)
    ax = fig.add_subplot()
    im = ax.imshow(
        np.ma.masked_invalid(prob),
        origin="lower",
        extent=(xmin - hx, xmax + hx, ymin - hy, ymax + hy),
        cmap="RdBu",
        vmin=0.0,
        vmax=1.0,
        interpolation="bilinear",
        aspect="equal",
    )
    cbar = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02, fraction=0.05)
    cbar.set_label("D(x): probability real")
    cbar.set_ticks([0.0, 0.25, 0.5, 0.75, 1.0])
    finite = prob[np.isfinite(prob)]
    if rows >= 2 and cols >= 2 and finite.size and finite.min() < 0.5 < finite.max():
        xs = np.linspace(xmin, xmax, cols)
        ys = np.linspace(ymin, ymax, rows)
        ax.contour(
            xs,
            ys,
            np.ma.masked_invalid(prob),
            levels=[0.5],
            colors="k",
            linewidths=1.0,
            linestyles="-",
        )
    ax.scatter(
        real[:, 0],
        real[:, 1],
        s=14,
        c="#00a651",
        edgecolors="white",
        linewidths=0.5,
        marker="o",
        label=f"real ({len(real)})",
        zorder=3,
    )
    ax.scatter(
        fake[:, 0],
        fake[:, 1],
        s=16,
        c="black",
        linewidths=1.0,
        marker="x",
        label=f"generated ({len(fake)})",
        zorder=4,
    )
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    ax.set_aspect("equal")
    ax.legend(loc="upper right", fontsize=10, framealpha=0.85, markerscale=1.3)
    if title:
        ax.set_title(title, fontsize=12)
    return _to_png(fig, metadata={"Description": FIELD_MARKER})
