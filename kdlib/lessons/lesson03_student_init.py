"""Lesson module of ``notebooks/03_student_init.ipynb`` (initialising a smaller student).

It holds everything only notebook 03 uses (the strategies themselves are core:
:mod:`kdlib.student_init`):

* its settings, :class:`Settings`, and their check, :func:`check_params`;
* :func:`load_error_summary`, the shortened, stable form of PyTorch's error when
  the article's ``load_state_dict`` meets a smaller student;
* the experiment: :func:`compare_init_strategies` (initialise with each strategy,
  distil, measure, over seeds, each seed its own sample), :func:`summarize_comparison`,
  :func:`comparison_frame`, :func:`strategy_gap`, :func:`arch_label`;
* the primary comparison, :func:`primary_comparison` (drawn by :func:`kdlib.plots.dot_plot`),
  and the "what we saw" sentences rendered from the run (``say_*``);
* :func:`separate_init_from_kd` (the λ = 1 control: how much of a teacher-derived
  start's lead is the start, how much the KD loss);
* :data:`EXERCISES`, graded by :func:`check_exercise` (a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import copy
import math
import re

import numpy as np
import pandas as pd
from IPython.display import Markdown
from torch import nn

from kdlib import experiments, results
from kdlib._checks import (
    SEEDS,
    TEACHER_CHECKPOINT,
    Each,
    Float,
    Int,
    OneOf,
    Optional,
    Param,
    exercise_checker,
    settings_checker,
    settings_class,
    validate_params,
    verdict,
)
from kdlib._checks import check_params as _check_params
from kdlib.data import stratified_split
from kdlib.metrics import accuracy
from kdlib.models import cnn, count_params, predict
from kdlib.results import mean_sd, paired_difference
from kdlib.student_init import STRATEGIES, init_student
from kdlib.train import TrainSettings

__all__ = ["PARAMS", "Settings", "check_params", "load_error_summary", "arch_label",
           "compare_init_strategies", "summarize_comparison", "comparison_frame", "strategy_gap",
           "PRIMARY", "primary_comparison", "say_starts", "say_start_or_loss", "say_longer",
           "say_summary",
           "separate_init_from_kd", "EXERCISES", "check_exercise"]


# --------------------------------------------------------------------------- parameters

PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "n_train": Param(Int(100, 55000), "Transfer-set size."),
    "epochs": Param(Int(1, 100), "Distillation epochs of the main comparison."),
    "long_epochs": Param(Int(1, 100), "Distillation epochs of the longer run."),
    "seeds": Param(Int(1, 20), "Seeds per strategy."),
    "lam": Param(Float(0.0, 1.0), "Weight of the hard-label term."),
    "T": Param(Float(0.0, 100.0, low_open=True), "Temperature of the KD loss."),
    "lr": Param(Float(0.0, 1.0, low_open=True), "Peak learning rate of the students."),
}


"""Notebook 03's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""


@settings_class(PARAMS)
class Settings:
    """Notebook 03's parameters, validated (made by :func:`check_params`)."""


check_params = settings_checker(Settings, PARAMS)


# --------------------------------------------------------------------------- the article's line

@validate_params(shown=Int(low=0))
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


RECIPE = {"seeds": 3, "epochs": 3, "lam": 0.5, "T": 4.0, "lr": 3e-3, "batch_size": 128, "n_train": None}
"""The default distillation of :func:`compare_init_strategies` (Adam with OneCycle)."""
_RECIPE = {"epochs": Int(low=1), "lam": Float(0.0, 1.0), "T": Float(0.0, low_open=True),
           "lr": Float(0.0, low_open=True), "batch_size": Int(low=1),
           "n_train": Optional(Int(low=1))}


