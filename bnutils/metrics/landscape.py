"""Santurkar et al.'s landscape probes: how the loss and its gradient change as we move along the gradient.

At weights w with the step's batch gradient g, the probes evaluate the loss and gradient at w - eta*g for K
step sizes eta (BN in train mode, on the same batch) and report, following Santurkar et al. (2018), Fig 4:
the loss band [min, max] over eta of L(w - eta*g), the gradient-predictiveness band of ||g - g(eta)||, and
the effective smoothness K = max over eta of ||g - g(eta)|| / ||eta*g|| (Santurkar et al.'s "beta-smoothness";
the book keeps beta for BN's shift). The model is never modified: the
probes run through `torch.func.functional_call` on copies of the weights and buffers, so the weights, the
gradients in p.grad and BN's running statistics are exactly as before. Random layers (Santurkar's noise) replay
the step's own draw in every probe, so a probe measures the landscape, not the noise, and the global RNG is
restored after, so training with probes draws exactly the noise it draws without. Cost: K forward+backward
passes on the step's batch, i.e. about K training steps per probed step (measured and reported by `LandscapeProbe`).
"""
from __future__ import annotations

import math
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call, grad_and_value, vmap

from .. import validate
from ..modes import RngState, rng_restored, rng_state, set_rng_state, temporary_mode
from ..train import Callback, StepState

METHODS = ("auto", "vmap", "loop")
Tensors = dict[str, torch.Tensor]


def _uses_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def resolve_method(model: nn.Module, method: str) -> str:
    """'auto' batches the K probes with vmap, except for conv nets on the CPU, where vmap turns each conv into a
    grouped conv that runs slower than a plain loop (BENCHMARKS.md, section 2: VGG-16 at width 1/8 vs the DLN)."""
    validate.choice("method", method, METHODS)
    if method != "auto":
        return method
    on_cpu = next(model.parameters()).device.type == "cpu"
    return "loop" if on_cpu and _uses_conv(model) else "vmap"


def _loss_fn_of(model: nn.Module, loss_fn: Callable) -> Callable:
    def f(params: Tensors, buffers: Tensors, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, (params, buffers), (x,))
        return loss_fn(out.float() if out.dtype in (torch.float16, torch.bfloat16) else out, y)
    return f


def probe_landscape(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable, etas: Sequence[float], *,
                    grads: Tensors | None = None, method: str = "auto", rng: RngState | None = None) -> dict[str, Any]:
    """Loss and gradient at w - eta*g for each eta, and the three summaries of Santurkar et al.'s Fig 4.

    `grads` (parameter name -> gradient) is the step's gradient g; when None it is computed here, on (x, y) with
    BN in train mode. The model's weights, gradients and buffers are left untouched (the probes use copies).
    Every forward pass starts from the RNG state `rng` (the state at the start of the step that computed `grads`:
    noisy layers redraw that step's noise; None: the state now), and the global RNG is left as it was.
    A probe whose loss is not finite is data: its loss is inf and the summaries report inf.
    """
    etas = [validate.positive("etas", float(e), allow_zero=True) for e in etas]
    if not etas:
        raise ValueError("etas must hold at least one step size")
    method = resolve_method(model, method)
    params = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    names = list(params)
    buffers = {n: b.detach() for n, b in model.named_buffers()}
    copy = lambda: {n: b.clone() for n, b in buffers.items()}  # BN updates running stats in place: give it copies
    f = _loss_fn_of(model, loss_fn)
    with temporary_mode(model, train=True, noise=True), rng_restored() as now:
        start = rng if rng is not None else now
        if grads is None:
            set_rng_state(start)
            grads, loss0 = grad_and_value(f)(params, copy(), x, y)
            loss0 = float(loss0)
        else:
            grads = {n: (grads[n] if grads.get(n) is not None else torch.zeros_like(params[n])).detach() for n in names}
            loss0 = float("nan")
        g = torch.cat([grads[n].reshape(-1) for n in names])
        if method == "vmap":
            e = torch.tensor(etas, dtype=g.dtype, device=g.device)
            moved = {n: params[n].unsqueeze(0) - e.view(-1, *[1] * params[n].dim()) * grads[n].unsqueeze(0)
                     for n in names}
            bufs = {n: b.unsqueeze(0).repeat(len(etas), *[1] * b.dim()) for n, b in buffers.items()}
            set_rng_state(start)  # randomness="same": every probe gets the one draw the loop's passes get
            gk, lk = vmap(grad_and_value(f), in_dims=(0, 0, None, None), randomness="same")(moved, bufs, x, y)
            g_eta = torch.cat([gk[n].reshape(len(etas), -1) for n in names], dim=1)
            losses = lk.detach()
        else:
            rows, ls = [], []
            for eta in etas:
                set_rng_state(start)
                gi, li = grad_and_value(f)({n: params[n] - eta * grads[n] for n in names}, copy(), x, y)
                rows.append(torch.cat([gi[n].reshape(-1) for n in names]))
                ls.append(li.detach())
            g_eta, losses = torch.stack(rows), torch.stack(ls)
    return summarize_probe(etas, losses.double().cpu().numpy(), (g_eta - g).double().norm(dim=1).cpu().numpy(),
                           float(g.double().norm()), loss0)


