"""One training loop for every model in the collection (``fit``), and ``distill``.

Batches are drawn from in-memory tensors by a seeded permutation of example
indices (no per-item DataLoader). The loss function receives those indices, so a
loss that needs per-example data (cached teacher logits) looks them up by index
and can never be misaligned with a shuffled batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields, replace

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from kdlib import data as kdata
from kdlib import models
from kdlib._checks import (
    LAM,
    TEMPERATURE,
    Float,
    Int,
    OneOf,
    Optional,
    check_int,
    check_labels,
    check_params,
    validate_params,
)
from kdlib.losses import _kd_loss
from kdlib.metrics import accuracy
from kdlib.models import cnn

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = (None, "onecycle")


@dataclass
class History:
    """What ``fit`` measured: one entry per epoch, plus per-step losses.

    ``epoch_loss[e]`` is the mean training loss of epoch ``e + 1``;
    ``val_acc[e]`` the validation accuracy after it (``nan`` without a val
    split); ``epoch_time[e]`` its wall time in seconds. ``step_loss`` holds every
    batch's loss, ``evals`` the ``(step, val_acc)`` pairs of every evaluation.

    Attributes
    ----------
    epoch_loss : list of float
        Mean training loss per epoch (weighted by batch size).
    val_acc : list of float
        Validation accuracy in [0, 1] after each epoch.
    epoch_time : list of float
        Seconds per epoch, without the end-of-epoch evaluation.
    step_loss : list of float
        The loss of every optimizer step, in order.
    evals : list of (int, float)
        ``(step, val_acc)`` of every evaluation: each ``eval_every`` steps and at every epoch's end.
    steps_per_epoch : int
        Batches per epoch, ``ceil(n_train / batch_size)``.
    epochs : int
        Number of finished epochs.
    """

    epoch_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    step_loss: list = field(default_factory=list)
    evals: list = field(default_factory=list)
    steps_per_epoch: int = 0

    @property
    def epochs(self) -> int:
        """Number of finished epochs."""
        return len(self.epoch_loss)


def batches(n: int, batch_size: int, generator: torch.Generator, *, shuffle: bool = True):
    """Yield index tensors covering ``range(n)`` in batches, in a seeded order.

    Parameters
    ----------
    n, batch_size : int
    generator : torch.Generator
        Seeds the permutation.
    shuffle : bool
        ``False`` yields ``0 … n-1`` in order.

    Yields
    ------
    torch.Tensor
        int64 indices of one batch.
    """
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for i in range(0, n, batch_size):
        yield order[i:i + batch_size]


def cross_entropy_loss(logits, y, idx, x):
    """``fit``'s default loss: plain cross-entropy with the labels.

    Parameters
    ----------
    logits : torch.Tensor
    y : torch.Tensor
        Labels of the batch.
    idx, x
        The batch's indices and inputs (unused; part of ``fit``'s loss signature).

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    return F.cross_entropy(logits, y)


# ---------------------------------------------------------------- fit's pieces
def make_optimizer(params, *, optimizer: str, lr: float, weight_decay: float = 0.0,
                   momentum: float | None = None) -> torch.optim.Optimizer:
    """Adam, or SGD with ``momentum`` (default 0.9); momentum with Adam is an error.

    Parameters
    ----------
    params : iterable of Parameter
    optimizer : {"adam", "sgd"}
    lr, weight_decay : float
    momentum : float in [0, 1], optional
        SGD only; ``None`` means 0.9.

    Returns
    -------
    torch.optim.Optimizer
    """
    if optimizer == "adam":
        if momentum is not None:
            raise ValueError(f"momentum={momentum!r} has no meaning with optimizer='adam' (Adam keeps "
                             "its own moment estimates); pass momentum only with optimizer='sgd'")
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    momentum = 0.9 if momentum is None else momentum
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def make_schedule(opt, schedule: str | None, *, lr: float, total_steps: int):
    """The learning-rate schedule: ``None`` (constant) or OneCycle with maximum ``lr``.

    Parameters
    ----------
    opt : torch.optim.Optimizer
    schedule : {None, "onecycle"}
    lr : float
        Maximum learning rate.
    total_steps : int

    Returns
    -------
    torch.optim.lr_scheduler.LRScheduler or None
    """
    if schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps)
    return None


