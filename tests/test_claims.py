"""The claims registry (bnutils.claims): every criterion, fed synthetic numbers, can give each of its outcomes."""
import json
import math

import pytest

from bnutils import claims as C
from bnutils.report import MIME, Verdict, verdict_table
from test_causal import CASES as CHAPTER_6  # chapter 6's cases live beside its other tests

NAN = math.nan
S2, S1 = [0, 1], [0]


def _sweep(acc_none, acc_bn, div_none, div_bn):
    """acc/diverged per norm -> lr -> per seed, from {lr: [...]} dicts."""
    return dict(acc={"none": acc_none, "batchnorm": acc_bn}, diverged={"none": div_none, "batchnorm": div_bn})


def _ics(l2, dcos):
    return dict(rows=[dict(name="VGG", lr=0.1, layer=5, l2_ratio=l2, dcos=dcos),
                      dict(name="DLN", lr=1e-6, layer=9, l2_ratio=[1.2, 1.1], dcos=[0.0, -0.1])])


def _three(a, b, c):
    return [{"loss_spread": a[i], "grad_hi": b[i], "K": c[i]} for i in range(len(a))]


def _lp(l1v, l2v, l1d, bnd=1.0):
    return {"VGG": {"none": 3.0, "batchnorm": 1.0, "l1": l1v, "l2": l2v, "linf": 1.1},
            "DLN": {"none": 3.0, "batchnorm": bnd, "l1": l1d, "l2": 1.1, "linf": 1.2}}


_SE = {"l1": .2, "l2": .2, "linf": .2}  # kurtosis standard errors (ch4.lp_less_gaussian)
_CSE = {"batchnorm": 0.01, "l1": 0.01, "l2": 0.01, "linf": 0.01}  # ... and of the change of channel means


def _change(vals):
    return [{"#2/mean": v, "#9/mean": v, "#13/var": 1.0} for v in vals]


A = dict(none={1e-4: [0.30, 0.31], 0.1: [0.32, 0.33], 1.0: [NAN, NAN]},
         bn={1e-4: [0.31, 0.30], 0.1: [0.50, 0.51], 1.0: [0.45, 0.46]})
F2, T2 = [False, False], [True, True]

