"""Lesson module of ``notebooks/01_teacher.ipynb`` (training the teacher).

Everything else notebook 01 shows is core (``kdlib.train.train_teacher``,
``kdlib.metrics``, ``kdlib.plots``, ``kdlib.widgets.LiveCurves``); this module
holds only what is particular to the notebook:

* its parameter check, :func:`check_params` (with :class:`IntList` for the list
  parameters ``channels`` and ``snapshot_epochs``);
* :func:`train_with_params`, the notebook's parameters turned into one
  ``train_teacher`` call that always returns the epoch snapshots (empty if none);
* what the checkpoints record: :func:`checkpoint_meta`, :func:`snapshot_path`
  and :func:`save_snapshots`.
"""

from __future__ import annotations

from pathlib import Path

from kdlib import models
from kdlib._checks import Float, Int, Str, check_int
from kdlib._checks import check_params as _check_params
from kdlib.train import train_teacher

__all__ = ["IntList", "PARAMS", "check_params", "train_with_params", "checkpoint_meta",
           "snapshot_path", "save_snapshots"]


class IntList:
    """A list of integers, each in ``[low, high]``, with ``min_len`` to ``max_len`` entries.

    A constraint for :func:`kdlib._checks.check_params` (same message format).
    """

    def __init__(self, low=None, high=None, *, min_len: int = 0, max_len: int | None = None):
        self.low, self.high, self.min_len, self.max_len = low, high, min_len, max_len

    def __call__(self, name, value):
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list of integers, got {value!r} ({type(value).__name__})"
                            f"; with papermill pass it as YAML: -y '{name}: [32, 64]'")
        longest = "" if self.max_len is None else f" and at most {self.max_len}"
        if len(value) < self.min_len or (self.max_len is not None and len(value) > self.max_len):
            raise ValueError(f"{name}={list(value)!r} has {len(value)} entries; allowed: at least "
                             f"{self.min_len}{longest}")
        return [check_int(f"{name}[{i}]", v, low=self.low, high=self.high) for i, v in enumerate(value)]


PARAMS = {
    "checkpoint": Str("a path, or '' for data/teacher.pt"),
    "epochs": Int(1, 100),
    "n_train": Int(0, 55000),  # 0 means all 55,000
    "lr": Float(0.0, 1.0, low_open=True),
    "batch_size": Int(1, 55000),
    "seed": Int(0, None),
    # three 2x2 poolings take a 28x28 image down to 1x1; a fourth block has nothing left
    "channels": IntList(1, 512, min_len=1, max_len=3),
    "hidden": Int(1, 4096),
    "label_smoothing": Float(0.0, 0.99),
    "snapshot_epochs": IntList(1, 100),
}


def check_params(**parameters) -> dict:
    """Validate notebook 01's parameters before any work starts.

    Parameters
    ----------
    checkpoint : str
        Where to save the teacher; ``""`` means ``data/teacher.pt``.
    epochs : int
        In [1, 100].
    n_train : int
        Training images, in [0, 55000]; 0 means all 55,000.
    lr : float
        Peak learning rate, in (0, 1].
    batch_size : int
        In [1, 55000].
    seed : int
        ``>= 0``.
    channels : list of int
        Convolution channels per block: 1 to 3 blocks of 1 to 512 channels.
    hidden : int
        Width of the fully connected layer, in [1, 4096].
    label_smoothing : float
        In [0, 0.99].
    snapshot_epochs : list of int
        Epochs after which a checkpoint is also saved, each in [1, epochs].

    Returns
    -------
    dict
        The parameters, converted (``int``/``float``, lists of ``int``).

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and what is allowed.
    """
    values = _check_params(parameters, PARAMS)
    for i, e in enumerate(values["snapshot_epochs"]):
        check_int(f"snapshot_epochs[{i}]", e, low=1, high=values["epochs"])
    return values


def train_with_params(data, params: dict, **fit_kwargs):
    """Train the teacher that ``params`` (from :func:`check_params`) describe.

    Parameters
    ----------
    data : kdlib.data.Splits
        Loaded with ``n_train=params["n_train"] or None`` and ``seed=params["seed"]``.
    params : dict
        The notebook's validated parameters.
    **fit_kwargs
        Passed on to :func:`kdlib.train.fit` (``callback``, ``eval_every``, ``progress``).

    Returns
    -------
    teacher : nn.Module
    history : kdlib.train.History
    snapshots : dict
        Epoch → ``state_dict`` for every epoch of ``params["snapshot_epochs"]``
        (empty when there are none).
    """
    result = train_teacher(data, epochs=params["epochs"], lr=params["lr"],
                           batch_size=params["batch_size"], seed=params["seed"],
                           channels=params["channels"], hidden=params["hidden"],
                           label_smoothing=params["label_smoothing"],
                           snapshot_epochs=params["snapshot_epochs"], **fit_kwargs)
    teacher, history = result[:2]
    return teacher, history, (result[2] if len(result) == 3 else {})


def checkpoint_meta(params: dict, **results) -> dict:
    """What a teacher checkpoint records: every training parameter, then ``results``.

    Parameters
    ----------
    params : dict
        The notebook's validated parameters; ``checkpoint`` (where the file goes)
        is left out, the others are all recorded.
    **results
        Measured values, e.g. ``val_accuracy=0.886, test_accuracy=0.885``.

    Returns
    -------
    dict
        Keyword arguments for :func:`kdlib.models.save`.
    """
    meta = {k: v for k, v in params.items() if k != "checkpoint"}
    meta.update(results)
    return meta


def snapshot_path(checkpoint, epoch: int) -> Path:
    """``<checkpoint without .pt>_epoch<N>.pt``, next to the checkpoint.

    Parameters
    ----------
    checkpoint : str or Path
        The teacher's checkpoint path, e.g. ``data/teacher.pt``.
    epoch : int
        ``>= 1``.

    Returns
    -------
    Path
        E.g. ``data/teacher_epoch1.pt``.
    """
    epoch = check_int("epoch", epoch, low=1)
    path = Path(checkpoint)
    return path.with_name(f"{path.stem}_epoch{epoch}{path.suffix or '.pt'}")


def save_snapshots(snapshots: dict, checkpoint, meta: dict, history) -> list[Path]:
    """Save each epoch snapshot as a checkpoint of its own.

    Parameters
    ----------
    snapshots : dict
        Epoch → ``state_dict`` (from :func:`train_with_params`).
    checkpoint : str or Path
        The final teacher's path; snapshots go next to it (:func:`snapshot_path`).
    meta : dict
        The final teacher's metadata (:func:`checkpoint_meta`). A snapshot records
        the same, plus ``epoch``, with ``val_accuracy`` of that epoch; it has no
        ``test_accuracy`` (the test set is touched once, by the final teacher).
    history : kdlib.train.History
        The run's history (its ``val_acc`` per epoch).

    Returns
    -------
    list of Path
        The files written, in epoch order.
    """
    arch = {k: meta[k] for k in ("channels", "hidden")}
    base = {k: v for k, v in meta.items() if k not in ("val_accuracy", "test_accuracy")}
    paths = []
    for epoch in sorted(snapshots):
        model = models.cnn(**arch)
        model.load_state_dict(snapshots[epoch])
        paths.append(models.save(model, snapshot_path(checkpoint, epoch), **base, epoch=epoch,
                                 val_accuracy=round(float(history.val_acc[epoch - 1]), 4)))
    return paths
