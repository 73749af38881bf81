"""Lesson module of ``notebooks/05_lambda_tuning.ipynb`` (tuning λ and T against baselines tuned
with the same budget on the validation split; cross-validation with the corrected resampled t;
seeds that resample the data; regimes; a transfer set).

It holds everything only notebook 05 uses; the engine is :mod:`kdlib.experiments`, the
statistics :mod:`kdlib.results`, the comparison plot :func:`kdlib.plots.dot_plot`:

* its settings, :class:`Settings` (the parameters, the tiny :data:`QUICK` ones of
  ``quick=True``, and what derives from them), made by :func:`check_params`;
* data per seed, :func:`resample` / :func:`seed_pool` (seed ``s`` draws a new training
  sample), and the uniform teacher behind label smoothing (:func:`uniform_teacher`,
  :func:`label_smoothing_identity`);
* the primary comparison: three methods with one budget (:data:`LRS` for all,
  :data:`CANDIDATES`), chosen on validation and tested once (:func:`tune_on_validation`,
  :func:`primary_table`);
* cross-validation on one training sample, exploratory (:func:`tune_methods`,
  :func:`cv_candidates`, :func:`cv_frame` with the corrected resampled t);
* the regimes (:func:`regime_rows`: weak and born-again same-size teachers, few
  epochs) and the transfer set held out of the teacher's training data
  (:func:`transfer_data`, :func:`transfer_rows`, :func:`equal_step_epochs`), tabulated by
  :func:`groups_table`;
* the prose that follows the run: :func:`say_selection`, :func:`say_primary`,
  :func:`say_cv`, :func:`say_regimes`, :func:`say_transfer`, :func:`say_summary`;
* the exercises, :data:`EXERCISES`, graded by :func:`check_exercise` (a :class:`kdlib._checks.Verdict`);
* its figures (each returns a new ``Figure``): :func:`learning_curves`, :func:`grid_point`;
* its widgets: :class:`GridExplorer` (λ and T sliders over precomputed rows) and
  :class:`TrainNow` (train one student now, with live curves).
"""

from __future__ import annotations

import html
import math
import time
from dataclasses import dataclass, field

import ipywidgets as widgets
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from matplotlib.figure import Figure

from kdlib import experiments, results
from kdlib._checks import (
    LAM,
    QUICK_RUN,
    TEACHER_CHECKPOINT,
    Float,
    Int,
    Optional,
    Param,
    check_int,
    exercise_checker,
    settings_checker,
    settings_class,
    validate_params,
)
from kdlib.data import Split, Splits, stratified_split
from kdlib.losses import HARD_ONLY_LAM, kd_loss
from kdlib.metrics import accuracy
from kdlib.models import predict
from kdlib.plots import new_figure
from kdlib.results import format_pct, paired_difference, sample_sd
from kdlib.train import TrainSettings
from kdlib.widgets import figure_png, in_kernel, show_in

__all__ = [
    "PARAMS", "QUICK", "Settings", "METHODS", "REFERENCE", "LRS", "CANDIDATES", "check_params",
    "resample", "seed_pool", "uniform_teacher", "label_smoothing_identity", "candidate_label",
    "method_of", "run_kwargs", "tune_on_validation", "primary_table", "MethodCV", "tune_methods",
    "cv_candidates", "cv_frame", "regime_rows", "transfer_data",
    "equal_step_epochs", "transfer_rows", "groups_table", "say_selection", "say_primary", "say_cv",
    "say_regimes", "say_transfer", "say_summary", "VERDICTS", "EXERCISES", "check_exercise",
    "learning_curves", "grid_point", "GridExplorer", "TrainNow",
]

# --------------------------------------------------------------------------- parameters
PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "lam": Param(Float(0.0, 1.0),
        "λ of the regime experiments and of the point whose metrics are recorded."),
    "T": Param(Float(0.0, 100.0, low_open=True), "Temperature of the regime experiments."),
    "quick": QUICK_RUN,
    "n_train": Param(Int(20, 55000), "Labelled training images of the student."),
    "epochs": Param(Int(1, 500), "Student epochs."),
    "seeds": Param(Int(1, 20), "Seeds (each with its own training sample)."),
    "k_folds": Param(Int(2, 20), "Folds of the cross-validation."),
    "jobs": Param(Int(0, 64),
        "Processes training students side by side; 0 means one per core (:attr:`n_jobs`). The "
        "numbers do not depend on it."),
    "small_teacher_epochs": Param(Int(1, 100), "Epochs of the weak same-size teacher."),
    "n_labeled": Param(Int(10, 50000), "Labelled images of the transfer-set experiment."),
    "n_transfer": Param(Int(1, 5000), "Unlabelled transfer images of the transfer-set experiment."),
}


"""Notebook 05's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""


QUICK = {"seeds": 2, "n_train": 300, "n_val": 500, "n_test": 1000, "epochs": 3, "few_epochs": 1,
         "k_folds": 2, "small_teacher_epochs": 1, "n_labeled": 200, "n_transfer": 300,
         "candidates": 2}
"""What ``quick=True`` uses (a few seconds in all; ``candidates: 2``: the first and the last
of each method's :data:`CANDIDATES`, so that both distillation sliders still move, at the
largest learning rate of :data:`LRS` only). Its
parameter entries replace the parameters; the others are derived settings of :class:`Settings`."""


STUDENT_THREADS = 1
"""Torch threads of the notebook's students: tiny MLPs gain nothing from a second
thread; a second process, training another student, nearly halves the wall time."""


@settings_class(PARAMS)
class Settings:
    """Notebook 05's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""

    @property
    def seed_list(self) -> list[int]:
        """The seeds, ``[0, 1, ..., seeds - 1]``."""
        return list(range(self.seeds))

    @property
    def n_val(self) -> int | None:
        """Validation images (``None``: the standard 5,000)."""
        return QUICK["n_val"] if self.quick else None

    @property
    def n_test(self) -> int | None:
        """Test images (``None``: all 10,000)."""
        return QUICK["n_test"] if self.quick else None

    @property
    def few_epochs(self) -> int:
        """Epochs of the "too few epochs" regime: 3 (at most ``epochs``)."""
        return QUICK["few_epochs"] if self.quick else min(3, self.epochs)

    @property
    def lrs(self) -> tuple:
        """The learning rates every method tries: :data:`LRS` (with ``quick`` the largest only)."""
        return (max(LRS),) if self.quick else LRS

    @property
    def candidates(self) -> dict:
        """Per method, its candidates: each of :data:`CANDIDATES` (with ``quick`` the first and
        the last) at every learning rate of :attr:`lrs` (key ``lr``)."""
        pick = (lambda cs: cs if not self.quick or len(cs) < 2 else (cs[0], cs[-1]))
        return {m: [dict(c, lr=lr) for c in pick(cs) for lr in self.lrs] for m, cs in CANDIDATES.items()}

    @property
    def n_jobs(self) -> int:
        """Worker processes: ``jobs``, or for 0 one per core for the one-thread students (1 with
        ``quick``, where starting workers costs more than it saves)."""
        return self.jobs or (1 if self.quick else experiments.default_jobs(threads=STUDENT_THREADS))


