"""Chapter 2, internal covariate shift: the experiment functions behind the notebook.

- `vgg_run`: the VGG-16 on CIFAR-10 (Santurkar et al. Fig 1 and Fig 3): training/test curves, the pre-activation
  distributions of chosen layers over training, and ICS (Definition 2.1) every few steps.
- `dln_run`: the 25-layer deep linear network on the linear-teacher task, full batch, with ICS.
- `lr_scan`: short VGG runs over a grid of learning rates, to find the pair the Fig 1 analogue needs.
- `ics_cost`: the measurement's cost per measured step (in training steps) for each implementation, and
  their agreement.
- `summarize`, `at_equal_loss`, `drift`: the numbers the verdicts are computed from.

The chapter's prose/table helpers (`span`, `ratio_groups`, `scan_table`) are in `bnutils.report`, its figures in
`bnutils.figures.ics`.

Every run goes through `bnutils.cache.cached` (JSON), so re-executing the chapter is fast and resumable.
"""
from __future__ import annotations

import copy
import math
import time
from typing import Any, Sequence

import numpy as np
import torch

from .. import validate
from ..cache import cached_run
from ..data import linear_teacher, load_cifar10
from ..metrics import ICS, ActivationRecorder
from ..metrics.ics import METHODS as ICS_METHODS
from ..models import VGG, DeepLinear, weight_layers
from ..report import ratio_groups, scan_table, span  # noqa: F401  moved to bnutils.report; kept importable here
from ..train import seed_everything, smooth, train

NORMS = ("none", "batchnorm")


def _check_common(norm: str, lr: float, steps: int, seed: int) -> None:
    validate.choice("norm", norm, NORMS)
    validate.positive("lr", lr)
    validate.integer("steps", steps)
    validate.integer("seed", seed, minimum=0)


def _layers(name: str, layers: Sequence[int] | None, n_max: int) -> list[int] | None:
    if layers is None:
        return None
    if isinstance(layers, (int, str)) or len(layers) == 0:
        raise ValueError(f"{name}={layers!r} must be a non-empty list of layer numbers (1-based)")
    for i in layers:
        validate.integer(name, i)
        if i > n_max:
            raise ValueError(f"{name}={list(layers)!r}: the model has only {n_max} such layers")
    return [int(i) for i in layers]


def _run_dict(run, ics_key: str = "ics") -> dict[str, Any]:
    d = run.to_dict()
    d["ics"] = d["metrics"].pop(ics_key, None)
    d["acts"] = d["metrics"].pop("acts", None)
    if d["acts"]:  # keep what the chapter plots (quantiles, one channel's sample), drop per-channel lists
        for layer in d["acts"]["layers"].values():
            layer.pop("channel_mean", None)
            layer.pop("channel_var", None)
    return d


