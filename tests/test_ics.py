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

from bnutils import data as D, report as R
from bnutils.experiments import ics as X
from bnutils.metrics import ICS
from bnutils.metrics import ics_summaries as SUM
from bnutils.metrics.ics_cost import ics_cost
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
    for i in range(1, 6):  # layer #i is weight_layers(model)[i - 1]: the blocks' linears, then the head (#5)
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

def test_dln_run_cached_and_diverges_as_data(tmp_cache, monkeypatch):
    r = X.dln_run("batchnorm", 1e-6, steps=30, depth=6, ics_layers=[3, 5], ics_every=10)
    assert not r["diverged"] and len(r["loss"]) == 30 and r["ics"]["steps"] == [0, 10, 20]
    with monkeypatch.context() as m:  # the second call must read the cache: training again would fail here
        m.setattr(X, "train", lambda *a, **k: pytest.fail("dln_run trained again instead of reading its cache"))
        again = X.dln_run("batchnorm", 1e-6, steps=30, depth=6, ics_layers=[3, 5], ics_every=10)
    assert again["loss"] == r["loss"] and again["ics"] == r["ics"] and any(tmp_cache.rglob("*.json"))
    bad = X.dln_run("none", 1.0, steps=100, depth=6, ics_layers=[3], ics_every=5)
    assert bad["diverged"] and bad["diverged_at"] < 100
    assert len(bad["ics"]["steps"]) <= bad["diverged_at"] // 5 + 2  # measurements stop with the run
    s = SUM.summarize([r], [r], 3)
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
        ics_cost("resnet")


def test_equal_loss_comparison_and_trains():
    def fake(loss, l2):
        steps = list(range(0, 100, 10))
        return {"loss": list(loss), "diverged": False,
                "ics": {"steps": steps, "layers": [1], "l2": [[l2[s]] for s in steps], "cos": [[1.0] for _ in steps],
                        "rel": [[0.1] for _ in steps], "g_norm": [[1.0] for _ in steps]}}
    t = np.arange(100)
    a = fake(2.0 * np.exp(-t / 50), np.full(100, 1.0))
    b = fake(2.0 * np.exp(-t / 25), np.full(100, 3.0))  # faster, with 3x the ICS at every loss
    cmp = SUM.at_equal_loss([a], [b], 1, "l2", n_levels=3, window=1)
    assert len(cmp["levels"]) == 3 and cmp["none"] == [1.0] * 3 and cmp["batchnorm"] == [3.0] * 3
    assert X.trains({"loss": [0.5] * 50, "diverged": False}) and not X.trains({"loss": [2.3] * 50, "diverged": False})
    assert not X.trains({"loss": [0.1], "diverged": True})


def test_span_for_generated_prose():
    assert R.span([5.46, 3.4]) == "3.4-5.5"
    assert R.span([0.82]) == "0.82" and R.span([1.0, 1.04]) == "1.0"  # both ends print the same: one number
    assert R.span([229.6, 541.5]) == "230-542" and R.span([0.024, 0.0243]) == "0.024"
    assert R.span([0.63, 0.82], ".2f") == "0.63-0.82" and R.span([7.7, 46.6], ".0f") == "8-47"
    assert R.span([-0.78, 0.3]) == "-0.78 to 0.30"
    assert R.span([float("nan"), 2.0, float("inf")]) == "2.0" and R.span([]) == "n/a" and R.span([math.nan]) == "n/a"
    assert R.span([0.0, 0.5]) == "0-0.50"


def test_scan_table():
    scan = {"lrs": [0.1, 0.5],
            "none": {"trains": [True, False], "final_loss": [1.5, 2.3], "test_acc": [0.41, float("nan")],
                     "diverged": [False, True]},
            "batchnorm": {"trains": [True, True], "final_loss": [1.2, 1.4], "test_acc": [0.5, 0.45],
                          "diverged": [False, False]}}
    lines = R.ics.scan_table(scan).splitlines()
    assert lines[:2] == ["| η | 0.1 | 0.5 |", "|---|---|---|"]
    assert lines[2] == "| standard: final loss (test acc.) | 1.50 (41 %) | diverged |"
    assert lines[3] == "| BN: final loss (test acc.) | 1.20 (50 %) | 1.40 (45 %) |"
    assert lines[4] == "| trains? (standard / BN) | yes / yes | no / yes |"


