"""The book's generated tables (book/_ext/verdicts.py): verdicts and runtimes come from the notebooks, never typed."""
import json
import sys
from pathlib import Path

import nbformat
import pytest

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


def test_verdict_table_shows_not_at_this_scale_and_checks_honestly(tmp_path):
    vs = [{"claim": "smoother", "paper": "P", "reproduced": "not at this scale", "evidence": "3 probed steps",
           "claim_id": "ch4.vgg_smoother", "kind": "claim", "adequate": False},
          {"claim": "identity", "paper": "P", "reproduced": "yes", "evidence": "1e-12", "kind": "derivation check"}]
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {V.MIME: {
        "chapter": "9. Test", "profile": "ci", "verdicts": vs}}}]}], "metadata": {}}
    (tmp_path / "09_test.ipynb").write_text(json.dumps(nb))
    rows = [r for r in V.table(V.collect(tmp_path)).splitlines() if r.startswith("| [9. Test]")]
    assert "*not at this scale*" in rows[0] and "`ch4.vgg_smoother`" in rows[0]
    assert "derivation check, not evidence: holds" in rows[1] and "**yes**" not in rows[1]


def test_claims_page_lists_every_registered_claim_with_its_criterion():
    from bnutils import claims

    text = V.claims_page(ROOT)
    for c in claims.CLAIMS.values():
        assert f"`{c.id}`" in text and c.criterion in text
    assert "**not at this scale**" in text


def _chapter(tmp_path, name: str, verdicts: list[dict], markdown: str = "# 9. Test\n", seconds: float = 60.0):
    nb = {"cells": [{"cell_type": "markdown", "source": markdown},
                    {"cell_type": "code", "outputs": [{"output_type": "display_data", "data": {V.MIME: {
                        "chapter": "9. Test", "profile": "cpu", "verdicts": verdicts}}}]}],
          "metadata": {"bnbook": {"profile": "cpu", "seconds": seconds}}}
    (tmp_path / f"{name}.ipynb").write_text(json.dumps(nb))


def test_closing_chapter_weighs_each_explanation_from_the_verdicts(tmp_path):
    import closing

    v = lambda cid, r: {"claim": cid, "paper": "P", "reproduced": r, "evidence": "", "claim_id": cid}
    _chapter(tmp_path, "09_test", [v("ch2.ics_equal_step", "yes"), v("ch1.fig1_steadier", "no"),
                                   v("ch5.gain_from_large_lr", "not at this scale")])
    text = closing.explanation_table("ics", closing.verdicts_by_id(tmp_path))
    assert "2 (2 fully, 0 in part) speak against it" in text and "0 support this explanation" in text
    _chapter(tmp_path, "09_test", [v("ch2.ics_equal_step", "no"), v("ch1.fig1_steadier", "yes")])
    text = closing.explanation_table("ics", closing.verdicts_by_id(tmp_path))
    assert "2 (2 fully, 0 in part) support this explanation" in text  # the weighing follows the verdicts
    assert "could not be decided" in closing.explanation_table("large_lr", closing.verdicts_by_id(tmp_path))


def test_every_claim_the_closing_chapter_names_is_registered():
    import closing
    from bnutils.claims import CLAIMS

    ids = set(CLAIMS)
    named = {cid for _, claims in closing.EXPLANATIONS.values() for cid, _ in claims}
    assert named <= ids, f"not in the registry: {sorted(named - ids)}"


def test_course_table_counts_reading_time_and_exercises_by_kind(tmp_path):
    import course

    md = "# 9. Test\n" + "word " * 400 + "\n### Exercise 1 (pen and paper)\n### Exercise 2 (compute)\n### Exercise 3 (compute)\n"
    _chapter(tmp_path, "09_test", [], markdown=md, seconds=90.0)
    row = [r for r in course.table(tmp_path).splitlines() if r.startswith("| [9. Test]")][0]
    assert "| 2 min |" in row and "1.5 min at `cpu`" in row and "| 1 / 2 / 3 |" in row