# claim id -> outcome -> (seeds, numbers)
CASES = {
    "ch1.scratch_matches_torch": {"yes": (S1, dict(max_diff=1e-9)), "no": (S1, dict(max_diff=1e-3))},
    "ch1.bn_folds": {"yes": (S1, dict(max_diff=1e-6)), "no": (S1, dict(max_diff=1e-2))},
    "ch1.fig1_steadier": {
        "yes": (S2, dict(drift_none={0.1: [2, 2], 0.5: [3, 3]}, drift_bn={0.1: [1, 1], 0.5: [1, 2]},
                         final_acc_none={0.1: [0.5, 0.5], 0.5: [0.5, 0.5]}, final_acc_bn={0.1: [0.6, 0.6], 0.5: [0.6, 0.6]})),
        "partly": (S2, dict(drift_none={0.1: [2, 2], 0.5: [3, 1]}, drift_bn={0.1: [1, 1], 0.5: [1, 2]},
                            final_acc_none={0.1: [0.5, 0.5], 0.5: [0.5, 0.5]}, final_acc_bn={0.1: [0.6, 0.6], 0.5: [0.6, 0.6]})),
        "no": (S2, dict(drift_none={0.1: [1, 1], 0.5: [1, 1]}, drift_bn={0.1: [2, 2], 0.5: [2, 2]},
                        final_acc_none={0.1: [0.5, 0.5], 0.5: [0.5, 0.5]}, final_acc_bn={0.1: [0.6, 0.6], 0.5: [0.6, 0.6]})),
        "not at this scale": (S2, dict(drift_none={0.1: [2, 2]}, drift_bn={0.1: [1, 1]},
                                       final_acc_none={0.1: [0.1, 0.1]}, final_acc_bn={0.1: [0.6, 0.6]}))},
    "ch1.fig1a_faster": {
        "yes": (S2, dict(mean_acc_none={0.1: [0.3, 0.3]}, mean_acc_bn={0.1: [0.4, 0.4]},
                         final_acc_none={0.1: [0.3, 0.3]}, final_acc_bn={0.1: [0.4, 0.4]})),
        "partly": (S1, dict(mean_acc_none={0.1: [0.3]}, mean_acc_bn={0.1: [0.4]},
                            final_acc_none={0.1: [0.3]}, final_acc_bn={0.1: [0.4]})),
        "no": (S2, dict(mean_acc_none={0.1: [0.4, 0.4]}, mean_acc_bn={0.1: [0.3, 0.3]},
                        final_acc_none={0.1: [0.3, 0.3]}, final_acc_bn={0.1: [0.4, 0.4]})),
        "not at this scale": (S2, dict(mean_acc_none={0.1: [0.1, 0.1]}, mean_acc_bn={0.1: [0.11, 0.11]},
                                       final_acc_none={0.1: [0.1, 0.1]}, final_acc_bn={0.1: [0.11, 0.11]}))},
    "ch2.fig1_both_train": {
        "yes": (S2, dict(trains_none=T2, trains_bn=T2, acc_none=[0.3, 0.3], acc_bn=[0.4, 0.4], lr=0.1)),
        "partly": (S2, dict(trains_none=T2, trains_bn=T2, acc_none=[0.4, 0.4], acc_bn=[0.3, 0.3], lr=0.1)),
        "no": (S2, dict(trains_none=F2, trains_bn=T2, acc_none=[0.1, 0.1], acc_bn=[0.4, 0.4], lr=0.1)),
        "not at this scale": (S2, dict(trains_none=F2, trains_bn=F2, acc_none=[0.1, 0.1], acc_bn=[0.1, 0.1], lr=0.1))},
    "ch2.fig1_only_bn_large_lr": {
        "yes": (S2, dict(trains_none=F2, trains_bn=T2, bn_trains_at_small_lr=True, lr=0.5)),
        "partly": (S1, dict(trains_none=[False], trains_bn=[True], bn_trains_at_small_lr=True, lr=0.5)),
        "no": (S2, dict(trains_none=T2, trains_bn=T2, bn_trains_at_small_lr=True, lr=0.5)),
        "not at this scale": (S2, dict(trains_none=F2, trains_bn=F2, bn_trains_at_small_lr=False, lr=0.5))},
    "ch2.fig1_similar_distributions": {
        "yes": (S2, dict(drift_none={"#3": 1.0, "#11": 1.0}, drift_bn={"#3": 1.1, "#11": 0.9})),
        "partly": (S2, dict(drift_none={"#3": 1.0, "#11": 1.0}, drift_bn={"#3": 1.1, "#11": 0.1})),
        "no": (S2, dict(drift_none={"#3": 1.0, "#11": 1.0}, drift_bn={"#3": 0.1, "#11": 0.1})),
        "not at this scale": (S2, dict(drift_none={"#3": 0.0, "#11": 1.0}, drift_bn={"#3": 0.1, "#11": 0.1}))},
    "ch2.ics_equal_step": {
        "yes": (S2, _ics([1.5, 2.0], [-0.2, 0.0])),
        "partly": (S2, _ics([0.5, 2.0], [-0.2, 0.0])),
        "no": (S2, dict(rows=[dict(name="VGG", lr=0.1, layer=5, l2_ratio=[0.5, 0.5], dcos=[0.2, 0.2])])),
        "not at this scale": (S2, _ics([NAN, 2.0], [-0.2, 0.0]))},
    "ch2.ics_equal_loss": {
        "yes": (S2, _ics([1.5, 2.0], [0.0, 0.0])),
        # the one rule: a case with only one indicator of reduction (cos higher by > 0.05) counts against the paper
        "partly": (S2, _ics([1.5, 2.0], [0.06, 0.0])),
        "no": (S2, dict(rows=[dict(name="VGG", lr=0.1, layer=5, l2_ratio=[0.7, 1.5], dcos=[0.0, 0.1])])),
        "not at this scale": (S2, dict(rows=[]))},
    "ch2.dln_cosine": {
        "yes": (S2, dict(cos_none={1e-7: [(0.99, 0.02), (0.98, 0.03)]}, cos_bn={1e-7: [(0.4, 1.5), (0.5, 1.2)]})),
        "partly": (S2, dict(cos_none={1e-7: [(0.99, 0.02)] * 2, 1e-6: [(0.4, 1.8)] * 2},
                            cos_bn={1e-7: [(0.4, 1.5)] * 2, 1e-6: [(0.3, 1.9)] * 2})),
        "no": (S2, dict(cos_none={1e-7: [(0.3, 1.0)] * 2}, cos_bn={1e-7: [(0.9, 0.1)] * 2})),
        "not at this scale": (S2, dict(cos_none={1e-7: [(NAN, 1.0)] * 2}, cos_bn={1e-7: [(0.9, 0.1)] * 2}))},
    "ch3.noisy_trains_as_well": {
        "yes": (S2, dict(train_acc_none=[0.3, 0.3], train_acc_bn=[0.7, 0.6], train_acc_noisy=[0.65, 0.55])),
        "partly": (S2, dict(train_acc_none=[0.3, 0.3], train_acc_bn=[0.7, 0.6], train_acc_noisy=[0.4, 0.4])),
        "no": (S2, dict(train_acc_none=[0.3, 0.3], train_acc_bn=[0.7, 0.6], train_acc_noisy=[0.2, 0.25])),
        "not at this scale": (S2, dict(train_acc_none=[0.3, 0.3], train_acc_bn=[0.25, 0.6], train_acc_noisy=[0.3, 0.5]))},
    "ch3.both_beat_standard": {
        "yes": (S2, dict(test_acc_none=[0.2, 0.21], test_acc_bn=[0.4, 0.39], test_acc_noisy=[0.35, 0.36])),
        "partly": (S2, dict(test_acc_none=[0.2, 0.37], test_acc_bn=[0.4, 0.39], test_acc_noisy=[0.35, 0.36])),
        "no": (S2, dict(test_acc_none=[0.5, 0.5], test_acc_bn=[0.4, 0.39], test_acc_noisy=[0.35, 0.36])),
        "not at this scale": (S2, dict(test_acc_none=[0.1, 0.1], test_acc_bn=[0.1, 0.11], test_acc_noisy=[0.1, 0.1]))},
    "ch3.noise_cripples_standard": {
        "yes": (S2, dict(test_acc_none=[0.3, 0.3], test_acc_noise=[NAN, 0.1], diverged_noise=[True, False])),
        "partly": (S2, dict(test_acc_none=[0.3, 0.3], test_acc_noise=[0.25, 0.28], diverged_noise=F2)),
        "no": (S2, dict(test_acc_none=[0.3, 0.3], test_acc_noise=[0.35, 0.31], diverged_noise=F2)),
        "not at this scale": (S2, dict(test_acc_none=[0.1, 0.1], test_acc_noise=[0.1, 0.1], diverged_noise=F2))},
    "ch3.noisy_less_stable": {
        "yes": (S2, dict(change_noisy=_change([3, 3]), change_none=[{"#2/mean": 1, "#9/mean": 1, "#13/var": 0.5}] * 2)),
        "partly": (S2, dict(change_noisy=_change([3, 3]), change_none=_change([1, 1]))),
        "no": (S2, dict(change_noisy=_change([1, 1]), change_none=_change([3, 3]))),
        "not at this scale": (S2, dict(change_noisy=_change([NAN, NAN]), change_none=_change([1, 1])))},
    "ch3.noisy_vs_bn_by_construction": {
        "yes": (S2, dict(change_noisy=[{"a": 2.0}] * 2, change_bn=[{"a": 1.0}] * 2)),
        "no": (S2, dict(change_noisy=[{"a": 1.0}] * 2, change_bn=[{"a": 2.0}] * 2))},
    "ch4.vgg_smoother": {
        "yes": (S2, dict(ratios=_three([2, 3], [4, 5], [1.5, 1.2]), n_probed=10, wide_ratios=_three([9, 9], [9, 9], [9, 9]))),
        "partly": (S2, dict(ratios=_three([0.5, 3], [4, 5], [0.8, 1.2]), n_probed=10)),
        # the widened range is secondary: it cannot turn a "no" in the paper's range into anything else
        "no": (S2, dict(ratios=_three([0.5, 0.3], [0.4, 5], [0.8, 0.9]), n_probed=10,
                        wide_ratios=_three([9, 9], [9, 9], [9, 9]))),
        "not at this scale": (S1, dict(ratios=_three([2], [4], [1.5]), n_probed=3))},
    "ch4.dln_smoother": {
        "yes": (S2, dict(ratios=_three([2, 3], [4, 5], [1.5, 1.2]), n_probed=12)),
        "partly": (S1, dict(ratios=_three([2], [4], [1.5]), n_probed=8)),
        "no": (S2, dict(ratios=_three([0.5, 0.3], [0.4, 0.5], [0.8, 0.9]), n_probed=12)),
        "not at this scale": (S2, dict(ratios=_three([2, 3], [4, 5], [1.5, 1.2]), n_probed=7))},
    "ch4.fig11_gradient_change": {
        "yes": (S2, dict(ratios={"VGG early": [3, 4], "VGG late": [2, 2], "DLN early": [9, 9], "DLN late": [5, 5]})),
        "partly": (S2, dict(ratios={"VGG early": [3, 4], "VGG late": [0.5, 0.8], "DLN early": [9, 9], "DLN late": [5, 5]})),
        "no": (S2, dict(ratios={"VGG early": [0.3, 0.4], "VGG late": [0.5, 0.8], "DLN early": [9, 9], "DLN late": [0.5, 0.5]})),
        "not at this scale": (S2, dict(ratios={"VGG early": [NAN, 4], "VGG late": [2, 2]}))},
    "ch4.lp_train_as_well": {
        "yes": (S2, dict(final=_lp(1.1, 1.2, 0.9))),
        "partly": (S1, dict(final=_lp(1.1, 1.2, 0.9))),
        "no": (S2, dict(final=_lp(3.0, 3.0, 3.0))),
        "not at this scale": (S2, dict(final=_lp(1.1, 1.2, 0.9, bnd=math.inf)))},
    "ch4.lp_smooth_as_bn": {
        "yes": (S2, dict(K=_lp(1.1, 1.2, 1.5))),
        "partly": (S2, dict(K=_lp(2.5, 1.2, 1.5))),
        "no": (S2, dict(K=_lp(2.5, 2.9, 2.5) | {"DLN": {"none": 3.0, "batchnorm": 1.0, "l1": 5, "l2": 5, "linf": 5}})),
        "not at this scale": (S2, dict(K=_lp(1.1, 1.2, 1.5, bnd=NAN)))},
    "ch4.lp_less_gaussian": {
        "yes": (S2, dict(kurtosis={"batchnorm": 0.1, "l1": 3, "l2": 3, "linf": -3}, kurtosis_se=_SE,
                         mean_change={"batchnorm": 0.1, "l1": 0.2, "l2": 0.3, "linf": 0.2}, mean_change_se=_CSE)),
        "partly": (S2, dict(kurtosis={"batchnorm": 0.1, "l1": 0, "l2": 0, "linf": 0}, kurtosis_se=_SE,
                            mean_change={"batchnorm": 0.1, "l1": 0.2, "l2": 0.3, "linf": 0.2}, mean_change_se=_CSE)),
        "no": (S2, dict(kurtosis={"batchnorm": 0.1, "l1": 0, "l2": 0, "linf": 0}, kurtosis_se=_SE,
                        mean_change={"batchnorm": 0.5, "l1": 0.2, "l2": 0.3, "linf": 0.2}, mean_change_se=_CSE)),
        "not at this scale": (S2, dict(kurtosis={"batchnorm": NAN, "l1": 0, "l2": 0, "linf": 0}, kurtosis_se=_SE,
                                       mean_change={"batchnorm": 0.5, "l1": 0.2, "l2": 0.3, "linf": 0.2},
                                       mean_change_se=_CSE))},
    "ch4.theorem41": {"yes": (S1, dict(holds_1_over_m=True, n_cases=100, violated_1_over_sqrt_m=1.0)),
                      "no": (S1, dict(holds_1_over_m=False, n_cases=100, violated_1_over_sqrt_m=1.0))},
    "ch5.large_lr_diverge_without_bn": {
        "yes": (S2, _sweep(A["none"], A["bn"], {1e-4: F2, 0.1: F2, 1.0: T2}, {1e-4: F2, 0.1: F2, 1.0: F2})),
        "partly": (S2, _sweep(A["none"], A["bn"] | {1.0: [0.45, 0.1]}, {1e-4: F2, 0.1: F2, 1.0: T2},
                              {1e-4: F2, 0.1: F2, 1.0: F2})),
        "no": (S2, _sweep(A["none"] | {0.1: [NAN, NAN]}, A["bn"] | {0.1: [NAN, NAN], 1.0: [NAN, NAN]},
                          {1e-4: F2, 0.1: T2, 1.0: [True, False]}, {1e-4: F2, 0.1: T2, 1.0: T2})),
        "not at this scale": (S2, _sweep(A["none"] | {1.0: [0.1, 0.1]}, A["bn"], {1e-4: F2, 0.1: F2, 1.0: [True, False]},
                                         {1e-4: F2, 0.1: F2, 1.0: F2}))},
    "ch5.equal_at_small_lr": {
        "yes": (S2, _sweep(A["none"], A["bn"], {}, {})),
        "partly": (S2, _sweep(A["none"] | {1e-4: [0.30, 0.36]}, A["bn"] | {1e-4: [0.50, 0.30]}, {}, {})),  # noisy seeds
        "no": (S2, _sweep(A["none"], A["bn"] | {1e-4: [0.50, 0.51]}, {}, {})),
        "not at this scale": (S2, _sweep(A["none"] | {1e-4: [0.1, 0.1]}, A["bn"] | {1e-4: [0.1, 0.1]}, {}, {}))},
    "ch5.gain_from_large_lr": {
        "yes": (S2, _sweep(A["none"], A["bn"] | {0.1: [0.33, 0.32]}, {1e-4: F2, 0.1: F2, 1.0: T2},
                           {1e-4: F2, 0.1: F2, 1.0: F2})),
        "partly": (S2, _sweep(A["none"], A["bn"] | {1.0: [0.60, 0.61]}, {1e-4: F2, 0.1: F2, 1.0: T2},
                              {1e-4: F2, 0.1: F2, 1.0: F2})),
        # BN clearly ahead at every lr where both trained: the mechanism is contradicted at this scale
        "no": (S2, _sweep(A["none"], A["bn"] | {1e-4: [0.45, 0.45]}, {1e-4: F2, 0.1: F2, 1.0: T2},
                          {1e-4: F2, 0.1: F2, 1.0: F2})),
        "not at this scale": (S2, _sweep(A["none"], A["bn"], {1e-4: T2, 0.1: T2, 1.0: T2}, {1e-4: F2, 0.1: F2, 1.0: F2}))},
    "ch5.relative_loss": {
        "yes": (S1, dict(none_diverges_at=[1e-3] * 3, bn_ratio=[[1, 2]] * 3, step_sizes=[1e-5, 1e-4, 1e-3, 1e-2, 1])),
        "partly": (S1, dict(none_diverges_at=[1e-3] * 3, bn_ratio=[[1, 5]] * 3, step_sizes=[1e-5, 1e-4, 1e-3, 1e-2, 1])),
        "no": (S1, dict(none_diverges_at=[None, None, 1e-3], bn_ratio=[[1, 5]] * 3, step_sizes=[1e-5, 1e-4, 1e-3, 1e-2, 1])),
        "not at this scale": (S1, dict(none_diverges_at=[1e-3] * 3, bn_ratio=[[1, 2]] * 3, step_sizes=[1e-5, 1e-4]))},
    "ch5.activations_explode": {
        "yes": (S1, dict(growth_none=1e9, growth_bn=20)), "partly": (S1, dict(growth_none=1e9, growth_bn=1e4)),
        "no": (S1, dict(growth_none=10, growth_bn=1e4)), "not at this scale": (S1, dict(growth_none=1e9, growth_bn=NAN))},
    "ch5.one_class": {
        "yes": ([0, 1, 2], dict(frac_none=[1, 1, 1], conf_none=[1, 1, 1], frac_bn=[.2, .3, .4])),
        "partly": ([0, 1, 2], dict(frac_none=[1, 1, 1], conf_none=[1, 1, 1], frac_bn=[.7, .7, .8])),
        "no": ([0, 1, 2], dict(frac_none=[.3, .3, .3], conf_none=[.5, .5, .5], frac_bn=[.7, .7, .8])),
        "not at this scale": ([0, 1, 2], dict(frac_none=[1, NAN, 1], conf_none=[1, 1, 1], frac_bn=[.2, .3, .4]))},
    "ch5.random_products": {
        "yes": (S1, dict(spread={1: 9, 3: 100, 5: 1000}, log_cond=[3, 5, 7])),
        "partly": (S1, dict(spread={1: 9, 3: 100, 5: 50}, log_cond=[3, 5, 7])),
        "no": (S1, dict(spread={1: 9, 3: 5, 5: 1}, log_cond=[3, 2, 1])),
        "not at this scale": (S1, dict(spread={1: 9, 3: 100}, log_cond=[3, 5]))},
    "ch5.sgd_noise_batch": {
        "yes": (S1, dict(slope_none=-0.95, slope_bn=-1.05)), "partly": (S1, dict(slope_none=-0.95, slope_bn=-0.5)),
        "no": (S1, dict(slope_none=-0.2, slope_bn=-0.5)), "not at this scale": (S1, dict(slope_none=NAN, slope_bn=-1.0))},
}


