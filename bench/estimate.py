"""Estimated runtime of each chapter at the `gpu` profile on a Colab T4, from FLOP counts (issue #9, item 6).

    python bench/estimate.py                         # the chapter table, the basis and the per-item workload
    python bench/estimate.py --achieved-tflops 9.5   # AMP throughput measured by `bench/run.py --gpu`

1. Workload: each chapter's experiments module declares its settings at every profile, `SCALES` (the notebook
   reads `SCALES[P.name]`), and `workload(scale, profile)`, what the chapter runs at that scale (model, batch,
   passes, training or forward only, AMP, device). Here: `workload(SCALES["gpu"], PROFILES["gpu"])`.
2. FLOPs: `FlopCounterMode` counts one forward pass and one SGD step of every model on the `meta` device (matmuls
   and convolutions, 2 FLOP per multiply-add; element-wise work is left to the utilisation); the same pass counts
   the aten ops, for the per-op overhead.
3. Time: FLOPs / achieved throughput plus the per-op overhead, as a low-high range (`BASIS`). A measured AMP
   throughput (`bench/run.py --gpu` on a T4, `achieved_tflops`) replaces the assumed AMP utilisation.
Not included: set-up, loading CIFAR-10, plotting, cuDNN warm-up, cells with under a second of work. Diverging runs
stop early, so chapters 3 and 5 come out at or below the range.
"""
from __future__ import annotations

import argparse
import functools
import inspect
import math
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bnutils import train as T  # noqa: E402
from bnutils.experiments import basics, causal, divergence, ics, landscape, noisy  # noqa: E402
from bnutils.models import MLP, VGG, DeepLinear, ResNet, weight_layers  # noqa: E402
from bnutils.profiles import PROFILES  # noqa: E402

WORKLOADS = {"01_bn_basics": basics, "02_internal_covariate_shift": ics, "03_noisy_bn": noisy,
             "04_landscape": landscape, "05_learning_rate": divergence, "06_causal": causal}  # chapter: its SCALES and workload()
GPU = PROFILES["gpu"]
EVAL_BATCH = inspect.signature(T.evaluate).parameters["batch_size"].default  # evaluate() runs in batches of 1000

# -- the basis: T4 throughput, utilisation and per-op overhead -------------------------------------------------
T4_FP16_PEAK = 65e12  # FLOP/s, fp16 tensor cores (NVIDIA T4 datasheet)
T4_FP32_PEAK = 8.1e12  # FLOP/s, fp32 (T4 has no TF32: float32 convs run on the CUDA cores)
# Achieved fraction of peak, (pessimistic, optimistic). Reference point: NVIDIA's published T4 numbers for
# ResNet-50 (DeepLearningExamples, PyTorch, batch 128): AMP inference 1190 img/s x 8.2 GFLOP = 9.8 TFLOP/s, 15 % of
# the fp16 peak; fp32 inference 426 img/s = 3.5 TFLOP/s, 43 % of the fp32 peak. Training does worse than inference
# (the backward pass, BN/ReLU/optimizer are memory-bound) and the T4's 70 W cap lowers its clock under sustained
# load, while CIFAR's 32x32 images and 16-512 channels make smaller matrices than ResNet-50's. Hence 10-25 % of the
# fp16 peak for AMP training (the 20-30 % often quoted for VGG-16 is the optimistic end), 30-50 % of the fp32 peak
# for float32 work (ICS, landscape probes, evaluation, and chapter 4's training, which runs without amp).
AMP_UTILISATION = (0.10, 0.25)
FP32_UTILISATION = (0.30, 0.50)
CPU_FLOPS = (10e9, 25e9)  # FLOP/s of Colab's 2 vCPUs; VGG-16 forward+backward measured ~12 GFLOP/s on our 2 cores
# Seconds per aten op, (low, high). On the GPU: eager PyTorch's Python/dispatcher/launch cost on the host, which
# overlaps GPU work as long as the GPU is the slower side. On the CPU (the DLN runs, which the chapters keep there):
# CPU time of a DLN training step (25 layers of 10x10, 1000 points, 1 thread) on our shared 2-core machine divided
# by its ops: 10 us with l1 norms, 17-20 us without norm, 35-42 us with BN (the tiny arithmetic included).
OP_SECONDS = {"cuda": (5e-6, 10e-6), "cpu": (10e-6, 40e-6)}
LOOP_OPS = 15  # bnutils.train's own ops per step (batch indexing, loss/accuracy bookkeeping), counted on the CPU
AUGMENT_OPS = 19  # bnutils.data.augment per batch (random crop + flip), counted
RECORDER_OPS = 16  # ActivationRecorder per layer and record without quantiles, counted
AMP_OPS_PER_LAYER = 2  # autocast casts per conv/linear (weight, activation); GradScaler adds ~5 per step
COUNT_BATCH = 8  # FLOPs are linear in the batch: count at 8 examples, scale to any batch
DETAIL_SHARE = 0.01  # the per-item table lists items above this share of their chapter's high estimate

