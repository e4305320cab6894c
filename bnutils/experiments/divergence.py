"""Chapter 5 (Bjorck et al. 2018): large learning rates, divergence, and why BatchNorm permits the large ones.

Experiments: the learning-rate sweep of a CIFAR ResNet with and without BN over seeds (cached, resumable),
the relative loss after one SGD step vs the step size at initialisation, channel statistics vs depth at
initialisation and along one diverging update, the final-layer gradient at initialisation, singular values
of products of random matrices, and the SGD noise vs learning rate and batch size. Every function returns
JSON-able data; the drawing helpers at the end turn it into the chapter's figures.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from matplotlib.colors import LogNorm
from torch.func import functional_call

from .. import plots, validate
from ..cache import cached, sweep
from ..data import Dataset, batches, load_cifar10
from ..models import ResNet
from ..train import seed_everything, smooth, train

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
    validate.choice("device", device, ("cpu", "cuda"))
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

def _train_one(c: dict[str, Any]) -> dict[str, Any]:
    device = c.get("device", "cpu")
    data = _cifar(c["n_train"], c["n_test"], device)
    model = _net(c["norm"], c["depth"], c["width"], c["seed"], device)
    run = train(model, data, steps=c["steps"], lr=c["lr"], batch_size=c["batch_size"], momentum=0.9,
                weight_decay=5e-4, lr_drop=(0.5, 0.1), augment=True, eval_every=c["eval_every"], seed=c["seed"],
                amp=device == "cuda", progress=c.get("progress"))
    return {**c, "loss": run.loss, "evals": run.evals, "diverged": run.diverged, "diverged_at": run.diverged_at,
            "final_test_acc": run.final_test_acc, "seconds": run.seconds}


def lr_sweep(lrs: Sequence[float], *, norms: Sequence[str] = NORMS, seeds: Sequence[int] = (0,), depth: int = 8,
             width: float = 0.25, steps: int = 200, batch_size: int = 128, n_train: int | None = 10000,
             n_test: int | None = 2000, n_evals: int = 4, device: str = "cpu",
             cache: bool = True) -> list[dict[str, Any]]:
    """Train a CIFAR ResNet with and without BN at every learning rate and seed (Bjorck's recipe: SGD, momentum
    0.9, weight decay 5e-4, lr x0.1 halfway, augmentation). Each run is cached: an interrupted sweep resumes."""
    if not lrs:
        raise ValueError("lrs must hold at least one learning rate")
    for lr in lrs:
        validate.positive("lrs", lr)
    for n in norms:
        _check_net(n, depth, width, device)
    seeds = validate.seeds("seeds", list(seeds))
    validate.integer("steps", steps)
    validate.integer("batch_size", batch_size)
    validate.integer("n_evals", n_evals)
    if n_evals > steps:
        raise ValueError(f"n_evals={n_evals} must be <= steps={steps}")
    eval_every = steps // n_evals
    configs = [dict(experiment="lr_sweep", norm=n, lr=float(lr), seed=s, depth=depth, width=width, steps=steps,
                    batch_size=batch_size, n_train=n_train, n_test=n_test, eval_every=eval_every, device=device)
               for n in norms for lr in lrs for s in seeds]
    return sweep(configs, _train_one, namespace="divergence", enabled=cache)


def train_live(lr: float, *, steps: int = 150, depth: int = 8, width: float = 0.25, seed: int = 0,
               n_train: int | None = 10000, n_test: int | None = 2000, device: str = "cpu") -> list[dict[str, Any]]:
    """One BN and one no-BN run at any lr, the sweep's recipe, for the live control (no cache, progress bar)."""
    validate.positive("lr", lr)
    for n in NORMS:
        _check_net(n, depth, width, device)
    validate.integer("steps", steps, minimum=4)
    return [_train_one(dict(experiment="lr_sweep", norm=n, lr=float(lr), seed=seed, depth=depth, width=width,
                            steps=steps, batch_size=128, n_train=n_train, n_test=n_test, eval_every=steps // 4,
                            device=device, progress=None)) for n in NORMS]