def _also(p: dict) -> None:
    if p["n_train"] < p["k_folds"] * 10:
        raise ValueError(f"n_train={p['n_train']} is too small for k_folds={p['k_folds']}; "
                         f"allowed: n_train >= {p['k_folds'] * 10} (10 images per fold)")


check_params = settings_checker(Settings, PARAMS, quick=QUICK, also=_also)


# --------------------------------------------------------------------------- data per seed
@validate_params(seed=Int(low=0))
def _sample_rows(pool, n_train: int, seed: int) -> np.ndarray:
    """Seed ``seed``'s stratified sample of ``n_train`` rows of ``pool.train`` (sorted)."""
    rows = experiments.sample_rows(len(pool.train.y), n_train, seed + 1, labels=pool.train.y)
    return np.asarray(rows[seed])


def resample(pool, n_train: int, seed: int):
    """The student's data for one seed: a fresh stratified ``n_train`` subset of the pool.

    Seed ``s`` draws a different subset of ``pool.train`` (and a different initialisation),
    so the spread over seeds includes the data-sampling variance. The validation and test
    splits stay the pool's (the 5,000 images notebook 01 held out, and the test set).

    Parameters
    ----------
    pool : kdlib.data.Splits
        All training images (``kdlib.data.load(name, seed=0)``).
    n_train : int
        Images in the subset, from 1 to ``len(pool.train.y)``.
    seed : int
        Seeds the draw.

    Returns
    -------
    kdlib.data.Splits
        ``train`` is the subset (sorted indices), ``val``/``test`` the pool's.
    """
    idx = _sample_rows(pool, n_train, seed)
    return Splits(Split(pool.train.x[idx], pool.train.y[idx]), pool.val, pool.test,
                  pool.classes, pool.name)


@validate_params(n=Int(low=0), n_classes=Int(low=1))
def uniform_teacher(n: int, n_classes: int) -> torch.Tensor:
    """Logits of a teacher that says nothing: all zeros, i.e. the uniform distribution.

    Distilling from it with ``lam = 1 - eps`` and ``T = 1`` is label smoothing
    with ``eps`` (see :func:`label_smoothing_identity`).

    Returns
    -------
    Tensor of shape ``(n, n_classes)``
    """
    return torch.zeros(n, n_classes)


@validate_params(eps=Float(0, 1), seed=Int(low=0))
def label_smoothing_identity(eps: float = 0.1, *, n: int = 64, n_classes: int = 10,
                             seed: int = 0) -> dict:
    """Label smoothing ε equals the KD loss with a uniform teacher, λ = 1 − ε, T = 1, up to a constant.

    ``CE(smoothed labels) = (1 − ε)·CE(y) + ε·(KL(u ‖ p) + log K)``, so the two losses
    differ by exactly ``ε·log K`` on every batch and have the same gradients.

    Parameters
    ----------
    eps : float in [0, 1]
    n, n_classes : int
        Batch size and classes of the random logits the check uses.
    seed : int

    Returns
    -------
    dict
        ``label_smoothing`` (torch's ``cross_entropy(label_smoothing=eps)``),
        ``kd_uniform`` (:func:`kdlib.losses.kd_loss` with the uniform teacher),
        ``difference`` (their difference), ``eps_log_k`` (``ε·log K``) and
        ``same_gradient`` (the two gradients agree to 1e-6).
    """
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, n_classes, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, n_classes, (n,), generator=g)
    ls = F.cross_entropy(s, y, label_smoothing=eps)
    kd = kd_loss(s, uniform_teacher(n, n_classes).double(), y, lam=1 - eps, T=1.0)
    g_ls, = torch.autograd.grad(ls, s)
    g_kd, = torch.autograd.grad(kd, s)
    ls, kd = float(ls.detach()), float(kd.detach())
    return {"label_smoothing": ls, "kd_uniform": kd, "difference": ls - kd,
            "eps_log_k": eps * math.log(n_classes),
            "same_gradient": bool(torch.allclose(g_ls, g_kd, atol=1e-6))}


# --------------------------------------------------------------------------- three methods
METHODS = ("student from scratch", "label smoothing", "distilled")
"""The three ways of training the student that notebook 05 compares."""

REFERENCE = "student from scratch"
"""The reference of every comparison: the tuned student trained on labels only."""

LRS = (0.01, 0.03)
"""Peak learning rates (Adam, OneCycle) that **every** method tries: the shared part of the budget."""

CANDIDATES = {
    "student from scratch": ({},),
    "label smoothing": ({"eps": 0.1}, {"eps": 0.4}),
    "distilled": ({"lam": 0.1, "T": 2.0}, {"lam": 0.1, "T": 8.0},
                  {"lam": 0.5, "T": 2.0}, {"lam": 0.5, "T": 8.0}),
}
"""Each method's own knobs, tried at every learning rate of :data:`LRS`: nothing for the
student from scratch, ε for label smoothing, λ and T for distillation. All train
``epochs`` epochs with the default recipe otherwise (:data:`kdlib.experiments.STUDENT_DEFAULTS`)."""


def candidate_label(method: str, config: dict) -> str:
    """A short name of one candidate, e.g. ``"lr=0.01"``, ``"ε=0.1, lr=0.03"``, ``"λ=0.5, T=8, lr=0.03"``.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`; anything else raises ``ValueError``.
    config : dict
        ``lr`` and, for label smoothing, ``eps``; for distillation ``lam`` and ``T``.

    Returns
    -------
    str
    """
    lr = f"lr={config['lr']:g}" if "lr" in config else ""
    if method == "student from scratch":
        own = ""
    elif method == "label smoothing":
        own = f"ε={config['eps']:g}"
    elif method == "distilled":
        own = f"λ={config['lam']:g}, T={config['T']:g}"
    else:
        raise ValueError(f"method={method!r} is unknown; allowed: {', '.join(METHODS)}")
    return ", ".join(p for p in (own, lr) if p)


def method_of(method: str, config: dict) -> experiments.Method:
    """The :mod:`kdlib.experiments` method of one candidate (named as in :data:`METHODS`).

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    config : dict
        A candidate (see :data:`CANDIDATES`).

    Returns
    -------
    kdlib.experiments.Method
    """
    candidate_label(method, config)  # validates the method
    if method == "student from scratch":
        return experiments.scratch(name=method)
    if method == "label smoothing":
        return experiments.label_smoothing(float(config["eps"]), name=method)
    return experiments.kd(float(config["lam"]), float(config["T"]), name=method)


def run_kwargs(method: str, config: dict, *, epochs: int) -> dict:
    """What :func:`kdlib.experiments.run_point` needs for one candidate of one method.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    config : dict
        A candidate with its ``lr`` (default: the recipe's).
    epochs : int

    Returns
    -------
    dict
        ``lam``, ``T``, ``lr``, ``epochs`` and ``uniform`` (train on the uniform
        teacher's logits: label smoothing, :func:`label_smoothing_identity`).
    """
    candidate_label(method, config)  # validates the method
    lr = float(config.get("lr", experiments.STUDENT_DEFAULTS["lr"]))
    if method == "student from scratch":
        return {"lam": HARD_ONLY_LAM, "T": 1.0, "lr": lr, "epochs": epochs, "uniform": False}
    if method == "label smoothing":
        return {"lam": 1.0 - float(config["eps"]), "T": 1.0, "lr": lr, "epochs": epochs,
                "uniform": True}
    return {"lam": float(config["lam"]), "T": float(config["T"]), "lr": lr, "epochs": epochs,
            "uniform": False}


