"""The chapters' live controls as library functions: check the control values, run, draw, return the Figure.

A notebook binds its own objects (model, data, settings) and hands the rest to the sliders, e.g.
``interactive.live(functools.partial(controls.learning_rate, SWEEP, seed=seed), **controls.LEARNING_RATE)``.
Each function checks its control values against the same ranges the sliders use (a ValueError naming the
control and its range, before any work), so tests can run every control at the ends of its range without a
kernel. A diverged run is data and is drawn as such. Chapter modules are imported inside each control: one
chapter's control does not load the others' experiments.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Mapping, Union

import matplotlib.pyplot as plt
import torch.nn as nn
from matplotlib.figure import Figure

from .data import Dataset, Split

Range = Union[tuple[float, float, float], list[float]]  # (low, high, step) for a slider, a list for a dropdown

# The ranges the sliders use: pass them to `interactive.live` as its controls.
RUNNING_MEAN: dict[str, Range] = {"batch_size": (2, 256, 2), "momentum": (0.01, 1.0, 0.01)}
NOISE_STRENGTH: dict[str, Range] = {"strength": (0.0, 4.0, 0.25), "steps": (20, 500, 20)}
LANDSCAPE_PROBE: dict[str, Range] = {"lr": [3e-7, 1e-6, 3e-6, 1e-5], "max_rel": [1.0, 4.0, 16.0, 30.0],
                                     "steps": (50, 2000, 50)}
LEARNING_RATE: dict[str, Range] = {"log10_lr": (-4.0, 0.5, 0.25), "steps": (50, 200, 50)}


def check(ranges: Mapping[str, Range], **values: Any) -> None:
    """Raise a ValueError naming the control and its allowed values unless each value is one its control can take."""
    for name, value in values.items():
        allowed = ranges[name]
        if isinstance(allowed, list):
            if isinstance(value, bool) or value not in allowed:
                raise ValueError(f"{name}={value!r} is not one of the control's values {allowed}")
            continue
        low, high, _ = allowed
        if all(isinstance(v, int) for v in allowed):
            if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
                raise ValueError(f"{name}={value!r} must be an integer in [{low}, {high}] (the control's range)")
        elif isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) \
                or not low <= value <= high:
            raise ValueError(f"{name}={value!r} must be a finite number in [{low}, {high}] (the control's range)")


def running_mean(model: nn.Module, bn: nn.Module, split: Split, batch_size: int = 32, momentum: float = 0.1, *,
                 seed: int = 0, n_batches: int = 100) -> Figure:
    """Chapter 1: the batch means of channel 0 at `bn`'s input, and the running mean BN keeps of them with
    `momentum`, against the population mean: how noisy batch statistics are, and how momentum smooths them."""
    check(RUNNING_MEAN, batch_size=batch_size, momentum=momentum)
    from .experiments.basics import batch_mean_spread

    s = batch_mean_spread(model, bn, split, batch_size, n_batches=n_batches, seed=seed)
    ema, trace = 0.0, []
    for v in s["batch_means"]:  # PyTorch's update, from its initial running mean 0
        ema = (1 - momentum) * ema + momentum * v
        trace.append(ema)
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.plot(s["batch_means"], ".", alpha=0.5, label="batch means")
    ax.plot(trace, label=f"running mean (momentum {momentum:g})")
    ax.axhline(s["population_mean"], color="black", ls="--", label="population mean")
    ax.set_xlabel("batch")
    ax.set_ylabel("channel-0 mean")
    ax.set_title(f"batch size {batch_size}: batch means spread {s['std']:.3f}; the running mean ends "
                 f"{abs(trace[-1] - s['population_mean']):.3f} from the population mean")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def noise_strength(data: Dataset, run: Mapping[str, Any], strength: float = 1.0, steps: int = 100, *,
                   seed: int = 0) -> Figure:
    """Chapter 3: train noisy BN and the standard net + noise at one noise strength for `steps` steps (the other
    settings of `noisy.train_network` from `run`) and draw the noise-slider frame for it."""
    check(NOISE_STRENGTH, strength=strength, steps=steps)
    from .experiments.noisy import noise_sweep
    from .figures.noisy import draw_sweep_frame

    one = noise_sweep([strength], seed=seed, data=data, **{**run, "steps": steps})
    fig = plt.figure(figsize=(10, 3.4))
    draw_sweep_frame(fig, float(strength), one, window=max(1, steps // 10))
    return fig


def _finding(runs: dict[str, list[dict]]) -> str:
    """How many of the three Fig 4 medians are smaller with BN than without (over the whole probe range)."""
    from .experiments.landscape import smoothness_ratios
    from .report.landscape import smoothness_finding

    return smoothness_finding(smoothness_ratios(runs))


def landscape_probe(lr: float = 1e-6, max_rel: float = 30.0, steps: int = 200, *, seed: int = 0,
                    **run: Any) -> Figure:
    """Chapter 4: train the deep linear network with and without BN at `lr`, probing step sizes up to
    `max_rel` x lr, and draw Santurkar et al.'s Fig 4 panels (other `landscape_run` settings from `run`)."""
    check(LANDSCAPE_PROBE, lr=lr, max_rel=max_rel, steps=steps)
    from .experiments.landscape import landscape_runs
    from .figures.landscape import draw_landscape

    runs = landscape_runs("dln", ["none", "batchnorm"], [seed], lr=lr, steps=steps, probe_every=max(1, steps // 5),
                          eta_range=(0.01, max_rel), n_probes=8, **run)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    draw_landscape(axes, runs)
    fig.suptitle(f"DLN, lr {lr:g}, probes up to {max_rel:g} lr: {_finding(runs)}", fontsize=10, fontweight="bold")
    fig.tight_layout()
    return fig


def learning_rate(sweep: Mapping[str, Any], log10_lr: float = -1.0, steps: int = 150, *, seed: int = 0) -> Figure:
    """Chapter 5: train the BN and no-BN ResNets of `sweep` (depth, width, n_train, n_test, device) at lr
    10**log10_lr for `steps` steps and draw their loss curves; a diverged run ends in a cross."""
    check(LEARNING_RATE, log10_lr=log10_lr, steps=steps)
    from .experiments.divergence import train_live
    from .figures.divergence import draw_curves

    lr = 10.0 ** log10_lr
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    draw_curves(ax, train_live(lr, steps=steps, seed=seed, **sweep), lr)
    fig.tight_layout()
    return fig
