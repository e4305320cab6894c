"""Chapter 4's figures (loss-landscape smoothness): Santurkar et al.'s Fig 4 panels (loss, gradient
predictiveness, effective smoothness K along the gradient) and the gradient change against the step size (Fig 11).
They draw the results of `bnutils.experiments.landscape`; the conventions are in `bnutils.figures`."""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import NullFormatter

from .. import plots, validate
from ..metrics.landscape import landscape_bands


def _finite_or_nan(v: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(v), v, np.nan)


def draw_landscape(axes: Sequence[Axes], runs: dict[str, list[dict]], max_rel: float | None = None) -> None:
    """Santurkar et al.'s Fig 4 panels on three axes: loss band, gradient-predictiveness band, effective smoothness K.

    Each network's band is the min..max over probes and seeds at every probed step; K is the mean over seeds
    with a min..max band. Probes that blew up (inf) are drawn as black crosses at the top of the panel.
    """
    keys = (("loss_lo", "loss_hi", "loss L(w − η' g)"), ("grad_lo", "grad_hi", "||g − g(η')||"),
            ("beta", "beta", "effective smoothness K"))
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

