"""Chapter 5 (large learning rates): prose generated from the learning-rate sweep."""
from __future__ import annotations

from typing import Any


def onset(name: str, where: dict[str, Any]) -> str:
    """Where a network diverges in a learning-rate sweep, exactly as the sweep shows it (`where`:
    `divergence.diverging_from`): 'diverges in every seed from η = a' when every seed diverges from the first lr at
    which any does, else 'diverges in some seeds from η = a' (and where every seed does, if anywhere)."""
    if where["some"] is None:
        return f"{name} never diverges on this grid"
    if where["every"] == where["some"]:
        return f"{name} diverges in every seed from η = {where['every']:g}"
    every = f", in every seed from η = {where['every']:g}" if where["every"] is not None else ""
    return f"{name} diverges in some seeds from η = {where['some']:g}{every}"


def best(name: str, summary: dict[str, Any]) -> str:
    """A network's best point of a learning-rate sweep (`summary`: one norm's entry of
    `divergence.summarize_sweep`): "<name>'s best: 87% at η = 0.1", or, when no lr of the grid had every seed
    train without diverging, "<name> trains at none of the N η tried (every one diverged in some seed)"."""
    if summary.get("best_lr") is None:
        n = len(summary.get("lrs") or summary.get("by_lr") or [])
        return f"{name} trains at none of the {n} η tried (each diverged in some seed)"
    return f"{name}'s best: {100 * summary['best_acc']:.0f}% at η = {summary['best_lr']:g}"
