"""Chapter 2 (internal covariate shift, Santurkar et al. 2018): its claims and their criteria."""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .core import (Claim, DLN_COS_NEAR_1, DRIFT_SIMILAR, Finding, ICS_DCOS, ICS_L2_RATIO, SANTURKAR, TRAINS_RULE, finite, k_of,
                   max_spread, median, pct, reduces_ics, seed_range)


def _ch2_both_train(trains_none: Sequence[bool], trains_bn: Sequence[bool], acc_none: Sequence[float],
                    acc_bn: Sequence[float], lr: float) -> Finding:
    both = [bool(a and b) for a, b in zip(trains_none, trains_bn)]
    cases = [t and ab > an for t, an, ab in zip(both, acc_none, acc_bn)]
    gaps = [ab - an for an, ab in zip(acc_none, acc_bn)]
    return Finding(cases, any(trains_none) or any(trains_bn), median(gaps), seed_range(gaps),
                   f"lr {lr:g}: final test accuracy standard " + "/".join(pct(a) for a in acc_none) + ", BN "
                   + "/".join(pct(a) for a in acc_bn) + f"; both train in {k_of(both)} seeds", weaker=both)


def _ch2_only_bn(trains_none: Sequence[bool], trains_bn: Sequence[bool], bn_trains_at_small_lr: bool,
                 lr: float) -> Finding:
    cases = [bool(b and not n) for n, b in zip(trains_none, trains_bn)]
    return Finding(cases, bool(bn_trains_at_small_lr), float(sum(cases)), None,
                   f"lr {lr:g}: standard trains in {sum(map(bool, trains_none))}, BN in {sum(map(bool, trains_bn))} "
                   f"of {len(cases)} seed(s)")


def _ch2_similar(drift_none: Mapping[str, float], drift_bn: Mapping[str, float]) -> Finding:
    lo, hi = DRIFT_SIMILAR
    r = {l: drift_bn[l] / drift_none[l] if drift_none[l] > 0 else math.nan for l in drift_none}
    return Finding([lo <= v <= hi for v in r.values()], all(finite(v) and v > 0 for v in r.values()),
                   median(list(r.values())), None,
                   "drift per record BN / standard: " + ", ".join(f"{l} {drift_bn[l]:.3f} / {drift_none[l]:.3f} "
                                                                 f"({v:.2f}x)" for l, v in r.items()))


def _ch2_ics(rows: Sequence[Mapping[str, Any]]) -> Finding:
    """rows: name, lr, layer, l2_ratio and dcos (BN - standard), each a list over seeds (or one number)."""
    listify = lambda v: list(v) if isinstance(v, (list, tuple)) else [v]
    cases, ratios, bad = [], [], []
    for r in rows:
        for q, d in zip(listify(r["l2_ratio"]), listify(r["dcos"])):
            ok = not reduces_ics(q, d)
            cases.append(ok)
            if not ok:
                bad.append(f"{r['name']} lr {r['lr']:g} #{r['layer']} (ℓ2 {q:.2f}x, Δcos {d:+.2f})")
        ratios.append([q for q in listify(r["l2_ratio"]) if finite(q) and q > 0])
    adequate = bool(rows) and all(finite(q) and finite(d) for r in rows
                                  for q, d in zip(listify(r["l2_ratio"]), listify(r["dcos"])))
    ev = (f"no reduction in {k_of(cases)} (net, lr, layer, seed) cases; median BN/standard ℓ2 ratio "
          f"{median([q for v in ratios for q in v]):.2f}")
    return Finding(cases, adequate, median([q for v in ratios for q in v]), max_spread(ratios),
                   ev + ("; BN reduces ICS in " + ", ".join(bad) if bad else ""))


def _ch2_dln(cos_none: Mapping[float, Sequence[Sequence[float]]], cos_bn: Mapping[float, Sequence[Sequence[float]]]) -> Finding:
    """cos_*: lr -> per seed (median cosine, 10-90 % range)."""
    cases, weaker = [], []
    for lr in cos_none:
        for (mn, sn), (mb, sb) in zip(cos_none[lr], cos_bn[lr]):
            cases.append(mn > DLN_COS_NEAR_1 and mb < mn and sb > sn)
            weaker.append(mb < mn)
    gaps = {lr: [n[0] - b[0] for n, b in zip(cos_none[lr], cos_bn[lr])] for lr in cos_none}
    ev = "; ".join(f"lr {lr:g}: cos median (10-90 % range) per seed standard "
                   + ", ".join(f"{m:.2f} ({s:.2f})" for m, s in cos_none[lr]) + "; BN "
                   + ", ".join(f"{m:.2f} ({s:.2f})" for m, s in cos_bn[lr]) for lr in cos_none)
    return Finding(cases, all(finite(m) for v in list(cos_none.values()) + list(cos_bn.values()) for m, _ in v),
                   median([g for v in gaps.values() for g in v]), max_spread(list(gaps.values())), ev, weaker=weaker)