@cached_run("ch02_ics")
def vgg_run(norm: str, lr: float, *, steps: int, seed: int = 0, width: float = 0.125, n_train: int | None = 10000,
            n_test: int | None = 2000, batch_size: int = 128, momentum: float = 0.0,
            ics_layers: Sequence[int] | None = (3, 5, 10, 11), ics_every: int | None = 25,
            act_layers: Sequence[int] | None = (3, 11), act_every: int = 10, eval_every: int | None = None,
            method: str = "auto", device: str = "cpu", amp: bool = False, cache: bool = True) -> dict[str, Any]:
    """Train VGG-16 (`norm` 'none' or 'batchnorm') on a CIFAR-10 subset with plain SGD and return the run as a dict.

    Records the training loss/accuracy per step, test accuracy every `eval_every` steps (default: 10 evaluations),
    ICS (Definition 2.1) on conv layers `ics_layers` every `ics_every` steps (None: no ICS), and the
    pre-activations (the input of the ReLU: after BN when there is one) of conv layers `act_layers`.
    amp trains in mixed precision on a GPU (the gpu profile); ICS is measured in float32 all the same.
    """
    _check_common(norm, lr, steps, seed)
    validate.positive("width", width)
    validate.integer("batch_size", batch_size, minimum=2 if norm == "batchnorm" else 1)  # BN: batch statistics
    validate.in_range("momentum", momentum, 0.0, 0.999999)
    ics_layers = _layers("ics_layers", ics_layers, 14)
    act_layers = _layers("act_layers", act_layers, 13)
    if ics_every is not None:
        validate.integer("ics_every", ics_every)
    validate.integer("act_every", act_every)
    eval_every = eval_every or max(1, steps // 10)
    validate.integer("eval_every", eval_every)
    validate.choice("method", method, ICS_METHODS)
    validate.device("device", device)

    data = load_cifar10(n_train, n_test, seed=0, device=device)
    seed_everything(seed)
    model = VGG("vgg16", width=width, norm=norm).to(device)
    callbacks: dict[str, Any] = {}
    if ics_layers is not None and ics_every is not None:
        callbacks["ics"] = ICS(model, layers=ics_layers, every=ics_every, method=method)
    if act_layers:
        blocks = model.blocks
        callbacks["acts"] = ActivationRecorder({f"#{i}": blocks[i - 1].act for i in act_layers},
                                               every=act_every, where="input", sample_size=256)
    run = train(model, data, steps=steps, lr=lr, batch_size=batch_size, momentum=momentum,
                eval_every=eval_every, callbacks=callbacks, seed=seed, progress=False, amp=amp,
                desc=f"VGG {norm} lr={lr}")
    return _run_dict(run)


@cached_run("ch02_ics")
def dln_run(norm: str, lr: float, *, steps: int, seed: int = 0, depth: int = 25, dim: int = 10, n: int = 1000,
            ics_layers: Sequence[int] | None = (9, 17), ics_every: int = 20, method: str = "vmap",
            cache: bool = True) -> dict[str, Any]:
    """Santurkar's deep linear network: `depth` square `dim` x `dim` layers (BN after all but the last when
    norm='batchnorm'), minimizing ||W_depth...W_1 x - A x||^2 summed over `n` Gaussian points, full-batch SGD.

    The teacher A and the data are fixed (data seed 0); `seed` changes the Glorot initialization.
    ICS on layers `ics_layers` (None: all) every `ics_every` steps.
    """
    _check_common(norm, lr, steps, seed)
    validate.integer("depth", depth, minimum=2)
    validate.integer("dim", dim)
    validate.integer("n", n, minimum=2)
    ics_layers = _layers("ics_layers", ics_layers, depth) or list(range(1, depth + 1))
    validate.integer("ics_every", ics_every)
    validate.choice("method", method, ICS_METHODS)

    data = linear_teacher(n=n, dim=dim, seed=0)
    seed_everything(seed)
    model = DeepLinear(depth=depth, dim=dim, norm=norm)
    cb = ICS(model, layers=ics_layers, every=ics_every, method=method)
    run = train(model, data, steps=steps, lr=lr, batch_size=None, loss="sum_squared",
                eval_every=max(1, steps // 10), callbacks={"ics": cb}, seed=seed, progress=False,
                desc=f"DLN {norm} lr={lr}")
    return _run_dict(run)


def trains(run: dict[str, Any], *, chance_loss: float = math.log(10), margin: float = 0.9) -> bool:
    """A VGG run 'trains' when it did not diverge and its smoothed final training loss is below
    `margin` x the chance-level loss ln(10) (at chance the net predicts one class or the uniform distribution)."""
    if run["diverged"] or not run["loss"]:
        return False
    final = smooth(run["loss"], max(1, min(20, len(run["loss"]) // 5)))[-1]
    return bool(np.isfinite(final) and final < margin * chance_loss)


def lr_scan(lrs: Sequence[float], *, steps: int, seed: int = 0, width: float = 0.125, n_train: int | None = 10000,
            n_test: int | None = 2000, device: str = "cpu", amp: bool = False, cache: bool = True) -> dict[str, Any]:
    """Short VGG runs at each lr, without and with BN: which lrs train (see `trains`).

    Returns lrs, per norm the list of `trains` flags, final smoothed losses and test accuracies, and
    `pair` = (lr_both, lr_bn_only): the largest lr at which both train and the smallest lr (above it) at
    which only BN trains; None when the grid holds no such pair.
    """
    if isinstance(lrs, (int, float)) or len(lrs) < 2:
        raise ValueError(f"lrs={lrs!r} must list at least two learning rates")
    for lr in lrs:
        validate.positive("lrs", lr)
    validate.device("device", device)
    lrs = sorted(float(v) for v in lrs)
    out: dict[str, Any] = {"lrs": lrs, "steps": steps}
    for norm in NORMS:
        runs = [vgg_run(norm, lr, steps=steps, seed=seed, width=width, n_train=n_train, n_test=n_test,
                        ics_every=None, ics_layers=None, act_layers=None, eval_every=steps, device=device,
                        amp=amp, cache=cache) for lr in lrs]
        out[norm] = {"trains": [trains(r) for r in runs],
                     "final_loss": [float(smooth(r["loss"], 20)[-1]) if r["loss"] else math.nan for r in runs],
                     "test_acc": [float("nan") if r["diverged"] or not r["evals"] else r["evals"][-1]["test_acc"]
                                  for r in runs],
                     "diverged": [r["diverged"] for r in runs]}
    both = [lr for lr, a, b in zip(lrs, out["none"]["trains"], out["batchnorm"]["trains"]) if a and b]
    lr_both = max(both) if both else None
    only = [lr for lr, a, b in zip(lrs, out["none"]["trains"], out["batchnorm"]["trains"])
            if b and not a and (lr_both is None or lr > lr_both)]
    out["pair"] = [lr_both, min(only)] if lr_both is not None and only else None
    return out


def ics_cost(model: str = "vgg", *, norm: str = "batchnorm", layers: Sequence[int] | None = None, steps: int = 4,
             width: float = 0.125, batch_size: int = 128, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """Time plain training steps and ICS measurements by every method on the same model and batches.

    Returns seconds per plain step; per measurement, for each of 'prefix', 'vmap' and 'loop', its seconds
    (`<method>_seconds`) and its cost in units of one training step (`<method>_steps`); the number of monitored
    layers; and the largest disagreement of the fast methods with the loop: relative max |l2 - l2_loop| / max l2
    (`max_rel_diff`) and of the cosines (`max_cos_diff`). Not cached (it is a timing).
    """
    validate.choice("model", model, ("vgg", "dln"))
    validate.choice("norm", norm, NORMS)
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
    layers = _layers("layers", layers, n_layers) or list(range(1, n_layers + 1))
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


# -- numbers for the verdicts -------------------------------------------------------------------------------------

def ics_array(run: dict[str, Any], key: str, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one ICS quantity ('l2', 'cos', 'rel', 'g_norm') for one monitored layer of a run."""
    ics = run.get("ics")
    if not ics:
        raise ValueError("this run recorded no ICS")
    validate.choice("key", key, ("l2", "cos", "rel", "g_norm"))
    validate.choice("layer", layer, ics["layers"])
    j = ics["layers"].index(layer)
    return np.asarray(ics["steps"]), np.asarray([row[j] for row in ics[key]], dtype=float)


def summarize(runs_none: Sequence[dict], runs_bn: Sequence[dict], layer: int, *, skip_first: bool = True) -> dict:
    """Median over measured steps and seeds of l2, cos and rel for both variants, and their ratios.

    The first measurement (step 0, before any training) is skipped by default. Diverged steps are excluded
    (a diverged run stops, so it has no measurements after it).
    """
    validate.nonempty("runs_none", runs_none)
    validate.nonempty("runs_bn", runs_bn)
    out: dict[str, Any] = {"layer": layer}
    for name, runs in (("none", runs_none), ("batchnorm", runs_bn)):
        for key in ("l2", "cos", "rel"):
            vals = np.concatenate([ics_array(r, key, layer)[1][1 if skip_first else 0:] for r in runs])
            vals = vals[np.isfinite(vals)]
            out[f"{key}_{name}"] = float(np.median(vals)) if len(vals) else math.nan
    out["l2_ratio"] = out["l2_batchnorm"] / out["l2_none"] if out["l2_none"] > 0 else math.nan
    out["rel_ratio"] = out["rel_batchnorm"] / out["rel_none"] if out["rel_none"] > 0 else math.nan
    return out


def smoothed_loss_at(run: dict[str, Any], steps: Sequence[int], window: int = 20) -> np.ndarray:
    """The training loss (moving average over `window` steps) at the given steps."""
    s = smooth(run["loss"], window)
    return np.asarray([s[t] if t < len(s) else math.nan for t in steps], dtype=float)


def at_equal_loss(runs_none: Sequence[dict], runs_bn: Sequence[dict], layer: int, key: str = "l2", *,
                  n_levels: int = 6, window: int = 20) -> dict[str, Any]:
    """Compare an ICS quantity at equal training loss rather than at equal step.

    Each measurement is paired with the smoothed training loss at its step; the loss range both variants
    cover (pooled over seeds, step 0 excluded) is cut into `n_levels` bins on a log scale, and each bin holds
    the median of `key` per variant. Returns levels (bin centres), none, batchnorm (NaN where a variant has
    no measurement in a bin) and the overlapping loss range; empty lists if the ranges do not overlap.
    """
    validate.nonempty("runs_none", runs_none)
    validate.nonempty("runs_bn", runs_bn)
    validate.integer("n_levels", n_levels)
    pts = {}
    for name, runs in (("none", runs_none), ("batchnorm", runs_bn)):
        ls, vs = [], []
        for r in runs:
            st, v = ics_array(r, key, layer)
            lo = smoothed_loss_at(r, st, window)
            ls.append(lo[1:]); vs.append(v[1:])
        ls, vs = np.concatenate(ls), np.concatenate(vs)
        ok = np.isfinite(ls) & np.isfinite(vs) & (ls > 0)
        pts[name] = (ls[ok], vs[ok])
    lo = max(np.min(pts[n][0]) if len(pts[n][0]) else math.inf for n in pts)
    hi = min(np.max(pts[n][0]) if len(pts[n][0]) else -math.inf for n in pts)
    out: dict[str, Any] = {"key": key, "layer": layer, "range": [lo, hi], "levels": [], "none": [], "batchnorm": []}
    if not (np.isfinite(lo) and np.isfinite(hi) and hi > lo):
        return out
    edges = np.geomspace(lo, hi, n_levels + 1)
    out["levels"] = list(np.sqrt(edges[:-1] * edges[1:]))
    for name in ("none", "batchnorm"):
        ls, vs = pts[name]
        for a, b in zip(edges[:-1], edges[1:]):
            sel = (ls >= a) & (ls <= b)
            out[name].append(float(np.median(vs[sel])) if sel.any() else math.nan)
    return out


def drift(run: dict[str, Any], layer: str) -> float:
    """How much a layer's pre-activation distribution moves per record, relative to its width:
    mean over consecutive records of (|change of the median| + |change of the 15-85% spread|) / spread."""
    q = np.asarray(run["acts"]["layers"][layer]["quantiles"], dtype=float)  # (T, 3): 15%, 50%, 85%
    if len(q) < 2:
        return math.nan
    spread = q[:, 2] - q[:, 0]
    d = (np.abs(np.diff(q[:, 1])) + np.abs(np.diff(spread))) / np.maximum(spread[1:], 1e-12)
    return float(np.mean(d))


# -- the chapter's settings at each profile, and the work they imply ------------------------------------------
# notebooks/02_internal_covariate_shift.ipynb reads SCALES[P.name] (a notebook parameter, when given, overrides);
# bench/estimate.py estimates the chapter's gpu runtime from workload(SCALES["gpu"], PROFILES["gpu"]).
#   vgg_steps, dln_steps            SGD steps per VGG-16 run / full-batch steps per DLN run (the paper's DLN: 10,000)
#   n_seeds                         seeds per ICS configuration
#   vgg_ics_every                   VGG: measure ICS every this many steps
#   dln_ics_count                   DLN: about this many ICS measurements per run
#   scan_steps, scan_lrs            the learning-rate probe (lr_scan): steps per run, its grid (besides the pair)
#   cost_layers                     VGG layers of the ICS cost table (None: all)
#   cost_vgg_steps, cost_dln_steps  steps of ics_cost
SCALES = {
    "ci": dict(vgg_steps=20, dln_steps=60, n_seeds=1, vgg_ics_every=10, dln_ics_count=6, scan_steps=5,
               scan_lrs=[], cost_layers=[5, 10], cost_vgg_steps=2, cost_dln_steps=3),
    "cpu": dict(vgg_steps=300, dln_steps=800, n_seeds=2, vgg_ics_every=25, dln_ics_count=25, scan_steps=200,
                scan_lrs=[0.02, 0.05, 0.1, 0.2, 0.5], cost_layers=None, cost_vgg_steps=3, cost_dln_steps=10),
    "gpu": dict(vgg_steps=3000, dln_steps=4000, n_seeds=2, vgg_ics_every=100, dln_ics_count=50, scan_steps=200,
                scan_lrs=[0.02, 0.05, 0.1, 0.2, 0.5], cost_layers=None, cost_vgg_steps=5, cost_dln_steps=10),
}


def workload(scale: dict[str, Any], profile: Any, *, fig1_lrs: Sequence[float] = (0.1, 0.5),
             vgg_ics_lrs: Sequence[float] = (0.1, 0.01), dln_lrs: Sequence[float] = (1e-6, 1e-7),
             vgg_layers: Sequence[int] = (3, 5, 10, 11), dln_layers: Sequence[int] = (5, 9, 17, 21)
             ) -> list[dict[str, Any]]:
    """What the chapter runs at `scale` on `profile` (a bnutils.profiles.Profile), one dict per kind of work (the
    fields are described in bnutils.experiments.basics.workload). The keyword defaults are the notebook's fixed
    values: the learning-rate pairs and the monitored layers. DLN runs and ics_cost('dln') stay on the CPU."""
    vgg_steps, dln_steps, n_seeds = scale["vgg_steps"], scale["dln_steps"], scale["n_seeds"]
    dln_every = max(1, dln_steps // scale["dln_ics_count"])
    cost_vgg, cost_dln = scale["cost_vgg_steps"], scale["cost_dln_steps"]
    scan_runs = len(NORMS) * len({*scale["scan_lrs"], *fig1_lrs})
    # distinct cached runs: Fig 1's pair with the first seed, Fig 3's pair with every seed (shared runs counted once)
    vgg_runs = len({(n, lr, 0) for n in NORMS for lr in fig1_lrs}
                   | {(n, lr, s) for n in NORMS for lr in vgg_ics_lrs for s in range(n_seeds)})
    dln_runs = len(dln_lrs) * len(NORMS) * n_seeds
    vgg_meas = vgg_runs * math.ceil(vgg_steps / scale["vgg_ics_every"])
    dln_meas = dln_runs * math.ceil(dln_steps / dln_every)
    k_vgg, k_dln = len(vgg_layers), len(dln_layers)
    n_cost = len(scale["cost_layers"] or range(14))  # VGG-16: 13 convs and the classifier
    vgg = dict(model="vgg16/batchnorm", width=profile.vgg_width, device=profile.device)
    dln = dict(model="dln/batchnorm", batch=1000, device="cpu")
    return [
        dict(what=f"VGG-16: {vgg_runs} runs x {vgg_steps} steps", mode="train", batch=128,
             passes=vgg_runs * vgg_steps, amp=profile.amp, **vgg),
        dict(what=f"learning-rate probe: {scan_runs} runs x {scale['scan_steps']} steps", mode="train", batch=128,
             passes=scan_runs * scale["scan_steps"], amp=profile.amp, **vgg),
        dict(what=f"ICS 'prefix', {k_vgg} layers: {vgg_meas} measurements x <= {k_vgg + 1} passes", mode="grad",
             batch=128, passes=vgg_meas * (k_vgg + 1), **vgg),  # ICS stays float32
        dict(what="VGG test evaluations (5 per run)", mode="eval", batch=profile.n_test or 10_000,
             passes=vgg_runs * 5, **vgg),
        dict(what=f"ICS cost table, VGG: 4 x {cost_vgg} steps", mode="train", batch=128, passes=4 * cost_vgg, **vgg),
        dict(what=f"... ICS of {n_cost} layers, loop ({2 * n_cost}) + vmap ({n_cost + 1}) + prefix (<= {n_cost + 1}) "
             "passes", mode="grad", batch=128, passes=cost_vgg * (2 * n_cost + 2 * (n_cost + 1)),
             launches=cost_vgg * (2 * n_cost + 1 + n_cost + 1), **vgg),
        dict(what=f"DLN: {dln_runs} runs x {dln_steps} full-batch steps", mode="train", passes=dln_runs * dln_steps,
             **dln),
        dict(what=f"ICS 'vmap', {k_dln} layers: {dln_meas} measurements", mode="grad", passes=dln_meas * (k_dln + 1),
             launches=dln_meas, **dln),
        dict(what="DLN evaluations (10 per run)", mode="eval", passes=dln_runs * 10, **dln),
        dict(what=f"ICS cost table, DLN: 4 x {cost_dln} steps", mode="train", passes=4 * cost_dln, **dln),
        dict(what="... ICS of all 25 layers, loop (50) + vmap (26) + prefix (26) passes", mode="grad",
             passes=cost_dln * (50 + 26 + 26), launches=cost_dln * (50 + 1 + 26), **dln),
    ]
