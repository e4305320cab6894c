"""Shared fixtures: a small deterministic CPU setting, and the offline CIFAR-10 archive when it is available."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:  # `make test` spreads tests over the cores already:
    for _name in ("BNBOOK_THREADS", "BNBOOK_WORKERS", "BNBOOK_LANES"):  # chapters and sweeps started by a test
        os.environ.setdefault(_name, "1")                              # then take one core each, not two
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _small_cpu():
    torch.set_num_threads(1)
    torch.manual_seed(0)


REAL_CACHE = Path(os.environ.get("BNBOOK_CACHE", "").strip() or Path.home() / ".cache" / "bnbook").expanduser()


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A private BNBOOK_CACHE so tests never see (or spoil) a real cache."""
    monkeypatch.setenv("BNBOOK_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def cifar_root() -> Path | None:
    """Where the offline CIFAR-10 copy is: $BNBOOK_DATA, else ../shared/data; None when neither has it."""
    env = os.environ.get("BNBOOK_DATA")
    for cand in ([Path(env)] if env else []) + [SHARED_DATA]:
        if (cand / "cifar10-jpg.tar.gz").is_file() or (cand / "cifar10" / "train").is_dir() \
                or (cand / "cifar-10-batches-py").is_dir():
            return cand
    return None


@pytest.fixture
def cifar_env(monkeypatch):
    """BNBOOK_DATA pointed at the offline CIFAR-10 copy, for experiments that load their own subset."""
    root = cifar_root()
    if root is not None:
        monkeypatch.setenv("BNBOOK_DATA", str(root))


def link_decoded_arrays(folder: Path, *sources: Path) -> Path:
    """Make `folder` a run cache that shares the decoded CIFAR-10 arrays of the real cache (and of `sources`):
    decoding them again takes ~30 s. Returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for src in (REAL_CACHE, *sources):
        for f in Path(src).glob("cifar10-*.npz"):
            if not (folder / f.name).exists():
                (folder / f.name).symlink_to(f.resolve())
    return folder


@pytest.fixture
def cifar_cache(tmp_cache):
    """tmp_cache (a private BNBOOK_CACHE for run results) that still sees the decoded CIFAR-10 arrays."""
    return link_decoded_arrays(tmp_cache)


@pytest.fixture
def tiny_images():
    """A factory of tiny random image data sets (N, 3, size, size), classes cycling 0..9: tiny_images(n_train=64)."""
    from bnutils.data import Dataset, Split

    def make(n_train: int = 64, n_test: int = 16, size: int = 32, seed: int = 0) -> Dataset:
        g = torch.Generator().manual_seed(seed)
        x, y = torch.randn(n_train + n_test, 3, size, size, generator=g), torch.arange(n_train + n_test) % 10
        return Dataset("tiny", Split(x[:n_train], y[:n_train]), Split(x[n_train:], y[n_train:]))
    return make


# The slow tier's longest tests, in seconds on 2 cores under `make test` (pytest --durations): run first, so that
# pytest-xdist's workers finish together instead of one starting the smoke run when the other is nearly done.
LONGEST = {"test_smoke_runs_every_chapter_at_the_gpu_settings": 270, "test_noise_strength[high]": 80,
           "test_same_profile_and_seed_give_identical_numbers[05_learning_rate.ipynb]": 55,
           "test_colab_setup_cell_installs_only_bnutils_and_the_chapter_runs": 45, "test_noise_strength[defaults]": 30,
           "test_cpu_fallback_writes_its_results": 25}


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: -LONGEST.get(item.name, 0))  # stable: the others keep their order
