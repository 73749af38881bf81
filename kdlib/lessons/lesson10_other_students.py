"""Lesson module of ``notebooks/10_other_students.ipynb`` (CNN and RNN students, distilling features).

Holds everything only that notebook uses: its settings (:class:`Settings`, made by
:func:`check_params`, with the quick ones); the
student builders (a row-reading GRU, a small CNN and an MLP of about the same size, an MLP
with a FitNets regressor); a recorder of gradient norms; the four experiments (RNN scratch
vs distilled, gradient clipping with SGD and Adam, CNN vs MLP student, logit vs feature
distillation); their tables and figures; the API-landscape table and the exercises
(:data:`EXERCISES`, graded by :func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import data as kdata
from kdlib import experiments, models, train
from kdlib._checks import Bool, Float, Int, Str, Verdict, check_answer
from kdlib._checks import check_params as _check_params
from kdlib.losses import cosine_feature_loss, hint_loss, kd_loss
from kdlib.metrics import accuracy_from_logits, agreement_from_logits
from kdlib.plots import new_figure
from kdlib.results import format_pct, paired_difference
from kdlib.student_init import init_student

PARAMS = {"checkpoint": Str("a path to a teacher checkpoint, or empty for data/teacher.pt"),
          "n_train": Int(200, 50000), "epochs": Int(1, 50), "seeds": Int(1, 10),
          "lam": Float(0.0, 1.0), "T": Float(0.0, 20.0, low_open=True),
          "clip": Float(0.0, 100.0, low_open=True), "feature_weight": Float(0.0, 100.0),
          "quick": Bool()}
"""Notebook 10's parameters and their allowed values (name → constraint)."""

QUICK = {"n_train": 400, "epochs": 1, "seeds": 2}
"""What ``quick=True`` overrides: a smoke run of seconds."""

TEACHER_LAYER = "8"
"""The teacher's 128-unit hidden layer (the ReLU after its first ``Linear``)."""
STUDENT_LAYER = "2"
"""The MLP student's hidden layer (the ReLU after its first ``Linear``)."""
LR = {"adam": 3e-3, "sgd": 0.05}


@dataclass(frozen=True)
class Settings:
    """Notebook 10's parameters, validated, with ``quick`` applied (made by :func:`check_params`).

    Attributes
    ----------
    checkpoint : str
        Teacher checkpoint; ``""`` means ``data/teacher.pt``.
    n_train : int
        Training images per seed, in [200, 50000].
    epochs : int
        Epochs of every student, in [1, 50].
    seeds : int
        Seeds (each its own training subset), in [1, 10].
    lam : float
        Weight of the hard-label term of ``kd_loss``, in [0, 1].
    T : float
        Temperature of ``kd_loss``, in (0, 20].
    clip : float
        Maximum global gradient norm when clipping, in (0, 100].
    feature_weight : float
        Weight of the hint / cosine feature loss, in [0, 100].
    quick : bool
        A smoke run of seconds (:data:`QUICK`).
    """

    checkpoint: str
    n_train: int
    epochs: int
    seeds: int
    lam: float
    T: float
    clip: float
    feature_weight: float
    quick: bool


def check_params(**params) -> Settings:
    """Validate notebook 10's parameters; with ``quick=True`` apply the smoke settings.

    Parameters
    ----------
    **params
        Every parameter of the notebook's ``parameters`` cell, by name (see
        :class:`Settings`).

    Returns
    -------
    Settings
        The parameters, converted; with ``quick=True`` the sizes of :data:`QUICK`.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and what is allowed.
    """
    p = _check_params(params, PARAMS)
    if p["quick"]:
        p.update(QUICK)
    return Settings(**p)


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
        """Returns
        -------
        None
            Removes the hooks; ``norms`` stays.
        """
        for h in self._handles:
            h.remove()
        self._handles = []


