"""tools/gpu_check.sh: its syntax, its CPU fallback end to end (on a toy chapter), and the runtime extrapolation
of bench/steps.py (with stand-in step times)."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_check.sh"


def test_script_syntax():
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True).returncode == 0
    r = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True)
    assert r.returncode == 2 and "usage: tools/gpu_check.sh OUT_DIR" in r.stderr


def _toy_chapter(path: Path) -> Path:
    """A chapter in miniature: parameters, set-up, one training run of 100 steps (capped by smoke mode)."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "auto"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    run = nbformat.v4.new_code_cell(
        "import bnutils, torch\nfrom bnutils import data, train\nP = bnutils.setup(profile, seed)\n"
        "g = torch.Generator().manual_seed(0)\nx, y = torch.randn(48, 3, 8, 8, generator=g), torch.arange(48) % 10\n"
        "d = data.Dataset('toy', data.Split(x[:32], y[:32]).to(P.device), data.Split(x[32:], y[32:]).to(P.device))\n"
        "net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.Linear(144, 10)).to(P.device)\n"
        "run = train.train(net, d, steps=100, lr=0.01, batch_size=8, eval_every=50, amp=P.amp)\n"
        "assert len(run.loss) == 2, len(run.loss)\nprint('toy ran', len(run.loss), 'steps at', P.name)")
    nb.cells = [params, run]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # ~30-60 s: torch imports, the FLOP estimate, a short CPU benchmark, one kernel
@pytest.mark.skipif(torch.cuda.is_available(), reason="the CPU fallback runs only where there is no CUDA")
def test_cpu_fallback_writes_its_results(tmp_path):
    toy = _toy_chapter(tmp_path / "toy.ipynb")
    out = tmp_path / "out"
    r = subprocess.run(["bash", str(SCRIPT), str(out)], capture_output=True, text=True,
                       env={**os.environ, "GPU_CHECK_NB": str(toy), "PY": sys.executable})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert "no CUDA device: running the CPU fallback" in r.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["device"] == "cpu" and [s["step"] for s in summary["steps"]] == ["bench", "smoke"]
    assert all(s["exit"] == 0 for s in summary["steps"]) and summary["extrapolated"] is None
    assert summary["bench"]["sections"] and summary["smoke"]["chapters"][0]["ok"]
    assert "toy ran 2 steps at gpu (smoke run)" in (out / "smoke" / "toy.ipynb").read_text()
    assert "| smoke | 0 |" in (out / "summary.md").read_text()


def _steps_module():
    spec = importlib.util.spec_from_file_location("bench_steps", ROOT / "bench" / "steps.py")
    module = sys.modules["bench_steps"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extrapolation_multiplies_each_items_passes_by_its_step_time():
    S = _steps_module()
    chapter = "03_noisy_bn"
    items = S.E.chapter_workload(chapter)
    per_pass = lambda w: 0.01 if w.mode == "train" else 0.001  # stand-in step times
    r = S.extrapolate(chapter, per_pass)
    assert r["seconds"] == pytest.approx(sum(w.passes * per_pass(w) for w in items))
    assert len(r["items"]) == len(items) and r["seconds"] > 0
    text = S.markdown([r], "a stand-in device", 5)
    assert chapter in text and "all chapters" in text


def test_step_time_of_a_small_work_item_on_the_cpu():
    S = _steps_module()
    w = S.E.Work(what="toy", model="dln/batchnorm", mode="train", batch=100, passes=10, device="cpu")
    assert 0 < S.seconds_per_pass(w, 2) < 5
    assert 0 < S.seconds_per_pass(S.E.Work(what="toy", model="mlp/none", mode="forward", batch=8, passes=1,
                                           device="cpu"), 2) < 5
