"""One plain SGD training loop for every chapter, with metric callbacks and divergence as data, not a crash.

`train(...)` records the loss and accuracy of every step, evaluates on the test split every `eval_every`
steps, and calls the chapter's callbacks around each update. A loss that becomes non-finite or grows past
`divergence_factor` times its first value stops the run and marks it diverged.
"""
from __future__ import annotations

import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import validate
from .data import Dataset, Split, augment as augment_batch, batches
from .norms import SanturkarNoise, is_norm

LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "sum_squared": lambda out, y: (out - y).pow(2).sum(),  # ||W x - A x||^2 over the whole batch, as in the DLN
    "mse": F.mse_loss,
}


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so that a run repeats exactly on the same device."""
    validate.integer("seed", seed, minimum=0)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(device: str = "auto") -> torch.device:
    """'auto' is CUDA when available, else the CPU."""
    validate.choice("device", device, ("auto", "cpu", "cuda"))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was asked for but no CUDA device is available; use 'auto' or 'cpu'")
    return torch.device(device)


@dataclass
class StepState:
    """What a callback sees at a step: the model, the step's batch, its loss, the optimizer and the current lr."""

    step: int
    model: nn.Module
    x: torch.Tensor
    y: torch.Tensor
    loss: torch.Tensor | None
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    optimizer: torch.optim.Optimizer
    lr: float


class Callback:
    """Base class for per-step measurements. The loop calls the hooks only on steps where step % every == 0."""

    every: int = 1

    def on_step_start(self, s: StepState) -> None:
        """Before the forward pass."""

    def on_before_update(self, s: StepState) -> None:
        """After backward (p.grad holds this batch's gradient), before the optimizer step."""

    def on_after_update(self, s: StepState) -> None:
        """After the optimizer step."""

    def result(self) -> dict[str, Any]:
        """What was measured, as JSON-able data (lists, numbers, nested dicts)."""
        return {}


@dataclass
class Run:
    """The record of one training run. Diverged runs keep what they recorded up to the divergence."""

    config: dict[str, Any]
    loss: list[float] = field(default_factory=list)  # per step, training batch
    acc: list[float] = field(default_factory=list)  # per step, training batch (NaN for regression)
    evals: list[dict[str, float]] = field(default_factory=list)  # {step, test_loss, test_acc, train_loss, train_acc}
    diverged: bool = False
    diverged_at: int | None = None
    seconds: float = 0.0
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def final_test_acc(self) -> float:
        """Test accuracy at the end (NaN when the run diverged: a diverged net has no accuracy to speak of)."""
        return float("nan") if self.diverged or not self.evals else self.evals[-1]["test_acc"]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Run":
        return cls(**d)


@torch.no_grad()
def evaluate(model: nn.Module, split: Split, *, loss: str = "cross_entropy", stats: str = "running",
             batch_size: int = 1000) -> dict[str, float]:
    """Loss and accuracy on `split`. stats='running' is eval mode (population statistics); 'batch' normalizes
    each evaluation batch with its own statistics (train-mode BN, noise off), restoring every buffer after."""
    validate.choice("loss", loss, LOSSES)
    validate.choice("stats", stats, ("running", "batch"))
    validate.integer("batch_size", batch_size)
    was_training = model.training
    saved = {k: v.clone() for k, v in model.named_buffers()}
    model.train(stats == "batch")
    for m in model.modules():
        if isinstance(m, SanturkarNoise):
            m.eval()
    total_loss, correct, n = 0.0, 0, 0
    for i in range(0, len(split), batch_size):
        x, y = split.x[i:i + batch_size], split.y[i:i + batch_size]
        out = model(x).float()
        total_loss += float(LOSSES[loss](out, y)) * (len(x) if loss != "sum_squared" else 1)
        if loss == "cross_entropy":
            correct += int((out.argmax(1) == y).sum())
        n += len(x)
    model.load_state_dict(saved, strict=False)
    model.train(was_training)
    mean_loss = total_loss / n if loss != "sum_squared" else total_loss
    return {"loss": mean_loss, "acc": correct / n if loss == "cross_entropy" else float("nan")}


