"""Lesson module of ``notebooks/10_other_students.ipynb`` (CNN and RNN students, distilling features).

Holds everything only that notebook uses: its settings (:class:`Settings`, made by
:func:`check_params`, with the quick ones); the student builders (a row-reading GRU, a small
CNN and an MLP of about the same size, an MLP with a hint regressor); a recorder of gradient
norms; the experiments on :mod:`kdlib.experiments` (the primary comparison: an MLP student on
labels vs distilled, both tuned on the validation split; exploratory: the GRU, clipping and
SGD, CNN vs MLP, feature losses added to KD); its figure of gradient norms; the ``say_*``
sentences that follow the run; the API-landscape table and the exercises (:data:`EXERCISES`,
graded by :func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from torch import nn

from kdlib import data as kdata
from kdlib import experiments, models, train
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
from kdlib.losses import cosine_feature_loss, hint_loss, kd_loss
from kdlib.metrics import accuracy_from_logits, agreement_from_logits
from kdlib.plots import new_figure
from kdlib.results import format_pct, paired_difference
from kdlib.student_init import init_student

PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "n_train": Param(Int(100, 10000), "Training images per seed."),
    "epochs": Param(Int(1, 50), "Epochs of every student but the GRUs."),
    "rnn_epochs": Param(Int(1, 50), "Epochs of the GRU students (the slowest: each trains alone)."),
    "seeds": Param(Int(1, 10), "Seeds of the primary comparison (each its own training sample)."),
    "explore_seeds": Param(Int(1, 10),
        "Seeds of the exploratory GRU and CNN students (the first samples); at most ``seeds``."),
    "lam": Param(Float(0.0, 1.0),
        "Weight of the hard-label term of ``kd_loss`` for the exploratory GRU and CNN students."),
    "T": Param(Float(0.0, 20.0, low_open=True), "Temperature of ``kd_loss`` for them."),
    "clip": Param(Float(0.0, 100.0, low_open=True), "Maximum global gradient norm when clipping."),
    "feature_weight": Param(Float(0.0, 100.0), "Weight of the hint / cosine feature loss."),
    "quick": QUICK_RUN,
}
"""Notebook 10's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

QUICK = {"n_train": 300, "epochs": 1, "rnn_epochs": 1, "seeds": 2, "explore_seeds": 1}
"""What ``quick=True`` overrides: a smoke run of seconds."""

TEACHER_LAYER = "8"
"""The teacher's 128-unit hidden layer (the ReLU after its first ``Linear``)."""
STUDENT_LAYER = "2"
"""The MLP student's hidden layer (the ReLU after its first ``Linear``)."""
LR = {"adam": 1e-2, "sgd": 0.05}
"""Peak learning rate of the exploratory GRU, CNN and small-MLP students (not tuned here)."""
LRS = (1e-2, 3e-2, 1e-1)
"""The primary comparison's learning-rate candidates, the same for both methods."""
KD_GRID = ((0.1, 2.0), (0.5, 2.0), (0.1, 4.0), (0.5, 4.0))
"""The primary comparison's (λ, T) candidates for the distilled student."""
PRIMARY_SIZES = (784, 64, 10)
"""The primary comparison's student, ``mlp([784, 64, 10])``."""
BATCH = 128
"""Batch size of every student."""