@dataclass(frozen=True)
class TrainSettings:
    """How :func:`fit` trains: one settings object instead of a dozen loose arguments.

    Parameters
    ----------
    epochs, batch_size : int >= 1
    lr : float > 0
        Learning rate (the maximum rate under ``schedule="onecycle"``).
    optimizer : {"adam", "sgd"}
    schedule : {None, "onecycle"}
    weight_decay : float >= 0
    momentum : float in [0, 1], optional
        SGD's momentum (default 0.9); an error with Adam.
    clip_grad : float > 0, optional
        Clip the global gradient norm to this value (the article's FAQ).
    seed : int >= 0
        Seeds the batch order and dropout: the same seed gives the same History.
    eval_every : int >= 1, optional
        Also evaluate every this many steps (default: only at the end of each epoch).
    device : str or torch.device, optional
        Where to train (default :func:`kdlib.models.default_device`: ``$KDLIB_DEVICE``,
        else CUDA when available, else CPU).
    """

    epochs: int = 3
    batch_size: int = 128
    lr: float = 3e-3
    optimizer: str = "adam"
    schedule: str | None = "onecycle"
    weight_decay: float = 0.0
    momentum: float | None = None
    clip_grad: float | None = None
    seed: int = 0
    eval_every: int | None = None
    device: object = None

    def __post_init__(self):
        checked = check_params(
            {k: getattr(self, k) for k in _SETTINGS_SPEC}, _SETTINGS_SPEC)
        for name, value in checked.items():
            object.__setattr__(self, name, value)

    @property
    def torch_device(self) -> torch.device:
        """``device`` as a ``torch.device`` (``None``: :func:`kdlib.models.default_device`)."""
        return models.default_device() if self.device is None else torch.device(self.device)

    @classmethod
    def of(cls, settings=None, **options) -> TrainSettings:
        """``settings`` (default: the defaults) with ``options`` replacing its fields.

        An unknown option is a ``TypeError`` that lists the fields.
        """
        unknown = sorted(set(options) - {f.name for f in fields(cls)})
        if unknown:
            raise TypeError(f"unknown training option {unknown[0]!r}; the options are "
                            f"{[f.name for f in fields(cls)]} (and fit's loss_fn, progress, "
                            "callback, desc)")
        return replace(settings or cls(), **options)


_SETTINGS_SPEC = {"epochs": Int(low=1), "batch_size": Int(low=1), "lr": Float(0.0, low_open=True),
                  "optimizer": OneOf(*OPTIMIZERS), "schedule": OneOf(*SCHEDULES),
                  "weight_decay": Float(0.0), "momentum": Optional(Float(0.0, 1.0)),
                  "clip_grad": Optional(Float(0.0, low_open=True)), "seed": Int(low=0),
                  "eval_every": Optional(Int(low=1))}


def _evaluate(model, val, hist, step: int, callback, *, end_of_epoch: bool) -> None:
    """Validation accuracy into ``hist`` (``nan`` without a val split), then ``callback``."""
    acc = accuracy(model, val.x, val.y) if val is not None and len(val.y) else float("nan")
    hist.evals.append((step, acc))
    if end_of_epoch:
        hist.val_acc.append(acc)
    if callback is not None:
        callback(hist)


def _on_device(data, device):
    """``data``'s train and val splits moved to ``device``."""
    train, val, _ = kdata.unpack_splits(data)
    if len(train.y) == 0:
        raise ValueError("the training split is empty")
    move = (lambda s: None if s is None else kdata.Split(s.x.to(device), s.y.to(device)))
    return move(train), move(val)