def test_every_registered_claim_has_a_case_for_each_of_its_outcomes():

    assert set(CASES) | set(CHAPTER_6) == set(C.CLAIMS)
    for cid, cases in CASES.items():
        if C.CLAIMS[cid].kind == "claim":
            assert set(cases) == set(C.OUTCOMES), cid
        else:  # a check holds or not; some also know when they could not have been run
            assert {"yes", "no"} <= set(cases) <= set(C.OUTCOMES), cid


@pytest.mark.parametrize("cid,outcome", [(c, o) for c, cases in {**CASES, **CHAPTER_6}.items() for o in cases])
def test_criterion_gives_each_outcome(cid, outcome):
    """Every registered criterion, chapter 6's included (its cases live in tests/test_causal.py)."""
    seeds, numbers = {**CASES, **CHAPTER_6}[cid][outcome]
    v = C.judge(cid, seeds=seeds, **numbers)
    assert v.reproduced == outcome, v.evidence
    assert v.claim_id == cid and v.criterion == C.CLAIMS[cid].criterion and v.seeds == list(seeds)
    assert v.adequate == (outcome != "not at this scale")
    assert v.evidence and "nan" not in v.evidence.split(":")[0].lower()
    if outcome == "not at this scale":
        assert v.evidence.startswith("Adequacy failed")


