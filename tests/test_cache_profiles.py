import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from bnutils import cache, profiles
from bnutils.profiles import resolve_profile


def test_cached_computes_once(tmp_cache):
    calls = []
    f = lambda: calls.append(1) or {"x": 1.5, "nan": float("nan")}
    a = cache.cached({"lr": 0.1}, f)
    b = cache.cached({"lr": 0.1}, f)
    c = cache.cached({"lr": 0.2}, f)
    assert a["x"] == b["x"] == c["x"] == 1.5 and len(calls) == 2


def test_corrupted_cache_file_is_reported_and_recomputed(tmp_cache):
    cache.cached({"k": 1}, lambda: {"v": 1})
    (path,) = (tmp_cache / "runs").glob("*.json")
    path.write_text('{"config": {"k": 1}, "resu')
    with pytest.warns(UserWarning, match="corrupted"):
        assert cache.cached({"k": 1}, lambda: {"v": 2}) == {"v": 2}
    assert json.loads(path.read_text())["result"] == {"v": 2}


def test_killed_sweep_resumes_without_redoing_finished_runs(tmp_cache, tmp_path):
    script = tmp_path / "sweep.py"
    log = tmp_path / "log.txt"
    script.write_text(textwrap.dedent(f"""
        import os, time
        from bnutils.cache import cached_run
        @cached_run("runs")
        def run(i, cache=True):
            open({str(log)!r}, "a").write(str(i) + "\\n")
            if i == 2 and os.environ.get("KILL_AT_2"):
                os.kill(os.getpid(), 9)  # a kill in the middle of the sweep
            return {{"i": i}}
        print([run(i) for i in range(4)])
    """))
    env = {**os.environ, "BNBOOK_CACHE": str(tmp_cache), "KILL_AT_2": "1"}
    p = subprocess.run([sys.executable, str(script)], env=env, capture_output=True)
    assert p.returncode == -signal.SIGKILL
    assert not list((tmp_cache / "runs").glob(".*.tmp"))  # no half-written file left behind
    env.pop("KILL_AT_2")
    p = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert log.read_text().split() == ["0", "1", "2", "2", "3"]  # 0 and 1 were not redone


def test_cache_key_depends_on_config():
    assert cache.config_key({"a": 1}) != cache.config_key({"a": 2})
    assert cache.config_key({"a": 1, "b": 2}) == cache.config_key({"b": 2, "a": 1})


def test_profiles(monkeypatch):
    monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    assert resolve_profile("ci").name == "ci"
    assert resolve_profile("auto").name in ("cpu", "gpu")
    monkeypatch.setenv(profiles.ENV_VAR, "ci")
    assert resolve_profile("cpu").name == "ci"  # the environment wins: CI forces its scale
    monkeypatch.setenv(profiles.ENV_VAR, "long")
    p = resolve_profile("auto")
    assert p.name == "long" and (p.n_train, p.vgg_width, p.device) == (10000, 0.125, "cpu")  # cpu's data and nets


@pytest.mark.parametrize("value,env,match", [
    ("laptop", None, r"profile='laptop' is not allowed; choose one of \['auto', 'ci', 'cpu', 'long', 'gpu'\]"),
    ("CPU", None, r"profile='CPU'"),
    ("cpu", "fast", r"BNBOOK_PROFILE='fast'"),
])
def test_bad_profile(monkeypatch, value, env, match):
    if env:
        monkeypatch.setenv(profiles.ENV_VAR, env)
    else:
        monkeypatch.delenv(profiles.ENV_VAR, raising=False)
    with pytest.raises(ValueError, match=match):
        resolve_profile(value)
