"""Chapter 5 (Bjorck et al. 2018): the SGD noise at initialisation, E||g_B - g||^2 over mini-batches B vs the batch
size |B| (a step of size a carries a^2 times it), for the chapter's CIFAR ResNets."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import validate
from ..profiles import smoke_cap
from . import resnets
from .divergence import check_net


def _flat_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()]).double()


def sgd_noise(norm: str, batch_sizes: Sequence[int], *, pool: int = 2048, repeats: int = 8, depth: int = 8,
              width: float = 0.25, seed: int = 0, n_train: int | None = 10000, device: str = "cpu") -> dict[str, Any]:
    """E||g_B - g||^2 over mini-batches B drawn without replacement from a pool of examples, at initialisation:
    the SGD noise of a step of size a is a^2 times it. g is the pool's gradient (in chunks of 256 for BN)."""
    check_net(norm, depth, width, device)
    validate.integer("pool", pool, minimum=2)
    validate.integer("seed", seed, minimum=0)
    for b in validate.int_list("batch_sizes", batch_sizes, 2):
        if b > pool:
            raise ValueError(f"batch_sizes holds {b}, larger than pool={pool}")
    validate.integer("repeats", repeats, minimum=2)
    batch_sizes = list(batch_sizes)[:smoke_cap(len(batch_sizes))]  # smoke: the first 2, a pool of the larger
    pool, repeats = smoke_cap(pool, max(batch_sizes)), smoke_cap(repeats)  # counts only; identity unless smoke
    data = resnets.cifar_subset(n_train, device=device)
    if pool > len(data.train):
        raise ValueError(f"pool={pool} is larger than the {len(data.train)} training images")
    model = resnets.network(norm, depth, width, seed, device)
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
