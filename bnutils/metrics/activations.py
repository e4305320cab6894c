"""The per-layer activation-statistics recorder, used by several chapters.

`ActivationRecorder` is a training callback: every `every` steps it captures, through forward hooks, the
activations of the chosen modules on that step's batch and keeps per layer: mean, std and quantiles of all
values, per-channel means and variances, and a fixed random sample of one channel's values (for histograms).
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import validate
from ..modes import Hooks
from ..train import Callback, StepState


def _channels_last_2d(t: torch.Tensor) -> torch.Tensor:
    """(N, C, *spatial) -> (N * spatial, C): one row per value of each channel."""
    return t.transpose(0, 1).reshape(t.shape[1], -1).T if t.dim() > 2 else t


class ActivationRecorder(Callback):
    """Record activation statistics of `modules` (name -> module) every `every` steps.

    where='output' records what the module returns, 'input' what it receives (e.g. the input of a sigmoid).
    result() gives, per layer, lists over recorded steps: mean, std, quantiles (one list per q),
    channel_mean and channel_var (C values each), and `sample`: up to `sample_size` values of channel
    `channel`, drawn at fixed positions of the batch so successive steps are comparable.
    """

    def __init__(self, modules: dict[str, nn.Module], *, every: int = 10, where: str = "output",
                 quantiles: Sequence[float] = (0.15, 0.5, 0.85), channel: int = 0, sample_size: int = 512):
        if not modules:
            raise ValueError("modules must name at least one module to record")
        self.every = validate.integer("every", every)
        self.where = validate.choice("where", where, ("input", "output"))
        for q in quantiles:
            validate.in_range("quantiles", q, 0.0, 1.0)
        self.quantiles = list(quantiles)
        self.channel = validate.integer("channel", channel, minimum=0)
        self.sample_size = validate.integer("sample_size", sample_size)
        self.steps: list[int] = []
        self.data: dict[str, dict[str, list]] = {
            name: {"mean": [], "std": [], "quantiles": [], "channel_mean": [], "channel_var": [], "sample": []}
            for name in modules}
        self._armed = False
        self._hooks = Hooks(modules, self._hook)

    def _hook(self, name: str, module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if self._armed:
            self._record(name, (inputs[0] if self.where == "input" else output).detach())

    @torch.no_grad()
    def _record(self, name: str, a: torch.Tensor) -> None:
        a = a.float()
        rows = _channels_last_2d(a)  # (values per channel, C)
        d = self.data[name]
        flat = a.flatten()
        d["mean"].append(float(flat.mean()))
        d["std"].append(float(flat.std()))
        if self.quantiles:  # quantiles=() skips the sort, the costly part, for per-step recording
            qs = torch.quantile(flat[: 2 ** 24], torch.tensor(self.quantiles, device=a.device))
            d["quantiles"].append([float(v) for v in qs])
        else:
            d["quantiles"].append([])
        d["channel_mean"].append(rows.mean(0).cpu().tolist())
        d["channel_var"].append(rows.var(0, unbiased=False).cpu().tolist())
        col = rows[:, min(self.channel, rows.shape[1] - 1)]
        idx = torch.linspace(0, len(col) - 1, min(self.sample_size, len(col)), device=col.device).long()
        d["sample"].append(col[idx].cpu().tolist())

    def on_step_start(self, s: StepState) -> None:
        self._armed = True
        self.steps.append(s.step)

    def on_before_update(self, s: StepState) -> None:
        self._armed = False  # only the step's own forward pass, not the probes or evaluations that follow

    def remove(self) -> None:
        """Detach the hooks (the recorded data stays)."""
        self._hooks.remove()

    def result(self) -> dict[str, Any]:
        self.remove()
        return {"steps": self.steps, "quantile_levels": self.quantiles, "layers": self.data}


def layer_array(result: dict[str, Any], layer: str, key: str) -> np.ndarray:
    """One recorded quantity of one layer as an array over recorded steps (e.g. key='channel_mean': (T, C))."""
    layers = result["layers"]
    validate.choice("layer", layer, layers)
    validate.choice("key", key, layers[layer])
    return np.asarray(layers[layer][key], dtype=float)


def negative_share(result: dict[str, Any], layer: str) -> dict[str, Any]:
    """How much of a layer's recorded channel sample (all steps pooled) is below zero: `below` of `n` values, and
    `all` (every value below zero; for a ReLU's input: a dead channel)."""
    validate.choice("layer", layer, result["layers"])
    v = np.concatenate([np.ravel(x) for x in result["layers"][layer]["sample"]] or [np.zeros(0)]).astype(float)
    return dict(below=int(np.sum(v < 0)), n=int(v.size), all=bool(v.size and np.all(v < 0)))


def quantile_drift(result: dict[str, Any], layer: str) -> float:
    """How much a layer's recorded distribution (its 15/50/85 % quantiles) moves per record, relative to its width
    (chapter 2's Fig 1): mean over consecutive records of (|change of the median| + |change of the 15-85% spread|)
    / spread; NaN with fewer than two records."""
    validate.choice("layer", layer, result["layers"])
    q = np.asarray(result["layers"][layer]["quantiles"], dtype=float)  # (T, 3): 15%, 50%, 85%
    if len(q) < 2:
        return float("nan")
    spread = q[:, 2] - q[:, 0]
    return float(np.mean((np.abs(np.diff(q[:, 1])) + np.abs(np.diff(spread))) / np.maximum(spread[1:], 1e-12)))


# -- summaries of a recorder's result (chapters 3 and 4) -------------------------------------------------------
def channel_moment_changes(result: dict[str, Any], layer: str) -> dict[str, list[float]]:
    """Santurkar et al.'s Fig 8 series for one recorded layer, from an `ActivationRecorder` result.

    Per record, averaged over channels: `mean_change` / `var_change`, the |change| of each channel's mean /
    variance since the previous record (one fewer than the records), and `mean_drift` / `var_drift`, the |change|
    since the first record (0 at the first); `std`, the layer's std at each record. Absolute, not relative, values.
    """
    mean, var = layer_array(result, layer, "channel_mean"), layer_array(result, layer, "channel_var")
    out = {"std": layer_array(result, layer, "std").tolist()}
    for name, a in (("mean", mean), ("var", var)):
        out[f"{name}_change"] = np.abs(np.diff(a, axis=0)).mean(1).tolist() if len(a) > 1 else []
        out[f"{name}_drift"] = np.abs(a - a[:1]).mean(1).tolist() if len(a) else []
    return out


def activation_shape_stats(result: dict[str, Any] | None, layer: str) -> dict[str, float]:
    """How Gaussian and how steady one recorded layer is, from an `ActivationRecorder` result (Santurkar Fig 6).

    kurtosis: excess kurtosis of the sampled channel at the last record (0 for a Gaussian), with kurtosis_se its
    standard error for a Gaussian sample, sqrt(24 / n). mean_change: the median over pairs of successive records
    of mean_c |change of channel c's mean| / mean_c (channel c's std), a change relative to the layer's spread;
    mean_change_se: the standard error of that median from its spread over the pairs, sqrt(pi / 2) s / sqrt(n)
    (NaN with fewer than two pairs: one change carries no estimate of its own noise).
    """
    if not result:
        raise ValueError("result holds no activations: record them (e.g. landscape_run(..., record_activations=True))")
    s = np.asarray(layer_array(result, layer, "sample")[-1], float)
    s = s[np.isfinite(s)]
    z = (s - s.mean()) / max(s.std(), 1e-12)
    means, var = layer_array(result, layer, "channel_mean"), layer_array(result, layer, "channel_var")
    std = np.sqrt(np.maximum(var[:-1], 0)).mean(1)
    change = np.abs(np.diff(means, axis=0)).mean(1) / np.maximum(std, 1e-12)
    se = float(np.sqrt(np.pi / 2) * change.std(ddof=1) / np.sqrt(len(change))) if len(change) > 1 else float("nan")
    return {"kurtosis": float(np.mean(z ** 4) - 3), "kurtosis_se": float(np.sqrt(24 / max(len(s), 1))),
            "mean_change": float(np.median(change)) if len(change) else float("nan"), "mean_change_se": se}
