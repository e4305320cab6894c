"""Chapter 5's experiments: argument checks, divergence recorded as data, and the quantities behind each claim."""
from __future__ import annotations

import math

from pathlib import Path

import numpy as np
import pytest
from conftest import cifar_root

from bnutils import cache
from bnutils.experiments import divergence as D

needs_cifar = pytest.mark.skipif(cifar_root() is None, reason="offline CIFAR-10 not available")
SMALL = dict(depth=8, width=0.125, n_train=512)


@pytest.fixture
def cifar_env(monkeypatch):
    """Point BNBOOK_DATA at the offline CIFAR-10 copy."""
    root = cifar_root()
    if root is not None:
        monkeypatch.setenv("BNBOOK_DATA", str(root))


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private BNBOOK_CACHE (run results) that still sees the decoded CIFAR-10 arrays of the real one."""
    real = cache.cache_dir()
    monkeypatch.setenv("BNBOOK_CACHE", str(tmp_path / "cache"))
    (tmp_path / "cache").mkdir()
    for f in Path(real).glob("*.npz"):
        (tmp_path / "cache" / f.name).symlink_to(f)
    return tmp_path / "cache"


@pytest.mark.parametrize("kwargs, name", [
    (dict(lrs=[]), "lrs"),
    (dict(lrs=[-0.1]), "lrs"),
    (dict(lrs=[0.1], norms=["layernorm"]), "norm"),
    (dict(lrs=[0.1], depth=10), "depth"),
    (dict(lrs=[0.1], seeds=[0, 0]), "seeds"),
    (dict(lrs=[0.1], steps=0), "steps"),
    (dict(lrs=[0.1], steps=2, n_evals=4), "n_evals"),
    (dict(lrs=[0.1], device="tpu"), "device"),
])
def test_lr_sweep_rejects_bad_arguments(kwargs, name, tmp_cache):
    lrs = kwargs.pop("lrs")
    with pytest.raises(ValueError, match=name):
        D.lr_sweep(lrs, steps=kwargs.pop("steps", 4), **kwargs)


def test_other_functions_reject_bad_arguments():
    with pytest.raises(ValueError, match="step_sizes"):
        D.relative_loss("none", [], **SMALL)
    with pytest.raises(ValueError, match="step_sizes"):
        D.relative_loss("none", [0.0], **SMALL)
    with pytest.raises(ValueError, match="norm"):
        D.channel_stats_vs_depth("group", **SMALL)
    with pytest.raises(ValueError, match="lr"):
        D.diverging_update("none", math.inf, **SMALL)
    with pytest.raises(ValueError, match="batch_sizes"):
        D.sgd_noise("none", [4096], pool=1024, **SMALL)
    with pytest.raises(ValueError, match="threshold"):
        D.divergence_step_size({"step_sizes": [1.0], "ratio": [[1.0]]}, threshold=-1)
    with pytest.raises(ValueError, match="layer"):
        D.block_index(0, 110)


@needs_cifar
def test_forced_divergence_is_recorded_and_cached(tmp_cache, cifar_env):
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
def test_relative_loss_without_bn_explodes_and_with_bn_does_not(tmp_cache, cifar_env):
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
    none, bn = D.channel_stats_vs_depth("none", **kw), D.channel_stats_vs_depth("batchnorm", **kw)
    assert none["layer"] == bn["layer"] and len(none["layer"]) == 1 + (32 - 2) // 2
    grow = lambda r: r["var"][-1][1] / r["var"][0][1]
    assert grow(none) > 30 * grow(bn)
    upd = D.diverging_update("none", 1.0, n_fractions=3, **{k: v for k, v in kw.items() if k != "n_batches"})
    assert len(upd["mean"]["80"]) == 3 and upd["fractions"] == [0.0, 0.5, 1.0]


@needs_cifar
def test_final_layer_gradient_rows_sum_to_zero(cifar_env):
    r = D.final_layer_gradient("none", seeds=[0, 1], n_show=8, **SMALL)
    g = np.asarray(r["grad"])
    assert g.shape == (8, 10) and np.allclose(g.sum(1), 0, atol=1e-9)  # softmax - one-hot
    assert len(r["fraction_top_class"]) == 2 and all(0.1 <= f <= 1 for f in r["fraction_top_class"])


def test_random_products_spread_and_condition_numbers_grow():
    sv = D.random_product_singular_values(n=50, factors=(1, 3), seed=0)
    assert len(sv[1]) == 50 and sv[1] == sorted(sv[1], reverse=True)
    assert sv[3][0] / sv[3][-1] > sv[1][0] / sv[1][-1]
    c = D.condition_vs_depth(n=50, max_factors=4, seeds=[0, 1])
    assert np.all(np.diff(np.log(np.asarray(c["cond"])).mean(0)) > 0)
    with pytest.raises(ValueError, match="n"):
        D.random_product_singular_values(n=1)


def test_block_index_scales_bjorck_layers():
    assert [D.block_index(L, 110) for L in D.BJORCK_LAYERS] == [4, 22, 40]
    assert all(0 <= D.block_index(L, 20) <= 9 for L in D.BJORCK_LAYERS)


@needs_cifar
def test_sgd_noise_falls_with_batch_size(cifar_env):
    r = D.sgd_noise("batchnorm", [8, 64], pool=512, repeats=6, **SMALL)
    assert len(r["sq_dev"]) == 2 and all(len(v) == 6 for v in r["sq_dev"])
    assert -1.5 < D.noise_slope(r) < -0.5  # 1/|B| law: -1 (sampling without replacement steepens it slightly)
