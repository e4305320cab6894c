"""Santurkar's ICS (Definition 2.1): exactness against a direct two-model computation, zero shift when the
earlier layers do not move, batched == loop, no side effects on training, bad arguments; and the chapter's
experiment functions (validation, forced divergence, equal-loss comparison)."""
from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from bnutils import data as D
from bnutils.experiments import ics as X
from bnutils.metrics import ICS
from bnutils.models import MLP, VGG, DeepLinear, weight_layers
from bnutils.train import LOSSES, Callback, StepState, train


def _blobs(n=256, dim=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(10, dim, generator=g) * 2
    y = torch.arange(n) % 10
    x = centers[y] + torch.randn(n, dim, generator=g)
    return D.Dataset("blobs", D.Split(x, y), D.Split(x[:64], y[:64]))


def _manual_step(model, cbs, opt, x, y, loss_fn=LOSSES["cross_entropy"], step=0):
    """One step exactly as bnutils.train does it, with our own optimizer (so param groups can freeze layers)."""
    s = StepState(step, model, x, y, None, loss_fn, opt, opt.param_groups[0]["lr"])
    for cb in cbs:
        cb.on_step_start(s)
    opt.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    s.loss = loss.detach()
    loss.backward()
    for cb in cbs:
        cb.on_before_update(s)
    opt.step()
    for cb in cbs:
        cb.on_after_update(s)


class _Capture(Callback):
    """Keeps the step's batch and the parameters before and after the update (for the direct computation)."""

    def on_step_start(self, s):
        self.x, self.y = s.x.clone(), s.y.clone()
        self.buffers = copy.deepcopy({k: v.clone() for k, v in s.model.named_buffers()})

    def on_before_update(self, s):
        self.old = copy.deepcopy(s.model.state_dict())
        self.old_grads = {n: p.grad.clone() for n, p in s.model.named_parameters()}

    def on_after_update(self, s):
        self.new = copy.deepcopy(s.model.state_dict())


@pytest.mark.parametrize("method", ["loop", "vmap", "prefix"])
@pytest.mark.parametrize("norm", ["batchnorm", "scratch", "none"])
def test_matches_direct_two_model_computation(method, norm):
    """G' from the callback == the gradient of a model assembled by hand from W^{t+1} (earlier blocks) and W^t."""
    torch.manual_seed(0)
    data = _blobs()
    model = MLP(12, width=16, depth=4, norm=norm).double()
    data = D.Dataset("b", D.Split(data.train.x.double(), data.train.y), D.Split(data.test.x.double(), data.test.y))
    cap, cb = _Capture(), ICS(model, every=1, method=method)
    train(model, data, steps=3, lr=0.1, batch_size=32, momentum=0.9, weight_decay=1e-3,
          callbacks={"cap": cap, "ics": cb}, progress=False)
    res = cb.result()
    blocks = list(model.blocks) + [model.head]
    for i in range(1, 6):  # layer #i is blocks[i-1]'s linear (the head is #5)
        mixed = copy.deepcopy(model)
        state = {k: v.clone() for k, v in cap.old.items()}
        for j in range(i - 1):  # every parameter of the earlier blocks (linear, bias, BN gamma/beta) at t+1
            prefix = f"blocks.{j}."
            state.update({k: v.clone() for k, v in cap.new.items() if k.startswith(prefix)})
        state.update({k: v.clone() for k, v in cap.buffers.items()})
        mixed.load_state_dict(state)
        mixed.train()
        mixed.zero_grad()
        nn.functional.cross_entropy(mixed(cap.x).float(), cap.y).backward()  # as bnutils.train does
        layer = weight_layers(mixed)[i - 1]
        g_prime = layer.weight.grad.flatten()
        g = cap.old_grads[[n for n, m in model.named_modules() if m is weight_layers(model)[i - 1]][0] + ".weight"]
        g = g.flatten()
        l2 = float((g - g_prime).norm())
        cos = float(g @ g_prime / (g.norm() * g_prime.norm()))
        assert res["l2"][-1][i - 1] == pytest.approx(l2, rel=1e-4, abs=1e-6 * float(g.norm()))
        assert res["cos"][-1][i - 1] == pytest.approx(cos, abs=1e-7)
        assert res["g_norm"][-1][i - 1] == pytest.approx(float(g.norm()), rel=1e-6)
        if i > 1:
            assert l2 > 1e-3 * float(g.norm())  # the earlier layers did move: there is something to measure
    assert res["l2"][-1][0] == 0.0 and res["cos"][-1][0] == pytest.approx(1.0)  # nothing precedes layer #1


@pytest.mark.parametrize("method", ["loop", "vmap", "prefix"])
def test_zero_shift_when_earlier_layers_do_not_move(method):
    """lr 0 for blocks 1-2 (and their BN): layers #1-#3 see no shift; layer #4 (after moving block 3) does."""
    torch.manual_seed(0)
    data = _blobs()
    model = MLP(12, width=16, depth=4, norm="batchnorm")
    frozen = [p for b in list(model.blocks)[:2] for p in b.parameters()]
    rest = [p for p in model.parameters() if all(p is not q for q in frozen)]
    opt = torch.optim.SGD([{"params": frozen, "lr": 0.0}, {"params": rest, "lr": 0.1}], momentum=0.9)
    cb = ICS(model, every=1, method=method)
    for step in range(3):
        _manual_step(model, [cb], opt, data.train.x[:32 * (step + 1)][-32:], data.train.y[:32 * (step + 1)][-32:],
                     step=step)
    r = cb.result()
    for row_l2, row_cos in zip(r["l2"], r["cos"]):
        assert max(row_l2[:3]) <= 1e-6 * max(r["g_norm"][0])
        assert min(row_cos[:3]) == pytest.approx(1.0, abs=1e-6)
        assert row_l2[3] > 1e-4 and row_l2[4] > 1e-4


def _vgg_data(n=64):
    g = torch.Generator().manual_seed(1)
    return D.Dataset("img", D.Split(torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 10),
                     D.Split(torch.randn(16, 3, 32, 32, generator=g), torch.arange(16) % 10))


@pytest.mark.parametrize("model_fn,data_fn,kw", [
    (lambda: VGG("vgg11", width=1 / 16, norm="batchnorm"), _vgg_data, dict(batch_size=16, lr=0.05)),
    (lambda: VGG("vgg11", width=1 / 16, norm="none"), _vgg_data, dict(batch_size=16, lr=0.05)),
    (lambda: DeepLinear(depth=8, dim=6, norm="batchnorm"), lambda: D.linear_teacher(200, 6),
     dict(batch_size=None, lr=1e-4, loss="sum_squared")),
    (lambda: MLP(12, width=16, depth=3, norm="noisy"), _blobs, dict(batch_size=32, lr=0.1)),
])
@pytest.mark.parametrize("fast", ["vmap", "prefix"])
def test_fast_methods_equal_loop(model_fn, data_fn, kw, fast):
    """vmap over the stacked mixed parameter sets, and the shared prefix, give the loop's numbers (noisy BN
    included: the step's random draws are replayed)."""
    out = {}
    for method in ("loop", fast):
        torch.manual_seed(0)
        model = model_fn()
        cb = ICS(model, every=2, method=method)
        train(model, data_fn(), steps=4, callbacks={"ics": cb}, progress=False, **kw)
        out[method] = cb.result()
    a, b = np.asarray(out["loop"]["l2"]), np.asarray(out[fast]["l2"])
    assert a.shape == b.shape and a.shape[0] == 2
    assert np.max(np.abs(a - b)) <= 1e-3 * np.max(a) + 1e-7
    assert np.allclose(out["loop"]["cos"], out[fast]["cos"], atol=1e-4)
    assert np.allclose(out["loop"]["g_norm"], out[fast]["g_norm"], rtol=1e-4)
    assert np.max(a) > 0


def test_auto_method():
    """auto: the shared prefix for conv chains, vmap for tiny linear nets; the ResNet (skips) gets the loop on a CPU."""
    from bnutils.models import ResNet
    assert ICS(VGG("vgg11", width=1 / 16), every=1).method == "prefix"
    assert ICS(DeepLinear(depth=4, dim=3), every=1).method == "vmap"
    assert ICS(ResNet(depth=8, width=0.25), every=1).method == "loop"
    with pytest.raises(ValueError, match="method='prefix'"):
        ICS(ResNet(depth=8, width=0.25), method="prefix")


def test_prefix_refuses_a_layer_inside_a_stage():
    """Two linears in one stage: the second's earlier layers are not a prefix of stages, so prefix must refuse."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 16)), nn.ReLU(), nn.Linear(16, 10))
    cb = ICS(model, every=1, method="prefix")
    with pytest.raises(RuntimeError, match="does not start a stage"):
        train(model, _blobs(), steps=1, lr=0.1, batch_size=32, callbacks={"ics": cb}, progress=False)


def test_reference_grad_equals_recompute():
    """G from p.grad (the step's own gradient) == G recomputed by the measurement's code."""
    out = {}
    for ref in ("grad", "recompute"):
        torch.manual_seed(0)
        model = MLP(12, width=16, depth=3, norm="batchnorm")
        cb = ICS(model, every=1, reference=ref)
        train(model, _blobs(), steps=3, lr=0.1, batch_size=32, callbacks={"ics": cb}, progress=False)
        out[ref] = cb.result()
    assert np.allclose(out["grad"]["g_norm"], out["recompute"]["g_norm"], rtol=1e-5)
    assert np.allclose(out["grad"]["l2"], out["recompute"]["l2"], rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("method", ["loop", "vmap", "prefix"])
def test_measurement_leaves_training_unchanged(method):
    """Same losses, weights and BN running statistics with and without the measurement (noisy BN included)."""
    finals = []
    for with_ics in (False, True):
        torch.manual_seed(0)
        model = MLP(12, width=16, depth=3, norm="noisy")
        cbs = {"ics": ICS(model, every=2, method=method)} if with_ics else {}
        run = train(model, _blobs(), steps=6, lr=0.1, batch_size=32, momentum=0.9, callbacks=cbs, progress=False)
        finals.append((run.loss, {k: v.clone() for k, v in model.state_dict().items()}))
    assert finals[0][0] == finals[1][0]
    for k in finals[0][1]:
        assert torch.equal(finals[0][1][k], finals[1][1][k]), k


def test_layer_subset_and_result_shape():
    torch.manual_seed(0)
    model = MLP(12, width=16, depth=4, norm="batchnorm")
    cb = ICS(model, layers=[4, 2], every=3)
    train(model, _blobs(), steps=7, lr=0.1, batch_size=32, callbacks={"ics": cb}, progress=False)
    r = cb.result()
    assert r["layers"] == [2, 4] and r["steps"] == [0, 3, 6] and len(r["loss"]) == 3
    assert all(len(row) == 2 for k in ("l2", "cos", "rel", "g_norm") for row in r[k])
    assert all(math.isfinite(v) and v > 0 for row in r["l2"] for v in row)
    assert r["rel"][1][0] == pytest.approx(r["l2"][1][0] / r["g_norm"][1][0])


@pytest.mark.parametrize("kwargs,match", [
    (dict(every=0), "every"), (dict(method="fast"), "method"), (dict(layers=[0]), "layers"),
    (dict(layers=[99]), "layers"), (dict(layers=[]), "layers"), (dict(layers=[2, 2]), "layers"),
    (dict(layers=3), "layers"), (dict(reference="p.grad"), "reference"), (dict(chunk_size=0), "chunk_size"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ICS(MLP(12, width=8, depth=2), **kwargs)


def test_bad_model():
    with pytest.raises(ValueError, match="model"):
        ICS("vgg16")
    with pytest.raises(ValueError, match="conv/linear"):
        ICS(nn.Sequential(nn.ReLU()))


# -- the chapter's experiment functions -----------------------------------------------------------------------------

def test_dln_run_cached_and_diverges_as_data(tmp_cache):
    r = X.dln_run("batchnorm", 1e-6, steps=30, depth=6, ics_layers=[3, 5], ics_every=10)
    assert not r["diverged"] and len(r["loss"]) == 30 and r["ics"]["steps"] == [0, 10, 20]
    again = X.dln_run("batchnorm", 1e-6, steps=30, depth=6, ics_layers=[3, 5], ics_every=10)  # from the cache
    assert again["loss"] == r["loss"] and again["ics"] == r["ics"] and any(tmp_cache.rglob("*.json"))
    bad = X.dln_run("none", 1.0, steps=100, depth=6, ics_layers=[3], ics_every=5)
    assert bad["diverged"] and bad["diverged_at"] < 100
    assert len(bad["ics"]["steps"]) <= bad["diverged_at"] // 5 + 2  # measurements stop with the run
    s = X.summarize([r], [r], 3)
    assert s["l2_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(norm="layernorm"), "norm"), (dict(lr=0.0), "lr"), (dict(steps=0), "steps"),
    (dict(ics_layers=[26]), "ics_layers"), (dict(method="x"), "method"), (dict(seed=-1), "seed"),
])
def test_dln_run_bad_arguments(kwargs, match, tmp_cache):
    args = dict(norm="none", lr=1e-6, steps=10) | kwargs
    with pytest.raises(ValueError, match=match):
        X.dln_run(args.pop("norm"), args.pop("lr"), **args)


@pytest.mark.parametrize("kwargs,match", [
    (dict(norm="l2"), "norm"), (dict(lr=-1.0), "lr"), (dict(ics_layers=[15]), "ics_layers"),
    (dict(act_layers=[0]), "act_layers"), (dict(width=0), "width"), (dict(ics_every=0), "ics_every"),
])
def test_vgg_run_bad_arguments(kwargs, match, tmp_cache):
    args = dict(norm="none", lr=0.1, steps=10) | kwargs
    with pytest.raises(ValueError, match=match):
        X.vgg_run(args.pop("norm"), args.pop("lr"), **args)


def test_lr_scan_and_cost_bad_arguments():
    with pytest.raises(ValueError, match="lrs"):
        X.lr_scan([0.1], steps=10)
    with pytest.raises(ValueError, match="lrs"):
        X.lr_scan([0.1, -0.2], steps=10)
    with pytest.raises(ValueError, match="model"):
        X.ics_cost("resnet")


def test_equal_loss_comparison_and_trains():
    def fake(loss, l2):
        steps = list(range(0, 100, 10))
        return {"loss": list(loss), "diverged": False,
                "ics": {"steps": steps, "layers": [1], "l2": [[l2[s]] for s in steps], "cos": [[1.0] for _ in steps],
                        "rel": [[0.1] for _ in steps], "g_norm": [[1.0] for _ in steps]}}
    t = np.arange(100)
    a = fake(2.0 * np.exp(-t / 50), np.full(100, 1.0))
    b = fake(2.0 * np.exp(-t / 25), np.full(100, 3.0))  # faster, with 3x the ICS at every loss
    cmp = X.at_equal_loss([a], [b], 1, "l2", n_levels=3, window=1)
    assert len(cmp["levels"]) == 3 and cmp["none"] == [1.0] * 3 and cmp["batchnorm"] == [3.0] * 3
    assert X.trains({"loss": [0.5] * 50, "diverged": False}) and not X.trains({"loss": [2.3] * 50, "diverged": False})
    assert not X.trains({"loss": [0.1], "diverged": True})


def test_span_for_generated_prose():
    assert X.span([5.46, 3.4]) == "3.4-5.5"
    assert X.span([0.82]) == "0.82" and X.span([1.0, 1.04]) == "1.0"  # both ends print the same: one number
    assert X.span([229.6, 541.5]) == "230-542" and X.span([0.024, 0.0243]) == "0.024"
    assert X.span([0.63, 0.82], ".2f") == "0.63-0.82" and X.span([7.7, 46.6], ".0f") == "8-47"
    assert X.span([-0.78, 0.3]) == "-0.78 to 0.30"
    assert X.span([float("nan"), 2.0, float("inf")]) == "2.0" and X.span([]) == "n/a" and X.span([math.nan]) == "n/a"
    assert X.span([0.0, 0.5]) == "0-0.50"


def test_scan_table():
    scan = {"lrs": [0.1, 0.5],
            "none": {"trains": [True, False], "final_loss": [1.5, 2.3], "test_acc": [0.41, float("nan")],
                     "diverged": [False, True]},
            "batchnorm": {"trains": [True, True], "final_loss": [1.2, 1.4], "test_acc": [0.5, 0.45],
                          "diverged": [False, False]}}
    lines = X.scan_table(scan).splitlines()
    assert lines[:2] == ["| lr | 0.1 | 0.5 |", "|---|---|---|"]
    assert lines[2] == "| standard: final loss (test acc.) | 1.50 (41 %) | diverged |"
    assert lines[3] == "| BN: final loss (test acc.) | 1.20 (50 %) | 1.40 (45 %) |"
    assert lines[4] == "| trains? (standard / BN) | yes / yes | no / yes |"


def test_ratio_groups():
    rows = [dict(layer=5, lr=0.1, r=5.46), dict(layer=10, lr=0.1, r=3.4), dict(layer=5, lr=0.01, r=5.15),
            dict(layer=10, lr=0.01, r=0.82)]
    assert X.ratio_groups(rows, "r") == ("larger at #5 (lr 0.1), #10 (lr 0.1) and #5 (lr 0.01): 3.4-5.5x; "
                                         "similar (0.8-1.25x) at #10 (lr 0.01): 0.82x")
    assert X.ratio_groups(rows[:3], "r") == "larger in all 3 rows: 3.4-5.5x"
    assert X.ratio_groups([dict(layer=9, lr=1e-7, r=541.5), dict(layer=17, lr=1e-7, r=229.6)], "r") == \
        "larger in both rows: 230-542x"
    assert X.ratio_groups([dict(layer=9, lr=1e-6, r=0.5), dict(layer=17, lr=1e-6, r=math.nan)], "r") == \
        "smaller at #9 (lr 1e-06): 0.50x"
    assert X.ratio_groups([dict(layer=9, lr=1e-6, r=math.nan)], "r") == "n/a"
    with pytest.raises(ValueError, match="band"):
        X.ratio_groups(rows, "r", band=(1.2, 2.0))
