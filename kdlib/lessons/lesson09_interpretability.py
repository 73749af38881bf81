"""Lesson module of ``notebooks/09_interpretability.ipynb`` (can a distilled student be explained?).

Holds everything only that notebook uses: its settings (:class:`Settings`, made by
:func:`check_params`, with the quick ones), the
experiment that trains the readable students (a linear softmax regression and a soft
decision tree, each on hard labels and distilled from the teacher, and scikit-learn
decision trees fitted to labels or to the teacher's probabilities over a range of
depths), the verdict table, the figures (class templates, the tree's filters, a path
drawn as a tree), the explanation widget and the exercises (:data:`EXERCISES`, graded by
:func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor, export_text

from kdlib import data as kdata
from kdlib import experiments, models, results, train
from kdlib._checks import (
    QUICK_RUN,
    TEACHER_CHECKPOINT,
    Float,
    Int,
    Param,
    exercise_checker,
    settings_checker,
    settings_class,
)
from kdlib.losses import kd_loss, soft_targets
from kdlib.metrics import accuracy_from_logits, agreement_from_logits
from kdlib.plots import new_figure
from kdlib.results import mean_sd, paired_difference
from kdlib.widgets import show_in

PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "n_train": Param(Int(200, 50000), "Training images per seed."),
    "epochs": Param(Int(1, 100), "Epochs of the linear student and the soft tree."),
    "seeds": Param(Int(1, 10), "Seeds (each its own training subset)."),
    "lam": Param(Float(0.0, 1.0), "Weight of the hard-label term of ``kd_loss``."),
    "T": Param(Float(0.0, 20.0, low_open=True), "Temperature of ``kd_loss``."),
    "tree_depth": Param(Int(1, 8), "Depth of the soft decision tree."),
    "max_depth": Param(Int(2, 14), "Deepest scikit-learn tree."),
    "quick": QUICK_RUN,
}
"""Notebook 09's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

QUICK = {"n_train": 600, "epochs": 1, "seeds": 2, "tree_depth": 2, "max_depth": 3}
"""What ``quick=True`` overrides: a smoke run of seconds."""

STUDENTS = ("linear", "soft tree")
TARGETS = ("labels", "teacher")
LINEAR_LRS = (1e-2, 3e-2, 1e-1)
"""Learning rates tried for the linear student, on labels and distilled alike; each keeps the
one with the best validation fidelity (:func:`kdlib.experiments.choose`)."""
TREE_LR = 5e-2
"""Learning rate of the soft tree (fixed: the soft tree's comparisons are exploratory)."""
N_VAL = 2000
"""Validation images per seed (carved from the training pool, never from the test set)."""
TREE_DEPTHS = (2, 3, 4, 6, 8, 10, 12, 14)
"""Depths of the scikit-learn trees (those up to ``max_depth``)."""
TREE_PENALTY = 0.1
"""Weight of the soft tree's balance penalty (set it to 0 to see the routing saturate early,
leaving whole subtrees unused and the tree far less accurate)."""
TREE_T = 1.0
"""Temperature of the probabilities a scikit-learn regression tree is fitted to."""


