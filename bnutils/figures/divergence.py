"""Chapter 5's figures (Bjorck et al. 2018): the learning-rate sweep, the relative loss after one step, channel
statistics vs depth and along a diverging update, the final-layer gradient, random-matrix products and SGD noise.
They draw the results of `bnutils.experiments.divergence`; the conventions are in `bnutils.figures`."""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from .. import plots
from ..experiments.divergence import DIVERGENCE_RATIO, NORMS, PAPER_LRS
from ..experiments.resnets import NAMES, NETWORKS
from ..experiments.sgd_noise import noise_slope
from ..train import smooth
from . import finish


# Colours and labels come from bnutils.plots (one per network, the same in every chapter); every network also has
# its own marker, so that no colour is needed to tell them apart
MARKERS = {"batchnorm": "o", "none": "s", "skipinit": "^", "fixup": "D", "group": "v", "layer": "P"}
LINES = {"group": "--", "layer": "--"}  # the batch-free norms dashed: they sit on BN's curves


def _label(variant: str) -> str:
    """The legend label of a network of chapters 5 and 6."""
    return plots.label(variant) if variant in NORMS else NAMES.get(variant, variant)


def _order(keys: Iterable[str]) -> list[str]:
    return sorted(keys, key=lambda v: NETWORKS.index(v) if v in NETWORKS else len(NETWORKS))


def draw_accuracy_vs_lr(ax: Axes, table: Mapping[str, Any], current: float | None = None) -> None:
    """Final test accuracy vs lr per network (`divergence.sweep_table`): mean over the seeds that did not diverge,
    each seed as a dot; diverged seeds as crosses in the network's colour, one height per network near the axis.
    The legend sits outside the axes, right of them, so that it hides no point."""
    acc, div = table["acc"], table["diverged"]
    for i, v in enumerate(_order(acc)):
        lrs = sorted(acc[v])
        ok = [lr for lr in lrs if any(not d for d in div[v][lr])]
        means = [100 * np.mean([a for a, d in zip(acc[v][lr], div[v][lr]) if not d]) for lr in ok]
        ax.plot(ok, means, LINES.get(v, "-"), marker=MARKERS.get(v, "o"), ms=5, color=plots.color(v), label=_label(v))
        for lr in ok:
            pts = [100 * a for a, d in zip(acc[v][lr], div[v][lr]) if not d]
            ax.plot([lr] * len(pts), pts, ".", color=plots.color(v), alpha=0.5)
        bad = [lr for lr in lrs for d in div[v][lr] if d]
        if bad:
            plots.mark_diverged(ax, bad, [2 + 2.5 * i] * len(bad), label_=None)
            ax.lines[-1].set_color(plots.color(v))
    ax.plot([], [], label="diverged (no accuracy)", **plots.DIVERGED_MARKER)
    if current is not None:
        ax.axvline(current, color="gray", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_ylim(0, None)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0)


def draw_curves(ax: Axes, runs: Sequence[dict[str, Any]], lr: float, *, window: int = 10) -> None:
    """Training loss (smoothed, log scale) of every seed at one lr, BN and no-BN; diverged runs end in a cross.
    The panel's title gives each network's final test accuracy (or 'diverged')."""
    parts = []
    for norm in NORMS:
        rs = [r for r in runs if r["norm"] == norm and math.isclose(r["lr"], lr)]
        if not rs:
            continue
        for i, r in enumerate(rs):
            loss = np.minimum(np.asarray(r["loss"], dtype=float), 1e4)
            s = smooth(np.where(np.isfinite(loss), loss, np.nan), window)
            ax.plot(np.arange(1, len(s) + 1), s, color=plots.color(norm), alpha=0.8,
                    label=plots.label(norm) if i == 0 else None)
            if r["diverged"]:
                plots.mark_diverged(ax, [r["diverged_at"] + 1], [min(s[-1] if np.isfinite(s[-1]) else 1e4, 1e4)],
                                    label_=None)
        accs = [r["final_test_acc"] for r in rs if not r["diverged"]]
        n_div = sum(r["diverged"] for r in rs)
        txt = f"{100 * np.mean(accs):.0f}%" if accs else "diverged"
        if accs and n_div:
            txt += f" ({n_div} diverged)"
        parts.append(f"{'BN' if norm == 'batchnorm' else 'no BN'} {txt}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (smoothed)")
    ax.legend(fontsize=8)
    ax.set_title(f"lr {lr:.2g}: final test acc. " + ", ".join(parts))


