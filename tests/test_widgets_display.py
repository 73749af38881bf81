"""kdlib.widgets._display: how widget callbacks show figures."""

from __future__ import annotations

import ipywidgets as widgets

from kdlib.plots import new_figure
from kdlib.widgets import _display


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