def test_exercise_table_sums_each_exercises_solution_seconds_and_stops_at_the_next_heading(tmp_path):
    import course

    cells = [nbformat.v4.new_markdown_cell("# 9. Test"),
             nbformat.v4.new_markdown_cell("## Exercises\n\nTry these.\n\n### Exercise 1 (pen and paper)"),
             nbformat.v4.new_markdown_cell("### Exercise 2 (compute)"),
             nbformat.v4.new_code_cell("a", metadata={"tags": ["solution"], "bnbook": {"seconds": 12.0}}),
             nbformat.v4.new_code_cell("b", metadata={"tags": ["solution"], "bnbook": {"seconds": 3.5}}),
             nbformat.v4.new_markdown_cell("## Summary"),
             nbformat.v4.new_code_cell("c", metadata={"bnbook": {"seconds": 99.0}}),
             nbformat.v4.new_markdown_cell("### Exercise 3 (compute)")]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"bnbook": {"profile": "cpu", "seconds": 1.0}})
    nbformat.write(nb, tmp_path / "09_test.ipynb")
    assert [(e["kind"], e["seconds"]) for e in course.exercises(tmp_path / "09_test.ipynb")] == \
        [("pen and paper", None), ("compute", 15.5), ("compute", None)]
    table = course.exercise_table(tmp_path)
    assert "| 9 | Exercise 2 (compute) | compute | 16 s at `cpu` |" in table and "not measured" in table


def test_scales_page_shows_every_seed_set_per_scale_and_names_the_scales_without_records(tmp_path):
    import scales

    def rec(profile, seed, outcome, effect):
        return {"chapter": "02_x", "profile": profile, "seed": seed, "seconds": 60.0, "claims": {
            "ch2.ics_equal_step": {"reproduced": outcome, "effect": effect, "spread": None, "adequate": True,
                                   "seeds": [seed, seed + 1]}}}

    md = scales.page([rec("cpu", 0, "partly", 3.0), rec("ci", 0, "no", 1.0), rec("ci", 1, "yes", 2.0),
                      rec("ci", 2, "partly", 4.0)], images={("02_x", "ci"): 1280})
    ci_row = [r for r in md.splitlines() if r.startswith("| `ci`")][0]
    assert "0/1, 1/2, 2/3" in ci_row and "no; yes; partly" in ci_row and "2 (1 to 4)" in ci_row
    assert "1,280" in ci_row and "3 of 3" in ci_row
    assert md.index("| `ci`") < md.index("| `cpu`")  # scales in order of compute
    assert "No records yet** at: `long`, `gpu` (" in md


def test_a_sweeps_copy_is_recorded_under_its_own_profile_seed_and_time(tmp_path):
    """A seed sweep's executed copy carries the committed run's metadata (profile cpu, its seconds): the record
    must take the profile from the verdicts, the time from papermill and the chapter without the seed suffix."""
    import scales

    rec = {"chapter": "Test", "profile": "ci", "verdicts": [{"claim_id": "ch2.ics_equal_step", "reproduced": "no",
                                                              "effect": 1.5, "spread": None, "adequate": True,
                                                              "seeds": [1, 2]}]}
    cells = [nbformat.v4.new_code_cell("seed = 1", metadata={"tags": ["injected-parameters"]}),
             nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("display_data", data={V.MIME: rec})])]
    nb = nbformat.v4.new_notebook(cells=cells, metadata={"bnbook": {"profile": "cpu", "seconds": 200.0},
                                                         "papermill": {"duration": 41.26}})
    nbformat.write(nb, tmp_path / "02_x_seed1.ipynb")
    r = scales.records_of(tmp_path / "02_x_seed1.ipynb")
    assert (r["chapter"], r["profile"], r["seed"], r["seconds"]) == ("02_x", "ci", 1, 41.3)
    assert r["claims"]["ch2.ics_equal_step"]["reproduced"] == "no"


def _adequacy_records(spec):
    """Scale records from {(chapter, scale, seed): {claim id: adequate}}."""
    return [{"chapter": c, "profile": p, "seed": s, "seconds": 1.0,
             "claims": {cid: {"reproduced": "yes" if ok else "not at this scale", "effect": 1.0, "spread": None,
                              "adequate": ok, "seeds": [s]} for cid, ok in claims.items()}}
            for (c, p, s), claims in spec.items()]


def test_scale_rule_needs_every_seed_set_adequate_and_at_least_two_of_them():
    import scales

    recs = _adequacy_records({
        ("05_x", "ci", 0): {"a": False, "b": True}, ("05_x", "ci", 1): {"a": True, "b": True},
        ("05_x", "cpu", 0): {"a": True, "b": True}, ("05_x", "cpu", 10): {"a": False, "b": True},
        ("05_x", "long", 0): {"a": True, "b": True},  # one seed set: never enough
        ("01_y", "ci", 0): {"c": True}, ("01_y", "ci", 1): {"c": True}, ("01_y", "cpu", 0): {"c": True}})
    adeq = scales.adequacy(recs)
    assert adeq["05_x", "cpu"] == {"a": (1, 2), "b": (2, 2)}
    assert scales.unreliable(adeq["05_x", "cpu"]) == {"a": (1, 2)}
    assert scales.unreliable(adeq["01_y", "cpu"]) == {"c": (1, 1)}  # too few seed sets
    assert scales.cheapest_adequate(adeq, "05_x") is None and scales.cheapest_adequate(adeq, "01_y") == "ci"
    md = scales.rule_table(recs)
    assert "| 05_x | none recorded | 2 | `a` (adequate in 1 of 2 seed sets) |" in md
    assert "| 01_y | `ci` | 1 | `c` (1 seed set recorded, the rule needs 2) |" in md


