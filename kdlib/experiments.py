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

import math
import time
from dataclasses import dataclass, field, replace

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
    TEMPERATURE,
    Each,
    Float,
    Int,
    OneOf,
    Optional,
    check_labels,
    check_params,
    validate_params,
)
from kdlib.models import mlp
from kdlib.train import History, TrainSettings

__all__ = ["Method", "scratch", "label_smoothing", "kd", "on_targets", "custom", "Config", "train",
           "accuracy_on", "train_students", "GroupStudent", "train_group", "group_memory",
           "DEFAULT_MEMORY_BUDGET"]


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
                   progress: bool = True, desc: str = "students") -> list[dict]:
    """Train every configuration; one tidy row per student, in the order given.

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

    Returns
    -------
    list of dict
        ``{**config.labels, "method", "lam", "T", "eps", "seed", **evaluate(...), "seconds"}``.
    """
    evaluate = evaluate or accuracy_on("test")
    out = []
    for config in tqdm(list(configs), desc=desc, disable=not progress, leave=False):
        t0 = time.perf_counter()
        model, _ = train(config, data, teacher_logits=teacher_logits)
        row = {**config.labels, **config.method.knobs(), "seed": config.seed,
               **evaluate(model, config, data), "seconds": time.perf_counter() - t0}
        if keep is not None and keep(config):
            row["student"] = model
        out.append(row)
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
