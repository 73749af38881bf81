"""Figures of notebook 04 (the article's formulas, the correct loss, pitfalls)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from kdlib._checks import check_float, check_int
from kdlib.plots._base import new_figure as _fig
from kdlib.plots._base import smooth

__all__ = ["scaled_lr_curves", "split_accuracy_bars", "t2_gradient_norms", "loss_terms"]


def scaled_lr_curves(runs, *, window: int = 10, title: str = "") -> Figure:
    """The article's loss against plain training at a scaled learning rate, one panel.

    For every run of :func:`kdlib.losses.compare_article_with_scaled_lr`: the
    student's per-step cross-entropy under the article's loss (solid line, colour
    ``C<i>``) and under plain cross-entropy at ``lr * (1 - lam)`` (dashed, same
    colour, drawn on top). A run with ``lam = 1`` has no plain run; its article
    curve is drawn in grey. Both curves go through the same moving average
    (``window`` steps, :func:`kdlib.plots.smooth`), so equal curves stay equal.

    Lines are added in order: for each run its solid line, then (if any) its dashed line.
    """
    window = check_int("window", window, low=1)
    fig, ax = _fig(10.0, 3.8)
    a = ax[0, 0]
    for i, run in enumerate(runs):
        steps = np.arange(1, len(run.article_ce) + 1)
        if run.plain_ce:
            color = f"C{i}"
            a.plot(steps, smooth(run.article_ce, window), "-", color=color, lw=3.5, alpha=0.5,
                   label=f"article loss, λ = {run.lam:g}, lr = {run.lr:g}")
            a.plot(np.arange(1, len(run.plain_ce) + 1), smooth(run.plain_ce, window), "--", color=color,
                   lw=1.3, label=f"plain CE, lr = {run.lr:g}·(1 − {run.lam:g}) = {run.scaled_lr:g}")
        else:
            a.plot(steps, smooth(run.article_ce, window), "-", color="0.5", lw=1.5,
                   label=f"article loss, λ = {run.lam:g}: gradient 0, never moves")
    a.set(xlabel="training step", ylabel="student's cross-entropy (per batch, smoothed)",
          title=title or "the article's loss = plain training at a smaller learning rate")
    a.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def split_accuracy_bars(results: dict, *, title: str = "") -> Figure:
    """Grouped bars: one group per protocol, one bar per evaluation split.

    ``results`` maps a protocol name to ``{split name: accuracy}``, e.g.
    ``{"trained on val": {"validation": 0.93, "test": 0.83}, ...}``. Bars are added
    group by group, in the order of the dictionaries; each is labelled with its
    value.
    """
    if not results:
        raise ValueError("results must map at least one protocol to {split: accuracy}")
    splits = list(dict.fromkeys(k for v in results.values() for k in v))
    fig, ax = _fig(7.0, 3.6)
    a = ax[0, 0]
    width = 0.8 / len(splits)
    for g, accs in enumerate(results.values()):
        for j, split in enumerate(splits):
            if split not in accs:
                continue
            x = g + (j - (len(splits) - 1) / 2) * width
            bar = a.bar(x, float(accs[split]), width, color=f"C{j}", label=split if g == 0 else None)
            a.bar_label(bar, fmt="%.3f", fontsize=8)
    a.set_xticks(range(len(results)), list(results), fontsize=9)
    lo = min(float(v) for accs in results.values() for v in accs.values())
    a.set_ylim(max(0.0, lo - 0.1), 1.0)
    a.set(ylabel="accuracy", title=title)
    a.legend(fontsize="small", loc="upper right")
    return fig


def t2_gradient_norms(Ts, with_T2, without_T2, *, title: str = "") -> Figure:
    """Gradient norm of the soft term against ``T``, with and without the ``T**2`` factor.

    Log–log axes. Lines, in order: with ``T**2`` (solid, C0), without (solid, C1),
    and a dotted reference ``without_T2[0] * (Ts[0] / T)**2`` showing the
    ``1 / T**2`` slope.
    """
    Ts = np.asarray(Ts, float)
    with_T2, without_T2 = np.asarray(with_T2, float), np.asarray(without_T2, float)
    if not (len(Ts) == len(with_T2) == len(without_T2)) or len(Ts) == 0:
        raise ValueError(f"Ts, with_T2 and without_T2 must have the same non-zero length, got "
                         f"{len(Ts)}, {len(with_T2)}, {len(without_T2)}")
    fig, ax = _fig(6.4, 3.8)
    a = ax[0, 0]
    a.loglog(Ts, with_T2, "o-", color="C0", label="with T² (correct)")
    a.loglog(Ts, without_T2, "s-", color="C1", label="without T²")
    a.loglog(Ts, without_T2[0] * (Ts[0] / Ts) ** 2, ":", color="0.4", label="∝ 1/T²")
    a.set(xlabel="temperature T", ylabel="‖∂ soft term / ∂ student logits‖",
          title=title or "why the soft term is multiplied by T²")
    a.legend(fontsize="small")
    return fig


def loss_terms(ce: float, soft: float, *, lam: float, T: float, n_points: int = 101) -> Figure:
    """How λ trades the hard and soft terms of the KD loss off, at one temperature.

    ``ce`` and ``soft`` are the two unweighted terms of :func:`kdlib.losses.kd_terms`
    (``soft`` already includes ``T**2``). Left panel: over λ in [0, 1], the lines
    ``λ·CE`` (C0), ``(1 − λ)·T²·KL`` (C1) and their sum, the total (black), plus a
    vertical line at ``lam``. Right panel: one stacked bar at ``lam``: ``λ·CE``
    (first patch) with ``(1 − λ)·T²·KL`` (second patch) on top; its height is the
    total. Both panels share the y-limit ``1.1 · max(ce, soft)`` so the scale
    does not jump while a slider moves.
    """
    ce, soft = float(ce), float(soft)
    lam = check_float("lam", lam, low=0.0, high=1.0)
    n_points = check_int("n_points", n_points, low=2)
    grid = np.linspace(0.0, 1.0, n_points)
    fig, ax = _fig(9.0, 3.6, ncols=2)
    left, right = ax[0]
    left.plot(grid, grid * ce, color="C0", label="λ · CE (hard labels)")
    left.plot(grid, (1 - grid) * soft, color="C1", label="(1 − λ) · T² · KL (teacher)")
    left.plot(grid, grid * ce + (1 - grid) * soft, color="black", lw=2, label="total")
    left.axvline(lam, color="0.5", ls="--", lw=1)
    top = 1.1 * max(ce, soft, 1e-12)
    left.set(xlabel="λ (weight of the hard-label term)", ylabel="loss", ylim=(0, top),
             title=f"the two terms at T = {T:g}")
    left.legend(fontsize="small", loc="best")
    hard_part, soft_part = lam * ce, (1 - lam) * soft
    right.bar([0], [hard_part], 0.5, color="C0", label=f"λ · CE = {hard_part:.3f}")
    right.bar([0], [soft_part], 0.5, bottom=[hard_part], color="C1",
              label=f"(1 − λ) · T² · KL = {soft_part:.3f}")
    right.text(0, hard_part + soft_part, f"total {hard_part + soft_part:.3f}", ha="center", va="bottom")
    right.set_xticks([0], [f"λ = {lam:.2f}, T = {T:g}"])
    right.set(xlim=(-1, 1), ylim=(0, top), ylabel="loss", title="kd_loss on this batch")
    right.legend(fontsize="small", loc="upper right")
    return fig
