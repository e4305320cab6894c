"""The book's figures, one module per chapter: `bnutils/figures/<chapter>.py` draws what
`bnutils/experiments/<chapter>.py` computes.

Experiments return JSON-able results and the numbers derived from them; the functions here only draw those
results. Figures modules import matplotlib at module level and are imported by notebooks and tests only, never
by an experiments module, so plotting code is never part of the code that produces a result.

One naming and signature convention for every chapter:

- ``plot_<what>(results..., *, title=None, ...) -> matplotlib.figure.Figure``: a whole figure. It creates the
  figure, draws it, sets `title` (computed by the caller from the numbers) as the bold figure title when given,
  lays it out and returns it. The caller shows it: ``figs.plot_x(r, title=...)`` then ``plt.show()``.
- ``draw_<what>(ax, results..., ...) -> None``: a panel drawn into an existing Axes (a fixed group of panels
  takes a sequence of Axes as its first argument). The caller owns the figure, its title and its layout.
- ``draw_<what>_frame(fig, value, results..., ...) -> None``: one frame of `bnutils.plots.frames_slider`, drawn
  into the (cleared) figure `fig` for the slider value `value`; bind the results with a lambda:
  ``plots.frames_slider(lambda fig, v: figs.draw_x_frame(fig, v, runs), values)``.

Colours and labels come from `bnutils.plots` (``plots.color(kind)``, ``plots.label(kind)``); diverged runs are
drawn (``plots.mark_diverged``), never silently left out. Numbers that a figure and a verdict both need are
computed in the experiments module and imported from there. In a notebook: ``from bnutils.figures import
<chapter> as figs`` next to ``from bnutils.experiments import <chapter> as exp``.
"""
from __future__ import annotations

from matplotlib.figure import Figure


def finish(fig: Figure, title: str | None = None, *, fontsize: float | None = None,
           rect: tuple[float, float, float, float] | None = None) -> Figure:
    """The end of every `plot_*`: `title` (if any) as the bold figure title, then a tight layout (within `rect`)."""
    if title:
        fig.suptitle(title, fontweight="bold", fontsize=fontsize)
    if rect is None:
        fig.tight_layout()
    else:
        fig.tight_layout(rect=rect)
    return fig
