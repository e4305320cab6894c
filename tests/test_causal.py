"""Chapter 6 (BN's benefits without BN): the SkipInit, Fixup and batch-free networks follow their papers' rules,
the experiments check their arguments and record divergence as data, every argument of a cached run is in its
key, the figures draw, and each registered criterion gives each of its outcomes."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pytest
import torch
import torch.nn as nn
from conftest import cifar_root
from test_divergence import SWEEP_BAD_ARGUMENTS, rejects

from bnutils import plots
from bnutils import claims as C
from bnutils.experiments import causal as exp
from bnutils.experiments import divergence
from bnutils.figures import causal as figs
from bnutils.models import (BasicBlock, FixupResNet, ResNet, ScalarBias, SkipInitResNet, weight_layers,
                            fixup_rescale)
from bnutils.norms import BATCH_FREE_KINDS, NORM_KINDS, group_count, make_norm

needs_cifar = pytest.mark.skipif(cifar_root() is None, reason="offline CIFAR-10 not available")
NAN = math.nan


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ---------------------------------------------------------------- the models

def _sgd_step(model: nn.Module, lr: float = 0.1) -> None:
    torch.manual_seed(1)
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


def test_skipinit_branch_scalar_starts_at_zero_and_is_trained():
    torch.manual_seed(0)
    net = SkipInitResNet(depth=14, width=0.25)
    scales = net.branch_scales
    assert len(scales) == 6 and all(s.requires_grad and s.shape == () and s.item() == 0.0 for s in scales)
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in net.modules())  # no normalization
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():  # at initialisation every block is its shortcut
        h = net.stem(x)
        for b in net.layers:
            assert torch.equal(b(h), b.act(b.shortcut(h)))
            h = b(h)
    _sgd_step(net)
    assert all(s.item() != 0.0 for s in net.branch_scales)


@pytest.mark.parametrize("depth", [8, 20, 56])
def test_fixup_follows_the_papers_initialisation(depth):
    torch.manual_seed(0)
    net = FixupResNet(depth=depth, width=1.0)
    L = (depth - 2) // 2
    assert len(net.layers) == L and net.rescale == pytest.approx(L ** -0.5) == fixup_rescale(L)
    # rule 1: the last layer of every branch and the classifier start at zero
    assert all(torch.count_nonzero(b.conv2.weight) == 0 for b in net.layers)
    assert torch.count_nonzero(net.head.weight) == 0 and torch.count_nonzero(net.head.bias) == 0
    # rule 2: the other branch layers are Kaiming (fan-in) scaled by L^(-1/(2m-2)); the stem is plain Kaiming
    w = torch.cat([(b.conv1.weight / math.sqrt(2 / b.conv1.weight[0].numel())).flatten() for b in net.layers])
    assert w.detach().std().item() == pytest.approx(net.rescale, rel=0.05)
    stem = net.stem.layer.weight
    assert stem.detach().std().item() == pytest.approx(math.sqrt(2 / stem[0].numel()), rel=0.25)
    # rule 3: scalar biases (init 0) before each conv, the activation and the classifier; a scalar multiplier (init 1)
    for b in net.layers:
        for name in ("bias1a", "bias1b", "bias2a", "bias2b"):
            assert isinstance(getattr(b, name), ScalarBias) and getattr(b, name).bias.item() == 0.0
        assert b.scale.shape == () and b.scale.item() == 1.0
        assert b.conv1.bias is None and b.conv2.bias is None
    assert isinstance(net.stem.norm, ScalarBias) and isinstance(net.head_bias, ScalarBias)
    n_scalars = sum(1 for p in net.parameters() if p.dim() == 0)
    assert n_scalars == 5 * L + 2
    assert not any(isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) for m in net.modules())


def test_fixup_rescale_factor_for_other_branch_lengths():
    assert fixup_rescale(16, m=3) == pytest.approx(16 ** -0.25)
    with pytest.raises(ValueError, match="m"):
        fixup_rescale(16, m=1)
    with pytest.raises(ValueError, match="n_branches"):
        fixup_rescale(0)
    with pytest.raises(ValueError, match="depth"):
        FixupResNet(depth=10)


def test_fixup_trains_its_zero_layers_after_a_step():
    torch.manual_seed(0)
    net = FixupResNet(depth=8, width=0.5)
    _sgd_step(net)
    assert torch.count_nonzero(net.head.weight) > 0
    _sgd_step(net)  # the second step reaches the branches' last layers through the now non-zero classifier
    assert any(torch.count_nonzero(b.conv2.weight) > 0 for b in net.layers)


@pytest.mark.parametrize("kind", BATCH_FREE_KINDS)
def test_batch_free_norm_does_not_depend_on_the_batch(kind):
    torch.manual_seed(0)
    net = ResNet(depth=8, width=0.5, norm=kind).double().train()
    assert any(isinstance(m, nn.GroupNorm) for m in net.modules())
    x = torch.randn(16, 3, 32, 32, dtype=torch.float64)
    alone, batch = net(x[:1]), net(x)[:1]
    assert torch.allclose(alone, batch, atol=1e-10, rtol=0)
    other = torch.cat([x[:1], 5 * torch.randn(7, 3, 32, 32, dtype=torch.float64) + 3])
    assert torch.allclose(net(other)[:1], alone, atol=1e-10, rtol=0)
    net.eval()
    assert torch.allclose(net(x[:1]), alone, atol=1e-10, rtol=0)  # the same in eval mode
    assert all(l.bias is None for l in weight_layers(net)[:-1])  # it re-centres: no conv bias


def test_batch_independence_measure_separates_bn_from_group():
    assert exp.batch_independence("group") < 1e-10
    assert exp.batch_independence("none") < 1e-10 and exp.batch_independence("fixup", batch_size=4) < 1e-10
    assert exp.batch_independence("batchnorm") > 1e-3


@pytest.mark.parametrize("c,groups", [(4, 2), (8, 4), (16, 8), (64, 32), (128, 32), (5, 1), (6, 3), (1, 1)])
def test_group_count(c, groups):
    assert group_count(c) == groups
    assert make_norm("group", c).num_groups == groups if c > 1 else True


def test_group_and_layer_kinds_and_their_keywords():
    assert {"group", "layer"} <= set(NORM_KINDS)
    assert make_norm("group", 16, num_groups=4).num_groups == 4
    assert make_norm("layer", 16).num_groups == 1
    with pytest.raises(ValueError, match="num_groups"):
        make_norm("group", 16, num_groups=0)
    with pytest.raises(ValueError, match="num_groups"):
        make_norm("layer", 16, num_groups=2)
    with pytest.raises(ValueError, match="momentum"):
        make_norm("group", 16, momentum=0.1)


def test_resnet_default_block_is_unchanged():
    torch.manual_seed(0)
    a = ResNet(depth=8, width=0.5)
    torch.manual_seed(0)
    b = ResNet(depth=8, width=0.5, block=BasicBlock)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    assert type(a.layers[0]) is BasicBlock
    with pytest.raises(ValueError, match="block"):
        ResNet(depth=8, block=nn.Linear)


@pytest.mark.parametrize("variant", exp.VARIANTS)
def test_structure_holds_at_every_depth(variant):
    for depth in (8, 20):
        s = exp.structure(variant, depth=depth, width=0.25)
        assert s["n_branches"] == (depth - 2) // 2
        if variant in exp.FIXES:
            assert s["branch_scales"] == [0.0 if variant == "skipinit" else 1.0] * s["n_branches"]
            assert s["classifier_zero"] is (variant == "fixup") and s["last_layer_zero"] is (variant == "fixup")
        if variant == "fixup":
            assert s["rescale"] == pytest.approx(s["n_branches"] ** -0.5)
            assert s["first_layer_std_ratio"] == pytest.approx(s["rescale"], rel=0.2)
            assert s["scalar_biases"] == 4 * s["n_branches"] + 2


# ---------------------------------------------------------------- the experiments

@pytest.mark.parametrize("kwargs, name", SWEEP_BAD_ARGUMENTS + [
    (dict(lrs=[0.1], variants=["batchnrom"]), "variant"),
    (dict(lrs=[0.1], variants=["fixup", "fixup"]), "variants"),
])
def test_lr_sweep_rejects_bad_arguments(kwargs, name, cifar_cache):
    rejects(exp.lr_sweep, kwargs, name)


def test_other_functions_reject_bad_arguments():
    small = dict(depth=8, width=0.125, n_train=512)
    with pytest.raises(ValueError, match="step_sizes"):
        exp.relative_loss("fixup", [], **small)
    with pytest.raises(ValueError, match="step_sizes"):
        exp.variant_relative_loss("skipinit", [0.0], **small)
    with pytest.raises(ValueError, match="variant"):
        exp.relative_loss("l1", [0.1], **small)
    with pytest.raises(ValueError, match="variant"):
        exp.stats_vs_depth("noisy", **small)
    with pytest.raises(ValueError, match="depth"):
        exp.stats_vs_depth("fixup", depth=9)
    with pytest.raises(ValueError, match="batch_size"):
        exp.batch_independence("group", batch_size=1)
    with pytest.raises(ValueError, match="chance"):
        exp.summarize({"acc": {}, "diverged": {}}, chance=2.0)
    with pytest.raises(ValueError, match="runs"):
        divergence.sweep_table([], ["fixup"], [0.1], [0])


def _fake_runs():
    runs = []
    for v in exp.VARIANTS:
        for lr in (1e-3, 1.0):
            for s in (0, 1):
                d = v == "none" and lr == 1.0
                runs.append(dict(variant=v, lr=lr, seed=s, diverged=d, diverged_at=3 if d else None,
                                 final_test_acc=NAN if d else 0.2 + 0.1 * (lr > 0.01) + 0.01 * s,
                                 loss=[2.3, 2.2, 2.0, 1e9 if d else 1.9]))
    return runs


def test_sweep_table_and_summary():
    t = divergence.sweep_table(_fake_runs(), exp.VARIANTS, [1e-3, 1.0], [0, 1])
    assert t["diverged"]["none"][1.0] == [True, True] and math.isnan(t["acc"]["none"][1.0][0])
    assert t["acc"]["fixup"][1.0] == pytest.approx([0.3, 0.31])
    s = exp.summarize(t)
    assert s["none"]["best_lr"] == 1e-3 and s["none"]["first_diverging_lr"] == 1.0
    assert s["fixup"]["best_lr"] == 1.0 and s["fixup"]["max_trainable_lr"] == 1.0
    with pytest.raises(ValueError, match="seed"):
        divergence.sweep_table(_fake_runs(), exp.VARIANTS, [1e-3], [0, 5])


def test_growth_and_divergence_step_helpers():
    r = {"mean_var": [2.0, 4.0, 8.0]}
    assert exp.growth(r) == 4.0 and exp.growth_per_block(r) == pytest.approx(2.0)
    rl = {"step_sizes": [0.01, 0.1, 1.0], "ratio": [[1, 2e3, 1e9], [1, 1, 5e3], [1, 1, 1]]}
    assert divergence.divergence_step_size(rl) == [0.1, 1.0, None]
    assert exp.median_divergence_step(rl) == pytest.approx(0.55)  # 2 of 3 mini-batches: the median of 0.1 and 1
    assert exp.median_divergence_step({"step_sizes": [1.0], "ratio": [[1], [1], [5e3]]}) is None


@needs_cifar
def test_forced_divergence_is_recorded_and_cached(cifar_cache, cifar_env):
    """At a huge lr the networks diverge: recorded as data (no accuracy), summarised, and served from the cache;
    BN and no-BN runs are chapter 5's own."""
    kw = dict(variants=["none", "fixup", "skipinit"], seeds=[0], steps=6, n_test=200, n_evals=1, depth=8,
              width=0.125, n_train=512)
    runs = exp.lr_sweep([1e-3, 1e4], **kw)
    by = {(r["variant"], r["lr"]): r for r in runs}
    assert [r["variant"] for r in runs] == ["none", "none", "fixup", "fixup", "skipinit", "skipinit"]
    for v in ("none", "fixup", "skipinit"):
        bad = by[(v, 1e4)]
        assert bad["diverged"] and bad["diverged_at"] is not None and math.isnan(bad["final_test_acc"])
        assert not by[(v, 1e-3)]["diverged"] and 0 <= by[(v, 1e-3)]["final_test_acc"] <= 1
    t = divergence.sweep_table(runs, kw["variants"], [1e-3, 1e4], [0])
    assert exp.summarize(t)["fixup"]["first_diverging_lr"] == 1e4
    assert divergence.sweep_run.lookup(norm="none", lr=1e4, seed=0, depth=8, width=0.125, steps=6, batch_size=128,
                                       n_train=512, n_test=200, eval_every=6) is not None
    again = exp.lr_sweep([1e-3, 1e4], **kw)
    assert [r["seconds"] for r in again] == [r["seconds"] for r in runs]  # served from the cache