@validate_params(strategies=Each(OneOf(*STRATEGIES), min_len=1), teacher_acc=Optional(Float(0, 1)))
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
        (:func:`kdlib.experiments.kd`, Adam with a OneCycle schedule), and ``n_train``: each
        seed ``s`` distils on its own stratified sample of that many images of ``data.train``
        (drawn with ``s``; ``None``: all of them, the same for every seed).

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
    if len(set(strategies)) != len(strategies):
        raise ValueError(f"strategies={strategies!r} repeats a name")
    unknown = sorted(set(recipe) - set(RECIPE))
    if unknown:
        raise TypeError(f"unknown option {unknown[0]!r}; the recipe is {sorted(RECIPE)}")
    r = {**RECIPE, **recipe}
    seeds = SEEDS("seeds", r.pop("seeds"))
    r = _check_params(r, _RECIPE)
    for strategy in strategies:  # fail before any training if a pair cannot be mapped
        init_student(copy.deepcopy(student), teacher, strategy)
    if teacher_logits is None:
        teacher_logits = predict(teacher, data.train.x)
    if teacher_acc is None:
        teacher_acc = accuracy(teacher, data.val.x, data.val.y)
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
    sample = {seed: _sample(data.train.y, r["n_train"], seed) for seed in seeds}
    configs = [experiments.Config(starting_point(strategy, seed), how, seed, settings, rows=sample[seed],
                                  labels={"strategy": strategy}) for strategy in strategies for seed in seeds]
    trained = experiments.train_students(
        configs, (data.train, None), teacher_logits=teacher_logits, progress=False,
        evaluate=lambda model, config, _: {"acc_trained": accuracy(model, data.val.x, data.val.y)})
    return [{"student": label, "params": n_params, "teacher": t_label, "teacher_acc": teacher_acc,
             "strategy": r["strategy"], "seed": r["seed"], "acc_init": before[(r["strategy"], r["seed"])],
             "acc_trained": r["acc_trained"]} for r in trained]


def _sample(y, n: int | None, seed: int):
    """Seed ``seed``'s stratified sample of ``n`` training rows (``None``: all rows)."""
    if n is None:
        return None
    if n > len(y):
        raise ValueError(f"n_train={n} is out of range; allowed: [1, {len(y)}] (the training split's size)")
    keep, _ = stratified_split(y.numpy(), n, np.random.default_rng(seed))
    return tuple(int(i) for i in np.sort(keep))


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


def comparison_frame(rows, *, epochs: int | None = None):
    """The table of :func:`summarize_comparison`, accuracies in % (mean ± sd over seeds).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies`.
    epochs : int, optional
        Named in the header ("after 3 epochs").

    Returns
    -------
    pandas.io.formats.style.Styler
        One row per (student, strategy); shows as an HTML table in the notebook.
    """
    after = "after training" if epochs is None else f"after {epochs} epoch{'s' * (epochs != 1)}"

    def pct(mean, sd):
        return f"{100 * mean:.1f}" if math.isnan(sd) else f"{100 * mean:.1f} ± {100 * sd:.1f}"

    table = pd.DataFrame([{"student": x["student"], "params": f"{x['params']:,}", "strategy": x["strategy"],
                           "n": x["n"], "right after init (%)": pct(x["acc_init_mean"], x["acc_init_sd"]),
                           f"{after} (%)": pct(x["acc_trained_mean"], x["acc_trained_sd"]),
                           "teacher (%)": f"{100 * x['teacher_acc']:.1f}"}
                          for x in summarize_comparison(rows)])
    return table.style.hide(axis="index")


@validate_params(key=OneOf("acc_trained", "acc_init"))
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


# --------------------------------------------------------------------------- the primary comparison
PRIMARY = ("cnn(8,16|32)", "top-units", "random")
"""The notebook's primary comparison: (student, strategy, baseline), after distillation."""


