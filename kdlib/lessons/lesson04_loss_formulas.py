"""Lesson 04 (``notebooks/04_loss_formulas.ipynb``): the article's loss, run and corrected.

Everything only notebook 04 uses:

* :data:`PARAMS` and :func:`check_params`, the notebook's parameter check;
* :class:`ArticleLossFn`, the article's formula 3.2.3 as a ``loss_fn`` for
  :func:`kdlib.train.fit`, and :func:`compare_article_with_scaled_lr` (with
  :class:`ScaledLrRun`), the experiment showing that the article's loss is plain
  training at learning rate ``lr * (1 - λ)``;
* the pitfalls table: :class:`PitfallRow`, :func:`formula_pitfalls`,
  :func:`measure_train_mode`, :func:`measure_misaligned_cache`, :func:`format_table`
  (the mistakes themselves are core: :mod:`kdlib.pitfalls`);
* the notebook's figures (:func:`scaled_lr_curves`, :func:`split_accuracy_bars`,
  :func:`t2_gradient_norms`, :func:`loss_terms`) and its widget
  (:class:`LossTermsExplorer`).

The formulas it runs are core: :mod:`kdlib.article` (the article, literally),
:mod:`kdlib.losses` (the correct loss), :mod:`kdlib.pitfalls` (the mistakes).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from torch import nn

from kdlib import _checks
from kdlib._checks import Float, Int, Str, check_float, check_int
from kdlib.article import article_total
from kdlib.data import unpack_splits
from kdlib.losses import (
    _check_batch,
    _check_labels,
    _check_lam,
    _check_matrix,
    _check_probs,
    _check_same_shape,
    _check_T,
    kd_loss,
    kd_terms,
    soft_targets,
)
from kdlib.pitfalls import (
    pitfall_kl_swapped,
    pitfall_kldiv_mean,
    pitfall_misaligned_cache,
    pitfall_no_T2,
    pitfall_probs_as_log_probs,
    pitfall_teacher_train_mode,
)
from kdlib.plots import new_figure, smooth
from kdlib.train import fit
from kdlib.widgets import show_in

__all__ = [
    "PARAMS", "check_params",
    "ArticleLossFn", "ScaledLrRun", "compare_article_with_scaled_lr",
    "PitfallRow", "formula_pitfalls", "measure_train_mode", "measure_misaligned_cache", "format_table",
    "scaled_lr_curves", "split_accuracy_bars", "t2_gradient_norms", "loss_terms",
    "LossTermsExplorer",
]


# --------------------------------------------------------------------------- parameters

PARAMS = {
    "checkpoint": Str("a teacher checkpoint path, or '' for data/teacher.pt"),
    "n_train": Int(500, 55000),
    "epochs": Int(1, 100),
    "lr": Float(0.0, 10.0, low_open=True),
    "student_epochs": Int(1, 100),
    "hidden": Int(1, 4096),
    "T": Float(0.0, 100.0, low_open=True),
    "lam": Float(0.0, 1.0),
    "seed": Int(0),
}
"""Notebook 04's parameters and their allowed values (name → constraint)."""


def check_params(**values) -> dict:
    """Validate notebook 04's parameters before any work starts.

    Parameters
    ----------
    **values
        Every parameter of the notebook, by name: ``checkpoint`` (str), ``n_train``
        in [500, 55000], ``epochs`` and ``student_epochs`` in [1, 100], ``hidden`` in
        [1, 4096], ``lr`` in (0, 10], ``T`` in (0, 100], ``lam`` in [0, 1], ``seed`` >= 0.

    Returns
    -------
    dict
        The values, converted to ``int`` / ``float``.

    Raises
    ------
    TypeError, ValueError
        Naming the first bad parameter, its value and the allowed range (an
        unknown or missing name is a ``TypeError``).
    """
    return _checks.check_params(values, PARAMS)


# --------------------------------------------------------------------------- the article's loss, trained

