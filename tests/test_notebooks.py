"""The notebook pipeline: header cells, parameters, freshness of committed outputs, and that the nbval check bites."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "notebooks").glob("*.ipynb"))
spec = importlib.util.spec_from_file_location("nbtool", ROOT / "tools" / "nb.py")
nbtool = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtool)
colab = nbtool.colab  # tools/colab.py, as nb.py imports it


def _cells(nb_path: Path):
    return nbformat.read(nb_path, as_version=4).cells


def test_there_are_chapters():
    assert CHAPTERS, "no notebooks in notebooks/"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_header_cells_come_from_config(nb):
    assert colab.sync(nb, write=False), f"run `python tools/nb.py sync {nb.relative_to(ROOT)}`"
    cells = _cells(nb)
    assert cells[0].cell_type == "markdown" and cells[0].source.lstrip().startswith("# "), "the title comes first"
    setup = next(c for c in cells if colab.SETUP_TAG in c.metadata.get("tags", []))
    assert "remove-cell" in setup.metadata["tags"], "the set-up cell is hidden in the rendered book"
    setup = setup.source
    url, _ = colab.repository()
    assert "--no-deps" in setup and f"git+{url}@v" in setup and "torch" not in setup.replace("torch/torchvision", "")
    assert "eval(" not in setup and "pickle" not in setup


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_parameters_cell_holds_literals_only(nb):
    cells = [c for c in _cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell tagged 'parameters'"
    names = []
    for stmt in ast.parse(cells[0].source).body:
        assert isinstance(stmt, ast.Assign), f"only assignments in the parameters cell, got {ast.dump(stmt)[:60]}"
        ast.literal_eval(stmt.value)  # raises on anything computed
        names += [t.id for t in stmt.targets]
    assert "profile" in names and "seed" in names


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_committed_outputs_are_fresh(nb):
    stored = nbformat.read(nb, as_version=4).metadata.get("bnbook", {})
    assert stored.get("profile") == "cpu", f"{nb.name} was not executed at the cpu profile: run `make execute NB=notebooks/{nb.name}`"
    assert not nbtool.stale([nb]), (f"{nb.name}: its committed outputs were produced by other code than the current "
                                   f"notebook + bnutils. Refresh them with `make execute NB=notebooks/{nb.name}`")


def test_committed_chapters_ran_on_one_kind_of_cpu():
    """The chapters' numbers depend on the CPU's kernels (bf16 on AMX differs from AVX512-BF16), and chapter 6
    reads chapter 5's runs: the committed outputs come from one platform, which each chapter names."""
    platforms = {nb.name: nbformat.read(nb, as_version=4).metadata.get("bnbook", {}).get("platform")
                 for nb in CHAPTERS}
    assert all(platforms.values()), f"chapters that do not name their platform: {[n for n, p in platforms.items() if not p]}"
    assert len({json.dumps(p, sort_keys=True) for p in platforms.values()}) == 1, \
        f"the chapters ran on different platforms; re-execute them on one machine: {platforms}"


@pytest.mark.parametrize("nb", CHAPTERS, ids=lambda p: p.name)
def test_committed_outputs_are_clean(nb):
    checked = 0
    for c in _cells(nb):
        if c.cell_type != "code":
            continue
        checked += "nbval-check-output" in c.metadata.get("tags", [])
        for o in c.get("outputs", []):
            assert o.output_type != "error", f"error output in {nb.name}: {o.get('ename')}"
            data = o.get("data", {})
            assert "application/vnd.jupyter.widget-view+json" not in data, f"a bare widget is saved in {nb.name}"
            text = o.get("text", "") + data.get("text/plain", "")
            assert "Traceback" not in text and "HBox(" not in text and "it/s]" not in text, f"junk output in {nb.name}"
    assert checked >= 1, f"{nb.name} has no cell tagged `nbval-check-output`"
    assert nb.stat().st_size < 3_000_000, f"{nb.name} is over 3 MB"


def _toy_notebook(path: Path, stored: str) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "auto"')
    params.metadata["tags"] = ["parameters"]
    check = nbformat.v4.new_code_cell('print("the profile is ci:", profile == "ci")')
    check.metadata["tags"] = ["nbval-check-output"]
    check.outputs = [nbformat.v4.new_output("stream", name="stdout", text=stored)]
    check.execution_count = 1
    nb.cells = [params, check]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # two kernels and two nbval runs (~11 s)
def test_ci_check_passes_on_matching_output_and_fails_on_altered_output(tmp_path):
    """The same code path CI uses (tools/nb.py ci): papermill injects profile='ci', nbval compares checked cells."""
    good = _toy_notebook(tmp_path / "good.ipynb", "the profile is ci: True\n")
    bad = _toy_notebook(tmp_path / "bad.ipynb", "the profile is ci: False\n")  # a deliberately altered stored output
    assert nbtool.ci([good], tmp_path / "art1") == 0
    assert nbtool.ci([bad], tmp_path / "art2") == 1


