"""Chapter 3, the noisy-BN experiment of Santurkar et al. (2018): make the layer distributions *less* stable on
purpose (Algorithm 1 noise after every BN layer) and see whether training suffers.

Four VGG networks on CIFAR-10: standard, + BN, + noisy BN, standard + the same noise. Each run records the
training curves, the test accuracy (noise off; for the BN nets also with recalibrated population statistics),
per-step moments of the output of an early, a middle and a late norm layer (Santurkar's Fig 8), and samples of
one channel's values for histograms over time (Fig 2). Runs are cached; results are JSON-able dicts.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from .. import validate
from ..cache import cached_run
from ..parallel import sweep
from ..data import Dataset, Split, batches, load_cifar10
from ..metrics import ActivationRecorder, channel_moment_changes
from ..models import VGG
from ..modes import temporary_mode
from ..norms import recalibrate
from ..profiles import SMOKE, seed_list, smoke_cap
from ..train import evaluate, train

KINDS = ("none", "batchnorm", "noisy", "noise")
NOISY_KINDS = ("noisy", "noise")  # the kinds a noise strength applies to; at scale 0 they are batchnorm / none
BASE_KIND = {"noisy": "batchnorm", "noise": "none"}
LAYERS = (2, 9, 13)  # Santurkar's Fig 8 layers of the VGG16: early, middle, late
POSITIONS = ("after_affine", "before_affine")


@torch.no_grad()
def accuracy_with_noise(model: torch.nn.Module, split: Split, batch_size: int = 1000) -> float:
    """Test accuracy with running statistics but the noise left *on* (what happens if you forget to switch it off)."""
    with temporary_mode(model, train=False, noise=True):
        correct = sum(int((model(split.x[i:i + batch_size]).argmax(1) == split.y[i:i + batch_size]).sum())
                      for i in range(0, len(split), batch_size))
    return correct / len(split)


def _train_network(cfg: dict[str, Any], data: Dataset, amp: bool) -> dict[str, Any]:
    torch.manual_seed(cfg["seed"])
    kwargs: dict[str, Any] = {}
    if cfg["kind"] in NOISY_KINDS:
        kwargs["scale"] = cfg["noise_scale"]
    if cfg["kind"] == "noisy":
        kwargs["position"] = cfg["position"]
    model = VGG("vgg16", width=cfg["width"], norm=cfg["kind"], **kwargs).to(data.train.x.device)
    modules = {f"#{i}": model.blocks[i - 1].norm for i in cfg["layers"]}
    callbacks = {"moments": ActivationRecorder(modules, every=1, quantiles=(), sample_size=1),
                 "hist": ActivationRecorder(modules, every=cfg["hist_every"], quantiles=(), sample_size=cfg["hist_sample"])}
    run = train(model, data, steps=cfg["steps"], lr=cfg["lr"], batch_size=cfg["batch_size"], seed=cfg["seed"],
                callbacks=callbacks, divergence_factor=cfg["divergence_factor"], amp=amp)
    out: dict[str, Any] = {"kind": cfg["kind"], "seed": cfg["seed"], "noise_scale": cfg["noise_scale"],
                           "loss": run.loss, "acc": run.acc, "diverged": run.diverged,
                           "diverged_at": run.diverged_at, "seconds": run.seconds,
                           "test_acc": None, "test_acc_recal": None, "test_acc_noise_on": None}
    if not run.diverged:
        out["test_acc"] = evaluate(model, data.test)["acc"]  # eval mode: running statistics, noise off
        if cfg["kind"] in ("batchnorm", "noisy"):
            # smoke mode: 2 batches of at most SMOKE.batch examples
            clean = (x for x, _ in _first_batches(data.train, smoke_cap(cfg["recal_batches"]),
                                                   smoke_cap(cfg["batch_size"], SMOKE.batch)))
            recalibrate(model, clean)  # exact population statistics of the clean (noise-off) network
            out["test_acc_recal"] = evaluate(model, data.test)["acc"]
        if cfg["kind"] in NOISY_KINDS:
            out["test_acc_noise_on"] = accuracy_with_noise(model, data.test)
    mom, hist = run.metrics["moments"], run.metrics["hist"]
    out["layers"] = {name: {**channel_moment_changes(mom, name), "hist_steps": hist["steps"],
                            "hist": hist["layers"][name]["sample"]} for name in modules}
    return out


def _first_batches(split: Split, n: int, batch_size: int):
    """The first n mini-batches of the training order (for recalibration)."""
    it = batches(split, batch_size, seed=0)
    return [next(it) for _ in range(n)]


@cached_run("noisy")
def train_network(kind: str, *, seed: int = 0, steps: int = 500, lr: float = 0.1, n_train: int | None = 10000,
                  n_test: int | None = 2000, width: float = 0.125, batch_size: int = 128, noise_scale: float = 1.0,
                  position: str = "after_affine", layers: Sequence[int] = LAYERS, hist_every: int = 20,
                  hist_sample: int = 256, recal_batches: int = 20, divergence_factor: float = 1e3,
                  device: str = "cpu", amp: bool = False, data: Dataset | None = None,
                  cache: bool = True) -> dict[str, Any]:
    """Train one VGG16 variant (`kind` in KINDS) with plain SGD and return its curves, test accuracies and moments.

    test_acc: eval mode (running statistics, noise off); test_acc_recal (BN kinds): after recomputing the
    population statistics with the noise off; test_acc_noise_on (noise kinds): running statistics, noise on.
    `data` defaults to the class-balanced CIFAR-10 subset (n_train, n_test) drawn with seed 0, on `device`;
    amp (mixed precision, CUDA only) is for the gpu profile.
    """
    validate.choice("kind", kind, KINDS)
    validate.integer("seed", seed, minimum=0)
    validate.integer("steps", steps)
    validate.positive("lr", lr)
    validate.positive("width", width)
    validate.integer("batch_size", batch_size, minimum=2)
    validate.positive("noise_scale", noise_scale, allow_zero=True)
    validate.choice("position", position, POSITIONS)
    validate.int_list("layers", layers, 1, 13)
    validate.integer("hist_every", hist_every)
    validate.integer("hist_sample", hist_sample)
    validate.integer("recal_batches", recal_batches)
    validate.positive("divergence_factor", divergence_factor)
    cfg = dict(kind=kind, seed=seed, steps=steps, lr=lr, n_train=n_train, n_test=n_test, width=width,
               batch_size=batch_size, noise_scale=noise_scale if kind in NOISY_KINDS else 0.0,
               position=position if kind == "noisy" else None, layers=[int(i) for i in layers],
               hist_every=hist_every, hist_sample=hist_sample, recal_batches=recal_batches,
               divergence_factor=divergence_factor, experiment="noisy_bn")
    validate.device("device", device)
    return _train_network(cfg, data or load_cifar10(n_train, n_test, seed=0, device=device), amp)


def four_networks(seeds: Sequence[int], kinds: Sequence[str] = KINDS, *, executor: Any = "auto",
                  **kwargs: Any) -> list[dict[str, Any]]:
    """train_network for every kind and seed (the chapter's main experiment); the runs not yet in the cache fan
    out to `executor` (see bnutils.parallel.sweep)."""
    seeds = validate.seeds("seeds", list(seeds))
    for k in validate.nonempty("kinds", kinds):
        validate.choice("kinds", k, KINDS)
    validate.device("device", kwargs.get("device", "cpu"))
    return sweep(train_network, [dict(kind=k, seed=s, **kwargs) for k in kinds for s in seeds], executor=executor)


def noise_sweep(scales: Sequence[float], seed: int = 0, *, executor: Any = "auto",
                **kwargs: Any) -> dict[str, dict[float, dict[str, Any]]]:
    """For each noise strength, the noisy-BN and standard+noise runs: {kind: {scale: run}}.

    Scale 0 is no noise at all, so it is the plain network (batchnorm / none) rather than a separate run.
    """
    for s in validate.nonempty("scales", scales):
        validate.positive("scales", s, allow_zero=True)
    validate.device("device", kwargs.get("device", "cpu"))
    grid = [(k, float(s)) for k in NOISY_KINDS for s in scales]
    runs = sweep(train_network, [dict(kind=k if s > 0 else BASE_KIND[k], seed=seed, noise_scale=s or 1.0, **kwargs)
                                 for k, s in grid], executor=executor)
    out: dict[str, dict[float, dict[str, Any]]] = {k: {} for k in NOISY_KINDS}
    for (k, s), r in zip(grid, runs):
        out[k][s] = r
    return out


def settings(profile: Any, scale: dict[str, Any], *, seed: int = 0, steps: int | None = None,
             lr: float | None = None, n_seeds: int | None = None,
             noise_scales: Sequence[float] | None = None) -> dict[str, Any]:
    """The chapter's settings from its `parameters` cell (None: the profile's `scale`, `SCALES[profile.name]`).

    Returns seeds (`n_seeds` from `seed` on), scales (the sweep's noise strengths, with 0 and 1 added: they come
    free from the main runs) and run (the keyword arguments of `train_network` / `four_networks` but kind, seed
    and data: steps, lr (Santurkar's 0.1 by default), the profile's subset sizes, width, device and precision).
    """
    steps = validate.integer("steps", steps if steps is not None else scale["steps"])
    run = dict(steps=steps, lr=validate.positive("lr", lr if lr is not None else 0.1), n_train=profile.n_train,
               n_test=profile.n_test, width=profile.vgg_width, batch_size=128, hist_every=max(1, steps // 25),
               device=profile.device, amp=profile.amp)
    n = validate.integer("n_seeds", n_seeds if n_seeds is not None else scale["n_seeds"])
    scales = noise_scales if noise_scales is not None else scale["noise_scales"]
    return {"seeds": seed_list(seed, n), "scales": sorted(set(map(float, scales)) | {0.0, 1.0}), "run": run}


def final_train(run: dict[str, Any], frac: float = 0.1) -> tuple[float, float]:
    """(loss, accuracy) on the training batches averaged over the last `frac` of the steps (NaN if diverged)."""
    validate.in_range("frac", frac, 0.0, 1.0)
    if run["diverged"] or not run["loss"]:
        return float("nan"), float("nan")
    n = max(1, int(len(run["loss"]) * frac))
    return float(np.mean(run["loss"][-n:])), float(np.mean(run["acc"][-n:]))


def compared_accuracy(run: dict[str, Any]) -> float:
    """The accuracy the chapter compares: recalibrated statistics for BN nets, eval mode otherwise; NaN if diverged."""
    v = run["test_acc_recal"] if run["test_acc_recal"] is not None else run["test_acc"]
    return float("nan") if v is None else float(v)


def summary(runs: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per kind over seeds: test accuracy (mean, min, max), final training loss/accuracy, divergences."""
    validate.nonempty("runs", runs)
    out: dict[str, dict[str, Any]] = {}
    for kind in _kinds(runs):
        rs = [r for r in runs if r["kind"] == kind]
        acc = np.array([compared_accuracy(r) for r in rs])
        tr = np.array([final_train(r) for r in rs])
        ok = np.isfinite(acc)
        out[kind] = {"test_acc": float(acc[ok].mean()) if ok.any() else float("nan"),
                     "test_min": float(acc[ok].min()) if ok.any() else float("nan"),
                     "test_max": float(acc[ok].max()) if ok.any() else float("nan"),
                     "train_loss": float(np.nanmean(tr[:, 0])) if ok.any() else float("nan"),
                     "train_acc": float(np.nanmean(tr[:, 1])) if ok.any() else float("nan"),
                     "diverged": int(sum(r["diverged"] for r in rs)), "seeds": len(rs)}
    return out


def _layer_average(d: dict[str, list[float]], key: str, relative: bool) -> float:
    """Mean over steps of one recorded moment series, optionally divided by the layer's std (or variance)."""
    v = np.asarray(d[key], float)
    if relative:
        std = np.asarray(d["std"], float)[1 if "change" in key else 0:][: len(v)]
        v = v / (std if key.startswith("mean") else std ** 2)
    return float(np.nanmean(v)) if len(v) else float("nan")


def instability(runs: Sequence[dict[str, Any]], relative: bool = False) -> dict[str, dict[str, dict[str, float]]]:
    """{kind: {layer: {mean_change, var_change, mean_drift, var_drift}}}: averages over steps and seeds.

    relative=True divides each step's change by that layer's activation std (mean) or variance (var) at
    that step, so networks whose activations differ in scale are compared fairly. Diverged runs are left
    out (their moments explode before the loss does); a kind whose every run diverged gets NaN.
    """
    validate.nonempty("runs", runs)
    keys = ("mean_change", "var_change", "mean_drift", "var_drift")
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in _kinds(runs):
        rs = [r for r in runs if r["kind"] == kind]
        ok = [r for r in rs if not r["diverged"]]
        out[kind] = {layer: {key: float(np.mean([_layer_average(r["layers"][layer], key, relative) for r in ok]))
                             if ok else float("nan") for key in keys} for layer in rs[0]["layers"]}
    return out


def _kinds(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The network kinds present in `runs`, in first-seen order."""
    return list(dict.fromkeys(r["kind"] for r in runs))


# -- the chapter's settings at each profile, and the work they imply ------------------------------------------
# notebooks/03_noisy_bn.ipynb reads SCALES[P.name] (a notebook parameter, when given, overrides);
# bench/estimate.py estimates the chapter's gpu runtime from workload(SCALES["gpu"], PROFILES["gpu"]).
#   steps         SGD steps per run (batch 128)
#   n_seeds       seeds per network
#   noise_scales  noise strengths of the sweep, multiples of Santurkar's constants (0 and 1 are always added)
SCALES = {
    "ci": dict(steps=15, n_seeds=1, noise_scales=[0.0, 1.0]),
    "cpu": dict(steps=150, n_seeds=2, noise_scales=[0.0, 1.0, 2.0]),
    "gpu": dict(steps=3000, n_seeds=2, noise_scales=[0.0, 0.5, 1.0, 2.0]),
}
# long: the cpu settings trained 4x longer (the scales page's longer point; fixed before any long run)
SCALES["long"] = {**SCALES["cpu"], "steps": 600}


def workload(scale: dict[str, Any], profile: Any) -> list[dict[str, Any]]:
    """What the chapter runs at `scale` on `profile` (a bnutils.profiles.Profile), one dict per kind of work (the
    fields are described in bnutils.experiments.basics.workload): the four networks x seeds, the noise sweep and
    the before-affine exercise, each recording moments every step (`record`: layers read back to the host per
    step), with the clean / recalibrated / noise-on evaluations."""
    import inspect

    steps, n_seeds = scale["steps"], scale["n_seeds"]
    recal = inspect.signature(train_network).parameters["recal_batches"].default
    new = len(set(scale["noise_scales"]) - {0.0, 1.0})  # 0 and 1 are the main runs, read from the cache
    runs = {"none": n_seeds, "batchnorm": n_seeds, "noisy": n_seeds + new + 1, "noise": n_seeds + new}
    items = []
    for kind, n in runs.items():
        net = dict(model=f"vgg16/{kind}", width=profile.vgg_width, device=profile.device)
        n_evals = 1 + (kind in ("batchnorm", "noisy")) + (kind in NOISY_KINDS)
        items += [dict(what=f"VGG-16 {kind}: {n} runs x {steps} steps", mode="train", batch=128, passes=n * steps,
                       amp=profile.amp, record=len(LAYERS), **net),
                  dict(what=f"... {n_evals} test evaluation(s) per run", mode="eval", batch=profile.n_test or 10_000,
                       passes=n * n_evals, **net)]
        if kind in ("batchnorm", "noisy"):
            items.append(dict(what=f"... recalibration ({recal} batches) per run", mode="forward", batch=128,
                              passes=n * recal, **net))
    return items
