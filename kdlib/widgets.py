"""Generic ipywidgets helpers that more than one lesson uses.

``show_in`` is the one way a widget callback shows a figure; ``LiveCurves`` redraws
training curves while ``kdlib.train.fit`` runs. A lesson's own widgets (sliders
wired to its figures) live in its lesson module and follow one pattern: a plain
class holding ``.widget`` (the ipywidgets container), delegating
``_repr_mimebundle_`` to it, and exposing what its callback produced (a label's
text, the current figure) as attributes, so tests set ``.value`` and check them.
"""

from __future__ import annotations

import io

import IPython
import IPython.display as ipd

from kdlib import plots

__all__ = ["in_kernel", "figure_png", "show_in", "LiveCurves"]


def in_kernel() -> bool:
    """True inside an IPython kernel (where displaying makes sense).

    Returns
    -------
    bool
        ``IPython.get_ipython() is not None`` (so also True in a terminal IPython session).
    """
    return IPython.get_ipython() is not None


def figure_png(figure) -> bytes:
    """The figure as PNG bytes (as the inline backend would draw it).

    Parameters
    ----------
    figure : matplotlib.figure.Figure

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    figure.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def show_in(out, figure, png: bytes | None = None) -> bytes | None:
    """Show ``figure`` (or its already rendered ``png``) in the ``Output`` widget ``out``.

    Only inside an IPython kernel (headless callers and tests pay no rendering cost).

    Parameters
    ----------
    out : ipywidgets.Output
    figure : matplotlib.figure.Figure
    png : bytes, optional
        An already rendered picture of it (a pre-rendered grid), shown as is.

    Returns
    -------
    bytes or None
        The PNG bytes shown; outside a kernel ``png`` unchanged (``None`` if not given).
    """
    if not in_kernel():
        return png
    png = figure_png(figure) if png is None else png
    with out:
        out.clear_output(wait=True)
        ipd.display(ipd.Image(data=png, format="png"))
    return png


class LiveCurves:
    """Redraw training curves in place while ``kdlib.train.fit`` runs.

    Use ``live = LiveCurves(); fit(..., callback=live.update)``. The figure is
    shown through an IPython display handle, so the notebook keeps the final
    curves as an ordinary PNG output. Outside IPython it just keeps ``.figure``.

    Parameters
    ----------
    title : str
        Figure title; ``""`` for none.
    references : dict of str to float, optional
        Label → accuracy drawn as a dashed line, as for :func:`kdlib.plots.training_curves`.

    Attributes
    ----------
    figure : matplotlib.figure.Figure or None
        The latest figure (None before the first update).
    updates : int
        Number of redraws so far.
    """

    def __init__(self, *, title: str = "", references: dict | None = None):
        self.title = title
        self.references = references
        self.figure = None
        self.updates = 0
        self._handle = None

    def update(self, history) -> None:
        """Redraw from ``history`` (a :class:`kdlib.train.History`); ``fit``'s callback."""
        self.figure = plots.training_curves(history, title=self.title, references=self.references)
        self.updates += 1
        if not in_kernel():
            return
        if self._handle is None:
            self._handle = ipd.display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)
