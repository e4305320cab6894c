"""Where the independent runs of a sweep execute: in this process, in a local pool of one-thread processes, or on
any `concurrent.futures.Executor` (a Dask `distributed.Client` is one, for instructors with a cluster).

Every run is a cached run (`bnutils.cache.cached_run`): finished runs are read back here, only the missing ones
are sent out, and each worker stores its own result as soon as it has it, so a killed worker loses only its run.
Each run computes with one torch thread wherever it executes, so the numbers are the same with 1 or N workers.
On a CPU, small networks are overhead-bound: two one-thread processes do about 1.4x the work of one two-thread
process (BENCHMARKS.md).
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import Executor, ProcessPoolExecutor
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import torch

WORKERS_ENV = "BNBOOK_WORKERS"  # how many local worker processes a sweep may use (default: the cores, at most 2 threads' worth)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the body with one torch thread, then restore the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _call(run: Callable[..., dict[str, Any]], kwargs: dict[str, Any]) -> dict[str, Any]:
    """One run in a worker (or here), with one thread; the run stores its own result in the cache."""
    with one_thread():
        return run(**kwargs)


def local_workers() -> int:
    """$BNBOOK_WORKERS, else the torch threads this process was given (BNBOOK_THREADS), else the cores, at most 2."""
    env = os.environ.get(WORKERS_ENV, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise ValueError(f"{WORKERS_ENV}={env!r} must be an integer >= 1")
        return int(env)
    return max(1, torch.get_num_threads())


def sweep(run: Callable[..., dict[str, Any]], calls: Sequence[dict[str, Any]], *,
          executor: Executor | str | None = "auto") -> list[dict[str, Any]]:
    """`[run(**kw) for kw in calls]` for a cached run, in order, with the missing runs fanned out.

    executor: "auto" (a local pool of one-thread processes when the runs are on the CPU, more than one run is
    missing and more than one worker is allowed, and the caller is a notebook or set BNBOOK_WORKERS; else here),
    "serial" or None (here, one at a time), or any concurrent.futures.Executor (e.g. a dask.distributed Client;
    its workers need bnutils and the data). A script that fans out must guard its entry point with
    `if __name__ == "__main__":`, as for any process pool; that is why "auto" runs a plain script serially.
    """
    if not hasattr(run, "lookup"):
        raise ValueError(f"run={getattr(run, '__qualname__', run)!r} must be a function decorated with "
                         "bnutils.cache.cached_run")
    if isinstance(executor, str) and executor not in ("auto", "serial"):
        raise ValueError(f"executor={executor!r} is not allowed; choose 'auto', 'serial', None or an Executor")
    calls = [dict(kw) for kw in calls]
    results: list[dict[str, Any] | None] = [None if kw.get("cache") is False else run.lookup(**kw) for kw in calls]
    missing = [i for i, r in enumerate(results) if r is None]
    on_cpu = all(str(calls[i].get("device", "cpu")) == "cpu" for i in missing)
    own = None
    if executor == "auto":
        workers = min(local_workers(), len(missing))
        script = getattr(sys.modules["__main__"], "__file__", None) and not os.environ.get(WORKERS_ENV)
        if on_cpu and workers > 1 and not script:
            own = executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        else:
            executor = None
    try:
        if executor in (None, "serial"):
            for i in missing:
                results[i] = _call(run, calls[i])
        else:
            futures = {i: executor.submit(_call, run, calls[i]) for i in missing}
            for i, f in futures.items():
                results[i] = f.result()
    finally:
        if own is not None:
            own.shutdown(cancel_futures=True)
    return results  # type: ignore[return-value]
