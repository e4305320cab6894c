"""bench/estimate.py and the chapters' SCALES / workload(): FLOP counts against hand counts, every chapter's gpu
workload, the estimate following SCALES["gpu"], the notebooks reading SCALES, and a book build that survives a
broken estimator."""
from __future__ import annotations

import ast
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

from bnutils.profiles import PROFILE_NAMES, PROFILES

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("bench_estimate", ROOT / "bench" / "estimate.py")
E = sys.modules["bench_estimate"] = importlib.util.module_from_spec(_spec)  # dataclasses look the module up
_spec.loader.exec_module(E)
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import verdicts as V  # noqa: E402

CHAPTERS = list(E.WORKLOADS)
FAKE = lambda key, width=1.0: E.ModelCost(1e8, 3e8, 100, 300, 10)  # noqa: E731 (the real counts take seconds)


def test_linear_layer_flops_match_a_hand_count():
    n, d_in, d_out = 8, 20, 10
    c = E.measure(nn.Linear(d_in, d_out, bias=False), (d_in,), batch=n)
    assert c.fwd_flops == 2 * d_in * d_out  # per example: one multiply-add per weight
    assert c.step_flops == 2 * (2 * d_in * d_out)  # + the weight gradient; the input needs no gradient


def test_conv_flops_on_the_meta_device_match_a_hand_count():
    with torch.device("meta"):
        net = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.Flatten())
    c = E.measure(net, (3, 32, 32), batch=4)
    assert c.fwd_flops == 2 * 3 * 16 * 3 * 3 * 32 * 32


def test_mlp_of_chapter_1_matches_a_hand_count():
    c = E.model_cost("mlp/batchnorm")  # 3072 -> 100 -> 100 -> 100 -> 10, built on the meta device
    weights = 3072 * 100 + 100 * 100 * 2 + 100 * 10
    assert c.fwd_flops == 2 * weights
    assert c.step_flops == 2 * weights + 2 * weights + 2 * (100 * 100 * 2 + 100 * 10)  # + dW, + dx above layer 1
    assert c.n_layers == 4 and 0 < c.fwd_ops < c.step_ops


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_chapter_has_a_workload_with_positive_totals(chapter):
    items = E.chapter_workload(chapter)
    assert items and all(w.passes > 0 and w.batch > 0 and w.mode in ("train", "grad", "forward") for w in items)
    est = E.estimate_chapter(chapter, cost=FAKE)
    assert est.flops > 0 and 0 < est.seconds[0] <= est.seconds[1]
    assert 0 <= est.cpu_seconds[0] <= est.seconds[0]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_scales_have_exactly_the_profiles_with_the_same_keys_and_a_workload_at_each(chapter):
    module = E.WORKLOADS[chapter]
    assert set(module.SCALES) == set(PROFILE_NAMES)
    keys = [sorted(s) for s in module.SCALES.values()]
    assert keys[0] and all(k == keys[0] for k in keys)
    for name in PROFILE_NAMES:  # every profile's scale describes a runnable workload, not only gpu's
        assert all(E.Work(**d).passes > 0 for d in module.workload(module.SCALES[name], PROFILES[name]))


@pytest.mark.parametrize("chapter, key", [("01_bn_basics", "convnet_steps"), ("02_internal_covariate_shift",
                                          "vgg_steps"), ("03_noisy_bn", "steps"), ("04_landscape", "vgg_steps"),
                                          ("05_learning_rate", "steps")])
def test_the_estimate_follows_the_gpu_scale(chapter, key, monkeypatch):
    gpu = E.WORKLOADS[chapter].SCALES["gpu"]
    before = E.estimate_chapter(chapter)  # real FLOP counts
    monkeypatch.setitem(gpu, key, 2 * gpu[key])
    after = E.estimate_chapter(chapter)
    assert before.seconds[1] < after.seconds[1] <= 2 * before.seconds[1] * 1.001
    assert before.flops < after.flops <= 2 * before.flops * 1.001
    if chapter == "03_noisy_bn":  # its time is training: twice the steps, about twice the time
        assert after.seconds[1] / before.seconds[1] == pytest.approx(2, rel=0.05)


def test_more_learning_rates_in_the_gpu_scale_cost_more(monkeypatch):
    gpu = E.WORKLOADS["05_learning_rate"].SCALES["gpu"]
    before = E.estimate_chapter("05_learning_rate", cost=FAKE).seconds
    monkeypatch.setitem(gpu, "lrs", gpu["lrs"] + [3.0])
    assert E.estimate_chapter("05_learning_rate", cost=FAKE).seconds[0] > before[0]


