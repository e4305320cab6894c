"""Chapter 5's experiments: argument checks, divergence recorded as data, and the quantities behind each claim."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import cifar_root

from bnutils.experiments import init_stats as A
from bnutils.experiments import divergence as D
from bnutils.experiments import random_matrices as RM
from bnutils.experiments import resnets
from bnutils.experiments import sgd_noise as SN

needs_cifar = pytest.mark.skipif(cifar_root() is None, reason="offline CIFAR-10 not available")
SMALL = dict(depth=8, width=0.125, n_train=512)


# bad arguments of a learning-rate sweep, for chapter 5's and chapter 6's (tests/test_causal.py imports them)
SWEEP_BAD_ARGUMENTS = [
    (dict(lrs=[]), "lrs"),
    (dict(lrs=[-0.1]), "lrs"),
    (dict(lrs=[0.1], depth=10), "depth"),
    (dict(lrs=[0.1], width=0), "width"),
    (dict(lrs=[0.1], seeds=[0, 0]), "seeds"),
    (dict(lrs=[0.1], steps=0), "steps"),
    (dict(lrs=[0.1], steps=2, n_evals=4), "n_evals"),
    (dict(lrs=[0.1], device="tpu"), "device"),
]


def rejects(sweep, kwargs: dict, name: str) -> None:
    """`sweep` (an lr_sweep) called with `kwargs` (its `lrs` among them; 4 steps unless given) raises a ValueError
    naming `name`."""
    kwargs = dict(kwargs)
    lrs = kwargs.pop("lrs")
    with pytest.raises(ValueError, match=name):
        sweep(lrs, steps=kwargs.pop("steps", 4), **kwargs)


@pytest.mark.parametrize("kwargs, name", SWEEP_BAD_ARGUMENTS + [(dict(lrs=[0.1], norms=["layernorm"]), "norm"),
                                                                (dict(lrs=[0.1], norms=["none", "none"]), "norms")])
def test_lr_sweep_rejects_bad_arguments(kwargs, name, cifar_cache):
    rejects(D.lr_sweep, kwargs, name)


def test_other_functions_reject_bad_arguments():
    with pytest.raises(ValueError, match="step_sizes"):
        D.relative_loss("none", [], **SMALL)
    with pytest.raises(ValueError, match="step_sizes"):
        D.relative_loss("none", [0.0], **SMALL)
    with pytest.raises(ValueError, match="norm"):
        A.channel_stats_vs_depth("group", **SMALL)
    with pytest.raises(ValueError, match="lr"):
        A.diverging_update("none", math.inf, **SMALL)
    with pytest.raises(ValueError, match="batch_sizes"):
        SN.sgd_noise("none", [4096], pool=1024, **SMALL)
    with pytest.raises(ValueError, match="threshold"):
        D.divergence_step_size({"step_sizes": [1.0], "ratio": [[1.0]]}, threshold=-1)
    with pytest.raises(ValueError, match="layer"):
        A.block_index(0, 110)


@needs_cifar
def test_forced_divergence_is_recorded_and_cached(cifar_cache, cifar_env):
    """No BN at a huge lr diverges: recorded as data (no accuracy), summarised, and served from the cache."""
    kw = dict(norms=["none", "batchnorm"], seeds=[0], steps=6, n_test=200, n_evals=1, **SMALL)
    runs = D.lr_sweep([1e-3, 1e3], **kw)
    by = {(r["norm"], r["lr"]): r for r in runs}
    bad = by[("none", 1e3)]
    assert bad["diverged"] and bad["diverged_at"] is not None and math.isnan(bad["final_test_acc"])
    assert not by[("none", 1e-3)]["diverged"] and 0 <= by[("none", 1e-3)]["final_test_acc"] <= 1
    s = D.summarize_sweep(runs)
    assert s["none"]["first_diverging_lr"] == 1e3 and s["none"]["max_stable_lr"] == 1e-3
    assert s["none"]["by_lr"][1e3] == {"acc": [], "diverged": 1, "seeds": 1}
    again = D.lr_sweep([1e-3, 1e3], **kw)
    assert [r["seconds"] for r in again] == [r["seconds"] for r in runs]  # cached, not re-run


@needs_cifar
def test_relative_loss_without_bn_explodes_and_with_bn_does_not(cifar_cache, cifar_env):
    sizes = [1e-5, 1e-2, 1.0, 100.0]
    kw = dict(n_batches=2, depth=20, width=0.125, n_train=512)
    none = D.relative_loss("none", sizes, **kw)
    bn = D.relative_loss("batchnorm", sizes, **kw)
    assert np.allclose(np.asarray(none["ratio"])[:, 0], 1, atol=0.05)  # a tiny step barely changes the loss
    assert all(a is not None for a in D.divergence_step_size(none))
    assert D.divergence_step_size(bn) == [None, None]


def test_divergence_step_size_picks_the_first_crossing():
    r = {"step_sizes": [0.1, 1.0, 10.0], "ratio": [[1.0, 2e3, math.inf], [0.5, 1.0, 2.0]]}
    assert D.divergence_step_size(r) == [1.0, None]


@needs_cifar
def test_activations_grow_with_depth_only_without_bn(cifar_env):
    kw = dict(depth=32, width=0.125, n_batches=1, n_train=512)
    none, bn = A.channel_stats_vs_depth("none", **kw), A.channel_stats_vs_depth("batchnorm", **kw)
    assert none["layer"] == bn["layer"] and len(none["layer"]) == 1 + (32 - 2) // 2
    grow = lambda r: r["var"][-1][1] / r["var"][0][1]
    assert grow(none) > 30 * grow(bn)
    upd = A.diverging_update("none", 1.0, n_fractions=3, **{k: v for k, v in kw.items() if k != "n_batches"})
    assert len(upd["mean"]["80"]) == 3 and upd["fractions"] == [0.0, 0.5, 1.0]


@needs_cifar
def test_final_layer_gradient_rows_sum_to_zero(cifar_env):
    r = A.final_layer_gradient("none", seeds=[0, 1], n_show=8, **SMALL)
    g = np.asarray(r["grad"])
    assert g.shape == (8, 10) and np.allclose(g.sum(1), 0, atol=1e-9)  # softmax - one-hot
    assert len(r["fraction_top_class"]) == 2 and all(0.1 <= f <= 1 for f in r["fraction_top_class"])


def test_random_products_spread_and_condition_numbers_grow():
    sv = RM.random_product_singular_values(n=50, factors=(1, 3), seed=0)
    assert len(sv[1]) == 50 and sv[1] == sorted(sv[1], reverse=True)
    assert sv[3][0] / sv[3][-1] > sv[1][0] / sv[1][-1]
    c = RM.condition_vs_depth(n=50, max_factors=4, seeds=[0, 1])
    assert np.all(np.diff(np.log(np.asarray(c["cond"])).mean(0)) > 0)
    with pytest.raises(ValueError, match="n"):
        RM.random_product_singular_values(n=1)


def test_block_index_scales_bjorck_layers():
    assert [A.block_index(L, 110) for L in A.BJORCK_LAYERS] == [4, 22, 40]
    assert all(0 <= A.block_index(L, 20) <= 9 for L in A.BJORCK_LAYERS)


@needs_cifar
def test_sgd_noise_falls_with_batch_size(cifar_env):
    r = SN.sgd_noise("batchnorm", [8, 64], pool=512, repeats=6, **SMALL)
    assert len(r["sq_dev"]) == 2 and all(len(v) == 6 for v in r["sq_dev"])
    assert -1.5 < SN.noise_slope(r) < -0.5  # 1/|B| law: -1 (sampling without replacement steepens it slightly)


def _run(norm: str, lr: float, seed: int, diverged: bool, acc: float = 0.5) -> dict:
    return {"norm": norm, "lr": lr, "seed": seed, "diverged": diverged, "final_test_acc": math.nan if diverged else acc}


def test_sweep_table_and_where_a_network_diverges():
    runs = [_run("none", lr, s, d) for lr, s, d in [(0.1, 0, False), (0.1, 1, False), (1.0, 0, True), (1.0, 1, False),
                                                    (3.0, 0, True), (3.0, 1, True), (10.0, 0, True), (10.0, 1, True)]]
    t = D.sweep_table(runs, ["none"], [0.1, 1.0, 3.0, 10.0], [0, 1])
    assert t["diverged"]["none"][1.0] == [True, False] and math.isnan(t["acc"]["none"][1.0][0])
    assert t["acc"]["none"][0.1] == [0.5, 0.5]
    assert D.diverging_from(t, "none") == {"some": 1.0, "every": 3.0}
    t["diverged"]["none"][3.0] = [True, False]  # every seed diverges only at the largest lr
    assert D.diverging_from(t, "none") == {"some": 1.0, "every": 10.0}
    calm = D.sweep_table([_run("batchnorm", 0.1, 0, False)], ["batchnorm"], [0.1], [0])
    assert D.diverging_from(calm, "batchnorm") == {"some": None, "every": None}
    with pytest.raises(ValueError, match="variant"):
        D.diverging_from(calm, "none")
    with pytest.raises(ValueError, match="seed=1"):
        D.sweep_table(runs[:1], ["none"], [0.1], [0, 1])
    with pytest.raises(ValueError, match="runs"):
        D.sweep_table([], ["none"], [0.1], [0])


@pytest.mark.parametrize("variant", resnets.NETWORKS)
def test_one_function_builds_every_network(variant):
    net = resnets.network(variant, 8, 0.125, seed=3)
    again = resnets.network(variant, 8, 0.125, seed=3)
    assert net.training and all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), again.state_dict().values()))


@pytest.mark.parametrize("args, name", [(("layernorm", 8, 0.25), "variant"), (("none", 10, 0.25), "depth"),
                                        (("none", 8, 0.0), "width"), (("none", 8, 0.25, "tpu"), "device")])
def test_check_network_names_the_bad_argument(args, name):
    with pytest.raises(ValueError, match=name):
        resnets.check_network(*args)
    with pytest.raises(ValueError, match="norm"):  # chapter 5 allows BN and no BN only, named `norm`
        D.check_net("group", 8, 0.25)


def test_block_stats_has_one_entry_per_block_output():
    data = type("Toy", (), {})()
    g = torch.Generator().manual_seed(0)
    from bnutils.data import Split
    data.train = Split(torch.randn(16, 3, 32, 32, generator=g), torch.arange(16) % 10)
    net = resnets.network("none", 14, 0.125, seed=0)
    r = A.block_stats(net, data, n_batches=2, batch_size=8)
    assert r["layer"] == [1, 3, 5, 7, 9, 11, 13]
    assert all(q[0] <= q[1] <= q[2] for q in r["var"]) and all(v > 0 for v in r["mean_var"])
