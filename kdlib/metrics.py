"""Accuracy, confusion matrix, per-class accuracy, agreement, calibration, latency."""

from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from kdlib._checks import Float, Int, Optional, check_labels, check_probs, validate_params
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


@validate_params(n_classes=Optional(Int(low=1)))
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
    k = int(max(y_true.max(), y_pred.max())) + 1 if n_classes is None else n_classes
    for labels in (y_true, y_pred):
        check_labels(labels, len(y_true), k, of="the confusion matrix")
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
    """Expected calibration error: Σ over equal-width confidence bins of (share × |accuracy − confidence|).

    Parameters
    ----------
    probs : torch.Tensor
        ``(N, classes)`` probabilities (e.g. ``logits.softmax(1)``), not logits.
    y : torch.Tensor
        ``(N,)`` labels.
    n_bins : int >= 1

    Returns
    -------
    float
        The ``ece`` of :func:`reliability_bins` (``nan`` for zero rows).
    """
    return reliability_bins(probs, y, n_bins=n_bins)["ece"]


def latency(model: nn.Module, input_shape, *, batch_size: int = 1, repeats: int = 20) -> float:
    """Median seconds for one forward pass of a batch: :func:`latency_stats`'s ``median``.

    Parameters
    ----------
    model : nn.Module
    input_shape : tuple of int
        One example's shape, without the batch dimension.
    batch_size, repeats : int >= 1

    Returns
    -------
    float
    """
    return latency_stats(model, input_shape, batch_size=batch_size, repeats=repeats, warmup=1)["median"]


