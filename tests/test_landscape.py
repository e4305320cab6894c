"""Landscape probes (bnutils.metrics.landscape) and the chapter 4 experiments (bnutils.experiments.landscape)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from bnutils.data import linear_teacher
from bnutils import metrics, report
from bnutils.experiments import landscape as exp
from bnutils.experiments.landscape import landscape_run, theorem41_check
from bnutils.metrics.landscape import LandscapeProbe, band_summary, landscape_bands, probe_landscape
from bnutils.profiles import PROFILES
from bnutils.models import MLP, DeepLinear
from bnutils.train import LOSSES, train


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    s = {f"p:{n}": p.detach().clone() for n, p in model.named_parameters()}
    s.update({f"g:{n}": p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    s.update({f"b:{n}": b.clone() for n, b in model.named_buffers()})
    return s


@pytest.mark.parametrize("norm", ["none", "batchnorm", "scratch", "l1", "linf"])
def test_batched_equals_loop(norm):
    torch.manual_seed(0)
    d = linear_teacher(64, 10)
    model = DeepLinear(depth=6, dim=10, norm=norm)
    etas = list(np.geomspace(1e-4, 1e-2, 5))
    a = probe_landscape(model, d.train.x, d.train.y, LOSSES["sum_squared"], etas, method="vmap")
    b = probe_landscape(model, d.train.x, d.train.y, LOSSES["sum_squared"], etas, method="loop")
    np.testing.assert_allclose(a["losses"], b["losses"], rtol=1e-5)
    np.testing.assert_allclose(a["grad_dists"], b["grad_dists"], rtol=1e-4)
    assert a["K"] == pytest.approx(b["K"], rel=1e-4)


def test_probes_restore_weights_buffers_and_grads_bit_for_bit():
    torch.manual_seed(0)
    x, y = torch.randn(32, 20), torch.randint(0, 10, (32,))
    model = MLP(20, width=16, depth=3, norm="batchnorm")
    model.train()
    nn.functional.cross_entropy(model(x), y).backward()
    before = _state(model)
    for method in ("vmap", "loop"):
        probe_landscape(model, x, y, nn.functional.cross_entropy, [0.1, 1.0, 10.0], method=method,
                        grads={n: p.grad for n, p in model.named_parameters()})
        after = _state(model)
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before), method
    model.eval()
    probe_landscape(model, x, y, nn.functional.cross_entropy, [0.1])
    assert not model.training  # the probe's train mode does not leak


def test_probing_does_not_change_training():
    d = linear_teacher(128, 10)
    runs = []
    for probe in (False, True):
        torch.manual_seed(0)
        model = DeepLinear(depth=5, dim=10, norm="batchnorm")
        cbs = {"probe": LandscapeProbe(every=3, eta_range=(0.5, 8.0), n_probes=4)} if probe else None
        runs.append(train(model, d, steps=10, lr=1e-4, batch_size=32, callbacks=cbs, progress=False))
    assert runs[0].loss == runs[1].loss
    assert runs[1].metrics["probe"]["step"] == [0, 3, 6, 9]


class Quadratic(nn.Module):
    """A model whose 'output' is its weight vector: with loss 0.5 w^T H w the smoothness is H's top eigenvalue."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w


def test_quadratic_smoothness_is_top_eigenvalue():
    torch.manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64))
    eig = torch.tensor([9.0, 4.0, 2.0, 1.0, 0.5, 0.1], dtype=torch.float64)
    h = q @ torch.diag(eig) @ q.T
    loss = lambda w, y: 0.5 * w @ h @ w
    x = torch.zeros(1)
    # along the top eigenvector, ||g - g(eta)|| / ||eta g|| = beta exactly; along a mix it is below beta
    top = Quadratic(q[:, 0])
    r = probe_landscape(top, x, None, loss, [0.01, 0.1, 0.2], method="loop")
    assert r["K"] == pytest.approx(9.0, rel=1e-9)
    etas = np.array([0.01, 0.1, 0.2])
    np.testing.assert_allclose(r["losses"], 0.5 * 9.0 * (1 - 9.0 * etas) ** 2, rtol=1e-9)
    mixed = Quadratic(q @ torch.ones(6, dtype=torch.float64))
    r2 = probe_landscape(mixed, x, None, loss, [0.05], method="vmap")
    g = h @ mixed.w.detach()
    assert r2["K"] == pytest.approx(float((h @ g).norm() / g.norm()), rel=1e-9)
    assert r2["K"] < 9.0


