"""Notebook tooling for the book: Colab header cells, execution with fingerprints, CI checks, student copies.

    python tools/nb.py sync [NB ...]          write the Colab link + set-up cells (from _config.yml) into chapters
    python tools/nb.py execute [NB ...]       run chapters at the cpu profile in place, stamping a code fingerprint
    python tools/nb.py stale                  list chapters whose committed outputs no longer match the code
    python tools/nb.py ci [NB ...]            CI: each chapter at profile=ci, checked cells compared by nbval
    python tools/nb.py smoke [NB ...]         every cell of each chapter at the gpu settings, capped (BNBOOK_SMOKE=1:
                                              2 steps a run), into a temporary folder (SMOKE_OUT=DIR to keep it)
    python tools/nb.py student OUT            copies of the chapters without solution cells (Colab links to the copies)
    python tools/nb.py release URL VERSION    publish: repository URL into _config.yml, Colab cells re-synced, student
                                              copies, the pinned tag checked against bnutils, the wheel built
    python tools/nb.py from-py SRC.py OUT.ipynb   author a chapter in percent format (# %%, # %% [markdown])

NB defaults to every notebooks/*.ipynb, so a chapter added later is picked up with no change here.
"""
from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
import colab  # noqa: E402  (tools/colab.py: the Colab cells, student copies, publishing)
from colab import SOLUTION_TAG  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"



def chapters(args: list[str] | None = None) -> list[Path]:
    paths = [Path(a).resolve() for a in args] if args else sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"no such notebook: {', '.join(missing)}")
    return paths


def chapter_modules(nb) -> set[str]:
    """The bnutils modules a chapter's code cells import (`import bnutils`, `from bnutils.x import y`, ...)."""
    mods: set[str] = set()
    for c in nb.cells:
        if c.cell_type != "code":
            continue
        src = "\n".join(line for line in c.source.splitlines() if not line.lstrip().startswith(("%", "!")))
        try:
            tree = ast.parse(src)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods |= {a.name for a in node.names if a.name.split(".")[0] == "bnutils"}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "bnutils":
                mods |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return mods


def library_fingerprint(imported: set[str]) -> str:
    """sha256 over the bnutils source a chapter depends on: the modules it imports and, transitively, everything
    they import (figures and prose included: they shape the outputs), so that finishing chapter 4 does not mark
    chapter 1's outputs stale, while a change to any module chapter 1 reaches does."""
    from bnutils.cache import module_closure

    h = hashlib.sha256()
    lib = ROOT / "bnutils"
    for name in sorted(module_closure(imported | {"bnutils"})):
        parts = name.split(".")[1:]
        f = next((p for p in (lib.joinpath(*parts).with_suffix(".py") if parts else None,
                              lib.joinpath(*parts, "__init__.py")) if p is not None and p.is_file()), None)
        if f is not None:
            h.update(f.relative_to(lib).as_posix().encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def code_fingerprint(nb) -> str:
    """sha256 of the chapter's own code cells (papermill's injected cell excluded) and the bnutils source it uses."""
    h = hashlib.sha256(library_fingerprint(chapter_modules(nb)).encode())
    for c in nb.cells:
        if c.cell_type == "code" and "injected-parameters" not in c.metadata.get("tags", []):
            h.update(c.source.encode())
    return h.hexdigest()[:16]


def static_env(profile: str | None) -> dict[str, str]:
    env = {**os.environ, "BNBOOK_STATIC": "1", "TQDM_DISABLE": "1", "PYTHONHASHSEED": "0"}
    env.pop("BNBOOK_PROFILE", None)
    if profile:
        env["BNBOOK_PROFILE"] = profile
    return env


def execute(nb_path: Path, profile: str = "cpu") -> float:
    """Run a chapter in place at `profile` and stamp its metadata: profile, wall seconds, CPU seconds (less
    sensitive to other jobs on the machine), torch threads, the code fingerprint and the platform (`platform`)."""
    colab.sync(nb_path)
    fingerprint = code_fingerprint(nbformat.read(nb_path, as_version=4))  # the code as it is when the run starts
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / nb_path.name
        env = static_env(profile)
        args = [sys.executable, "-m", "papermill", str(nb_path), str(out), "-k", "python3",
                "--cwd", str(nb_path.parent), "--no-progress-bar"]
        code, seconds, cpu = _run_counted(args, env)
        if code:
            raise subprocess.CalledProcessError(code, args)
        nb = nbformat.read(out, as_version=4)
    nb.metadata.pop("papermill", None)
    for c in nb.cells:
        if SOLUTION_TAG in c.metadata.get("tags", []) and c.metadata.get("papermill", {}).get("duration") is not None:
            c.metadata["bnbook"] = {"seconds": round(c.metadata["papermill"]["duration"], 1)}  # per-exercise compute
        c.metadata.pop("papermill", None)
        c.metadata.pop("execution", None)
    if code_fingerprint(nb) != fingerprint:
        raise SystemExit(f"{nb_path.name}: the notebook or bnutils changed while it ran; run it again")
    threads = int(env.get("BNBOOK_THREADS") or min(2, os.cpu_count() or 1))
    nb.metadata["bnbook"] = {"profile": profile, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                             "threads": threads, "fingerprint": fingerprint, "platform": platform()}
    tmp_out = nb_path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp_out)
    os.replace(tmp_out, nb_path)
    return seconds