def test_a_single_seed_is_never_yes_for_a_trained_claim():
    seeds, numbers = CASES["ch1.fig1a_faster"]["yes"]
    one = {k: {lr: v[:1] for lr, v in d.items()} for k, d in numbers.items()}
    assert C.judge("ch1.fig1a_faster", seeds=[0], **one).reproduced == "partly"


def test_ch2_one_rule_either_indicator_counts_as_a_reduction():
    assert C.reduces_ics(0.7, -0.5) and C.reduces_ics(1.5, 0.06) and C.reduces_ics(0.5, 0.5)
    assert not C.reduces_ics(0.8, 0.05) and not C.reduces_ics(3.0, -0.3)


def test_judge_rejects_unknown_ids_missing_numbers_and_no_seeds():
    with pytest.raises(ValueError, match="claim_id"):
        C.judge("ch9.nothing", seeds=[0])
    with pytest.raises(TypeError):
        C.judge("ch5.sgd_noise_batch", seeds=[0], slope_none=-1.0)
    with pytest.raises(ValueError, match="seeds"):
        C.judge("ch5.sgd_noise_batch", seeds=[], slope_none=-1.0, slope_bn=-1.0)


def test_registry_is_complete_and_page_lists_every_claim():
    page = C.claims_markdown()
    for c in C.CLAIMS.values():
        assert c.kind in C.KINDS and c.chapter in range(1, 7)
        assert all([c.paper, c.text, c.quantity, c.comparison, c.criterion, c.adequacy, c.effect])
        assert f"`{c.id}`" in page
    for o in C.OUTCOMES:
        assert f"**{o}**" in page
    assert "not at this scale" in C.OUTCOMES