def summarize_sweep(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per norm and lr: final test accuracies of the seeds that did not diverge, and how many diverged; plus the
    largest lr at which no seed diverged and the lr with the best mean accuracy."""
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


def relative_loss(norm: str, step_sizes: Sequence[float], *, n_batches: int = 7, depth: int = 20,
                  width: float = 0.25, batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                  device: str = "cpu", cache: bool = True) -> dict[str, Any]:
    """Loss after one SGD step of size a divided by the loss before, on the same batch, at initialisation
    (BN in training mode, as during training): ratio[batch][a]. Non-finite losses count as infinite."""
    _check_net(norm, depth, width, device)
    if not step_sizes:
        raise ValueError("step_sizes must hold at least one step size")
    for a in step_sizes:
        validate.positive("step_sizes", a)
    validate.integer("n_batches", n_batches)
    validate.integer("batch_size", batch_size)
    validate.integer("seed", seed, minimum=0)
    config = dict(experiment="relative_loss", norm=norm, step_sizes=[float(a) for a in step_sizes],
                  n_batches=n_batches, depth=depth, width=width, batch_size=batch_size, seed=seed, n_train=n_train)

    def compute() -> dict[str, Any]:
        data = _cifar(n_train, device=device)
        model = _net(norm, depth, width, seed, device)
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
        return {**config, "ratio": ratios}

    return cached(config, compute, namespace="divergence", enabled=cache)


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

    def hook(i):
        def f(_m, _inp, out):
            o = out.double().transpose(0, 1).flatten(1)
            stats[i] = (o.mean(1), o.var(1, unbiased=False))
        return f

    handles = [mods[i].register_forward_hook(hook(i)) for i in blocks]
    try:
        model(x)
    finally:
        for h in handles:
            h.remove()
    return stats


def channel_stats_vs_depth(norm: str, *, depth: int = 56, width: float = 0.25, n_batches: int = 4,
                           batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                           device: str = "cpu") -> dict[str, Any]:
    """At initialisation: per block output, the median and 16/84 % quantiles (over channels and batches) of
    |channel mean| and channel variance. Without BN they grow with depth; with BN they stay bounded."""
    _check_net(norm, depth, width, device)
    validate.integer("n_batches", n_batches)
    validate.integer("batch_size", batch_size)
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
    data = _cifar(n_train, device=device)
    model = _net(norm, depth, width, seed, device)
    x, y = _batch(data, 0, batch_size)
    F.cross_entropy(model(x), y).backward()
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    blocks = [block_index(L, depth) for L in layers]
    fractions = np.linspace(0, 1, n_fractions)
    out = {"norm": norm, "lr": lr, "fractions": fractions.tolist(), "layers": list(layers),
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
    for k in factors:
        validate.integer("factors", k)
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
    if not batch_sizes:
        raise ValueError("batch_sizes must hold at least one batch size")
    for b in batch_sizes:
        validate.integer("batch_sizes", b, minimum=2)
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


# ---------------------------------------------------------------- figures

def _pct(v: float) -> str:
    return "diverged" if not math.isfinite(v) else f"{100 * v:.0f}%"


def draw_accuracy_vs_lr(ax: plt.Axes, summary: dict[str, dict[str, Any]], current: float | None = None) -> None:
    """Final test accuracy vs lr, mean over seeds with each seed as a dot, diverged seeds as crosses on the axis."""
    for norm, d in summary.items():
        lrs = [lr for lr in d["lrs"] if d["by_lr"][lr]["acc"]]
        ax.plot(lrs, [100 * np.mean(d["by_lr"][lr]["acc"]) for lr in lrs], "-o", color=plots.color(norm),
                label=plots.label(norm))
        for lr in lrs:
            ax.plot([lr] * len(d["by_lr"][lr]["acc"]), [100 * a for a in d["by_lr"][lr]["acc"]], ".",
                    color=plots.color(norm), alpha=0.5)
    div = [lr for d in summary.values() for lr in d["lrs"] if d["by_lr"][lr]["diverged"]]
    plots.mark_diverged(ax, div, [10] * len(div), label_="diverged (no accuracy)")
    if current is not None:
        ax.axvline(current, color="gray", ls="--", lw=1)
    ax.set_xscale("log")
    ax.set_xlabel("learning rate")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_ylim(0, None)
    ax.legend(fontsize=8)


def draw_curves(ax: plt.Axes, runs: Sequence[dict[str, Any]], lr: float, *, window: int = 10) -> str:
    """Training loss (smoothed, log scale) of every seed at one lr, BN and no-BN; diverged runs end in a cross.
    Returns a short description for the title."""
    parts = []
    for norm in NORMS:
        rs = [r for r in runs if r["norm"] == norm and math.isclose(r["lr"], lr)]
        if not rs:
            continue
        for i, r in enumerate(rs):
            loss = np.minimum(np.asarray(r["loss"], dtype=float), 1e4)
            s = smooth(np.where(np.isfinite(loss), loss, np.nan), window)
            ax.plot(np.arange(1, len(s) + 1), s, color=plots.color(norm), alpha=0.8,
                    label=plots.label(norm) if i == 0 else None)
            if r["diverged"]:
                plots.mark_diverged(ax, [r["diverged_at"] + 1], [min(s[-1] if np.isfinite(s[-1]) else 1e4, 1e4)],
                                    label_=None)
        accs = [r["final_test_acc"] for r in rs if not r["diverged"]]
        n_div = sum(r["diverged"] for r in rs)
        txt = f"{100 * np.mean(accs):.0f}%" if accs else "diverged"
        if accs and n_div:
            txt += f" ({n_div} diverged)"
        parts.append(f"{'BN' if norm == 'batchnorm' else 'no BN'} {txt}")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss (smoothed)")
    ax.legend(fontsize=8)
    return ", ".join(parts)


def draw_explorer_frame(fig: plt.Figure, lr: float, runs: Sequence[dict[str, Any]],
                        summary: dict[str, dict[str, Any]]) -> None:
    """One frame of the learning-rate explorer: the curves at `lr` (left), accuracy vs lr with `lr` marked (right)."""
    ax1, ax2 = fig.subplots(1, 2)
    desc = draw_curves(ax1, runs, lr)
    draw_accuracy_vs_lr(ax2, summary, current=lr)
    fig.suptitle(f"learning rate {lr:g}: final test accuracy {desc}", fontweight="bold", fontsize=11)
    fig.tight_layout()


def draw_channel_heatmaps(result: dict[str, Any]) -> plt.Figure:
    """Bjorck's Fig 4: rows = fraction of the update applied, columns = channels, colour = |mean| or variance."""
    layers = result["layers"]
    fig, axes = plt.subplots(2, len(layers), figsize=(3.2 * len(layers), 5.2))
    for j, L in enumerate(layers):
        for i, key in enumerate(("mean", "var")):
            a = np.abs(np.asarray(result[key][str(L)]))
            a = np.where(np.isfinite(a), a, np.nan)
            lo = max(np.nanmin(a[a > 0]) if np.any(a > 0) else 1e-12, 1e-12)
            a = np.maximum(a, lo)  # dead channels (exactly 0) drawn at the bottom of the scale
            im = axes[i, j].imshow(a, aspect="auto", origin="lower", cmap="magma", interpolation="nearest",
                                   norm=LogNorm(vmin=lo, vmax=max(np.nanmax(a), lo * 10)),
                                   extent=(-0.5, a.shape[1] - 0.5, 0, 100))
            fig.colorbar(im, ax=axes[i, j])
            axes[i, j].grid(False)
            axes[i, j].set_title(f"layer {L} (of 110): {'|channel mean|' if key == 'mean' else 'channel variance'}",
                                 fontsize=9)
            axes[i, j].set_xlabel("channel")
            axes[i, j].set_ylabel("% of the update applied")
    return fig


def draw_paper_lrs(runs: Sequence[dict[str, Any]]) -> plt.Figure:
    """Bjorck's Fig 1 (right): training loss and test accuracy over training at the paper's learning rates."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    styles = {0.1: "-", 0.003: "--", 0.0001: ":"}
    for norm, lrs in PAPER_LRS.items():
        for lr in lrs:
            rs = [r for r in runs if r["norm"] == norm and math.isclose(r["lr"], lr)]
            if not rs:
                continue
            name = f"{plots.label(norm)}, lr {lr:g}"
            loss = [smooth(np.minimum(np.asarray(r["loss"], dtype=float), 1e4), 10) for r in rs]
            plots.band(ax1, np.arange(1, max(len(v) for v in loss) + 1), loss, kind=norm, label_=name)
            ax1.lines[-1].set_linestyle(styles[lr])
            ok = [r for r in rs if not r["diverged"]]
            if ok:
                steps = [e["step"] for e in ok[0]["evals"]]
                acc = 100 * np.mean([[e["test_acc"] for e in r["evals"]] for r in ok], axis=0)
                ax2.plot(steps, acc, marker="o", ls=styles[lr], color=plots.color(norm), label=name)
    ax1.set(yscale="log", xlabel="training step", ylabel="training loss (smoothed)")
    ax2.set(xlabel="training step", ylabel="test accuracy (%)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    return fig


def draw_relative_loss(results: dict[str, dict[str, Any]], show_batches: Sequence[int] = (1, 4, 7)) -> plt.Figure:
    """Relative loss vs step size for mini-batches `show_batches` (1-based), one panel per network, threshold drawn."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.6), sharey=True)
    styles = ["-", "--", ":", "-."]
    for ax, (norm, r) in zip(np.atleast_1d(axes), results.items()):
        a = np.asarray(r["step_sizes"])
        for k, b in enumerate(show_batches):
            ratio = np.minimum(np.asarray(r["ratio"][b - 1], dtype=float), 1e30)  # inf (overflow) drawn at 1e30
            ax.plot(a, ratio, marker="o", ms=3, ls=styles[k % 4], color=plots.color(norm), label=f"mini-batch {b}")
        ax.axhline(DIVERGENCE_RATIO, color="black", ls="--", lw=1, label="divergence threshold 1e3")
        if not np.all(np.isfinite(np.asarray(r["ratio"], dtype=float))):
            ax.text(0.02, 0.95, "overflow (inf) drawn at 1e30", transform=ax.transAxes, fontsize=7, va="top")
        ax.set(xscale="log", yscale="log", xlabel="step size a", title=plots.label(norm))
        ax.legend(fontsize=7)
    np.atleast_1d(axes)[0].set_ylabel("loss after one step / loss before")
    return fig


def draw_relative_loss_heatmap(results: dict[str, dict[str, Any]]) -> plt.Figure:
    """log10 relative loss over step size x mini-batch, one panel per network, on a shared colour scale."""
    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 3.2))
    mats = {n: np.log10(np.clip(np.asarray(r["ratio"], dtype=float), 1e-30, 1e30)) for n, r in results.items()}
    hi = max(3.5, max(float(np.max(m)) for m in mats.values()))
    lo = min(-0.5, min(float(np.min(m)) for m in mats.values()))
    for ax, (norm, r) in zip(np.atleast_1d(axes), results.items()):
        a = np.log10(r["step_sizes"])
        h = (a[1] - a[0]) / 2 if len(a) > 1 else 0.5
        im = ax.imshow(mats[norm], aspect="auto", origin="lower", cmap="rocket_r", vmin=lo, vmax=hi,
                       extent=(a[0] - h, a[-1] + h, 0.5, len(r["ratio"]) + 0.5), interpolation="nearest")
        ax.grid(False)
        ax.contour(a, np.arange(1, len(r["ratio"]) + 1), mats[norm], levels=[3], colors="cyan", linewidths=1.5)
        ax.set(xlabel="log10 step size", ylabel="mini-batch", title=plots.label(norm))
        fig.colorbar(im, ax=ax, label="log10 relative loss")
    return fig


