"""Lesson 04b (``notebooks/04b_correct_loss.ipynb``): the correct loss, its comparison with the
article's, and its pitfalls.

Everything only notebook 04b uses: its settings (:class:`Settings`, :func:`check_params`); the
student its one-batch sections read (:func:`chosen_student`); the primary comparison, the correct
loss against the article's (:func:`primary_students`, :func:`selection`, :func:`primary_table`);
the pitfalls on one batch (:func:`formula_pitfalls`, :func:`measure_train_mode`,
:func:`measure_misaligned_cache`, :func:`pitfall_frame`) and trained (:func:`pitfall_students`,
:func:`pitfall_table`); the figures and the widget (:class:`LossTermsExplorer`); the checks of the
learner's loss and step; the ``say_*`` sentences that follow the run; the exercises
(:data:`EXERCISES`, :func:`check_exercise`).

The formulas it runs are core: :mod:`kdlib.losses` (the correct loss), :mod:`kdlib.pitfalls` (the
mistakes), :mod:`kdlib.article` (the article's loss it is compared with).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure
from torch import nn

from kdlib import experiments, metrics, results
from kdlib._checks import (
    LAM,
    SEEDS,
    TEACHER_CHECKPOINT,
    TEMPERATURE,
    Each,
    Float,
    Int,
    Param,
    as_number,
    check_kd_batch,
    check_labels,
    check_matrix,
    check_same_shape,
    check_temperature,
    exercise_checker,
    settings_checker,
    settings_class,
    validate_params,
    verdict,
)
from kdlib.article import ArticleLossFn
from kdlib.data import unpack_splits
from kdlib.losses import (
    kd_loss,
    kd_terms,
    soft_targets,
)
from kdlib.models import max_param_diff
from kdlib.pitfalls import (
    pitfall_kl_swapped,
    pitfall_kldiv_mean,
    pitfall_misaligned_cache,
    pitfall_no_T2,
    pitfall_probs_as_log_probs,
    pitfall_teacher_train_mode,
)
from kdlib.plots import new_figure
from kdlib.train import TrainSettings
from kdlib.widgets import show_in

__all__ = [
    "PARAMS", "Settings", "check_params", "chosen_student",
    "PitfallRow", "formula_pitfalls", "measure_train_mode", "measure_misaligned_cache", "pitfall_frame",
    "primary_students", "selection", "primary_table", "ARTICLE", "CORRECT",
    "t2_gradient_norms", "LossTermsExplorer", "PITFALL_LOSSES", "pitfall_students",
    "pitfall_table", "term_gradients", "total_gradient_norm",
    "gradient_trade_off", "check_kd_loss", "check_training_step",
    "say_selection", "say_primary", "say_gradients", "say_pitfalls", "say_summary",
    "EXERCISES", "check_exercise",
]


# --------------------------------------------------------------------------- parameters

PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "n_train": Param(Int(500, 55000), "Training images of every student (each seed draws its own)."),
    "student_epochs": Param(Int(1, 100),
        "Epochs of the student the one-batch sections read (:func:`chosen_student`)."),
    "hidden": Param(Int(1, 4096), "Hidden units of the students."),
    "T": Param(Float(0.0, 100.0, low_open=True), "Temperature of the correct loss (always a candidate)."),
    "lam": Param(Float(0.0, 1.0), "Weight of the hard-label term (always a candidate)."),
    "seed": Param(Int(0),
        "The seed whose training images, initial weights and batch order the one-run sections use."),
    "pitfall_epochs": Param(Int(1, 100), "Epochs per student of the trained-pitfalls comparison."),
    "pitfall_seeds": Param(Int(1, 20), "Seeds per student there."),
    "seeds": Param(Int(1, 20), "Seeds of the primary comparison, each with its own training images."),
    "compare_epochs": Param(Int(1, 100), "Epochs of every student of the primary comparison."),
}
"""Notebook 04b's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

ADAM_LRS = (3e-3, 1e-2)
"""Peak learning rates (Adam, OneCycle) tried by every method of the primary comparison."""
LAMS = (0.1, 0.5)
"""λ candidates of the correct loss in the primary comparison (``lam`` is always added)."""
TS = (2.0,)
"""Temperature candidates of the correct loss there (``T`` is always added)."""
ARTICLE, CORRECT = "article 3.2.3", "kd_loss"
"""The method names of the primary comparison: the article's total loss as printed, the correct loss."""


@settings_class(PARAMS)
class Settings:
    """Notebook 04b's parameters, validated (made by :func:`check_params`)."""

    @property
    def lrs(self) -> tuple:
        """Peak learning-rate candidates, the same for both methods (:data:`ADAM_LRS`)."""
        return ADAM_LRS

    @property
    def lams(self) -> tuple:
        """λ candidates of the correct loss: :data:`LAMS` and ``lam``."""
        return tuple(sorted({*LAMS, self.lam}))

    @property
    def Ts(self) -> tuple:
        """Temperature candidates of the correct loss: :data:`TS` and ``T``."""
        return tuple(sorted({*TS, self.T}))

    @property
    def n_samples(self) -> int:
        """How many per-seed training samples the run needs (the largest seed used, plus one)."""
        return max(self.seeds, self.pitfall_seeds, self.seed + 1)


check_params = settings_checker(Settings, PARAMS)

# --------------------------------------------------------------------------- the one-batch sections' student

CANDIDATE_LAMS = (0.1, 0.5, 0.9)
"""λ candidates of :func:`chosen_student` (notebook 04a's honest protocol)."""