def primary_comparison(rows, *, student: str = PRIMARY[0], strategy: str = PRIMARY[1],
                       baseline: str = PRIMARY[2]):
    """Validation accuracy after distillation of ``strategy`` against ``baseline`` for one student,
    paired by seed (:func:`kdlib.results.compare`).

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies`.
    student, strategy, baseline : str

    Returns
    -------
    pandas.DataFrame
        The comparison table (draw it with :func:`kdlib.plots.dot_plot`).
    """
    mine = [r for r in rows if r["student"] == student and r["strategy"] in (strategy, baseline)]
    if not mine:
        held = sorted({r["student"] for r in rows})
        raise ValueError(f"rows hold no student {student!r}; they hold {held}")
    return results.compare(mine, by="strategy", metric="acc_trained", reference=baseline)


# --------------------------------------------------------------------------- what we saw
def _gain(rows, student, strategy, key="acc_trained", baseline="random"):
    a, b = _by_seed(rows, student, strategy, key), _by_seed(rows, student, baseline, key)
    seeds = sorted(set(a) & set(b))
    return paired_difference([a[s] for s in seeds], [b[s] for s in seeds])


def say_starts(rows, *, epochs: int, n_train: int, chance: float = 0.1) -> Markdown:
    """What the first tables showed: each start right after initialisation, each lead after
    ``epochs`` epochs of distillation (paired intervals), the primary comparison's verdict.

    Parameters
    ----------
    rows : list of dict
        Rows of :func:`compare_init_strategies` (all students).
    epochs, n_train : int
        The budget of the run (named in the text).
    chance : float
        Accuracy of guessing.

    Returns
    -------
    IPython.display.Markdown
    """
    summary = summarize_comparison(rows)
    seeds = max(x["n"] for x in summary)
    start = {(x["student"], x["strategy"]): x for x in summary}
    randoms = ", ".join(f"{100 * x['acc_init_mean']:.1f} %" for x in summary if x["strategy"] == "random")
    derived = [x for x in summary if x["strategy"] != "random"]
    lines = [f"What we saw, with the budget first: **{epochs}-epoch students on {n_train:,} images**, "
             f"{seeds} seeds (each seed its own sample of images). A short budget is where a head start "
             "matters most; the next sections ask how much of it survives longer training, and how much "
             "of it is the start rather than the distillation loss.", "",
             f"**Right after initialisation** the random students score {randoms} (chance: "
             f"{100 * chance:.0f} %). With no training at all, " + "; ".join(
                 f"{x['strategy']} starts `{x['student']}` at **{100 * x['acc_init_mean']:.1f} %**"
                 for x in derived) + "."]
    broken = [x for x in derived if x["strategy"] == "layer-subset" and x["acc_init_mean"] < chance + 0.05]
    if broken:
        lines.append("Layer-subset starts close to chance: with a layer dropped, a kept layer now "
                     "reads the output of another layer than the one it was trained on, so the network's "
                     "function is broken although every kept weight is the teacher's.")
    lines += ["", f"**After {epochs} epochs of distillation** (validation accuracy, paired by seed):", ""]
    for x in derived:
        d = _gain(rows, x["student"], x["strategy"]).describe("the " + x["strategy"] + " start")
        ref = start[(x["student"], "random")]
        lines.append(f"* `{x['student']}`: {x['strategy']} {100 * x['acc_trained_mean']:.1f} % against "
                     f"random {100 * ref['acc_trained_mean']:.1f} %; {d}.")
    p = _gain(rows, PRIMARY[0], PRIMARY[1])
    lines += ["", f"**The primary comparison** (`{PRIMARY[0]}`, {PRIMARY[1]} − {PRIMARY[2]}): "
              f"{p.describe(f'the {PRIMARY[1]} start')}."]
    late = [x for x in derived if x["acc_init_mean"] < chance + 0.05
            and _gain(rows, x["student"], x["strategy"]).verdict == "helped"]
    if late:
        lines.append("Accuracy right after init is a poor guide to accuracy after training: "
                     + ", ".join(f"{x['strategy']} (`{x['student']}`)" for x in late)
                     + " started close to chance and still ended ahead of random.")
    return Markdown("\n".join(lines))


