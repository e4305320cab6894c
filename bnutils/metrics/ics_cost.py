"""What an ICS measurement costs: every method of `metrics.ics.ICS` timed against plain training steps on the
same model and batches, with how far the fast methods are from the reference loop (chapter 2's cost table)."""
from __future__ import annotations

import copy
import time
from typing import Any, Sequence

import numpy as np
import torch

from .. import validate
from ..data import linear_teacher, load_cifar10
from ..models import VGG, DeepLinear, weight_layers
from ..profiles import smoke_cap
from ..train import seed_everything, train
from .ics import ICS


def ics_cost(model: str = "vgg", *, norm: str = "batchnorm", layers: Sequence[int] | None = None, steps: int = 4,
             width: float = 0.125, batch_size: int = 128, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Time plain training steps and ICS measurements by every method on the same model and batches.

    Returns seconds per plain step; per measurement, for each of 'prefix', 'vmap' and 'loop', its seconds
    (`<method>_seconds`) and its cost in units of one training step (`<method>_steps`); the number of monitored
    layers; and the largest disagreement of the fast methods with the loop: relative max |l2 - l2_loop| / max l2
    (`max_rel_diff`) and of the cosines (`max_cos_diff`). Not cached (it is a timing).
    """
    validate.choice("model", model, ("vgg", "dln"))
    validate.choice("norm", norm, ("none", "batchnorm"))
    validate.integer("steps", steps, minimum=2)
    if layers is not None:  # the upper bound is checked once the model is built
        validate.int_list("layers", layers)
    validate.positive("width", width)
    validate.integer("batch_size", batch_size, minimum=2 if norm == "batchnorm" else 1)
    validate.integer("seed", seed, minimum=0)
    validate.device("device", device)
    seed_everything(seed)
    if model == "vgg":
        data = load_cifar10(max(batch_size * steps, 512), 100, seed=0, device=device)
        net = VGG("vgg16", width=width, norm=norm).to(device)
        bs, loss, lr = batch_size, None, 0.05
    else:
        data = linear_teacher(1000, 10, seed=0)
        net = DeepLinear(25, 10, norm=norm)
        bs, loss, lr = None, "sum_squared", 1e-7
    n_layers = len(weight_layers(net))
    layers = list(range(1, n_layers + 1)) if layers is None else [int(i) for i in layers]
    if max(layers) > n_layers:
        raise ValueError(f"layers={layers!r}: the model has only {n_layers} such layers")
    layers = layers[:smoke_cap(len(layers))]  # smoke mode: the first 2 monitored layers (the same network)
    plain = copy.deepcopy(net)
    t0 = time.perf_counter()
    train(plain, data, steps=steps, lr=lr, batch_size=bs, loss=loss, seed=seed, progress=False)
    step_s = (time.perf_counter() - t0) / steps
    out: dict[str, Any] = {"model": model, "norm": norm, "n_layers": len(layers), "step_seconds": step_s,
                           "device": device, "threads": torch.get_num_threads()}
    res = {}
    for method in ("loop", "vmap", "prefix"):
        m = copy.deepcopy(net)
        cb = ICS(m, layers=layers, every=1, method=method)
        train(m, data, steps=steps, lr=lr, batch_size=bs, loss=loss, seed=seed, callbacks={"ics": cb}, progress=False)
        res[method] = cb.result()
        out[f"{method}_seconds"] = res[method]["seconds"] / steps  # the measurement times itself
        out[f"{method}_steps"] = out[f"{method}_seconds"] / step_s
    a = np.asarray(res["loop"]["l2"])
    out["max_rel_diff"] = max(float(np.max(np.abs(a - np.asarray(res[k]["l2"]))) / max(np.max(np.abs(a)), 1e-30))
                              for k in ("vmap", "prefix"))
    out["max_cos_diff"] = max(float(np.max(np.abs(np.asarray(res["loop"]["cos"]) - np.asarray(res[k]["cos"]))))
                              for k in ("vmap", "prefix"))
    return out