def draw_explorer_frame(fig: Figure, lr: float, runs: Sequence[dict[str, Any]], table: Mapping[str, Any]) -> None:
    """One frame of the learning-rate explorer: the curves at `lr` (left), accuracy vs lr (`divergence.sweep_table`)
    with `lr` marked (right)."""
    ax1, ax2 = fig.subplots(1, 2)
    draw_curves(ax1, runs, lr)
    draw_accuracy_vs_lr(ax2, table, current=lr)
    fig.tight_layout()


DEAD_COLOR = "#c8c8c8"  # channel heatmaps: dead channels (exactly 0), off the log colour scale


def _network_name(depth: int, width: float) -> str:
    """'ResNet-56 at 1/4 width' ('ResNet-110' at full width): the network a result comes from."""
    if width == 1:
        return f"ResNet-{depth}"
    frac = {0.5: "½", 0.25: "¼", 0.125: "⅛"}.get(width, f"{width:g}×")
    return f"ResNet-{depth} at {frac} width"


def plot_channel_heatmaps(result: dict[str, Any], *, title: str | None = None) -> Figure:
    """Bjorck's Fig 4: rows = fraction of the update applied, columns = channels, colour = |mean| (top row) or
    variance (bottom row). The panels of a row share one log colour scale and one colourbar; each panel is titled
    with its block of the network the result comes from (depth and width from the result) and the ResNet-110 layer
    it stands for. Dead channels (exactly 0, which a log scale cannot show) are drawn in DEAD_COLOR (light grey), non-finite values (overflow) in white."""
    layers, blocks = result["layers"], result["blocks"]
    n_blocks = 1 + (result["depth"] - 2) // 2
    net = _network_name(result["depth"], result.get("width", 1.0))
    fig, axes = plt.subplots(2, len(layers), figsize=(3.4 * len(layers) + 1, 5.8), squeeze=False, layout="constrained")
    cmap = plt.get_cmap("magma").with_extremes(under=DEAD_COLOR, bad="white")
    for i, key in enumerate(("mean", "var")):
        mats = [np.abs(np.asarray(result[key][str(L)], dtype=float)) for L in layers]
        mats = [np.where(np.isfinite(a), a, np.nan) for a in mats]
        pos = [a[a > 0] for a in mats]
        lo = max(min((float(np.nanmin(p)) for p in pos if p.size), default=1e-12), 1e-12)
        hi = max(max(float(np.nanmax(a)) for a in mats), lo * 10)
        for j, (L, a) in enumerate(zip(layers, mats)):
            ax = axes[i, j]
            im = ax.imshow(np.where(a > 0, a, lo / 10), aspect="auto", origin="lower", cmap=cmap,
                           interpolation="nearest", norm=LogNorm(vmin=lo, vmax=hi),
                           extent=(-0.5, a.shape[1] - 0.5, 0, 100))
            ax.grid(False)
            ax.set_title(f"{net}, block {blocks[j]} of {n_blocks}\n(stands for Bjorck's layer {L} of ResNet-110)",
                         fontsize=8)
            ax.set_xlabel("channel")
            ax.set_ylabel("% of the update applied" if j == 0 else "")
        fig.colorbar(im, ax=list(axes[i]), label="|channel mean|" if key == "mean" else "channel variance")
    if title:
        fig.suptitle(title, fontweight="bold", fontsize=11)
    return fig


