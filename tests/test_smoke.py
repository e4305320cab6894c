"""Smoke mode (BNBOOK_SMOKE=1, `make smoke`): the gpu settings, each run capped, named as a smoke run, keyed apart
in the run cache, with the device check on; and the device check itself (a batch on another device fails)."""
from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import bnutils
from bnutils import cache, profiles, train as T
from bnutils.models import MLP
from conftest import cifar_root

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smoke_mode(monkeypatch):
    monkeypatch.setenv(profiles.SMOKE_ENV, "1")
    monkeypatch.setenv(profiles.DEVICE_CHECK_ENV, "")  # restored after the test even when setup() sets it
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    return profiles.SMOKE


def test_smoke_mode_is_the_gpu_settings_named_as_a_smoke_run(smoke_mode, monkeypatch):
    from bnutils.experiments import divergence

    p = profiles.resolve_profile("ci")  # whatever the notebook asks for
    assert p.name == "gpu" and divergence.SCALES[p.name] is divergence.SCALES["gpu"]
    assert str(p.name) == f"{p.name}" == "gpu (smoke run)" and f"profile `{p.name}`" == "profile `gpu (smoke run)`"
    assert p.vgg_width == profiles.PROFILES["gpu"].vgg_width and p.amp
    assert p.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert str(pickle.loads(pickle.dumps(p)).name) == "gpu (smoke run)"  # as a worker process receives it
    monkeypatch.setenv(profiles.SMOKE_ENV, "0")
    assert profiles.smoke() is None and str(profiles.resolve_profile("ci").name) == "ci"


def test_setup_announces_smoke_and_turns_the_device_check_on(smoke_mode, capsys):
    import os

    p = bnutils.setup("cpu", 0)
    out = capsys.readouterr().out
    assert "SMOKE RUN" in out and "profile=gpu (smoke run)" in out
    assert os.environ[profiles.DEVICE_CHECK_ENV] == torch.device(p.device).type


def test_smoke_caps_training_steps_and_evaluation_batches(smoke_mode, tiny_images):
    data = tiny_images(64, 100, size=8)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
    sizes = []
    model.register_forward_hook(lambda m, i, o: sizes.append((m.training, len(i[0]))))
    run = T.train(model, data, steps=50, lr=0.01, batch_size=48, eval_every=10, progress=False)
    assert len(run.loss) == smoke_mode.steps and run.config["steps"] == smoke_mode.steps and len(run.evals) == 1
    assert [n for training, n in sizes if training] == [smoke_mode.batch] * smoke_mode.steps
    sizes.clear()
    T.evaluate(model, data.test, batch_size=smoke_mode.batch - 2)
    assert sizes == [(False, smoke_mode.batch - 2)] * smoke_mode.eval_batches
    sizes.clear()
    T.evaluate(model, data.test)  # batches of 1000 by default: cut to the cap
    assert sizes == [(False, smoke_mode.batch)] * smoke_mode.eval_batches


def test_smoke_runs_are_keyed_apart_from_real_runs(smoke_mode, monkeypatch, tmp_cache):
    @cache.cached_run("test-smoke")
    def run(steps: int, cache: bool = True) -> dict:
        return {"steps": steps}

    smoke_key = run.key(5)
    monkeypatch.delenv(profiles.SMOKE_ENV)
    assert run.key(5) != smoke_key


@pytest.mark.skipif(cifar_root() is None, reason="no offline CIFAR-10 copy")
def test_smoke_loads_small_cifar10_subsets(smoke_mode):
    from bnutils.data import load_cifar10

    d = load_cifar10(None, 5000, root=cifar_root())
    assert (len(d.train), len(d.test)) == (smoke_mode.n_train, smoke_mode.n_test)
    assert d.cache_key()["n_train"] == smoke_mode.n_train  # a smoke subset is never taken for the full data


def _batches_on(device: str):
    def fake(split, batch_size, seed=0):
        while True:
            yield split.x[:batch_size].to(device), split.y[:batch_size].to(device)
    return fake


def test_device_check_fails_when_a_batch_is_on_another_device(monkeypatch, tiny_images):
    """The stand-in for a stray CPU tensor on a GPU: with the check on, a training batch on another device (here
    `meta`) fails naming the step, though the model and the data set are on the CPU."""
    data = tiny_images(32, 8)
    model = MLP(3 * 32 * 32, width=8, depth=1)
    monkeypatch.setenv(profiles.DEVICE_CHECK_ENV, "cpu")
    T.train(model, data, steps=2, lr=0.01, batch_size=8, progress=False)  # all on the CPU: passes
    monkeypatch.setattr(T, "batches", _batches_on("meta"))
    with pytest.raises(AssertionError, match=r"training batch of step 0 is on meta, not on the profile's device 'cpu'"):
        T.train(model, data, steps=2, lr=0.01, batch_size=8, progress=False)
    monkeypatch.setenv(profiles.DEVICE_CHECK_ENV, "")  # the check off: the same stray batch goes unnoticed here
    with pytest.raises(Exception) as e:  # (it fails later, inside the model, with no word about devices)
        T.train(model, data, steps=2, lr=0.01, batch_size=8, progress=False)
    assert "profile's device" not in str(e.value)


