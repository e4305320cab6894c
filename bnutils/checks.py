"""Self-checks for the exercises: a student calls one on their own result and hears right, wrong, or how far off.

Used by the chapters' exercises (each names the check it offers). Answers are derived in the solutions; the
checks only compare, so they never give the answer away beyond "right" or "how far off".
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from . import validate

# Exercises with one numeric answer: (answer, relative tolerance, what the number is).
ANSWERS: dict[str, tuple[float, float, str]] = {
    "ch2.first_layer_shift": (0.0, 0.0, "the ICS l2 difference of layer #1"),
    "ch4.quadratic_smoothness": (3.0, 1e-6, "K for H = diag(1, 2, 3) and g along the third axis"),
    "ch5.batch_for_half_lr": (32.0, 0.0, "the batch size that keeps eta^2/|B| at lr 0.05 (from lr 0.1, |B| 128)"),
}


def answer(exercise: str, value: float) -> str:
    """'right', or 'wrong' with how far off, for an exercise with one numeric answer (ANSWERS)."""
    validate.choice("exercise", exercise, ANSWERS)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"value={value!r} must be a finite number")
    want, rel, what = ANSWERS[exercise]
    if abs(value - want) <= rel * abs(want) or value == want:
        return f"right: {what} is {value:g}"
    off = f"{abs(value - want) / abs(want):.0%}" if want else f"{abs(value - want):.3g}"
    return f"wrong: {what} is not {value:g} (off by {off}; {'too large' if value > want else 'too small'})"


def bn_backward(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]) -> str:
    """Chapter 1, exercise 1: `fn(x, gamma, g, eps)` must return dL/dx of BatchNorm (train mode) on x of shape
    (m, C), per-channel scale gamma, upstream gradient g. Compared with autograd on random batches."""
    worst = 0.0
    for seed, m in ((0, 2), (1, 16), (2, 64)):
        gen = torch.Generator().manual_seed(seed)
        x = (torch.randn(m, 3, generator=gen, dtype=torch.float64) * 2 + 1).requires_grad_()
        gamma = torch.rand(3, generator=gen, dtype=torch.float64) + 0.5
        g = torch.randn(m, 3, generator=gen, dtype=torch.float64)
        eps = 1e-5
        mean, var = x.mean(0), x.var(0, unbiased=False)
        (((x - mean) / torch.sqrt(var + eps) * gamma) * g).sum().backward()
        got = fn(x.detach(), gamma, g, eps)
        if not isinstance(got, torch.Tensor) or got.shape != x.shape:
            return f"wrong: fn must return a tensor of shape {tuple(x.shape)}, got {getattr(got, 'shape', type(got))}"
        worst = max(worst, float((got.double() - x.grad).abs().max() / x.grad.abs().max()))
    return "right: matches autograd" if worst < 1e-6 else f"wrong: off from autograd by up to {worst:.1%} (relative)"
