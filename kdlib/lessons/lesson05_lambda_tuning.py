"""Lesson module of ``notebooks/05_lambda_tuning.ipynb`` (tuning λ and T: sliders, grids,
cross-validation, seeds).

It holds everything only notebook 05 uses; the grids, the row cache and the k-fold
selection themselves are the core module :mod:`kdlib.tuning`, the statistics
:mod:`kdlib.results`:

* its parameter check, :func:`check_params`, and working settings,
  :func:`notebook_settings` (the grid :data:`GRID_LAMS` × :data:`GRID_TS`, or the tiny
  :data:`QUICK` settings of ``quick=True``);
* the Hinton et al. (2015)-style results table, :func:`results_table` /
  :func:`format_results`, and the verdict :func:`beats_by_spread`;
* its figures (each returns a new ``Figure``): :func:`learning_curves`,
  :func:`grid_point`, :func:`accuracy_heatmap`, :func:`kfold_scores`,
  :func:`group_dots`;
* its widgets: :class:`GridExplorer` (λ and T sliders over a precomputed grid) and
  :class:`TrainNow` (train one student now, with live curves).
"""

from __future__ import annotations

import html
import math
import time

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from kdlib import tuning
from kdlib._checks import Bool, Float, Int, Str, check_float, check_int
from kdlib._checks import check_params as _check_params
from kdlib.losses import HARD_ONLY_LAM
from kdlib.plots import new_figure
from kdlib.results import format_pct, sample_sd, summarize
from kdlib.widgets import figure_png, in_kernel, show_in

__all__ = [
    "GRID_LAMS", "GRID_TS", "QUICK", "check_params", "notebook_settings", "results_table",
    "format_results", "beats_by_spread", "learning_curves", "grid_point", "accuracy_heatmap",
    "kfold_scores", "group_dots", "GridExplorer", "TrainNow",
]

GRID_LAMS = (0.1, 0.5, 0.9)
"""The λ values of the notebook's grid (the baseline λ = 1 is trained separately)."""
GRID_TS = (1.0, 2.0, 4.0, 8.0)
"""The temperatures of the notebook's grid."""


# --------------------------------------------------------------------------- parameters
PARAMS = {
    "checkpoint": Str("a path, or '' for data/teacher.pt"),
    "lam": Float(0.0, 1.0),
    "T": Float(0.0, 100.0, low_open=True),
    "quick": Bool(),
    "n_train": Int(20, 55000),
    "epochs": Int(1, 500),
    "seeds": Int(1, 20),
    "k_folds": Int(2, 20),
    "small_teacher_epochs": Int(1, 100),
    "n_labeled": Int(10, 55000),
    "n_transfer": Int(0, 54000),
}


def check_params(**parameters) -> dict:
    """Validate notebook 05's parameters before any work starts.

    Parameters
    ----------
    checkpoint : str
        Teacher checkpoint path; ``""`` means ``data/teacher.pt``.
    lam : float
        λ in [0, 1] of the single point whose metrics are recorded.
    T : float
        Its temperature, in (0, 100].
    quick : bool
        Tiny settings (:data:`QUICK`).
    n_train : int
        Labelled training images of the student, in [20, 55000].
    epochs : int
        Student epochs, in [1, 500].
    seeds : int
        Seeds per grid point, in [1, 20].
    k_folds : int
        Folds of the cross-validation, in [2, 20]; ``n_train`` must give at
        least 10 images per fold.
    small_teacher_epochs : int
        Epochs of the weak teacher, in [1, 100].
    n_labeled, n_transfer : int
        Sizes of the transfer-set experiment's labelled and unlabelled sets;
        together at most 55,000 (the training pool).

    Returns
    -------
    dict
        The parameters, converted (``int``/``float``).

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and the allowed range.
    """
    p = _check_params(parameters, PARAMS)
    if p["n_labeled"] + p["n_transfer"] > 55000:
        raise ValueError(f"n_labeled + n_transfer = {p['n_labeled'] + p['n_transfer']} is out of "
                         "range; allowed: <= 55000 (the training pool)")
    if p["n_train"] < p["k_folds"] * 10:
        raise ValueError(f"n_train={p['n_train']} is too small for k_folds={p['k_folds']}; "
                         f"allowed: n_train >= {p['k_folds'] * 10} (10 images per fold)")
    return p


