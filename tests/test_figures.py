"""The chapters' figures (bnutils.figures.<chapter>): each module imports, draws from a tiny synthetic result
without error and follows the convention (plot_* returns a Figure, draw_* draws into the axes it is given,
draw_*_frame works with plots.frames_slider); experiments modules never import matplotlib."""
from __future__ import annotations

import importlib
import math
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.figure import Figure

from bnutils import plots

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("ics", "noisy", "landscape", "divergence")  # basics has no figure functions


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_figures_modules_follow_the_naming_convention(chapter):
    mod = importlib.import_module(f"bnutils.figures.{chapter}")
    public = [n for n, v in vars(mod).items() if callable(v) and not n.startswith("_")
              and getattr(v, "__module__", None) == mod.__name__]
    assert public and all(n.startswith(("plot_", "draw_")) for n in public), public


def test_experiments_modules_import_no_matplotlib():
    for f in sorted((ROOT / "bnutils" / "experiments").glob("*.py")):
        assert not re.search(r"^\s*(import|from)\s+matplotlib", f.read_text(), re.M), f.name
    code = ("import sys, importlib\n"
            "for m in ('basics', 'ics', 'noisy', 'landscape', 'divergence'):\n"
            "    importlib.import_module('bnutils.experiments.' + m)\n"
            "print(any(k == 'matplotlib' or k.startswith('matplotlib.') for k in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------- chapter 2: ics

def _ics_run(seed: int, diverged: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    steps = [0, 5, 10, 15]
    return {"loss": list(2.3 * np.exp(-np.arange(20) / 10) + 0.01 * rng.random(20)), "diverged": diverged,
            "diverged_at": 15 if diverged else None,
            "ics": {"layers": [5], "steps": steps, "l2": [[v] for v in rng.random(4) + 0.1],
                    "cos": [[v] for v in rng.uniform(-1, 1, 4)], "rel": [[v] for v in rng.random(4)],
                    "g_norm": [[1.0]] * 4}}


def test_ics_figures_draw():
    from bnutils.figures import ics as figs

    rows = {0.1: {"none": [_ics_run(0), _ics_run(1, diverged=True)], "batchnorm": [_ics_run(2)]}}
    fig = figs.plot_fig3(rows, [5], title="a computed title")
    assert isinstance(fig, Figure) and len(fig.axes) == 3 and fig._suptitle.get_text() == "a computed title"
    assert figs.plot_fig3(rows, [5])._suptitle is None  # title is optional
    fig, (a1, a2) = plt.subplots(1, 2)
    assert figs.draw_ics_band(a1, rows[0.1]["none"], "l2", 5, "none", log=True) is None
    assert a1.get_yscale() == "log" and a1.lines
    assert figs.draw_equal_loss(a2, rows[0.1]["none"], rows[0.1]["batchnorm"], 5, "cos", window=3) is None
    assert a2.lines


# ---------------------------------------------------------------- chapter 3: noisy

def _noisy_run(kind: str, seed: int = 0, diverged: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    layer = {"hist_steps": [0, 5, 10], "hist": [list(rng.normal(size=50)) for _ in range(3)]}
    for m in ("mean", "var"):
        layer[f"{m}_change"] = list(rng.random(10) + 1e-3)
        layer[f"{m}_drift"] = list(np.cumsum(rng.random(10)))
    return {"kind": kind, "seed": seed, "diverged": diverged, "diverged_at": 5 if diverged else None,
            "loss": list(2.3 - 0.1 * np.arange(10)), "acc": list(0.1 + 0.02 * np.arange(10)),
            "test_acc": None if diverged else 0.4, "test_acc_recal": None, "layers": {"2": layer, "9": layer}}


def test_noisy_figures_draw():
    from bnutils.figures import noisy as figs

    runs = [_noisy_run("none"), _noisy_run("batchnorm"), _noisy_run("noisy"), _noisy_run("noise", diverged=True)]
    fig = figs.plot_training(runs, window=2, title="t")
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "t"
    assert isinstance(figs.plot_histograms(runs, seed=0), Figure)
    assert isinstance(figs.plot_moments(runs, "drift", seed=0, window=2, title="m"), Figure)
    with pytest.raises(ValueError, match="what"):
        figs.plot_moments(runs, "nonsense")
    sweep = {k: {0.0: _noisy_run(k), 1.0: _noisy_run(k, diverged=k == "noise")} for k in ("noisy", "noise")}
    html = plots.frames_slider(lambda fig, s: figs.draw_sweep_frame(fig, s, sweep, 2), [0.0, 1.0], figsize=(4, 2))
    assert html.count("data:image/png;base64") == 2


# ---------------------------------------------------------------- chapter 4: landscape

def _probe(seed: int, blow_up: bool = False) -> dict:
    rng = np.random.default_rng(seed)
    eta_rel = [0.5, 1.0, 2.0, 4.0]
    dists = [list(rng.random(4) + 0.1) for _ in range(3)]
    if blow_up:
        dists[-1][-1] = math.inf
    return {"probe": {"step": [0, 10, 20], "eta_rel": eta_rel, "lr": [0.1] * 3, "grad_norm": [1.0] * 3,
                      "losses": [list(rng.random(4) + 1) for _ in range(3)], "grad_dists": dists}}


def test_landscape_figures_draw():
    from bnutils.figures import landscape as figs

    runs = {"none": [_probe(0, blow_up=True), _probe(1)], "batchnorm": [_probe(2)]}
    fig, axes = plt.subplots(1, 4)
    assert figs.draw_landscape(axes[:3], runs, max_rel=4.0) is None
    assert all(ax.get_yscale() == "log" for ax in axes[:3])
    assert figs.draw_gradient_change(axes[3], runs, "last") is None
    assert axes[3].get_title() == "step 20"


# ---------------------------------------------------------------- chapter 5: divergence

def _sweep_run(norm: str, lr: float, seed: int, diverged: bool = False) -> dict:
    loss = list(2.3 * np.exp(-np.arange(12) / (5 + seed)))
    if diverged:
        loss = loss[:6] + [math.inf]
    return {"norm": norm, "lr": lr, "seed": seed, "diverged": diverged, "diverged_at": 6 if diverged else None,
            "loss": loss, "final_test_acc": None if diverged else 0.3 + 0.1 * seed,
            "evals": [] if diverged else [{"step": 6, "test_acc": 0.2}, {"step": 12, "test_acc": 0.3}]}


def test_divergence_figures_draw():
    from bnutils.experiments import divergence as exp
    from bnutils.figures import divergence as figs

    runs = [_sweep_run(n, lr, s, diverged=(n == "none" and lr == 1.0)) for n in exp.NORMS for lr in (1e-4, 0.1, 1.0)
            for s in (0, 1)]
    summary = exp.summarize_sweep(runs)
    html = plots.frames_slider(lambda fig, lr: figs.draw_explorer_frame(fig, lr, runs, summary), [0.1, 1.0],
                               figsize=(5, 2))
    assert html.count("data:image/png;base64") == 2
    fig, ax = plt.subplots()
    assert figs.draw_curves(ax, runs, 1.0) is None and "diverged" in ax.get_title()
    assert isinstance(figs.plot_paper_lrs(runs, title="paper"), Figure)
    rng = np.random.default_rng(0)
    sv = {k: list(rng.lognormal(0, k / 2, 50)) for k in (1, 3)}
    cond = {"factors": [1, 2, 3], "cond": [[10.0, 100.0, 1e3], [12.0, 90.0, 2e3]]}
    fig = figs.plot_random_matrices(sv, cond, title="r")
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "r"
    noise = {n: {"batch_sizes": [16, 32, 64], "sq_dev": [[4.0, 4.2], [2.0, 2.1], [1.0, 1.1]]} for n in exp.NORMS}
    assert isinstance(figs.plot_noise(noise, [0.1, 1.0]), Figure)
    rel = {n: {"step_sizes": [1e-3, 1e-2, 1e-1], "ratio": [[1.0, 2.0, 1e4 if n == "none" else 3.0]] * 2}
           for n in exp.NORMS}
    assert isinstance(figs.plot_relative_loss(rel, show_batches=(1, 2)), Figure)
    assert isinstance(figs.plot_relative_loss_heatmap(rel), Figure)
