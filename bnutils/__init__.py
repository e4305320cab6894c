"""bnutils: the shared code of *Why BatchNorm Works*. One concept per module:

norms (BatchNorm from scratch, noisy BN, l_p norms), models (MLP, VGG, deep linear net, CIFAR ResNet),
data (CIFAR-10 tensors, synthetic data), train (the SGD loop), metrics (measurements during training),
plots (the book's figure style), profiles (the ci/cpu/gpu scales), cache (resumable results),
validate (argument checks).
"""
from __future__ import annotations

__version__ = "0.1.0"

import torch

from .profiles import Profile, resolve_profile


def setup(profile: str = "auto", seed: int = 0) -> Profile:
    """What every chapter runs first: resolve the profile, pin CPU threads, seed everything, set the plot theme."""
    from . import plots, train

    p = resolve_profile(profile)
    torch.set_num_threads(p.threads)
    train.seed_everything(seed)
    plots.set_theme()
    print(f"profile={p.name} device={p.device} threads={p.threads} torch={torch.__version__} bnutils={__version__}")
    return p