def test_landing_table_marks_what_the_scale_rule_flags_and_nothing_else():
    rec = {"chapter": "5. X", "notebook": "05_x", "profile": "cpu", "verdicts": [
        {"claim": "A", "paper": "P", "evidence": "e", "reproduced": "no", "claim_id": "ch5.a"},
        {"claim": "B", "paper": "P", "evidence": "e", "reproduced": "yes", "claim_id": "ch5.b"}]}
    rows = V.table([rec], {"ch5.a": "adequate in 1 of 2 seed sets"}).splitlines()
    a, b = [r for r in rows if "`ch5.a`" in r][0], [r for r in rows if "`ch5.b`" in r][0]
    assert "*not at this scale* (adequate in 1 of 2 seed sets)" in a and "scale rule" not in b


def test_scales_rows_name_the_cpu_kernels_they_ran_on():
    import scales

    amx = {"torch": "2.14.1", "cpu": "AVX512", "amx": True, "cpu_bf16": True}
    assert scales.cpu_label(amx) == "AVX512, AMX bf16"
    assert scales.cpu_label({**amx, "amx": False}) == "AVX512, AVX512-BF16"
    assert scales.cpu_label({**amx, "cpu": "AVX2", "amx": False, "cpu_bf16": False}) == "AVX2, no native bf16"
    assert scales.cpu_label(None) == "not recorded"
    rec = {"chapter": "02_x", "profile": "cpu", "seed": 0, "seconds": 60.0, "platform": amx, "claims": {
        "ch2.ics_equal_step": {"reproduced": "yes", "effect": 1.0, "spread": None, "adequate": True, "seeds": [0, 1]}}}
    old = {**rec, "seed": 10, "platform": None}
    row = [r for r in scales.page([rec, old]).splitlines() if r.startswith("| `cpu`")][0]
    assert row.endswith("| AVX512, AMX bf16; not recorded |")


def test_seed_report_compares_each_checked_cells_whole_text(tmp_path):
    """tools/seeds.py: one print split into two stream chunks in one run and not in the other is the same output
    (nbval coalesces streams), and a checked cell whose text differs is reported, not crashed on."""
    sys.path.insert(0, str(ROOT / "tools"))
    import seeds

    def nb(name, chunks, other):
        cells = [{"cell_type": "code", "metadata": {"tags": ["nbval-check-output"]}, "source": "", "outputs":
                  [{"output_type": "stream", "name": "stdout", "text": c} for c in chunks]},
                 {"cell_type": "code", "metadata": {"tags": ["nbval-check-output"]}, "source": "", "outputs":
                  [{"output_type": "stream", "name": "stdout", "text": other}]}]
        p = tmp_path / name
        p.write_text(json.dumps({"cells": cells, "metadata": {}}))
        return p

    a = nb("a.ipynb", ["x is small:", " True\n"], "same\n")
    b = nb("b.ipynb", ["x is small: True\n"], "same\n")
    c = nb("c.ipynb", ["x is small: False\n"], "same\n")
    assert seeds.checked_lines(a) == seeds.checked_lines(b) == ["x is small: True\n", "same\n"]
    assert "changed with the seed: 0" in seeds.report({"ch": {0: a, 1: b}}, "ci")
    text = seeds.report({"ch": {0: a, 1: c}}, "ci")
    assert "changed with the seed: 1" in text and "x is small: False" in text


def test_seed_sweep_takes_notebooks_anywhere_on_the_line():
    """tools/seeds.py: notebooks after `--seeds 0 1` are notebooks, not seeds (argparse alone rejected them)."""
    sys.path.insert(0, str(ROOT / "tools"))
    import seeds

    a = seeds.parse(["out", "--profile", "long", "--seeds", "10", "11", "notebooks/05_learning_rate.ipynb"])
    assert (a.out, a.profile, a.seeds, a.notebooks) == ("out", "long", [10, 11], ["notebooks/05_learning_rate.ipynb"])
    b = seeds.parse(["out", "x.ipynb", "--seeds", "3"])
    assert (b.seeds, b.notebooks) == ([3], ["x.ipynb"])
    with pytest.raises(SystemExit):
        seeds.parse(["out", "--seeds", "ten"])
