"""Chapter 4 (landscape smoothness, Santurkar et al. 2018): its claims and their criteria."""
from __future__ import annotations

import math
from typing import Mapping, Sequence

from .core import (Claim, Finding, KURTOSIS_SE, LP_K_FACTOR, LP_LOSS_FACTOR, MIN_PROBED, SANTURKAR, STABILITY_SE, finite,
                   k_of, max_spread, median, ratios_finding)


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


def lp_train_cases(final: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, bool]]:
    """Per network ("VGG", "DLN") and l_p norm: its final loss within LP_LOSS_FACTOR x BN's (the figure's titles
    and `ch4.lp_train_as_well` read the same rule)."""
    return {m: {n: final[m][n] <= LP_LOSS_FACTOR * final[m]["batchnorm"] for n in final[m] if n not in ("none", "batchnorm")}
            for m in final}


def _ch4_lp_train(final: Mapping[str, Mapping[str, float]]) -> Finding:
    lp = [n for n in final["VGG"] if n not in ("none", "batchnorm")]
    cases = [ok for m in final for ok in lp_train_cases(final)[m].values()]
    cases.append(final["DLN"]["l1"] < final["DLN"]["batchnorm"])
    return Finding(cases, all(finite(final[m]["batchnorm"]) for m in final),
                   median([final[m][n] / final[m]["batchnorm"] for m in final for n in lp]), None,
                   "final training loss, ℓp / BN: " + "; ".join(
                       f"{m} " + ", ".join(f"{n} {final[m][n] / final[m]['batchnorm']:.2f}x" for n in lp) for m in final)
                   + f" (as well: within {LP_LOSS_FACTOR:g}x); {k_of(cases)} conditions hold")


def lp_smooth_cases(K: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, bool]]:
    """Per network and l_p norm: its median K within LP_K_FACTOR x BN's and below the standard net's."""
    return {m: {n: K[m][n] <= LP_K_FACTOR * K[m]["batchnorm"] and K[m][n] < K[m]["none"]
                for n in K[m] if n not in ("none", "batchnorm")} for m in K}


def _ch4_lp_smooth(K: Mapping[str, Mapping[str, float]]) -> Finding:
    lp = [n for n in K["VGG"] if n not in ("none", "batchnorm")]
    cases = [ok for m in K for ok in lp_smooth_cases(K)[m].values()]
    return Finding(cases, all(finite(K[m]["batchnorm"]) for m in K),
                   median([K[m][n] / K[m]["batchnorm"] for m in K for n in lp]), None,
                   "median effective smoothness K, ℓp / BN: " + "; ".join(
                       f"{m} " + ", ".join(f"{n} {K[m][n] / K[m]['batchnorm']:.2g}x" for n in lp) for m in K)
                   + f": as smooth as BN (within {LP_K_FACTOR:g}x and below standard) in {k_of(cases)}")


def lp_activation_cases(kurtosis: Mapping[str, float], kurtosis_se: Mapping[str, float], mean_change: Mapping[str, float],
                        mean_change_se: Mapping[str, float]) -> dict[str, dict[str, bool]]:
    """Per l_p norm, against BN: "less Gaussian" (|excess kurtosis| above BN's by more than KURTOSIS_SE standard
    errors) and "less stable" (the channel means' change between records above BN's by more than STABILITY_SE
    standard errors of the difference, sqrt(se_lp^2 + se_BN^2)); a margin that is not finite decides nothing."""
    lp = [n for n in kurtosis if n not in ("none", "batchnorm")]
    margin = {n: STABILITY_SE * math.hypot(mean_change_se[n], mean_change_se["batchnorm"]) for n in lp}
    return {"less_gaussian": {n: abs(kurtosis[n]) > abs(kurtosis["batchnorm"]) + KURTOSIS_SE * kurtosis_se[n] for n in lp},
            "less_stable": {n: finite(margin[n]) and mean_change[n] > mean_change["batchnorm"] + margin[n] for n in lp}}


def _ch4_lp_gauss(kurtosis: Mapping[str, float], kurtosis_se: Mapping[str, float], mean_change: Mapping[str, float],
                  mean_change_se: Mapping[str, float]) -> Finding:
    lp = [n for n in kurtosis if n not in ("none", "batchnorm")]
    c = lp_activation_cases(kurtosis, kurtosis_se, mean_change, mean_change_se)
    gauss, stable = list(c["less_gaussian"].values()), list(c["less_stable"].values())
    adequate = all(finite(kurtosis[n]) and finite(mean_change[n]) for n in kurtosis) and \
        all(finite(mean_change_se[n]) for n in lp + ["batchnorm"])
    bn = mean_change["batchnorm"]
    return Finding(gauss + stable, adequate, median([mean_change[n] / bn for n in lp if bn > 0]), None,
                   f"|excess kurtosis| above BN's by > {KURTOSIS_SE:g} s.e.: {k_of(gauss)}; change of channel means "
                   f"above BN's by > {STABILITY_SE:g} s.e. of the difference: {k_of(stable)} (ℓp / BN: "
                   + ", ".join(f"{n} {mean_change[n]:.2g} ± {mean_change_se[n]:.1g} vs {bn:.2g} ± "
                               f"{mean_change_se['batchnorm']:.1g}" for n in lp) + ")")


