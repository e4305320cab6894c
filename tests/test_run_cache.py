"""The run cache can never return another run's result: every argument, the data and the code are in the key,
and a cache folder that cannot be written loses nothing."""
from __future__ import annotations

import inspect
import shutil
import warnings

import pytest
import torch

from bnutils import cache
from bnutils.data import Dataset, Split
from bnutils.experiments import basics, causal, divergence, ics, landscape, noisy


def _images(n: int = 32, seed: int = 0, origin: dict | None = None) -> Dataset:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 10
    x = torch.randn(n, 3, 32, 32, generator=g)
    return Dataset("toy", Split(x[: n // 2], y[: n // 2]), Split(x[n // 2:], y[n // 2:]), origin=origin)


PLATFORM = cache.platform_identity()

# Each cached run: the arguments of a base call, and for some parameters the changed value to try (the others
# are changed by type: numbers doubled, booleans flipped, lists extended, None replaced).
RUNS = {
    basics.ioffe_fig1: (dict(data=_images(), norm="none", steps=10, lr=0.1), {"norm": "batchnorm",
                                                                           "data": _images(seed=1)}),
    noisy.train_network: (dict(kind="batchnorm"), {"kind": "noisy", "position": "before_affine", "data": _images(),
                                                   "device": "cuda"}),
    divergence.sweep_run: (dict(norm="batchnorm", lr=0.1, seed=0, depth=8, width=0.25, steps=10, batch_size=8,
                                n_train=64, n_test=32, eval_every=5), {"norm": "none", "device": "cuda",
                                                                       "progress": None}),
    divergence.relative_loss: (dict(norm="batchnorm", step_sizes=[0.1, 1.0]), {"norm": "none", "device": "cuda"}),
    ics.vgg_run: (dict(norm="none", lr=0.1, steps=10), {"norm": "batchnorm", "method": "loop", "device": "cuda",
                                                        "momentum": 0.9}),
    ics.dln_run: (dict(norm="none", lr=0.1, steps=10), {"norm": "batchnorm", "method": "loop"}),
    landscape.landscape_run: (dict(model="vgg", norm="none", lr=0.1, steps=10, probe_every=5),
                              {"model": "dln", "norm": "batchnorm", "method": "loop", "device": "cuda",
                               "eta_range": (0.5, 16.0)}),
    causal.variant_run: (dict(variant="fixup", lr=0.1, seed=0, depth=8, width=0.25, steps=10, batch_size=8,
                              n_train=64, n_test=32, eval_every=5),
                         {"variant": "skipinit", "device": "cuda", "progress": None}),
    causal.variant_relative_loss: (dict(variant="group", step_sizes=[0.1, 1.0]), {"variant": "fixup", "device": "cuda"}),
}


def _changed(name: str, value, special: dict):
    if name in special:
        return special[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 if value else 0.5
    if isinstance(value, (list, tuple)):
        return list(value) + [value[-1] if value else 1]
    if value is None:
        return 7
    raise AssertionError(f"give a changed value for {name} (a {type(value).__name__})")


def test_every_cached_run_is_covered_here():
    library = {f"{f.__module__}.{f.__qualname__}" for f in cache.RUNS if f.__module__.startswith("bnutils.")}
    assert library == {f"{f.__module__}.{f.__qualname__}" for f in RUNS}


@pytest.mark.parametrize("fn", list(RUNS), ids=lambda f: f.__qualname__)
def test_changing_any_argument_changes_the_key(fn, tmp_cache):
    base, special = RUNS[fn]
    params = inspect.signature(fn).parameters
    bound = inspect.signature(fn).bind(**base)
    bound.apply_defaults()
    keys = {"base": fn.key(**base)}
    for name, value in bound.arguments.items():
        if name == "cache" or params[name].kind is inspect.Parameter.VAR_KEYWORD:
            continue
        keys[name] = fn.key(**{**bound.arguments, name: _changed(name, value, special)})
    same = [n for n, k in keys.items() if n != "base" and k == keys["base"]]
    assert not same, f"changing {same} of {fn.__qualname__} left the cache key unchanged"
    assert fn.key(**base) == keys["base"]  # and the key is stable


def test_the_data_and_its_subset_are_in_the_key(tmp_cache):
    a, b = _images(seed=0), _images(seed=1)
    key = lambda d: basics.ioffe_fig1.key(d, norm="none", steps=10, lr=0.1)
    assert key(a) != key(b)
    b.train.x[0, 0, 0, 0] = a.train.x[0, 0, 0, 0] + 1  # one changed value
    assert key(_images(seed=0)) == key(a) != key(b)
    subset = lambda seed: _images(origin={"source": "s", "n_train": 16, "seed": seed})
    assert key(subset(0)) != key(subset(1))


def test_a_run_on_other_data_is_not_served_from_the_cache(tmp_cache):
    """noisy.train_network used to ignore `data`: a run on dataset A came back for dataset B."""
    kw = dict(steps=2, width=1 / 16, batch_size=8, hist_every=1, hist_sample=2, recal_batches=1)
    a = noisy.train_network("none", data=_images(seed=0), **kw)
    b = noisy.train_network("none", data=_images(seed=1), **kw)
    assert a["loss"] != b["loss"]
    assert noisy.train_network("none", data=_images(seed=0), **kw)["seconds"] == a["seconds"]  # served again


def test_the_platform_is_in_the_key(tmp_cache, monkeypatch):
    """A run with amp trains in bf16 on a CPU that has it and in float32 elsewhere; torch versions and CPU kernels
    (AVX512-BF16 vs AMX) give other numbers: a cache folder shared by two such machines never mixes them. Each field
    is changed to a value other than this machine's."""
    args = dict(norm="none", lr=0.1, steps=10)
    base = ics.vgg_run.key(**args)
    for field, value in (("cpu_bf16", not PLATFORM["cpu_bf16"]), ("torch", "0.0.0"),
                         ("cpu", "AVX2" if PLATFORM["cpu"] != "AVX2" else "AVX512"),
                         ("amx", not PLATFORM["amx"])):
        monkeypatch.setattr(cache, "platform_identity", lambda f=field, v=value: {**PLATFORM, f: v})
        assert ics.vgg_run.key(**args) != base, field
    monkeypatch.setattr(cache, "platform_identity", lambda: dict(PLATFORM))
    assert ics.vgg_run.key(**args) == base


def test_first_call_returns_what_the_cache_reads_back(tmp_cache):
    f = cache.cached_run("t")(lambda x, cache=True: {"keys": {1.5: (1, 2)}, "x": x})
    assert f(1) == f(1) == {"keys": {"1.5": [1, 2]}, "x": 1}


def test_unwritable_cache_warns_once_and_keeps_the_result(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.setenv("BNBOOK_CACHE", str(tmp_path / "afile" / "cache"))
    monkeypatch.setattr(cache, "_WARNED", set())
    calls = []
    f = cache.cached_run("t")(lambda x, cache=True: calls.append(x) or {"x": x})
    with pytest.warns(UserWarning, match="BNBOOK_CACHE") as seen:
        assert f(1) == {"x": 1}
    assert any("afile" in str(w.message) for w in seen)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        assert f(2) == {"x": 2}
    assert calls == [1, 2]


def test_code_fingerprint_follows_the_code_a_run_uses(tmp_path, monkeypatch):
    root = tmp_path / "bnutils"
    shutil.copytree(cache._ROOT, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_ROOT", root)

    def fp() -> str:
        cache.code_fingerprint.cache_clear()
        return cache.code_fingerprint("bnutils.experiments.noisy")

    before = fp()
    for unused in ("plots.py", "report/__init__.py", "experiments/divergence.py"):
        (root / unused).write_text((root / unused).read_text() + "\n# an axis label renamed\n")
        assert fp() == before, f"{unused} is not used by the noisy runs"
    for used in ("norms.py", "train.py", "metrics/activations.py", "experiments/noisy.py"):
        (root / used).write_text((root / used).read_text() + "\n# a change\n")
        after = fp()
        assert after != before, f"{used} is used by the noisy runs"
        before = after
    cache.code_fingerprint.cache_clear()
