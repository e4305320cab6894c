"""Chapter 3's figures (the noisy-BN experiment): training curves and test accuracy of the four networks, one
channel's histograms over training (Santurkar et al.'s Fig 2), the per-step change of the layer moments (Fig 8)
and the noise-strength slider. They draw the results of `bnutils.experiments.noisy`; the conventions are in
`bnutils.figures`."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .. import plots, validate
from ..experiments.noisy import _kinds, compared_accuracy
from ..train import smooth
from . import finish

SHORT = {"none": "standard", "batchnorm": "BN", "noisy": "noisy BN", "noise": "standard\n+ noise"}  # tick labels


def plot_training(runs: Sequence[dict[str, Any]], *, window: int = 20, title: str | None = None) -> Figure:
    """Training loss and accuracy (smoothed, seed band) and each seed's test accuracy, per network."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2, 2, 1.3]})
    kinds = _kinds(runs)
    for kind in kinds:
        ok = [r for r in runs if r["kind"] == kind and not r["diverged"]]
        for ax, key in zip(axes[:2], ("loss", "acc")):
            if ok:  # a diverged run's loss reaches 1e30: it is marked, not drawn into the band
                plots.band(ax, np.arange(1, len(ok[0][key]) + 1), [smooth(r[key], window) for r in ok], kind=kind)
        div = [r for r in runs if r["kind"] == kind and r["diverged"]]
        plots.mark_diverged(axes[0], [r["diverged_at"] for r in div], [r["loss"][0] for r in div],
                            label_=f"{plots.label(kind)}: diverged" if div else None)
    for i, kind in enumerate(kinds):
        accs = [compared_accuracy(r) for r in runs if r["kind"] == kind]
        ok = [a for a in accs if np.isfinite(a)]
        axes[2].scatter([i] * len(ok), [100 * a for a in ok], color=plots.color(kind), zorder=3)
        if len(ok) < len(accs):
            plots.mark_diverged(axes[2], [i] * (len(accs) - len(ok)), [10.0] * (len(accs) - len(ok)), label_=None)
    axes[0].set(yscale="log", xlabel="training step", ylabel="training loss (smoothed)")
    axes[1].set(xlabel="training step", ylabel="training accuracy (smoothed)")
    axes[2].axhline(10, color="gray", ls=":", lw=1)
    axes[2].set(xticks=range(len(kinds)), xticklabels=[SHORT[k] for k in kinds],
                ylabel="test accuracy (%)", xlim=(-0.5, len(kinds) - 0.5))
    axes[2].tick_params(axis="x", labelsize=8)
    axes[0].legend(fontsize=8)
    return finish(fig, title)


def plot_histograms(runs: Sequence[dict[str, Any]], *, seed: int = 0, bins: int = 30,
                    title: str | None = None) -> Figure:
    """Santurkar's Fig 2 layout: one channel's activation histogram over training, a row per layer, a column per
    net. The panels of a row (one layer, the networks compared) share the value range (the 0.5-99.5 percentiles
    of the values of the runs that did not diverge) and one colour scale of the density, with one colour bar per row."""
    rs = [r for r in runs if r["seed"] == seed]
    layers = list(rs[0]["layers"])
    fig, axes = plt.subplots(len(layers), len(rs), figsize=(2.6 * len(rs) + 0.8, 1.9 * len(layers) + 0.4),
                             squeeze=False, sharex=True, sharey="row", layout="constrained")
    for i, layer in enumerate(layers):
        ok = [r for r in rs if not r["diverged"]] or rs  # a diverged run's exploding values would set the range
        v = np.concatenate([np.ravel(np.asarray(r["layers"][layer]["hist"], float)) for r in ok])
        v = v[np.isfinite(v)]
        lo, hi = np.percentile(v, [0.5, 99.5]) if len(v) else (-1.0, 1.0)
        for j, r in enumerate(rs):
            d, ax = r["layers"][layer], axes[i, j]
            plots.histograms_over_time(ax, d["hist_steps"], d["hist"], bins=bins, value_range=(lo, hi))
            ax.set(xlabel="training step" if i == len(layers) - 1 else "", ylabel=f"layer {layer}\nvalue" if j == 0 else "")
            if i == 0:
                ax.set_title(plots.label(r["kind"]) + (" (diverged)" if r["diverged"] else ""), color=plots.color(r["kind"]))
        images = [ax.images[-1] for ax in axes[i]]
        top = max(float(np.nanmax(im.get_array())) for im in images)
        for im in images:
            im.set_clim(0, top if top > 0 else 1)
        fig.colorbar(images[-1], ax=list(axes[i]), label="density", pad=0.01, aspect=12)
    if title:
        fig.suptitle(title, fontweight="bold")
    return fig