def say_start_or_loss(kd_rows, plain_rows, pairs, *, lam: float, epochs: int) -> Markdown:
    """What the λ = 1 control showed: the start's lead without the teacher in the loss, and
    what the KD loss adds to each start (paired intervals).

    Parameters
    ----------
    kd_rows, plain_rows : list of dict
        Rows with the KD loss and with ``lam=1``.
    pairs : sequence of (student, strategy)
    lam : float
        The KD rows' λ.
    epochs : int

    Returns
    -------
    IPython.display.Markdown
    """
    lines, carried = [], []
    for student, strategy in pairs:
        parts = separate_init_from_kd(kd_rows, plain_rows, student, strategy)
        plain, kd, own = parts["init_gain_plain"], parts["init_gain_kd"], parts[f"kd_gain_{strategy}"]
        carried.append(plain.verdict == "helped")
        lines.append(f"* `{student}`, {strategy} − random: without the teacher in the loss (λ = 1) "
                     f"{plain.describe('the start')}; with the KD loss (λ = {lam:g}) "
                     f"{kd.format(digits=1)}. What the KD loss adds: to the {strategy} start "
                     f"{own.format(digits=1)} ({own.verdict}), "
                     f"to the random start {parts['kd_gain_random'].format(digits=1)} "
                     f"({parts['kd_gain_random'].verdict}).")
    if all(carried):
        head = (f"What we saw: **the start carries the lead** after {epochs} epochs: it stays without the "
                "teacher in the loss, so it is the teacher's weights in the start, not distillation.")
    else:
        head = ("What we saw: the λ = 1 control did not show the lead for every start without the teacher "
                "in the loss; read each line's interval.")
    return Markdown("\n".join([head, ""] + lines + ["", "(Whether the KD loss helps a student, and at "
                                                    "which λ and T, is the subject of notebook 05.)"]))


def say_longer(rows, long_rows, *, student: str, strategy: str, epochs: int, long_epochs: int) -> Markdown:
    """What the longer run showed: each start's accuracy, and the lead after ``epochs`` and after
    ``long_epochs`` epochs with its interval.

    Parameters
    ----------
    rows, long_rows : list of dict
        The short and the long run's rows.
    student, strategy : str
    epochs, long_epochs : int

    Returns
    -------
    IPython.display.Markdown
    """
    s = {x["strategy"]: x for x in summarize_comparison(long_rows) if x["student"] == student}
    short, long = _gain(rows, student, strategy), _gain(long_rows, student, strategy)
    rand, mine = 100 * s["random"]["acc_trained_mean"], 100 * s[strategy]["acc_trained_mean"]
    text = (f"What we saw: after {long_epochs} epochs the random `{student}` reaches {rand:.1f} % and "
            f"{strategy} {mine:.1f} % (its teacher: {100 * s['random']['teacher_acc']:.1f} %). The lead was "
            f"{short.format(digits=1)} after {epochs} epochs and is {long.format(digits=1)} after "
            f"{long_epochs}: " + ("it shrank" if long.mean < short.mean else "it did not shrink")
            + (", and it is still there." if long.verdict == "helped" else ", and a lead is no longer shown.")
            )
    return Markdown(text)


