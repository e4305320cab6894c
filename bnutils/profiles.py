"""Named scales for every chapter: `ci` (tests, seconds), `cpu` (a laptop, minutes), `gpu` (Colab, the papers' settings).

A notebook's `profile` parameter is resolved here. `auto` means `gpu` when CUDA is available, else `cpu`;
the environment variable BNBOOK_PROFILE, when set, overrides whatever the notebook asked for (CI sets `ci`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from . import validate

PROFILE_NAMES = ("ci", "cpu", "gpu")
ENV_VAR = "BNBOOK_PROFILE"


@dataclass(frozen=True)
class Profile:
    """The scale a chapter runs at. Chapter-specific knobs come from `pick(ci=..., cpu=..., gpu=...)`."""

    name: str
    device: str  # "cpu" or "cuda"
    threads: int  # torch CPU threads, pinned for speed and repeatability
    n_train: int | None  # CIFAR-10 training images (None: all 50,000)
    n_test: int | None  # CIFAR-10 test images (None: all 10,000)
    vgg_width: float  # width multiplier of the VGG-16 (1.0 = the paper's 64..512 channels)
    amp: bool  # mixed precision for training, never for metrics (bf16 on a CPU that has it, fp16 on a GPU)

    def pick(self, **by_profile: Any) -> Any:
        """The value given for this profile's name, e.g. `P.pick(ci=200, cpu=2000, gpu=15000)`."""
        missing = [n for n in PROFILE_NAMES if n not in by_profile]
        extra = [n for n in by_profile if n not in PROFILE_NAMES]
        if missing or extra:
            raise ValueError(f"pick() needs exactly the keys {list(PROFILE_NAMES)}; missing {missing}, unknown {extra}")
        return by_profile[self.name]


THREADS_ENV = "BNBOOK_THREADS"  # pins the CPU thread count (default: min(2, cores)), e.g. 1 when running chapters side by side
_THREADS = int(os.environ.get(THREADS_ENV, "0") or 0) or max(1, min(2, os.cpu_count() or 1))
PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", "cpu", _THREADS, 2560, 1000, 0.125, True),
    "cpu": Profile("cpu", "cpu", _THREADS, 10000, 2000, 0.125, True),
    "gpu": Profile("gpu", "cuda", _THREADS, None, None, 1.0, True),
}


def resolve_profile(profile: str = "auto") -> Profile:
    """Turn a notebook's `profile` parameter into a Profile (BNBOOK_PROFILE, if set, wins).

    Asking for `gpu` without CUDA still runs (on the CPU, slowly) but says so.
    """
    validate.choice("profile", profile, ("auto",) + PROFILE_NAMES)  # a typo is an error even when overridden
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        profile = validate.choice(ENV_VAR, env, PROFILE_NAMES)
    if profile == "auto":
        profile = "gpu" if torch.cuda.is_available() else "cpu"
    p = PROFILES[profile]
    if p.device == "cuda" and not torch.cuda.is_available():
        print("profile 'gpu' asked for but no CUDA device found: running the gpu settings on the CPU (slow)")
        p = replace(p, device="cpu")  # amp then means bf16 where the CPU has it, as at cpu
    return p