def test_checks_are_shown_as_checks_and_records_embed_the_new_fields(capsys):
    v = C.judge("ch4.theorem41", seeds=[0], **CASES["ch4.theorem41"]["yes"][1])
    w = C.judge("ch5.sgd_noise_batch", seeds=[0], slope_none=NAN, slope_bn=-1.0)
    table = verdict_table("ci", [v, w])
    assert "derivation check, not evidence: holds" in table and "not at this scale" in table
    with pytest.raises(ValueError, match="adequate"):
        Verdict("c", "p", "yes", "e", adequate=False)
    from dataclasses import asdict
    rec = json.loads(json.dumps(asdict(w)))
    assert rec["adequate"] is False and rec["claim_id"] == "ch5.sgd_noise_batch" and rec["kind"] == "claim"
    assert MIME.endswith("verdicts+json")


# ------------------------------------------------------------- chapter 4: the l_p stability margin, both ways
def _lp_gauss(change_l2: float, se: float) -> dict:
    return dict(kurtosis={"batchnorm": 0.1, "l1": 3, "l2": 3, "linf": -3}, kurtosis_se=_SE,
                mean_change={"batchnorm": 0.10, "l1": 0.5, "l2": change_l2, "linf": 0.5},
                mean_change_se={"batchnorm": se, "l1": se, "l2": se, "linf": se})


