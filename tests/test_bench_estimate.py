"""bench/estimate.py: FLOP counts against hand counts, the workloads read from the notebooks, the time arithmetic."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_estimate", ROOT / "bench" / "estimate.py")
E = sys.modules["bench_estimate"] = importlib.util.module_from_spec(_spec)  # dataclasses look the module up
_spec.loader.exec_module(E)


def test_linear_layer_flops_match_a_hand_count():
    n, d_in, d_out = 8, 20, 10
    c = E.measure(nn.Linear(d_in, d_out, bias=False), (d_in,), batch=n)
    assert c.fwd_flops == 2 * d_in * d_out  # per example: one multiply-add per weight
    assert c.step_flops == 2 * (2 * d_in * d_out)  # + the weight gradient; the input needs no gradient


def test_conv_flops_on_the_meta_device_match_a_hand_count():
    with torch.device("meta"):
        net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.Flatten())
    c = E.measure(net, (3, 32, 32), batch=4)
    assert c.fwd_flops == 2 * 3 * 16 * 3 * 3 * 32 * 32


def test_mlp_of_chapter_1_matches_a_hand_count():
    c = E.model_cost("mlp/batchnorm")  # 3072 -> 100 -> 100 -> 100 -> 10, built on the meta device
    weights = 3072 * 100 + 100 * 100 * 2 + 100 * 10
    assert c.fwd_flops == 2 * weights
    assert c.step_flops == 2 * weights + 2 * weights + 2 * (100 * 100 * 2 + 100 * 10)  # + dW, + dx above layer 1
    assert c.n_layers == 4 and 0 < c.fwd_ops < c.step_ops


@pytest.mark.parametrize("chapter", list(E.WORKLOADS))
def test_every_chapter_has_a_workload_with_positive_totals(chapter):
    items = E.WORKLOADS[chapter]()  # reads the gpu= values from the notebook: raises if an anchor is gone
    assert items and all(w.passes > 0 and w.batch > 0 for w in items)
    fake = lambda key: E.ModelCost(1e8, 3e8, 100, 300, 10)  # noqa: E731 (the real counts take seconds)
    est = E.estimate_chapter(chapter, cost=fake)
    assert est.flops > 0 and 0 < est.seconds[0] <= est.seconds[1]
    assert 0 <= est.cpu_seconds[0] <= est.seconds[0]


def test_notebook_reading_follows_the_notebook_and_fails_loudly():
    steps = E.gpu_pick("05_learning_rate", "STEPS = steps or")
    assert isinstance(steps, int) and steps > 0
    assert E.literal("04_landscape", "LP") == ["l1", "l2", "linf"]
    with pytest.raises(E.NotebookChanged):
        E.gpu_pick("05_learning_rate", "NO_SUCH_NAME = ")
    with pytest.raises(E.NotebookChanged):
        E.require("03_noisy_bn", "this line is not in the chapter")


def test_time_is_flops_over_throughput_plus_op_overhead():
    cost = E.ModelCost(fwd_flops=0.0, step_flops=1e12, fwd_ops=0, step_ops=1000, n_layers=0)
    w = E.Work("x", "any", batch=10, passes=100, amp=True)  # 1e15 FLOP, 100 x (1000 + 5 GradScaler) ops
    lo, hi = E.work_seconds(w, cost)
    ops = 100 * 1005
    assert lo == pytest.approx(max(1e15 / (65e12 * E.AMP_UTILISATION[1]), ops * E.OP_SECONDS["cuda"][0]))
    assert hi == pytest.approx(1e15 / (65e12 * E.AMP_UTILISATION[0]) + ops * E.OP_SECONDS["cuda"][1])
    lo, hi = E.work_seconds(w, cost, achieved_tflops=10.0)  # a measured throughput replaces the range
    assert lo == pytest.approx(100.0) and hi == pytest.approx(100.0 + ops * E.OP_SECONDS["cuda"][1])
    tiny = E.Work("y", "any", batch=1, passes=1000, device="cpu")  # overhead-bound: FLOPs are negligible
    lo, _ = E.work_seconds(tiny, E.ModelCost(0.0, 1.0, 0, 600, 25))
    assert lo == pytest.approx(1000 * 600 * E.OP_SECONDS["cpu"][0])
