"""Lesson 04a (``notebooks/04a_article_formulas.ipynb``): the article's loss, run as printed.

Everything only notebook 04a uses: its settings (:class:`Settings`, :func:`check_params`); the
runs showing that the article's total loss 3.2.3 is plain training
(:func:`compare_article_with_scaled_lr` under SGD, :func:`compare_lams_by_optimizer` under SGD and
Adam) and their figure (:func:`scaled_lr_curves`); the ``say_*`` sentences that follow the run;
the exercises (:data:`EXERCISES`, :func:`check_exercise`).

The formulas it runs are core: :mod:`kdlib.article` (the article, literally, and its total loss
as a ``loss_fn``, :class:`kdlib.article.ArticleLossFn`). The correct loss and its pitfalls are
notebook 04b's (:mod:`kdlib.lessons.lesson04b_correct_loss`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure
from torch import nn

from kdlib import experiments
from kdlib._checks import (
    LAM,
    TEACHER_CHECKPOINT,
    Each,
    Float,
    Int,
    Param,
    as_number,
    check_lam,
    check_probs,
    exercise_checker,
    settings_checker,
    settings_class,
    validate_params,
    verdict,
)
from kdlib.article import ArticleLossFn
from kdlib.data import unpack_splits
from kdlib.models import max_param_diff
from kdlib.plots import new_figure, smooth
from kdlib.train import TrainSettings

__all__ = [
    "PARAMS", "Settings", "check_params", "ScaledLrRun", "compare_article_with_scaled_lr",
    "scaled_lr_curves", "OptimizerLamRun", "compare_lams_by_optimizer", "say_scaled_lr",
    "say_optimizers", "say_leak", "say_summary", "EXERCISES", "check_exercise",
]


# --------------------------------------------------------------------------- parameters

PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "n_train": Param(Int(500, 55000), "Training images of the students (seed ``seed``'s own sample)."),
    "epochs": Param(Int(1, 100), "SGD epochs of the article-loss runs."),
    "lr": Param(Float(0.0, 10.0, low_open=True), "SGD learning rate of those runs."),
    "student_epochs": Param(Int(1, 100), "Epochs of the validation-leak students."),
    "hidden": Param(Int(1, 4096), "Hidden units of the students."),
    "T": Param(Float(0.0, 100.0, low_open=True), "Temperature of the leak section's distillation."),
    "lam": Param(Float(0.0, 1.0), "The article's λ in the one-run sections."),
    "seed": Param(Int(0), "Seed of the training images, initial weights and batch order of every run."),
}
"""Notebook 04a's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

_POSITIVE = Float(0, low_open=True)  # a learning rate or Adam's eps


@settings_class(PARAMS)
class Settings:
    """Notebook 04a's parameters, validated (made by :func:`check_params`)."""

    @property
    def n_samples(self) -> int:
        """How many per-seed training samples the pool holds (seeds 0 to ``seed``)."""
        return self.seed + 1


check_params = settings_checker(Settings, PARAMS)


# --------------------------------------------------------------------------- the article's loss, trained

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


