"""bnutils: the shared code of *Why BatchNorm Works*. One concept per module:

norms (BatchNorm from scratch, noisy BN, l_p norms), models (MLP, VGG, deep linear net, CIFAR ResNet),
data (CIFAR-10 tensors, synthetic data), cifar10 (finding and decoding CIFAR-10), train (the SGD loop),
metrics (measurements during training), plots (the book's figure style), profiles (the ci/cpu/gpu scales and
smoke mode), cache (resumable results), validate (argument checks).
"""
from __future__ import annotations

__version__ = "0.1.0"

import torch

from .profiles import Profile, resolve_profile


def setup(profile: str = "auto", seed: int = 0) -> Profile:
    """What every chapter runs first: resolve the profile, pin CPU threads, seed everything, set the plot theme.

    In smoke mode (BNBOOK_SMOKE=1: the gpu settings, capped; see bnutils.profiles) it also turns on the device
    check: every image batch and the model training on it must be on the profile's device."""
    import os

    from . import plots, train
    from .profiles import DEVICE_CHECK_ENV, smoke

    p = resolve_profile(profile)
    torch.set_num_threads(p.threads)
    train.seed_everything(seed)
    plots.set_theme()
    caps = smoke()
    if caps:
        os.environ[DEVICE_CHECK_ENV] = torch.device(p.device).type  # inherited by the sweeps' worker processes
        print(f"SMOKE RUN: the gpu settings with at most {caps.steps} steps per training run, batches of at most "
              f"{caps.batch}, {caps.eval_batches} evaluation batches and {caps.n_train}/{caps.n_test} CIFAR-10 "
              "images; its numbers mean nothing")
    print(f"profile={p.name} device={p.device} threads={p.threads} torch={torch.__version__} bnutils={__version__}")
    return p
