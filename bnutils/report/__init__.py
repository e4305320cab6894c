"""Verdicts: each chapter's claims, what was measured, and whether the claim reproduced, computed from numbers.

`show_verdicts` displays them as a table in the chapter and embeds them as machine-readable data in the
cell's output, from which `book/_ext/verdicts.py` builds the landing page's verdict table: never typed by hand.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Sequence

from .. import validate

MIME = "application/vnd.bnbook.verdicts+json"
OUTCOMES = ("yes", "partly", "no", "not at this scale")  # defined in bnutils.claims (OUTCOME_MEANING)
KINDS = ("claim", "derivation check", "implementation check", "holds by construction")


@dataclass
class Verdict:
    """One claim of a paper and what our run found: built by `bnutils.claims.judge` from the registered criterion.

    kind "claim" is evidence for or against a paper; the other kinds (checks of our algebra or code, facts that hold
    by construction) are listed as what they are, never as evidence.
    """

    claim: str
    paper: str
    reproduced: str  # yes / partly / no / not at this scale
    evidence: str  # the numbers behind the verdict, in a sentence
    claim_id: str = ""  # the registry's id (bnutils.claims.CLAIMS)
    criterion: str = ""  # the registered criterion, in words
    seeds: list[int] = field(default_factory=list)  # the independent replicates the numbers come from
    effect: float | None = None  # the claim's headline effect
    spread: float | None = None  # its range across seeds (None with one seed)
    adequate: bool = True  # False: the run could not have shown the effect ("not at this scale")
    kind: str = "claim"

    def __post_init__(self) -> None:
        validate.choice("reproduced", self.reproduced, OUTCOMES)
        validate.choice("kind", self.kind, KINDS)
        if not self.adequate and self.reproduced != "not at this scale":
            raise ValueError(f"reproduced={self.reproduced!r} must be 'not at this scale' when adequate is False")


def outcome_label(v: Verdict, icons: dict[str, str] | None = None) -> str:
    """What the 'reproduced' column shows: the outcome for a claim; for a check, its kind and 'holds'/'fails'."""
    if v.kind != "claim":
        return f"{v.kind}, not evidence: {'holds' if v.reproduced == 'yes' else 'fails'}"
    return (icons or {}).get(v.reproduced, v.reproduced)


def outcome(holds: bool, partly: bool = False) -> str:
    """'yes' when the claim holds, 'partly' when only part of it does, else 'no'."""
    return "yes" if holds else ("partly" if partly else "no")


def cell(text: object) -> str:
    """Text made safe for one cell of a markdown table: a '|' in it (e.g. |x|) would split the cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def verdict_table(profile: str, verdicts: list[Verdict]) -> str:
    """The chapter's verdict table in markdown."""
    if not verdicts:
        raise ValueError("verdicts must hold at least one Verdict")
    icon = {"yes": "✅ yes", "partly": "🟡 partly", "no": "❌ no", "not at this scale": "⚪ not at this scale"}
    seeds = lambda v: f" (seeds {', '.join(map(str, v.seeds))})" if v.seeds else ""
    rows = "\n".join(f"| {cell(v.claim)} | {cell(v.paper)} | {cell(outcome_label(v, icon))} | "
                     f"{cell(v.evidence)}{cell(seeds(v))} | {cell(v.criterion or '—')} |" for v in verdicts)
    return (f"**Verdicts at profile `{profile}`** (criteria registered in `bnutils.claims`: see the book's claims page)"
            f"\n\n| claim | paper | reproduced | evidence | criterion |\n|---|---|---|---|---|\n{rows}")


def show_verdicts(chapter: str, profile: str, verdicts: list[Verdict]) -> list[Verdict]:
    """Display the verdict table and embed it (with chapter and profile) for the landing page; return the verdicts
    (the chapter's "What we found" is written from them)."""
    from IPython.display import Markdown, display

    display(Markdown(verdict_table(profile, verdicts)))
    display({MIME: {"chapter": chapter, "profile": profile, "verdicts": [asdict(v) for v in verdicts]}}, raw=True)
    return verdicts


PLAIN_OUTCOME = {"yes": "held", "partly": "held only in part", "no": "did not hold",
                 "not at this scale": "could not be tested at this scale"}


def what_we_found(question: str, verdicts: list[Verdict], headline: str, answers: dict[str, str]) -> str:
    """The chapter's question answered in plain words: the answer written for the headline claim's outcome
    (`answers` maps each outcome to a sentence), then what happened to every other claim. It changes whenever
    a verdict does; used as the closing paragraph of every chapter."""
    missing = [o for o in OUTCOMES if o not in answers]
    if missing:
        raise ValueError(f"answers must give a sentence for every outcome; missing {missing}")
    by_id = {v.claim_id: v for v in verdicts}
    if headline not in by_id:
        raise ValueError(f"headline={headline!r} is not among the verdicts' claim ids {sorted(by_id)}")
    others = [v for v in verdicts if v.kind == "claim" and v.claim_id != headline]
    groups: dict[str, list[str]] = {}
    for v in others:
        lower = not v.claim[1:2].isupper()  # "BN ..." and "DLN: ..." keep their capitals
        groups.setdefault(v.reproduced, []).append((v.claim[0].lower() if lower else v.claim[0]) + v.claim[1:].rstrip("."))
    rest = " ".join(f"The claim{'s' if len(c) > 1 else ''} that {'; that '.join(c)} {PLAIN_OUTCOME[o]}."
                    for o, c in groups.items())
    return f"**What we found.** *{question}* {answers[by_id[headline].reproduced]} {rest}".rstrip()


# -- generated prose and tables: pure text formatting of numbers a chapter computed ------------------------------

def span(values: Sequence[float], fmt: str | None = None) -> str:
    """A range of numbers for generated prose: 'lo-hi' ('3.4-5.5'), or one number when both ends print the same.

    Each end is formatted with `fmt` (a format spec such as '.2f'); None gives two significant digits without an
    exponent (0, 0.024, 0.82, 5.5, 230). Non-finite values are ignored; 'n/a' when none is left. A negative lower
    end is joined with ' to ' ('-0.78 to 0.30') so that the minus sign is not read as the range.
    """
    v = [x for x in (float(x) for x in values) if math.isfinite(x)]
    if not v:
        return "n/a"

    def num(x: float) -> str:
        if fmt is not None:
            return format(x, fmt)
        digits = 1 - math.floor(math.log10(abs(x))) if x != 0 else 0
        return f"{x:.{max(0, digits)}f}"

    lo, hi = num(min(v)), num(max(v))
    return lo if lo == hi else f"{lo} to {hi}" if min(v) < 0 else f"{lo}-{hi}"


# The chapters' generated prose, one module each (they use the names above): report.ics.scan_text(...)
from . import causal, divergence, ics, landscape  # noqa: E402,F401
