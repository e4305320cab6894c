"""Data: CIFAR-10 as tensors kept on the device, deterministic subsets and batches, and synthetic data for the DLN.

Where CIFAR-10 comes from, in order: the folder named by BNBOOK_DATA (or `root=`), which may hold the usual
image-folder layout (`train/<class>/*.jpg`, `test/<class>/*.jpg`, optionally under `cifar10/`), the archive
`cifar10-jpg.tar.gz` of that layout, or torchvision's `cifar-10-batches-py`; otherwise torchvision downloads
it into that folder. Images are decoded once and cached as uint8 arrays under BNBOOK_CACHE (default
~/.cache/bnbook), so later loads take about a second.
"""
from __future__ import annotations

import io
import os
import tarfile
import warnings
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

from . import validate
from .cache import atomic_write, cache_dir

DATA_ENV = "BNBOOK_DATA"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10 training-set channel means and standard deviations
STD = (0.2470, 0.2435, 0.2616)
ARCHIVE = "cifar10-jpg.tar.gz"
HOW_TO_GET = (
    "CIFAR-10 was not found and could not be downloaded. Either connect to the internet (torchvision downloads "
    f"it, about 170 MB), or set the environment variable {DATA_ENV} to a folder holding CIFAR-10: torchvision's "
    f"'cifar-10-batches-py', the image-folder layout train/<class>/*.jpg + test/<class>/*.jpg, or {ARCHIVE}."
)


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
    """A train and a test split, with the task's name ('classification' or 'regression')."""

    name: str
    train: Split
    test: Split
    task: str = "classification"
    classes: tuple[str, ...] = ()


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The CIFAR-10 folder: `root`, else $BNBOOK_DATA, else <cache>/data."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else cache_dir() / "data"


def _decode(blobs: list[bytes]) -> np.ndarray:
    from PIL import Image

    def one(b: bytes) -> np.ndarray:
        with Image.open(io.BytesIO(b)) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8)

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return np.stack(list(pool.map(one, blobs, chunksize=512)))


def _label_of(parts: tuple[str, ...]) -> tuple[str, int] | None:
    """('...', 'train', 'cat', 'x.jpg') -> ('train', 3); None for anything else."""
    if len(parts) >= 3 and parts[-3] in ("train", "test") and parts[-2] in CLASSES:
        return parts[-3], CLASSES.index(parts[-2])
    return None


def _arrays_from_files(items: Iterator[tuple[tuple[str, ...], bytes]]) -> dict[str, np.ndarray]:
    blobs: dict[str, list[bytes]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    for parts, data in items:
        lab = _label_of(parts)
        if lab:
            blobs[lab[0]].append(data)
            labels[lab[0]].append(lab[1])
    if not blobs["train"] or not blobs["test"]:
        raise FileNotFoundError("no train/<class>/*.jpg and test/<class>/*.jpg images found")
    out = {}
    for split in ("train", "test"):
        out[f"x_{split}"] = _decode(blobs[split])
        out[f"y_{split}"] = np.asarray(labels[split], dtype=np.int64)
    return out


def _from_archive(path: Path) -> dict[str, np.ndarray]:
    def items():
        with tarfile.open(path, "r:*") as tar:
            for m in tar:
                if m.isfile() and m.name.lower().endswith((".jpg", ".jpeg", ".png")):
                    yield tuple(Path(m.name).parts), tar.extractfile(m).read()
    return _arrays_from_files(items())


def _from_folder(path: Path) -> dict[str, np.ndarray]:
    def items():
        for f in sorted(path.glob("*/*/*")):
            if f.suffix.lower() in (".jpg", ".jpeg", ".png"):
                yield tuple(f.parts), f.read_bytes()
    return _arrays_from_files(items())


def _from_torchvision(root: Path, download: bool) -> dict[str, np.ndarray]:
    import torchvision

    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = torchvision.datasets.CIFAR10(str(root), train=train, download=download)
        out[f"x_{split}"] = np.asarray(ds.data, dtype=np.uint8)
        out[f"y_{split}"] = np.asarray(ds.targets, dtype=np.int64)
    return out


def _find_source(root: Path) -> tuple[str, Path] | None:
    for folder in (root / "cifar10", root):
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return "folder", folder
    if (root / ARCHIVE).is_file():
        return "archive", root / ARCHIVE
    if (root / "cifar-10-batches-py").is_dir():
        return "torchvision", root
    return None


def _valid(arrays: dict[str, np.ndarray]) -> bool:
    keys = {"x_train", "y_train", "x_test", "y_test"}
    return (keys <= set(arrays) and arrays["x_train"].shape[1:] == (32, 32, 3)
            and len(arrays["x_train"]) == len(arrays["y_train"]) and len(arrays["x_test"]) == len(arrays["y_test"])
            and int(arrays["y_train"].max()) == 9)


def cifar10_arrays(root: str | os.PathLike | None = None, download: bool = True) -> dict[str, np.ndarray]:
    """All of CIFAR-10 as uint8 arrays x_* (N, 32, 32, 3) and int64 labels y_*, decoded once and cached."""
    root = data_root(root)
    found = _find_source(root)
    kind = found[0] if found else "torchvision"
    cached = cache_dir() / f"cifar10-{kind}.npz"
    if cached.is_file():
        try:
            with np.load(cached) as z:
                arrays = {k: z[k] for k in z.files}
            if _valid(arrays):
                return arrays
        except (OSError, ValueError, zipfile.BadZipFile, EOFError):
            pass
        warnings.warn(f"the cached CIFAR-10 arrays {cached} are corrupted: rebuilding them")
    if found is None:
        try:
            arrays = _from_torchvision(root, download)
        except Exception as e:  # no network, a firewall, a half-written download: all end the same way
            raise FileNotFoundError(f"{HOW_TO_GET} (looked in {root}; the download failed with: {e})") from None
    elif kind == "folder":
        arrays = _from_folder(found[1])
    elif kind == "archive":
        arrays = _from_archive(found[1])
    else:
        arrays = _from_torchvision(root, download=False)
    atomic_write(cached, lambda f: np.savez(f, **arrays))
    return arrays


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


def _to_tensor(x: np.ndarray) -> torch.Tensor:
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
    a = cifar10_arrays(root, download)
    # shuffled with the seed: the image-folder archive is sorted by class, and a slice like test.x[:32]
    # should be a random sample of images, not 32 airplanes
    rng = np.random.default_rng(seed)
    tr = rng.permutation(subset_indices(a["y_train"], n_train, seed))
    te = rng.permutation(subset_indices(a["y_test"], n_test, seed))
    train = Split(_to_tensor(a["x_train"][tr]), torch.from_numpy(a["y_train"][tr]))
    test = Split(_to_tensor(a["x_test"][te]), torch.from_numpy(a["y_test"][te]))
    return Dataset("cifar10", train.to(device), test.to(device), "classification", CLASSES)


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
    return Dataset("linear_teacher", Split(x, x @ a.T).to(device), Split(xt, xt @ a.T).to(device), "regression")


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
