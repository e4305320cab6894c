"""The CIFAR ResNet family of chapters 5 and 6 and the data their experiments share: one function builds every
network (BN, no BN, GroupNorm in BN's place, SkipInit, Fixup) and checks its arguments, and the chapters' fixed
CIFAR-10 subset with its fixed mini-batch order."""
from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn as nn

from .. import validate
from ..data import Dataset, batches, load_cifar10
from ..models import FixupResNet, ResNet, SkipInitResNet
from ..train import seed_everything

NETWORKS = ("batchnorm", "none", "skipinit", "fixup", "group")  # every network of the family, in drawing order
NAMES = {"batchnorm": "BatchNorm", "none": "no BN", "skipinit": "SkipInit", "fixup": "Fixup", "group": "GroupNorm"}


def check_network(variant: str, depth: int, width: float, device: str = "cpu", *,
                  allowed: Sequence[str] = NETWORKS, name: str = "variant") -> None:
    """ValueError naming the argument for a variant outside `allowed` (reported as `name`), a depth that is not
    6n + 2, a bad width or device."""
    validate.choice(name, variant, allowed)
    validate.device("device", device)
    validate.parameters(depth=(depth, "resnet depth"), width=(width, "positive"))


def build(variant: str, depth: int, width: float) -> nn.Module:
    """The CIFAR ResNet of `variant`: BN, no BN, group (GroupNorm in BN's place), SkipInit or Fixup."""
    check_network(variant, depth, width)
    if variant == "skipinit":
        return SkipInitResNet(depth=depth, width=width)
    if variant == "fixup":
        return FixupResNet(depth=depth, width=width)
    return ResNet(depth=depth, norm=variant, width=width)


def network(variant: str, depth: int, width: float, seed: int, device: str = "cpu") -> nn.Module:
    """A freshly initialised network of `variant` in training mode; the seed fixes the initialisation."""
    seed_everything(seed)
    return build(variant, depth, width).to(device).train()


@functools.lru_cache(maxsize=2)
def cifar_subset(n_train: int | None, n_test: int | None = 1000, device: str = "cpu") -> Dataset:
    """The CIFAR-10 subset shared by every experiment of chapters 5 and 6 (the subset is fixed, seed 0)."""
    return load_cifar10(n_train, n_test, seed=0, device=device)


def batch_at(data: Dataset, index: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The index-th mini-batch of the fixed training order (seed 0): 'mini-batch 1, 4, 7' of Bjorck et al."""
    it = batches(data.train, batch_size, seed=0)
    for _ in range(index):
        next(it)
    return next(it)