def seed_pool(pool, n_train: int, seeds):
    """Every seed's training sample (:func:`resample`) as rows of one pool of images.

    Parameters
    ----------
    pool : kdlib.data.Splits
        All training images.
    n_train : int
        Images per seed.
    seeds : sequence of int

    Returns
    -------
    tuple
        ``(data, rows)``: :class:`kdlib.data.Splits` whose ``train`` is the union of the
        samples (``val``/``test`` the pool's), and ``{seed: tuple of rows of data.train}``;
        ``data.train`` restricted to ``rows[s]`` is ``resample(pool, n_train, s).train``.
    """
    picks = {s: _sample_rows(pool, n_train, s) for s in seeds}
    union = np.unique(np.concatenate(list(picks.values())))
    where = {int(v): i for i, v in enumerate(union)}
    rows = {s: tuple(where[int(v)] for v in idx) for s, idx in picks.items()}
    data = Splits(Split(pool.train.x[union], pool.train.y[union]), pool.val, pool.test,
                  pool.classes, pool.name)
    return data, rows


def tune_on_validation(data, rows: dict, teacher_logits, settings: Settings, *,
                       progress: bool = False) -> dict:
    """Every candidate of every method for every seed; choose on validation, test once.

    Each method tries every learning rate of ``settings.lrs`` with each of its own
    candidates (``settings.candidates``). Every student trains on its seed's rows and is
    scored on the validation split; per method the candidate with the best mean validation
    accuracy over the seeds is chosen, and only the chosen students are scored on the test
    split. Same-shape students train together in lockstep
    (:func:`kdlib.experiments.train_students`).

    Parameters
    ----------
    data : kdlib.data.Splits
        :func:`seed_pool`'s data.
    rows : dict
        Seed → rows of ``data.train``.
    teacher_logits : Tensor
        The teacher's logits on ``data.train``.
    settings : Settings

    Returns
    -------
    dict
        ``"grid"``: a DataFrame of every student (``method``, ``label``, ``lr``, ``lam``,
        ``T``, ``eps``, ``seed``, ``val_acc``); ``"selection"``: per method the chosen
        ``label`` and ``config``, its mean ``val_acc`` and the number of ``candidates``;
        ``"chosen"``: the chosen students' rows with ``test_acc``.
    """
    build = experiments.mlp_builder([int(np.prod(data.train.x.shape[1:])),
                                     experiments.STUDENT_DEFAULTS["hidden"], len(data.classes)])
    cands = [(m, c) for m, cs in settings.candidates.items() for c in cs]
    configs = [experiments.Config(build, method_of(m, c), s,
                                  TrainSettings(epochs=settings.epochs, lr=float(c["lr"]),
                                                batch_size=experiments.STUDENT_DEFAULTS["batch_size"]),
                                  rows=rows[s], labels={"label": candidate_label(m, c), "lr": c["lr"]})
               for m, c in cands for s in settings.seed_list]
    val = data.val
    out = experiments.train_students(
        configs, data.train, teacher_logits=teacher_logits, keep=lambda c: True, progress=progress,
        evaluate=lambda model, c, d: {"val_acc": accuracy(model, val.x, val.y)})
    student = {id(r): r.pop("student") for r in out}
    choice = experiments.choose(out, by="label")  # per method, its best mean on validation
    config = {(m, candidate_label(m, c)): dict(c) for m, c in cands}
    selection = pd.DataFrame([{"method": m, "label": c["label"], "config": config[m, c["label"]],
                               "val_acc": c["mean"], "candidates": c["candidates"]}
                              for m, c in choice.items()])
    chosen = [{**r, "test_acc": accuracy(student[id(r)], data.test.x, data.test.y)}  # test once
              for r in experiments.chosen(out, choice, by="label")]
    return {"grid": results.frame(out), "selection": selection.set_index("method"),
            "chosen": results.frame(chosen)}


def primary_table(chosen) -> pd.DataFrame:
    """Test accuracy of the chosen students per method, paired by seed against the student
    from scratch (:func:`kdlib.results.compare`); distilled − scratch is the primary comparison.

    Parameters
    ----------
    chosen : pandas.DataFrame
        :func:`tune_on_validation`'s ``"chosen"``.

    Returns
    -------
    pandas.DataFrame
    """
    return results.compare(chosen, by="method", metric="test_acc", reference=REFERENCE)


def _point(data, logits: dict, kw: dict, *, seed: int, test: bool = False) -> dict:
    """One :func:`kdlib.experiments.run_point` call of a candidate (label smoothing: the uniform teacher)."""
    kw = dict(kw)
    if kw.pop("uniform"):
        train = experiments._train_val_test(data)[0]
        logits = {"train": uniform_teacher(len(train.y), logits["train"].shape[1])}
    return dict(data=data, teacher_logits=logits, seed=seed, test=test, **kw)


@dataclass
class MethodCV:
    """One method's cross-validation: its candidates, their fold scores and the chosen one.

    Attributes
    ----------
    method : str
    candidates : list of dict
        Per candidate: ``label``, ``config``, ``scores`` (held-out accuracy per fold),
        ``mean`` and ``sd``.
    chosen : dict
        The candidate with the best mean (one of ``candidates``).
    rows : list of dict
        :func:`kdlib.experiments.run_points` rows of every (fold, candidate), plus ``fold``, ``label``
        and ``method``.
    chosen_rows : list of dict
        The chosen candidate's rows (notebook 05 passes the scratch student's as a baseline).
    """

    method: str
    candidates: list
    chosen: dict
    rows: list = field(default_factory=list)

    @property
    def chosen_rows(self) -> list:
        """The fold rows of the chosen candidate, in fold order."""
        return [r for r in self.rows if r["label"] == self.chosen["label"]]


