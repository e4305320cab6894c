"""Interactivity that works everywhere: live ipywidgets in Jupyter/Colab, an honest note in the static book.

The book's committed outputs are produced with BNBOOK_STATIC=1 (see tools/nb.py). There a live control would
be saved as a dead slider (no kernel behind it) or as raw `interactive(...)` text, so `live(...)` prints a
short note instead; precomputed sliders (`plots.frames_slider`) are what the static reader moves.
"""
from __future__ import annotations

import os
from typing import Any, Callable

STATIC_ENV = "BNBOOK_STATIC"


def is_static() -> bool:
    """True while executing for the static book or CI (no one is there to move a slider)."""
    return os.environ.get(STATIC_ENV, "") not in ("", "0")


def live(fn: Callable[..., Any], note: str = "", **controls: Any) -> None:
    """ipywidgets.interact(fn, **controls) in a live session, with manual 'Run' when the call is slow.

    In the static book, prints where the control runs live instead.
    """
    from IPython.display import Markdown, display

    if is_static():
        display(Markdown(f"*▶ Live control: open this notebook in Jupyter or Colab to use it. {note}*"))
        return
    import ipywidgets as widgets

    widgets.interact_manual(fn, **controls)