class ArticleLossFn:
    """The article's total loss (formula 3.2.3) as a ``loss_fn`` for :func:`kdlib.train.fit`.

    Each call computes ``article_total(teacher_probs[idx], softmax(logits), y, lam=lam)``:
    the teacher's probabilities of the batch's examples (looked up by example
    index) and the student's softmax probabilities, exactly as the formulas are
    printed. It also records the student's ordinary hard-label cross-entropy of
    every batch in :attr:`student_ce`, the quantity that plain training minimises,
    so that the two trainings can be compared step by step.

    Parameters
    ----------
    teacher_probs : torch.Tensor
        Shape ``(n_train, classes)``: the teacher's softmax outputs on the training
        split, in data-set order. They are constants (detached).
    lam : float
        The article's λ, in ``[0, 1]``.

    Attributes
    ----------
    student_ce : list of float
        ``F.cross_entropy(logits, y)`` of every batch seen, in order.
    """

    def __init__(self, teacher_probs: torch.Tensor, *, lam: float):
        self.teacher_probs = _check_probs("teacher_probs", teacher_probs).detach()
        self.lam = _check_lam(lam)
        self.student_ce: list[float] = []

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, x=None) -> torch.Tensor:
        self.student_ce.append(float(F.cross_entropy(logits.detach(), y)))
        return article_total(self.teacher_probs[idx], torch.softmax(logits, dim=-1), y, lam=self.lam)


@dataclass
class ScaledLrRun:
    """One λ of :func:`compare_article_with_scaled_lr`.

    Attributes
    ----------
    lam : float
        The article's λ.
    lr, scaled_lr : float
        Learning rate of the article-loss run, and ``lr * (1 - lam)`` of the plain run.
    article_ce, plain_ce : list of float
        The student's hard-label cross-entropy per step under the article's loss at
        ``lr``, and under plain cross-entropy at ``scaled_lr`` (empty for ``lam = 1``,
        where the scaled rate is 0 and there is nothing to train).
    max_weight_diff : float or None
        ``max |w_article - w_plain|`` over all final weights (None for ``lam = 1``).
    max_curve_diff : float or None
        ``max |article_ce - plain_ce|`` over the steps (None for ``lam = 1``).
    moved : float
        ``max |w_final - w_initial|`` of the article-loss run: 0.0 means the student
        never moved.
    article_val_acc, plain_val_acc : list of float
        Validation accuracy after each epoch (empty list / nan without a val split).
    """

    lam: float
    lr: float
    scaled_lr: float
    article_ce: list
    plain_ce: list
    max_weight_diff: float | None
    max_curve_diff: float | None
    moved: float
    article_val_acc: list
    plain_val_acc: list


def _max_param_diff(a: nn.Module, b: nn.Module) -> float:
    with torch.no_grad():
        return max((float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters())),
                    default=0.0)


