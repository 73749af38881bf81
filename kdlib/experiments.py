"""The one way to train and compare students: methods, configurations, tidy rows.

A student is fully described by a :class:`Config`: a model builder, a :class:`Method` (how it
learns: :func:`scratch`, :func:`label_smoothing`, :func:`kd`, :func:`on_targets` or
:func:`custom`), a seed, the training settings (:class:`kdlib.train.TrainSettings`) and
optionally the rows of the training split it sees. :func:`train` trains one configuration;
:func:`train_students` trains a list of them and returns **one tidy row per student** (a dict:
the configuration's labels, the method's name and knobs, the seed, what ``evaluate`` measured,
the seconds it took).

Seeding is explicit: a student's initial weights are those of ``torch.manual_seed(seed);
build()``, its batch order and dropout those of ``fit(seed=seed)``, and all of it is drawn
inside ``torch.random.fork_rng``, so training a student never changes the global random
state, and a configuration alone determines its row (the same bits wherever, and in whatever
order, it is trained on one machine).

Many students at once
---------------------
Students that share an architecture, a batch size and a number of steps can train as **one
model with a leading "student" dimension** (:func:`train_group`): their weights are stacked
(``W`` of shape ``(S, inputs, outputs)``), every step multiplies all of them at once
(``torch.baddbmm``), and one Adam over the stacked tensors is S independent Adams (Adam is
elementwise). Each student keeps everything that makes it itself:

- its initial weights: those of ``torch.manual_seed(seed); kdlib.models.mlp(sizes)``, drawn
  without touching the global random state;
- its training sample (rows of a shared pool of images) and its batch order (the permutation
  :func:`kdlib.train.fit` would draw with ``seed``);
- its loss: ``lam · CE_ε + (1 − lam) · T² · KL(softmax(t/T) ‖ softmax(s/T))``, which is plain
  cross-entropy (``lam = 1, eps = 0``), label smoothing (``lam = 1, eps > 0``) or
  distillation (``lam < 1``) with its own λ, T and ε;
- its learning rate (the same OneCycle schedule, scaled).

So a student trained in a group ends with the weights it would have had trained alone by
``kdlib.train.distill``/``fit`` (to float rounding; tested), while one step costs a few large
multiplications instead of S × a few tiny ones (``benchmarks/many_students.py``).
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import math
import multiprocessing
import os
import signal
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.adam import adam
from tqdm.auto import tqdm

from kdlib import data as kdata
from kdlib import losses, metrics
from kdlib import train as _train
from kdlib._checks import (
    LAM,
    SEEDS,
    TEMPERATURE,
    Each,
    Float,
    Int,
    OneOf,
    Optional,
    check_int,
    check_labels,
    check_params,
    validate_params,
)
from kdlib.data import Split, Splits, unpack_splits
from kdlib.losses import HARD_ONLY_LAM, effective_T, same_setting
from kdlib.metrics import accuracy_from_logits, agreement_from_logits
from kdlib.models import mlp, predict
from kdlib.results import summarize
from kdlib.train import History, TrainSettings

__all__ = ["Method", "scratch", "label_smoothing", "kd", "on_targets", "custom", "Config", "train",
           "mlp_builder", "accuracy_on", "train_students", "GroupStudent", "train_group", "group_memory",
           "DEFAULT_MEMORY_BUDGET", "STUDENT_DEFAULTS", "student_recipe", "clear_cache", "cache_size",
           "fingerprint",
           "teacher_outputs", "shrink", "distill_mlp", "evaluate", "run_point", "run_points",
           "default_jobs", "worker_threads", "shutdown_pool", "train_grid", "baseline", "rows_at",
           "kfold_indices", "select_best", "sample_rows", "sampled_splits", "choose", "chosen"]
__all__ += ["BudgetGrid", "budget_point", "budget_map"]


# ------------------------------------------------------------------ methods
@dataclass(frozen=True)
class Method:
    """How a student learns; build one with :func:`scratch`, :func:`label_smoothing`,
    :func:`kd`, :func:`on_targets` or :func:`custom`.

    Parameters
    ----------
    name : str
        The method's label in result rows (``"scratch"``, ``"kd"``, ...).
    kind : {"labels", "kd", "targets", "custom"}
        How it trains: on labels (``fit``, plain or smoothed cross-entropy), by
        :func:`kdlib.train.distill` on the teacher's cached logits, towards given
        probabilities, or with its own ``setup``.
    lam : float in [0, 1]
        Weight of the hard-label term (1: labels only).
    T : float > 0
        Temperature of the soft term.
    eps : float in [0, 1)
        Label smoothing of the hard-label term.
    targets : Tensor, optional
        :func:`on_targets`: one row of probabilities per training example.
    setup : callable, optional
        :func:`custom`: ``setup(student, teacher_logits) -> (model, loss_fn, finish)``.
    """

    name: str = "scratch"
    kind: str = "labels"
    lam: float = 1.0
    T: float = 1.0
    eps: float = 0.0
    targets: object = field(default=None, compare=False, repr=False)
    setup: object = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        check_params({"kind": self.kind, "lam": self.lam, "T": self.T, "eps": self.eps}, _METHOD_SPEC)
        if self.kind == "kd" and self.eps:
            raise ValueError(f"method {self.name!r}: label smoothing (eps={self.eps:g}) with KD trains "
                             "only in a group (train_group); use eps=0 here")
        if (self.kind == "targets") != (self.targets is not None) or \
                (self.kind == "custom") != (self.setup is not None):
            raise ValueError(f"method {self.name!r} of kind {self.kind!r}: build it with kd(), "
                             "scratch(), label_smoothing(), on_targets() or custom()")

    def knobs(self) -> dict:
        """The method's columns of a result row: ``method``, ``lam``, ``T``, ``eps``."""
        return {"method": self.name, "lam": self.lam, "T": self.T, "eps": self.eps}


_METHOD_SPEC = {"kind": OneOf("labels", "kd", "targets", "custom"), "lam": LAM, "T": TEMPERATURE,
                "eps": Float(0.0, 0.999)}


def scratch(name: str = "scratch") -> Method:
    """Hard labels only: plain cross-entropy (``fit``'s default loss).

    Parameters
    ----------
    name : str
        Its label in result rows.

    Returns
    -------
    Method
    """
    return Method(name)


def label_smoothing(eps: float, name: str = "label smoothing") -> Method:
    """Cross-entropy with smoothed labels, ``F.cross_entropy(..., label_smoothing=eps)``.

    Parameters
    ----------
    eps : float in [0, 1)
    name : str

    Returns
    -------
    Method
    """
    return Method(name, eps=eps)


def kd(lam: float, T: float, name: str = "kd") -> Method:
    """Distillation from the teacher's cached logits: :func:`kdlib.losses.kd_loss` (λ, T).

    Parameters
    ----------
    lam : float in [0, 1]
        Weight of the hard-label term.
    T : float > 0
    name : str

    Returns
    -------
    Method
    """
    return Method(name, "kd", lam=lam, T=T)


def on_targets(targets, *, lam: float = 0.0, T: float = 1.0, name: str = "targets") -> Method:
    """Distillation towards given probabilities (the controls of notebook 06):
    :func:`kdlib.losses.kd_loss_from_probs` with one row of ``targets`` per training example.

    Parameters
    ----------
    targets : Tensor (n_train, classes)
        Probabilities, looked up by example index.
    lam : float in [0, 1]
    T : float > 0
    name : str

    Returns
    -------
    Method
    """
    return Method(name, "targets", lam=lam, T=T, targets=targets.detach())


def custom(name: str, setup, *, lam: float = 1.0, T: float = 1.0) -> Method:
    """Any other loss (feature losses, a tree's soft loss).

    Parameters
    ----------
    name : str
    setup : callable
        ``setup(student, teacher_logits) -> (model, loss_fn, finish)``: the module to train
        (the student, or a wrapper with extra parts), ``fit``'s ``loss_fn(logits, y, idx, x)``,
        and ``finish()`` (or ``None``), called after training even when it fails.
    lam, T : float
        Recorded in the rows (and available to ``setup``'s loss through closure).

    Returns
    -------
    Method
    """
    return Method(name, "custom", lam=lam, T=T, setup=setup)


# ------------------------------------------------------------------ configurations
@dataclass(frozen=True)
class Config:
    """One student to train.

    Parameters
    ----------
    build : callable
        ``build() -> nn.Module``: the student's architecture (called after
        ``torch.manual_seed(seed)``, inside ``fork_rng``).
    method : Method
    seed : int >= 0
        Seeds the initial weights, the batch order and dropout.
    settings : TrainSettings
        Epochs, learning rate, batch size, optimizer, ... (its ``seed`` is replaced by ``seed``).
    rows : sequence of int, optional
        The training examples it sees (rows of the training split; default: all).
    labels : dict
        Extra columns of its result row (e.g. ``{"model": "mlp-64"}``).
    init_seed : int >= 0, optional
        Seeds the initial weights instead of ``seed`` (e.g. a student with the teacher's
        architecture that must not start from the teacher's own initial weights).
    """

    build: object
    method: Method = field(default_factory=Method)
    seed: int = 0
    settings: TrainSettings = field(default_factory=TrainSettings)
    rows: tuple | None = None
    labels: dict = field(default_factory=dict, compare=False)
    init_seed: int | None = None

    def __post_init__(self):
        check_params({"seed": self.seed, "init_seed": self.init_seed},
                     {"seed": Int(low=0), "init_seed": Optional(Int(low=0))})


