"""Chapter 4 (landscape smoothness, Santurkar et al. 2018): its claims and their criteria."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .core import (Claim, Finding, KURTOSIS_SE, LP_BETA_FACTOR, LP_LOSS_FACTOR, MIN_PROBED, SANTURKAR, finite, k_of, max_spread,
                   mean, median, ratios_finding)


def _ch4_vgg(ratios: Sequence[Mapping[str, float]], n_probed: int,
             wide_ratios: Sequence[Mapping[str, float]] | None = None, wide: str = "") -> Finding:
    extra = ""
    if wide_ratios:
        extra = ("; secondary evidence, not judged: in " + (wide or "the widened range") + " "
                 + "; ".join(f"{k} " + "/".join(f"{d[k]:.2g}" for d in wide_ratios) + "x" for k in wide_ratios[0]))
    return ratios_finding(ratios, n_probed, extra)


def _ch4_dln(ratios: Sequence[Mapping[str, float]], n_probed: int) -> Finding:
    return ratios_finding(ratios, n_probed)


def _ch4_fig11(ratios: Mapping[str, Sequence[float]]) -> Finding:
    """ratios: panel ("VGG early", ...) -> per seed, median over the probes in the paper's range of standard / BN
    ||g - g(eta)||."""
    cases = [finite(r) and r > 1 for v in ratios.values() for r in v]
    adequate = bool(ratios) and all(not math.isnan(float(r)) for v in ratios.values() for r in v)
    return Finding(cases, adequate, median([r for v in ratios.values() for r in v]), max_spread(list(ratios.values())),
                   "standard/BN gradient change, median over the paper's probe range, per seed: "
                   + ", ".join(f"{k} " + "/".join(f"{r:.2g}" for r in v) + "x" for k, v in ratios.items())
                   + f": larger without BN in {k_of(cases)} cases")


def _ch4_lp_train(final: Mapping[str, Mapping[str, float]]) -> Finding:
    lp = [n for n in final["VGG"] if n not in ("none", "batchnorm")]
    cases = [final[m][n] <= LP_LOSS_FACTOR * final[m]["batchnorm"] for m in final for n in lp]
    cases.append(final["DLN"]["l1"] < final["DLN"]["batchnorm"])
    return Finding(cases, all(finite(final[m]["batchnorm"]) for m in final),
                   median([final[m][n] / final[m]["batchnorm"] for m in final for n in lp]), None,
                   "final training loss, ℓp / BN: " + "; ".join(
                       f"{m} " + ", ".join(f"{n} {final[m][n] / final[m]['batchnorm']:.2f}x" for n in lp) for m in final)
                   + f" (as well: within {LP_LOSS_FACTOR:g}x); {k_of(cases)} conditions hold")


def _ch4_lp_smooth(beta: Mapping[str, Mapping[str, float]]) -> Finding:
    lp = [n for n in beta["VGG"] if n not in ("none", "batchnorm")]
    cases = [beta[m][n] <= LP_BETA_FACTOR * beta[m]["batchnorm"] and beta[m][n] < beta[m]["none"] for m in beta for n in lp]
    return Finding(cases, all(finite(beta[m]["batchnorm"]) for m in beta),
                   median([beta[m][n] / beta[m]["batchnorm"] for m in beta for n in lp]), None,
                   "median effective β, ℓp / BN: " + "; ".join(
                       f"{m} " + ", ".join(f"{n} {beta[m][n] / beta[m]['batchnorm']:.2g}x" for n in lp) for m in beta)
                   + f": as smooth as BN (within {LP_BETA_FACTOR:g}x and below standard) in {k_of(cases)}")


def _ch4_lp_gauss(kurtosis: Mapping[str, float], kurtosis_se: Mapping[str, float], drift: Mapping[str, float]) -> Finding:
    lp = [n for n in kurtosis if n not in ("none", "batchnorm")]
    gauss = [abs(kurtosis[n]) > abs(kurtosis["batchnorm"]) + KURTOSIS_SE * kurtosis_se[n] for n in lp]
    stable = [drift[n] > drift["batchnorm"] for n in lp]
    return Finding(gauss + stable, all(finite(kurtosis[n]) and finite(drift[n]) for n in kurtosis),
                   median([drift[n] / drift["batchnorm"] for n in lp if drift["batchnorm"] > 0]), None,
                   f"|excess kurtosis| above BN's by > {KURTOSIS_SE:g} s.e.: {k_of(gauss)}; more drift than BN: {k_of(stable)}")


def _ch4_theorem(holds_1_over_m: bool, n_cases: int, violated_1_over_sqrt_m: float) -> Finding:
    return Finding([bool(holds_1_over_m)], True, float(violated_1_over_sqrt_m), None,
                   f"with 1/m the bound holds with equality in all {n_cases} random cases (an algebraic identity: "
                   f"BN's backward pass is a projection); with 1/√m as printed it is violated in "
                   f"{violated_1_over_sqrt_m:.0%}")


CLAIMS = [
    Claim("ch4.vgg_smoother", 4, f"{SANTURKAR}, Fig 4 (VGG, probes in [lr/2, 4 lr])", "With BN the loss, gradient "
          "predictiveness and effective β are smaller along the gradient (VGG)",
          "at probed steps, over η in the paper's range [lr/2, 4 lr]: the loss band width, the top of the "
          "gradient-predictiveness band, effective β; medians over probed steps", "standard / BN, per seed",
          "yes: all three ratios above 1 in every seed (>= 2 seeds); partly: in at least half of the (quantity, "
          "seed) cases; no: otherwise. The widened range is reported as secondary evidence only",
          f"at least {MIN_PROBED} probed steps x seeds per network", "median standard / BN ratio", _ch4_vgg),
    Claim("ch4.dln_smoother", 4, f"{SANTURKAR}, Fig 4 (DLN, probes in [lr/100, 30 lr])", "Same for the deep linear network",
          "the same three quantities over η in [lr/100, 30 lr]", "standard / BN, per seed",
          "as ch4.vgg_smoother", f"at least {MIN_PROBED} probed steps x seeds per network",
          "median standard / BN ratio", _ch4_dln),
    Claim("ch4.fig11_gradient_change", 4, f"{SANTURKAR}, Fig 11", "Without BN the gradient changes more with the step "
          "size, early and late", "‖∇L(w) − ∇L(w − η g)‖ at the first and last probed step, over η in the paper's "
          "range (VGG [lr/2, 4 lr], DLN [lr/100, 30 lr])", "standard / BN, median over the range, per seed",
          "yes: the ratio is above 1 in all four panels (VGG/DLN x early/late) in every seed (>= 2 seeds); partly: "
          "in at least half; no: otherwise", "every panel probed (no missing values)", "median standard / BN ratio",
          _ch4_fig11),
    Claim("ch4.lp_train_as_well", 4, f"{SANTURKAR}, Fig 5", "ℓp normalizations train as well as BN; ℓ1 better than BN in "
          "the DLN", "final training loss (mean of the last 20 steps, median over seeds)", "ℓ1/ℓ2/ℓ∞ vs BN",
          f"yes: every ℓp net's final loss is within {LP_LOSS_FACTOR:g}x BN's (VGG and DLN) and ℓ1's is below BN's in "
          "the DLN, with >= 2 seeds; partly: at least half of these 7 conditions, or one seed; no: otherwise",
          "BN's final loss finite in both networks", "median ℓp / BN final loss", _ch4_lp_train),
    Claim("ch4.lp_smooth_as_bn", 4, f"{SANTURKAR}, Figs 12-13", "ℓp normalizations smooth the landscape as much as BN",
          "median effective β over the whole probe range", "ℓ1/ℓ2/ℓ∞ vs BN and the standard net",
          f"yes: every ℓp β within {LP_BETA_FACTOR:g}x BN's and below the standard net's, VGG and DLN (>= 2 seeds); "
          "partly: at least half of the 6 conditions, or one seed; no: otherwise", "BN's β finite",
          "median ℓp / BN β", _ch4_lp_smooth),
    Claim("ch4.lp_less_gaussian", 4, f"{SANTURKAR}, Fig 6", "ℓp activations are less Gaussian and less stable than BN's "
          "(VGG layer #11)", "excess kurtosis of one channel at the last record; drift of channel means",
          "ℓ1/ℓ2/ℓ∞ vs BN", f"yes: every ℓp |excess kurtosis| above BN's by more than {KURTOSIS_SE:g} standard errors "
          "and every ℓp drift above BN's (>= 2 seeds); partly: at least half of the 6, or one seed; no: otherwise",
          "kurtosis and drift finite", "median ℓp / BN drift", _ch4_lp_gauss),
    Claim("ch4.theorem41", 4, f"{SANTURKAR}, Theorem 4.1", "Theorem 4.1 (BN's gradient-norm bound), with the constant 1/m",
          "‖∂L̂/∂y‖² against γ²/σ² (‖g‖² − ⟨1, g⟩²/m − c⟨g, ŷ⟩²) on random batches",
          "c = 1/m (our derivation) and c = 1/√m (as printed)", "holds when the 1/m bound holds in every case. It is an "
          "algebraic identity (an equality), so it checks our derivation, not the paper's claim about training",
          "always adequate", "fraction of cases violating the 1/√m bound", _ch4_theorem,
          kind="derivation check", min_seeds=1),
]