QUICK = {"lams": (0.1, 0.5), "Ts": (2.0, 4.0), "seeds": 1, "n_train": 300, "n_val": 500,
         "n_test": 1000, "epochs": 3, "few_epochs": 1, "k_folds": 2, "small_teacher_epochs": 1,
         "n_labeled": 200, "n_transfer": 300}
"""What ``quick=True`` uses (a few seconds in all)."""


def notebook_settings(*, quick: bool, n_train: int, epochs: int, seeds: int, k_folds: int,
                      small_teacher_epochs: int, n_labeled: int, n_transfer: int) -> dict:
    """The notebook's working settings: its parameters, or the tiny :data:`QUICK` ones.

    Parameters
    ----------
    quick, n_train, epochs, seeds, k_folds, small_teacher_epochs, n_labeled, n_transfer :
        The notebook's parameters (see :func:`check_params`).

    Returns
    -------
    dict
        ``lams``, ``Ts`` (the grid, lists), ``seeds`` (a list), ``n_train``,
        ``n_val`` (``None``: the standard 5,000), ``n_test`` (``None``: all
        10,000), ``epochs``, ``few_epochs`` (the "too few epochs" regime: 3),
        ``k_folds``, ``small_teacher_epochs``, ``n_labeled``, ``n_transfer``.
    """
    s = {"lams": GRID_LAMS, "Ts": GRID_TS, "seeds": seeds, "n_train": n_train, "n_val": None,
         "n_test": None, "epochs": epochs, "few_epochs": min(3, epochs), "k_folds": k_folds,
         "small_teacher_epochs": small_teacher_epochs, "n_labeled": n_labeled,
         "n_transfer": n_transfer}
    if quick:
        s.update(QUICK)
    s["lams"], s["Ts"] = list(s["lams"]), list(s["Ts"])
    s["seeds"] = list(range(s["seeds"]))
    return s


# --------------------------------------------------------------------------- results
def beats_by_spread(better, worse) -> tuple[bool, float]:
    """Whether ``mean(better) - mean(worse)`` exceeds the seed spread ``sd(better) + sd(worse)``.

    Parameters
    ----------
    better, worse : sequence of float
        One value per seed.

    Returns
    -------
    tuple
        ``(verdict, margin_in_sds)`` where ``margin_in_sds`` is the difference
        of means divided by that spread (``nan`` with fewer than two values on a
        side, in which case the verdict is ``False``).
    """
    a, b = np.asarray(better, float), np.asarray(worse, float)
    spread = sample_sd(a) + sample_sd(b)
    diff = float(a.mean() - b.mean())
    if math.isnan(spread):
        return False, float("nan")
    if spread == 0:
        return diff > 0, float("inf") if diff > 0 else float("nan")
    return diff > spread, diff / spread


def results_table(*, teacher_acc: float, baseline_accs, distilled_accs,
                  n_test: int = 10000) -> list[dict]:
    """Hinton et al. (2015)-style results: test errors out of ``n_test`` and accuracy.

    Parameters
    ----------
    teacher_acc : float
        The teacher's test accuracy.
    baseline_accs, distilled_accs : sequence of float
        Test accuracies of the student from scratch and of the distilled
        student, one per seed.
    n_test : int
        Test images.

    Returns
    -------
    list of dict
        Three rows (teacher, student from scratch, distilled student) with
        ``model``, ``errors`` / ``errors_sd`` (mean / sd over seeds of the number
        of wrong test images), ``acc`` / ``acc_sd``, ``n`` (seeds) and, for the
        distilled student, ``gap_closed``: the fraction of the teacher–baseline
        accuracy gap it closes.
    """
    n_test = check_int("n_test", n_test, low=1)

    def row(name, accs):
        a = np.asarray(accs, float)
        return {"model": name, "errors": float(np.mean((1 - a) * n_test)),
                "errors_sd": sample_sd((1 - a) * n_test), "acc": float(a.mean()),
                "acc_sd": sample_sd(a), "n": len(a)}

    t = row("teacher (cnn, 55k images)", [teacher_acc])
    b = row("student from scratch (λ=1)", baseline_accs)
    d = row("distilled student", distilled_accs)
    gap = t["acc"] - b["acc"]
    d["gap_closed"] = (d["acc"] - b["acc"]) / gap if gap > 0 else float("nan")
    return [t, b, d]


