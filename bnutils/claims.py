"""Every claim the book tests, registered before the runs: the paper's quantity, the comparison, the criterion.

A chapter never decides a verdict itself. It measures, then calls `judge(claim_id, seeds=..., **numbers)`, which
applies the claim's criterion (a function of the measured numbers, defined here, once) and returns a
`bnutils.report.Verdict` carrying the claim, the paper, the criterion in words, the seeds, the effect and its
spread across seeds, whether the experiment was adequate, the outcome and an evidence sentence generated from the
numbers. No threshold lives in a notebook; the book's "pre-registration" page is generated from this registry.

Outcomes (the same for every claim; `grade` implements them):
- ``yes``: the effect holds in *every case* the claim covers (every setting x every seed) and the run has at least
  the claim's `min_seeds` seeds (2 for anything trained: one seed cannot show that a result survives a new seed).
- ``partly``: the effect holds in every case but with fewer seeds than that; or in at least half of the cases; or
  the claim's stated weaker form holds in every case. A verdict that changes with the seed is at most ``partly``.
- ``no``: the effect holds in fewer than half of the cases (or a rule states a contradiction, e.g. ch5's gain at
  equal learning rates).
- ``not at this scale``: the claim's adequacy check failed: the experiment could not have shown the effect (both
  networks at chance, nothing diverged, too few probed steps). It says nothing for or against the paper.

Checks that cannot fail, or that only test our code (kind other than ``"claim"``), are judged the same way but
listed as what they are: derivation checks, implementation checks, or facts that hold by construction. They are
not evidence for or against a paper.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from . import validate
from .report import OUTCOMES, Verdict

__all__ = ["Claim", "Finding", "CLAIMS", "OUTCOME_MEANING", "KINDS", "judge", "grade", "reduces_ics", "RANGES",
           "claims_markdown"]

OUTCOME_MEANING = {
    "yes": "the effect holds in every case the claim covers (every setting and every seed), with at least the "
           "claim's minimum number of seeds",
    "partly": "the effect holds in every case but with fewer seeds than that, or in at least half of the cases, or "
              "only the claim's stated weaker form holds everywhere; a verdict that changes with the seed is at "
              "most partly",
    "no": "the effect holds in fewer than half of the cases, or the claim's rule finds it contradicted",
    "not at this scale": "the adequacy check failed: this run could not have shown the effect (e.g. both networks "
                         "at chance, nothing diverged, too few probed steps); it says nothing for or against the paper",
}
KINDS = ("claim", "derivation check", "implementation check", "holds by construction")

# The thresholds, in one place (fractions of accuracy are in [0, 1]).
CHANCE = 0.10  # CIFAR-10
BEYOND_CHANCE = 0.15  # a network "learned beyond chance" above this test accuracy
EQUAL_POINTS = 0.03  # two accuracies are "equal" within max(3 points, SPREAD_FACTOR x the seed spread)
SPREAD_FACTOR = 2.0  # ... and "clearly ahead" beyond that tolerance in every seed pair
MIN_SEEDS = 2  # a "yes" on anything trained needs this many seeds
MIN_PROBED = 8  # Fig 4: probed steps x seeds per network for the landscape to be judged
RANGES = {"vgg": (0.5, 4.0), "dln": (0.01, 30.0)}  # Santurkar Fig 4 probe ranges, in multiples of the lr
ICS_L2_RATIO = 0.8  # Definition 2.1: BN "reduces ICS" in a case if its l2 difference is below 0.8x the standard's
ICS_DCOS = 0.05  # ... or its cosine is higher by more than 0.05
KEPT_GAIN = 0.75  # noisy BN "trains about as well as BN": keeps >= 75 % of BN's training-accuracy gain
CRIPPLE_POINTS = 0.10  # the noise "cripples" the standard net: >= 10 points lost, or divergence
DRIFT_SIMILAR = (0.5, 2.0)  # "only slightly different": BN / standard drift within this factor
DLN_COS_NEAR_1 = 0.9  # "the standard DLN's cosine stays near 1"
LP_LOSS_FACTOR = 1.25  # an l_p net "trains as well as BN": final loss within 25 % of BN's
LP_BETA_FACTOR = 2.0  # "smooths as much as BN": median beta within 2x of BN's (and below the standard net's)
KURTOSIS_SE = 2.0  # "clearly less Gaussian": |excess kurtosis| above BN's by more than 2 standard errors
DIVERGED_RELATIVE_LOSS = 1e3  # Bjorck Fig 2: one step multiplies the loss by more than this
BN_RELATIVE_LOSS = 3.0  # ... while with BN it stays within this factor
GROWTH_NONE, GROWTH_BN = 1e3, 1e2  # Bjorck Figs 3-4: variance growth over depth, without (above) / with BN (below)
ONE_CLASS, CONFIDENT, BN_SPREAD_CLASSES = 0.9, 0.9, 0.5  # Bjorck Fig 5
SLOPE_TOL = 0.25  # SGD noise: log-log slope within 0.25 of -1


def reduces_ics(l2_ratio: float, dcos: float) -> bool:
    """The one rule of chapter 2: BN reduces ICS in a case when *either* measure says so: its l2 difference is
    below ICS_L2_RATIO x the standard network's, or its cosine is higher by more than ICS_DCOS. The paper's claim
    ("similar or larger") holds in a case when neither does."""
    return bool(l2_ratio < ICS_L2_RATIO or dcos > ICS_DCOS)


@dataclass
class Finding:
    """What a claim's rule reads off the numbers; `grade` turns it into an outcome."""

    cases: list[bool]  # the effect, per case (setting x seed)
    adequate: bool
    effect: float  # the headline number (its meaning is in the claim's `effect` text)
    spread: float | None  # range of that number across seeds; None with one seed
    evidence: str
    weaker: list[bool] | None = None  # the claim's weaker form, per case: all of it gives "partly"
    override: str | None = None  # an outcome the claim's criterion states explicitly (e.g. a contradiction)


@dataclass(frozen=True)
class Claim:
    id: str
    chapter: int
    paper: str
    text: str
    quantity: str  # the paper's own quantity and range
    comparison: str
    criterion: str  # in words; `rule` is the same criterion as a function
    adequacy: str  # in words: when the run could not have shown the effect
    effect: str  # what `Finding.effect` measures
    rule: Callable[..., Finding]
    kind: str = "claim"
    min_seeds: int = MIN_SEEDS


def grade(f: Finding, n_seeds: int, min_seeds: int = MIN_SEEDS) -> str:
    """The outcome of a finding (the module docstring's definitions)."""
    if not f.adequate:
        return "not at this scale"
    if f.override is not None:
        return f.override
    k, n = sum(map(bool, f.cases)), len(f.cases)
    if n == 0:
        raise ValueError("cases must hold at least one case")
    if k == n and n_seeds >= min_seeds:
        return "yes"
    if k == n or (k > 0 and 2 * k >= n) or (f.weaker and all(f.weaker)):
        return "partly"
    return "no"


# ----------------------------------------------------------------------------------------------- helpers
def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _range(values: Sequence[float]) -> float | None:
    """Spread across seeds: max - min of the finite values; None with fewer than two."""
    v = [float(x) for x in values if _finite(x)]
    return max(v) - min(v) if len(v) >= 2 else None


def _med(values: Sequence[float]) -> float:
    v = sorted(float(x) for x in values if not math.isnan(float(x)))
    if not v:
        return math.nan
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def _mean(values: Sequence[float]) -> float:
    v = [float(x) for x in values]
    return sum(v) / len(v) if v else math.nan


def _maxspread(groups: Sequence[Sequence[float]]) -> float | None:
    s = [r for r in (_range(g) for g in groups) if r is not None]
    return max(s) if s else None


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%" if _finite(x) else "diverged"


