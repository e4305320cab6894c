"""Chapter 5 (large learning rates, Bjorck et al. 2018): its claims and their criteria."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .core import (BEYOND_CHANCE, BJORCK, BN_RELATIVE_LOSS, BN_SPREAD_CLASSES, CONFIDENT, Claim, DIVERGED_RELATIVE_LOSS,
                   EQUAL_POINTS, Finding, GROWTH_BN, GROWTH_NONE, ONE_CLASS, SLOPE_TOL, SPREAD_FACTOR, finite,
                   k_of, max_spread, mean, median, pct, seed_range)


def _ch5_diverge(acc: Mapping[str, Mapping[float, Sequence[float]]],
                 diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    lrs = sorted(acc["none"])
    div_all = [lr for lr in lrs if all(diverged["none"][lr])]
    large = [lr for lr in lrs if div_all and lr >= min(div_all)]
    cases = [bool(dn) and not db and finite(a) and a > BEYOND_CHANCE
             for lr in large for dn, db, a in zip(diverged["none"][lr], diverged["batchnorm"][lr], acc["batchnorm"][lr])]
    weaker = [all(diverged["none"][lr]) for lr in large]
    bn_learns = any(finite(a) and a > BEYOND_CHANCE for lr in lrs for a in acc["batchnorm"][lr])
    bn_large = [a for lr in large for a in acc["batchnorm"][lr] if finite(a)]
    ev = (f"no BN diverged in every seed at lr {', '.join(f'{lr:g}' for lr in div_all) or 'none'}; at lr "
          f">= {min(div_all) if div_all else math.nan:g} BN's test accuracy per seed "
          + ", ".join(f"{lr:g}: " + "/".join(pct(a) if not d else "diverged" for a, d in
                                              zip(acc["batchnorm"][lr], diverged["batchnorm"][lr])) for lr in large))
    return Finding(cases or [False], bool(div_all) and bn_learns, median(bn_large) if bn_large else math.nan,
                   seed_range(bn_large), ev, weaker=weaker or None)


def _ch5_equal_small(acc: Mapping[str, Mapping[float, Sequence[float]]],
                     diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    small = min(acc["none"])
    a_bn, a_none = list(acc["batchnorm"][small]), list(acc["none"][small])
    spread = max_spread([a_bn, a_none])
    tol = max(EQUAL_POINTS, SPREAD_FACTOR * (spread or 0.0))  # the seed noise can grant "partly", never "yes"
    gaps = [b - n for b, n in zip(a_bn, a_none)]
    cases = [finite(g) and abs(g) <= EQUAL_POINTS for g in gaps]
    fin = lambda v: [x for x in v if finite(x)]
    adequate = bool(fin(a_bn)) and bool(fin(a_none)) and min(mean(fin(a_bn)), mean(fin(a_none))) > BEYOND_CHANCE
    return Finding(cases, adequate, median(gaps), seed_range(gaps),
                   f"lr {small:g}: BN − no BN per seed " + "/".join(f"{100 * g:+.1f}" for g in gaps)
                   + f" points (equal within {100 * EQUAL_POINTS:.0f} points; within the seed noise, "
                   f"max({100 * EQUAL_POINTS:.0f}, {SPREAD_FACTOR:g} x spread) = {100 * tol:.1f}, on the mean); test accuracy BN " + "/".join(pct(a) for a in a_bn)
                   + ", no BN " + "/".join(pct(a) for a in a_none),
                   weaker=[finite(mean(gaps)) and abs(mean(gaps)) <= tol])


def _ch5_gain(acc: Mapping[str, Mapping[float, Sequence[float]]],
              diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    lrs = sorted(acc["none"])
    ok = lambda n, lr: not any(diverged[n][lr]) and all(finite(a) for a in acc[n][lr])
    common = [lr for lr in lrs if ok("none", lr) and ok("batchnorm", lr)]
    spread = max_spread([acc[n][lr] for lr in common for n in ("none", "batchnorm")]) or 0.0
    tol = max(EQUAL_POINTS, SPREAD_FACTOR * spread)
    ahead = {lr: min(b - n for b, n in zip(acc["batchnorm"][lr], acc["none"][lr])) > tol for lr in common}
    best = {n: max(((lr, mean(acc[n][lr])) for lr in lrs if ok(n, lr)), key=lambda t: t[1], default=(math.nan, math.nan))
            for n in ("none", "batchnorm")}
    gain = best["batchnorm"][1] - best["none"][1]
    via_lr = finite(gain) and gain > tol and best["batchnorm"][0] > best["none"][0]
    cases = [not a for a in ahead.values()] + [via_lr]
    adequate = bool(common) and any(max(acc[n][lr]) > BEYOND_CHANCE for lr in common for n in ("none", "batchnorm"))
    ev = ("at equal lr, BN − no BN (worst seed pair): " + ", ".join(
        f"{lr:g} {100 * min(b - n for b, n in zip(acc['batchnorm'][lr], acc['none'][lr])):+.1f}" for lr in common)
        + f" points (clearly ahead beyond {100 * tol:.1f}); best: BN {pct(best['batchnorm'][1])} at lr "
        f"{best['batchnorm'][0]:g}, no BN {pct(best['none'][1])} at lr {best['none'][0]:g}")
    contradicted = bool(common) and all(ahead.values())
    return Finding(cases, adequate, gain, spread if spread else None,
                   ev + ("; BN leads clearly at every equal lr: its gain is not (only) the larger lr" if contradicted else ""),
                   override="no" if contradicted else None)


def _ch5_relative_loss(none_diverges_at: Sequence[float | None], bn_ratio: Sequence[Sequence[float]],
                       step_sizes: Sequence[float]) -> Finding:
    hits = [a is not None for a in none_diverges_at]
    within = [max(r) <= BN_RELATIVE_LOSS for r in bn_ratio]
    onset = [a for a in none_diverges_at if a is not None]
    worst = max(max(r) for r in bn_ratio)
    return Finding(hits + within, len(step_sizes) >= 5 and max(step_sizes) >= 0.1 and len(hits) >= 3,
                   min(onset) if onset else math.nan, None,
                   f"no BN passes {DIVERGED_RELATIVE_LOSS:g}x on {k_of(hits)} mini-batches"
                   + (f", from step size {min(onset):.1g}" if onset else "")
                   + f"; BN stays within {BN_RELATIVE_LOSS:g}x on {k_of(within)} (at most {worst:.2f}x)")


def _ch5_growth(growth_none: float, growth_bn: float) -> Finding:
    return Finding([growth_none > GROWTH_NONE, growth_bn < GROWTH_BN], finite(growth_bn), float(growth_none), None,
                   f"variance growth from the first to the last block: x{growth_none:.1e} without BN "
                   f"(needs > {GROWTH_NONE:g}), x{growth_bn:.1f} with BN (needs < {GROWTH_BN:g})",
                   weaker=[growth_none > GROWTH_NONE])


def _ch5_one_class(frac_none: Sequence[float], conf_none: Sequence[float], frac_bn: Sequence[float]) -> Finding:
    cases = [f >= ONE_CLASS and c > CONFIDENT and b <= BN_SPREAD_CLASSES for f, c, b in zip(frac_none, conf_none, frac_bn)]
    weaker = [f >= ONE_CLASS and c > CONFIDENT for f, c in zip(frac_none, conf_none)]
    adequate = bool(cases) and all(finite(v) for v in list(frac_none) + list(conf_none) + list(frac_bn))
    return Finding(cases, adequate, mean(frac_none) - mean(frac_bn), seed_range(frac_bn),
                   "most common class per initialisation: " + "/".join(f"{100 * f:.0f}%" for f in frac_none)
                   + " of the batch without BN, " + "/".join(f"{100 * f:.0f}%" for f in frac_bn)
                   + f" with BN (needs <= {100 * BN_SPREAD_CLASSES:.0f}%): {k_of(cases)} initialisations hold",
                   weaker=weaker)


def _ch5_random(spread: Mapping[int, float], log_cond: Sequence[float]) -> Finding:
    s = [spread[k] for k in sorted(spread)]
    cases = [a < b for a, b in zip(s, s[1:])] + [b > a for a, b in zip(log_cond, log_cond[1:])]
    adequate = len(s) >= 3 and all(finite(v) for v in s + list(log_cond))
    return Finding(cases, adequate, float(log_cond[-1]), None,
                   "90/10 % singular-value ratio " + " / ".join(f"{v:.0f}" for v in s) + " for "
                   + "/".join(str(k) for k in sorted(spread)) + f" factors; condition number 1e{log_cond[0]:.0f} -> "
                   f"1e{log_cond[-1]:.0f} for 1 -> {len(log_cond)} factors")


def _ch5_noise(slope_none: float, slope_bn: float) -> Finding:
    cases = [abs(slope_none + 1) <= SLOPE_TOL, abs(slope_bn + 1) <= SLOPE_TOL]
    return Finding(cases, finite(slope_none) and finite(slope_bn), mean([slope_none, slope_bn]),
                   abs(slope_none - slope_bn),
                   f"log-log slope of E‖g_B − g‖² against |B|: {slope_none:.2f} (no BN), {slope_bn:.2f} (BN), the law "
                   f"says −1 (within {SLOPE_TOL:g}); the a² factor is exact by construction and not tested")


CLAIMS = [
    Claim("ch5.large_lr_diverge_without_bn", 5, f"{BJORCK}, Fig 1", "Without BN large learning rates diverge; with BN "
          "they train", "divergence and final test accuracy over a learning-rate sweep",
          "at the large lrs (every lr from the smallest one at which no-BN diverges in every seed): no BN vs BN, per seed",
          f"yes: at every large lr no BN diverges and BN trains to above {100 * BEYOND_CHANCE:.0f}% test accuracy, in "
          "every seed (>= 2 seeds); partly: in at least half of those cases, or no BN diverges in every seed at every "
          "large lr; no: otherwise", f"at least one lr at which no BN diverges in every seed, and BN above "
          f"{100 * BEYOND_CHANCE:.0f}% at some lr", "median BN test accuracy at the large lrs", _ch5_diverge),
    Claim("ch5.equal_at_small_lr", 5, f"{BJORCK}, Fig 1", "At a small learning rate BN and no BN end equal",
          "final test accuracy at the smallest lr of the sweep", "BN vs no BN, same seed",
          f"yes: |BN − no BN| <= {100 * EQUAL_POINTS:.0f} points in every seed pair (>= 2 seeds); partly: in at "
          f"least half of them, or the mean gap is within max({100 * EQUAL_POINTS:.0f} points, {SPREAD_FACTOR:g} x the "
          "larger spread across seeds), i.e. within the seed noise; no: otherwise", f"both networks above {100 * BEYOND_CHANCE:.0f}% there (otherwise 'equal' is two nets at "
          "chance)", "median BN − no BN gap", _ch5_equal_small),
    Claim("ch5.gain_from_large_lr", 5, f"{BJORCK}, Fig 1", "BN's gain comes from the larger learning rate it permits",
          "final test accuracy at equal learning rates, and each network's best lr",
          "BN vs no BN at every lr where neither diverged; best BN vs best no BN",
          f"BN 'leads clearly' at an lr when it is ahead by more than max({100 * EQUAL_POINTS:.0f} points, "
          f"{SPREAD_FACTOR:g} x seed spread) in every seed pair. no: BN leads clearly at every equal lr (the "
          "mechanism is contradicted at this scale); yes: BN leads clearly at no equal lr, and its best accuracy beats "
          "no BN's best clearly, at a larger lr; partly: otherwise, at least half of these conditions",
          f"at least one lr where neither diverged and some run ends above {100 * BEYOND_CHANCE:.0f}%",
          "best BN − best no BN accuracy", _ch5_gain),
    Claim("ch5.relative_loss", 5, f"{BJORCK}, Fig 2", "Relative loss: without BN one step passes 1e3 beyond ~1e-3; with "
          "BN it stays within ~3x", "loss after one SGD step / loss before, same batch, at initialisation, step sizes "
          "1e-5..1", "no BN vs BN on each mini-batch", f"yes: no BN passes {DIVERGED_RELATIVE_LOSS:g}x on every "
          f"mini-batch and BN stays within {BN_RELATIVE_LOSS:g}x on every mini-batch; partly: at least half of these; "
          "no: otherwise (replicates: the mini-batches)", "at least 5 step sizes reaching 0.1, on at least 3 "
          "mini-batches", "smallest step size at which no BN passes the threshold", _ch5_relative_loss, min_seeds=1),
    Claim("ch5.activations_explode", 5, f"{BJORCK}, Figs 3-4", "Without BN activations grow exponentially with depth at "
          "initialisation", "channel variance at the last block / at the first block",
          "no BN vs BN, one initialisation", f"yes: the growth is above {GROWTH_NONE:g}x without BN and below "
          f"{GROWTH_BN:g}x with BN (decades apart: one initialisation suffices); partly: the growth without BN only; "
          "no: otherwise", "the growths are finite", "growth without BN", _ch5_growth, min_seeds=1),
    Claim("ch5.one_class", 5, f"{BJORCK}, Fig 5", "Without BN the net predicts one class whatever the input; with BN "
          "the output depends on it", "fraction of a batch predicted as its most common class, and the mean "
          "confidence, at initialisation", "no BN vs BN, per initialisation",
          f"yes: without BN >= {100 * ONE_CLASS:.0f}% of the batch in one class with confidence above {CONFIDENT:g}, "
          f"with BN <= {100 * BN_SPREAD_CLASSES:.0f}%, for every initialisation (>= 2); partly: in at least half, or "
          "the no-BN half everywhere; no: otherwise", "every fraction and confidence finite",
          "no-BN minus BN fraction in the top class", _ch5_one_class),
    Claim("ch5.random_products", 5, f"{BJORCK}, Fig 6", "Products of random matrices get ill-conditioned with depth",
          "90/10 % singular-value ratio for 1/3/5 factors; condition number for 1..8 factors (mean over seeds)",
          "each number of factors vs one fewer", "yes: every step up in the number of factors increases both; "
          "partly: at least half of them; no: otherwise", "at least 3 factor counts, all numbers finite", "log10 condition number at the most "
          "factors", _ch5_random, min_seeds=1),
    Claim("ch5.sgd_noise_batch", 5, f"{BJORCK}, Sec. 2", "SGD noise falls as 1/|B|",
          "E‖g_B − g‖² against the batch size |B| at initialisation (log-log slope)", "the slope vs the law's −1",
          f"yes: the slope is within {SLOPE_TOL:g} of −1 with and without BN; partly: for one of them; no: neither. "
          "The a² factor of a²/|B| is exact by construction (a² multiplies both sides) and is not tested",
          "both slopes finite", "mean slope", _ch5_noise, min_seeds=1),
]
