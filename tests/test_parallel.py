"""Sweeps fan out to worker processes (or a Dask cluster) and give the numbers a serial sweep gives."""
from __future__ import annotations

import os
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
import multiprocessing

import pytest
import torch

from bnutils import parallel
from bnutils.cache import cached_run


@cached_run("toy")
def toy_run(i: int, die_at: int = -1, cache: bool = True) -> dict:
    """A small computation whose result depends on i and on torch's thread count being honoured."""
    if i == die_at:
        time.sleep(1.0)  # let the other worker finish its run first
        os._exit(1)  # a killed worker
    g = torch.Generator().manual_seed(i)
    a = torch.randn(64, 64, generator=g)
    return {"i": i, "x": float((a @ a).sum()), "threads": torch.get_num_threads()}


def _pool(n: int = 2) -> ProcessPoolExecutor:
    return ProcessPoolExecutor(n, mp_context=multiprocessing.get_context("spawn"))


def test_same_numbers_serial_and_in_worker_processes(tmp_cache, monkeypatch):
    calls = [dict(i=i) for i in range(4)]
    serial = parallel.sweep(toy_run, calls, executor="serial")
    monkeypatch.setenv("BNBOOK_CACHE", str(tmp_cache / "second"))  # nothing to read back: all recomputed
    with _pool() as pool:
        fanned = parallel.sweep(toy_run, calls, executor=pool)
    assert serial == fanned
    assert all(r["threads"] == 1 for r in serial)  # one thread per run, wherever it runs


def test_finished_runs_are_read_back_not_sent_out(tmp_cache):
    first = parallel.sweep(toy_run, [dict(i=0)], executor="serial")

    class Refuses:  # an executor that must not be used: every run is already stored
        def submit(self, *a, **k):
            raise AssertionError("a stored run was sent to a worker")

    assert parallel.sweep(toy_run, [dict(i=0)], executor=Refuses()) == first


def test_a_killed_worker_loses_only_its_own_run(tmp_cache):
    calls = [dict(i=0, die_at=1), dict(i=1, die_at=1)]
    with pytest.raises(BrokenProcessPool):
        with _pool() as pool:
            parallel.sweep(toy_run, calls, executor=pool)
    assert toy_run.lookup(i=0, die_at=1) is not None  # the other worker's run was stored
    assert toy_run.lookup(i=1, die_at=1) is None


def test_sweep_rejects_what_it_cannot_run():
    with pytest.raises(ValueError, match="run="):
        parallel.sweep(lambda **k: k, [{}])
    with pytest.raises(ValueError, match="executor='threads'"):
        parallel.sweep(toy_run, [dict(i=0)], executor="threads")


def test_workers_env_is_checked(monkeypatch):
    monkeypatch.setenv("BNBOOK_WORKERS", "zero")
    with pytest.raises(ValueError, match="BNBOOK_WORKERS"):
        parallel.local_workers()


@pytest.mark.slow
def test_a_dask_cluster_runs_the_sweep_with_the_same_numbers(tmp_cache):
    distributed = pytest.importorskip("distributed")
    calls = [dict(i=i) for i in range(3)]
    serial = parallel.sweep(toy_run, calls, executor="serial")
    for f in tmp_cache.rglob("*.json"):
        f.unlink()  # the cluster must compute them again
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        assert parallel.sweep(toy_run, calls, executor=client) == serial