CLAIMS = [
    Claim("ch2.fig1_both_train", 2, f"{SANTURKAR}, Fig 1 (lr 0.1: 83 % vs 80 %)", "At the paper's 'both train' lr, both "
          "nets train and BN ends with higher test accuracy", f"final test accuracy and whether each run trains ({TRAINS_RULE})",
          "BN vs standard VGG at lr 0.1, same seed", "yes: both train and BN's final test accuracy is higher, in every "
          "seed (>= 2 seeds); partly: both train in every seed (BN not ahead), or only one seed; no: otherwise",
          "at least one of the two networks trains at this lr (otherwise the budget is too short)",
          "median BN − standard final test accuracy", _ch2_both_train),
    Claim("ch2.fig1_only_bn_large_lr", 2, f"{SANTURKAR}, Fig 1 (lr 0.5)", "At the large lr only the BN network trains",
          f"whether each run trains ({TRAINS_RULE})", "BN vs standard VGG at lr 0.5, same seed",
          "yes: BN trains and the standard net does not, in every seed (>= 2 seeds); partly: so in at least half of "
          "the seeds; no: otherwise", "BN trains at the small lr (otherwise the budget is too short to train at all)",
          "seeds in which only BN trains", _ch2_only_bn),
    Claim("ch2.fig1_similar_distributions", 2, f"{SANTURKAR}, Fig 1 (layers #3, #11)", "Layer-input distributions look only "
          "slightly different with and without BN", "drift per record of the median and 15-85 % spread of the "
          "layer input, pooled over channels, relative to the spread; the layer input is the conv output before BN "
          "(without BN: the conv output, the ReLU's input)", "BN / standard drift at layers #3 and #11, lr 0.1",
          f"yes: the ratio is within [{DRIFT_SIMILAR[0]:g}, {DRIFT_SIMILAR[1]:g}] at both layers (>= 2 seeds); "
          "partly: at one layer, or one seed; no: at neither", "both drifts measured (finite, positive)",
          "median BN / standard drift ratio", _ch2_similar),
    Claim("ch2.ics_equal_step", 2, f"{SANTURKAR}, Fig 3 and Definition 2.1", "BN does not reduce ICS (Definition 2.1), at "
          "equal step", "‖G − G′‖₂ and cos(G, G′) per monitored step, median over steps (step 0 excluded)",
          "BN vs standard, per (net, lr, layer) of the paper (VGG #5/#10 at lr 0.1/0.01, DLN #9/#17 at 1e-6/1e-7) and "
          "per seed", f"one rule per case: BN reduces ICS when its ℓ2 difference is below {ICS_L2_RATIO:g}x the "
          f"standard net's or its cosine is higher by more than {ICS_DCOS:g}; the paper's claim holds in a case when "
          "neither is so. yes: it holds in every case (>= 2 seeds); partly: in at least half; no: otherwise",
          "every case measured (finite ratios)", "median BN / standard ℓ2 ratio", _ch2_ics),
    Claim("ch2.ics_equal_loss", 2, "our addition (Santurkar et al. compare at equal step)", "BN does not reduce ICS "
          "at equal training loss either", "the same medians per bin of training loss both networks reach",
          "BN vs standard at equal smoothed training loss, per (net, lr, layer) and seed",
          "the same rule as ch2.ics_equal_step, on the cases whose losses overlap", "at least one case whose "
          "training losses overlap", "median BN / standard ℓ2 ratio at equal loss", _ch2_ics),
    Claim("ch2.dln_cosine", 2, f"{SANTURKAR}, Fig 3 (DLN)", "DLN: the standard net's cosine stays near 1 while BN's is "
          "lower and swings", "cos(G, G′) at layers #9 and #17: median and 10-90 % range over steps",
          "BN vs standard deep linear network at each lr, per seed",
          f"yes: the standard net's median cosine is above {DLN_COS_NEAR_1:g}, BN's median is lower and its range "
          "wider, at every lr in every seed (>= 2 seeds); partly: in at least half of them, or BN's median is lower "
          "everywhere; no: otherwise", "cosines measured (finite)", "median standard − BN cosine", _ch2_dln),
]