@validate_params(lams=Each(LAM, min_len=1), lr=_POSITIVE, epochs=Int(low=1), batch_size=Int(low=1),
                 seed=Int(low=0))
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
    train, _, _ = unpack_splits(data)
    probs = check_probs("teacher_probs", teacher_probs)
    if probs.shape[0] != len(train.y):
        raise ValueError(f"teacher_probs has {probs.shape[0]} rows but the training split has "
                         f"{len(train.y)} examples; they must match")

    starts = {}

    def checked_student():  # called by the engine after manual_seed(seed): the same start each time
        model = make_student()
        if not isinstance(model, nn.Module):
            raise TypeError(f"make_student() must return an nn.Module, got {type(model).__name__}")
        starts.setdefault("weights", [p.detach().clone() for p in model.parameters()])
        return model

    def sgd_run(method, step_lr):
        sgd = TrainSettings(epochs=epochs, batch_size=batch_size, optimizer="sgd", momentum=0.0,
                            schedule=None, weight_decay=0.0, lr=step_lr)
        return experiments.train(experiments.Config(checked_student, method, seed, sgd), data)

    runs = []
    for lam in lams:
        loss_fn = ArticleLossFn(probs, lam=lam)
        article, hist_a = sgd_run(experiments.custom("article", lambda s, _, f=loss_fn: (s, f, None)), lr)
        moved = max((float((p.detach() - p0).abs().max())
                     for p, p0 in zip(article.parameters(), starts["weights"])), default=0.0)
        scaled = lr * (1.0 - lam)
        if scaled > 0:
            plain, hist_p = sgd_run(experiments.scratch(), scaled)
            plain_ce = list(hist_p.step_loss)
            weight_diff = max_param_diff(article, plain)
            curve_diff = max(abs(a - b) for a, b in zip(loss_fn.student_ce, plain_ce))
            plain_acc = list(hist_p.val_acc)
        else:
            plain_ce, weight_diff, curve_diff, plain_acc = [], None, None, []
        runs.append(ScaledLrRun(lam=lam, lr=lr, scaled_lr=scaled, article_ce=list(loss_fn.student_ce),
                                plain_ce=plain_ce, max_weight_diff=weight_diff, max_curve_diff=curve_diff,
                                moved=moved, article_val_acc=list(hist_a.val_acc), plain_val_acc=plain_acc))
    return runs


@validate_params(window=Int(low=1))
def scaled_lr_curves(runs, *, window: int = 10, title: str = "") -> Figure:
    """The article's loss against plain training at a scaled learning rate, one panel.

    For every run of :func:`compare_article_with_scaled_lr`: the
    student's per-step cross-entropy under the article's loss (solid line, colour
    ``C<i>``) and under plain cross-entropy at ``lr * (1 - lam)`` (dashed, same
    colour, drawn on top). A run with ``lam = 1`` has no plain run; its article
    curve is drawn in grey. Both curves go through the same moving average
    (``window`` steps, :func:`kdlib.plots.smooth`), so equal curves stay equal.

    Lines are added in order: for each run its solid line, then (if any) its dashed line.

    Parameters
    ----------
    runs : sequence of ScaledLrRun
        From :func:`compare_article_with_scaled_lr`.
    window : int
        Moving-average width in steps, ``>= 1``.
    title : str
        Axes title; ``""`` for the default.

    Returns
    -------
    matplotlib.figure.Figure
        10 × 3.8 inches, legend outside on the right.
    """
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


@dataclass
class OptimizerLamRun:
    """The article's loss trained at two λ from the same start, with one optimizer.

    Attributes
    ----------
    optimizer : str
        ``"sgd"`` (plain, no momentum) or ``"adam"``.
    lr : float
    eps : float or None
        Adam's ε (None for SGD).
    lams : tuple of float
        The two λ compared.
    max_weight_diff : float
        ``max |w(λ_0) - w(λ_1)|`` over all final weights.
    max_weight_change : float
        ``max |w_final - w_initial|`` of the ``λ_0`` run (the scale to compare with).
    val_acc : tuple of float
        Final validation accuracy of the two runs.
    """

    optimizer: str
    lr: float
    eps: float | None
    lams: tuple
    max_weight_diff: float
    max_weight_change: float
    val_acc: tuple

    @property
    def label(self) -> str:
        """``"SGD, lr 0.1"`` or ``"Adam, lr 0.003, eps 1e-08"``."""
        if self.optimizer == "sgd":
            return f"SGD, lr {self.lr:g}"
        return f"Adam, lr {self.lr:g}, eps {self.eps:g}"


def _train_article(model, train, probs, *, lam, optimizer, epochs, batch_size, seed):
    """A plain training loop on the article's loss (no schedule): the steps the optimizer takes."""
    gen = torch.Generator().manual_seed(seed)
    loss_fn = ArticleLossFn(probs, lam=lam)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train.y), generator=gen)
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            optimizer.zero_grad()
            loss_fn(model(train.x[idx]), train.y[idx], idx).backward()
            optimizer.step()
    model.eval()
    return model


