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
CHAPTERS = ("basics", "ics", "noisy", "landscape", "divergence")


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
    table = exp.sweep_table(runs, exp.NORMS, [1e-4, 0.1, 1.0], [0, 1])
    html = plots.frames_slider(lambda fig, lr: figs.draw_explorer_frame(fig, lr, runs, table), [0.1, 1.0],
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


def test_accuracy_vs_lr_keeps_its_legend_off_the_data():
    from bnutils.experiments import divergence as exp
    from bnutils.figures import divergence as figs

    runs = [_sweep_run(n, lr, s, diverged=(n == "none" and lr == 1.0)) for n in exp.NORMS for lr in (1e-4, 0.1, 1.0)
            for s in (0, 1)]
    fig, ax = plt.subplots()
    figs.draw_accuracy_vs_lr(ax, exp.sweep_table(runs, exp.NORMS, [1e-4, 0.1, 1.0], [0, 1]))
    fig.canvas.draw()
    legend, axes = ax.get_legend().get_window_extent(), ax.get_window_extent()
    assert legend.x0 >= axes.x1  # outside the axes, right of them
    assert any(line.get_marker() == "x" for line in ax.lines) and "diverged (no accuracy)" in [
        t.get_text() for t in ax.get_legend().get_texts()]


def test_channel_heatmaps_share_one_scale_per_row_and_name_the_network():
    from bnutils.figures import divergence as figs

    rng = np.random.default_rng(0)
    per = lambda k: {str(L): (rng.random((3, 8)) * 10 ** (k * i)).tolist() for i, L in enumerate((8, 44, 80))}
    res = {"layers": [8, 44, 80], "blocks": [2, 11, 20], "depth": 56, "width": 0.25, "mean": per(1), "var": per(2)}
    res["var"]["8"][0][0] = 0.0  # a dead channel
    fig = figs.plot_channel_heatmaps(res, title="t")
    images = [ax.images[0] for ax in fig.axes if ax.images]
    assert len(images) == 6
    for row in (images[:3], images[3:]):
        assert len({(im.norm.vmin, im.norm.vmax) for im in row}) == 1  # one colour scale per row
    assert len(fig.axes) == 6 + 2  # one colourbar per row
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert all("ResNet-56 at ¼ width" in t and "of 28" in t for t in titles)
    assert "layer 44 of ResNet-110" in titles[1]
    bottom = images[3]
    assert bottom.get_array()[0, 0] < bottom.norm.vmin  # the dead channel: below the scale, in the dead colour
    assert matplotlib.colors.to_hex(bottom.cmap.get_under()) == figs.DEAD_COLOR


def test_basics_figures_draw():
    from bnutils.figures import basics as figs

    spread = {b: {"batch_means": list(np.random.default_rng(b).normal(0, 1 / b, 20)), "population_mean": 0.0,
                  "std": 1 / b} for b in (1, 4, 16)}
    acc = {1: 0.2, 4: 0.5, 16: 0.7}
    html = plots.frames_slider(lambda fig, b: figs.draw_spread_frame(fig, b, spread, acc, 0.75), [1, 16],
                               figsize=(5, 2))
    assert html.count("data:image/png;base64") == 2
    fig = plt.figure()
    figs.draw_spread_frame(fig, 4, spread, acc, 0.75)
    assert fig.axes[0].get_xlim() == (min(spread[1]["batch_means"]), max(spread[1]["batch_means"]))  # one x range
    run = lambda s: {"steps": [0, 10, 20], "percentiles": [[-1, 0, 1], [-1.5, 0, 1.5], [-2, 0, 2]],
                     "evals": [{"step": 10, "test_acc": 0.2 + s}, {"step": 20, "test_acc": 0.3 + s}]}
    fig1 = {(lr, n): [run(0.0), run(0.1)] for lr in (0.1, 0.5) for n in ("none", "batchnorm")}
    drift = {k: [1.0, 1.2] for k in fig1}
    fig = figs.plot_fig1(fig1, drift, [0.1, 0.5], [0, 1], title="steadier")
    assert isinstance(fig, Figure) and len(fig.axes) == 6 and fig._suptitle.get_text() == "steadier"
    assert fig.axes[1].get_ylim() == fig.axes[2].get_ylim()  # without and with BN on one y range
    assert "η = 0.1" in fig.axes[0].get_title()


def test_equal_loss_says_so_when_nothing_can_be_log_scaled():
    """Runs too short for a measurement after step 0 (or with non-positive values) draw an empty, labelled panel."""
    from bnutils.figures import ics as figs

    def short(seed):
        r = _ics_run(seed)
        r["ics"] = {**r["ics"], "steps": [0], "l2": [[0.5]], "cos": [[0.1]], "rel": [[0.1]], "g_norm": [[1.0]]}
        return r

    def nonpositive(seed):
        r = _ics_run(seed)
        r["ics"] = {**r["ics"], "l2": [[0.0]] * 4}
        return r

    for make in (short, nonpositive):
        runs = {"none": [make(0)], "batchnorm": [make(1)]}
        fig = figs.plot_equal_loss([("VGG", runs, 0.1, 5)], title="t")
        fig.canvas.draw()  # used to raise "Data cannot be log-scaled"
        ax = fig.axes[0]
        assert ax.get_yscale() == "linear" and any("nothing to draw" in t.get_text() for t in ax.texts)
    runs = {"none": [_ics_run(0)], "batchnorm": [_ics_run(1)]}
    fig = figs.plot_equal_loss([("VGG", runs, 0.1, 5)])
    fig.canvas.draw()
    assert fig.axes[0].get_yscale() == "log" and not fig.axes[0].texts


def test_best_point_sentence_handles_a_sweep_where_nothing_trains():
    """Chapter 5's title: the best point, or a sentence from the data when every lr diverged (best_lr None)."""
    from bnutils.experiments import divergence as exp
    from bnutils.report import divergence as rep

    runs = [_sweep_run("batchnorm", lr, 0, diverged=True) for lr in (0.1, 1.0)] + [_sweep_run("none", 0.1, 0)]
    s = exp.summarize_sweep(runs)
    assert s["batchnorm"]["best_lr"] is None
    assert rep.best("BN", s["batchnorm"]) == "BN trains at none of the 2 η tried (each diverged in some seed)"
    text = rep.best("no BN", s["none"])
    assert text.startswith("no BN's best: ") and text.endswith("% at η = 0.1")


def test_relative_loss_draws_only_the_measured_batches():
    """A result with fewer batches than `show_batches` (a smoke run measures 2) draws what it has."""
    from bnutils.figures import divergence as figs

    def res(n_batches):
        return {"step_sizes": [1e-3, 1e-2, 1e-1], "ratio": [[1.0, 2.0, 5e3]] * n_batches}

    fig = figs.plot_relative_loss({"none": res(2), "batchnorm": res(7)})
    fig.canvas.draw()
    labels = [[ln.get_label() for ln in ax.lines if ln.get_label().startswith("mini-batch")] for ax in fig.axes]
    assert labels == [["mini-batch 1"], ["mini-batch 1", "mini-batch 4", "mini-batch 7"]]
    fig = figs.plot_relative_loss({"none": res(2)}, show_batches=(4, 7))
    assert [ln.get_label() for ln in fig.axes[0].lines][:2] == ["mini-batch 1", "mini-batch 2"]