@validate_params(epochs=Int(low=1))
def tune_methods(x, y, teacher_logits, *, candidates: dict, k: int = 3, epochs: int = 20,
                 seed: int = 0, jobs: int = 1) -> dict:
    """Score candidates by k-fold cross-validation on one training sample (exploratory in 05).

    Every candidate trains one student per fold on the other ``k − 1`` folds and is scored
    on the held-out fold (the same stratified folds for all). Neither the validation nor
    the test split is touched.

    Parameters
    ----------
    x, y : Tensor
        The training images and labels (one seed's sample).
    teacher_logits : Tensor
        The teacher's logits on ``x``.
    candidates : dict
        ``{method: sequence of configs}`` (see :data:`CANDIDATES`, with ``lr``).
    k : int
        Folds, at least 2.
    epochs : int
    seed : int
        Seeds the folds and every student.
    jobs : int
        Processes training the students (:func:`kdlib.experiments.run_points`); the
        numbers do not depend on it.

    Returns
    -------
    dict
        ``{method: MethodCV}`` in the order of ``candidates``.
    """
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if not (len(x) == len(y) == len(teacher_logits)):
        raise ValueError(f"x, y and teacher_logits must have the same length; got {len(x)}, "
                         f"{len(y)} and {len(teacher_logits)}")
    k = check_int("k", k, low=2, high=len(y))
    folds = experiments.kfold_indices(y, k, seed=seed)
    everything = np.arange(len(y))
    splits = []
    for held in folds:
        rest = np.setdiff1d(everything, held)
        splits.append(((Split(x[rest], y[rest]), Split(x[held], y[held])),
                       {"train": teacher_logits[rest], "val": teacher_logits[held]}))
    cands = {method: [{"label": candidate_label(method, c), "config": dict(c), "scores": []}
                      for c in configs] for method, configs in candidates.items()}
    plan = [(method, i, c) for method in cands for i in range(len(folds)) for c in cands[method]]
    trained = experiments.run_points(
        [_point(*splits[i], run_kwargs(method, c["config"], epochs=epochs), seed=seed)
         for method, i, c in plan], jobs=jobs)
    rows = {method: [] for method in cands}
    for (method, i, c), row in zip(plan, trained):
        row.update(fold=i, label=c["label"], method=method)
        rows[method].append(row)
        c["scores"].append(row["val_acc"])
    out = {}
    for method, method_cands in cands.items():
        for c in method_cands:
            c["mean"], c["sd"] = float(np.mean(c["scores"])), sample_sd(c["scores"])
        chosen = method_cands[int(np.argmax([c["mean"] for c in method_cands]))]
        out[method] = MethodCV(method, method_cands, chosen, rows[method])
    return out


def cv_candidates(selection) -> dict:
    """What notebook 05 cross-validates: the scratch student as validation chose it, and every
    distillation candidate (λ, T) at the learning rate validation chose for distillation.

    Parameters
    ----------
    selection : pandas.DataFrame
        :func:`tune_on_validation`'s ``"selection"``.

    Returns
    -------
    dict
        ``{"student from scratch": [config], "distilled": [configs]}``.
    """
    lr = selection.loc["distilled", "config"]["lr"]
    return {REFERENCE: [dict(selection.loc[REFERENCE, "config"])],
            "distilled": [dict(c, lr=lr) for c in CANDIDATES["distilled"]]}


def cv_frame(cv: dict, n_images: int) -> pd.DataFrame:
    """The cross-validated candidates as one comparison table, each minus the scratch
    student fold by fold, with the **corrected resampled t** interval.

    Folds share most of their training images, so fold scores are not independent; the
    interval is :func:`kdlib.results.corrected_resampled_t`'s (Nadeau & Bengio 2003), and the
    plain fold-paired t interval is kept as ``plain_low``/``plain_high`` for comparison.

    Parameters
    ----------
    cv : dict of str to MethodCV
        :func:`tune_methods`' result, with :data:`REFERENCE` among its methods.
    n_images : int
        Images of the cross-validated sample (each fold holds out ``n_images / k``).

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.results.compare`'s columns (indexed by candidate, ``pair_on="fold"``), the
        interval corrected, plus ``plain_low``, ``plain_high`` and ``chosen`` (bool).
    """
    rows = [{"candidate": f"{m}: {c['label']}" if c["label"] else m, "fold": i, "val_acc": s}
            for m, res in cv.items() for c in res.candidates for i, s in enumerate(c["scores"])]
    ref = REFERENCE if not cv[REFERENCE].chosen["label"] else \
        f"{REFERENCE}: {cv[REFERENCE].chosen['label']}"
    table = results.compare(rows, by="candidate", metric="val_acc", reference=ref, pair_on="fold")
    k = int(table["n"].iloc[0])
    n_test = n_images / k
    table["plain_low"], table["plain_high"] = table["low"], table["high"]
    ref_values = np.asarray(table.loc[ref, "values"])
    for name in table.index:
        if name == ref:
            continue
        d = results.corrected_resampled_t(np.asarray(table.loc[name, "values"]) - ref_values,
                                          n_train=n_images - n_test, n_test=n_test)
        table.loc[name, ["low", "high"]] = [d.low, d.high]
        table.loc[name, "verdict"] = d.verdict
    chosen = {f"{m}: {r.chosen['label']}" if r.chosen["label"] else m for m, r in cv.items()}
    table["chosen"] = [name in chosen for name in table.index]
    table.attrs["interval"] = "corrected resampled t"
    return table


# --------------------------------------------------------------------------- regimes
@validate_params(seed=Int(low=0))
def transfer_data(pool, *, n_labeled: int, seed: int, n_val: int = 5000):
    """Few labels, a transfer set the teacher never saw, and a new validation split.

    The labelled images are a stratified subset of the training pool (a new one
    per seed); the transfer set is the pool's **validation** images (never in the
    teacher's training data: notebook 01 held them out); the student's new
    validation split is ``n_val`` further pool images (outside the labelled set).

    Returns
    -------
    data : kdlib.data.Splits
        ``train`` the labelled images, ``val`` the new validation split.
    x_transfer : Tensor
        The transfer images (their labels are never used).
    """
    n_labeled = check_int("n_labeled", n_labeled, low=1, high=len(pool.train.y) - n_val)
    rng = np.random.default_rng(2000 + seed)
    y = pool.train.y.numpy()
    lab, rest = stratified_split(y, n_labeled, rng)
    val_pick, _ = stratified_split(y[rest], n_val, rng)
    lab, val_idx = np.sort(lab), np.sort(rest[val_pick])
    data = Splits(Split(pool.train.x[lab], pool.train.y[lab]),
                  Split(pool.train.x[val_idx], pool.train.y[val_idx]), pool.test, pool.classes,
                  pool.name)
    return data, pool.val.x


def equal_step_epochs(epochs: int, n_labeled: int, n_transfer: int) -> int:
    """Epochs on labelled + transfer images that take about as many optimisation steps as
    ``epochs`` epochs on the labelled images alone (at least 1).

    Parameters
    ----------
    epochs : int
        Epochs on the labelled images alone.
    n_labeled, n_transfer : int
        Labelled and transfer images (``n_labeled + n_transfer > 0``).

    Returns
    -------
    int
        ``max(1, round(epochs * n_labeled / (n_labeled + n_transfer)))``.
    """
    return max(1, round(epochs * n_labeled / (n_labeled + n_transfer)))


def _student_settings(epochs: int, lr: float) -> TrainSettings:
    return TrainSettings(epochs=epochs, lr=lr, batch_size=experiments.STUDENT_DEFAULTS["batch_size"])


