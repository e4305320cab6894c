"""Summaries of ICS results (`metrics.ics.ICS`), for run dicts holding one under "ics" as the experiments return
them: medians per network, values at equal training loss, cosine statistics, and the two readings side by side."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import validate
from ..train import smooth
from .ics import ics_array


def summarize(runs_none: Sequence[dict], runs_bn: Sequence[dict], layer: int, *, skip_first: bool = True) -> dict:
    """Median over measured steps and seeds of l2, cos and rel for both variants, and their ratios.

    The first measurement (step 0, before any training) is skipped by default. Diverged steps are excluded
    (a diverged run stops, so it has no measurements after it).
    """
    validate.nonempty("runs_none", runs_none)
    validate.nonempty("runs_bn", runs_bn)
    out: dict[str, Any] = {"layer": layer}
    for name, runs in (("none", runs_none), ("batchnorm", runs_bn)):
        for key in ("l2", "cos", "rel"):
            vals = np.concatenate([ics_array(r, key, layer)[1][1 if skip_first else 0:] for r in runs])
            vals = vals[np.isfinite(vals)]
            out[f"{key}_{name}"] = float(np.median(vals)) if len(vals) else math.nan
    out["l2_ratio"] = out["l2_batchnorm"] / out["l2_none"] if out["l2_none"] > 0 else math.nan
    out["rel_ratio"] = out["rel_batchnorm"] / out["rel_none"] if out["rel_none"] > 0 else math.nan
    return out


def smoothed_loss_at(run: dict[str, Any], steps: Sequence[int], window: int = 20) -> np.ndarray:
    """The training loss (moving average over `window` steps) at the given steps."""
    s = smooth(run["loss"], window)
    return np.asarray([s[t] if t < len(s) else math.nan for t in steps], dtype=float)


def at_equal_loss(runs_none: Sequence[dict], runs_bn: Sequence[dict], layer: int, key: str = "l2", *,
                  n_levels: int = 6, window: int = 20) -> dict[str, Any]:
    """Compare an ICS quantity at equal training loss rather than at equal step.

    Each measurement is paired with the smoothed training loss at its step; the loss range both variants
    cover (pooled over seeds, step 0 excluded) is cut into `n_levels` bins on a log scale, and each bin holds
    the median of `key` per variant. Returns levels (bin centres), none, batchnorm (NaN where a variant has
    no measurement in a bin) and the overlapping loss range; empty lists if the ranges do not overlap.
    """
    validate.nonempty("runs_none", runs_none)
    validate.nonempty("runs_bn", runs_bn)
    validate.integer("n_levels", n_levels)
    pts = {}
    for name, runs in (("none", runs_none), ("batchnorm", runs_bn)):
        ls, vs = [], []
        for r in runs:
            st, v = ics_array(r, key, layer)
            lo = smoothed_loss_at(r, st, window)
            ls.append(lo[1:]); vs.append(v[1:])
        ls, vs = np.concatenate(ls), np.concatenate(vs)
        ok = np.isfinite(ls) & np.isfinite(vs) & (ls > 0)
        pts[name] = (ls[ok], vs[ok])
    lo = max(np.min(pts[n][0]) if len(pts[n][0]) else math.inf for n in pts)
    hi = min(np.max(pts[n][0]) if len(pts[n][0]) else -math.inf for n in pts)
    out: dict[str, Any] = {"key": key, "layer": layer, "range": [lo, hi], "levels": [], "none": [], "batchnorm": []}
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        return out
    edges = np.geomspace(lo, hi, n_levels + 1)
    out["levels"] = list(np.sqrt(edges[:-1] * edges[1:]))
    for name in ("none", "batchnorm"):
        ls, vs = pts[name]
        for a, b in zip(edges[:-1], edges[1:]):
            sel = (ls >= a) & (ls <= b)
            out[name].append(float(np.median(vs[sel])) if sel.any() else math.nan)
    return out


def cos_stats(runs: Sequence[dict], layers: Sequence[int] = (9, 17)) -> tuple[float, float]:
    """Median and 10-90 % range of cos(G, G') at `layers` over the measured steps (step 0 excluded) of `runs`."""
    vals = np.concatenate([ics_array(r, "cos", l)[1][1:] for r in runs for l in layers])
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return math.nan, math.nan
    return float(np.median(vals)), float(np.percentile(vals, 90) - np.percentile(vals, 10))


def equal_loss_summary(rn: Sequence[dict], rb: Sequence[dict], layer: int) -> tuple[float, float]:
    """At equal training loss (`at_equal_loss`): (median over loss levels of the BN / standard l2 ratio, median delta cos); NaN when the losses do not overlap."""
    eq, eqc = (at_equal_loss(rn, rb, layer, k) for k in ("l2", "cos"))
    r = [b / a for a, b in zip(eq["none"], eq["batchnorm"]) if np.isfinite(a) and np.isfinite(b) and a > 0]
    d = [b - a for a, b in zip(eqc["none"], eqc["batchnorm"]) if np.isfinite(a) and np.isfinite(b)]
    return (float(np.median(r)) if r else math.nan), (float(np.median(d)) if d else math.nan)


def readings(runs: dict[str, dict[str, Any]], layers: Sequence[int]) -> list[dict[str, Any]]:
    """The two readings of 'the earlier layers move' side by side, from runs {norm: run} measured with
    `weights_only_too`: per layer, the median (step 0 excluded) l2 and cos of each network under the main reading
    (every earlier parameter moves) and the weights-only one, and BN / standard l2 ratios under both."""
    out = []
    for layer in layers:
        row: dict[str, Any] = {"layer": layer}
        for reading, key in (("all", "ics"), ("weights", "ics_weights")):
            for norm in ("none", "batchnorm"):
                for q in ("l2", "cos"):
                    v = ics_array(runs[norm][key], q, layer)[1][1:]
                    v = v[np.isfinite(v)]
                    row[f"{q}_{norm}_{reading}"] = float(np.median(v)) if len(v) else math.nan
            a, b = row[f"l2_none_{reading}"], row[f"l2_batchnorm_{reading}"]
            row[f"ratio_{reading}"] = b / a if a > 0 else math.nan
        out.append(row)
    return out
