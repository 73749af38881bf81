"""The classic mistakes of KD implementations, each a named, runnable function.

Every ``pitfall_*`` function reproduces one mistake found in real distillation
code; its docstring says what is wrong, how the mistake shows, and the fix. The
four formula mistakes take the arguments of :func:`kdlib.losses.kd_loss` and
return what the mistaken code computes instead:

* :func:`pitfall_kldiv_mean`: ``KLDivLoss(reduction="mean")`` (1/n_classes too small);
* :func:`pitfall_probs_as_log_probs`: probabilities where log-probabilities belong;
* :func:`pitfall_no_T2`: the ``T**2`` factor forgotten;
* :func:`pitfall_kl_swapped`: ``KL(student || teacher)`` instead of ``KL(teacher || student)``.

Two are about where the teacher's targets come from:

* :func:`pitfall_teacher_train_mode`: the teacher run in train mode (dropout on);
* :func:`pitfall_misaligned_cache`: cached teacher logits looked up by batch position.
"""

from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import nn

from kdlib._checks import LAM, TEMPERATURE, Int, Optional, check_kd_batch, check_matrix, validate_params
from kdlib.losses import _kl_batchmean, kd_loss

__all__ = [
    "pitfall_kldiv_mean", "pitfall_probs_as_log_probs", "pitfall_no_T2", "pitfall_kl_swapped",
    "pitfall_teacher_train_mode", "pitfall_misaligned_cache",
]


FORMULA_MISTAKE_DOC = """Parameters
----------
student_logits, teacher_logits : torch.Tensor
    Shape ``(batch, classes)``, as for :func:`kdlib.losses.kd_loss`.
labels : torch.Tensor
    Integer class indices, shape ``(batch,)``.
lam : float
    Weight of the hard-label term, in ``[0, 1]``.
T : float
    Temperature, ``T > 0``.

Returns
-------
torch.Tensor
    A scalar: what the mistaken code computes in place of ``kd_loss``."""
"""The arguments and result of the four formula mistakes (those of :func:`kdlib.losses.kd_loss`)."""


def _formula_mistake(fn):
    """Validate ``lam`` and ``T`` as ``kd_loss`` does, and complete the docstring with
    :data:`FORMULA_MISTAKE_DOC` (so ``help()`` shows the whole NumPy docstring)."""
    fn.__doc__ = inspect.cleandoc(fn.__doc__) + "\n\n" + FORMULA_MISTAKE_DOC
    return validate_params(lam=LAM, T=TEMPERATURE)(fn)


