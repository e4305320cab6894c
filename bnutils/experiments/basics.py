"""Chapter 1 (BatchNorm basics): scratch-vs-PyTorch agreement, train/eval statistics, folding, and
Ioffe & Szegedy's Fig 1 experiment (a sigmoid MLP's last-layer input percentiles over training)."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import validate
from ..cache import cached_run
from ..data import Dataset, Split
from ..metrics import ActivationRecorder, layer_array
from ..models import MLP, Block
from ..modes import Hooks, temporary_mode
from ..norms import BatchNorm, fold_batchnorm
from ..profiles import SMOKE, smoke_cap
from ..train import seed_everything, train


def scratch_vs_torch(x: torch.Tensor, steps: int = 3, momentum: float = 0.1) -> dict[str, float]:
    """Largest absolute differences between bnutils' BatchNorm and torch.nn.BatchNorm{1,2}d on input x
    (random gamma/beta, `steps` training forwards, then eval mode): outputs, input/gamma/beta gradients,
    running mean/var. Computed in float64 so the differences measure the formulas, not rounding."""
    validate.integer("steps", steps)
    c = x.shape[1]
    ref = (nn.BatchNorm2d if x.dim() == 4 else nn.BatchNorm1d)(c, momentum=momentum).double().to(x.device)
    ours = BatchNorm(c, momentum=momentum).double().to(x.device)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for m in (ref, ours):
            m.weight.copy_(torch.rand(c, generator=g.manual_seed(1), dtype=torch.float64) + 0.5)  # copy_ moves it
            m.bias.copy_(torch.randn(c, generator=g.manual_seed(2), dtype=torch.float64))
    diffs = {"output": 0.0, "grad_input": 0.0, "grad_gamma": 0.0, "grad_beta": 0.0}
    for _ in range(steps):
        xr, xo = x.double().clone().requires_grad_(), x.double().clone().requires_grad_()
        out_r, out_o = ref(xr), ours(xo)
        upstream = torch.randn(out_r.shape, generator=g, dtype=torch.float64).to(x.device)
        out_r.backward(upstream)
        out_o.backward(upstream)
        for key, a, b in (("output", out_r.detach(), out_o.detach()), ("grad_input", xr.grad, xo.grad),
                          ("grad_gamma", ref.weight.grad, ours.weight.grad), ("grad_beta", ref.bias.grad, ours.bias.grad)):
            diffs[key] = max(diffs[key], float((a - b).abs().max()))
        ref.zero_grad()
        ours.zero_grad()
    diffs["running_mean"] = float((ref.running_mean - ours.running_mean).abs().max())
    diffs["running_var"] = float((ref.running_var - ours.running_var).abs().max())
    ref.eval()
    ours.eval()
    with torch.no_grad():
        diffs["eval_output"] = float((ref(x.double()) - ours(x.double())).abs().max())
    return diffs


@torch.no_grad()
def train_mode_accuracy(model: nn.Module, split: Split, batch_size: int, n_images: int = 512) -> float:
    """Accuracy on the first `n_images` of `split` when the model is (wrongly) evaluated in train mode with batches
    of `batch_size`: each batch is normalized with its own statistics. Running statistics are restored after."""
    validate.integer("batch_size", batch_size)
    validate.integer("n_images", n_images)
    if batch_size > min(len(split), n_images):
        raise ValueError(f"batch_size={batch_size} is larger than the {min(len(split), n_images)} images evaluated "
                         "(n_images and the split's size): there would be no batch to score")
    correct = n = 0
    starts = range(0, min(len(split), n_images) - batch_size + 1, batch_size)
    starts = starts[:smoke_cap(len(starts))]  # smoke mode: the first 2 batches
    with temporary_mode(model, train=True, noise=True, keep_buffers=True):
        for i in starts:
            x, y = split.x[i:i + batch_size], split.y[i:i + batch_size]
            correct += int((model(x).argmax(1) == y).sum())
            n += len(y)
    return correct / max(n, 1)


@torch.no_grad()
def batch_mean_spread(model: nn.Module, bn: nn.Module, split: Split, batch_size: int, n_batches: int = 100,
                      seed: int = 0) -> dict[str, Any]:
    """The batch means of channel 0 at `bn`'s input over `n_batches` random batches, and the population mean
    (over the whole split): how noisy the statistics BN normalizes with are at this batch size. Smoke mode
    (`profiles.smoke_cap`): 2 batches, and the population mean over the first SMOKE.batch images."""
    validate.integer("batch_size", batch_size)
    validate.integer("n_batches", n_batches)
    n_batches = smoke_cap(n_batches)  # smoke mode: 2 batches per batch size
    seen: list[torch.Tensor] = []
    # eval mode: the network up to bn with population statistics, so only bn's own input varies
    with Hooks([bn], lambda _k, _m, i, _o: seen.append(i[0][:, 0].detach())), temporary_mode(model, train=False):
        model(split.x[:smoke_cap(len(split), SMOKE.batch)])
        population = float(seen[-1].mean())
        g = torch.Generator().manual_seed(seed)
        means = []
        for _ in range(n_batches):
            idx = torch.randint(0, len(split), (batch_size,), generator=g).to(split.x.device)
            model(split.x[idx])
            means.append(float(seen[-1].mean()))
    return {"batch_means": means, "population_mean": population, "std": float(np.std(means))}


@torch.no_grad()
def fold_model(model: nn.Module) -> nn.Module:
    """A copy of a VGG/MLP-style model (Blocks of layer -> BN -> act) with every BN folded into its layer."""
    import copy

    folded = copy.deepcopy(model).eval()
    for block in [m for m in folded.modules() if isinstance(m, Block)]:
        if not isinstance(block.norm, nn.Identity):
            block.layer = fold_batchnorm(block.layer, block.norm)
            block.norm = nn.Identity()
    return folded


@cached_run("ch1")
def ioffe_fig1(data: Dataset, *, norm: str, steps: int, lr: float, seed: int = 0, batch_size: int = 60,
               record_every: int = 50, eval_every: int = 250, cache: bool = True) -> dict[str, Any]:
    """Ioffe & Szegedy's Fig 1: a 3x100 sigmoid MLP (Glorot init, plain SGD, batch 60) with or without BN;
    the 15th/50th/85th percentiles of one last-hidden-layer sigmoid input over training, and test accuracy.

    'One sigmoid input' is unit 0 of the last hidden layer, over the step's batch (with BN: after gamma/beta)."""
    validate.choice("norm", norm, ("none", "batchnorm"))
    seed_everything(seed)
    model = MLP(data.train.x[0].numel(), width=100, depth=3, activation="sigmoid", norm=norm,
                init="glorot").to(data.train.x.device)
    rec = ActivationRecorder({"last": model.blocks[-1].act}, every=record_every, where="input",
                             quantiles=(0.15, 0.5, 0.85), sample_size=batch_size)
    run = train(model, data, steps=steps, lr=lr, batch_size=batch_size, eval_every=eval_every, seed=seed,
                callbacks={"acts": rec})
    res = run.metrics["acts"]
    unit0 = np.asarray(res["layers"]["last"]["sample"])  # (T, batch): channel 0's values at each record
    q = np.percentile(unit0, [15, 50, 85], axis=1).T
    return {"steps": res["steps"], "percentiles": q.tolist(), "evals": run.evals, "diverged": run.diverged,
            "layer_quantiles": layer_array(res, "last", "quantiles").tolist(), "seconds": run.seconds}


