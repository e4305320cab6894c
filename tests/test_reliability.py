"""Reliability of whole chapters: a bad parameter fails fast with a clear message; a re-run repeats its numbers."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import link_decoded_arrays

ROOT = Path(__file__).resolve().parents[1]
MIME = "application/vnd.bnbook.verdicts+json"
DETERMINISM_CHAPTERS = ["05_learning_rate.ipynb"]  # its sweep fans out to worker processes: the hardest case
CI_ARTIFACTS = ROOT / "artifacts" / "ci"  # where `tools/nb.py ci` prepares the chapters and keeps their run cache


def _papermill(nb: str, out: Path, params: dict, cache: Path, threads: str | None = None
               ) -> subprocess.CompletedProcess:
    """Run a chapter with papermill into `out`, with run cache `cache`; `threads` pins the torch threads, and then
    sweeps still fan out to two worker processes (each run computes with one thread wherever it runs)."""
    args = [sys.executable, "-m", "papermill", str(ROOT / "notebooks" / nb), str(out), "-k", "python3",
            "--cwd", str(ROOT / "notebooks"), "--no-progress-bar"]
    for k, v in params.items():
        args += ["-p", k, str(v)]
    env = {**os.environ, "BNBOOK_STATIC": "1", "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0",
           "BNBOOK_CACHE": str(link_decoded_arrays(cache, CI_ARTIFACTS / "cache"))}
    env.pop("BNBOOK_PROFILE", None)
    for name in ("BNBOOK_THREADS", "BNBOOK_WORKERS"):
        env.pop(name, None)
    if threads:
        env.update(BNBOOK_THREADS=threads, BNBOOK_WORKERS="2")
    return subprocess.run(args, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("params,message", [
    ({"profile": "laptop"}, "profile='laptop' is not allowed; choose one of ['auto', 'ci', 'cpu', 'long', 'gpu']"),
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


def _untimed(value):
    """A stored result without its wall times (keys naming seconds), which no two runs share."""
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if "second" not in k}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def _results(cache: Path) -> dict[str, dict]:
    """Every run stored in a run cache, timings left out: {namespace/key: stored result}."""
    return {f.relative_to(cache).as_posix(): _untimed(json.loads(f.read_text())["result"])
            for f in sorted(cache.glob("*/*.json"))}


def _ci_cache(chapter: str) -> tuple[Path, str | None]:
    """The run cache of the CI run of the chapters (`tools/nb.py ci`, which `make test` runs before the slow tests),
    filled from empty, and the torch thread count it ran with; this chapter alone is run the CI way when it is not
    there (a test run on its own)."""
    cache = CI_ARTIFACTS / "cache"
    if not (CI_ARTIFACTS / chapter).is_file() or not _results(cache) or not (CI_ARTIFACTS / "run.json").is_file():
        r = subprocess.run([sys.executable, str(ROOT / "tools" / "nb.py"), "ci", str(ROOT / "notebooks" / chapter)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    return cache, json.loads((CI_ARTIFACTS / "run.json").read_text())["threads"]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", DETERMINISM_CHAPTERS)
def test_same_profile_and_seed_give_identical_numbers(tmp_path, chapter):
    """One re-execution of the chapter at ci from an empty cache computes every run again and must store exactly
    what the CI run of the chapters stored (itself from an empty cache): the same keys, the same numbers. The CI
    run's sweeps may have run in-process (side-by-side lanes); this one fans them out to worker processes."""
    if not (ROOT / "notebooks" / chapter).is_file():
        pytest.skip(f"{chapter} is not in the book")
    cache, threads = _ci_cache(chapter)
    reference = _results(cache)
    out = tmp_path / "run.ipynb"
    r = _papermill(chapter, out, {"profile": "ci", "seed": 0}, tmp_path / "cache", threads=threads)
    assert r.returncode == 0, r.stderr[-2000:]
    assert _numbers(out), f"{chapter} recorded no verdicts"
    again = _results(tmp_path / "cache")
    assert again, f"{chapter} stored no runs: nothing was computed, so nothing was compared"
    missing = sorted(set(again) - set(reference))
    assert not missing, (f"runs the CI run of {chapter} did not store (another code version or CIFAR-10 source? run "
                         f"`tools/nb.py ci` again): {missing[:5]}")
    differ = [k for k in again if again[k] != reference[k]]
    assert not differ, f"a re-execution computed other numbers for {len(differ)} runs, e.g. {differ[:3]}"
