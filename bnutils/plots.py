"""One look for every figure: a seaborn theme, a colour-blind-safe palette with a fixed colour per norm kind,
and the figure types chapters share (curves with seed bands, quantile bands over time, histograms over time,
and a precomputed slider that works in the static book with no kernel)."""
from __future__ import annotations

import re
import warnings
from typing import Callable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import seaborn as sns

PALETTE = sns.color_palette("colorblind")
COLORS = {  # one colour per network variant, the same in every chapter
    "none": PALETTE[0], "batchnorm": PALETTE[1], "scratch": PALETTE[1], "noisy": PALETTE[2],
    "noise": PALETTE[3], "l1": PALETTE[4], "l2": PALETTE[5], "linf": PALETTE[6],
    "skipinit": PALETTE[2], "fixup": PALETTE[4], "group": PALETTE[9], "layer": PALETTE[5],
}
LABELS = {
    "none": "standard (no BN)", "batchnorm": "BatchNorm", "scratch": "BatchNorm (scratch)",
    "noisy": "noisy BatchNorm", "noise": "standard + noise", "l1": "ℓ1 norm", "l2": "ℓ2 norm", "linf": "ℓ∞ norm",
    "skipinit": "SkipInit (no BN)", "fixup": "Fixup (no BN)", "group": "GroupNorm", "layer": "LayerNorm",
}
DIVERGED_MARKER = dict(marker="x", color="black", markersize=8, linestyle="none")


def set_theme() -> None:
    """The book's theme: white grid, colour-blind palette, readable sizes, PNG output at a moderate resolution."""
    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook",
                  rc={"figure.dpi": 90, "savefig.dpi": 90, "axes.titleweight": "bold", "axes.titlesize": 11,
                      "legend.frameon": False, "animation.embed_limit": 40})


def color(kind: str):
    return COLORS.get(kind, "gray")


def label(kind: str) -> str:
    return LABELS.get(kind, kind)


def band(ax: plt.Axes, x: Sequence[float], runs: Sequence[Sequence[float]], *, kind: str = "none",
         label_: str | None = None, alpha: float = 0.25) -> None:
    """Mean over runs (seeds) as a line and min..max as a shaded band; runs may differ in length (diverged ones stop)."""
    n = max(len(r) for r in runs)
    m = np.full((len(runs), n), np.nan)
    for i, r in enumerate(runs):
        m[i, : len(r)] = r
    x = np.asarray(x)[:n]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns where every seed diverged
        mean, lo, hi = np.nanmean(m, 0), np.nanmin(m, 0), np.nanmax(m, 0)
    ax.plot(x, mean, color=color(kind), label=label_ or label(kind))
    ax.fill_between(x, lo, hi, color=color(kind), alpha=alpha, linewidth=0)


def quantile_bands(ax: plt.Axes, steps: Sequence[int], quantiles: np.ndarray, *, kind: str = "none",
                   label_: str | None = None) -> None:
    """Ioffe & Szegedy's Fig 1 style: the middle quantile as a line, the outer ones as thin lines around it."""
    q = np.asarray(quantiles)
    mid = q.shape[1] // 2
    for j in range(q.shape[1]):
        ax.plot(steps, q[:, j], color=color(kind), lw=2 if j == mid else 1, alpha=1 if j == mid else 0.7,
                label=(label_ or label(kind)) if j == mid else None)


def histograms_over_time(ax: plt.Axes, steps: Sequence[int], samples: Sequence[Sequence[float]], *,
                         bins: int = 40, value_range: tuple[float, float] | None = None, cmap: str = "mako_r") -> None:
    """Each recorded step's histogram as one column of a heatmap: the distribution's drift at a glance."""
    s = [np.asarray(v, dtype=float) for v in samples]
    finite = np.concatenate([v[np.isfinite(v)] for v in s]) if s else np.array([0.0])
    lo, hi = value_range or (np.percentile(finite, 0.5), np.percentile(finite, 99.5))
    if not hi > lo:
        lo, hi = lo - 1, hi + 1
    edges = np.linspace(lo, hi, bins + 1)
    img = np.stack([np.histogram(v[np.isfinite(v)], bins=edges, density=True)[0] for v in s], axis=1)
    ax.imshow(img, origin="lower", aspect="auto", cmap=cmap, extent=(steps[0], steps[-1], lo, hi),
              interpolation="nearest")
    ax.set_xlabel("training step")
    ax.set_ylabel("activation value")


def mark_diverged(ax: plt.Axes, x: Sequence[float], y: Sequence[float], label_: str | None = "diverged") -> None:
    """Black crosses where runs diverged, so a missing point never looks like a good one."""
    if len(x):
        ax.plot(x, y, label=label_, **DIVERGED_MARKER)


def frames_slider(draw: Callable[[plt.Figure, object], None], values: Sequence[object], *,
                  figsize: tuple[float, float] = (9, 3.5), interval: int = 800) -> str:
    """HTML of a figure with a frame slider: draw(fig, value) is called for each value and the frames are embedded.

    The slider works in the static book with no kernel and no network (matplotlib's JavaScript animation).
    """
    from matplotlib.animation import FuncAnimation

    fig = plt.figure(figsize=figsize)

    def update(i: int):
        fig.clear()
        draw(fig, values[i])
        return []

    anim = FuncAnimation(fig, update, frames=len(values), interval=interval, blit=False)
    html = anim.to_jshtml(default_mode="once")
    plt.close(fig)
    return _offline(html)


def _svg(path: str) -> str:
    """An inline 16x16 icon in the text colour: drawn by any browser, no icon font or symbol font needed."""
    return (f'<svg width="14" height="14" viewBox="0 0 16 16" aria-hidden="true" style="vertical-align:-2px">'
            f'<path fill="currentColor" d="{path}"/></svg>')


_ICONS = {"fa-minus": _svg("M2 7h12v2H2z"), "fa-plus": _svg("M7 2h2v5h5v2H9v5H7V9H2V7h5z"),
          "fa-fast-backward": _svg("M2 2h2v12H2zM9 8l5-6v12zM4 8l5-6v12z"),
          "fa-step-backward": _svg("M3 2h2v12H3zM6 8l7-6v12z"),
          "fa-play fa-flip-horizontal": _svg("M3 8l10-6v12z"), "fa-pause": _svg("M3 2h4v12H3zM9 2h4v12H9z"),
          "fa-play": _svg("M3 2l10 6-10 6z"), "fa-step-forward": _svg("M11 2h2v12h-2zM3 2l7 6-7 6z"),
          "fa-fast-forward": _svg("M12 2h2v12h-2zM2 2l5 6-5 6zM7 2l5 6-5 6z")}


def _offline(html: str) -> str:
    """matplotlib's animation HTML links Font Awesome from a CDN for its button icons: drop the link and draw the
    icons as inline SVG, so the slider needs no network and no font (headless browsers lack symbol fonts)."""
    html = re.sub(r'<link rel="stylesheet"\s*href="https://[^"]*font-awesome[^"]*">', "", html)
    return re.sub(r'<i class="fa ([a-z -]+)"></i>', lambda m: _ICONS.get(m.group(1), _svg("M5 5h6v6H5z")), html)