def _pm(spread: float | None, fmt: str = ".2g") -> str:
    return "" if spread is None else f" (spread across seeds {spread:{fmt}})"


def _k(cases: Sequence[bool]) -> str:
    return f"{sum(map(bool, cases))} of {len(cases)}"


def _ratios_finding(ratios: Sequence[Mapping[str, float]], n_probed: int | None, extra: str = "") -> Finding:
    """Standard / BN ratios per seed (one mapping per seed, quantity -> ratio); > 1: BN smaller."""
    cases = [r > 1 for d in ratios for r in d.values()]
    keys = list(ratios[0]) if ratios else []
    per_key = {k: [d[k] for d in ratios] for k in keys}
    adequate = bool(ratios) and all(not math.isnan(float(r)) for d in ratios for r in d.values()) and \
        (n_probed is None or n_probed >= MIN_PROBED)
    ev = "; ".join(f"{k} " + "/".join(f"{v:.2g}" for v in vs) + "x" for k, vs in per_key.items())
    ev = f"standard/BN medians per seed: {ev}: BN smaller in {_k(cases)} cases"
    if n_probed is not None:
        ev += f"; {n_probed} probed steps x seeds per network (adequate from {MIN_PROBED})"
    return Finding(cases, adequate, _med([d[k] for d in ratios for k in d]),
                   _maxspread(list(per_key.values())),
                   ev + extra)


# ------------------------------------------------------------------------------------------------ ch1
def _check_below(max_diff: float, tol: float, what: str) -> Finding:
    return Finding([float(max_diff) < tol], True, float(max_diff), None, f"{what} {float(max_diff):.1e} (tolerance {tol:g})")


def _ch1_steadier(drift_none: Mapping[float, Sequence[float]], drift_bn: Mapping[float, Sequence[float]],
                  final_acc_none: Mapping[float, Sequence[float]], final_acc_bn: Mapping[float, Sequence[float]]) -> Finding:
    cases = [n > b for lr in drift_none for n, b in zip(drift_none[lr], drift_bn[lr])]
    weaker = [_mean(drift_none[lr]) > _mean(drift_bn[lr]) for lr in drift_none]
    ratios = {lr: [n / b for n, b in zip(drift_none[lr], drift_bn[lr]) if b > 0] for lr in drift_none}
    adequate = any(min(list(final_acc_none[lr]) + list(final_acc_bn[lr])) > BEYOND_CHANCE for lr in drift_none)
    ev = "; ".join(f"lr {lr:g}: drift " + "/".join(f"{v:.2f}" for v in drift_none[lr]) + " without vs "
                   + "/".join(f"{v:.2f}" for v in drift_bn[lr]) + " with BN (per seed)" for lr in drift_none)
    return Finding(cases, adequate, _med([r for v in ratios.values() for r in v]), _maxspread(list(ratios.values())),
                   f"{ev}: BN steadier in {_k(cases)} seed pairs", weaker=weaker)


def _ch1_faster(mean_acc_none: Mapping[float, Sequence[float]], mean_acc_bn: Mapping[float, Sequence[float]],
                final_acc_none: Mapping[float, Sequence[float]], final_acc_bn: Mapping[float, Sequence[float]]) -> Finding:
    cases = [b > n for lr in mean_acc_none for n, b in zip(mean_acc_none[lr], mean_acc_bn[lr])]
    gaps = {lr: [b - n for n, b in zip(mean_acc_none[lr], mean_acc_bn[lr])] for lr in mean_acc_none}
    adequate = any(max(list(final_acc_none[lr]) + list(final_acc_bn[lr])) > BEYOND_CHANCE for lr in mean_acc_none)
    ev = "; ".join(f"lr {lr:g}: mean test accuracy over training " + "/".join(_pct(v) for v in mean_acc_none[lr])
                   + " without vs " + "/".join(_pct(v) for v in mean_acc_bn[lr]) + " with BN" for lr in mean_acc_none)
    return Finding(cases, adequate, _med([g for v in gaps.values() for g in v]), _maxspread(list(gaps.values())),
                   f"{ev} (per seed): BN ahead in {_k(cases)} seed pairs")


# ------------------------------------------------------------------------------------------------ ch2
def _ch2_both_train(trains_none: Sequence[bool], trains_bn: Sequence[bool], acc_none: Sequence[float],
                    acc_bn: Sequence[float], lr: float) -> Finding:
    both = [bool(a and b) for a, b in zip(trains_none, trains_bn)]
    cases = [t and ab > an for t, an, ab in zip(both, acc_none, acc_bn)]
    gaps = [ab - an for an, ab in zip(acc_none, acc_bn)]
    return Finding(cases, any(trains_none) or any(trains_bn), _med(gaps), _range(gaps),
                   f"lr {lr:g}: final test accuracy standard " + "/".join(_pct(a) for a in acc_none) + ", BN "
                   + "/".join(_pct(a) for a in acc_bn) + f"; both train in {_k(both)} seeds", weaker=both)


def _ch2_only_bn(trains_none: Sequence[bool], trains_bn: Sequence[bool], bn_trains_at_small_lr: bool,
                 lr: float) -> Finding:
    cases = [bool(b and not n) for n, b in zip(trains_none, trains_bn)]
    return Finding(cases, bool(bn_trains_at_small_lr), float(sum(cases)), None,
                   f"lr {lr:g}: standard trains in {sum(map(bool, trains_none))}, BN in {sum(map(bool, trains_bn))} "
                   f"of {len(cases)} seed(s)")


