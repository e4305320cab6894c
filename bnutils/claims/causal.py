"""Chapter 6 (BN's benefits without BN): its claims and their criteria."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .core import (BEYOND_CHANCE, BJORCK, Claim, DE_SMITH, EQUAL_POINTS, Finding, GROWTH_BN, GROWTH_NONE, SPREAD_FACTOR, ZHANG,
                   finite, k_of, max_spread, mean, median, pct, seed_range)


FIXES = ("skipinit", "fixup")  # chapter 6's normalization-free fixes of the no-BN ResNet
_NAMES6 = {"batchnorm": "BN", "none": "no BN", "skipinit": "SkipInit", "fixup": "Fixup", "group": "GroupNorm",
           "layer": "LayerNorm"}


def _trains(a: Any, d: bool) -> bool:
    """A run 'trains' at an lr when it did not diverge and ends above BEYOND_CHANCE test accuracy."""
    return (not d) and finite(a) and float(a) > BEYOND_CHANCE


def _ch6_no_growth(growth: Mapping[str, Sequence[float]]) -> Finding:
    vals = [float(g) for v in FIXES for g in growth[v]]
    cases = [finite(g) and g < GROWTH_BN for g in vals]
    none = [float(g) for g in growth["none"]]
    adequate = bool(none) and all(finite(g) for v in growth for g in growth[v]) and all(g > GROWTH_NONE for g in none)
    ev = "; ".join(f"{_NAMES6.get(v, v)} x" + "/".join(f"{float(g):.2g}" for g in growth[v]) for v in growth)
    return Finding(cases or [False], adequate, max(vals) if vals else math.nan, seed_range(vals),
                   f"variance growth from the first to the last block per initialisation: {ev}; SkipInit and Fixup "
                   f"below {GROWTH_BN:g}x in {k_of(cases)} cases (no BN above {GROWTH_NONE:g}x in "
                   f"{k_of([g > GROWTH_NONE for g in none])})")


def _ch6_large_lrs(diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> list[float]:
    """Every lr from the smallest one at which no BN diverges in every seed (chapter 5's 'large lrs')."""
    lrs = sorted(diverged["none"])
    div_all = [lr for lr in lrs if all(diverged["none"][lr])]
    return [lr for lr in lrs if div_all and lr >= min(div_all)]


def _ch6_tolerate(acc: Mapping[str, Mapping[float, Sequence[float]]],
                  diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    large = _ch6_large_lrs(diverged)
    cases = [_trains(a, d) for v in FIXES for lr in large for a, d in zip(acc[v][lr], diverged[v][lr])]
    weaker = [_trains(a, d) for v in FIXES for a, d in zip(acc[v][large[0]], diverged[v][large[0]])] if large else None
    bn_learns = any(finite(a) and a > BEYOND_CHANCE for lr in acc["batchnorm"] for a in acc["batchnorm"][lr])
    per = lambda v, lr: "/".join("diverged" if d else pct(a) for a, d in zip(acc[v][lr], diverged[v][lr]))
    ev = (f"no BN diverges in every seed from lr {large[0]:g}; there, test accuracy per seed: "
          + "; ".join(f"{_NAMES6[v]} " + ", ".join(f"lr {lr:g} {per(v, lr)}" for lr in large) for v in FIXES)
          if large else "no BN diverges in every seed at no lr of the sweep")
    return Finding(cases or [False], bool(large) and bn_learns, sum(cases) / len(cases) if cases else math.nan,
                   None, ev + (f": they train in {k_of(cases)} cases" if cases else ""), weaker=weaker)


def _ch6_best(acc: Mapping[float, Sequence[float]], diverged: Mapping[float, Sequence[bool]]) -> tuple[float, list]:
    """(lr, per-seed accuracies) at the lr with the highest mean accuracy among those where no seed diverged."""
    ok = [lr for lr in sorted(acc) if not any(diverged[lr]) and all(finite(a) for a in acc[lr])]
    if not ok:
        return math.nan, []
    lr = max(ok, key=lambda x: mean(acc[x]))
    return lr, [float(a) for a in acc[lr]]


def _ch6_close(acc: Mapping[str, Mapping[float, Sequence[float]]],
               diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    bn_lr, bn = _ch6_best(acc["batchnorm"], diverged["batchnorm"])
    best = {v: _ch6_best(acc[v], diverged[v]) for v in FIXES}
    spread = max_spread([bn] + [a for _, a in best.values()]) or 0.0
    tol = max(EQUAL_POINTS, SPREAD_FACTOR * spread)
    gaps = {v: [b - a for b, a in zip(bn, best[v][1])] for v in FIXES}
    cases = [g <= EQUAL_POINTS for v in FIXES for g in gaps[v]]
    weaker = [bool(gaps[v]) and mean(gaps[v]) <= tol for v in FIXES]
    adequate = bool(bn) and mean(bn) > BEYOND_CHANCE and all(best[v][1] for v in FIXES)
    mean_gaps = [mean(gaps[v]) for v in FIXES if gaps[v]]
    ev = (f"best accuracy at equal steps: BN {'/'.join(pct(a) for a in bn)} at lr {bn_lr:g}; "
          + "; ".join(f"{_NAMES6[v]} {'/'.join(pct(a) for a in best[v][1])} at lr {best[v][0]:g} (BN − "
                      f"{_NAMES6[v]} per seed {'/'.join(f'{100 * g:+.1f}' for g in gaps[v])} points)" for v in FIXES)
          + f"; close means at most {100 * EQUAL_POINTS:.0f} points below BN per seed ({k_of(cases)} hold), on the mean "
          f"within max({100 * EQUAL_POINTS:.0f}, {SPREAD_FACTOR:g} x spread) = {100 * tol:.1f} points")
    return Finding(cases or [False], adequate, max(mean_gaps) if mean_gaps else math.nan, spread or None, ev,
                   weaker=weaker)


def _ch6_largest_trained(acc: Mapping[float, Sequence[float]], diverged: Mapping[float, Sequence[bool]],
                         seed: int) -> float | None:
    """The largest lr at which seed number `seed` trains (no divergence, above BEYOND_CHANCE), None if none."""
    ok = [lr for lr in acc if _trains(acc[lr][seed], diverged[lr][seed])]
    return max(ok) if ok else None


def _ch6_batch_free(acc: Mapping[str, Mapping[float, Sequence[float]]],
                    diverged: Mapping[str, Mapping[float, Sequence[bool]]], batch_free: str = "group") -> Finding:
    n = len(next(iter(acc["batchnorm"].values())))
    top = {v: [_ch6_largest_trained(acc[v], diverged[v], s) for s in range(n)] for v in ("batchnorm", "none", batch_free)}
    z = lambda x: 0.0 if x is None else x
    cases = [g is not None and b is not None and g >= b for g, b in zip(top[batch_free], top["batchnorm"])]
    weaker = [g is not None and g > z(o) for g, o in zip(top[batch_free], top["none"])]
    adequate = all(any(diverged["none"][lr][s] for lr in diverged["none"]) for s in range(n)) \
        and all(b is not None for b in top["batchnorm"])
    ratios = [g / b for g, b in zip(top[batch_free], top["batchnorm"]) if g and b]
    fmt = lambda v: "/".join("none" if x is None else f"{x:g}" for x in top[v])
    return Finding(cases, adequate, median(ratios) if ratios else math.nan, None,
                   f"largest lr each seed trains at (no divergence, above {100 * BEYOND_CHANCE:.0f}%): "
                   f"{_NAMES6.get(batch_free, batch_free)} {fmt(batch_free)}, BN {fmt('batchnorm')}, no BN "
                   f"{fmt('none')}: {_NAMES6.get(batch_free, batch_free)} reaches BN's in {k_of(cases)} seeds",
                   weaker=weaker)


CLAIMS = [
    Claim("ch6.fixes_no_growth", 6, f"{ZHANG}; {DE_SMITH}", "SkipInit and Fixup remove the exponential "
          "growth of activations with depth at initialisation", "mean channel variance at the last block output / "
          "at the first (the stem), at initialisation, the deep ResNet of chapter 5's activations-vs-depth analysis",
          "SkipInit and Fixup vs no BN, per initialisation", f"holds when the growth is below {GROWTH_BN:g}x for "
          "SkipInit and Fixup in every initialisation. It cannot fail: both start every residual branch at zero "
          "(SkipInit's scalar, Fixup's last layer), so each block is its shortcut at initialisation and the variance "
          "does not grow (it drops where the zero-padded channels of the shortcuts join); it checks that our networks follow the papers' rules, the evidence is in the other claims",
          f"no BN grows above {GROWTH_NONE:g}x in every initialisation (the depth shows the explosion), all finite",
          "largest growth of SkipInit and Fixup", _ch6_no_growth, kind="holds by construction", min_seeds=1),
    Claim("ch6.fixes_tolerate_large_lr", 6, f"{DE_SMITH}; {ZHANG}", "SkipInit and Fixup train at learning "
          "rates at which the network without BN diverges", "divergence and final test accuracy over chapter 5's "
          "learning-rate sweep (same ResNet, recipe, data and steps)", "at the large lrs (every lr from the smallest "
          "one at which no BN diverges in every seed): SkipInit and Fixup, per seed",
          f"a run trains when it does not diverge and ends above {100 * BEYOND_CHANCE:.0f}% test accuracy. yes: both "
          "train at every large lr in every seed (>= 2 seeds); partly: in at least half of these (network, lr, seed) "
          "cases, or both train at the smallest large lr in every seed; no: otherwise", "at least one lr at which no "
          f"BN diverges in every seed, and BN above {100 * BEYOND_CHANCE:.0f}% at some lr",
          "fraction of (network, large lr, seed) cases that train", _ch6_tolerate),
    Claim("ch6.fixes_close_to_bn", 6, f"{ZHANG}; {DE_SMITH}", "SkipInit and Fixup come close to BN's "
          "best accuracy at equal budget", "final test accuracy of each network at its own best lr (the highest mean "
          "over seeds among the lrs where no seed diverged), same number of steps", "BN's best vs SkipInit's and "
          "Fixup's best, seed by seed", f"yes: BN − fix <= {100 * EQUAL_POINTS:.0f} points for both fixes in every "
          "seed (>= 2 seeds; a fix ahead of BN counts as close); partly: in at least half of the (fix, seed) pairs, or "
          f"each fix's mean gap is within max({100 * EQUAL_POINTS:.0f} points, {SPREAD_FACTOR:g} x the largest spread "
          "across seeds of those best-lr accuracies), i.e. within the seed noise; no: otherwise",
          f"BN's best above {100 * BEYOND_CHANCE:.0f}% (otherwise 'close' is two nets at chance), and each fix has an "
          "lr where no seed diverged", "largest mean gap BN − fix (accuracy)", _ch6_close),
    Claim("ch6.batch_free_lr_tolerance", 6, f"our test of {BJORCK}'s explanation", "A batch-free normalization (GroupNorm) tolerates "
          "learning rates as large as BN's", f"per seed, the largest lr of the sweep at which the network trains (no "
          f"divergence, above {100 * BEYOND_CHANCE:.0f}% test accuracy)", "GroupNorm vs BN (and no BN), same seed",
          "yes: GroupNorm's largest lr is at least BN's in every seed (>= 2 seeds); partly: in at least half of the "
          "seeds, or GroupNorm's is above no BN's in every seed (it recovers part of the tolerance); no: otherwise",
          "no BN diverges at some lr in every seed (the grid reaches the unstable lrs) and BN trains at some lr in "
          "every seed", "median GroupNorm / BN largest lr", _ch6_batch_free),
]