def test_non_finite_probe_is_data():
    model = Quadratic(torch.full((3,), 0.1, dtype=torch.float64))
    loss = lambda w, y: torch.exp(w.pow(2).sum() * 10)  # overflows at the larger step
    r = probe_landscape(model, torch.zeros(1), None, loss, [0.0, 1e-3, 100.0], method="loop")
    assert math.isfinite(r["losses"][1]) and math.isfinite(r["grad_norm"])
    assert not r["finite"] and r["loss_band"][1] == math.inf and r["K"] == math.inf


def test_bands_subrange():
    d = linear_teacher(64, 10)
    torch.manual_seed(0)
    cb = LandscapeProbe(every=2, eta_range=(0.5, 16.0), n_probes=6)
    train(DeepLinear(depth=4, dim=10), d, steps=4, lr=1e-3, batch_size=None, callbacks={"p": cb}, progress=False)
    res = cb.result()
    full, paper = landscape_bands(res), landscape_bands(res, max_rel=4.0)
    assert np.all(paper["loss_hi"] <= full["loss_hi"]) and np.all(paper["grad_hi"] <= full["grad_hi"])
    with pytest.raises(ValueError, match="max_rel"):
        landscape_bands(res, max_rel=0.1)


@pytest.mark.parametrize("kwargs, name", [
    (dict(method="fast"), "method"), (dict(eta_range=(4.0, 1.0)), "eta_range"), (dict(eta_range=(0.0, 1.0)), "eta_range"),
    (dict(n_probes=0), "n_probes"), (dict(every=0), "every")])
def test_probe_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LandscapeProbe(**kwargs)


@pytest.mark.parametrize("kwargs, name", [
    (dict(model="resnet"), "model"), (dict(norm="instance"), "norm"), (dict(lr=-1.0), "lr"),
    (dict(probe_every=0), "probe_every"), (dict(method="gpu"), "method"), (dict(device="tpu"), "device")])
def test_run_bad_arguments(kwargs, name):
    args = dict(model="dln", norm="none", lr=1e-6, steps=2, probe_every=1, cache=False)
    args.update(kwargs)
    with pytest.raises(ValueError, match=name):
        landscape_run(**args)


def test_forced_divergence_is_recorded_not_raised():
    r = landscape_run("dln", "none", lr=1.0, steps=30, probe_every=5, eta_range=(0.01, 30.0), cache=False)
    assert r["diverged"] and r["diverged_at"] is not None
    s = band_summary([r["probe"]])  # the probes before the divergence (and inf for any that blew up)
    assert all(v > 0 or math.isnan(v) for v in s.values())


def test_band_summary_values_on_a_tiny_model():
    """As eta' -> 0 the loss band closes and the gradient change vanishes, while K stays finite and positive."""
    d = linear_teacher(64, 10)
    torch.manual_seed(0)
    near, far = LandscapeProbe(every=2, eta_range=(1e-3, 1e-2), n_probes=3), LandscapeProbe(every=2, n_probes=4)
    train(DeepLinear(depth=4, dim=10), d, steps=4, lr=1e-5, batch_size=None, callbacks={"n": near, "f": far},
          progress=False)
    s_near, s_far = band_summary([near.result()]), band_summary([far.result()])
    assert 0 <= s_near["loss_spread"] < 0.02 * s_far["loss_spread"]
    assert 0 < s_near["grad_hi"] < 0.02 * s_far["grad_hi"]
    assert 0 < s_near["K"] < math.inf and 0 < s_far["K"] < math.inf
    assert s_near["K"] == pytest.approx(s_far["K"], rel=0.5)  # the gradient is close to linear along the step here
    with pytest.raises(ValueError, match="results"):
        band_summary([])


def _probe(steps=(0, 10), rel=(0.5, 1.0, 2.0, 4.0, 8.0), dist=1.0, loss=(1.0, 2.0)):
    """A fake LandscapeProbe result: grad_dists = dist * eta_rel (so K = dist / (lr * grad_norm)), losses in `loss`."""
    n = len(rel)
    return {"step": list(steps), "eta_rel": list(rel), "lr": [0.1] * len(steps), "grad_norm": [1.0] * len(steps),
            "losses": [list(np.linspace(*loss, n))] * len(steps), "grad_dists": [[dist * r for r in rel]] * len(steps),
            "loss0": [1.0] * len(steps), "seconds": 0.0}


def _runs(**dists):
    return {k: [{"probe": _probe(dist=v), "loss": [2.0] * 30, "diverged": False} for v in vs] for k, vs in dists.items()}


