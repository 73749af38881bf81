"""kdlib.widgets: how widget callbacks show figures, and LiveCurves."""

from __future__ import annotations

import ipywidgets as widgets

from kdlib import widgets as _display
from kdlib.plots import new_figure
from kdlib.train import History


def _figure():
    fig, ax = new_figure(2, 2)
    ax[0, 0].plot([0, 1], [1, 0])
    return fig


def test_figure_png_is_a_png():
    png = _display.figure_png(_figure())
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 500


def test_show_in_outside_a_kernel_renders_nothing():
    out = widgets.Output()
    assert not _display.in_kernel()
    assert _display.show_in(out, _figure()) is None
    assert _display.show_in(out, _figure(), png=b"stored") == b"stored"  # passed through untouched


def test_show_in_inside_a_kernel_displays_one_png(monkeypatch):
    shown = []
    monkeypatch.setattr(_display, "in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    out = widgets.Output()
    png = _display.show_in(out, _figure())
    assert png[:4] == b"\x89PNG" and len(shown) == 1 and shown[0].data == png
    assert _display.show_in(out, _figure(), png=b"\x89PNG cached") == b"\x89PNG cached"
    assert shown[-1].data == b"\x89PNG cached"  # a stored picture is shown without re-rendering


def _history(evals):
    h = History(steps_per_epoch=2)
    h.step_loss = [1.0, 0.8, 0.6, 0.5]
    h.evals = evals
    return h


def test_live_curves_redraws_from_each_history_headless():
    live = _display.LiveCurves(title="t", references={"teacher": 0.9})
    live.update(_history([(2, 0.5)]))
    live.update(_history([(2, 0.5), (4, 0.7)]))
    assert live.updates == 2
    acc_ax = live.figure.axes[1]
    xs, ys = acc_ax.lines[0].get_data()
    assert list(ys) == [0.5, 0.7] and list(xs) == [1.0, 2.0]  # steps / steps_per_epoch
    assert acc_ax.lines[1].get_ydata()[0] == 0.9  # the teacher's reference line


def test_live_curves_in_a_kernel_updates_one_display(monkeypatch):
    class Handle:
        def __init__(self):
            self.updated = 0

        def update(self, fig):
            self.updated += 1

    handles = []
    monkeypatch.setattr(_display, "in_kernel", lambda: True)
    monkeypatch.setattr("IPython.display.display",
                        lambda obj, display_id=None: handles.append(Handle()) or handles[-1])
    live = _display.LiveCurves()
    for n in range(3):
        live.update(_history([(2, 0.5)] * (n + 1)))
    assert len(handles) == 1 and handles[0].updated == 2
