"""Running a model for a measurement without disturbing it: the states a measurement puts a model in, always undone.

- `Hooks`: forward (or forward-pre) hooks on several modules, removed on exit, also on an error (after fastai's
  course22p2 miniai `Hooks`).
- `temporary_mode`: train or eval mode with Santurkar's noise on or off, and optionally every buffer (BN's running
  statistics) kept; on exit every submodule's mode, and the buffers, are as they were.
- `rng_state` / `set_rng_state` / `rng_restored`: the global RNG state (CPU and CUDA), so a measurement can replay a
  training step's random draws (its noise) and leave the RNG as training expects it.
"""
from __future__ import annotations

from contextlib import contextmanager
from functools import partial
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import torch
import torch.nn as nn

from .norms import SanturkarNoise

RngState = tuple[torch.Tensor, Optional[list[torch.Tensor]]]  # CPU, CUDA devices (None without CUDA)


class Hooks:
    """Call `fn(key, module, inputs, output)` after the forward of each of `modules` (`fn(key, module, inputs)`
    before it with pre=True). `modules` maps keys to modules, or is a sequence of modules keyed by position.
    As in PyTorch, `fn` returns None; anything else replaces the module's inputs (pre) or output.

    Use it as a context manager (the hooks go on exit, even on an error), or call remove() for hooks that stay
    armed across training steps.
    """

    def __init__(self, modules: Mapping[Any, nn.Module] | Iterable[nn.Module], fn: Callable[..., None], *,
                 pre: bool = False):
        items = modules.items() if isinstance(modules, (Mapping, nn.ModuleDict)) else enumerate(modules)
        self._handles = [(m.register_forward_pre_hook if pre else m.register_forward_hook)(partial(fn, key))
                         for key, m in items]

    def remove(self) -> None:
        """Detach every hook (idempotent)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "Hooks":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()


@contextmanager
def temporary_mode(model: nn.Module, *, train: bool, noise: bool = False,
                   keep_buffers: bool = False) -> Iterator[nn.Module]:
    """Run the block with `model` in train (train=True) or eval mode and its SanturkarNoise layers on (noise=True)
    or off; with keep_buffers, every buffer (running statistics, batch counters) is restored afterwards.

    On exit, also on an exception, each submodule gets back its own mode (not just the top module's), so a model
    whose parts were in different modes comes back exactly as it was.
    """
    modes = [(m, m.training) for m in model.modules()]
    saved = {name: b.clone() for name, b in model.named_buffers()} if keep_buffers else None
    try:
        model.train(train)
        for m in model.modules():
            if isinstance(m, SanturkarNoise):
                m.train(noise)
        yield model
    finally:
        if saved is not None:
            with torch.no_grad():
                for name, b in model.named_buffers():
                    b.copy_(saved[name])
        for m, training in modes:
            m.training = training


def rng_state() -> RngState:
    """The global RNG state now: the CPU generator's, and every CUDA device's when CUDA is available."""
    return torch.get_rng_state(), (torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def set_rng_state(state: RngState) -> None:
    """Put the global RNG back to a state from `rng_state()`: the next random draws repeat the ones after it."""
    torch.set_rng_state(state[0])
    if state[1] is not None:
        torch.cuda.set_rng_state_all(state[1])


@contextmanager
def rng_restored() -> Iterator[RngState]:
    """Run the block, then put the global RNG back to the state it had before (which the block gets): random draws
    inside, e.g. a measurement's forward passes through noisy layers, do not shift the draws of training."""
    state = rng_state()
    try:
        yield state
    finally:
        set_rng_state(state)