def format_results(table) -> str:
    """Aligned text of :func:`results_table`'s rows.

    Parameters
    ----------
    table : list of dict

    Returns
    -------
    str
    """
    lines = [f"{'model':30s} {'test errors':>17s} {'accuracy':>17s}  gap closed"]
    for r in table:
        err = f"{r['errors']:.0f}" + ("" if math.isnan(r["errors_sd"]) else f" ± {r['errors_sd']:.0f}")
        acc = f"{100 * r['acc']:.2f} %" + ("" if math.isnan(r["acc_sd"])
                                          else f" ± {100 * r['acc_sd']:.2f}")
        gap = f"{100 * r['gap_closed']:.0f} %" if "gap_closed" in r and not math.isnan(
            r["gap_closed"]) else ""
        lines.append(f"{r['model']:30s} {err:>17s} {acc:>17s}  {gap}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures
def _sd0(values) -> float:
    """Sample sd for an error bar: 0 (no bar) for a single value."""
    sd = sample_sd(values)
    return 0.0 if math.isnan(sd) else sd


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
    fig, ax = new_figure(9, 3.3, ncols=2)
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
        references teacher and baseline), ``axes[2]`` a dot plot: validation
        accuracy and agreement with the teacher, mean ± sd over seeds (error
        bars), for this point and the baseline; ``axes[2].containers[0]`` holds
        the accuracies, ``containers[1]`` the agreements (means as the ``y`` data
        of ``.lines[0]``), every seed a small grey dot.
    """
    rows = list(rows)
    fig, ax = new_figure(12, 3.4, ncols=3)
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
    bars = ax[0, 2]  # a dot plot with error bars (its axis does not start at 0)
    groups = [("this point", rows)] + ([("baseline λ=1", baseline_rows)] if baseline_rows else [])
    width = 0.38
    for k, (metric, colour) in enumerate((("val_acc", "C0"), ("agreement", "C1"))):
        means = [np.mean([r[metric] for r in g]) if g else np.nan for _, g in groups]
        sds = [_sd0([r[metric] for r in g]) for _, g in groups]
        pos = np.arange(len(groups)) + (k - 0.5) * width
        bars.errorbar(pos, means, yerr=sds, fmt="o", ms=6, capsize=4, color=colour,
                      label="val accuracy" if metric == "val_acc" else "agreement with teacher")
        for p, (_, g) in zip(pos, groups):
            bars.plot(np.full(len(g), p + 0.07), [r[metric] for r in g], ".", color="0.35", ms=3)
        for p, m in zip(pos, means):
            if not math.isnan(m):
                bars.text(p - 0.07, m, f"{m:.3f}", ha="right", va="center", fontsize=7)
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
        down the rows, T ascending along the columns, as in :func:`kdlib.results.summarize`);
        ``axes[0].texts`` the annotations row by row; the outline is
        ``axes[0].patches[0]``.
    """
    lams, Ts, mean, sd = _grid_matrix(rows, metric)
    fig, ax = new_figure(1.6 + 1.25 * len(Ts), 1.2 + 0.75 * len(lams))
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
    fig, ax = new_figure(max(5.0, 0.62 * len(cands) + 1.5), 3.6)
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
    a.set_xticks(x, [("λ=1" if c["lam"] == HARD_ONLY_LAM else f"λ={c['lam']:g}\nT={c['T']:g}")
                     for c in cands], fontsize=7)
    a.set(ylabel="held-out fold accuracy",
          title=title or f"{result.k}-fold cross-validation on the training split")
    a.legend(fontsize="x-small", loc="lower right")
    return fig