def chosen_student(data, teacher_logits: torch.Tensor, settings: Settings) -> dict:
    """A student distilled with the correct loss, λ chosen on validation (notebook 04a's honest protocol).

    One student per λ of :data:`CANDIDATE_LAMS` (``mlp([784, hidden, 10])``, seeded by
    ``settings.seed``) is distilled on ``data.train`` for ``student_epochs`` epochs at
    ``settings.T``; the one with the best validation accuracy is kept. The one-batch sections
    (the gradient explorer, the pitfalls) read its logits.

    Parameters
    ----------
    data : kdlib.data.Splits
        One seed's splits (:func:`kdlib.experiments.sampled_splits`).
    teacher_logits : torch.Tensor
        The teacher's logits on ``data.train``.
    settings : Settings

    Returns
    -------
    dict
        ``student`` (the chosen model), ``lam`` (its λ), ``val_acc`` (λ → validation accuracy).
    """
    S, students, val_acc = settings, {}, {}
    build = experiments.mlp_builder([784, S.hidden, 10])
    for lam in CANDIDATE_LAMS:
        config = experiments.Config(build, experiments.kd(lam, S.T), S.seed,
                                    TrainSettings(epochs=S.student_epochs))
        students[lam], _ = experiments.train(config, data, teacher_logits=teacher_logits)
        val_acc[lam] = metrics.accuracy(students[lam], data.val.x, data.val.y)
    best = max(val_acc, key=val_acc.get)
    return {"student": students[best], "lam": best, "val_acc": val_acc}


# --------------------------------------------------------------------------- the pitfalls, on one batch

@dataclass
class PitfallRow:
    """One line of the pitfalls table: a mistake's loss value against the correct one.

    Attributes
    ----------
    name : str
        The mistake, as printed in the table.
    value, correct : float
        The mistaken loss and the correct :func:`kdlib.losses.kd_loss` on the same batch.
    note : str
        One sentence on why the value differs (04b prints it under the table).
    ratio : float
        ``value / correct``; nan when ``correct`` is 0.
    """

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
    T = check_temperature(T)
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
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
    T = check_temperature(T)
    eval_logits, train_logits = pitfall_teacher_train_mode(teacher, x, n=n)
    s, t, y = check_kd_batch(student_logits, eval_logits, labels)
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


@validate_params(batch_size=Int(low=1), seed=Int(low=0))
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
    T = check_temperature(T)
    s = check_matrix("student_logits", student_logits)
    cache = check_matrix("cached_teacher_logits", cached_teacher_logits)
    check_same_shape("student_logits", s, "cached_teacher_logits", cache)
    y = check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
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


def pitfall_frame(rows) -> pd.DataFrame:
    """:class:`PitfallRow` objects as a DataFrame: the mistake's value, the correct one and their ratio.

    Parameters
    ----------
    rows : iterable of PitfallRow
        In the order to show (04b passes :func:`formula_pitfalls` plus the two measured rows).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``mistake``: ``value``, ``correct``, ``ratio`` (rounded to 4 decimals).
    """
    rows = list(rows)
    if not all(isinstance(r, PitfallRow) for r in rows):
        raise TypeError("rows must be PitfallRow objects")
    return pd.DataFrame({"value": [r.value for r in rows], "correct": [r.correct for r in rows],
                         "ratio": [r.ratio for r in rows]},
                        index=pd.Index([r.name for r in rows], name="mistake")).round(4)