def regime_rows(data, rows: dict, pool_logits, val_logits, *, scratch_rows, scratch_config: dict,
                lam: float, T: float, settings: Settings) -> tuple[dict, dict]:
    """When does distillation help? One student per seed in each regime, all paired by seed.

    Per seed ``s`` (its own sample, ``rows[s]``): distilled from the real teacher at
    (``lam``, ``T``); distilled from a same-size teacher (the student's ``mlp``) trained on
    the same images for ``small_teacher_epochs`` (weaker than the student), and from one
    trained with the tuned scratch recipe (born-again, Furlanello et al. 2018); and the
    scratch and distilled students after only ``few_epochs``. ``scratch_rows`` (the tuned
    scratch student's rows, one per seed) is the reference. Teachers and students train in
    lockstep (:func:`kdlib.experiments.train_students`), scored on the validation split.

    Parameters
    ----------
    data : kdlib.data.Splits
        :func:`seed_pool`'s data.
    rows : dict
        Seed → rows of ``data.train``.
    pool_logits : Tensor
        The real teacher's logits on ``data.train``.
    val_logits : Tensor
        Its logits on the validation split (the ``agreement`` column).
    scratch_rows : list of dict
        The tuned scratch student's rows, one per seed.
    scratch_config : dict
        Its chosen configuration (``lr``): the born-again teacher's recipe.
    lam, T : float
    settings : Settings
        ``epochs``, ``few_epochs``, ``small_teacher_epochs`` and the seeds.

    Returns
    -------
    rows : dict
        ``{regime: list of rows}`` (keys ``"scratch (tuned)"``, ``"real teacher"``,
        ``"weak teacher"``, ``"born-again teacher"``, ``"scratch, few epochs"``,
        ``"real teacher, few epochs"``).
    teachers : dict
        ``{"weak teacher": [val acc per seed], "born-again teacher": [...]}``.
    """
    build = experiments.mlp_builder([int(np.prod(data.train.x.shape[1:])),
                                     experiments.STUDENT_DEFAULTS["hidden"], len(data.classes)])
    lr0 = experiments.STUDENT_DEFAULTS["lr"]
    val = data.val

    def scored(model, c, d):
        v = predict(model, val.x)
        return {"val_acc": float((v.argmax(1) == val.y).float().mean()),
                "agreement": float((v.argmax(1) == val_logits.argmax(1)).float().mean()), "logits": v}

    small = [experiments.Config(build, experiments.scratch(name), 100 + s, _student_settings(ep, lr),
                                rows=rows[s], labels={"regime": name})
             for name, ep, lr in (("weak teacher", settings.small_teacher_epochs, lr0),
                                  ("born-again teacher", settings.epochs, float(scratch_config["lr"])))
             for s in settings.seed_list]
    trained = experiments.train_students(small, data.train, evaluate=scored, keep=lambda c: True,
                                         progress=False)
    teachers = {"weak teacher": [], "born-again teacher": []}
    xs, ys, ls, own = [data.train.x], [data.train.y], [pool_logits], {}
    start = len(data.train.y)
    for c, r in zip(small, trained):
        teachers[r["regime"]].append(r["val_acc"])
        idx = list(rows[c.seed - 100])
        xs.append(data.train.x[idx])
        ys.append(data.train.y[idx])
        ls.append(predict(r["student"], data.train.x[idx]))
        own[(r["regime"], c.seed - 100)] = tuple(range(start, start + len(idx)))
        start += len(idx)
    big = Split(torch.cat(xs), torch.cat(ys))
    configs = []
    for s in settings.seed_list:
        configs += [
            experiments.Config(build, experiments.kd(lam, T, name="real teacher"), s,
                               _student_settings(settings.epochs, lr0), rows=rows[s]),
            experiments.Config(build, experiments.scratch("scratch, few epochs"), s,
                               _student_settings(settings.few_epochs, lr0), rows=rows[s]),
            experiments.Config(build, experiments.kd(lam, T, name="real teacher, few epochs"), s,
                               _student_settings(settings.few_epochs, lr0), rows=rows[s])]
        configs += [experiments.Config(build, experiments.kd(lam, T, name=name), s,
                                       _student_settings(settings.epochs, lr0), rows=own[(name, s)])
                    for name in ("weak teacher", "born-again teacher")]
    out = {"scratch (tuned)": list(scratch_rows)}
    out.update({k: [] for k in ("real teacher", "weak teacher", "born-again teacher",
                                "scratch, few epochs", "real teacher, few epochs")})
    for r in experiments.train_students(configs, big, teacher_logits=torch.cat(ls), evaluate=scored,
                                        progress=False):
        r.pop("logits")
        out[r["method"]].append(r)
    return out, teachers


def transfer_rows(pool, teacher, val_logits, *, n_labeled: int, n_transfer: int, lam: float,
                  T: float, epochs: int, seeds, jobs: int = 1) -> dict:
    """The transfer-set experiment, one student per seed and arm (paired by seed).

    Arms: labels only (λ = 1), distilled on the labelled images, and distilled
    with ``n_transfer`` of the validation images (never in the teacher's training
    data) as an unlabelled transfer set, trained for :func:`equal_step_epochs`
    so that it takes about as many optimisation steps as the other two. ``jobs``
    processes train the students (the numbers do not depend on it).

    Returns
    -------
    dict
        ``{"labels only": rows, "distilled": rows, "+ transfer set": rows}`` and
        ``"epochs"``: the transfer arm's epochs.
    """
    n_transfer = check_int("n_transfer", n_transfer, low=1, high=len(pool.val.y))
    tr_epochs = equal_step_epochs(epochs, n_labeled, n_transfer)
    out = {"labels only": [], "distilled": [], "+ transfer set": [], "epochs": tr_epochs}
    plan = []
    for s in experiments._seed_list(seeds):
        d, x_u = transfer_data(pool, n_labeled=n_labeled, seed=s, n_val=len(pool.val.y))
        common = dict(data=d, teacher_logits={"train": predict(teacher, d.train.x)}, seed=s)
        plan += [("labels only", dict(common, lam=HARD_ONLY_LAM, T=1.0, epochs=epochs)),
                 ("distilled", dict(common, lam=lam, T=T, epochs=epochs)),
                 ("+ transfer set", dict(common, lam=lam, T=T, epochs=tr_epochs,
                                         transfer=(x_u[:n_transfer], val_logits[:n_transfer])))]
    for (name, _), row in zip(plan, experiments.run_points([call for _, call in plan], jobs=jobs)):
        out[name].append(row)
    return out


# --------------------------------------------------------------------------- comparisons
def groups_table(groups: dict, *, metric: str = "val_acc", reference: str | None = None) -> pd.DataFrame:
    """Rows of several groups, one row per seed each, as one comparison table paired by seed.

    Parameters
    ----------
    groups : dict
        ``{name: list of rows}`` (each row with ``seed`` and ``metric``).
    metric : str
    reference : str, optional
        The group the others are compared with (default: the first).

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.results.compare`'s table, indexed by group.
    """
    rows = [{"group": name, "seed": r["seed"], metric: r[metric]}
            for name, rs in groups.items() for r in rs]
    return results.compare(rows, by="group", metric=metric,
                           reference=next(iter(groups)) if reference is None else reference)


# --------------------------------------------------------------------------- prose
def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _mean_sd(row) -> str:
    sd = "" if math.isnan(row["sd"]) else f" ± {100 * row['sd']:.2f}"
    return f"{100 * row['mean']:.2f}{sd} %"