def test_ratio_groups():
    rows = [dict(layer=5, lr=0.1, r=5.46), dict(layer=10, lr=0.1, r=3.4), dict(layer=5, lr=0.01, r=5.15),
            dict(layer=10, lr=0.01, r=0.82)]
    assert R.ics.ratio_groups(rows, "r") == ("larger at #5 (η = 0.1), #10 (η = 0.1) and #5 (η = 0.01): 3.4-5.5x; "
                                         "similar (0.8-1.25x) at #10 (η = 0.01): 0.82x")
    assert R.ics.ratio_groups(rows[:3], "r") == "larger in all 3 rows: 3.4-5.5x"
    assert R.ics.ratio_groups([dict(layer=9, lr=1e-7, r=541.5), dict(layer=17, lr=1e-7, r=229.6)], "r") == \
        "larger in both rows: 230-542x"
    assert R.ics.ratio_groups([dict(layer=9, lr=1e-6, r=0.5), dict(layer=17, lr=1e-6, r=math.nan)], "r") == \
        "smaller at #9 (η = 1e-06): 0.50x"
    assert R.ics.ratio_groups([dict(layer=9, lr=1e-6, r=math.nan)], "r") == "n/a"
    with pytest.raises(ValueError, match="band"):
        R.ics.ratio_groups(rows, "r", band=(1.2, 2.0))


# -- the weights-only reading (ICS(moves="weights")) ------------------------------------------------------------------

@pytest.mark.parametrize("model_fn,data_fn,kw", [
    (lambda: VGG("vgg11", width=1 / 16, norm="batchnorm"), _vgg_data, dict(batch_size=16, lr=0.05)),
    (lambda: DeepLinear(depth=8, dim=6, norm="batchnorm"), lambda: D.linear_teacher(200, 6),
     dict(batch_size=None, lr=1e-4, loss="sum_squared")),
])
def test_weights_only_reading_same_by_every_method_and_differs_with_bn(model_fn, data_fn, kw):
    """moves='weights' gives the same numbers by loop, prefix (chains only) and vmap; with BN (whose gamma/beta then
    stay at t) it differs from the main reading; G itself is the same under both readings."""
    out = {}
    methods = [("loop", "weights"), ("vmap", "weights"), ("loop", "all")]
    if isinstance(model_fn(), VGG):
        methods.append(("prefix", "weights"))
    for method, moves in methods:
        torch.manual_seed(0)
        model = model_fn()
        cb = ICS(model, every=2, method=method, moves=moves)
        train(model, data_fn(), steps=4, callbacks={"ics": cb}, progress=False, **kw)
        out[(method, moves)] = cb.result()
    ref = np.asarray(out[("loop", "weights")]["l2"])
    assert out[("loop", "weights")]["moves"] == "weights" and out[("loop", "all")]["moves"] == "all"
    for key, r in out.items():
        if key[1] == "weights":
            assert np.max(np.abs(np.asarray(r["l2"]) - ref)) <= 1e-3 * np.max(ref) + 1e-7
    assert np.allclose(out[("loop", "weights")]["g_norm"], out[("loop", "all")]["g_norm"], rtol=1e-5)
    assert not np.allclose(out[("loop", "all")]["l2"], ref, rtol=1e-3)


def test_weights_only_reading_equals_main_without_biases_or_bn():
    """A DLN without BN has only weights: both readings move the same parameters and agree exactly."""
    out = {}
    for moves in ("all", "weights"):
        torch.manual_seed(0)
        model = DeepLinear(depth=6, dim=5, norm="none")
        cb = ICS(model, every=1, moves=moves)
        train(model, D.linear_teacher(100, 5), steps=3, lr=1e-3, batch_size=None, loss="sum_squared",
              callbacks={"ics": cb}, progress=False)
        out[moves] = cb.result()
    assert out["all"]["l2"] == out["weights"]["l2"] and np.max(out["all"]["l2"]) > 0
    with pytest.raises(ValueError, match="moves"):
        ICS(DeepLinear(depth=3, dim=3), moves="biases")


