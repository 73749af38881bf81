"""Live training displays (notebook 01 onwards)."""

from __future__ import annotations

from kdlib import plots
from kdlib.widgets._display import in_kernel

__all__ = ["LiveCurves"]


class LiveCurves:
    """Redraw training curves in place while ``kdlib.train.fit`` runs.

    Use ``live = LiveCurves(); fit(..., callback=live.update)``. The figure is
    shown through an IPython display handle, so the notebook keeps the final
    curves as an ordinary PNG output. Outside IPython it just keeps ``.figure``.
    """

    def __init__(self, *, title: str = "", references: dict | None = None):
        self.title = title
        self.references = references
        self.figure = None
        self.updates = 0
        self._handle = None

    def update(self, history) -> None:
        self.figure = plots.training_curves(history, title=self.title, references=self.references)
        self.updates += 1
        if not in_kernel():
            return
        from IPython.display import display

        if self._handle is None:
            self._handle = display(self.figure, display_id=True)
        else:
            self._handle.update(self.figure)