def percentile_range(percentiles: Sequence[Sequence[float]], skip: int = 1) -> float:
    """How far the percentiles wander over training: the range (max - min) of each percentile curve after the
    first `skip` records (the very first steps, where every network moves fast, are left out), averaged over the
    curves. NaN when fewer than two records remain (a run too short to show any wandering)."""
    q = np.asarray(percentiles, dtype=float)[skip:]
    if len(q) < 2:
        return float("nan")
    return float(np.mean(q.max(0) - q.min(0)))


# -- the chapter's settings at each profile, and the work they imply ------------------------------------------
# notebooks/01_bn_basics.ipynb reads SCALES[P.name] (a notebook parameter, when given, overrides);
# bench/estimate.py estimates the chapter's gpu runtime from workload(SCALES["gpu"], PROFILES["gpu"]).
#   convnet_steps   SGD steps of the VGG-11 + BN (batch 128) behind the train/eval-mode experiments
#   fig1_steps      steps of each Ioffe & Szegedy Fig 1 MLP run (gpu: 50,000, as in the paper)
#   spread_batches  mini-batches per batch size in batch_mean_spread
#   fig1_n_train    training images of the Fig 1 runs (None: the profile's n_train)
SCALES = {
    "ci": dict(convnet_steps=150, fig1_steps=600, spread_batches=40, fig1_n_train=10000),
    "cpu": dict(convnet_steps=1500, fig1_steps=5000, spread_batches=100, fig1_n_train=None),
    "gpu": dict(convnet_steps=5000, fig1_steps=50000, spread_batches=200, fig1_n_train=None),
}
# long: the cpu settings trained 4x longer (the scales page's longer point; fixed before any long run)
SCALES["long"] = {**SCALES["cpu"], "convnet_steps": 6000, "fig1_steps": 20000}