def _loss_fn(method: Method, train_y, teacher_logits, device):
    """``fit``'s loss for ``method`` (``None``: fit's own cross-entropy)."""
    if method.targets is not None:
        if len(method.targets) != len(train_y):
            raise ValueError(f"targets has {len(method.targets)} rows but the training split has "
                             f"{len(train_y)} images")
        targets = method.targets.to(device)
        return lambda logits, y, idx, x: losses.kd_loss_from_probs(
            logits, targets[idx], y, lam=method.lam, T=method.T)
    if method.eps:
        return lambda logits, y, idx, x: F.cross_entropy(logits, y, label_smoothing=method.eps)
    return None


def train(config: Config, data, *, teacher_logits=None, callback=None, progress: bool = False):
    """Train one configuration; the global random state is left as it was.

    Parameters
    ----------
    config : Config
    data : Splits, (train, val) pair, or Split
        The student trains on ``data.train`` (its ``config.rows``) and is evaluated on
        ``data.val`` after every epoch (see :func:`kdlib.train.fit`).
    teacher_logits : Tensor, optional
        The teacher's logits on the whole ``data.train`` (for a KD method, and for
        :func:`custom` setups that use them).
    callback : callable, optional
        ``callback(student, history)`` after every evaluation (e.g. to measure the student
        after every epoch).
    progress : bool
        A progress bar for this one student.

    Returns
    -------
    tuple
        ``(model, history)``: the trained student (in evaluation mode) and its
        :class:`kdlib.train.History`.
    """
    if not isinstance(config, Config):
        raise TypeError(f"config must be a kdlib.experiments.Config, got {type(config).__name__}")
    m, seed = config.method, config.seed
    train_split, val, _ = kdata.unpack_splits(data)
    logits = teacher_logits
    if config.rows is not None:
        rows = torch.as_tensor(config.rows, dtype=torch.long)
        train_split = kdata.Split(train_split.x[rows], train_split.y[rows])
        logits = None if logits is None else logits[rows]
        if m.targets is not None:
            m = replace(m, targets=m.targets[rows])
    data = (train_split, val)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed if config.init_seed is None else config.init_seed)
        student = config.build()
        kw = dict(settings=config.settings, seed=seed, progress=progress,
                  callback=None if callback is None else (lambda history: callback(student, history)))
        if m.setup is not None:
            model, loss_fn, finish = m.setup(student, logits)
            try:
                history = _train.fit(model, data, loss_fn=loss_fn, desc=m.name, **kw)
            finally:
                if finish is not None:
                    finish()
        elif m.kind == "kd":
            if logits is None:
                raise ValueError(f"method {m.name!r} (lam={m.lam:g}) distils: pass teacher_logits")
            history = _train.distill(student, None, data, lam=m.lam, T=m.T, teacher_logits=logits, **kw)
        else:
            device = config.settings.torch_device
            history = _train.fit(student, data, loss_fn=_loss_fn(m, train_split.y, logits, device),
                                 desc=m.name, **kw)
    return student, history


def mlp_builder(sizes):
    """A builder of ``kdlib.models.mlp(sizes)`` that :func:`train_students` recognises, so that
    students built by it can train in lockstep (:func:`train_group`).

    Parameters
    ----------
    sizes : sequence of int

    Returns
    -------
    functools.partial
    """
    return partial(mlp, [int(v) for v in sizes])


def _group_key(config: Config, n_rows: int):
    """What configurations must share to train as one lockstep group; ``None``: train alone.

    An :func:`mlp_builder` student learning from labels (plain or smoothed) or by KD, with
    ``fit``'s default recipe shape (Adam, OneCycle, no weight decay, clipping or mid-epoch
    evaluation, on the CPU), its own seed for weights and batches.
    """
    b, m, s = config.build, config.method, config.settings
    if not (isinstance(b, partial) and b.func is mlp and not b.keywords and len(b.args) == 1):
        return None
    if m.kind not in ("labels", "kd") or config.init_seed is not None:
        return None
    if (s.optimizer, s.schedule, s.weight_decay, s.momentum, s.clip_grad, s.eval_every) != \
            ("adam", "onecycle", 0.0, None, None, None) or s.torch_device.type != "cpu":
        return None
    rows = n_rows if config.rows is None else len(config.rows)
    return (tuple(b.args[0]), s.epochs, s.batch_size, rows)


def _train_lockstep(configs, data, teacher_logits) -> list:
    """``(model, history)`` of each configuration of one group, trained by :func:`train_group`."""
    train_split, val, _ = kdata.unpack_splits(data)
    sizes, epochs, batch_size, _ = _group_key(configs[0], len(train_split.y))
    students = [GroupStudent(seed=c.seed, lam=c.method.lam if c.method.kind == "kd" else 1.0,
                             T=c.method.T, eps=c.method.eps, lr=c.settings.lr,
                             rows=None if c.rows is None else tuple(c.rows)) for c in configs]
    if teacher_logits is None and any(st.lam < 1 for st in students):
        raise ValueError("a KD method distils: pass teacher_logits")
    return train_group(list(sizes), train_split, students, val=val, teacher_logits=teacher_logits,
                       epochs=epochs, batch_size=batch_size)


def accuracy_on(split_name: str = "test"):
    """An ``evaluate`` for :func:`train_students`: ``{f"{split_name}_acc": accuracy}``.

    Parameters
    ----------
    split_name : {"val", "test"}

    Returns
    -------
    callable
        ``evaluate(model, config, data) -> dict``.
    """
    def evaluate(model, config, data):
        split = getattr(data, split_name)
        return {f"{split_name}_acc": metrics.accuracy(model, split.x, split.y)}
    return evaluate


def train_students(configs, data, *, teacher_logits=None, evaluate=None, keep=None,
                   progress: bool = True, desc: str = "students", lockstep: bool = True) -> list[dict]:
    """Train every configuration; one tidy row per student, in the order given.

    Students that can (built by :func:`mlp_builder`, learning from labels or by KD, with the
    same layer sizes, epochs, batch size and number of training images) train together as
    one batched model (:func:`train_group`): several times faster, and the same students to
    float rounding (tested), not to the bit. The rest train one by one (:func:`train`).

    Parameters
    ----------
    configs : sequence of Config
    data : kdlib.data.Splits
    teacher_logits : Tensor, optional
        The teacher's logits on ``data.train`` (needed by KD methods).
    evaluate : callable, optional
        ``evaluate(model, config, data) -> dict`` of measurements for the row (default:
        :func:`accuracy_on` ``"test"``).
    keep : callable, optional
        ``keep(config) -> bool``: rows of the configurations it accepts also hold the trained
        model under ``"student"`` (e.g. to time one of them later).
    progress : bool
        One progress bar over the students.
    desc : str
        Its label.
    lockstep : bool
        ``False`` trains every student alone (the reference path, bit for bit what
        :func:`train` gives).

    Returns
    -------
    list of dict
        ``{**config.labels, "method", "lam", "T", "eps", "seed", **evaluate(...), "seconds"}``
        (a group's students share its seconds equally).
    """
    configs, evaluate = list(configs), evaluate or accuracy_on("test")
    n_rows = len(kdata.unpack_splits(data)[0].y)
    groups: dict = {}
    for i, c in enumerate(configs):
        key = _group_key(c, n_rows) if lockstep else None
        groups.setdefault(("alone", i) if key is None else key, []).append(i)
    out = [None] * len(configs)
    with tqdm(total=len(configs), desc=desc, disable=not progress, leave=False) as bar:
        for members in groups.values():
            t0 = time.perf_counter()
            if len(members) > 1:
                trained = _train_lockstep([configs[i] for i in members], data, teacher_logits)
            else:
                trained = [train(configs[members[0]], data, teacher_logits=teacher_logits)]
            seconds = (time.perf_counter() - t0) / len(members)
            for i, (model, _) in zip(members, trained):
                c = configs[i]
                row = {**c.labels, **c.method.knobs(), "seed": c.seed, **evaluate(model, c, data),
                       "seconds": seconds}
                if keep is not None and keep(c):
                    row["student"] = model
                out[i] = row
            bar.update(len(members))
    return out

DEFAULT_MEMORY_BUDGET = 2 * 2**30
"""Bytes a group's per-student tensors may take (gathered batches, teacher targets,
activations); :func:`train_group` trains a larger group in several parts and says so."""

_ADAM_BETA2, _ADAM_EPS = 0.999, 1e-8  # torch.optim.Adam's defaults, which fit uses


@dataclass(frozen=True)
class GroupStudent:
    """One student of a group.

    Parameters
    ----------
    seed : int
        Seeds its initial weights and its batch order (as ``fit(seed=seed)`` does).
    lam : float in [0, 1]
        Weight of the hard-label term; 1 trains on labels only (T then has no effect).
    T : float > 0
        Temperature of the soft term.
    eps : float in [0, 1)
        Label smoothing of the hard-label term (0: plain cross-entropy).
    lr : float > 0
        Peak learning rate of its OneCycle schedule (Adam).
    rows : sequence of int, optional
        Its training images: rows of the group's pool (default: the whole pool). Every
        student of a group must have as many rows as the others.
    """

    seed: int
    lam: float = 1.0
    T: float = 1.0
    eps: float = 0.0
    lr: float = 3e-2
    rows: tuple | None = field(default=None, compare=False)


def _check_student(i: int, s) -> GroupStudent:
    if not isinstance(s, GroupStudent):
        raise TypeError(f"students[{i}] must be a GroupStudent, got {type(s).__name__}")
    for name, rule in _GROUP_STUDENT_SPEC.items():
        rule(f"students[{i}].{name}", getattr(s, name))
    return s


