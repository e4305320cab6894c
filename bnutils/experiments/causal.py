"""Chapter 6: testing the explanations causally. Remove the failure mode an explanation blames, without BN
(SkipInit, De & Smith 2020; Fixup, Zhang, Dauphin & Ma 2019; a batch-free normalization, GroupNorm), and see
whether BN's benefits come back.

Experiments: chapter 5's learning-rate sweep (same CIFAR ResNet family, recipe, data subset and divergence rule)
for five variants, the channel variance vs depth at initialisation, and the relative loss after one SGD step vs
the step size at initialisation. BN and no-BN runs are chapter 5's own (`divergence.sweep_run`,
`divergence.relative_loss`: the same cache entries); the other variants run here with the same code path. Every
function returns JSON-able data; `bnutils.figures.causal` draws the chapter's figures from it.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch

from .. import validate
from ..cache import cached_run
from ..parallel import sweep
from . import divergence, init_stats, resnets

VARIANTS = resnets.NETWORKS  # the chapter's five networks, in drawing order
FIXES = ("skipinit", "fixup")  # normalization-free fixes of the no-BN network
BATCH_FREE = "group"  # the batch-free normalization (GroupNorm, bnutils.norms)
CH5 = divergence.NORMS  # variants whose runs are chapter 5's own
NAMES = resnets.NAMES


def check_variant(variant: str, depth: int, width: float, device: str = "cpu") -> None:
    """ValueError naming the argument for an unknown variant, a depth that is not 6n + 2, a bad width or device."""
    resnets.check_network(variant, depth, width, device, allowed=VARIANTS)


def structure(variant: str, *, depth: int = 20, width: float = 0.25, seed: int = 0) -> dict[str, Any]:
    """The structural facts of a freshly initialised network that hold at every depth, width and seed: its branch
    scalars, whether the last layer of every branch and the classifier are zero, the Fixup factor and the conv
    weights' std relative to Kaiming's (per branch layer), and the number of scalar biases."""
    check_variant(variant, depth, width)
    net = resnets.network(variant, depth, width, seed).requires_grad_(False)
    out: dict[str, Any] = {"variant": variant, "depth": depth, "n_branches": len(net.layers)}
    if variant in FIXES:
        out["branch_scales"] = [float(s) for s in net.branch_scales]
        out["last_layer_zero"] = all(bool((b.conv2.weight == 0).all()) for b in net.layers)
        out["classifier_zero"] = bool((net.head.weight == 0).all() and (net.head.bias == 0).all())
    if variant == "fixup":
        out["rescale"] = net.rescale
        kaiming = lambda w: math.sqrt(2.0 / w[0].numel())
        out["first_layer_std_ratio"] = float(np.mean([float(b.conv1.weight.std()) / kaiming(b.conv1.weight)
                                                      for b in net.layers]))
        out["scalar_biases"] = sum(1 for n, p in net.named_parameters() if p.dim() == 0 and n.endswith("bias"))
    return out


@torch.no_grad()
def batch_independence(variant: str, *, depth: int = 8, width: float = 0.25, batch_size: int = 16,
                       seed: int = 0) -> float:
    """Largest |output difference| of the first example computed alone and inside a batch of `batch_size` random
    images, in training mode: 0 (float error) for a batch-free network, large for BN."""
    check_variant(variant, depth, width)
    validate.integer("batch_size", batch_size, minimum=2)
    net = resnets.network(variant, depth, width, seed).double()
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch_size, 3, 32, 32, generator=g, dtype=torch.float64)
    if variant == "batchnorm":  # one example alone has no batch statistics in training mode: compare with eval
        net.eval()
        alone = net(x[:1])
        net.train()
    else:
        alone = net(x[:1])
    return float((alone - net(x)[:1]).abs().max())


# ---------------------------------------------------------------- 1. the learning-rate sweep, five variants

@cached_run("causal")
def variant_run(variant: str, lr: float, *, seed: int, depth: int, width: float, steps: int, batch_size: int,
                n_train: int | None, n_test: int | None, eval_every: int, device: str = "cpu", amp: bool = False,
                progress: bool | None = False, cache: bool = True) -> dict[str, Any]:
    """One run of chapter 5's sweep for any variant (divergence.sweep_run's recipe, data and record: SGD, momentum
    0.9, weight decay 5e-4, lr x0.1 halfway, augmentation, on the chapter's fixed CIFAR-10 subset)."""
    check_variant(variant, depth, width, device)
    return {**divergence.train_run(variant, lr, seed=seed, depth=depth, width=width, steps=steps,
                                   batch_size=batch_size, n_train=n_train, n_test=n_test, eval_every=eval_every,
                                   device=device, amp=amp, progress=progress), "variant": variant}


