"""Estimated runtime of each chapter at the `gpu` profile on a Colab T4, from FLOP counts (issue #9, item 6).

    python bench/estimate.py                         # the chapter table, the basis and the per-item workload
    python bench/estimate.py --achieved-tflops 9.5   # AMP throughput measured by `bench/run.py --gpu`

How the estimate is made:
1. Workload. Each chapter's `gpu` run is written out as a list of `Work` items (what, model, batch, passes,
   forward+backward or forward only, AMP or float32, GPU or CPU). The numbers are read from the notebooks'
   `P.pick(..., gpu=...)` calls, simple literal assignments and the bnutils functions' defaults wherever that is
   simple; the rest is checked against the notebook source (`require`), so a changed notebook raises
   `NotebookChanged` instead of silently drifting.
2. FLOPs. `torch.utils.flop_counter.FlopCounterMode` counts one forward and one training step (forward, loss,
   backward) of every model on the `meta` device: instant, no memory. It counts matmuls and convolutions (the
   usual 2 FLOP per multiply-add); element-wise work (BN, ReLU, the optimizer) is left to the utilisation below.
   The same pass counts the aten ops, from which the per-op overhead term is computed.
3. Time. FLOPs / achieved throughput, plus a per-op overhead, as a low-high range (see `BASIS`). `bench/run.py
   --gpu` measures the AMP throughput of a VGG-16 training step; on a T4 it passes it here (`achieved_tflops`),
   and it replaces the assumed AMP utilisation for every AMP training run.

Not included: set-up (pip install, loading CIFAR-10), plotting and the static sliders, cuDNN warm-up, and cells
with under a second of work (the float64 Theorem 4.1 check, random matrices, the exercises' toy networks).
Runs that diverge stop early, so chapters with diverging runs (3 and 5) come out at or below the range.
"""
from __future__ import annotations

import argparse
import ast
import functools
import inspect
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bnutils import train as T  # noqa: E402
from bnutils.experiments import basics, divergence, ics, noisy  # noqa: E402
from bnutils.models import MLP, VGG, DeepLinear, ResNet, conv_layers  # noqa: E402
from bnutils.profiles import PROFILES  # noqa: E402

NOTEBOOKS = ROOT / "notebooks"
GPU = PROFILES["gpu"]
N_TEST = GPU.n_test or 10_000  # None in the profile means all of CIFAR-10's test set
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
# for float32 work: ICS, landscape probes and evaluation run without autocast, and so do chapter 4's
# training runs, which do not pass amp= to train().
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


class NotebookChanged(RuntimeError):
    """A notebook no longer contains what the workload was read from: update the workload in bench/estimate.py."""


# -- reading the notebooks ------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _cells(chapter: str) -> tuple[tuple[str, str], ...]:
    """(cell type, source) of every cell of notebooks/<chapter>.ipynb, read once."""
    nb = json.loads((NOTEBOOKS / f"{chapter}.ipynb").read_text())
    return tuple((c["cell_type"], "".join(c["source"])) for c in nb["cells"])


def _code(chapter: str) -> str:
    """All code cells of a chapter, joined: the text the anchors and snippets are searched in."""
    return "\n\n".join(src for kind, src in _cells(chapter) if kind == "code")


def gpu_pick(chapter: str, anchor: str) -> Any:
    """The `gpu=` value of the one `P.pick(...)` call written right after `anchor` in the chapter's code.

    Reading the value from the notebook (instead of copying it here) keeps the estimate in step with the chapter;
    an anchor that is missing or ambiguous raises NotebookChanged."""
    src = _code(chapter)
    hits = [m.end() - len("P.pick(") for m in re.finditer(re.escape(anchor) + r"\s*P\.pick\(", src)]
    if len(hits) != 1:
        raise NotebookChanged(f"{chapter}: expected one `{anchor} P.pick(...)`, found {len(hits)}")
    depth = 0
    for end in range(hits[0], len(src)):
        depth += {"(": 1, ")": -1}.get(src[end], 0)
        if src[end] == ")" and depth == 0:
            break
    call = ast.parse(src[hits[0]:end + 1], mode="eval").body
    values = {k.arg: k.value for k in call.keywords}
    if "gpu" not in values:
        raise NotebookChanged(f"{chapter}: `{anchor} P.pick(...)` has no gpu= value")
    return ast.literal_eval(values["gpu"])