@pytest.mark.slow  # two kernels (~15 s)
def test_smoke_executes_copies_at_the_gpu_settings_and_reports_failures(tmp_path):
    """`tools/nb.py smoke`: each chapter runs in smoke mode into the output folder (the chapter itself untouched),
    with its own cache; a failing chapter makes it return 1 and is reported as failed."""
    good = _toy_notebook(tmp_path / "good.ipynb", "")
    nb = nbformat.read(good, as_version=4)
    nb.cells[1].source = ('import os, bnutils\nP = bnutils.setup(profile)\n'
                          'print("smoke:", os.environ["BNBOOK_SMOKE"], str(P.name), os.environ["BNBOOK_CACHE"])')
    nbformat.write(nb, good)
    bad = tmp_path / "bad.ipynb"
    nb.cells[1].source = 'raise RuntimeError("this chapter is broken")'
    nbformat.write(nb, bad)
    before = good.read_text()
    assert nbtool.smoke([good, bad], tmp_path / "out") == 1
    assert good.read_text() == before
    ran = (tmp_path / "out" / "good.ipynb").read_text()
    assert "smoke: 1 gpu (smoke run)" in ran and str(tmp_path / "out" / "cache") in ran
    summary = json.loads((tmp_path / "out" / "smoke.json").read_text())
    assert [(c["notebook"], c["ok"]) for c in summary["chapters"]] == [("good.ipynb", True), ("bad.ipynb", False)]


def test_student_copies_drop_solutions(tmp_path):
    nb = nbformat.v4.new_notebook()
    sol = nbformat.v4.new_code_cell("answer = 42")
    sol.metadata["tags"] = ["solution", "hide-cell"]
    sol2 = nbformat.v4.new_code_cell("print(answer)", metadata={"tags": ["solution"]})  # a solution in two cells
    nb.cells = [nbformat.v4.new_markdown_cell("Exercise"), sol, sol2, nbformat.v4.new_markdown_cell("Exercise 2"),
                nbformat.v4.new_code_cell("answer = 42", metadata={"tags": ["solution"]})]
    src = tmp_path / "ch.ipynb"
    nbformat.write(nb, src)
    colab.student([src], tmp_path / "student")
    out = nbformat.read(tmp_path / "student" / "ch.ipynb", as_version=4)
    assert "answer = 42" not in json.dumps(out) and "print(answer)" not in json.dumps(out)
    assert sum("Solution removed" in c.source for c in out.cells) == 2  # one note per solution, however many cells
    assert "blob/main/student/ch.ipynb" in json.dumps(out)  # its Colab link opens the student copy


def test_from_py_reads_percent_format(tmp_path):
    src = tmp_path / "s.py"
    src.write_text('# %% [markdown]\n# # Title\n\n# %% tags=["parameters"]\nprofile = "auto"\n\n# %%\nprint(1)\n')
    out = tmp_path / "out.ipynb"
    colab.from_py(src, out)
    cells = _cells(out)
    assert [c.cell_type for c in cells] == ["markdown", "markdown", "code", "code", "code"]  # title, Colab cells, ...
    assert cells[0].source == "# Title" and cells[3].metadata["tags"] == ["parameters"]


@pytest.mark.slow
def test_release_prepares_a_copy_for_publishing(tmp_path):
    """`tools/nb.py release URL VERSION` in a copy of the repository: the URL lands in _config.yml and every Colab
    link, the set-up cells pin the version's tag, student copies link to themselves, and the wheel is built."""
    import shutil

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    copy = tmp_path / "repo"
    for f in files:
        if (ROOT / f).is_file():
            (copy / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, copy / f)
    url, version = "https://github.com/someone/bn-course", colab.__version__
    bad = subprocess.run([sys.executable, str(copy / "tools" / "nb.py"), "release", url, "9.9.9"], capture_output=True,
                         text=True)
    assert bad.returncode != 0 and "VERSION='9.9.9'" in bad.stderr + bad.stdout
    r = subprocess.run([sys.executable, str(copy / "tools" / "nb.py"), "release", url, version], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"url: {url}" in (copy / "_config.yml").read_text()
    for nb in sorted((copy / "notebooks").glob("*.ipynb")):
        text = nb.read_text()
        assert f"colab.research.google.com/github/someone/bn-course/blob/main/notebooks/{nb.name}" in text
        assert f"git+{url}@v{version}" in text
        student = (copy / "student" / nb.name).read_text()
        assert f"/blob/main/student/{nb.name}" in student and "Solution removed" in student
    assert list((copy / "dist").glob(f"bnutils-{version}-*.whl"))


def test_a_chapters_fingerprint_covers_what_it_reaches_and_only_that():
    """Chapter 5 imports experiments.divergence, which imports experiments.resnets: a change there must make
    chapter 5 stale; chapter 2's experiments.ics is not reached, so finishing chapter 2 leaves chapter 5 fresh."""
    from bnutils.cache import module_closure

    ch5 = module_closure(nbtool.chapter_modules(nbformat.read(ROOT / "notebooks" / "05_learning_rate.ipynb", 4)))
    assert {"bnutils.experiments.divergence", "bnutils.experiments.resnets", "bnutils.figures.divergence"} <= ch5
    assert "bnutils.experiments.ics" not in ch5 and "bnutils.figures.ics" not in ch5


def test_a_counted_run_reports_its_exit_code_and_its_own_cpu_time(tmp_path):
    """tools/nb.py's one way to run a chapter (execute: output on the terminal; smoke and ci: into a log): the exit
    code, the wall time and the CPU time of that process tree alone."""
    spin = "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nprint('done'); sys.exit(3)"
    log = tmp_path / "log"
    code, wall, cpu = nbtool._run_counted([sys.executable, "-c", spin], dict(os.environ), log)
    assert code == 3 and log.read_text() == "done\n" and 0.3 <= cpu <= wall
    code, wall, cpu = nbtool._run_counted([sys.executable, "-c", "pass"], dict(os.environ))
    assert code == 0 and cpu < 0.3
