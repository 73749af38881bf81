"""Generic matplotlib figures that more than one lesson uses.

Every function takes data and returns a new ``Figure`` (no pyplot state is kept,
so they work headless and are testable by inspecting the figure). Figures that
only one notebook shows live in its lesson module (``kdlib/lessons/``).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

__all__ = ["new_figure", "smooth", "training_curves", "image_grid", "per_class_bars", "confusion",
           "dot_plot", "heatmap"]


def new_figure(w: float = 6.4, h: float = 3.6, ncols: int = 1, nrows: int = 1):
    """A new ``Figure`` (not registered with pyplot) and a 2-D array of its axes.

    Parameters
    ----------
    w, h : float
        Size in inches.
    ncols, nrows : int

    Returns
    -------
    tuple
        ``(Figure, axes)`` with ``axes`` always 2-D (``axes[row, col]``).
    """
    fig = Figure(figsize=(w, h), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def smooth(values, window: int = 20) -> np.ndarray:
    """Moving average over ``window`` points (same length; the first points average what exists).

    Parameters
    ----------
    values : sequence of float
    window : int

    Returns
    -------
    ndarray
    """
    v = np.asarray(values, dtype=float)
    if len(v) == 0 or window <= 1:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    idx = np.arange(1, len(v) + 1)
    lo = np.maximum(0, idx - window)
    return (c[idx] - c[lo]) / (idx - lo)


def training_curves(history, *, title: str = "", references: dict | None = None) -> Figure:
    """Training loss per step (smoothed) and validation accuracy per evaluation.

    ``references`` maps a label to an accuracy drawn as a dashed horizontal line
    (e.g. ``{"teacher": 0.89}``).

    Parameters
    ----------
    history : kdlib.train.History
        Its ``step_loss`` (left panel, raw and :func:`smooth`-ed) and ``evals`` (right panel),
        both against epochs (steps / ``steps_per_epoch``).
    title : str
        Figure title; ``""`` for none.
    references : dict of str to float, optional
        Label → accuracy in [0, 1], each a dashed line in the accuracy panel.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels side by side, 9 × 3.4 inches (notebooks 01 and 02, :class:`kdlib.widgets.LiveCurves`).
    """
    fig, ax = new_figure(9, 3.4, ncols=2)
    loss_ax, acc_ax = ax[0]
    steps = np.arange(1, len(history.step_loss) + 1)
    spe = max(history.steps_per_epoch, 1)
    if len(steps):
        loss_ax.plot(steps / spe, history.step_loss, color="0.8", lw=0.8, label="per batch")
        loss_ax.plot(steps / spe, smooth(history.step_loss), color="C0", label="smoothed")
    loss_ax.set(xlabel="epoch", ylabel="training loss", title="loss")
    loss_ax.legend(loc="upper right", fontsize="small")
    if history.evals:
        s, a = zip(*history.evals)
        acc_ax.plot(np.array(s) / spe, a, "o-", color="C1", label="validation")
    for i, (name, value) in enumerate((references or {}).items()):
        acc_ax.axhline(value, ls="--", color=f"C{i + 2}", lw=1, label=f"{name} {value:.3f}")
    acc_ax.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    if history.evals or references:
        acc_ax.legend(loc="lower right", fontsize="small")
    if title:
        fig.suptitle(title)
    return fig


def image_grid(x, labels, classes, *, predicted=None, ncols: int = 8, size: float = 1.3) -> Figure:
    """Images with their label (and prediction, red when wrong) as titles.

    Parameters
    ----------
    x : array-like
        Images, shape ``(n, ..., H, W)`` (each reshaped to its last two dimensions), drawn ``gray_r``.
    labels : sequence of int
        True class of each image.
    classes : sequence of str
        Class names, indexed by label.
    predicted : sequence of int, optional
        Predicted classes; the title then shows the prediction and, when wrong, the truth in red.
    ncols : int
        Images per row.
    size : float
        Width of one image in inches (height ``1.25 * size``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    x = np.asarray(x)
    n = len(x)
    nrows = max(1, -(-n // ncols))
    fig, ax = new_figure(size * ncols, size * 1.25 * nrows, ncols=ncols, nrows=nrows)
    for i, a in enumerate(ax.flat):
        a.axis("off")
        if i >= n:
            continue
        a.imshow(x[i].reshape(x[i].shape[-2:]), cmap="gray_r")
        true = classes[int(labels[i])]
        if predicted is None:
            a.set_title(true, fontsize=7)
        else:
            pred = classes[int(predicted[i])]
            ok = int(predicted[i]) == int(labels[i])
            a.set_title(pred if ok else f"{pred}\n(true: {true})", fontsize=7,
                        color="black" if ok else "red")
    return fig


def per_class_bars(values, classes, *, ylabel: str = "accuracy", title: str = "",
                   others: dict | None = None) -> Figure:
    """One bar per class (several series side by side when ``others`` is given).

    The value axis starts at 0 (a truncated axis exaggerates differences), and each
    bar carries its value (two decimals, 8 pt) so small differences stay readable.

    Parameters
    ----------
    values : sequence of float
        One value per class (e.g. accuracies in [0, 1]).
    classes : sequence of str
        Class names, the tick labels.
    ylabel : str
        Axis label, and the legend name of ``values``.
    title : str
    others : dict, optional
        ``{name: values}`` of further series drawn beside ``values``.

    Returns
    -------
    Figure
        ``axes[0].patches`` are the bars, series after series.
    """
    series = {ylabel: np.asarray(values, float)}
    series.update({k: np.asarray(v, float) for k, v in (others or {}).items()})
    fig, ax = new_figure(9, 3.4)
    a = ax[0, 0]
    width = 0.8 / len(series)
    pos = np.arange(len(classes))
    for i, (name, v) in enumerate(series.items()):
        bars = a.bar(pos + (i - (len(series) - 1) / 2) * width, v, width, label=name)
        a.bar_label(bars, fmt="%.2f", fontsize=8, padding=1)
    a.set_xticks(pos, classes, rotation=30, ha="right", fontsize=8)
    hi = max(float(np.nanmax(v)) for v in series.values())
    a.set_ylim(0.0, max(1.0, hi) * 1.1)  # from 0; headroom for the value labels
    a.set(ylabel=ylabel, title=title)
    if len(series) > 1:
        a.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def confusion(cm, classes, *, title: str = "confusion matrix (rows: true, columns: predicted)",
              normalize: bool = True) -> Figure:
    """Heat map of a confusion matrix; the cells print the unit the colour bar shows.

    Parameters
    ----------
    cm : array-like
        ``(classes, classes)`` counts, rows the true class, columns the prediction.
    classes : sequence of str
        Class names.
    title : str
    normalize : bool
        True (default): colour and cell text are the percentage of the row (of the
        true class's examples), ``"<1"`` for a non-zero share below 1 %; False:
        raw counts. Empty cells are left blank.

    Returns
    -------
    Figure
        ``axes[0].images[0]`` holds what is shown (percent or counts); the colour
        bar (``axes[1]``) is labelled with that unit.
    """
    cm = np.asarray(cm, dtype=float)
    if normalize:
        shown = 100 * cm / np.maximum(cm.sum(1, keepdims=True), 1)
        unit = "% of the true class's examples"
    else:
        shown, unit = cm, "count"
    fig, ax = new_figure(6.8, 6.0)
    a = ax[0, 0]
    im = a.imshow(shown, cmap="Blues", vmin=0)
    k = len(classes)
    a.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
    a.set_yticks(range(k), classes, fontsize=8)
    a.set(xlabel="predicted class", ylabel="true class")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                v = shown[i, j]
                text = ("<1" if v < 1 else f"{v:.0f}") if normalize else f"{int(cm[i, j])}"
                a.text(j, i, text, ha="center", va="center", fontsize=8,
                       color="white" if v > 0.5 * shown.max() else "black")
    a.set_title(title, fontsize=10)
    fig.colorbar(im, ax=a, shrink=0.8, label=unit)
    return fig


def dot_plot(table, *, scale: float = 100.0, xlabel: str = "test accuracy (%)", title: str = "",
             references: dict | None = None) -> Figure:
    """The collection's one comparison plot, from a :func:`kdlib.results.compare` table.

    Left: one grey dot per run and the group's mean ± sd (black). Right, when the table has
    a reference: each group's paired difference to it with its confidence interval, and a
    dashed zero line; an interval that crosses it has shown nothing.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`kdlib.results.compare`'s table (groups in its order, top to bottom).
    scale : float
        Multiplies every value (100: fractions → percent and points).
    xlabel : str
        The left axis' label; the right one is "difference to <reference> (points)".
    title : str
    references : dict, optional
        ``{label: value}`` drawn as dotted vertical lines on the left (e.g. the teacher).

    Returns
    -------
    Figure
        ``axes[0]`` the runs (its second collection holds the means as ``x`` data), ``axes[1]``
        the differences when there is a reference.
    """
    paired = "diff" in table.columns
    fig, axes = new_figure(8.0 if paired else 5.5, 0.9 + 0.42 * len(table), ncols=2 if paired else 1)
    ax = axes[0, 0]
    y = np.arange(len(table))
    for i, values in enumerate(table["values"]):
        ax.scatter(scale * np.asarray(values, dtype=float), np.full(len(values), i), s=14,
                   color="0.65", zorder=2)
    sd = [0.0 if math.isnan(v) else scale * v for v in table["sd"]]
    ax.errorbar(scale * table["mean"].to_numpy(), y, xerr=sd, fmt="o", color="black", capsize=3,
                ms=5, zorder=3)
    for label, value in (references or {}).items():
        ax.axvline(scale * value, color="C3", ls=":", lw=1)
        ax.text(scale * value, -0.6, label, color="C3", fontsize=8, ha="center", va="bottom")
    ax.set_yticks(y, [str(g) for g in table.index], fontsize=9)
    ax.set_ylim(len(table) - 0.4, -0.8)
    ax.set_xlabel(f"{xlabel}  (grey: runs, black: mean ± sd)", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    if paired:
        d = axes[0, 1]
        diff = scale * table["diff"].to_numpy()
        lo, hi = scale * table["low"].to_numpy(), scale * table["high"].to_numpy()
        err = np.nan_to_num(np.vstack([diff - lo, hi - diff]))
        d.errorbar(diff, y, xerr=err, fmt="o", color="C0", ecolor="black", capsize=3, ms=5)
        d.axvline(0, color="0.4", lw=1, ls="--")
        d.set_yticks(y, [""] * len(y))
        d.set_ylim(len(table) - 0.4, -0.8)
        conf = table.attrs.get("confidence", 0.95)
        d.set_xlabel(f"− {table.attrs.get('reference')} (points, {100 * conf:g} % CI)", fontsize=9)
        d.grid(axis="x", alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def heatmap(values, *, text=None, marked=None, xlabel: str = "", ylabel: str = "", cbar_label: str = "",
            title: str = "") -> Figure:
    """A grid of numbers as a diverging heatmap centred on 0, cells annotated, some hatched.

    Parameters
    ----------
    values : pandas.DataFrame
        Numbers; the index runs down (first row at the bottom), the columns across. ``nan``
        cells stay blank.
    text : pandas.DataFrame, optional
        The same shape: each cell's annotation (default: ``values`` to 2 decimals).
    marked : pandas.DataFrame of bool, optional
        The same shape: cells drawn hatched (e.g. where an interval contains 0).
    xlabel, ylabel, cbar_label, title : str

    Returns
    -------
    Figure
        ``axes[0]`` the grid (its image's array is ``values``), ``axes[1]`` the colour bar.
    """
    v = np.asarray(values, dtype=float)
    if v.ndim != 2 or not v.size:
        raise ValueError(f"values must be a non-empty 2-D table, got shape {v.shape}")
    fig, axes = new_figure(1.6 + 1.1 * v.shape[1], 1.2 + 0.55 * v.shape[0])
    ax = axes[0, 0]
    top = float(np.nanmax(np.abs(v))) if np.isfinite(v).any() else 1.0
    top = top or 1.0
    image = ax.imshow(v, cmap="RdBu", vmin=-top, vmax=top, origin="lower", aspect="auto")
    marks = np.zeros_like(v, dtype=bool) if marked is None else np.asarray(marked, dtype=bool)
    labels = None if text is None else np.asarray(text, dtype=object)
    for i in range(v.shape[0]):
        for j in range(v.shape[1]):
            if marks[i, j]:
                ax.add_patch(_hatch(j, i))
            if labels is not None or np.isfinite(v[i, j]):
                label = labels[i, j] if labels is not None else f"{v[i, j]:.2f}"
                ax.text(j, i, label, ha="center", va="center", fontsize=8)
    ax.set_xticks(range(v.shape[1]), [str(c) for c in getattr(values, "columns", range(v.shape[1]))])
    ax.set_yticks(range(v.shape[0]), [f"{r:,}" if isinstance(r, (int, np.integer)) else str(r)
                                      for r in getattr(values, "index", range(v.shape[0]))])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.colorbar(image, ax=ax, label=cbar_label)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _hatch(x: float, y: float):
    """A hatched, unfilled square over cell ``(x, y)`` of a heatmap."""
    return Rectangle((x - 0.5, y - 0.5), 1, 1, fill=False, hatch="//", edgecolor="0.55", lw=0)