@settings_class(PARAMS)
class Settings:
    """Notebook 10's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""


def _also(p: dict) -> None:
    if p["explore_seeds"] > p["seeds"]:
        raise ValueError(f"explore_seeds={p['explore_seeds']} is more than seeds={p['seeds']}; "
                         "allowed: 1 to seeds (the exploratory students reuse the first samples)")
    if p["n_train"] * p["seeds"] > 50000:
        raise ValueError(f"n_train × seeds = {p['n_train'] * p['seeds']} training images; allowed: "
                         "at most 50000 (each seed has its own sample of the training split)")


check_params = settings_checker(Settings, PARAMS, quick=QUICK, also=_also)


# ------------------------------------------------------------------ students
def build(kind: str) -> nn.Module:
    """A fresh student: ``"rnn"`` (GRU over rows, hidden 64), ``"cnn"`` (conv8-conv16-fc32),
    ``"mlp-small"`` (784-18-10, about the CNN's size) or ``"mlp"`` (784-64-10).

    Parameters
    ----------
    kind : str
        ``"rnn"``, ``"cnn"``, ``"mlp-small"`` or ``"mlp"``; anything else raises ``ValueError``.

    Returns
    -------
    nn.Module
        Untrained, mapping 28 × 28 images to 10 logits.
    """
    if kind == "rnn":
        return models.rnn(hidden=64)
    if kind == "cnn":
        return models.cnn(channels=(8, 16), hidden=32, dropout=0.0)
    if kind == "mlp-small":
        return models.mlp([784, 18, 10])
    if kind == "mlp":
        return models.mlp([784, 64, 10])
    raise ValueError(f"kind={kind!r}; allowed: 'rnn', 'cnn', 'mlp-small', 'mlp'")


def init_error(student: nn.Module, teacher: nn.Module, strategy: str = "copy") -> str:
    """The message ``init_student`` gives for this pair (or "ok" when it succeeds).

    Parameters
    ----------
    student, teacher : nn.Module
        The pair to initialise; ``student`` is modified when it succeeds.
    strategy : str
        A strategy of :func:`kdlib.student_init.init_student`, e.g. ``"copy"``.

    Returns
    -------
    str
        The ``ValueError``'s message, or ``"ok"`` (other exceptions propagate).
    """
    try:
        init_student(student, teacher, strategy)
    except ValueError as exc:
        return str(exc)
    return "ok"


class HintStudent(nn.Module):
    """A student plus the FitNets regressor that maps its hidden layer to the teacher's width.

    ``forward`` is the student's; training this wrapper trains the regressor too.

    Parameters
    ----------
    student : nn.Module
        The student proper.
    student_width, teacher_width : int
        Units of the student's and the teacher's hint layers.

    Attributes
    ----------
    student : nn.Module
    regressor : nn.Linear
        ``student_width → teacher_width``; the hint loss compares ``regressor(student features)``
        with the teacher's features.
    """

    def __init__(self, student: nn.Module, student_width: int, teacher_width: int):
        super().__init__()
        self.student = student
        self.regressor = nn.Linear(student_width, teacher_width)

    def forward(self, x):
        return self.student(x)


def pool_to(features: torch.Tensor, width: int) -> torch.Tensor:
    """Average-pool ``(batch, n)`` features to ``(batch, width)`` (the tutorial's way to
    compare a wide teacher layer with a narrower student layer); ``n`` must be a multiple.

    Parameters
    ----------
    features : torch.Tensor
        Shape ``(batch, n)``.
    width : int
        Output width; ``n % width == 0``, else ``ValueError``.

    Returns
    -------
    torch.Tensor
        Shape ``(batch, width)``: means of consecutive groups of ``n // width`` features.
    """
    n = features.shape[1]
    if n % width:
        raise ValueError(f"cannot pool {n} features to width={width}: {n} is not a multiple")
    return F.avg_pool1d(features[:, None, :], kernel_size=n // width)[:, 0, :]


class GradNormRecorder:
    """The global gradient norm of every training step, measured *before* any clipping.

    Uses ``register_post_accumulate_grad_hook`` on every trainable parameter: when the last
    parameter's gradient of a step has arrived, the norm over all of them is stored in
    ``norms``. ``fit`` clips afterwards, so clipping does not change what is recorded.

    A step whose backward leaves some parameter without a gradient is not completed, and its
    partial sum carries over into the next step's norm.

    Parameters
    ----------
    model : nn.Module
        The hooks go on its parameters with ``requires_grad``.

    Attributes
    ----------
    norms : list of float
        The L2 norm over all those gradients, one per backward pass, in order.
    """

    def __init__(self, model: nn.Module):
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.norms: list[float] = []
        self._sq, self._seen = 0.0, 0
        self._handles = [p.register_post_accumulate_grad_hook(self._hook) for p in self.params]

    def _hook(self, p):
        self._sq += float(p.grad.detach().pow(2).sum())
        self._seen += 1
        if self._seen == len(self.params):
            self.norms.append(math.sqrt(self._sq))
            self._sq, self._seen = 0.0, 0

    def remove(self):
        for h in self._handles:
            h.remove()
        self._handles = []


# ------------------------------------------------------------------ data: one pool, a sample per seed
@dataclass(frozen=True)
class Pool:
    """The training pool, the teacher's outputs on it, and each seed's sample of it.

    Attributes
    ----------
    data : kdlib.data.Splits
        ``train`` holds ``n_train × seeds`` images; ``val`` (chooses) and ``test`` (reports).
    teacher_logits, teacher_features : Tensor
        The teacher's logits and hidden features (layer :data:`TEACHER_LAYER`) on ``data.train``.
    teacher_test : Tensor
        The teacher's logits on ``data.test`` (fidelity).
    rows : tuple of tuple of int
        ``rows[s]``: seed ``s``'s own ``n_train`` training images (disjoint samples).
    """

    data: object
    teacher_logits: torch.Tensor
    teacher_features: torch.Tensor
    teacher_test: torch.Tensor
    rows: tuple


def make_pool(teacher: nn.Module, *, n_train: int, seeds: int) -> Pool:
    """Load ``n_train × seeds`` training images and give each seed its own ``n_train`` of them.

    Parameters
    ----------
    teacher : nn.Module
    n_train : int
        Training images per seed.
    seeds : int
        Number of seeds (disjoint samples of the pool).

    Returns
    -------
    Pool
    """
    data = kdata.load("fashion-mnist", n_train=n_train * seeds, seed=0)
    feats, logits = models.read_layer(teacher, data.train.x, TEACHER_LAYER, batch_size=128,
                                      with_output=True)
    rows = tuple(experiments.sample_rows(len(data.train.y), n_train, seeds))
    return Pool(data, logits, feats, models.predict(teacher, data.test.x), rows)


def teacher_accuracy(pool: Pool) -> float:
    """The teacher's test accuracy (the reference line of the plots).

    Returns
    -------
    float
    """
    return accuracy_from_logits(pool.teacher_test, pool.data.test.y)


def _evaluate(pool: Pool, *, val: bool = False, test: bool = True):
    def evaluate(model, config, data):
        row = {}
        if val:
            row["val_acc"] = accuracy_from_logits(models.predict(model, data.val.x, batch_size=1024),
                                                  data.val.y)
        if test:
            logits = models.predict(model, data.test.x)
            row.update(test_acc=accuracy_from_logits(logits, data.test.y),
                       fidelity=agreement_from_logits(logits, pool.teacher_test))
        return row
    return evaluate


def recipe(epochs: int, lr: float = LR["adam"], optimizer: str = "adam",
           clip: float | None = None) -> train.TrainSettings:
    """This lesson's training recipe: batches of :data:`BATCH`, OneCycle to ``lr``, optional
    gradient clipping.

    Parameters
    ----------
    epochs : int
    lr : float
        Peak learning rate.
    optimizer : {"adam", "sgd"}
    clip : float, optional
        Clip the global gradient norm to this value.

    Returns
    -------
    kdlib.train.TrainSettings
    """
    return train.TrainSettings(epochs=epochs, lr=lr, optimizer=optimizer, clip_grad=clip,
                               batch_size=BATCH)


# ------------------------------------------------------------------ the primary comparison
def run_primary(pool: Pool, *, epochs: int, progress: bool = True) -> list[dict]:
    """The MLP 784-64-10 student on labels (every :data:`LRS`) and by KD (every :data:`LRS` ×
    :data:`KD_GRID`), every seed on its own sample; the MLPs train in lockstep.

    Returns
    -------
    list of dict
        One row per student: ``method`` (``"labels"``/``"kd"``), ``lam``, ``T``, ``lr``,
        ``seed``, ``val_acc`` and the trained ``student`` (the test set is read later, by
        :func:`chosen`, for the chosen settings only).
    """
    build = experiments.mlp_builder(PRIMARY_SIZES)
    configs = []
    for seed, rows in enumerate(pool.rows):
        for lr in LRS:
            methods = [experiments.scratch("labels")] + [experiments.kd(lam, T) for lam, T in KD_GRID]
            configs += [experiments.Config(build, m, seed, recipe(epochs, lr), rows=rows,
                                           labels={"lr": lr}) for m in methods]
    return experiments.train_students(configs, pool.data, teacher_logits=pool.teacher_logits,
                                      evaluate=_evaluate(pool, val=True, test=False),
                                      keep=lambda c: True, progress=progress, desc="MLP students")


def chosen(pool: Pool, rows: list[dict], choice: dict) -> list[dict]:
    """The students of the chosen settings, measured on the test set; KD's renamed ``"distilled"``.

    Returns
    -------
    list of dict
        The chosen rows with ``test_acc`` and ``fidelity``, without the models.
    """
    evaluate = _evaluate(pool)
    return [{**{k: v for k, v in r.items() if k != "student"}, **evaluate(r["student"], None, pool.data),
             "method": "distilled" if r["method"] == "kd" else "labels"}
            for r in experiments.chosen(rows, choice, by=_CANDIDATE)]


_CANDIDATE = ("lr", "lam", "T")  # what the validation split chooses, per method


# ------------------------------------------------------------------ exploratory: RNN, CNN, features
def _train(kind: str, pool: Pool, method, *, seed: int, settings, record_grads: bool = False):
    """``(student, grad_norms or None)``: ``build(kind)`` trained alone by the engine on seed
    ``seed``'s sample."""
    recorders = []

    def build_student():
        model = build(kind)
        if record_grads:
            recorders.append(GradNormRecorder(model))
        return model

    try:
        model, _ = experiments.train(experiments.Config(build_student, method, seed, settings,
                                                        rows=pool.rows[seed]),
                                     pool.data, teacher_logits=pool.teacher_logits)
    finally:
        for r in recorders:
            r.remove()
    return model, (recorders[0].norms if recorders else None)


RNN_RUNS = (("labels", "adam", False), ("kd", "adam", False))
"""The GRU runs of every exploratory seed: (method, optimizer, clipped)."""
CLIP_RUNS = (("kd", "adam", True), ("kd", "sgd", True))
"""The extra distilled GRU runs of seed 0 (gradient clipping, SGD)."""


def run_rnn(pool: Pool, *, epochs: int, lam: float, T: float, clip: float, seeds: int,
            progress: bool = True):
    """The GRU student, one by one: labels vs distilled (Adam) on ``seeds`` seeds, and on seed 0
    also distilled with clipping (Adam, SGD); every step's gradient norm is recorded.

    Parameters
    ----------
    pool : Pool
    epochs : int
    lam, T : float
        ``kd_loss``'s weight of the hard labels and temperature.
    clip : float
        The maximum global gradient norm of the clipped runs.
    seeds : int
        Exploratory seeds (the first ``seeds`` samples of the pool).
    progress : bool

    Returns
    -------
    tuple
        ``(rows, grad_norms)``: one row per run (``method``, ``optimizer``, ``clipped``,
        ``seed``, accuracies, ``grad_median``, ``grad_max``, ``clipped_frac``: the share of
        steps whose norm exceeded ``clip``); ``grad_norms[(optimizer, clipped)]`` is seed 0's
        per-step norms of the distilled runs.
    """
    from tqdm.auto import tqdm  # progress bar only

    runs = [(s, *r) for s in range(seeds) for r in RNN_RUNS] + [(0, *r) for r in CLIP_RUNS]
    rows, norms, evaluate = [], {}, _evaluate(pool)
    for seed, method, opt, clipped in tqdm(runs, desc="GRU students", disable=not progress,
                                           leave=False):
        how = experiments.scratch("labels") if method == "labels" else experiments.kd(lam, T)
        settings = recipe(epochs, LR[opt], opt, clip if clipped else None)
        model, g = _train("rnn", pool, how, seed=seed, settings=settings, record_grads=True)
        g = np.asarray(g)
        rows.append({"student": "rnn", "method": "distilled" if method == "kd" else "labels",
                     "optimizer": opt, "clipped": clipped, "seed": seed,
                     **evaluate(model, None, pool.data), "grad_median": float(np.median(g)),
                     "grad_max": float(g.max()), "clipped_frac": float(np.mean(g > clip))})
        if seed == 0 and method == "kd":
            norms[(opt, clipped)] = g.tolist()
    return rows, norms


def rnn_rows(rows: list[dict]) -> list[dict]:
    """The labels and distilled GRUs trained with Adam, unclipped (one pair per seed).

    Returns
    -------
    list of dict
    """
    return [r for r in rows if r["optimizer"] == "adam" and not r["clipped"]]


def clipping_frame(rows: list[dict], clip: float) -> pd.DataFrame:
    """Seed 0's distilled GRUs: optimizer, clipping, test accuracy and gradient norms.

    Returns
    -------
    pandas.DataFrame
    """
    runs = [r for r in rows if r["seed"] == 0 and r["method"] == "distilled"]
    return pd.DataFrame({
        "optimizer": [r["optimizer"] for r in runs],
        "clip": [f"{clip:g}" if r["clipped"] else "none" for r in runs],
        "test accuracy (%)": [round(100 * r["test_acc"], 2) for r in runs],
        "median |g|": [round(r["grad_median"], 3) for r in runs],
        "max |g|": [round(r["grad_max"], 2) for r in runs],
        f"steps with |g| > {clip:g} (%)": [round(100 * r["clipped_frac"], 1) for r in runs],
    })


def run_architectures(pool: Pool, *, epochs: int, lam: float, T: float, seeds: int,
                      progress: bool = True) -> list[dict]:
    """A small CNN (alone) and an MLP of about its size (lockstep), each on labels and distilled.

    Returns
    -------
    list of dict
        One row per student; ``group`` is ``"<student>, <labels|distilled>"``.
    """
    configs = []
    for seed in range(seeds):
        for kind in ("cnn", "mlp-small"):
            b = experiments.mlp_builder([784, 18, 10]) if kind == "mlp-small" else partial(build, kind)
            for name, m in (("labels", experiments.scratch("labels")), ("distilled", experiments.kd(lam, T))):
                configs.append(experiments.Config(b, m, seed, recipe(epochs), rows=pool.rows[seed],
                                                  labels={"group": f"{kind}, {name}"}))
    return experiments.train_students(configs, pool.data, teacher_logits=pool.teacher_logits,
                                      evaluate=_evaluate(pool), progress=progress,
                                      desc="CNN and MLP students")


def feature_method(feature: str, teacher_features: torch.Tensor, *, lam: float, T: float,
                   weight: float):
    """Distillation plus a feature loss, in one stage, as a :class:`kdlib.experiments.Method`.

    ``"hint"``: a regressor maps the student's hidden layer to the teacher's, and their mean
    squared error is added (FitNets' hint loss, trained together with KD instead of in
    FitNets' separate first stage); ``"cosine"``: ``1 - cos`` between the student's hidden
    layer and the teacher's, average-pooled to its width (the PyTorch tutorial's loss).

    Parameters
    ----------
    feature : {"hint", "cosine"}
    teacher_features : Tensor
        The teacher's hidden features on the student's own training images (row ``i`` for
        example ``i``).
    lam, T : float
        ``kd_loss``'s knobs.
    weight : float
        Weight of the feature loss.

    Returns
    -------
    kdlib.experiments.Method
        Named ``"distilled + hint"`` or ``"distilled + cosine"``.
    """
    if feature not in ("hint", "cosine"):
        raise ValueError(f"feature={feature!r}; allowed: 'hint', 'cosine'")

    def setup(student, t_logits):
        width = student[1].out_features
        model = HintStudent(student, width, teacher_features.shape[1]) if feature == "hint" else student
        tap = models.FeatureTap(student, STUDENT_LAYER)

        def loss_fn(logits, y, idx, x):
            s, t = tap.outputs[STUDENT_LAYER], teacher_features[idx]
            f_loss = (hint_loss(model.regressor(s), t) if feature == "hint"
                      else cosine_feature_loss(s, pool_to(t, s.shape[1])))
            return kd_loss(logits, t_logits[idx], y, lam=lam, T=T) + weight * f_loss

        return model, loss_fn, tap.remove

    return experiments.custom(f"distilled + {feature}", setup, lam=lam, T=T)


def run_features(pool: Pool, choice: dict, *, epochs: int, feature_weight: float,
                 progress: bool = True) -> list[dict]:
    """The primary's distilled MLP (its chosen lr, λ, T) plus a hint or a cosine feature loss,
    every seed, one by one.

    Returns
    -------
    list of dict
        One row per student (``method``: ``"distilled + hint"`` / ``"distilled + cosine"``).
    """
    c = choice["kd"]
    configs = [experiments.Config(experiments.mlp_builder(PRIMARY_SIZES),
                                  feature_method(f, pool.teacher_features[torch.as_tensor(rows)],
                                                 lam=c["lam"], T=c["T"], weight=feature_weight),
                                  seed, recipe(epochs, c["lr"]), rows=rows, labels={"lr": c["lr"]})
               for seed, rows in enumerate(pool.rows) for f in ("hint", "cosine")]
    return experiments.train_students(configs, pool.data, teacher_logits=pool.teacher_logits,
                                      evaluate=_evaluate(pool, val=True), progress=progress,
                                      desc="feature losses")


# ------------------------------------------------------------------ figures
def grad_norms_figure(norms: dict, clip: float):
    """Per-step gradient norms of the distilled RNN (seed 0), one panel per optimizer.

    Parameters
    ----------
    norms : dict
        :func:`run_rnn`'s ``grad_norms``, ``(optimizer, clipped)`` → per-step norms.
    clip : float
        The threshold, a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
        Two panels (Adam, SGD), log y axis.
    """
    fig, axes = new_figure(10, 3.2, ncols=2)
    for ax, opt in zip(axes[0], ("adam", "sgd")):
        for clipped, color in ((False, "tab:grey"), (True, "tab:red")):
            g = norms.get((opt, clipped))
            if g:
                ax.plot(np.arange(1, len(g) + 1), g, color=color, lw=0.8,
                        label="clipped" if clipped else "not clipped")
        ax.axhline(clip, ls="--", color="black", lw=0.8, label=f"clip = {clip:g}")
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("gradient norm (before clipping)")
        ax.set_title(opt.upper() if opt == "sgd" else "Adam")
        ax.legend(fontsize=8)
    return fig


# ------------------------------------------------------------------ prose that follows the run
def _pct(table, group) -> str:
    return format_pct(table.loc[group, "values"])


def _diff(table, group):
    """The paired difference of ``group`` to the table's reference."""
    return paired_difference(table.loc[group, "values"], table.loc[table.attrs["reference"], "values"])


def _lr(v: float) -> str:
    return f"{v:g}"


def say_setting(settings: Settings) -> Markdown:
    """Where this notebook's default run sits: images per seed, epochs, seeds.

    Returns
    -------
    IPython.display.Markdown
    """
    return Markdown(
        f"This run: **{settings.n_train:,} training images per seed, {settings.epochs} "
        f"epoch{'s' if settings.epochs != 1 else ''}** ({settings.rnn_epochs} for the GRUs), "
        f"{settings.seeds} seeds for the primary comparison and {settings.explore_seeds} for the "
        "exploratory students. On the budget map (KD's gain against epochs and labelled data) "
        "that is the corner of **few epochs on few images**, where a student is still far from "
        "what it could reach; rerun with larger `n_train` and `epochs` to move away from it.")


def say_primary(table, choice: dict, teacher_acc: float) -> Markdown:
    """The primary comparison's result: what validation chose and what the test set says.

    Returns
    -------
    IPython.display.Markdown
    """
    lab, kd = choice["labels"], choice["kd"]
    d = _diff(table, "distilled")
    return Markdown(
        f"What we saw: the validation split chose lr = {_lr(lab['lr'])} for the student on labels "
        f"and lr = {_lr(kd['lr'])}, λ = {kd['lam']:g}, T = {kd['T']:g} for the distilled one. "
        f"On the test set the MLP on labels reached {_pct(table, 'labels')}, the distilled MLP "
        f"{_pct(table, 'distilled')} (teacher: {100 * teacher_acc:.2f} %), over "
        f"{int(table.loc['labels', 'n'])} seeds: **{d.describe('distillation')}**.")


def say_rnn(table, mlp_acc: float | None = None) -> Markdown:
    """The GRU's labels-vs-distilled result (exploratory).

    Parameters
    ----------
    table : pandas.DataFrame
        ``results.compare(rnn_rows(...), by="method", metric="test_acc", reference="labels")``.
    mlp_acc : float, optional
        The primary MLP's accuracy on labels; a GRU more than 10 points below it is called
        under-trained.

    Returns
    -------
    IPython.display.Markdown
    """
    d = _diff(table, "distilled")
    gap = "" if mlp_acc is None or table.loc["labels", "mean"] > mlp_acc - 0.10 else (
        f" Both GRUs are more than 10 points below the MLP on labels ({100 * mlp_acc:.2f} %): "
        "at this budget they are still far from trained, so this says little about distilling "
        "a trained GRU; rerun with more `rnn_epochs` to see it.")
    return Markdown(
        f"What we saw (exploratory, {d.n} seed{'s' if d.n != 1 else ''}): the GRU on labels reached "
        f"{_pct(table, 'labels')}, the distilled GRU {_pct(table, 'distilled')}; "
        f"{d.describe('distillation')}. The loss runs for a recurrent student; whether it helps "
        f"is a measurement, and this many seeds can show only a large effect.{gap}")


def say_clipping(frame: pd.DataFrame, clip: float) -> Markdown:
    """What the gradient norms of seed 0's distilled GRUs did, and clipping's share of steps.

    Returns
    -------
    IPython.display.Markdown
    """
    share = frame.columns[-1]
    parts = [f"{r['optimizer']} ({'clip ' + r['clip'] if r['clip'] != 'none' else 'no clipping'}): "
             f"median norm {r['median |g|']:.3g}, largest {r['max |g|']:.3g}, {r[share]:.1f} % of "
             f"steps above {clip:g}, test accuracy {r['test accuracy (%)']:.2f} %"
             for _, r in frame.iterrows()]
    exploded = frame["max |g|"].max() > 100 * clip
    return Markdown(
        "What we saw (seed 0, one run each, so no difference between them is shown): "
        + "; ".join(parts) + ". "
        + ("Some step's gradient norm exceeded a hundred times `clip`: here clipping guards "
           "against a real explosion." if exploded else
           "No norm exceeded a hundred times `clip`: nothing exploded, and clipping only "
           "rescaled ordinary steps (in an unclipped run, the share above `clip` is what "
           "clipping would have rescaled)."))


def say_architectures(table) -> Markdown:
    """The CNN-vs-MLP result (exploratory).

    Returns
    -------
    IPython.display.Markdown
    """
    arch, kd_mlp, kd_cnn = (_diff(table, "cnn, labels"), _diff(table, "mlp-small, distilled"),
                           paired_difference(table.loc["cnn, distilled", "values"],
                                             table.loc["cnn, labels", "values"]))
    return Markdown(
        f"What we saw (exploratory, {arch.n} seed{'s' if arch.n != 1 else ''}): on labels the CNN "
        f"reached {_pct(table, 'cnn, labels')} and the MLP of its size "
        f"{_pct(table, 'mlp-small, labels')}: {arch.describe('the convolutions')}. "
        f"For the MLP, {kd_mlp.describe('distillation')}; for the CNN, "
        f"{kd_cnn.describe('distillation')}.")


def say_features(table) -> Markdown:
    """The feature losses against logit KD (exploratory).

    Returns
    -------
    IPython.display.Markdown
    """
    hint, cos = _diff(table, "distilled + hint"), _diff(table, "distilled + cosine")
    return Markdown(
        f"What we saw (exploratory): logit KD alone reached {_pct(table, 'distilled')}; adding "
        f"the hint loss, {hint.describe('the hint loss')}; adding the cosine loss, "
        f"{cos.describe('the cosine loss')}.")


def say_summary(primary, explore: list) -> Markdown:
    """The summary: the primary result, and how many exploratory intervals excluded 0.

    Returns
    -------
    IPython.display.Markdown
    """
    d = _diff(primary, "distilled")
    intervals = [v for t in explore for v in t["verdict"] if v != "reference"]
    shown = sum(v in ("helped", "hurt") for v in intervals)
    return Markdown(
        f"* Primary comparison (MLP student, validation-tuned, {d.n} seeds): "
        f"{d.describe('distillation')}.\n"
        "* A GRU cannot be initialised from a CNN teacher (`init_student` says why); only the "
        "loss transfers knowledge. Gradient clipping and SGD combine with distillation.\n"
        f"* Exploratory: {len(intervals)} more paired intervals, of which {shown} excluded 0; with "
        f"no effect anywhere, chance alone makes about {len(intervals) / 20:.1f} of "
        f"{len(intervals)} such 95 % intervals exclude 0, so read them as leads, not findings.")


API_ROWS = [
    ("API", "soft term", "weight on the hard-label cross-entropy", "temperature", "feature loss"),
    ("kdlab `kd_loss(s, t, y, lam=, T=)` / `distill`",
     "T² · KL(softmax(t/T) ‖ softmax(s/T)), batch mean",
     "`lam` (no default; `lam=1` = plain student)", "`T` (no default)",
     "`hint_loss` (MSE after a regressor), `cosine_feature_loss`; you add them with a weight"),
    ("Keras `keras.distillation.Distiller` + `LogitsDistillation`",
     '`loss="kl_divergence"` on temperature-scaled outputs',
     "`student_loss_weight=0.5` (between 0 and 1)", "`temperature=3.0`",
     '`FeatureDistillation(loss="mse", teacher_layer_name=None, student_layer_name=None)`; '
     "several losses weighted by `distillation_loss_weights` (equal if None)"),
    ("torchdistill `KDLoss`", 'τ² · KL, `reduction="batchmean"`',
     "`alpha` on the cross-entropy; `beta = 1 - alpha` on the soft term unless given",
     "`temperature` (required)",
     "separate loss modules (e.g. FitNets' hint loss, whose two stages are two configured "
     "trainings) combined in the config"),
    ("PyTorch KD tutorial", "T² · cross-entropy of the softened distributions (= KL up to a constant)",
     "`ce_loss_weight=0.75` (the soft term has its own `soft_target_loss_weight=0.25`)", "`T=2`",
     "cosine: `hidden_rep_loss_weight=0.25` (`nn.CosineEmbeddingLoss`); regressor + MSE: "
     "`feature_map_weight=0.25`; each with `ce_loss_weight=0.75`"),
]
API_TABLE = "\n".join(["| " + " | ".join(API_ROWS[0]) + " |", "|" + " --- |" * len(API_ROWS[0])]
                      + ["| " + " | ".join(r) + " |" for r in API_ROWS[1:]]) + "\n"
"""Names and defaults of the KD APIs; see the notebook for the sources."""


# ------------------------------------------------------------------ exercises
def _ex1(answer, **_):
    ok = isinstance(answer, str) and answer.replace(" ", "") == "lam"
    return ok, ("lam weights the hard-label term, as student_loss_weight does" if ok else
                "student_loss_weight weights the student's supervised (hard-label) loss; which "
                "term does kd_loss's lam weight?")


def _ex2(answer, **_):
    right = models.count_params(build("rnn"))
    ok = answer == right
    return ok, (f"{right}" if ok else
                "a GRU has 3 gates, each with input weights (64 x 28), recurrent weights "
                "(64 x 64) and two bias vectors of 64; then the head 64 x 10 + 10")


EXERCISES = {1: _ex1, 2: _ex2}
"""Exercise number → its check, ``f(answer) -> (right, text)``, graded by
:func:`kdlib._checks.check_answer`: 1, which argument of ``kd_loss`` plays the role of
Keras's ``student_loss_weight``; 2, the number of parameters of the RNN student."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: which argument of ``kd_loss`` plays the role of Keras's ``student_loss_weight`` "
             '(the weight on the hard labels): ``"lam"`` or ``"1 - lam"``. 2: the number of '
             "parameters of the RNN student (GRU over 28-pixel rows, hidden 64, 10 classes)."))