def say_summary(rows, plain_rows, long_rows, pairs, *, epochs: int, long_epochs: int) -> Markdown:
    """The notebook's three-line summary, its claims read off this run's intervals.

    Parameters
    ----------
    rows, plain_rows, long_rows : list of dict
        The KD rows, the λ = 1 rows and the longer run's rows.
    pairs : sequence of (student, strategy)
        The MLP pairs of the λ = 1 control; the last one is the longer run's.
    epochs, long_epochs : int

    Returns
    -------
    IPython.display.Markdown
    """
    primary = _gain(rows, PRIMARY[0], PRIMARY[1])
    carried = all(separate_init_from_kd(rows, plain_rows, s, k)["init_gain_plain"].verdict == "helped"
                  for s, k in pairs)
    student, strategy = pairs[-1]
    short, long = _gain(rows, student, strategy), _gain(long_rows, student, strategy)
    first = ("* The article's `load_state_dict` copies a teacher into a twin of itself; a smaller student "
             "needs a rule for which weights go where (top-units, layer-subset).")
    second = (f"* After {epochs} epochs, {primary.describe('the top-units start of the small CNN')}; "
              + ("the λ = 1 control shows that the start, not the KD loss, carries the MLP students' leads."
                 if carried else "the λ = 1 control did not show the start's lead for every MLP student."))
    third = (f"* With {long_epochs} epochs the narrow MLP's lead went from {short.format(digits=1)} to "
             f"{long.format(digits=1)}: quote a start's benefit with its budget, and measure it over seeds.")
    return Markdown("\n".join([first, second, third]))


def _by_seed(rows, student: str, strategy: str, key: str = "acc_trained") -> dict:
    return {r["seed"]: float(r[key]) for r in rows if r["student"] == student and r["strategy"] == strategy}


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


def _ex1(answer, *, rows=None, epochs=None, **_):
    if rows is None or epochs is None:
        raise ValueError("exercise 1 needs rows=rows, epochs=epochs (the notebook's)")
    word = str(answer).strip().lower()
    if word not in ("yes", "no"):
        return verdict(False, "", "answer 'yes' or 'no'")
    table = summarize_comparison(rows)
    students = list(dict.fromkeys(s["student"] for s in table))
    ahead = all(strategy_gap(rows, name, s["strategy"]) > 0 for name in students
                for s in table if s["student"] == name and s["strategy"] != "random")
    note = "" if epochs >= 10 else (f" (these rows are after {epochs} epochs; rerun with "
                                    f"-p epochs 10 to answer the question as asked)")
    return verdict((word == "yes") == ahead,
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
    return verdict(ok, f"{want:.3f} right after init, {better} than the default 'product' "
                        f"ranking's {default:.3f}.",
                    "answer with the accuracy as a fraction (e.g. 0.42), measured with "
                    "kdlib.metrics.accuracy(student, data.val.x, data.val.y)")


def _ex3(answer, **_):
    return verdict(str(answer).strip().strip("'\"") == "top-units",
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
    return verdict(ok, f"{want:.1f} points with hard labels only, against {with_kd:.1f} with the KD loss: "
                        f"the start, not the teacher's soft targets, carries the lead.",
                    "mean accuracy of top-units minus that of random for the narrow MLP in the λ = 1 "
                    "table, in points (e.g. 3.2)")




EXERCISES = {1: _ex1, 2: _ex2, 3: _ex3, 4: _ex4}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)``, graded by
:func:`kdlib._checks.check_answer`."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=('1: ``"yes"`` or ``"no"``: after ``epochs`` epochs, is top-units (or layer-subset) '
             "ahead of random on every student of ``rows``? 2: the validation accuracy (a "
             'fraction) of the small CNN right after ``init_student(..., "top-units", '
             'importance="incoming")``. 3: the strategy the ``layer-subset`` error message '
             "suggests (a str). 4: the narrow MLP's top-units lead over random with hard labels "
             "only (λ = 1), in points."),
    evidence={"rows, epochs": "Exercise 1: the notebook's ``rows`` and ``epochs``.",
              "teacher, data": "Exercise 2: the notebook's teacher and data (the check computes "
                               "the accuracy).",
              "kd_rows, plain_rows": "Exercise 4: the main comparison's rows and the λ = 1 rows."})


def _small_cnn():
    """The notebook's small CNN student, cnn(channels=(8, 16), hidden=32)."""
    return cnn(channels=(8, 16), hidden=32)