@needs_cifar
def test_activations_do_not_grow_for_the_fixes_at_init(cifar_env):
    kw = dict(depth=32, width=0.25, n_batches=1, batch_size=32, n_train=512)
    g = {v: exp.growth(exp.stats_vs_depth(v, **kw)) for v in ("none", "skipinit", "fixup")}
    assert g["skipinit"] < 1.5 and g["fixup"] < 1.5 and g["none"] > 1e3
    r = exp.stats_vs_depth("fixup", **kw)
    assert len(r["layer"]) == len(r["mean_var"]) == 1 + 15 and all(v > 0 for v in r["mean_var"])


@needs_cifar
def test_relative_loss_of_a_new_variant(cifar_cache, cifar_env):
    r = exp.relative_loss("skipinit", [1e-3, 1.0], n_batches=2, depth=8, width=0.125, n_train=512)
    assert r["variant"] == "skipinit" and len(r["ratio"]) == 2 and len(r["ratio"][0]) == 2
    assert exp.relative_loss("none", [1e-3], n_batches=1, depth=8, width=0.125, n_train=512)["variant"] == "none"


# ---------------------------------------------------------------- the chapter's settings

def test_scales_are_chapter_5s_sweep_settings():
    from bnutils.profiles import PROFILES
    for name in ("ci", "cpu", "gpu"):
        for k in ("steps", "n_seeds", "n_evals", "sweep_depth", "width", "probe_depth", "deep_depth"):
            assert exp.SCALES[name][k] == divergence.SCALES[name][k]
        assert set(exp.SCALES[name]["lrs"]) <= set(divergence.SCALES[name]["lrs"])  # BN and no BN: chapter 5's runs
        assert max(exp.SCALES[name]["lrs"]) == max(divergence.SCALES[name]["lrs"])
    assert exp.SCALES["cpu"]["n_seeds"] >= 2 and exp.SCALES["cpu"]["n_growth_seeds"] >= 2
    items = exp.workload(exp.SCALES["gpu"], PROFILES["gpu"])
    assert items and all(i["passes"] > 0 for i in items)


