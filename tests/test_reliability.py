"""Reliability of whole chapters: a bad parameter fails fast with a clear message; a re-run repeats its numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MIME = "application/vnd.bnbook.verdicts+json"
DETERMINISM_CHAPTERS = ["05_learning_rate.ipynb"]  # its sweep fans out to worker processes: the hardest case


def _fresh_cache(path: Path) -> Path:
    """An empty run cache that still shares the decoded CIFAR-10 arrays (decoding them again takes ~30 s)."""
    from bnutils.cache import cache_dir

    path.mkdir(parents=True, exist_ok=True)
    for arrays in cache_dir().glob("cifar10-*.npz"):
        (path / arrays.name).symlink_to(arrays)
    return path


def _papermill(nb: str, out: Path, params: dict, cache: Path) -> subprocess.CompletedProcess:
    args = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / nb), str(out), "-k", "python3",
            "--cwd", str(ROOT / "notebooks"), "--no-progress-bar"]
    for k, v in params.items():
        args += ["-p", k, str(v)]
    env = {**os.environ, "BNBOOK_STATIC": "1", "TQDM_DISABLE": "1", "BNBOOK_CACHE": str(_fresh_cache(cache))}
    env.pop("BNBOOK_PROFILE", None)
    return subprocess.run(args, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("params,message", [
    ({"profile": "laptop"}, "profile='laptop' is not allowed; choose one of ['auto', 'ci', 'cpu', 'gpu']"),
    ({"profile": "ci", "convnet_steps": 0}, "convnet_steps=0 must be an integer >= 1"),
])
def test_bad_notebook_parameter_fails_fast_with_its_name(tmp_path, params, message):
    t0 = time.perf_counter()
    r = _papermill("01_bn_basics.ipynb", tmp_path / "out.ipynb", params, tmp_path / "cache")
    seconds = time.perf_counter() - t0
    assert r.returncode != 0
    assert message in r.stderr + r.stdout
    out = json.loads((tmp_path / "out.ipynb").read_text())
    ran = [c for c in out["cells"] if c["cell_type"] == "code" and c.get("execution_count")]
    assert len(ran) <= 4, f"{len(ran)} cells ran before the error: validation must come before any expensive work"
    assert seconds < 120


def _numbers(path: Path) -> list:
    """What a chapter records: its verdict data (claims with their numeric evidence)."""
    nb = json.loads(path.read_text())
    return [o["data"][MIME] for c in nb["cells"] for o in c.get("outputs", []) if MIME in o.get("data", {})]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", DETERMINISM_CHAPTERS)
def test_same_profile_and_seed_give_identical_numbers(tmp_path, chapter):
    if not (ROOT / "notebooks" / chapter).is_file():
        pytest.skip(f"{chapter} is not in the book")
    runs = []
    for i in range(2):  # two executions, each with an empty cache, so nothing is simply read back
        out = tmp_path / f"run{i}.ipynb"
        r = _papermill(chapter, out, {"profile": "ci", "seed": 0}, tmp_path / f"cache{i}")
        assert r.returncode == 0, r.stderr[-2000:]
        runs.append(_numbers(out))
    assert runs[0], f"{chapter} recorded no verdicts"
    assert runs[0] == runs[1]