def fit(model: nn.Module, data, *, loss_fn=None, settings: TrainSettings | None = None,
        progress: bool = True, callback=None, desc: str = "training", **options) -> History:
    """Train ``model`` on ``data.train``; evaluate on ``data.val`` after every epoch.

    Parameters
    ----------
    model : nn.Module
        Trained in place (on ``settings.device``, where it stays); left in evaluation mode.
    data : Splits, (train, val) pair, or Split
        See :func:`kdlib.data.unpack_splits`.
    loss_fn : callable, optional
        ``loss_fn(logits, y, idx, x) -> scalar``; ``idx`` are the batch's indices into
        ``data.train`` (on the training device) and ``x`` the inputs the model saw.
        Default: cross-entropy.
    settings : TrainSettings, optional
        How to train; ``**options`` (``epochs=``, ``lr=``, ``seed=``, ... the fields of
        :class:`TrainSettings`) build one or override its fields.
    progress : bool
        Show a tqdm progress bar.
    callback : callable, optional
        ``callback(history)`` after every evaluation (for live plots).
    desc : str
        The progress bar's label.

    Returns
    -------
    History
    """
    s = TrainSettings.of(settings, **options)
    device = s.torch_device
    train, val = _on_device(data, device)
    model.to(device)
    loss_fn = loss_fn or cross_entropy_loss
    params = [p for p in model.parameters() if p.requires_grad]
    opt = make_optimizer(params, optimizer=s.optimizer, lr=s.lr, weight_decay=s.weight_decay,
                         momentum=s.momentum)
    hist = History(steps_per_epoch=-(-len(train.y) // s.batch_size))
    sched = make_schedule(opt, s.schedule, lr=s.lr, total_steps=s.epochs * hist.steps_per_epoch)
    order = torch.Generator().manual_seed(s.seed)  # the batch order
    torch.manual_seed(s.seed)  # dropout masks
    bar = tqdm(total=s.epochs * hist.steps_per_epoch, desc=desc, leave=False, disable=not progress)
    try:
        for _ in range(s.epochs):
            model.train()
            t0, total = time.perf_counter(), 0.0
            for idx in batches(len(train.y), s.batch_size, order):
                idx = idx.to(device)
                x = train.x[idx]
                loss = loss_fn(model(x), train.y[idx], idx, x)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"the loss became {loss.item()} at step "
                                             f"{len(hist.step_loss) + 1}; lower lr or set clip_grad")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if s.clip_grad is not None:
                    nn.utils.clip_grad_norm_(params, s.clip_grad)
                opt.step()
                if sched is not None:
                    sched.step()
                hist.step_loss.append(loss.item())
                total += hist.step_loss[-1] * len(idx)
                bar.update(1)
                step = len(hist.step_loss)
                if s.eval_every and step % s.eval_every == 0 and step % hist.steps_per_epoch:
                    _evaluate(model, val, hist, step, callback, end_of_epoch=False)
                    model.train()
            hist.epoch_time.append(time.perf_counter() - t0)
            hist.epoch_loss.append(total / len(train.y))
            _evaluate(model, val, hist, len(hist.step_loss), callback, end_of_epoch=True)
    finally:
        bar.close()
        model.eval()
    return hist


# ------------------------------------------------------------------ distill
def _check_labels(y: torch.Tensor, n_classes: int) -> None:
    """Validate the training labels once (the per-batch loss does not re-check them)."""
    if y.dtype != torch.int64:
        raise TypeError(f"labels must be int64 class indices, got dtype {y.dtype}")
    check_labels(y, len(y), n_classes, of="the teacher")


@validate_params(lam=LAM, T=TEMPERATURE)
def distill(student: nn.Module, teacher: nn.Module, data, *, lam: float, T: float,
            teacher_logits: torch.Tensor | None = None, teacher_per_batch: bool = False,
            **fit_kwargs) -> History:
    """Train ``student`` on ``kd_loss(student, teacher, labels, lam=lam, T=T)``.

    The teacher runs in evaluation mode (no dropout noise in its targets). By
    default its logits on the whole training split are computed once and cached;
    each batch looks its targets up **by example index**, so shuffling can never
    misalign them. ``teacher_per_batch=True`` runs the teacher on every batch
    instead (what a pipeline whose inputs change every epoch must do; notebook 07
    measures what it costs).

    Parameters
    ----------
    student, teacher : nn.Module
    data : Splits, (train, val) pair, or Split
    lam : float in [0, 1]
        Weight of the hard-label cross-entropy; ``1 - lam`` weights the soft term.
    T : float > 0
        Temperature.
    teacher_logits : Tensor, optional
        Precomputed ``kdlib.models.predict(teacher, data.train.x)`` to reuse
        across many students (the grid search in notebook 05).
    **fit_kwargs
        Passed to :func:`fit` (epochs, lr, batch_size, seed, callback, ...).

    Returns
    -------
    History
    """
    if "loss_fn" in fit_kwargs:
        raise TypeError("distill builds its own loss_fn; call fit() for a custom loss")
    train, _, _ = kdata.unpack_splits(data)
    device = fit_kwargs.get("device") or (fit_kwargs.get("settings") or TrainSettings()).device
    device = models.default_device() if device is None else torch.device(device)
    if teacher_per_batch:
        if teacher_logits is not None:
            raise ValueError("pass teacher_logits or teacher_per_batch=True, not both")
        teacher.to(device).eval()
        _check_labels(train.y, models.predict(teacher, train.x[:1]).shape[1])

        def loss_fn(logits, y, idx, x):
            with torch.inference_mode():
                t = teacher(x)
            return _kd_loss(logits, t.clone(), y, lam, T)
    else:
        cache = models.predict(teacher, train.x) if teacher_logits is None else teacher_logits
        if cache.ndim != 2 or cache.shape[0] != len(train.y):
            raise ValueError(f"teacher_logits has shape {tuple(cache.shape)} but the training split "
                             f"has {len(train.y)} examples; it must be ({len(train.y)}, classes)")
        _check_labels(train.y, cache.shape[1])
        cache = cache.detach().to(device)

        def loss_fn(logits, y, idx, x):
            return _kd_loss(logits, cache[idx], y, lam, T)

    fit_kwargs.setdefault("desc", f"distilling (lam={lam:g}, T={T:g})")
    return fit(student, data, loss_fn=loss_fn, **fit_kwargs)


# ------------------------------------------------------------------ teacher
TEACHER_DEFAULTS = {"epochs": 2, "n_train": None, "lr": 3e-3, "batch_size": 128, "seed": 0}
"""Notebook 01's default recipe: what ``data/teacher.pt`` was trained with."""


@validate_params(seed=Int(low=0), epochs=Int(low=1), label_smoothing=Float(0.0, 0.99))
def train_teacher(data, *, epochs: int = 2, lr: float = 3e-3, batch_size: int = 128, seed: int = 0,
                  channels=(32, 64), hidden: int = 128, label_smoothing: float = 0.0,
                  snapshot_epochs=(), augment: bool = False, **fit_kwargs):
    """Build ``kdlib.models.cnn(channels=channels, hidden=hidden)`` with ``seed`` and train it.

    Adam with a OneCycle schedule (max ``lr``) on cross-entropy, optionally with
    label smoothing.

    Parameters
    ----------
    data : Splits, (train, val) pair, or Split
    epochs, batch_size, seed : int
    lr : float
        Maximum learning rate of the OneCycle schedule.
    channels : sequence of int
        Convolution channels per block (the default teacher: ``(32, 64)``).
    hidden : int
        Width of the fully connected layer.
    label_smoothing : float in [0, 1)
        ``ε`` of ``F.cross_entropy(..., label_smoothing=ε)`` (a softer-target teacher).
    snapshot_epochs : sequence of int
        Epochs after which a copy of the weights is kept (teachers of different quality
        from one run).
    augment : bool
        Train on images shifted by up to ±2 px and flipped left to right at random, drawn
        afresh every batch (:class:`kdlib.models.ShiftFlip`, seeded by ``seed``); the
        returned teacher is the CNN alone.
    **fit_kwargs
        Passed to :func:`fit` (``progress``, ``callback``, ``eval_every``, ...).

    Returns
    -------
    tuple
        ``(teacher, history)``, or ``(teacher, history, snapshots)`` when
        ``snapshot_epochs`` is given, with ``snapshots`` mapping epoch → state_dict.
    """
    snapshot_epochs = sorted({check_int("snapshot_epochs[]", e, low=1, high=epochs)
                              for e in snapshot_epochs})
    torch.manual_seed(seed)
    teacher = cnn(channels=channels, hidden=hidden)
    fit_kwargs.setdefault("desc", "teacher")
    snapshots: dict[int, dict] = {}
    user_callback = fit_kwargs.pop("callback", None)

    def callback(history):
        if history.epochs in snapshot_epochs and history.epochs not in snapshots and \
                len(history.val_acc) == history.epochs:
            snapshots[history.epochs] = {k: v.detach().clone() for k, v in teacher.state_dict().items()}
        if user_callback is not None:
            user_callback(history)

    def loss_fn(logits, y, idx, x):
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)

    trained = nn.Sequential(models.ShiftFlip(seed=seed), teacher) if augment else teacher
    history = fit(trained, data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                  optimizer="adam", schedule="onecycle", loss_fn=loss_fn, callback=callback,
                  **fit_kwargs)
    if snapshot_epochs:
        return teacher, history, snapshots
    return teacher, history