def test_ics_array_accessor_in_metrics():
    from bnutils.metrics import ics_array
    res = {"steps": [0, 5], "layers": [2, 4], "l2": [[1.0, 2.0], [3.0, 4.0]], "cos": [[1, 1], [1, 1]],
           "rel": [[0, 0], [0, 0]], "g_norm": [[1, 1], [1, 1]]}
    st, v = ics_array({"ics": res}, "l2", 4)
    assert list(st) == [0, 5] and list(v) == [2.0, 4.0]
    assert list(ics_array(res, "l2", 2)[1]) == [1.0, 3.0]  # the ICS result itself works too
    with pytest.raises(ValueError, match="no ICS"):
        ics_array({"ics": None}, "l2", 2)
    with pytest.raises(ValueError, match="key"):
        ics_array(res, "l3", 2)
    with pytest.raises(ValueError, match="layer"):
        ics_array(res, "l2", 3)


# -- the chapter's derived numbers ----------------------------------------------------------------------------------

def _acts_run(quantiles, sample):
    return {"acts": {"steps": list(range(len(quantiles))), "layers": {
        l: {"quantiles": quantiles, "sample": sample} for l in ("#3", "#11")}}}


def test_quantile_drift_layer_drifts_and_dead_channels():
    still = _acts_run([[-1, 0, 1]] * 3, [[0.5, -0.5]] * 3)
    moving = _acts_run([[-1, 0, 1], [0, 1, 2], [0, 1, 3]], [[-1.0, -2.0]] * 3)  # median +1, spread +1 over 2, 3
    from bnutils.metrics.activations import negative_share, quantile_drift
    assert quantile_drift(still["acts"], "#3") == 0.0
    assert quantile_drift(moving["acts"], "#3") == pytest.approx(np.mean([1 / 2, 1 / 3]))
    assert math.isnan(quantile_drift(_acts_run([[-1, 0, 1]], [[0.0]])["acts"], "#3"))
    with pytest.raises(ValueError, match="layer"):
        quantile_drift(still["acts"], "#4")
    d = X.layer_drifts({"none": moving, "batchnorm": still})
    assert set(d) == {(l, n) for l in ("#3", "#11") for n in X.NORMS} and d[("#3", "batchnorm")] == 0.0
    dead = X.dead_channels({"none": moving, "batchnorm": still})
    assert [(x["layer"], x["norm"], x["below"], x["n"], x["all"]) for x in dead] == \
        [("#3", "none", 6, 6, True), ("#11", "none", 6, 6, True)]
    assert negative_share(still["acts"], "#3") == dict(below=3, n=6, all=False)
    with pytest.raises(ValueError, match="layer"):
        negative_share(still["acts"], "#4")


def _fig1_run(loss, acc=0.5, diverged=False):
    return {"loss": [loss] * 40, "diverged": diverged, "evals": [{"step": 39, "test_acc": acc}], "acc": [acc] * 40,
            "diverged_at": 5 if diverged else None}


def test_fig1_outcomes():
    fig1 = {("none", 0.1): _fig1_run(1.0, 0.4), ("batchnorm", 0.1): _fig1_run(0.8, 0.5),
            ("none", 0.5): _fig1_run(9.0, 0.1, diverged=True), ("batchnorm", 0.5): _fig1_run(1.2, 0.45)}
    o = X.fig1_outcomes(fig1, 0.1, 0.5)
    assert o["both_lo"] and o["only_bn_hi"] and o["bn_better"]
    assert math.isnan(o["acc"][("none", 0.5)]) and o["diverged"][("none", 0.5)] and o["trains"][("none", 0.1)]
    fig1[("batchnorm", 0.1)] = _fig1_run(0.8, 0.3)
    assert not X.fig1_outcomes(fig1, 0.1, 0.5)["bn_better"]


def _ics_fake(l2, cos, loss=None, layer=5, n=5):
    steps = list(range(0, 10 * n, 10))
    loss = loss if loss is not None else list(np.linspace(2.0, 0.5, 10 * n))
    row = lambda v: [[v] for _ in steps]
    return {"loss": loss, "diverged": False, "ics": {"steps": steps, "layers": [layer], "l2": row(l2),
                                                      "cos": row(cos), "rel": row(0.1), "g_norm": row(1.0)}}


