"""Sphinx extension: build the landing page's verdict table (and the runtime table) from the chapters' notebooks.

Each chapter's verdict cell (bnutils.report.show_verdicts) embeds its verdicts as JSON in the notebook. Before the
pages are read, this collects them from notebooks/*.ipynb into book/_generated/verdicts.md, which the landing page
includes: the table is never typed by hand and cannot drift from the chapters. The runtime table joins each
committed run's measured time (notebook metadata) with the `gpu` estimate of bench/estimate.py (FLOP counts).
"""
from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

MIME = "application/vnd.bnbook.verdicts+json"
ICON = {"yes": "**yes**", "partly": "*partly*", "no": "**no**"}  # words, not emoji: no font needed


def collect(notebooks: Path) -> list[dict]:
    """Every chapter's embedded verdict records, in chapter order."""
    found = []
    for nb in sorted(notebooks.glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            for out in cell.get("outputs", []):
                if MIME in out.get("data", {}):
                    found.append({**out["data"][MIME], "notebook": nb.stem})
    return found


def table(records: list[dict]) -> str:
    if not records:
        return "*No chapter has recorded verdicts yet.*\n"
    rows = ["| chapter | claim | paper | reproduced | at profile | evidence |", "|---|---|---|---|---|---|"]
    for r in records:
        link = f"[{r['chapter']}](../notebooks/{r['notebook']}.ipynb)"
        for v in r["verdicts"]:
            claim, paper, evidence = (v[k].replace("|", "\\|") for k in ("claim", "paper", "evidence"))  # |x| splits cells
            rows.append(f"| {link} | {claim} | {paper} | {ICON[v['reproduced']]} | `{r['profile']}` | {evidence} |")
    return "\n".join(rows) + "\n"


def runtimes(notebooks: Path) -> str:
    """Each chapter's measured runtime at the profile its committed outputs come from (notebook metadata)."""
    est = _estimate_module(notebooks.parent)
    rows = ["| chapter | committed outputs from | wall time | CPU time | torch threads | `gpu` on a T4, estimated |",
            "|---|---|---|---|---|---|"]
    for nb in sorted(notebooks.glob("*.ipynb")):
        meta = json.loads(nb.read_text())["metadata"].get("bnbook", {})
        if meta:
            cpu = f"{meta['cpu_seconds'] / 60:.1f} min" if "cpu_seconds" in meta else "not recorded"
            gpu = est.fmt_time(est.estimate_chapter(nb.stem).seconds) if nb.stem in est.WORKLOADS else "not estimated"
            rows.append(f"| [{nb.stem}](../notebooks/{nb.stem}.ipynb) | `{meta['profile']}` | "
                        f"{meta['seconds'] / 60:.1f} min | {cpu} | {meta.get('threads', 'not recorded')} | {gpu} |")
    return "\n".join(rows) + f"\n\n*Basis of the `gpu` estimates.* {est.BASIS}\n"


def _estimate_module(root: Path):
    """bench/estimate.py (not a package): FLOP-count estimates of each chapter's gpu runtime."""
    spec = importlib.util.spec_from_file_location("bnbook_estimate", root / "bench" / "estimate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def _write(app) -> None:
    root = Path(app.srcdir)
    _write_if_changed(root / "book" / "_generated" / "verdicts.md", table(collect(root / "notebooks")))
    _write_if_changed(root / "book" / "_generated" / "runtimes.md", runtimes(root / "notebooks"))


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