def literal(chapter: str, name: str) -> Any:
    """The value of the chapter's one top-level assignment `name = <literal>` (e.g. a parameter cell's list);
    computed re-assignments of the same name are ignored."""
    found = []
    for kind, src in _cells(chapter):
        if kind != "code":
            continue
        try:
            tree = ast.parse(src)
        except SyntaxError:  # a cell with IPython syntax holds no parameter we read
            continue
        for node in tree.body:
            if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [name]:
                try:
                    found.append(ast.literal_eval(node.value))
                except ValueError:  # a later, computed assignment (e.g. validation) of the same name
                    pass
    if len(found) != 1:
        raise NotebookChanged(f"{chapter}: expected one literal assignment to {name}, found {len(found)}")
    return found[0]


def require(chapter: str, *snippets: str) -> None:
    """Raise NotebookChanged unless the chapter's code contains every snippet: what the workload takes from code
    that is not a simple `P.pick` or literal (e.g. `fig1_lrs or (0.1, 0.5)`, `n_batches=7`) is checked this way."""
    src = _code(chapter)
    missing = [s for s in snippets if s not in src]
    if missing:
        raise NotebookChanged(f"{chapter}: the workload assumes code the notebook no longer has: {missing}")


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

    def __init__(self) -> None:
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        """Count the op, then run it unchanged."""
        self.ops += 1
        return func(*args, **(kwargs or {}))


def measure(model: nn.Module, example_shape: tuple[int, ...], batch: int = COUNT_BATCH,
            regression: bool = False) -> ModelCost:
    """FLOPs and ops of one forward pass and one SGD training step (zero_grad, forward, loss, backward, momentum
    step) of `model` at `batch`, with FlopCounterMode; FLOPs are returned per example. Works on any device; the
    `meta` device makes it instant for the full-width networks."""
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
    return ModelCost(fwd_flops / batch, flops.get_total_flops() / batch, fwd_ops, ops.ops, len(conv_layers(model)))


def build(key: str) -> tuple[nn.Module, tuple[int, ...], bool]:
    """The network a key names, as the chapters build it at `gpu` ('vgg16/noisy', 'resnet110/none', 'dln/l1',
    'mlp/batchnorm'), with the shape of one example and whether the loss is a regression."""
    arch, norm = key.split("/")
    if arch.startswith("vgg"):
        return VGG(arch, width=GPU.vgg_width, norm=norm), (3, 32, 32), False
    if arch.startswith("resnet"):
        return ResNet(depth=int(arch[len("resnet"):]), norm=norm, width=1.0), (3, 32, 32), False
    if arch == "dln":  # Santurkar's 25 layers of 10x10 (ics.dln_run and landscape_run use the defaults)
        return DeepLinear(depth=25, dim=10, norm=norm), (10,), True
    if arch == "mlp":  # Ioffe & Szegedy's net on flattened CIFAR-10, as in basics.ioffe_fig1
        return MLP(3 * 32 * 32, width=100, depth=3, activation="sigmoid", norm=norm, init="glorot"), (3, 32, 32), False
    raise ValueError(f"unknown model key {key!r}")


@functools.lru_cache(maxsize=None)
def model_cost(key: str) -> ModelCost:
    """`measure` of the keyed network, built and run on the meta device (cached per key)."""
    with torch.device("meta"):
        model, shape, regression = build(key)
    return measure(model, shape, regression=regression)


# -- the workload ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Work:
    """One line of a chapter's workload: `passes` passes of `model` over `batch` examples each."""

    what: str
    model: str  # a key of `build`
    batch: int  # examples per pass
    passes: float
    backward: bool = True  # a training step or gradient (forward + backward), else forward only
    amp: bool = False  # float16 autocast; False: float32
    device: str = "cuda"  # "cpu" for what the chapter keeps on the CPU
    launches: float | None = None  # op sequences launched (None: one per pass; vmap batches several passes in one)
    extra_ops: float = 0  # more ops per launch (training loop, augmentation, recorders)
    overlap: bool = True  # False when the loop syncs with the GPU every step, so overhead cannot hide