def load_teacher(checkpoint: str = "", *, progress: bool = True):
    """Load the teacher saved by notebook 01; train and save the default one if it is missing.

    Parameters
    ----------
    checkpoint : str
        ``""`` means ``data/teacher.pt`` (or ``$KDLIB_DATA/teacher.pt``): if that file
        is missing, the teacher is trained with :data:`TEACHER_DEFAULTS` and saved there.
        Any other path must exist: a missing explicit path is an error (a typo must not
        silently train and write a new teacher somewhere).
    progress : bool
        Show a progress bar while training a missing default teacher.

    Returns
    -------
    nn.Module
        The teacher in evaluation mode, with its metadata as ``.kd_meta``.

    Raises
    ------
    FileNotFoundError
        For an explicit ``checkpoint`` that does not exist, saying how to create it.
    """
    if not isinstance(checkpoint, str):
        raise TypeError(f"checkpoint must be a string path ('' for data/teacher.pt), got {checkpoint!r}")
    path = kdata.resolve(checkpoint, "teacher.pt")
    if path.is_file():
        return models.load(path)
    if checkpoint:
        raise FileNotFoundError(
            f"no teacher checkpoint at {path} (checkpoint={checkpoint!r}). Check the path, or create "
            f"it: papermill notebooks/01_teacher.ipynb out.ipynb -p checkpoint {checkpoint}")
    print(f"No teacher at {path}: training one with notebook 01's defaults {TEACHER_DEFAULTS} ...")
    d = kdata.load("fashion-mnist", n_train=TEACHER_DEFAULTS["n_train"], seed=TEACHER_DEFAULTS["seed"])
    kw = {k: v for k, v in TEACHER_DEFAULTS.items() if k != "n_train"}
    teacher, hist = train_teacher(d, progress=progress, **kw)
    models.save(teacher, path, **TEACHER_DEFAULTS, val_accuracy=hist.val_acc[-1],
                test_accuracy=accuracy(teacher, d.test.x, d.test.y))
    teacher.kd_meta = models.load_checkpoint(path)["meta"]
    return teacher