def test_ics_rows_applies_the_rule_per_group_and_seed():
    from bnutils.claims import reduces_ics
    runs = {"none": [_ics_fake(1.0, 0.5), _ics_fake(1.0, 0.5)], "batchnorm": [_ics_fake(3.0, 0.4), _ics_fake(0.5, 0.4)]}
    out = X.ics_rows([("VGG", 0.1, 5, runs)], reduces=reduces_ics)
    s = out["summary"][0]
    assert s["name"] == "VGG" and s["layer"] == 5 and s["l2_ratio"] == pytest.approx(1.75)
    assert s["has_loss"] and not s["reduces_step"]
    assert out["step_cases"][0]["l2_ratio"] == pytest.approx([3.0, 0.5])  # per seed: the second one reduces
    assert out["loss_cases"][0]["l2_ratio"] == pytest.approx([3.0, 0.5])
    apart = {"none": [_ics_fake(1.0, 0.5, loss=[2.0] * 50)], "batchnorm": [_ics_fake(1.0, 0.5, loss=[0.5] * 50)]}
    out = X.ics_rows([("DLN", 1e-6, 5, apart)], reduces=reduces_ics)  # losses never overlap: no equal-loss case
    assert not out["summary"][0]["has_loss"] and not out["summary"][0]["reduces_loss"] and out["loss_cases"] == []


def test_cos_stats_and_dln_cosines():
    a, b = _ics_fake(1.0, 0.9, layer=9), _ics_fake(1.0, 0.1, layer=9)
    assert SUM.cos_stats([a], layers=(9,)) == (pytest.approx(0.9), pytest.approx(0.0))
    c = X.dln_cosines({1e-6: {"none": [a], "batchnorm": [a, b]}}, layers=(9,))
    assert c["pooled"][(1e-6, "none")][0] == pytest.approx(0.9) and len(c["per_seed"][(1e-6, "batchnorm")]) == 2
    assert c["pooled"][(1e-6, "batchnorm")][1] > 0.5


def test_readings_side_by_side():
    run = lambda l2_all, l2_w: {**_ics_fake(l2_all, 0.5), "ics_weights": _ics_fake(l2_w, 0.6)["ics"]}
    rows = SUM.readings({"none": run(1.0, 1.0), "batchnorm": run(2.0, 0.5)}, [5])
    r = rows[0]
    assert r["ratio_all"] == pytest.approx(2.0) and r["ratio_weights"] == pytest.approx(0.5)
    assert r["cos_none_weights"] == pytest.approx(0.6) and r["l2_batchnorm_all"] == pytest.approx(2.0)


def test_settings_and_slider_frames():
    from bnutils.profiles import PROFILES
    p = PROFILES["ci"]
    s = X.settings(p, seed=3)
    assert s["vgg_steps"] == X.SCALES["ci"]["vgg_steps"] and s["seeds"] == [3] and s["fig1_lrs"] == [0.1, 0.5]
    assert s["vgg_kw"]["ics_layers"] == s["vgg_layers"] == [3, 5, 10, 11] and s["readings_kw"]["ics_layers"] == [5, 10]
    assert s["readings_kw"]["steps"] < s["vgg_steps"] and s["readings_kw"]["act_layers"] is None
    s = X.settings(p, vgg_steps=90, n_seeds=2, ics_every=7, dln_lrs=[1e-5, 1e-6])
    assert s["vgg_steps"] == 90 and s["seeds"] == [0, 1] and s["vgg_every"] == s["dln_every"] == 7
    assert s["dln_lrs"] == [1e-5, 1e-6] and s["readings_kw"]["steps"] == 30
    assert len(X.slider_frames(s)) == 2 * 4 + 2 * 4
    assert X.slider_frames(s, short=True)[0] == ("VGG", 0.1, 5)


def test_vgg_run_records_the_conv_output_before_bn_and_both_readings(cifar_cache, cifar_env):
    """The distributions are the conv output, before BN: not standardized per channel as BN's output is."""
    from conftest import cifar_root
    if cifar_root() is None:
        pytest.skip("offline CIFAR-10 not available")
    r = X.vgg_run("batchnorm", 0.05, steps=3, width=1 / 16, n_train=64, n_test=32, batch_size=16, ics_layers=[3],
                  ics_every=1, act_layers=[3], act_every=1, weights_only_too=True)
    assert r["ics_weights"]["moves"] == "weights" and r["ics"]["moves"] == "all" and len(r["ics_weights"]["l2"]) == 3
    q = np.asarray(r["acts"]["layers"]["#3"]["quantiles"])
    assert q.shape == (3, 3) and not np.allclose(q[:, 1], 0.0, atol=1e-3)  # BN's output would have ~0 median
    assert X.vgg_run("none", 0.05, steps=2, width=1 / 16, n_train=64, n_test=32, batch_size=16, ics_every=None,
                     act_layers=[3])["ics_weights"] is None


