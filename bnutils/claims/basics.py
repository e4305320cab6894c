"""Chapter 1 (BN basics, Ioffe & Szegedy 2015): its claims and their criteria."""
from __future__ import annotations

from typing import Mapping, Sequence

from .core import (BEYOND_CHANCE, Claim, Finding, IOFFE, finite, k_of, max_spread, mean, median, pct)


def _check_below(max_diff: float, tol: float, what: str) -> Finding:
    return Finding([float(max_diff) < tol], True, float(max_diff), None, f"{what} {float(max_diff):.1e} (tolerance {tol:g})")


def _ch1_steadier(drift_none: Mapping[float, Sequence[float]], drift_bn: Mapping[float, Sequence[float]],
                  final_acc_none: Mapping[float, Sequence[float]], final_acc_bn: Mapping[float, Sequence[float]]) -> Finding:
    cases = [n > b for lr in drift_none for n, b in zip(drift_none[lr], drift_bn[lr])]
    weaker = [mean(drift_none[lr]) > mean(drift_bn[lr]) for lr in drift_none]
    ratios = {lr: [n / b for n, b in zip(drift_none[lr], drift_bn[lr]) if b > 0] for lr in drift_none}
    adequate = any(min(list(final_acc_none[lr]) + list(final_acc_bn[lr])) > BEYOND_CHANCE for lr in drift_none) and \
        all(finite(v) for d in (drift_none, drift_bn) for vs in d.values() for v in vs)
    ev = "; ".join(f"lr {lr:g}: drift " + "/".join(f"{v:.2f}" for v in drift_none[lr]) + " without vs "
                   + "/".join(f"{v:.2f}" for v in drift_bn[lr]) + " with BN (per seed)" for lr in drift_none)
    return Finding(cases, adequate, median([r for v in ratios.values() for r in v]), max_spread(list(ratios.values())),
                   f"{ev}: BN steadier in {k_of(cases)} seed pairs", weaker=weaker)


def _ch1_faster(mean_acc_none: Mapping[float, Sequence[float]], mean_acc_bn: Mapping[float, Sequence[float]],
                final_acc_none: Mapping[float, Sequence[float]], final_acc_bn: Mapping[float, Sequence[float]]) -> Finding:
    cases = [b > n for lr in mean_acc_none for n, b in zip(mean_acc_none[lr], mean_acc_bn[lr])]
    gaps = {lr: [b - n for n, b in zip(mean_acc_none[lr], mean_acc_bn[lr])] for lr in mean_acc_none}
    adequate = any(max(list(final_acc_none[lr]) + list(final_acc_bn[lr])) > BEYOND_CHANCE for lr in mean_acc_none)
    ev = "; ".join(f"lr {lr:g}: mean test accuracy over training " + "/".join(pct(v) for v in mean_acc_none[lr])
                   + " without vs " + "/".join(pct(v) for v in mean_acc_bn[lr]) + " with BN" for lr in mean_acc_none)
    return Finding(cases, adequate, median([g for v in gaps.values() for g in v]), max_spread(list(gaps.values())),
                   f"{ev} (per seed): BN ahead in {k_of(cases)} seed pairs")


CLAIMS = [
    Claim("ch1.scratch_matches_torch", 1, "—", "Our BatchNorm matches PyTorch's (outputs, gradients, running "
          "statistics, eval mode)", "largest absolute difference over outputs, gradients and statistics",
          "scratch BatchNorm vs torch.nn.BatchNorm2d on the same input", "holds when every difference is below 1e-5",
          "always adequate", "the largest difference", lambda max_diff: _check_below(max_diff, 1e-5, "largest difference"),
          kind="implementation check", min_seeds=1),
    Claim("ch1.bn_folds", 1, f"{IOFFE}, Sec. 3.1", "At inference BN folds into the preceding conv",
          "largest |logit difference| on 500 test images", "folded network vs the BN network in eval mode",
          "holds when the largest difference is below 1e-4 (folding is exact algebra: this tests float error and "
          "our code)", "always adequate", "the largest difference",
          lambda max_diff: _check_below(max_diff, 1e-4, "max logit difference"), kind="derivation check", min_seeds=1),
    Claim("ch1.fig1_steadier", 1, f"{IOFFE}, Fig 1(b, c)", "Without BN a sigmoid input's distribution drifts during "
          "training; with BN it is steadier", "drift of the 15th/50th/85th percentiles of one sigmoid input in the "
          "last hidden layer over training", "BN vs the standard MLP, same seed, at each learning rate",
          "yes: BN's drift is below the standard net's in every seed pair at every learning rate (>= 2 seeds); "
          "partly: in at least half of the (lr, seed) pairs, or on the mean over seeds at every lr; no: otherwise",
          f"at some learning rate both networks end above {100 * BEYOND_CHANCE:.0f}% test accuracy in every seed",
          "median standard / BN drift ratio", _ch1_steadier),
    Claim("ch1.fig1a_faster", 1, f"{IOFFE}, Fig 1(a)", "The BN network learns faster",
          "test accuracy averaged over the evaluations during training", "BN vs the standard MLP, same seed, each lr",
          "yes: BN's mean test accuracy over training is higher in every seed pair at every lr (>= 2 seeds); "
          "partly: in at least half of them; no: otherwise",
          f"at some learning rate one of the networks ends above {100 * BEYOND_CHANCE:.0f}% test accuracy",
          "median BN − standard gap (accuracy)", _ch1_faster),
]