def test_smoothness_ratios_seed_ratios_median_K_and_n_probed():
    runs = _runs(none=[4.0, 2.0], batchnorm=[1.0, 1.0])
    r = exp.smoothness_ratios(runs)
    assert r["grad_hi"] == pytest.approx(3.0) and r["K"] == pytest.approx(3.0) and r["loss_spread"] == pytest.approx(1.0)
    assert [d["K"] for d in exp.seed_ratios(runs)] == pytest.approx([4.0, 2.0])
    assert exp.smoothness_ratios(runs, max_rel=4.0)["grad_hi"] == pytest.approx(3.0)
    assert exp.median_K(runs) == pytest.approx({"none": 30.0, "batchnorm": 10.0})  # dist / (lr * |g|), medians
    assert exp.n_probed(runs) == 4 and exp.n_probed({**runs, "batchnorm": runs["batchnorm"][:1]}) == 2


def test_gradient_change_ratios_read_the_paper_range_only():
    runs = _runs(none=[2.0], batchnorm=[1.0])
    runs["none"][0]["probe"]["grad_dists"] = [[2, 2, 2, 2, 100.0]] * 2  # the probe at 8 x lr is outside [0.5, 4]
    runs["batchnorm"][0]["probe"]["grad_dists"] = [[1, 1, 1, 1, 1.0], [4, 4, 4, 4, 4.0]]
    assert exp.gradient_change_ratios(runs, (0.5, 4.0), "first") == [2.0]
    assert exp.gradient_change_ratios(runs, (0.5, 4.0), "last") == [0.5]
    with pytest.raises(ValueError, match="which"):
        exp.gradient_change_ratios(runs, (0.5, 4.0), "middle")


def test_final_losses_median_over_seeds_inf_when_diverged():
    runs = {"a": [{"loss": [3.0] * 10 + [1.0] * 20, "diverged": False}, {"loss": [2.0], "diverged": True}],
            "b": [{"loss": [0.5] * 40, "diverged": False}]}
    assert exp.final_losses(runs) == {"a": math.inf, "b": 0.5}
    runs["a"][1] = {"loss": [3.0] * 30, "diverged": False}
    assert exp.final_losses(runs, window=20)["a"] == pytest.approx(2.0)


def test_settings_fill_in_the_profile_and_validate():
    scale, prof = exp.SCALES["cpu"], PROFILES["cpu"]
    kw = dict(vgg_lr=0.1, dln_lr=1e-6, vgg_probe_range=[0.5, 16.0], vgg_n_probes=6, dln_probe_range=[0.01, 30.0],
              dln_n_probes=8)
    s = exp.settings(prof, scale, seed=3, **kw)
    assert s["seeds"] == [3, 4] and s["vgg"]["steps"] == scale["vgg_steps"] and s["dln"]["steps"] == scale["dln_steps"]
    assert s["vgg"]["probe_every"] == scale["vgg_steps"] // scale["vgg_probe_count"]
    assert s["vgg"]["eta_range"] == (0.5, 16.0) and s["vgg"]["batch_size"] == scale["vgg_batch_size"]
    assert "batch_size" not in s["dln"] and s["dln"]["lr"] == 1e-6
    s = exp.settings(prof, scale, n_seeds=1, vgg_steps=3, **kw)
    assert s["seeds"] == [0] and s["vgg"]["steps"] == 3 and s["vgg"]["probe_every"] == 1
    with pytest.raises(ValueError, match="dln_steps"):
        exp.settings(prof, scale, dln_steps=0, **kw)


def _recorder_result(channel_means, channel_vars, sample):
    t = len(channel_means)
    return {"steps": list(range(t)), "layers": {"L": {
        "mean": [0.0] * t, "std": [1.0] * t, "quantiles": [[]] * t, "channel_mean": channel_means,
        "channel_var": channel_vars, "sample": [sample] * t}}}