def summarize_probe(etas: Sequence[float], losses: np.ndarray, grad_dists: np.ndarray, grad_norm: float,
                    loss0: float = float("nan")) -> dict[str, Any]:
    """The Fig 4 summaries of one probed step from its raw per-eta losses and gradient distances."""
    etas, losses, dists = np.asarray(etas, float), np.asarray(losses, float), np.asarray(grad_dists, float)
    bad = ~np.isfinite(losses) | ~np.isfinite(dists)
    losses, dists = np.where(bad, np.inf, losses), np.where(bad, np.inf, dists)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(etas > 0, dists / (etas * grad_norm), 0.0)
    ratio = np.where(np.isfinite(ratio), ratio, np.inf)  # a blown-up probe (or gradient) is not smooth
    return {"etas": etas.tolist(), "loss0": loss0, "grad_norm": grad_norm, "losses": losses.tolist(),
            "grad_dists": dists.tolist(), "loss_band": [float(losses.min()), float(losses.max())],
            "grad_band": [float(dists.min()), float(dists.max())], "K": float(ratio.max()),
            "finite": not bool(bad.any())}


class LandscapeProbe(Callback):
    """Probe the landscape every `every` steps, along the step's own gradient, before the update, under the step's
    own noise draw (noisy BN): at eta -> 0 the gradient change goes to 0, and training is unchanged.

    The step sizes are lr * geomspace(eta_range[0], eta_range[1], n_probes) (log-spaced multiples of the
    current learning rate; Santurkar et al. use [lr/2, 4 lr] for VGG and [lr/100, 30 lr] for the DLN).
    result() holds the raw probes per probed step, so any sub-range can be summarised later
    (`landscape_bands`), and the time the probes took.
    """

    def __init__(self, every: int = 50, eta_range: tuple[float, float] = (0.5, 4.0), n_probes: int = 8,
                 method: str = "auto"):
        self.every = validate.integer("every", every)
        if len(eta_range) != 2:
            raise ValueError(f"eta_range={eta_range!r} must be a pair (low, high) of multiples of the lr")
        lo = validate.positive("eta_range", eta_range[0])
        hi = validate.positive("eta_range", eta_range[1])
        if hi < lo:
            raise ValueError(f"eta_range={eta_range!r} must have low <= high")
        self.n_probes = validate.integer("n_probes", n_probes)
        self.method = validate.choice("method", method, METHODS)
        self.rel = np.geomspace(lo, hi, self.n_probes).tolist() if self.n_probes > 1 else [lo]
        self.records: list[dict[str, Any]] = []
        self.seconds = 0.0
        self._rng: RngState | None = None  # the RNG state at the start of the probed step

    def on_step_start(self, s: StepState) -> None:
        self._rng = rng_state()

    def on_before_update(self, s: StepState) -> None:
        t0 = time.perf_counter()
        grads = {n: p.grad for n, p in s.model.named_parameters() if p.requires_grad}
        r = probe_landscape(s.model, s.x, s.y, s.loss_fn, [s.lr * k for k in self.rel], grads=grads,
                            method=self.method, rng=self._rng)
        r["loss0"] = float(s.loss) if s.loss is not None else r["loss0"]
        self.records.append({"step": s.step, "lr": s.lr, **r})
        self.seconds += time.perf_counter() - t0

    def result(self) -> dict[str, Any]:
        keys = ("step", "lr", "loss0", "grad_norm", "losses", "grad_dists")
        return {"eta_rel": self.rel, "seconds": self.seconds,
                **{k: [r[k] for r in self.records] for k in keys}}


def landscape_bands(result: dict[str, Any], max_rel: float | None = None) -> dict[str, np.ndarray]:
    """Per probed step, the Fig 4 summaries over the probes with eta <= max_rel * lr (all probes when None).

    Returns arrays over probed steps: step, loss_lo, loss_hi, grad_lo, grad_hi, K (the effective smoothness).
    """
    rel = np.asarray(result["eta_rel"], float)
    keep = rel <= (max_rel if max_rel is not None else math.inf) * (1 + 1e-9)
    if not keep.any():
        raise ValueError(f"max_rel={max_rel!r} excludes every probe; the smallest probe is {rel.min():g} x lr")
    rows = [summarize_probe(rel[keep] * lr, np.asarray(ls)[keep], np.asarray(gd)[keep], gn)
            for lr, ls, gd, gn in zip(result["lr"], result["losses"], result["grad_dists"], result["grad_norm"])]
    out = {"step": np.asarray(result["step"], int)}
    for key, i, name in (("loss_band", 0, "loss_lo"), ("loss_band", 1, "loss_hi"), ("grad_band", 0, "grad_lo"),
                         ("grad_band", 1, "grad_hi")):
        out[name] = np.asarray([r[key][i] for r in rows], float)
    out["K"] = np.asarray([r["K"] for r in rows], float)
    return out


def band_summary(results: Sequence[dict[str, Any]], max_rel: float | None = None) -> dict[str, float]:
    """Medians over probed steps and seeds of the Fig 4 quantities, from `LandscapeProbe.result()`s (one per seed),
    over the probes with eta <= max_rel * lr.

    loss_spread = loss_hi - loss_lo, grad_hi = the top of the gradient-predictiveness band, K = the effective
    smoothness. Probes after a divergence do not exist; a run whose probes blew up contributes inf.
    """
    validate.nonempty("results", results)
    spread, ghi, k = [], [], []
    for r in results:
        if not r["step"]:
            continue
        b = landscape_bands(r, max_rel)
        with np.errstate(invalid="ignore"):  # inf - inf after a blow-up: counted as inf below
            spread += list(np.nan_to_num(b["loss_hi"] - b["loss_lo"], nan=np.inf))
        ghi += list(b["grad_hi"])
        k += list(b["K"])
    med = lambda v: float(np.median(v)) if v else float("nan")
    return {"loss_spread": med(spread), "grad_hi": med(ghi), "K": med(k)}
