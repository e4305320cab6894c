"""The claims machinery: outcomes, thresholds, `Finding`, `Claim`, `grade`, and helpers the criteria share."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

__all__ = ["BEYOND_CHANCE", "BN_RELATIVE_LOSS", "CHANCE", "CRIPPLE_POINTS", "Claim", "DIVERGED_RELATIVE_LOSS",
           "DLN_COS_NEAR_1", "DRIFT_SIMILAR", "EQUAL_POINTS", "Finding", "ICS_DCOS", "ICS_L2_RATIO",
           "KEPT_GAIN", "KINDS", "KURTOSIS_SE", "LP_K_FACTOR", "LP_LOSS_FACTOR", "MIN_PROBED", "MIN_SEEDS",
           "OUTCOME_MEANING", "RANGES", "SLOPE_TOL", "SPREAD_FACTOR", "STABILITY_SE", "TRAINS_RULE", "finite", "grade", "k_of",
           "max_spread", "mean", "median", "pct", "plus_minus", "ratios_finding", "reduces_ics", "seed_range"]




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
LP_K_FACTOR = 2.0  # "smooths as much as BN": median K within 2x of BN's (and below the standard net's)
KURTOSIS_SE = 2.0  # "clearly less Gaussian": |excess kurtosis| above BN's by more than 2 standard errors
STABILITY_SE = 2.0  # "clearly less stable": channel-mean change above BN's by more than 2 s.e. of the difference
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
def finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def seed_range(values: Sequence[float]) -> float | None:
    """Spread across seeds: max - min of the finite values; None with fewer than two."""
    v = [float(x) for x in values if finite(x)]
    return max(v) - min(v) if len(v) >= 2 else None


def median(values: Sequence[float]) -> float:
    v = sorted(float(x) for x in values if not math.isnan(float(x)))
    if not v:
        return math.nan
    m = len(v) // 2
    return v[m] if len(v) % 2 else (v[m - 1] + v[m]) / 2


def mean(values: Sequence[float]) -> float:
    v = [float(x) for x in values]
    return sum(v) / len(v) if v else math.nan


def max_spread(groups: Sequence[Sequence[float]]) -> float | None:
    s = [r for r in (seed_range(g) for g in groups) if r is not None]
    return max(s) if s else None


def pct(x: float) -> str:
    return f"{100 * x:.1f}%" if finite(x) else "diverged"


def plus_minus(spread: float | None, fmt: str = ".2g") -> str:
    return "" if spread is None else f" (spread across seeds {spread:{fmt}})"


def k_of(cases: Sequence[bool]) -> str:
    return f"{sum(map(bool, cases))} of {len(cases)}"


def ratios_finding(ratios: Sequence[Mapping[str, float]], n_probed: int | None, extra: str = "") -> Finding:
    """Standard / BN ratios per seed (one mapping per seed, quantity -> ratio); > 1: BN smaller."""
    cases = [r > 1 for d in ratios for r in d.values()]
    keys = list(ratios[0]) if ratios else []
    per_key = {k: [d[k] for d in ratios] for k in keys}
    adequate = bool(ratios) and all(not math.isnan(float(r)) for d in ratios for r in d.values()) and \
        (n_probed is None or n_probed >= MIN_PROBED)
    ev = "; ".join(f"{k} " + "/".join(f"{v:.2g}" for v in vs) + "x" for k, vs in per_key.items())
    ev = f"standard/BN medians per seed: {ev}: BN smaller in {k_of(cases)} cases"
    if n_probed is not None:
        ev += f"; {n_probed} probed steps x seeds per network (adequate from {MIN_PROBED})"
    return Finding(cases, adequate, median([d[k] for d in ratios for k in d]),
                   max_spread(list(per_key.values())),
                   ev + extra)



IOFFE, SANTURKAR, BJORCK = "Ioffe & Szegedy 2015", "Santurkar et al. 2018", "Bjorck et al. 2018"
TRAINS_RULE = "a run trains when its smoothed training loss ends below 0.9 ln 10 (`ics.trains`)"
DE_SMITH, ZHANG = "De & Smith 2020", "Zhang, Dauphin & Ma 2019"
