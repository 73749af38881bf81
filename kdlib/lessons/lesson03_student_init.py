"""Lesson module of ``notebooks/03_student_init.ipynb`` (initialising a smaller student).

It holds everything only notebook 03 uses (the strategies themselves are core:
:mod:`kdlib.student_init`):

* its settings, :class:`Settings`, and their check, :func:`check_params`;
* :func:`load_error_summary`, the shortened, stable form of PyTorch's error when
  the article's ``load_state_dict`` meets a smaller student;
* the experiment: :func:`compare_init_strategies` (initialise with each strategy,
  distil, measure, over seeds), :func:`summarize_comparison`,
  :func:`comparison_table`, :func:`strategy_gap`, :func:`arch_label`;
* its figure, :func:`init_comparison`;
* :func:`separate_init_from_kd` (the λ = 1 control: how much of a teacher-derived
  start's lead is the start, how much the KD loss);
* :data:`EXERCISES`, graded by :func:`check_exercise` (a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import copy
import math
import numbers
import re
from dataclasses import dataclass

import numpy as np
from matplotlib.figure import Figure
from torch import nn

from kdlib import experiments
from kdlib._checks import Float, Int, Str, Verdict, check_answer, check_choice, check_float, check_int
from kdlib._checks import check_params as _check_params
from kdlib.metrics import accuracy
from kdlib.models import cnn, count_params, predict
from kdlib.plots import new_figure
from kdlib.results import mean_sd, paired_difference
from kdlib.student_init import STRATEGIES, init_student
from kdlib.train import TrainSettings

__all__ = ["PARAMS", "Settings", "check_params", "load_error_summary", "arch_label",
           "compare_init_strategies", "summarize_comparison", "comparison_table", "strategy_gap",
           "init_comparison",
           "separate_init_from_kd", "EXERCISES", "check_exercise"]


# --------------------------------------------------------------------------- parameters

PARAMS = {
    "checkpoint": Str("a path, or '' for data/teacher.pt"),
    "n_train": Int(100, 55000),
    "epochs": Int(1, 100),
    "long_epochs": Int(1, 100),
    "seeds": Int(1, 20),
    "lam": Float(0.0, 1.0),
    "T": Float(0.0, 100.0, low_open=True),
    "lr": Float(0.0, 1.0, low_open=True),
}


"""Notebook 03's parameters and their allowed values (name → constraint)."""


@dataclass(frozen=True)
class Settings:
    """Notebook 03's parameters, validated (made by :func:`check_params`).

    Attributes
    ----------
    checkpoint : str
        Teacher checkpoint; ``""`` means ``data/teacher.pt``.
    n_train : int
        Transfer-set size, in [100, 55000].
    epochs, long_epochs : int
        Distillation epochs of the main comparison and of the longer run, in [1, 100].
    seeds : int
        Seeds per strategy, in [1, 20].
    lam : float
        Weight of the hard-label term, in [0, 1].
    T : float
        Temperature, in (0, 100].
    lr : float
        Peak learning rate, in (0, 1].
    """

    checkpoint: str
    n_train: int
    epochs: int
    long_epochs: int
    seeds: int
    lam: float
    T: float
    lr: float


def check_params(**params) -> Settings:
    """Validate notebook 03's parameters before any work starts.

    Parameters
    ----------
    **params
        Every parameter of the notebook's ``parameters`` cell, by name (see
        :class:`Settings`).

    Returns
    -------
    Settings
        The parameters, converted (``int``/``float``).

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and the allowed range.
    """
    return Settings(**_check_params(params, PARAMS))


# --------------------------------------------------------------------------- the article's line