@_formula_mistake
def pitfall_kldiv_mean(student_logits, teacher_logits, labels, *, lam: float, T: float) -> torch.Tensor:
    """Mistake: ``nn.KLDivLoss(reduction="mean")`` for the soft term.

    **What is wrong:** ``"mean"`` averages over *every element*, batch × classes,
    instead of summing over classes and averaging over examples
    (``"batchmean"``, the KL divergence's definition). **How it shows:** the soft
    term is exactly ``n_classes`` times too small (so the effective λ shifts
    towards the hard labels, more so with more classes), and PyTorch emits a
    ``UserWarning`` saying ``'mean' divides the total loss by both the batch size
    and the support size``. Fix: ``reduction="batchmean"``. (``nn.KLDivLoss()``
    with its default reduction, ``"mean"``, is the same mistake; it appears in
    widely copied KD code.)

    (Its Parameters and Returns, those of ``kd_loss``, are added from :data:`FORMULA_MISTAKE_DOC`.)
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    kl = nn.KLDivLoss(reduction="mean")(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1))
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * kl


@_formula_mistake
def pitfall_probs_as_log_probs(student_logits, teacher_logits, labels, *, lam: float,
                               T: float) -> torch.Tensor:
    """Mistake: passing softmax *probabilities* where ``KLDivLoss`` expects *log*-probabilities.

    ``F.kl_div(input, target)`` computes ``Σ target * (log target - input)``, i.e.
    it assumes ``input`` is already ``log q``. Passing ``softmax(s/T)`` gives
    ``Σ p_t (log p_t - p_s)``, which is not a divergence. **How it shows:** the
    soft term is *negative* and is not zero when student and teacher agree
    (``s == t``), and its gradient does not vanish at the teacher's distribution,
    so the student is not pulled towards the teacher. Fix: ``F.log_softmax``.

    (Its Parameters and Returns, those of ``kd_loss``, are added from :data:`FORMULA_MISTAKE_DOC`.)
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    wrong = F.kl_div(F.softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * wrong


@_formula_mistake
def pitfall_no_T2(student_logits, teacher_logits, labels, *, lam: float, T: float) -> torch.Tensor:
    """Mistake: forgetting the ``T**2`` factor on the soft term.

    **How it shows:** the soft term is exactly ``T**2`` times smaller than in
    :func:`kdlib.losses.kd_loss`, and its gradient falls like ``1/T**2`` for large ``T`` (see
    :func:`kdlib.losses.soft_term_grad_norm` with ``scale_T2=False``), so raising ``T`` silently
    turns the distillation off and the best λ depends on ``T``.

    (Its Parameters and Returns, those of ``kd_loss``, are added from :data:`FORMULA_MISTAKE_DOC`.)
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    return lam * F.cross_entropy(s, y) + (1 - lam) * _kl_batchmean(t, s, T)


@_formula_mistake
def pitfall_kl_swapped(student_logits, teacher_logits, labels, *, lam: float, T: float) -> torch.Tensor:
    """Mistake: ``KL(student || teacher)`` instead of ``KL(teacher || student)``.

    The KL divergence is not symmetric. Hinton's soft term is the cross-entropy
    of the student against the teacher's soft targets, i.e. ``KL(p_t || p_s)``
    up to a constant. **How it shows:** the values differ in general (they
    coincide only in special cases, e.g. equal or mirror-image distributions),
    and the reversed KL is
    "mode-seeking": it lets the student ignore classes to which the teacher
    gives small but non-zero probability, the dark knowledge distillation is
    meant to transfer. (A common source: swapping the arguments of
    ``F.kl_div``, which takes the student's log-probabilities *first*.)

    (Its Parameters and Returns, those of ``kd_loss``, are added from :data:`FORMULA_MISTAKE_DOC`.)
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * _kl_batchmean(s, t, T)


@validate_params(n=Int(low=1))
def pitfall_teacher_train_mode(teacher: nn.Module, x: torch.Tensor, n: int = 5):
    """Mistake: computing the teacher's targets with the teacher in *train* mode.

    In train mode dropout is active (and batch-norm uses batch statistics), so
    the "targets" change from call to call. **How it shows:** the ``n``
    train-mode outputs differ from each other and from the eval-mode output,
    while two eval-mode calls are identical. Fix: ``teacher.eval()`` and
    ``torch.no_grad()`` (or cache the eval-mode logits once).

    The function leaves the teacher as it found it: every submodule's mode and
    every buffer (batch-norm running statistics, which train-mode calls would
    otherwise update) are restored.

    Parameters
    ----------
    teacher : nn.Module
        The teacher; its modes and buffers are restored afterwards.
    x : torch.Tensor
        One batch of inputs.
    n : int
        Number of train-mode calls, ``>= 1``.

    Returns
    -------
    eval_logits : torch.Tensor
        One eval-mode forward pass (the correct targets).
    train_logits : list of torch.Tensor
        ``n`` tensors, each one train-mode forward pass.
    """
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    modes = [(m, m.training) for m in teacher.modules()]
    buffers = [(b, b.detach().clone()) for b in teacher.buffers()]
    try:
        with torch.no_grad():
            teacher.eval()
            eval_logits = teacher(x)
            teacher.train()
            train_logits = [teacher(x) for _ in range(n)]
    finally:
        for m, mode in modes:
            m.training = mode
        with torch.no_grad():
            for b, saved in buffers:
                b.copy_(saved)
    return eval_logits, train_logits


@validate_params(batch_idx=Int(low=0), batch_size=Optional(Int(low=1)))
def pitfall_misaligned_cache(student_logits, cached_teacher_logits, labels, batch_idx: int, *,
                             lam: float, T: float, batch_size: int | None = None) -> torch.Tensor:
    """Mistake: looking up cached teacher logits by *batch position* instead of by example index.

    The teacher's logits are computed once for the whole training set and cached.
    The wrong lookup is ``cached[i * bs:(i + 1) * bs]`` for the ``i``-th batch,
    which is right only if the batches walk through the data in order. With
    shuffling, batch ``i`` holds examples ``idx = perm[i*bs:(i+1)*bs]``, so each
    student row is paired with another example's teacher targets.

    The correct counterpart looks up by the batch's example indices (which
    ``kdlib.train.fit`` passes to the loss as ``idx``)::

        kd_loss(student_logits, cached_teacher_logits[idx], labels, lam=lam, T=T)

    **How it shows:** without shuffling both agree exactly; with shuffling the
    loss differs, and a student trained this way imitates the wrong examples'
    targets (expect it to suffer more the smaller λ is, i.e. the more weight the
    soft term gets).

    Parameters
    ----------
    student_logits : torch.Tensor
        This batch's student logits, ``(bs, classes)``.
    cached_teacher_logits : torch.Tensor
        Teacher logits for the whole data set, ``(n_examples, classes)``, in data-set order.
    labels : torch.Tensor
        This batch's labels, ``(bs,)``.
    batch_idx : int
        Position of the batch in the epoch, ``>= 0``.
    lam, T : float
        As in :func:`kd_loss`.
    batch_size : int, optional
        Nominal batch size used for the offset; defaults to ``len(student_logits)``
        (pass it for a shorter last batch).

    Returns
    -------
    torch.Tensor
        A scalar: ``kd_loss`` of this batch against the wrongly looked-up rows
        ``cached_teacher_logits[batch_idx * bs:batch_idx * bs + len(student_logits)]``.
    """
    s = check_matrix("student_logits", student_logits)
    cache = check_matrix("cached_teacher_logits", cached_teacher_logits)
    if cache.shape[1] != s.shape[1]:
        raise ValueError(f"cached_teacher_logits must have {s.shape[1]} classes like student_logits, "
                         f"got shape {tuple(cache.shape)}")
    bs = s.shape[0] if batch_size is None else batch_size
    start = batch_idx * bs
    if start + s.shape[0] > cache.shape[0]:
        raise ValueError(f"batch_idx={batch_idx} with batch size {bs} needs rows "
                         f"[{start}, {start + s.shape[0]}) of cached_teacher_logits, which has only "
                         f"{cache.shape[0]} rows")
    wrong_rows = cache[start:start + s.shape[0]]
    return kd_loss(s, wrong_rows, labels, lam=lam, T=T)