BASIS = (
    f"T4 peaks {T4_FP16_PEAK / 1e12:g} TFLOP/s fp16 (tensor cores), {T4_FP32_PEAK / 1e12:g} TFLOP/s fp32. "
    f"AMP training at {AMP_UTILISATION[0]:.0%}–{AMP_UTILISATION[1]:.0%} of the fp16 peak, float32 work (metrics, "
    f"evaluation, chapter 4's training) at {FP32_UTILISATION[0]:.0%}–{FP32_UTILISATION[1]:.0%} of the fp32 "
    "peak: NVIDIA's published T4 ResNet-50 numbers reach 15 % (AMP) and 43 % (fp32) in inference; training and "
    "CIFAR-sized layers do worse. "
    f"Per-op overhead {OP_SECONDS['cuda'][0] * 1e6:g}–{OP_SECONDS['cuda'][1] * 1e6:g} µs "
    "on the GPU (hidden behind GPU work when that is longer; not when the loop syncs every step) and "
    f"{OP_SECONDS['cpu'][0] * 1e6:g}–{OP_SECONDS['cpu'][1] * 1e6:g} µs on the CPU (DLN steps measured here). "
    "Low = max(FLOP time at the high utilisation, overhead); high = FLOP time at the low utilisation + overhead. "
    "FLOPs: `torch.utils.flop_counter` on the `meta` device (matmuls and convolutions, 2 per multiply-add); ops "
    "counted in the same pass.")


# -- models and their cost ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelCost:
    """Per example: FLOPs of a forward pass and of a training step; per pass: aten ops (forward, training step)."""

    fwd_flops: float
    step_flops: float
    fwd_ops: int
    step_ops: int
    n_layers: int  # conv/linear layers (for autocast's casts)


class _OpCounter(TorchDispatchMode):
    """Counts every aten op dispatched: on a GPU each is at least one kernel launch with its host-side cost."""

    ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        self.ops += 1
        return func(*args, **(kwargs or {}))


