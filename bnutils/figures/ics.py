"""Chapter 2's figures (internal covariate shift): ICS over training with seed bands (Santurkar et al.'s Fig 3
layout) and ICS against the training loss. They draw the results of `bnutils.experiments.ics`; the conventions
are in `bnutils.figures`."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .. import plots
from ..experiments.ics import ics_array, smoothed_loss_at
from ..train import smooth
from . import finish


def draw_ics_band(ax: Axes, runs: Sequence[dict], key: str, layer: int, kind: str, *, log: bool = False) -> None:
    """One ICS quantity (`key`: 'l2', 'cos' or 'rel') of one layer over training: the mean over `runs` (seeds) as a
    line with a min..max band in the colour of `kind`; diverged runs end in a cross."""
    pairs = [ics_array(r, key, layer) for r in runs]
    steps = max((p[0] for p in pairs), key=len)
    plots.band(ax, steps, [p[1] for p in pairs], kind=kind)
    div = [(r["diverged_at"], p[1][-1]) for r, p in zip(runs, pairs) if r["diverged"] and len(p[1])]
    if div:
        plots.mark_diverged(ax, [d[0] for d in div], [d[1] for d in div])
    if log:
        ax.set_yscale("log")


def plot_fig3(rows: dict[float, dict[str, list[dict]]], layers: Sequence[int], *, title: str | None = None,
              loss_log: bool = False) -> Figure:
    """Santurkar Fig 3 layout: one row per learning rate; training loss, then l2 difference (log axis) and cosine
    for each layer in `layers`; standard and BN networks as mean lines with min..max bands over seeds."""
    ncol = 1 + 2 * len(layers)
    fig, axes = plt.subplots(len(rows), ncol, figsize=(3.0 * ncol, 2.6 * len(rows)), squeeze=False)
    for r_i, (lr, by_norm) in enumerate(rows.items()):
        ax = axes[r_i, 0]
        for norm, runs in by_norm.items():
            win = max(1, min(20, len(runs[0]["loss"]) // 10))
            plots.band(ax, np.arange(max(len(r["loss"]) for r in runs)), [smooth(r["loss"], win) for r in runs], kind=norm)
        ax.set_yscale("log") if loss_log else None
        ax.set_title(f"lr={lr:g}: training loss")
        ax.set_xlabel("step")
        for l_i, layer in enumerate(layers):
            a1, a2 = axes[r_i, 1 + l_i], axes[r_i, 1 + len(layers) + l_i]
            for norm, runs in by_norm.items():
                draw_ics_band(a1, runs, "l2", layer, norm, log=True)
                draw_ics_band(a2, runs, "cos", layer, norm)
            a1.set_title(f"layer #{layer}: ‖G − G′‖₂")
            a2.set_title(f"layer #{layer}: cos(G, G′)")
            a2.set_ylim(-1.05, 1.05)
            for a in (a1, a2):
                a.set_xlabel("step")
    axes[0, 0].legend(loc="best", fontsize=8)
    return finish(fig, title)


def draw_equal_loss(ax: Axes, runs_none: Sequence[dict], runs_bn: Sequence[dict], layer: int, key: str = "l2", *,
                    window: int = 20) -> None:
    """Every measurement as a point at (smoothed training loss, ICS quantity): compare at equal loss by reading
    vertically. Both axes log for l2."""
    for norm, runs in (("none", runs_none), ("batchnorm", runs_bn)):
        for k, r in enumerate(runs):
            st, v = ics_array(r, key, layer)
            lo = smoothed_loss_at(r, st, window)
            ax.plot(lo[1:], v[1:], ".", color=plots.color(norm), alpha=0.6, ms=4,
                    label=plots.label(norm) if k == 0 else None)
    ax.set_xscale("log")
    if key == "l2":
        ax.set_yscale("log")
    ax.invert_xaxis()  # training goes left to right: the loss decreases
    ax.set_xlabel("training loss (smoothed; decreasing →)")
    ax.set_ylabel({"l2": "‖G − G′‖₂", "cos": "cos(G, G′)", "rel": "‖G − G′‖ / ‖G‖"}[key])

