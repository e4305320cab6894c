"""The book's generated tables (book/_ext/verdicts.py): verdicts and runtimes come from the notebooks, never typed."""
import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import verdicts as V  # noqa: E402


def test_runtime_table_has_measured_cpu_time_and_gpu_estimate_per_chapter():
    text = V.runtimes(ROOT / "notebooks")
    rows = [r for r in text.splitlines() if r.startswith("| [")]
    chapters = sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert [r.split("]")[0][3:] for r in rows] == chapters
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert cells[2].endswith(" min")  # wall time of the committed run
        assert cells[5].endswith(("min", " h", " s")) and cells[5] != "not estimated"
    assert "Basis of the `gpu` estimates" in text


def test_verdict_table_escapes_pipes_and_lists_every_verdict(tmp_path):
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {V.MIME: {
        "chapter": "9. Test", "profile": "ci",
        "verdicts": [{"claim": "|x| is small", "paper": "P", "reproduced": "partly", "evidence": "a | b"}]}}}]}],
        "metadata": {}}
    (tmp_path / "09_test.ipynb").write_text(json.dumps(nb))
    text = V.table(V.collect(tmp_path))
    row = [r for r in text.splitlines() if r.startswith("| [9. Test]")]
    assert len(row) == 1 and "\\|x\\| is small" in row[0] and "a \\| b" in row[0] and "*partly*" in row[0]


def test_empty_book_says_so(tmp_path):
    assert "No chapter" in V.table(V.collect(tmp_path))