def test_a_measured_throughput_replaces_the_amp_range_and_overhead_bound_work_scales_with_launches():
    cost = E.ModelCost(fwd_flops=0.0, step_flops=1e12, fwd_ops=0, step_ops=1000, n_layers=0)
    w = E.Work("x", "any", "grad", batch=10, passes=100, amp=True)  # 1e15 FLOP
    lo, hi = E.work_seconds(w, cost)
    assert lo < hi
    lo, _ = E.work_seconds(w, cost, achieved_tflops=10.0)
    assert lo == pytest.approx(100.0)  # 1e15 FLOP at 10 TFLOP/s; the overhead hides behind it
    tiny = E.Work("y", "any", "grad", batch=1, passes=1000, device="cpu")  # FLOPs negligible: ops decide
    one, vmapped = E.work_seconds(tiny, E.ModelCost(0.0, 1.0, 0, 600, 25)), E.work_seconds(
        E.Work("y", "any", "grad", batch=1, passes=1000, device="cpu", launches=100), E.ModelCost(0.0, 1.0, 0, 600, 25))
    assert vmapped[0] == pytest.approx(one[0] / 10) and vmapped[1] == pytest.approx(one[1] / 10, rel=1e-3)


def _book(tmp_path: Path) -> Path:
    """A book with two chapters' run metadata and no bench/ (so no estimator)."""
    nbs = tmp_path / "notebooks"
    nbs.mkdir()
    for stem in ("01_bn_basics", "09_unknown"):
        (nbs / f"{stem}.ipynb").write_text(json.dumps(
            {"cells": [], "metadata": {"bnbook": {"profile": "cpu", "seconds": 120.0}}}))
    return nbs


def test_runtime_table_survives_a_missing_estimator(tmp_path):
    text = V.runtimes(_book(tmp_path))  # tmp_path/bench/estimate.py does not exist
    rows = [r for r in text.splitlines() if r.startswith("| [")]
    assert len(rows) == 2 and all(r.rstrip(" |").endswith("not estimated") for r in rows)
    assert "No `gpu` estimates" in text


def test_runtime_table_survives_an_estimator_that_raises(tmp_path, monkeypatch):
    def broken(chapter, *a, **k):
        raise RuntimeError("broken workload")

    monkeypatch.setattr(V, "_estimate_module", lambda root: E)
    monkeypatch.setattr(E, "estimate_chapter", broken)
    text = V.runtimes(_book(tmp_path))
    rows = [r for r in text.splitlines() if r.startswith("| [")]
    assert len(rows) == 2 and all(r.rstrip(" |").endswith("not estimated") for r in rows)
    assert "Basis of the `gpu` estimates" in text


def _code_cells(chapter: str) -> list[str]:
    nb = json.loads((ROOT / "notebooks" / f"{chapter}.ipynb").read_text())
    cells = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    if any("exp.settings(" in c for c in cells):  # the notebook's settings are computed by exp.settings: read its body
        import inspect
        import textwrap
        src = textwrap.dedent(inspect.getsource(E.WORKLOADS[chapter].settings))
        fn = ast.parse(src).body[0]
        cells.append(textwrap.dedent("\n".join(src.splitlines()[fn.body[0].end_lineno:])))  # after the docstring
    return cells


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_notebook_reads_its_settings_from_scales(chapter):
    code = "\n".join(_code_cells(chapter))
    assert "exp.SCALES[P.name]" in code and "P.pick(" not in code
    unread = [k for k in E.WORKLOADS[chapter].SCALES["gpu"] if f'["{k}"]' not in code]
    assert not unread, f"{chapter} does not read {unread} from SCALES"


def _notebook_literals(chapter: str) -> dict:
    """The chapter's fixed values: `name = <literal>` (None skipped) and the fallbacks of `<param> or <literal>`,
    keyed by the lower-cased name or the parameter."""
    found = {}
    for src in _code_cells(chapter):
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in tree.body:
            if not isinstance(node, ast.Assign):
                continue
            value = node.value.args[0] if isinstance(node.value, ast.Call) and node.value.args else node.value
            if isinstance(value, ast.BoolOp) and isinstance(value.values[0], ast.Name):
                name, value = value.values[0].id, value.values[-1]
            elif isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
            else:
                continue
            try:
                v = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError):
                continue
            if v is not None:
                found[name.lower()] = v
    return found


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_workload_defaults_are_the_notebooks_fixed_values(chapter):
    import inspect

    fixed = _notebook_literals(chapter)
    for name, p in inspect.signature(E.WORKLOADS[chapter].workload).parameters.items():
        if p.kind is p.KEYWORD_ONLY:
            assert name in fixed, f"{chapter}: the notebook has no fixed value for workload's {name}"
            norm = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731
            assert norm(fixed[name]) == norm(p.default), f"{chapter}: {name}"


def test_bench_only_names_the_sections_it_takes():
    """bench/run.py --only with a section that is not a CPU section stops before measuring, naming the ones it takes
    (and never rewrites BENCHMARKS.md)."""
    import subprocess

    before = (ROOT / "BENCHMARKS.md").read_text()
    r = subprocess.run([sys.executable, str(ROOT / "bench" / "run.py"), "--only", "7", "5"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "CPU sections (1, 2, 3, 7, 8), not ['7', '5']" in r.stderr
    assert (ROOT / "BENCHMARKS.md").read_text() == before