def plot_paper_lrs(runs: Sequence[dict[str, Any]], *, title: str | None = None) -> Figure:
    """Bjorck's Fig 1 (right): training loss and test accuracy over training at the paper's learning rates."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    styles = {0.1: "-", 0.003: "--", 0.0001: ":"}
    for norm, lrs in PAPER_LRS.items():
        for lr in lrs:
            rs = [r for r in runs if r["norm"] == norm and math.isclose(r["lr"], lr)]
            if not rs:
                continue
            name = f"{plots.label(norm)}, lr {lr:g}"
            loss = [smooth(np.minimum(np.asarray(r["loss"], dtype=float), 1e4), 10) for r in rs]
            plots.band(ax1, np.arange(1, max(len(v) for v in loss) + 1), loss, kind=norm, label_=name)
            ax1.lines[-1].set_linestyle(styles[lr])
            ok = [r for r in rs if not r["diverged"]]
            if ok:
                steps = [e["step"] for e in ok[0]["evals"]]
                acc = 100 * np.mean([[e["test_acc"] for e in r["evals"]] for r in ok], axis=0)
                ax2.plot(steps, acc, marker="o", ls=styles[lr], color=plots.color(norm), label=name)
    ax1.set(yscale="log", xlabel="training step", ylabel="training loss (smoothed)")
    ax2.set(xlabel="training step", ylabel="test accuracy (%)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    return finish(fig, title, fontsize=11)


def plot_relative_loss(results: dict[str, dict[str, Any]], show_batches: Sequence[int] = (1, 4, 7), *,
                       title: str | None = None) -> Figure:
    """Relative loss vs step size for mini-batches `show_batches` (1-based), one panel per network, threshold drawn.
    Only the batches a result measured are drawn (every measured one when none of `show_batches` was, e.g. a
    smoke run's 2 batches)."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), sharey=True)
    styles = ["-", "--", ":", "-."]
    for ax, (norm, r) in zip(np.atleast_1d(axes), results.items()):
        a = np.asarray(r["step_sizes"])
        shown = [b for b in show_batches if 1 <= b <= len(r["ratio"])] or range(1, len(r["ratio"]) + 1)
        for k, b in enumerate(shown):
            ratio = np.minimum(np.asarray(r["ratio"][b - 1], dtype=float), 1e30)  # inf (overflow) drawn at 1e30
            ax.plot(a, ratio, marker="o", ms=3, ls=styles[k % 4], color=plots.color(norm), label=f"mini-batch {b}")
        ax.axhline(DIVERGENCE_RATIO, color="black", ls="--", lw=1, label="divergence threshold 1e3")
        if not np.all(np.isfinite(np.asarray(r["ratio"], dtype=float))):
            ax.text(0.02, 0.95, "overflow (inf) drawn at 1e30", transform=ax.transAxes, fontsize=7, va="top")
        ax.set(xscale="log", yscale="log", xlabel="step size η'", title=plots.label(norm))
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("loss after one step / loss before")
    return finish(fig, title, fontsize=11)


def plot_relative_loss_heatmap(results: dict[str, dict[str, Any]], *, title: str | None = None) -> Figure:
    """log10 relative loss over step size x mini-batch, one panel per network, on a shared colour scale."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.2))
    mats = {n: np.log10(np.clip(np.asarray(r["ratio"], dtype=float), 1e-30, 1e30)) for n, r in results.items()}
    hi = max(3.5, max(float(np.max(m)) for m in mats.values()))
    lo = min(-0.5, min(float(np.min(m)) for m in mats.values()))
    for ax, (norm, r) in zip(np.atleast_1d(axes), results.items()):
        a = np.log10(r["step_sizes"])
        h = (a[1] - a[0]) / 2 if len(a) > 1 else 0.5
        im = ax.imshow(mats[norm], aspect="auto", origin="lower", cmap="rocket_r", vmin=lo, vmax=hi,
                       extent=(a[0] - h, a[-1] + h, 0.5, len(r["ratio"]) + 0.5), interpolation="nearest")
        ax.grid(False)
        ax.contour(a, np.arange(1, len(r["ratio"]) + 1), mats[norm], levels=[3], colors="cyan", linewidths=1.5)
        ax.set(xlabel="log10 step size", ylabel="mini-batch", title=plots.label(norm))
        fig.colorbar(im, ax=ax, label="log10 relative loss")
    return finish(fig, title, fontsize=11)


def plot_stats_vs_depth(results: dict[str, dict[str, Any]], *, title: str | None = None) -> Figure:
    """|channel mean| and channel variance vs layer at initialisation, median with 16-84 % bars, log scale."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for norm, r in results.items():
        for ax, key in zip(axes, ("mean", "var")):
            q = np.asarray(r[key])
            ax.errorbar(r["layer"], q[:, 1], yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]], fmt="o-", ms=3,
                        capsize=2, color=plots.color(norm), label=plots.label(norm))
    for ax, name in zip(axes, ("|channel mean|", "channel variance")):
        ax.set(yscale="log", xlabel="layer (residual block output)", ylabel=name)
        ax.legend(fontsize=8)
    return finish(fig, title, fontsize=11)