def workload(scale: dict[str, Any], profile: Any, *, fig1_lrs: Sequence[float] = (0.1, 0.5),
             batch_sizes: Sequence[int] = (1, 2, 4, 8, 16, 32, 64, 128, 256)) -> list[dict[str, Any]]:
    """What the chapter runs at `scale` on `profile` (a bnutils.profiles.Profile), one dict per kind of work:
    model ('vgg11/batchnorm'), mode ('train': bnutils.train steps, 'grad': forward + backward, 'forward', 'eval':
    bnutils.train.evaluate on `batch` images), batch, passes and optionally amp, device, width, launches (op sequences
    launched when not one per pass). The keyword defaults are the notebook's parameters."""
    import inspect

    n_img = inspect.signature(train_mode_accuracy).parameters["n_images"].default
    mlp_batch = inspect.signature(ioffe_fig1).parameters["batch_size"].default
    steps, fig1_steps, n_spread = scale["convnet_steps"], scale["fig1_steps"], scale["spread_batches"]
    n_test, fig1_runs = profile.n_test or 10_000, len(fig1_lrs) * 2 * 2  # lrs x (none, batchnorm) x 2 seeds
    vgg = dict(model="vgg11/batchnorm", width=profile.vgg_width, device=profile.device)
    mlp = dict(model="mlp/batchnorm", device=profile.device)  # ioffe_fig1 trains without amp
    return [
        dict(what=f"VGG-11 + BN, {steps} steps", mode="train", batch=128, passes=steps, amp=profile.amp, **vgg),
        dict(what="its test evaluation (eval_every=steps)", mode="eval", batch=n_test, passes=1, **vgg),
        dict(what=f"train-mode accuracy: {len(batch_sizes)} batch sizes x {n_img} images", mode="forward", batch=1,
             passes=sum(n_img // b * b for b in batch_sizes), launches=sum(n_img // b for b in batch_sizes), **vgg),
        dict(what="evaluation of the copy with lost / recalibrated statistics", mode="eval", batch=n_test, passes=2,
             **vgg),
        dict(what="recalibration (20 batches) and folding check (2 x 500 images)", mode="forward", batch=1,
             passes=20 * 128 + 2 * 500, launches=22, **vgg),
        dict(what=f"batch-mean spread: {len(batch_sizes)} x (test set + {n_spread} batches)", mode="forward", batch=1,
             passes=len(batch_sizes) * n_test + n_spread * sum(batch_sizes),
             launches=len(batch_sizes) * (1 + n_spread), **vgg),
        dict(what=f"Fig 1 MLP: {fig1_runs} runs x {fig1_steps} steps, batch {mlp_batch}", mode="train",
             batch=mlp_batch, passes=fig1_runs * fig1_steps, **mlp),
        dict(what=f"Fig 1 evaluations ({fig1_steps // max(50, fig1_steps // 20)} per run)", mode="eval", batch=n_test,
             passes=fig1_runs * (fig1_steps // max(50, fig1_steps // 20)), **mlp),
    ]
