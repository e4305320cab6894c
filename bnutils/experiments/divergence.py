"""Chapter 5 (Bjorck et al. 2018): large learning rates, divergence, and why BatchNorm permits the large ones.

Experiments: the learning-rate sweep of a CIFAR ResNet with and without BN over seeds (cached, resumable),
the relative loss after one SGD step vs the step size at initialisation, channel statistics vs depth at
initialisation and along one diverging update, the final-layer gradient at initialisation, singular values
of products of random matrices, and the SGD noise vs learning rate and batch size. Every function returns
JSON-able data; `bnutils.figures.divergence` draws the chapter's figures from it.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .. import validate
from ..cache import cached_run
from ..parallel import sweep
from ..data import Dataset, batches, load_cifar10
from ..models import ResNet
from ..modes import Hooks
from ..train import seed_everything, train

NORMS = ("batchnorm", "none")
PAPER_LRS = {"batchnorm": (0.1, 0.003, 0.0001), "none": (0.0001,)}  # Bjorck et al. Fig 1
DIVERGENCE_RATIO = 1e3  # relative loss above which a step counts as diverged (Bjorck et al.)
BJORCK_LAYERS = (8, 44, 80)  # of ResNet-110's 110 layers


@functools.lru_cache(maxsize=2)
def _cifar(n_train: int | None, n_test: int | None = 1000, device: str = "cpu") -> Dataset:
    """CIFAR-10 subset shared by every experiment of the chapter (the subset is fixed, seed 0)."""
    return load_cifar10(n_train, n_test, seed=0, device=device)


def _check_net(norm: str, depth: int, width: float, device: str = "cpu") -> None:
    validate.choice("norm", norm, NORMS)
    validate.device("device", device)
    validate.integer("depth", depth, minimum=8)
    if (depth - 2) % 6:
        raise ValueError(f"depth={depth!r} must be 6n + 2 (e.g. 8, 14, 20, 32, 56, 110)")
    validate.positive("width", width)


def _net(norm: str, depth: int, width: float, seed: int, device: str = "cpu") -> ResNet:
    """A freshly initialised CIFAR ResNet in training mode; the seed fixes the initialisation."""
    seed_everything(seed)
    return ResNet(depth=depth, norm=norm, width=width).to(device).train()


def _batch(data: Dataset, index: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The index-th mini-batch of the fixed training order (seed 0): 'mini-batch 1, 4, 7' of the paper."""
    it = batches(data.train, batch_size, seed=0)
    for _ in range(index):
        next(it)
    return next(it)


# ---------------------------------------------------------------- 1. the learning-rate sweep (Bjorck Fig 1)

@cached_run("divergence")
def sweep_run(norm: str, lr: float, *, seed: int, depth: int, width: float, steps: int, batch_size: int,
              n_train: int | None, n_test: int | None, eval_every: int, device: str = "cpu", amp: bool = False,
              progress: bool | None = False, cache: bool = True) -> dict[str, Any]:
    """One run of the sweep (Bjorck's recipe: SGD, momentum 0.9, weight decay 5e-4, lr x0.1 halfway,
    augmentation) on the chapter's fixed CIFAR-10 subset; `amp`: mixed precision (see bnutils.train)."""
    data = _cifar(n_train, n_test, device)
    model = _net(norm, depth, width, seed, device)
    run = train(model, data, steps=steps, lr=lr, batch_size=batch_size, momentum=0.9, weight_decay=5e-4,
                lr_drop=(0.5, 0.1), augment=True, eval_every=eval_every, seed=seed, amp=amp,
                progress=progress)
    return {"experiment": "lr_sweep", "norm": norm, "lr": lr, "seed": seed, "depth": depth, "width": width,
            "steps": steps, "batch_size": batch_size, "n_train": n_train, "n_test": n_test,
            "eval_every": eval_every, "device": device, "loss": run.loss, "evals": run.evals,
            "diverged": run.diverged, "diverged_at": run.diverged_at, "final_test_acc": run.final_test_acc,
            "seconds": run.seconds}


