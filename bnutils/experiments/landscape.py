"""Chapter 4, landscape smoothness: Santurkar et al.'s Fig 4 / 11 probes on VGG and the DLN, the l_p
normalizations (Figs 5, 6, 12, 13), and a numerical check of their Theorem 4.1.

Every run goes through `bnutils.cache.cached`, returns JSON-able data, and treats a diverged run as data.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import validate
from ..cache import cached_run
from ..parallel import sweep
from ..data import linear_teacher, load_cifar10
from ..metrics import ActivationRecorder
from ..metrics.landscape import METHODS, LandscapeProbe, band_summary
from ..models import VGG, DeepLinear
from ..norms import NORM_KINDS
from ..profiles import seed_list
from ..train import seed_everything, train

MODELS = ("vgg", "dln")


def _activation_modules(net: nn.Module, model: str) -> dict[str, nn.Module]:
    """The norm outputs we record for Fig 6: VGG layers #3 and #11, DLN layers #9 and #17 (as in [S] Fig 3)."""
    picks = (3, 11) if model == "vgg" else (9, 17)
    return {f"layer #{i}": net.blocks[i - 1].norm for i in picks}


@cached_run("landscape")
def landscape_run(model: str = "vgg", norm: str = "none", *, lr: float, steps: int, probe_every: int,
                  eta_range: tuple[float, float] = (0.5, 4.0), n_probes: int = 8, seed: int = 0,
                  n_train: int | None = 2560, n_test: int | None = 1000, width: float = 0.125,
                  batch_size: int | None = 128, record_activations: bool = False, method: str = "auto",
                  divergence_factor: float = 1e3, device: str = "cpu", cache: bool = True) -> dict[str, Any]:
    """Train VGG-16 on CIFAR-10 or the 25-layer DLN with SGD, probing the landscape every `probe_every` steps.

    The DLN uses Santurkar et al.'s task (1000 Gaussian points, targets A x, full batch, summed squared loss);
    `n_train`, `n_test`, `width` and `batch_size` apply to VGG only. Returns the loss curve, the final test
    evaluation, the raw probes (`LandscapeProbe.result()`), the probes' cost in training steps, and, when asked,
    activation statistics of two layers (Fig 6). `device` is where the net and its data live ('cuda' at gpu).
    """
    validate.choice("model", model, MODELS)
    validate.choice("norm", norm, NORM_KINDS)
    validate.positive("lr", lr)
    validate.integer("steps", steps)
    validate.integer("probe_every", probe_every)
    validate.integer("seed", seed, minimum=0)
    validate.choice("method", method, METHODS)
    validate.device("device", device)
    if model == "vgg" and batch_size is not None:  # batch statistics need batches of 2 or more
        validate.integer("batch_size", batch_size, minimum=1 if norm in ("none", "noise") else 2)
    LandscapeProbe(probe_every, tuple(eta_range), n_probes)  # validates the probe arguments before any work
    config = dict(chapter="landscape", model=model, norm=norm, lr=lr, steps=steps, probe_every=probe_every,
                  eta_range=list(eta_range), n_probes=n_probes, seed=seed, n_train=n_train, n_test=n_test,
                  width=width, batch_size=batch_size, record_activations=record_activations, method=method,
                  divergence_factor=divergence_factor, device=device)
    if model == "dln":
        config.update(n_train=1000, n_test=1000, width=None, batch_size=None)

    if model == "vgg":
        data = load_cifar10(n_train, n_test, seed=0, device=device)
        seed_everything(seed)
        net = VGG("vgg16", width=width, norm=norm).to(device)
    else:
        data = linear_teacher(1000, 10, n_test=1000, seed=0, device=device)
        seed_everything(seed)
        net = DeepLinear(depth=25, dim=10, norm=norm).to(device)
    probe = LandscapeProbe(probe_every, tuple(eta_range), n_probes, method)
    callbacks = {"probe": probe}
    if record_activations:  # first, so its hooks are disarmed before the probes' forward passes
        callbacks = {"act": ActivationRecorder(_activation_modules(net, model), every=probe_every), **callbacks}
    run = train(net, data, steps=steps, lr=lr, batch_size=config["batch_size"], eval_every=steps,
                seed=seed, callbacks=callbacks, divergence_factor=divergence_factor, progress=False)
    probes = run.metrics["probe"]
    n_probed = max(1, len(probes["step"]))
    step_seconds = max(run.seconds - probes["seconds"], 1e-9) / max(1, len(run.loss))
    return {"config": config, "loss": run.loss, "evals": run.evals, "diverged": run.diverged,
            "diverged_at": run.diverged_at, "seconds": run.seconds, "probe": probes,
            "probe_cost_steps": probes["seconds"] / n_probed / step_seconds,
            "activations": run.metrics.get("act")}