# ---------------------------------------------------------------- the figures

def _stats(v, growth):
    layers = [1, 3, 5, 7]
    mv = [1.0 * growth ** (i / 3) for i in range(4)]
    return {"variant": v, "layer": layers, "mean_var": mv, "mean": [[0.1, 0.2, 0.3]] * 4, "var": [[m] * 3 for m in mv]}


def test_figures_follow_the_convention_and_draw():
    public = [n for n, v in vars(figs).items() if callable(v) and not n.startswith("_")
              and getattr(v, "__module__", None) == figs.__name__]
    assert public and all(n.startswith(("plot_", "draw_")) for n in public), public
    runs = _fake_runs()
    table = divergence.sweep_table(runs, exp.VARIANTS, [1e-3, 1.0], [0, 1])
    fig, ax = plt.subplots()
    figs.draw_accuracy_vs_lr(ax, table, current=1.0)
    assert ax.get_xscale() == "log" and any(l.get_marker() == "x" for l in ax.lines)  # diverged drawn
    assert isinstance(figs.plot_accuracy_vs_lr(table, title="t"), matplotlib.figure.Figure)
    fig, ax = plt.subplots()
    figs.draw_curves(ax, runs, 1.0)
    assert "no BN" in ax.get_title() or "standard" in ax.get_title()
    stats = {v: [_stats(v, 1e6 if v == "none" else 1.0), _stats(v, 2.0)] for v in exp.VARIANTS}
    f = figs.plot_growth(stats, title="growth")
    assert f.axes[0].get_yscale() == "log" and f._suptitle.get_text() == "growth"
    rel = {v: {"step_sizes": [1e-3, 1e-1, 1.0], "ratio": [[1.0, 2.0, math.inf], [1.0, 1.5, 1e4]]} for v in exp.VARIANTS}
    f = figs.plot_relative_loss(rel)
    assert f.axes[0].get_xscale() == "log"
    html = plots.frames_slider(lambda fig, lr: figs.draw_explorer_frame(fig, lr, runs, table), [1e-3, 1.0])
    assert "<script" in html and "font-awesome" not in html


