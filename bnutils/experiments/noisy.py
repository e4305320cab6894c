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
from ..cache import cached
from ..data import Dataset, Split, batches, load_cifar10
from ..metrics import ActivationRecorder
from ..models import VGG
from ..norms import SanturkarNoise, recalibrate
from ..train import evaluate, train

KINDS = ("none", "batchnorm", "noisy", "noise")
SHORT = {"none": "standard", "batchnorm": "BN", "noisy": "noisy BN", "noise": "standard\n+ noise"}
NOISY_KINDS = ("noisy", "noise")  # the kinds a noise strength applies to; at scale 0 they are batchnorm / none
BASE_KIND = {"noisy": "batchnorm", "noise": "none"}
LAYERS = (2, 9, 13)  # Santurkar's Fig 8 layers of the VGG16: early, middle, late
POSITIONS = ("after_affine", "before_affine")


@torch.no_grad()
def accuracy_with_noise(model: torch.nn.Module, split: Split, batch_size: int = 1000) -> float:
    """Test accuracy with running statistics but the noise left *on* (what happens if you forget to switch it off)."""
    model.eval()
    for m in model.modules():
        if isinstance(m, SanturkarNoise):
            m.train()
    correct = sum(int((model(split.x[i:i + batch_size]).argmax(1) == split.y[i:i + batch_size]).sum())
                  for i in range(0, len(split), batch_size))
    model.eval()
    return correct / len(split)


def _moments(rec: dict[str, Any], layer: str) -> dict[str, list[float]]:
    """Per-step change and drift from step 0 of the per-channel mean and variance, averaged over channels."""
    d = rec["layers"][layer]
    mean, var = np.asarray(d["channel_mean"], float), np.asarray(d["channel_var"], float)
    out = {"std": [float(v) for v in d["std"]]}
    for name, a in (("mean", mean), ("var", var)):
        out[f"{name}_change"] = np.abs(np.diff(a, axis=0)).mean(1).tolist() if len(a) > 1 else []
        out[f"{name}_drift"] = np.abs(a - a[:1]).mean(1).tolist() if len(a) else []
    return out


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
            clean = (x for x, _ in _first_batches(data.train, cfg["recal_batches"], cfg["batch_size"]))
            recalibrate(model, clean)  # exact population statistics of the clean (noise-off) network
            out["test_acc_recal"] = evaluate(model, data.test)["acc"]
        if cfg["kind"] in NOISY_KINDS:
            out["test_acc_noise_on"] = accuracy_with_noise(model, data.test)
    mom, hist = run.metrics["moments"], run.metrics["hist"]
    out["layers"] = {name: {**_moments(mom, name), "hist_steps": hist["steps"],
                            "hist": hist["layers"][name]["sample"]} for name in modules}
    return out


def _first_batches(split: Split, n: int, batch_size: int):
    """The first n mini-batches of the training order (for recalibration)."""
    it = batches(split, batch_size, seed=0)
    return [next(it) for _ in range(n)]


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
    if not layers:
        raise ValueError(f"layers={layers!r} must name at least one conv layer in 1..13")
    for i in layers:
        validate.in_range("layers", i, 1, 13)
    validate.integer("hist_every", hist_every)
    validate.integer("hist_sample", hist_sample)
    validate.integer("recal_batches", recal_batches)
    validate.positive("divergence_factor", divergence_factor)
    cfg = dict(kind=kind, seed=seed, steps=steps, lr=lr, n_train=n_train, n_test=n_test, width=width,
               batch_size=batch_size, noise_scale=noise_scale if kind in NOISY_KINDS else 0.0,
               position=position if kind == "noisy" else None, layers=[int(i) for i in layers],
               hist_every=hist_every, hist_sample=hist_sample, recal_batches=recal_batches,
               divergence_factor=divergence_factor, experiment="noisy_bn")
    validate.choice("device", device, ("cpu", "cuda"))
    return cached(cfg, lambda: _train_network(cfg, data or load_cifar10(n_train, n_test, seed=0, device=device), amp),
                  namespace="noisy", enabled=cache)