def compare_article_with_scaled_lr(make_student, data, teacher_probs: torch.Tensor, *,
                                   lams=(0.0, 0.5, 0.9, 1.0), lr: float = 0.1, epochs: int = 2,
                                   batch_size: int = 128, seed: int = 0) -> list[ScaledLrRun]:
    """Train with the article's loss, and with plain cross-entropy at ``lr * (1 - lam)``.

    For every ``lam`` two students start from the same weights (``make_student()``
    called right after ``torch.manual_seed(seed)``) and see the same batches
    (``fit``'s ``seed``). Both use plain SGD (no momentum, no schedule, no weight
    decay), so one step is ``w -= lr * grad``. Because ``article_ce`` does not
    depend on the student, the article's gradient is ``(1 - lam) * grad CE``, and
    the two runs take the same steps up to floating-point rounding: their curves
    and final weights coincide. With ``lam = 1`` the gradient is exactly zero and
    the student never moves (``moved == 0.0``); no plain run is made there.

    Parameters
    ----------
    make_student : callable
        ``make_student() -> nn.Module`` mapping a training batch to logits.
    data : Splits, (train, val) pair, or Split
        As for :func:`kdlib.train.fit`.
    teacher_probs : torch.Tensor
        The teacher's probabilities on ``data.train``, in data-set order.
    lams : sequence of float
        λ values in ``[0, 1]``.
    lr : float
        Learning rate of the article-loss runs, ``> 0``.
    epochs, batch_size, seed : int

    Returns
    -------
    list of ScaledLrRun
        One per ``lam``, in order.
    """
    if not callable(make_student):
        raise TypeError(f"make_student must be a callable returning an nn.Module, got "
                        f"{type(make_student).__name__}")
    lams = [_check_lam(v) for v in lams]
    if not lams:
        raise ValueError("lams must hold at least one value in [0, 1], got an empty sequence")
    lr = check_float("lr", lr, low=0.0, low_open=True)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_int("seed", seed, low=0)
    train, _, _ = unpack_splits(data)
    probs = _check_probs("teacher_probs", teacher_probs)
    if probs.shape[0] != len(train.y):
        raise ValueError(f"teacher_probs has {probs.shape[0]} rows but the training split has "
                         f"{len(train.y)} examples; they must match")

    def new_student():
        torch.manual_seed(seed)
        model = make_student()
        if not isinstance(model, nn.Module):
            raise TypeError(f"make_student() must return an nn.Module, got {type(model).__name__}")
        return model

    sgd = dict(epochs=epochs, batch_size=batch_size, optimizer="sgd", momentum=0.0, schedule=None,
               weight_decay=0.0, seed=seed, progress=False)
    runs = []
    for lam in lams:
        article = new_student()
        start = [p.detach().clone() for p in article.parameters()]
        loss_fn = ArticleLossFn(probs, lam=lam)
        hist_a = fit(article, data, lr=lr, loss_fn=loss_fn, **sgd)
        moved = max((float((p.detach() - p0).abs().max()) for p, p0 in zip(article.parameters(), start)),
                    default=0.0)
        scaled = lr * (1.0 - lam)
        if scaled > 0:
            plain = new_student()
            hist_p = fit(plain, data, lr=scaled, **sgd)
            plain_ce = list(hist_p.step_loss)
            weight_diff = _max_param_diff(article, plain)
            curve_diff = max(abs(a - b) for a, b in zip(loss_fn.student_ce, plain_ce))
            plain_acc = list(hist_p.val_acc)
        else:
            plain_ce, weight_diff, curve_diff, plain_acc = [], None, None, []
        runs.append(ScaledLrRun(lam=lam, lr=lr, scaled_lr=scaled, article_ce=list(loss_fn.student_ce),
                                plain_ce=plain_ce, max_weight_diff=weight_diff, max_curve_diff=curve_diff,
                                moved=moved, article_val_acc=list(hist_a.val_acc), plain_val_acc=plain_acc))
    return runs


# --------------------------------------------------------------------------- the pitfalls table

@dataclass
class PitfallRow:
    """One line of the pitfalls table: a mistake's loss value against the correct one."""

    name: str
    value: float
    correct: float
    note: str = ""

    @property
    def ratio(self) -> float:
        """``value / correct`` (nan when the correct value is 0)."""
        return self.value / self.correct if self.correct else float("nan")


def formula_pitfalls(student_logits, teacher_logits, labels, *, T: float) -> list[PitfallRow]:
    """The four formula mistakes on one batch, as the soft term alone (``lam = 0``).

    Every mistake of :mod:`kdlib.pitfalls` lives in the soft term; the hard-label term
    ``lam * CE`` would add the same number to the mistake and to the correct
    loss, so the table compares the soft term alone, where the ratios are
    readable: ``pitfall_kldiv_mean`` gives exactly ``1 / n_classes``,
    ``pitfall_no_T2`` exactly ``1 / T**2``. The ``UserWarning`` that
    ``KLDivLoss(reduction="mean")`` emits is caught and quoted in that row's note.

    Returns
    -------
    list of PitfallRow
        KLDivLoss "mean", probabilities as log-probabilities, no T², KL swapped.
    """
    T = _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    with torch.no_grad():
        correct = float(kd_loss(s, t, y, lam=0.0, T=T))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mean_value = float(pitfall_kldiv_mean(s, t, y, lam=0.0, T=T))
        said = next((str(w.message) for w in caught if "mean" in str(w.message)), "")
        said = said.split(".")[0] if said else "no warning"
        k = s.shape[1]
        return [
            PitfallRow("KLDivLoss(reduction='mean')", mean_value, correct,
                       f"averages over the {k} classes too: exactly 1/{k}; PyTorch warns: '{said}'"),
            PitfallRow("probabilities passed as log-probabilities",
                       float(pitfall_probs_as_log_probs(s, t, y, lam=0.0, T=T)), correct,
                       "Σ p_t (log p_t − p_s) is no divergence: negative, not 0 when s = t"),
            PitfallRow("T² factor forgotten", float(pitfall_no_T2(s, t, y, lam=0.0, T=T)), correct,
                       f"exactly 1/T² = 1/{T ** 2:g}: raising T silently switches distillation off"),
            PitfallRow("KL(student ‖ teacher) instead of KL(teacher ‖ student)",
                       float(pitfall_kl_swapped(s, t, y, lam=0.0, T=T)), correct,
                       "another, mode-seeking divergence: may ignore the teacher's small probabilities"),
        ]


