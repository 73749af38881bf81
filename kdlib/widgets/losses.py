"""Widgets of notebook 04 (the article's formulas, the correct loss, pitfalls)."""

from __future__ import annotations

import ipywidgets as widgets

from kdlib import losses, plots
from kdlib._checks import check_float
from kdlib.widgets._display import show_in

__all__ = ["LossTermsExplorer", "loss_terms_explorer"]


class LossTermsExplorer(widgets.VBox):
    """A λ slider and a T slider over the two terms of ``kd_loss`` on one batch.

    The unweighted terms ``(CE, T²·KL)`` are computed once per temperature in
    ``Ts`` (:func:`kdlib.losses.kd_terms`), so moving either slider only redraws
    :func:`kdlib.plots.loss_terms`.

    Attributes
    ----------
    lam_slider : ipywidgets.FloatSlider
        Description "λ", 0 to 1 in steps of 0.05.
    T_slider : ipywidgets.SelectionSlider
        Description "T", the values of ``Ts``.
    table : dict
        ``{T: (ce, soft)}`` for every ``T`` in ``Ts`` (floats).
    terms : tuple of float
        ``(ce, soft)`` at the current ``T``.
    weighted : tuple of float
        ``(lam * ce, (1 - lam) * soft, total)`` at the current λ and ``T``.
    figure : matplotlib.figure.Figure
        The figure drawn for the current values.
    label : ipywidgets.HTML
        One line with the current numbers.
    """

    def __init__(self, student_logits, teacher_logits, labels, *, Ts=(1, 2, 4, 8, 16),
                 lam: float = 0.5, T: float = 4.0):
        lam = check_float("lam", lam, low=0.0, high=1.0)
        T = check_float("T", T, low=0.0, low_open=True)
        Ts = [check_float("Ts", v, low=0.0, low_open=True) for v in Ts]
        if not Ts:
            raise ValueError("Ts must hold at least one temperature > 0, got an empty sequence")
        if T not in Ts:
            raise ValueError(f"T={T!r} must be one of Ts={Ts!r} (the precomputed temperatures)")
        self.table = {}
        for t in Ts:
            ce, soft = losses.kd_terms(student_logits.detach(), teacher_logits, labels, T=t)
            self.table[t] = (float(ce), float(soft))
        self.lam_slider = widgets.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05,
                                              description="λ", readout_format=".2f")
        self.T_slider = widgets.SelectionSlider(options=[(f"{t:g}", t) for t in Ts], value=T,
                                                description="T")
        self.label = widgets.HTML()
        self.out = widgets.Output()
        self.figure = None
        super().__init__([widgets.HBox([self.lam_slider, self.T_slider]), self.label, self.out])
        self.lam_slider.observe(self._redraw, names="value")
        self.T_slider.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change=None) -> None:
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        ce, soft = self.table[T]
        self.terms = (ce, soft)
        self.weighted = (lam * ce, (1 - lam) * soft, lam * ce + (1 - lam) * soft)
        self.figure = plots.loss_terms(ce, soft, lam=lam, T=T)
        self.label.value = (f"λ = {lam:.2f}, T = {T:g}: λ·CE = {self.weighted[0]:.4f}, "
                            f"(1 − λ)·T²·KL = {self.weighted[1]:.4f}, total = {self.weighted[2]:.4f}")
        show_in(self.out, self.figure)


def loss_terms_explorer(student_logits, teacher_logits, labels, *, Ts=(1, 2, 4, 8, 16), lam: float = 0.5,
                        T: float = 4.0) -> LossTermsExplorer:
    """Build a :class:`LossTermsExplorer` (display it by putting it last in a cell)."""
    return LossTermsExplorer(student_logits, teacher_logits, labels, Ts=Ts, lam=lam, T=T)
