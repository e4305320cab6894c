"""Landscape probes (bnutils.metrics.landscape) and the chapter 4 experiments (bnutils.experiments.landscape)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from bnutils.data import linear_teacher
from bnutils.experiments.landscape import band_summary, landscape_run, theorem41_check
from bnutils.metrics.landscape import LandscapeProbe, landscape_bands, probe_landscape
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
    assert a["beta"] == pytest.approx(b["beta"], rel=1e-4)


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
    assert r["beta"] == pytest.approx(9.0, rel=1e-9)
    etas = np.array([0.01, 0.1, 0.2])
    np.testing.assert_allclose(r["losses"], 0.5 * 9.0 * (1 - 9.0 * etas) ** 2, rtol=1e-9)
    mixed = Quadratic(q @ torch.ones(6, dtype=torch.float64))
    r2 = probe_landscape(mixed, x, None, loss, [0.05], method="vmap")
    g = h @ mixed.w.detach()
    assert r2["beta"] == pytest.approx(float((h @ g).norm() / g.norm()), rel=1e-9)
    assert r2["beta"] < 9.0


def test_non_finite_probe_is_data():
    model = Quadratic(torch.full((3,), 0.1, dtype=torch.float64))
    loss = lambda w, y: torch.exp(w.pow(2).sum() * 10)  # overflows at the larger step
    r = probe_landscape(model, torch.zeros(1), None, loss, [0.0, 1e-3, 100.0], method="loop")
    assert math.isfinite(r["losses"][1]) and math.isfinite(r["grad_norm"])
    assert not r["finite"] and r["loss_band"][1] == math.inf and r["beta"] == math.inf


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
    s = band_summary([r])
    assert set(s) == {"loss_spread", "grad_hi", "beta"}


def test_theorem41():
    exact = theorem41_check(n_cases=20, eps=0.0)
    assert exact["holds_1_over_m"] and not exact["holds_1_over_sqrt_m"]
    assert exact["max_ratio_1_over_m"] == pytest.approx(1.0, abs=1e-9)  # an equality without epsilon
    with pytest.raises(ValueError, match="batch_sizes"):
        theorem41_check(n_cases=2, batch_sizes=(1,))