# ---------------------------------------------------------------- the claims: each criterion, each outcome

def _tab(none, bn, skip, fix, group=None):
    """{variant: {lr: [(acc or None for diverged), per seed]}} -> the claims' acc / diverged numbers."""
    t = {"none": none, "batchnorm": bn, "skipinit": skip, "fixup": fix, "group": group or bn}
    acc = {v: {lr: [NAN if a is None else a for a in s] for lr, s in d.items()} for v, d in t.items()}
    div = {v: {lr: [a is None for a in s] for lr, s in d.items()} for v, d in t.items()}
    return dict(acc=acc, diverged=div)


X = None  # diverged
NONE = {1e-3: [0.30, 0.31], 0.1: [X, X], 1.0: [X, X]}
BN = {1e-3: [0.30, 0.31], 0.1: [0.50, 0.51], 1.0: [0.45, 0.46]}
GOOD = {1e-3: [0.30, 0.31], 0.1: [0.49, 0.50], 1.0: [0.40, 0.41]}
HALF = {1e-3: [0.30, 0.31], 0.1: [0.49, 0.50], 1.0: [X, X]}
BAD = {1e-3: [0.30, 0.31], 0.1: [X, X], 1.0: [X, X]}
S2, S1 = [0, 1], [0]

CASES = {
    "ch6.fixes_no_growth": {
        "yes": (S2, dict(growth={"none": [1e9, 1e8], "skipinit": [0.25, 0.26], "fixup": [0.2, 0.3]})),
        "no": (S2, dict(growth={"none": [1e9, 1e8], "skipinit": [500.0, 800.0], "fixup": [0.2, 300.0]})),
        "not at this scale": (S2, dict(growth={"none": [50.0, 1e8], "skipinit": [0.25, 0.26], "fixup": [0.2, 0.3]}))},
    "ch6.fixes_tolerate_large_lr": {
        "yes": (S2, _tab(NONE, BN, GOOD, GOOD)),
        "partly": (S2, _tab(NONE, BN, HALF, HALF)),  # they train at 0.1 (the smallest large lr), diverge at 1.0
        "no": (S2, _tab(NONE, BN, BAD, HALF)),  # 2 of 8 cases
        "not at this scale": (S2, _tab({1e-3: [0.3, 0.3], 1.0: [0.3, X]}, {1e-3: [0.3, 0.3], 1.0: [0.4, 0.4]},
                                       {1e-3: [0.3, 0.3], 1.0: [0.4, 0.4]}, {1e-3: [0.3, 0.3], 1.0: [0.4, 0.4]}))},
    "ch6.fixes_close_to_bn": {
        "yes": (S2, _tab(NONE, BN, GOOD, GOOD)),
        "partly": (S2, _tab(NONE, BN, {1e-3: [0.30, 0.31], 0.1: [0.49, 0.43]}, GOOD)),  # 3 of 4 pairs within 3 points
        "no": (S2, _tab(NONE, BN, {1e-3: [0.30, 0.31], 0.1: [X, X]}, {1e-3: [0.30, 0.31], 0.1: [X, X]})),
        "not at this scale": (S2, _tab(NONE, {1e-3: [0.10, 0.11], 0.1: [0.12, 0.11]}, GOOD, GOOD))},
    "ch6.batch_free_lr_tolerance": {
        "yes": (S2, _tab(NONE, BN, GOOD, GOOD, group=GOOD)),
        "partly": (S2, _tab(NONE, BN, GOOD, GOOD, group=HALF)),  # 0.1 < BN's 1.0 in both seeds, but above no BN's
        "no": (S2, _tab(NONE, BN, GOOD, GOOD, group=BAD)),
        "not at this scale": (S2, _tab({1e-3: [0.3, 0.3], 1.0: [0.3, X]}, BN, GOOD, GOOD))},
}