# ------------------------------------------------------------------ experiments
def _row(model, test, teacher_test, **info) -> dict:
    logits = models.predict(model, test.x)
    return {**info, "acc": accuracy_from_logits(logits, test.y),
            "fidelity": agreement_from_logits(logits, teacher_test)}


class Context:
    """Per seed: the data split and the teacher's cached logits / hidden features.

    The :attr:`teacher_test` logits that the ``run_*`` functions read are set by :func:`contexts`.

    Parameters
    ----------
    teacher : nn.Module
        Notebook 01's teacher.
    n_train : int
        Training images (``kdlib.data.load("fashion-mnist", n_train=n_train, seed=seed)``).
    seed : int
        Seed of the training subset.
    test : kdlib.data.Split, optional
        Test set to use instead of ``data.test``.

    Attributes
    ----------
    data : kdlib.data.Splits
    test : kdlib.data.Split
    teacher_logits : torch.Tensor
        The teacher's logits on ``data.train``, ``(n_train, 10)``.
    teacher_features : torch.Tensor
        The teacher's :data:`TEACHER_LAYER` activations on ``data.train``, ``(n_train, 128)``.
    """

    def __init__(self, teacher, n_train: int, seed: int, test=None):
        self.data = kdata.load("fashion-mnist", n_train=n_train, seed=seed)
        self.test = self.data.test if test is None else test
        self.teacher_logits = models.predict(teacher, self.data.train.x)
        self.teacher_features = models.read_layer(teacher, self.data.train.x, TEACHER_LAYER)


def settings(epochs: int, optimizer: str = "adam", clip: float | None = None) -> train.TrainSettings:
    """This lesson's training recipe: batch 64, the learning rate of :data:`LR` for ``optimizer``,
    optional gradient clipping.

    Parameters
    ----------
    epochs : int
    optimizer : {"adam", "sgd"}
    clip : float, optional
        Clip the global gradient norm to this value.

    Returns
    -------
    kdlib.train.TrainSettings
    """
    return train.TrainSettings(epochs=epochs, lr=LR[optimizer], optimizer=optimizer, clip_grad=clip,
                               batch_size=64)


def student_method(name: str, ctx, *, lam: float = 0.1, T: float = 2.0, feature_weight: float = 0.25):
    """One of this lesson's methods as a :class:`kdlib.experiments.Method`.

    ``"labels"`` (cross-entropy), ``"kd"`` (``kd_loss``), ``"hint"`` or ``"cosine"``
    (cross-entropy + ``feature_weight`` × feature loss), ``"kd+hint"`` or ``"kd+cosine"``
    (``kd_loss`` + ``feature_weight`` × feature loss).

    Parameters
    ----------
    name : str
    ctx : Context
        Holds the teacher's hidden features on the training images (feature losses).
    lam, T, feature_weight : float

    Returns
    -------
    kdlib.experiments.Method
    """
    if name == "labels":
        return experiments.scratch("labels")
    if name == "kd":
        return experiments.kd(lam, T)
    base, feature = name.split("+") if "+" in name else ("labels", name)
    if feature not in ("hint", "cosine") or base not in ("labels", "kd"):
        raise ValueError(f"method={name!r}; allowed: labels, kd, hint, cosine, kd+hint, kd+cosine")
    t_feat = ctx.teacher_features

    def setup(student, t_logits):
        width = student[1].out_features
        model = HintStudent(student, width, t_feat.shape[1]) if feature == "hint" else student
        tap = models.FeatureTap(student, STUDENT_LAYER)

        def loss_fn(logits, y, idx, x):
            s = tap.outputs[STUDENT_LAYER]
            if feature == "hint":
                f_loss = hint_loss(model.regressor(s), t_feat[idx])
            else:
                f_loss = cosine_feature_loss(s, pool_to(t_feat[idx], s.shape[1]))
            main = (F.cross_entropy(logits, y) if base == "labels"
                    else kd_loss(logits, t_logits[idx], y, lam=lam, T=T))
            return main + feature_weight * f_loss

        return model, loss_fn, tap.remove

    return experiments.custom(name, setup, lam=lam if base == "kd" else 1.0, T=T)


