"""Colab, simulated: a fresh environment that already has torch & co. but not bnutils, a fake `google.colab` module,
and git redirected from the repository URL to a local clone. The chapter's own set-up cell must install bnutils
(pinned, --no-deps, nothing else) and the chapter must then run at profile=ci from the installed package."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import link_decoded_arrays

ROOT = Path(__file__).resolve().parents[1]
CHAPTER = "01_bn_basics.ipynb"


def _run(*args, **kw):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{args}: {r.stdout[-1500:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_colab_setup_cell_installs_only_bnutils_and_the_chapter_runs(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("colab", ROOT / "tools" / "colab.py")
    colab = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(colab)
    url, _ = colab.repository()
    from bnutils import __version__

    # the "GitHub" repository: a clone of this checkout, tagged with the release the set-up cell pins
    clone = tmp_path / "clone"
    _run("git", "clone", "-q", ROOT, clone)
    _run("git", "-C", clone, "-c", "user.name=t", "-c", "user.email=t@t", "tag", f"v{__version__}")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text(f'[url "file://{clone}"]\n\tinsteadOf = {url}\n[protocol "file"]\n\tallow = always\n')

    # Colab: torch, matplotlib, seaborn, ipywidgets, papermill already there (our venv's site-packages), no bnutils
    env_dir = tmp_path / "colab"
    _run(sys.executable, "-m", "venv", env_dir)
    py = env_dir / "bin" / "python"
    site = Path(_run(py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    fake = tmp_path / "fake_colab" / "google" / "colab"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    (fake.parent / "__init__.py").write_text("")
    (fake.parent.parent / "sitecustomize.py").write_text("import google.colab\n")  # Colab's kernel has it imported
    outside = tmp_path  # run from outside the repository, or `python -c` would import ./bnutils from the checkout
    assert _run(py, "-c", "import importlib.util as u; print(u.find_spec('bnutils') is None)", cwd=outside).stdout.strip() == "True"

    env = {**os.environ, "GIT_CONFIG_GLOBAL": str(gitconfig), "PYTHONPATH": str(fake.parent.parent),
           "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "false",  # prove that nothing is downloaded
           "BNBOOK_STATIC": "1", "TQDM_DISABLE": "1", "BNBOOK_CACHE": str(link_decoded_arrays(tmp_path / "cache"))}
    env.pop("BNBOOK_PROFILE", None)
    out = tmp_path / "out.ipynb"
    workdir = tmp_path / "work"  # not the repository: bnutils must come from the installed package
    workdir.mkdir()
    _run(py, "-m", "papermill", ROOT / "notebooks" / CHAPTER, out, "-p", "profile", "ci", "-k", "python3",
         "--cwd", workdir, "--no-progress-bar", env=env, cwd=outside)

    installed = _run(py, "-c", "import bnutils; print(bnutils.__file__)", env=env, cwd=outside).stdout.strip()
    assert installed.startswith(str(site)), installed
    own = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert own <= {"bnutils", "pip", "setuptools"}, f"the set-up cell installed more than bnutils: {own}"
    cells = json.loads(out.read_text())["cells"]
    assert not any(o.get("output_type") == "error" for c in cells for o in c.get("outputs", []))