@validate_params(sgd_lr=_POSITIVE, adam_lr=_POSITIVE, adam_eps=Each(_POSITIVE), epochs=Int(low=1),
                 batch_size=Int(low=1), seed=Int(low=0))
def compare_lams_by_optimizer(make_student, data, teacher_probs: torch.Tensor, *,
                              lams=(0.0, 0.5), sgd_lr: float = 0.1, adam_lr: float = 3e-3,
                              adam_eps=(1e-8, 1e-20), epochs: int = 2, batch_size: int = 128,
                              seed: int = 0) -> list[OptimizerLamRun]:
    """Train with the article's loss at two λ: with plain SGD, and with Adam at each ε.

    The article's gradient is ``(1 - λ) ∇CE``. Plain SGD steps ``lr (1 - λ) ∇CE``: λ
    changes the step size, so the two λ end at different weights. Adam divides
    each step by a running root-mean-square of the gradient, so the constant
    ``c = 1 - λ`` cancels: ``c m / (sqrt(c² v) + ε) = m / (sqrt(v) + ε / c)``. Only
    ``ε`` feels it, on weights whose gradients are as small as ``ε`` (for images,
    weights of pixels that are almost always 0), and Adam's normalised steps let
    those tiny differences grow. With ``ε`` far below every gradient (1e-20) and
    ``1 - λ`` a power of two (λ = 0, 0.5, 0.75: exact in floating point) the two
    runs end at identical weights.

    Each run is a plain loop (no schedule, no weight decay): both λ of an
    optimizer start from the same weights (``torch.manual_seed(seed)`` before
    ``make_student()``) and see the same batches.

    Parameters
    ----------
    make_student : callable
        ``make_student() -> nn.Module``.
    data : Splits or (train, val) pair
    teacher_probs : torch.Tensor
        The teacher's probabilities on ``data.train``, in data-set order.
    lams : pair of float
        Two λ in ``[0, 1)`` (λ = 1 has a zero gradient).
    sgd_lr, adam_lr : float
        Learning rates, ``> 0``.
    adam_eps : sequence of float
        One Adam run pair per ε (> 0).
    epochs, batch_size, seed : int

    Returns
    -------
    list of OptimizerLamRun
        SGD first, then Adam for each ε.
    """
    if not callable(make_student):
        raise TypeError(f"make_student must be a callable returning an nn.Module, got "
                        f"{type(make_student).__name__}")
    lams = tuple(check_lam(v) for v in lams)
    if len(lams) != 2 or max(lams) >= 1.0:
        raise ValueError(f"lams must be two values in [0, 1), got {lams!r}")
    train, val, _ = unpack_splits(data)
    probs = check_probs("teacher_probs", teacher_probs).detach()
    if probs.shape[0] != len(train.y):
        raise ValueError(f"teacher_probs has {probs.shape[0]} rows but the training split has "
                         f"{len(train.y)} examples; they must match")
    configs = [("sgd", sgd_lr, None)] + [("adam", adam_lr, e) for e in adam_eps]
    out = []
    for name, lr, eps in configs:
        models, accs, start = [], [], None
        for lam in lams:
            torch.manual_seed(seed)
            model = make_student()
            if not isinstance(model, nn.Module):
                raise TypeError(f"make_student() must return an nn.Module, got {type(model).__name__}")
            if start is None:
                start = [p.detach().clone() for p in model.parameters()]
            opt = (torch.optim.SGD(model.parameters(), lr=lr) if name == "sgd"
                   else torch.optim.Adam(model.parameters(), lr=lr, eps=eps))
            _train_article(model, train, probs, lam=lam, optimizer=opt, epochs=epochs,
                           batch_size=batch_size, seed=seed)
            models.append(model)
            if val is None:
                accs.append(float("nan"))
            else:
                with torch.no_grad():
                    accs.append(float((model(val.x).argmax(-1) == val.y).float().mean()))
        with torch.no_grad():
            change = max(float((p - p0).abs().max()) for p, p0 in zip(models[0].parameters(), start))
        out.append(OptimizerLamRun(name, lr, eps, lams, max_param_diff(*models), change, tuple(accs)))
    return out