# -- chapter 2's generated prose (bnutils.report.ics.*): one test per branch that changes the sentence ----------------

def test_ch2_who():
    assert R.ics.who(True, True) == "both networks train" and R.ics.who(False, True) == "only BN trains"
    assert R.ics.who(True, False) == "only the standard network trains"
    assert R.ics.who(False, False) == "neither network trains"


def _scan(none, bn, loss_none=(1.0, 2.3), pair=None):
    return {"lrs": [0.1, 0.5], "steps": 200, "pair": pair,
            "none": {"trains": list(none), "final_loss": list(loss_none)},
            "batchnorm": {"trains": list(bn), "final_loss": [1.0, 1.2]}}


def test_ch2_scan_text_branches():
    ok = R.ics.scan_text(_scan([True, False], [True, True]), 0.1, 0.5, 300)
    assert "keeps its meaning" in ok and "η = 0.1" in ok and "We keep the pair" not in ok
    none = R.ics.scan_text(_scan([False, False], [False, False]), 0.1, 0.5, 300)
    assert none.startswith("In 200-step runs neither network trains") and "We keep the pair; the 300-step" in none
    part = R.ics.scan_text(_scan([False, False], [True, True], loss_none=(2.2, 2.3)), 0.1, 0.5, 300)
    assert "only in part" in part and "above the threshold 2.07" in part and "as in the paper" in part
    assert "holds no η" in part
    notc = R.ics.scan_text(_scan([False, True], [False, True], pair=[0.05, 0.1]), 0.1, 0.5, 300)
    assert "does not confirm" in notc and "The grid's own pair would be 0.05/0.1" in notc


def test_ch2_drift_text_branches():
    d = lambda n3, b3, n11, b11: {("#3", "none"): n3, ("#3", "batchnorm"): b3, ("#11", "none"): n11,
                                  ("#11", "batchnorm"): b11}
    less = R.ics.drift_text(d(1.0, 0.1, 1.0, 0.3), similar=False)
    assert "drift less" in less and "far" not in less and "does separate" in less
    assert "far less" in R.ics.drift_text(d(1.0, 0.1, 1.0, 0.1), similar=False)
    assert "drift more" in R.ics.drift_text(d(0.1, 1.0, 0.1, 0.5), similar=False)
    same = R.ics.drift_text(d(1.0, 1.0, 1.0, 1.2), similar=True)
    assert "about as much" in same and "barely separates" in same
    mixed = R.ics.drift_text(d(1.0, 0.1, 0.1, 1.0), similar=False)
    assert mixed.startswith("The two layers disagree") and "does not consistently" in mixed
    dead = [dict(layer="#3", norm="none", below=256, n=256, all=True), dict(layer="#11", norm="none", below=250,
            n=256, all=False), dict(layer="#3", norm="batchnorm", below=256, n=256, all=True)]
    txt = R.ics.drift_text(d(1.0, 1.0, 1.0, 1.2), similar=True, dead=dead)
    assert "at #3 is below zero in 256 of its 256 recorded values: dead" in txt and "nearly dead" in txt
    assert txt.count("(The channel shown") == 2  # BN's conv output is re-centred before the ReLU: never 'dead'


def _row(name="VGG", lr=0.1, layer=5, l2_ratio=2.0, dcos=-0.1, reduces_step=False, has_loss=True,
         reduces_loss=False, eq_ratio=1.5):
    return dict(name=name, lr=lr, layer=layer, l2_none=1.0, l2_batchnorm=l2_ratio, l2_ratio=l2_ratio, cos_none=0.5,
                cos_batchnorm=0.5 + dcos, rel_none=0.1, rel_batchnorm=0.2, rel_ratio=2.0, eq_ratio=eq_ratio,
                eq_dcos=-0.1, has_loss=has_loss, reduces_step=reduces_step, reduces_loss=reduces_loss)


def test_ch2_ics_table():
    t = R.ics.ics_table([_row(), _row(has_loss=False, eq_ratio=math.nan)]).splitlines()
    assert t[0].startswith("| net | η | layer |") and len(t) == 4
    assert t[2].endswith("| no / no |") and t[3].endswith("| no / n/a |")


