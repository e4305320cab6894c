"""Chapter 4's figures (loss-landscape smoothness): Santurkar et al.'s Fig 4 panels (loss, gradient
predictiveness, effective smoothness K along the gradient) and the gradient change against the step size (Fig 11).
They draw the results of `bnutils.experiments.landscape`; the conventions are in `bnutils.figures`."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .. import plots, validate
from ..metrics.landscape import landscape_bands
from ..train import smooth
from . import finish


def _finite_or_nan(v: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(v), v, np.nan)


def draw_landscape(axes: Sequence[Axes], runs: dict[str, list[dict]], max_rel: float | None = None) -> None:
    """Santurkar et al.'s Fig 4 panels on three axes: loss band, gradient-predictiveness band, effective smoothness K.

    Each network's band is the min..max over probes and seeds at every probed step; K is the mean over seeds
    with a min..max band. Probes that blew up (inf) are drawn as black crosses at the top of the panel.
    """
    keys = (("loss_lo", "loss_hi", "loss L(w − η' g)"), ("grad_lo", "grad_hi", "||g − g(η')||"),
            ("K", "K", "effective smoothness K"))
    blown: list[tuple[int, float]] = []
    for norm, rs in runs.items():
        bands = [landscape_bands(r["probe"], max_rel) for r in rs if r["probe"]["step"]]
        if not bands:
            continue
        n = min(len(b["step"]) for b in bands)
        steps = bands[0]["step"][:n]
        for ax, (lo_k, hi_k, name) in zip(axes, keys):
            lo = np.stack([b[lo_k][:n] for b in bands])
            hi = np.stack([b[hi_k][:n] for b in bands])
            bad = ~np.isfinite(hi).all(0)
            blown += [(i, int(s)) for i, s in zip([list(axes).index(ax)] * int(bad.sum()), steps[bad])]
            lo, hi = _finite_or_nan(lo), _finite_or_nan(hi)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns where every probe blew up
                if lo_k == hi_k:
                    ax.plot(steps, np.nanmean(hi, 0), color=plots.color(norm), label=plots.label(norm), marker="o", ms=3)
                ax.fill_between(steps, np.nanmin(lo, 0), np.nanmax(hi, 0), color=plots.color(norm),
                                alpha=0.3, linewidth=0, label=None if lo_k == hi_k else plots.label(norm))
            ax.set_yscale("log")
            ax.yaxis.set_minor_formatter(NullFormatter())  # labelled minor ticks clutter a narrow log range
            ax.set_xlabel("training step")
            ax.set_ylabel(name)
    for i, ax in enumerate(axes):
        xs = [s for j, s in blown if j == i]
        if xs:
            plots.mark_diverged(ax, xs, [ax.get_ylim()[1]] * len(xs), label_="probe blew up (inf)")
    axes[0].legend(fontsize=8)


def draw_gradient_change(ax: Axes, runs: dict[str, list[dict]], which: str = "first") -> None:
    """Santurkar et al.'s Fig 11: ||g - g(eta)|| against eta at the first or last probed step (seed 0), log-log."""
    validate.choice("which", which, ("first", "last"))
    for norm, rs in runs.items():
        p = rs[0]["probe"]
        if not p["step"]:
            continue
        i = 0 if which == "first" else -1
        eta = np.asarray(p["eta_rel"]) * p["lr"][i]
        d = np.asarray(p["grad_dists"][i], float)
        ax.plot(eta, _finite_or_nan(d), marker="o", ms=3, color=plots.color(norm), label=plots.label(norm))
        if not np.isfinite(d).all():
            plots.mark_diverged(ax, eta[~np.isfinite(d)], [np.nanmax(_finite_or_nan(d))] * int((~np.isfinite(d)).sum()))
        ax.set_title(f"step {p['step'][i]}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("probe step size η'")
    ax.set_ylabel("||g − g(η')||")



def plot_landscape(runs: dict[str, list[dict]], rows: Sequence[tuple[float | None, str]], *,
                   title: str | None = None) -> Figure:
    """The three Fig 4 panels (`draw_landscape`), one row per probe range: rows = [(max_rel, row title), ...]."""
    fig, axes = plt.subplots(len(rows), 3, figsize=(12, 3.3 * len(rows)), squeeze=False)
    for row, (max_rel, name) in zip(axes, rows):
        draw_landscape(row, runs, max_rel)
        row[0].set_title(name, loc="left", fontsize=10)
    return finish(fig, title)


def plot_landscape_by_network(runs: dict[str, list[dict]], max_rel: float | None = None, *,
                              reference: str = "batchnorm", title: str | None = None) -> Figure:
    """The Fig 4 quantities with one column per network (rows: loss band, gradient band, K) on shared log axes,
    so that no band hides another; every other column repeats `reference`'s band edges as grey dashed lines."""
    validate.choice("reference", reference, runs)
    fig, axes = plt.subplots(3, len(runs), figsize=(2.9 * len(runs), 7.2), sharex=True, sharey="row", squeeze=False)
    ref = [landscape_bands(r["probe"], max_rel) for r in runs[reference] if r["probe"]["step"]]
    n = min((len(b["step"]) for b in ref), default=0)
    edges = {}  # the reference's band edges (its K line) per row, drawn in the other columns
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns where every probe blew up
        for i, (lo_k, hi_k) in enumerate((("loss_lo", "loss_hi"), ("grad_lo", "grad_hi"), ("K", "K"))):
            lo, hi = (_finite_or_nan(np.stack([b[k][:n] for b in ref])) if n else None for k in (lo_k, hi_k))
            edges[i] = [] if not n else [np.nanmean(hi, 0)] if lo_k == hi_k else [np.nanmin(lo, 0), np.nanmax(hi, 0)]
    for j, (norm, rs) in enumerate(runs.items()):
        draw_landscape(axes[:, j], {norm: rs}, max_rel)
        axes[0, j].set_title(plots.label(norm), color=plots.color(norm), fontsize=10)
        if axes[0, j].get_legend():
            axes[0, j].get_legend().remove()
        for i in range(3):
            if j:
                axes[i, j].set_ylabel("")
            if i < 2:
                axes[i, j].set_xlabel("")
            for k, y in enumerate(edges[i] if norm != reference else []):
                axes[i, j].plot(ref[0]["step"][:n], y, color="0.35", ls="--", lw=1,
                                label=f"{plots.label(reference)}, for reference" if k == 0 else None)
    if len(runs) > 1 and edges[0]:
        axes[0, -1].legend(fontsize=7)
    return finish(fig, title)


def plot_gradient_change(panels: Sequence[tuple[str, dict[str, list[dict]], str]], *,
                         title: str | None = None) -> Figure:
    """Santurkar's Fig 11, one panel per (name, runs, "first" | "last") (`draw_gradient_change`); the panels of
    one name (one network, early and late) share their y range."""
    fig, axes = plt.subplots(1, len(panels), figsize=(3.5 * len(panels), 3.5), squeeze=False)
    for ax, (name, runs, which) in zip(axes[0], panels):
        draw_gradient_change(ax, runs, which)
        ax.set_title(f"{name}, {ax.get_title()}")
    for name in dict.fromkeys(p[0] for p in panels):
        group = [ax for ax, p in zip(axes[0], panels) if p[0] == name]
        lims = [ax.get_ylim() for ax in group]
        for ax in group:
            ax.set_ylim(min(lo for lo, _ in lims), max(hi for _, hi in lims))
        for ax in group[1:]:
            ax.set_ylabel("")
    axes[0, 0].legend(fontsize=8)
    return finish(fig, title, fontsize=11)


def draw_loss_curves(ax: Axes, runs: dict[str, list[dict]], window: int = 10) -> None:
    """Training loss (moving average over `window` steps, band over seeds) of each network, log scale; diverged
    runs are marked where they diverged."""
    for norm, rs in runs.items():
        curves = [smooth(r["loss"], window) for r in rs]
        plots.band(ax, np.arange(1, max(map(len, curves)) + 1), curves, kind=norm)
        div = [r for r in rs if r["diverged"]]
        plots.mark_diverged(ax, [r["diverged_at"] for r in div], [curves[0][-1]] * len(div), label_=None)
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (moving average)")


def plot_activation_histograms(samples: dict[str, Sequence[float]], stats: dict[str, dict[str, float]], *,
                               bins: int = 40, title: str | None = None) -> Figure:
    """Santurkar's Fig 6: one histogram per network of one channel's sampled values (`samples`, network ->
    values), on a shared value range and density axis, each titled with its excess kurtosis and the change of its
    channel means (`stats`, from `bnutils.metrics.activation_shape_stats`)."""
    fig, axes = plt.subplots(1, len(samples), figsize=(2.8 * len(samples), 2.9), sharex=True, sharey=True,
                             squeeze=False)
    allv = np.concatenate([np.asarray(v, float) for v in samples.values()])
    allv = allv[np.isfinite(allv)]
    edges = np.linspace(*np.percentile(allv, [0.5, 99.5]), bins + 1) if len(allv) else bins
    for ax, (norm, v) in zip(axes[0], samples.items()):
        ax.hist(np.clip(v, edges[0], edges[-1]) if len(allv) else v, bins=edges, color=plots.color(norm), density=True)
        st = stats[norm]
        ax.set_title(f"{plots.label(norm)}\nkurtosis {st['kurtosis']:.2g}, change {st['mean_change']:.2g}", fontsize=9)
    axes[0, 0].set_ylabel("density")
    fig.supxlabel(f"activation value after the norm layer (one channel, {len(next(iter(samples.values())))} sampled "
                  "values; the outer 1 % clipped to the edges)", fontsize=10)
    return finish(fig, title, fontsize=11)
