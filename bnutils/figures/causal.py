"""Chapter 6's figures (BN's benefits without BN: SkipInit, Fixup, GroupNorm): test accuracy vs learning rate,
the training curves at one learning rate (the slider's frames), activations vs depth and the relative loss at
initialisation, each for the five variants. They draw the results of `bnutils.experiments.causal`; the conventions
are in `bnutils.figures`."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import plots
from ..experiments.divergence import DIVERGENCE_RATIO
from ..train import smooth
from . import finish
from .divergence import LINES, MARKERS, _label, _order, draw_accuracy_vs_lr  # one drawing for chapters 5 and 6

def _color(variant: str):
    return plots.color(variant)


def plot_accuracy_vs_lr(table: Mapping[str, Any], *, title: str | None = None) -> Figure:
    """The sweep of the five variants as one figure (draw_accuracy_vs_lr)."""
    fig, ax = plt.subplots(figsize=(8.5, 4))
    draw_accuracy_vs_lr(ax, table)
    return finish(fig, title, fontsize=10)


def draw_curves(ax: Axes, runs: Sequence[dict[str, Any]], lr: float, *, window: int = 10) -> None:
    """Training loss (smoothed, log scale) of every variant and seed at one lr; diverged runs end in a cross.
    The panel's title names the variants that diverged at this lr."""
    gone = []
    for v in _order({r["variant"] for r in runs}):
        rs = [r for r in runs if r["variant"] == v and math.isclose(r["lr"], lr)]
        for i, r in enumerate(rs):
            loss = np.minimum(np.asarray(r["loss"], dtype=float), 1e4)
            s = smooth(np.where(np.isfinite(loss), loss, np.nan), window)
            ax.plot(np.arange(1, len(s) + 1), s, LINES.get(v, "-"), color=_color(v), alpha=0.8,
                    label=_label(v) if i == 0 else None)
            if r["diverged"]:
                plots.mark_diverged(ax, [r["diverged_at"] + 1], [min(s[-1] if np.isfinite(s[-1]) else 1e4, 1e4)],
                                    label_=None)
        if rs and all(r["diverged"] for r in rs):
            gone.append(_label(v))
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (smoothed)")
    ax.legend(fontsize=7)
    ax.set_title(f"lr {lr:.2g}: " + (f"diverged: {', '.join(gone)}" if gone else "no network diverged"), fontsize=9)


def draw_explorer_frame(fig: Figure, lr: float, runs: Sequence[dict[str, Any]], table: Mapping[str, Any]) -> None:
    """One frame of the learning-rate slider: the curves at `lr` (left), accuracy vs lr with `lr` marked (right)."""
    ax1, ax2 = fig.subplots(1, 2)
    draw_curves(ax1, runs, lr)
    draw_accuracy_vs_lr(ax2, table, current=lr)
    fig.tight_layout()


def plot_growth(stats: Mapping[str, Sequence[dict[str, Any]]], *, title: str | None = None) -> Figure:
    """Mean channel variance vs layer at initialisation (`causal.stats_vs_depth`), one line per variant and
    initialisation (the first solid, the others thin), log scale."""
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    for v in _order(stats):
        for k, r in enumerate(stats[v]):
            ax.plot(r["layer"], r["mean_var"], LINES.get(v, "-"), marker=MARKERS.get(v, "o"), ms=3 if k == 0 else 0,
                    lw=1.8 if k == 0 else 0.8, alpha=1 if k == 0 else 0.6, color=_color(v),
                    label=_label(v) if k == 0 else None)
    ax.set(yscale="log", xlabel="layer (residual block output)", ylabel="mean channel variance")
    ax.legend(fontsize=8)
    return finish(fig, title, fontsize=10)


def plot_relative_loss(results: Mapping[str, dict[str, Any]], *, title: str | None = None) -> Figure:
    """Relative loss after one step vs the step size at initialisation, one line per variant: the median over the
    mini-batches, band from the smallest to the largest; the divergence threshold 1e3 drawn, inf drawn at 1e30."""
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    for v in _order(results):
        r = results[v]
        a = np.asarray(r["step_sizes"])
        m = np.minimum(np.asarray(r["ratio"], dtype=float), 1e30)
        ax.plot(a, np.median(m, 0), LINES.get(v, "-"), marker=MARKERS.get(v, "o"), ms=4, color=_color(v),
                label=_label(v))
        ax.fill_between(a, m.min(0), m.max(0), color=_color(v), alpha=0.15, linewidth=0)
    ax.axhline(DIVERGENCE_RATIO, color="black", ls="--", lw=1, label="divergence threshold 1e3")
    ax.set(xscale="log", yscale="log", xlabel="step size η'", ylabel="loss after one step / loss before")
    ax.legend(fontsize=7)
    return finish(fig, title, fontsize=10)