def landscape_runs(model: str, norms: Sequence[str], seeds: Sequence[int], *, executor: Any = "auto",
                   **kwargs: Any) -> dict[str, list[dict]]:
    """landscape_run for each norm and seed: {norm: [run per seed]}; the runs not yet in the cache fan out to
    `executor` (see bnutils.parallel.sweep)."""
    for norm in validate.nonempty("norms", norms):
        validate.choice("norms", norm, NORM_KINDS)
    seeds = validate.seeds("seeds", list(seeds))
    runs = sweep(landscape_run, [dict(model=model, norm=n, seed=s, **kwargs) for n in norms for s in seeds],
                 executor=executor)
    return {n: runs[i * len(seeds):(i + 1) * len(seeds)] for i, n in enumerate(norms)}


def settings(profile: Any, scale: dict[str, Any], *, vgg_lr: float, dln_lr: float, vgg_probe_range: Sequence[float],
             vgg_n_probes: int, dln_probe_range: Sequence[float], dln_n_probes: int, seed: int = 0,
             n_seeds: int | None = None, vgg_steps: int | None = None, dln_steps: int | None = None) -> dict[str, Any]:
    """The chapter's settings from its `parameters` cell (None: the profile's `scale`, `SCALES[profile.name]`):
    seeds (`n_seeds` from `seed` on) and the keyword arguments of `landscape_runs` for the VGG and the DLN runs
    ("vgg", "dln"); each network is probed about `scale["<model>_probe_count"]` times per run."""
    vgg_steps = validate.integer("vgg_steps", vgg_steps if vgg_steps is not None else scale["vgg_steps"])
    dln_steps = validate.integer("dln_steps", dln_steps if dln_steps is not None else scale["dln_steps"])
    n_seeds = validate.integer("n_seeds", n_seeds if n_seeds is not None else scale["n_seeds"])
    vgg = dict(lr=validate.positive("vgg_lr", vgg_lr), steps=vgg_steps, eta_range=tuple(vgg_probe_range),
               n_probes=vgg_n_probes, probe_every=max(1, vgg_steps // scale["vgg_probe_count"]), n_train=profile.n_train,
               n_test=profile.n_test, width=profile.vgg_width, batch_size=scale["vgg_batch_size"], device=profile.device)
    dln = dict(lr=validate.positive("dln_lr", dln_lr), steps=dln_steps, eta_range=tuple(dln_probe_range),
               n_probes=dln_n_probes, probe_every=max(1, dln_steps // scale["dln_probe_count"]), device=profile.device)
    return {"seeds": seed_list(seed, n_seeds), "vgg": vgg, "dln": dln}


def smoothness_ratios(runs: dict[str, list[dict]], max_rel: float | None = None, a: str = "none",
                      b: str = "batchnorm") -> dict[str, float]:
    """Ratios a / b of the three Fig 4 medians (`band_summary` over a's and b's seeds); above 1: b is smoother."""
    sa, sb = (band_summary([r["probe"] for r in runs[k]], max_rel) for k in (a, b))
    return {k: sa[k] / sb[k] for k in sa}


def seed_ratios(runs: dict[str, list[dict]], max_rel: float | None = None) -> list[dict[str, float]]:
    """`smoothness_ratios` standard / BN seed by seed (the i-th run of each), as the ch4 claims take them."""
    return [smoothness_ratios({"a": [ra], "b": [rb]}, max_rel, "a", "b")
            for ra, rb in zip(runs["none"], runs["batchnorm"])]


def n_probed(runs: dict[str, list[dict]]) -> int:
    """Probed steps summed over seeds, for whichever of the standard and the BN network has fewer."""
    return min(sum(len(r["probe"]["step"]) for r in runs[n]) for n in ("none", "batchnorm"))


def median_K(runs: dict[str, list[dict]], max_rel: float | None = None) -> dict[str, float]:
    """Per network, the median effective smoothness K over probed steps and seeds (`band_summary`)."""
    return {n: band_summary([r["probe"] for r in rs], max_rel)["K"] for n, rs in runs.items()}


def gradient_change_ratios(runs: dict[str, list[dict]], paper_range: Sequence[float],
                           which: str = "first") -> list[float]:
    """Santurkar's Fig 11 as numbers: per seed, the median over the probes with eta / lr in `paper_range` (the
    paper's range, `bnutils.claims.RANGES[model]`) of standard / BN ||g - g(eta)||, at the first or last probed step."""
    i = {"first": 0, "last": -1}[validate.choice("which", which, ("first", "last"))]
    lo, hi = paper_range
    out = []
    for rn, rb in zip(runs["none"], runs["batchnorm"]):
        e = np.asarray(rn["probe"]["eta_rel"])
        keep = (e >= lo * (1 - 1e-9)) & (e <= hi * (1 + 1e-9))
        d = [np.asarray(r["probe"]["grad_dists"][i], float)[keep] for r in (rn, rb)]
        out.append(float(np.median(d[0] / d[1])))
    return out


def final_losses(runs: dict[str, list[dict]], window: int = 20) -> dict[str, float]:
    """Per network, the median over seeds of `final_loss` (inf for a diverged run)."""
    return {n: float(np.median([final_loss(r, window) for r in rs])) for n, rs in runs.items()}


def final_loss(run: dict[str, Any], window: int = 50) -> float:
    """Mean training loss over the last `window` steps; inf for a diverged run."""
    if run["diverged"] or not run["loss"]:
        return float("inf")
    return float(np.mean(run["loss"][-window:]))


def theorem41_check(n_cases: int = 200, batch_sizes: Sequence[int] = (2, 4, 16, 64, 256), channels: int = 8,
                    eps: float = 0.0, seed: int = 0) -> dict[str, Any]:
    """Santurkar et al.'s Theorem 4.1 on random batches: ||grad_y L_bn||^2 against (gamma^2 / sigma^2) times
    (||g||^2 - <1, g>^2 / m - c <g, y_hat>^2), g = dL/dz the gradient at the BN output z, for c = 1/m (our
    derivation: the BN backward pass projects g off span{1, y_hat}) and c = 1/sqrt(m) (the constant as printed).

    The theorem is about BN without epsilon (eps=0, where the c = 1/m bound is an equality); with eps > 0 the
    backward pass is no longer an exact projection and the c = 1/m bound can be exceeded by O(eps / sigma^2) of
    the terms' size, which `max_excess` reports. Each case draws a batch of m pre-BN values per channel (random scale and shift), a random gamma, and a random
    two-layer network with a random target after BN, and uses autograd through BN written out.
    """
    validate.integer("n_cases", n_cases)
    validate.integer("channels", channels)
    validate.integer("seed", seed, minimum=0)
    validate.positive("eps", eps, allow_zero=True)
    validate.int_list("batch_sizes", batch_sizes, 2)
    g = torch.Generator().manual_seed(seed)
    rows = []
    for case in range(n_cases):
        m = int(batch_sizes[case % len(batch_sizes)])
        y = (torch.randn(m, channels, generator=g, dtype=torch.float64) * torch.rand(1, generator=g, dtype=torch.float64) * 10
             + torch.randn(1, channels, generator=g, dtype=torch.float64) * 3).requires_grad_()
        gamma = torch.randn(channels, generator=g, dtype=torch.float64) * 2
        mu, var = y.mean(0), y.var(0, unbiased=False)
        z = gamma * (y - mu) / torch.sqrt(var + eps)  # BN in train mode (beta = 0 changes no gradient)
        w1 = torch.randn(channels, 16, generator=g, dtype=torch.float64)
        w2 = torch.randn(16, 3, generator=g, dtype=torch.float64)
        target = torch.randn(m, 3, generator=g, dtype=torch.float64)
        z.retain_grad()
        loss = (torch.tanh(z @ w1) @ w2 - target).pow(2).mean()
        loss.backward()
        with torch.no_grad():
            sigma2 = y.var(dim=0, unbiased=False)
            y_hat = (y - y.mean(0)) / sigma2.sqrt()
            gz = z.grad
            lhs = y.grad.pow(2).sum(0)
            base = gz.pow(2).sum(0) - gz.sum(0).pow(2) / m
            proj = (gz * y_hat).sum(0).pow(2)
            scale = gamma.pow(2) / sigma2
            rhs_m = scale * (base - proj / m)
            rhs_sqrt = scale * (base - proj / m ** 0.5)
        for j in range(channels):
            rows.append({"m": m, "lhs": float(lhs[j]), "rhs_1_over_m": float(rhs_m[j]),
                         "rhs_1_over_sqrt_m": float(rhs_sqrt[j]), "size": float(scale[j] * gz[:, j].pow(2).sum())})
    lhs = np.array([r["lhs"] for r in rows])
    rhs_m = np.array([r["rhs_1_over_m"] for r in rows])
    rhs_s = np.array([r["rhs_1_over_sqrt_m"] for r in rows])
    tol = 1e-9 * np.array([r["size"] for r in rows])  # float64 rounding, relative to the terms' size (m=2: 0 <= 0)
    tight = rhs_m > tol
    return {"rows": rows, "holds_1_over_m": bool(np.all(lhs <= rhs_m + tol)),
            "holds_1_over_sqrt_m": bool(np.all(lhs <= rhs_s + tol)),
            "fraction_violated_1_over_sqrt_m": float(np.mean(lhs > rhs_s + tol)),
            "max_excess_1_over_m": float(np.max((lhs - rhs_m) / np.array([r["size"] for r in rows]))),
            "max_ratio_1_over_m": float(np.max(lhs[tight] / rhs_m[tight])),
            "min_ratio_1_over_m": float(np.min(lhs[tight] / rhs_m[tight]))}


# -- the chapter's settings at each profile, and the work they imply ------------------------------------------
# notebooks/04_landscape.ipynb reads SCALES[P.name] (a notebook parameter, when given, overrides);
# bench/estimate.py estimates the chapter's gpu runtime from workload(SCALES["gpu"], PROFILES["gpu"]).
#   n_seeds                          seeds for standard vs BN (the l_p runs use one)
#   vgg_steps, vgg_batch_size        the VGG-16 runs
#   vgg_probe_count                  probe the VGG landscape about this many times per run
#   dln_steps, dln_probe_count       the same for the deep linear network (full batch)
#   theorem_cases                    random cases of the Theorem 4.1 check
#   slider_lrs, slider_steps         the DLN runs behind the learning-rate slider
#   exercise_steps                   the DLN runs of the exercise at 3x the lr
SCALES = {
    "ci": dict(n_seeds=1, vgg_steps=30, vgg_batch_size=64, vgg_probe_count=2, dln_steps=60, dln_probe_count=3,
               theorem_cases=60, slider_lrs=[1e-6, 3e-6], slider_steps=40, exercise_steps=40),
    "cpu": dict(n_seeds=2, vgg_steps=160, vgg_batch_size=128, vgg_probe_count=4, dln_steps=300, dln_probe_count=6,
                theorem_cases=100, slider_lrs=[3e-7, 1e-6, 3e-6], slider_steps=200, exercise_steps=200),
    "gpu": dict(n_seeds=2, vgg_steps=1500, vgg_batch_size=128, vgg_probe_count=20, dln_steps=2500, dln_probe_count=20,
                theorem_cases=200, slider_lrs=[3e-7, 1e-6, 3e-6], slider_steps=1000, exercise_steps=1000),
}
# long: the cpu settings trained 4x longer (the scales page's longer point; fixed before any long run)
# (probed twice as often per run: 8 probed VGG steps, the minimum for a spread)
SCALES["long"] = {**SCALES["cpu"], "vgg_steps": 640, "dln_steps": 1200, "vgg_probe_count": 8, "dln_probe_count": 12}


def workload(scale: dict[str, Any], profile: Any, *, vgg_n_probes: int = 6, dln_n_probes: int = 8,
             lp: Sequence[str] = ("l1", "l2", "linf")) -> list[dict[str, Any]]:
    """What the chapter runs at `scale` on `profile` (a bnutils.profiles.Profile), one dict per kind of work (the
    fields are described in bnutils.experiments.basics.workload): landscape runs, float32, with K probes (one
    vmapped launch) per probed step, on the profile's device; the slider and exercise DLN runs on the CPU. The
    keyword defaults are the notebook's. The Theorem 4.1 check (float64, under a second) is left out."""
    import math

    n_seeds, vgg_steps, batch, dln_steps = (scale[k] for k in ("n_seeds", "vgg_steps", "vgg_batch_size", "dln_steps"))
    vgg_every = max(1, vgg_steps // scale["vgg_probe_count"])
    dln_every = max(1, dln_steps // scale["dln_probe_count"])
    items = []
    for norm, n in {"none": n_seeds, "batchnorm": n_seeds, **{p: 1 for p in lp}}.items():
        probed = n * math.ceil(vgg_steps / vgg_every)
        net = dict(model=f"vgg16/{norm}", width=profile.vgg_width, device=profile.device)
        items += [dict(what=f"VGG-16 {norm}: {n} run(s) x {vgg_steps} steps", mode="train", batch=batch,
                       passes=n * vgg_steps, **net),
                  dict(what=f"... probes: {probed} probed steps x {vgg_n_probes} passes", mode="grad", batch=batch,
                       passes=probed * vgg_n_probes, launches=probed, **net),
                  dict(what="... one test evaluation per run", mode="eval", batch=profile.n_test or 10_000, passes=n,
                       **net)]
    for norm in ["none", "batchnorm", *lp]:
        probed = n_seeds * math.ceil(dln_steps / dln_every)
        net = dict(model=f"dln/{norm}", batch=1000, device=profile.device)
        items += [dict(what=f"DLN {norm}: {n_seeds} runs x {dln_steps} steps", mode="train",
                       passes=n_seeds * dln_steps, **net),
                  dict(what=f"... probes: {probed} probed steps x {dln_n_probes} passes", mode="grad",
                       passes=probed * dln_n_probes, launches=probed, **net)]
    lrs, w_steps, ex_steps = scale["slider_lrs"], scale["slider_steps"], scale["exercise_steps"]
    for norm in ("none", "batchnorm"):  # the slider probes every steps // 5, the exercise every 20 steps, 8 probes
        probed = len(lrs) * math.ceil(w_steps / max(1, w_steps // 5)) + math.ceil(ex_steps / 20)
        net = dict(model=f"dln/{norm}", batch=1000, device="cpu")
        items += [dict(what=f"DLN {norm}: slider ({len(lrs)} x {w_steps}) and exercise ({ex_steps}) steps",
                       mode="train", passes=len(lrs) * w_steps + ex_steps, **net),
                  dict(what=f"... probes: {probed} probed steps x 8 passes", mode="grad", passes=probed * 8,
                       launches=probed, **net)]
    return items