def _data(kwargs: dict[str, Any]) -> Dataset:
    """The `data` keyword if given (removed from kwargs), else the CIFAR-10 subset the keywords name, loaded once."""
    return kwargs.pop("data", None) or load_cifar10(kwargs.get("n_train", 10000), kwargs.get("n_test", 2000), seed=0,
                                                    device=kwargs.get("device", "cpu"))


def four_networks(seeds: Sequence[int], kinds: Sequence[str] = KINDS, **kwargs: Any) -> list[dict[str, Any]]:
    """train_network for every kind and seed (the chapter's main experiment), loading the data once."""
    seeds = validate.seeds("seeds", list(seeds))
    for k in kinds:
        validate.choice("kinds", k, KINDS)
    data = _data(kwargs)
    return [train_network(k, seed=s, data=data, **kwargs) for k in kinds for s in seeds]


def noise_sweep(scales: Sequence[float], seed: int = 0, **kwargs: Any) -> dict[str, dict[float, dict[str, Any]]]:
    """For each noise strength, the noisy-BN and standard+noise runs: {kind: {scale: run}}.

    Scale 0 is no noise at all, so it is the plain network (batchnorm / none) rather than a separate run.
    """
    if not scales:
        raise ValueError(f"scales={scales!r} must hold at least one noise strength")
    for s in scales:
        validate.positive("scales", s, allow_zero=True)
    data = _data(kwargs)
    return {k: {float(s): train_network(k if s > 0 else BASE_KIND[k], seed=seed, noise_scale=float(s) or 1.0,
                                        data=data, **kwargs) for s in scales} for k in NOISY_KINDS}


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


def plot_training(runs: Sequence[dict[str, Any]], title: str, window: int = 20):
    """Training loss and accuracy (smoothed, seed band) and each seed's test accuracy, per network."""
    import matplotlib.pyplot as plt

    from .. import plots
    from ..train import smooth

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), gridspec_kw={"width_ratios": [2, 2, 1.3]})
    kinds = _kinds(runs)
    for kind in kinds:
        ok = [r for r in runs if r["kind"] == kind and not r["diverged"]]
        for ax, key in zip(axes[:2], ("loss", "acc")):
            if ok:  # a diverged run's loss reaches 1e30: it is marked, not drawn into the band
                plots.band(ax, np.arange(1, len(ok[0][key]) + 1), [smooth(r[key], window) for r in ok], kind=kind)
        div = [r for r in runs if r["kind"] == kind and r["diverged"]]
        plots.mark_diverged(axes[0], [r["diverged_at"] for r in div], [r["loss"][0] for r in div],
                            label_=f"{plots.label(kind)}: diverged" if div else None)
    for i, kind in enumerate(kinds):
        accs = [compared_accuracy(r) for r in runs if r["kind"] == kind]
        ok = [a for a in accs if np.isfinite(a)]
        axes[2].scatter([i] * len(ok), [100 * a for a in ok], color=plots.color(kind), zorder=3)
        if len(ok) < len(accs):
            plots.mark_diverged(axes[2], [i] * (len(accs) - len(ok)), [10.0] * (len(accs) - len(ok)), label_=None)
    axes[0].set(yscale="log", xlabel="training step", ylabel="training loss (smoothed)")
    axes[1].set(xlabel="training step", ylabel="training accuracy (smoothed)")
    axes[2].axhline(10, color="gray", ls=":", lw=1)
    axes[2].set(xticks=range(len(kinds)), xticklabels=[SHORT[k] for k in kinds],
                ylabel="test accuracy (%)", xlim=(-0.5, len(kinds) - 0.5))
    axes[2].tick_params(axis="x", labelsize=8)
    axes[0].legend(fontsize=8)
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_histograms(runs: Sequence[dict[str, Any]], title: str, seed: int = 0):
    """Santurkar's Fig 2 layout: one channel's activation histogram over training, a row per layer, a column per net."""
    import matplotlib.pyplot as plt

    from .. import plots

    rs = [r for r in runs if r["seed"] == seed]
    layers = list(rs[0]["layers"])
    fig, axes = plt.subplots(len(layers), len(rs), figsize=(2.6 * len(rs), 1.9 * len(layers)), squeeze=False)
    for j, r in enumerate(rs):
        for i, layer in enumerate(layers):
            d, ax = r["layers"][layer], axes[i, j]
            plots.histograms_over_time(ax, d["hist_steps"], d["hist"], bins=30)
            ax.set(xlabel="training step" if i == len(layers) - 1 else "", ylabel=f"layer {layer}\nvalue" if j == 0 else "")
            if i == 0:
                ax.set_title(plots.label(r["kind"]) + (" (diverged)" if r["diverged"] else ""), color=plots.color(r["kind"]))
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    return fig


