"""Figures of notebook 05 (lambda / T tuning, cross-validation, seeds).

They draw the rows of :mod:`kdlib.tuning` (one dict per trained student, with a
``history`` of per-epoch training loss and validation accuracy).
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from kdlib.plots._base import new_figure as _fig
from kdlib.tuning import BASELINE_LAM, summarize

__all__ = ["learning_curves", "grid_point", "accuracy_heatmap", "kfold_scores", "group_bars"]


def _hist(h) -> dict:
    """A history as a dict with ``epoch_loss`` and ``val_acc`` (History or dict)."""
    if isinstance(h, dict):
        return h
    return {"epoch_loss": list(h.epoch_loss), "val_acc": list(h.val_acc)}


def _mean_curve(histories, key):
    curves = [np.asarray(_hist(h)[key], float) for h in histories]
    n = min(len(c) for c in curves)
    return np.mean([c[:n] for c in curves], axis=0)


def learning_curves(histories, *, labels=None, baseline=None, references: dict | None = None,
                    title: str = "") -> Figure:
    """Training loss and validation accuracy per epoch.

    Parameters
    ----------
    histories : list of History or dict
        One curve per entry (``epoch_loss`` and ``val_acc`` per epoch).
    labels : list of str, optional
        Legend labels of ``histories``.
    baseline : list of History or dict, optional
        Drawn as one grey dashed curve: the mean over these histories.
    references : dict, optional
        ``{label: accuracy}`` drawn as horizontal dotted lines on the accuracy panel.
    title : str

    Returns
    -------
    Figure
        ``axes[0]`` the loss, ``axes[1]`` the accuracy. Each panel's ``lines`` are,
        in order: one per history, then the baseline mean (if given), then (on
        ``axes[1]``) one per reference.
    """
    fig, ax = _fig(9, 3.3, ncols=2)
    _draw_curves(ax[0, 0], ax[0, 1], histories, labels, baseline, references)
    if title:
        fig.suptitle(title)
    return fig


def _draw_curves(loss_ax, acc_ax, histories, labels, baseline, references):
    histories = [_hist(h) for h in histories]
    labels = labels or [None] * len(histories)
    for i, (h, lab) in enumerate(zip(histories, labels)):
        epochs = np.arange(1, len(h["epoch_loss"]) + 1)
        loss_ax.plot(epochs, h["epoch_loss"], "-", color="C0", alpha=0.45 + 0.55 / (i + 1),
                     lw=1.4, label=lab)
        acc_ax.plot(np.arange(1, len(h["val_acc"]) + 1), h["val_acc"], "-", color="C0",
                    alpha=0.45 + 0.55 / (i + 1), lw=1.4, label=lab)
    if baseline:
        for a, key in ((loss_ax, "epoch_loss"), (acc_ax, "val_acc")):
            m = _mean_curve(baseline, key)
            a.plot(np.arange(1, len(m) + 1), m, "--", color="0.45", lw=1.4,
                   label="baseline λ=1 (mean)")
    for i, (name, value) in enumerate((references or {}).items()):
        acc_ax.axhline(value, ls=":", lw=1.4, color=f"C{i + 2}", label=f"{name} {value:.3f}")
    loss_ax.set(xlabel="epoch", ylabel="training loss (its own objective)", title="training loss")
    acc_ax.set(xlabel="epoch", ylabel="validation accuracy", title="validation accuracy")
    accs = [v for h in histories for v in h["val_acc"]] + list((references or {}).values())
    if accs:
        top = max(accs)
        acc_ax.set_ylim(max(0.0, min(top - 0.15, np.nanpercentile(accs, 10))), min(1.0, top + 0.02))
    if any(labels) or baseline:
        loss_ax.legend(fontsize="x-small", loc="upper right")
    if any(labels) or baseline or references:
        acc_ax.legend(fontsize="x-small", loc="lower right")


def grid_point(rows, *, baseline_rows=None, teacher_acc: float | None = None,
               title: str = "") -> Figure:
    """One (λ, T) point of a grid: its learning curves, accuracy and agreement.

    Parameters
    ----------
    rows : list of dict
        The rows of this point (one per seed).
    baseline_rows : list of dict, optional
        Rows of the baseline student (λ = 1): a dashed mean curve, a dotted
        reference line at its mean final accuracy, and a bar pair on the right.
    teacher_acc : float, optional
        The teacher's validation accuracy: a dotted reference line.
    title : str

    Returns
    -------
    Figure
        ``axes[0]`` training loss per epoch, ``axes[1]`` validation accuracy per
        epoch (lines: one per row in order, the baseline mean, then the
        references teacher and baseline), ``axes[2]`` bars: validation accuracy
        and agreement with the teacher, mean ± sd over seeds, for this point and
        the baseline (``patches`` in that order).
    """
    rows = list(rows)
    fig, ax = _fig(12, 3.4, ncols=3)
    refs = {}
    if teacher_acc is not None:
        refs["teacher"] = float(teacher_acc)
    if baseline_rows:
        refs["baseline"] = float(np.mean([r["val_acc"] for r in baseline_rows]))
    if rows:
        _draw_curves(ax[0, 0], ax[0, 1], [r["history"] for r in rows],
                     [f"seed {r['seed']}" for r in rows],
                     [r["history"] for r in baseline_rows] if baseline_rows else None, refs)
    else:
        for a in ax[0, :2]:
            a.text(0.5, 0.5, "no run at this point", ha="center", va="center",
                   transform=a.transAxes)
    bars = ax[0, 2]
    groups = [("this point", rows)] + ([("baseline λ=1", baseline_rows)] if baseline_rows else [])
    width = 0.38
    for k, (metric, colour) in enumerate((("val_acc", "C0"), ("agreement", "C1"))):
        means = [np.mean([r[metric] for r in g]) if g else np.nan for _, g in groups]
        sds = [np.std([r[metric] for r in g], ddof=1) if len(g) > 1 else 0.0 for _, g in groups]
        pos = np.arange(len(groups)) + (k - 0.5) * width
        bars.bar(pos, means, width, yerr=sds, capsize=3, color=colour,
                 label="val accuracy" if metric == "val_acc" else "agreement with teacher")
        for p, m in zip(pos, means):
            if not math.isnan(m):
                bars.text(p, m + 0.004, f"{m:.3f}", ha="center", va="bottom", fontsize=7)
    if teacher_acc is not None:
        bars.axhline(teacher_acc, ls=":", lw=1.4, color="C2", label=f"teacher {teacher_acc:.3f}")
    bars.set_xticks(np.arange(len(groups)), [g for g, _ in groups], fontsize=8)
    vals = [r[m] for _, g in groups for r in g for m in ("val_acc", "agreement")]
    if vals:
        bars.set_ylim(max(0.0, min(vals) - 0.06), min(1.0, max(vals + [teacher_acc or 0]) + 0.05))
    bars.set(title="after the last epoch")
    bars.legend(fontsize="x-small", loc="lower right")
    if title:
        fig.suptitle(title)
    return fig


def _grid_matrix(rows, metric):
    summary = summarize(rows, ("lam", "T"), metric)
    lams = sorted({s["lam"] for s in summary})
    Ts = sorted({s["T"] for s in summary})
    mean = np.full((len(lams), len(Ts)), np.nan)
    sd = np.full_like(mean, np.nan)
    for s in summary:
        i, j = lams.index(s["lam"]), Ts.index(s["T"])
        mean[i, j], sd[i, j] = s["mean"], s["sd"]
    return lams, Ts, mean, sd


def accuracy_heatmap(rows, *, metric: str = "val_acc", chosen=None, title: str = "",
                     percent: bool = True) -> Figure:
    """Heat map of ``metric`` over λ (rows) × T (columns), mean ± sd over seeds.

    Each cell is annotated ``"mean\\n±sd"`` (in percent when ``percent``); the
    ``chosen`` (λ, T) — a pair or a dict with ``lam`` and ``T`` — is outlined.

    Returns
    -------
    Figure
        ``axes[0].images[0].get_array()`` is the matrix of means (λ ascending
        down the rows, T ascending along the columns, as in :func:`summarize`);
        ``axes[0].texts`` the annotations row by row; the outline is
        ``axes[0].patches[0]``.
    """
    lams, Ts, mean, sd = _grid_matrix(rows, metric)
    fig, ax = _fig(1.6 + 1.25 * len(Ts), 1.2 + 0.75 * len(lams))
    a = ax[0, 0]
    im = a.imshow(mean, cmap="viridis", aspect="auto")
    scale = 100 if percent else 1
    lo, hi = np.nanmin(mean), np.nanmax(mean)
    for i in range(len(lams)):
        for j in range(len(Ts)):
            if math.isnan(mean[i, j]):
                continue
            spread = "±–" if math.isnan(sd[i, j]) else f"±{scale * sd[i, j]:.2f}"
            bright = hi > lo and (mean[i, j] - lo) / (hi - lo) > 0.6
            a.text(j, i, f"{scale * mean[i, j]:.2f}\n{spread}", ha="center", va="center",
                   fontsize=8, color="black" if bright else "white")
    if chosen is not None:
        lam, T = (chosen["lam"], chosen["T"]) if isinstance(chosen, dict) else chosen
        if lam in lams and T in Ts:
            i, j = lams.index(lam), Ts.index(T)
            a.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, ec="red", lw=2.5))
    a.set_xticks(range(len(Ts)), [f"{t:g}" for t in Ts])
    a.set_yticks(range(len(lams)), [f"{v:g}" for v in lams])
    name = {"val_acc": "validation accuracy", "test_acc": "test accuracy",
            "agreement": "agreement with the teacher"}.get(metric, metric)
    a.set(xlabel="temperature T", ylabel="λ (weight of the hard labels)",
          title=title or f"{name} ({'%, ' if percent else ''}mean ± sd over seeds)")
    fig.colorbar(im, ax=a, shrink=0.85, label=f"mean {name} (fraction)")
    return fig


def kfold_scores(result, *, title: str = "") -> Figure:
    """Cross-validation scores of every candidate, fold by fold.

    Thin grey lines join one fold's scores across candidates (folds differ in
    difficulty, so compare candidates *within* a fold); black error bars are the
    mean ± sd over folds; the chosen candidate is red.

    Returns
    -------
    Figure
        ``axes[0].lines[f]`` is fold ``f``'s scores (one line per fold, in fold
        order); ``axes[0].collections`` hold the means.
    """
    cands = list(result.candidates)
    fig, ax = _fig(max(5.0, 0.62 * len(cands) + 1.5), 3.6)
    a = ax[0, 0]
    x = np.arange(len(cands))
    scores = np.array([c["scores"] for c in cands], float)  # candidates × folds
    for f in range(scores.shape[1]):
        a.plot(x, scores[:, f], "-o", color="0.7", ms=3, lw=0.8,
               label="one fold" if f == 0 else None)
    means = np.array([c["mean"] for c in cands])
    sds = np.array([0.0 if math.isnan(c["sd"]) else c["sd"] for c in cands])
    colours = ["red" if c is result.chosen else "black" for c in cands]
    a.errorbar(x, means, yerr=sds, fmt="none", ecolor="black", capsize=3, lw=1)
    a.scatter(x, means, c=colours, zorder=3, s=28, label="mean ± sd (red: chosen)")
    a.set_xticks(x, [("λ=1" if c["lam"] == BASELINE_LAM else f"λ={c['lam']:g}\nT={c['T']:g}")
                     for c in cands], fontsize=7)
    a.set(ylabel="held-out fold accuracy",
          title=title or f"{result.k}-fold cross-validation on the training split")
    a.legend(fontsize="x-small", loc="lower right")
    return fig


def group_bars(groups: dict, *, references: dict | None = None, ylabel: str = "accuracy",
               title: str = "", percent: bool = False) -> Figure:
    """Bars of mean ± sd per group, every seed's value as a dot, numbers on top.

    Parameters
    ----------
    groups : dict
        ``{label: list of values}`` (one value per seed).
    references : dict, optional
        ``{label: value}`` drawn as dotted horizontal lines.

    Returns
    -------
    Figure
        ``axes[0].patches`` are the bars, one per group, heights = the means.
    """
    fig, ax = _fig(max(5.0, 1.5 * len(groups) + 1.5), 3.6)
    a = ax[0, 0]
    scale = 100 if percent else 1
    values = [np.asarray(v, float) for v in groups.values()]
    means = [float(v.mean()) for v in values]
    sds = [float(v.std(ddof=1)) if len(v) > 1 else 0.0 for v in values]
    x = np.arange(len(groups))
    a.bar(x, means, 0.6, yerr=sds, capsize=4, color=[f"C{i}" for i in range(len(groups))],
          alpha=0.85)
    for i, v in enumerate(values):
        a.plot(np.full(len(v), x[i]), v, "k.", ms=4)
        a.text(x[i], means[i] + max(sds[i], 0) + 0.002, f"{scale * means[i]:.2f}", ha="center",
               va="bottom", fontsize=8)
    for i, (name, value) in enumerate((references or {}).items()):
        a.axhline(value, ls=":", lw=1.4, color=f"C{(i + 6) % 10}", label=f"{name} {scale * value:.2f}")
    allv = np.concatenate(values + [np.asarray(list((references or {}).values()), float)])
    a.set_ylim(max(0.0, allv.min() - 0.03), min(1.0, allv.max() + 0.02))
    a.set_xticks(x, list(groups), fontsize=8)
    a.set(ylabel=ylabel, title=title)
    if references:
        a.legend(fontsize="x-small", loc="lower right")
    return fig