def group_dots(groups: dict, *, references: dict | None = None, ylabel: str = "accuracy",
               title: str = "", percent: bool = False) -> Figure:
    """A dot plot of mean ± sd per group (error bars), every seed's value as a small dot.

    The accuracy axis is zoomed on the data (it does not start at 0), so the
    groups are drawn as dots with error bars, never as bars.

    Parameters
    ----------
    groups : dict
        ``{label: list of values}`` (one value per seed).
    references : dict, optional
        ``{label: value}`` drawn as dotted horizontal lines.
    ylabel, title : str
    percent : bool
        Write the means in percent.

    Returns
    -------
    Figure
        ``axes[0].containers[0]`` is the error bar container: ``.lines[0]`` has
        the means as its ``y`` data, one point per group, in order.
    """
    fig, ax = new_figure(max(5.0, 1.5 * len(groups) + 1.5), 3.6)
    a = ax[0, 0]
    scale = 100 if percent else 1
    values = [np.asarray(v, float) for v in groups.values()]
    means = [float(v.mean()) for v in values]
    sds = [_sd0(v) for v in values]
    x = np.arange(len(groups))
    a.errorbar(x, means, yerr=sds, fmt="o", ms=7, color="C0", ecolor="black", capsize=5,
               lw=1.2, zorder=3, label="mean ± sd over seeds")
    for i, v in enumerate(values):
        a.plot(np.full(len(v), x[i] + 0.12), v, ".", color="0.35", ms=4)
        a.text(x[i] - 0.12, means[i], f"{scale * means[i]:.2f}", ha="right", va="center",
               fontsize=8)
    for i, (name, value) in enumerate((references or {}).items()):
        a.axhline(value, ls=":", lw=1.4, color=f"C{(i + 6) % 10}", label=f"{name} {scale * value:.2f}")
    allv = np.concatenate(values + [np.asarray(list((references or {}).values()), float)])
    a.set_ylim(max(0.0, allv.min() - 0.03), min(1.0, allv.max() + 0.02))
    a.set_xlim(-0.6, len(groups) - 0.4)
    a.set_xticks(x, list(groups), fontsize=8)
    a.set(ylabel=ylabel, title=title)
    a.legend(fontsize="x-small", loc="lower right")
    return fig


# --------------------------------------------------------------------------- widgets
class GridExplorer:
    """Sliders ``λ`` and ``T`` over a precomputed grid; the callback only redraws.

    Every student was trained beforehand (:func:`kdlib.tuning.train_grid`), so moving a
    slider looks the point's rows up and draws :func:`grid_point`:
    learning curves of every seed, the validation accuracy and the agreement with
    the teacher, with the baseline student (λ = 1) and the teacher as references.
    Each point's figure (and, in a kernel, its PNG) is made once and kept, so
    returning to a point only swaps the picture.

    Parameters
    ----------
    rows : list of dict
        Grid rows (several seeds per point are drawn together). Rows with λ = 1
        match any T (the temperature does not act on a pure hard-label student).
    teacher_acc : float, optional
        The teacher's validation accuracy (a reference line).
    baseline : list of dict, optional
        Rows of the baseline student (:func:`kdlib.tuning.baseline`).
    lam, T : float, optional
        The point shown first (default: the best mean validation accuracy).

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this (or the explorer itself).
    lam_slider, T_slider : ipywidgets.SelectionSlider
        Descriptions ``"λ"`` and ``"T"``; their values are the grid's values.
    label : ipywidgets.HTML
        What the point scored, e.g. ``"λ=0.5, T=4: validation accuracy 84.89 ± 0.18 %..."``.
    current : list of dict
        The rows shown (one per seed).
    figure : matplotlib.figure.Figure
        The figure last drawn.
    redraws : int
    last_seconds : float
        Wall time of the last callback (in a kernel including the PNG rendering).
    """

    def __init__(self, rows, *, teacher_acc: float | None = None, baseline=None, lam=None,
                 T=None):
        self.rows = [r for r in rows]
        if not self.rows:
            raise ValueError("rows is empty: run kdlib.tuning.train_grid first")
        self.teacher_acc = None if teacher_acc is None else check_float(
            "teacher_acc", teacher_acc, low=0.0, high=1.0)
        self.baseline = list(baseline) if baseline else []
        lams = sorted({float(r["lam"]) for r in self.rows})
        Ts = sorted({float(r["T"]) for r in self.rows})
        if lam is None or T is None:
            best = tuning.select_best(self.rows)
            lam = best["lam"] if lam is None else lam
            T = best["T"] if T is None else T
        if float(lam) not in lams:
            raise ValueError(f"lam={lam!r} is not a grid value; choose one of {lams}")
        if float(T) not in Ts:
            raise ValueError(f"T={T!r} is not a grid value; choose one of {Ts}")
        self.current: list = []
        self.figure = None
        self._drawn: dict = {}  # (lam, T) -> (figure, png): a point is drawn only once
        self.redraws = 0
        self.last_seconds = float("nan")
        self.lam_slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in lams],
                                                  value=float(lam), description="λ",
                                                  continuous_update=True)
        self.T_slider = widgets.SelectionSlider(options=[(f"{v:g}", v) for v in Ts],
                                                value=float(T), description="T",
                                                continuous_update=True)
        self.label = widgets.HTML()
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.lam_slider, self.T_slider]), self.label,
                                    self.out])
        self.lam_slider.observe(self._redraw, names="value")
        self.T_slider.observe(self._redraw, names="value")
        self._redraw()

    def rows_at(self, lam: float, T: float) -> list:
        """The rows of grid point (λ, T), in their original order."""
        return tuning.rows_at(self.rows, lam, T)

    def _redraw(self, change=None) -> None:
        t0 = time.perf_counter()
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        self.current = self.rows_at(lam, T)
        figure, png = self._drawn.get((lam, T), (None, None))
        if figure is None:
            figure = grid_point(self.current, baseline_rows=self.baseline,
                                      teacher_acc=self.teacher_acc,
                                      title=f"λ = {lam:g}, T = {T:g}")
        self.figure = figure
        if self.current:
            text = (f"<b>λ={lam:g}, T={T:g}</b>: validation accuracy "
                    f"{format_pct([r['val_acc'] for r in self.current])}, agreement with the teacher "
                    f"{format_pct([r['agreement'] for r in self.current])} "
                    f"({len(self.current)} seed{'s' * (len(self.current) != 1)})")
            if self.baseline:
                text += f"; baseline λ=1: {format_pct([r['val_acc'] for r in self.baseline])}"
            if self.teacher_acc is not None:
                text += f"; teacher: {100 * self.teacher_acc:.2f} %"
        else:
            text = f"λ={lam:g}, T={T:g}: no run at this point"
        self.label.value = text
        self._drawn[(lam, T)] = (figure, show_in(self.out, figure, png))
        self.redraws += 1
        self.last_seconds = time.perf_counter() - t0

    def prerender(self) -> int:
        """Draw every grid point's figure (and PNG, in a kernel) now; returns how many.

        Afterwards every slider move only swaps a stored picture (a few ms)
        instead of drawing a new figure (a few hundred ms with matplotlib).
        """
        made = 0
        for _, lam in self.lam_slider.options:
            for _, T in self.T_slider.options:
                if (lam, T) in self._drawn:
                    continue
                rows = self.rows_at(lam, T)
                fig = grid_point(rows, baseline_rows=self.baseline,
                                       teacher_acc=self.teacher_acc,
                                       title=f"λ = {lam:g}, T = {T:g}")
                self._drawn[(lam, T)] = (fig, figure_png(fig) if in_kernel() else None)
                made += 1
        return made

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