_GROUP_STUDENT_SPEC = {"seed": Int(low=0), "lam": LAM, "T": TEMPERATURE, "eps": Float(0.0, 0.999),
                       "lr": Float(0.0, low_open=True)}


def group_memory(n_students: int, *, n_train: int, batch_size: int, sizes, n_val: int) -> int:
    """Bytes of the per-student tensors of a group (what :data:`DEFAULT_MEMORY_BUDGET` bounds).

    Teacher targets ``S × n_train × classes``, gathered batches ``S × batch × inputs``, the
    activations and gradients of a batch and of the validation pass, and Adam's two moments.

    Parameters
    ----------
    n_students, n_train, batch_size, n_val : int
    sizes : sequence of int
        The students' layer widths.

    Returns
    -------
    int
    """
    weights = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    per_student = (n_train * sizes[-1] + batch_size * sizes[0] + 3 * batch_size * sum(sizes[1:])
                   + n_val * max(sizes[1:]) + 4 * weights)
    return 4 * n_students * per_student


def _init_weights(sizes, seed: int) -> list[torch.Tensor]:
    """``mlp(sizes)``'s initial weights after ``manual_seed(seed)``, the global RNG untouched."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = mlp(sizes)
    return [p.detach().clone() for p in model.parameters()]


def _onecycle(total_steps: int) -> tuple[list[float], list[float]]:
    """The learning-rate factor (for a peak of 1) and Adam's β1 at every step of ``fit``'s
    OneCycle schedule, read off PyTorch's own scheduler."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=1.0, total_steps=total_steps)
    lrs, betas = [], []
    for _ in range(total_steps):
        lrs.append(opt.param_groups[0]["lr"])
        betas.append(opt.param_groups[0]["betas"][0])
        opt.step()
        sched.step()
    return lrs, betas