def test_ch2_readings_table_branches():
    row = lambda a, w: dict(layer=5, ratio_all=a, ratio_weights=w, **{f"{q}_{n}_{k}": 1.0 for q in ("l2", "cos")
                                                                        for n in ("none", "batchnorm")
                                                                        for k in ("all", "weights")})
    same = R.ics.readings_table([row(2.0, 1.5)], 0.1, 100)
    assert "*Secondary analysis* (VGG, η = 0.1, one seed, 100 steps)" in same and "does not hinge" in same
    assert same.count("| #5 |") == 2
    flip = R.ics.readings_table([row(2.0, 0.5)], 0.1, 100)
    assert "At layer #5 the two readings put BN on different sides" in flip
    assert "too short to measure" in R.ics.readings_table([row(math.nan, math.nan)], 0.1, 6)


def _verdicts(words=("yes",) * 6):
    from bnutils.report import Verdict
    return [Verdict(claim=f"c{i}", paper="p", reproduced=w, evidence="e", adequate=w != "not at this scale")
            for i, w in enumerate(words)]


def _fig1(both_lo=True, bn_better=True, only_bn_hi=True, any_trains=True):
    tr = {("none", 0.1): both_lo, ("batchnorm", 0.1): both_lo or any_trains, ("none", 0.5): not only_bn_hi,
          ("batchnorm", 0.5): only_bn_hi}
    if not any_trains:
        tr = {k: False for k in tr}
    acc = {("none", 0.1): 0.5, ("batchnorm", 0.1): 0.6 if bn_better else 0.4, ("none", 0.5): math.nan,
           ("batchnorm", 0.5): 0.5}
    return dict(acc=acc, trains=tr, diverged={k: k == ("none", 0.5) for k in tr}, both_lo=both_lo,
                only_bn_hi=only_bn_hi, bn_better=bn_better)


def _means(verdicts=None, fig1=None, drift=(1.0, 1.2), similar=True, summary=None, dln_cos=None):
    summary = summary or [_row(), _row(layer=10), _row("DLN", 1e-6, 9), _row("DLN", 1e-6, 17)]
    dln_cos = dln_cos or {(1e-6, "none"): (0.98, 0.02), (1e-6, "batchnorm"): (0.5, 0.6)}
    return R.ics.what_this_means(verdicts or _verdicts(), fig1 or _fig1(), (0.1, 0.5), 300,
                                 {"#3": drift[0], "#11": drift[1]}, similar, summary, dln_cos)


def test_ch2_what_this_means_headline_and_fig1_branches():
    t = _means()
    assert t.startswith("**Does BN reduce internal covariate shift? No, not in Santurkar et al.'s sense.** Our 6 "
                        "verdicts: 6 yes.")
    assert "*Fig 1 holds at this scale.* At η = 0.1 both networks train, and BN is ahead" in t
    assert "the ordering is the same" in t and "diverged without" in t and "BN trains better (Fig 1)" in t
    t = _means(verdicts=_verdicts(("no", "no", "yes", "yes", "yes", "yes")), fig1=_fig1(bn_better=False))
    assert "*Fig 1 does not hold at this scale.*" in t and "but BN is not ahead" in t
    assert "*Fig 1 holds in part" in _means(verdicts=_verdicts(("yes", "no", "yes", "yes", "yes", "yes")))
    t = _means(fig1=_fig1(both_lo=False, bn_better=False, only_bn_hi=False, any_trains=False),
               verdicts=_verdicts(("not at this scale",) * 2 + ("yes",) * 4))
    assert "*Fig 1 cannot be judged at this scale.*" in t
    assert "steps are too few here for any of these runs to train" in t and "Fig 1 does not show BN training" in t


def test_ch2_what_this_means_drift_branches():
    t = _means(drift=(5.0, 8.0), similar=False)
    assert "*The layer inputs are more stable with BN*" in t and "Our runs disagree with the paper here" in t
    t = _means(verdicts=_verdicts(("yes", "yes", "no", "yes", "yes", "yes")), drift=(5.0, 8.0), similar=False)
    assert "That is the only verdict that goes against the paper" in t
    assert "about as stable with BN as without*" in _means()
    assert "not consistently more stable with BN*" in _means(drift=(0.2, 3.0), similar=False)