def draw_stats_vs_depth(results: dict[str, dict[str, Any]]) -> plt.Figure:
    """|channel mean| and channel variance vs layer at initialisation, median with 16-84 % bars, log scale."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for norm, r in results.items():
        for ax, key in zip(axes, ("mean", "var")):
            q = np.asarray(r[key])
            ax.errorbar(r["layer"], q[:, 1], yerr=[q[:, 1] - q[:, 0], q[:, 2] - q[:, 1]], fmt="o-", ms=3,
                        capsize=2, color=plots.color(norm), label=plots.label(norm))
    for ax, name in zip(axes, ("|channel mean|", "channel variance")):
        ax.set(yscale="log", xlabel="layer (residual block output)", ylabel=name)
        ax.legend(fontsize=8)
    return fig


def draw_final_gradient(results: dict[str, dict[str, Any]]) -> plt.Figure:
    """The loss gradient w.r.t. the logits at initialisation: rows images, columns classes, one panel per network."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.5 * len(results), 4.2))
    for ax, (norm, r) in zip(np.atleast_1d(axes), results.items()):
        g = np.asarray(r["grad"])
        m = float(np.abs(g).max())
        im = ax.imshow(g, aspect="auto", cmap="vlag", vmin=-m, vmax=m, interpolation="nearest")
        ax.grid(False)
        ax.set(xlabel="class", ylabel="image of the batch", xticks=range(g.shape[1]),
               title=f"{plots.label(norm)}: {100 * r['fraction_top_class'][0]:.0f}% predicted as one class")
        fig.colorbar(im, ax=ax, label="d loss / d logit")
    return fig


