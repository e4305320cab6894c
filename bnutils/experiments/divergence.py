"""Chapter 5 (Bjorck et al. 2018): large learning rates, divergence, and why BatchNorm permits the large ones.

Experiments: the learning-rate sweep of a CIFAR ResNet with and without BN over seeds (cached, resumable) and the
relative loss after one SGD step vs the step size at initialisation. The chapter's other analyses have their own
modules: `init_stats` (channel statistics vs depth and along one diverging update, the final-layer gradient),
`random_matrices` (singular values of products of random matrices) and `sgd_noise` (the SGD noise vs batch size).
Every function returns JSON-able data; `bnutils.figures.divergence` draws the chapter's figures from it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .. import validate
from ..profiles import SMOKE, smoke_cap
from ..cache import cached_run
from ..data import Dataset, batches
from ..parallel import sweep
from ..train import train
from . import resnets

NORMS = ("batchnorm", "none")
PAPER_LRS = {"batchnorm": (0.1, 0.003, 0.0001), "none": (0.0001,)}  # Bjorck et al. Fig 1
DIVERGENCE_RATIO = 1e3  # relative loss above which a step counts as diverged (Bjorck et al.)


def check_net(norm: str, depth: int, width: float, device: str = "cpu") -> None:
    """ValueError naming the argument for a norm outside NORMS, a depth that is not 6n + 2, a bad width or device."""
    resnets.check_network(norm, depth, width, device, allowed=NORMS, name="norm")


# ---------------------------------------------------------------- 1. the learning-rate sweep (Bjorck Fig 1)

def train_run(variant: str, lr: float, *, seed: int, depth: int, width: float, steps: int, batch_size: int,
              n_train: int | None, n_test: int | None, eval_every: int, device: str = "cpu", amp: bool = False,
              progress: bool | None = False) -> dict[str, Any]:
    """One run of the sweep for any network of the family, uncached (Bjorck's recipe: SGD, momentum 0.9, weight
    decay 5e-4, lr x0.1 halfway, augmentation, on the chapters' fixed CIFAR-10 subset): the body of `sweep_run`
    here and of chapter 6's `causal.variant_run`; `amp`: mixed precision (see bnutils.train)."""
    data = resnets.cifar_subset(n_train, n_test, device)
    model = resnets.network(variant, depth, width, seed, device)
    run = train(model, data, steps=steps, lr=lr, batch_size=batch_size, momentum=0.9, weight_decay=5e-4,
                lr_drop=(0.5, 0.1), augment=True, eval_every=eval_every, seed=seed, amp=amp,
                progress=progress)
    return {"experiment": "lr_sweep", "norm": variant, "lr": lr, "seed": seed, "depth": depth, "width": width,
            "steps": steps, "batch_size": batch_size, "n_train": n_train, "n_test": n_test,
            "eval_every": eval_every, "device": device, "loss": run.loss, "evals": run.evals,
            "diverged": run.diverged, "diverged_at": run.diverged_at, "final_test_acc": run.final_test_acc,
            "seconds": run.seconds}


@cached_run("divergence")
def sweep_run(norm: str, lr: float, *, seed: int, depth: int, width: float, steps: int, batch_size: int,
              n_train: int | None, n_test: int | None, eval_every: int, device: str = "cpu", amp: bool = False,
              progress: bool | None = False, cache: bool = True) -> dict[str, Any]:
    """One run of chapter 5's sweep (`train_run`), cached."""
    return train_run(norm, lr, seed=seed, depth=depth, width=width, steps=steps, batch_size=batch_size,
                     n_train=n_train, n_test=n_test, eval_every=eval_every, device=device, amp=amp, progress=progress)


def check_sweep(lrs: Sequence[float], variants: Sequence[str], seeds: Sequence[int], *, depth: int, width: float,
                steps: int, batch_size: int, n_evals: int, device: str, allowed: Sequence[str],
                name: str) -> list[int]:
    """The checks of a learning-rate sweep (chapter 5's networks `allowed` as `name`="norm", chapter 6's as
    "variant"), each ValueError naming the argument; returns the seeds as a list."""
    validate.parameters(lrs=(lrs, "positive list"), steps=(steps, "count"), batch_size=(batch_size, "count"),
                        n_evals=(n_evals, "count"))
    for v in validate.nonempty(f"{name}s", variants):
        resnets.check_network(v, depth, width, device, allowed=allowed, name=name)
    if len(set(variants)) != len(variants):
        raise ValueError(f"{name}s={list(variants)!r} must not repeat a {name}")
    if n_evals > steps:
        raise ValueError(f"n_evals={n_evals} must be <= steps={steps}")
    return validate.seeds("seeds", list(seeds))


def lr_sweep(lrs: Sequence[float], *, norms: Sequence[str] = NORMS, seeds: Sequence[int] = (0,), depth: int = 8,
             width: float = 0.25, steps: int = 200, batch_size: int = 128, n_train: int | None = 10000,
             n_test: int | None = 2000, n_evals: int = 4, device: str = "cpu", amp: bool = False,
             cache: bool = True, executor: Any = "auto") -> list[dict[str, Any]]:
    """Train a CIFAR ResNet with and without BN at every learning rate and seed (Bjorck's recipe: SGD, momentum
    0.9, weight decay 5e-4, lr x0.1 halfway, augmentation). Each run is cached (an interrupted sweep resumes)
    and the missing ones fan out to `executor` (see bnutils.parallel.sweep)."""
    seeds = check_sweep(lrs, norms, seeds, depth=depth, width=width, steps=steps, batch_size=batch_size,
                        n_evals=n_evals, device=device, allowed=NORMS, name="norm")
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
        check_net(n, depth, width, device)
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


def sweep_table(runs: Sequence[dict[str, Any]], variants: Sequence[str], lrs: Sequence[float],
                seeds: Sequence[int]) -> dict[str, Any]:
    """The numbers the claims and figures read: acc[variant][lr] and diverged[variant][lr], one entry per seed
    (accuracy NaN where the run diverged). A run's variant is its `variant`, else its `norm` (chapter 5's runs)."""
    validate.nonempty("runs", runs)
    by = {(r["variant"] if "variant" in r else r["norm"], float(r["lr"]), int(r["seed"])): r for r in runs}
    acc: dict[str, dict[float, list[float]]] = {}
    div: dict[str, dict[float, list[bool]]] = {}
    for v in variants:
        acc[v], div[v] = {}, {}
        for lr in lrs:
            rs = []
            for s in seeds:
                if (v, float(lr), int(s)) not in by:
                    raise ValueError(f"runs hold no run of variant={v!r}, lr={lr!r}, seed={s!r}")
                rs.append(by[(v, float(lr), int(s))])
            div[v][float(lr)] = [bool(r["diverged"]) for r in rs]
            acc[v][float(lr)] = [math.nan if r["diverged"] else float(r["final_test_acc"]) for r in rs]
    return {"acc": acc, "diverged": div}


def diverging_from(table: dict[str, Any], variant: str) -> dict[str, float | None]:
    """Where `variant` diverges in a `sweep_table`: `some`, the smallest lr at which some seed diverged; `every`,
    the smallest lr from which every seed diverged at that lr and at every larger lr of the grid (None: nowhere)."""
    div = table["diverged"][validate.choice("variant", variant, list(table["diverged"]))]
    lrs = sorted(div)
    some = min((lr for lr in lrs if any(div[lr])), default=None)
    every = None
    for lr in reversed(lrs):
        if not all(div[lr]):
            break
        every = lr
    return {"some": some, "every": every}


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


def one_step_run(variant: str, step_sizes: Sequence[float], *, n_batches: int, depth: int, width: float,
                 batch_size: int, seed: int, n_train: int | None, device: str, allowed: Sequence[str] = NORMS,
                 name: str = "norm") -> dict[str, Any]:
    """The relative loss of any network of the family (`allowed`, checked as `name`), uncached: the body of
    `relative_loss` here and of chapter 6's `causal.variant_relative_loss`."""
    resnets.check_network(variant, depth, width, device, allowed=allowed, name=name)
    validate.parameters(step_sizes=(step_sizes, "positive list"), n_batches=(n_batches, "count"))
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("seed", seed, minimum=0)
    # smoke mode: 2 batches of at most SMOKE.batch examples (the same network; the step-size grid stays)
    n_batches, batch_size = smoke_cap(n_batches), smoke_cap(batch_size, SMOKE.batch)
    data = resnets.cifar_subset(n_train, device=device)
    model = resnets.network(variant, depth, width, seed, device)
    ratios = one_step_ratios(model, data, step_sizes, n_batches, batch_size)
    return {"experiment": "relative_loss", "norm": variant, "step_sizes": [float(a) for a in step_sizes],
            "n_batches": n_batches, "depth": depth, "width": width, "batch_size": batch_size, "seed": seed,
            "n_train": n_train, "ratio": ratios}


@cached_run("divergence")
def relative_loss(norm: str, step_sizes: Sequence[float], *, n_batches: int = 7, depth: int = 20,
                  width: float = 0.25, batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                  device: str = "cpu", cache: bool = True) -> dict[str, Any]:
    """Loss after one SGD step of size a divided by the loss before, on the same batch, at initialisation
    (BN in training mode, as during training): ratio[batch][a]. Non-finite losses count as infinite."""
    return one_step_run(norm, step_sizes, n_batches=n_batches, depth=depth, width=width, batch_size=batch_size,
                        seed=seed, n_train=n_train, device=device)


def divergence_step_size(result: dict[str, Any], threshold: float = DIVERGENCE_RATIO) -> list[float | None]:
    """Per batch, the smallest step size whose relative loss exceeds `threshold` (None: never, in the range)."""
    validate.positive("threshold", threshold)
    out = []
    for row in result["ratio"]:
        hits = [a for a, r in zip(result["step_sizes"], row) if r > threshold]
        out.append(min(hits) if hits else None)
    return out


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
# long: the cpu settings trained 4x longer (the scales page's longer point; fixed before any long run)
SCALES["long"] = {**SCALES["cpu"], "steps": 1200}


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