def lr_sweep(lrs: Sequence[float], *, variants: Sequence[str] = VARIANTS, seeds: Sequence[int] = (0,),
             depth: int = 8, width: float = 0.25, steps: int = 200, batch_size: int = 128,
             n_train: int | None = 10000, n_test: int | None = 2000, n_evals: int = 4, device: str = "cpu",
             amp: bool = False, cache: bool = True, executor: Any = "auto") -> list[dict[str, Any]]:
    """Chapter 5's sweep (`divergence.lr_sweep`'s arguments) for every variant, lr and seed, in that order. BN and
    no-BN runs are chapter 5's cached runs; every run is cached and the missing ones fan out to `executor` (one
    pool for all of them, see bnutils.parallel.sweep). Each result carries its `variant`."""
    seeds = divergence.check_sweep(lrs, variants, seeds, depth=depth, width=width, steps=steps, batch_size=batch_size,
                                   n_evals=n_evals, device=device, allowed=VARIANTS, name="variant")
    common = dict(depth=depth, width=width, steps=steps, batch_size=batch_size, n_train=n_train, n_test=n_test,
                  eval_every=steps // n_evals, device=device, amp=amp, cache=cache)
    calls = [(v, dict(lr=float(lr), seed=s, **common)) for v in variants for lr in lrs for s in seeds]
    ex = executor if cache else "serial"
    # two fan-outs: chapter 5's runs (looked up in its cache first, only the missing ones run), then the others
    ch5 = [(i, {"norm": v, **kw}) for i, (v, kw) in enumerate(calls) if v in CH5]
    ours = [(i, {"variant": v, **kw}) for i, (v, kw) in enumerate(calls) if v not in CH5]
    out: list[dict[str, Any] | None] = [None] * len(calls)
    for run, todo in ((divergence.sweep_run, ch5), (variant_run, ours)):
        if todo:
            for (i, _), r in zip(todo, sweep(run, [kw for _, kw in todo], executor=ex)):
                out[i] = {**r, "variant": calls[i][0]}
    return out  # type: ignore[return-value]


def summarize(table: dict[str, Any], chance: float = 0.15) -> dict[str, dict[str, Any]]:
    """Per variant: the lrs where no seed diverged, the best of them (highest mean accuracy) and its mean
    accuracy, and the largest lr at which every seed trains (no divergence, accuracy above `chance`)."""
    validate.in_range("chance", chance, 0.0, 1.0)
    out = {}
    for v, by_lr in table["acc"].items():
        lrs = sorted(by_lr)
        stable = [lr for lr in lrs if not any(table["diverged"][v][lr])]
        means = {lr: float(np.mean(by_lr[lr])) for lr in stable}
        best = max(means, key=means.get) if means else None
        trains = [lr for lr in stable if all(a > chance for a in by_lr[lr])]
        out[v] = {"lrs": lrs, "stable": stable, "best_lr": best,
                  "best_acc": means[best] if best is not None else math.nan,
                  "max_trainable_lr": max(trains) if trains else None,
                  "first_diverging_lr": min((lr for lr in lrs if any(table["diverged"][v][lr])), default=None)}
    return out


def large_lr_training(table: dict[str, Any], chance: float = 0.15) -> dict[str, Any]:
    """At the lrs where every seed of the network without BN diverged (`large`), how many runs of each other
    network trained (did not diverge, accuracy above `chance`), out of `n_cases` (those lrs x the seeds)."""
    validate.in_range("chance", chance, 0.0, 1.0)
    large = [lr for lr in sorted(table["diverged"]["none"]) if all(table["diverged"]["none"][lr])]
    trained = {v: sum(not d and a > chance for lr in large for a, d in zip(table["acc"][v][lr], table["diverged"][v][lr]))
               for v in table["acc"] if v != "none"}
    n_seeds = len(next(iter(table["diverged"]["none"].values()), []))
    return {"large": large, "trained": trained, "n_cases": len(large) * n_seeds}


# ---------------------------------------------------------------- 2. relative loss after one step at init

@cached_run("causal")
def variant_relative_loss(variant: str, step_sizes: Sequence[float], *, n_batches: int = 7, depth: int = 20,
                          width: float = 0.25, batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                          device: str = "cpu", cache: bool = True) -> dict[str, Any]:
    """divergence.relative_loss for any variant: the loss after one SGD step of size a over the loss before, on the
    same batch, at initialisation (training mode), ratio[batch][a]; non-finite losses count as infinite."""
    return {**divergence.one_step_run(variant, step_sizes, n_batches=n_batches, depth=depth, width=width,
                                      batch_size=batch_size, seed=seed, n_train=n_train, device=device,
                                      allowed=VARIANTS, name="variant"), "variant": variant}


def relative_loss(variant: str, step_sizes: Sequence[float], **kwargs: Any) -> dict[str, Any]:
    """The relative loss of `variant` (chapter 5's cached run for BN and no BN, `variant_relative_loss` else);
    the keyword arguments are divergence.relative_loss's."""
    validate.choice("variant", variant, VARIANTS)
    if variant in CH5:
        return {**divergence.relative_loss(variant, step_sizes, **kwargs), "variant": variant}
    return variant_relative_loss(variant, step_sizes, **kwargs)


def median_divergence_step(result: dict[str, Any]) -> float | None:
    """The median over mini-batches of the smallest step size at which one step multiplies the loss by more than
    1e3; None when fewer than half of the mini-batches pass the threshold within the step sizes."""
    hits = [a for a in divergence.divergence_step_size(result) if a is not None]
    return float(np.median(hits)) if 2 * len(hits) >= len(result["ratio"]) and hits else None


# ---------------------------------------------------------------- 3. activations vs depth at initialisation

def stats_vs_depth(variant: str, *, depth: int = 56, width: float = 0.25, n_batches: int = 4,
                   batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                   device: str = "cpu") -> dict[str, Any]:
    """init_stats.channel_stats_vs_depth for any variant (the same quantiles of |channel mean| and channel variance
    per block output), plus `mean_var`: the channel variance averaged over channels and batches. The median alone
    can be 0 for SkipInit and Fixup at initialisation, where the zero-padded channels of the option-A shortcuts
    stay zero; the mean cannot."""
    return {"variant": variant, "seed": seed,
            **init_stats.channel_stats_vs_depth(variant, depth=depth, width=width, n_batches=n_batches,
                                                 batch_size=batch_size, seed=seed, n_train=n_train, device=device,
                                                 allowed=VARIANTS, name="variant")}


def growth(result: dict[str, Any]) -> float:
    """Mean channel variance at the last block output over that at the first (the stem): x1 = no growth."""
    first, last = result["mean_var"][0], result["mean_var"][-1]
    return last / first if first > 0 else math.inf


def growth_per_block(result: dict[str, Any]) -> float:
    """The geometric-mean growth factor per residual block."""
    g = growth(result)
    n = len(result["mean_var"]) - 1
    return g ** (1 / n) if math.isfinite(g) and g > 0 and n else math.nan


# ---------------------------------------------------------------- the chapter's settings and their work

# The sweep and the analyses use chapter 5's settings at each profile (divergence.SCALES); chapter 6 adds:
#   n_growth_seeds   initialisations of the activations-vs-depth analysis
#   lrs              at cpu, every other rate of chapter 5's grid plus its large end (five networks cost 2.5x a
#                    sweep of two, and the chapter must fit its 10 minutes): BN and no BN come from chapter 5's cache
EXTRA = {"ci": dict(n_growth_seeds=2, lrs=divergence.SCALES["ci"]["lrs"]),
         "cpu": dict(n_growth_seeds=2, lrs=[3e-3, 3e-2, 0.3, 1.0, 3.0]),
         "gpu": dict(n_growth_seeds=2, lrs=divergence.SCALES["gpu"]["lrs"])}
EXTRA["long"] = EXTRA["cpu"]  # chapter 5's long sweep: its steps, this chapter's learning rates
SHARED = ("steps", "sweep_depth", "width", "n_seeds", "n_evals", "probe_depth", "deep_depth", "n_step_sizes")
SCALES = {name: {**{k: divergence.SCALES[name][k] for k in SHARED}, **EXTRA[name]} for name in EXTRA}


def workload(scale: dict[str, Any], profile: Any) -> list[dict[str, Any]]:
    """What the chapter runs at `scale` on `profile` (fields as in bnutils.experiments.basics.workload): the sweep
    of the five variants (BN and no BN are chapter 5's runs: free when chapter 5 ran first), the relative loss
    (7 gradients, 7 x n_step_sizes losses) and the activations vs depth (4 batches per initialisation). Models
    are named as bench/estimate.py builds them: SkipInit and Fixup as the no-BN ResNet of the same depth."""
    steps, runs = scale["steps"], len(scale["lrs"]) * scale["n_seeds"]
    at = dict(width=scale["width"], device=profile.device, batch=128)
    items = []
    for v in VARIANTS:
        norm = "none" if v in FIXES else v  # SkipInit's and Fixup's convs are no BN's (their scalars cost nothing)
        r, p, d = (f"resnet{scale[k]}/{norm}" for k in ("sweep_depth", "probe_depth", "deep_depth"))
        items += [
            dict(what=f"{NAMES[v]}: {runs} runs x {steps} steps, augmentation", model=r, mode="train",
                 passes=runs * steps, amp=profile.amp, augment=True, **at),
            dict(what=f"... {scale['n_evals']} test evaluations per run", model=r, mode="eval",
                 passes=runs * scale["n_evals"], **{**at, "batch": profile.n_test or 10_000}),
            dict(what="relative loss: 7 gradients", model=p, mode="grad", passes=7, **at),
            dict(what=f"... 7 x {scale['n_step_sizes']} stepped losses", model=p, mode="forward",
                 passes=7 * scale["n_step_sizes"], **at),
            dict(what=f"channel statistics vs depth (4 batches x {scale['n_growth_seeds']} initialisations)",
                 model=d, mode="forward", passes=4 * scale["n_growth_seeds"], **at),
        ]
    return items
