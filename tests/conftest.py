"""Shared fixtures: a small deterministic CPU setting, and the offline CIFAR-10 archive when it is available."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _small_cpu():
    torch.set_num_threads(1)
    torch.manual_seed(0)


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
