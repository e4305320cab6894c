"""Argument checks shared by every public function: fail fast, name the parameter, the bad value and what is allowed."""
from __future__ import annotations

import math
from collections.abc import Mapping
from numbers import Integral
from typing import Any, Iterable


def choice(name: str, value: Any, allowed: Iterable[Any]) -> Any:
    """Return `value` if it is one of `allowed`, else raise a ValueError listing the allowed values."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    return value


def positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """A finite real number > 0 (or >= 0 with allow_zero)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number {'>= 0' if allow_zero else '> 0'}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name}={value!r} must be {'>= 0' if allow_zero else '> 0'}")
    return float(value)


def integer(name: str, value: Any, *, minimum: int = 1) -> int:
    """An int >= minimum (bools are rejected: True is not a depth)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    if value < minimum:
        raise ValueError(f"{name}={value!r} must be an integer >= {minimum}")
    return value


def in_range(name: str, value: Any, low: float, high: float) -> float:
    """A finite number with low <= value <= high."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name}={value!r} must be a finite number in [{low}, {high}]")
    if not low <= value <= high:
        raise ValueError(f"{name}={value!r} must be in [{low}, {high}]")
    return float(value)


def seeds(name: str, value: Any) -> list[int]:
    """A non-empty list of distinct non-negative int seeds (a single int is accepted as one seed)."""
    vals = [value] if isinstance(value, int) and not isinstance(value, bool) else value
    if not isinstance(vals, (list, tuple)) or not vals:
        raise ValueError(f"{name}={value!r} must be a non-negative int or a non-empty list of them")
    for v in vals:
        integer(name, v, minimum=0)
    if len(set(vals)) != len(vals):
        raise ValueError(f"{name}={value!r} must not repeat a seed")
    return list(vals)


def nonempty(name: str, value: Any) -> list[Any]:
    """A non-empty sequence (list, tuple, range, array; not a string, a dict or a single number), as a list."""
    if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or len(value) == 0:
        raise ValueError(f"{name}={value!r} must be a non-empty list")
    return list(value)


def int_list(name: str, value: Any, low: int = 1, high: int | None = None) -> list[int]:
    """A non-empty list of ints with low <= v (<= high when given); floats such as 2.5 are rejected, not truncated."""
    vals = nonempty(name, value)
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, Integral) or v < low or (high is not None and v > high):
            bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
            raise ValueError(f"{name}={v!r} must be an integer {bound} ({name} must be a non-empty list of them, "
                             f"got {value!r})")
    return [int(v) for v in vals]


def device(name: str, value: Any, allowed: Iterable[str] = ("cpu", "cuda")) -> str:
    """One of `allowed` ('cpu', 'cuda') that this machine has: 'cuda' without a CUDA device is an error here,
    not deep inside torch."""
    choice(name, value, allowed)
    if value == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"{name}='cuda' was asked for but no CUDA device is available; use {name}='cpu'")
    return value


def split_data(name: str, split: Any, *, class_labels: bool, n_classes: int | None = None,
               device: Any = None) -> None:
    """A non-empty split: x a float tensor (N, ...) with N >= 1, y with N rows, int64 class labels in
    [0, n_classes) when class_labels (only >= 0 when n_classes is None), else floats; both on `device` if given."""
    import torch

    x, y = getattr(split, "x", None), getattr(split, "y", None)
    if not isinstance(x, torch.Tensor) or not isinstance(y, torch.Tensor):
        raise ValueError(f"{name} must hold tensors x and y, got {type(split).__name__}")
    if not x.is_floating_point() or x.dim() < 2:
        raise ValueError(f"{name}.x must be a float tensor of shape (N, ...) with N examples, "
                         f"got {x.dtype} of shape {tuple(x.shape)}")
    if len(x) == 0:
        raise ValueError(f"{name} is empty: {name}.x has shape {tuple(x.shape)}")
    if y.dim() == 0 or len(y) != len(x):
        raise ValueError(f"{name}.y must have one row per example of {name}.x ({len(x)}), got shape {tuple(y.shape)}")
    if class_labels:
        if y.dtype != torch.int64 or y.dim() != 1:
            raise ValueError(f"{name}.y must be int64 class labels of shape (N,), got {y.dtype} of shape {tuple(y.shape)}")
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or (n_classes is not None and hi >= n_classes):
            allowed = f"[0, {n_classes})" if n_classes is not None else ">= 0"
            raise ValueError(f"{name}.y holds labels from {lo} to {hi}; class labels must be {allowed}")
    elif not y.is_floating_point():
        raise ValueError(f"{name}.y must be a float tensor of regression targets, got {y.dtype}")
    if device is not None and (x.device != device or y.device != device):
        raise ValueError(f"the model's parameters are on {device} but {name} is on {x.device} (x) / {y.device} (y): "
                         f"move the model with model.to(...) or the split with Split.to(...)")


def _lr_pair(name: str, value: Any) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or value[0] == value[1]:
        raise ValueError(f"{name}={value!r} must be a list of two different learning rates")
    for lr in value:
        positive(name, lr)


def _increasing_pair(name: str, value: Any) -> None:
    _lr_pair(name, value)
    if not value[0] < value[1]:
        raise ValueError(f"{name}={value!r}: the first must be smaller than the second")


def _range(name: str, value: Any) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value) or not 0 < value[0] <= value[1]:
        raise ValueError(f"{name}={value!r} must be [low, high] with 0 < low <= high")


def _resnet_depth(name: str, value: Any) -> None:
    integer(name, value, minimum=8)
    if (value - 2) % 6:
        raise ValueError(f"{name}={value!r} must be 6n + 2 (e.g. 8, 14, 20, 32, 56, 110)")


RULES = {
    "count": lambda n, v: integer(n, v),
    "count>=2": lambda n, v: integer(n, v, minimum=2),
    "resnet depth": _resnet_depth,
    "positive": lambda n, v: positive(n, v),
    "positive list": lambda n, v: [positive(n, x) for x in nonempty(n, v)],
    "nonnegative list": lambda n, v: [positive(n, x, allow_zero=True) for x in nonempty(n, v)],
    "lr pair": _lr_pair,
    "increasing lr pair": _increasing_pair,
    "range": _range,
}


def parameters(**checks: tuple[Any, str]) -> None:
    """Check a chapter's `parameters` cell in one call, before any run: `name=(value, rule)` with a rule of
    `RULES`; a value of None means "the profile's setting" and is not checked. Every chapter uses this."""
    for name, (value, rule) in checks.items():
        choice(f"the rule for {name}", rule, RULES)
        if value is not None:
            RULES[rule](name, value)