def t2_gradient_norms(Ts, with_T2, without_T2, *, title: str = "") -> Figure:
    """Gradient norm of the soft term against ``T``, with and without the ``T**2`` factor.

    Log–log axes. Lines, in order: with ``T**2`` (solid, C0), without (solid, C1),
    and a dotted reference ``without_T2[0] * (Ts[0] / T)**2`` showing the
    ``1 / T**2`` slope.

    Parameters
    ----------
    Ts : sequence of float
        Temperatures, ``> 0`` (log axis).
    with_T2, without_T2 : sequence of float
        Gradient norms of the soft term at each ``T``, one per entry of ``Ts``, ``> 0`` for the log axis.
    title : str
        Axes title; ``""`` for the default.

    Returns
    -------
    matplotlib.figure.Figure
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


def term_gradients(student_logits, teacher_logits, labels, *, T: float) -> tuple[float, float, float]:
    """The gradients of the two KD terms with respect to the student's logits.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``.
    labels : torch.Tensor
        Integer class indices.
    T : float

    Returns
    -------
    (norm_ce, norm_soft, dot) : tuple of float
        ``‖∇CE‖``, ``‖∇ T²·KL‖`` (Frobenius norms over the batch) and their inner
        product, so that the gradient of ``kd_loss`` at any λ has norm
        ``sqrt(λ² a² + (1 − λ)² b² + 2 λ (1 − λ) dot)``.
    """
    T = check_temperature(T)
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    s = s.detach().clone().requires_grad_(True)
    ce, soft = kd_terms(s, t, y, T=T)
    (g_ce,) = torch.autograd.grad(ce, s)
    (g_soft,) = torch.autograd.grad(soft, s)
    return float(g_ce.norm()), float(g_soft.norm()), float((g_ce * g_soft).sum())


def total_gradient_norm(norm_ce: float, norm_soft: float, dot: float, lam) -> np.ndarray:
    """``‖λ ∇CE + (1 − λ) ∇T²KL‖`` from the two norms and their inner product (λ may be an array).

    Parameters
    ----------
    norm_ce, norm_soft : float
        ``‖∇CE‖`` and ``‖∇ T²·KL‖``, as from :func:`term_gradients`.
    dot : float
        Their inner product.
    lam : float or array-like
        λ value(s) in [0, 1] (not checked).

    Returns
    -------
    numpy.ndarray
        The norm for each λ, shape of ``lam`` (0-d for a scalar); rounding below 0 is clipped to 0.
    """
    lam = np.asarray(lam, float)
    sq = lam ** 2 * norm_ce ** 2 + (1 - lam) ** 2 * norm_soft ** 2 + 2 * lam * (1 - lam) * dot
    return np.sqrt(np.maximum(sq, 0.0))


@validate_params(lam=LAM, T=TEMPERATURE, n_points=Int(low=2))
def gradient_trade_off(grads: dict, *, lam: float, T: float, n_points: int = 101) -> Figure:
    """How λ and T set the pull of each term on the student: gradient norms, two panels.

    ``grads`` maps each temperature to :func:`term_gradients`' ``(norm_ce, norm_soft, dot)``.
    Left, at ``T``, over λ in [0, 1]: ``λ‖∇CE‖`` (C0), ``(1 − λ)‖∇T²KL‖`` (C1) and
    the norm of their sum, the step the student actually takes (black; below the
    sum of the two when the terms pull in different directions), with a vertical
    line at ``lam``. Right, over the temperatures (log axis): ``‖∇CE‖`` (C0, flat:
    it has no T) and ``‖∇T²KL‖`` (C1), with a vertical line at ``T``.

    Parameters
    ----------
    grads : dict of float to (float, float, float)
        Temperature → :func:`term_gradients` of one batch (04b: ``explorer.grads``).
    lam : float
        The λ marked, in [0, 1].
    T : float
        The temperature of the left panel; must be a key of ``grads``.
    n_points : int
        Points of the λ grid, ``>= 2``.

    Returns
    -------
    matplotlib.figure.Figure
        10 × 3.8 inches.
    """
    if T not in grads:
        raise ValueError(f"T={T!r} must be one of the temperatures of grads: {sorted(grads)}")
    a, b, dot = grads[T]
    grid = np.linspace(0.0, 1.0, n_points)
    fig, ax = new_figure(10.0, 3.8, ncols=2)
    left, right = ax[0]
    left.plot(grid, grid * a, color="C0", label="λ · ‖∇ CE‖ (hard labels)")
    left.plot(grid, (1 - grid) * b, color="C1", label="(1 − λ) · ‖∇ T²·KL‖ (teacher)")
    left.plot(grid, total_gradient_norm(a, b, dot, grid), color="black", lw=2,
              label="‖∇ kd_loss‖ (the step taken)")
    left.axvline(lam, color="0.5", ls="--", lw=1)
    top = 1.1 * max(a, b, 1e-12)
    left.set(xlabel="λ (weight of the hard-label term)", ylabel="gradient norm (student logits)",
             ylim=(0, top), title=f"pull of each term at T = {T:g}")
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    Ts = sorted(grads)
    right.semilogx(Ts, [grads[t][0] for t in Ts], "o-", color="C0", label="‖∇ CE‖")
    right.semilogx(Ts, [grads[t][1] for t in Ts], "s-", color="C1", label="‖∇ T²·KL‖")
    right.axvline(T, color="0.5", ls="--", lw=1)
    right.set(xlabel="temperature T", ylabel="gradient norm (student logits)",
              ylim=(0, 1.1 * max(max(g[0], g[1]) for g in grads.values())),
              title="each term's pull against T (unweighted)")
    right.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2)
    return fig


class LossTermsExplorer:
    """A λ slider and a T slider over the two terms of ``kd_loss`` on one batch.

    The unweighted terms ``(CE, T²·KL)`` and their gradients' norms and inner
    product (:func:`term_gradients`) are computed once per temperature in ``Ts``,
    so moving either slider only redraws :func:`gradient_trade_off` (how hard each
    term pulls the student, and the step they take together). Display the explorer by
    putting it last in a cell.

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
    grads : dict
        ``{T: (norm_ce, norm_soft, dot)}`` for every ``T`` in ``Ts``.
    step_norm : float
        ``‖∇ kd_loss‖`` at the current λ and ``T``.
    figure : matplotlib.figure.Figure
        :func:`gradient_trade_off` for the current values.
    label : ipywidgets.HTML
        One line with the current numbers.
    """

    @validate_params(lam=LAM, T=TEMPERATURE, Ts=Each(TEMPERATURE, min_len=1))
    def __init__(self, student_logits, teacher_logits, labels, *, Ts=(1, 2, 4, 8, 16),
                 lam: float = 0.5, T: float = 4.0):
        if T not in Ts:
            raise ValueError(f"T={T!r} must be one of Ts={Ts!r} (the precomputed temperatures)")
        self.table, self.grads = {}, {}
        for t in Ts:
            ce, soft = kd_terms(student_logits.detach(), teacher_logits, labels, T=t)
            self.table[t] = (float(ce), float(soft))
            self.grads[t] = term_gradients(student_logits, teacher_logits, labels, T=t)
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
        a, b, dot = self.grads[T]
        self.step_norm = float(total_gradient_norm(a, b, dot, lam))
        self.figure = gradient_trade_off(self.grads, lam=lam, T=T)
        self.label.value = (f"λ = {lam:.2f}, T = {T:g}: λ·CE = {self.weighted[0]:.4f}, "
                            f"(1 − λ)·T²·KL = {self.weighted[1]:.4f}, total = {self.weighted[2]:.4f}; "
                            f"gradient norms λ·‖∇CE‖ = {lam * a:.4f}, (1 − λ)·‖∇T²KL‖ = {(1 - lam) * b:.4f}, "
                            f"step ‖∇ kd_loss‖ = {self.step_norm:.4f}")
        show_in(self.out, self.figure)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def _article_method(lam: float):
    """The article's total loss 3.2.3 as printed, as an :func:`kdlib.experiments.custom` method."""
    def setup(student, teacher_logits):
        return student, ArticleLossFn(torch.softmax(teacher_logits, dim=-1), lam=lam), None
    return experiments.custom(ARTICLE, setup, lam=lam)


