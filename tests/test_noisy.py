"""Chapter 3: the noise of Santurkar et al.'s Algorithm 1 (statistics across many draws) and the experiment functions."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bnutils.data import Dataset, Split
from bnutils.experiments import noisy
from bnutils.models import VGG
from bnutils.norms import SanturkarNoise


def _draws(noise: SanturkarNoise, n: int = 200, shape=(64, 32, 4, 4)):
    x = torch.zeros(shape)
    mus, sigmas, ms, ss = zip(*(noise.sample(x) for _ in range(n)))
    return torch.stack(mus), torch.stack(sigmas), torch.stack(ms), torch.stack(ss)


@pytest.mark.parametrize("scale", [1.0, 2.0])
def test_noise_spreads_across_draws_match_algorithm_1(scale):
    mu, sigma, m, s = _draws(SanturkarNoise(scale=scale))
    n_mu, half_sigma, r_mu, r_sigma = 0.5 * scale, 0.25 * scale, 0.1 * scale, 0.1 * scale
    # mu ~ U(-n_mu, n_mu), sigma ~ U(1, n_sigma): means and spreads over steps and channels
    assert abs(mu.mean()) < 0.02 * scale and abs(mu.std() - n_mu / math.sqrt(3)) < 0.02 * scale
    assert abs(sigma.mean() - (1 + half_sigma / 2)) < 0.01 * scale
    assert abs(sigma.std() - half_sigma / math.sqrt(12)) < 0.01 * scale
    # per element: m ~ U(mu - r_mu, mu + r_mu), s ~ N(sigma, r_sigma); overall spreads add up
    dm, ds = m - mu.view(-1, 1, 32, 1, 1), s - sigma.view(-1, 1, 32, 1, 1)
    assert dm.abs().max() <= r_mu + 1e-6 and abs(dm.std() - r_mu / math.sqrt(3)) < 0.002 * scale
    assert abs(ds.mean()) < 0.002 and abs(ds.std() - r_sigma) < 0.002 * scale
    assert abs(m.std() - math.sqrt(n_mu ** 2 / 3 + r_mu ** 2 / 3)) < 0.02 * scale
    assert abs(s.std() - math.sqrt(half_sigma ** 2 / 12 + r_sigma ** 2)) < 0.01 * scale


def test_noise_is_redrawn_every_step_independently():
    layer = SanturkarNoise()
    x = torch.ones(256, 64, 2, 2)
    a, b = layer(x).mean((0, 2, 3)), layer(x).mean((0, 2, 3))  # per-channel sigma_j + mu_j of two steps
    assert not torch.allclose(a, b)
    assert abs(np.corrcoef(a.numpy(), b.numpy())[0, 1]) < 0.4  # independent draws, not a fixed per-channel offset


def test_noisy_vgg_is_deterministic_and_noise_free_in_eval():
    torch.manual_seed(0)
    net = VGG("vgg16", width=0.125, norm="noisy").eval()
    x = torch.randn(4, 3, 32, 32)
    assert torch.equal(net(x), net(x))
    net.train()
    assert not torch.allclose(net(x), net(x))


def _tiny_data(n: int = 48) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
    return Dataset("tiny", Split(x, y), Split(x[:16], y[:16]))


def _run(kind, **kw):
    args = dict(steps=4, lr=0.01, batch_size=16, hist_every=2, hist_sample=8, recal_batches=2, data=_tiny_data(),
                cache=False)
    args.update(kw)
    return noisy.train_network(kind, **args)


@pytest.mark.parametrize("kind", noisy.KINDS)
def test_train_network_records_what_the_chapter_plots(kind):
    r = _run(kind)
    assert not r["diverged"] and len(r["loss"]) == 4 and 0 <= r["test_acc"] <= 1
    assert (r["test_acc_recal"] is not None) == (kind in ("batchnorm", "noisy"))
    assert (r["test_acc_noise_on"] is not None) == (kind in noisy.NOISY_KINDS)
    assert list(r["layers"]) == ["#2", "#9", "#13"]
    d = r["layers"]["#9"]
    assert len(d["mean_change"]) == 3 and len(d["var_drift"]) == 4 and d["mean_drift"][0] == 0
    assert d["hist_steps"] == [0, 2] and len(d["hist"][0]) == 8


def test_noise_makes_layer_means_jump_between_steps():
    runs = [_run(k) for k in ("batchnorm", "noisy")]
    inst = noisy.instability(runs)
    # a BN layer's output channel mean is beta in train mode: it barely moves; the noise moves it by ~|mu - mu'|
    assert inst["noisy"]["#9"]["mean_change"] > 10 * inst["batchnorm"]["#9"]["mean_change"]
    assert np.isfinite(noisy.instability(runs, relative=True)["noisy"]["#2"]["var_change"])


def test_forced_divergence_is_recorded_not_raised():
    r = _run("none", lr=1e6, steps=20)
    assert r["diverged"] and r["test_acc"] is None and len(r["loss"]) < 20
    s = noisy.summary([r, _run("none", seed=1)])
    assert s["none"]["diverged"] == 1 and s["none"]["seeds"] == 2 and np.isfinite(s["none"]["test_acc"])
    assert math.isnan(noisy.compared_accuracy(r)) and all(math.isnan(v) for v in noisy.final_train(r))
    assert math.isnan(noisy.instability([r])["none"]["#2"]["mean_change"])  # exploded moments are left out
    assert noisy.instability([r, _run("none")])["none"] == noisy.instability([_run("none")])["none"]


def test_noise_sweep_scale_zero_is_the_plain_network():
    sweep = noisy.noise_sweep([0.0, 0.5], steps=2, lr=0.01, batch_size=16, hist_every=2, hist_sample=4,
                              recal_batches=1, data=_tiny_data(), cache=False)
    assert sweep["noisy"][0.0]["kind"] == "batchnorm" and sweep["noise"][0.0]["kind"] == "none"
    assert sweep["noisy"][0.5]["kind"] == "noisy" and sweep["noise"][0.5]["noise_scale"] == 0.5


def test_cached_run_is_served_again(tmp_cache):
    a = _run("noise", cache=True)
    b = _run("noise", cache=True)
    assert a == b and any(tmp_cache.rglob("*.json"))


@pytest.mark.parametrize("call,match", [
    (lambda: noisy.train_network("bn"), r"kind='bn' is not allowed; choose one of"),
    (lambda: noisy.train_network("noisy", position="middle"), r"position='middle'"),
    (lambda: noisy.train_network("noisy", layers=(14,)), r"layers=14"),
    (lambda: noisy.train_network("noisy", layers=()), r"layers=\(\)"),
    (lambda: noisy.train_network("noise", noise_scale=-1.0), r"noise_scale=-1.0"),
    (lambda: noisy.train_network("noise", lr=0.0), r"lr=0.0"),
    (lambda: noisy.four_networks([0, 0]), r"seeds=\[0, 0\]"),
    (lambda: noisy.four_networks([0], kinds=("bn",)), r"kinds='bn'"),
    (lambda: noisy.noise_sweep([]), r"scales=\[\]"),
    (lambda: noisy.noise_sweep([-0.5]), r"scales=-0.5"),
    (lambda: noisy.final_train({}, frac=2.0), r"frac=2.0"),
])
def test_bad_arguments_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_channel_moment_changes_per_record_and_since_the_first():
    from bnutils.metrics import channel_moment_changes

    rec = {"steps": [0, 1, 2], "layers": {"L": {
        "mean": [0.0] * 3, "std": [1.0, 2.0, 3.0], "quantiles": [[]] * 3, "sample": [[0.0]] * 3,
        "channel_mean": [[0.0, 0.0], [1.0, -1.0], [1.0, 1.0]], "channel_var": [[1.0, 1.0], [1.0, 3.0], [2.0, 2.0]]}}}
    m = channel_moment_changes(rec, "L")
    assert m["mean_change"] == [1.0, 1.0] and m["mean_drift"] == [0.0, 1.0, 1.0]
    assert m["var_change"] == [1.0, 1.0] and m["var_drift"] == [0.0, 1.0, 1.0] and m["std"] == [1.0, 2.0, 3.0]
    with pytest.raises(ValueError, match="layer"):
        channel_moment_changes(rec, "M")


def test_noisy_bn_channel_means_change_by_a_third_per_step_by_construction():
    """A BN layer's output channel mean is beta (0 at init) in train mode; the noise moves it by mu_j ~ U(-1/2, 1/2),
    redrawn every step, and E|mu - mu'| = 1/3: the chapter's ~1/3 is the noise measured back."""
    r = _run("noisy", steps=30, lr=1e-4)
    changes = [c for layer in r["layers"].values() for c in layer["mean_change"]]
    assert abs(np.mean(changes) - 1 / 3) < 0.05


def test_settings_fill_in_the_profile_and_validate():
    from bnutils.profiles import PROFILES

    prof, scale = PROFILES["cpu"], noisy.SCALES["cpu"]
    s = noisy.settings(prof, scale, seed=2)
    assert s["seeds"] == [2, 3] and s["scales"] == [0.0, 1.0, 2.0] and s["run"]["lr"] == 0.1
    assert s["run"]["steps"] == scale["steps"] and s["run"]["hist_every"] == max(1, scale["steps"] // 25)
    assert s["run"]["width"] == prof.vgg_width and s["run"]["device"] == prof.device
    s = noisy.settings(prof, scale, steps=10, lr=0.05, n_seeds=1, noise_scales=[0.5])
    assert s["seeds"] == [0] and s["scales"] == [0.0, 0.5, 1.0] and s["run"]["steps"] == 10 and s["run"]["lr"] == 0.05
    for bad, name in ((dict(steps=0), "steps"), (dict(lr=-1.0), "lr"), (dict(n_seeds=0), "n_seeds")):
        with pytest.raises(ValueError, match=name):
            noisy.settings(prof, scale, **bad)


def test_compared_histograms_share_the_value_range_and_colour_scale():
    import matplotlib.pyplot as plt
    from bnutils.figures import noisy as figs

    runs = [_run(k) for k in noisy.KINDS]
    fig = figs.plot_histograms(runs, seed=0, title="t")
    panels = [ax for ax in fig.axes if ax.images]
    assert len(panels) == 3 * len(noisy.KINDS)
    rows = [[ax for ax in panels if ax.get_subplotspec().rowspan.start == i] for i in range(3)]
    for row in rows:
        assert len(row) == 4
        assert len({ax.get_ylim() for ax in row}) == 1  # one value range per layer
        assert len({tuple(ax.images[0].get_clim()) for ax in row}) == 1  # one colour scale per layer
    assert len(fig.axes) == len(panels) + 3  # a colour bar per row
    plt.close("all")