def load_error_summary(error: BaseException, *, shown: int = 2) -> str:
    """A shortened, stable form of PyTorch's ``load_state_dict`` error.

    PyTorch lists every tensor whose shape differs, one line each. This keeps
    the first line, the first ``shown`` mismatches verbatim, and names the others.

    Parameters
    ----------
    error : BaseException
        The ``RuntimeError`` raised by ``model.load_state_dict(...)``.
    shown : int
        Mismatch lines kept verbatim, ``>= 0``.

    Returns
    -------
    str
        ``"RuntimeError: Error(s) in loading state_dict for Sequential:"``, the
        kept lines (indented), then ``"... and N more size mismatches: 3.weight, ..."``.
    """
    if not isinstance(error, BaseException):
        raise TypeError(f"error must be an exception, got {error!r} ({type(error).__name__})")
    shown = check_int("shown", shown, low=0)
    first, *details = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    lines = [f"{type(error).__name__}: {first}"] + [f"    {d}" for d in details[:shown]]
    rest = details[shown:]
    if rest:
        names = [m.group(1) if (m := re.match(r"size mismatch for (\S+):", d)) else d.split(":")[0]
                 for d in rest]
        lines.append(f"    ... and {len(rest)} more size mismatch{'es' * (len(rest) != 1)}: "
                     + ", ".join(names))
    return "\n".join(lines)


# --------------------------------------------------------------------------- the experiment

def arch_label(model: nn.Module) -> str:
    """A short name for a kdlib model, e.g. ``"cnn(8,16|32)"`` or ``"mlp(784-64-10)"``.

    Parameters
    ----------
    model : nn.Module
        Built by :func:`kdlib.models.mlp` or :func:`kdlib.models.cnn` (any other
        model is named by its class).

    Returns
    -------
    str
    """
    arch = getattr(model, "kd_arch", None)
    if isinstance(arch, dict) and arch.get("kind") == "mlp":
        return "mlp(" + "-".join(str(s) for s in arch["kwargs"]["sizes"]) + ")"
    if isinstance(arch, dict) and arch.get("kind") == "cnn":
        kw = arch["kwargs"]
        return "cnn(" + ",".join(str(c) for c in kw["channels"]) + f"|{kw['hidden']})"
    return type(model).__name__


RECIPE = {"seeds": 3, "epochs": 3, "lam": 0.5, "T": 4.0, "lr": 3e-3, "batch_size": 128}
"""The default distillation of :func:`compare_init_strategies` (Adam with OneCycle)."""
_RECIPE = {"epochs": Int(low=1), "lam": Float(0.0, 1.0), "T": Float(0.0, low_open=True),
           "lr": Float(0.0, low_open=True), "batch_size": Int(low=1)}


