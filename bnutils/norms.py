"""Normalization layers: BatchNorm from scratch, Santurkar et al.'s noisy BN, the l_p variants, and BN helpers.

Every layer works on (N, C) and (N, C, *spatial) inputs: statistics are per channel C, over the batch and
all spatial positions. `make_norm(kind, C)` is the one factory the models use.
"""
from __future__ import annotations

import copy
import math

import torch
import torch.nn as nn

from . import validate


def _reduce_dims(x: torch.Tensor) -> list[int]:
    if x.dim() < 2:
        raise ValueError(f"input must have shape (N, C, ...), got {tuple(x.shape)}")
    return [0] + list(range(2, x.dim()))


def _per_channel(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Reshape a (C,) vector so it broadcasts against x of shape (N, C, *spatial)."""
    return v.view(1, -1, *([1] * (x.dim() - 2)))


class BatchNorm(nn.Module):
    """Batch normalization written out, matching torch.nn.BatchNorm1d/2d exactly.

    Train mode normalizes with the batch mean and the *biased* batch variance, and updates
    running_mean / running_var with the *unbiased* variance: new = (1 - momentum) * old + momentum * batch
    (PyTorch's convention; momentum=None gives the cumulative average, as Ioffe & Szegedy's population
    statistics). Eval mode normalizes with the running statistics. epsilon sits inside the square root.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1,
                 affine: bool = True, track_running_stats: bool = True):
        super().__init__()
        validate.integer("num_features", num_features)
        validate.positive("eps", eps)
        if momentum is not None:
            validate.in_range("momentum", momentum, 0.0, 1.0)
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))
            self.bias = nn.Parameter(torch.zeros(num_features))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """x_hat = (x - mean) / sqrt(var + eps), with batch or running statistics; no gamma/beta."""
        if x.shape[1] != self.num_features:
            raise ValueError(f"expected {self.num_features} channels, got input of shape {tuple(x.shape)}")
        dims = _reduce_dims(x)
        use_batch = self.training or not self.track_running_stats
        if use_batch:
            n = x.numel() // x.shape[1]
            if self.training and n < 2:
                raise ValueError(f"BatchNorm needs more than 1 value per channel in training, got shape {tuple(x.shape)}")
            mean = x.mean(dim=dims)
            var = x.var(dim=dims, unbiased=False)
            if self.training and self.track_running_stats:
                with torch.no_grad():
                    self.num_batches_tracked += 1
                    m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
                    unbiased = var * (n / (n - 1))
                    self.running_mean.mul_(1 - m).add_(m * mean.detach())
                    self.running_var.mul_(1 - m).add_(m * unbiased.detach())
        else:
            mean, var = self.running_mean, self.running_var
        return (x - _per_channel(mean, x)) / torch.sqrt(_per_channel(var, x) + self.eps)

    def affine_transform(self, x_hat: torch.Tensor) -> torch.Tensor:
        if not self.affine:
            return x_hat
        return x_hat * _per_channel(self.weight, x_hat) + _per_channel(self.bias, x_hat)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.affine_transform(self.normalize(x))

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class SanturkarNoise(nn.Module):
    """The noise of Santurkar et al. (2018), Algorithm 1, as a layer: a <- s * a + m, in training mode only.

    Each forward pass (each step) draws, per channel j, mu_j ~ U(-n_mu, n_mu) and sigma_j ~ U(1, n_sigma);
    then per element (every sample and spatial position) m ~ U(mu_j - r_mu, mu_j + r_mu) and
    s ~ N(sigma_j, r_sigma). Eval mode is the identity. `scale` multiplies all four constants' spread
    (n_mu, n_sigma - 1, r_mu, r_sigma); scale=0 is no noise.
    """

    def __init__(self, n_mu: float = 0.5, n_sigma: float = 1.25, r_mu: float = 0.1, r_sigma: float = 0.1,
                 scale: float = 1.0):
        super().__init__()
        validate.positive("n_mu", n_mu, allow_zero=True)
        validate.positive("n_sigma", n_sigma)
        if n_sigma < 1:
            raise ValueError(f"n_sigma={n_sigma!r} must be >= 1 (sigma ~ U(1, n_sigma))")
        validate.positive("r_mu", r_mu, allow_zero=True)
        validate.positive("r_sigma", r_sigma, allow_zero=True)
        validate.positive("scale", scale, allow_zero=True)
        self.n_mu, self.n_sigma, self.r_mu, self.r_sigma = n_mu * scale, 1 + (n_sigma - 1) * scale, r_mu * scale, r_sigma * scale

    def sample(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Draw (mu, sigma, m, s) for an input shaped like x: mu, sigma per channel; m, s per element."""
        c = x.shape[1]
        mu = x.new_empty(c).uniform_(-self.n_mu, self.n_mu)
        sigma = x.new_empty(c).uniform_(1, self.n_sigma)
        # in place, fewer passes over the activations: the noise costs more than the convs of a narrow VGG
        m = torch.empty_like(x).uniform_(-self.r_mu, self.r_mu).add_(_per_channel(mu, x))
        s = torch.empty_like(x).normal_(0, self.r_sigma).add_(_per_channel(sigma, x))
        return mu, sigma, m, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        _, _, m, s = self.sample(x)
        return torch.addcmul(m, s, x)

    def extra_repr(self) -> str:
        return f"n_mu={self.n_mu}, n_sigma={self.n_sigma}, r_mu={self.r_mu}, r_sigma={self.r_sigma}"


class NoisyBatchNorm(BatchNorm):
    """BatchNorm followed by Santurkar's noise (training only): the distributions after BN stop being stable.

    `position="after_affine"` (default, our reading of "noise injected after BatchNorm layers") adds the noise
    to the BN layer's output; `"before_affine"` adds it to the normalized x_hat before gamma and beta.
    """

    def __init__(self, num_features: int, *, position: str = "after_affine", n_mu: float = 0.5,
                 n_sigma: float = 1.25, r_mu: float = 0.1, r_sigma: float = 0.1, scale: float = 1.0, **bn_kwargs):
        super().__init__(num_features, **bn_kwargs)
        self.position = validate.choice("position", position, ("after_affine", "before_affine"))
        self.noise = SanturkarNoise(n_mu, n_sigma, r_mu, r_sigma, scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_hat = self.normalize(x)
        if self.position == "before_affine":
            return self.affine_transform(self.noise(x_hat))
        return self.noise(self.affine_transform(x_hat))


class LpBatchNorm(nn.Module):
    """The l_p normalizations of Santurkar et al. (Sec. 4.2): subtract the batch mean, divide by a batch l_p scale.

    Our reading: the scale is computed per channel on the activations before the mean is subtracted:
    p=1 the mean |x|, p=2 the root mean square, p=inf the max |x|. Running averages of the mean and scale
    are kept (PyTorch's momentum convention) and used in eval mode. gamma and beta as in BN.
    """

    def __init__(self, num_features: int, p: float, eps: float = 1e-5, momentum: float = 0.1, affine: bool = True):
        super().__init__()
        validate.integer("num_features", num_features)
        self.p = validate.choice("p", p, (1, 2, math.inf))
        validate.positive("eps", eps, allow_zero=True)
        self.momentum = validate.in_range("momentum", momentum, 0.0, 1.0)
        self.num_features, self.eps, self.affine = num_features, eps, affine
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_scale", torch.ones(num_features))

    def batch_scale(self, x: torch.Tensor) -> torch.Tensor:
        dims = _reduce_dims(x)
        if self.p == 1:
            return x.abs().mean(dim=dims)
        if self.p == 2:
            return x.pow(2).mean(dim=dims).sqrt()
        return x.abs().amax(dim=dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            mean, scale = x.mean(dim=_reduce_dims(x)), self.batch_scale(x)
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean.detach())
                self.running_scale.mul_(1 - self.momentum).add_(self.momentum * scale.detach())
        else:
            mean, scale = self.running_mean, self.running_scale
        y = (x - _per_channel(mean, x)) / (_per_channel(scale, x) + self.eps)
        if self.affine:
            y = y * _per_channel(self.weight, x) + _per_channel(self.bias, x)
        return y

    def extra_repr(self) -> str:
        return f"{self.num_features}, p={self.p}"


NORM_KINDS = ("none", "batchnorm", "scratch", "noisy", "noise", "l1", "l2", "linf", "group", "layer")
BATCH_FREE_KINDS = ("group", "layer")  # normalizations that use no batch statistics: an example's output is its own
_BN_KWARGS = ("eps", "momentum", "affine", "track_running_stats")
_NOISE_KWARGS = ("n_mu", "n_sigma", "r_mu", "r_sigma", "scale")
_LP_KWARGS = ("eps", "momentum", "affine")
NORM_KWARGS: dict[str, tuple[str, ...]] = {  # the keyword arguments each kind's layer accepts
    "none": (), "batchnorm": _BN_KWARGS, "scratch": _BN_KWARGS, "noisy": _BN_KWARGS + ("position",) + _NOISE_KWARGS,
    "noise": _NOISE_KWARGS, "l1": _LP_KWARGS, "l2": _LP_KWARGS, "linf": _LP_KWARGS,
    "group": ("num_groups", "eps", "affine"), "layer": ("eps", "affine"),
}
GROUPS = 32  # Wu & He (2018)'s default number of groups


def group_count(num_features: int, num_groups: int = GROUPS) -> int:
    """The groups a GroupNorm over `num_features` channels uses: the largest divisor of num_features that is at
    most `num_groups` and leaves at least 2 channels per group (1 when there is none). Wu & He's 32 groups need
    32+ channels; the book's narrow networks (4..64 channels at width 1/4) get fewer, never one channel per group
    (which would be InstanceNorm, and on (N, C) inputs a constant)."""
    validate.integer("num_features", num_features)
    validate.integer("num_groups", num_groups)
    return max(g for g in range(1, min(num_groups, max(1, num_features // 2)) + 1) if num_features % g == 0)


def check_norm_kwargs(kind: str, kwargs: dict[str, object]) -> None:
    """Raise a ValueError for a keyword that `kind`'s layer does not take (a typo such as `widht` included), a
    momentum outside [0, 1] (None only for the BN kinds), an eps <= 0, or a non-bool affine/track_running_stats."""
    validate.choice("norm", kind, NORM_KINDS)
    allowed = NORM_KWARGS[kind]
    for key in kwargs:
        if key not in allowed:
            takes = f"takes only {list(allowed)}" if allowed else "takes no keyword arguments"
            raise ValueError(f"unknown keyword argument {key}={kwargs[key]!r} for norm={kind!r}: it {takes}")
    if "momentum" in kwargs and not (kwargs["momentum"] is None and kind in ("batchnorm", "scratch", "noisy")):
        validate.in_range("momentum", kwargs["momentum"], 0.0, 1.0)
    if "eps" in kwargs:
        validate.positive("eps", kwargs["eps"])
    if "num_groups" in kwargs:
        validate.integer("num_groups", kwargs["num_groups"])
    for key in ("affine", "track_running_stats"):
        if key in kwargs and not isinstance(kwargs[key], bool):
            raise ValueError(f"{key}={kwargs[key]!r} must be True or False")


def make_norm(kind: str, num_features: int, dim: int = 2, **kwargs) -> nn.Module:
    """The normalization layer `kind` for `num_features` channels of a `dim`-d input (1: (N,C), 2: (N,C,H,W)).

    none: identity; batchnorm: PyTorch's; scratch: our BatchNorm; noisy: BN + Santurkar noise;
    noise: the noise alone (the "standard + noise" control); l1 / l2 / linf: the l_p variants;
    group: GroupNorm (Wu & He 2018; `group_count` groups), layer: GroupNorm with one group (LayerNorm over the
    channels and positions of each example, with a per-channel gamma and beta): both batch-free, the same in
    training and eval mode.
    Extra keyword arguments go to the layer (e.g. momentum, or the noise constants): NORM_KWARGS[kind] lists the
    allowed ones, and any other is a ValueError (`none` takes none).
    """
    check_norm_kwargs(kind, kwargs)
    validate.integer("num_features", num_features)
    validate.choice("dim", dim, (1, 2))
    if kind == "none":
        return nn.Identity()
    if kind == "batchnorm":
        return (nn.BatchNorm1d if dim == 1 else nn.BatchNorm2d)(num_features, **kwargs)
    if kind == "scratch":
        return BatchNorm(num_features, **kwargs)
    if kind == "noisy":
        return NoisyBatchNorm(num_features, **kwargs)
    if kind == "noise":
        return SanturkarNoise(**kwargs)
    if kind in BATCH_FREE_KINDS:
        groups = 1 if kind == "layer" else group_count(num_features, kwargs.pop("num_groups", GROUPS))
        return nn.GroupNorm(groups, num_features, **kwargs)
    return LpBatchNorm(num_features, p={"l1": 1, "l2": 2, "linf": math.inf}[kind], **kwargs)


def is_norm(module: nn.Module) -> bool:
    """True for any normalization layer that carries batch statistics (PyTorch's or ours)."""
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, BatchNorm, LpBatchNorm))


@torch.no_grad()
def fold_batchnorm(layer: nn.Conv2d | nn.Linear, bn: nn.Module) -> nn.Conv2d | nn.Linear:
    """A new conv/linear layer equal to `bn(layer(x))` at inference: W' = W * gamma / sqrt(var + eps), b' folded too.

    `bn` must use running statistics (eval mode): that is what makes BN an affine map at inference.
    """
    if not isinstance(layer, (nn.Conv2d, nn.Linear)):
        raise ValueError(f"layer must be nn.Conv2d or nn.Linear, got {type(layer).__name__}")
    if getattr(bn, "running_var", None) is None:
        raise ValueError("bn must track running statistics to be folded")
    gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_var)
    beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
    factor = gamma / torch.sqrt(bn.running_var + bn.eps)
    folded = copy.deepcopy(layer)
    w = layer.weight * factor.view(-1, *([1] * (layer.weight.dim() - 1)))
    b = layer.bias if layer.bias is not None else torch.zeros_like(bn.running_mean)
    folded.weight = nn.Parameter(w.clone())
    folded.bias = nn.Parameter((b - bn.running_mean) * factor + beta)
    return folded


@torch.no_grad()
def recalibrate(model: nn.Module, batches) -> nn.Module:
    """Recompute every BN layer's running statistics as the exact average over `batches` (an iterable of inputs).

    This is Ioffe & Szegedy's population statistics: the fix when running averages are stale or were
    accumulated under noise (Santurkar noise is switched off while recalibrating). The model's train/eval
    modes and the layers' momentum are restored afterwards; if it fails (e.g. no batches), the running
    statistics are too: the model is exactly as it was.
    """
    from .modes import temporary_mode  # modes imports this module

    layers = [m for m in model.modules() if isinstance(m, (nn.modules.batchnorm._BatchNorm, BatchNorm))]
    momenta = [m.momentum for m in layers]
    before = {name: b.clone() for name, b in model.named_buffers()}
    with temporary_mode(model, train=True):  # noise off: the population statistics of the clean network
        try:
            for m in layers:
                m.reset_running_stats()
                m.momentum = None
            n = 0
            for x in batches:
                model(x)
                n += 1
            if n == 0:
                raise ValueError("batches must yield at least one batch")
        except BaseException:
            for name, b in model.named_buffers():
                b.copy_(before[name])
            raise
        finally:
            for m, mom in zip(layers, momenta):
                m.momentum = mom
    return model