def plot_final_gradient(results: dict[str, dict[str, Any]], *, title: str | None = None) -> Figure:
    """The loss gradient w.r.t. the logits at initialisation: rows images, columns classes, one panel per network."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4.2))
    for ax, (norm, r) in zip(np.atleast_1d(axes), results.items()):
        g = np.asarray(r["grad"])
        m = float(np.abs(g).max())
        im = ax.imshow(g, aspect="auto", cmap="vlag", vmin=-m, vmax=m, interpolation="nearest")
        ax.grid(False)
        ax.set(xlabel="class", ylabel="image of the batch", xticks=range(g.shape[1]),
               title=f"{plots.label(norm)}: {100 * r['fraction_top_class'][0]:.0f}% predicted as one class")
        fig.colorbar(im, ax=ax, label="d loss / d logit")
    return finish(fig, title, fontsize=11)


def plot_random_matrices(sv: dict[int, list], cond: dict[str, list], *, title: str | None = None) -> Figure:
    """Histograms of singular values of products of Gaussian matrices, and the condition number vs factors."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    allv = np.concatenate([np.asarray(v) for v in sv.values()])
    bins = np.logspace(np.log10(allv.min()), np.log10(allv.max()), 40)
    for i, (k, v) in enumerate(sorted(sv.items())):
        ax1.hist(v, bins=bins, histtype="step", lw=2, color=plots.PALETTE[i + 2], label=f"{k} factor{'s' * (k > 1)}")
    ax1.set(xscale="log", xlabel="singular value", ylabel="count")
    ax1.legend(fontsize=8)
    c = np.asarray(cond["cond"])
    ax2.plot(cond["factors"], np.exp(np.log(c).mean(0)), "o-", color=plots.PALETTE[2], label="geometric mean over seeds")
    for row in c:
        ax2.plot(cond["factors"], row, ".", color="gray", alpha=0.6)
    ax2.set(yscale="log", xlabel="number of factors (depth)", ylabel="condition number")
    ax2.legend(fontsize=8)
    return finish(fig, title, fontsize=11)


def plot_noise(results: dict[str, dict[str, Any]], lrs: Sequence[float], *, title: str | None = None) -> Figure:
    """E||g_B - g||^2 vs |B| (left: the measurement), and the SGD noise eta^2 E||g_B - g||^2 vs eta^2/|B| for every
    lr and |B| (right: eta^2 is on both axes, so the line is algebra, not evidence; the panel says so)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for norm, r in results.items():
        b = np.asarray(r["batch_sizes"], dtype=float)
        m = np.asarray([np.mean(v) for v in r["sq_dev"]])
        ax1.errorbar(b, m, yerr=[np.std(v) for v in r["sq_dev"]], fmt="o-", capsize=2, color=plots.color(norm),
                     label=f"{plots.label(norm)} (slope {noise_slope(r):.2f})")
        ax1.plot(b, m[0] * b[0] / b, ls=":", color=plots.color(norm), alpha=0.7)
        x = np.concatenate([np.asarray(lrs) ** 2 / bb for bb in b])
        y = np.concatenate([np.asarray(lrs) ** 2 * mm for mm in m])
        ax2.plot(x, y, "o", ms=4, color=plots.color(norm), label=plots.label(norm))
    ax1.set(xscale="log", yscale="log", xlabel="batch size |B|", ylabel="E ||g_B - g||^2")
    ax1.set_xticks(b, [str(int(v)) for v in b], minor=False)
    ax1.minorticks_off()
    ax2.set(xscale="log", yscale="log", xlabel="η² / |B|", ylabel="SGD noise η² E ||g_B - g||²",
            title="η² on both axes: a line by construction, not a test")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return finish(fig, title, fontsize=10)
