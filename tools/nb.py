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
import hashlib
import json
import os
import resource
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
__version__ = re.search(r'__version__ = "([^"]+)"', (ROOT / "bnutils" / "__init__.py").read_text()).group(1)

HEADER_TAG, SETUP_TAG, SOLUTION_TAG = "colab-link", "colab-setup", "solution"


def chapters(args: list[str] | None = None) -> list[Path]:
    paths = [Path(a).resolve() for a in args] if args else sorted(NOTEBOOKS.glob("*.ipynb"))
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"no such notebook: {', '.join(missing)}")
    return paths


def repository() -> tuple[str, str]:
    """(url, branch) from _config.yml: the one place the repository is named."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    return cfg["repository"]["url"].rstrip("/"), cfg["repository"].get("branch", "main")


def colab_url(nb: Path) -> str:
    url, branch = repository()
    path = nb.resolve()
    rel = path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else f"{path.parent.name}/{path.name}"
    return url.replace("https://github.com/", "https://colab.research.google.com/github/") + f"/blob/{branch}/{rel}"


def header_cells(nb: Path) -> list:
    url, _ = repository()
    link = nbformat.v4.new_markdown_cell(
        f"[Open this chapter in Colab]({colab_url(nb)}) (choose *Runtime → Change runtime type → T4 GPU*; "
        "the `parameters` cell's `profile=\"auto\"` then runs the papers' networks on all of CIFAR-10).")
    link.metadata["tags"] = [HEADER_TAG]
    setup = nbformat.v4.new_code_cell(
        "# Set-up. On Colab: install this book's small `bnutils` package, pinned to a release, without touching\n"
        "# Colab's own torch/torchvision. Anywhere else: nothing to do (see the book's 'How to run' page).\n"
        "import subprocess, sys\n"
        "if \"google.colab\" in sys.modules:\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"--no-deps\",\n"
        f"                    \"bnutils @ git+{url}@v{__version__}\"], check=True)")
    setup.metadata["tags"] = [SETUP_TAG, "remove-cell"]
    return [link, setup]


def _after_title(cells: list) -> int:
    """Where the header cells go: right after the chapter's title cell (the reader sees the chapter first)."""
    for i, c in enumerate(cells):
        if c.cell_type == "markdown" and re.match(r"#\s", c.source.lstrip()):
            return i + 1
    return 0