def _diff(table: pd.DataFrame, name: str) -> results.PairedDifference:
    """``name`` minus the table's reference as a PairedDifference (its interval as in the table)."""
    r = table.loc[name]
    sd = sample_sd(np.asarray(r["values"]) - np.asarray(table.loc[table.attrs["reference"], "values"]))
    return results.PairedDifference(float(r["diff"]), sd, float(r["low"]), float(r["high"]),
                                    int(r["n"]), table.attrs.get("confidence", 0.95))


def _few(n: int) -> str:
    return "" if n >= 5 else "; a smoke run, not the protocol's five seeds"


def say_selection(selection: pd.DataFrame, seeds: int, lrs=LRS) -> Markdown:
    """What the validation split chose for each method, and where a choice sits on the grid's edge.

    Parameters
    ----------
    selection : pandas.DataFrame
        :func:`tune_on_validation`'s ``"selection"``.
    seeds : int
        Seeds the means were taken over.
    lrs : sequence of float
        The learning rates tried (:attr:`Settings.lrs`).

    Returns
    -------
    IPython.display.Markdown
    """
    parts, edges = [], []
    for m, r in selection.iterrows():
        parts.append(f"{m}: **{r['label']}** ({_pct(r['val_acc'])}, best of {r['candidates']})")
        c = r["config"]
        if m == "label smoothing" and c["eps"] == max(e["eps"] for e in CANDIDATES[m]):
            edges.append(f"ε = {c['eps']:g} is the largest ε offered (a larger one might do better)")
        if len(lrs) > 1 and c["lr"] in (min(lrs), max(lrs)):
            edges.append(f"{m} chose the {'smallest' if c['lr'] == min(lrs) else 'largest'} learning rate")
    edge = (" On the edge of the grid: " + "; ".join(edges) + ".") if edges else ""
    return Markdown(f"What the **validation split** chose (the best mean validation accuracy over "
                    f"{seeds} seeds; the test set was not looked at): " + "; ".join(parts) + "." + edge)


def say_primary(table: pd.DataFrame, teacher_acc: float) -> Markdown:
    """The primary comparison (distilled − scratch on test) and the exploratory label-smoothing
    control, each with its verdict from the interval.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`primary_table`.
    teacher_acc : float
        The teacher's test accuracy.

    Returns
    -------
    IPython.display.Markdown
    """
    kd_d, ls_d = _diff(table, "distilled"), _diff(table, "label smoothing")
    s = table.loc[REFERENCE]
    gap = teacher_acc - s["mean"]
    closed = (f" It closes {100 * kd_d.mean / gap:.0f} % of the gap between the scratch student and "
              f"the teacher ({_pct(teacher_acc)})." if gap > 0 and kd_d.verdict == "helped" else "")
    vs = results.paired_difference(table.loc["distilled", "values"], table.loc["label smoothing", "values"])
    if ls_d.verdict == "not shown" and vs.verdict == "helped":
        control = ("so *uniform* softening did not reproduce distillation's gain here: distilled − "
                   f"label smoothing {vs.format()}")
    elif ls_d.verdict == "helped" and vs.verdict == "helped":
        control = ("so uniform softening reproduced part of distillation's gain here, not all of it: "
                   f"distilled − label smoothing {vs.format()}")
    elif ls_d.verdict == "helped":
        control = ("so uniform softening alone also helped here; distilled − label smoothing: "
                   f"{vs.describe('the teacher beyond uniform softening')}")
    else:
        control = f"distilled − label smoothing: {vs.describe('the teacher beyond uniform softening')}"
    return Markdown(
        f"**Primary comparison** (test set, {kd_d.n} seeds{_few(kd_d.n)}): from scratch "
        f"{_mean_sd(s)}, distilled {_mean_sd(table.loc['distilled'])}; "
        f"{kd_d.describe('distillation')}.{closed}\n\n"
        f"*Exploratory:* label smoothing {_mean_sd(table.loc['label smoothing'])}; against scratch "
        f"{ls_d.describe('label smoothing')}; {control}.")


def say_cv(table: pd.DataFrame, cv: dict, selection: pd.DataFrame) -> Markdown:
    """What k-fold cross-validation chose against validation's choice, and its corrected intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`cv_frame`.
    cv : dict
        :func:`tune_methods`' result.
    selection : pandas.DataFrame
        :func:`tune_on_validation`'s ``"selection"``.

    Returns
    -------
    IPython.display.Markdown
    """
    cv_pick = cv["distilled"].chosen["config"]
    val_pick = selection.loc["distilled", "config"]
    same = (cv_pick["lam"], cv_pick["T"]) == (val_pick["lam"], val_pick["T"])
    agree = ("the validation split chose the same (λ, T)" if same else
             f"the validation split chose λ = {val_pick['lam']:g}, T = {val_pick['T']:g}")
    k = int(table["n"].iloc[0])
    name = f"distilled: {cv['distilled'].chosen['label']}"
    r = table.loc[name]
    spread = [c["mean"] for c in cv["distilled"].candidates]
    shown = int((table["verdict"].isin(["helped", "hurt"])).sum())
    plain = ("excludes 0" if r["plain_low"] > 0 or r["plain_high"] < 0 else "contains 0")
    return Markdown(
        f"Over {k} folds cross-validation chose **λ = {cv_pick['lam']:g}, T = {cv_pick['T']:g}** "
        f"({_pct(cv['distilled'].chosen['mean'])}); {agree}. The {len(spread)} "
        f"candidates' fold means span {100 * (max(spread) - min(spread)):.2f} points. The chosen one "
        f"minus the scratch student, fold by fold: {100 * r['diff']:+.2f} points, corrected 95 % CI "
        f"{100 * r['low']:+.2f} to {100 * r['high']:+.2f} ({r['verdict']}); the plain fold-paired t "
        f"would have said {100 * r['plain_low']:+.2f} to {100 * r['plain_high']:+.2f}, which {plain}. "
        f"{shown} of the {len(table) - 1} corrected intervals exclude 0 (exploratory; see the note "
        "on multiplicity).")


def say_regimes(table: pd.DataFrame, teachers: dict, few: results.PairedDifference,
                few_epochs: int) -> Markdown:
    """The regimes against the tuned scratch student (exploratory), each with its verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`groups_table` of :func:`regime_rows`' rows (reference: ``"scratch (tuned)"``).
    teachers : dict
        :func:`regime_rows`' validation accuracies of the small teachers.
    few : kdlib.results.PairedDifference
        Distilled minus scratch, both after ``few_epochs``.
    few_epochs : int

    Returns
    -------
    IPython.display.Markdown
    """
    s = table.loc["scratch (tuned)"]
    lines = [f"Tuned scratch student: {_mean_sd(s)} on validation."]
    for name, what in (("real teacher", "the CNN teacher"), ("weak teacher", "the weak teacher"),
                       ("born-again teacher", "the born-again teacher")):
        own = f" (itself {format_pct(teachers[name])})" if name in teachers else ""
        lines.append(f"- {what}{own}: {_diff(table, name).describe('distillation')}.")
    lines.append(f"- after {few_epochs} epoch{'s' * (few_epochs != 1)}, distilled − scratch (both "
                 f"short): {few.describe('distillation')}.")
    ba = _diff(table, "born-again teacher")
    if ba.verdict == "not shown":
        lines.append("The born-again teacher's interval contains 0: this run neither shows the gain "
                     "reported for born-again networks nor harm.")
    return Markdown("\n".join(lines))