@settings_class(PARAMS)
class Settings:
    """Notebook 09's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""


check_params = settings_checker(Settings, PARAMS, quick=QUICK)


# ------------------------------------------------------------------ the experiment
@dataclass
class Experiment:
    """Everything the notebook shows, computed once by :func:`run_experiment`.

    ``rows`` holds one dict per (student, targets, seed) with ``acc`` and ``fidelity``
    (agreement with the teacher) on the test set, the linear students at their chosen
    learning rate (``tuning`` holds every learning rate's row, with the validation scores);
    soft-tree rows add ``acc_max_leaf``, ``fidelity_max_leaf`` and ``leaves_90`` (mean
    number of leaves that carry 90 % of an image's path probability). ``tree_rows`` one dict
    per (depth, targets, seed) for the scikit-learn trees, with ``leaves``. ``models`` keeps
    the seed-0 students for the figures and the widget, ``trees`` the seed-0 scikit-learn
    trees by (depth, targets).

    Attributes
    ----------
    rows : list of dict
        ``student``, ``targets``, ``seed``, ``acc``, ``fidelity`` (and the soft-tree keys), fractions.
    tree_rows : list of dict
        ``depth``, ``targets``, ``seed``, ``acc``, ``fidelity``, ``leaves``.
    teacher_acc : float
        The teacher's test accuracy, in [0, 1].
    models : dict
        ``(student, targets)`` → the seed-0 trained model.
    trees : dict
        ``(depth, targets)`` → the seed-0 fitted scikit-learn tree.
    test : kdlib.data.Split
        The test set.
    teacher_test_logits : torch.Tensor
        The teacher's logits on it, ``(10000, 10)``.
    classes : tuple of str
        Class names.
    depths : tuple of int
        The :data:`TREE_DEPTHS` fitted (those ``<= max_depth``).
    tuning : list of dict
        One per linear student trained: ``targets``, ``lr``, ``seed``, ``val_acc``,
        ``val_fidelity``, ``acc``, ``fidelity``.
    lr : dict
        ``targets`` → the learning rate chosen on the validation split.
    n_train, epochs, tree_depth : int
        The budget of the run.
    lam, T : float
        The distilled students' λ and temperature.
    """

    rows: list
    tree_rows: list
    teacher_acc: float
    models: dict = field(default_factory=dict)
    trees: dict = field(default_factory=dict)
    test: object = None
    teacher_test_logits: torch.Tensor | None = None
    classes: tuple = ()
    depths: tuple = ()
    tuning: list = field(default_factory=list)
    lr: dict = field(default_factory=dict)
    n_train: int = 0
    epochs: int = 0
    lam: float = 0.0
    T: float = 1.0
    tree_depth: int = 0


def build_student(kind: str, tree_depth: int):
    """A fresh student: ``"linear"`` (softmax regression) or ``"soft tree"`` of ``tree_depth``.

    Parameters
    ----------
    kind : str
        One of :data:`STUDENTS`; anything else raises ``ValueError``.
    tree_depth : int
        Depth of the soft tree (ignored for ``"linear"``).

    Returns
    -------
    nn.Module
        :func:`kdlib.models.linear` or :func:`kdlib.models.soft_tree`, untrained.
    """
    if kind == "linear":
        return models.linear()
    if kind == "soft tree":
        return models.soft_tree(depth=tree_depth)
    raise ValueError(f"kind={kind!r}; allowed: {STUDENTS}")


def tree_loss(tree, targets: str, teacher_logits, *, lam: float, T: float):
    """The soft tree's training loss: cross-entropy (``targets="labels"``) or ``kd_loss``
    (``"teacher"``, on cached teacher logits looked up by index), plus ``TREE_PENALTY`` times
    Frosst & Hinton's balance penalty (:meth:`kdlib.models.SoftTree.balance_penalty`).

    Parameters
    ----------
    tree : kdlib.models.SoftTree
        The student being trained (its penalty is computed on the batch's inputs).
    targets : str
        ``"labels"``, or anything else for distillation.
    teacher_logits : torch.Tensor
        Cached teacher logits on the training images, in data-set order (unused for labels).
    lam, T : float
        Passed to :func:`kdlib.losses.kd_loss`.

    Returns
    -------
    callable
        ``loss_fn(logits, y, idx, x) -> scalar tensor``, as :func:`kdlib.train.fit` calls it.
    """
    def loss_fn(logits, y, idx, x):
        main = (F.cross_entropy(logits, y) if targets == "labels"
                else kd_loss(logits, teacher_logits[idx], y, lam=lam, T=T))
        return main + TREE_PENALTY * tree.balance_penalty(x)
    return loss_fn


def leaves_for_mass(path_probs: torch.Tensor, mass: float = 0.9) -> torch.Tensor:
    """Per row, the smallest number of leaves whose path probabilities sum to ``mass``.

    Parameters
    ----------
    path_probs : torch.Tensor
        Shape ``(N, leaves)``, rows summing to 1 (:meth:`kdlib.models.SoftTree.path_probs`).
    mass : float
        The probability mass to cover, in (0, 1].

    Returns
    -------
    torch.Tensor
        int64, shape ``(N,)``, each in ``[1, leaves]``.
    """
    p = path_probs.sort(dim=1, descending=True).values.cumsum(1)
    return (p < mass - 1e-9).sum(1) + 1


def _soft_tree_row(model, targets, seed, test, teacher_test):
    logits = models.predict(model, test.x)
    model.eval()
    with torch.no_grad():
        leaf_pred = model.predict_max_leaf(test.x)
        paths = model.path_probs(test.x)
    return {"student": "soft tree", "targets": targets, "seed": seed,
            "acc": accuracy_from_logits(logits, test.y),
            "fidelity": agreement_from_logits(logits, teacher_test),
            "acc_max_leaf": float((leaf_pred == test.y).float().mean()),
            "fidelity_max_leaf": float((leaf_pred == teacher_test.argmax(1)).float().mean()),
            "leaves_90": float(leaves_for_mass(paths).float().mean())}


def student_method(kind: str, targets: str, *, lam: float, T: float):
    """How a student of this lesson learns, as a :class:`kdlib.experiments.Method`.

    Parameters
    ----------
    kind : {"linear", "soft tree"}
    targets : {"labels", "teacher"}
        Hard labels, or distilled (``kd_loss`` with ``lam``, ``T`` on cached teacher logits).
    lam, T : float

    Returns
    -------
    kdlib.experiments.Method
        The soft tree's methods add the balance penalty (:func:`tree_loss`).
    """
    if kind == "soft tree":
        return experiments.custom(
            f"tree on {targets}",
            lambda tree, t_logits: (tree, tree_loss(tree, targets, t_logits, lam=lam, T=T), None),
            lam=lam if targets == "teacher" else 1.0, T=T)
    return experiments.scratch() if targets == "labels" else experiments.kd(lam, T)


def _linear_evaluate(teacher_val, teacher_test):
    def evaluate(model, config, data):
        val, test = models.predict(model, data.val.x), models.predict(model, data.test.x)
        return {"val_acc": accuracy_from_logits(val, data.val.y),
                "val_fidelity": agreement_from_logits(val, teacher_val),
                "acc": accuracy_from_logits(test, data.test.y),
                "fidelity": agreement_from_logits(test, teacher_test)}
    return evaluate


def run_experiment(teacher, *, n_train: int, epochs: int, seeds: int, lam: float, T: float,
                   tree_depth: int, max_depth: int, progress: bool = True) -> Experiment:
    """Train every readable student, on labels and distilled, for ``seeds`` seeds.

    Seed ``s`` draws the training images and the validation split
    (``kdlib.data.load(seed=s)``), the students' initialisation and batch order; the test set
    (10,000 images) is the same for all. The linear students train in lockstep
    (:func:`kdlib.experiments.mlp_builder` ``[784, 10]``) at every learning rate of
    :data:`LINEAR_LRS`, on labels and distilled alike; :func:`kdlib.experiments.choose` keeps,
    per targets, the one with the best validation fidelity. Distilled students use ``kd_loss``
    with ``lam``/``T`` on cached teacher logits; the soft tree trains at :data:`TREE_LR`; the
    scikit-learn trees of the ``TREE_DEPTHS`` up to ``max_depth`` are fitted either to the labels
    (classification) or to the teacher's probabilities at ``TREE_T`` (multi-output regression,
    prediction = argmax).

    Parameters
    ----------
    teacher : nn.Module
        The trained teacher (notebook 01's checkpoint).
    n_train : int
        Training images per seed.
    epochs : int
        Epochs of the neural students (Adam with OneCycle, batch 64).
    seeds : int
        Seeds ``0 .. seeds-1``.
    lam, T : float
        λ and temperature of the distilled neural students.
    tree_depth : int
        Depth of the soft tree.
    max_depth : int
        Largest scikit-learn tree depth fitted.
    progress : bool
        Show a progress bar.

    Returns
    -------
    Experiment
    """
    from tqdm.auto import tqdm  # progress bar only

    depths = tuple(d for d in TREE_DEPTHS if d <= max_depth)
    exp = Experiment(rows=[], tree_rows=[], teacher_acc=0.0, depths=depths,
                     n_train=n_train, epochs=epochs, lam=lam, T=T, tree_depth=tree_depth)
    kept = {}
    bar = tqdm(total=seeds, desc="seeds", disable=not progress)
    for seed in range(seeds):
        data = kdata.load("fashion-mnist", n_train=n_train, n_val=N_VAL, seed=seed)
        if seed == 0:
            exp.test, exp.classes = data.test, data.classes
            exp.teacher_test_logits = models.predict(teacher, data.test.x)
            exp.teacher_acc = accuracy_from_logits(exp.teacher_test_logits, data.test.y)
        teacher_train = models.predict(teacher, data.train.x)
        configs = [experiments.Config(experiments.mlp_builder([784, 10]),
                                      student_method("linear", targets, lam=lam, T=T), seed,
                                      train.TrainSettings(epochs=epochs, lr=lr, batch_size=64),
                                      labels={"targets": targets, "lr": lr})
                   for lr in LINEAR_LRS for targets in TARGETS]
        for row in experiments.train_students(
                configs, data, teacher_logits=teacher_train, progress=False,
                evaluate=_linear_evaluate(models.predict(teacher, data.val.x), exp.teacher_test_logits),
                keep=lambda c: c.seed == 0):
            model = row.pop("student", None)  # kept for seed 0 only
            exp.tuning.append({"student": "linear", **{k: row[k] for k in (
                "targets", "lr", "seed", "val_acc", "val_fidelity", "acc", "fidelity")}})
            if model is not None:
                kept[(row["targets"], row["lr"])] = model
        for targets in TARGETS:
            config = experiments.Config(
                partial(build_student, "soft tree", tree_depth),
                student_method("soft tree", targets, lam=lam, T=T), seed,
                train.TrainSettings(epochs=epochs, lr=TREE_LR, batch_size=64))
            model, _ = experiments.train(config, data, teacher_logits=teacher_train)
            exp.rows.append(_soft_tree_row(model, targets, seed, exp.test, exp.teacher_test_logits))
            if seed == 0:
                exp.models[("soft tree", targets)] = model
        _fit_hard_trees(exp, data, teacher_train, seed)
        bar.update(1)
    bar.close()
    exp.lr = {t: c["lr"] for t, c in experiments.choose(exp.tuning, within="targets",
                                                        metric="val_fidelity").items()}
    exp.rows = [{"student": "linear", **{k: r[k] for k in ("targets", "seed", "acc", "fidelity")}}
                for r in exp.tuning if r["lr"] == exp.lr[r["targets"]]] + exp.rows
    for targets in TARGETS:
        exp.models[("linear", targets)] = kept[(targets, exp.lr[targets])]
    return exp


def _fit_hard_trees(exp, data, teacher_train, seed):
    x = data.train.x.reshape(len(data.train.y), -1).numpy()
    x_test = exp.test.x.reshape(len(exp.test.y), -1).numpy()
    probs = soft_targets(teacher_train, TREE_T).numpy()
    teacher_pred = exp.teacher_test_logits.argmax(1).numpy()
    for depth in exp.depths:
        for targets in TARGETS:
            if targets == "labels":
                tree = DecisionTreeClassifier(max_depth=depth, random_state=seed)
                pred = tree.fit(x, data.train.y.numpy()).predict(x_test)
            else:
                tree = DecisionTreeRegressor(max_depth=depth, random_state=seed)
                pred = tree.fit(x, probs).predict(x_test).argmax(1)
            exp.tree_rows.append({"depth": depth, "targets": targets, "seed": seed,
                                  "acc": float((pred == exp.test.y.numpy()).mean()),
                                  "fidelity": float((pred == teacher_pred).mean()),
                                  "leaves": int(tree.get_n_leaves())})
            if seed == 0:
                exp.trees[(depth, targets)] = tree


def _values(rows, key, **match):
    return [r[key] for r in rows if all(r[k] == v for k, v in match.items())]


# ------------------------------------------------------------------ comparisons and tables
PRIMARY = ("linear", "fidelity")
"""The primary comparison: the linear student's fidelity on the test set, distilled − labels."""


def comparison(exp: Experiment, student: str = PRIMARY[0], metric: str = PRIMARY[1]):
    """One student's ``metric``, distilled − labels, paired by seed (:func:`kdlib.results.compare`).

    Parameters
    ----------
    exp : Experiment
    student : {"linear", "soft tree"}
        The default, with ``metric="fidelity"``, is the primary comparison (:data:`PRIMARY`).
    metric : {"acc", "fidelity", "acc_max_leaf", "fidelity_max_leaf"}
        On the test set (fractions).

    Returns
    -------
    pandas.DataFrame
        Groups ``labels`` (the reference) and ``distilled``; draw it with :func:`kdlib.plots.dot_plot`.
    """
    mine = sorted(({**r, "trained on": "labels" if r["targets"] == "labels" else "distilled"}
                   for r in exp.rows if r["student"] == student and metric in r),
                  key=lambda r: r["targets"] != "labels")  # the reference first
    if not mine:
        raise ValueError(f"no {student!r} rows with {metric!r}; students: {STUDENTS}")
    return results.compare(mine, by="trained on", metric=metric, reference="labels")


def tree_comparison(exp: Experiment, depth: int, metric: str = "acc"):
    """The scikit-learn tree of ``depth``: fitted to the teacher − fitted to labels, paired by seed.

    Parameters
    ----------
    exp : Experiment
    depth : int
        One of ``exp.depths``.
    metric : {"acc", "fidelity"}

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.results.compare`'s table.
    """
    mine = [r for r in exp.tree_rows if r["depth"] == depth]
    if not mine:
        raise ValueError(f"no tree of depth={depth}; depths fitted: {exp.depths}")
    return results.compare(mine, by="targets", metric=metric, reference="labels")


def exploratory_frame(exp: Experiment):
    """The exploratory comparisons of the neural students, one row each (test set, distilled − labels).

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    pandas.DataFrame
        ``student``, ``metric``, ``labels``/``distilled`` (mean ± sd, %), ``difference (points)``,
        ``95 % CI`` and ``verdict``; the primary comparison is left out.
    """
    out = []
    for student, metric in _EXPLORATORY:
        t = comparison(exp, student, metric)
        lab, dis = t.loc["labels"], t.loc["distilled"]
        out.append({"student": student, "metric": _METRIC_NAMES[metric],
                    "labels (%)": _pm(lab["mean"], lab["sd"]),
                    "distilled (%)": _pm(dis["mean"], dis["sd"]),
                    "difference (points)": f"{100 * dis['diff']:+.2f}",
                    "95 % CI": _ci(dis["low"], dis["high"]), "verdict": dis["verdict"]})
    return pd.DataFrame(out)


_EXPLORATORY = (("linear", "acc"), ("soft tree", "acc"), ("soft tree", "fidelity"))
_METRIC_NAMES = {"acc": "accuracy", "fidelity": "fidelity"}


def _pm(mean, sd, digits=2):
    text = f"{100 * mean:.{digits}f}"
    return text if math.isnan(sd) else f"{text} ± {100 * sd:.{digits}f}"


def _ci(low, high):
    return "no interval" if math.isnan(low) else f"{100 * low:+.2f} to {100 * high:+.2f}"


def tuning_frame(exp: Experiment):
    """The learning-rate choice of the linear students: mean validation fidelity per candidate.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    pandas.DataFrame
        One row per learning rate; a column per targets (validation fidelity, %, mean over
        seeds) and the chosen one marked.
    """
    rows = []
    for lr in LINEAR_LRS:
        row = {"learning rate": f"{lr:g}"}
        for targets in TARGETS:
            name = "labels" if targets == "labels" else "distilled"
            v = np.mean(_values(exp.tuning, "val_fidelity", targets=targets, lr=lr))
            mark = " ◀ chosen" if exp.lr[targets] == lr else ""
            row[f"{name}: val fidelity (%)"] = f"{100 * v:.2f}{mark}"
        rows.append(row)
    return pd.DataFrame(rows)


def soft_tree_frame(exp: Experiment):
    """The soft tree read as Frosst & Hinton read it: by its single most probable leaf.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    pandas.DataFrame
        Per targets: mixture and max-leaf accuracy, max-leaf fidelity (mean ± sd, %) and the
        leaves that carry 90 % of an image's path probability (mean ± sd, of the tree's leaves).
    """
    n_leaves = exp.models[("soft tree", "labels")].n_leaves
    out = []
    for targets in TARGETS:
        m = dict(student="soft tree", targets=targets)
        l90, sd = mean_sd(_values(exp.rows, "leaves_90", **m))
        out.append({"trained on": "labels" if targets == "labels" else "distilled",
                    "mixture accuracy (%)": _pm(*mean_sd(_values(exp.rows, "acc", **m))),
                    "max-leaf accuracy (%)": _pm(*mean_sd(_values(exp.rows, "acc_max_leaf", **m))),
                    "max-leaf fidelity (%)": _pm(*mean_sd(_values(exp.rows, "fidelity_max_leaf", **m))),
                    f"leaves for 90 % (of {n_leaves})":
                        f"{l90:.1f}" if math.isnan(sd) else f"{l90:.1f} ± {sd:.1f}"})
    return pd.DataFrame(out)


def tree_summary(exp: Experiment) -> list[dict]:
    """Per (depth, targets): mean and sd of accuracy and fidelity, mean number of leaves.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    list of dict
        ``depth``, ``targets``, ``acc``, ``acc_sd``, ``fidelity``, ``fidelity_sd`` (fractions;
        sd nan for one seed) and ``leaves``.
    """
    out = []
    for depth in exp.depths:
        for targets in TARGETS:
            m = dict(depth=depth, targets=targets)
            acc, acc_sd = mean_sd(_values(exp.tree_rows, "acc", **m))
            fid, fid_sd = mean_sd(_values(exp.tree_rows, "fidelity", **m))
            out.append({"depth": depth, "targets": targets, "acc": acc, "acc_sd": acc_sd,
                        "fidelity": fid, "fidelity_sd": fid_sd,
                        "leaves": float(np.mean(_values(exp.tree_rows, "leaves", **m)))})
    return out


def trees_frame(exp: Experiment):
    """Hard decision trees: accuracy and fidelity against depth, labels vs teacher (mean ± sd).

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    pandas.DataFrame
        One row per (depth, targets): accuracy and fidelity (%), mean number of leaves.
    """
    return pd.DataFrame([{"depth": r["depth"], "fitted to": r["targets"],
                          "accuracy (%)": _pm(r["acc"], r["acc_sd"]),
                          "fidelity (%)": _pm(r["fidelity"], r["fidelity_sd"]),
                          "leaves": round(r["leaves"])} for r in tree_summary(exp)])


def tree_rules(exp: Experiment, depth: int = 3, targets: str = "teacher") -> str:
    """The seed-0 scikit-learn tree's rules, pixels named ``px(row,col)``, leaves by class.

    Parameters
    ----------
    exp : Experiment
    depth : int
        One of ``exp.depths``.
    targets : str
        ``"labels"`` or ``"teacher"``; a teacher-fitted leaf is named by its top class and probability.

    Returns
    -------
    str
        :func:`sklearn.tree.export_text`'s text.
    """
    if (depth, targets) not in exp.trees:
        raise ValueError(f"no tree of depth={depth} fitted to {targets!r}; depths run "
                         f"{exp.depths[0]} … {exp.depths[-1]}, targets {TARGETS}")
    tree = exp.trees[(depth, targets)]
    names = [f"px({i // 28},{i % 28})" for i in range(784)]
    text = export_text(tree, feature_names=names, decimals=2, max_depth=depth)
    if targets == "teacher":  # a regression leaf holds 10 probabilities: name its top class
        value = tree.tree_.value[:, :, 0]
        leaves = [i for i in range(tree.tree_.node_count) if tree.tree_.children_left[i] < 0]
        it = iter(leaves)
        out = []
        for line in text.splitlines():
            if "value:" in line:
                node = next(it)
                cls = int(value[node].argmax())
                line = line.split("value:")[0] + f"class: {exp.classes[cls]} " \
                    f"(teacher p = {value[node, cls]:.2f})"
            out.append(line)
        text = "\n".join(out)
    return text


def readability(exp: Experiment, tree_depth: int) -> list[dict]:
    """How much a person must inspect to follow one prediction, per student.

    Parameters
    ----------
    exp : Experiment
    tree_depth : int
        The soft tree's depth, for its label.

    Returns
    -------
    list of dict
        ``student``, ``parameters`` (int; a hard tree counts two numbers per split, one per leaf)
        and ``per prediction`` (str); hard trees of depth 3 and ``exp.depths[-1]`` where fitted.
    """
    soft = exp.models[("soft tree", "labels")]
    n_soft = models.count_params(soft)
    l90 = mean_sd(_values(exp.rows, "leaves_90", student="soft tree", targets="teacher"))[0]
    rows = [{"student": "linear", "parameters": models.count_params(models.linear()),
             "per prediction": "10 templates x 784 pixels (all of them)"},
            {"student": f"soft tree depth {tree_depth}", "parameters": n_soft,
             "per prediction": f"all {soft.n_leaves} leaves mix; {l90:.1f} carry 90 % of it"}]
    for depth in (3, exp.depths[-1]):
        if (depth, "teacher") in exp.trees:
            leaves = np.mean(_values(exp.tree_rows, "leaves", depth=depth, targets="teacher"))
            # every split is a (pixel, threshold) pair, every leaf one class
            rows.append({"student": f"hard tree depth {depth}",
                         "parameters": int(round(2 * (leaves - 1) + leaves)),
                         "per prediction": f"at most {depth} pixel thresholds (one path to one of "
                                           f"{leaves:.0f} leaves)"})
    return rows


def verdict_metrics(exp: Experiment) -> dict:
    """Mean test accuracy / fidelity per student and target, as flat names for kdlib.runs.record.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    dict of str to float
        ``<student>_<targets>_acc`` / ``_fidelity`` (e.g. ``soft_tree_teacher_acc``) and
        ``tree3_<targets>_acc`` / ``_fidelity`` when depth 3 was fitted.
    """
    out = {}
    for row in _student_means(exp):
        name = row["student"].replace(" ", "_") + "_" + row["targets"]
        out[f"{name}_acc"] = row["acc"]
        out[f"{name}_fidelity"] = row["fidelity"]
    for row in tree_summary(exp):
        if row["depth"] == 3:
            out[f"tree3_{row['targets']}_acc"] = row["acc"]
            out[f"tree3_{row['targets']}_fidelity"] = row["fidelity"]
    return out


def _student_means(exp):
    out = []
    for kind in STUDENTS:
        for targets in TARGETS:
            m = dict(student=kind, targets=targets)
            row = {"student": kind, "targets": targets}
            for key in ("acc", "fidelity", "acc_max_leaf", "fidelity_max_leaf", "leaves_90"):
                vals = _values([r for r in exp.rows if key in r], key, **m)
                if vals:
                    row[key] = float(np.mean(vals))
            out.append(row)
    return out


# ------------------------------------------------------------------ figures
def templates_figure(exp: Experiment):
    """The linear students' ten weight vectors as 28 × 28 images: labels row, distilled row.

    Parameters
    ----------
    exp : Experiment
        Uses the seed-0 linear students; each image has its own symmetric colour scale.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(11, 2.8, ncols=10, nrows=2)
    for r, targets in enumerate(TARGETS):
        w = exp.models[("linear", targets)][1].weight.detach()
        for c in range(10):
            img = w[c].reshape(28, 28).numpy()
            lim = np.abs(img).max()
            ax = axes[r, c]
            ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(exp.classes[c][:9], fontsize=8)
        axes[r, 0].set_ylabel("labels" if targets == "labels" else "distilled", fontsize=9)
    fig.suptitle("linear student templates (red: pixel votes for the class, blue: against)",
                 fontsize=10)
    return fig


def template_similarity(exp: Experiment) -> dict:
    """Mean cosine similarity of the seed-0 linear templates: labels vs distilled, per class.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    dict
        ``mean`` and ``min`` (float, in [-1, 1]) over the ten classes, ``least_similar`` (class name).
    """
    a = exp.models[("linear", "labels")][1].weight.detach()
    b = exp.models[("linear", "teacher")][1].weight.detach()
    cos = torch.nn.functional.cosine_similarity(a, b, dim=1)
    return {"mean": float(cos.mean()), "min": float(cos.min()),
            "least_similar": exp.classes[int(cos.argmin())]}


def filters_figure(tree):
    """The soft tree's inner-node filters as 28 × 28 images, laid out level by level.

    Parameters
    ----------
    tree : kdlib.models.SoftTree
        On 784 inputs (28 × 28); each filter has its own symmetric colour scale.

    Returns
    -------
    matplotlib.figure.Figure
    """
    depth = tree.depth
    width = 2 ** (depth - 1)
    fig, axes = new_figure(min(1.3 * width, 12), 1.4 * depth, ncols=width, nrows=depth)
    w = tree.inner.weight.detach()
    for level in range(depth):
        n = 2 ** level
        for k in range(width):
            ax = axes[level, k]
            ax.axis("off")
            if k < n:
                node = n - 1 + k
                img = w[node].reshape(28, 28).numpy()
                lim = np.abs(img).max()
                ax.imshow(img, cmap="RdBu_r", vmin=-lim, vmax=lim)
                ax.set_title(f"node {node}", fontsize=7)
    fig.suptitle("soft tree filters (red pushes an image right, blue left), one row per level",
                 fontsize=10)
    return fig


def draw_tree_paths(ax, tree, x, classes) -> np.ndarray:
    """Draw ``tree`` on ``ax`` with edge widths = probability of reaching each node for image ``x``.

    Returns the leaves' path probabilities.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    tree : kdlib.models.SoftTree
    x : torch.Tensor
        One image (any shape with ``n_in`` elements).
    classes : sequence of str
        Class names; each leaf is labelled with its top class (grey when reached with p <= 0.05).

    Returns
    -------
    numpy.ndarray
        Shape ``(2**depth,)``, summing to 1.
    """
    with torch.no_grad():
        z = torch.sigmoid(tree.beta * tree.inner(x.reshape(1, -1)))[0].numpy()
        paths = tree.path_probs(x.reshape(1, -1))[0].numpy()
    depth = tree.depth
    reach = {0: 1.0}
    for node in range(2 ** depth - 1):
        reach[2 * node + 1] = reach[node] * (1 - z[node])
        reach[2 * node + 2] = reach[node] * z[node]

    def pos(node):
        level = int(np.floor(np.log2(node + 1)))
        k = node - (2 ** level - 1)
        return (k + 0.5) / 2 ** level, -level

    for node in range(2 ** depth - 1):
        x0, y0 = pos(node)
        for child in (2 * node + 1, 2 * node + 2):
            x1, y1 = pos(child)
            ax.plot([x0, x1], [y0, y1], color="tab:blue", lw=0.3 + 6 * reach[child],
                    alpha=0.3 + 0.7 * reach[child])
    leaf_class = tree.leaves.detach().argmax(1).numpy()
    for leaf in range(2 ** depth):
        x1, y1 = pos(2 ** depth - 1 + leaf)
        ax.text(x1, y1 - 0.15, classes[leaf_class[leaf]][:5], rotation=90, ha="center",
                va="top", fontsize=6, color="black" if paths[leaf] > 0.05 else "grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(-depth - 1.6, 0.4)
    ax.axis("off")
    return paths


def trees_figure(exp: Experiment):
    """Hard trees: accuracy and fidelity against depth, labels vs teacher (mean line, per-seed dots).

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (accuracy, fidelity) in percent, the teacher's accuracy dashed.
    """
    fig, axes = new_figure(9, 3.2, ncols=2)
    summary = tree_summary(exp)
    for ax, key in zip(axes[0], ("acc", "fidelity")):
        for targets, color, dx in zip(TARGETS, ("tab:grey", "tab:red"), (-0.12, 0.12)):
            rows = [r for r in summary if r["targets"] == targets]
            ax.plot([r["depth"] for r in rows], [r[key] * 100 for r in rows], marker="o", color=color,
                    label="fitted to labels" if targets == "labels" else
                    "fitted to teacher's probabilities")
            runs = [r for r in exp.tree_rows if r["targets"] == targets]
            ax.scatter([r["depth"] + dx for r in runs], [r[key] * 100 for r in runs], s=8,
                       color=color, alpha=0.45)
        if key == "acc":
            ax.axhline(exp.teacher_acc * 100, ls="--", color="black", lw=0.8, label="teacher")
        ax.set_xlabel("tree depth")
        ax.set_ylabel("test accuracy (%)" if key == "acc" else "agreement with teacher (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=8, loc="lower right")
    return fig


# ------------------------------------------------------------------ widget
class ExplanationExplorer:
    """Pick a test image: see the teacher's prediction and each distilled student's explanation.

    Panels: the image with the true class and the teacher's prediction; the linear
    student's evidence map ``w_c * x`` for its predicted class ``c``; the soft tree's
    paths for this image (edge width = probability of reaching that node); the hard
    tree's decision path as text (``.text``).

    Attributes
    ----------
    slider : ipywidgets.IntSlider
        Index of the test image (0 … ``n_images - 1``).
    figure : matplotlib.figure.Figure
        The figure last drawn.
    text : str
        One line per student: its prediction, plus the hard tree's rules on this image.
    widget : ipywidgets.VBox
    """

    def __init__(self, exp: Experiment, *, tree_depth_hard: int = 3, n_images: int = 200):
        import ipywidgets as w  # heavy optional UI dependency, only when a widget is built

        self.exp = exp
        self.linear = exp.models[("linear", "teacher")]
        self.soft = exp.models[("soft tree", "teacher")]
        depth = tree_depth_hard if (tree_depth_hard, "teacher") in exp.trees else exp.depths[0]
        self.hard = exp.trees[(depth, "teacher")]
        self.teacher_pred = exp.teacher_test_logits.argmax(1)
        self.slider = w.IntSlider(value=0, min=0, max=min(n_images, len(exp.test.y)) - 1,
                                  description="image", continuous_update=False)
        self.label = w.HTML()
        self.out = w.Output()
        self.figure, self.text = None, ""
        self.slider.observe(lambda change: self.update(), names="value")
        self.widget = w.VBox([self.slider, self.label, self.out])
        self.update()

    def _hard_path(self, x) -> list[str]:
        t = self.hard.tree_
        node, steps = 0, []
        while t.children_left[node] >= 0:
            f, thr = t.feature[node], t.threshold[node]
            go_left = x[f] <= thr
            steps.append(f"px({f // 28},{f % 28}) = {x[f]:.2f} {'<=' if go_left else '>'} {thr:.2f}")
            node = t.children_left[node] if go_left else t.children_right[node]
        cls = int(t.value[node, :, 0].argmax())
        steps.append(f"→ {self.exp.classes[cls]}")
        return steps

    def update(self):
        """Redraw for the test image at ``slider.value``: sets :attr:`figure`, :attr:`text` and the label.

        Returns
        -------
        None
        """
        i = int(self.slider.value)
        classes = self.exp.classes
        x, y = self.exp.test.x[i], int(self.exp.test.y[i])
        flat = x.reshape(-1)
        lin_logits = self.linear(x[None]).detach()[0]
        c = int(lin_logits.argmax())
        soft_pred = int(self.soft(x[None]).detach().argmax())
        hard_steps = self._hard_path(flat.numpy())
        fig, axes = new_figure(11, 3.2, ncols=3)
        axes[0, 0].imshow(x.reshape(28, 28).numpy(), cmap="gray_r")
        axes[0, 0].set_title(f"true: {classes[y]}\nteacher: {classes[int(self.teacher_pred[i])]}",
                             fontsize=9)
        evidence = (self.linear[1].weight[c].detach() * flat).reshape(28, 28).numpy()
        lim = max(np.abs(evidence).max(), 1e-8)
        axes[0, 1].imshow(evidence, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[0, 1].set_title(f"linear: {classes[c]}\nevidence w·x per pixel", fontsize=9)
        for ax in axes[0, :2]:
            ax.set_xticks([])
            ax.set_yticks([])
        paths = draw_tree_paths(axes[0, 2], self.soft, x, classes)
        axes[0, 2].set_title(f"soft tree: {classes[soft_pred]}\n"
                             f"top leaf carries {paths.max() * 100:.0f} % of the path mass",
                             fontsize=9)
        self.figure = fig
        self.text = (f"image {i}: true {classes[y]}, teacher {classes[int(self.teacher_pred[i])]}, "
                     f"linear {classes[c]}, soft tree {classes[soft_pred]}, hard tree "
                     f"{hard_steps[-1][2:]}\nhard tree path: " + "; ".join(hard_steps))
        self.label.value = "<pre>" + self.text + "</pre>"
        show_in(self.out, fig)

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)


# ------------------------------------------------------------------ what we saw
def _diff(exp, student, metric):
    t = comparison(exp, student, metric)
    a, b = t.loc["distilled", "values"], t.loc["labels", "values"]
    return paired_difference(a, b)


def _tree_diff(exp, depth, metric):
    t = tree_comparison(exp, depth, metric)
    return paired_difference(t.loc["teacher", "values"], t.loc["labels", "values"])


def _mean(rows, key, **match):
    return float(np.mean(_values(rows, key, **match)))


def _epochs(n):
    return f"{n} epoch{'s' * (n != 1)}"


def _seeds(exp):
    return len({r["seed"] for r in exp.rows})


def say_students(exp: Experiment) -> Markdown:
    """What the students' comparisons showed: the budget, the learning rates chosen on the
    validation split, the primary comparison's verdict and the exploratory ones with a
    multiplicity note.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    IPython.display.Markdown
    """
    t = comparison(exp)
    lab, dis = t.loc["labels"], t.loc["distilled"]
    primary = _diff(exp, *PRIMARY)
    where = ("On the budget map (KD's gain against epochs and labelled data) this is the corner of few "
             "epochs on few images, where soft targets are expected to matter most."
             if exp.epochs <= 10 and exp.n_train <= 5000 else
             "This is a larger budget than the notebook's default.")
    lines = [f"What we saw, with the budget first: **{_epochs(exp.epochs)} on {exp.n_train:,} images** per "
             f"student, {_seeds(exp)} seeds (each its own sample of training and validation images), "
             f"λ = {exp.lam:g}, T = {exp.T:g}; the teacher reaches {100 * exp.teacher_acc:.2f} % on the "
             f"test set. {where}", "",
             f"The validation split chose the linear student's learning rate: {exp.lr['labels']:g} on "
             f"labels, {exp.lr['teacher']:g} distilled (the same candidates for both).", "",
             f"**The primary comparison** (linear student, fidelity on the test set): "
             f"{_pm(lab['mean'], lab['sd'])} % on labels, {_pm(dis['mean'], dis['sd'])} % distilled; "
             f"{primary.describe('distillation')}.", "",
             "Exploratory (distilled − labels, test set):", ""]
    for student, metric in _EXPLORATORY:
        d = _diff(exp, student, metric)
        lines.append(f"* {student}, {_METRIC_NAMES[metric]}: {d.describe('distillation')}.")
    k = len(_EXPLORATORY)
    lines += ["", f"These {k} intervals are exploratory: with no effect at all, one 95 % interval in 20 "
              f"still excludes zero by chance, so across {k} intervals a single \"helped\" or \"hurt\" "
              "is weak evidence on its own."]
    return Markdown("\n".join(lines))


def say_templates(exp: Experiment, sim: dict) -> Markdown:
    """What the template figure showed: how alike the two linear students' templates are.

    Parameters
    ----------
    exp : Experiment
    sim : dict
        :func:`template_similarity`'s result.

    Returns
    -------
    IPython.display.Markdown
    """
    alike = "close" if sim["mean"] >= 0.8 else "clearly different"
    return Markdown(
        f"What we saw: labels vs distilled, the seed-0 templates are {alike}: cosine similarity "
        f"{sim['mean']:.2f} on average, lowest {sim['min']:.2f} ({sim['least_similar']}). Whatever "
        f"distillation changed in the fidelity ({_diff(exp, *PRIMARY).format()}), it is hard to read off "
        "the templates by eye.")


def say_soft_tree(exp: Experiment) -> Markdown:
    """What the soft-tree table showed: how many leaves carry a prediction, and what reading
    the tree by its most probable leaf costs (paired by seed).

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    IPython.display.Markdown
    """
    n_leaves = exp.models[("soft tree", "labels")].n_leaves
    parts = []
    for targets in TARGETS:
        m = dict(student="soft tree", targets=targets)
        cost = paired_difference(_values(exp.rows, "acc_max_leaf", **m), _values(exp.rows, "acc", **m))
        name = "on labels" if targets == "labels" else "distilled"
        parts.append(f"{name}, {_mean(exp.rows, 'leaves_90', **m):.1f} of its {n_leaves} leaves carry 90 % "
                     f"of an image's path probability, and predicting by the most probable leaf alone "
                     f"changes accuracy by {cost.format()}")
    m = dict(student="soft tree", targets="teacher")
    return Markdown(
        "What we saw: " + "; ".join(parts) + ". " +
        f"By its top leaf the distilled tree agrees with the teacher on "
        f"{100 * _mean(exp.rows, 'fidelity_max_leaf', **m):.2f} % of the test images. The fewer leaves "
        "carry a prediction, the closer Frosst & Hinton's one-path reading is to the tree itself.")


def say_trees(exp: Experiment) -> Markdown:
    """What the depth curve showed: accuracy against depth, and where fitting the teacher's
    probabilities helped or hurt (paired by seed, exploratory).

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    IPython.display.Markdown
    """
    s = {(r["depth"], r["targets"]): r for r in tree_summary(exp)}
    small, big = min(exp.depths), max(exp.depths)
    shown = sorted({small, 3, big} & set(exp.depths))
    lab = [f"{100 * s[(d, 'labels')]['acc']:.1f} % at depth {d}" for d in shown]
    gap = 100 * (exp.teacher_acc - s[(big, "labels")]["acc"])
    lines = [f"What we saw: fitted to labels, accuracy goes {', '.join(lab)}, still {gap:.1f} points "
             "below the teacher. Fitting the teacher's probabilities instead (exploratory, paired by "
             "seed):", ""]
    for d in sorted({3, big} & set(exp.depths)):
        lines.append(f"* depth {d}: accuracy: {_tree_diff(exp, d, 'acc').describe('fitting the teacher')}; "
                     f"fidelity: {_tree_diff(exp, d, 'fidelity').describe('fitting the teacher')}.")
    big_t, big_l = s[(big, "teacher")]["leaves"], s[(big, "labels")]["leaves"]
    lines += ["", f"At depth {big} the tree fitted to the teacher grows {big_t:.0f} leaves against "
              f"{big_l:.0f} for labels. These intervals are exploratory too; read them with the "
              "multiplicity note above."]
    return Markdown("\n".join(lines))


def say_rules(exp: Experiment, depth: int = 3) -> Markdown:
    """What the printed rules showed: how many leaves are unsure, and how often the tree is right.

    Parameters
    ----------
    exp : Experiment
    depth : int
        The tree printed (fitted to the teacher, seed 0).

    Returns
    -------
    IPython.display.Markdown
    """
    if (depth, "teacher") not in exp.trees:
        depth = exp.depths[0]
    tree = exp.trees[(depth, "teacher")].tree_
    leaves = [i for i in range(tree.node_count) if tree.children_left[i] < 0]
    unsure = [f"{exp.classes[int(tree.value[i, :, 0].argmax())]} {tree.value[i, :, 0].max():.2f}"
              for i in leaves if tree.value[i, :, 0].max() < 0.5]
    acc = _values(exp.tree_rows, "acc", depth=depth, targets="teacher", seed=0)[0]
    weak = (f"{len(unsure)} of its {len(leaves)} leaves have a top class with a teacher probability "
            f"below 0.5 ({', '.join(unsure)})" if unsure else f"every one of its {len(leaves)} leaves has a "
            "top class with a teacher probability of at least 0.5")
    return Markdown(f"What we saw: the whole tree fits on a screen, and a few questions pick a class. Its "
                    f"leaves also show what it cannot do: {weak}, and this tree is right on "
                    f"{100 * acc:.2f} % of the test images.")


def say_verdict(exp: Experiment) -> Markdown:
    """The verdict on "a simpler student is easier to explain", each claim read off an interval.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    IPython.display.Markdown
    """
    primary = _diff(exp, *PRIMARY)
    big = max(exp.depths)
    s = {(r["student"], r["targets"]): r for r in _student_means(exp)}
    t = {(r["depth"], r["targets"]): r for r in tree_summary(exp)}
    small = min(exp.depths)
    readable = [s[("linear", "teacher")]["acc"], t[(small, "labels")]["acc"]]
    gaps = sorted(100 * (exp.teacher_acc - a) for a in readable)
    fid = ("**The claim holds for fidelity**" if primary.verdict == "helped" else
           "**The claim is not shown for fidelity**")
    acc_verdicts = {_diff(exp, "linear", "acc").verdict, _diff(exp, "soft tree", "acc").verdict}
    acc_head = ("**Accuracy at readable sizes did not measurably improve**" if acc_verdicts == {"not shown"}
                else "**Accuracy at readable sizes moved in places**")
    soft = exp.models[("soft tree", "teacher")]
    l90 = _mean(exp.rows, "leaves_90", student="soft tree", targets="teacher")
    agree = max_leaf_agreement(soft, exp.test.x)
    lines = [
        "What we saw, the verdict:", "",
        f"* {fid} (primary comparison, linear student): {primary.describe('distillation')}. Exploratory: "
        f"soft tree, {_diff(exp, 'soft tree', 'fidelity').describe('distillation')}; depth-{big} tree, "
        f"{_tree_diff(exp, big, 'fidelity').describe('fitting the teacher')}.",
        f"* {acc_head} (exploratory): linear, {_diff(exp, 'linear', 'acc').describe('distillation')}; soft "
        f"tree, {_diff(exp, 'soft tree', 'acc').describe('distillation')}. The readable students stay "
        f"{gaps[0]:.1f} to {gaps[-1]:.1f} points below the teacher ({100 * exp.teacher_acc:.1f} %).",
        f"* **\"Simpler\" is not \"readable\"**: the linear student has "
        f"{models.count_params(models.linear()):,} numbers and every prediction uses all of them; the soft "
        f"tree of depth {soft.depth} has {models.count_params(soft):,}. A depth-3 tree is readable but right "
        f"on {100 * t[(3, 'labels')]['acc'] if (3, 'labels') in t else float('nan'):.1f} % of the images "
        f"(labels); the depth-{big} tree reaches {100 * t[(big, 'teacher')]['acc']:.1f} % with "
        f"{t[(big, 'teacher')]['leaves']:.0f} leaves" + (", which nobody reads." if big > 4
                                                         else "."),
        f"* **Soft routing**: every leaf contributes in principle; after training {l90:.1f} leaves carry "
        f"90 % and the top leaf agrees with the mixture on {100 * agree:.1f} % of "
        f"the test images, so one path of {soft.depth} filters "
        + ("explains the tree." if agree >= 0.9 else "is only a rough account of the tree."), "",
        "Distillation does not make a student readable: the student's architecture does that, at a cost in "
        "accuracy. " + ("What distillation added here is fidelity: a readable student that agrees more often "
                        "with the teacher explains the teacher better." if primary.verdict == "helped" else
                        "A gain in fidelity from distillation was not shown at this budget.")]
    return Markdown("\n".join(lines))


def say_summary(exp: Experiment) -> Markdown:
    """The notebook's three-line summary, its claims read off this run's intervals.

    Parameters
    ----------
    exp : Experiment

    Returns
    -------
    IPython.display.Markdown
    """
    primary = _diff(exp, *PRIMARY)
    acc = _diff(exp, "linear", "acc")
    t = {(r["depth"], r["targets"]): r for r in tree_summary(exp)}
    d3 = (f"a depth-3 tree is readable at {100 * t[(3, 'labels')]['acc']:.0f} %"
          if (3, "labels") in t else "a shallow tree is readable but weak")
    soft = _mean(exp.rows, "acc", student="soft tree", targets="teacher")
    return Markdown("\n".join([
        f"* With {_epochs(exp.epochs)} on {exp.n_train:,} images and {_seeds(exp)} seeds, for the linear "
        f"student's fidelity {primary.describe('distillation')}; for its accuracy "
        f"{acc.describe('distillation')} (exploratory).",
        f"* Readability comes from the architecture, not from distillation: {d3}, the distilled soft tree "
        f"(one path of {exp.tree_depth} filters) reaches {100 * soft:.0f} %, the teacher "
        f"{100 * exp.teacher_acc:.1f} %.",
        "* Measure fidelity next to accuracy before calling a student an explanation, and count what a "
        "person must read (leaves, paths, templates), not just the parameters."]))


# ------------------------------------------------------------------ exercises
def soft_tree_param_count(depth: int, n_in: int = 784, n_classes: int = 10) -> int:
    """Parameters of a soft tree: a filter and a bias per inner node, a distribution per leaf.

    Parameters
    ----------
    depth : int
    n_in, n_classes : int
        Input features and classes.

    Returns
    -------
    int
        ``(2**depth - 1) * (n_in + 1) + 2**depth * n_classes``, as :class:`kdlib.models.SoftTree` has.
    """
    return (2 ** depth - 1) * (n_in + 1) + 2 ** depth * n_classes


def max_leaf_agreement(tree, x: torch.Tensor) -> float:
    """Fraction of ``x`` on which the most probable leaf predicts what the full mixture does.

    Parameters
    ----------
    tree : kdlib.models.SoftTree
    x : torch.Tensor
        Inputs, ``(N, ...)``.

    Returns
    -------
    float
        In [0, 1].
    """
    with torch.no_grad():
        return float((tree.predict_max_leaf(x) == tree(x).argmax(1)).float().mean())


def _ex3(answer, *, tree=None, x=None, **_):
    if tree is None or x is None:
        return False, "exercise 3 needs tree= and x= to test your function on"
    right = max_leaf_agreement(tree, x)
    try:
        got = float(answer(tree, x))
    except Exception as exc:  # the learner's code: report, never crash the check
        return False, f"your function raised {type(exc).__name__}: {exc}"
    if abs(got - right) < 1e-6:
        return True, f"the most probable leaf gives the mixture's class on {got:.4f} of the images"
    return False, ("compare tree.predict_max_leaf(x) with tree(x).argmax(1) and average the matches; "
                   f"you returned {got:.4f}")


EXERCISES = {
    1: (soft_tree_param_count(4), 0, "15 inner nodes × (784 weights + 1 bias) + 16 leaves × 10 class scores"),
    2: (2 ** 6, 0, "soft routing gives every leaf a non-zero path probability"),
    3: _ex3,
}
"""Exercise number → what :func:`kdlib._checks.check_answer` needs: 1, the number of
parameters of a soft tree of depth 4 on 784 pixels and 10 classes; 2, how many leaves
contribute to one prediction of a soft tree of depth 6; 3, a check of the reader's function."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the number of parameters of a soft tree of depth 4 on 784 pixels and 10 classes. "
             "2: how many leaves contribute to one prediction of a soft tree of depth 6. 3: a "
             "function ``f(tree, x) -> float``: the fraction of images on which the most probable "
             "leaf gives the same class as the mixture (pass ``tree=`` and ``x=``)."),
    evidence={"tree, x": "Exercise 3 only: the soft tree and the images to test the function on."})
