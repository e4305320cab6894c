"""Internal covariate shift measured exactly as Santurkar et al. (2018), Definition 2.1.

For the batch (x_t, y_t) of step t and a monitored layer i (a conv/linear layer, `models.weight_layers`):

    G_i  = grad of L w.r.t. W_i at (W_1^t, ..., W_k^t)
    G'_i = grad of L w.r.t. W_i at (W_1^{t+1}, ..., W_{i-1}^{t+1}, W_i^t, ..., W_k^t)   (same batch)

W^{t+1} is the step's *actual* update (read from the model after the optimizer step, so momentum and weight
decay are included). We report ||G - G'||_2, cos(G, G') and ||G - G'|| / ||G|| per monitored layer.

Our readings, stated once:
- "Earlier layers" means every parameter of every module that runs *before* layer i's conv/linear in the
  forward pass (order recorded with hooks during the step's own forward). So the BN gamma/beta and biases of
  blocks 1..i-1 move to t+1; layer i's own bias and the gamma/beta of its own BN (which act after W_i) stay at t.
- W_i is the layer's weight tensor (not its bias), so nets with and without BN compare like with like.
- `moves="weights"` is the secondary, weights-only reading: of the earlier parameters only the conv/linear weight
  tensors W_1..W_{i-1} move to t+1 (biases and BN's gamma/beta stay at t). The default `moves="all"` is the one above.
- G and G' are computed by the same code, in float32, with BN in train mode on the step's batch (its batch
  statistics), on copies of the BN buffers: running statistics and the optimizer's gradients are untouched.
  Random layers (noisy BN) replay the step's random draws (the RNG state at the start of the step).

Three implementations give the same numbers (to float tolerance, tested):
- `method="prefix"` (chains of layers: VGG, MLP, DLN) runs the moved layers 1..k once, keeping the activation
  entering each monitored layer, then for layer i only the unmoved rest of the net, forward and backward down to
  W_i; G takes one pass for all layers. About a third of the loop's arithmetic, on any device.
- `method="vmap"` stacks the k mixed parameter sets (plus the unmixed one for G) and computes every gradient in one
  `torch.func.vmap(grad(...))` call (batching pays where per-op overhead dominates; on a CPU conv nets suffer).
- `method="loop"` runs one whole forward/backward per monitored layer (its backward stops at layer i): the
  straightforward reference the others are tested against.
`method="auto"` picks prefix for conv nets that are chains (VGG), vmap for nets without convs (the DLN, MLPs: tiny
layers, overhead-bound) and for other conv nets on a GPU, and the loop for other conv nets (ResNet) on a CPU.
"""
from __future__ import annotations

import math
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

from .. import validate
from ..models import stages, weight_layers
from ..modes import Hooks, RngState, rng_state, set_rng_state, temporary_mode
from ..train import Callback, StepState

METHODS = ("auto", "prefix", "vmap", "loop")
REFERENCES = ("recompute", "grad")
MOVES = ("all", "weights")
KEYS = ("l2", "cos", "rel", "g_norm")