def train(model: nn.Module, data: Dataset, *, steps: int, lr: float, batch_size: int | None = 128,
          momentum: float = 0.0, weight_decay: float = 0.0, lr_drop: Sequence[float] | None = None,
          loss: str | None = None, eval_every: int | None = None, eval_stats: str = "running",
          callbacks: dict[str, Callback] | None = None, seed: int = 0, augment: bool = False,
          divergence_factor: float = 1e3, check_every: int = 10, amp: bool = False,
          channels_last: bool | None = None, progress: bool | None = None, desc: str = "") -> Run:
    """Train `model` with SGD on `data` for `steps` steps and return the Run.

    lr_drop=(fraction, factor) multiplies the lr by `factor` after `fraction` of the steps (Bjorck et al. drop
    it once, halfway). loss defaults to cross-entropy for classification and 'sum_squared' for regression.
    `callbacks` maps a name to a Callback; its result() is stored under that name in run.metrics.
    progress=None shows a tqdm.auto bar in live sessions only (never in the static book).
    On a GPU: amp=True trains in float16 autocast with a GradScaler (callbacks see unscaled gradients);
    channels_last=None (the default) stores conv nets' weights and images channels-last there, the fast layout
    for tensor cores (on a CPU it stays off: a layout change, same numbers to float tolerance, no speed-up).
    The model is trained in place on the device its parameters are on; the data must be on that device too.
    """
    validate.integer("steps", steps)
    validate.positive("lr", lr)
    if batch_size is not None:
        validate.integer("batch_size", batch_size)
    validate.in_range("momentum", momentum, 0.0, 0.999999)
    validate.positive("weight_decay", weight_decay, allow_zero=True)
    if lr_drop is not None:
        if len(lr_drop) != 2:
            raise ValueError(f"lr_drop={lr_drop!r} must be a pair (fraction of steps, factor)")
        validate.in_range("lr_drop fraction", lr_drop[0], 0.0, 1.0)
        validate.positive("lr_drop factor", lr_drop[1])
    loss = loss or ("cross_entropy" if data.task == "classification" else "sum_squared")
    validate.choice("loss", loss, LOSSES)
    if eval_every is not None:
        validate.integer("eval_every", eval_every)
    validate.choice("eval_stats", eval_stats, ("running", "batch"))
    validate.integer("seed", seed, minimum=0)
    validate.positive("divergence_factor", divergence_factor)
    validate.integer("check_every", check_every)
    callbacks = callbacks or {}
    for name, cb in callbacks.items():
        if not isinstance(cb, Callback):
            raise ValueError(f"callbacks[{name!r}] must be a bnutils.train.Callback, got {type(cb).__name__}")

    config = dict(steps=steps, lr=lr, batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
                  lr_drop=list(lr_drop) if lr_drop else None, loss=loss, seed=seed, augment=augment)
    run = Run(config=config)
    device = next(model.parameters()).device
    seed_everything(seed)
    loss_fn = LOSSES[loss]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    use_amp = amp and device.type == "cuda"
    if channels_last is None:
        channels_last = device.type == "cuda" and any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    autocast = (lambda: torch.autocast("cuda", dtype=torch.float16)) if use_amp else nullcontext
    if channels_last:
        model.to(memory_format=torch.channels_last)
    batch_iter = batches(data.train, batch_size, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1)
    losses = torch.full((steps,), float("nan"), device=device)
    accs = torch.full((steps,), float("nan"), device=device)
    first_loss: float | None = None
    drop_at = int(lr_drop[0] * steps) if lr_drop else None

    bar = None
    if progress is None:
        from .interactive import is_static
        progress = not is_static()  # a progress bar saved into the static book is junk
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=steps, desc=desc or "training", leave=False)
    t0 = time.perf_counter()
    model.train()
    done = 0
    for step in range(steps):
        if drop_at is not None and step == drop_at:
            for g in opt.param_groups:
                g["lr"] = lr * lr_drop[1]
        x, y = next(batch_iter)
        if augment:
            x = augment_batch(x, gen)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        active = [cb for cb in callbacks.values() if step % cb.every == 0]
        state = StepState(step, model, x, y, None, loss_fn, opt, opt.param_groups[0]["lr"])
        for cb in active:
            cb.on_step_start(state)
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = model(x)
            batch_loss = loss_fn(out.float(), y)
        state.loss = batch_loss.detach()
        if scaler:
            scaler.scale(batch_loss).backward()
            scaler.unscale_(opt)
        else:
            batch_loss.backward()
        for cb in active:
            cb.on_before_update(state)
        if scaler:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        for cb in active:
            cb.on_after_update(state)
        losses[step] = batch_loss.detach()
        if loss == "cross_entropy":
            accs[step] = (out.detach().argmax(1) == y).float().mean()
        done = step + 1
        if bar:
            bar.update(1)
        last = done == steps
        if done % check_every == 0 or last:
            chunk = losses[:done].cpu()
            if first_loss is None:
                first_loss = float(chunk[0])
            bad = ~torch.isfinite(chunk) | (chunk > divergence_factor * max(first_loss, 1e-12))
            if bool(bad.any()):
                run.diverged, run.diverged_at = True, int(bad.nonzero()[0, 0])
                break
        if eval_every and (done % eval_every == 0 or last):
            ev = evaluate(model, data.test, loss=loss, stats=eval_stats)
            run.evals.append({"step": done, "test_loss": ev["loss"], "test_acc": ev["acc"]})
    if bar:
        bar.close()
    run.seconds = time.perf_counter() - t0
    run.loss = [float(v) for v in losses[:done].cpu()]
    run.acc = [float(v) for v in accs[:done].cpu()]
    run.metrics = {name: cb.result() for name, cb in callbacks.items()}
    return run


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Trailing moving average (NaN-aware within each window) for plotting noisy per-step curves."""
    validate.integer("window", window)
    v = np.asarray(values, dtype=float)
    ok = np.isfinite(v)
    sums = np.cumsum(np.where(ok, v, 0.0))
    counts = np.cumsum(ok)
    lag = lambda a: np.concatenate([np.zeros(window), a[:-window]]) if len(a) > window else np.zeros(len(a))
    s, c = sums - lag(sums), counts - lag(counts)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def norm_layers(model: nn.Module) -> list[nn.Module]:
    """The normalization layers of a model in forward order."""
    return [m for m in model.modules() if is_norm(m)]