def measure_train_mode(teacher: nn.Module, x: torch.Tensor, student_logits, labels, *, T: float,
                       n: int = 5) -> tuple[PitfallRow, dict]:
    """The teacher-in-train-mode mistake on one batch, with how much its targets vary.

    Runs :func:`kdlib.pitfalls.pitfall_teacher_train_mode` (``n`` train-mode passes, dropout
    active; the teacher is left as found) and compares the soft term (``lam = 0``)
    computed against the train-mode targets (mean over the ``n`` passes) with the
    one against the eval-mode targets.

    Returns
    -------
    row : PitfallRow
    spread : dict
        ``max_prob_change``: largest ``|p_train - p_eval|`` of any class probability
        at temperature ``T``; ``mean_prob_change``: its mean over the batch and
        classes; ``argmax_changed``: fraction of (pass, example) pairs whose top
        class differs from eval mode; ``soft_min``/``soft_max``: the range of the
        soft term over the passes; ``eval_repeatable``: two eval-mode passes agree
        exactly.
    """
    T = _check_T(T)
    eval_logits, train_logits = pitfall_teacher_train_mode(teacher, x, n=n)
    s, t, y = _check_batch(student_logits, eval_logits, labels)
    with torch.no_grad():
        again, _ = pitfall_teacher_train_mode(teacher, x, n=1)
        p_eval = soft_targets(t, T)
        p_train = torch.stack([soft_targets(z.to(s.dtype), T) for z in train_logits])
        change = (p_train - p_eval).abs()
        soft = [float(kd_loss(s, z, y, lam=0.0, T=T)) for z in train_logits]
        correct = float(kd_loss(s, t, y, lam=0.0, T=T))
        flips = (torch.stack(train_logits).argmax(-1) != eval_logits.argmax(-1)).float().mean()
    spread = {"max_prob_change": float(change.max()), "mean_prob_change": float(change.mean()),
              "argmax_changed": float(flips), "soft_min": min(soft), "soft_max": max(soft),
              "eval_repeatable": bool(torch.equal(again, eval_logits))}
    row = PitfallRow("teacher in train mode (dropout on)", sum(soft) / len(soft), correct,
                     f"targets change every call: soft term {min(soft):.4f}..{max(soft):.4f} over {n} calls")
    return row, spread


def measure_misaligned_cache(student_logits, cached_teacher_logits, labels, *, T: float,
                             batch_size: int = 128, seed: int = 0) -> tuple[PitfallRow, dict]:
    """The misaligned-cache mistake over one epoch of batches, shuffled and not.

    ``student_logits``, ``cached_teacher_logits`` and ``labels`` cover a whole
    data set in data-set order. For a seeded shuffled order, batch ``i`` holds the
    examples ``perm[i*bs:(i+1)*bs]``; the mistake pairs them with cache rows
    ``i*bs:(i+1)*bs`` (:func:`kdlib.pitfalls.pitfall_misaligned_cache`), the correct loss with
    ``cache[idx]``. Both soft terms (``lam = 0``) are averaged over the batches.

    Returns
    -------
    row : PitfallRow
        Shuffled epoch: mistaken vs correct mean soft term.
    check : dict
        ``unshuffled_equal``: in data-set order the two lookups give identical
        losses; ``shuffled_wrong`` / ``shuffled_right``: the per-batch values.
    """
    T = _check_T(T)
    s = _check_matrix("student_logits", student_logits)
    cache = _check_matrix("cached_teacher_logits", cached_teacher_logits)
    _check_same_shape("student_logits", s, "cached_teacher_logits", cache)
    y = _check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_int("seed", seed, low=0)
    n = s.shape[0]

    def epoch(order):
        wrong, right = [], []
        with torch.no_grad():
            for i, start in enumerate(range(0, n, batch_size)):
                idx = order[start:start + batch_size]
                wrong.append(float(pitfall_misaligned_cache(s[idx], cache, y[idx], i, lam=0.0, T=T,
                                                            batch_size=batch_size)))
                right.append(float(kd_loss(s[idx], cache[idx], y[idx], lam=0.0, T=T)))
        return wrong, right

    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    wrong, right = epoch(perm)
    in_order = epoch(torch.arange(n))
    check = {"unshuffled_equal": in_order[0] == in_order[1], "shuffled_wrong": wrong,
             "shuffled_right": right}
    row = PitfallRow("cached logits looked up by batch position", sum(wrong) / len(wrong),
                     sum(right) / len(right),
                     "with shuffling each student row gets another example's targets")
    return row, check