class ICS(Callback):
    """Santurkar's internal covariate shift (Definition 2.1) per monitored layer, every `every` steps.

    layers: 1-based indices into `models.weight_layers(model)` ("layer #5" is 5); None monitors all of them.
    method: 'prefix' (shared forward through the moved layers), 'vmap' (all layers in one batched call), 'loop'
    (one whole forward/backward per layer) or 'auto' (see the module docstring).
    reference: 'recompute' computes G with the same code as G' (float32, robust to mixed precision);
    'grad' takes G from p.grad (the training step's own gradient; one pass cheaper).
    chunk_size: for 'vmap', how many parameter sets at once (None: all; lower it to save memory on a GPU).
    moves: which earlier parameters take the step: 'all' (every parameter that runs before W_i: weights, biases,
    BN's gamma/beta; the main reading) or 'weights' (only the conv/linear weights W_1..W_{i-1}; the secondary one).

    result(): steps, loss (the step's training loss), layers (the indices), and per measured step one list
    over layers each of l2 (||G - G'||), cos, rel (||G - G'|| / ||G||) and g_norm (||G||); seconds spent.
    """

    def __init__(self, model: nn.Module, *, layers: Sequence[int] | None = None, every: int = 10,
                 method: str = "auto", reference: str = "recompute", chunk_size: int | None = None,
                 moves: str = "all"):
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.every = validate.integer("every", every)
        self.method = validate.choice("method", method, METHODS)
        self.reference = validate.choice("reference", reference, REFERENCES)
        self.moves = validate.choice("moves", moves, MOVES)
        if chunk_size is not None:
            validate.integer("chunk_size", chunk_size)
        self.chunk_size = chunk_size
        all_layers = weight_layers(model)
        if not all_layers:
            raise ValueError("model has no conv/linear layers to monitor")
        self._chain = stages(model)
        if self.method == "auto":  # measured in bench/run.py (BENCHMARKS.md, section 3)
            on_cuda = next(model.parameters()).device.type == "cuda"
            conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
            self.method = ("prefix" if self._chain is not None else "loop") if conv and not on_cuda else \
                ("prefix" if conv and self._chain is not None else "vmap")
        if self.method == "prefix" and self._chain is None:
            raise ValueError(f"method='prefix' needs a model that is a chain of layers ({type(model).__name__} is not); "
                             f"use one of {METHODS[2:]}")
        if layers is None:
            layers = list(range(1, len(all_layers) + 1))
        if isinstance(layers, (int, str)) or not len(layers):
            raise ValueError(f"layers={layers!r} must be a non-empty list of layer numbers (1-based)")
        for i in layers:
            validate.integer("layers", i)
            if i > len(all_layers):
                raise ValueError(f"layers={list(layers)!r}: the model has only {len(all_layers)} conv/linear layers")
        if len(set(layers)) != len(layers):
            raise ValueError(f"layers={list(layers)!r} must not repeat a layer")
        self.model = model
        self.layers = sorted(layers)
        module_name = {id(m): n for n, m in model.named_modules()}
        self.weight_names = [f"{module_name[id(all_layers[i - 1])]}.weight" for i in self.layers]
        self._layer_modules = [module_name[id(all_layers[i - 1])] for i in self.layers]
        self._movable = None if self.moves == "all" else {f"{module_name[id(m)]}.weight" for m in all_layers}
        self._order: dict[str, int] | None = None  # module name -> first call index in the forward pass
        self._hooks: Hooks | None = None  # armed for the first measured step's forward pass only
        self._old: dict[str, torch.Tensor] = {}
        self._grad: dict[str, torch.Tensor] = {}
        self._rng: RngState | None = None  # the RNG state at the start of the measured step
        self.steps: list[int] = []
        self.loss: list[float] = []
        self.data: dict[str, list] = {"l2": [], "cos": [], "rel": [], "g_norm": []}
        self.seconds = 0.0

    # -- forward order -------------------------------------------------------------------------------------
    def _arm_order_hooks(self) -> None:
        order: dict[str, int] = {}
        self._order_tmp = order

        def pre(name: str, _m: nn.Module, _inp: tuple) -> None:
            order.setdefault(name, len(order))

        with_params = {name: m for name, m in self.model.named_modules()
                       if any(True for _ in m.parameters(recurse=False))}
        self._hooks = Hooks(with_params, pre, pre=True)

    def _disarm(self) -> None:
        if self._hooks is not None:
            self._hooks.remove()
            self._hooks = None

    def _earlier(self) -> list[set[str]]:
        """For each monitored layer, the names of the parameters that run before it (they move to t+1)."""
        order = self._order or {}
        out = []
        for mod in self._layer_modules:
            if mod not in order:
                raise RuntimeError(f"layer {mod!r} was not called in the forward pass; cannot place it")
            k = order[mod]
            out.append({n for n, _ in self.model.named_parameters()
                        if order.get(n.rsplit(".", 1)[0] if "." in n else "", math.inf) < k})
        return out

    # -- callback hooks ------------------------------------------------------------------------------------
    def on_step_start(self, s: StepState) -> None:
        if self._order is None:
            self._arm_order_hooks()
        self._rng = rng_state()

    def on_before_update(self, s: StepState) -> None:
        if self._hooks is not None:
            self._disarm()
            self._order = dict(self._order_tmp)
            self._earlier_sets = self._earlier()
            self._moved_sets = [e if self._movable is None else e & self._movable for e in self._earlier_sets]
            if self.method == "prefix":
                self._starts = self._plan_prefix()
        t0 = time.perf_counter()
        self._old = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        if self.reference == "grad":
            params = dict(self.model.named_parameters())
            self._grad = {}
            for w in self.weight_names:
                if params[w].grad is None:
                    raise RuntimeError(f"{w} has no gradient: is it trained?")
                self._grad[w] = params[w].grad.detach().clone()
        self.seconds += time.perf_counter() - t0

    def on_after_update(self, s: StepState) -> None:
        t0 = time.perf_counter()
        new = {n: p.detach() for n, p in self.model.named_parameters()}
        g, g_prime = self.compute(s.x, s.y, s.loss_fn, self._old, new)
        self.record(s.step, float(s.loss) if s.loss is not None else math.nan, g, g_prime)
        self._old = {}
        self.seconds += time.perf_counter() - t0

    # -- the measurement -------------------------------------------------------------------------------------
    def _mixed(self, old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return [{n: (new[n] if n in moved else old[n]) for n in old} for moved in self._moved_sets]

    def _replay_rng(self) -> None:
        if self._rng is not None:
            set_rng_state(self._rng)

    def compute(self, x: torch.Tensor, y: torch.Tensor, loss_fn, old: dict[str, torch.Tensor],
                new: dict[str, torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """G and G' (one tensor per monitored layer) for the batch (x, y), weights `old` (t) and `new` (t+1)."""
        if self._order is None:
            raise RuntimeError("the forward order is unknown: ICS.compute needs one training step first")
        model = self.model
        buffers = {n: b.detach() for n, b in model.named_buffers()}
        sets = self._mixed(old, new)
        want_ref = self.reference == "recompute"
        with temporary_mode(model, train=True, noise=True), \
                torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []), \
                torch.autocast(x.device.type, enabled=False):
            if self.method == "prefix":
                if self._movable is not None:  # the prefix's stages hold exactly the earlier parameters: move some
                    new = {n: (new[n] if n in self._movable else old[n]) for n in old}
                g_prime, g = self._grads_prefix(old, new, buffers, x, y, loss_fn, want_ref)
            elif self.method == "loop":
                g_prime = []
                for w, ps in zip(self.weight_names, sets):
                    g_prime.append(self._grad_loop(ps, buffers, w, x, y, loss_fn))
                g = [self._grad_loop(old, buffers, w, x, y, loss_fn) for w in self.weight_names] \
                    if want_ref else None
            else:
                g_prime, g = self._grad_vmap(old, sets, buffers, x, y, loss_fn, want_ref)
        if not want_ref:
            g = [self._grad[w] for w in self.weight_names]
        return g, g_prime

    def _grad_loop(self, params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor], w: str,
                   x: torch.Tensor, y: torch.Tensor, loss_fn) -> torch.Tensor:
        self._replay_rng()
        p = dict(params)
        p[w] = p[w].clone().requires_grad_(True)
        b = {n: v.clone() for n, v in buffers.items()}  # BN updates its running stats in place: on copies
        with torch.enable_grad():
            out = functional_call(self.model, (p, b), (x,))
            loss = loss_fn(out.float(), y)
            return torch.autograd.grad(loss, p[w])[0].detach()

    # -- method="prefix" ------------------------------------------------------------------------------------------
    def _plan_prefix(self) -> list[int]:
        """The chain stage at which each monitored layer starts; checks that the stages before it hold exactly the
        parameters Definition 2.1 moves (those that run before the layer), so the shared prefix is exact."""
        names = [n for n, _ in self.model.named_parameters()]
        starts = []
        for mod, earlier in zip(self._layer_modules, self._earlier_sets):
            s = next((k for k, (name, _) in enumerate(self._chain)
                      if name and (mod == name or mod.startswith(name + "."))), None)
            before = {n for n in names for name, _ in self._chain[:s] if name and n.startswith(name + ".")} \
                if s is not None else None
            if s is None or before != earlier:
                raise RuntimeError(f"layer {mod!r} does not start a stage of the chain: use method='loop' or 'vmap'")
            starts.append(s)
        return starts

    def _run_chain(self, first: int, last: int, h: torch.Tensor, params: dict[str, torch.Tensor],
                   buffers: dict[str, torch.Tensor]) -> torch.Tensor:
        """Stages first..last-1 of the chain applied to h with the given parameters and buffers (qualified names)."""
        for name, mod in self._chain[first:last]:
            if not name:
                h = mod(h)
                continue
            pfx = name + "."
            sub = lambda d: {k[len(pfx):]: v for k, v in d.items() if k.startswith(pfx)}
            h = functional_call(mod, (sub(params), sub(buffers)), (h,))
        return h

    def _grads_prefix(self, old, new, buffers, x, y, loss_fn, want_ref):
        n = len(self._chain)
        copy = lambda: {k: v.clone() for k, v in buffers.items()}  # BN updates its running stats in place
        self._replay_rng()
        entering: dict[int, tuple[torch.Tensor, tuple]] = {}
        h, bufs = x, copy()
        with torch.no_grad():  # the moved layers, once: the activation (and RNG state) entering each monitored layer
            for s in range(max(self._starts) + 1):
                if s in self._starts:
                    entering[s] = (h, rng_state())
                h = self._run_chain(s, s + 1, h, new, bufs)
        g_prime = []
        with torch.enable_grad():
            for w, s in zip(self.weight_names, self._starts):
                h, rng = entering[s]
                set_rng_state(rng)
                p = dict(old)
                p[w] = old[w].clone().requires_grad_(True)
                loss = loss_fn(self._run_chain(s, n, h, p, copy()).float(), y)
                g_prime.append(torch.autograd.grad(loss, p[w])[0].detach())
            g = None
            if want_ref:  # G for every monitored layer from one unmoved pass
                self._replay_rng()
                p = dict(old)
                for w in self.weight_names:
                    p[w] = old[w].clone().requires_grad_(True)
                loss = loss_fn(self._run_chain(0, n, x, p, copy()).float(), y)
                g = [t.detach() for t in torch.autograd.grad(loss, [p[w] for w in self.weight_names])]
        return g_prime, g

    # -- method="vmap" --------------------------------------------------------------------------------------------
    def _grad_vmap(self, old, sets, buffers, x, y, loss_fn, want_ref):
        all_sets = ([old] if want_ref else []) + sets
        n = len(all_sets)
        names = list(old)
        weights = set(self.weight_names)
        stacked_w = {w: torch.stack([s[w] for s in all_sets]) for w in self.weight_names}
        stacked_rest = {k: torch.stack([s[k] for s in all_sets]) for k in names if k not in weights}
        stacked_buf = {k: v.unsqueeze(0).expand(n, *v.shape).clone() for k, v in buffers.items()}
        model = self.model

        def loss_of(ws, rest, bufs):
            out = functional_call(model, ({**ws, **rest}, bufs), (x,))
            return loss_fn(out.float(), y)

        self._replay_rng()
        with torch.enable_grad():
            grads = vmap(grad(loss_of), in_dims=(0, 0, 0), randomness="same",
                         chunk_size=self.chunk_size)(stacked_w, stacked_rest, stacked_buf)
        off = 1 if want_ref else 0
        g_prime = [grads[w][off + j] for j, w in enumerate(self.weight_names)]
        g = [grads[w][0] for w in self.weight_names] if want_ref else None
        return g_prime, g

    def record(self, step: int, loss: float, g: list[torch.Tensor], g_prime: list[torch.Tensor]) -> None:
        l2, cos, rel, gn = [], [], [], []
        for a, b in zip(g, g_prime):
            a, b = a.double().flatten(), b.double().flatten()
            d = float((a - b).norm())
            na, nb = float(a.norm()), float(b.norm())
            l2.append(d)
            gn.append(na)
            rel.append(d / na if na > 0 else math.nan)
            cos.append(float(a @ b) / (na * nb) if na > 0 and nb > 0 else math.nan)
        self.steps.append(step)
        self.loss.append(loss)
        for k, v in (("l2", l2), ("cos", cos), ("rel", rel), ("g_norm", gn)):
            self.data[k].append(v)

    def result(self) -> dict[str, Any]:
        self._disarm()
        return {"steps": self.steps, "loss": self.loss, "layers": self.layers, "method": self.method,
                "reference": self.reference, "moves": self.moves, "seconds": self.seconds, **self.data}


def ics_array(result: dict[str, Any], key: str, layer: int) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of one quantity ('l2', 'cos', 'rel', 'g_norm') of one monitored layer, from an ICS result
    (`ICS.result()`) or from a run dict that holds one under "ics"."""
    ics = result.get("ics") if "ics" in result else (result if "l2" in result else None)
    if not ics:
        raise ValueError("this run recorded no ICS")
    validate.choice("key", key, KEYS)
    validate.choice("layer", layer, ics["layers"])
    j = ics["layers"].index(layer)
    return np.asarray(ics["steps"]), np.asarray([row[j] for row in ics[key]], dtype=float)