def test_activation_shape_stats_kurtosis_change_and_its_standard_error():
    rng = np.random.default_rng(0)
    gauss = list(rng.standard_normal(20000))
    means = [[0.0, 0.0], [0.1, 0.3], [0.2, 0.4], [0.5, 0.5]]  # changes 0.2, 0.1, 0.2 (mean over channels)
    r = metrics.activation_shape_stats(_recorder_result(means, [[4.0, 4.0]] * 4, gauss), "L")
    assert abs(r["kurtosis"]) < 5 * r["kurtosis_se"] and r["kurtosis_se"] == pytest.approx(math.sqrt(24 / 20000))
    assert r["mean_change"] == pytest.approx(0.2 / 2)  # median change, in channel stds (2)
    assert r["mean_change_se"] == pytest.approx(math.sqrt(math.pi / 2) * np.std([0.1, 0.05, 0.1], ddof=1) / math.sqrt(3))
    heavy = list(rng.standard_t(3, 20000))
    assert metrics.activation_shape_stats(_recorder_result(means, [[4.0, 4.0]] * 4, heavy), "L")["kurtosis"] > 1
    one_pair = metrics.activation_shape_stats(_recorder_result(means[:2], [[4.0, 4.0]] * 2, gauss), "L")
    assert math.isfinite(one_pair["mean_change"]) and math.isnan(one_pair["mean_change_se"])
    with pytest.raises(ValueError, match="activations"):
        metrics.activation_shape_stats(None, "L")


def test_smoothness_prose():
    assert report.landscape.smoothness_text({"loss_spread": 1.23, "grad_hi": 3.0, "K": 0.5}) == \
        "loss band width 1.2x, gradient change 3x, K 0.5x"
    assert report.landscape.smoothness_finding({"a": 2, "b": 3, "c": 4}) == "BN is smoother on all three measures"
    assert report.landscape.smoothness_finding({"a": 2, "b": 0.3, "c": 4}) == "BN is smoother on 2 of 3 measures"
    assert report.landscape.smoothness_finding({"a": 0.2, "b": 0.3, "c": math.nan}) == "BN is not smoother here"


def test_chapter_figures_share_axes_and_keep_every_network_apart():
    import matplotlib.pyplot as plt
    from bnutils.figures import landscape as figs

    runs = _runs(none=[4.0, 2.0], batchnorm=[1.0], l1=[1.5], l2=[2.0], linf=[3.0])
    fig = figs.plot_landscape_by_network(runs, title="t")
    axes = np.array(fig.axes).reshape(3, 5)
    assert [ax.get_title() for ax in axes[0]] == ["standard (no BN)", "BatchNorm", "ℓ1 norm", "ℓ2 norm", "ℓ∞ norm"] or \
        len({ax.get_title() for ax in axes[0]}) == 5
    assert all(ax.get_yscale() == "log" for ax in axes.flat)
    for row in axes:  # one y range per row
        assert len({ax.get_ylim() for ax in row}) == 1
    assert len(axes[1, 0].lines) > len(axes[1, 1].lines)  # BN's reference edges drawn in the other columns only
    with pytest.raises(ValueError, match="reference"):
        figs.plot_landscape_by_network(runs, reference="groupnorm")
    fig = figs.plot_landscape({k: runs[k] for k in ("none", "batchnorm")}, [(4.0, "paper"), (None, "wide")])
    assert len(fig.axes) == 6 and fig.axes[0].get_title(loc="left") == "paper"
    fig = figs.plot_gradient_change([("VGG", runs, "first"), ("DLN", runs, "last")], title="g")
    assert fig.axes[0].get_title() == "VGG, step 0" and fig.axes[1].get_title() == "DLN, step 10"
    fig = figs.plot_gradient_change([("VGG", runs, "first"), ("VGG", runs, "last"), ("DLN", runs, "last")])
    assert fig.axes[0].get_ylim() == fig.axes[1].get_ylim()  # one network's early and late panels share y
    fig, ax = plt.subplots()
    figs.draw_loss_curves(ax, runs)
    assert ax.get_yscale() == "log" and len(ax.get_legend_handles_labels()[1]) == 5
    stats = {n: {"kurtosis": 0.1, "mean_change": 0.01} for n in runs}
    samples = {n: list(np.random.default_rng(i).standard_normal(64) * (i + 1)) for i, n in enumerate(runs)}
    fig = figs.plot_activation_histograms(samples, stats, title="h")
    assert len({ax.get_xlim() for ax in fig.axes}) == 1 and len({ax.get_ylim() for ax in fig.axes}) == 1
    plt.close("all")


def test_theorem41():
    exact = theorem41_check(n_cases=20, eps=0.0)
    assert exact["holds_1_over_m"] and not exact["holds_1_over_sqrt_m"]
    assert exact["max_ratio_1_over_m"] == pytest.approx(1.0, abs=1e-9)  # an equality without epsilon
    with pytest.raises(ValueError, match="batch_sizes"):
        theorem41_check(n_cases=2, batch_sizes=(1,))