def format_table(rows) -> str:
    """Format :class:`PitfallRow` objects as a fixed-width text table (4 decimals)."""
    rows = list(rows)
    if not all(isinstance(r, PitfallRow) for r in rows):
        raise TypeError("rows must be PitfallRow objects")
    width = max([len("mistake")] + [len(r.name) for r in rows])
    lines = [f"{'mistake':<{width}}  {'value':>9}  {'correct':>9}  {'ratio':>8}",
             "-" * (width + 32)]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.value:>9.4f}  {r.correct:>9.4f}  {r.ratio:>8.4f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- figures

def scaled_lr_curves(runs, *, window: int = 10, title: str = "") -> Figure:
    """The article's loss against plain training at a scaled learning rate, one panel.

    For every run of :func:`compare_article_with_scaled_lr`: the
    student's per-step cross-entropy under the article's loss (solid line, colour
    ``C<i>``) and under plain cross-entropy at ``lr * (1 - lam)`` (dashed, same
    colour, drawn on top). A run with ``lam = 1`` has no plain run; its article
    curve is drawn in grey. Both curves go through the same moving average
    (``window`` steps, :func:`kdlib.plots.smooth`), so equal curves stay equal.

    Lines are added in order: for each run its solid line, then (if any) its dashed line.
    """
    window = check_int("window", window, low=1)
    fig, ax = new_figure(10.0, 3.8)
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
    value. The y-axis runs from 0 to 1.
    """
    if not results:
        raise ValueError("results must map at least one protocol to {split: accuracy}")
    splits = list(dict.fromkeys(k for v in results.values() for k in v))
    fig, ax = new_figure(7.0, 3.6)
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
    a.set_ylim(0.0, 1.0)  # bars start at 0; the labels carry the exact values
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
    fig, ax = new_figure(6.4, 3.8)
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
    fig, ax = new_figure(9.0, 3.6, ncols=2)
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


# --------------------------------------------------------------------------- widget

class LossTermsExplorer:
    """A λ slider and a T slider over the two terms of ``kd_loss`` on one batch.

    The unweighted terms ``(CE, T²·KL)`` are computed once per temperature in
    ``Ts`` (:func:`kdlib.losses.kd_terms`), so moving either slider only redraws
    :func:`loss_terms`. Display the explorer by putting it last in a cell.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``.
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    Ts : sequence of float
        The temperatures offered (each > 0); ``T`` must be one of them.
    lam, T : float
        Starting values.

    Attributes
    ----------
    widget : ipywidgets.VBox
        The sliders, the label and the figure's output.
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
            ce, soft = kd_terms(student_logits.detach(), teacher_logits, labels, T=t)
            self.table[t] = (float(ce), float(soft))
        self.lam_slider = widgets.FloatSlider(value=lam, min=0.0, max=1.0, step=0.05,
                                              description="λ", readout_format=".2f")
        self.T_slider = widgets.SelectionSlider(options=[(f"{t:g}", t) for t in Ts], value=T,
                                                description="T")
        self.label = widgets.HTML()
        self.out = widgets.Output()
        self.figure = None
        self.widget = widgets.VBox([widgets.HBox([self.lam_slider, self.T_slider]), self.label,
                                    self.out])
        self.lam_slider.observe(self._redraw, names="value")
        self.T_slider.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change=None) -> None:
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        ce, soft = self.table[T]
        self.terms = (ce, soft)
        self.weighted = (lam * ce, (1 - lam) * soft, lam * ce + (1 - lam) * soft)
        self.figure = loss_terms(ce, soft, lam=lam, T=T)
        self.label.value = (f"λ = {lam:.2f}, T = {T:g}: λ·CE = {self.weighted[0]:.4f}, "
                            f"(1 − λ)·T²·KL = {self.weighted[1]:.4f}, total = {self.weighted[2]:.4f}")
        show_in(self.out, self.figure)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