class TrainNow:
    """Pick λ, T and epochs, press the button: one student trains with live curves.

    The sliders have ``continuous_update=False`` (nothing retrains while
    dragging); training starts only on the button. While it runs the button is
    disabled and a progress bar counts epochs; the curves redraw after every
    epoch. The button is enabled again afterwards, also when training fails
    (the error is shown in ``label`` and kept in ``error``).

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on the training split (a dict with ``"val"`` also
        gives the agreement).
    lam, T : float
        Initial slider values.
    epochs : int
        Initial epochs (slider from 1 to ``max_epochs``).
    seed, hidden, lr, batch_size :
        The student recipe (see :func:`kdlib.tuning.train_student`).
    teacher_acc, baseline_acc : float, optional
        Reference lines (validation accuracy of the teacher and of the baseline).

    Attributes
    ----------
    widget : ipywidgets.VBox
    lam_slider, T_slider, epochs_slider : ipywidgets sliders
        Descriptions ``"train λ"``, ``"train T"``, ``"epochs"``.
    button : ipywidgets.Button
    progress : ipywidgets.IntProgress
        Epochs done (``max`` = epochs of the run).
    label : ipywidgets.HTML
        The result (or the error).
    figure : Figure
        The learning curves last drawn.
    history : kdlib.train.History
        Of the last run; ``result`` the dict from :func:`kdlib.tuning.evaluate`
        plus lam, T, epochs, seconds; ``error`` the exception of a failed run.
    runs : int
        Number of finished or failed runs.
    redraw_every : float
        Seconds between two redraws of the live curves (the first and the last epoch
        are always drawn); ``draws`` counts the redraws.
    """

    def __init__(self, data, teacher_logits, *, lam: float = 0.5, T: float = 4.0,
                 epochs: int = tuning.STUDENT_DEFAULTS["epochs"], max_epochs: int = 60,
                 seed: int = 0, hidden: int = tuning.STUDENT_DEFAULTS["hidden"],
                 lr: float = tuning.STUDENT_DEFAULTS["lr"],
                 batch_size: int = tuning.STUDENT_DEFAULTS["batch_size"],
                 teacher_acc: float | None = None, baseline_acc: float | None = None):
        self.data = data
        self.teacher_logits = teacher_logits
        self.seed = check_int("seed", seed, low=0)
        self.hidden = check_int("hidden", hidden, low=1)
        self.lr = check_float("lr", lr, low=0.0, low_open=True)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        max_epochs = check_int("max_epochs", max_epochs, low=1)
        epochs = check_int("epochs", epochs, low=1, high=max_epochs)
        lam = check_float("lam", lam, low=0.0, high=1.0)
        T = check_float("T", T, low=0.5, high=20.0)
        self.references = {}
        if teacher_acc is not None:
            self.references["teacher"] = check_float("teacher_acc", teacher_acc, low=0.0, high=1.0)
        if baseline_acc is not None:
            self.references["baseline λ=1"] = check_float("baseline_acc", baseline_acc,
                                                          low=0.0, high=1.0)
        self.figure = None
        self.history = None
        self.result = None
        self.error = None
        self.runs = 0
        self.running = False
        self.redraw_every = 0.5
        self.draws = 0
        self._last_draw = -float("inf")
        style = {"description_width": "60px"}
        self.lam_slider = widgets.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05,
                                              description="train λ", continuous_update=False,
                                              readout_format=".2f", style=style)
        self.T_slider = widgets.FloatSlider(value=T, min=0.5, max=20.0, step=0.5,
                                            description="train T", continuous_update=False,
                                            readout_format=".1f", style=style)
        self.epochs_slider = widgets.IntSlider(value=epochs, min=1, max=max_epochs,
                                               description="epochs", continuous_update=False,
                                               style=style)
        self.button = widgets.Button(description="train now", icon="play", button_style="primary")
        self.progress = widgets.IntProgress(value=0, min=0, max=epochs, description="epoch",
                                            style=style)
        self.label = widgets.HTML("Pick λ, T and epochs, then press <i>train now</i>.")
        self.out = widgets.Output()
        self.widget = widgets.VBox([
            widgets.HBox([self.lam_slider, self.T_slider, self.epochs_slider]),
            widgets.HBox([self.button, self.progress]), self.label, self.out])
        self.button.on_click(self._on_click)

    def _on_epoch(self, history) -> None:
        self.history = history
        done = len(history.val_acc)
        self.progress.value = min(done, self.progress.max)
        # Drawing a PNG takes a few hundred ms: redraw at most every redraw_every seconds,
        # and always after the last epoch.
        if done >= self.progress.max or time.perf_counter() - self._last_draw >= self.redraw_every:
            self.figure = learning_curves([history], references=self.references,
                                                labels=[self._title], title=self._title)
            show_in(self.out, self.figure)
            self._last_draw = time.perf_counter()
            self.draws += 1

    def _on_click(self, button=None) -> None:
        if self.running:
            return
        self.running = True
        self.button.disabled = True
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        epochs = int(self.epochs_slider.value)
        self._title = f"λ = {lam:g}, T = {T:g}"
        self.progress.max = epochs
        self.progress.value = 0
        self.label.value = f"training {self._title} for {epochs} epochs ..."
        self.error = None
        t0 = time.perf_counter()
        self._last_draw = -float("inf")
        try:
            student, history = tuning.train_student(
                self.data, self.teacher_logits, lam=lam, T=T, seed=self.seed, epochs=epochs,
                lr=self.lr, batch_size=self.batch_size, hidden=self.hidden,
                callback=self._on_epoch)
            self.history = history
            metrics = tuning.evaluate(student, self.data, self.teacher_logits)
            seconds = time.perf_counter() - t0
            self.result = {"lam": lam, "T": T, "epochs": epochs, **metrics,
                           "seconds": seconds}
            refs = "".join(f", {k} {100 * v:.2f} %" for k, v in self.references.items())
            agreement = "" if np.isnan(metrics["agreement"]) else \
                f", agreement with the teacher {100 * metrics['agreement']:.2f} %"
            self.label.value = (f"<b>{self._title}, {epochs} epochs</b>: validation accuracy "
                                f"{100 * metrics['val_acc']:.2f} %{agreement} "
                                f"(trained in {seconds:.1f} s{refs})")
        except Exception as exc:  # shown to the reader; the button must come back
            self.error = exc
            self.result = None
            self.label.value = html.escape(f"training failed: {type(exc).__name__}: {exc}")
        finally:
            self.runs += 1
            self.running = False
            self.button.disabled = False

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