def test_device_check_covers_the_model_and_evaluation(monkeypatch, tiny_images):
    data = tiny_images(32, 8)
    model = MLP(3 * 32 * 32, width=8, depth=1)
    monkeypatch.setenv(profiles.DEVICE_CHECK_ENV, "cuda")  # the profile's device, which this model is not on
    if not torch.cuda.is_available():
        with pytest.raises(AssertionError, match="the trained model is on cpu"):
            T.train(model, data, steps=2, lr=0.01, batch_size=8, progress=False)
        with pytest.raises(AssertionError, match="the evaluated model is on cpu"):
            T.evaluate(model, data.test)
    monkeypatch.setenv(profiles.DEVICE_CHECK_ENV, "cpu")
    profiles.check_device("anything", model, data.test.x)  # all on the CPU: no error
    with pytest.raises(AssertionError, match="a probe is on meta"):
        profiles.check_device("a probe", torch.zeros(2, device="meta"))


@pytest.mark.slow
@pytest.mark.smoke
def test_smoke_runs_every_chapter_at_the_gpu_settings(tmp_path):
    """`make smoke`: every cell of every chapter at the gpu settings, capped, ends with its verdict tables."""
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "nb.py"), "smoke"], capture_output=True, text=True,
                       env={**__import__("os").environ, "SMOKE_OUT": str(tmp_path / "smoke")})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    import json

    summary = json.loads((tmp_path / "smoke" / "smoke.json").read_text())
    assert summary["chapters"] and all(c["ok"] and c["verdicts"] for c in summary["chapters"])
    assert all("smoke" in t["profile"] or t["profile"] == "gpu" for c in summary["chapters"] for t in c["verdicts"])


def test_smoke_cap_is_the_identity_unless_smoke_mode_is_on(monkeypatch):
    monkeypatch.delenv(profiles.SMOKE_ENV, raising=False)
    assert [profiles.smoke_cap(n) for n in (1, 2, 9, 200)] == [1, 2, 9, 200]
    assert profiles.smoke_cap(200, cap=5) == 200
    monkeypatch.setenv(profiles.SMOKE_ENV, "0")
    assert profiles.smoke_cap(200) == 200
    monkeypatch.setenv(profiles.SMOKE_ENV, "1")
    assert [profiles.smoke_cap(n) for n in (1, 2, 9, 200)] == [1, 2, 2, 2]
    assert profiles.smoke_cap(200, cap=5) == 5 and profiles.smoke_cap(3, cap=5) == 3


def test_lr_scan_scans_two_lrs_in_smoke_mode_keeping_the_pair(monkeypatch):
    from bnutils.experiments import ics

    seen = []

    def fake_run(norm, lr, **kw):
        seen.append((norm, lr))
        return {"loss": [1.0], "diverged": False, "evals": [{"test_acc": 0.5}]}

    monkeypatch.setattr(ics, "vgg_run", fake_run)
    monkeypatch.delenv(profiles.SMOKE_ENV, raising=False)
    grid = [0.02, 0.05, 0.1, 0.2, 0.5]
    assert ics.lr_scan(grid, steps=2, keep=(0.1, 0.5))["lrs"] == grid  # smoke off: the whole grid
    monkeypatch.setenv(profiles.SMOKE_ENV, "1")
    assert ics.lr_scan(grid, steps=2, keep=(0.1, 0.5))["lrs"] == [0.1, 0.5]
    assert ics.lr_scan(grid, steps=2)["lrs"] == grid  # without keep the caller may read any lr back
    assert ics.lr_scan(grid, steps=2, keep=(0.1,))["lrs"] == [0.02, 0.1]
    assert {lr for _, lr in seen[-4:]} == {0.02, 0.1}


def test_chapter1_loops_are_capped_in_smoke_mode_only(monkeypatch, tiny_images):
    """batch_mean_spread and train_mode_accuracy bypass bnutils.train: their batch counts shrink via smoke_cap."""
    from bnutils.experiments import basics

    monkeypatch.setenv(profiles.DEVICE_CHECK_ENV, "")
    data = tiny_images(n_train=16, n_test=64, size=8)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(10))
    model(data.test.x[:4])
    calls = []
    model.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    for smoke_on, n_spread, n_acc in ((False, 5, 8), (True, 2, 2)):
        if smoke_on:
            monkeypatch.setenv(profiles.SMOKE_ENV, "1")
        else:
            monkeypatch.delenv(profiles.SMOKE_ENV, raising=False)
        assert len(basics.batch_mean_spread(model, model[1], data.test, 4, n_batches=5)["batch_means"]) == n_spread
        calls.clear()
        basics.train_mode_accuracy(model, data.test, 8, n_images=64)
        assert len(calls) == n_acc


def test_seed_lists_shrink_to_one_seed_in_smoke_mode_only(monkeypatch):
    """Chapters average over `P.seeds(seed, n)`; smoke mode runs the first only (every code path, half the cost)."""
    from bnutils.experiments import landscape, noisy

    monkeypatch.delenv(profiles.SMOKE_ENV, raising=False)
    p = profiles.resolve_profile("cpu")
    assert p.seeds(3, 2) == profiles.seed_list(3, 2) == [3, 4]
    assert noisy.settings(p, noisy.SCALES["cpu"], seed=3, n_seeds=2)["seeds"] == [3, 4]
    monkeypatch.setenv(profiles.SMOKE_ENV, "1")
    assert p.seeds(3, 2) == [3] and p.seeds(3, 1) == [3]
    assert noisy.settings(p, noisy.SCALES["cpu"], seed=3, n_seeds=2)["seeds"] == [3]
    assert len(landscape.settings(p, landscape.SCALES["cpu"], vgg_lr=0.1, dln_lr=1e-6, vgg_probe_range=(0.5, 4),
                                  vgg_n_probes=3, dln_probe_range=(0.5, 4), dln_n_probes=3, n_seeds=2)["seeds"]) == 1