def test_ch4_lp_stability_needs_more_than_two_standard_errors():
    se = 0.01  # the margin: 2 x sqrt(2) x 0.01 = 0.028 above BN's 0.10
    beyond = C.landscape.lp_activation_cases(**_lp_gauss(0.13, se))
    within = C.landscape.lp_activation_cases(**_lp_gauss(0.12, se))
    assert beyond["less_stable"] == {"l1": True, "l2": True, "linf": True}
    assert within["less_stable"] == {"l1": True, "l2": False, "linf": True}  # larger than BN's, but within the noise
    assert C.judge("ch4.lp_less_gaussian", seeds=S2, **_lp_gauss(0.13, se)).reproduced == "yes"
    assert C.judge("ch4.lp_less_gaussian", seeds=S2, **_lp_gauss(0.12, se)).reproduced == "partly"
    assert C.STABILITY_SE == 2.0


def test_ch4_lp_stability_without_a_standard_error_is_not_judged():
    v = C.judge("ch4.lp_less_gaussian", seeds=S2, **_lp_gauss(0.5, NAN))  # one record pair: no estimate of its noise
    assert v.reproduced == "not at this scale" and "two record pairs" in v.evidence


def test_ch4_lp_case_helpers_are_the_rules():
    final = _lp(1.1, 1.3, 0.9)
    assert C.landscape.lp_train_cases(final) == {"VGG": {"l1": True, "l2": False, "linf": True},
                                                 "DLN": {"l1": True, "l2": True, "linf": True}}
    K = _lp(2.5, 1.2, 1.5)
    assert C.landscape.lp_smooth_cases(K)["VGG"] == {"l1": False, "l2": True, "linf": True}
