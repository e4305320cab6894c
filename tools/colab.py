"""The chapters' Colab side and publishing: the Colab link and set-up cells (from _config.yml), student copies
without solutions, authoring from percent-format scripts, and `release` (see tools/nb.py for the commands).
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
__version__ = re.search(r'__version__ = "([^"]+)"', (ROOT / "bnutils" / "__init__.py").read_text()).group(1)

HEADER_TAG, SETUP_TAG, SOLUTION_TAG = "colab-link", "colab-setup", "solution"


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


def student(paths: list[Path], out_dir: Path) -> None:
    """Copies without the cells tagged `solution` (each run of them replaced by one note); their Colab links open
    the copies."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for p in paths:
        nb = nbformat.read(p, as_version=4)
        cells, after_solution = [], False
        for c in nb.cells:
            solution = SOLUTION_TAG in c.metadata.get("tags", [])
            if not solution:
                cells.append(c)
            elif not after_solution:
                cells.append(nbformat.v4.new_markdown_cell("*(Solution removed: your turn.)*"))
            after_solution = solution
        nb.cells = cells
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