def compare_init_strategies(teacher: nn.Module, student: nn.Module, data, *,
                            strategies=("random", "top-units"), teacher_logits=None, teacher_acc=None,
                            label: str | None = None, **recipe) -> list[dict]:
    """Initialise copies of ``student`` with each strategy, distil them, and measure.

    For every strategy and every seed a fresh deep copy of ``student`` is
    initialised from ``teacher`` with :func:`kdlib.student_init.init_student`, its validation
    accuracy is measured (before any training), then it is distilled by
    :func:`kdlib.experiments.train` on ``data.train`` for ``epochs`` epochs and
    measured again. The seed re-draws the random initialisation (strategy
    ``"random"``: ``init_student(..., seed=s)``) and seeds the batch order and
    dropout of the training; the other strategies start from the same weights
    for every seed. Every pair is checked (a trial ``init_student`` per strategy)
    before the first training starts, so a pair a strategy cannot map raises
    ``ValueError`` at once.

    Parameters
    ----------
    teacher : nn.Module
        Only read.
    student : nn.Module
        A template of the student's architecture; it is never modified.
    data : kdlib.data.Splits
        ``train`` is the transfer set, ``val`` the split every accuracy is
        measured on.
    strategies : sequence of str
        Names from :data:`kdlib.student_init.STRATEGIES` (non-empty, no repeats).
    teacher_logits : Tensor, optional
        ``kdlib.models.predict(teacher, data.train.x)``, computed here if not given.
    teacher_acc : float, optional
        The teacher's validation accuracy, computed here if not given.
    label : str, optional
        Name of the student in the rows (default: :func:`arch_label`).
    **recipe
        Any of :data:`RECIPE`: ``seeds`` (``n`` means ``0, 1, ..., n - 1``, or a sequence),
        ``epochs`` (>= 1), ``lam``, ``T``, ``lr``, ``batch_size`` of the distillation
        (:func:`kdlib.experiments.kd`, Adam with a OneCycle schedule).

    Returns
    -------
    list of dict
        One row per (strategy, seed), in that order: ``{"student", "params",
        "teacher", "teacher_acc", "strategy", "seed", "acc_init", "acc_trained"}``;
        ``params`` is the student's parameter count, accuracies are fractions of
        the validation split.
    """
    for who, model in (("student", student), ("teacher", teacher)):
        if not isinstance(model, nn.Module):
            raise TypeError(f"{who} must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(strategies, str) or not hasattr(strategies, "__len__") or not len(strategies):
        raise ValueError(f"strategies must be a non-empty sequence of names from {STRATEGIES}, "
                         f"got {strategies!r}")
    strategies = [check_choice("strategies", s, STRATEGIES) for s in strategies]
    if len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies={strategies!r} repeats a name")
    unknown = sorted(set(recipe) - set(RECIPE))
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; the recipe is {sorted(RECIPE)}")
    r = {**RECIPE, **recipe}
    seeds = r.pop("seeds")
    if isinstance(seeds, numbers.Integral) and not isinstance(seeds, bool):
        seeds = list(range(check_int("seeds", seeds, low=1)))
    elif isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__") or not len(seeds):
        raise ValueError(f"seeds must be a positive integer or a non-empty sequence of seeds, "
                         f"got {seeds!r}")
    else:
        seeds = [check_int(f"seeds[{i}]", s, low=0) for i, s in enumerate(seeds)]
    r = _check_params(r, _RECIPE)
    for strategy in strategies:  # fail before any training if a pair cannot be mapped
        init_student(copy.deepcopy(student), teacher, strategy)
    if teacher_logits is None:
        teacher_logits = predict(teacher, data.train.x)
    if teacher_acc is None:
        teacher_acc = accuracy(teacher, data.val.x, data.val.y)
    teacher_acc = check_float("teacher_acc", teacher_acc, low=0.0, high=1.0)
    label = arch_label(student) if label is None else str(label)
    t_label, n_params = arch_label(teacher), count_params(student)

    settings = TrainSettings(epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"])
    before = {}

    def starting_point(strategy, seed):
        def build():  # the template, initialised by the strategy, measured before training
            model = copy.deepcopy(student)
            init_student(model, teacher, strategy, **({"seed": seed} if strategy == "random" else {}))
            before[(strategy, seed)] = accuracy(model, data.val.x, data.val.y)
            return model
        return build

    how = experiments.kd(r["lam"], r["T"])
    configs = [experiments.Config(starting_point(strategy, seed), how, seed, settings,
                                  labels={"strategy": strategy}) for strategy in strategies for seed in seeds]
    trained = experiments.train_students(
        configs, (data.train, None), teacher_logits=teacher_logits, progress=False,
        evaluate=lambda model, config, _: {"acc_trained": accuracy(model, data.val.x, data.val.y)})
    return [{"student": label, "params": n_params, "teacher": t_label, "teacher_acc": teacher_acc,
             "strategy": r["strategy"], "seed": r["seed"], "acc_init": before[(r["strategy"], r["seed"])],
             "acc_trained": r["acc_trained"]} for r in trained]


def summarize_comparison(rows) -> list[dict]:
    """Mean and sample standard deviation over seeds of each (student, strategy) of ``rows``.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies` (several calls may be concatenated).

    Returns
    -------
    list of dict
        One per (student, strategy), in order of first appearance: ``{"student",
        "params", "teacher", "teacher_acc", "strategy", "n", "acc_init_mean",
        "acc_init_sd", "acc_trained_mean", "acc_trained_sd"}``. The standard
        deviations are :func:`kdlib.results.sample_sd` (``ddof=1``; ``nan`` for a
        single seed).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty: run compare_init_strategies first")
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["student"], r["strategy"]), []).append(r)
    out = []
    for (student, strategy), group in groups.items():
        entry = {"student": student, "params": group[0]["params"], "teacher": group[0]["teacher"],
                 "teacher_acc": group[0]["teacher_acc"], "strategy": strategy, "n": len(group)}
        for key in ("acc_init", "acc_trained"):
            entry[f"{key}_mean"], entry[f"{key}_sd"] = mean_sd([float(r[key]) for r in group])
        out.append(entry)
    return out


def _pct(mean: float, sd: float) -> str:
    return f"{100 * mean:.1f}" if math.isnan(sd) else f"{100 * mean:.1f} ± {100 * sd:.1f}"


def comparison_table(rows, *, epochs: int | None = None) -> str:
    """A printable table of :func:`summarize_comparison`: accuracies in %, mean ± sd.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies`.
    epochs : int, optional
        Named in the header ("after 3 epochs").

    Returns
    -------
    str
        One line per (student, strategy); with a single seed the accuracies are
        printed without "± sd".
    """
    after = "after training" if epochs is None else f"after {epochs} epoch{'s' * (epochs != 1)}"
    lines = [f"{'student':<22}{'params':>8}  {'strategy':<13}{'n':>2}  {'right after init':>17}"
             f"  {after:>17}  {'teacher':>7}"]
    for s in summarize_comparison(rows):
        init = _pct(s["acc_init_mean"], s["acc_init_sd"])
        trained = _pct(s["acc_trained_mean"], s["acc_trained_sd"])
        lines.append(f"{s['student']:<22}{s['params']:>8,}  {s['strategy']:<13}{s['n']:>2}  "
                     f"{init:>17}  {trained:>17}  {100 * s['teacher_acc']:>7.1f}")
    return "\n".join(lines)


def strategy_gap(rows, student: str, strategy: str, baseline: str = "random", *,
                 key: str = "acc_trained") -> float:
    """Mean accuracy of ``strategy`` minus that of ``baseline`` for one ``student`` of ``rows``.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies`.
    student : str
        The student's label (the ``"student"`` column).
    strategy, baseline : str
        The two strategies compared.
    key : {"acc_trained", "acc_init"}
        After distillation, or right after initialisation.

    Returns
    -------
    float
        A fraction; positive means ``strategy`` did better on average.
    """
    check_choice("key", key, ("acc_trained", "acc_init"))
    mean = {s["strategy"]: s[f"{key}_mean"] for s in summarize_comparison(rows)
            if s["student"] == student}
    if not mean:
        students = sorted({r["student"] for r in rows})
        raise ValueError(f"student={student!r} is not in rows; they hold {students}")
    for name in (strategy, baseline):
        if name not in mean:
            raise ValueError(f"rows hold no strategy {name!r} for student {student!r}; they hold "
                             f"{sorted(mean)}")
    return mean[strategy] - mean[baseline]


# --------------------------------------------------------------------------- figure

def init_comparison(rows, *, epochs: int | None = None, chance: float | None = None,
                    title: str = "") -> Figure:
    """Validation accuracy per initialisation strategy, right after init and after training.

    One panel per student (in order of first appearance in ``rows``). In each
    panel every strategy gets two bars, the mean over seeds right after
    initialisation and after distillation, with ± one sample standard deviation
    as error bars (none for a single seed) and every seed's value as a black dot; the teacher's accuracy is
    a dashed line (its value written above it) and ``chance`` (if given) a dotted
    one. The legend is the figure's (``fig.legends[0]``), below the panels.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies` (several calls
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
    table = summarize_comparison(rows)
    if chance is not None:
        chance = check_float("chance", chance, low=0.0, high=1.0)
    rows = list(rows)
    students = list(dict.fromkeys(s["student"] for s in table))
    n_max = max(sum(s["student"] == name for s in table) for name in students)
    fig, ax = new_figure(max(4.0, 1.0 + 1.4 * n_max) * len(students), 3.8, ncols=len(students))
    after = "after training" if epochs is None else f"after {epochs} epoch{'s' * (epochs != 1)}"
    width = 0.38
    for a, name in zip(ax[0], students):
        entries = [s for s in table if s["student"] == name]
        pos = np.arange(len(entries))
        for offset, key, colour, label in ((-width / 2, "acc_init", "C0", "right after init"),
                                           (width / 2, "acc_trained", "C1", after)):
            a.bar(pos + offset, [e[f"{key}_mean"] for e in entries], width,
                  yerr=[np.nan_to_num(e[f"{key}_sd"]) for e in entries],  # no bar for one seed
                  capsize=3, color=colour, alpha=0.85, label=label)
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


# --------------------------------------------------------------------------- initialisation or distillation?

def _by_seed(rows, student: str, strategy: str) -> dict:
    return {r["seed"]: float(r["acc_trained"]) for r in rows
            if r["student"] == student and r["strategy"] == strategy}


def separate_init_from_kd(kd_rows, plain_rows, student: str, strategy: str,
                          baseline: str = "random") -> dict:
    """Split a teacher-derived start's lead into what the start gives and what the KD loss gives.

    ``kd_rows`` are students distilled with the KD loss (λ < 1), ``plain_rows`` the
    same students trained on hard labels only (λ = 1, the teacher's logits play no
    part): a 2 × 2 design, start (``strategy`` or ``baseline``) × loss (KD or plain).
    The same seeds pair the rows (same batch order; for ``"random"`` the same
    initial weights).

    Parameters
    ----------
    kd_rows, plain_rows : list of dict
        Rows of :func:`compare_init_strategies` with the KD loss, and with ``lam=1``.
    student : str
        The student's label.
    strategy, baseline : str
        The teacher-derived strategy and the start it is compared with.

    Returns
    -------
    dict
        ``"init_gain_kd"``, ``"init_gain_plain"``: :class:`kdlib.results.PairedDifference`
        of ``strategy`` minus ``baseline`` under each loss; ``"kd_gain_<strategy>"``,
        ``"kd_gain_<baseline>"``: KD minus plain for each start; all fractions.
    """
    cells = {}
    for loss, rows in (("kd", kd_rows), ("plain", plain_rows)):
        for name in (strategy, baseline):
            cells[loss, name] = _by_seed(rows, student, name)
            if not cells[loss, name]:
                raise ValueError(f"no rows for student {student!r}, strategy {name!r} in the {loss} rows")
    seeds = sorted(set.intersection(*(set(v) for v in cells.values())))
    if not seeds:
        raise ValueError("the four groups share no seed; run them with the same seeds")

    def diff(a, b):
        return paired_difference([cells[a][s] for s in seeds], [cells[b][s] for s in seeds])

    return {"init_gain_kd": diff(("kd", strategy), ("kd", baseline)),
            "init_gain_plain": diff(("plain", strategy), ("plain", baseline)),
            f"kd_gain_{strategy}": diff(("kd", strategy), ("plain", strategy)),
            f"kd_gain_{baseline}": diff(("kd", baseline), ("plain", baseline))}


# --------------------------------------------------------------------------- exercise checks

def _verdict(ok: bool, right: str, hint: str) -> tuple[bool, str]:
    return bool(ok), (right if ok else hint)


def _ex1(answer, *, rows=None, epochs=None, **_):
    if rows is None or epochs is None:
        raise ValueError("exercise 1 needs rows=rows, epochs=epochs (the notebook's)")
    word = str(answer).strip().lower()
    if word not in ("yes", "no"):
        return _verdict(False, "", "answer 'yes' or 'no'")
    table = summarize_comparison(rows)
    students = list(dict.fromkeys(s["student"] for s in table))
    ahead = all(strategy_gap(rows, name, s["strategy"]) > 0 for name in students
                for s in table if s["student"] == name and s["strategy"] != "random")
    note = "" if epochs >= 10 else (f" (these rows are after {epochs} epochs; rerun with "
                                    f"-p epochs 10 to answer the question as asked)")
    return _verdict((word == "yes") == ahead,
                    f"after {epochs} epochs the teacher-derived start is "
                    f"{'ahead on every student' if ahead else 'not ahead on every student'}{note}.",
                    f"compare each student's rows in the table printed by your run{note}")


def _ex2(answer, *, teacher=None, data=None, **_):
    if teacher is None or data is None:
        raise ValueError("exercise 2 needs teacher=teacher, data=data")
    student = init_student(_small_cnn(), teacher, "top-units", importance="incoming")
    want = accuracy(student, data.val.x, data.val.y)
    default = accuracy(init_student(_small_cnn(), teacher, "top-units"), data.val.x, data.val.y)
    ok = isinstance(answer, (int, float)) and not isinstance(answer, bool) and abs(answer - want) <= 2e-3
    better = "better" if want > default else "worse"
    return _verdict(ok, f"{want:.3f} right after init, {better} than the default 'product' "
                        f"ranking's {default:.3f}.",
                    "answer with the accuracy as a fraction (e.g. 0.42), measured with "
                    "kdlib.metrics.accuracy(student, data.val.x, data.val.y)")


def _ex3(answer, **_):
    return _verdict(str(answer).strip().strip("'\"") == "top-units",
                    "'top-units': layer-subset keeps the teacher's widths and drops layers, but the "
                    "small CNN has the teacher's depth and narrower layers.",
                    "read the end of the ValueError's message: which strategy does it suggest?")


def _ex4(answer, *, kd_rows=None, plain_rows=None, **_):
    if kd_rows is None or plain_rows is None:
        raise ValueError("exercise 4 needs kd_rows=rows, plain_rows=plain_rows")
    narrow = "mlp(784-64-64-64-10)"
    want = 100 * strategy_gap(plain_rows, narrow, "top-units")
    ok = isinstance(answer, (int, float)) and not isinstance(answer, bool) and abs(answer - want) <= 0.15
    with_kd = 100 * strategy_gap(kd_rows, narrow, "top-units")
    return _verdict(ok, f"{want:.1f} points with hard labels only, against {with_kd:.1f} with the KD loss: "
                        f"the start, not the teacher's soft targets, carries the lead.",
                    "mean accuracy of top-units minus that of random for the narrow MLP in the λ = 1 "
                    "table, in points (e.g. 3.2)")




EXERCISES = {1: _ex1, 2: _ex2, 3: _ex3, 4: _ex4}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)``, graded by
:func:`kdlib._checks.check_answer`."""


def check_exercise(n: int, answer, *, rows=None, epochs: int | None = None, teacher=None, data=None,
                   kd_rows=None, plain_rows=None) -> Verdict:
    """Check the answer to exercise ``n`` of notebook 03; never raises on a wrong answer.

    Parameters
    ----------
    n : int
        1 to 4.
    answer
        1: ``"yes"`` or ``"no"``: after ``epochs`` epochs, is top-units (or
        layer-subset) ahead of random on every student of ``rows``? 2: the
        validation accuracy (a fraction) of the small CNN right after
        ``init_student(..., "top-units", importance="incoming")``. 3: the strategy
        the ``layer-subset`` error message suggests (a str). 4: the narrow MLP's
        top-units lead over random with hard labels only (λ = 1), in points.
        ``None`` (the placeholder) says what to do.
    rows, epochs
        Exercise 1: the notebook's ``rows`` and ``epochs``.
    teacher, data
        Exercise 2: the notebook's teacher and data (the check computes the accuracy).
    kd_rows, plain_rows
        Exercise 4: the main comparison's rows and the λ = 1 rows.

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``; truthy when right.

    Raises
    ------
    ValueError
        For an exercise that does not exist, or one answered without its evidence.
    """
    return check_answer(EXERCISES, n, answer, rows=rows, epochs=epochs, teacher=teacher, data=data,
                        kd_rows=kd_rows, plain_rows=plain_rows)


def _small_cnn():
    """The notebook's small CNN student, cnn(channels=(8, 16), hidden=32)."""
    return cnn(channels=(8, 16), hidden=32)
