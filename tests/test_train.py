import math

import pytest
import torch

from bnutils import data as D
from bnutils.metrics import ActivationRecorder, layer_array
from bnutils.models import MLP, DeepLinear
from bnutils.train import Callback, Run, evaluate, seed_everything, train


def _blobs(n=512, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(10, 20, generator=g) * 3
    y = torch.arange(n) % 10
    x = centers[y] + torch.randn(n, 20, generator=g)
    return D.Dataset("blobs", D.Split(x[: n // 2], y[: n // 2]), D.Split(x[n // 2:], y[n // 2:]))


def test_training_learns_and_records_every_step():
    data = _blobs()
    run = train(MLP(20, width=32, depth=2, norm="batchnorm"), data, steps=60, lr=0.1, batch_size=32,
                eval_every=20, progress=False)
    assert len(run.loss) == len(run.acc) == 60 and not run.diverged
    assert [e["step"] for e in run.evals] == [20, 40, 60]
    assert run.final_test_acc > 0.9 and run.loss[-1] < run.loss[0]


def test_divergence_is_recorded_not_raised():
    data = _blobs()
    run = train(MLP(20, width=32, depth=6, norm="none"), data, steps=200, lr=1e4, batch_size=32, progress=False)
    assert run.diverged and run.diverged_at is not None and run.diverged_at < 200
    bad = run.loss[run.diverged_at]
    assert not math.isfinite(bad) or bad > 1e3 * run.loss[0]
    assert math.isnan(run.final_test_acc)
    assert Run.from_dict(run.to_dict()).diverged


def test_same_seed_same_numbers_and_other_seed_differs():
    """Same seed (for the init and the run), same numbers, noise layers included; another seed differs."""
    data = _blobs()

    def run(seed):
        seed_everything(seed)
        model = MLP(20, width=16, depth=2, norm="noisy")
        return train(model, data, steps=25, lr=0.05, batch_size=16, seed=seed, progress=False).loss

    a, b, c = run(7), run(7), run(8)
    assert a == b and a != c


def test_evaluate_batch_stats_leaves_running_stats_untouched():
    model = MLP(20, width=16, depth=2, norm="batchnorm")
    data = _blobs()
    before = {k: v.clone() for k, v in model.named_buffers()}
    evaluate(model, data.test, stats="batch")
    assert all(torch.equal(before[k], v) for k, v in model.named_buffers())


def test_callbacks_see_gradients_and_updates():
    class Probe(Callback):
        every = 5

        def __init__(self):
            self.steps, self.grad_norms, self.moved = [], [], []

        def on_before_update(self, s):
            self.steps.append(s.step)
            self.w = s.model.head.weight.detach().clone()
            self.grad_norms.append(float(s.model.head.weight.grad.norm()))

        def on_after_update(self, s):
            self.moved.append(float((s.model.head.weight.detach() - self.w).norm()))

        def result(self):
            return {"steps": self.steps, "grad": self.grad_norms, "moved": self.moved}

    run = train(MLP(20, width=16, depth=2), _blobs(), steps=20, lr=0.1, batch_size=32,
                callbacks={"probe": Probe()}, progress=False)
    r = run.metrics["probe"]
    assert r["steps"] == [0, 5, 10, 15]
    assert all(math.isclose(m, 0.1 * g, rel_tol=1e-4) for m, g in zip(r["moved"], r["grad"]))


def test_activation_recorder():
    model = MLP(20, width=16, depth=3, activation="sigmoid", norm="batchnorm")
    rec = ActivationRecorder({"last": model.blocks[-1].act}, every=10, where="input")
    run = train(model, _blobs(), steps=30, lr=0.1, batch_size=32, callbacks={"acts": rec}, progress=False)
    res = run.metrics["acts"]
    assert res["steps"] == [0, 10, 20]
    q = layer_array(res, "last", "quantiles")
    assert q.shape == (3, 3) and (q[:, 0] <= q[:, 1]).all() and (q[:, 1] <= q[:, 2]).all()
    cm = layer_array(res, "last", "channel_mean")
    assert cm.shape == (3, 16) and abs(cm).max() < 1.0  # BN output before gamma/beta moves much: near 0
    assert len(res["layers"]["last"]["sample"][0]) == 32


def test_regression_task_uses_sum_of_squares():
    data = D.linear_teacher(n=200, dim=5, n_test=100, seed=0)
    run = train(DeepLinear(depth=3, dim=5), data, steps=50, lr=1e-4, batch_size=None, progress=False, eval_every=50)
    assert run.loss[-1] < run.loss[0] and math.isnan(run.evals[-1]["test_acc"])


@pytest.mark.parametrize("kw,match", [
    ({"lr": 0.0}, r"lr=0.0 must be > 0"),
    ({"lr": float("inf")}, r"lr=inf must be a finite number"),
    ({"lr": -0.1}, r"lr=-0.1"),
    ({"steps": 0}, r"steps=0"),
    ({"batch_size": 0}, r"batch_size=0"),
    ({"momentum": 1.5}, r"momentum=1.5"),
    ({"weight_decay": -1e-4}, r"weight_decay=-0.0001"),
    ({"loss": "hinge"}, r"loss='hinge'"),
    ({"seed": -1}, r"seed=-1"),
    ({"eval_stats": "population"}, r"eval_stats='population'"),
    ({"lr_drop": (0.5,)}, r"lr_drop="),
    ({"callbacks": {"x": object()}}, r"callbacks\['x'\]"),
    ({"batch_size": 10_000}, r"batch_size=10000 is larger"),
])
def test_bad_training_arguments(kw, match):
    args = dict(steps=5, lr=0.1, batch_size=16, progress=False)
    args.update(kw)
    with pytest.raises(ValueError, match=match):
        train(MLP(20, width=8, depth=1), _blobs(), **args)


def test_channels_last_is_a_layout_change_only(tiny_images):
    """channels_last=True stores the conv weights channels-last and gives the contiguous layout's losses (float
    tolerance); the default (None) is channels-last for conv nets."""
    from bnutils.models import VGG
    data = tiny_images(64, 16)
    runs, models = {}, {}
    for cl in (False, True, None):
        seed_everything(0)
        models[cl] = VGG("vgg11", width=1 / 16, norm="batchnorm")
        runs[cl] = train(models[cl], data, steps=3, lr=0.01, batch_size=16, channels_last=cl, progress=False)
    conv = lambda m: m.blocks[1].layer.weight
    assert conv(models[True]).is_contiguous(memory_format=torch.channels_last)
    assert conv(models[None]).is_contiguous(memory_format=torch.channels_last)
    assert not conv(models[False]).is_contiguous(memory_format=torch.channels_last)
    assert runs[True].loss == pytest.approx(runs[False].loss, rel=1e-5)
    for a, b in zip(models[False].parameters(), models[True].parameters()):  # the weights moved, identically
        assert float((a - b).detach().abs().max()) <= 1e-4 * float(a.detach().abs().max())


def test_amp_on_a_cpu_trains_in_bf16_while_metrics_stay_float32(tiny_images, monkeypatch):
    """bf16 autocast is for the training step only: evaluation, ICS and the landscape probes compute in float32.
    The CPU is taken to have native bf16, so that this runs everywhere (elsewhere torch emulates bf16, slowly)."""
    import bnutils.train
    from bnutils.metrics import ICS, LandscapeProbe
    from bnutils.models import VGG

    monkeypatch.setattr(bnutils.train, "cpu_bf16", lambda: True)

    data = tiny_images(48, 16)
    model = VGG("vgg11", width=1 / 16, norm="batchnorm")
    seen: list[tuple[str, torch.dtype]] = []
    phase = {"now": "step"}

    class Phase(Callback):  # marks which forward passes are the step's, the metrics' and the evaluation's
        def on_step_start(self, s):
            phase["now"] = "step"

        def on_before_update(self, s):
            phase["now"] = "metrics"

        def on_after_update(self, s):
            phase["now"] = "evaluation"

    model.features[0].register_forward_hook(lambda m, i, o: seen.append((phase["now"], o.dtype)))
    run = train(model, data, steps=2, lr=0.01, batch_size=16, amp=True, eval_every=2, progress=False,
                callbacks={"phase": Phase(), "ics": ICS(model, layers=[2], every=1, method="loop"),
                           "probe": LandscapeProbe(every=1, n_probes=2, method="loop")})
    assert {d for p, d in seen if p == "step"} == {torch.bfloat16}
    assert {d for p, d in seen if p == "metrics"} == {torch.float32}
    assert {d for p, d in seen if p == "evaluation"} == {torch.float32}
    assert run.metrics["ics"] and run.metrics["probe"]


def test_cpu_bf16_reads_the_cpu_flags_when_torch_has_no_query(monkeypatch, tmp_path):
    """torch < 2.4 has no torch.cpu._is_avx512_bf16_supported: the CPU's flags decide, so bf16 is not silently lost."""
    from bnutils.train import cpu_bf16

    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name, raising=False)
    info = tmp_path / "cpuinfo"
    info.write_text("flags\t\t: fpu sse avx512f avx512_bf16\n")
    assert cpu_bf16(str(info)) is True
    info.write_text("flags\t\t: fpu sse avx2\n")
    assert cpu_bf16(str(info)) is False
    assert cpu_bf16(str(tmp_path / "missing")) is False
