"""Chapter 1's figures (BatchNorm basics): the batch-statistics slider (the spread of the batch mean and the
train-mode accuracy at one batch size) and Ioffe & Szegedy's Fig 1 (test accuracy and the percentiles of one
sigmoid input over training). They draw the results of `bnutils.experiments.basics`; the conventions are in
`bnutils.figures`."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .. import plots
from . import finish

NORMS = ("none", "batchnorm")


def draw_spread_frame(fig: Figure, batch_size: int, spread: Mapping[int, dict[str, Any]],
                      train_mode_acc: Mapping[int, float], eval_acc: float) -> None:
    """One frame of the batch-size slider: the batch means of channel 0 (`basics.batch_mean_spread`, one per batch
    size) on one x range for every frame, with the population mean (left); the train-mode test accuracy vs batch
    size with this batch size circled and eval mode's accuracy dashed (right)."""
    ax1, ax2 = fig.subplots(1, 2)
    s = spread[batch_size]
    ax1.hist(s["batch_means"], bins=25, color=plots.color("batchnorm"), alpha=0.8)
    ax1.axvline(s["population_mean"], color="black", ls="--", label="population mean")
    ax1.set_xlim(min(min(v["batch_means"]) for v in spread.values()), max(max(v["batch_means"]) for v in spread.values()))
    ax1.set(xlabel="batch mean of channel 0 (BN input)", ylabel="batches",
            title=f"batch size {batch_size}: std of the batch mean {s['std']:.3f}")
    ax1.legend(loc="upper right")
    sizes = list(train_mode_acc)
    ax2.plot(sizes, list(train_mode_acc.values()), "o-", color=plots.color("batchnorm"))
    ax2.plot([batch_size], [train_mode_acc[batch_size]], "o", ms=14, mfc="none", mec="black")
    ax2.axhline(eval_acc, color="black", ls="--", label="eval mode")
    ax2.set_xscale("log", base=2)
    ax2.set(xlabel="batch size (images)", ylabel="train-mode test accuracy",
            title=f"accuracy with batch statistics: {train_mode_acc[batch_size]:.2f}")
    ax2.legend(loc="lower right")
    fig.tight_layout()


def plot_fig1(fig1: Mapping[tuple, Sequence[dict[str, Any]]], drift: Mapping[tuple, Sequence[float]],
              lrs: Sequence[float], seeds: Sequence[int], *, title: str | None = None) -> Figure:
    """Ioffe & Szegedy's Fig 1, one row per lr: test accuracy over training (band over the seeds, both networks),
    then the 15/50/85th percentiles of the sigmoid input of the first seed without and with BN, on one y range.
    `fig1[lr, norm]` holds the runs (`basics.ioffe_fig1`, one per seed), `drift[lr, norm]` their percentile ranges."""
    fig, axes = plt.subplots(len(lrs), 3, figsize=(14, 3.3 * len(lrs)), squeeze=False)
    for row, lr in zip(axes, lrs):
        for norm in NORMS:
            runs = fig1[lr, norm]
            plots.band(row[0], [e["step"] for e in runs[0]["evals"]], [[e["test_acc"] for e in r["evals"]] for r in runs],
                       kind=norm)
        row[0].set(xlabel="training step", ylabel="test accuracy", title=f"η = {lr}: test accuracy ({len(seeds)} seeds)")
        row[0].legend()
        lim = [min(np.min(fig1[lr, n][0]["percentiles"]) for n in NORMS),
               max(np.max(fig1[lr, n][0]["percentiles"]) for n in NORMS)]
        for ax, norm in zip(row[1:], NORMS):
            plots.quantile_bands(ax, fig1[lr, norm][0]["steps"], np.asarray(fig1[lr, norm][0]["percentiles"]), kind=norm)
            ax.set_ylim(lim)
            ax.set(xlabel="training step", ylabel="sigmoid input (15/50/85th pct.)")
            ax.set_title(f"{plots.label(norm)}, η = {lr}, seed {seeds[0]}: range {drift[lr, norm][0]:.2f}", fontsize=10)
    return finish(fig, title)