def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def say_scaled_lr(runs) -> Markdown:
    """What section 3's SGD runs showed: the article's loss against plain training at ``lr (1 − λ)``.

    Parameters
    ----------
    runs : list of ScaledLrRun
        :func:`compare_article_with_scaled_lr`.

    Returns
    -------
    IPython.display.Markdown
    """
    paired = [r for r in runs if r.plain_ce]
    still = [r for r in runs if not r.plain_ce]
    w = max(r.max_weight_diff for r in paired)
    acc = max(abs(r.article_val_acc[-1] - r.plain_val_acc[-1]) for r in paired)
    same = w < 1e-3
    accs = "identical to four decimals" if acc < 5e-5 else f"within {acc:.4f}"
    text = (f"What we saw: for every λ below 1 the two trainings ended within {w:.1e} of each other in "
            f"every weight (float32 rounds the two step sizes slightly differently, and that grows a little "
            f"over the steps) and their validation accuracies were {accs}"
            + (": **the same training up to rounding**." if same else
               ": larger than rounding, so look at the curves before trusting the identity here."))
    if still:
        moved = max(r.moved for r in still)
        text += (f" At λ = 1 the largest change of any weight was {moved:g}"
                 + (": not a single weight moved." if moved == 0 else "."))
    return Markdown(text + " The teacher's probabilities were passed to every article-loss step; under plain "
                    "SGD, choosing λ only tunes a learning rate.")


def say_optimizers(opt_runs) -> Markdown:
    """What section 3's optimizer runs showed: λ under SGD, and under Adam with two ε.

    Parameters
    ----------
    opt_runs : list of OptimizerLamRun
        :func:`compare_lams_by_optimizer` (SGD first).

    Returns
    -------
    IPython.display.Markdown
    """
    parts = []
    for r in opt_runs:
        ident = r.max_weight_diff == 0
        what = ("identical weights: λ did nothing" if ident else f"weights up to {r.max_weight_diff:.2g} "
                f"apart (weights moved up to {r.max_weight_change:.2g})")
        parts.append(f"{r.label}: {what}, validation accuracy {r.val_acc[0]:.4f} against {r.val_acc[1]:.4f}")
    return Markdown("What we saw (one seed, a mechanism check): " + "; ".join(parts) + ". Under SGD λ acts "
                    "as a learning rate; under Adam the factor cancels up to ε, and what remains with the "
                    "default ε is an ε effect on weights whose gradients are as small as ε, not the teacher.")


def say_leak(leaky: dict, honest: dict, val_acc: dict, best: float) -> Markdown:
    """What section 5 showed: a student trained on the validation split against an honest one.

    Parameters
    ----------
    leaky, honest : dict
        ``{"validation": acc, "test": acc}`` of each student.
    val_acc : dict
        λ → validation accuracy of the honest candidates.
    best : float
        The λ chosen on validation.

    Returns
    -------
    IPython.display.Markdown
    """
    gap_l = leaky["validation"] - leaky["test"]
    gap_h = honest["validation"] - honest["test"]
    spread = max(val_acc.values()) - min(val_acc.values())
    order = "much larger than" if gap_l > 2 * max(gap_h, 1e-9) else "not clearly larger than"
    return Markdown(
        f"What we saw (one seed, exploratory): the student trained on the validation split scores "
        f"{_pct(leaky['validation'])} there but {_pct(leaky['test'])} on the test set, a gap of "
        f"{100 * gap_l:+.2f} points, {order} the honest student's {100 * gap_h:+.2f} "
        f"({_pct(honest['validation'])} against {_pct(honest['test'])}, λ = {best:g} chosen on validation). "
        f"A number reported on the split a model was trained on over-estimates it. The three λ candidates' "
        f"validation accuracies span {100 * spread:.2f} points: with one seed that choice is not reliable, "
        f"which is why the primary comparison below chooses by the mean over seeds.")