def _train(kind: str, ctx, how, *, seed: int, recipe, record_grads: bool = False):
    """``(student, grad_norms or None)``: ``build(kind)`` trained by the engine with method
    ``how`` and settings ``recipe`` on ``ctx``'s data."""
    recorders = []

    def build_student():
        model = build(kind)
        if record_grads:
            recorders.append(GradNormRecorder(model))
        return model

    try:
        model, _ = experiments.train(experiments.Config(build_student, how, seed, recipe), ctx.data,
                                     teacher_logits=ctx.teacher_logits)
    finally:
        for r in recorders:
            r.remove()
    return model, (recorders[0].norms if recorders else None)


def run_rnn(teacher, ctxs, *, epochs, lam, T, clip, progress=True):
    """RNN student: scratch vs distilled (Adam), then distilled with/without clipping, SGD/Adam.

    Returns ``(rows, grad_norms)``; ``grad_norms[(optimizer, clipped)]`` is seed 0's per-step
    gradient norms.

    Parameters
    ----------
    teacher : nn.Module
        Unused; the contexts hold its logits.
    ctxs : list of Context
        One per seed (:func:`contexts`); seed ``i`` trains with ``ctxs[i]``.
    epochs : int
    lam, T : float
        λ and temperature of the distilled runs.
    clip : float
        Gradient-norm clipping threshold, ``> 0`` (also the threshold of ``clipped_frac``).
    progress : bool
        Show a progress bar.

    Returns
    -------
    (rows, grad_norms) : (list of dict, dict)
        Rows with ``student``, ``method``, ``optimizer``, ``clipped``, ``seed``, ``acc``, ``fidelity``,
        ``grad_median``, ``grad_max``, ``clipped_frac`` (steps with a norm above ``clip``).
    """
    from tqdm.auto import tqdm  # progress bar only

    configs = [("labels", "adam", None), ("kd", "adam", None), ("kd", "adam", clip),
               ("kd", "sgd", None), ("kd", "sgd", clip)]
    rows, norms = [], {}
    bar = tqdm(total=len(ctxs) * len(configs), desc="RNN students", disable=not progress)
    for seed, ctx in enumerate(ctxs):
        for method, opt, c in configs:
            model, g = _train("rnn", ctx, student_method(method, ctx, lam=lam, T=T), seed=seed,
                              recipe=settings(epochs, opt, c), record_grads=True)
            rows.append(_row(model, ctx.test, ctx.teacher_test, student="rnn", method=method,
                             optimizer=opt, clipped=c is not None, seed=seed,
                             grad_median=float(np.median(g)), grad_max=float(np.max(g)),
                             clipped_frac=float(np.mean(np.array(g) > clip))))
            if seed == 0 and method == "kd":
                norms[(opt, c is not None)] = g
            bar.update(1)
    bar.close()
    return rows, norms


def run_architectures(teacher, ctxs, *, epochs, lam, T, progress=True):
    """A small CNN and an MLP of about the same size, each on labels and distilled.

    Parameters
    ----------
    teacher : nn.Module
        Unused; the contexts hold its logits.
    ctxs : list of Context
        One per seed.
    epochs : int
    lam, T : float
        λ and temperature of the distilled runs.
    progress : bool

    Returns
    -------
    list of dict
        ``student`` ("cnn"/"mlp-small"), ``method`` ("labels"/"kd"), ``seed``, ``acc``, ``fidelity``.
    """
    from tqdm.auto import tqdm  # progress bar only

    rows = []
    bar = tqdm(total=len(ctxs) * 4, desc="CNN vs MLP", disable=not progress)
    for seed, ctx in enumerate(ctxs):
        for kind in ("cnn", "mlp-small"):
            for method in ("labels", "kd"):
                model, _ = _train(kind, ctx, student_method(method, ctx, lam=lam, T=T),
                                  seed=seed, recipe=settings(epochs))
                rows.append(_row(model, ctx.test, ctx.teacher_test, student=kind,
                                 method=method, seed=seed))
                bar.update(1)
    bar.close()
    return rows