def sync(nb_path: Path, write: bool = True) -> bool:
    """Put the generated header cells right after the title and ask Colab for a GPU; True if already in sync.

    The set-up cell is tagged remove-cell: Colab runs it, the rendered book does not show it."""
    nb = nbformat.read(nb_path, as_version=4)
    head = header_cells(nb_path)
    cells = [c for c in nb.cells if not {HEADER_TAG, SETUP_TAG} & set(c.metadata.get("tags", []))]
    pos = _after_title(cells)
    want = cells[:pos] + head + cells[pos:]
    key = lambda c: (c.cell_type, c.source, tuple(c.metadata.get("tags", [])))
    ok = [key(c) for c in nb.cells] == [key(c) for c in want] and nb.metadata.get("accelerator") == "GPU"
    if write and not ok:
        old = {tuple(c.metadata.get("tags", []))[:1]: c for c in nb.cells
               if {HEADER_TAG, SETUP_TAG} & set(c.metadata.get("tags", []))}
        for c in head:  # keep ids stable
            prev = old.get(tuple(c.metadata["tags"])[:1])
            if prev is not None and "id" in prev:
                c["id"] = prev["id"]
        nb.cells = want
        nb.metadata["accelerator"] = "GPU"
        nb.metadata.setdefault("colab", {}).update({"gpuType": "T4", "provenance": []})
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, nb_path)
    return ok


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
    sensitive to other jobs on the machine), torch threads and the code fingerprint."""
    sync(nb_path)
    fingerprint = code_fingerprint(nbformat.read(nb_path, as_version=4))  # the code as it is when the run starts
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / nb_path.name
        t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        env = static_env(profile)
        subprocess.run([sys.executable, "-m", "papermill", str(nb_path), str(out), "-k", "python3",
                        "--cwd", str(nb_path.parent), "--no-progress-bar"], check=True, env=env)
        seconds = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
        nb = nbformat.read(out, as_version=4)
    nb.metadata.pop("papermill", None)
    for c in nb.cells:
        if "solution" in c.metadata.get("tags", []) and c.metadata.get("papermill", {}).get("duration") is not None:
            c.metadata["bnbook"] = {"seconds": round(c.metadata["papermill"]["duration"], 1)}  # per-exercise compute
        c.metadata.pop("papermill", None)
        c.metadata.pop("execution", None)
    if code_fingerprint(nb) != fingerprint:
        raise SystemExit(f"{nb_path.name}: the notebook or bnutils changed while it ran; run it again")
    threads = int(env.get("BNBOOK_THREADS") or min(2, os.cpu_count() or 1))
    nb.metadata["bnbook"] = {"profile": profile, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
                             "threads": threads, "fingerprint": fingerprint}
    tmp_out = nb_path.with_suffix(".ipynb.tmp")
    nbformat.write(nb, tmp_out)
    os.replace(tmp_out, nb_path)
    return seconds


def stale(paths: list[Path]) -> list[str]:
    """Chapters whose stored fingerprint differs from their current code (or that were never executed)."""
    out = []
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        stored = nb.metadata.get("bnbook", {}).get("fingerprint")
        if stored != code_fingerprint(nb):
            out.append(p.name)
    return out


def ci(paths: list[Path], artifacts: Path) -> int:
    """Each chapter once at profile=ci: parameters injected by papermill, then executed and compared by nbval.

    The chapters run with an empty run cache of their own, `artifacts/cache` (the decoded CIFAR-10 arrays shared),
    as on a fresh clone; it stays there, so tests/test_reliability.py can check that a re-execution repeats it."""
    artifacts.mkdir(parents=True, exist_ok=True)
    cache = artifacts / "cache"
    if cache.exists():
        shutil.rmtree(cache)
    _link_decoded_arrays(cache)
    env = {**static_env("ci"), "BNBOOK_CACHE": str(cache)}
    rows, failed = [], []
    for p in paths:
        prepared = artifacts / p.name
        subprocess.run([sys.executable, "-m", "papermill", str(p), str(prepared), "-p", "profile", "ci",
                        "--prepare-only", "-k", "python3", "--no-progress-bar"], check=True,
                       env=env, capture_output=True)
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                            "--nbval-current-env", "--nbval-cell-timeout=600", str(prepared)],
                           env=env, cwd=str(p.parent))
        seconds = time.perf_counter() - t0
        rows.append((p.name, seconds, r.returncode == 0))
        if r.returncode != 0:
            failed.append(p.name)
    print("\nchapter timings at profile=ci (budget 90 s each)")
    print(f"{'notebook':<40} {'seconds':>8}  result")
    for name, s, ok in rows:
        print(f"{name:<40} {s:8.1f}  {'ok' if ok else 'FAILED'}{'  (over budget)' if s > 90 else ''}")
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
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


def smoke(paths: list[Path], out_dir: Path | None = None, limit: float = 180.0) -> int:
    """Every cell of each chapter at the `gpu` settings in smoke mode (bnutils.profiles: the gpu networks, data
    pipeline, AMP and channels_last, each run capped at a few steps), on whatever device there is, with its own
    BNBOOK_CACHE; executed copies go to `out_dir` (a temporary folder by default), never over the chapters. Prints
    each chapter's time and the verdict tables it ended with; 1 when a chapter failed."""
    out_dir = Path(out_dir) if out_dir else Path(tempfile.mkdtemp(prefix="bnbook-smoke-"))
    cache = out_dir / "cache"
    _link_decoded_arrays(cache)
    env = {**static_env("gpu"), "BNBOOK_SMOKE": "1", "BNBOOK_CACHE": str(cache)}
    rows, t_all = [], time.perf_counter()
    for p in paths:
        out = out_dir / p.name
        t0, r0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        r = subprocess.run([sys.executable, "-m", "papermill", str(p), str(out), "-p", "profile", "gpu", "-k",
                            "python3", "--cwd", str(p.parent), "--no-progress-bar"], env=env, capture_output=True,
                           text=True)
        seconds, r1 = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)  # less sensitive to other jobs
        rows.append((p.name, seconds, r.returncode == 0, cpu))
        print(f"{p.name:<40} {seconds:6.1f} s wall {cpu:7.1f} s CPU  {'ok' if r.returncode == 0 else 'FAILED'}",
              flush=True)
        if r.returncode:
            print("\n".join(r.stderr.strip().splitlines()[-15:]), flush=True)
    total = time.perf_counter() - t_all
    print(f"\nsmoke run of the gpu settings, executed copies in {out_dir}")
    for name, _, ok, _ in rows:
        for table in (verdicts_of(out_dir / name) if ok else []):
            print(f"\n{table['chapter']}: verdicts of a SMOKE RUN (profile {table['profile']}, capped: they mean nothing)")
            for v in table["verdicts"]:
                print(f"  {v['reproduced']:<18} {v['claim'][:90]}")
    failed = [n for n, _, ok, _ in rows if not ok]
    summary = {"seconds": round(total, 1), "budget_s": limit, "device": "cuda" if _has_cuda() else "cpu",
               "chapters": [{"notebook": n, "seconds": round(sec, 1), "cpu_seconds": round(cpu, 1), "ok": ok,
                             "verdicts": verdicts_of(out_dir / n) if ok else []} for n, sec, ok, cpu in rows]}
    (out_dir / "smoke.json").write_text(json.dumps(summary, indent=1))
    print(f"\n{len(rows) - len(failed)} chapters ran, {len(failed)} failed; {total:.0f} s in all"
          f"{f' (over the {limit:.0f} s budget)' if total > limit else ''}")
    return 1 if failed else 0


