"""Chapter 5 (Bjorck et al. 2018), why a large step diverges: the activations of the CIFAR ResNet at
initialisation. Channel statistics of every block output vs depth, the channel statistics at three depths along
one diverging update, and the gradient of the loss w.r.t. the logits (the final layer) at initialisation. Every
function returns JSON-able data; `bnutils.figures.divergence` draws it."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..modes import Hooks
from ..profiles import SMOKE, smoke_cap
from . import resnets
from .divergence import NORMS, check_net

BJORCK_LAYERS = (8, 44, 80)  # of ResNet-110's 110 layers


def block_outputs(model: nn.Module) -> list[nn.Module]:
    """The stem and every residual block, in forward order: 'layer 2k+1' of the ResNet is the k-th entry."""
    return [model.stem, *model.layers]


def block_index(layer: int, depth: int) -> int:
    """The block of a ResNet-`depth` holding Bjorck's `layer` of ResNet-110 (scaled by depth / 110)."""
    validate.integer("layer", layer)
    n_blocks = 1 + (depth - 2) // 2
    return min(n_blocks - 1, max(0, round(layer * depth / 110) // 2))


@torch.no_grad()
def channel_stats(model: nn.Module, x: torch.Tensor, blocks: Sequence[int] | None = None) -> dict[int, tuple]:
    """Per chosen block output: (channel means, channel variances) over the batch and positions, in float64."""
    mods = block_outputs(model)
    blocks = range(len(mods)) if blocks is None else blocks
    stats: dict[int, tuple] = {}

    def hook(i: int, _m: nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        o = out.double().transpose(0, 1).flatten(1)
        stats[i] = (o.mean(1), o.var(1, unbiased=False))

    with Hooks({i: mods[i] for i in blocks}, hook):
        model(x)
    return stats


def block_stats(model: nn.Module, data: Any, n_batches: int, batch_size: int) -> dict[str, list]:
    """Per block output of `model` (layer 2k+1 for block k) over the first `n_batches` mini-batches of the fixed
    order: the 16/50/84 % quantiles (over channels and batches) of |channel mean| and of channel variance, and
    `mean_var`, the channel variance averaged over channels and batches."""
    per = [channel_stats(model, resnets.batch_at(data, b, batch_size)[0]) for b in range(n_batches)]
    out: dict[str, list] = {"layer": [], "mean": [], "var": [], "mean_var": []}
    for i in sorted(per[0]):
        out["layer"].append(1 + 2 * i)
        for key, j in (("mean", 0), ("var", 1)):
            v = torch.cat([p[i][j].abs() for p in per]).cpu().numpy()
            out[key].append([float(q) for q in np.quantile(v, (0.16, 0.5, 0.84))])
        out["mean_var"].append(float(torch.cat([p[i][1] for p in per]).mean()))
    return out


def channel_stats_vs_depth(norm: str, *, depth: int = 56, width: float = 0.25, n_batches: int = 4,
                           batch_size: int = 128, seed: int = 0, n_train: int | None = 10000,
                           device: str = "cpu", allowed: Sequence[str] = NORMS, name: str = "norm") -> dict[str, Any]:
    """At initialisation: per block output (`block_stats`), the median and 16/84 % quantiles (over channels and
    batches) of |channel mean| and channel variance, and their mean. Without BN they grow with depth; with BN they
    stay bounded. `allowed`: the networks accepted (chapter 6 passes all five, checked as `name`)."""
    resnets.check_network(norm, depth, width, device, allowed=allowed, name=name)
    validate.integer("n_batches", n_batches)
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("seed", seed, minimum=0)
    # smoke mode: 2 batches of at most SMOKE.batch examples (the same network)
    n_batches, batch_size = smoke_cap(n_batches), smoke_cap(batch_size, SMOKE.batch)
    data = resnets.cifar_subset(n_train, device=device)
    model = resnets.network(norm, depth, width, seed, device)
    return {"norm": norm, "depth": depth, **block_stats(model, data, n_batches, batch_size)}


def diverging_update(norm: str, lr: float, *, depth: int = 56, width: float = 0.25, n_fractions: int = 11,
                     layers: Sequence[int] = BJORCK_LAYERS, batch_size: int = 128, seed: int = 0,
                     n_train: int | None = 10000, device: str = "cpu") -> dict[str, Any]:
    """Bjorck's Fig 4: channel means and variances at three depths while the step w - t * lr * grad is applied,
    t from 0 to 1 (rows), at initialisation. `layers` are of ResNet-110 and scaled to `depth`."""
    check_net(norm, depth, width, device)
    validate.positive("lr", lr)
    validate.integer("n_fractions", n_fractions, minimum=2)
    validate.int_list("layers", layers, 1, 110)
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("seed", seed, minimum=0)
    data = resnets.cifar_subset(n_train, device=device)
    model = resnets.network(norm, depth, width, seed, device)
    x, y = resnets.batch_at(data, 0, smoke_cap(batch_size, SMOKE.batch))  # smoke mode: SMOKE.batch examples
    F.cross_entropy(model(x), y).backward()
    params = {k: p.detach().clone() for k, p in model.named_parameters()}
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    blocks = [block_index(L, depth) for L in layers]
    fractions = np.linspace(0, 1, n_fractions)
    out = {"norm": norm, "lr": lr, "depth": depth, "width": width, "fractions": fractions.tolist(), "layers": list(layers),
           "blocks": blocks, "mean": {str(L): [] for L in layers}, "var": {str(L): [] for L in layers}}
    for t in fractions:
        with torch.no_grad():
            for k, p in model.named_parameters():
                p.copy_(params[k] - t * lr * grads[k])
        stats = channel_stats(model, x, blocks)
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
    check_net(norm, depth, width, device)
    seeds = validate.seeds("seeds", list(seeds))
    validate.integer("batch_size", batch_size, minimum=2)
    validate.integer("n_show", n_show)
    data = resnets.cifar_subset(n_train, device=device)
    x, y = resnets.batch_at(data, 0, smoke_cap(batch_size, SMOKE.batch))  # smoke mode: SMOKE.batch examples
    out: dict[str, Any] = {"norm": norm, "fraction_top_class": [], "confidence": [], "grad": None}
    for s in seeds:
        model = resnets.network(norm, depth, width, s, device)
        logits = model(x).detach().double()
        grad = torch.softmax(logits, 1) - F.one_hot(y, logits.shape[1]).double()  # batch x d(mean loss)/d logits
        pred = logits.argmax(1)
        out["confidence"].append(float(torch.softmax(logits, 1).max(1).values.mean()))
        out["fraction_top_class"].append(float(torch.bincount(pred, minlength=10).max()) / len(pred))
        if out["grad"] is None:
            out["grad"], out["labels"] = grad[:n_show].cpu().tolist(), y[:n_show].cpu().tolist()
    return out