def plot_moments(runs: Sequence[dict[str, Any]], what: str = "change", *, seed: int = 0, window: int = 1,
                 title: str | None = None) -> Figure:
    """Santurkar's Fig 8: per-step change (or drift from step 0) of the channel means and variances, per layer.

    `window` > 1 draws a trailing moving average (the per-step values are noisy).
    """
    validate.choice("what", what, ("change", "drift"))
    rs = [r for r in runs if r["seed"] == seed]
    layers = list(rs[0]["layers"])
    fig, axes = plt.subplots(2, len(layers), figsize=(3.6 * len(layers), 5), squeeze=False, sharex=True)
    for r in rs:
        for j, layer in enumerate(layers):
            for i, moment in enumerate(("mean", "var")):
                v = np.asarray(r["layers"][layer][f"{moment}_{what}"], float)
                v = v if what == "change" else v[1:]  # the drift is 0 at step 0: off a log scale
                axes[i, j].plot(np.arange(1, len(v) + 1), smooth(v, window), color=plots.color(r["kind"]),
                                label=plots.label(r["kind"]), lw=1.3)
    name = {"change": "|change in one step|", "drift": "|change since step 0|"}[what]
    for j, layer in enumerate(layers):
        axes[0, j].set_title(f"layer {layer}")
        axes[1, j].set_xlabel("training step")
        for i, moment in enumerate(("channel mean", "channel variance")):
            axes[i, j].set_yscale("log")
            if j == 0:
                axes[i, j].set_ylabel(f"{moment}\n{name}")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
    return finish(fig, title, rect=(0, 0.06, 1, 1))


def draw_sweep_frame(fig: Figure, scale: float, sweep: dict[str, dict[float, dict[str, Any]]],
                     window: int = 20) -> None:
    """One frame of the noise-strength slider: test accuracy vs strength, and the training losses at `scale`."""
    ax1, ax2 = fig.subplots(1, 2)
    scales = sorted(next(iter(sweep.values())))
    for kind, runs in sweep.items():
        acc = [100 * compared_accuracy(runs[s]) for s in scales]
        ax1.plot(scales, acc, "o-", color=plots.color(kind), label=plots.label(kind))
        div = [s for s in scales if runs[s]["diverged"]]
        plots.mark_diverged(ax1, div, [10.0] * len(div), label_="diverged" if div else None)
        r = runs[scale]
        ax2.plot(np.arange(1, len(r["loss"]) + 1), smooth(r["loss"], window), color=plots.color(kind),
                 label=f"{plots.label(kind)}" + (" (diverged)" if r["diverged"] else ""))
    ax1.axvline(scale, color="gray", lw=6, alpha=0.25)
    ax1.axhline(10, color="gray", ls=":", lw=1)
    ax1.set(xlabel="noise strength (× Santurkar's constants)", ylabel="test accuracy (%)",
            title=f"noise strength {scale:g}")
    ax2.set(yscale="log", xlabel="training step", ylabel="training loss (smoothed)",
            title=f"training at strength {scale:g}")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()