def student(paths: list[Path], out_dir: Path) -> None:
    """Copies without the cells tagged `solution` (each replaced by a note); their Colab links open the copies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        nb.cells = [nbformat.v4.new_markdown_cell("*(Solution removed: your turn.)*")
                    if SOLUTION_TAG in c.metadata.get("tags", []) else c for c in nb.cells]
        nbformat.write(nb, out_dir / p.name)
        sync(out_dir / p.name)  # the header cells again, now linking to this copy
        print(f"wrote {out_dir / p.name}")


def release(url: str, version: str) -> Path:
    """Make a checkout ready to publish: the repository URL in _config.yml, every chapter's Colab cells re-synced
    (they pin bnutils at tag v<version>), student copies in student/, and the wheel in dist/. Returns the wheel."""
    if not re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", url):
        raise SystemExit(f"URL={url!r} must be a GitHub repository URL, https://github.com/OWNER/NAME")
    if version != __version__:
        raise SystemExit(f"VERSION={version!r} is not bnutils.__version__ ({__version__!r}): the Colab cells pin "
                         f"v{__version__}; change bnutils/__init__.py first")
    root = ROOT
    cfg = root / "_config.yml"
    text = cfg.read_text()
    new = re.sub(r"(?m)^(\s*url:\s*)https://github\.com/\S+$", lambda m: m.group(1) + url, text, count=1)
    if new == text and url not in text:
        raise SystemExit(f"no repository url line found in {cfg}")
    cfg.write_text(new)
    for nb in sorted((root / "notebooks").glob("*.ipynb")):
        sync(nb)
    student(sorted((root / "notebooks").glob("*.ipynb")), root / "student")
    dist = root / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(root)], check=True)
    wheel = next(dist.glob(f"bnutils-{version}-*.whl"))
    print(f"ready: {wheel.name}. Commit _config.yml, notebooks/ and student/ (git add -f student), then\n"
          f"  git tag v{version} && git push origin main v{version}")
    return wheel


def from_py(src: Path, out: Path) -> None:
    """Percent-format script -> notebook. `# %% [markdown]` starts a markdown cell (lines start with '# '),
    `# %%` a code cell; `tags=["a", "b"]` after either sets the cell's tags."""
    cells, kind, tags, buf = [], None, [], []

    def flush():
        if kind is None:
            return
        text = "\n".join(buf).strip("\n")
        if kind == "markdown":
            text = "\n".join(re.sub(r"^# ?", "", ln) for ln in text.splitlines())
            cell = nbformat.v4.new_markdown_cell(text)
        else:
            cell = nbformat.v4.new_code_cell(text)
        if tags:
            cell.metadata["tags"] = tags
        cells.append(cell)

    for line in src.read_text().splitlines():
        m = re.match(r"^# %%(\s*\[markdown\])?(.*)$", line)
        if m:
            flush()
            kind = "markdown" if m.group(1) else "code"
            t = re.search(r"tags\s*=\s*(\[.*\])", m.group(2))
            tags, buf = (json.loads(t.group(1)) if t else []), []
        elif kind is not None:
            buf.append(line)
    flush()
    nbformat.write(nbformat.v4.new_notebook(cells=cells), out)
    sync(out)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd == "sync":
        for p in chapters(rest):
            print(f"{p.name}: {'in sync' if sync(p) else 'updated'}")
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
        student(chapters(), Path(rest[0]))
    elif cmd == "release":
        if len(rest) != 2:
            raise SystemExit("usage: nb.py release URL VERSION")
        release(rest[0], rest[1])
    elif cmd == "from-py":
        if len(rest) != 2:
            raise SystemExit("usage: nb.py from-py SRC.py OUT.ipynb")
        from_py(Path(rest[0]), Path(rest[1]))
    else:
        raise SystemExit(f"unknown command {cmd!r}; choose one of sync, execute, stale, ci, smoke, student, release, from-py")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
