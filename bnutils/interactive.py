"""Interactivity that works everywhere: live ipywidgets in Jupyter/Colab, an honest note in the static book.

The book's committed outputs are produced with BNBOOK_STATIC=1 (see tools/nb.py). There a live control would
be saved as a dead slider (no kernel behind it) or as raw `interactive(...)` text, so `live(...)` prints a
short note instead; precomputed sliders (`plots.frames_slider`) are what the static reader moves.
"""
from __future__ import annotations

import inspect
import os
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from ipywidgets import interactive

STATIC_ENV = "BNBOOK_STATIC"


def is_static() -> bool:
    """True while executing for the static book or CI (no one is there to move a slider)."""
    return os.environ.get(STATIC_ENV, "") not in ("", "0")


def live(fn: Callable[..., Any], note: str = "", **controls: Any) -> interactive | None:
    """A 'Run' button and one widget per control (ipywidgets abbreviations: (low, high, step) is a slider, a list a
    dropdown) that calls fn(**values) and shows the Figure it returns. Returns the widget, so tests can drive it.

    Only the named controls get widgets: bind fn's other arguments first (functools.partial). A ValueError from
    fn (a value it refuses) is shown as its message, not a traceback. In the static book, prints a note instead.
    """
    from IPython.display import Markdown, display

    if is_static():
        display(Markdown(f"*▶ Live control: open this notebook in Jupyter or Colab to use it. {note}*"))
        return None
    import ipywidgets as widgets
    import matplotlib.pyplot as plt

    sig = inspect.signature(fn)
    try:
        sig.bind(**dict.fromkeys(controls))
    except TypeError as e:
        raise ValueError(f"live(): the controls {list(controls)} do not fit {sig} ({e}); bind the other "
                         "arguments first, e.g. with functools.partial") from None

    def run(**values: Any) -> None:
        before = set(plt.get_fignums())
        try:
            fig = fn(**values)
        except ValueError as e:
            for num in set(plt.get_fignums()) - before:  # a half-drawn figure would be flushed below the message
                plt.close(num)
            print(f"Not run: {e}")
            return
        if fig is not None:
            display(fig)
            plt.close(fig)  # shown once: the inline backend would show it again

    # ipywidgets makes a widget for every parameter it sees: show it exactly the controls, with fn's defaults
    run.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY,
                          default=sig.parameters[name].default if name in sig.parameters else inspect.Parameter.empty)
        for name in controls])
    control = widgets.interactive(run, {"manual": True, "manual_name": "Run"}, **controls)
    display(control)
    return control