def test_every_ch6_claim_has_a_case_for_each_of_its_outcomes():
    ours = {cid for cid in C.CLAIMS if cid.startswith("ch6.")}
    assert set(CASES) == ours and len(ours) == 4
    for cid, cases in CASES.items():
        want = set(C.OUTCOMES) if C.CLAIMS[cid].kind == "claim" else {"yes", "no", "not at this scale"}
        assert set(cases) == want, cid
        assert C.CLAIMS[cid].chapter == 6


@pytest.mark.parametrize("cid", ["ch6.fixes_tolerate_large_lr", "ch6.fixes_close_to_bn", "ch6.batch_free_lr_tolerance"])
def test_one_seed_is_never_yes(cid):
    _, numbers = CASES[cid]["yes"]
    one = {k: {v: {lr: s[:1] for lr, s in d.items()} for v, d in numbers[k].items()} for k in ("acc", "diverged")}
    assert C.judge(cid, seeds=[0], **one).reproduced == "partly"


def test_close_within_the_seed_noise_is_partly():
    """A mean gap beyond 3 points but within 2 x the seed spread: 'partly', never 'yes'."""
    noisy = {1e-3: [0.30, 0.31], 0.1: [0.40, 0.52]}  # spread 12 points
    v = C.judge("ch6.fixes_close_to_bn", seeds=S2, **_tab(NONE, BN, noisy, noisy))
    assert v.reproduced == "partly" and v.spread == pytest.approx(0.12)