def say_transfer(table: pd.DataFrame, d: results.PairedDifference, epochs: int,
                 transfer_epochs: int) -> Markdown:
    """The transfer-set experiment (exploratory), with verdicts from the intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`groups_table` of :func:`transfer_rows`' arms (reference: ``"labels only"``).
    d : kdlib.results.PairedDifference
        ``"+ transfer set"`` minus ``"distilled"``.
    epochs, transfer_epochs : int
        Epochs of the two labelled-only arms and of the transfer arm.

    Returns
    -------
    IPython.display.Markdown
    """
    helped = d.verdict == "helped"
    return Markdown(
        f"Distilling on the labelled images alone: {_diff(table, 'distilled').describe('distillation')}. "
        f"With the transfer set ({transfer_epochs} epochs against {epochs}, about equal steps): "
        f"{_diff(table, '+ transfer set').describe('distillation with the transfer set')}. "
        f"The transfer set against distilling without it: {d.describe('the transfer set')}"
        + (": at equal steps it added accuracy here." if helped else
           "." if d.verdict == "hurt" else ": at equal steps it did not show a gain here."))


def say_summary(primary: pd.DataFrame, regimes: pd.DataFrame, transfer: results.PairedDifference) -> Markdown:
    """The three-line summary, every claim as its interval says.

    Parameters
    ----------
    primary : pandas.DataFrame
        :func:`primary_table`.
    regimes : pandas.DataFrame
        :func:`groups_table` of the regimes.
    transfer : kdlib.results.PairedDifference
        Transfer set minus distilled.

    Returns
    -------
    IPython.display.Markdown
    """
    kd_d, ls_d = _diff(primary, "distilled"), _diff(primary, "label smoothing")
    verdicts = {n: _diff(regimes, n).verdict for n in ("weak teacher", "born-again teacher")}
    return Markdown(
        f"1. With every method tuned on validation with the same learning rates: "
        f"{kd_d.describe('distillation')} (test set, the primary comparison).\n"
        f"2. Label smoothing, distillation from a uniform teacher (exploratory): "
        f"{ls_d.describe('label smoothing')}.\n"
        f"3. Exploratory regimes: weak teacher {verdicts['weak teacher']}, born-again teacher "
        f"{verdicts['born-again teacher']}; the transfer set at equal steps {transfer.verdict}.")


# --------------------------------------------------------------------------- exercises
VERDICTS = ("helped", "hurt", "not shown")
"""The answers of exercises 2 to 5: what a paired 95 % interval says."""

EXERCISE_SEEDS = 3
"""Exercise 2 trains this many seeds per temperature."""


def _graded(answer, d, what: str):
    right = d.verdict
    ok = answer == right
    return ok, (f"{what}: {d.format()}: '{right}'." if ok else
                "pair the values by seed (kdlib.results.paired_difference) and look at the 95 % "
                "interval: above 0 'helped', below 0 'hurt', containing 0 'not shown'.")


def _ex1(answer, *, cv, **_):
    rows = cv["distilled"].rows
    agree = {}
    for r in rows:
        agree.setdefault((r["lam"], r["T"]), []).append(r["agreement"])
    best = max(agree, key=lambda p: np.mean(agree[p]))
    try:
        ok = tuple(float(v) for v in answer) == best
    except (TypeError, ValueError):
        ok = False
    means = ", ".join(f"λ={p[0]:g}, T={p[1]:g}: {100 * np.mean(v):.2f} %" for p, v in agree.items())
    return ok, (f"λ={best[0]:g}, T={best[1]:g} agrees most ({means})." if ok else
                "give (lam, T); move the sliders and read the agreement the label prints.")


def _ex2(answer, *, data, logits, **_):
    seeds = list(zip(data, logits))[:EXERCISE_SEEDS]
    rows = experiments.run_points([dict(data=d, teacher_logits=lg, lam=0.0, T=T, seed=seed)
                                   for seed, (d, lg) in enumerate(seeds) for T in (1.0, 4.0)])
    d = paired_difference([r["val_acc"] for r in rows[1::2]], [r["val_acc"] for r in rows[::2]])
    return _graded(answer, d, f"T = 4 against T = 1 at λ = 0 on validation, {len(seeds)} seeds")


def _ex3(answer, *, regimes, **_):
    d = paired_difference([r["val_acc"] for r in regimes["born-again teacher"]],
                          [r["val_acc"] for r in regimes["scratch (tuned)"]])
    return _graded(answer, d, "the born-again teacher against the tuned scratch student")


def _ex4(answer, *, chosen, **_):
    by = {m: chosen[chosen["method"] == m].sort_values("seed")["test_acc"].to_numpy()
          for m in ("distilled", "label smoothing")}
    d = paired_difference(by["distilled"], by["label smoothing"])
    return _graded(answer, d, "distilled against label smoothing on the test set")


def _ex5(answer, *, transfer, **_):
    d = paired_difference([r["val_acc"] for r in transfer["+ transfer set"]],
                          [r["val_acc"] for r in transfer["distilled"]])
    return _graded(answer, d, "the transfer set at equal steps")


EXERCISES = {1: _ex1, 2: _ex2, 3: _ex3, 4: _ex4, 5: _ex5}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)``, graded by
:func:`kdlib._checks.check_answer` against this run's numbers."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the distillation candidate ``(lam, T)`` with the highest mean agreement with the "
             "teacher over the folds; 2 to 5: one of :data:`VERDICTS`, what the paired 95 % "
             "interval over the seeds says (2: T = 4 against T = 1 at λ = 0 on validation, over "
             ":data:`EXERCISE_SEEDS` seeds; 3: the born-again teacher against the tuned scratch "
             "student; 4: the distilled student against the label-smoothing one, on the test set; "
             "5: the transfer set against distilling without it)."),
    evidence={"cv": "Exercise 1: :func:`tune_methods`'s result.",
              "data, logits": "Exercise 2: the data and the teacher's logits, one per seed (it trains "
                              "two students per seed when an answer is given).",
              "regimes": "Exercise 3: :func:`regime_rows`'s rows.",
              "chosen": "Exercise 4: :func:`tune_on_validation`'s result.",
              "transfer": "Exercise 5: :func:`transfer_rows`'s rows."})


# --------------------------------------------------------------------------- figures
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
        loss_ax.legend(fontsize=8, loc="upper right")
    if any(labels) or baseline or references:
        acc_ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)


