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
from matplotlib.ticker import MaxNLocator

__all__ = [
    "FIELD_MARKER",
    "Series",
    "plot_d_beliefs",
    "plot_field",
    "plot_losses",
    "plot_metric",
    "smooth",
]

#: Text stored in a PNG tEXt chunk by :func:`plot_field`, so a report can tell field plots
#: from image sample grids just by looking at the file's bytes.
FIELD_MARKER = "gankit:probability-field"

DPI = 100
WIDE = (6.0, 3.2)
SMALL = (4.6, 2.6)

# Colours that stay readable on a white background and on each other.
C_D = "#d95f02"  # loss_d / D
C_G = "#1b9e77"  # loss_g / G
C_REAL = "#2166ac"  # D(x)
C_FAKE = "#b2182b"  # D(G(z))


def _new_figure(figsize: tuple[float, float]) -> Figure:
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
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


def _plot_series(ax, x: np.ndarray, y: np.ndarray, color: str, label: str) -> None:
    """Raw series as a faint line plus a lightly smoothed curve (or markers if few points)."""
    n = int(np.isfinite(y).sum())
    if n == 0:
        return
    window = max(1, len(y) // 25)
    if n < 2:
        ax.plot(x, y, "o", color=color, label=label, markersize=5)
    elif window >= 2:
        ax.plot(x, y, color=color, alpha=0.25, linewidth=0.8)
        ax.plot(x, smooth(y, window), color=color, linewidth=1.6, label=label)
    else:
        marker = "o" if len(y) <= 30 else None
        ax.plot(x, y, color=color, linewidth=1.4, marker=marker, markersize=3, label=label)


def _finish(ax, xlabel: str = "step") -> None:
    ax.set_xlabel(xlabel)
    ax.grid(True, alpha=0.3, linewidth=0.6)
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _empty_note(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4")


Series = tuple[Sequence[float], Sequence[float | None]]
"""(steps, values) of one curve; values may hold None/NaN (drawn as gaps)."""


def plot_losses(loss_d: Series, loss_g: Series) -> bytes:
    """Plot ``loss_d`` and ``loss_g`` against step, each given as (steps, values).

    Many points: a faint raw line plus a lightly smoothed curve; few points: markers.
    Returns PNG bytes.
    """
    fig = _new_figure(WIDE)
    ax = fig.add_subplot()
    d = _as_float(loss_d[1])
    g = _as_float(loss_g[1])
    _plot_series(ax, _as_float(loss_d[0]), d, C_D, "loss_d (discriminator)")
    _plot_series(ax, _as_float(loss_g[0]), g, C_G, "loss_g (generator)")
    if np.isfinite(d).any() or np.isfinite(g).any():
        ax.legend(loc="best", fontsize=8, frameon=False)
    else:
        _empty_note(ax, "no loss values yet")
    ax.set_title("Losses", fontsize=11)
    ax.set_ylabel("loss")
    _finish(ax)
    return _to_png(fig)


def plot_d_beliefs(d_real: Series, d_fake: Series) -> bytes:
    """Plot D(x) and D(G(z)) (mean probability "real"), each as (steps, values), in [0, 1].

    A dashed line marks the equilibrium D = 0.5. Returns PNG bytes.
    """
    fig = _new_figure(WIDE)
    ax = fig.add_subplot()
    r = _as_float(d_real[1])
    f = _as_float(d_fake[1])
    ax.axhline(0.5, color="0.35", linestyle="--", linewidth=1.0, label="equilibrium D = 0.5")
    _plot_series(ax, _as_float(d_real[0]), r, C_REAL, "D(x): real data")
    _plot_series(ax, _as_float(d_fake[0]), f, C_FAKE, "D(G(z)): generated data")
    if not (np.isfinite(r).any() or np.isfinite(f).any()):
        _empty_note(ax, "no D(x) / D(G(z)) values yet")
    ax.set_ylim(-0.02, 1.02)
    ax.set_title("What D believes", fontsize=11)
    ax.set_ylabel("mean D output (prob. real)")
    ax.legend(loc="best", fontsize=8, frameon=False)
    _finish(ax)
    return _to_png(fig)


def plot_metric(name: str, steps: Sequence[float], values: Sequence[float | None],
                marks: Sequence[float] = (), log: bool = False) -> bytes:
    """Small plot of one extra metric (e.g. ``fid``) against step; ``marks``: steps of warnings
    about it, drawn as red vertical lines. Returns PNG bytes."""
    x = _as_float(steps)
    y = _as_float(values)
    fig = _new_figure(SMALL)
    ax = fig.add_subplot()
    ok = np.isfinite(y)
    if ok.any():
        marker = "o" if ok.sum() <= 40 else None
        ax.plot(x[ok], y[ok], color="#5e3c99", linewidth=1.3, marker=marker, markersize=3)
        if log and (y[ok] > 0).all():
            ax.set_yscale("log")
    else:
        _empty_note(ax, "no finite values yet")
    for m in marks:
        ax.axvline(m, color="#d7301f", linewidth=1.0, linestyle="--")
    ax.set_title(name + ("  (red: warnings)" if marks else ""), fontsize=10)
    _finish(ax)
    return _to_png(fig)


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

    fig = _new_figure((5.0, 4.2))
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
    cbar = fig.colorbar(im, ax=ax, shrink=0.9, pad=0.02)
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
    ax.legend(loc="upper right", fontsize=8, framealpha=0.85, markerscale=1.3)
    if title:
        ax.set_title(title, fontsize=11)
    return _to_png(fig, metadata={"Description": FIELD_MARKER})
