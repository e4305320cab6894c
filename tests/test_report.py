"""The verdict table: a claim's text can never break the table (a '|' in |x| once split a cell of chapter 4)."""
import re

import pytest

from bnutils.report import Verdict, verdict_table


def test_pipes_in_text_do_not_split_cells():
    vs = [Verdict("norms are |x|-like", "Paper 2018", "partly", "|excess kurtosis| above BN's: 0/3"),
          Verdict("plain", "Paper", "yes", "1 < 2")]
    rows = [r for r in verdict_table("ci", vs).splitlines() if r.startswith("| ") and "---" not in r][1:]
    assert len(rows) == 2
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 7  # 5 cells between the outer pipes (criterion added)
    assert "\\|excess kurtosis\\|" in rows[0]


def test_needs_verdicts_and_valid_outcomes():
    with pytest.raises(ValueError, match="verdicts"):
        verdict_table("ci", [])
    with pytest.raises(ValueError, match="reproduced"):
        Verdict("c", "p", "maybe", "e")
    with pytest.raises(ValueError, match="kind"):
        Verdict("c", "p", "yes", "e", kind="vibes")


def test_not_at_this_scale_and_checks_are_shown_as_such():
    vs = [Verdict("c", "p", "not at this scale", "too few probes", adequate=False, claim_id="ch4.x", criterion="k of n"),
          Verdict("identity", "p", "yes", "equal to 1e-12", kind="derivation check", seeds=[0])]
    text = verdict_table("ci", vs)
    assert "not at this scale" in text and "derivation check, not evidence: holds" in text
    assert "(seeds 0)" in text and "k of n" in text


def test_what_we_found_follows_the_headline_verdict_and_names_the_others():
    from bnutils.report import Verdict, what_we_found

    answers = {"yes": "Yes, it does.", "partly": "Partly.", "no": "No, it does not.", "not at this scale": "Cannot tell."}
    v = lambda cid, r, claim="X is small": Verdict(claim, "P", r, "e", claim_id=cid, adequate=r != "not at this scale")
    text = what_we_found("Does X?", [v("a", "yes"), v("b", "no", "Y grows")], "a", answers)
    assert "*Does X?* Yes, it does." in text and "that y grows did not hold" in text
    text = what_we_found("Does X?", [v("a", "not at this scale"), v("b", "no", "Y grows")], "a", answers)
    assert "Cannot tell." in text  # the answer changes with the verdict
    with pytest.raises(ValueError, match="missing"):
        what_we_found("Q", [v("a", "yes")], "a", {"yes": "y"})
    with pytest.raises(ValueError, match="headline='c'"):
        what_we_found("Q", [v("a", "yes")], "c", answers)


def test_what_we_found_keeps_acronyms():
    from bnutils.report import Verdict, what_we_found

    answers = dict.fromkeys(("yes", "partly", "no", "not at this scale"), "A.")
    vs = [Verdict("Main", "P", "yes", "e", claim_id="a"), Verdict("BN does X", "P", "no", "e", claim_id="b"),
          Verdict("DLN: y", "P", "no", "e", claim_id="c"), Verdict("The net z", "P", "no", "e", claim_id="d")]
    text = what_we_found("Q?", vs, "a", answers)
    assert "that BN does X; that DLN: y; that the net z did not hold" in text