def draw_random_matrices(sv: dict[int, list], cond: dict[str, list]) -> plt.Figure:
    """Histograms of singular values of products of Gaussian matrices, and the condition number vs factors."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    allv = np.concatenate([np.asarray(v) for v in sv.values()])
    bins = np.logspace(np.log10(allv.min()), np.log10(allv.max()), 40)
    for i, (k, v) in enumerate(sorted(sv.items())):
        ax1.hist(v, bins=bins, histtype="step", lw=2, color=plots.PALETTE[i + 2], label=f"{k} factor{'s' * (k > 1)}")
    ax1.set(xscale="log", xlabel="singular value", ylabel="count")
    ax1.legend(fontsize=8)
    c = np.asarray(cond["cond"])
    ax2.plot(cond["factors"], np.exp(np.log(c).mean(0)), "o-", color=plots.PALETTE[2], label="geometric mean over seeds")
    for row in c:
        ax2.plot(cond["factors"], row, ".", color="gray", alpha=0.6)
    ax2.set(yscale="log", xlabel="number of factors (depth)", ylabel="condition number")
    ax2.legend(fontsize=8)
    return fig


def draw_noise(results: dict[str, dict[str, Any]], lrs: Sequence[float]) -> plt.Figure:
    """E||g_B - g||^2 vs |B| (left), and the SGD noise a^2 E||g_B - g||^2 vs a^2/|B| for every lr and |B| (right)."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
    for norm, r in results.items():
        b = np.asarray(r["batch_sizes"], dtype=float)
        m = np.asarray([np.mean(v) for v in r["sq_dev"]])
        ax1.errorbar(b, m, yerr=[np.std(v) for v in r["sq_dev"]], fmt="o-", capsize=2, color=plots.color(norm),
                     label=f"{plots.label(norm)} (slope {noise_slope(r):.2f})")
        ax1.plot(b, m[0] * b[0] / b, ls=":", color=plots.color(norm), alpha=0.7)
        x = np.concatenate([np.asarray(lrs) ** 2 / bb for bb in b])
        y = np.concatenate([np.asarray(lrs) ** 2 * mm for mm in m])
        ax2.plot(x, y, "o", ms=4, color=plots.color(norm), label=plots.label(norm))
    ax1.set(xscale="log", yscale="log", xlabel="batch size |B|", ylabel="E ||g_B - g||^2")
    ax1.set_xticks(b, [str(int(v)) for v in b], minor=False)
    ax1.minorticks_off()
    ax2.set(xscale="log", yscale="log", xlabel="a^2 / |B|", ylabel="SGD noise a^2 E ||g_B - g||^2")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    return fig
