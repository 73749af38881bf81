"""Lesson module of ``notebooks/05_lambda_tuning.ipynb`` (tuning λ and T against fairly tuned
baselines: cross-validation with one budget, seeds that resample the data, regimes, transfer set).

It holds everything only notebook 05 uses; the row cache, the folds and the grids are the
core module :mod:`kdlib.experiments`, the statistics :mod:`kdlib.results`:

* its settings, :class:`Settings` (the parameters, the tiny :data:`QUICK` ones of
  ``quick=True``, and what derives from them), made by :func:`check_params`;
* data per seed, :func:`resample` (seed ``s`` draws a new training subset), and the
  uniform teacher behind label smoothing (:func:`uniform_teacher`,
  :func:`label_smoothing_identity`);
* the three methods with one cross-validation budget (:data:`CANDIDATES`,
  :func:`tune_methods`, :func:`cv_table`, :func:`cv_gaps`), their test rows
  (:func:`final_rows`) and the Hinton et al. (2015)-style results table with paired
  differences (:func:`results_table`, :func:`format_results`);
* the regimes (:func:`regime_rows`: weak and born-again same-size teachers, few
  epochs) and the transfer set held out of the teacher's training data
  (:func:`transfer_data`, :func:`transfer_rows`, :func:`equal_step_epochs`);
* the exercises, :data:`EXERCISES`, graded by :func:`check_exercise` (a :class:`kdlib._checks.Verdict`);
* its figures (each returns a new ``Figure``): :func:`cv_figure`, :func:`paired_figure`,
  :func:`learning_curves`, :func:`grid_point`, :func:`group_dots`;
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
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure

from kdlib import experiments
from kdlib._checks import Bool, Float, Int, Str, Verdict, check_answer, check_float, check_int
from kdlib._checks import check_params as _check_params
from kdlib.data import Split, Splits, stratified_split
from kdlib.losses import HARD_ONLY_LAM, kd_loss
from kdlib.models import predict
from kdlib.plots import new_figure
from kdlib.results import format_pct, paired_difference, sample_sd
from kdlib.widgets import figure_png, in_kernel, show_in

__all__ = [
    "PARAMS", "QUICK", "Settings", "CANDIDATES", "METHODS", "check_params", "resample",
    "uniform_teacher", "label_smoothing_identity", "candidate_label", "run_kwargs", "MethodCV",
    "tune_methods", "cv_table", "cv_gaps", "cv_figure", "final_rows", "results_table",
    "format_results", "paired_figure", "small_teacher_logits", "regime_rows", "transfer_data",
    "equal_step_epochs", "transfer_rows", "verdict", "EXERCISES", "check_exercise", "learning_curves",
    "grid_point", "group_dots", "GridExplorer", "TrainNow",
]

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
    "jobs": Int(0, 64),
    "small_teacher_epochs": Int(1, 100),
    "n_labeled": Int(10, 50000),
    "n_transfer": Int(1, 5000),
}


"""Notebook 05's parameters and their allowed values (name → constraint)."""


QUICK = {"seeds": 2, "n_train": 300, "n_val": 500, "n_test": 1000, "epochs": 3, "few_epochs": 1,
         "k_folds": 2, "small_teacher_epochs": 1, "n_labeled": 200, "n_transfer": 300,
         "candidates": 2}
"""What ``quick=True`` uses (a few seconds in all; ``candidates: 2``: the first and the last
of each method's :data:`CANDIDATES`, so that both distillation sliders still move). Its
parameter entries replace the parameters; the others are derived settings of :class:`Settings`."""


STUDENT_THREADS = 1
"""Torch threads of the notebook's students: tiny MLPs gain nothing from a second
thread; a second process, training another student, nearly halves the wall time."""


