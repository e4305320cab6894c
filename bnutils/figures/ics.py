"""Chapter 2's figures (internal covariate shift): Fig 1's training curves and layer-input distributions, ICS over
training with seed bands (Santurkar et al.'s Fig 3 layout), ICS against the training loss, and the slider's frame.
They draw the results of `bnutils.experiments.ics`; the conventions are in `bnutils.figures`."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator

from .. import plots
from ..experiments.ics import NORMS, trains
from ..metrics.ics import ics_array
from ..metrics.ics_summaries import smoothed_loss_at
from ..train import smooth
from . import finish

ICS_LABEL = {"l2": "‖G − G′‖₂", "cos": "cos(G, G′)", "rel": "‖G − G′‖ / ‖G‖"}


def plot_fig1_curves(fig1: dict[tuple[str, float], dict], lrs: Sequence[float], *, title: str | None = None) -> Figure:
    """Santurkar Fig 1 (left): per learning rate, training accuracy (per batch, smoothed) and test accuracy of the
    standard and BN VGG (runs {(norm, lr): run}); panel titles say which networks train (`experiments.ics.trains`),
    diverged runs end in a cross, the dotted line is chance."""
    fig, axes = plt.subplots(1, len(lrs), figsize=(5.5 * len(lrs), 3.6), sharey=True, squeeze=False)
    for ax, lr in zip(axes[0], lrs):
        for norm in NORMS:
            r = fig1[(norm, lr)]
            ax.plot(smooth(r["acc"], 20), color=plots.color(norm), alpha=0.6, lw=1,
                    label=f"{plots.label(norm)}, train (batch)")
            ev = r["evals"]
            ax.plot([e["step"] for e in ev], [e["test_acc"] for e in ev], "o--", color=plots.color(norm),
                    label=f"{plots.label(norm)}, test")
            if r["diverged"]:
                plots.mark_diverged(ax, [r["diverged_at"]], [0.1])
        ax.axhline(0.1, color="gray", lw=0.8, ls=":")
        t_none, t_bn = trains(fig1[("none", lr)]), trains(fig1[("batchnorm", lr)])
        ax.set_title(f"η = {lr:g}: " + ("both train" if t_none and t_bn else "only BN trains" if t_bn else
                                         "only the standard net trains" if t_none else "neither trains"))
        ax.set_xlabel("step")
    axes[0, 0].set_ylabel("accuracy")
    axes[0, 0].legend(fontsize=8)
    return finish(fig, title)


def plot_layer_inputs(runs: dict[str, dict], layers: Sequence[str] = ("#3", "#11"), *,
                      title: str | None = None) -> Figure:
    """Santurkar Fig 1 (right): for each recorded layer (a row), one channel's layer input over training as
    histograms (one column per recorded step) for the standard and the BN network, on one shared value range and
    step axis, then the 15/50/85 % quantiles of all the layer's values for both. runs = {norm: run}."""
    fig, axes = plt.subplots(len(layers), 3, figsize=(13, 3 * len(layers)), squeeze=False, sharex=True)
    for row, layer in enumerate(layers):
        pooled = np.concatenate([np.ravel(v) for norm in NORMS for v in runs[norm]["acts"]["layers"][layer]["sample"]])
        pooled = pooled[np.isfinite(pooled)]
        lo, hi = (np.percentile(pooled, 0.5), np.percentile(pooled, 99.5)) if len(pooled) else (-1.0, 1.0)
        for col, norm in enumerate(NORMS):
            acts = runs[norm]["acts"]
            plots.histograms_over_time(axes[row, col], acts["steps"], acts["layers"][layer]["sample"],
                                       value_range=(lo, hi) if hi > lo else None)
            axes[row, col].set_title(f"layer {layer}, {plots.label(norm)}: one channel")
            axes[row, col].set_ylabel("conv output (layer input)")
            plots.quantile_bands(axes[row, 2], acts["steps"], np.asarray(acts["layers"][layer]["quantiles"]), kind=norm)
        axes[row, 1].sharey(axes[row, 0])
        axes[row, 2].set_title(f"layer {layer}: 15/50/85 % quantiles, all channels")
        axes[row, 2].set_xlabel("training step")
    axes[0, 2].legend(fontsize=8)
    return finish(fig, title)


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
        ax.set_title(f"η = {lr:g}: training loss")
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
    vertically. Both axes log for l2 (the loss axis always). Only points a log axis can show are drawn (finite,
    positive where the axis is log); when there is none (e.g. runs too short to have a measurement after step 0),
    the axes say so instead of failing."""
    ylog = key == "l2"
    drawn = 0
    for norm, runs in (("none", runs_none), ("batchnorm", runs_bn)):
        for k, r in enumerate(runs):
            st, v = ics_array(r, key, layer)
            lo = smoothed_loss_at(r, st, window)
            lo, v = lo[1:], v[1:]
            ok = np.isfinite(lo) & np.isfinite(v) & (lo > 0) & ((v > 0) if ylog else True)
            drawn += int(ok.sum())
            ax.plot(lo[ok], v[ok], ".", color=plots.color(norm), alpha=0.6, ms=4,
                    label=plots.label(norm) if k == 0 else None)
    ax.set_xlabel("training loss (smoothed; decreasing →)")
    ax.set_ylabel(ICS_LABEL[key])
    if not drawn:
        ax.text(0.5, 0.5, "no measurement after step 0\nwith a positive loss" + (" and ICS" if ylog else "")
                + ":\nnothing to draw on log axes", transform=ax.transAxes, ha="center", va="center", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        return
    ax.set_xscale("log")
    if ylog:
        ax.set_yscale("log")
    _loss_ticks(ax)
    ax.invert_xaxis()  # training goes left to right: the loss decreases


def _loss_ticks(ax: Axes, n: int = 3) -> None:
    """At most `n` labelled ticks, evenly spaced on the log loss axis (no minor labels): log axes spanning less
    than a decade otherwise label every minor tick, and the labels overprint."""
    lo, hi = sorted(v for v in ax.get_xlim())
    if not (np.isfinite(lo) and np.isfinite(hi) and 0 < lo < hi):
        return
    ticks = np.geomspace(lo, hi, n + 2)[1:-1]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_minor_formatter(NullFormatter())
    for digits in range(2, 6):  # the fewest significant digits that tell the ticks apart
        labels = [f"{t:.{digits}g}".replace("e+0", "e").replace("e-0", "e-") for t in ticks]
        if len(set(labels)) == len(labels):
            break
    ax.set_xticks(ticks, labels)


def plot_equal_loss(panels: Sequence[tuple[str, dict[str, list[dict]], float, int]], *,
                    title: str | None = None) -> Figure:
    """ICS against the training loss: one column per (net name, {norm: runs}, lr, layer), the ℓ2 difference above
    and the cosine below (`draw_equal_loss`); read vertically to compare at equal loss."""
    fig, axes = plt.subplots(2, len(panels), figsize=(3.5 * len(panels), 6.4), squeeze=False)
    for j, (name, runs, lr, layer) in enumerate(panels):
        for row, key in enumerate(("l2", "cos")):
            draw_equal_loss(axes[row, j], runs["none"], runs["batchnorm"], layer, key)
            axes[row, j].set_title(f"{name} η = {lr:g}, layer #{layer}")
    axes[0, 0].legend(fontsize=8)
    return finish(fig, title)


def draw_ics_frame(fig: Figure, value: tuple[str, float, int], vgg: dict, dln: dict) -> None:
    """One slider frame, value = (net 'VGG' or 'DLN', lr, layer): ℓ2 difference and cosine over training, and ℓ2
    at equal loss, for the standard and BN networks (vgg, dln: {lr: {norm: runs}})."""
    name, lr, layer = value
    runs = (vgg if name == "VGG" else dln)[lr]
    axes = fig.subplots(1, 3)
    for norm in NORMS:
        draw_ics_band(axes[0], runs[norm], "l2", layer, norm, log=True)
        draw_ics_band(axes[1], runs[norm], "cos", layer, norm)
    draw_equal_loss(axes[2], runs["none"], runs["batchnorm"], layer, "l2")
    axes[0].set_title(f"{name} η = {lr:g} layer #{layer}: ‖G − G′‖₂")
    axes[1].set_title("cos(G, G′)")
    axes[1].set_ylim(-1.05, 1.05)
    axes[2].set_title("‖G − G′‖₂ at equal loss")
    for a in axes[:2]:
        a.set_xlabel("step")
    axes[0].legend(fontsize=7)
    fig.tight_layout()