def primary_students(pool, rows: dict, teacher_logits: torch.Tensor, settings: Settings) -> dict:
    """The primary comparison: the correct loss against the article's, one budget, chosen on validation.

    Both methods try the same peak learning rates (``settings.lrs``, Adam with OneCycle); the
    correct loss also tries every λ of ``settings.lams`` and temperature of ``settings.Ts``. The
    article's loss keeps ``settings.lam``: under Adam its λ cancels (notebook 04a, section 3),
    so trying others would only repeat the same training. Every candidate trains for every seed
    on that seed's ``rows`` for ``compare_epochs`` epochs and is scored on the validation split.
    Per method, the candidate with the best mean validation accuracy over the seeds is chosen;
    only the chosen students are scored on the test split. The correct-loss students train in
    lockstep; the article's (its own loss, :class:`ArticleLossFn`) one by one.

    Parameters
    ----------
    pool : kdlib.data.Splits
        :func:`kdlib.experiments.sampled_splits`'s pool.
    rows : dict
        Seed → pool rows (:func:`kdlib.experiments.sample_rows`).
    teacher_logits : torch.Tensor
        The teacher's logits on ``pool.train``.
    settings : Settings

    Returns
    -------
    dict
        ``"grid"``: a DataFrame of every student (``method``, ``lr``, ``lam``, ``T``, ``seed``,
        ``val_acc``); ``"chosen"``: the chosen students with ``test_acc`` too;
        ``"setting"``: :func:`selection` of the grid.
    """
    S = settings
    build = experiments.mlp_builder([784, S.hidden, 10])
    methods = [experiments.kd(lam, T, name=CORRECT) for lam in S.lams for T in S.Ts] + \
        [_article_method(S.lam)]
    configs = [experiments.Config(build, m, seed, TrainSettings(epochs=S.compare_epochs, lr=lr),
                                  rows=rows[seed], labels={"lr": lr})
               for m in methods for lr in S.lrs for seed in range(S.seeds)]
    out = experiments.train_students(
        configs, pool.train, teacher_logits=teacher_logits, keep=lambda c: True, progress=False,
        evaluate=lambda model, c, d: {"val_acc": metrics.accuracy(model, pool.val.x, pool.val.y)})
    student = {id(r): r.pop("student") for r in out}
    for r in out:
        r.pop("eps", None), r.pop("seconds", None)
    picked = experiments.chosen(out, experiments.choose(out, by=_CANDIDATE), by=_CANDIDATE)
    chosen = [{**r, "test_acc": metrics.accuracy(student[id(r)], pool.test.x, pool.test.y)}  # test once
              for r in picked]
    grid = results.frame(out)
    return {"grid": grid, "chosen": results.frame(chosen), "setting": selection(grid)}


_CANDIDATE = ("lr", "lam", "T")  # what the validation split chooses, per method


def selection(grid: pd.DataFrame) -> pd.DataFrame:
    """Per method, the candidate with the best mean validation accuracy over the seeds.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`primary_students`' ``"grid"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``method``: the chosen ``lr``, ``lam``, ``T``, ``val_acc`` (its mean) and
        ``candidates`` (how many were tried).
    """
    best = experiments.choose(grid, by=_CANDIDATE)
    return pd.DataFrame([{"method": m, "lr": c["lr"], "lam": c["lam"], "T": c["T"], "val_acc": c["mean"],
                          "candidates": c["candidates"]} for m, c in best.items()]).set_index("method")