def platform() -> dict:
    """The platform a run's numbers depend on (bnutils.cache.platform_identity), as a subprocess sees it (this
    tool does not import torch); asked once per process."""
    return dict(_platform())


@functools.cache
def _platform() -> dict:
    r = subprocess.run([sys.executable, "-c", "import json; from bnutils.cache import platform_identity as p; "
                        "print(json.dumps(p()))"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def stale(paths: list[Path]) -> list[str]:
    """Chapters whose stored fingerprint differs from their current code (or that were never executed)."""
    out = []
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        stored = nb.metadata.get("bnbook", {}).get("fingerprint")
        if stored != code_fingerprint(nb):
            out.append(p.name)
    return out


def lanes(jobs: int | None = None) -> tuple[int, dict[str, str]]:
    """How many chapters run side by side ($BNBOOK_LANES, else the cores, at most 2) and the environment each
    then gets: one torch thread and no worker pool when more than one runs (two one-thread processes do more
    work than one two-thread process on the book's small nets)."""
    jobs = jobs or int(os.environ.get("BNBOOK_LANES") or 0) or max(1, min(2, os.cpu_count() or 1))
    return jobs, ({"BNBOOK_THREADS": "1", "BNBOOK_WORKERS": "1"} if jobs > 1 else {})


def ci(paths: list[Path], artifacts: Path, jobs: int | None = None) -> int:
    """Each chapter once at profile=ci: parameters injected by papermill, then executed and compared by nbval;
    `jobs` chapters side by side (`lanes`), the longest first, each chapter's output in artifacts/<stem>.log.

    The chapters run with an empty run cache of their own, `artifacts/cache` (the decoded CIFAR-10 arrays shared),
    as on a fresh clone; it stays there, with the thread count in run.json, so tests/test_reliability.py can check
    that a re-execution repeats it."""
    from concurrent.futures import ThreadPoolExecutor

    artifacts.mkdir(parents=True, exist_ok=True)
    cache = artifacts / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    _link_decoded_arrays(cache)
    jobs, lane_env = lanes(jobs)
    env = {**static_env("ci"), "BNBOOK_CACHE": str(cache), **lane_env}
    (artifacts / "run.json").write_text(json.dumps({"jobs": jobs, "threads": env.get("BNBOOK_THREADS")}))

    def one(p: Path) -> tuple[str, float, float, bool]:
        prepared, log = artifacts / p.name, artifacts / f"{p.stem}.log"
        subprocess.run([sys.executable, "-m", "papermill", str(p), str(prepared), "-p", "profile", "ci",
                        "--prepare-only", "-k", "python3", "--no-progress-bar"], check=True,
                       env=env, capture_output=True)
        code, seconds, cpu = _run_counted([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                           "--nbval-lax", "--nbval-current-env", "--nbval-cell-timeout=600",
                                           str(prepared)], env, log, cwd=p.parent)
        print(f"{p.name:<40} {seconds:6.1f} s wall {cpu:7.1f} s CPU  {'ok' if code == 0 else 'FAILED'}", flush=True)
        if code:
            print(log.read_text()[-6000:], flush=True)
        return p.name, seconds, cpu, code == 0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        done = {r[0]: r for r in pool.map(one, sorted(paths, key=_expected_seconds, reverse=True))}
    rows = [done[p.name] for p in paths]
    failed = [name for name, _, _, ok in rows if not ok]
    print(f"\nchapter timings at profile=ci ({jobs} side by side; budget 90 s each)")
    print(f"{'notebook':<40} {'wall s':>8} {'CPU s':>8}  result")
    for name, s, cpu, ok in rows:
        print(f"{name:<40} {s:8.1f} {cpu:8.1f}  {'ok' if ok else 'FAILED'}{'  (over budget)' if s > 90 else ''}")
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed; {time.perf_counter() - t0:.0f} s in all")
    return 1 if failed else 0


VERDICTS_MIME = "application/vnd.bnbook.verdicts+json"


def verdicts_of(nb_path: Path) -> list[dict]:
    """The verdict data a chapter's executed copy embeds (one entry per verdict table)."""
    nb = nbformat.read(nb_path, as_version=4)
    return [o["data"][VERDICTS_MIME] for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
            if VERDICTS_MIME in o.get("data", {})]


def _link_decoded_arrays(cache: Path) -> None:
    """Share the decoded CIFAR-10 arrays of the usual cache with a fresh one (decoding again takes ~30 s)."""
    env = os.environ.get("BNBOOK_CACHE", "").strip()
    home = Path(env).expanduser() if env else Path.home() / ".cache" / "bnbook"
    cache.mkdir(parents=True, exist_ok=True)
    for arrays in home.glob("cifar10-*.npz"):
        if not (cache / arrays.name).exists():
            (cache / arrays.name).symlink_to(arrays.resolve())


def _has_cuda() -> bool:
    r = subprocess.run([sys.executable, "-c", "import torch; print(torch.cuda.is_available())"], capture_output=True,
                       text=True)
    return r.stdout.strip() == "True"


def _run_counted(args: list[str], env: dict[str, str], log: Path | None = None,
                 cwd: Path | None = None) -> tuple[int, float, float]:
    """Run a command, its output in `log` (else on this terminal): (exit code, wall seconds, CPU seconds of that
    process tree, from its own rusage: other jobs of this process do not count)."""
    t0 = time.perf_counter()
    with open(log, "w") if log else contextlib.nullcontext() as f:
        p = subprocess.Popen(args, env=env, stdout=f, stderr=subprocess.STDOUT if f else None, text=True, cwd=cwd)
        _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, time.perf_counter() - t0, usage.ru_utime + usage.ru_stime


def _expected_seconds(nb_path: Path) -> float:
    """The chapter's last recorded execution time (its metadata), to start the longest chapters first."""
    return float(nbformat.read(nb_path, as_version=4).metadata.get("bnbook", {}).get("seconds", 0) or 0)


def smoke(paths: list[Path], out_dir: Path | None = None, limit: float = 180.0, jobs: int | None = None) -> int:
    """Every cell of each chapter at the `gpu` settings in smoke mode (bnutils.profiles: the gpu networks, data
    pipeline, AMP and channels_last, each run capped at a few steps), on whatever device there is, with its own
    BNBOOK_CACHE; executed copies go to `out_dir` (a temporary folder by default), never over the chapters.
    `jobs` chapters run side by side (`lanes`), the longest first. Prints each chapter's time and the verdict tables it ended
    with; 1 when a chapter failed."""
    from concurrent.futures import ThreadPoolExecutor

    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="bnbook-smoke-"))
    cache = out_dir / "cache"
    _link_decoded_arrays(cache)
    jobs, lane_env = lanes(jobs)
    env = {**static_env("gpu"), "BNBOOK_SMOKE": "1", "BNBOOK_CACHE": str(cache), **lane_env}

    def one(p: Path) -> tuple[str, float, bool, float]:
        code, seconds, cpu = _run_counted([sys.executable, "-m", "papermill", str(p), str(out_dir / p.name), "-p",
                                           "profile", "gpu", "-k", "python3", "--cwd", str(p.parent),
                                           "--no-progress-bar"], env, out_dir / f"{p.stem}.log")
        print(f"{p.name:<40} {seconds:6.1f} s wall {cpu:7.1f} s CPU  {'ok' if code == 0 else 'FAILED'}", flush=True)
        if code:
            print("\n".join((out_dir / f"{p.stem}.log").read_text().strip().splitlines()[-15:]), flush=True)
        return p.name, seconds, code == 0, cpu

    t_all = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:
        done = dict((r[0], r) for r in pool.map(one, sorted(paths, key=_expected_seconds, reverse=True)))
    rows = [done[p.name] for p in paths]
    total = time.perf_counter() - t_all
    print(f"\nsmoke run of the gpu settings ({jobs} side by side), executed copies in {out_dir}")
    for name, _, ok, _ in rows:
        for table in (verdicts_of(out_dir / name) if ok else []):
            print(f"\n{table['chapter']}: verdicts of a SMOKE RUN (profile {table['profile']}, capped: they mean nothing)")
            for v in table["verdicts"]:
                print(f"  {v['reproduced']:<18} {v['claim'][:90]}")
    failed = [n for n, _, ok, _ in rows if not ok]
    summary = {"seconds": round(total, 1), "budget_s": limit, "jobs": jobs, "device": "cuda" if _has_cuda() else "cpu",
               "chapters": [{"notebook": n, "seconds": round(sec, 1), "cpu_seconds": round(cpu, 1), "ok": ok,
                             "verdicts": verdicts_of(out_dir / n) if ok else []} for n, sec, ok, cpu in rows]}
    (out_dir / "smoke.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{len(rows) - len(failed)} chapters ran, {len(failed)} failed; {total:.0f} s in all"
          f"{f' (over the {limit:.0f} s budget)' if total > limit else ''}")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "sync":
        for p in chapters(rest):
            print(f"{p.name}: {'in sync' if colab.sync(p) else 'updated'}")
    elif cmd == "execute":
        profile = os.environ.get("PROFILE", "cpu")
        for p in chapters(rest):
            print(f"executing {p.name} at profile={profile} ...", flush=True)
            print(f"  {execute(p, profile):.1f} s")
    elif cmd == "stale":
        bad = stale(chapters(rest))
        print("\n".join(bad) if bad else "all chapters are fresh")
        return 1 if bad else 0
    elif cmd == "ci":
        return ci(chapters(rest), ROOT / "artifacts" / "ci")
    elif cmd == "smoke":
        return smoke(chapters(rest), os.environ.get("SMOKE_OUT") or None)
    elif cmd == "student":
        if len(rest) != 1:
            raise SystemExit("usage: nb.py student OUT_DIR")
        colab.student(chapters(), Path(rest[0]))
    elif cmd == "release":
        if len(rest) != 2:
            raise SystemExit("usage: nb.py release URL VERSION")
        colab.release(rest[0], rest[1])
    elif cmd == "from-py":
        if len(rest) != 2:
            raise SystemExit("usage: nb.py from-py SRC.py OUT.ipynb")
        colab.from_py(Path(rest[0]), Path(rest[1]))
    else:
        raise SystemExit(f"unknown command {cmd!r}; choose one of sync, execute, stale, ci, smoke, student, release, from-py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
