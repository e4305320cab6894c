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
