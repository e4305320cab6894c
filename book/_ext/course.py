"""Sphinx extension: the instructors' planning table, measured from the chapters themselves.

For every chapter: the reading time (words of its markdown cells at 200 words a minute), the compute time of its
committed run (notebook metadata), and its exercises by kind (each exercise's heading says "pen and paper" or
"compute"). Written to book/_generated/course.md before the pages are read, so the plan cannot drift. A second
table, book/_generated/exercises.md, lists every exercise with its kind and the measured compute time of its
solution cells in the committed run (`tools/nb.py execute` stores each solution cell's seconds).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

from verdicts import write_if_changed  # a sibling extension in book/_ext

WORDS_PER_MINUTE = 200
EXERCISE = re.compile(r"^#+\s*Exercise\b[^\n]*", re.MULTILINE)


def chapter_row(nb: Path) -> dict:
    """Reading minutes, committed compute minutes and exercise counts of one chapter."""
    doc = json.loads(nb.read_text())
    text = "\n".join("".join(c["source"]) for c in doc["cells"] if c["cell_type"] == "markdown")
    heads = EXERCISE.findall(text)
    meta = doc["metadata"].get("bnbook", {})
    return {"name": nb.stem, "title": _title(text) or nb.stem, "read": len(re.findall(r"\w+", text)) / WORDS_PER_MINUTE,
            "compute": meta.get("seconds", float("nan")) / 60, "profile": meta.get("profile", "—"),
            "paper": sum("pen and paper" in h.lower() for h in heads),
            "code": sum("compute" in h.lower() for h in heads), "exercises": len(heads)}


def _title(text: str) -> str | None:
    m = re.search(r"^#\s+(.+)$", text, re.MULTILINE)
    return m.group(1).strip() if m else None


def table(notebooks: Path) -> str:
    rows = ["| chapter | reading | compute (committed run) | exercises: pen and paper / compute / all |",
            "|---|---|---|---|"]
    for nb in sorted(notebooks.glob("*.ipynb")):
        r = chapter_row(nb)
        rows.append(f"| [{r['title']}](../notebooks/{r['name']}.ipynb) | {r['read']:.0f} min | "
                    f"{r['compute']:.1f} min at `{r['profile']}` | {r['paper']} / {r['code']} / {r['exercises']} |")
    return "\n".join(rows) + "\n"


def exercises(nb: Path) -> list[dict]:
    """Each exercise of a chapter: its heading, kind, and the seconds its solution cells took in the committed run
    (None when the run stored no timing: a pen-and-paper exercise, or a chapter executed before timings existed)."""
    rows: list[dict] = []
    current: dict | None = None  # the exercise whose section we are in (a later heading ends it)
    for c in json.loads(nb.read_text())["cells"]:
        src = "".join(c["source"])
        heads = re.findall(r"^#+\s[^\n]*", src, re.MULTILINE) if c["cell_type"] == "markdown" else []
        if heads:  # a cell may hold several headings ("## Exercises" then "### Exercise 1"): the last one counts
            current = None
            for h in heads:
                if EXERCISE.match(h):
                    title = h.lstrip("# ").strip()
                    current = {"heading": title, "seconds": None,
                               "kind": "pen and paper" if "pen and paper" in title.lower() else "compute"}
                    rows.append(current)
                else:
                    current = None
            continue
        seconds = c.get("metadata", {}).get("bnbook", {}).get("seconds")
        if current is not None and seconds is not None:
            current["seconds"] = (current["seconds"] or 0.0) + float(seconds)
    return rows


def exercise_table(notebooks: Path) -> str:
    rows = ["| chapter | exercise | kind | compute (solution, committed run) |", "|---|---|---|---|"]
    for nb in sorted(notebooks.glob("*.ipynb")):
        r = chapter_row(nb)
        for e in exercises(nb):
            t = "—" if e["kind"] == "pen and paper" else ("not measured" if e["seconds"] is None else
                                                           (f"{e['seconds']:.0f} s" if e["seconds"] >= 1 else "under 1 s") + f" at `{r['profile']}`")
            rows.append(f"| {r['title'].split('.')[0]} | {e['heading']} | {e['kind']} | {t} |")
    return "\n".join(rows) + "\n"


def _write(app) -> None:
    root = Path(app.srcdir)
    write_if_changed(root / "book" / "_generated" / "course.md", table(root / "notebooks"))
    write_if_changed(root / "book" / "_generated" / "exercises.md", exercise_table(root / "notebooks"))


def setup(app):
    app.connect("builder-inited", _write)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
