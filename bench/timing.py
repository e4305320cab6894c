"""What every benchmark shares: medians of interleaved repeats, a small CIFAR-10 set, the markdown table."""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bnutils import data as D  # noqa: E402


def median_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median seconds of each function, the calls interleaved so background load hits all of them alike, after one
    untimed warm-up call each (first calls pay for allocator growth, kernel selection and cold caches)."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)  # GPU work is asynchronous
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def small_cifar(n: int = 2560, device: str = "cpu") -> D.Dataset:
    try:
        return D.load_cifar10(n, 512, device=device)
    except FileNotFoundError:  # no data here: random images of the same shape time the same
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n + 512, 3, 32, 32, generator=g), torch.randint(0, 10, (n + 512,), generator=g)
        return D.Dataset("random", D.Split(x[:n], y[:n]).to(device), D.Split(x[n:], y[n:]).to(device))


def table(rows: dict[str, object]) -> str:
    out = ["| quantity | value |", "|---|---|"]
    for k, v in rows.items():
        out.append(f"| {k} | {v:.4g} |" if isinstance(v, float) else f"| {k} | {v} |")
    return "\n".join(out)
