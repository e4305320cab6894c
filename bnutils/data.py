"""Data: CIFAR-10 as tensors kept on the device, deterministic subsets and batches, the standard augmentation, and
synthetic data for the DLN. Finding, decoding and caching CIFAR-10 on disk is `bnutils.cifar10`'s. In smoke mode
(bnutils.profiles) CIFAR-10 loads as small subsets.
"""
from __future__ import annotations

import hashlib
import os
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch

from . import validate
from .cifar10 import CLASSES, DECODER_VERSION, MEAN, STD, data_root, load_arrays
from .profiles import smoke


@dataclass
class Split:
    """Inputs x and targets y of one split, as tensors on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.x)

    def to(self, device: str | torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Dataset:
    """A train and a test split, with the task's name ('classification' or 'regression').

    `origin` is a JSON-able identity of where the data came from (source, subset, seed); a Dataset built any
    other way leaves it None and is identified by a hash of its content instead.
    """

    name: str
    train: Split
    test: Split
    task: str = "classification"
    classes: tuple[str, ...] = ()
    origin: dict | None = None
    _hashed: tuple = field(default=(), init=False, repr=False, compare=False)  # (weakrefs, versions, hash)

    def cache_key(self) -> dict[str, Any]:
        """What identifies this data in the run cache: name, task and origin, else a sha256 of every split's
        x and y (bytes, shapes and dtypes), recomputed only when a tensor is replaced or modified in place."""
        if self.origin is not None:
            return {"name": self.name, "task": self.task, **self.origin}
        tensors = (self.train.x, self.train.y, self.test.x, self.test.y)
        versions = tuple(t._version for t in tensors)
        memo = self._hashed
        if not (memo and memo[1] == versions and all(r() is t for r, t in zip(memo[0], tensors))):
            h = hashlib.sha256()
            for t in tensors:
                h.update(f"{tuple(t.shape)} {t.dtype};".encode())
                h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())
            self._hashed = (tuple(weakref.ref(t) for t in tensors), versions, h.hexdigest()[:32])
        return {"name": self.name, "task": self.task, "sha256": self._hashed[2]}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (e.g. for a worker process) without cache_key's memo: weak references do not pickle."""
        return {**self.__dict__, "_hashed": ()}


def subset_indices(labels: np.ndarray, n: int | None, seed: int) -> np.ndarray:
    """A class-balanced random subset of n indices (all of them, in order, when n is None)."""
    if n is None or n >= len(labels):
        return np.arange(len(labels))
    validate.integer("n", n)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    take = [p[: n // len(classes) + (1 if i < n % len(classes) else 0)] for i, p in enumerate(per)]
    return np.sort(np.concatenate(take))


def to_tensor(x: np.ndarray) -> torch.Tensor:
    """uint8 images (N, 32, 32, 3) as float (N, 3, 32, 32), normalized with CIFAR-10's channel means and stds."""
    t = torch.from_numpy(x).permute(0, 3, 1, 2).float().div_(255)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (t - mean) / std


def load_cifar10(n_train: int | None = None, n_test: int | None = None, *, seed: int = 0,
                 device: str | torch.device = "cpu", root: str | os.PathLike | None = None,
                 download: bool = True) -> Dataset:
    """CIFAR-10 as normalized float tensors (N, 3, 32, 32) on `device`: class-balanced subsets chosen and
    shuffled by seed."""
    if n_train is not None:
        validate.integer("n_train", n_train)
    if n_test is not None:
        validate.integer("n_test", n_test)
    validate.integer("seed", seed, minimum=0)
    caps = smoke()
    if caps:  # smoke mode: small subsets (the key below records them, so no real run is ever served one)
        n_train, n_test = (min(n or cap, cap) for n, cap in ((n_train, caps.n_train), (n_test, caps.n_test)))
    a, identity = load_arrays(data_root(root), download)
    # shuffled with the seed: the image-folder archive is sorted by class, and a slice like test.x[:32]
    # should be a random sample of images, not 32 airplanes
    rng = np.random.default_rng(seed)
    tr = rng.permutation(subset_indices(a["y_train"], n_train, seed))
    te = rng.permutation(subset_indices(a["y_test"], n_test, seed))
    train = Split(to_tensor(a["x_train"][tr]), torch.from_numpy(a["y_train"][tr]))
    test = Split(to_tensor(a["x_test"][te]), torch.from_numpy(a["y_test"][te]))
    picked = hashlib.sha256(tr.astype(np.int64).tobytes() + b"/" + te.astype(np.int64).tobytes()).hexdigest()[:16]
    origin = {"source": identity, "decoder": DECODER_VERSION, "n_train": n_train, "n_test": n_test, "seed": seed,
              "indices": picked}
    return Dataset("cifar10", train.to(device), test.to(device), "classification", CLASSES, origin)


def linear_teacher(n: int = 1000, dim: int = 10, *, n_test: int = 1000, seed: int = 0,
                   device: str | torch.device = "cpu") -> Dataset:
    """Santurkar et al.'s DLN task: Gaussian inputs x (n, dim) and targets A x with A a Gaussian dim x dim matrix."""
    validate.integer("n", n)
    validate.integer("dim", dim)
    validate.integer("n_test", n_test)
    validate.integer("seed", seed, minimum=0)
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(dim, dim, generator=g)
    x, xt = torch.randn(n, dim, generator=g), torch.randn(n_test, dim, generator=g)
    return Dataset("linear_teacher", Split(x, x @ a.T).to(device), Split(xt, xt @ a.T).to(device), "regression",
                   origin={"n": n, "dim": dim, "n_test": n_test, "seed": seed})


def batches(split: Split, batch_size: int | None, *, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Endless mini-batches: each epoch a fresh permutation from `seed`; batch_size=None gives the full batch.

    The last incomplete batch of an epoch is dropped, so every step sees `batch_size` examples.
    """
    n = len(split)
    if batch_size is None:
        while True:
            yield split.x, split.y
    validate.integer("batch_size", batch_size)
    if batch_size > n:
        raise ValueError(f"batch_size={batch_size} is larger than the {n} training examples")
    g = torch.Generator().manual_seed(seed)
    while True:
        perm = torch.randperm(n, generator=g).to(split.x.device)
        for i in range(0, n - batch_size + 1, batch_size):
            idx = perm[i: i + batch_size]
            yield split.x[idx], split.y[idx]


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """The standard CIFAR augmentation on a batch: random crop with 4-pixel zero padding, random horizontal flip."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n, 1), generator=generator).to(x.device)
    dx = torch.randint(0, 9, (n, 1), generator=generator).to(x.device)
    flip = (torch.rand(n, generator=generator) < 0.5).to(x.device)
    rows = dy + torch.arange(h, device=x.device)  # (n, h)
    cols = dx + torch.arange(w, device=x.device)
    cols = torch.where(flip.view(n, 1), cols.flip(1), cols)  # flipping = reading the columns backwards
    i = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    ch = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return padded[i, ch, rows.view(n, 1, h, 1), cols.view(n, 1, 1, w)]