def plot_moments(runs: Sequence[dict[str, Any]], title: str, what: str = "change", seed: int = 0, window: int = 1):
    """Santurkar's Fig 8: per-step change (or drift from step 0) of the channel means and variances, per layer.

    `window` > 1 draws a trailing moving average (the per-step values are noisy).
    """
    import matplotlib.pyplot as plt

    from .. import plots
    from ..train import smooth

    validate.choice("what", what, ("change", "drift"))
    rs = [r for r in runs if r["seed"] == seed]
    layers = list(rs[0]["layers"])
    fig, axes = plt.subplots(2, len(layers), figsize=(3.6 * len(layers), 5), squeeze=False, sharex=True)
    for r in rs:
        for j, layer in enumerate(layers):
            for i, moment in enumerate(("mean", "var")):
                v = np.asarray(r["layers"][layer][f"{moment}_{what}"], float)
                v = v if what == "change" else v[1:]  # the drift is 0 at step 0: off a log scale
                axes[i, j].plot(np.arange(1, len(v) + 1), smooth(v, window), color=plots.color(r["kind"]),
                                label=plots.label(r["kind"]), lw=1.3)
    name = {"change": "|change in one step|", "drift": "|change since step 0|"}[what]
    for j, layer in enumerate(layers):
        axes[0, j].set_title(f"layer {layer}")
        axes[1, j].set_xlabel("training step")
        for i, moment in enumerate(("channel mean", "channel variance")):
            axes[i, j].set_yscale("log")
            if j == 0:
                axes[i, j].set_ylabel(f"{moment}\n{name}")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=9)
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def draw_sweep_frame(fig, scale: float, sweep: dict[str, dict[float, dict[str, Any]]], window: int = 20) -> None:
    """One frame of the noise-strength slider: test accuracy vs strength, and the training losses at `scale`."""
    from .. import plots
    from ..train import smooth

    ax1, ax2 = fig.subplots(1, 2)
    scales = sorted(next(iter(sweep.values())))
    for kind, runs in sweep.items():
        acc = [100 * compared_accuracy(runs[s]) for s in scales]
        ax1.plot(scales, acc, "o-", color=plots.color(kind), label=plots.label(kind))
        div = [s for s in scales if runs[s]["diverged"]]
        plots.mark_diverged(ax1, div, [10.0] * len(div), label_="diverged" if div else None)
        r = runs[scale]
        ax2.plot(np.arange(1, len(r["loss"]) + 1), smooth(r["loss"], window), color=plots.color(kind),
                 label=f"{plots.label(kind)}" + (" (diverged)" if r["diverged"] else ""))
    ax1.axvline(scale, color="gray", lw=6, alpha=0.25)
    ax1.axhline(10, color="gray", ls=":", lw=1)
    ax1.set(xlabel="noise strength (× Santurkar's constants)", ylabel="test accuracy (%)",
            title=f"noise strength {scale:g}")
    ax2.set(yscale="log", xlabel="training step", ylabel="training loss (smoothed)",
            title=f"training at strength {scale:g}")
    ax1.legend(fontsize=8)
    ax2.legend(fontsize=8)
    fig.tight_layout()