@dataclass(frozen=True)
class Settings:
    """Notebook 05's parameters, validated, with ``quick`` applied (made by :func:`check_params`).

    Attributes
    ----------
    checkpoint : str
        Teacher checkpoint path; ``""`` means ``data/teacher.pt``.
    lam : float
        λ in [0, 1] of the regime experiments and of the point whose metrics are recorded.
    T : float
        Its temperature, in (0, 100].
    quick : bool
        Tiny settings (:data:`QUICK`) replace the sizes below.
    n_train : int
        Labelled training images of the student, in [20, 55000].
    epochs : int
        Student epochs, in [1, 500].
    seeds : int
        Seeds (each with its own training sample), in [1, 20].
    k_folds : int
        Folds of the cross-validation, in [2, 20].
    small_teacher_epochs : int
        Epochs of the weak same-size teacher, in [1, 100].
    n_labeled : int
        Labelled images of the transfer-set experiment, in [10, 50000].
    n_transfer : int
        Its unlabelled transfer images, in [1, 5000].
    jobs : int
        Processes training students side by side, in [0, 64]; 0 means one per core
        (:attr:`n_jobs`). The numbers do not depend on it.
    """

    checkpoint: str
    lam: float
    T: float
    quick: bool
    n_train: int
    epochs: int
    seeds: int
    k_folds: int
    small_teacher_epochs: int
    n_labeled: int
    n_transfer: int
    jobs: int

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
    def candidates(self) -> dict:
        """Per method, its candidates (:data:`CANDIDATES`; with ``quick`` the first and the
        last of each), the scratch student's epochs scaled by ``epochs / 20``."""
        cands = {m: [dict(c) for c in (cs if not self.quick else (cs[0], cs[-1]))]
                 for m, cs in CANDIDATES.items()}
        for c in cands["student from scratch"]:  # 10 and 20 of 20 epochs: scale with epochs
            c["epochs"] = max(1, round(c["epochs"] * self.epochs / experiments.STUDENT_DEFAULTS["epochs"]))
        return cands

    @property
    def n_jobs(self) -> int:
        """Worker processes: ``jobs``, or for 0 one per core for the one-thread students (1 with
        ``quick``, where starting workers costs more than it saves)."""
        return self.jobs or (1 if self.quick else experiments.default_jobs(threads=STUDENT_THREADS))


def check_params(**params) -> Settings:
    """Validate notebook 05's parameters before any work starts; apply ``quick``.

    Parameters
    ----------
    **params
        Every parameter of the notebook's ``parameters`` cell, by name (see
        :class:`Settings`); ``n_train`` must give at least 10 images per fold.

    Returns
    -------
    Settings
        The parameters, converted (``int``/``float``); with ``quick=True`` the sizes
        of :data:`QUICK`.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and the allowed range.
    """
    p = _check_params(params, PARAMS)
    if p["n_train"] < p["k_folds"] * 10:
        raise ValueError(f"n_train={p['n_train']} is too small for k_folds={p['k_folds']}; "
                         f"allowed: n_train >= {p['k_folds'] * 10} (10 images per fold)")
    if p["quick"]:
        p.update({k: v for k, v in QUICK.items() if k in p})
    return Settings(**p)