def measure(model: nn.Module, example_shape: tuple[int, ...], batch: int = COUNT_BATCH,
            regression: bool = False) -> ModelCost:
    """FLOPs (per example) and ops of one forward pass and one SGD training step (zero_grad, forward, loss,
    backward, momentum step) of `model` at `batch`. Works on any device; `meta` makes it instant."""
    dev = next(model.parameters()).device
    x = torch.randn(batch, *example_shape, device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    flops, ops = FlopCounterMode(display=False), _OpCounter()
    with flops, ops:
        opt.zero_grad(set_to_none=True)
        out = model(x)
        fwd_flops, fwd_ops = flops.get_total_flops(), ops.ops
        if regression:
            loss = (out - torch.randn(out.shape, device=dev)).pow(2).sum()
        else:
            loss = F.cross_entropy(out, torch.randint(0, out.shape[1], (batch,), device=dev))
        loss.backward()
        opt.step()
    return ModelCost(fwd_flops / batch, flops.get_total_flops() / batch, fwd_ops, ops.ops, len(weight_layers(model)))


@functools.lru_cache(maxsize=None)
def model_cost(key: str, width: float = 1.0) -> ModelCost:
    """`measure` of the network a workload names ('vgg16/noisy', 'resnet110/none', 'dln/l1', 'mlp/batchnorm'),
    built as the chapters build it, on the meta device (cached per key and width)."""
    arch, norm = key.split("/")
    with torch.device("meta"):
        if arch.startswith("vgg"):
            model, shape = VGG(arch, width=width, norm=norm), (3, 32, 32)
        elif arch.startswith("resnet"):
            model, shape = ResNet(depth=int(arch[len("resnet"):]), norm=norm, width=width), (3, 32, 32)
        elif arch == "dln":  # Santurkar's 25 layers of 10x10, a regression
            model, shape = DeepLinear(depth=25, dim=10, norm=norm), (10,)
        elif arch == "mlp":  # Ioffe & Szegedy's net on flattened CIFAR-10, as in basics.ioffe_fig1
            model = MLP(3 * 32 * 32, width=100, depth=3, activation="sigmoid", norm=norm, init="glorot")
            shape = (3, 32, 32)
        else:
            raise ValueError(f"unknown model key {key!r}")
    return measure(model, shape, regression=arch == "dln")


# -- the workload and its time --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Work:
    """One item of a chapter's `workload()`: `passes` passes of `model` over `batch` examples each."""

    what: str
    model: str  # 'arch/norm', see model_cost
    mode: str  # 'train' (bnutils.train steps), 'grad' (forward + backward), 'forward'
    batch: int
    passes: float
    amp: bool = False  # float16 autocast; False: float32
    device: str = "cuda"
    width: float = 1.0
    launches: float | None = None  # op sequences launched (None: one per pass; vmap batches several passes in one)
    ops: float = 0  # more ops per launch
    augment: bool = False  # bnutils.data.augment every step
    record: int = 0  # layers an ActivationRecorder reads back every step: the GPU waits for the host

    @property
    def backward(self) -> bool:
        return self.mode in ("train", "grad")


def chapter_workload(chapter: str, scale: dict[str, Any] | None = None) -> list[Work]:
    """A chapter's workload at `gpu` (or at `scale`); an 'eval' item (evaluate() on `batch` images, `passes`
    times) becomes forward passes in batches of EVAL_BATCH."""
    module = WORKLOADS[chapter]
    items = [Work(**d) for d in module.workload(module.SCALES["gpu"] if scale is None else scale, GPU)]
    return [replace(w, mode="forward", batch=min(EVAL_BATCH, w.batch),
                    passes=w.passes * math.ceil(w.batch / min(EVAL_BATCH, w.batch))) if w.mode == "eval" else w
            for w in items]


def rates(device: str, amp: bool, achieved_tflops: float | None = None) -> tuple[float, float]:
    """(low, high) achieved FLOP/s on `device` in AMP or float32; a measured AMP throughput replaces the range."""
    if device == "cpu":
        return CPU_FLOPS
    if amp and achieved_tflops:
        return achieved_tflops * 1e12, achieved_tflops * 1e12
    peak, use = (T4_FP16_PEAK, AMP_UTILISATION) if amp else (T4_FP32_PEAK, FP32_UTILISATION)
    return peak * use[0], peak * use[1]


def work_flops(w: Work, cost: ModelCost) -> float:
    """Total FLOPs of a work item: passes x batch x per-example FLOPs of a forward pass or a training step."""
    return w.passes * w.batch * (cost.step_flops if w.backward else cost.fwd_flops)


def work_seconds(w: Work, cost: ModelCost, achieved_tflops: float | None = None) -> tuple[float, float]:
    """(low, high) seconds of a work item: FLOP time at the high / low throughput, and the op overhead, which
    overlaps the FLOP time in the low estimate (asynchronous GPU, unless the loop syncs) and adds to it in the high."""
    lo_rate, hi_rate = rates(w.device, w.amp, achieved_tflops)
    flops = work_flops(w, cost)
    per_launch = ((cost.step_ops if w.backward else cost.fwd_ops) + w.ops + LOOP_OPS * (w.mode == "train")
                  + AUGMENT_OPS * w.augment + RECORDER_OPS * w.record)
    if w.amp:
        per_launch += AMP_OPS_PER_LAYER * cost.n_layers + 5
    ops = (w.passes if w.launches is None else w.launches) * per_launch
    op_lo, op_hi = (ops * s for s in OP_SECONDS[w.device])
    low = flops / hi_rate + op_lo if w.record else max(flops / hi_rate, op_lo)
    return low, flops / lo_rate + op_hi


@dataclass(frozen=True)
class ChapterEstimate:
    """A chapter's totals: FLOPs, (low, high) seconds, and the part of them spent on the CPU."""

    chapter: str
    flops: float
    seconds: tuple[float, float]
    cpu_seconds: tuple[float, float]
    items: list[tuple[Work, float, tuple[float, float]]]


def estimate_chapter(chapter: str, achieved_tflops: float | None = None,
                     cost: Callable[[str, float], ModelCost] = model_cost,
                     scale: dict[str, Any] | None = None) -> ChapterEstimate:
    """Sum a chapter's gpu workload (`scale` replaces its SCALES["gpu"]; `cost` can be swapped, e.g. by tests)."""
    items = []
    for w in chapter_workload(chapter, scale):
        c = cost(w.model, w.width)
        items.append((w, work_flops(w, c), work_seconds(w, c, achieved_tflops)))
    total = lambda pick: tuple(sum(s[i] for w, _, s in items if pick(w)) for i in (0, 1))  # noqa: E731
    return ChapterEstimate(chapter, sum(f for _, f, _ in items), total(lambda w: True),
                           total(lambda w: w.device == "cpu"), items)


def fmt_time(seconds: tuple[float, float]) -> str:
    """'12–20 min' or '3.1–9.8 h' (hours once the high end passes two hours)."""
    lo, hi = seconds
    if hi >= 7200:
        return f"{lo / 3600:.1f}–{hi / 3600:.1f} h"
    if hi >= 60:
        return f"{lo / 60:.0f}–{hi / 60:.0f} min"
    return f"{lo:.0f}–{hi:.0f} s" if hi >= 10 else f"{lo:.1f}–{hi:.1f} s"


def markdown(achieved_tflops: float | None = None, detail: bool = True) -> str:
    """The estimate as markdown: the chapter table, the basis, notes, and (detail) the per-item workload."""
    ests = [estimate_chapter(ch, achieved_tflops) for ch in WORKLOADS]
    basis = BASIS if not achieved_tflops else BASIS.replace(
        f"AMP training at {AMP_UTILISATION[0]:.0%}–{AMP_UTILISATION[1]:.0%} of the fp16 peak",
        f"AMP training at the measured {achieved_tflops:.3g} TFLOP/s (`bench/run.py --gpu`)")
    out = ["| chapter | PFLOP | estimate on a T4 (Colab) | of which on the CPU |", "|---|---|---|---|"]
    for e in ests:
        out.append(f"| {e.chapter} | {e.flops / 1e15:.3g} | {fmt_time(e.seconds)} | "
                   f"{fmt_time(e.cpu_seconds) if e.cpu_seconds[1] else '—'} |")
    total = tuple(sum(e.seconds[i] for e in ests) for i in (0, 1))
    out.append(f"| all chapters | {sum(e.flops for e in ests) / 1e15:.3g} | {fmt_time(total)} | |")
    out += ["", f"*Basis.* {basis}", "",
            "*Notes.* Upper bounds for chapters with diverging runs (a diverged run stops early; chapter 5's no-BN "
            "runs at large learning rates are expected to). Excludes set-up, data loading, plotting and cells with "
            "under a second of work. The workloads are `workload(SCALES[\"gpu\"])` of `bnutils/experiments/`."]
    if detail:
        out += ["", "| chapter | work | model | batch | passes | precision, device | TFLOP | time |",
                "|---|---|---|---|---|---|---|---|"]
        for e in ests:
            small = [(w, f, s) for w, f, s in e.items if s[1] < DETAIL_SHARE * e.seconds[1]]
            out += [f"| {e.chapter[:2]} | {w.what} | {w.model} | {w.batch} | {w.passes:,.0f} | "
                    f"{'AMP' if w.amp else 'fp32'}, {'fwd+bwd' if w.backward else 'fwd'}, {w.device} | "
                    f"{f / 1e12:,.1f} | {fmt_time(s)} |" for w, f, s in e.items if (w, f, s) not in small]
            if small:
                out.append(f"| {e.chapter[:2]} | {len(small)} smaller items (each under {DETAIL_SHARE:.0%} of the "
                           f"chapter) | | | | | {sum(f for _, f, _ in small) / 1e12:,.1f} | "
                           f"{fmt_time(tuple(sum(s[i] for *_, s in small) for i in (0, 1)))} |")
    return "\n".join(out)


def main() -> None:
    """Print the markdown estimate (the table that bench/run.py puts into BENCHMARKS.md as section 6)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--achieved-tflops", type=float, default=None,
                    help="AMP throughput measured on a T4 by `bench/run.py --gpu` ('achieved TFLOP/s')")
    ap.add_argument("--no-detail", action="store_true", help="only the chapter table, basis and notes")
    args = ap.parse_args()
    print(markdown(args.achieved_tflops, detail=not args.no_detail))


if __name__ == "__main__":
    main()
