"""Measurements that must not change the model or the run: a failed `recalibrate` leaves the model as it was, and
the landscape probes and ICS, attached to training, leave its losses exactly as without them for every norm kind;
on noisy norms the probes replay the step's own noise (gradient change -> 0 as eta -> 0)."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from bnutils import data as D
from bnutils.metrics import ICS
from bnutils.metrics.landscape import LandscapeProbe, probe_landscape
from bnutils.models import MLP, VGG
from bnutils.norms import NORM_KINDS, recalibrate
from bnutils.train import train

NOISY = ("noisy", "noise")


def _blobs(n=128, dim=12):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, dim, generator=g), torch.arange(n) % 10
    return D.Dataset("blobs", D.Split(x, y), D.Split(x[:32], y[:32]))


def _images(n=32):
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 10
    return D.Dataset("images", D.Split(x, y), D.Split(x[:16], y[:16]))


def _snapshot(model: nn.Module) -> dict:
    return {"state": {k: v.clone() for k, v in model.state_dict().items()},
            "momentum": [getattr(m, "momentum", None) for m in model.modules()],
            "modes": [m.training for m in model.modules()]}


def _same(a: dict, b: dict) -> bool:
    return a["momentum"] == b["momentum"] and a["modes"] == b["modes"] and a["state"].keys() == b["state"].keys() \
        and all(torch.equal(a["state"][k], b["state"][k]) for k in a["state"])


@pytest.mark.parametrize("norm", ["batchnorm", "scratch", "noisy"])
def test_failed_recalibrate_leaves_the_model_as_it_was(norm):
    model = MLP(12, width=16, depth=2, norm=norm)
    train(model, _blobs(), steps=3, lr=0.1, batch_size=32, progress=False)  # non-trivial running statistics
    model.eval()
    before = _snapshot(model)
    with pytest.raises(ValueError, match="at least one batch"):
        recalibrate(model, [])
    assert _same(before, _snapshot(model))
    with pytest.raises(RuntimeError):  # a batch that fails half-way through
        recalibrate(model, [torch.randn(8, 12), torch.randn(8, 5)])
    assert _same(before, _snapshot(model))


def _run(model_fn, data, cb_fn, steps=5, batch_size=16):
    torch.manual_seed(0)
    model = model_fn()
    cbs = {"cb": cb_fn(model)} if cb_fn else {}
    run = train(model, data, steps=steps, lr=0.05, batch_size=batch_size, momentum=0.9, callbacks=cbs,
                progress=False)
    return run, {k: v.clone() for k, v in model.state_dict().items()}


def _assert_same_training(a, b):
    assert a[0].loss == b[0].loss
    assert a[1].keys() == b[1].keys() and all(torch.equal(a[1][k], b[1][k]) for k in a[1])


@pytest.mark.parametrize("method", ["vmap", "loop"])
@pytest.mark.parametrize("norm", NORM_KINDS)
def test_landscape_probe_leaves_training_unchanged_and_replays_the_noise(norm, method):
    model_fn = lambda: MLP(12, width=16, depth=3, norm=norm)
    probe = lambda m: LandscapeProbe(every=2, eta_range=(1e-6, 1.0), n_probes=3, method=method)
    plain, probed = _run(model_fn, _blobs(), None), _run(model_fn, _blobs(), probe)
    _assert_same_training(plain, probed)
    r = probed[0].metrics["cb"]
    assert r["step"] == [0, 2, 4]
    for dists, g_norm in zip(r["grad_dists"], r["grad_norm"]):
        assert dists[0] < 1e-3 * g_norm  # eta = 1e-6 lr: the same noise, so (nearly) the same gradient


@pytest.mark.parametrize("norm", NOISY)
def test_landscape_probe_on_a_noisy_vgg(norm):
    model_fn = lambda: VGG("vgg11", width=1 / 16, norm=norm)
    probe = lambda m: LandscapeProbe(every=2, eta_range=(1e-6, 1.0), n_probes=2)  # auto: the loop on a CPU
    plain, probed = _run(model_fn, _images(), None, steps=3, batch_size=8), \
        _run(model_fn, _images(), probe, steps=3, batch_size=8)
    _assert_same_training(plain, probed)
    r = probed[0].metrics["cb"]
    assert all(d[0] < 1e-3 * g for d, g in zip(r["grad_dists"], r["grad_norm"]))


@pytest.mark.parametrize("norm", NOISY)
def test_noisy_probes_batched_equal_loop_and_leave_the_rng(norm):
    torch.manual_seed(0)
    model = MLP(12, width=16, depth=3, norm=norm)
    d = _blobs()
    state = torch.get_rng_state()
    a = probe_landscape(model, d.train.x, d.train.y, nn.functional.cross_entropy, [1e-7, 0.01, 0.1], method="vmap")
    b = probe_landscape(model, d.train.x, d.train.y, nn.functional.cross_entropy, [1e-7, 0.01, 0.1], method="loop")
    assert torch.equal(state, torch.get_rng_state())
    torch.testing.assert_close(torch.tensor(a["losses"]), torch.tensor(b["losses"]), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(torch.tensor(a["grad_dists"]), torch.tensor(b["grad_dists"]), rtol=1e-3, atol=1e-5)
    assert a["grad_dists"][0] < 1e-3 * a["grad_norm"]


@pytest.mark.parametrize("method", ["loop", "vmap", "prefix"])
@pytest.mark.parametrize("norm", NORM_KINDS)
def test_ics_leaves_training_unchanged(norm, method):
    model_fn = lambda: MLP(12, width=16, depth=3, norm=norm)
    ics = lambda m: ICS(m, every=2, method=method)
    _assert_same_training(_run(model_fn, _blobs(), None), _run(model_fn, _blobs(), ics))


@pytest.mark.parametrize("norm", NOISY)
def test_ics_leaves_training_of_a_noisy_vgg_unchanged(norm):
    model_fn = lambda: VGG("vgg11", width=1 / 16, norm=norm)
    _assert_same_training(_run(model_fn, _images(), None, steps=3, batch_size=8),
                          _run(model_fn, _images(), lambda m: ICS(m, every=2), steps=3, batch_size=8))
