"""Showing figures from widget callbacks (shared by every notebook's widgets)."""

from __future__ import annotations

import io


def in_kernel() -> bool:
    """True inside an IPython kernel (where displaying makes sense)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython is a dependency
        return False
    return get_ipython() is not None


def figure_png(figure) -> bytes:
    """The figure as PNG bytes (as the inline backend would draw it)."""
    buf = io.BytesIO()
    figure.savefig(buf, format="png", bbox_inches="tight")
    return buf.getvalue()


def show_in(out, figure, png: bytes | None = None) -> bytes | None:
    """Show ``figure`` (or its already rendered ``png``) in the ``Output`` widget ``out``.

    Only inside an IPython kernel; returns the PNG bytes shown (``None`` outside,
    so headless callers and tests pay no rendering cost).
    """
    if not in_kernel():
        return png
    from IPython.display import Image, display

    png = figure_png(figure) if png is None else png
    with out:
        out.clear_output(wait=True)
        display(Image(data=png, format="png"))
    return png