@validate_params(k=Int(low=1))
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
    cm.fill_diagonal_(0)
    flat = cm.flatten()
    order = torch.argsort(flat, descending=True, stable=True)[:k]
    n = cm.shape[1]
    return [(classes[int(i) // n], classes[int(i) % n], int(flat[i])) for i in order if flat[i] > 0]


# --------------------------------- fidelity, reliability bins, latency statistics, GEMM peak
@validate_params(T=Float(low=0.0, low_open=True))
def kl_per_example(teacher_logits: torch.Tensor, student_logits: torch.Tensor, *,
                   T: float = 1.0) -> torch.Tensor:
    """``KL(softmax(t/T) ‖ softmax(s/T))`` of every row, in nats.

    Parameters
    ----------
    teacher_logits, student_logits : torch.Tensor
        Same shape ``(N, classes)``.
    T : float > 0
        Temperature applied to both.

    Returns
    -------
    torch.Tensor
        Shape ``(N,)``, every entry ``>= 0`` (up to rounding).
    """
    if teacher_logits.shape != student_logits.shape or teacher_logits.ndim != 2:
        raise ValueError(f"teacher_logits {tuple(teacher_logits.shape)} and student_logits "
                         f"{tuple(student_logits.shape)} must be the same N×classes shape")
    log_t = torch.log_softmax(teacher_logits.double() / T, 1)
    log_s = torch.log_softmax(student_logits.double() / T, 1)
    return (log_t.exp() * (log_t - log_s)).sum(1).float()


def fidelity(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> dict:
    """How faithfully a student reproduces its teacher on one set of inputs.

    Parameters
    ----------
    teacher_logits, student_logits : torch.Tensor
        Same shape ``(N, classes)``.

    Returns
    -------
    dict
        ``agreement``: fraction of rows with the same arg-max (top-1 agreement);
        ``kl``: mean ``KL(teacher ‖ student)`` at T = 1, in nats; ``n``: rows.
    """
    kl = kl_per_example(teacher_logits, student_logits)
    return {"agreement": agreement_from_logits(teacher_logits, student_logits),
            "kl": float(kl.mean()) if len(kl) else float("nan"), "n": len(kl)}


def _check_probs(probs, y):
    _check_xy(probs, y)
    check_probs("probs", probs, rows_sum_to_one=True)


@validate_params(n_bins=Int(low=1))
def reliability_bins(probs: torch.Tensor, y: torch.Tensor, *, n_bins: int = 10) -> dict:
    """The numbers behind a reliability diagram: confidence bins against accuracy.

    The confidence of a row is its largest probability; bin ``b`` holds confidences in
    ``[b/n_bins, (b+1)/n_bins)`` (the last bin includes 1). Ties between classes go to the
    lowest class index, as ``argmax`` does.

    Parameters
    ----------
    probs : torch.Tensor
        ``(N, classes)`` probabilities.
    y : torch.Tensor
        ``(N,)`` labels.
    n_bins : int >= 1

    Returns
    -------
    dict
        NumPy arrays ``edges`` (n_bins + 1), ``count``, ``confidence`` (mean confidence per
        bin), ``accuracy`` (fraction correct per bin); empty bins have ``nan`` confidence and
        accuracy. ``ece`` = Σ count/N · |accuracy − confidence| over non-empty bins.
    """
    _check_probs(probs, y)
    conf, pred = probs.double().max(1)
    correct = (pred == y).double()
    idx = torch.clamp((conf * n_bins).long(), max=n_bins - 1)
    count = torch.bincount(idx, minlength=n_bins).double()
    sum_conf = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, conf)
    sum_corr = torch.zeros(n_bins, dtype=torch.float64).index_add_(0, idx, correct)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = (sum_conf / count).numpy()
        acc = (sum_corr / count).numpy()
    n = max(len(y), 1)
    gap = np.where(count.numpy() > 0, np.abs(acc - mean_conf), 0.0)
    ece_value = float((count.numpy() / n * gap).sum()) if len(y) else float("nan")
    return {"edges": np.linspace(0, 1, n_bins + 1), "count": count.numpy().astype(int),
            "confidence": mean_conf, "accuracy": acc, "ece": ece_value}


@validate_params(batch_size=Int(low=1), repeats=Int(low=1), warmup=Int(low=0),
                 threads=Optional(Int(low=1)))
def latency_stats(model: nn.Module, input_shape, *, batch_size: int = 1, repeats: int = 30,
                  warmup: int = 5, threads: int | None = None) -> dict:
    """Forward-pass latency of ``model``, measured properly.

    ``torch.inference_mode``, evaluation mode, ``warmup`` untimed passes first, then
    ``repeats`` timed passes of one batch of zeros; the number of torch threads is set
    for the measurement (and restored) and reported.

    Parameters
    ----------
    model : nn.Module
    input_shape : tuple
        One example's shape (no batch dimension), e.g. ``(1, 28, 28)``.
    batch_size, repeats : int >= 1
    warmup : int >= 0
    threads : int, optional
        Torch intra-op threads during the measurement (default: leave as is).

    Returns
    -------
    dict
        ``median``, ``q25``, ``q75``, ``min`` (seconds per batch), ``per_example``
        (median / batch_size), ``times`` (all repeats, a list), ``batch_size``, ``threads``.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    x = torch.zeros(batch_size, *input_shape)
    was_training = getattr(model, "training", False)  # a frozen TorchScript module has none
    if hasattr(model, "eval"):
        model.eval()
    times = []
    try:
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            for _ in range(repeats):
                t0 = time.perf_counter()
                model(x)
                times.append(time.perf_counter() - t0)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
        if was_training:
            model.train(True)
    t = np.asarray(times)
    return {"median": float(np.median(t)), "q25": float(np.quantile(t, 0.25)),
            "q75": float(np.quantile(t, 0.75)), "min": float(t.min()),
            "per_example": float(np.median(t)) / batch_size, "times": times,
            "batch_size": batch_size, "threads": used}


@validate_params(n=Int(low=1), repeats=Int(low=1), threads=Optional(Int(low=1)))
def gemm_peak(*, n: int = 512, repeats: int = 10, threads: int | None = None) -> dict:
    """Measured float32 matrix-multiply throughput of this machine (GFLOP/s).

    Times ``repeats`` products of two ``n × n`` matrices (``2 n³`` FLOPs each) after one
    warm-up product, with ``threads`` torch threads (restored afterwards).

    Parameters
    ----------
    n : int >= 1
    repeats : int >= 1
    threads : int, optional

    Returns
    -------
    dict
        ``gflops`` (median), ``best_gflops`` (fastest repeat), ``n``, ``threads``.
    """
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    times = []
    try:
        torch.mm(a, b)
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(a, b)
            times.append(time.perf_counter() - t0)
        used = torch.get_num_threads()
    finally:
        torch.set_num_threads(before)
    t = np.asarray(times)
    work = 2.0 * n ** 3
    return {"gflops": work / float(np.median(t)) / 1e9, "best_gflops": work / float(t.min()) / 1e9,
            "n": n, "threads": used}


def pareto_front(cost, score) -> list[int]:
    """Indices of the points no other point beats: none is cheaper-or-equal *and* better.

    A point ``i`` is on the front when no ``j`` has ``cost[j] <= cost[i]`` and
    ``score[j] >= score[i]`` with at least one strict. Returned in increasing cost.

    Parameters
    ----------
    cost, score : sequence of float
        Same length (e.g. parameters and accuracy).

    Returns
    -------
    list of int
    """

    c, s = np.asarray(cost, float), np.asarray(score, float)
    if c.shape != s.shape or c.ndim != 1:
        raise ValueError(f"cost {c.shape} and score {s.shape} must be 1-D and the same length")
    front = [i for i in range(len(c))
             if not np.any((c <= c[i]) & (s >= s[i]) & ((c < c[i]) | (s > s[i])))]
    return sorted(front, key=lambda i: (c[i], -s[i]))


def fit_temperature(logits, y, *, steps: int = 100) -> float:
    """Post-hoc temperature scaling (Guo et al. 2017): the one scalar ``T`` that minimises the
    cross-entropy of ``softmax(logits / T)`` on held-out data (fit it on the validation split).

    Parameters
    ----------
    logits : Tensor (N, classes)
    y : Tensor (N,)
    steps : int
        L-BFGS iterations over ``log T``.

    Returns
    -------
    float
    """
    logits, y = logits.detach().double(), torch.as_tensor(y)
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), y)
        loss.backward()
        return loss
    opt.step(closure)
    return float(log_t.detach().exp())
