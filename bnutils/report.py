"""Verdicts: each chapter's claims, what was measured, and whether the claim reproduced, computed from numbers.

`show_verdicts` displays them as a table in the chapter and embeds them as machine-readable data in the
cell's output, from which `book/_ext/verdicts.py` builds the landing page's verdict table: never typed by hand.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

from . import validate

MIME = "application/vnd.bnbook.verdicts+json"
OUTCOMES = ("yes", "partly", "no")


@dataclass
class Verdict:
    """One claim of a paper and what our run found. `reproduced` is computed by the chapter from its numbers."""

    claim: str
    paper: str
    reproduced: str  # yes / partly / no
    evidence: str  # the numbers behind the verdict, in a sentence

    def __post_init__(self) -> None:
        validate.choice("reproduced", self.reproduced, OUTCOMES)


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
    icon = {"yes": "✅ yes", "partly": "🟡 partly", "no": "❌ no"}
    rows = "\n".join(f"| {cell(v.claim)} | {cell(v.paper)} | {icon[v.reproduced]} | {cell(v.evidence)} |"
                     for v in verdicts)
    return f"**Verdicts at profile `{profile}`**\n\n| claim | paper | reproduced | evidence |\n|---|---|---|---|\n{rows}"


def show_verdicts(chapter: str, profile: str, verdicts: list[Verdict]) -> None:
    """Display the verdict table and embed it (with chapter and profile) for the landing page."""
    from IPython.display import Markdown, display

    display(Markdown(verdict_table(profile, verdicts)))
    display({MIME: {"chapter": chapter, "profile": profile, "verdicts": [asdict(v) for v in verdicts]}}, raw=True)
