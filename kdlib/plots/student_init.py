"""Figures of notebook 03 (initialising a student from the teacher)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from kdlib._checks import check_float
from kdlib.plots._base import new_figure as _fig
from kdlib.student_init import summarize_comparison

__all__ = ["init_comparison"]


def init_comparison(rows, *, epochs: int | None = None, chance: float | None = None,
                    title: str = "") -> Figure:
    """Validation accuracy per initialisation strategy, right after init and after training.

    One panel per student (in order of first appearance in ``rows``). In each
    panel every strategy gets two bars, the mean over seeds right after
    initialisation and after distillation, with ± one sample standard deviation
    as error bars and every seed's value as a black dot; the teacher's accuracy is
    a dashed line (its value written above it) and ``chance`` (if given) a dotted
    one. The legend is the figure's (``fig.legends[0]``), below the panels.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`kdlib.student_init.compare_init_strategies` (several calls
        concatenated).
    epochs : int, optional
        Only used in the legend ("after 3 epochs").
    chance : float, optional
        Accuracy of guessing, e.g. 0.1 for ten balanced classes.
    title : str

    Returns
    -------
    Figure
        ``fig.axes[i].patches`` are panel ``i``'s bars: first the "right after
        init" bars of every strategy, then the "after training" bars.
    """
    summary = summarize_comparison(rows)
    if chance is not None:
        chance = check_float("chance", chance, low=0.0, high=1.0)
    rows = list(rows)
    students = list(dict.fromkeys(s["student"] for s in summary))
    n_max = max(sum(s["student"] == name for s in summary) for name in students)
    fig, ax = _fig(max(4.0, 1.0 + 1.4 * n_max) * len(students), 3.8, ncols=len(students))
    after = "after training" if epochs is None else f"after {epochs} epoch{'s' * (epochs != 1)}"
    width = 0.38
    for a, name in zip(ax[0], students):
        entries = [s for s in summary if s["student"] == name]
        pos = np.arange(len(entries))
        for offset, key, colour, label in ((-width / 2, "acc_init", "C0", "right after init"),
                                           (width / 2, "acc_trained", "C1", after)):
            a.bar(pos + offset, [e[f"{key}_mean"] for e in entries], width,
                  yerr=[e[f"{key}_sd"] for e in entries], capsize=3, color=colour, alpha=0.85,
                  label=label)
            for p, e in zip(pos, entries):
                values = [r[key] for r in rows if r["student"] == name and r["strategy"] == e["strategy"]]
                a.plot(np.full(len(values), p + offset), values, "k.", ms=4, zorder=3)
        t_acc = entries[0]["teacher_acc"]
        a.axhline(t_acc, ls="--", color="C2", lw=1, label="teacher")
        a.text(len(entries) - 0.5, t_acc + 0.01, f"teacher {t_acc:.3f}", ha="right", va="bottom",
               fontsize="x-small", color="C2")
        if chance is not None:
            a.axhline(chance, ls=":", color="0.4", lw=1, label=f"chance ({chance:g})")
        a.set_xticks(pos, [e["strategy"] for e in entries])
        a.set_xlim(-0.5, len(entries) - 0.5)
        a.set_ylim(0.0, 1.0)
        a.set(title=f"{name}\n{entries[0]['params']:,} parameters", ylabel="validation accuracy")
        a.title.set_fontsize(9)
    handles, labels = ax[0, 0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] in ("teacher",) or
                   labels[i].startswith("chance"))  # bars first, then the lines
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize="small")
    if title:
        fig.suptitle(title)
    return fig
