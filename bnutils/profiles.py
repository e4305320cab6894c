"""Named scales for every chapter: `ci` (tests, seconds), `cpu` (a laptop, minutes), `long` (the `cpu` networks and
data trained 4x longer: the longer point of the book's "claims across scales" page, run once in the background),
`gpu` (Colab, the papers' settings).

A notebook's `profile` parameter is resolved here. `auto` means `gpu` when CUDA is available, else `cpu`;
the environment variable BNBOOK_PROFILE, when set, overrides whatever the notebook asked for (CI sets `ci`).

Smoke mode (BNBOOK_SMOKE=1, `make smoke`): every chapter runs the `gpu` settings (networks, widths, depths, data
pipeline, AMP, channels_last) on whatever device there is, but `bnutils.train` caps each training run at
`SMOKE.steps` steps of at most `SMOKE.batch` examples and each evaluation at `SMOKE.eval_batches` batches of at most
`SMOKE.batch`, and `bnutils.data` loads CIFAR-10
subsets of at most `SMOKE.n_train`/`SMOKE.n_test` images: every cell of the gpu path runs in seconds, proving it
runs, not what it finds. The profile's name prints as `gpu (smoke run)` (it still selects the `gpu` settings), and
every image batch is checked to live on the profile's device (`check_device`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Any

import torch

from . import validate

PROFILE_NAMES = ("ci", "cpu", "long", "gpu")
ENV_VAR = "BNBOOK_PROFILE"


@dataclass(frozen=True)
class Profile:
    """The scale a chapter runs at; a chapter's own knobs are its experiments module's `SCALES[P.name]`."""

    name: str
    device: str  # "cpu" or "cuda"
    threads: int  # torch CPU threads, pinned for speed and repeatability
    n_train: int | None  # CIFAR-10 training images (None: all 50,000)
    n_test: int | None  # CIFAR-10 test images (None: all 10,000)
    vgg_width: float  # width multiplier of the VGG-16 (1.0 = the paper's 64..512 channels)
    amp: bool  # mixed precision for training, never for metrics (bf16 on a CPU that has it, fp16 on a GPU)

    def seeds(self, first: int, n: int) -> list[int]:
        """The `n` seeds from `first` on that a chapter averages over (one in smoke mode: `seed_list`)."""
        return seed_list(first, n)


class SmokeName(str):
    """The name `gpu` of a smoke run: equal to (and hashed as) "gpu", so `SCALES[P.name]` picks the gpu
    settings, but printed (str, format) as `gpu (smoke run)`, so a smoke run's outputs and verdicts say what they
    are."""

    def __str__(self) -> str:
        return f"{str.__str__(self)} (smoke run)"

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __reduce__(self):  # pickled for worker processes as itself
        return (SmokeName, (str.__str__(self),))


@dataclass(frozen=True)
class SmokeCaps:
    """What smoke mode caps: training steps per run, examples per training and evaluation batch (the first `batch`
    of each), evaluation batches, CIFAR-10 training and test images. The training-set cap leaves room for the
    sweeps' noise pools (2048 images at gpu). Without the batch cap a smoke run of the book takes about half an
    hour on 2 CPU cores (full-width networks at batch 128); 8 examples still give BN a batch to normalize over."""

    steps: int = 2
    batch: int = 8
    eval_batches: int = 2
    n_train: int = 2048
    n_test: int = 256  # chapter 1 evaluates in train mode with batches of up to 256 test images


SMOKE_ENV = "BNBOOK_SMOKE"  # "1": smoke mode (inherited by worker processes)
DEVICE_CHECK_ENV = "BNBOOK_CHECK_DEVICE"  # a device type ("cpu", "cuda"): image batches must live there
SMOKE = SmokeCaps()


def smoke() -> SmokeCaps | None:
    """The caps of smoke mode when BNBOOK_SMOKE is set (to anything but 0), else None. Read at each call, so worker
    processes and tests see the environment as it is now."""
    return SMOKE if os.environ.get(SMOKE_ENV, "").strip() not in ("", "0") else None


def smoke_cap(n: int, cap: int = 2) -> int:
    """`n` itself, or `min(n, cap)` in smoke mode: caps a count (batches, batch sizes, grid points, repetitions)
    in the experiments' own loops, which bypass the caps `bnutils.train` applies to training and evaluation.
    Only counts shrink: networks, widths and the data pipeline stay the gpu profile's. With smoke off it is the
    identity, so no other run changes."""
    return min(n, cap) if smoke() else n


def seed_list(seed: int, n: int) -> list[int]:
    """The `n` seeds `seed, seed + 1, ...` a chapter averages over; in smoke mode only the first (a count it caps:
    one seed runs every code path the others would)."""
    return [seed + i for i in range(smoke_cap(n, 1))]


def check_device(where: str, *tensors: Any) -> None:
    """Under smoke mode or BNBOOK_CHECK_DEVICE (set by `bnutils.setup` in smoke mode to the profile's device type):
    an AssertionError naming `where` when a tensor (or a module's parameter) is on another device type. A stand-in
    on the CPU for the GPU's failure mode, a stray CPU tensor (on the CPU it catches any other device)."""
    want = os.environ.get(DEVICE_CHECK_ENV, "").strip()
    if not want:
        return
    for t in tensors:
        items = t.parameters() if isinstance(t, torch.nn.Module) else (t,)
        for x in items:
            if x.device.type != want:
                raise AssertionError(f"{where} is on {x.device}, not on the profile's device {want!r} "
                                     f"({DEVICE_CHECK_ENV}={want})")


THREADS_ENV = "BNBOOK_THREADS"  # pins the CPU thread count (default: min(2, cores)), e.g. 1 when running chapters side by side
_THREADS = int(os.environ.get(THREADS_ENV, "0") or 0) or max(1, min(2, os.cpu_count() or 1))
PROFILES: dict[str, Profile] = {
    "ci": Profile("ci", "cpu", _THREADS, 2560, 1000, 0.125, True),
    "cpu": Profile("cpu", "cpu", _THREADS, 10000, 2000, 0.125, True),
    "long": Profile("long", "cpu", _THREADS, 10000, 2000, 0.125, True),  # cpu's data and networks; SCALES: 4x steps
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
    if smoke():
        profile = "gpu"  # smoke mode runs the gpu settings, capped (see the module's docstring)
    if profile == "auto":
        profile = "gpu" if torch.cuda.is_available() else "cpu"
    p = PROFILES[profile]
    if p.device == "cuda" and not torch.cuda.is_available():
        if not smoke():
            print("profile 'gpu' asked for but no CUDA device found: running the gpu settings on the CPU (slow)")
        p = replace(p, device="cpu")  # amp then means bf16 where the CPU has it, as at cpu
    if smoke():
        p = replace(p, name=SmokeName(p.name))
    return p