FEATURE_METHODS = ("labels", "kd", "hint", "cosine", "kd+hint", "kd+cosine")


def run_features(teacher, ctxs, *, epochs, lam, T, feature_weight, progress=True):
    """MLP 784-64-10 student: every method of ``FEATURE_METHODS``.

    Parameters
    ----------
    teacher : nn.Module
        Unused; the contexts hold its logits and features.
    ctxs : list of Context
        One per seed.
    epochs : int
    lam, T : float
        λ and temperature of the KD term.
    feature_weight : float
        Weight of the hint / cosine term.
    progress : bool

    Returns
    -------
    list of dict
        ``student`` ("mlp"), ``method``, ``seed``, ``acc``, ``fidelity``.
    """
    from tqdm.auto import tqdm  # progress bar only

    rows = []
    bar = tqdm(total=len(ctxs) * len(FEATURE_METHODS), desc="feature losses",
               disable=not progress)
    for seed, ctx in enumerate(ctxs):
        for method in FEATURE_METHODS:
            how = student_method(method, ctx, lam=lam, T=T, feature_weight=feature_weight)
            model, _ = _train("mlp", ctx, how, seed=seed, recipe=settings(epochs))
            rows.append(_row(model, ctx.test, ctx.teacher_test, student="mlp", method=method,
                             seed=seed))
            bar.update(1)
    bar.close()
    return rows


def contexts(teacher, *, n_train: int, seeds: int) -> list:
    """One :class:`Context` per seed, sharing the test set and the teacher's test logits.

    Parameters
    ----------
    teacher : nn.Module
    n_train, seeds : int
        Training images per seed; seeds ``0 .. seeds-1``.

    Returns
    -------
    list of Context
        Each with ``teacher_test``, the teacher's logits on the shared test set.
    """
    ctxs = []
    for seed in range(seeds):
        ctx = Context(teacher, n_train, seed, test=ctxs[0].test if ctxs else None)
        ctx.teacher_test = (ctxs[0].teacher_test if ctxs
                            else models.predict(teacher, ctx.test.x))
        ctxs.append(ctx)
    return ctxs


# ------------------------------------------------------------------ tables and figures
def _vals(rows, key, **match):
    return [r[key] for r in rows if all(r[k] == v for k, v in match.items())]


def _pp(d) -> str:
    if d.n < 2 or math.isnan(d.low):
        return f"{d.mean * 100:+.2f} pp (n={d.n}, no CI)"
    return f"{d.mean * 100:+.2f} pp, 95% CI [{d.low * 100:+.2f}, {d.high * 100:+.2f}] (n={d.n})"


def table(rows, groups, *, baseline=None, label=lambda g: str(g)) -> str:
    """Accuracy and fidelity per group (mean ± sd over seeds); paired differences against
    ``baseline`` (a group) when given. A group is a dict of column values.

    Parameters
    ----------
    rows : list of dict
        Rows of the ``run_*`` functions.
    groups : sequence of dict
        Column → value filters, e.g. ``{"student": "cnn", "method": "kd"}``.
    baseline : dict, optional
        One of ``groups``; accuracy differences are paired by seed.
    label : callable
        ``label(group) -> str`` for the row names.

    Returns
    -------
    str
    """
    lines = [f"{'':<26} {'accuracy':>18} {'fidelity':>18}"]
    for g in groups:
        lines.append(f"{label(g):<26} {format_pct(_vals(rows, 'acc', **g)):>18} "
                     f"{format_pct(_vals(rows, 'fidelity', **g)):>18}")
    if baseline is not None:
        base = _vals(rows, "acc", **baseline)
        for g in groups:
            if g != baseline:
                d = paired_difference(_vals(rows, "acc", **g), base)
                lines.append(f"{label(g)} - {label(baseline)}, accuracy: {_pp(d)}")
    return "\n".join(lines)