def _forward(params: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of every student: ``x`` is ``(S, B, inputs)``, or ``(B, inputs)`` shared by all
    (then the first layer is one matrix product with every student's weights side by side)."""
    n_layers = len(params) // 2
    w, b = params[0], params[1]                            # (S, in, out), (S, 1, out)
    if x.ndim == 3:
        h = torch.baddbmm(b, x, w)
    else:
        S, n_in, n_out = w.shape
        h = (x @ w.permute(1, 0, 2).reshape(n_in, S * n_out)).view(len(x), S, n_out).transpose(0, 1) + b
    for j in range(1, n_layers):
        h = torch.baddbmm(params[2 * j + 1], torch.relu(h), params[2 * j])
    return h


def _group_loss(out, y, log_q_teacher, lam, T, eps):
    """Per-student mean loss, shape ``(S,)``: ``lam · CE_ε + (1 − lam) · T² · KL``."""
    log_p = F.log_softmax(out, dim=-1)
    nll = -log_p.gather(-1, y.unsqueeze(-1)).squeeze(-1)
    ce = ((1 - eps) * nll + eps * -log_p.mean(-1)).mean(-1)
    if log_q_teacher is None:
        return ce
    log_q_s = F.log_softmax(out / T[:, None, None], dim=-1)
    kl = (log_q_teacher.exp() * (log_q_teacher - log_q_s)).sum(-1).mean(-1)
    return lam * ce + (1 - lam) * T ** 2 * kl


@validate_params(sizes=Each(Int(low=1)), epochs=Int(low=1), batch_size=Int(low=1),
                 memory_budget=Int(low=1))
def train_group(sizes, pool, students, *, val=None, teacher_logits=None, epochs: int = 20,
                batch_size: int = 128, memory_budget: int = DEFAULT_MEMORY_BUDGET,
                progress: bool = False) -> list[tuple[nn.Module, History]]:
    """Train same-shape MLP students in lockstep; return each one's model and History.

    Parameters
    ----------
    sizes : sequence of int
        Every student is ``kdlib.models.mlp(sizes)``.
    pool : kdlib.data.Split
        The images (flattened to ``sizes[0]`` features) and labels the students' ``rows``
        index into. The group trains on their device (on a GPU, batching removes the
        kernel-launch overhead that one small student per process pays; untested here).
    students : sequence of GroupStudent
    val : kdlib.data.Split, optional
        Scored after every epoch (each History's ``val_acc``, as ``fit`` does).
    teacher_logits : torch.Tensor, optional
        The teacher's logits on ``pool`` (one row per image); needed by any student with
        ``lam < 1``.
    epochs, batch_size : int
        The same for every student of the group.
    memory_budget : int
        Bytes the group's per-student tensors may take (:func:`group_memory`); a group that
        needs more is trained in parts of as many students as fit, with a message.
    progress : bool
        Show a tqdm bar over the steps.

    Returns
    -------
    list of (nn.Module, History)
        In the order of ``students``: ``mlp(sizes)`` with the trained weights (evaluation mode)
        and its History (``epoch_loss``, ``val_acc``, ``step_loss``; ``epoch_time`` is the
        whole group's time per epoch).
    """
    students = [_check_student(i, s) for i, s in enumerate(students)]
    if not students:
        return []
    x_pool = pool.x.reshape(len(pool.x), -1)
    if x_pool.shape[1] != sizes[0]:
        raise ValueError(f"the pool's images have {x_pool.shape[1]} features but sizes[0] is {sizes[0]}")
    check_labels(pool.y, len(pool.y), sizes[-1], of="the students' last layer")
    rows = [torch.arange(len(pool.y)) if s.rows is None else torch.as_tensor(s.rows, dtype=torch.int64)
            for s in students]
    for i, r in enumerate(rows):
        if len(r) and (int(r.min()) < 0 or int(r.max()) >= len(pool.y)):
            raise ValueError(f"students[{i}].rows must index the pool's {len(pool.y)} images (0 to "
                             f"{len(pool.y) - 1}), got values from {int(r.min())} to {int(r.max())}")
    n_train = len(rows[0])
    if any(len(r) != n_train for r in rows):
        raise ValueError("every student of a group needs as many training rows; got "
                         f"{sorted({len(r) for r in rows})}")
    if n_train == 0:
        raise ValueError("the students' training samples are empty")
    if any(s.lam < 1 for s in students):
        if teacher_logits is None:
            raise ValueError("students with lam < 1 learn from a teacher: pass teacher_logits")
        if teacher_logits.shape != (len(pool.y), sizes[-1]):
            raise ValueError(f"teacher_logits has shape {tuple(teacher_logits.shape)}; it must be "
                             f"({len(pool.y)}, {sizes[-1]}), one row per pool image")
    n_val = 0 if val is None else len(val.y)
    each = group_memory(1, n_train=n_train, batch_size=batch_size, sizes=sizes, n_val=n_val)
    per_part = max(1, memory_budget // each)
    if per_part < len(students):
        print(f"train_group: {len(students)} students need ~{each * len(students) / 2**20:.0f} MiB, "
              f"over memory_budget={memory_budget / 2**20:.0f} MiB: training them in groups of {per_part}")
    out = []
    for start in range(0, len(students), per_part):
        part = slice(start, start + per_part)
        out += _train_part(sizes, x_pool, pool.y, students[part], rows[part], val, teacher_logits,
                           epochs, batch_size, progress)
    return out


def _train_part(sizes, x_pool, y_pool, students, rows, val, teacher_logits, epochs, batch_size,
                progress):
    """Train one part of a group; students with the same learning rate sit side by side, so
    that one fused Adam kernel steps each run of them (PyTorch's ``adam(..., fused=True)``)."""
    order = sorted(range(len(students)), key=lambda k: students[k].lr)
    trained = _train_sorted(sizes, x_pool, y_pool, [students[k] for k in order], [rows[k] for k in order],
                            val, teacher_logits, epochs, batch_size, progress)
    out = [None] * len(students)
    for k, result in zip(order, trained):
        out[k] = result
    return out


def _train_sorted(sizes, x_pool, y_pool, students, rows, val, teacher_logits, epochs, batch_size,
                  progress):
    S, n, dev = len(students), len(rows[0]), x_pool.device
    inits = [[w.to(dev) for w in _init_weights(sizes, s.seed)] for s in students]
    params = []
    for j, _ in enumerate(inits[0]):  # nn.Linear keeps (out, in): stack as (S, in, out), (S, 1, out)
        stacked = torch.stack([w[j] for w in inits])
        params.append((stacked.transpose(1, 2) if stacked.ndim == 3 else stacked[:, None, :])
                      .contiguous().requires_grad_(True))
    lam = torch.tensor([s.lam for s in students], device=dev)
    T = torch.tensor([s.T for s in students], device=dev)
    eps = torch.tensor([s.eps for s in students], device=dev)[:, None]
    runs = []  # (start, stop, lr) of the students that share a learning rate
    for k, s in enumerate(students):
        if runs and runs[-1][2] == s.lr:
            runs[-1][1] = k + 1
        else:
            runs.append([k, k + 1, s.lr])
    steps = [[torch.tensor(0.0, device=dev) for _ in params] for _ in runs]  # Adam's steps, per tensor
    rows = torch.stack(rows).to(dev)                              # (S, n) pool rows
    log_q = None
    if teacher_logits is not None and bool((lam < 1).any()):
        t = teacher_logits.detach().to(dev, torch.float32)[rows]  # (S, n, K)
        log_q = F.log_softmax(t / T[:, None, None], dim=-1)
    gens = [torch.Generator().manual_seed(s.seed) for s in students]
    steps_per_epoch = -(-n // batch_size)
    total = epochs * steps_per_epoch
    lr_factor, beta1s = _onecycle(total)
    m = [torch.zeros_like(p) for p in params]
    v = [torch.zeros_like(p) for p in params]
    hists = [History(steps_per_epoch=steps_per_epoch) for _ in students]
    x_val = None if val is None else val.x.reshape(len(val.x), -1).to(dev)
    y_val = None if val is None else val.y.to(dev)
    students_idx = torch.arange(S, device=dev)[:, None]
    bar = tqdm(total=total, desc=f"{S} students in lockstep", leave=False, disable=not progress)
    step = 0
    for _ in range(epochs):
        t0 = time.perf_counter()
        order = torch.stack([torch.randperm(n, generator=g) for g in gens]).to(dev)  # fit's permutations
        sums = torch.zeros(S, dtype=torch.float64, device=dev)
        for i in range(0, n, batch_size):
            pos = order[:, i:i + batch_size]                                 # (S, B) positions
            idx = rows.gather(1, pos)                                        # (S, B) pool rows
            xb, yb = x_pool[idx], y_pool[idx]
            lq = None if log_q is None else log_q[students_idx, pos]
            losses = _group_loss(_forward(params, xb), yb, lq, lam, T, eps)
            grads = torch.autograd.grad(losses.sum(), params)
            step += 1
            _adam_step(params, grads, m, v, runs, steps, lr_factor[step - 1], beta1s[step - 1])
            values = losses.detach()
            if not bool(torch.isfinite(values).all()):
                bad = int((~torch.isfinite(values)).nonzero()[0])
                raise FloatingPointError(f"the loss of student {bad} ({students[bad]}) became "
                                         f"{values[bad].item()} at step {step}; lower its lr")
            sums += values.double() * pos.shape[1]
            for h, value in zip(hists, values.tolist()):
                h.step_loss.append(value)
            bar.update(1)
        accs = [math.nan] * S
        if x_val is not None and len(x_val):
            with torch.no_grad():
                pred = _forward(params, x_val).argmax(-1)                    # (S, n_val)
            accs = (pred == y_val).float().mean(1).tolist()  # as kdlib.metrics.accuracy counts
        seconds = time.perf_counter() - t0
        for h, total_loss, acc in zip(hists, (sums / n).tolist(), accs):
            h.epoch_time.append(seconds)
            h.epoch_loss.append(total_loss)
            h.val_acc.append(acc)
            h.evals.append((step, acc))
    bar.close()
    return [(_unstack(sizes, params, k), hists[k]) for k in range(S)]


@torch.no_grad()
def _adam_step(params, grads, m, v, runs, steps, lr_factor: float, beta1: float) -> None:
    """One Adam step (``torch.optim.Adam``'s update, fused kernel) for every run of students that
    share a peak learning rate: ``lr = peak × the OneCycle factor of this step``."""
    for (start, stop, peak), run_steps in zip(runs, steps):
        part = slice(start, stop)
        adam([p[part] for p in params], [g[part] for g in grads], [t[part] for t in m],
             [t[part] for t in v], [], run_steps, fused=True, amsgrad=False, beta1=beta1,
             beta2=_ADAM_BETA2, lr=peak * lr_factor, weight_decay=0.0, eps=_ADAM_EPS, maximize=False)


def _unstack(sizes, params, k: int) -> nn.Module:
    """Student ``k`` of the group as an ordinary ``mlp(sizes)`` (evaluation mode)."""
    with torch.random.fork_rng(devices=[]):  # its throwaway initial weights leave the global RNG alone
        model = mlp(sizes).to(params[0].device)
    linears = [layer for layer in model if isinstance(layer, nn.Linear)]
    with torch.no_grad():
        for j, layer in enumerate(linears):
            layer.weight.copy_(params[2 * j][k].T)
            layer.bias.copy_(params[2 * j + 1][k, 0])
    return model.eval()


# ================================================================== grids of students
# Rows of (λ, T, seed) grids of the default MLP student (notebook 05's grids, the explorers,
# kdlib.runs' sweeps): a row cache keyed by the full configuration, worker processes or any
# concurrent.futures executor (Dask), and groups trained in lockstep (train_group above).
#
# A row is a plain dict ("tidy" data, one per trained student)::
#
#     {"lam": 0.5, "T": 4.0, "seed": 0, "val_acc": 0.848, "agreement": 0.91,
#      "test_acc": 0.842, "test_agreement": 0.90,              # only with test=True
#      "epochs": 20, "lr": 0.03, "batch_size": 128, "hidden": 128, "n_train": 2000,
#      "n_transfer": 0, "seconds": 0.6,
#      "history": {"epoch_loss": [...], "val_acc": [...]}}      # per epoch
#
# ``agreement`` is the fraction of validation images on which student and teacher predict
# the same class. ``lam = 1`` (kdlib.losses.HARD_ONLY_LAM) is the baseline, a student trained
# on labels only; T does not act there, so all T share one run (kdlib.losses.effective_T).

STUDENT_DEFAULTS = {"hidden": 128, "epochs": 20, "lr": 3e-2, "batch_size": 128}
"""The default student recipe: ``mlp([in, 128, classes])``, 20 epochs of Adam + OneCycle
(peak learning rate 0.03), batches of 128."""

_RECIPE = {"hidden": Int(low=1), "epochs": Int(low=1), "lr": Float(0.0, low_open=True),
           "batch_size": Int(low=1)}


def student_recipe(**recipe) -> dict:
    """:data:`STUDENT_DEFAULTS` with ``recipe``'s entries replacing them, validated.

    Parameters
    ----------
    **recipe
        Any of ``hidden``, ``epochs``, ``lr``, ``batch_size``.

    Returns
    -------
    dict
        All four, converted (``int``/``float``).

    Raises
    ------
    TypeError
        For a name that is not part of the recipe.
    """
    unknown = sorted(set(recipe) - set(_RECIPE))
    if unknown:
        raise TypeError(f"unknown student recipe option {unknown[0]!r}; the recipe is "
                        f"{sorted(_RECIPE)} (defaults: STUDENT_DEFAULTS)")
    return check_params({**STUDENT_DEFAULTS, **recipe}, _RECIPE)


_CACHE: dict[str, dict] = {}
_KEY_VERSION = 1


# --------------------------------------------------------------------------- cache
def clear_cache() -> None:
    """Forget every row cached in this process (files in a ``cache`` folder stay).

    Returns
    -------
    None
    """
    _CACHE.clear()


def cache_size() -> int:
    """Number of rows cached in this process.

    Returns
    -------
    int
    """
    return len(_CACHE)


def fingerprint(*tensors) -> str:
    """A short sha1 of tensors' shapes, dtypes and bytes.

    Parameters
    ----------
    *tensors : Tensor, array or None
        ``None`` entries are allowed (hashed as a marker).

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    h = hashlib.sha1()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy())
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _cache_path(cache_dir, key: str) -> Path:
    return Path(cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"


def _cache_dir(cache):
    """The folder of a ``cache`` argument (``True``/``False``: none)."""
    return None if isinstance(cache, bool) else cache


def _cache_get(key: str, cache):
    if cache is False:
        return None
    cache_dir = _cache_dir(cache)
    if key in _CACHE:
        return _CACHE[key]
    if cache_dir is not None:
        path = _cache_path(cache_dir, key)
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            if stored.get("key") == key:
                _CACHE[key] = stored["row"]
                return stored["row"]
    return None


def _cache_put(key: str, row: dict, cache) -> None:
    if cache is False:
        return
    cache_dir = _cache_dir(cache)
    _CACHE[key] = row
    if cache_dir is not None:
        path = _cache_path(cache_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "row": row}))
        tmp.replace(path)


# --------------------------------------------------------------------------- data helpers
def _train_val_test(data):
    """``(train, val, test or None)`` of a ``data`` argument that must have a validation split."""
    train, val, test = unpack_splits(data)
    if val is None:
        raise ValueError("data needs a validation split (students are scored on it); give "
                         "kdlib.data.Splits or a (train, val) pair, not a single Split")
    return train, val, test


def _logits_map(teacher_logits) -> dict:
    """Accept a tensor (the training split's logits) or a mapping with 'train'."""
    if isinstance(teacher_logits, torch.Tensor):
        return {"train": teacher_logits.detach()}
    if isinstance(teacher_logits, dict) and "train" in teacher_logits:
        return {k: v.detach() for k, v in teacher_logits.items() if v is not None}
    raise TypeError("teacher_logits must be a tensor of the training split's logits or a dict "
                    f"with keys 'train' (and 'val', 'test'); got {type(teacher_logits).__name__}")


def teacher_outputs(teacher, data) -> dict:
    """The teacher's logits on every split of ``data``.

    Parameters
    ----------
    teacher : nn.Module
        Run in evaluation mode, without gradients (:func:`kdlib.models.predict`).
    data : kdlib.data.Splits or (train, val[, test]) tuple

    Returns
    -------
    dict
        ``{"train": ..., "val": ..., "test": ...}`` (keys only for the splits present).
    """
    splits = dict(zip(("train", "val", "test"), unpack_splits(data)))
    return {name: predict(teacher, split.x).detach() for name, split in splits.items()
            if split is not None}


def _check_rows_match(name, logits, split):
    if logits is not None and split is not None and logits.shape[0] != len(split.y):
        raise ValueError(f"teacher_logits[{name!r}] has {logits.shape[0]} rows but the {name} "
                         f"split has {len(split.y)} examples; they must match")


def shrink(data, *, n_val: int | None = None, n_test: int | None = None):
    """A copy of ``data`` keeping only the first ``n_val`` validation and ``n_test`` test images.

    For quick smoke runs: the images kept are the same ones the full splits
    start with.

    Parameters
    ----------
    data : kdlib.data.Splits
    n_val, n_test : int or None
        Images to keep; ``None`` keeps a split whole.

    Returns
    -------
    kdlib.data.Splits
        Same ``train``, ``classes`` and ``name``.
    """
    def cut(split, n, name):
        if n is None:
            return split
        n = check_int(name, n, low=1, high=len(split.y))
        return Split(split.x[:n], split.y[:n])

    return Splits(data.train, cut(data.val, n_val, "n_val"), cut(data.test, n_test, "n_test"),
                  data.classes, data.name)


# --------------------------------------------------------------------------- one student
@validate_params(lam=LAM, T=TEMPERATURE)
def distill_mlp(data, teacher_logits, *, lam: float, T: float, seed: int = 0, transfer=None,
                n_classes=None, callback=None, **recipe):
    """A fresh student ``mlp([inputs, hidden, classes])`` (seeded by ``seed``), distilled by
    :func:`train` (``kd(lam, T)``) on the teacher's cached logits.

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on ``data.train`` (a dict needs key ``"train"``).
    lam, T : float
        λ in [0, 1] weights the hard-label CE; ``1 - lam`` weights ``T²·KL``.
    seed : int
        Seeds the initial weights and the batch order.
    **recipe
        ``hidden``, ``epochs``, ``lr``, ``batch_size`` (:func:`student_recipe`; defaults
        :data:`STUDENT_DEFAULTS`).
    transfer : (x, logits), optional
        Extra images without labels and the teacher's logits on them. They are
        appended to the training split and trained on the soft term only
        (λ = 0 there: their labels are unknown); the labelled images keep ``lam``.
    n_classes : int, optional
        Default: the width of the teacher's logits.
    callback : callable, optional
        ``callback(history)`` after every epoch (live curves, progress bars).

    Returns
    -------
    student : nn.Module
    history : kdlib.train.History
    """
    train_split, val, _ = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    _check_rows_match("train", logits["train"], train_split)
    r = student_recipe(**recipe)
    sizes = [int(np.prod(train_split.x.shape[1:])), r["hidden"], int(n_classes or logits["train"].shape[1])]
    settings = TrainSettings(epochs=r["epochs"], lr=r["lr"], batch_size=r["batch_size"])
    cb = None if callback is None else (lambda student, history: callback(history))
    if transfer is None:
        return train(Config(partial(mlp, sizes), kd(lam, T), seed, settings), (train_split, val),
                     teacher_logits=logits["train"], callback=cb)
    x_u, logits_u = transfer
    if logits_u.shape[0] != len(x_u):
        raise ValueError(f"transfer has {len(x_u)} images but {logits_u.shape[0]} teacher "
                         "logits; they must match")
    n_lab = len(train_split.y)
    both = Split(torch.cat([train_split.x, x_u]),
                 torch.cat([train_split.y, torch.zeros(len(x_u), dtype=train_split.y.dtype)]))

    def setup(student, cache):
        def loss_fn(out, y, idx, x):
            lab = idx < n_lab
            n_l, n = int(lab.sum()), len(idx)
            total = out.new_zeros(())
            if n_l:
                total = total + n_l * losses.kd_loss(out[lab], cache[idx[lab]], y[lab], lam=lam, T=T)
            if n_l < n:  # unlabelled: soft term only; the placeholder labels are never used
                u = ~lab
                total = total + (n - n_l) * losses.kd_terms(out[u], cache[idx[u]], y[u], T=T)[1]
            return total / n
        return student, loss_fn, None

    method = custom(f"distilling with transfer (lam={lam:g}, T={T:g})", setup, lam=lam, T=T)
    return train(Config(partial(mlp, sizes), method, seed, settings), (both, val),
                 teacher_logits=torch.cat([logits["train"], logits_u.detach()]), callback=cb)


def evaluate(student, data, teacher_logits, *, test: bool = False) -> dict:
    """Validation accuracy and agreement with the teacher (and the same on test).

    Parameters
    ----------
    student : nn.Module
    data : kdlib.data.Splits or (train, val[, test]) tuple
    teacher_logits : Tensor or dict
        A dict with ``"val"`` (``"test"``) gives the agreement; otherwise it is ``nan``.
    test : bool
        Also measure the test split.

    Returns
    -------
    dict
        ``val_acc``, ``agreement`` and, with ``test``, ``test_acc``, ``test_agreement``.
    """
    _, val, tst = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    v = predict(student, val.x)
    out = {"val_acc": accuracy_from_logits(v, val.y),
           "agreement": agreement_from_logits(v, logits["val"]) if "val" in logits
           else float("nan")}
    if test:
        if tst is None:
            raise ValueError("test=True needs data with a test split (kdlib.data.Splits)")
        t = predict(student, tst.x)
        out["test_acc"] = accuracy_from_logits(t, tst.y)
        out["test_agreement"] = agreement_from_logits(t, logits["test"]) if "test" in logits \
            else float("nan")
    return out


def run_point(data, teacher_logits, *, lam: float, T: float, seed: int = 0, test: bool = False,
              transfer=None, cache=True, **recipe) -> dict:
    """Train (or fetch from the cache) one student and return its row.

    The cache key is the full configuration: λ, the effective T
    (:func:`kdlib.losses.effective_T`: none at λ = 1, where T has no effect),
    seed, epochs, lr, batch size, width, ``test``, and fingerprints of the data,
    of the teacher's logits and of the transfer set. A hit returns a copy of the
    stored row, so callers may edit rows freely.

    Parameters
    ----------
    data, teacher_logits : see :func:`distill_mlp`
        ``teacher_logits`` as a dict with ``"val"`` (and ``"test"``) also gives
        the agreement columns.
    lam, T, seed, transfer, **recipe : see :func:`distill_mlp`
    test : bool
        Also measure the test split (``test_acc``, ``test_agreement``).
    cache : bool or path
        ``True``: use and fill this process's cache; ``False``: neither; a folder: the
        process's cache and one JSON file per row there (survives a kernel restart).

    Returns
    -------
    dict
        One row (see the module docstring).
    """
    key, args = _point_key(data, teacher_logits, lam=lam, T=T, seed=seed, test=test,
                           transfer=transfer, **recipe)
    hit = _cache_get(key, cache)
    if hit is not None:
        return _row_copy(hit, T=args["T"])
    row = _train_row(args)
    _cache_put(key, json.loads(json.dumps(row)), cache)
    return row


@validate_params(lam=LAM, T=TEMPERATURE, seed=Int(low=0))
def _point_key(data, teacher_logits, *, lam, T, seed=0, test=False, transfer=None, fingerprints=None,
               **recipe) -> tuple[str, dict]:
    """Validate one point; return its cache key and the arguments of :func:`_train_row`."""
    r = student_recipe(**recipe)
    train, val, tst = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    for name, split in (("train", train), ("val", val), ("test", tst)):
        _check_rows_match(name, logits.get(name), split)
    fp = dict(fingerprints or {})
    if "data" not in fp:
        fp["data"] = fingerprint(train.x, train.y, val.x, val.y,
                                 *((tst.x, tst.y) if test and tst is not None else ()))
    if "teacher" not in fp:
        fp["teacher"] = fingerprint(*(logits.get(k) for k in ("train", "val", "test")))
    if "transfer" not in fp:
        fp["transfer"] = "" if transfer is None else fingerprint(*transfer)
    key = json.dumps({"v": _KEY_VERSION, "lam": lam, "T": effective_T(lam, T), "seed": seed, **r,
                      "test": bool(test), **fp}, sort_keys=True)
    return key, {"data": data, "logits": logits, "lam": lam, "T": T, "seed": seed, **r,
                 "test": bool(test), "transfer": transfer}


def _row_copy(row: dict, *, T: float) -> dict:
    """A deep copy of a cached row, with the ``T`` that was asked for (λ = 1 rows share one run)."""
    row = json.loads(json.dumps(row))
    row["T"] = T
    return row


def _train_row(args: dict) -> dict:
    """Train one student from :func:`_point_key`'s arguments and measure it (no cache)."""
    data, logits, test, transfer = args["data"], args["logits"], args["test"], args["transfer"]
    t0 = time.perf_counter()
    recipe = {k: args[k] for k in _RECIPE}
    student, history = distill_mlp(data, logits, lam=args["lam"], T=args["T"], seed=args["seed"],
                                   transfer=transfer, **recipe)
    return _row(args, evaluate(student, data, logits, test=test), history, time.perf_counter() - t0)


def _row(args: dict, metrics: dict, history, seconds: float) -> dict:
    """The row of one trained student (see the module docstring)."""
    transfer = args["transfer"]
    return {"lam": args["lam"], "T": args["T"], "seed": args["seed"], **metrics,
            "epochs": args["epochs"], "lr": args["lr"], "batch_size": args["batch_size"],
            "hidden": args["hidden"], "n_train": len(_train_val_test(args["data"])[0].y),
            "n_transfer": 0 if transfer is None else len(transfer[0]),
            "seconds": round(seconds, 4),
            "history": {"epoch_loss": [float(v) for v in history.epoch_loss],
                        "val_acc": [float(v) for v in history.val_acc]}}


# ------------------------------------------------------------------ students in lockstep
def _lockstep_key(args: dict):
    """What students must share to train in one lockstep group (None: this one cannot)."""
    if args["transfer"] is not None:
        return None
    train, val, _ = _train_val_test(args["data"])
    return (args["hidden"], args["epochs"], args["batch_size"], len(train.y), tuple(train.x.shape[1:]),
            int(args["logits"]["train"].shape[1]), id(val.x), id(val.y))


def _train_rows_lockstep(points: list[dict]) -> list[dict]:
    """Rows of students that share a :func:`_lockstep_key`, trained as one group
    (:func:`kdlib.experiments.train_group`); each keeps its own training split, teacher
    logits, λ, T, seed and learning rate."""
    parts, students = {}, []
    for args in points:  # the pool: every distinct (training split, teacher logits) once
        train = _train_val_test(args["data"])[0]
        where = (id(train.x), id(train.y), id(args["logits"]["train"]))
        if where not in parts:
            parts[where] = (sum(len(p[1].y) for p in parts.values()), train, args["logits"]["train"])
        start = parts[where][0]
        students.append(GroupStudent(seed=args["seed"], lam=args["lam"], T=args["T"], lr=args["lr"],
                                     rows=tuple(range(start, start + len(train.y)))))
    pool = Split(torch.cat([p[1].x for p in parts.values()]), torch.cat([p[1].y for p in parts.values()]))
    logits = torch.cat([p[2] for p in parts.values()])
    first, val, _ = _train_val_test(points[0]["data"])
    sizes = [int(np.prod(first.x.shape[1:])), points[0]["hidden"], int(logits.shape[1])]
    t0 = time.perf_counter()
    trained = train_group(sizes, pool, students, val=val, teacher_logits=logits,
                          epochs=points[0]["epochs"], batch_size=points[0]["batch_size"])
    seconds = (time.perf_counter() - t0) / len(points)
    return [_row(args, evaluate(model, args["data"], args["logits"], test=args["test"]), history, seconds)
            for args, (model, history) in zip(points, trained)]


# ------------------------------------------------------------------ parallel students
_POOL: dict = {}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@validate_params(threads=Optional(Int(low=1)))
def default_jobs(threads: int | None = None) -> int:
    """Processes that fit beside each other: free cores // threads per process (≥ 1).

    Parameters
    ----------
    threads : int, optional
        Torch threads of each process (default: this process's).

    Returns
    -------
    int
    """
    threads = torch.get_num_threads() if threads is None else threads
    return max(1, _cores() // max(1, threads))


@validate_params(jobs=Int(low=1))
def worker_threads(jobs: int) -> int:
    """Torch threads each of ``jobs`` worker processes gets: this process's count, capped so
    that ``jobs × threads`` fits the free cores (≥ 1 each).

    More threads than cores make the workers fight over the cores: 2 workers of 2 threads on
    2 cores trained 7× slower than one process. When the cap applies, a ``RuntimeWarning``
    names it: the rows then may differ from ``jobs=1``'s in their last digits (a float sum
    split over fewer threads rounds differently).

    Parameters
    ----------
    jobs : int
        Worker processes.

    Returns
    -------
    int
    """
    mine, cores = torch.get_num_threads(), _cores()
    threads = min(mine, max(1, cores // jobs))
    if threads < mine:
        warnings.warn(f"run_points: jobs={jobs} workers with this process's {mine} torch threads each "
                      f"would oversubscribe the {cores} free cores (several times slower), so each "
                      f"worker uses {threads}; for rows identical to jobs=1 to the last bit, call "
                      f"torch.set_num_threads({threads}) first", RuntimeWarning, stacklevel=3)
    return threads


def _init_worker(threads: int) -> None:
    """A worker of :func:`run_points`: this process's thread count, and Ctrl-C left to the parent.

    An interrupt (Ctrl-C in a terminal, "interrupt kernel" in Jupyter, or the kernel shutting
    down) reaches the whole process group; the parent cancels the queued students and stops the
    pool, so the workers ignore it instead of each printing a ``KeyboardInterrupt`` traceback.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(threads)


def _pool(jobs: int):
    """A process pool of ``jobs`` spawned workers, kept for the session (start-up ~2 s)."""
    threads = worker_threads(jobs)
    if _POOL.get("spec") != (jobs, threads):
        shutdown_pool()
        ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pool
        _POOL["pool"] = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                            initargs=(threads,))
        _POOL["spec"] = (jobs, threads)
    return _POOL["pool"]


def shutdown_pool() -> None:
    """Stop the worker processes of :func:`run_points` (they also stop with Python).

    Returns
    -------
    None
    """
    pool = _POOL.pop("pool", None)
    _POOL.pop("spec", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pool)


@validate_params(jobs=Int(low=1))
def run_points(calls, *, jobs: int = 1, cache=True, progress: bool = False, desc: str = "students",
               executor=None, lockstep: bool = True) -> list[dict]:
    """:func:`run_point` for many points, the uncached ones trained in ``jobs`` processes.

    Each student is seeded by its own configuration (see the module docstring), and
    every worker uses this process's torch thread count (capped so that the workers fit the
    cores: :func:`worker_threads`), so the rows are the same, bit for bit, whatever ``jobs``
    is, wherever ``jobs × threads`` fits the cores; only the wall time changes. Cache hits are
    served here and new rows are cached here, as :func:`run_point` does.

    Parameters
    ----------
    calls : sequence of dict
        Keyword arguments of :func:`run_point`, one dict per student (``data``,
        ``teacher_logits``, ``lam``, ``T``, ... ; not ``cache``), and optionally
        ``fingerprints``: precomputed ``{"data", "teacher", "transfer"}`` hashes (what
        :func:`train_grid` passes so as not to hash the same tensors for every point).
    jobs : int
        Worker processes; 1 trains in this process. :func:`default_jobs` gives
        one per free core. Workers start once (~2 s) and are reused.
    cache : bool or path
        See :func:`run_point`.
    progress : bool
        Show a progress bar.
    desc : str
        The progress bar's label.
    lockstep : bool
        Train the uncached students that share a width, epochs, batch size, training-set
        size and validation split together, as one batched model in this process
        (:func:`kdlib.experiments.train_group`: several times faster than one by one); the
        rest, one by one. ``False`` trains every student alone (the reference path). A
        student's numbers then differ from its twin's in the other path only by float
        rounding (tested), not bit for bit.
    executor : concurrent.futures.Executor, optional
        Train the uncached students there instead (``jobs`` is then unused), e.g.
        ``distributed.Client(address).get_executor()`` for a Dask cluster, the engine
        :mod:`kdlib.runs` uses. Its workers must be processes; the rows are the same bit for
        bit when their torch thread count is this process's.

    Returns
    -------
    list of dict
        One row per call, in the order of ``calls``.
    """
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be a concurrent.futures.Executor (with .submit), got "
                        f"{executor!r} ({type(executor).__name__})")
    rows, todo, waiting = [None] * len(calls), {}, {}
    for i, call in enumerate(calls):
        kw = dict(call)
        key, args = _point_key(kw.pop("data"), kw.pop("teacher_logits"), **kw)
        hit = _cache_get(key, cache)
        if hit is not None:
            rows[i] = _row_copy(hit, T=args["T"])
        elif key in todo:  # the same student (λ = 1 at another T): train it once
            waiting.setdefault(key, []).append((i, args["T"]))
        else:
            todo[key] = (i, args)
    groups = {}
    if lockstep and executor is None:
        for key, (_, args) in todo.items():
            group = _lockstep_key(args)
            if group is not None:
                groups.setdefault(group, []).append(key)
        groups = [keys for keys in groups.values() if len(keys) > 1]
    grouped = {key for keys in groups for key in keys}
    alone = [key for key in todo if key not in grouped]
    with tqdm(total=len(calls), initial=len(calls) - len(todo), desc=desc, leave=False,
              disable=not progress) as bar:
        futures = {}
        lockstep_rows = ((key, todo[key][0], row) for keys in groups
                         for key, row in zip(keys, _train_rows_lockstep([todo[k][1] for k in keys])))
        if executor is None and (jobs == 1 or len(alone) < 2):
            one_by_one = ((key, todo[key][0], _train_row(todo[key][1])) for key in alone)
        else:
            pool = executor if executor is not None else _pool(jobs)
            futures = {pool.submit(_train_row, todo[key][1]): (key, todo[key][0]) for key in alone}
            one_by_one = ((*futures[f], _result(f, executor is None)) for f in as_completed(futures))
        try:
            for key, i, row in itertools.chain(lockstep_rows, one_by_one):  # each row is cached at once
                _cache_put(key, json.loads(json.dumps(row)), cache)
                rows[i] = row
                for j, T in waiting.get(key, ()):
                    rows[j] = _row_copy(row, T=T)
                bar.update(1)
        except BaseException:  # an error or Ctrl-C: the queued students are not trained after all
            for f in futures:
                f.cancel()
            raise
    return rows


def _result(future, ours: bool):
    try:
        return future.result()
    except BrokenProcessPool as exc:
        if not ours:  # a caller's executor: theirs to handle
            raise
        shutdown_pool()
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        hint = (f"; if you called run_points from a script ({Path(main).name}), put that call under "
                f"'if __name__ == \"__main__\":' — each worker process starts by importing the script, "
                f"which would start workers of its own" if main else "")
        raise RuntimeError("a worker process of run_points died (out of memory, killed, or failed to "
                           f"start){hint}; rerun, or pass jobs=1 to train in this process") from exc


@validate_params(lams=Each(LAM), Ts=Each(TEMPERATURE))
def train_grid(data, teacher_logits, *, lams, Ts, seeds=(0,), test: bool = False, transfer=None,
               cache=True, progress: bool = False, jobs: int = 1, **recipe) -> list[dict]:
    """Train one student per (λ, T, seed) and return their rows (λ-major order).

    (:func:`kdlib.runs.run_grid` is a different job: it reruns whole notebooks.)

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on ``data.train``; a dict ``{"train", "val",
        "test"}`` (see :func:`teacher_outputs`) also gives agreement columns.
    lams, Ts : sequence of float
        λ in [0, 1] and T > 0 values; every combination is trained (at λ = 1 all
        T share one cached run).
    seeds : int or sequence of int
        An int ``n`` means ``range(n)``.
    test : bool
        Also measure the test split.
    transfer : (x, logits), optional
        Unlabelled transfer images (see :func:`distill_mlp`).
    cache : bool or path
        See :func:`run_point`.
    progress : bool
        Show a tqdm bar over the points.
    jobs : int
        Processes training the points (see :func:`run_points`); the rows do not
        depend on it.
    **recipe
        ``hidden``, ``epochs``, ``lr``, ``batch_size`` (:func:`student_recipe`).

    Returns
    -------
    list of dict
        One row per student.
    """
    if not lams or not Ts:
        raise ValueError(f"lams and Ts must be non-empty; got lams={lams!r}, Ts={Ts!r}")
    seeds = _seed_list(seeds)
    train, val, tst = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    fp = {"data": fingerprint(train.x, train.y, val.x, val.y,
                              *((tst.x, tst.y) if test and tst is not None else ())),
          "teacher": fingerprint(*(logits.get(k) for k in ("train", "val", "test"))),
          "transfer": "" if transfer is None else fingerprint(*transfer)}
    recipe = student_recipe(**recipe)
    calls = [dict(data=data, teacher_logits=logits, lam=lam, T=T, seed=s, test=test, transfer=transfer,
                  fingerprints=fp, **recipe) for lam in lams for T in Ts for s in seeds]
    return run_points(calls, jobs=jobs, cache=cache, progress=progress, desc="grid")


def baseline(data, teacher_logits, *, seeds=(0,), **kwargs) -> list[dict]:
    """Rows of the baseline student (λ = 1: hard labels only) for each seed.

    Parameters
    ----------
    data, teacher_logits : see :func:`train_grid`
        ``teacher_logits`` is still needed for the agreement columns (and is
        otherwise unused: at λ = 1 the KD loss is the plain cross-entropy).
    seeds : int or sequence of int
    **kwargs
        Passed to :func:`train_grid` (epochs, test, transfer, cache, ...).

    Returns
    -------
    list of dict
        One row per seed, with ``lam = 1`` and ``T = 1``.
    """
    return train_grid(data, teacher_logits, lams=[HARD_ONLY_LAM], Ts=[1.0], seeds=seeds, **kwargs)


def _seed_list(seeds):
    return SEEDS("seeds", seeds)


def rows_at(rows, lam: float, T: float) -> list[dict]:
    """The rows that trained setting (λ, T), in their original order.

    Rows with λ = 1 match any ``T`` (:func:`kdlib.losses.same_setting`: the
    temperature does not act on a hard-label-only student).

    Parameters
    ----------
    rows : list of dict
        With ``lam`` and ``T`` columns.
    lam, T : float

    Returns
    -------
    list of dict
    """
    return [r for r in rows if same_setting(r["lam"], r["T"], lam, T)]


# --------------------------------------------------------------------------- k-fold
@validate_params(seed=Int(low=0))
def kfold_indices(y, k: int, *, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint, stratified folds covering ``range(len(y))``.

    Each class's indices are shuffled (seeded) and dealt round-robin, so every
    fold gets the class proportions of ``y`` (±1 image).

    Parameters
    ----------
    y : Tensor or array of int
        The labels.
    k : int
        Number of folds, from 2 to ``len(y)``.
    seed : int

    Returns
    -------
    list of numpy.ndarray
        ``k`` sorted int64 index arrays.
    """
    y = np.asarray(torch.as_tensor(y).cpu().numpy() if isinstance(y, torch.Tensor) else y)
    k = check_int("k", k, low=2, high=max(2, len(y)))
    rng = np.random.default_rng(seed)
    folds: list[list] = [[] for _ in range(k)]
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset = (offset + len(idx)) % k  # keep fold sizes balanced across classes
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


# --------------------------------------------------------------------------- choosing
def select_best(rows, *, metric: str = "val_acc", by=("lam", "T")) -> dict:
    """The group of rows with the highest mean ``metric`` (the first one on ties).

    Parameters
    ----------
    rows : list of dict
    metric : str
    by : str or sequence of str
        Columns that define a group.

    Returns
    -------
    dict
        That group's entry of :func:`kdlib.results.summarize` (``mean``, ``sd``, ``n``).
    """
    summary = summarize(rows, by, metric)
    if not summary:
        raise ValueError("rows is empty")
    return summary[int(np.argmax([s["mean"] for s in summary]))]




# ------------------------------------------------------------------ the protocol: samples and choices
@validate_params(n_pool=Int(low=1), n_train=Int(low=1), seeds=Int(low=1))
def sample_rows(n_pool: int, n_train: int, seeds: int, *, labels=None) -> list[tuple]:
    """Each seed's training images: ``n_train`` rows of a pool of ``n_pool`` images.

    The protocol resamples the data with every seed, so a comparison's interval covers the
    luck of the draw as well as that of the initial weights. Seed ``s`` gets a block of one
    seeded permutation when the pool holds ``seeds × n_train`` images (no image shared
    between seeds), else its own draw; with ``labels``, a stratified draw (class
    proportions kept, :func:`kdlib.data.stratified_split`) per seed.

    Parameters
    ----------
    n_pool, n_train, seeds : int
    labels : Tensor or array of int, optional
        The pool's labels, for stratified samples.

    Returns
    -------
    list of tuple
        ``rows[s]``: the sorted pool rows of seed ``s`` (pass them as ``Config(rows=...)``).

    Examples
    --------
    >>> [len(r) for r in sample_rows(100, 30, 3)]
    [30, 30, 30]
    """
    if n_train > n_pool:
        raise ValueError(f"n_train={n_train} is more than the pool's {n_pool} images")
    if labels is not None:
        y = np.asarray(labels)
        if len(y) != n_pool:
            raise ValueError(f"labels has {len(y)} entries; the pool has n_pool={n_pool} images")
        draws = [kdata.stratified_split(y, n_train, np.random.default_rng(1000 + s))[0]
                 for s in range(seeds)]
    elif n_train * seeds <= n_pool:
        perm = torch.randperm(n_pool, generator=torch.Generator().manual_seed(0)).numpy()
        draws = [perm[s * n_train:(s + 1) * n_train] for s in range(seeds)]
    else:
        draws = [torch.randperm(n_pool, generator=torch.Generator().manual_seed(1000 + s))[:n_train].numpy()
                 for s in range(seeds)]
    return [tuple(int(i) for i in np.sort(d)) for d in draws]


def _keys(names) -> tuple:
    return (names,) if isinstance(names, str) else tuple(names)


@validate_params(n_train=Int(low=1), n_samples=Int(low=1), seed=Int(low=0), pool_max=Int(low=1))
def sampled_splits(n_train: int, n_samples: int, seed: int = 0, *, pool_max: int = 55_000):
    """Fashion-MNIST as a pool of training images, ``n_samples`` per-seed samples of it, and one
    seed's splits: what a notebook with "each seed draws its own training images" starts from.

    Parameters
    ----------
    n_train : int
        Training images per sample.
    n_samples : int
        How many samples (seeds 0 to ``n_samples - 1``).
    seed : int
        The sample of the returned ``data`` (its one-run sections); ``seed < n_samples``.
    pool_max : int
        The most training images the pool holds (55,000: all outside the validation split).

    Returns
    -------
    tuple
        ``(pool, rows, data)``: :class:`kdlib.data.Splits` whose ``train`` holds
        ``min(pool_max, n_samples × n_train)`` images (``val``: the 5,000 validation images,
        ``test``: the 10,000 test images); seed → its pool rows (:func:`sample_rows`); and
        ``data``, the same splits with ``train`` cut to seed ``seed``'s rows.
    """
    if seed >= n_samples:
        raise ValueError(f"seed must be below n_samples={n_samples}, got {seed}")
    pool = kdata.load("fashion-mnist", n_train=min(pool_max, n_samples * n_train), seed=0)
    rows = dict(enumerate(sample_rows(len(pool.train.y), n_train, n_samples)))
    mine = torch.as_tensor(rows[seed])
    data = kdata.Splits(kdata.Split(pool.train.x[mine], pool.train.y[mine]), pool.val, pool.test,
                        pool.classes, pool.name)
    return pool, rows, data


def choose(rows, *, by=("lr",), within=("method",), metric: str = "val_acc") -> dict:
    """Per group (e.g. per method), the candidate with the best mean ``metric`` over the seeds.

    The protocol's selection step: every method gets the same candidates and the same
    criterion, measured on the validation split (never pass a test column).

    Parameters
    ----------
    rows : list of dict or DataFrame
        Tidy rows, one per trained student (:func:`train_students`).
    by : str or sequence of str
        The columns that make a candidate (``"lr"``, ``("lr", "lam", "T")``, …).
    within : str or sequence of str
        The columns that make a group, each chosen separately.
    metric : str
        The validation column to maximise; a name that starts with ``"test"`` is refused.

    Returns
    -------
    dict
        Group (the value of ``within``, a tuple when it names several columns) → the chosen
        candidate's ``by`` values, with ``mean``, ``sd``, ``n`` of ``metric`` and
        ``candidates`` (how many were tried); the first on ties.

    Examples
    --------
    >>> rows = [{"method": "kd", "lr": lr, "seed": s, "val_acc": a}
    ...         for lr, a in [(0.01, 0.8), (0.03, 0.9)] for s in range(2)]
    >>> choose(rows)["kd"]["lr"]
    0.03
    """
    if str(metric).startswith("test"):
        raise ValueError(f"metric={metric!r}: the test split never chooses; pass a validation column")
    by, within = _keys(by), _keys(within)
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    groups: dict = {}
    for r in rows:
        groups.setdefault(tuple(r[c] for c in within), []).append(r)
    out = {}
    for key, group in groups.items():
        summary = summarize(group, by, metric)
        best = summary[int(np.argmax([s["mean"] for s in summary]))]
        out[key[0] if len(within) == 1 else key] = {**best, "candidates": len(summary)}
    return out


def chosen(rows, choice: dict, *, by=("lr",), within=("method",)) -> list[dict]:
    """The rows of every group's chosen candidate (one per seed), in their order.

    Parameters
    ----------
    rows : list of dict or DataFrame
    choice : dict
        From :func:`choose` with the same ``by`` and ``within``.
    by, within : str or sequence of str

    Returns
    -------
    list of dict
    """
    by, within = _keys(by), _keys(within)
    rows = rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)
    out = []
    for r in rows:
        key = tuple(r[c] for c in within)
        c = choice.get(key[0] if len(within) == 1 else key)
        if c is not None and all(r[b] == c[b] for b in by):
            out.append(r)
    return out




# ================================================================== the budget map
# KD's gain over a hard-label student (and label smoothing's) as a function of the training
# budget (epochs) and of the labelled data (images), every method tuned at every point with
# the same budget on the validation split (notebook 11, ``make results``).
@dataclass(frozen=True)
class BudgetGrid:
    """The points of a budget map and the candidates every point tunes.

    Parameters
    ----------
    n_trains : sequence of int
        Labelled training images per student (each seed draws its own, :func:`sample_rows`).
    epochs : sequence of int
        Training epochs.
    seeds : int >= 2
        Seeds per candidate; seed ``s`` also fixes the training sample.
    lrs : sequence of float
        Peak learning rates, the same candidates for every method.
    kd : sequence of (lam, T)
        Distillation's candidates, per teacher.
    eps : sequence of float
        Label smoothing's candidates.
    hidden, batch_size : int
        The students, ``mlp([784, hidden, 10])``, trained with batches of ``batch_size``.
    extra_teachers_at : sequence of int, optional
        The ``n_trains`` at which teachers after the first are distilled too (``None``: at
        every point).
    """

    n_trains: tuple = (1000, 5000, 20000, 55000)
    epochs: tuple = (3, 10, 30)
    seeds: int = 5
    lrs: tuple = (1e-2, 3e-2)
    kd: tuple = ((0.5, 4.0), (0.1, 2.0))
    eps: tuple = (0.1,)
    hidden: int = 128
    batch_size: int = 128
    extra_teachers_at: tuple | None = None

    def __post_init__(self):
        check_params({"n_trains": self.n_trains, "epochs": self.epochs, "seeds": self.seeds,
                      "lrs": self.lrs, "eps": self.eps, "hidden": self.hidden,
                      "batch_size": self.batch_size},
                     {"n_trains": Each(Int(low=1)), "epochs": Each(Int(low=1)), "seeds": Int(low=2),
                      "lrs": Each(Float(0.0, low_open=True)), "eps": Each(Float(0.0, 0.999)),
                      "hidden": Int(low=1), "batch_size": Int(low=1)})
        for lam, T in self.kd:
            LAM("kd lam", lam)
            TEMPERATURE("kd T", T)

    def candidates(self, teachers) -> list[tuple[Method, float]]:
        """Every ``(method, lr)`` a point trains: scratch, label smoothing per ε, KD per teacher
        and ``(λ, T)``, each at every learning rate.

        Parameters
        ----------
        teachers : sequence of str
            The KD methods' names, one per teacher (e.g. ``["kd", "kd (strong teacher)"]``).

        Returns
        -------
        list of (Method, float)
        """
        methods = [scratch()] + [label_smoothing(e) for e in self.eps] + \
                  [kd(lam, T, name=t) for t in teachers for lam, T in self.kd]
        return [(m, lr) for m in methods for lr in self.lrs]


_CANDIDATE = ("lr", "lam", "T", "eps")


@validate_params(n_train=Int(low=1), epochs=Int(low=1))
def budget_point(pool, teacher_logits: dict, *, n_train: int, epochs: int, grid: BudgetGrid,
                 progress: bool = False) -> list[dict]:
    """One point of the budget map: train every candidate of ``grid`` on every seed, choose on
    validation, score the chosen students on the test split.

    Every method gets the same learning rates (``grid.lrs``); label smoothing also chooses ε
    and each KD method ``(λ, T)``. Each seed ``s`` trains on its own ``n_train`` pool rows
    (:func:`sample_rows`), shared by all methods, so the methods pair by seed. All students
    of a point train together in lockstep (one group). The choice (:func:`choose`, best mean
    validation accuracy over the seeds, per method) never sees the test split; only the chosen
    students are scored there.

    Parameters
    ----------
    pool : kdlib.data.Splits
        ``train``: the images the samples are drawn from; ``val`` chooses; ``test`` reports.
    teacher_logits : dict
        KD method name → the teacher's logits on ``pool.train`` (e.g. ``{"kd": logits}``).
    n_train, epochs : int
        The point.
    grid : BudgetGrid
        Seeds and candidates.
    progress : bool

    Returns
    -------
    list of dict
        One row per trained student: ``n_train``, ``epochs``, ``method``, ``lam``, ``T``,
        ``eps``, ``lr``, ``seed``, ``val_acc``, ``chosen`` (its candidate was chosen for its
        method), ``test_acc`` (chosen students only, else ``None``), ``seconds``.
    """
    if not isinstance(grid, BudgetGrid):
        raise TypeError(f"grid must be a BudgetGrid, got {type(grid).__name__}")
    names, n_pool = list(teacher_logits), len(pool.train.y)
    for name in names:
        if tuple(teacher_logits[name].shape) != (n_pool, pool.n_classes):
            raise ValueError(f"teacher_logits[{name!r}] has shape {tuple(teacher_logits[name].shape)}; "
                             f"it must be ({n_pool}, {pool.n_classes}), one row per pool.train image")
    # One lockstep group for the whole point: the pool is repeated once per teacher, and a KD
    # student of teacher k reads its seed's rows in copy k (the same images, that teacher's logits).
    stacked = kdata.Split(pool.train.x.repeat(max(1, len(names)), *[1] * (pool.train.x.ndim - 1)),
                          pool.train.y.repeat(max(1, len(names))))
    logits = torch.cat([teacher_logits[n] for n in names]) if names else None
    samples = sample_rows(n_pool, n_train, grid.seeds)
    build = mlp_builder([pool.train.x[0].numel(), grid.hidden, pool.n_classes])
    configs = []
    for m, lr in grid.candidates(names):
        offset = n_pool * names.index(m.name) if m.kind == "kd" else 0
        settings = _train.TrainSettings(epochs=epochs, lr=lr, batch_size=grid.batch_size)
        configs += [Config(build, m, s, settings, rows=tuple(offset + r for r in samples[s]),
                           labels={"n_train": n_train, "epochs": epochs, "lr": lr})
                    for s in range(grid.seeds)]
    out = train_students(configs, stacked, teacher_logits=logits, progress=progress, keep=lambda c: True,
                         evaluate=_val_only(pool), desc=f"{n_train} images x {epochs} epochs")
    trained = [r.pop("student") for r in out]
    choice = choose(out, by=_CANDIDATE, within=("method",))
    picked = {(m, *(c[k] for k in _CANDIDATE)) for m, c in choice.items()}
    for r, model in zip(out, trained):
        r["chosen"] = (r["method"], *(r[k] for k in _CANDIDATE)) in picked
        r["test_acc"] = metrics.accuracy(model, pool.test.x, pool.test.y) if r["chosen"] else None
    return out


def budget_map(pool, teacher_logits: dict, grid: BudgetGrid, *, progress: bool = True) -> list[dict]:
    """Every point of ``grid`` (:func:`budget_point`), data sizes outer, epochs inner.

    Parameters
    ----------
    pool : kdlib.data.Splits
    teacher_logits : dict
        KD method name → logits on ``pool.train``; the first is distilled at every point,
        the others at ``grid.extra_teachers_at`` (every point when ``None``).
    grid : BudgetGrid
    progress : bool
        A line per point (its seconds) and a bar over its students.

    Returns
    -------
    list of dict
        :func:`budget_point`'s rows of every point, in order.
    """
    names = list(teacher_logits)
    out = []
    for n in grid.n_trains:
        extra = grid.extra_teachers_at is None or n in grid.extra_teachers_at
        teachers = {k: teacher_logits[k] for k in (names if extra else names[:1])}
        for e in grid.epochs:
            t0 = time.perf_counter()
            out += budget_point(pool, teachers, n_train=n, epochs=e, grid=grid, progress=progress)
            if progress:
                print(f"{n:>6,} images x {e:>3} epochs: {time.perf_counter() - t0:6.1f} s", flush=True)
    return out


def _val_only(pool):
    """An ``evaluate`` scoring the validation split of ``pool`` (whatever split trained)."""
    def evaluate(model, config, data):
        return {"val_acc": metrics.accuracy(model, pool.val.x, pool.val.y)}
    return evaluate
