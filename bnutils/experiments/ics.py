"""Chapter 2, internal covariate shift: the experiment functions behind the notebook.

- `vgg_run`: VGG-16 on CIFAR-10 (Santurkar et al. Fig 1 and Fig 3): training/test curves, the layer-input
  distributions of chosen layers over training, and ICS (Definition 2.1) every few steps. Cached, like `dln_run`:
  the 25-layer deep linear network on the linear-teacher task, full batch, with ICS.
- `lr_scan`: short VGG runs over a grid of learning rates, to find the pair the Fig 1 analogue needs.
- `settings`, `slider_frames`: the chapter's settings; `layer_drifts`, `dead_channels`, `fig1_outcomes`, `ics_rows`,
  `dln_cosines`: the numbers the verdicts come from. An ICS result's own summaries are in `metrics.ics_summaries`,
  its cost per layer in `metrics.ics_cost`; prose and tables in `report.ics`; figures in `figures.ics`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .. import validate
from ..cache import cached_run
from ..data import linear_teacher, load_cifar10
from ..metrics import ICS, ActivationRecorder
from ..metrics.activations import negative_share, quantile_drift
from ..metrics.ics import METHODS as ICS_METHODS
from ..metrics.ics_summaries import cos_stats, equal_loss_summary, summarize
from ..models import VGG, DeepLinear
from ..profiles import seed_list, smoke_cap
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


def _run_dict(run) -> dict[str, Any]:
    d = run.to_dict()
    for key in ("ics", "ics_weights", "acts"):
        d[key] = d["metrics"].pop(key, None)
    for layer in (d["acts"] or {"layers": {}})["layers"].values():  # keep quantiles and the sample, not per channel
        layer.pop("channel_mean", None), layer.pop("channel_var", None)
    return d


@cached_run("ch02_ics")
def vgg_run(norm: str, lr: float, *, steps: int, seed: int = 0, width: float = 0.125, n_train: int | None = 10000,
            n_test: int | None = 2000, batch_size: int = 128, momentum: float = 0.0,
            ics_layers: Sequence[int] | None = (3, 5, 10, 11), ics_every: int | None = 25,
            act_layers: Sequence[int] | None = (3, 11), act_every: int = 10, eval_every: int | None = None,
            method: str = "auto", weights_only_too: bool = False, device: str = "cpu", amp: bool = False,
            cache: bool = True) -> dict[str, Any]:
    """Train VGG-16 (`norm` 'none' or 'batchnorm') on a CIFAR-10 subset with plain SGD and return the run as a dict.

    Records the training loss/accuracy per step, test accuracy every `eval_every` steps (default: 10 evaluations),
    ICS (Definition 2.1) on conv layers `ics_layers` every `ics_every` steps (None: no ICS; `weights_only_too`
    also measures the weights-only reading, under "ics_weights"), and the layer input the distributional story is
    about: the conv output of conv layers `act_layers`, before BN (without BN: the ReLU's input).
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
        if weights_only_too:
            callbacks["ics_weights"] = ICS(model, layers=ics_layers, every=ics_every, method=method, moves="weights")
    if act_layers:
        blocks = model.blocks
        callbacks["acts"] = ActivationRecorder({f"#{i}": blocks[i - 1].layer for i in act_layers},
                                               every=act_every, where="output", sample_size=256)
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
            n_test: int | None = 2000, device: str = "cpu", amp: bool = False, keep: Sequence[float] = (),
            cache: bool = True) -> dict[str, Any]:
    """Short VGG runs at each lr, without and with BN: which lrs train (see `trains`).

    `keep`: the lrs of the grid the caller reads back (e.g. the chapter's pair). When given, smoke mode
    (`profiles.smoke_cap`) scans only those (with the grid's smallest or largest lr added to make 2); without
    `keep`, and outside smoke mode, the whole grid is scanned.

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
    if keep and smoke_cap(len(lrs)) < len(lrs):
        kept = sorted({float(v) for v in keep} & set(lrs))
        ends = [lr for lr in (lrs[0], lrs[-1]) if lr not in kept]
        lrs = sorted(kept + ends[:max(0, 2 - len(kept))])
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


# -- numbers for the verdicts -------------------------------------------------------------------------------------

def layer_drifts(runs: dict[str, dict], layers: Sequence[str] = ("#3", "#11")) -> dict[tuple[str, str], float]:
    """`metrics.activations.quantile_drift` of each recorded layer for each network: {(layer, norm): drift},
    runs = {norm: run}."""
    return {(layer, norm): quantile_drift(runs[norm]["acts"], layer) for layer in layers for norm in NORMS}


def dead_channels(runs: dict[str, dict[str, Any]], layers: Sequence[str] = ("#3", "#11"), *,
                  share: float = 0.9) -> list[dict[str, Any]]:
    """The sampled channels (one per layer and network, runs = {norm: run}) below zero in more than `share` of their
    recorded values (`metrics.activations.negative_share`): layer, norm, below, n and all (every value below)."""
    return [dict(layer=layer, norm=norm, **d) for layer in layers for norm in NORMS
            if (d := negative_share(runs[norm]["acts"], layer))["n"] and d["below"] > share * d["n"]]


def fig1_outcomes(fig1: dict[tuple[str, float], dict], lr_both: float, lr_bn_only: float) -> dict[str, Any]:
    """Fig 1's numbers from the runs {(norm, lr): run}: final test accuracy (`acc`; NaN when diverged or never
    evaluated), `trains` and `diverged` per (norm, lr); `both_lo` (both train at lr_both), `only_bn_hi` (only BN
    trains at lr_bn_only), `bn_better` (at lr_both)."""
    acc = {k: r["evals"][-1]["test_acc"] if r["evals"] and not r["diverged"] else math.nan for k, r in fig1.items()}
    tr = {k: trains(r) for k, r in fig1.items()}
    return dict(acc=acc, trains=tr, diverged={k: bool(r["diverged"]) for k, r in fig1.items()},
                both_lo=tr[("none", lr_both)] and tr[("batchnorm", lr_both)], only_bn_hi=tr[("batchnorm", lr_bn_only)] and not tr[("none", lr_bn_only)],
                bn_better=bool(acc[("batchnorm", lr_both)] > acc[("none", lr_both)]))


def ics_rows(groups: Sequence[tuple[str, float, int, dict[str, list[dict]]]], reduces) -> dict[str, list[dict]]:
    """The numbers table of the chapter: for each (net name, lr, layer, {norm: runs over seeds}) its `summarize`
    numbers plus the equal-loss ratio and delta cos, and whether BN reduces ICS at equal step / loss by the rule
    `reduces(l2_ratio, dcos)` (the registry's `claims.reduces_ics`). Returns `summary` (one dict per group) and
    the per-seed `step_cases` and `loss_cases` (seeds whose losses overlap) the claims are judged on."""
    summary, step_cases, loss_cases = [], [], []
    for name, lr, layer, runs in groups:
        s = summarize(runs["none"], runs["batchnorm"], layer)
        eq_ratio, eq_dcos = equal_loss_summary(runs["none"], runs["batchnorm"], layer)
        has_loss = bool(np.isfinite(eq_ratio))
        per = [(summarize([a], [b], layer), equal_loss_summary([a], [b], layer))
               for a, b in zip(runs["none"], runs["batchnorm"])]
        step_cases.append(dict(name=name, lr=lr, layer=layer, l2_ratio=[p["l2_ratio"] for p, _ in per],
                               dcos=[p["cos_batchnorm"] - p["cos_none"] for p, _ in per]))
        eqs = [q for _, q in per if np.isfinite(q[0]) and np.isfinite(q[1])]
        if eqs:
            loss_cases.append(dict(name=name, lr=lr, layer=layer, l2_ratio=[q for q, _ in eqs],
                                   dcos=[d for _, d in eqs]))
        summary.append(dict(name=name, lr=lr, **s, eq_ratio=eq_ratio, eq_dcos=eq_dcos, has_loss=has_loss,
                            reduces_step=reduces(s["l2_ratio"], s["cos_batchnorm"] - s["cos_none"]),
                            reduces_loss=has_loss and reduces(eq_ratio, eq_dcos)))
    return dict(summary=summary, step_cases=step_cases, loss_cases=loss_cases)


def dln_cosines(dln: dict[float, dict[str, list[dict]]], layers: Sequence[int] = (9, 17)) -> dict[str, dict]:
    """`cos_stats` per (lr, norm) over all seeds (`pooled`) and per seed (`per_seed`, a list)."""
    keys = [(lr, norm) for lr in dln for norm in NORMS]
    return dict(pooled={k: cos_stats(dln[k[0]][k[1]], layers) for k in keys},
                per_seed={k: [cos_stats([r], layers) for r in dln[k[0]][k[1]]] for k in keys})


# -- the chapter's settings at each profile, and the work they imply ------------------------------------------
# notebooks/02_internal_covariate_shift.ipynb reads SCALES[P.name] (a notebook parameter, when given, overrides);
# bench/estimate.py estimates the chapter's gpu runtime from workload(SCALES["gpu"], PROFILES["gpu"]).
#   vgg_steps, dln_steps            SGD steps per VGG-16 run / full-batch steps per DLN run (the paper's DLN: 10,000)
#   n_seeds                         seeds per ICS configuration
#   vgg_ics_every                   VGG: measure ICS every this many steps
#   dln_ics_count                   DLN: about this many ICS measurements per run
#   scan_steps, scan_lrs            the learning-rate probe (lr_scan): steps per run, its grid (besides the pair)
#   cost_layers, cost_vgg_steps, cost_dln_steps  VGG layers of the ICS cost table (None: all), steps of ics_cost
SCALES = {
    "ci": dict(vgg_steps=20, dln_steps=60, n_seeds=1, vgg_ics_every=10, dln_ics_count=6, scan_steps=5,
               scan_lrs=[], cost_layers=[5, 10], cost_vgg_steps=2, cost_dln_steps=3),
    "cpu": dict(vgg_steps=300, dln_steps=800, n_seeds=2, vgg_ics_every=25, dln_ics_count=25, scan_steps=200,
                scan_lrs=[0.02, 0.05, 0.1, 0.2, 0.5], cost_layers=None, cost_vgg_steps=3, cost_dln_steps=10),
    "gpu": dict(vgg_steps=3000, dln_steps=4000, n_seeds=2, vgg_ics_every=100, dln_ics_count=50, scan_steps=200,
                scan_lrs=[0.02, 0.05, 0.1, 0.2, 0.5], cost_layers=None, cost_vgg_steps=5, cost_dln_steps=10),
}
# long: the cpu settings trained 4x longer (the scales page's longer point; fixed before any long run)
# (ICS every 4x as many steps: as many ICS measurements per run as at cpu)
SCALES["long"] = {**SCALES["cpu"], "vgg_steps": 1200, "dln_steps": 3200, "vgg_ics_every": 100}


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
    readings_steps = max(2, vgg_steps // 3)  # the weights-only reading (settings' readings_kw): 1 lr, 1 seed
    n_read = 2 * math.ceil(readings_steps / max(1, min(scale["vgg_ics_every"], readings_steps // 6)))  # 2 nets
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
        dict(what=f"weights-only reading: 2 runs x {readings_steps} steps", mode="train", batch=128,
             passes=2 * readings_steps, amp=profile.amp, **vgg),
        dict(what=f"... ICS of 2 layers, 2 readings: {2 * n_read} measurements x <= 3 passes", mode="grad",
             batch=128, passes=2 * n_read * 3, **vgg),
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


def settings(profile: Any, *, seed: int = 0, vgg_steps: int | None = None, dln_steps: int | None = None,
             fig1_lrs: Sequence[float] | None = None, vgg_ics_lrs: Sequence[float] | None = None,
             dln_lrs: Sequence[float] | None = None, n_seeds: int | None = None,
             ics_every: int | None = None) -> dict[str, Any]:
    """The chapter's settings from its parameters cell (None: `SCALES[profile.name]` or the paper's value) and
    the profile (`bnutils.setup`): step counts, learning rates, seeds, monitored layers, `vgg_kw` (the arguments
    the chapter's `vgg_run`s share) and `readings_kw` (the short runs of the weights-only reading)."""
    cfg = SCALES[profile.name]
    vgg_steps = vgg_steps or cfg["vgg_steps"]
    dln_steps = dln_steps or cfg["dln_steps"]
    fig1_lrs = list(fig1_lrs or (0.1, 0.5))  # the paper's pair: both train / only BN trains
    vgg_ics_lrs = list(vgg_ics_lrs or (0.1, 0.01))  # the paper's Fig 3
    dln_lrs = list(dln_lrs or (1e-6, 1e-7))
    vgg_layers = [3, 5, 10, 11]  # ICS monitored: the paper's #5 and #10, and #3 / #11 of the distributions
    dln_layers = [5, 9, 17, 21]  # the paper's #9 and #17, and two more for the slider
    every, short = ics_every or cfg["vgg_ics_every"], max(2, vgg_steps // 3)
    vgg_kw = dict(steps=vgg_steps, width=profile.vgg_width, n_train=profile.n_train, n_test=profile.n_test,
                  ics_layers=vgg_layers, ics_every=every, act_layers=(3, 11), act_every=max(1, vgg_steps // 30),
                  eval_every=max(1, vgg_steps // 5), method="auto", device=profile.device, amp=profile.amp)
    return dict(vgg_steps=vgg_steps, dln_steps=dln_steps, fig1_lrs=fig1_lrs, vgg_lrs=vgg_ics_lrs, dln_lrs=dln_lrs,
                seeds=seed_list(seed, n_seeds or cfg["n_seeds"]), vgg_every=every,
                dln_every=ics_every or max(1, dln_steps // cfg["dln_ics_count"]), vgg_layers=vgg_layers,
                dln_layers=dln_layers, scan_steps=cfg["scan_steps"], scan_lrs=list(cfg["scan_lrs"]), vgg_kw=vgg_kw,
                readings_kw={**vgg_kw, "steps": short, "ics_layers": [5, 10], "act_layers": None, "eval_every": short,
                                          "ics_every": max(1, min(every, short // 6))})


def slider_frames(s: dict[str, Any], short: bool = False) -> list[tuple[str, float, int]]:
    """The (net, lr, layer) frames of the chapter's slider, from `settings`: every monitored layer at every lr, or
    (short, for CI) the paper's layers at the first lr of each network."""
    if short:
        return [("VGG", s["vgg_lrs"][0], 5), ("VGG", s["vgg_lrs"][0], 10), ("DLN", s["dln_lrs"][0], 9),
                ("DLN", s["dln_lrs"][0], 17)]
    return ([("VGG", lr, layer) for lr in s["vgg_lrs"] for layer in s["vgg_layers"]]
            + [("DLN", lr, layer) for lr in s["dln_lrs"] for layer in s["dln_layers"]])