def clipping_table(rows, clip: float) -> str:
    """The distilled RNN under Adam/SGD with and without clipping: accuracy and gradient norms.

    Parameters
    ----------
    rows : list of dict
        :func:`run_rnn`'s rows.
    clip : float
        The clipping threshold, for the column.

    Returns
    -------
    str
        Means over seeds, then the paired clipped − unclipped accuracy per optimizer.
    """
    lines = [f"{'optimizer':<9} {'clip':>5} {'accuracy':>18} {'median |g|':>11} {'max |g|':>9} "
             f"{'steps |g| > clip':>17}"]
    for opt in ("adam", "sgd"):
        for clipped in (False, True):
            m = dict(method="kd", optimizer=opt, clipped=clipped)
            lines.append(f"{opt:<9} {clip if clipped else '-':>5} "
                         f"{format_pct(_vals(rows, 'acc', **m)):>18} "
                         f"{np.mean(_vals(rows, 'grad_median', **m)):>11.3f} "
                         f"{np.mean(_vals(rows, 'grad_max', **m)):>9.2f} "
                         f"{np.mean(_vals(rows, 'clipped_frac', **m)) * 100:>16.1f}%")
    for opt in ("adam", "sgd"):
        d = paired_difference(_vals(rows, "acc", method="kd", optimizer=opt, clipped=True),
                              _vals(rows, "acc", method="kd", optimizer=opt, clipped=False))
        lines.append(f"{opt}: clipped - unclipped, accuracy: {_pp(d)}")
    return "\n".join(lines)


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


def dot_plot(rows, groups, *, label=lambda g: str(g), title=""):
    """Test accuracy per group: one dot per seed, the mean ± sd as a bar with error bars.

    Parameters
    ----------
    rows : list of dict
        Rows with ``acc`` (fraction; drawn in percent).
    groups : sequence of dict
        Column → value filters, one line each, top to bottom.
    label : callable
        ``label(group) -> str``.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(7, 0.45 * len(groups) + 1.2)
    ax = axes[0, 0]
    for i, g in enumerate(groups):
        v = np.array(_vals(rows, "acc", **g)) * 100
        ax.scatter(v, np.full(len(v), i), color="tab:grey", s=14, zorder=3)
        sd = v.std(ddof=1) if len(v) > 1 else 0.0
        ax.errorbar(v.mean(), i, xerr=sd, fmt="o", color="tab:red", capsize=4, zorder=4)
    ax.set_yticks(range(len(groups)), [label(g) for g in groups])
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%)  (grey: seeds, red: mean ± sd)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    return fig


API_ROWS = [
    ("API", "soft term", "weight on the hard labels", "temperature", "feature loss"),
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
     "separate loss modules (e.g. FitNets' hint loss) combined in the config"),
    ("PyTorch KD tutorial", "T² · cross-entropy of the softened distributions (= KL up to a constant)",
     "`ce_loss_weight=0.75` (and `soft_target_loss_weight=0.25`)", "`T=2`",
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


def check_exercise(n: int, answer) -> Verdict:
    """Say whether ``answer`` to exercise ``n`` is right, with a hint when it is not.

    Parameters
    ----------
    n : int
        The exercise, 1 or 2 (:data:`EXERCISES`).
    answer
        1: which argument of ``kd_loss`` plays the role of Keras's ``student_loss_weight``
        (the weight on the hard labels): ``"lam"`` or ``"1 - lam"``. 2: the number of
        parameters of the RNN student (GRU over 28-pixel rows, hidden 64, 10 classes).

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``; truthy when right.
    """
    return check_answer(EXERCISES, n, answer)