def primary_table(chosen: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy of the chosen students, the correct loss against the article's, paired by seed.

    Parameters
    ----------
    chosen : pandas.DataFrame
        :func:`primary_students`' ``"chosen"``.

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.results.compare`'s table, the article's loss the reference.
    """
    return results.compare(chosen, by="method", metric="test_acc", reference=ARTICLE)


PITFALL_LOSSES = {
    "correct kd_loss": None,
    "KLDivLoss(reduction='mean')": pitfall_kldiv_mean,
    "probabilities as log-probabilities": pitfall_probs_as_log_probs,
    "T² forgotten": pitfall_no_T2,
    "KL swapped": pitfall_kl_swapped,
    "teacher in train mode": "train-mode",
    "cache looked up by position": "misaligned",
    "no teacher (λ = 1)": "plain",
}
"""The students of :func:`pitfall_students`: name → mistake (None: the correct loss)."""


def _pitfall_loss_fn(kind, teacher, cache, *, lam, T, batch_size):
    n_batches = -(-len(cache) // batch_size)
    counter = {"i": 0}

    def loss_fn(logits, y, idx, x):
        if kind == "train-mode":
            was = teacher.training
            teacher.train()
            with torch.no_grad():
                t = teacher(x)
            teacher.train(was)
            return kd_loss(logits, t, y, lam=lam, T=T)
        if kind == "misaligned":
            i = counter["i"] % n_batches
            counter["i"] += 1
            return pitfall_misaligned_cache(logits, cache, y, i, lam=lam, T=T, batch_size=batch_size)
        return kind(logits, cache[idx], y, lam=lam, T=T)

    return loss_fn


@validate_params(lam=LAM, T=TEMPERATURE, seeds=SEEDS)
def pitfall_students(build, teacher: nn.Module, data, teacher_logits: torch.Tensor, *,
                     lam: float = 0.5, T: float = 4.0, seeds=(0, 1, 2), names=None,
                     settings: TrainSettings | None = None, rows: dict | None = None) -> list[dict]:
    """Train one short student per classic mistake (and the correct loss), per seed.

    Every student is ``build()`` (initial weights from its seed) trained by
    :func:`kdlib.experiments.train_students` (Adam, OneCycle; ``settings``) on its
    seed's training images, with the same seed for its batch order; only the loss differs
    (:data:`PITFALL_LOSSES`): the correct :func:`kdlib.losses.kd_loss`, each formula
    mistake of :mod:`kdlib.pitfalls`, the teacher run in train mode on every batch
    (dropout on), the cached logits looked up by batch position, and a plain
    student without the teacher (λ = 1) as the reference "no distillation". The correct and
    the plain students are ordinary methods (lockstep when ``build`` is an
    :func:`kdlib.experiments.mlp_builder`); the mistakes are :func:`kdlib.experiments.custom`.

    Parameters
    ----------
    build : callable
        ``build() -> nn.Module``.
    teacher : nn.Module
        Only used by the train-mode mistake (left in the mode it was in).
    data : kdlib.data.Splits
        ``train`` is distilled on (the pool ``rows`` index), ``test`` scores every student.
    teacher_logits : torch.Tensor
        Eval-mode teacher logits of ``data.train``, in data-set order.
    lam, T : float
    seeds : int or sequence of int
        ``n`` means ``0 .. n-1``.
    names : sequence of str, optional
        A subset of :data:`PITFALL_LOSSES` (default: all, in order).
    settings : kdlib.train.TrainSettings, optional
        Epochs, learning rate and batch size (default: 3 epochs, ``lr=3e-3``, batch 128).
    rows : dict, optional
        Seed → rows of ``data.train`` that seed trains on (default: all of them).

    Returns
    -------
    list of dict
        ``{"mistake", "seed", "test_acc"}`` per (mistake, seed), mistakes in order.
    """
    if not callable(build):
        raise TypeError(f"build must be a callable returning an nn.Module, got {type(build).__name__}")
    settings = settings or TrainSettings(epochs=3, lr=3e-3, batch_size=128)
    names = list(PITFALL_LOSSES) if names is None else list(names)
    for name in names:
        if name not in PITFALL_LOSSES:
            raise ValueError(f"names: {name!r} is not one of {list(PITFALL_LOSSES)}")
    train, _, test = unpack_splits(data)
    if test is None:
        raise ValueError("data must have a test split: every student is scored on it")
    cache = check_matrix("teacher_logits", teacher_logits).detach()
    if cache.shape[0] != len(train.y):
        raise ValueError(f"teacher_logits has {cache.shape[0]} rows but the training split has "
                         f"{len(train.y)} examples; they must match")
    if rows is not None and any(s not in rows for s in seeds):
        raise ValueError(f"rows must hold every seed of {seeds}, got seeds {sorted(rows)}")

    def method(name):
        kind = PITFALL_LOSSES[name]
        if kind is None:
            return experiments.kd(lam, T, name=name)
        if kind == "plain":
            return experiments.scratch(name)
        return experiments.custom(name, lambda student, logits: (student, _pitfall_loss_fn(
            kind, teacher, logits, lam=lam, T=T, batch_size=settings.batch_size), None), lam=lam, T=T)

    def score(model, config, data):
        return {"test_acc": metrics.accuracy(model, test.x, test.y)}

    configs = [experiments.Config(build, method(name), seed, settings, labels={"mistake": name},
                                  rows=None if rows is None else rows[seed])
               for name in names for seed in seeds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # KLDivLoss 'mean' warns every batch
        out = experiments.train_students(configs, (train, None, test), teacher_logits=cache,
                                         evaluate=score, progress=False)
    return [{k: r[k] for k in ("mistake", "seed", "test_acc")} for r in out]


def pitfall_table(rows) -> pd.DataFrame:
    """Test accuracy per mistake, paired difference to the correct loss (:func:`kdlib.results.compare`).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`pitfall_students` (must include ``"correct kd_loss"``).

    Returns
    -------
    pandas.DataFrame
        Indexed by mistake; the correct loss is the reference.
    """
    return results.compare(rows, by="mistake", metric="test_acc", reference="correct kd_loss")


def _check_settings():
    """Fixed batches and settings on which a learner's loss is compared with kd_loss."""
    gen = torch.Generator().manual_seed(1234)
    s = 2.0 * torch.randn(16, 10, generator=gen)
    t = 3.0 * torch.randn(16, 10, generator=gen)
    y = torch.randint(0, 10, (16,), generator=gen)
    return s, t, y, ((0.3, 4.0), (0.0, 2.0), (1.0, 3.0), (0.5, 1.0))


_KD_MISTAKES = (
    (pitfall_no_T2, "the soft term is T² times too small: did you forget T**2?"),
    (pitfall_kldiv_mean, "the soft term is n_classes times too small: did you use reduction='mean' "
                         "(nn.KLDivLoss's default)? KL is summed over classes and averaged over "
                         "examples: reduction='batchmean'"),
    (pitfall_kl_swapped, "this is KL(student ‖ teacher): the KL's arguments are swapped. F.kl_div(input, "
                         "target) takes the student's log-probabilities first and the teacher's "
                         "probabilities second"),
    (pitfall_probs_as_log_probs, "F.kl_div's first argument must be log-probabilities: you passed "
                                 "probabilities (use F.log_softmax(student_logits / T, dim=1))"),
)


def _value(fn, s, t, y, lam, T):
    out = fn(s.clone(), t.clone(), y.clone(), lam, T)
    if not isinstance(out, torch.Tensor) or out.numel() != 1:
        raise AssertionError(f"your function must return the loss as a one-element tensor, got "
                             f"{type(out).__name__} {getattr(out, 'shape', '')}")
    return out.reshape(())


def _gradient(fn, s, t, y, lam, T):
    """The gradient of ``fn``'s loss for the student's logits (None when it has none)."""
    s_req = s.clone().requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        out = fn(s_req, t.clone(), y.clone(), lam, T)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return None
    return torch.autograd.grad(out.reshape(()), s_req, allow_unused=True)[0]


def _close(a, b) -> bool:
    return a is not None and b is not None and float((a - b).abs().max()) <= 1e-5


def _teacher_entropy_term(t, lam, T) -> float:
    """``(1 − λ)·T²·H(softmax(t/T))`` (batch mean): what the cross-entropy form adds to kd_loss."""
    log_q = torch.log_softmax(t / T, dim=1)
    return float((1 - lam) * T ** 2 * -(log_q.exp() * log_q).sum(1).mean())


def check_kd_loss(fn) -> bool:
    """Check a learner's distillation loss against :func:`kdlib.losses.kd_loss`.

    ``fn(student_logits, teacher_logits, labels, lam, T)`` must return
    ``lam * CE + (1 - lam) * T**2 * KL(softmax(t/T) || softmax(s/T))`` (batch mean),
    as a scalar tensor with a gradient for the student's logits, **or any loss with the
    same gradient**: the cross-entropy form ``−Σ q_t log q_s`` (Hinton et al.'s objective,
    the PyTorch tutorial's code, ``F.cross_entropy(s / T, q_t)`` with probability targets)
    is the KL plus the teacher's entropy, a constant that trains the same student; its
    value is accepted and the difference named. It is run on a fixed batch of 16 examples
    and 10 classes at four ``(lam, T)`` settings; values first, then gradients.

    Parameters
    ----------
    fn : callable

    Returns
    -------
    bool
        True, after printing ``"Right: ..."``, when every value (or every gradient) matches.

    Raises
    ------
    AssertionError
        For a wrong ``fn``; the message names the mistake when it is one of the
        four classic ones (T² forgotten, ``reduction='mean'``, the KL's arguments
        swapped, probabilities passed as log-probabilities; see :mod:`kdlib.pitfalls`)
        or the λ weights swapped, in either form (recognised by value or by gradient),
        and gives the expected and the computed value.
    TypeError
        If ``fn`` is not callable.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function fn(student_logits, teacher_logits, labels, lam, T), "
                        f"got {type(fn).__name__}")
    s, t, y, settings = _check_settings()
    offsets = []  # (lam, T, value − kd_loss) where only the gradient matched
    for lam, T in settings:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            got = float(_value(fn, s, t, y, lam, T).detach())
        want = float(kd_loss(s, t, y, lam=lam, T=T))
        if abs(got - want) <= 1e-4 * max(1.0, abs(want)):
            continue
        grad = _gradient(fn, s, t, y, lam, T)
        if _close(grad, _gradient(lambda *a: kd_loss(a[0], a[1], a[2], lam=a[3], T=a[4]), s, t, y, lam, T)):
            offsets.append((lam, T, got - want))
            continue
        where = f"at lam={lam:g}, T={T:g}: expected {want:.6f}, got {got:.6f}"
        for mistake, message in _KD_MISTAKES:
            def wrong(s_, t_, y_, lam_, T_, f=mistake):
                return f(s_, t_, y_, lam=lam_, T=T_)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                same_value = abs(got - float(wrong(s, t, y, lam, T))) <= 1e-4 * max(1.0, abs(want))
            if same_value or _close(grad, _gradient(wrong, s, t, y, lam, T)):
                raise AssertionError(f"{message} ({where})")
        swapped = float(kd_loss(s, t, y, lam=1.0 - lam, T=T))
        if abs(got - swapped) <= 1e-4 * max(1.0, abs(want)) or _close(
                grad, _gradient(lambda *a: kd_loss(a[0], a[1], a[2], lam=1 - a[3], T=a[4]), s, t, y, lam, T)):
            raise AssertionError(f"the weights are swapped: lam weights the HARD-label cross-entropy, "
                                 f"1 - lam the soft term ({where})")
        raise AssertionError(f"the value differs from kd_loss and is none of the classic mistakes ({where}); "
                             f"compare your terms with kdlib.losses.kd_terms")
    lam, T = 0.3, 4.0
    got_grad = _gradient(fn, s, t, y, lam, T)
    if got_grad is None:
        raise AssertionError("the loss has no gradient for the student's logits: did you call .detach(), "
                             ".item() or work under torch.no_grad()?")
    s_ref = s.clone().requires_grad_(True)
    (want_grad,) = torch.autograd.grad(kd_loss(s_ref, t, y, lam=lam, T=T), s_ref)
    err = float((got_grad - want_grad).abs().max())
    if err > 1e-5:
        raise AssertionError(f"the values match but the gradient for the student's logits differs by up "
                             f"to {err:.2e}: is part of the loss computed from detached tensors?")
    if not offsets:
        print(f"Right: your loss equals kd_loss at {len(settings)} (λ, T) settings (e.g. λ = 0.3, T = 4: "
              f"{float(kd_loss(s, t, y, lam=0.3, T=4.0)):.6f}) and so does its gradient.")
        return True
    lam, T, offset = offsets[0]
    entropy = all(abs(off - _teacher_entropy_term(t, lam_, T_)) <= 1e-4 * max(1.0, abs(off))
                  for lam_, T_, off in offsets)
    at = f"at λ = {lam:g}, T = {T:g}"
    why = (f"the teacher's entropy (1 − λ)·T²·H(q_t) = {offset:.6f} {at}: you wrote the cross-entropy "
           f"form −Σ q_t log q_s, Hinton et al.'s own objective" if entropy else
           f"a constant that does not depend on the student's logits ({offset:+.6f} {at})")
    print(f"Right: your loss has kd_loss's gradient at {len(settings)} (λ, T) settings, so it trains the "
          f"same student. Its value differs from kd_loss by {why}.")
    return True


class _SpyTeacher(nn.Module):
    """A small teacher with dropout that records, on every forward pass, its mode and grad state."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(99)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Dropout(0.5),
                                 nn.Linear(32, 5))
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled()))
        return self.net(x)


def _reference_step(student, teacher, optimizer, x, y, lam, T):
    teacher.eval()
    with torch.no_grad():
        t = teacher(x)
    optimizer.zero_grad()
    loss = kd_loss(student(x), t, y, lam=lam, T=T)
    loss.backward()
    optimizer.step()
    return loss


def check_training_step(step_fn) -> bool:
    """Check a learner's distillation training step.

    ``step_fn(student, teacher, optimizer, x, y, lam, T)`` must do one step:
    compute the teacher's logits **in eval mode and under ``torch.no_grad()``**,
    zero the gradients, compute the KD loss of the student's logits, back-propagate
    and step the optimizer, and return the loss. It is called twice on a tiny
    student and a teacher with dropout that is handed over in train mode, and the
    student's weights are compared with a reference step.

    Parameters
    ----------
    step_fn : callable

    Returns
    -------
    bool
        True, after printing ``"Right: ..."``.

    Raises
    ------
    AssertionError
        Naming the mistake: the teacher left in train mode (dropout on), the teacher
        run outside ``torch.no_grad()`` without detaching its logits (its weights
        receive gradients), gradients not zeroed, or weights that differ from the
        reference step. A teacher run with gradients on whose logits are
        ``.detach()``-ed trains the same student: it is accepted, with a note.
    """
    if not callable(step_fn):
        raise TypeError(f"step_fn must be a function step_fn(student, teacher, optimizer, x, y, lam, T), "
                        f"got {type(step_fn).__name__}")
    gen = torch.Generator().manual_seed(7)
    x, y = torch.randn(8, 12, generator=gen), torch.randint(0, 5, (8,), generator=gen)
    lam, T = 0.3, 4.0

    def make():
        torch.manual_seed(3)
        student = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 5))
        teacher = _SpyTeacher().train()  # handed over in train mode, as after training
        return student, teacher, torch.optim.SGD(student.parameters(), lr=0.5)

    student, teacher, opt = make()
    for _ in range(2):
        step_fn(student, teacher, opt, x, y, lam, T)
    if not teacher.calls:
        raise AssertionError("the teacher was never called: the step must compute teacher(x)")
    if any(training for training, _ in teacher.calls):
        raise AssertionError("the teacher ran in train mode (dropout on, its targets change every call): "
                             "call teacher.eval() before teacher(x)")
    if any(p.grad is not None for p in teacher.parameters()):
        raise AssertionError("the teacher ran outside torch.no_grad(): autograd builds a graph through it "
                             "(memory, time, and gradients in the teacher's weights); wrap teacher(x) in "
                             "`with torch.no_grad():`")
    detached = any(grad for _, grad in teacher.calls)  # a graph was built, but .detach() cut it
    ref_student, ref_teacher, ref_opt = make()
    for _ in range(2):
        _reference_step(ref_student, ref_teacher, ref_opt, x, y, lam, T)
    diff = max_param_diff(student, ref_student)
    if diff <= 1e-6:
        if detached:
            print("Right: teacher in eval mode, its logits detached, gradients zeroed, and after two steps "
                  "the student's weights equal the reference step's. (torch.no_grad() around teacher(x) "
                  "does the same and skips building the graph through the teacher.)")
        else:
            print("Right: teacher in eval mode under no_grad, gradients zeroed, and after two steps the "
                  "student's weights equal the reference step's.")
        return True
    acc_student, acc_teacher, acc_opt = make()
    with torch.no_grad():
        acc_teacher.eval()
        t = acc_teacher(x)
    for _ in range(2):  # the reference without zero_grad: gradients accumulate
        kd_loss(acc_student(x), t, y, lam=lam, T=T).backward()
        acc_opt.step()
    if max_param_diff(student, acc_student) <= 1e-6:
        raise AssertionError("the gradients accumulate over steps: call optimizer.zero_grad() before "
                             "loss.backward()")
    raise AssertionError(f"after two steps the student's weights differ from the reference step's by up "
                         f"to {diff:.2e}: check the loss with check_kd_loss, and the order zero_grad, "
                         f"backward, step")


def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _sd(row) -> str:
    return "" if np.isnan(row["sd"]) else f" ± {100 * row['sd']:.2f}"


def _interval(row) -> str:
    if np.isnan(row["low"]):
        return f"{100 * row['diff']:+.2f} points (no interval from one seed)"
    return f"{100 * row['diff']:+.2f} points (95 % CI {100 * row['low']:+.2f} to {100 * row['high']:+.2f})"


def say_selection(setting: pd.DataFrame) -> Markdown:
    """What the validation split chose for each method of the primary comparison.

    Parameters
    ----------
    setting : pandas.DataFrame
        :func:`selection`.

    Returns
    -------
    IPython.display.Markdown
    """
    a, k = setting.loc[ARTICLE], setting.loc[CORRECT]
    return Markdown(
        f"Chosen on the validation split (the best mean over the seeds; the test set was not looked at): "
        f"the article's loss at lr = {a['lr']:g}, λ = {a['lam']:g} (of {int(a['candidates'])} candidates, "
        f"validation {_pct(a['val_acc'])}); the correct loss at lr = {k['lr']:g}, λ = {k['lam']:g}, "
        f"T = {k['T']:g} (of {int(k['candidates'])}, validation {_pct(k['val_acc'])}).")


def say_primary(table: pd.DataFrame) -> Markdown:
    """The primary comparison's result, its verdict from the interval.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`primary_table`.

    Returns
    -------
    IPython.display.Markdown
    """
    a, k = table.loc[ARTICLE], table.loc[CORRECT]
    d = results.paired_difference(k["values"], a["values"])
    few = "" if d.n >= 5 else f" (only {d.n} seed{'s' * (d.n > 1)}: a smoke run, not the protocol's five)"
    meaning = {"helped": "the correct loss beat the article's: at this budget the teacher's soft targets "
                         "carried knowledge that the article's loss throws away.",
               "hurt": "the correct loss did worse than the article's, which is plain cross-entropy: at "
                       "this budget the soft targets did not help this student.",
               "not shown": "at this budget the run cannot tell the two apart."}[d.verdict]
    return Markdown(f"**Primary comparison**, test accuracy over {d.n} seeds{few}: the article's loss "
                    f"{100 * a['mean']:.2f}{_sd(a)} %, the correct loss {100 * k['mean']:.2f}{_sd(k)} %; "
                    f"{d.describe('the correct loss')}. So {meaning}")


def say_gradients(grads: tuple, step_norm: float, *, lam: float, T: float) -> Markdown:
    """What section 8's gradient norms showed at the notebook's λ and T.

    Parameters
    ----------
    grads : tuple of float
        ``(norm_ce, norm_soft, dot)`` at ``T`` (:func:`term_gradients`).
    step_norm : float
        ``‖∇ kd_loss‖`` at ``lam``.
    lam, T : float

    Returns
    -------
    IPython.display.Markdown
    """
    a, b, dot = (float(g) for g in grads)
    cos = dot / (a * b) if a * b else float("nan")
    harder = "the teacher's term pulls harder than the labels'" if b > a else \
        "the labels' term pulls harder than the teacher's"
    mean = (lam * a + (1 - lam) * b)
    shorter = "shorter than" if step_norm < mean else "as long as"
    return Markdown(
        f"What we saw: at T = {T:g} {harder} (‖∇T²KL‖ = {b:.4f} against ‖∇CE‖ = {a:.4f}), and the two "
        f"gradients have cosine {cos:.2f}, so at λ = {lam:g} the step they take together ({step_norm:.4f}) "
        f"is {shorter} the weighted sum of the two pulls ({mean:.4f}). Move λ: at λ = 1 only the labels "
        "pull, at λ = 0 only the teacher. Move T: the teacher's pull changes with T even with the T² factor, "
        "so the λ at which the two pull equally depends on T: λ and T must be chosen together.")


def say_pitfalls(table: pd.DataFrame) -> Markdown:
    """What each mistake cost a trained student (exploratory), each with its verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`pitfall_table`.

    Returns
    -------
    IPython.display.Markdown
    """
    others = table[table["verdict"] != "reference"]
    mistakes = others[~others.index.str.startswith("no teacher")]
    worst = mistakes["diff"].idxmin()
    words = {"hurt": "cost accuracy", "helped": "scored higher", "not shown": "not shown either way"}
    parts = [f"{name}: {_interval(r)}, {words[r['verdict']]}" for name, r in others.iterrows()]
    helped = [n for n, r in mistakes.iterrows() if r["verdict"] == "helped"]
    plain = others[others.index.str.startswith("no teacher")]
    text = (f"What we saw (exploratory, {int(table['n'].iloc[0])} seeds, test accuracy minus the correct "
            f"loss's {_pct(table.loc['correct kd_loss', 'mean'])}): " + "; ".join(parts) + ". "
            f"The most costly mistake here: **{worst}**.")
    if helped:
        text += (f" {len(helped)} mistake{'s' * (len(helped) > 1)} scored higher than the correct loss "
                 f"({', '.join(helped)}): a mistake that weakens the soft term moves the student towards a "
                 "plain one, so compare with the no-teacher row before calling it a better loss.")
    if len(plain):
        r = plain.iloc[0]
        text += (f" The plain student without a teacher: {_interval(r)} against the correct loss "
                 f"({r['verdict']}).")
    return Markdown(text)


def say_summary(primary: pd.DataFrame, pitfalls: pd.DataFrame) -> Markdown:
    """The notebook's three-line summary; its measured parts from this run.

    Parameters
    ----------
    primary : pandas.DataFrame
        :func:`primary_table`.
    pitfalls : pandas.DataFrame
        :func:`pitfall_table`.

    Returns
    -------
    IPython.display.Markdown
    """
    a, k = primary.loc[ARTICLE], primary.loc[CORRECT]
    d = results.paired_difference(k["values"], a["values"])
    mistakes = pitfalls[(pitfalls["verdict"] != "reference") & ~pitfalls.index.str.startswith("no teacher")]
    hurt = [n for n, r in mistakes.iterrows() if r["verdict"] == "hurt"]
    return Markdown("\n".join([
        "* The article's loss transfers no knowledge: its teacher term has no gradient, its "
        "\"distillation\" term is plain cross-entropy, and λ only rescales SGD's learning rate (under Adam, "
        "not even that).",
        f"* The correct loss is λ·CE + (1 − λ)·T²·KL(teacher ‖ student) with `log_softmax`, `batchmean` and "
        f"the teacher in eval mode under `no_grad`. Against the article's loss, both tuned on validation "
        f"with one budget (the primary comparison): {d.describe('the correct loss')}.",
        "* The classic mistakes raise no error; trained (exploratory), "
        + (f"{len(hurt)} of {len(mistakes)} cost accuracy with an interval below 0 ({', '.join(hurt)})"
           if hurt else f"none of the {len(mistakes)} showed a cost with an interval below 0 at this budget")
        + ", so check a KD implementation against a reference before trusting its numbers."]))




def _ex1(answer, *, grads=None, **_):
    if grads is None or len(grads) != 3:
        raise ValueError("exercise 1 needs grads=(norm_ce, norm_soft, dot), e.g. explorer.grads[T]")
    a, b, _ = (float(g) for g in grads)
    want = b / (a + b)
    x = as_number(answer)
    return verdict(x is not None and abs(x - want) <= 0.02,
                    f"λ = {want:.3f}: λ‖∇CE‖ = (1 − λ)‖∇T²KL‖ gives λ = ‖∇T²KL‖ / (‖∇CE‖ + ‖∇T²KL‖).",
                    "solve λ·a = (1 − λ)·b with a, b the two unweighted norms the explorer's "
                    "right panel shows at your T (explorer.grads[T][:2]); within 0.02")


# --------------------------------------------------------------------------- exercises

EXERCISES = {
    1: _ex1,
    2: (0.25, 1e-4, "compute pitfall_no_T2(...) / kd_loss(...) at lam=0.0, T=2.0 (a ratio near 0.25?)",
        "0.25 = 1/T² at T = 2: the mistake drops the T² factor and nothing else."),
}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)`` or a fixed answer,
graded by :func:`kdlib._checks.check_answer`."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the λ (a number) at which the two weighted gradient norms are equal at the "
             "notebook's ``T``. 2: the ratio ``pitfall_no_T2 / kd_loss`` at λ = 0, T = 2 (a "
             "number)."),
    evidence={"grads": "Exercise 1 only: ``(norm_ce, norm_soft, dot)`` at the notebook's ``T`` "
                       "(``explorer.grads[T]``)."})