def test_ch2_what_this_means_ics_branches():
    t = _means()
    assert "not reduced by BN in the VGG: it is similar or larger.*" in t and "Still no reduction." in t
    rows = [_row(l2_ratio=0.5, dcos=0.1, reduces_step=True), _row(layer=10), _row("DLN", 1e-6, 9),
            _row("DLN", 1e-6, 17)]
    t = _means(summary=rows)
    assert "*BN reduces ICS by Definition 2.1 in 1 of the 2 VGG rows.*" in t and "No reduction there." in t
    assert "In 1 of 4 (net, η, layer) rows at equal step" in t and "do not rule out" in t
    rows = [_row(reduces_loss=True), _row(layer=10), _row("DLN", 1e-6, 9), _row("DLN", 1e-6, 17)]
    t = _means(summary=rows)
    assert "Not at equal step; at equal loss it does in 1 of 4 rows" in t and "a reduction in 1 of 2 rows" in t
    rows = [_row(has_loss=False), _row(layer=10, has_loss=False), _row("DLN", 1e-6, 9), _row("DLN", 1e-6, 17)]
    assert "training losses do not overlap" in _means(summary=rows)
    rows = [_row(l2_ratio=0.7), _row(layer=10), _row("DLN", 1e-6, 9), _row("DLN", 1e-6, 17)]  # (rule faked)
    t = _means(summary=rows)
    assert "in the VGG.*" in t and "similar or larger" not in t


def test_ch2_what_this_means_dln_branches():
    assert "*The DLN at η = 1e-06 is the paper's picture:*" in _means()
    t = _means(dln_cos={(1e-6, "none"): (0.98, 0.5), (1e-6, "batchnorm"): (0.5, 0.1)})
    assert "the standard network matches the paper, BN does not:*" in t
    rows = [_row(), _row(layer=10), dict(_row("DLN", 1e-6, 9), cos_none=-0.7), _row("DLN", 1e-6, 17)]
    t = _means(summary=rows, dln_cos={(1e-6, "none"): (0.2, 1.5), (1e-6, "batchnorm"): (0.5, 0.1)},
               verdicts=_verdicts(("yes",) * 5 + ("partly",)))
    assert "*At η = 1e-06 our standard DLN disagrees with the paper.*" in t
    assert "layer #9 even anti-aligned" in t and 'hence the "partly" above.' in t


# -- chapter 2's figures ---------------------------------------------------------------------------------------------

def test_ch2_figures_draw():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from bnutils.figures import ics as figs
    rng = np.random.default_rng(0)
    acts = lambda shift: {"steps": [0, 10, 20], "layers": {l: {"quantiles": [[-1 + shift, 0, 1]] * 3,
                          "sample": [list(rng.normal(shift, 1, 50)) for _ in range(3)]} for l in ("#3", "#11")}}
    runs = {"none": {**_fig1_run(1.0), "acts": acts(0.0)}, "batchnorm": {**_fig1_run(0.8), "acts": acts(3.0)}}
    fig = figs.plot_layer_inputs(runs, title="t")
    ax = fig.axes
    assert ax[0].get_ylim() == ax[1].get_ylim() and ax[0].get_xlim() == ax[1].get_xlim()  # one shared range
    plt.close(fig)
    fig1 = {(n, lr): _fig1_run(1.0 if n == "none" else 0.8) for n in X.NORMS for lr in (0.1, 0.5)}
    fig = figs.plot_fig1_curves(fig1, (0.1, 0.5), title="t")
    assert fig.axes[0].get_title() == "η = 0.1: both train"
    plt.close(fig)
    mk = lambda l2: {**_ics_fake(l2, 0.5, loss=list(np.linspace(0.9, 0.7, 50))), "seconds": 1.0}
    by = {"none": [mk(1.0)], "batchnorm": [mk(2.0)]}
    fig = figs.plot_equal_loss([("VGG", by, 0.1, 5), ("DLN", by, 1e-6, 5)], title="t")
    for a in fig.axes:  # a narrow log range: at most 3 labelled ticks, no minor labels (they overprinted)
        assert len([t for t in a.get_xticklabels() if t.get_text()]) <= 3
        assert not [t for t in a.xaxis.get_minorticklabels() if t.get_text()]
        texts = [t.get_text() for t in a.get_xticklabels() if t.get_text()]
        assert len(set(texts)) == len(texts)  # distinct labels, even on a narrow range
    plt.close(fig)
    fig = plt.figure()
    figs.draw_ics_frame(fig, ("VGG", 0.1, 5), {0.1: by}, {})
    assert len(fig.axes) == 3 and "η = 0.1" in fig.axes[0].get_title()
    plt.close(fig)
