"""Chapter 3 (the noisy-BN experiment, Santurkar et al. 2018): its claims and their criteria."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .core import (BEYOND_CHANCE, CRIPPLE_POINTS, Claim, Finding, KEPT_GAIN, SANTURKAR, finite, k_of, max_spread, mean, median,
                   pct, seed_range)


def _ch3_noisy_trains(train_acc_none: Sequence[float], train_acc_bn: Sequence[float],
                      train_acc_noisy: Sequence[float]) -> Finding:
    gain = [b - n for n, b in zip(train_acc_none, train_acc_bn)]
    kept = [(z - n) / g if finite(g) and g > 0 and finite(z) else math.nan
            for n, z, g in zip(train_acc_none, train_acc_noisy, gain)]
    cases = [finite(k) and k >= KEPT_GAIN for k in kept]
    weaker = [finite(z) and z > n for n, z in zip(train_acc_none, train_acc_noisy)]
    adequate = all(finite(g) and g > 0 for g in gain) and min(train_acc_bn) > BEYOND_CHANCE
    ev = ("training accuracy (last 10 % of steps) per seed: standard " + "/".join(pct(v) for v in train_acc_none)
          + ", BN " + "/".join(pct(v) for v in train_acc_bn) + ", noisy BN " + "/".join(pct(v) for v in train_acc_noisy)
          + ": noisy BN keeps " + "/".join(f"{100 * k:.0f}%" if finite(k) else "n/a" for k in kept)
          + f" of BN's gain (needs {100 * KEPT_GAIN:.0f}%)")
    return Finding(cases, adequate, median(kept), seed_range(kept), ev, weaker=weaker)


def _ch3_both_beat(test_acc_none: Sequence[float], test_acc_bn: Sequence[float],
                   test_acc_noisy: Sequence[float]) -> Finding:
    cases = [finite(a) and finite(n) and a > n for a in list(test_acc_bn) + list(test_acc_noisy) for n in test_acc_none]
    fin = lambda v: [x for x in v if finite(x)]
    weaker = [mean(fin(test_acc_bn)) > mean(fin(test_acc_none)), mean(fin(test_acc_noisy)) > mean(fin(test_acc_none))]
    allv = fin(list(test_acc_none) + list(test_acc_bn) + list(test_acc_noisy))
    eff = min(mean(fin(test_acc_bn)), mean(fin(test_acc_noisy))) - mean(fin(test_acc_none))
    return Finding(cases, bool(allv) and max(allv) > BEYOND_CHANCE, eff,
                   max_spread([fin(test_acc_none), fin(test_acc_bn), fin(test_acc_noisy)]),
                   "test accuracy per seed: BN " + "/".join(pct(v) for v in test_acc_bn) + ", noisy BN "
                   + "/".join(pct(v) for v in test_acc_noisy) + ", standard " + "/".join(pct(v) for v in test_acc_none)
                   + f": BN and noisy BN above the standard net in {k_of(cases)} seed pairs", weaker=weaker)


def _ch3_cripples(test_acc_none: Sequence[float], test_acc_noise: Sequence[float], diverged_noise: Sequence[bool]) -> Finding:
    cases = [bool(d) or (finite(z) and z <= n - CRIPPLE_POINTS)
             for n, z, d in zip(test_acc_none, test_acc_noise, diverged_noise)]
    weaker = [bool(d) or (finite(z) and z < n) for n, z, d in zip(test_acc_none, test_acc_noise, diverged_noise)]
    loss = [n - z for n, z in zip(test_acc_none, test_acc_noise) if finite(z)]
    adequate = mean([n for n in test_acc_none if finite(n)]) > BEYOND_CHANCE
    return Finding(cases, adequate, median(loss) if loss else math.nan, seed_range(loss),
                   "test accuracy per seed: standard " + "/".join(pct(v) for v in test_acc_none) + ", standard + noise "
                   + "/".join(pct(v) if not d else "diverged" for v, d in zip(test_acc_noise, diverged_noise))
                   + f": crippled (diverged or >= {100 * CRIPPLE_POINTS:.0f} points lost) in {k_of(cases)} seeds",
                   weaker=weaker)


def _ch3_less_stable(change_noisy: Sequence[Mapping[str, float]], change_ref: Sequence[Mapping[str, float]],
                     ref: str = "the standard net") -> Finding:
    """change_*: per seed, {"layer/moment": average per-step change}."""
    cases = [finite(a[k]) and finite(b[k]) and a[k] > b[k] for a, b in zip(change_noisy, change_ref) for k in a]
    ratios = [[a[k] / b[k] for a, b in zip(change_noisy, change_ref) if finite(a[k]) and b[k] > 0]
              for k in (change_noisy[0] if change_noisy else {})]
    adequate = bool(change_noisy) and all(finite(v) for d in list(change_noisy) + list(change_ref) for v in d.values())
    return Finding(cases, adequate, median([r for v in ratios for r in v]), max_spread(ratios),
                   f"noisy BN's per-step change of channel mean and variance larger than {ref}'s in {k_of(cases)} "
                   f"(layer, moment, seed) cases; median ratio {median([r for v in ratios for r in v]):.2g}x")


CLAIMS = [
    Claim("ch3.noisy_trains_as_well", 3, f"{SANTURKAR}, Fig 2", "Noisy BN trains about as well as BN",
          "training accuracy over the last 10 % of the steps (training mode: the noise is on)",
          "noisy BN's gain over the standard net vs BN's gain, same seed",
          f"yes: noisy BN keeps >= {100 * KEPT_GAIN:.0f}% of BN's training-accuracy gain over the standard net in every "
          "seed (>= 2 seeds); partly: in at least half of the seeds, or noisy BN beats the standard net in every seed; "
          "no: otherwise", f"BN trains better than the standard net in every seed and above "
          f"{100 * BEYOND_CHANCE:.0f}% (otherwise there is no gain to keep)", "median fraction of BN's gain kept",
          _ch3_noisy_trains),
    Claim("ch3.both_beat_standard", 3, f"{SANTURKAR}, Fig 2", "BN and noisy BN both beat the standard network",
          "test accuracy (recalibrated running statistics for the BN nets, noise off)",
          "BN and noisy BN vs the standard net, every seed pair", "yes: every BN and noisy-BN seed beats every "
          "standard seed (>= 2 seeds); partly: in at least half of the pairs, or on the means; no: otherwise",
          f"some network ends above {100 * BEYOND_CHANCE:.0f}% test accuracy",
          "lower of the two mean gains over the standard net", _ch3_both_beat),
    Claim("ch3.noise_cripples_standard", 3, f"{SANTURKAR}, Sec. 2.1", "The same noise cripples the standard network",
          "test accuracy, or divergence", "standard + noise vs standard, same seed",
          f"yes: the noisy standard net diverges or loses >= {100 * CRIPPLE_POINTS:.0f} points in every seed (>= 2 "
          "seeds); partly: in at least half, or it is worse in every seed; no: otherwise",
          f"the standard net itself learns (mean test accuracy above {100 * BEYOND_CHANCE:.0f}%)",
          "median accuracy lost", _ch3_cripples),
    Claim("ch3.noisy_less_stable", 3, f"{SANTURKAR}, Fig 8", "Noisy BN's layer distributions are less stable than even the "
          "standard net's", "average per-step change of each channel's mean and variance, layers #2, #9, #13",
          "noisy BN vs the standard net, per layer, moment and seed (vs clean BN it holds by construction: see "
          "ch3.noisy_vs_bn_by_construction)", "yes: noisy BN changes more in every (layer, moment, seed) case (>= 2 "
          "seeds); partly: in at least half; no: otherwise", "no network diverged in every seed (changes finite)",
          "median noisy / standard ratio", lambda change_noisy, change_none: _ch3_less_stable(change_noisy, change_none)),
    Claim("ch3.noisy_vs_bn_by_construction", 3, f"{SANTURKAR}, Fig 8", "Noisy BN's channel means and variances change more "
          "per step than clean BN's", "the same per-step changes", "noisy BN vs clean BN",
          "holds when noisy BN changes more in every case. It cannot fail: the noise is redrawn every step on top of "
          "BN's output, so it is not evidence", "the changes are finite", "median noisy / BN ratio",
          lambda change_noisy, change_bn: _ch3_less_stable(change_noisy, change_bn, "clean BN"),
          kind="holds by construction", min_seeds=1),
]