# ---------------------------------------------------------------- the generated text

def test_large_lr_training_counts_the_runs_that_trained_where_no_bn_diverged():
    runs = _fake_runs()
    table = divergence.sweep_table(runs, exp.VARIANTS, [1e-3, 1.0], [0, 1])
    out = exp.large_lr_training(table, chance=0.15)
    every = [lr for lr in (1e-3, 1.0) if all(table["diverged"]["none"][lr])]
    assert out["large"] == every and out["n_cases"] == 2 * len(every)
    assert set(out["trained"]) == set(exp.VARIANTS) - {"none"}
    assert all(0 <= n <= out["n_cases"] for n in out["trained"].values())
    with pytest.raises(ValueError, match="chance"):
        exp.large_lr_training(table, chance=2.0)


def test_divergence_onset_says_what_the_sweep_shows():
    from bnutils import report

    assert report.divergence.onset("no BN", {"some": 1.0, "every": 1.0}) == "no BN diverges in every seed from η = 1"
    assert report.divergence.onset("no BN", {"some": 0.3, "every": 1.0}) == (
        "no BN diverges in some seeds from η = 0.3, in every seed from η = 1")
    assert report.divergence.onset("no BN", {"some": 0.3, "every": None}) == "no BN diverges in some seeds from η = 0.3"
    assert "never" in report.divergence.onset("BN", {"some": None, "every": None})


@pytest.mark.parametrize("tolerate, free, words", [("yes", "yes", "survives the test"), ("partly", "no", "batch-free"),
                                                   ("not at this scale", "no", "could not show"),
                                                   ("no", "no", "did not bring back")])
def test_causal_findings_follow_the_verdicts(tolerate, free, words):
    from bnutils import report

    growth = {"none": [1e6, 3e6], "skipinit": [1.0, 1.0], "fixup": [1.2, 1.1], "batchnorm": [5.0], "group": [6.0]}
    summary = {v: {"best_acc": 0.4, "max_trainable_lr": 0.1 if v != "none" else None} for v in exp.VARIANTS}
    outcomes = {"fixes_tolerate_large_lr": tolerate, "batch_free_lr_tolerance": free, "fixes_close_to_bn": "yes"}
    large = {"large": [1.0], "trained": {"skipinit": 2, "fixup": 1, "group": 2, "batchnorm": 2}, "n_cases": 2}
    text = report.causal.findings(growth, large, summary, outcomes, 300)
    assert words in text and "2e+06x" in text and "from η = 1." in text and "after the same 300 steps" in text
    assert "no learning rate of the grid" in text  # no BN's largest trainable rate
    none = report.causal.findings(growth, {"large": [], "trained": {}, "n_cases": 0}, summary, outcomes, 300)
    assert "no learning rate of the grid diverged in every seed" in none