def _ex1(answer, **_):
    ok = (isinstance(answer, (tuple, list)) and len(answer) == 2
          and all(as_number(a) is not None for a in answer))
    if not ok:
        return verdict(False, "", "answer with a pair of numbers: "
                                   "(fraction under SGD, fraction under Adam)")
    sgd, adam = (as_number(a) for a in answer)
    if abs(sgd - 0.25) > 1e-6:
        return verdict(False, "", "under SGD the step is lr · (1 − λ) · ∇CE: what is 1 − 0.75?")
    return verdict(abs(adam - 1.0) <= 1e-6,
                    "SGD: lr · 0.25; Adam: the full lr, because Adam divides the step by the "
                    "gradient's running RMS, and a constant factor cancels (up to ε).",
                    "SGD is right; under Adam a constant factor on the gradient cancels in "
                    "m / sqrt(v): look at section 3's Adam rows")


def _ex3(answer, **_):
    names = answer if isinstance(answer, (list, tuple)) else None
    ok = names is not None and sorted(map(str, names)) == ["labels", "teacher_probs"]
    return verdict(ok, "article_ce(teacher_probs, labels): the student is not an argument, so it "
                        "cannot get a gradient (defect 1).",
                    "list the argument names, e.g. "
                    "list(inspect.signature(kdlib.article.article_ce).parameters)")


# --------------------------------------------------------------------------- summary and exercises

def say_summary(runs, opt_runs, leak_gaps: dict) -> Markdown:
    """The notebook's summary; its measured parts from this run.

    Parameters
    ----------
    runs : list of ScaledLrRun
        :func:`compare_article_with_scaled_lr`.
    opt_runs : list of OptimizerLamRun
        :func:`compare_lams_by_optimizer`.
    leak_gaps : dict
        ``{"leaky": gap, "honest": gap}``: validation minus test accuracy of each student.

    Returns
    -------
    IPython.display.Markdown
    """
    w = max(r.max_weight_diff for r in runs if r.plain_ce)
    adam = [r for r in opt_runs if not r.label.lower().startswith("sgd")]
    adam_same = adam and all(r.max_weight_diff == 0 for r in adam)
    return Markdown("\n".join([
        "* The article's \"cross-entropy loss\" 3.2.1 holds no student quantity, so it gives the "
        "student no gradient; its \"distillation loss\" 3.2.2 is plain cross-entropy with no teacher "
        "and no temperature.",
        f"* Its total loss 3.2.3 is plain training: under SGD, λ only rescales the learning rate "
        f"(the two trainings ended within {w:.1e} in every weight)"
        + ("; under Adam, λ did nothing at all (identical weights)." if adam_same else
           "; under Adam, λ cancels up to Adam's ε."),
        "* Its code does not parse, ignores λ, and cannot load a smaller student; trained on the "
        f"validation split, a student's validation accuracy ran {100 * leak_gaps['leaky']:+.2f} points "
        f"ahead of its test accuracy, against {100 * leak_gaps['honest']:+.2f} for a student that was not "
        "(one seed).",
        "* Notebook 04b builds the loss distillation needs and measures it against this one."]))


EXERCISES = {
    1: _ex1,
    2: ("grows", None, "answer 'grows', 'shrinks' or 'stays': compare the gap section 5 printed with the one "
                       "your 30-epoch rerun prints",
        "grows: the student trained on the validation images memorises them further, so its validation "
        "accuracy runs further ahead of the test accuracy."),
    3: _ex3,
}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)`` or a fixed answer,
graded by :func:`kdlib._checks.check_answer`."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: a pair ``(sgd_fraction, adam_fraction)``: the learning rate, as a fraction of "
             "``lr``, at which plain training matches the article's loss at λ = 0.75, under plain "
             'SGD and under Adam. 2: ``"grows"``, ``"shrinks"`` or ``"stays"``: the '
             "validation-leak gap at 30 epochs against 12. 3: the names of ``article_ce``'s "
             "arguments (a list of str)."))
