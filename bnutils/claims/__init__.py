"""Every claim the book tests, registered before the runs: the paper's quantity, the comparison, the criterion.

A chapter never decides a verdict itself. It measures, then calls `judge(claim_id, seeds=..., **numbers)`, which
applies the claim's criterion (a function of the measured numbers, defined once, in the chapter's module:
`claims/basics.py` ... `claims/causal.py`; thresholds and machinery in `claims/core.py`) and returns a
`bnutils.report.Verdict` carrying the claim, the paper, the criterion in words, the seeds, the effect and its
spread across seeds, whether the experiment was adequate, the outcome and an evidence sentence generated from the
numbers. No threshold lives in a notebook; the book's "pre-registration" page is generated from this registry.

Outcomes (the same for every claim; `grade` implements them):
- ``yes``: the effect holds in *every case* the claim covers (every setting x every seed) and the run has at least
  the claim's `min_seeds` seeds (2 for anything trained: one seed cannot show that a result survives a new seed).
- ``partly``: the effect holds in every case but with fewer seeds than that; or in at least half of the cases; or
  the claim's stated weaker form holds in every case. A verdict that changes with the seed is at most ``partly``.
- ``no``: the effect holds in fewer than half of the cases (or a rule states a contradiction, e.g. ch5's gain at
  equal learning rates).
- ``not at this scale``: the claim's adequacy check failed: the experiment could not have shown the effect (both
  networks at chance, nothing diverged, too few probed steps). It says nothing for or against the paper.

Checks that cannot fail, or that only test our code (kind other than ``"claim"``), are judged the same way but
listed as what they are: derivation checks, implementation checks, or facts that hold by construction. They are
not evidence for or against a paper.
"""
from __future__ import annotations

from typing import Any, Sequence

from .. import validate
from ..report import OUTCOMES, Verdict
from . import basics, causal, divergence, ics, landscape, noisy
from .core import *  # noqa: F401,F403  (thresholds and machinery, re-exported: `claims.BEYOND_CHANCE`)
from .core import Claim, finite, grade

_CLAIMS: list[Claim] = [*basics.CLAIMS, *ics.CLAIMS, *noisy.CLAIMS, *landscape.CLAIMS, *divergence.CLAIMS, *causal.CLAIMS]
CLAIMS: dict[str, Claim] = {c.id: c for c in _CLAIMS}


def judge(claim_id: str, *, seeds: Sequence[int], **numbers: Any) -> Verdict:
    """Apply the registered criterion of `claim_id` to the measured numbers; the Verdict record for show_verdicts.

    `seeds` are the independent replicates the numbers come from (training seeds, or initialisations where the
    claim says so); the keyword numbers are those the claim's rule takes (see its signature in this module).
    """
    validate.choice("claim_id", claim_id, CLAIMS)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must hold at least one seed")
    c = CLAIMS[claim_id]
    f = c.rule(**numbers)
    outcome = grade(f, len(seeds), c.min_seeds)
    evidence = f.evidence if f.adequate else f"Adequacy failed ({c.adequacy}): {f.evidence}"
    return Verdict(claim=c.text, paper=c.paper, reproduced=outcome, evidence=evidence, claim_id=c.id,
                   criterion=c.criterion, seeds=seeds, effect=None if not finite(f.effect) else float(f.effect),
                   spread=None if f.spread is None or not finite(f.spread) else float(f.spread),
                   adequate=bool(f.adequate), kind=c.kind)


def claims_markdown() -> str:
    """The registry as a MyST page body (the book's pre-registration page)."""
    out = ["## What the outcomes mean", ""]
    out += [f"- **{o}**: {OUTCOME_MEANING[o]}." for o in OUTCOMES]
    out += ["", "Rows of another kind than *claim* (derivation checks, implementation checks, facts that hold by "
            "construction) are listed in the verdict tables as what they are: they test our code or our algebra, "
            "and are not evidence for or against a paper.", ""]
    for ch in sorted({c.chapter for c in _CLAIMS}):
        out += [f"## Chapter {ch}", ""]
        for c in (c for c in _CLAIMS if c.chapter == ch):
            out += [f"### `{c.id}`: {c.text}", ""]
            if c.kind != "claim":
                out += [f"*A {c.kind}, not evidence.*", ""]
            out += [f"- **Paper**: {c.paper}", f"- **Quantity**: {c.quantity}", f"- **Comparison**: {c.comparison}",
                    f"- **Criterion**: {c.criterion}", f"- **Adequacy** (else *not at this scale*): {c.adequacy}",
                    f"- **Effect reported**: {c.effect}; a *yes* needs at least {c.min_seeds} "
                    f"seed{'s' if c.min_seeds > 1 else ''}", ""]
    return "\n".join(out)
