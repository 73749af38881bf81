"""Shared figure helpers for every lesson's plots."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def new_figure(w: float = 6.4, h: float = 3.6, ncols: int = 1, nrows: int = 1):
    """A new ``Figure`` (not registered with pyplot) and a 2-D array of its axes."""
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def smooth(values, window: int = 20) -> np.ndarray:
    """Moving average (same length; the first points average what exists)."""
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)
