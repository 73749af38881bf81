"""Accuracy, confusion matrix, per-class accuracy, agreement, calibration, latency."""

from __future__ import annotations

import time

import torch
from torch import nn

from kdlib._checks import check_int
from kdlib.models import predict


def _check_xy(x, y):
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} examples but y has {len(y)}; they must match")


def predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Predicted class of every example (evaluation mode, no gradients).

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor

    Returns
    -------
    torch.Tensor
        int64, shape ``(N,)``.
    """
    return predict(model, x).argmax(1)


def accuracy_from_logits(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the label (the one accuracy of kdlib).

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(N, classes)``: logits or probabilities.
    y : torch.Tensor
        Integer labels, shape ``(N,)``.

    Returns
    -------
    float
        ``nan`` for zero examples.
    """
    _check_xy(logits, y)
    if len(y) == 0:
        return float("nan")
    return float((logits.argmax(1) == y).float().mean())


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of examples whose arg-max prediction equals the label.

    Parameters
    ----------
    model : nn.Module
        Run in evaluation mode, without gradients, in chunks.
    x : torch.Tensor
        Inputs, shape ``(N, ...)``.
    y : torch.Tensor
        Integer labels, shape ``(N,)``.

    Returns
    -------
    float
    """
    _check_xy(x, y)
    return accuracy_from_logits(predict(model, x), y)


def confusion_matrix(y_true, y_pred, n_classes: int | None = None) -> torch.Tensor:
    """Counts ``C[i, j]`` of examples of true class ``i`` predicted as ``j``.

    Parameters
    ----------
    y_true, y_pred : array-like of int
    n_classes : int, optional
        Default: the largest label + 1.

    Returns
    -------
    torch.Tensor
        int64, ``(n_classes, n_classes)``.
    """
    y_true, y_pred = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    _check_xy(y_true, y_pred)
    k = int(max(y_true.max(), y_pred.max())) + 1 if n_classes is None else check_int(
        "n_classes", n_classes, low=1)
    if len(y_true) and (y_true.max() >= k or y_pred.max() >= k or y_true.min() < 0
                        or y_pred.min() < 0):
        raise ValueError(f"labels must lie in [0, {k - 1}] for n_classes={k}")
    return torch.bincount(y_true * k + y_pred, minlength=k * k).reshape(k, k)


def per_class_accuracy(y_true, y_pred, n_classes: int | None = None) -> torch.Tensor:
    """Recall of every class: correct / examples of that class (``nan`` if none).

    Parameters
    ----------
    y_true, y_pred : array-like of int
    n_classes : int, optional

    Returns
    -------
    torch.Tensor
        float, ``(n_classes,)``.
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).float()
    return cm.diag() / cm.sum(1)


def agreement_from_logits(logits_a: torch.Tensor, logits_b: torch.Tensor) -> float:
    """Fraction of rows on which two models' arg-max classes agree (the one agreement of kdlib).

    Parameters
    ----------
    logits_a, logits_b : torch.Tensor
        Same shape ``(N, classes)``.

    Returns
    -------
    float
    """
    if logits_a.shape != logits_b.shape:
        raise ValueError(f"logits_a has shape {tuple(logits_a.shape)} but logits_b has "
                         f"{tuple(logits_b.shape)}; they must match")
    return float((logits_a.argmax(1) == logits_b.argmax(1)).float().mean())


def agreement(model_a: nn.Module, model_b: nn.Module, x: torch.Tensor) -> float:
    """Fraction of examples on which two models predict the same class.

    Parameters
    ----------
    model_a, model_b : nn.Module
    x : torch.Tensor
        Inputs, shape ``(N, ...)``.

    Returns
    -------
    float
    """
    return agreement_from_logits(predict(model_a, x), predict(model_b, x))


def ece(probs: torch.Tensor, y: torch.Tensor, *, n_bins: int = 15) -> float:
    """Expected calibration error: mean |confidence − accuracy| over equal-width bins."""
    _check_xy(probs, y)
    n_bins = check_int("n_bins", n_bins, low=1)
    if probs.ndim != 2 or (len(probs) and (
            probs.min() < 0 or not torch.allclose(probs.sum(1), torch.ones(len(probs)).to(probs),
                                                  atol=1e-3))):
        raise ValueError("probs must be an N×classes tensor of probabilities (rows in [0, 1] "
                         "summing to 1), e.g. logits.softmax(1); got something else (logits?)")
    conf, pred = probs.max(1)
    correct = (pred == y).float()
    bins = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    total = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            total += mask.float().mean() * (conf[mask].mean() - correct[mask].mean()).abs()
    return float(total)


def latency(model: nn.Module, input_shape, *, batch_size: int = 1, repeats: int = 20) -> float:
    """Median seconds for one forward pass of a batch (evaluation mode, no grad)."""
    batch_size = check_int("batch_size", batch_size, low=1)
    repeats = check_int("repeats", repeats, low=1)
    x = torch.zeros(batch_size, *input_shape)
    times = []
    predict(model, x)  # warm-up
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(model, x)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def top_confusions(cm, classes, k: int = 5) -> list[tuple[str, str, int]]:
    """The ``k`` largest off-diagonal cells of a confusion matrix.

    Parameters
    ----------
    cm : array-like
        A confusion matrix (rows: true class).
    classes : sequence of str
    k : int

    Returns
    -------
    list of tuple
        ``(true class, predicted class, count)``, largest first, zero cells left out.
    """
    cm = torch.as_tensor(cm).clone()
    k = check_int("k", k, low=1)
    cm.fill_diagonal_(0)
    flat = cm.flatten()
    order = torch.argsort(flat, descending=True, stable=True)[:k]
    n = cm.shape[1]
    return [(classes[int(i) // n], classes[int(i) % n], int(flat[i])) for i in order if flat[i] > 0]