def _ch2_similar(drift_none: Mapping[str, float], drift_bn: Mapping[str, float]) -> Finding:
    lo, hi = DRIFT_SIMILAR
    r = {l: drift_bn[l] / drift_none[l] if drift_none[l] > 0 else math.nan for l in drift_none}
    return Finding([lo <= v <= hi for v in r.values()], all(_finite(v) and v > 0 for v in r.values()),
                   _med(list(r.values())), None,
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
        ratios.append([q for q in listify(r["l2_ratio"]) if _finite(q) and q > 0])
    adequate = bool(rows) and all(_finite(q) and _finite(d) for r in rows
                                  for q, d in zip(listify(r["l2_ratio"]), listify(r["dcos"])))
    ev = (f"no reduction in {_k(cases)} (net, lr, layer, seed) cases; median BN/standard ℓ2 ratio "
          f"{_med([q for v in ratios for q in v]):.2f}")
    return Finding(cases, adequate, _med([q for v in ratios for q in v]), _maxspread(ratios),
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
    return Finding(cases, all(_finite(m) for v in list(cos_none.values()) + list(cos_bn.values()) for m, _ in v),
                   _med([g for v in gaps.values() for g in v]), _maxspread(list(gaps.values())), ev, weaker=weaker)


# ------------------------------------------------------------------------------------------------ ch3
def _ch3_noisy_trains(train_acc_none: Sequence[float], train_acc_bn: Sequence[float],
                      train_acc_noisy: Sequence[float]) -> Finding:
    gain = [b - n for n, b in zip(train_acc_none, train_acc_bn)]
    kept = [(z - n) / g if _finite(g) and g > 0 and _finite(z) else math.nan
            for n, z, g in zip(train_acc_none, train_acc_noisy, gain)]
    cases = [_finite(k) and k >= KEPT_GAIN for k in kept]
    weaker = [_finite(z) and z > n for n, z in zip(train_acc_none, train_acc_noisy)]
    adequate = all(_finite(g) and g > 0 for g in gain) and min(train_acc_bn) > BEYOND_CHANCE
    ev = ("training accuracy (last 10 % of steps) per seed: standard " + "/".join(_pct(v) for v in train_acc_none)
          + ", BN " + "/".join(_pct(v) for v in train_acc_bn) + ", noisy BN " + "/".join(_pct(v) for v in train_acc_noisy)
          + ": noisy BN keeps " + "/".join(f"{100 * k:.0f}%" if _finite(k) else "n/a" for k in kept)
          + f" of BN's gain (needs {100 * KEPT_GAIN:.0f}%)")
    return Finding(cases, adequate, _med(kept), _range(kept), ev, weaker=weaker)


def _ch3_both_beat(test_acc_none: Sequence[float], test_acc_bn: Sequence[float],
                   test_acc_noisy: Sequence[float]) -> Finding:
    cases = [_finite(a) and _finite(n) and a > n for a in list(test_acc_bn) + list(test_acc_noisy) for n in test_acc_none]
    fin = lambda v: [x for x in v if _finite(x)]
    weaker = [_mean(fin(test_acc_bn)) > _mean(fin(test_acc_none)), _mean(fin(test_acc_noisy)) > _mean(fin(test_acc_none))]
    allv = fin(list(test_acc_none) + list(test_acc_bn) + list(test_acc_noisy))
    eff = min(_mean(fin(test_acc_bn)), _mean(fin(test_acc_noisy))) - _mean(fin(test_acc_none))
    return Finding(cases, bool(allv) and max(allv) > BEYOND_CHANCE, eff,
                   _maxspread([fin(test_acc_none), fin(test_acc_bn), fin(test_acc_noisy)]),
                   "test accuracy per seed: BN " + "/".join(_pct(v) for v in test_acc_bn) + ", noisy BN "
                   + "/".join(_pct(v) for v in test_acc_noisy) + ", standard " + "/".join(_pct(v) for v in test_acc_none)
                   + f": BN and noisy BN above the standard net in {_k(cases)} seed pairs", weaker=weaker)


def _ch3_cripples(test_acc_none: Sequence[float], test_acc_noise: Sequence[float], diverged_noise: Sequence[bool]) -> Finding:
    cases = [bool(d) or (_finite(z) and z <= n - CRIPPLE_POINTS)
             for n, z, d in zip(test_acc_none, test_acc_noise, diverged_noise)]
    weaker = [bool(d) or (_finite(z) and z < n) for n, z, d in zip(test_acc_none, test_acc_noise, diverged_noise)]
    loss = [n - z for n, z in zip(test_acc_none, test_acc_noise) if _finite(z)]
    adequate = _mean([n for n in test_acc_none if _finite(n)]) > BEYOND_CHANCE
    return Finding(cases, adequate, _med(loss) if loss else math.nan, _range(loss),
                   "test accuracy per seed: standard " + "/".join(_pct(v) for v in test_acc_none) + ", standard + noise "
                   + "/".join(_pct(v) if not d else "diverged" for v, d in zip(test_acc_noise, diverged_noise))
                   + f": crippled (diverged or >= {100 * CRIPPLE_POINTS:.0f} points lost) in {_k(cases)} seeds",
                   weaker=weaker)


def _ch3_less_stable(change_noisy: Sequence[Mapping[str, float]], change_ref: Sequence[Mapping[str, float]],
                     ref: str = "the standard net") -> Finding:
    """change_*: per seed, {"layer/moment": average per-step change}."""
    cases = [_finite(a[k]) and _finite(b[k]) and a[k] > b[k] for a, b in zip(change_noisy, change_ref) for k in a]
    ratios = [[a[k] / b[k] for a, b in zip(change_noisy, change_ref) if _finite(a[k]) and b[k] > 0]
              for k in (change_noisy[0] if change_noisy else {})]
    adequate = bool(change_noisy) and all(_finite(v) for d in list(change_noisy) + list(change_ref) for v in d.values())
    return Finding(cases, adequate, _med([r for v in ratios for r in v]), _maxspread(ratios),
                   f"noisy BN's per-step change of channel mean and variance larger than {ref}'s in {_k(cases)} "
                   f"(layer, moment, seed) cases; median ratio {_med([r for v in ratios for r in v]):.2g}x")


# ------------------------------------------------------------------------------------------------ ch4
def _ch4_vgg(ratios: Sequence[Mapping[str, float]], n_probed: int,
             wide_ratios: Sequence[Mapping[str, float]] | None = None, wide: str = "") -> Finding:
    extra = ""
    if wide_ratios:
        extra = ("; secondary evidence, not judged: in " + (wide or "the widened range") + " "
                 + "; ".join(f"{k} " + "/".join(f"{d[k]:.2g}" for d in wide_ratios) + "x" for k in wide_ratios[0]))
    return _ratios_finding(ratios, n_probed, extra)


def _ch4_dln(ratios: Sequence[Mapping[str, float]], n_probed: int) -> Finding:
    return _ratios_finding(ratios, n_probed)


def _ch4_fig11(ratios: Mapping[str, Sequence[float]]) -> Finding:
    """ratios: panel ("VGG early", ...) -> per seed, median over the probes in the paper's range of standard / BN
    ||g - g(eta)||."""
    cases = [_finite(r) and r > 1 for v in ratios.values() for r in v]
    adequate = bool(ratios) and all(not math.isnan(float(r)) for v in ratios.values() for r in v)
    return Finding(cases, adequate, _med([r for v in ratios.values() for r in v]), _maxspread(list(ratios.values())),
                   "standard/BN gradient change, median over the paper's probe range, per seed: "
                   + ", ".join(f"{k} " + "/".join(f"{r:.2g}" for r in v) + "x" for k, v in ratios.items())
                   + f": larger without BN in {_k(cases)} cases")


def _ch4_lp_train(final: Mapping[str, Mapping[str, float]]) -> Finding:
    lp = [n for n in final["VGG"] if n not in ("none", "batchnorm")]
    cases = [final[m][n] <= LP_LOSS_FACTOR * final[m]["batchnorm"] for m in final for n in lp]
    cases.append(final["DLN"]["l1"] < final["DLN"]["batchnorm"])
    return Finding(cases, all(_finite(final[m]["batchnorm"]) for m in final),
                   _med([final[m][n] / final[m]["batchnorm"] for m in final for n in lp]), None,
                   "final training loss, ℓp / BN: " + "; ".join(
                       f"{m} " + ", ".join(f"{n} {final[m][n] / final[m]['batchnorm']:.2f}x" for n in lp) for m in final)
                   + f" (as well: within {LP_LOSS_FACTOR:g}x); {_k(cases)} conditions hold")


def _ch4_lp_smooth(beta: Mapping[str, Mapping[str, float]]) -> Finding:
    lp = [n for n in beta["VGG"] if n not in ("none", "batchnorm")]
    cases = [beta[m][n] <= LP_BETA_FACTOR * beta[m]["batchnorm"] and beta[m][n] < beta[m]["none"] for m in beta for n in lp]
    return Finding(cases, all(_finite(beta[m]["batchnorm"]) for m in beta),
                   _med([beta[m][n] / beta[m]["batchnorm"] for m in beta for n in lp]), None,
                   "median effective β, ℓp / BN: " + "; ".join(
                       f"{m} " + ", ".join(f"{n} {beta[m][n] / beta[m]['batchnorm']:.2g}x" for n in lp) for m in beta)
                   + f": as smooth as BN (within {LP_BETA_FACTOR:g}x and below standard) in {_k(cases)}")


def _ch4_lp_gauss(kurtosis: Mapping[str, float], kurtosis_se: Mapping[str, float], drift: Mapping[str, float]) -> Finding:
    lp = [n for n in kurtosis if n not in ("none", "batchnorm")]
    gauss = [abs(kurtosis[n]) > abs(kurtosis["batchnorm"]) + KURTOSIS_SE * kurtosis_se[n] for n in lp]
    stable = [drift[n] > drift["batchnorm"] for n in lp]
    return Finding(gauss + stable, all(_finite(kurtosis[n]) and _finite(drift[n]) for n in kurtosis),
                   _med([drift[n] / drift["batchnorm"] for n in lp if drift["batchnorm"] > 0]), None,
                   f"|excess kurtosis| above BN's by > {KURTOSIS_SE:g} s.e.: {_k(gauss)}; more drift than BN: {_k(stable)}")


def _ch4_theorem(holds_1_over_m: bool, n_cases: int, violated_1_over_sqrt_m: float) -> Finding:
    return Finding([bool(holds_1_over_m)], True, float(violated_1_over_sqrt_m), None,
                   f"with 1/m the bound holds with equality in all {n_cases} random cases (an algebraic identity: "
                   f"BN's backward pass is a projection); with 1/√m as printed it is violated in "
                   f"{violated_1_over_sqrt_m:.0%}")


# ------------------------------------------------------------------------------------------------ ch5
def _ch5_diverge(acc: Mapping[str, Mapping[float, Sequence[float]]],
                 diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    lrs = sorted(acc["none"])
    div_all = [lr for lr in lrs if all(diverged["none"][lr])]
    large = [lr for lr in lrs if div_all and lr >= min(div_all)]
    cases = [bool(dn) and not db and _finite(a) and a > BEYOND_CHANCE
             for lr in large for dn, db, a in zip(diverged["none"][lr], diverged["batchnorm"][lr], acc["batchnorm"][lr])]
    weaker = [all(diverged["none"][lr]) for lr in large]
    bn_learns = any(_finite(a) and a > BEYOND_CHANCE for lr in lrs for a in acc["batchnorm"][lr])
    bn_large = [a for lr in large for a in acc["batchnorm"][lr] if _finite(a)]
    ev = (f"no BN diverged in every seed at lr {', '.join(f'{lr:g}' for lr in div_all) or 'none'}; at lr "
          f">= {min(div_all) if div_all else math.nan:g} BN's test accuracy per seed "
          + ", ".join(f"{lr:g}: " + "/".join(_pct(a) if not d else "diverged" for a, d in
                                              zip(acc["batchnorm"][lr], diverged["batchnorm"][lr])) for lr in large))
    return Finding(cases or [False], bool(div_all) and bn_learns, _med(bn_large) if bn_large else math.nan,
                   _range(bn_large), ev, weaker=weaker or None)


def _ch5_equal_small(acc: Mapping[str, Mapping[float, Sequence[float]]],
                     diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    small = min(acc["none"])
    a_bn, a_none = list(acc["batchnorm"][small]), list(acc["none"][small])
    spread = _maxspread([a_bn, a_none])
    tol = max(EQUAL_POINTS, SPREAD_FACTOR * (spread or 0.0))  # the seed noise can grant "partly", never "yes"
    gaps = [b - n for b, n in zip(a_bn, a_none)]
    cases = [_finite(g) and abs(g) <= EQUAL_POINTS for g in gaps]
    fin = lambda v: [x for x in v if _finite(x)]
    adequate = bool(fin(a_bn)) and bool(fin(a_none)) and min(_mean(fin(a_bn)), _mean(fin(a_none))) > BEYOND_CHANCE
    return Finding(cases, adequate, _med(gaps), _range(gaps),
                   f"lr {small:g}: BN − no BN per seed " + "/".join(f"{100 * g:+.1f}" for g in gaps)
                   + f" points (equal within {100 * EQUAL_POINTS:.0f} points; within the seed noise, "
                   f"max({100 * EQUAL_POINTS:.0f}, {SPREAD_FACTOR:g} x spread) = {100 * tol:.1f}, on the mean); test accuracy BN " + "/".join(_pct(a) for a in a_bn)
                   + ", no BN " + "/".join(_pct(a) for a in a_none),
                   weaker=[_finite(_mean(gaps)) and abs(_mean(gaps)) <= tol])


def _ch5_gain(acc: Mapping[str, Mapping[float, Sequence[float]]],
              diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    lrs = sorted(acc["none"])
    ok = lambda n, lr: not any(diverged[n][lr]) and all(_finite(a) for a in acc[n][lr])
    common = [lr for lr in lrs if ok("none", lr) and ok("batchnorm", lr)]
    spread = _maxspread([acc[n][lr] for lr in common for n in ("none", "batchnorm")]) or 0.0
    tol = max(EQUAL_POINTS, SPREAD_FACTOR * spread)
    ahead = {lr: min(b - n for b, n in zip(acc["batchnorm"][lr], acc["none"][lr])) > tol for lr in common}
    best = {n: max(((lr, _mean(acc[n][lr])) for lr in lrs if ok(n, lr)), key=lambda t: t[1], default=(math.nan, math.nan))
            for n in ("none", "batchnorm")}
    gain = best["batchnorm"][1] - best["none"][1]
    via_lr = _finite(gain) and gain > tol and best["batchnorm"][0] > best["none"][0]
    cases = [not a for a in ahead.values()] + [via_lr]
    adequate = bool(common) and any(max(acc[n][lr]) > BEYOND_CHANCE for lr in common for n in ("none", "batchnorm"))
    ev = ("at equal lr, BN − no BN (worst seed pair): " + ", ".join(
        f"{lr:g} {100 * min(b - n for b, n in zip(acc['batchnorm'][lr], acc['none'][lr])):+.1f}" for lr in common)
        + f" points (clearly ahead beyond {100 * tol:.1f}); best: BN {_pct(best['batchnorm'][1])} at lr "
        f"{best['batchnorm'][0]:g}, no BN {_pct(best['none'][1])} at lr {best['none'][0]:g}")
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
                   f"no BN passes {DIVERGED_RELATIVE_LOSS:g}x on {_k(hits)} mini-batches"
                   + (f", from step size {min(onset):.1g}" if onset else "")
                   + f"; BN stays within {BN_RELATIVE_LOSS:g}x on {_k(within)} (at most {worst:.2f}x)")


def _ch5_growth(growth_none: float, growth_bn: float) -> Finding:
    return Finding([growth_none > GROWTH_NONE, growth_bn < GROWTH_BN], _finite(growth_bn), float(growth_none), None,
                   f"variance growth from the first to the last block: x{growth_none:.1e} without BN "
                   f"(needs > {GROWTH_NONE:g}), x{growth_bn:.1f} with BN (needs < {GROWTH_BN:g})",
                   weaker=[growth_none > GROWTH_NONE])


def _ch5_one_class(frac_none: Sequence[float], conf_none: Sequence[float], frac_bn: Sequence[float]) -> Finding:
    cases = [f >= ONE_CLASS and c > CONFIDENT and b <= BN_SPREAD_CLASSES for f, c, b in zip(frac_none, conf_none, frac_bn)]
    weaker = [f >= ONE_CLASS and c > CONFIDENT for f, c in zip(frac_none, conf_none)]
    adequate = bool(cases) and all(_finite(v) for v in list(frac_none) + list(conf_none) + list(frac_bn))
    return Finding(cases, adequate, _mean(frac_none) - _mean(frac_bn), _range(frac_bn),
                   "most common class per initialisation: " + "/".join(f"{100 * f:.0f}%" for f in frac_none)
                   + " of the batch without BN, " + "/".join(f"{100 * f:.0f}%" for f in frac_bn)
                   + f" with BN (needs <= {100 * BN_SPREAD_CLASSES:.0f}%): {_k(cases)} initialisations hold",
                   weaker=weaker)


def _ch5_random(spread: Mapping[int, float], log_cond: Sequence[float]) -> Finding:
    s = [spread[k] for k in sorted(spread)]
    cases = [a < b for a, b in zip(s, s[1:])] + [b > a for a, b in zip(log_cond, log_cond[1:])]
    adequate = len(s) >= 3 and all(_finite(v) for v in s + list(log_cond))
    return Finding(cases, adequate, float(log_cond[-1]), None,
                   "90/10 % singular-value ratio " + " / ".join(f"{v:.0f}" for v in s) + " for "
                   + "/".join(str(k) for k in sorted(spread)) + f" factors; condition number 1e{log_cond[0]:.0f} -> "
                   f"1e{log_cond[-1]:.0f} for 1 -> {len(log_cond)} factors")


def _ch5_noise(slope_none: float, slope_bn: float) -> Finding:
    cases = [abs(slope_none + 1) <= SLOPE_TOL, abs(slope_bn + 1) <= SLOPE_TOL]
    return Finding(cases, _finite(slope_none) and _finite(slope_bn), _mean([slope_none, slope_bn]),
                   abs(slope_none - slope_bn),
                   f"log-log slope of E‖g_B − g‖² against |B|: {slope_none:.2f} (no BN), {slope_bn:.2f} (BN), the law "
                   f"says −1 (within {SLOPE_TOL:g}); the a² factor is exact by construction and not tested")


# ------------------------------------------------------------------------------------------------ ch6
FIXES = ("skipinit", "fixup")  # chapter 6's normalization-free fixes of the no-BN ResNet
_NAMES6 = {"batchnorm": "BN", "none": "no BN", "skipinit": "SkipInit", "fixup": "Fixup", "group": "GroupNorm",
           "layer": "LayerNorm"}


def _trains(a: Any, d: bool) -> bool:
    """A run 'trains' at an lr when it did not diverge and ends above BEYOND_CHANCE test accuracy."""
    return (not d) and _finite(a) and float(a) > BEYOND_CHANCE


def _ch6_no_growth(growth: Mapping[str, Sequence[float]]) -> Finding:
    vals = [float(g) for v in FIXES for g in growth[v]]
    cases = [_finite(g) and g < GROWTH_BN for g in vals]
    none = [float(g) for g in growth["none"]]
    adequate = bool(none) and all(_finite(g) for v in growth for g in growth[v]) and all(g > GROWTH_NONE for g in none)
    ev = "; ".join(f"{_NAMES6.get(v, v)} x" + "/".join(f"{float(g):.2g}" for g in growth[v]) for v in growth)
    return Finding(cases or [False], adequate, max(vals) if vals else math.nan, _range(vals),
                   f"variance growth from the first to the last block per initialisation: {ev}; SkipInit and Fixup "
                   f"below {GROWTH_BN:g}x in {_k(cases)} cases (no BN above {GROWTH_NONE:g}x in "
                   f"{_k([g > GROWTH_NONE for g in none])})")


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
    bn_learns = any(_finite(a) and a > BEYOND_CHANCE for lr in acc["batchnorm"] for a in acc["batchnorm"][lr])
    per = lambda v, lr: "/".join("diverged" if d else _pct(a) for a, d in zip(acc[v][lr], diverged[v][lr]))
    ev = (f"no BN diverges in every seed from lr {large[0]:g}; there, test accuracy per seed: "
          + "; ".join(f"{_NAMES6[v]} " + ", ".join(f"lr {lr:g} {per(v, lr)}" for lr in large) for v in FIXES)
          if large else "no BN diverges in every seed at no lr of the sweep")
    return Finding(cases or [False], bool(large) and bn_learns, sum(cases) / len(cases) if cases else math.nan,
                   None, ev + (f": they train in {_k(cases)} cases" if cases else ""), weaker=weaker)


def _ch6_best(acc: Mapping[float, Sequence[float]], diverged: Mapping[float, Sequence[bool]]) -> tuple[float, list]:
    """(lr, per-seed accuracies) at the lr with the highest mean accuracy among those where no seed diverged."""
    ok = [lr for lr in sorted(acc) if not any(diverged[lr]) and all(_finite(a) for a in acc[lr])]
    if not ok:
        return math.nan, []
    lr = max(ok, key=lambda x: _mean(acc[x]))
    return lr, [float(a) for a in acc[lr]]


def _ch6_close(acc: Mapping[str, Mapping[float, Sequence[float]]],
               diverged: Mapping[str, Mapping[float, Sequence[bool]]]) -> Finding:
    bn_lr, bn = _ch6_best(acc["batchnorm"], diverged["batchnorm"])
    best = {v: _ch6_best(acc[v], diverged[v]) for v in FIXES}
    spread = _maxspread([bn] + [a for _, a in best.values()]) or 0.0
    tol = max(EQUAL_POINTS, SPREAD_FACTOR * spread)
    gaps = {v: [b - a for b, a in zip(bn, best[v][1])] for v in FIXES}
    cases = [g <= EQUAL_POINTS for v in FIXES for g in gaps[v]]
    weaker = [bool(gaps[v]) and _mean(gaps[v]) <= tol for v in FIXES]
    adequate = bool(bn) and _mean(bn) > BEYOND_CHANCE and all(best[v][1] for v in FIXES)
    mean_gaps = [_mean(gaps[v]) for v in FIXES if gaps[v]]
    ev = (f"best accuracy at equal steps: BN {'/'.join(_pct(a) for a in bn)} at lr {bn_lr:g}; "
          + "; ".join(f"{_NAMES6[v]} {'/'.join(_pct(a) for a in best[v][1])} at lr {best[v][0]:g} (BN − "
                      f"{_NAMES6[v]} per seed {'/'.join(f'{100 * g:+.1f}' for g in gaps[v])} points)" for v in FIXES)
          + f"; close means at most {100 * EQUAL_POINTS:.0f} points below BN per seed ({_k(cases)} hold), on the mean "
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
    return Finding(cases, adequate, _med(ratios) if ratios else math.nan, None,
                   f"largest lr each seed trains at (no divergence, above {100 * BEYOND_CHANCE:.0f}%): "
                   f"{_NAMES6.get(batch_free, batch_free)} {fmt(batch_free)}, BN {fmt('batchnorm')}, no BN "
                   f"{fmt('none')}: {_NAMES6.get(batch_free, batch_free)} reaches BN's in {_k(cases)} seeds",
                   weaker=weaker)


# ------------------------------------------------------------------------------------------------ registry
_IS, _S, _B = "Ioffe & Szegedy 2015", "Santurkar et al. 2018", "Bjorck et al. 2018"
_TRAINS = "a run trains when its smoothed training loss ends below 0.9 ln 10 (`ics.trains`)"
_D, _Z = "De & Smith 2020", "Zhang, Dauphin & Ma 2019"

_CLAIMS = [
    Claim("ch1.scratch_matches_torch", 1, "—", "Our BatchNorm matches PyTorch's (outputs, gradients, running "
          "statistics, eval mode)", "largest absolute difference over outputs, gradients and statistics",
          "scratch BatchNorm vs torch.nn.BatchNorm2d on the same input", "holds when every difference is below 1e-5",
          "always adequate", "the largest difference", lambda max_diff: _check_below(max_diff, 1e-5, "largest difference"),
          kind="implementation check", min_seeds=1),
    Claim("ch1.bn_folds", 1, f"{_IS}, Sec. 3.1", "At inference BN folds into the preceding conv",
          "largest |logit difference| on 500 test images", "folded network vs the BN network in eval mode",
          "holds when the largest difference is below 1e-4 (folding is exact algebra: this tests float error and "
          "our code)", "always adequate", "the largest difference",
          lambda max_diff: _check_below(max_diff, 1e-4, "max logit difference"), kind="derivation check", min_seeds=1),
    Claim("ch1.fig1_steadier", 1, f"{_IS}, Fig 1(b, c)", "Without BN a sigmoid input's distribution drifts during "
          "training; with BN it is steadier", "drift of the 15th/50th/85th percentiles of one sigmoid input in the "
          "last hidden layer over training", "BN vs the standard MLP, same seed, at each learning rate",
          "yes: BN's drift is below the standard net's in every seed pair at every learning rate (>= 2 seeds); "
          "partly: in at least half of the (lr, seed) pairs, or on the mean over seeds at every lr; no: otherwise",
          f"at some learning rate both networks end above {100 * BEYOND_CHANCE:.0f}% test accuracy in every seed",
          "median standard / BN drift ratio", _ch1_steadier),
    Claim("ch1.fig1a_faster", 1, f"{_IS}, Fig 1(a)", "The BN network learns faster",
          "test accuracy averaged over the evaluations during training", "BN vs the standard MLP, same seed, each lr",
          "yes: BN's mean test accuracy over training is higher in every seed pair at every lr (>= 2 seeds); "
          "partly: in at least half of them; no: otherwise",
          f"at some learning rate one of the networks ends above {100 * BEYOND_CHANCE:.0f}% test accuracy",
          "median BN − standard gap (accuracy)", _ch1_faster),
    Claim("ch2.fig1_both_train", 2, f"{_S}, Fig 1 (lr 0.1: 83 % vs 80 %)", "At the paper's 'both train' lr, both "
          "nets train and BN ends with higher test accuracy", f"final test accuracy and whether each run trains ({_TRAINS})",
          "BN vs standard VGG at lr 0.1, same seed", "yes: both train and BN's final test accuracy is higher, in every "
          "seed (>= 2 seeds); partly: both train in every seed (BN not ahead), or only one seed; no: otherwise",
          "at least one of the two networks trains at this lr (otherwise the budget is too short)",
          "median BN − standard final test accuracy", _ch2_both_train),
    Claim("ch2.fig1_only_bn_large_lr", 2, f"{_S}, Fig 1 (lr 0.5)", "At the large lr only the BN network trains",
          f"whether each run trains ({_TRAINS})", "BN vs standard VGG at lr 0.5, same seed",
          "yes: BN trains and the standard net does not, in every seed (>= 2 seeds); partly: so in at least half of "
          "the seeds; no: otherwise", "BN trains at the small lr (otherwise the budget is too short to train at all)",
          "seeds in which only BN trains", _ch2_only_bn),
    Claim("ch2.fig1_similar_distributions", 2, f"{_S}, Fig 1 (layers #3, #11)", "Layer-input distributions look only "
          "slightly different with and without BN", "drift per record of the median and 15-85 % spread of the "
          "pre-activations, relative to the spread", "BN / standard drift at layers #3 and #11, lr 0.1",
          f"yes: the ratio is within [{DRIFT_SIMILAR[0]:g}, {DRIFT_SIMILAR[1]:g}] at both layers (>= 2 seeds); "
          "partly: at one layer, or one seed; no: at neither", "both drifts measured (finite, positive)",
          "median BN / standard drift ratio", _ch2_similar),
    Claim("ch2.ics_equal_step", 2, f"{_S}, Fig 3 and Definition 2.1", "BN does not reduce ICS (Definition 2.1), at "
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
    Claim("ch2.dln_cosine", 2, f"{_S}, Fig 3 (DLN)", "DLN: the standard net's cosine stays near 1 while BN's is "
          "lower and swings", "cos(G, G′) at layers #9 and #17: median and 10-90 % range over steps",
          "BN vs standard deep linear network at each lr, per seed",
          f"yes: the standard net's median cosine is above {DLN_COS_NEAR_1:g}, BN's median is lower and its range "
          "wider, at every lr in every seed (>= 2 seeds); partly: in at least half of them, or BN's median is lower "
          "everywhere; no: otherwise", "cosines measured (finite)", "median standard − BN cosine", _ch2_dln),
    Claim("ch3.noisy_trains_as_well", 3, f"{_S}, Fig 2", "Noisy BN trains about as well as BN",
          "training accuracy over the last 10 % of the steps (training mode: the noise is on)",
          "noisy BN's gain over the standard net vs BN's gain, same seed",
          f"yes: noisy BN keeps >= {100 * KEPT_GAIN:.0f}% of BN's training-accuracy gain over the standard net in every "
          "seed (>= 2 seeds); partly: in at least half of the seeds, or noisy BN beats the standard net in every seed; "
          "no: otherwise", f"BN trains better than the standard net in every seed and above "
          f"{100 * BEYOND_CHANCE:.0f}% (otherwise there is no gain to keep)", "median fraction of BN's gain kept",
          _ch3_noisy_trains),
    Claim("ch3.both_beat_standard", 3, f"{_S}, Fig 2", "BN and noisy BN both beat the standard network",
          "test accuracy (recalibrated running statistics for the BN nets, noise off)",
          "BN and noisy BN vs the standard net, every seed pair", "yes: every BN and noisy-BN seed beats every "
          "standard seed (>= 2 seeds); partly: in at least half of the pairs, or on the means; no: otherwise",
          f"some network ends above {100 * BEYOND_CHANCE:.0f}% test accuracy",
          "lower of the two mean gains over the standard net", _ch3_both_beat),
    Claim("ch3.noise_cripples_standard", 3, f"{_S}, Sec. 2.1", "The same noise cripples the standard network",
          "test accuracy, or divergence", "standard + noise vs standard, same seed",
          f"yes: the noisy standard net diverges or loses >= {100 * CRIPPLE_POINTS:.0f} points in every seed (>= 2 "
          "seeds); partly: in at least half, or it is worse in every seed; no: otherwise",
          f"the standard net itself learns (mean test accuracy above {100 * BEYOND_CHANCE:.0f}%)",
          "median accuracy lost", _ch3_cripples),
    Claim("ch3.noisy_less_stable", 3, f"{_S}, Fig 8", "Noisy BN's layer distributions are less stable than even the "
          "standard net's", "average per-step change of each channel's mean and variance, layers #2, #9, #13",
          "noisy BN vs the standard net, per layer, moment and seed (vs clean BN it holds by construction: see "
          "ch3.noisy_vs_bn_by_construction)", "yes: noisy BN changes more in every (layer, moment, seed) case (>= 2 "
          "seeds); partly: in at least half; no: otherwise", "no network diverged in every seed (changes finite)",
          "median noisy / standard ratio", lambda change_noisy, change_none: _ch3_less_stable(change_noisy, change_none)),
    Claim("ch3.noisy_vs_bn_by_construction", 3, f"{_S}, Fig 8", "Noisy BN's channel means and variances change more "
          "per step than clean BN's", "the same per-step changes", "noisy BN vs clean BN",
          "holds when noisy BN changes more in every case. It cannot fail: the noise is redrawn every step on top of "
          "BN's output, so it is not evidence", "the changes are finite", "median noisy / BN ratio",
          lambda change_noisy, change_bn: _ch3_less_stable(change_noisy, change_bn, "clean BN"),
          kind="holds by construction", min_seeds=1),
    Claim("ch4.vgg_smoother", 4, f"{_S}, Fig 4 (VGG, probes in [lr/2, 4 lr])", "With BN the loss, gradient "
          "predictiveness and effective β are smaller along the gradient (VGG)",
          "at probed steps, over η in the paper's range [lr/2, 4 lr]: the loss band width, the top of the "
          "gradient-predictiveness band, effective β; medians over probed steps", "standard / BN, per seed",
          "yes: all three ratios above 1 in every seed (>= 2 seeds); partly: in at least half of the (quantity, "
          "seed) cases; no: otherwise. The widened range is reported as secondary evidence only",
          f"at least {MIN_PROBED} probed steps x seeds per network", "median standard / BN ratio", _ch4_vgg),
    Claim("ch4.dln_smoother", 4, f"{_S}, Fig 4 (DLN, probes in [lr/100, 30 lr])", "Same for the deep linear network",
          "the same three quantities over η in [lr/100, 30 lr]", "standard / BN, per seed",
          "as ch4.vgg_smoother", f"at least {MIN_PROBED} probed steps x seeds per network",
          "median standard / BN ratio", _ch4_dln),
    Claim("ch4.fig11_gradient_change", 4, f"{_S}, Fig 11", "Without BN the gradient changes more with the step "
          "size, early and late", "‖∇L(w) − ∇L(w − η g)‖ at the first and last probed step, over η in the paper's "
          "range (VGG [lr/2, 4 lr], DLN [lr/100, 30 lr])", "standard / BN, median over the range, per seed",
          "yes: the ratio is above 1 in all four panels (VGG/DLN x early/late) in every seed (>= 2 seeds); partly: "
          "in at least half; no: otherwise", "every panel probed (no missing values)", "median standard / BN ratio",
          _ch4_fig11),
    Claim("ch4.lp_train_as_well", 4, f"{_S}, Fig 5", "ℓp normalizations train as well as BN; ℓ1 better than BN in "
          "the DLN", "final training loss (mean of the last 20 steps, median over seeds)", "ℓ1/ℓ2/ℓ∞ vs BN",
          f"yes: every ℓp net's final loss is within {LP_LOSS_FACTOR:g}x BN's (VGG and DLN) and ℓ1's is below BN's in "
          "the DLN, with >= 2 seeds; partly: at least half of these 7 conditions, or one seed; no: otherwise",
          "BN's final loss finite in both networks", "median ℓp / BN final loss", _ch4_lp_train),
    Claim("ch4.lp_smooth_as_bn", 4, f"{_S}, Figs 12-13", "ℓp normalizations smooth the landscape as much as BN",
          "median effective β over the whole probe range", "ℓ1/ℓ2/ℓ∞ vs BN and the standard net",
          f"yes: every ℓp β within {LP_BETA_FACTOR:g}x BN's and below the standard net's, VGG and DLN (>= 2 seeds); "
          "partly: at least half of the 6 conditions, or one seed; no: otherwise", "BN's β finite",
          "median ℓp / BN β", _ch4_lp_smooth),
    Claim("ch4.lp_less_gaussian", 4, f"{_S}, Fig 6", "ℓp activations are less Gaussian and less stable than BN's "
          "(VGG layer #11)", "excess kurtosis of one channel at the last record; drift of channel means",
          "ℓ1/ℓ2/ℓ∞ vs BN", f"yes: every ℓp |excess kurtosis| above BN's by more than {KURTOSIS_SE:g} standard errors "
          "and every ℓp drift above BN's (>= 2 seeds); partly: at least half of the 6, or one seed; no: otherwise",
          "kurtosis and drift finite", "median ℓp / BN drift", _ch4_lp_gauss),
    Claim("ch4.theorem41", 4, f"{_S}, Theorem 4.1", "Theorem 4.1 (BN's gradient-norm bound), with the constant 1/m",
          "‖∂L̂/∂y‖² against γ²/σ² (‖g‖² − ⟨1, g⟩²/m − c⟨g, ŷ⟩²) on random batches",
          "c = 1/m (our derivation) and c = 1/√m (as printed)", "holds when the 1/m bound holds in every case. It is an "
          "algebraic identity (an equality), so it checks our derivation, not the paper's claim about training",
          "always adequate", "fraction of cases violating the 1/√m bound", _ch4_theorem,
          kind="derivation check", min_seeds=1),
    Claim("ch5.large_lr_diverge_without_bn", 5, f"{_B}, Fig 1", "Without BN large learning rates diverge; with BN "
          "they train", "divergence and final test accuracy over a learning-rate sweep",
          "at the large lrs (every lr from the smallest one at which no-BN diverges in every seed): no BN vs BN, per seed",
          f"yes: at every large lr no BN diverges and BN trains to above {100 * BEYOND_CHANCE:.0f}% test accuracy, in "
          "every seed (>= 2 seeds); partly: in at least half of those cases, or no BN diverges in every seed at every "
          "large lr; no: otherwise", f"at least one lr at which no BN diverges in every seed, and BN above "
          f"{100 * BEYOND_CHANCE:.0f}% at some lr", "median BN test accuracy at the large lrs", _ch5_diverge),
    Claim("ch5.equal_at_small_lr", 5, f"{_B}, Fig 1", "At a small learning rate BN and no BN end equal",
          "final test accuracy at the smallest lr of the sweep", "BN vs no BN, same seed",
          f"yes: |BN − no BN| <= {100 * EQUAL_POINTS:.0f} points in every seed pair (>= 2 seeds); partly: in at "
          f"least half of them, or the mean gap is within max({100 * EQUAL_POINTS:.0f} points, {SPREAD_FACTOR:g} x the "
          "larger spread across seeds), i.e. within the seed noise; no: otherwise", f"both networks above {100 * BEYOND_CHANCE:.0f}% there (otherwise 'equal' is two nets at "
          "chance)", "median BN − no BN gap", _ch5_equal_small),
    Claim("ch5.gain_from_large_lr", 5, f"{_B}, Fig 1", "BN's gain comes from the larger learning rate it permits",
          "final test accuracy at equal learning rates, and each network's best lr",
          "BN vs no BN at every lr where neither diverged; best BN vs best no BN",
          f"BN 'leads clearly' at an lr when it is ahead by more than max({100 * EQUAL_POINTS:.0f} points, "
          f"{SPREAD_FACTOR:g} x seed spread) in every seed pair. no: BN leads clearly at every equal lr (the "
          "mechanism is contradicted at this scale); yes: BN leads clearly at no equal lr, and its best accuracy beats "
          "no BN's best clearly, at a larger lr; partly: otherwise, at least half of these conditions",
          f"at least one lr where neither diverged and some run ends above {100 * BEYOND_CHANCE:.0f}%",
          "best BN − best no BN accuracy", _ch5_gain),
    Claim("ch5.relative_loss", 5, f"{_B}, Fig 2", "Relative loss: without BN one step passes 1e3 beyond ~1e-3; with "
          "BN it stays within ~3x", "loss after one SGD step / loss before, same batch, at initialisation, step sizes "
          "1e-5..1", "no BN vs BN on each mini-batch", f"yes: no BN passes {DIVERGED_RELATIVE_LOSS:g}x on every "
          f"mini-batch and BN stays within {BN_RELATIVE_LOSS:g}x on every mini-batch; partly: at least half of these; "
          "no: otherwise (replicates: the mini-batches)", "at least 5 step sizes reaching 0.1, on at least 3 "
          "mini-batches", "smallest step size at which no BN passes the threshold", _ch5_relative_loss, min_seeds=1),
    Claim("ch5.activations_explode", 5, f"{_B}, Figs 3-4", "Without BN activations grow exponentially with depth at "
          "initialisation", "channel variance at the last block / at the first block",
          "no BN vs BN, one initialisation", f"yes: the growth is above {GROWTH_NONE:g}x without BN and below "
          f"{GROWTH_BN:g}x with BN (decades apart: one initialisation suffices); partly: the growth without BN only; "
          "no: otherwise", "the growths are finite", "growth without BN", _ch5_growth, min_seeds=1),
    Claim("ch5.one_class", 5, f"{_B}, Fig 5", "Without BN the net predicts one class whatever the input; with BN "
          "the output depends on it", "fraction of a batch predicted as its most common class, and the mean "
          "confidence, at initialisation", "no BN vs BN, per initialisation",
          f"yes: without BN >= {100 * ONE_CLASS:.0f}% of the batch in one class with confidence above {CONFIDENT:g}, "
          f"with BN <= {100 * BN_SPREAD_CLASSES:.0f}%, for every initialisation (>= 2); partly: in at least half, or "
          "the no-BN half everywhere; no: otherwise", "every fraction and confidence finite",
          "no-BN minus BN fraction in the top class", _ch5_one_class),
    Claim("ch5.random_products", 5, f"{_B}, Fig 6", "Products of random matrices get ill-conditioned with depth",
          "90/10 % singular-value ratio for 1/3/5 factors; condition number for 1..8 factors (mean over seeds)",
          "each number of factors vs one fewer", "yes: every step up in the number of factors increases both; "
          "partly: at least half of them; no: otherwise", "at least 3 factor counts, all numbers finite", "log10 condition number at the most "
          "factors", _ch5_random, min_seeds=1),
    Claim("ch5.sgd_noise_batch", 5, f"{_B}, Sec. 2", "SGD noise falls as 1/|B|",
          "E‖g_B − g‖² against the batch size |B| at initialisation (log-log slope)", "the slope vs the law's −1",
          f"yes: the slope is within {SLOPE_TOL:g} of −1 with and without BN; partly: for one of them; no: neither. "
          "The a² factor of a²/|B| is exact by construction (a² multiplies both sides) and is not tested",
          "both slopes finite", "mean slope", _ch5_noise, min_seeds=1),
    Claim("ch6.fixes_no_growth", 6, f"{_Z}; {_D}", "SkipInit and Fixup remove the exponential "
          "growth of activations with depth at initialisation", "mean channel variance at the last block output / "
          "at the first (the stem), at initialisation, the deep ResNet of chapter 5's activations-vs-depth analysis",
          "SkipInit and Fixup vs no BN, per initialisation", f"holds when the growth is below {GROWTH_BN:g}x for "
          "SkipInit and Fixup in every initialisation. It cannot fail: both start every residual branch at zero "
          "(SkipInit's scalar, Fixup's last layer), so each block is its shortcut at initialisation and the variance "
          "does not grow (it drops where the zero-padded channels of the shortcuts join); it checks that our networks follow the papers' rules, the evidence is in the other claims",
          f"no BN grows above {GROWTH_NONE:g}x in every initialisation (the depth shows the explosion), all finite",
          "largest growth of SkipInit and Fixup", _ch6_no_growth, kind="holds by construction", min_seeds=1),
    Claim("ch6.fixes_tolerate_large_lr", 6, f"{_D}; {_Z}", "SkipInit and Fixup train at learning "
          "rates at which the network without BN diverges", "divergence and final test accuracy over chapter 5's "
          "learning-rate sweep (same ResNet, recipe, data and steps)", "at the large lrs (every lr from the smallest "
          "one at which no BN diverges in every seed): SkipInit and Fixup, per seed",
          f"a run trains when it does not diverge and ends above {100 * BEYOND_CHANCE:.0f}% test accuracy. yes: both "
          "train at every large lr in every seed (>= 2 seeds); partly: in at least half of these (network, lr, seed) "
          "cases, or both train at the smallest large lr in every seed; no: otherwise", "at least one lr at which no "
          f"BN diverges in every seed, and BN above {100 * BEYOND_CHANCE:.0f}% at some lr",
          "fraction of (network, large lr, seed) cases that train", _ch6_tolerate),
    Claim("ch6.fixes_close_to_bn", 6, f"{_Z}; {_D}", "SkipInit and Fixup come close to BN's "
          "best accuracy at equal budget", "final test accuracy of each network at its own best lr (the highest mean "
          "over seeds among the lrs where no seed diverged), same number of steps", "BN's best vs SkipInit's and "
          f"Fixup's best, seed by seed", f"yes: BN − fix <= {100 * EQUAL_POINTS:.0f} points for both fixes in every "
          "seed (>= 2 seeds; a fix ahead of BN counts as close); partly: in at least half of the (fix, seed) pairs, or "
          f"each fix's mean gap is within max({100 * EQUAL_POINTS:.0f} points, {SPREAD_FACTOR:g} x the largest spread "
          "across seeds of those best-lr accuracies), i.e. within the seed noise; no: otherwise",
          f"BN's best above {100 * BEYOND_CHANCE:.0f}% (otherwise 'close' is two nets at chance), and each fix has an "
          "lr where no seed diverged", "largest mean gap BN − fix (accuracy)", _ch6_close),
    Claim("ch6.batch_free_lr_tolerance", 6, f"our test of {_B}'s explanation", "A batch-free normalization (GroupNorm) tolerates "
          "learning rates as large as BN's", f"per seed, the largest lr of the sweep at which the network trains (no "
          f"divergence, above {100 * BEYOND_CHANCE:.0f}% test accuracy)", "GroupNorm vs BN (and no BN), same seed",
          "yes: GroupNorm's largest lr is at least BN's in every seed (>= 2 seeds); partly: in at least half of the "
          "seeds, or GroupNorm's is above no BN's in every seed (it recovers part of the tolerance); no: otherwise",
          "no BN diverges at some lr in every seed (the grid reaches the unstable lrs) and BN trains at some lr in "
          "every seed", "median GroupNorm / BN largest lr", _ch6_batch_free),
]
CLAIMS: dict[str, Claim] = {c.id: c for c in _CLAIMS}


def judge(claim_id: str, *, seeds: Sequence[int], **numbers: Any) -> Verdict:
    """Apply the registered criterion of `claim_id` to the measured numbers; the Verdict record for show_verdicts.

    `seeds` are the independent replicates the numbers come from (training seeds, or initialisations where the
    claim says so); the keyword numbers are those the claim's rule takes (see its signature in this module).
    """
    validate.choice("claim_id", claim_id, CLAIMS)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    c = CLAIMS[claim_id]
    f = c.rule(**numbers)
    outcome = grade(f, len(seeds), c.min_seeds)
    evidence = f.evidence if f.adequate else f"Adequacy failed ({c.adequacy}): {f.evidence}"
    return Verdict(claim=c.text, paper=c.paper, reproduced=outcome, evidence=evidence, claim_id=c.id,
                   criterion=c.criterion, seeds=seeds, effect=None if not _finite(f.effect) else float(f.effect),
                   spread=None if f.spread is None or not _finite(f.spread) else float(f.spread),
                   adequate=bool(f.adequate), kind=c.kind)


def claims_markdown() -> str:
    """The registry as a MyST page body (the book's pre-registration page)."""
    out = ["## What the outcomes mean", ""]
    out += [f"- **{o}**: {OUTCOME_MEANING[o]}." for o in OUTCOMES]
    out += ["", "Rows of another kind than *claim* (derivation checks, implementation checks, facts that hold by "
            "construction) are listed in the verdict tables as what they are: they test our code or our algebra, "
            "and are not evidence for or against a paper.", ""]
    for ch in sorted({c.chapter for c in _CLAIMS}):
        out += [f"## Chapter {ch}", ""]
        for c in (c for c in _CLAIMS if c.chapter == ch):
            out += [f"### `{c.id}`: {c.text}", ""]
            if c.kind != "claim":
                out += [f"*A {c.kind}, not evidence.*", ""]
            out += [f"- **Paper**: {c.paper}", f"- **Quantity**: {c.quantity}", f"- **Comparison**: {c.comparison}",
                    f"- **Criterion**: {c.criterion}", f"- **Adequacy** (else *not at this scale*): {c.adequacy}",
                    f"- **Effect reported**: {c.effect}; a *yes* needs at least {c.min_seeds} "
                    f"seed{'s' if c.min_seeds > 1 else ''}", ""]
    return "\n".join(out)
