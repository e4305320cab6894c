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
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import validate
from .data import Dataset, Split, augment as augment_batch, batches
from .modes import temporary_mode
from .norms import is_norm
from .profiles import check_device, smoke

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


def cpu_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """True when this CPU computes bfloat16 natively (AVX512-BF16 or AMX): only then is bf16 autocast faster.
    torch before 2.4 has no query for it, so the CPU's flags (Linux) answer then; elsewhere it stays off."""
    checks = [getattr(torch.cpu, c, None) for c in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]
    if any(c is not None for c in checks):
        return any(c() for c in checks if c is not None)
    try:
        flags = Path(cpuinfo).read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


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
    each evaluation batch with its own statistics (train-mode BN, noise off), restoring every buffer after.
    Smoke mode (bnutils.profiles) evaluates the first `eval_batches` batches of at most `batch` examples only."""
    validate.choice("loss", loss, LOSSES)
    validate.choice("stats", stats, ("running", "batch"))
    validate.integer("batch_size", batch_size)
    if len(split) == 0:
        raise ValueError("split is empty: there is nothing to evaluate on")
    total_loss, correct, n = 0.0, 0, 0
    caps = smoke()
    if caps:
        batch_size = min(batch_size, caps.batch)
    end = min(len(split), caps.eval_batches * batch_size) if caps else len(split)
    if split.x.dim() == 4:
        check_device("the evaluated model", model)
        check_device("an evaluation batch", split.x, split.y)
    with temporary_mode(model, train=stats == "batch", keep_buffers=True):
        for i in range(0, end, batch_size):
            x, y = split.x[i:i + batch_size], split.y[i:i + batch_size]
            out = model(x).float()
            total_loss += float(LOSSES[loss](out, y)) * (len(x) if loss != "sum_squared" else 1)
            if loss == "cross_entropy":
                correct += int((out.argmax(1) == y).sum())
            n += len(x)
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
    amp=True trains in mixed precision: float16 autocast with a GradScaler on a GPU (callbacks see unscaled
    gradients), bfloat16 autocast on a CPU that computes it natively (`cpu_bf16()`; elsewhere amp is off).
    Callbacks run outside autocast, so metrics are float32. channels_last=None (the default) stores conv nets'
    weights and images channels-last, the fast layout for tensor cores and for oneDNN on CPUs (a layout change:
    the same numbers to float tolerance).
    The model is trained in place on the device its parameters are on; the data must be on that device too.
    Smoke mode (bnutils.profiles) caps `steps` and the batches, and checks that images and model are on the
    profile's device.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not any(True for _ in model.parameters()):
        raise ValueError(f"model ({type(model).__name__}) has no parameters to train")
    if not isinstance(data, Dataset):
        raise ValueError(f"data must be a bnutils.data.Dataset (train and test Splits), got {type(data).__name__}")
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
    if callbacks is not None and not isinstance(callbacks, dict):
        raise ValueError(f"callbacks must be a dict name -> Callback (e.g. {{'ics': cb}}), got {type(callbacks).__name__}")
    callbacks = callbacks or {}
    for name, cb in callbacks.items():
        if not isinstance(cb, Callback):
            raise ValueError(f"callbacks[{name!r}] must be a bnutils.train.Callback, got {type(cb).__name__}")
    head = model[-1] if isinstance(model, nn.Sequential) and len(model) else getattr(model, "head", None)
    labels = dict(class_labels=loss == "cross_entropy",  # n_classes: the output width, where it is cheap to know
                  n_classes=head.out_features if isinstance(head, nn.Linear) else None,
                  device=next(model.parameters()).device)
    validate.split_data("data.train", data.train, **labels)
    if eval_every:
        validate.split_data("data.test", data.test, **labels)
    if augment and data.train.x.dim() != 4:
        raise ValueError(f"augment=True needs images (N, C, H, W), got data.train.x of shape {tuple(data.train.x.shape)}")
    if any(is_norm(m) for m in model.modules()):
        if (batch_size or len(data.train)) < 2:
            raise ValueError(f"batch_size={batch_size!r} with {len(data.train)} training examples gives batches of 1: "
                             "the model's batch-statistics norm layers need batches of at least 2")
        if eval_every and eval_stats == "batch" and len(data.test) % 1000 == 1:  # evaluate's batches of 1000
            raise ValueError(f"eval_stats='batch' with {len(data.test)} test examples leaves a final evaluation batch "
                             "of 1 (batch_size 1000), which batch-statistics norm layers cannot normalize")

    caps = smoke()
    if caps:
        steps = min(steps, caps.steps)
    images = data.train.x.dim() == 4  # image models run on the profile's device (the DLN may stay on the CPU)
    if images:
        check_device("the trained model", model)
    config = dict(steps=steps, lr=lr, batch_size=batch_size, momentum=momentum, weight_decay=weight_decay,
                  lr_drop=list(lr_drop) if lr_drop else None, loss=loss, seed=seed, augment=augment)
    run = Run(config=config)
    device = next(model.parameters()).device
    seed_everything(seed)
    loss_fn = LOSSES[loss]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    use_amp = amp and (device.type == "cuda" or (device.type == "cpu" and cpu_bf16()))
    if channels_last is None:
        channels_last = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    scaler = torch.amp.GradScaler("cuda") if use_amp and device.type == "cuda" else None
    low = torch.float16 if device.type == "cuda" else torch.bfloat16
    autocast = (lambda: torch.autocast(device.type, dtype=low)) if use_amp else nullcontext
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
        if caps:
            x, y = x[:caps.batch], y[:caps.batch]
        if augment:
            x = augment_batch(x, gen)
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if images:
            check_device(f"the training batch of step {step}", x, y)
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