def grid_point(rows, *, baseline_rows=None, teacher_acc: float | None = None,
               title: str = "", unit: str = "seed") -> Figure:
    """One (λ, T) point of a grid: its learning curves, accuracy and agreement.

    Parameters
    ----------
    rows : list of dict
        The rows of this point (one per seed).
    baseline_rows : list of dict, optional
        Rows of the baseline student (λ = 1): a dashed mean curve, a dotted
        reference line at its mean final accuracy, and its dots on the right.
    teacher_acc : float, optional
        The teacher's validation accuracy: a dotted reference line.
    title : str
    unit : str
        What one row is: ``"seed"`` or ``"fold"`` (its column names the curves).

    Returns
    -------
    Figure
        ``axes[0]`` training loss per epoch, ``axes[1]`` validation accuracy per
        epoch (lines: one per row in order, the baseline mean, then the
        references teacher and baseline), ``axes[2]`` a dot plot: validation
        accuracy and agreement with the teacher, the mean over the rows (the lines
        labelled ``"val accuracy"`` and ``"agreement with teacher"``, one point per
        group: this point, then the baseline) and every row a small grey dot.
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
                     [f"{unit} {r[unit]}" for r in rows],
                     [r["history"] for r in baseline_rows] if baseline_rows else None, refs)
    else:
        for a in ax[0, :2]:
            a.text(0.5, 0.5, "no run at this point", ha="center", va="center",
                   transform=a.transAxes)
    bars = ax[0, 2]  # a dot plot (its axis does not start at 0)
    groups = [("this point", rows)] + ([("baseline λ=1", baseline_rows)] if baseline_rows else [])
    width = 0.38
    for k, (metric, colour) in enumerate((("val_acc", "C0"), ("agreement", "C1"))):
        means = [np.mean([r[metric] for r in g]) if g else np.nan for _, g in groups]
        pos = np.arange(len(groups)) + (k - 0.5) * width
        bars.plot(pos, means, "D", ms=6, color=colour, ls="none",
                  label="val accuracy" if metric == "val_acc" else "agreement with teacher")
        for p, (_, g) in zip(pos, groups):
            bars.plot(np.full(len(g), p + 0.07), [r[metric] for r in g], ".", color="0.35", ms=3)
        for p, m in zip(pos, means):
            if not math.isnan(m):
                bars.text(p - 0.07, m, f"{m:.3f}", ha="right", va="center", fontsize=8)
    if teacher_acc is not None:  # a short mark beside the accuracies only (agreement is no accuracy)
        acc_pos = np.arange(len(groups)) - 0.5 * width
        bars.hlines(teacher_acc, acc_pos[0] - 0.15, acc_pos[-1] + 0.15, ls=":", lw=1.4, color="C2",
                    label=f"teacher accuracy {teacher_acc:.3f}")
    bars.set_xticks(np.arange(len(groups)), [g for g, _ in groups], fontsize=8)
    vals = [r[m] for _, g in groups for r in g for m in ("val_acc", "agreement")]
    if vals:
        bars.set_ylim(max(0.0, min(vals) - 0.06), min(1.0, max(vals + [teacher_acc or 0]) + 0.05))
    bars.set(title="after the last epoch")
    bars.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    if title:
        fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------- widgets
class GridExplorer:
    """Sliders ``λ`` and ``T`` over a precomputed grid; the callback only redraws.

    Every student was trained beforehand (:func:`kdlib.experiments.train_grid`), so moving a
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
        Rows of the baseline student (:func:`kdlib.experiments.baseline`).
    lam, T : float, optional
        The point shown first (default: the best mean validation accuracy).
    unit : str
        What the rows of one point are: ``"seed"`` (default) or ``"fold"``
        (cross-validation rows, with a ``fold`` column).

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

    @validate_params(teacher_acc=Optional(Float(0, 1)))
    def __init__(self, rows, *, teacher_acc: float | None = None, baseline=None, lam=None,
                 T=None, unit: str = "seed"):
        self.rows = [r for r in rows]
        if unit not in ("seed", "fold"):
            raise ValueError(f"unit={unit!r} is not allowed; use 'seed' or 'fold'")
        self.unit = unit
        if not self.rows:
            raise ValueError("rows is empty: run kdlib.experiments.train_grid first")
        self.teacher_acc = teacher_acc
        self.baseline = list(baseline) if baseline else []
        lams = sorted({float(r["lam"]) for r in self.rows})
        Ts = sorted({float(r["T"]) for r in self.rows})
        if lam is None or T is None:
            best = experiments.select_best(self.rows)
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
        return experiments.rows_at(self.rows, lam, T)

    def _redraw(self, change=None) -> None:
        t0 = time.perf_counter()
        lam, T = float(self.lam_slider.value), float(self.T_slider.value)
        self.current = self.rows_at(lam, T)
        figure, png = self._drawn.get((lam, T), (None, None))
        if figure is None:
            figure = grid_point(self.current, baseline_rows=self.baseline,
                                      teacher_acc=self.teacher_acc,
                                      title=f"λ = {lam:g}, T = {T:g}", unit=self.unit)
        self.figure = figure
        if self.current:
            text = (f"<b>λ={lam:g}, T={T:g}</b>: validation accuracy "
                    f"{format_pct([r['val_acc'] for r in self.current])}, agreement with the teacher "
                    f"{format_pct([r['agreement'] for r in self.current])} "
                    f"({len(self.current)} {self.unit}{'s' * (len(self.current) != 1)})")
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
                                       title=f"λ = {lam:g}, T = {T:g}", unit=self.unit)
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
    seed : int
        Seeds the student.
    teacher_acc, baseline_acc : float, optional
        Reference lines (validation accuracy of the teacher and of the baseline).
    **recipe
        ``hidden``, ``lr``, ``batch_size`` of the student
        (:func:`kdlib.experiments.student_recipe`; epochs come from the slider).

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
        Of the last run; ``result`` the dict from :func:`kdlib.experiments.evaluate`
        plus lam, T, epochs, seconds; ``error`` the exception of a failed run.
    runs : int
        Number of finished or failed runs.
    redraw_every : float
        Seconds between two redraws of the live curves (the first and the last epoch
        are always drawn); ``draws`` counts the redraws.
    """

    @validate_params(lam=LAM, T=Float(0.5, 20.0), max_epochs=Int(low=1), seed=Int(low=0),
                     teacher_acc=Optional(Float(0, 1)), baseline_acc=Optional(Float(0, 1)))
    def __init__(self, data, teacher_logits, *, lam: float = 0.5, T: float = 4.0,
                 epochs: int = experiments.STUDENT_DEFAULTS["epochs"], max_epochs: int = 60,
                 seed: int = 0, teacher_acc: float | None = None, baseline_acc: float | None = None,
                 **recipe):
        self.data = data
        self.teacher_logits = teacher_logits
        self.seed = seed
        if "epochs" in recipe:
            raise TypeError("epochs is TrainNow's slider: pass epochs=, not in the recipe")
        self.recipe = experiments.student_recipe(**recipe)
        del self.recipe["epochs"]
        epochs = check_int("epochs", epochs, low=1, high=max_epochs)
        self.references = {}
        if teacher_acc is not None:
            self.references["teacher"] = teacher_acc
        if baseline_acc is not None:
            self.references["baseline λ=1"] = baseline_acc
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
            student, history = experiments.distill_mlp(
                self.data, self.teacher_logits, lam=lam, T=T, seed=self.seed, epochs=epochs,
                **self.recipe,
                callback=self._on_epoch)
            self.history = history
            metrics = experiments.evaluate(student, self.data, self.teacher_logits)
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