def lr_sweep(lrs: Sequence[float], *, norms: Sequence[str] = NORMS, seeds: Sequence[int] = (0,), depth: int = 8,
             width: float = 0.25, steps: int = 200, batch_size: int = 128, n_train: int | None = 10000,
             n_test: int | None = 2000, n_evals: int = 4, device: str = "cpu", amp: bool = False,
             cache: bool = True, executor: Any = "auto") -> list[dict[str, Any]]:
    """Train a CIFAR ResNet with and without BN at every learning rate and seed (Bjorck's recipe: SGD, momentum
    0.9, weight decay 5e-4, lr x0.1 halfway, augmentation). Each run is cached (an interrupted sweep resumes)
    and the missing ones fan out to `executor` (see bnutils.parallel.sweep)."""
    for lr in validate.nonempty("lrs", lrs):
        validate.positive("lrs", lr)
    for n in validate.nonempty("norms", norms):
        _check_net(n, depth, width, device)
    seeds = validate.seeds("seeds", list(seeds))
    validate.integer("steps", steps)
    validate.integer("batch_size", batch_size)
    validate.integer("n_evals", n_evals)
    if n_evals > steps:
        raise ValueError(f"n_evals={n_evals} must be <= steps={steps}")
    calls = [dict(norm=n, lr=float(lr), seed=s, depth=depth, width=width, steps=steps, batch_size=batch_size,
                  n_train=n_train, n_test=n_test, eval_every=steps // n_evals, device=device, amp=amp, cache=cache)
             for n in norms for lr in lrs for s in seeds]
    return sweep(sweep_run, calls, executor=executor if cache else "serial")


def train_live(lr: float, *, steps: int = 150, depth: int = 8, width: float = 0.25, seed: int = 0,
               n_train: int | None = 10000, n_test: int | None = 2000, device: str = "cpu",
               amp: bool = False) -> list[dict[str, Any]]:
    """One BN and one no-BN run at any lr, the sweep's recipe, for the live control (no cache, progress bar)."""
    validate.positive("lr", lr)
    for n in NORMS:
        _check_net(n, depth, width, device)
    validate.integer("steps", steps, minimum=4)
    return [sweep_run(n, float(lr), seed=seed, depth=depth, width=width, steps=steps, batch_size=128,
                      n_train=n_train, n_test=n_test, eval_every=steps // 4, device=device, amp=amp,
                      progress=None, cache=False) for n in NORMS]


def summarize_sweep(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per norm and lr: final test accuracies of the seeds that did not diverge, and how many diverged; plus the
    largest lr at which no seed diverged and the lr with the best mean accuracy."""
    validate.nonempty("runs", runs)
    out: dict[str, dict[str, Any]] = {}
    for r in runs:
        d = out.setdefault(r["norm"], {"by_lr": {}})
        e = d["by_lr"].setdefault(r["lr"], {"acc": [], "diverged": 0, "seeds": 0})
        e["seeds"] += 1
        if r["diverged"]:
            e["diverged"] += 1
        else:
            e["acc"].append(r["final_test_acc"])
    for d in out.values():
        lrs = sorted(d["by_lr"])
        stable = [lr for lr in lrs if d["by_lr"][lr]["diverged"] == 0]
        d["lrs"] = lrs
        d["max_stable_lr"] = max(stable) if stable else None
        d["first_diverging_lr"] = min((lr for lr in lrs if d["by_lr"][lr]["diverged"]), default=None)
        means = {lr: float(np.mean(d["by_lr"][lr]["acc"])) for lr in stable}
        d["mean_acc"] = means
        d["best_lr"] = max(means, key=means.get) if means else None
        d["best_acc"] = means[d["best_lr"]] if means else float("nan")
    return out


# ---------------------------------------------------------------- 2. relative loss after one step at init

def _loss_at(model: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor) -> float:
    with torch.no_grad():
        out = functional_call(model, params, (x,))
        return float(F.cross_entropy(out, y))


def one_step_ratios(model: nn.Module, data: Dataset, step_sizes: Sequence[float], n_batches: int,
                    batch_size: int) -> list[list[float]]:
    """ratio[batch][a]: the loss after one SGD step of size a over the loss before, on the same mini-batch (the
    first n_batches of the fixed training order), from the model's current weights; non-finite counts as inf."""
    params = {k: p.detach() for k, p in model.named_parameters()}
    it = batches(data.train, batch_size, seed=0)
    ratios = []
    for _ in range(n_batches):
        x, y = next(it)
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        before = float(loss.detach())
        grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
        row = []
        for a in step_sizes:
            after = _loss_at(model, {k: params[k] - a * grads[k] for k in params}, x, y)
            row.append(after / before if math.isfinite(after) else math.inf)
        ratios.append(row)
    return ratios


@cached_run("divergence")
def relative_loss(norm: str, step_sizes: Sequence[float], *, n_batches: int = 7, depth: int = 20,
                  width: float = 0.25, batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                  device: str = "cpu", cache: bool = True) -> dict[str, Any]:
    """Loss after one SGD step of size a divided by the loss before, on the same batch, at initialisation
    (BN in training mode, as during training): ratio[batch][a]. Non-finite losses count as infinite."""
    _check_net(norm, depth, width, device)
    for a in validate.nonempty("step_sizes", step_sizes):
        validate.positive("step_sizes", a)
    validate.integer("n_batches", n_batches)
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("seed", seed, minimum=0)
    data = _cifar(n_train, device=device)
    model = _net(norm, depth, width, seed, device)
    ratios = one_step_ratios(model, data, step_sizes, n_batches, batch_size)
    return {"experiment": "relative_loss", "norm": norm, "step_sizes": [float(a) for a in step_sizes],
            "n_batches": n_batches, "depth": depth, "width": width, "batch_size": batch_size, "seed": seed,
            "n_train": n_train, "ratio": ratios}


def divergence_step_size(result: dict[str, Any], threshold: float = DIVERGENCE_RATIO) -> list[float | None]:
    """Per batch, the smallest step size whose relative loss exceeds `threshold` (None: never, in the range)."""
    validate.positive("threshold", threshold)
    out = []
    for row in result["ratio"]:
        hits = [a for a, r in zip(result["step_sizes"], row) if r > threshold]
        out.append(min(hits) if hits else None)
    return out


# ---------------------------------------------------------------- 3. activations at init and along one update

def _block_outputs(model: ResNet) -> list[nn.Module]:
    """The stem and every residual block, in forward order: 'layer 2k+1' of the ResNet is the k-th entry."""
    return [model.stem, *model.layers]


def block_index(layer: int, depth: int) -> int:
    """The block of a ResNet-`depth` holding Bjorck's `layer` of ResNet-110 (scaled by depth / 110)."""
    validate.integer("layer", layer)
    n_blocks = 1 + (depth - 2) // 2
    return min(n_blocks - 1, max(0, round(layer * depth / 110) // 2))


@torch.no_grad()
def _channel_stats(model: ResNet, x: torch.Tensor, blocks: Sequence[int] | None = None) -> dict[int, tuple]:
    """Per chosen block output: (channel means, channel variances) over the batch and positions, in float64."""
    mods = _block_outputs(model)
    blocks = range(len(mods)) if blocks is None else blocks
    stats: dict[int, tuple] = {}

    def hook(i: int, _m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        o = out.double().transpose(0, 1).flatten(1)
        stats[i] = (o.mean(1), o.var(1, unbiased=False))

    with Hooks({i: mods[i] for i in blocks}, hook):
        model(x)
    return stats


def channel_stats_vs_depth(norm: str, *, depth: int = 56, width: float = 0.25, n_batches: int = 4,
                           batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                           device: str = "cpu") -> dict[str, Any]:
    """At initialisation: per block output, the median and 16/84 % quantiles (over channels and batches) of
    |channel mean| and channel variance. Without BN they grow with depth; with BN they stay bounded."""
    _check_net(norm, depth, width, device)
    validate.integer("n_batches", n_batches)
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("seed", seed, minimum=0)
    data = _cifar(n_train, device=device)
    model = _net(norm, depth, width, seed, device)
    per = [_channel_stats(model, _batch(data, b, batch_size)[0]) for b in range(n_batches)]
    out: dict[str, Any] = {"norm": norm, "depth": depth, "layer": [], "mean": [], "var": []}
    for i in sorted(per[0]):
        out["layer"].append(1 + 2 * i)
        for key, j in (("mean", 0), ("var", 1)):
            v = torch.cat([p[i][j].abs() for p in per]).cpu().numpy()
            out[key].append([float(q) for q in np.quantile(v, (0.16, 0.5, 0.84))])
    return out


def diverging_update(norm: str, lr: float, *, depth: int = 56, width: float = 0.25, n_fractions: int = 11,
                     layers: Sequence[int] = BJORCK_LAYERS, batch_size: int = 128, seed: int = 0,
                     n_train: int | None = 10000, device: str = "cpu") -> dict[str, Any]:
    """Bjorck's Fig 4: channel means and variances at three depths while the step w - t * lr * grad is applied,
    t from 0 to 1 (rows), at initialisation. `layers` are of ResNet-110 and scaled to `depth`."""
    _check_net(norm, depth, width, device)
    validate.positive("lr", lr)
    validate.integer("n_fractions", n_fractions, minimum=2)
    validate.int_list("layers", layers, 1, 110)
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("seed", seed, minimum=0)
    data = _cifar(n_train, device=device)
    model = _net(norm, depth, width, seed, device)
    x, y = _batch(data, 0, batch_size)
    F.cross_entropy(model(x), y).backward()
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    blocks = [block_index(L, depth) for L in layers]
    fractions = np.linspace(0, 1, n_fractions)
    out = {"norm": norm, "lr": lr, "depth": depth, "fractions": fractions.tolist(), "layers": list(layers),
           "blocks": blocks, "mean": {str(L): [] for L in layers}, "var": {str(L): [] for L in layers}}
    for t in fractions:
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(params[k] - t * lr * grads[k])
        stats = _channel_stats(model, x, blocks)
        for L, b in zip(layers, blocks):
            out["mean"][str(L)].append(stats[b][0].cpu().tolist())
            out["var"][str(L)].append(stats[b][1].cpu().tolist())
    return out


def final_layer_gradient(norm: str, *, depth: int = 56, width: float = 0.25, seeds: Sequence[int] = (0,),
                         batch_size: int = 128, n_show: int = 32, n_train: int | None = 10000,
                         device: str = "cpu") -> dict[str, Any]:
    """The gradient of the loss w.r.t. the logits at initialisation (rows: images, columns: classes; scaled by
    the batch size); per seed, the fraction of the batch predicted as its most common class and the mean
    confidence (largest softmax probability) of the predictions."""
    _check_net(norm, depth, width, device)
    seeds = validate.seeds("seeds", list(seeds))
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("n_show", n_show)
    data = _cifar(n_train, device=device)
    x, y = _batch(data, 0, batch_size)
    out: dict[str, Any] = {"norm": norm, "fraction_top_class": [], "confidence": [], "grad": None}
    for s in seeds:
        model = _net(norm, depth, width, s, device)
        logits = model(x).detach().double()
        grad = torch.softmax(logits, 1) - F.one_hot(y, logits.shape[1]).double()  # batch x d(mean loss)/d logits
        pred = logits.argmax(1)
        out["confidence"].append(float(torch.softmax(logits, 1).max(1).values.mean()))
        out["fraction_top_class"].append(float(torch.bincount(pred, minlength=10).max()) / len(pred))
        if out["grad"] is None:
            out["grad"], out["labels"] = grad[:n_show].cpu().tolist(), y[:n_show].cpu().tolist()
    return out


# ---------------------------------------------------------------- 4. random matrices

def random_product_singular_values(n: int = 200, factors: Sequence[int] = (1, 3, 5), seed: int = 0) -> dict[int, list]:
    """Singular values of W_k ... W_1 with W_i i.i.d. N(0, 1/n) n x n Gaussian matrices, for each k in factors."""
    validate.integer("n", n, minimum=2)
    validate.int_list("factors", factors)
    validate.integer("seed", seed, minimum=0)
    rng = np.random.default_rng(seed)
    out, prod, done = {}, np.eye(n), 0
    for k in sorted(factors):
        while done < k:
            prod = rng.standard_normal((n, n)) / math.sqrt(n) @ prod
            done += 1
        out[k] = np.linalg.svd(prod, compute_uv=False).tolist()
    return out


def condition_vs_depth(n: int = 200, max_factors: int = 8, seeds: Sequence[int] = (0, 1, 2)) -> dict[str, list]:
    """The condition number (largest / smallest singular value) of a product of 1..max_factors Gaussian matrices,
    per seed (float64: values past ~1e15 are at the limit of the arithmetic)."""
    validate.integer("max_factors", max_factors)
    seeds = validate.seeds("seeds", list(seeds))
    ks = list(range(1, max_factors + 1))
    conds = []
    for s in seeds:
        sv = random_product_singular_values(n, ks, s)
        conds.append([sv[k][0] / sv[k][-1] for k in ks])
    return {"factors": ks, "cond": conds}


# ---------------------------------------------------------------- 5. SGD noise vs lr and batch size

def _flat_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()]).double()


def sgd_noise(norm: str, batch_sizes: Sequence[int], *, pool: int = 2048, repeats: int = 8, depth: int = 8,
              width: float = 0.25, seed: int = 0, n_train: int | None = 10000, device: str = "cpu") -> dict[str, Any]:
    """E||g_B - g||^2 over mini-batches B drawn without replacement from a pool of examples, at initialisation:
    the SGD noise of a step of size a is a^2 times it. g is the pool's gradient (in chunks of 256 for BN)."""
    _check_net(norm, depth, width, device)
    validate.integer("pool", pool, minimum=2)
    validate.integer("seed", seed, minimum=0)
    for b in validate.int_list("batch_sizes", batch_sizes, 2):
        if b > pool:
            raise ValueError(f"batch_sizes holds {b}, larger than pool={pool}")
    validate.integer("repeats", repeats, minimum=2)
    data = _cifar(n_train, device=device)
    if pool > len(data.train):
        raise ValueError(f"pool={pool} is larger than the {len(data.train)} training images")
    model = _net(norm, depth, width, seed, device)
    x, y = data.train.x[:pool], data.train.y[:pool]
    chunk = 256
    g = sum(_flat_grad(model, x[i:i + chunk], y[i:i + chunk]) * len(x[i:i + chunk]) for i in range(0, pool, chunk)) / pool
    gen = torch.Generator().manual_seed(seed)
    sq = []
    for b in batch_sizes:
        vals = []
        for _ in range(repeats):
            idx = torch.randperm(pool, generator=gen)[:b].to(x.device)
            vals.append(float((_flat_grad(model, x[idx], y[idx]) - g).pow(2).sum()))
        sq.append(vals)
    return {"norm": norm, "batch_sizes": list(batch_sizes), "pool": pool, "sq_dev": sq,
            "grad_norm_sq": float(g.pow(2).sum())}


def noise_slope(result: dict[str, Any]) -> float:
    """The log-log slope of E||g_B - g||^2 against |B| (-1 for the 1/|B| law)."""
    b = np.log(result["batch_sizes"])
    m = np.log([np.mean(v) for v in result["sq_dev"]])
    return float(np.polyfit(b, m, 1)[0])



# -- the chapter's settings at each profile, and the work they imply ------------------------------------------
# notebooks/05_learning_rate.ipynb reads SCALES[P.name] (a notebook parameter, when given, overrides);
# bench/estimate.py estimates the chapter's gpu runtime from workload(SCALES["gpu"], PROFILES["gpu"]).
#   lrs, steps, n_seeds, n_evals   the learning-rate sweep: grid, SGD steps per run (the paper: 16,000), seeds per
#                                  lr, test evaluations per run
#   sweep_depth, width             ResNet depth (6n + 2) of the sweep; width of every ResNet of the chapter
#   probe_depth, deep_depth        depth of the analyses at initialisation; of the activations-vs-depth analysis
#   n_step_sizes                   step sizes of the relative-loss curves (log-spaced, 1e-5 to 1)
#   n_fractions                    points along the diverging update
#   noise_pool, noise_repeats      SGD noise: the pool the full gradient is taken over, draws per batch size
#   exercise_depths                the depths of exercise 1
SCALES = {
    "ci": dict(lrs=[1e-4, 0.1, 1.0], steps=12, n_seeds=1, n_evals=1, sweep_depth=14, width=0.25, probe_depth=20,
               deep_depth=56, n_step_sizes=6, n_fractions=5, noise_pool=1024, noise_repeats=4,
               exercise_depths=[8, 14]),
    # cpu: chosen by the adequacy rule of the claims registry (pilot runs, before any verdict was computed): the
    # cheapest setting in which no BN learns beyond chance at the grid's smallest lr and diverges at some lr in every
    # seed, and BN learns beyond chance; 300 steps with the grid from 3e-3 (1e-3 and 100 steps were not adequate)
    "cpu": dict(lrs=[3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0], steps=300, n_seeds=2, n_evals=2, sweep_depth=14, width=0.25,
                probe_depth=56, deep_depth=110, n_step_sizes=11, n_fractions=11, noise_pool=2048, noise_repeats=8,
                exercise_depths=[8, 14, 20, 32]),
    "gpu": dict(lrs=[1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0], steps=2000, n_seeds=2, n_evals=8, sweep_depth=110,
                width=1.0, probe_depth=110, deep_depth=110, n_step_sizes=11, n_fractions=11, noise_pool=2048,
                noise_repeats=16, exercise_depths=[8, 20, 56, 110]),
}


def workload(scale: dict[str, Any], profile: Any, *, batches: Sequence[int] = (16, 32, 64, 128, 256)
             ) -> list[dict[str, Any]]:
    """What the chapter runs at `scale` on `profile` (a bnutils.profiles.Profile), one dict per kind of work (the
    fields are described in bnutils.experiments.basics.workload): the sweep (AMP, with augmentation), the analyses
    at initialisation (7 mini-batches of relative loss, 4 of channel statistics, 5 initialisations of the
    final-layer gradient, one diverging update, the SGD noise over `batches`, the notebook's sizes) and exercise 1."""
    steps, n_step_sizes, n_frac, pool = scale["steps"], scale["n_step_sizes"], scale["n_fractions"], scale["noise_pool"]
    runs, deep = len(scale["lrs"]) * scale["n_seeds"], scale["deep_depth"]
    at = dict(width=scale["width"], device=profile.device, batch=128)
    items = []
    for norm in NORMS:
        r, p, d = (f"resnet{scale[k]}/{norm}" for k in ("sweep_depth", "probe_depth", "deep_depth"))
        items += [
            dict(what=f"ResNet-{scale['sweep_depth']} {norm}: {runs} runs x {steps} steps, augmentation", model=r,
                 mode="train", passes=runs * steps, amp=profile.amp, augment=True, **at),
            dict(what=f"... {scale['n_evals']} test evaluations per run", model=r, mode="eval",
                 passes=runs * scale["n_evals"], **{**at, "batch": profile.n_test or 10_000}),
            dict(what="relative loss: 7 gradients", model=p, mode="grad", passes=7, **at),
            dict(what=f"... 7 x {n_step_sizes} stepped losses", model=p, mode="forward", passes=7 * n_step_sizes, **at),
            dict(what="channel statistics vs depth (4 batches; float64 statistics of every block)", model=d,
                 mode="forward", passes=4, ops=6 * (1 + (deep - 2) // 2), **at),
            dict(what="final-layer gradient (5 initialisations)", model=d, mode="forward", passes=5, **at),
            dict(what=f"diverging update: 1 gradient + {n_frac} forward passes", model=p, mode="grad", passes=1, **at),
            dict(what="...", model=p, mode="forward", passes=n_frac, **at),
            dict(what=f"SGD noise: pool gradient ({pool // 256} x 256)", model=r, mode="grad", passes=pool // 256,
                 **{**at, "batch": 256}),
            dict(what=f"... {scale['noise_repeats']} draws x batches {list(batches)}", model=r, mode="grad",
                 passes=scale["noise_repeats"] * sum(batches), launches=scale["noise_repeats"] * len(batches),
                 **{**at, "batch": 1}),
        ]
    for depth in scale["exercise_depths"]:  # exercise 1: no-BN ResNets of several depths, one mini-batch
        net = dict(model=f"resnet{depth}/none", **at)
        items += [dict(what=f"exercise 1, ResNet-{depth}: 1 gradient + {n_step_sizes} losses", mode="grad", passes=1,
                       **net),
                  dict(what="...", mode="forward", passes=n_step_sizes, **net)]
    return items