def _ch4_theorem(holds_1_over_m: bool, n_cases: int, violated_1_over_sqrt_m: float) -> Finding:
    return Finding([bool(holds_1_over_m)], True, float(violated_1_over_sqrt_m), None,
                   f"with 1/m the bound holds with equality in all {n_cases} random cases (an algebraic identity: "
                   f"BN's backward pass is a projection); with 1/√m as printed it is violated in "
                   f"{violated_1_over_sqrt_m:.0%}")


CLAIMS = [
    Claim("ch4.vgg_smoother", 4, f"{SANTURKAR}, Fig 4 (VGG, probes in [η/2, 4η])", "With BN the loss, gradient "
          "predictiveness and effective smoothness K are smaller along the gradient (VGG)",
          "at probed steps, over η′ in the paper's range [η/2, 4η]: the loss band width, the top of the "
          "gradient-predictiveness band, the effective smoothness K; medians over probed steps", "standard / BN, per seed",
          "yes: all three ratios above 1 in every seed (>= 2 seeds); partly: in at least half of the (quantity, "
          "seed) cases; no: otherwise. The widened range is reported as secondary evidence only",
          f"at least {MIN_PROBED} probed steps x seeds per network", "median standard / BN ratio", _ch4_vgg),
    Claim("ch4.dln_smoother", 4, f"{SANTURKAR}, Fig 4 (DLN, probes in [η/100, 30η])", "Same for the deep linear network",
          "the same three quantities over η′ in [η/100, 30η]", "standard / BN, per seed",
          "as ch4.vgg_smoother", f"at least {MIN_PROBED} probed steps x seeds per network",
          "median standard / BN ratio", _ch4_dln),
    Claim("ch4.fig11_gradient_change", 4, f"{SANTURKAR}, Fig 11", "Without BN the gradient changes more with the step "
          "size, early and late", "‖∇L(w) − ∇L(w − η′ g)‖ at the first and last probed step, over η′ in the paper's "
          "range (VGG [η/2, 4η], DLN [η/100, 30η])", "standard / BN, median over the range, per seed",
          "yes: the ratio is above 1 in all four panels (VGG/DLN x early/late) in every seed (>= 2 seeds); partly: "
          "in at least half; no: otherwise", "every panel probed (no missing values)", "median standard / BN ratio",
          _ch4_fig11),
    Claim("ch4.lp_train_as_well", 4, f"{SANTURKAR}, Fig 5", "ℓp normalizations train as well as BN; ℓ1 better than BN in "
          "the DLN", "final training loss (mean of the last 20 steps, median over seeds)", "ℓ1/ℓ2/ℓ∞ vs BN",
          f"yes: every ℓp net's final loss is within {LP_LOSS_FACTOR:g}x BN's (VGG and DLN) and ℓ1's is below BN's in "
          "the DLN, with >= 2 seeds; partly: at least half of these 7 conditions, or one seed; no: otherwise",
          "BN's final loss finite in both networks", "median ℓp / BN final loss", _ch4_lp_train),
    Claim("ch4.lp_smooth_as_bn", 4, f"{SANTURKAR}, Figs 12-13", "ℓp normalizations smooth the landscape as much as BN",
          "median effective smoothness K over the whole probe range", "ℓ1/ℓ2/ℓ∞ vs BN and the standard net",
          f"yes: every ℓp K within {LP_K_FACTOR:g}x BN's and below the standard net's, VGG and DLN (>= 2 seeds); "
          "partly: at least half of the 6 conditions, or one seed; no: otherwise", "BN's K finite",
          "median ℓp / BN K", _ch4_lp_smooth),
    Claim("ch4.lp_less_gaussian", 4, f"{SANTURKAR}, Fig 6", "ℓp activations are less Gaussian and less stable than BN's "
          "(VGG layer #11)", "excess kurtosis of one channel at the last record; change of the channel means between "
          "successive records, in channel standard deviations (median over record pairs, with its standard error "
          "from their spread)", "ℓ1/ℓ2/ℓ∞ vs BN", f"yes: every ℓp |excess kurtosis| above BN's by more than "
          f"{KURTOSIS_SE:g} standard errors and every ℓp change of channel means above BN's by more than "
          f"{STABILITY_SE:g} standard errors of the difference (>= 2 seeds); partly: at least half of the 6, or one "
          "seed; no: otherwise", "kurtosis and change finite, and at least two record pairs (a standard error) "
          "for every ℓp net and BN", "median ℓp / BN change of channel means", _ch4_lp_gauss),
    Claim("ch4.theorem41", 4, f"{SANTURKAR}, Theorem 4.1", "Theorem 4.1 (BN's gradient-norm bound), with the constant 1/m",
          "‖∂L̂/∂y‖² against γ²/σ² (‖g‖² − ⟨1, g⟩²/m − c⟨g, ŷ⟩²) on random batches",
          "c = 1/m (our derivation) and c = 1/√m (as printed)", "holds when the 1/m bound holds in every case. It is an "
          "algebraic identity (an equality), so it checks our derivation, not the paper's claim about training",
          "always adequate", "fraction of cases violating the 1/√m bound", _ch4_theorem,
          kind="derivation check", min_seeds=1),
]
