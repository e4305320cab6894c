"""Chapter 4 (landscape smoothness): prose generated from the Fig 4 ratios."""
from __future__ import annotations

SMOOTHNESS_NAMES = {"loss_spread": "loss band width", "grad_hi": "gradient change", "K": "K"}


def smoothness_text(ratios: dict[str, float]) -> str:
    """Standard / BN ratios of the three Fig 4 medians as text: "loss band width 1.2x, gradient change 3.1x, K 2x"."""
    return ", ".join(f"{SMOOTHNESS_NAMES.get(k, k)} {v:.2g}x" for k, v in ratios.items())


def smoothness_finding(ratios: dict[str, float]) -> str:
    """How many of the three standard / BN ratios are above 1 (BN smaller), as a figure title's finding."""
    n = sum(v > 1 for v in ratios.values())
    return ("BN is smoother on all three measures" if n == len(ratios) else
            f"BN is smoother on {n} of {len(ratios)} measures" if n else "BN is not smoother here")