# --------------------------------------------------------------------------- data per seed
def resample(pool, n_train: int, seed: int):
    """The student's data for one seed: a fresh stratified ``n_train`` subset of the pool.

    Seed ``s`` draws a different subset of ``pool.train`` (and, in
    :func:`final_rows`, a different initialisation), so the spread over seeds
    includes the data-sampling variance. The validation and test splits stay
    the pool's (the 5,000 images notebook 01 held out, and the test set).

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
    n_train = check_int("n_train", n_train, low=1, high=len(pool.train.y))
    rng = np.random.default_rng(1000 + check_int("seed", seed, low=0))
    idx, _ = stratified_split(pool.train.y.numpy(), n_train, rng)
    idx = np.sort(idx)
    return Splits(Split(pool.train.x[idx], pool.train.y[idx]), pool.val, pool.test,
                  pool.classes, pool.name)


def uniform_teacher(n: int, n_classes: int) -> torch.Tensor:
    """Logits of a teacher that says nothing: all zeros, i.e. the uniform distribution.

    Distilling from it with ``lam = 1 - eps`` and ``T = 1`` is label smoothing
    with ``eps`` (see :func:`label_smoothing_identity`).

    Returns
    -------
    Tensor of shape ``(n, n_classes)``
    """
    return torch.zeros(check_int("n", n, low=0), check_int("n_classes", n_classes, low=1))


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
    eps = check_float("eps", eps, low=0.0, high=1.0)
    g = torch.Generator().manual_seed(check_int("seed", seed, low=0))
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

CANDIDATES = {
    "student from scratch": ({"lr": 0.01, "epochs": 10}, {"lr": 0.01, "epochs": 20},
                             {"lr": 0.03, "epochs": 10}, {"lr": 0.03, "epochs": 20}),
    "label smoothing": ({"eps": 0.05}, {"eps": 0.1}, {"eps": 0.2}, {"eps": 0.4}),
    "distilled": ({"lam": 0.1, "T": 2.0}, {"lam": 0.1, "T": 8.0},
                  {"lam": 0.5, "T": 2.0}, {"lam": 0.5, "T": 8.0}),
}
"""The same budget for every method: four configurations, each scored by k-fold
cross-validation. The student from scratch tunes its learning rate and epochs,
label smoothing its ε, distillation its λ and T (both at the default recipe:
learning rate 0.03, ``epochs`` epochs)."""


def candidate_label(method: str, config: dict) -> str:
    """A short name of one candidate, e.g. ``"lr=0.01, 10 ep"``, ``"ε=0.1"``, ``"λ=0.5, T=8"``.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`; anything else raises ``ValueError``.
    config : dict
        ``lr`` and ``epochs`` (scratch), ``eps`` (label smoothing) or ``lam`` and ``T`` (distilled).

    Returns
    -------
    str
    """
    if method == "student from scratch":
        return f"lr={config['lr']:g}, {config['epochs']} ep"
    if method == "label smoothing":
        return f"ε={config['eps']:g}"
    if method == "distilled":
        return f"λ={config['lam']:g}, T={config['T']:g}"
    raise ValueError(f"method={method!r} is unknown; allowed: {', '.join(METHODS)}")


def run_kwargs(method: str, config: dict, *, epochs: int) -> dict:
    """What :func:`kdlib.experiments.run_point` needs for one candidate of one method.

    Parameters
    ----------
    method : str
        One of :data:`METHODS`.
    config : dict
        A candidate (see :data:`CANDIDATES`).
    epochs : int
        Epochs of the label-smoothing and distilled students.

    Returns
    -------
    dict
        ``lam``, ``T``, ``lr``, ``epochs`` and ``uniform`` (train on the uniform
        teacher's logits: label smoothing).
    """
    candidate_label(method, config)  # validates the method
    if method == "student from scratch":
        return {"lam": HARD_ONLY_LAM, "T": 1.0, "lr": float(config["lr"]),
                "epochs": int(config["epochs"]), "uniform": False}
    if method == "label smoothing":
        return {"lam": 1.0 - float(config["eps"]), "T": 1.0,
                "lr": experiments.STUDENT_DEFAULTS["lr"], "epochs": epochs, "uniform": True}
    return {"lam": float(config["lam"]), "T": float(config["T"]),
            "lr": experiments.STUDENT_DEFAULTS["lr"], "epochs": epochs, "uniform": False}


def _point(data, logits: dict, kw: dict, *, seed: int, test: bool = False) -> dict:
    """One student of one method: :func:`kdlib.experiments.run_points`' arguments for it."""
    if kw["uniform"]:
        logits = {**logits, "train": uniform_teacher(*logits["train"].shape)}
    return dict(data=data, teacher_logits=logits, lam=kw["lam"], T=kw["T"], seed=seed,
                epochs=kw["epochs"], lr=kw["lr"], test=test)


@dataclass
class MethodCV:
    """One method's cross-validation: ``candidates`` (dicts with ``label``, ``config``,
    ``scores`` (one per fold), ``mean``, ``sd``), the ``chosen`` one (highest mean, the
    first on ties) and every fold's ``rows`` (with ``fold`` and ``label`` columns).

    Attributes
    ----------
    method : str
        One of :data:`METHODS`.
    candidates : list of dict
        Per configuration: ``label`` (:func:`candidate_label`), ``config``, ``scores`` (validation
        accuracy in [0, 1] per fold), ``mean`` and ``sd`` (sample sd) of the scores.
    chosen : dict
        The entry of ``candidates`` with the highest mean (the same object).
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


def tune_methods(x, y, teacher_logits, *, k: int = 3, epochs: int = 20, seed: int = 0,
                 candidates: dict | None = None, jobs: int = 1) -> dict:
    """Choose each method's configuration by k-fold cross-validation with the same budget.

    Every candidate of every method trains one student per fold on the other
    ``k − 1`` folds and is scored on the held-out fold (the same stratified
    folds for all). Neither the validation nor the test split is touched.

    Parameters
    ----------
    x, y : Tensor
        The training images and labels (one seed's subset).
    teacher_logits : Tensor
        The teacher's logits on ``x``.
    k : int
        Folds, at least 2.
    epochs : int
        Epochs of the label-smoothing and distilled candidates.
    seed : int
        Seeds the folds and every student.
    candidates : dict, optional
        ``{method: sequence of configs}``; default :data:`CANDIDATES`.
    jobs : int
        Processes training the students (:func:`kdlib.experiments.run_points`); the
        numbers do not depend on it.

    Returns
    -------
    dict
        ``{method: MethodCV}`` in the order of ``candidates``.
    """
    candidates = CANDIDATES if candidates is None else candidates
    x, y = torch.as_tensor(x), torch.as_tensor(y)
    if not (len(x) == len(y) == len(teacher_logits)):
        raise ValueError(f"x, y and teacher_logits must have the same length; got {len(x)}, "
                         f"{len(y)} and {len(teacher_logits)}")
    k = check_int("k", k, low=2, high=len(y))
    epochs = check_int("epochs", epochs, low=1)
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


def cv_table(cv: dict) -> str:
    """The candidates of every method as aligned text, the chosen ones marked ``<- chosen``.

    Parameters
    ----------
    cv : dict of str to MethodCV
        :func:`tune_methods`' result (not empty; every candidate with the same number of folds).

    Returns
    -------
    str
        One line per candidate: method, label, mean ± sd and every fold's score, in percent.
    """
    k = len(next(iter(cv.values())).candidates[0]["scores"])
    lines = [f"{'method':22s} {'candidate':16s} mean ± sd over {k} folds   fold scores"]
    for method, res in cv.items():
        for c in res.candidates:
            mark = "  <- chosen" if c is res.chosen else ""
            scores = " ".join(f"{100 * s:.1f}" for s in c["scores"])
            lines.append(f"{method:22s} {c['label']:16s} {format_pct(c['scores'], 2):>18s}"
                         f"      {scores}{mark}")
    return "\n".join(lines)


def cv_gaps(cv: dict, reference: str = "student from scratch") -> dict:
    """Each chosen candidate minus the reference's chosen one, fold by fold (paired by fold).

    Returns
    -------
    dict
        ``{method: kdlib.results.PairedDifference}`` for every method but the reference.
    """
    ref = cv[reference].chosen["scores"]
    return {m: paired_difference(r.chosen["scores"], ref) for m, r in cv.items() if m != reference}


def cv_figure(cv: dict) -> Figure:
    """Every method's candidates, fold by fold, one panel per method (shared y axis, in %).

    Thin grey lines join one fold's scores across a method's candidates (folds differ
    in difficulty: compare candidates within a fold); black dots with error bars
    are the mean ± sd over folds; the chosen candidate is red.

    Returns
    -------
    Figure
        ``axes[m]`` is method ``m``; its ``containers[0].lines[0]`` has the means
        (in %) as ``y`` data, one per candidate.
    """
    fig, ax = new_figure(3.6 * len(cv), 3.6, ncols=len(cv))
    allv = [100 * s for r in cv.values() for c in r.candidates for s in c["scores"]]
    for a, (method, res) in zip(ax[0], cv.items()):
        scores = 100 * np.array([c["scores"] for c in res.candidates], float)  # candidates × folds
        x = np.arange(len(res.candidates))
        for f in range(scores.shape[1]):
            a.plot(x, scores[:, f], "-", color="0.75", lw=1, label="one fold" if f == 0 else None)
        means = scores.mean(axis=1)
        sds = [_sd0(s) for s in scores]
        a.errorbar(x, means, yerr=sds, fmt="o", color="black", capsize=4, ms=5,
                   label="mean ± sd over folds")
        i = res.candidates.index(res.chosen)
        a.plot([i], [means[i]], "o", color="C3", ms=9, zorder=4, label="chosen")
        a.set_xticks(x, [c["label"] for c in res.candidates], rotation=30, ha="right", fontsize=8)
        a.set_xlim(-0.5, len(x) - 0.5)
        a.set_ylim(min(allv) - 1.0, max(allv) + 1.0)
        a.set_title(method, fontsize=10)
    ax[0, 0].set_ylabel("held-out fold accuracy (%)")
    ax[0, -1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return fig


def final_rows(subsets, train_logits, val_logits, cv: dict, *, epochs: int,
               jobs: int = 1) -> dict:
    """Train each method's chosen configuration once per seed and score the test set.

    Seed ``s`` trains on ``subsets[s]`` (a different data sample, :func:`resample`)
    with initial weights and batch order from ``s``; every method sees the same
    subset for a given seed, so differences pair by seed.

    Parameters
    ----------
    subsets : sequence of kdlib.data.Splits
        One per seed (seed = position).
    train_logits : sequence of Tensor
        The teacher's logits on each subset's training images.
    val_logits : Tensor
        The teacher's logits on the validation split (agreement column).
    cv : dict
        :func:`tune_methods`'s result.
    epochs : int
    jobs : int
        Processes training the students (the numbers do not depend on it).

    Returns
    -------
    dict
        ``{method: list of rows}``, one row per seed, with ``test_acc``.
    """
    if len(subsets) != len(train_logits):
        raise ValueError(f"{len(subsets)} subsets but {len(train_logits)} logit tensors; "
                         "give one per seed")
    plan = [(method, res, s, d, L) for method, res in cv.items()
            for s, (d, L) in enumerate(zip(subsets, train_logits))]
    trained = experiments.run_points(
        [_point(d, {"train": L, "val": val_logits},
                run_kwargs(method, res.chosen["config"], epochs=epochs), seed=s, test=True)
         for method, res, s, d, L in plan], jobs=jobs)
    out = {method: [] for method in cv}
    for (method, res, *_), row in zip(plan, trained):
        out[method].append(dict(row, method=method, label=res.chosen["label"]))
    return out


def results_table(*, teacher_acc: float, accs: dict, reference: str = "student from scratch",
                  n_test: int = 10000) -> list[dict]:
    """Hinton et al. (2015)-style results: test errors and accuracy, and paired differences.

    Parameters
    ----------
    teacher_acc : float
        The teacher's test accuracy.
    accs : dict
        ``{method: test accuracies, one per seed (same seed order for all)}``.
    reference : str
        The method every other one is compared with (paired by seed).
    n_test : int
        Test images.

    Returns
    -------
    list of dict
        The teacher, then one row per method: ``model``, ``errors`` /
        ``errors_sd`` (mean / sd over seeds of the wrong test images), ``acc`` /
        ``acc_sd``, ``n`` (seeds) and, for all but the reference, ``diff``: the
        :class:`kdlib.results.PairedDifference` of its accuracy minus the
        reference's, and ``gap_closed``: the fraction of the teacher–reference
        gap it closes.
    """
    n_test = check_int("n_test", n_test, low=1)
    if reference not in accs:
        raise ValueError(f"reference={reference!r} is not one of {list(accs)}")

    def row(name, a):
        a = np.asarray(a, float)
        return {"model": name, "errors": float(np.mean((1 - a) * n_test)),
                "errors_sd": sample_sd((1 - a) * n_test), "acc": float(a.mean()),
                "acc_sd": sample_sd(a), "n": len(a)}

    table = [row("teacher (cnn, 55k images)", [teacher_acc])]
    ref = np.asarray(accs[reference], float)
    gap = float(teacher_acc) - ref.mean()
    for method, a in accs.items():
        r = row(f"{method} (tuned)", a)
        if method != reference:
            r["diff"] = paired_difference(a, ref)
            r["gap_closed"] = r["diff"].mean / gap if gap > 0 else float("nan")
        table.append(r)
    return table


def format_results(table) -> str:
    """Aligned text of :func:`results_table`'s rows: errors, accuracy, the fraction of the
    teacher–scratch gap closed, and the paired difference (in percentage points).

    Parameters
    ----------
    table : list of dict
        :func:`results_table`'s rows (``gap_closed`` and ``diff`` may be missing: left blank).

    Returns
    -------
    str
        A header and one line per row.
    """
    lines = [f"{'model':30s} {'test errors':>11s} {'accuracy':>15s}  {'gap closed':>10s}   "
             "minus the tuned scratch student (95 % CI)"]
    for r in table:
        err = f"{r['errors']:.0f}" + ("" if math.isnan(r["errors_sd"]) else f" ± {r['errors_sd']:.0f}")
        acc = f"{100 * r['acc']:.2f} %" + ("" if math.isnan(r["acc_sd"])
                                          else f" ± {100 * r['acc_sd']:.2f}")
        gap = f"{100 * r['gap_closed']:.0f} %" if "gap_closed" in r and not math.isnan(
            r["gap_closed"]) else ""
        diff = r["diff"].format() if "diff" in r else ""
        lines.append(f"{r['model']:30s} {err:>11s} {acc:>15s}  {gap:>10s}   {diff}")
    return "\n".join(lines)


def paired_figure(diffs: dict, *, title: str = "", xlabel: str = "") -> Figure:
    """Paired differences with their confidence intervals, one row each, and a zero line.

    Parameters
    ----------
    diffs : dict
        ``{label: kdlib.results.PairedDifference}`` (fractions; drawn in points).

    Returns
    -------
    Figure
        ``axes[0].containers[0].lines[0]`` has the means (in points) as ``x`` data.
    """
    fig, ax = new_figure(7.0, 0.7 + 0.55 * len(diffs))
    a = ax[0, 0]
    labels = list(diffs)
    y = np.arange(len(labels))[::-1]
    means = np.array([100 * diffs[k].mean for k in labels])
    lo = np.array([100 * diffs[k].low for k in labels])
    hi = np.array([100 * diffs[k].high for k in labels])
    a.errorbar(means, y, xerr=[means - lo, hi - means], fmt="o", color="C0", ecolor="black",
               capsize=4, label="mean and 95 % CI over seeds")
    for m, yy in zip(means, y):
        a.text(m, yy + 0.18, f"{m:+.2f}", ha="center", va="bottom", fontsize=8)
    a.axvline(0, color="0.4", lw=1, ls="--")
    a.set_yticks(y, labels, fontsize=9)
    a.set_ylim(-0.7, len(labels) - 0.3)
    a.set(xlabel=xlabel or "difference in test accuracy (percentage points)", title=title)
    return fig


# --------------------------------------------------------------------------- regimes
def small_teacher_logits(data, *, epochs: int, seed: int,
                         lr: float = experiments.STUDENT_DEFAULTS["lr"]) -> dict:
    """Train a teacher of the student's own architecture on the student's images.

    The born-again setting (Furlanello et al. 2018): the same ``mlp([784, 128, 10])``
    as the student, trained from scratch on the same images with labels only,
    for ``epochs`` epochs with peak learning rate ``lr`` (seeded by ``seed``).

    Returns
    -------
    dict
        ``train``/``val`` logits of that teacher and its ``val_acc``.
    """
    train, val, _ = experiments._train_val_test(data)
    model, _ = experiments.distill_mlp((train, val), {"train": uniform_teacher(len(train.y), 10)},
                                    lam=HARD_ONLY_LAM, T=1.0, seed=seed, epochs=epochs, lr=lr)
    v = predict(model, val.x)
    return {"train": predict(model, train.x), "val": v,
            "val_acc": float((v.argmax(1) == val.y).float().mean())}


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
    rng = np.random.default_rng(2000 + check_int("seed", seed, low=0))
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


def regime_rows(subsets, train_logits, val_logits, *, scratch_rows, scratch_config: dict,
                lam: float, T: float, settings: Settings) -> tuple[dict, dict]:
    """When does distillation help? One student per seed in each regime, all paired by seed.

    Per seed ``s`` (its own subset): distilled from the real teacher at
    (``lam``, ``T``); distilled from a same-size teacher (the student's
    ``mlp``) trained on the same images for ``small_teacher_epochs`` (weaker
    than the student) and with the tuned scratch recipe (born-again,
    Furlanello et al. 2018); and the scratch and distilled students after only
    ``few_epochs``. ``scratch_rows`` (the tuned scratch student's rows, one per
    seed) is the reference row.

    Parameters
    ----------
    subsets : list of kdlib.data.Splits
        One training sample per seed.
    train_logits : list of Tensor
        The teacher's logits on each subset's training images.
    val_logits : Tensor
        The teacher's logits on the validation split.
    scratch_rows : list of dict
        The tuned scratch student's rows, one per seed.
    scratch_config : dict
        Its chosen configuration (``lr``, ``epochs``): the born-again teacher's recipe.
    lam, T : float
    settings : Settings
        The notebook's settings: ``epochs``, ``few_epochs``, ``small_teacher_epochs`` and
        ``n_jobs`` (worker processes).

    Returns
    -------
    rows : dict
        ``{regime: list of rows}`` (keys ``"scratch (tuned)"``, ``"real teacher"``,
        ``"weak teacher"``, ``"born-again teacher"``, ``"scratch, few epochs"``,
        ``"real teacher, few epochs"``).
    teachers : dict
        ``{"weak teacher": [val acc per seed], "born-again teacher": [...]}``.
    """
    rows = {"scratch (tuned)": list(scratch_rows)}
    rows.update({k: [] for k in ("real teacher", "weak teacher", "born-again teacher",
                                 "scratch, few epochs", "real teacher, few epochs")})
    teachers = {"weak teacher": [], "born-again teacher": []}
    epochs, few_epochs = settings.epochs, settings.few_epochs
    small_teacher_epochs, jobs = settings.small_teacher_epochs, settings.n_jobs
    ba = run_kwargs("student from scratch", scratch_config, epochs=epochs)
    plan = []
    for s, (d, L) in enumerate(zip(subsets, train_logits)):
        real = {"train": L, "val": val_logits}
        plan.append(("scratch, few epochs", dict(data=d, teacher_logits=real, lam=HARD_ONLY_LAM,
                                                 T=1.0, seed=s, epochs=few_epochs)))
        for name, ep in (("real teacher", epochs), ("real teacher, few epochs", few_epochs)):
            plan.append((name, dict(data=d, teacher_logits=real, lam=lam, T=T, seed=s, epochs=ep)))
        for name, ep, lr in (("weak teacher", small_teacher_epochs, experiments.STUDENT_DEFAULTS["lr"]),
                             ("born-again teacher", ba["epochs"], ba["lr"])):
            small = small_teacher_logits(d, epochs=ep, lr=lr, seed=100 + s)
            teachers[name].append(small.pop("val_acc"))
            plan.append((name, dict(data=d, teacher_logits=small, lam=lam, T=T, seed=s,
                                    epochs=epochs)))
    for (name, _), row in zip(plan, experiments.run_points([call for _, call in plan], jobs=jobs)):
        rows[name].append(row)
    return rows, teachers


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


# --------------------------------------------------------------------------- exercises
def verdict(diff) -> str:
    """``"helped"`` if a paired difference's CI lies above 0, ``"hurt"`` if below, else ``"unclear"``.

    Parameters
    ----------
    diff : kdlib.results.PairedDifference
        A method minus its reference, e.g. a ``diff`` of :func:`results_table`.

    Returns
    -------
    str
        ``"helped"``, ``"hurt"`` or ``"unclear"`` (also for a single pair, which has no interval).
    """
    if diff.n < 2 or math.isnan(diff.low):
        return "unclear"
    return "helped" if diff.low > 0 else "hurt" if diff.high < 0 else "unclear"


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
    seeds = list(zip(data, logits))
    rows = experiments.run_points([dict(data=d, teacher_logits=lg, lam=0.0, T=T, seed=seed)
                              for seed, (d, lg) in enumerate(seeds) for T in (1.0, 4.0)])
    d = paired_difference([r["val_acc"] for r in rows[1::2]], [r["val_acc"] for r in rows[::2]])
    right = verdict(d)
    return answer == right, (f"T = 4 against T = 1 at λ = 0 on validation: {d.format()}: "
                             f"'{right}'." if answer == right else
                             "press train now with λ = 0 at T = 1 and at T = 4 for each seed, then "
                             "compare the paired difference's CI with 0: above 'helped', below 'hurt', "
                             "across 'unclear'.")


def _paired(answer, a, b, what):
    d = paired_difference([x["val_acc"] for x in a], [x["val_acc"] for x in b])
    right = verdict(d)
    ok = answer == right
    return ok, (f"{what}: {d.format()}: '{right}'." if ok else
                "compute the paired difference (kdlib.results.paired_difference) and look "
                "at its CI: above 0 'helped', below 0 'hurt', across 0 'unclear'.")


def _ex3(answer, *, regimes, **_):
    return _paired(answer, regimes["born-again teacher"], regimes["scratch (tuned)"],
                   "the born-again teacher")


def _ex4(answer, *, final, **_):
    d = paired_difference([r["test_acc"] for r in final["distilled"]],
                          [r["test_acc"] for r in final["label smoothing"]])
    right = verdict(d)
    return answer == right, (f"distilled against label smoothing on the test set: {d.format()}: "
                             f"'{right}'." if answer == right else
                             "pair the two methods' test accuracies by seed "
                             "(kdlib.results.paired_difference) and compare the CI with 0: above "
                             "'helped', below 'hurt', across 'unclear'.")


def _ex5(answer, *, transfer, **_):
    return _paired(answer, transfer["+ transfer set"], transfer["distilled"], "the transfer set")


EXERCISES = {1: _ex1, 2: _ex2, 3: _ex3, 4: _ex4, 5: _ex5}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)``, graded by
:func:`kdlib._checks.check_answer` against this run's numbers."""


def check_exercise(n: int, answer, **evidence) -> Verdict:
    """Check the reader's answer to exercise ``n`` of notebook 05 against this run's numbers.

    It never raises for a wrong or missing answer (``answer = None`` says what to do).

    Parameters
    ----------
    n : int
        The exercise, 1 to 5.
    answer :
        1: the distillation candidate ``(lam, T)`` with the highest mean agreement
        with the teacher over the folds; 2 to 5: ``"helped"``, ``"hurt"`` or
        ``"unclear"``, the verdict of a paired interval over the seeds (2: T = 4 against
        T = 1 at λ = 0, on validation; 3: the born-again teacher against the tuned
        scratch student; 4: the distilled student against the label-smoothing one, on
        the test set; 5: the transfer set).
    **evidence :
        1: ``cv`` (:func:`tune_methods`); 2: ``data``, ``logits``, one per seed
        (trains two students per seed when an answer is given); 3: ``regimes``
        (:func:`regime_rows`'s rows); 4: ``final`` (:func:`final_rows`); 5:
        ``transfer`` (:func:`transfer_rows`).

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``; truthy when right.

    Raises
    ------
    ValueError
        For an exercise that does not exist.
    """
    return check_answer(EXERCISES, n, answer, **evidence)


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
        reference line at its mean final accuracy, and a bar pair on the right.
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
                     [f"{unit} {r[unit]}" for r in rows],
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
    a.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
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

    def __init__(self, rows, *, teacher_acc: float | None = None, baseline=None, lam=None,
                 T=None, unit: str = "seed"):
        self.rows = [r for r in rows]
        if unit not in ("seed", "fold"):
            raise ValueError(f"unit={unit!r} is not allowed; use 'seed' or 'fold'")
        self.unit = unit
        if not self.rows:
            raise ValueError("rows is empty: run kdlib.experiments.train_grid first")
        self.teacher_acc = None if teacher_acc is None else check_float(
            "teacher_acc", teacher_acc, low=0.0, high=1.0)
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

    def __init__(self, data, teacher_logits, *, lam: float = 0.5, T: float = 4.0,
                 epochs: int = experiments.STUDENT_DEFAULTS["epochs"], max_epochs: int = 60,
                 seed: int = 0, teacher_acc: float | None = None, baseline_acc: float | None = None,
                 **recipe):
        self.data = data
        self.teacher_logits = teacher_logits
        self.seed = check_int("seed", seed, low=0)
        if "epochs" in recipe:
            raise TypeError("epochs is TrainNow's slider: pass epochs=, not in the recipe")
        self.recipe = experiments.student_recipe(**recipe)
        del self.recipe["epochs"]
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