def _train(what: str, model: str, batch: int, steps: float, *, amp: bool, device: str = "cuda",
           extra_ops: float = 0, overlap: bool = True) -> Work:
    """Training steps through bnutils.train (its loop's own ops included)."""
    return Work(what, model, batch, steps, True, amp, device, None, LOOP_OPS + extra_ops, overlap)


def _evals(what: str, model: str, n_evals: float, n_images: int = N_TEST, device: str = "cuda") -> Work:
    """`n_evals` calls of bnutils.train.evaluate on `n_images` (float32, batches of EVAL_BATCH)."""
    batch = min(EVAL_BATCH, n_images)
    return Work(what, model, batch, n_evals * math.ceil(n_images / batch), backward=False, device=device)


def chapter_01() -> list[Work]:
    """Chapter 1: the VGG-11 conv net (train/eval mode, recalibration, folding, batch-mean noise) and the
    Ioffe & Szegedy Fig 1 MLP runs."""
    ch = "01_bn_basics"
    steps = gpu_pick(ch, "if convnet_steps is not None else")
    fig1_steps = gpu_pick(ch, "if fig1_steps is not None else")
    n_spread = gpu_pick(ch, "n_batches=")
    sizes = literal(ch, "batch_sizes")
    lrs = literal(ch, "fig1_lrs")
    require(ch, 'models.VGG("vgg11", width=P.vgg_width, norm="batchnorm")', "batch_size=128",
            "eval_every=convnet_steps, amp=P.amp", "range(0, 20 * 128, 128)", "cifar.test.x[:500]",
            "fig1_seeds = [seed, seed + 1]", 'for norm in ("none", "batchnorm")',
            "eval_every=max(50, fig1_steps // 20)")
    n_img = inspect.signature(basics.train_mode_accuracy).parameters["n_images"].default
    fig1_batch = inspect.signature(basics.ioffe_fig1).parameters["batch_size"].default
    fig1_runs = len(lrs) * 2 * 2  # lrs x (none, batchnorm) x 2 seeds
    vgg = "vgg11/batchnorm"
    return [
        _train(f"VGG-11 + BN, {steps} steps, AMP", vgg, 128, steps, amp=GPU.amp),
        _evals("its test evaluation (once, eval_every=steps)", vgg, 1),
        Work(f"train-mode accuracy: {len(sizes)} batch sizes x {n_img} images", vgg, 1,
             sum(n_img // b * b for b in sizes), backward=False, launches=sum(n_img // b for b in sizes)),
        _evals("evaluation of the copy with lost / recalibrated statistics", vgg, 2),
        Work("recalibration (20 batches) and folding check (2 x 500 images)", vgg, 1, 20 * 128 + 2 * 500,
             backward=False, launches=22),
        Work(f"batch-mean spread: {len(sizes)} x (test set + {n_spread} batches)", vgg, 1,
             len(sizes) * N_TEST + n_spread * sum(sizes), backward=False, launches=len(sizes) * (1 + n_spread)),
        # ioffe_fig1 trains without amp=; its MLP is built on the CPU while the data sit on the GPU (see notes)
        _train(f"Fig 1 MLP: {fig1_runs} runs x {fig1_steps} steps, batch {fig1_batch}", "mlp/batchnorm",
               fig1_batch, fig1_runs * fig1_steps, amp=False),
        _evals(f"Fig 1 evaluations ({fig1_steps // max(50, fig1_steps // 20)} per run)", "mlp/batchnorm",
               fig1_runs * (fig1_steps // max(50, fig1_steps // 20))),
    ]


def chapter_02() -> list[Work]:
    """Chapter 2: VGG-16 runs with ICS (Definition 2.1) on 4 layers, the ICS cost table, and the DLN runs with ICS."""
    ch = "02_internal_covariate_shift"
    vgg_steps, dln_steps = gpu_pick(ch, "VGG_STEPS = vgg_steps or"), gpu_pick(ch, "DLN_STEPS = dln_steps or")
    n_seeds = gpu_pick(ch, "range(n_seeds or")
    vgg_every = gpu_pick(ch, "VGG_EVERY = ics_every or")
    dln_every = max(1, dln_steps // gpu_pick(ch, "DLN_EVERY = ics_every or max(1, DLN_STEPS //"))
    k_vgg, k_dln = len(literal(ch, "VGG_LAYERS")), len(literal(ch, "DLN_LAYERS"))
    cost_vgg_steps = gpu_pick(ch, 'layers=cost_layers, steps=')
    cost_dln_steps = gpu_pick(ch, 'X.ics_cost("dln", norm="batchnorm", layers=None, steps=')
    require(ch, "LR_BOTH, LR_BN_ONLY = fig1_lrs or (0.1, 0.5)", "VGG_LRS = list(vgg_ics_lrs or (0.1, 0.01))",
            "DLN_LRS = list(dln_lrs or (1e-6, 1e-7))", "eval_every=max(1, VGG_STEPS // 5)",
            "for lr in (LR_BOTH, LR_BN_ONLY) for norm in X.NORMS", 'METHOD = "auto"',
            "method=METHOD, device=P.device, amp=P.amp)", "n_train=P.n_train, n_test=P.n_test, device=P.device, amp=P.amp)")
    scan_steps = gpu_pick(ch, "SCAN_STEPS =")
    scan_runs = len(ics.NORMS) * len({*gpu_pick(ch, "grid ="), 0.1, 0.5})
    # distinct cached runs: Fig 1 at (0.1, 0.5) with seed 0, Fig 3 at (0.1, 0.01) x seeds; (0.1, seed 0) is shared
    vgg_runs = len({(n, lr, s) for n in ics.NORMS for lr in (0.1, 0.5) for s in [0]}
                   | {(n, lr, s) for n in ics.NORMS for lr in (0.1, 0.01) for s in range(n_seeds)})
    dln_runs = 2 * len(ics.NORMS) * n_seeds
    vgg_meas = vgg_runs * math.ceil(vgg_steps / vgg_every)
    dln_meas = dln_runs * math.ceil(dln_steps / dln_every)
    n14 = 14  # conv_layers of VGG-16: 13 convs + the classifier
    return [
        _train(f"VGG-16: {vgg_runs} runs x {vgg_steps} steps, AMP", "vgg16/batchnorm", 128, vgg_runs * vgg_steps,
               amp=GPU.amp),
        _train(f"learning-rate probe: {scan_runs} runs x {scan_steps} steps, AMP", "vgg16/batchnorm", 128,
               scan_runs * scan_steps, amp=GPU.amp),
        Work(f"ICS 'prefix', {k_vgg} layers: {vgg_meas} measurements x <= {k_vgg + 1} passes", "vgg16/batchnorm",
             128, vgg_meas * (k_vgg + 1)),
        _evals("VGG test evaluations (5 per run)", "vgg16/batchnorm", vgg_runs * 5),
        _train(f"ICS cost table, VGG: 4 x {cost_vgg_steps} steps", "vgg16/batchnorm", 128, 4 * cost_vgg_steps,
               amp=False),
        Work(f"... ICS of all {n14} layers, loop ({2 * n14}) + vmap ({n14 + 1}) + prefix (<= {n14 + 1}) passes",
             "vgg16/batchnorm", 128, cost_vgg_steps * (2 * n14 + 2 * (n14 + 1)),
             launches=cost_vgg_steps * (2 * n14 + 1 + n14 + 1)),
        # dln_run and ics_cost('dln') build the DLN and its data on the CPU
        _train(f"DLN: {dln_runs} runs x {dln_steps} full-batch steps (CPU)", "dln/batchnorm", 1000,
               dln_runs * dln_steps, amp=False, device="cpu"),
        Work(f"ICS 'vmap', {k_dln} layers: {dln_meas} measurements (CPU)", "dln/batchnorm", 1000,
             dln_meas * (k_dln + 1), device="cpu", launches=dln_meas),
        _evals("DLN evaluations (10 per run)", "dln/batchnorm", dln_runs * 10, 1000, device="cpu"),
        _train(f"ICS cost table, DLN: 4 x {cost_dln_steps} steps (CPU)", "dln/batchnorm", 1000, 4 * cost_dln_steps,
               amp=False, device="cpu"),
        Work("... ICS of all 25 layers, loop (50) + vmap (26) + prefix (26) passes (CPU)", "dln/batchnorm", 1000,
             cost_dln_steps * (50 + 26 + 26), device="cpu", launches=cost_dln_steps * (50 + 1 + 26)),
    ]


def chapter_03() -> list[Work]:
    """Chapter 3: four VGG-16 variants x seeds, the noise-strength sweep and the before-affine exercise, each with
    per-step moment recording and the clean / recalibrated / noise-on evaluations."""
    ch = "03_noisy_bn"
    steps = gpu_pick(ch, "STEPS = steps or")
    n_seeds = gpu_pick(ch, "range(n_seeds or")
    scales = set(gpu_pick(ch, "SCALES = sorted(noise_scales or")) | {0.0, 1.0}
    require(ch, "SCALES = sorted(set(SCALES) | {0.0, 1.0})", "batch_size=128", "amp=P.amp",
            "runs = noisy.four_networks(SEEDS, data=data, **RUN)",
            "sweep = noisy.noise_sweep(SCALES, seed=SEEDS[0], data=data, **RUN)",
            'before = noisy.train_network("noisy", seed=SEEDS[0], position="before_affine", data=data, **RUN)')
    recal = inspect.signature(noisy.train_network).parameters["recal_batches"].default
    new_scales = len([s for s in scales if s not in (0.0, 1.0)])  # 0 and 1 are the main runs, read from the cache
    runs = {"none": n_seeds, "batchnorm": n_seeds, "noisy": n_seeds + new_scales + 1, "noise": n_seeds + new_scales}
    # the 'moments' ActivationRecorder reads 3 layers every step and calls .cpu(): the GPU waits for the host
    rec_ops = len(noisy.LAYERS) * RECORDER_OPS
    items = []
    for kind, n in runs.items():
        items.append(_train(f"VGG-16 {kind}: {n} runs x {steps} steps, AMP", f"vgg16/{kind}", 128, n * steps,
                            amp=GPU.amp, extra_ops=rec_ops, overlap=False))
        n_evals = 1 + (kind in ("batchnorm", "noisy")) + (kind in noisy.NOISY_KINDS)
        items.append(_evals(f"... {n_evals} test evaluation(s) per run", f"vgg16/{kind}", n * n_evals))
        if kind in ("batchnorm", "noisy"):
            items.append(Work(f"... recalibration ({recal} batches) per run", f"vgg16/{kind}", 128, n * recal,
                              backward=False))
    return items


def chapter_04() -> list[Work]:
    """Chapter 4: VGG-16 and DLN runs with landscape probes (K forward+backward passes per probed step), for
    standard, BN and the l_p norms, on the profile's device, plus the DLN slider and exercise runs (on the CPU)."""
    ch = "04_landscape"
    n_seeds = gpu_pick(ch, "range(n_seeds or")
    vgg_steps = gpu_pick(ch, "steps=vgg_steps or")
    vgg_batch = gpu_pick(ch, "batch_size=")
    vgg_every = max(1, vgg_steps // gpu_pick(ch, 'VGG["probe_every"] = max(1, VGG["steps"] //'))
    dln_steps = gpu_pick(ch, "steps=dln_steps or")
    dln_every = max(1, dln_steps // gpu_pick(ch, 'DLN["probe_every"] = max(1, DLN["steps"] //'))
    k_vgg, k_dln = literal(ch, "vgg_n_probes"), literal(ch, "dln_n_probes")
    lp = literal(ch, "LP")
    w_lrs, w_steps = gpu_pick(ch, "W_LRS ="), gpu_pick(ch, "W_STEPS =")
    ex_steps = gpu_pick(ch, "lr=3 * dln_lr, steps=")
    require(ch, 'L.landscape_runs("vgg", ["none", "batchnorm"], SEEDS', 'L.landscape_runs("vgg", LP, SEEDS[:1]',
            'L.landscape_runs("dln", ["none", "batchnorm"] + LP, SEEDS', "probe_every=max(1, W_STEPS // 5)",
            "probe_every=20, eta_range=(0.01, 30.0), n_probes=8", "batch_size=P.pick(ci=64, cpu=128, gpu=128), device=P.device)",
            "n_probes=dln_n_probes, device=P.device)")
    vgg_runs = {"none": n_seeds, "batchnorm": n_seeds, **{p: 1 for p in lp}}
    items = []
    for norm, n in vgg_runs.items():
        probed = n * math.ceil(vgg_steps / vgg_every)
        items += [_train(f"VGG-16 {norm}: {n} run(s) x {vgg_steps} steps, float32", f"vgg16/{norm}", vgg_batch,
                         n * vgg_steps, amp=False),
                  Work(f"... probes: {probed} probed steps x {k_vgg} passes (vmap)", f"vgg16/{norm}", vgg_batch,
                       probed * k_vgg, launches=probed),
                  _evals("... one test evaluation per run", f"vgg16/{norm}", n)]
    for norm in ["none", "batchnorm"] + lp:  # the DLN dict passes device=P.device too
        probed = n_seeds * math.ceil(dln_steps / dln_every)
        items += [_train(f"DLN {norm}: {n_seeds} runs x {dln_steps} steps", f"dln/{norm}", 1000,
                         n_seeds * dln_steps, amp=False),
                  Work(f"... probes: {probed} probed steps x {k_dln} passes (vmap)", f"dln/{norm}", 1000,
                       probed * k_dln, launches=probed)]
    for norm in ("none", "batchnorm"):  # the slider's runs (one seed per lr) and exercise 3
        n_steps = len(w_lrs) * w_steps + ex_steps
        probed = len(w_lrs) * 5 + math.ceil(ex_steps / 20)
        items += [_train(f"DLN {norm}: slider ({len(w_lrs)} x {w_steps}) and exercise ({ex_steps}) steps (CPU)",
                         f"dln/{norm}", 1000, n_steps, amp=False, device="cpu"),
                  Work(f"... probes: {probed} probed steps x 8 passes (CPU)", f"dln/{norm}", 1000, probed * 8,
                       device="cpu", launches=probed)]
    return items


def chapter_05() -> list[Work]:
    """Chapter 5: the ResNet-110 learning-rate sweep, the analyses at initialisation (relative loss, channel
    statistics vs depth, one diverging update, final-layer gradient, SGD noise) and the depth exercise."""
    ch = "05_learning_rate"
    lrs = gpu_pick(ch, "LRS = sorted(lrs or")
    steps = gpu_pick(ch, "STEPS = steps or")
    depth = gpu_pick(ch, "SWEEP = dict(depth=sweep_depth or")
    probe_depth = gpu_pick(ch, "PROBE = dict(depth=probe_depth or")
    deep = gpu_pick(ch, 'DEEP = {**PROBE, "depth":')
    n_seeds = gpu_pick(ch, "range(seed, seed + (n_seeds or")
    n_evals = gpu_pick(ch, "n_evals=")
    n_steps_sizes = gpu_pick(ch, "STEP_SIZES = np.logspace(-5, 0,")
    n_frac = gpu_pick(ch, "N_FRAC =")
    pool, repeats = gpu_pick(ch, "pool="), gpu_pick(ch, "repeats=")
    depths = gpu_pick(ch, "depths =")
    sizes = literal(ch, "BATCHES")
    require(ch, "n_batches=7, **PROBE", "n_batches=4, **DEEP", "seeds=list(range(5)), **DEEP",
            "n_batches=1, **{**PROBE, \"depth\": d}", 'width=P.pick(ci=0.25, cpu=0.25, gpu=1.0)')
    n_blocks = 1 + (deep - 2) // 2
    items = []
    for norm in divergence.NORMS:
        r, p, d = f"resnet{depth}/{norm}", f"resnet{probe_depth}/{norm}", f"resnet{deep}/{norm}"
        runs = len(lrs) * n_seeds
        items += [
            _train(f"ResNet-{depth} {norm}: {runs} runs x {steps} steps, AMP + augmentation", r, 128, runs * steps,
                   amp=GPU.amp, extra_ops=AUGMENT_OPS),
            _evals(f"... {n_evals} test evaluations per run", r, runs * n_evals),
            Work("relative loss: 7 gradients", p, 128, 7),
            Work(f"... 7 x {n_steps_sizes} stepped losses", p, 128, 7 * n_steps_sizes, backward=False),
            Work("channel statistics vs depth (4 batches; float64 statistics of every block)", d, 128, 4,
                 backward=False, extra_ops=6 * n_blocks),
            Work("final-layer gradient (5 initialisations)", d, 128, 5, backward=False),
            Work(f"diverging update: 1 gradient + {n_frac} forward passes", p, 128, 1),
            Work("...", p, 128, n_frac, backward=False),
            Work(f"SGD noise: pool gradient ({pool // 256} x 256), float32", r, 256, pool // 256),
            Work(f"... {repeats} draws x batches {sizes}", r, 1, repeats * sum(sizes), launches=repeats * len(sizes)),
        ]
    for dd in depths:  # exercise 1: no-BN ResNets of several depths, one mini-batch
        items += [Work(f"exercise 1, ResNet-{dd}: 1 gradient + {n_steps_sizes} losses", f"resnet{dd}/none", 128, 1),
                  Work("...", f"resnet{dd}/none", 128, n_steps_sizes, backward=False)]
    return items


WORKLOADS: dict[str, Callable[[], list[Work]]] = {
    "01_bn_basics": chapter_01, "02_internal_covariate_shift": chapter_02, "03_noisy_bn": chapter_03,
    "04_landscape": chapter_04, "05_learning_rate": chapter_05}


# -- from FLOPs to time ---------------------------------------------------------------------------------------

def rates(device: str, amp: bool, achieved_tflops: float | None = None) -> tuple[float, float]:
    """(low, high) achieved FLOP/s for work on `device` in AMP or float32. A measured AMP throughput
    (`bench/run.py --gpu` reports 'achieved TFLOP/s' for a VGG-16 AMP step) replaces the assumed range."""
    if device == "cpu":
        return CPU_FLOPS
    if amp:
        if achieved_tflops:
            return achieved_tflops * 1e12, achieved_tflops * 1e12
        return T4_FP16_PEAK * AMP_UTILISATION[0], T4_FP16_PEAK * AMP_UTILISATION[1]
    return T4_FP32_PEAK * FP32_UTILISATION[0], T4_FP32_PEAK * FP32_UTILISATION[1]


def work_flops(w: Work, cost: ModelCost) -> float:
    """Total FLOPs of a work item: passes x batch x per-example FLOPs of a forward pass or a training step."""
    return w.passes * w.batch * (cost.step_flops if w.backward else cost.fwd_flops)


def work_seconds(w: Work, cost: ModelCost, achieved_tflops: float | None = None) -> tuple[float, float]:
    """(low, high) seconds of a work item: FLOP time at the high / low throughput, and the op overhead, which
    overlaps the FLOP time in the low estimate (asynchronous GPU) and adds to it in the high one."""
    lo_rate, hi_rate = rates(w.device, w.amp, achieved_tflops)
    flops = work_flops(w, cost)
    ops_per_launch = (cost.step_ops if w.backward else cost.fwd_ops) + w.extra_ops
    if w.amp:
        ops_per_launch += AMP_OPS_PER_LAYER * cost.n_layers + 5
    ops = (w.passes if w.launches is None else w.launches) * ops_per_launch
    op_lo, op_hi = (ops * s for s in OP_SECONDS[w.device])
    low = max(flops / hi_rate, op_lo) if w.overlap else flops / hi_rate + op_lo
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
                     cost: Callable[[str], ModelCost] = model_cost,
                     workload: Callable[[], list[Work]] | None = None) -> ChapterEstimate:
    """Sum a chapter's workload (`cost` and `workload` can be swapped, e.g. by tests or for the as-coded variant)."""
    items = []
    for w in (workload or WORKLOADS[chapter])():
        c = cost(w.model)
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
            "under a second of work."]
    if detail:
        out += ["", "| chapter | work | model | batch | passes | precision, device | TFLOP | time |",
                "|---|---|---|---|---|---|---|---|"]
        for e in ests:
            small = [(w, f, s) for w, f, s in e.items if s[1] < DETAIL_SHARE * e.seconds[1]]
            for w, f, s in e.items:
                if (w, f, s) in small:
                    continue
                prec = ("AMP" if w.amp else "fp32") + (", fwd+bwd" if w.backward else ", fwd") + f", {w.device}"
                out.append(f"| {e.chapter[:2]} | {w.what} | {w.model} | {w.batch} | {w.passes:,.0f} | {prec} | "
                           f"{f / 1e12:,.1f} | {fmt_time(s)} |")
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
