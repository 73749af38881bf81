"""The knowledge-distillation loss (Hinton, Vinyals & Dean, 2015) and its conventions.

* :func:`soft_targets` (temperature softmax), :func:`kd_terms` (the two unweighted
  terms), :func:`kd_loss` (their λ-mix), :func:`soft_term_grad_norm` (why the soft
  term is multiplied by ``T**2``), :func:`effective_T` / :func:`same_setting` (the
  λ = 1 rule), :data:`CONVENTIONS` with :func:`to_alpha` / :func:`from_alpha`.
* ``_kd_loss``: the same math without argument checks, for training loops that
  validate once and call it on every batch.
* The tensor checks (``_check_*``) that :mod:`kdlib.article` and
  :mod:`kdlib.pitfalls` share, so that every loss in kdlib rejects bad input with
  the same messages.

The source article's formulas live in :mod:`kdlib.article`, the classic
implementation mistakes in :mod:`kdlib.pitfalls`.

The loss and its convention
---------------------------
::

    kd_loss = lam * CE(z_s, y) + (1 - lam) * T**2 * KL(softmax(z_t / T) || softmax(z_s / T))

averaged over the batch (the KL is summed over classes, then averaged over
examples: PyTorch's ``reduction="batchmean"``). ``lam`` weights the **hard-label**
term, like the article's λ; ``lam=1`` trains a plain student on labels alone and
``lam=0`` a student that only imitates the teacher.

Other code bases put their weight elsewhere. As far as we read them (these are
summaries, not quotations; check the version you use):

* Hinton et al. (2015) describe a weighted average of the two objectives and
  found a considerably lower weight on the hard-label term worked best; many
  PyTorch repositories (e.g. the widely copied ``loss_fn_kd`` of
  haitongli/knowledge-distillation-pytorch) and the source article's defect list
  (defect 7) write ``alpha`` on the **soft** (T²·KL) term: ``alpha = 1 - lam``.
* The PyTorch "Knowledge Distillation Tutorial" uses two independent weights,
  ``soft_target_loss_weight`` and ``ce_loss_weight``: ``(1 - lam, lam)``.
* The Keras example "Knowledge Distillation" (keras.io/examples/vision) puts
  ``alpha`` on the student's **hard** loss and ``1 - alpha`` on the distillation
  loss: ``alpha = lam``.
* torchdistill's ``KDLoss`` puts ``alpha`` on the hard cross-entropy and ``beta``
  (default ``1 - alpha``) on T²·KL: ``alpha = lam``.

:func:`to_alpha` and :func:`from_alpha` translate. Matching the weights does not
make two implementations identical: some compute the soft term as a
cross-entropy ``-Σ p_t log p_s`` (differs from the KL by the teacher's entropy, a
constant with the same gradient), some forget ``T**2``, and some use
``KLDivLoss(reduction="mean")``, which also divides by the number of classes
(see :func:`kdlib.pitfalls.pitfall_kldiv_mean`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from kdlib._checks import (
    LAM,
    TEMPERATURE,
    Each,
    Float,
    Int,
    OneOf,
    check_kd_batch,
    check_labels,
    check_matrix,
    check_probs,
    check_same_shape,
    validate_params,
)

__all__ = [
    "CONVENTIONS", "HARD_ONLY_LAM",
    "soft_targets", "kd_terms", "kd_loss", "effective_T", "same_setting", "soft_term_grad_norm",
    "to_alpha", "from_alpha",
]


# --------------------------------------------------------------------------- the correct loss

@validate_params(T=TEMPERATURE)
def soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """Temperature softmax: ``softmax(logits / T)`` along the last dimension.

    Parameters
    ----------
    logits : torch.Tensor
        Scores of any shape; the last dimension indexes the classes.
    T : float
        Temperature, ``T > 0``. ``T = 1`` is the ordinary softmax; larger ``T``
        flattens the distribution towards uniform (the "dark knowledge" about
        non-target classes becomes visible), ``T → 0`` approaches the one-hot
        vector of the arg-max.

    Returns
    -------
    torch.Tensor
        Probabilities of the same shape as ``logits``; each slice along the last
        dimension sums to 1.
    """
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"logits must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be a floating-point tensor, got dtype {logits.dtype}")
    return torch.softmax(logits / T, dim=-1)


def _kl_batchmean(p_logits: torch.Tensor, q_logits: torch.Tensor, T: float) -> torch.Tensor:
    """``KL(softmax(p/T) || softmax(q/T))`` summed over classes, averaged over rows.

    Computed from log-softmax, so it stays finite for logits of ±1e3 and tiny T.
    """
    log_p = F.log_softmax(p_logits / T, dim=-1)
    log_q = F.log_softmax(q_logits / T, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()


@validate_params(T=TEMPERATURE)
def kd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
             T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The two unweighted terms of :func:`kd_loss`: ``(ce, soft)``.

    ``ce = CE(student_logits, labels)`` (batch mean) and
    ``soft = T**2 * KL(softmax(teacher/T) || softmax(student/T))`` (batch mean of the
    per-example KL), so that ``kd_loss = lam * ce + (1 - lam) * soft``.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``. The teacher's logits are targets: they are
        detached (no gradient flows into the teacher).
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``, values in ``[0, classes - 1]``.
    T : float
        Temperature, ``T > 0``.

    Returns
    -------
    ce, soft : torch.Tensor
        Two scalar tensors.
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    ce = F.cross_entropy(s, y)
    soft = T ** 2 * _kl_batchmean(t, s, T)
    return ce, soft


@validate_params(lam=LAM, T=TEMPERATURE)
def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
            lam: float, T: float) -> torch.Tensor:
    """The knowledge-distillation loss of Hinton, Vinyals & Dean (2015).

    ::

        lam * CE(student, labels) + (1 - lam) * T**2 * KL(softmax(teacher/T) || softmax(student/T))

    averaged over the batch (KL summed over classes, then averaged over
    examples). Computed with ``log_softmax``, so it is finite for logits up to
    ±1e3 and temperatures from 0.05 to 100.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``. The teacher's logits are detached.
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    lam : float
        Weight of the **hard-label** term, in ``[0, 1]`` (the article's λ).
        ``lam = 1`` is a plain student trained on labels; ``lam = 0`` only imitates
        the teacher. See :func:`to_alpha` for other code bases' conventions.
    T : float
        Temperature, ``T > 0``. The ``T**2`` factor keeps the soft term's
        gradient of the same order as ``T`` changes (see :func:`soft_term_grad_norm`).

    Returns
    -------
    torch.Tensor
        A scalar.

    Examples
    --------
    >>> s, t = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[3.0, 1.0, -2.0]])
    >>> round(float(kd_loss(s, t, torch.tensor([0]), lam=1.0, T=4.0)), 4)   # plain CE
    0.1698
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    return _kd_loss(s, t, y, lam, T)


def _kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
             lam: float, T: float) -> torch.Tensor:
    """:func:`kd_loss` without argument checks, for a training loop's inner loop.

    The caller validates ``lam``, ``T`` and the shapes once (``kd_loss``'s checks
    cost more than the loss itself on small batches); this computes the same
    number with the same operations: ``lam * CE + (1 - lam) * T**2 * KL``, the
    teacher's logits detached. Labels must already be int64 class indices.
    """
    teacher_logits = teacher_logits.detach().to(student_logits.dtype)
    ce = F.cross_entropy(student_logits, labels)
    soft = T ** 2 * _kl_batchmean(teacher_logits, student_logits, T)
    return lam * ce + (1 - lam) * soft


HARD_ONLY_LAM = 1.0
"""λ of a student trained on hard labels only: ``kd_loss`` is then plain cross-entropy."""


@validate_params(lam=LAM, T=TEMPERATURE)
def effective_T(lam: float, T: float):
    """The temperature that matters for ``kd_loss(..., lam=lam, T=T)``: ``None`` when ``lam = 1``.

    The one place for the rule "at λ = 1 the soft term has weight 0, so every T
    gives the same student": grids share one run for all T at λ = 1, tables match
    it against any T, and caches key it with ``T=None``.

    Parameters
    ----------
    lam : float in [0, 1]
        Weight of the hard-label term.
    T : float > 0
        Temperature.

    Returns
    -------
    float or None
        ``T``, or ``None`` when ``lam`` is :data:`HARD_ONLY_LAM` (T is irrelevant).
    """
    return None if lam == HARD_ONLY_LAM else T


def same_setting(lam_a: float, T_a: float, lam_b: float, T_b: float) -> bool:
    """True when ``(lam_a, T_a)`` and ``(lam_b, T_b)`` train the same student (λ = 1 ignores T).

    Parameters
    ----------
    lam_a, lam_b : float in [0, 1]
        Weights of the hard-label term.
    T_a, T_b : float > 0
        Temperatures.

    Returns
    -------
    bool
        ``lam_a == lam_b`` and, unless both are 1, ``T_a == T_b``.
    """
    return lam_a == lam_b and effective_T(lam_a, T_a) == effective_T(lam_b, T_b)


@validate_params(T=TEMPERATURE)
def soft_term_grad_norm(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float, *,
                        scale_T2: bool = True) -> float:
    """Norm of the gradient of the soft term with respect to the student's logits.

    The soft term is ``KL(softmax(t/T) || softmax(s/T))`` (batch mean), multiplied
    by ``T**2`` when ``scale_T2`` is true. Its gradient is
    ``T**2 * (softmax(s/T) - softmax(t/T)) / (T * batch)``, and because
    ``softmax(z/T) ≈ 1/K + (z - mean(z)) / (K T)`` for large ``T``, the gradient
    *with* ``T**2`` tends to the constant ``((s - mean s) - (t - mean t)) / (K * batch)``
    while *without* it it falls like ``1 / T**2``. That is why Hinton et al.
    multiply by ``T**2``: the relative weight of the soft and hard terms then
    does not change when you change ``T``.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``; neither is modified.
    T : float
        Temperature, ``T > 0``.
    scale_T2 : bool
        Multiply the soft term by ``T**2`` (the correct loss) or not (the
        :func:`kdlib.pitfalls.pitfall_no_T2` mistake).

    Returns
    -------
    float
        The Frobenius norm of ``d(soft term) / d(student_logits)``.
    """
    s, t, _ = check_kd_batch(student_logits, teacher_logits, None)
    s = s.detach().clone().requires_grad_(True)
    term = _kl_batchmean(t, s, T)
    if scale_T2:
        term = T ** 2 * term
    (grad,) = torch.autograd.grad(term, s)
    return float(grad.norm())


CONVENTIONS = ("alpha-on-soft", "alpha-on-hard", "two-weights")


@validate_params(lam=LAM, convention=OneOf(*CONVENTIONS))
def to_alpha(lam: float, convention: str = "alpha-on-soft"):
    """Translate this package's ``lam`` (weight of the hard-label term) to another convention.

    Parameters
    ----------
    lam : float
        Weight of the hard-label cross-entropy, in ``[0, 1]``.
    convention : {"alpha-on-soft", "alpha-on-hard", "two-weights"}
        ``"alpha-on-soft"``: α weights the soft (T²·KL) term, as in Hinton et al.
        and many PyTorch repositories → returns ``1 - lam``.
        ``"alpha-on-hard"``: α weights the hard (student) loss, as in the Keras
        example and torchdistill's ``KDLoss`` → returns ``lam``.
        ``"two-weights"``: the PyTorch tutorial's ``(soft_target_loss_weight,
        ce_loss_weight)`` → returns ``(1 - lam, lam)``.

    Returns
    -------
    float or tuple of float
    """
    if convention == "alpha-on-soft":
        return 1.0 - lam
    if convention == "alpha-on-hard":
        return lam
    return (1.0 - lam, lam)


@validate_params(convention=OneOf(*CONVENTIONS))
def from_alpha(alpha, convention: str = "alpha-on-soft") -> float:
    """Inverse of :func:`to_alpha`: the ``lam`` that gives the same weighting.

    For ``"two-weights"`` pass the pair ``(soft_target_loss_weight, ce_loss_weight)``;
    it is normalised to sum to 1 (a pair that does not sum to 1 also rescales the
    whole loss, i.e. the learning rate, which ``lam`` cannot express).

    Parameters
    ----------
    alpha : float in [0, 1], or pair of float >= 0
        The other convention's weight; for ``"two-weights"`` the pair
        ``(soft_target_loss_weight, ce_loss_weight)``, not both 0.
    convention : {"alpha-on-soft", "alpha-on-hard", "two-weights"}
        As in :func:`to_alpha`.

    Returns
    -------
    float
        The weight of the hard-label term, in ``[0, 1]``.
    """
    if convention == "two-weights":
        if not isinstance(alpha, (tuple, list)) or len(alpha) != 2:
            raise ValueError(f"alpha must be a pair (soft_target_loss_weight, ce_loss_weight) for "
                             f"convention='two-weights', got {alpha!r}")
        soft_w, ce_w = Each(Float(low=0))("alpha", alpha)
        if soft_w + ce_w == 0:
            raise ValueError("alpha=(0, 0) gives both terms zero weight; allowed: weights >= 0, not both 0")
        return ce_w / (soft_w + ce_w)
    alpha = Float(0, 1)("alpha", alpha)
    return 1.0 - alpha if convention == "alpha-on-soft" else alpha


# --------------------------------- feature (hint) losses
def _check_features(name_s: str, s, name_t: str, t) -> tuple[torch.Tensor, torch.Tensor]:
    for name, x in ((name_s, s), (name_t, t)):
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if not x.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"{name} must have shape (batch, features...) with a non-empty "
                             f"batch, got {tuple(x.shape)}")
    s, t = s.reshape(s.shape[0], -1), t.reshape(t.shape[0], -1)
    if s.shape != t.shape:
        raise ValueError(f"{name_s} and {name_t} must have the same (batch, features) shape after "
                         f"flattening, got {tuple(s.shape)} and {tuple(t.shape)}; map the student's "
                         "features to the teacher's width first (a regressor, or pooling)")
    return s, t


def hint_loss(student_features: torch.Tensor, teacher_features: torch.Tensor) -> torch.Tensor:
    """FitNets' hint loss (Romero et al. 2015): mean squared error between features.

    ``student_features`` are the student's hidden features *after* the regressor that maps
    them to the teacher's width; ``teacher_features`` the teacher's (treated as constants).

    Parameters
    ----------
    student_features, teacher_features : Tensor, shape (batch, ...)
        Flattened per example; the flattened shapes must match.

    Returns
    -------
    Tensor
        Scalar: the mean over the batch and the features of the squared difference.
    """
    s, t = _check_features("student_features", student_features, "teacher_features",
                           teacher_features)
    return F.mse_loss(s, t.detach())


def cosine_feature_loss(student_features: torch.Tensor,
                        teacher_features: torch.Tensor) -> torch.Tensor:
    """``1 - cos(student, teacher)`` per example, averaged over the batch.

    The PyTorch knowledge-distillation tutorial's hidden-representation loss
    (``nn.CosineEmbeddingLoss`` with target 1 is the same quantity). It ignores the
    features' length and matches only their direction.

    Parameters
    ----------
    student_features, teacher_features : Tensor, shape (batch, ...)
        Flattened per example; the flattened shapes must match.

    Returns
    -------
    Tensor
        Scalar in [0, 2]; 0 when every pair points the same way.
    """
    s, t = _check_features("student_features", student_features, "teacher_features",
                           teacher_features)
    return (1 - F.cosine_similarity(s, t.detach(), dim=1, eps=1e-8)).mean()


# --------------------------------- the decoupled parts of the KD term, and control targets
# (targets that keep the teacher's confidence but not its ranking of the wrong classes)

__all__ += ["dkd_parts", "kd_loss_from_probs", "shuffle_wrong", "uniform_wrong", "smoothed_labels"]

def _target_mask(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return F.one_hot(labels, n_classes).bool()


@validate_params(T=TEMPERATURE)
def dkd_parts(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, *,
              T: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the per-example KD term into its target and non-target parts (Zhao et al., 2022).

    With ``p = softmax(teacher_logits / T)``, ``q = softmax(student_logits / T)`` and
    ``t`` the label of an example::

        KL(p || q) = TCKD + (1 - p_t) * NCKD

    where ``TCKD = KL([p_t, 1 - p_t] || [q_t, 1 - q_t])`` compares the two binary
    distributions (target class, everything else) and ``NCKD = KL(p̂ || q̂)`` compares the
    distributions over the non-target classes, each renormalised to sum to 1 (how the
    model ranks the *wrong* classes: the "dark knowledge"). No ``T**2`` factor is applied.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(batch, classes)``, at least 2 classes. The teacher's logits are detached.
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    T : float
        Temperature, ``T > 0``.

    Returns
    -------
    tckd, nckd, p_t : torch.Tensor
        Three tensors of shape ``(batch,)``: the two parts and the teacher's probability
        of the target class at temperature ``T``. ``nckd`` is 0 with two classes.
    """
    s, t, y = check_kd_batch(student_logits, teacher_logits, labels)
    if s.shape[1] < 2:
        raise ValueError(f"dkd_parts needs at least 2 classes, got shape {tuple(s.shape)}")
    mask = _target_mask(y, s.shape[1])
    log_p, log_q = F.log_softmax(t / T, dim=1), F.log_softmax(s / T, dim=1)
    # log of the probability of "not the target": logsumexp over the other classes
    other_t = torch.logsumexp((t / T).masked_fill(mask, float("-inf")), dim=1) - torch.logsumexp(t / T, dim=1)
    other_s = torch.logsumexp((s / T).masked_fill(mask, float("-inf")), dim=1) - torch.logsumexp(s / T, dim=1)
    lp_t, lq_t = log_p[mask], log_q[mask]
    p_t = lp_t.exp()
    tckd = p_t * (lp_t - lq_t) + other_t.exp() * (other_t - other_s)
    hat_p = F.log_softmax((t / T).masked_fill(mask, float("-inf")), dim=1)
    hat_q = F.log_softmax((s / T).masked_fill(mask, float("-inf")), dim=1)
    diff = torch.where(mask, torch.zeros_like(hat_p), hat_p - hat_q)
    nckd = (hat_p.exp() * diff).sum(dim=1)
    return tckd, nckd, p_t


@validate_params(lam=LAM, T=TEMPERATURE)
def kd_loss_from_probs(student_logits: torch.Tensor, target_probs: torch.Tensor, labels: torch.Tensor,
                       *, lam: float, T: float) -> torch.Tensor:
    """:func:`kd_loss` with the soft targets given as probabilities instead of teacher logits.

    ``lam * CE(student_logits, labels) + (1 - lam) * T**2 * KL(target_probs || softmax(student / T))``,
    averaged over the batch. With ``target_probs = soft_targets(teacher_logits, T)`` this is
    exactly :func:`kd_loss`; with the targets of :func:`shuffle_wrong`, :func:`uniform_wrong` or
    :func:`smoothed_labels` it trains the controls of notebook-style experiments
    (label smoothing is ``lam=0, T=1`` with :func:`smoothed_labels`).

    Parameters
    ----------
    student_logits : torch.Tensor
        Shape ``(batch, classes)``.
    target_probs : torch.Tensor
        Same shape, rows of probabilities (zeros allowed); detached.
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    lam : float in [0, 1]
        Weight of the hard-label cross-entropy.
    T : float > 0
        Temperature applied to the student's logits in the soft term.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    s = check_matrix("student_logits", student_logits)
    q = check_probs("target_probs", target_probs).detach().to(s.dtype)
    check_same_shape("student_logits", s, "target_probs", q)
    y = check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
    log_s = F.log_softmax(s / T, dim=1)
    kl = (torch.xlogy(q, q) - q * log_s).sum(dim=1).mean()
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * kl


def _rows_and_labels(probs, labels) -> tuple[torch.Tensor, torch.Tensor]:
    p = check_probs("probs", probs)
    if p.shape[1] < 2:
        raise ValueError(f"probs needs at least 2 classes, got shape {tuple(p.shape)}")
    y = check_labels(labels, p.shape[0], p.shape[1], of="probs")
    return p, y


@validate_params(seed=Int(low=0))
def shuffle_wrong(probs: torch.Tensor, labels: torch.Tensor, *, seed: int = 0) -> torch.Tensor:
    """The "shuffled teacher": keep each row's true-class probability, permute the others.

    Each row's wrong-class probabilities are put in a random order of their own
    (seeded), so the row keeps its confidence on the label, its entropy and the
    multiset of its wrong-class values, but loses which wrong classes the teacher
    found similar.

    Parameters
    ----------
    probs : torch.Tensor
        Shape ``(batch, classes)``, rows of probabilities (e.g. ``soft_targets(t, T)``).
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    seed : int
        Seeds the permutations.

    Returns
    -------
    torch.Tensor
        A new tensor of the same shape.
    """
    p, y = _rows_and_labels(probs, labels)
    n, k = p.shape
    mask = _target_mask(y, k)
    gen = torch.Generator().manual_seed(seed)
    keys = torch.rand(n, k, generator=gen).masked_fill(mask, -1.0)
    shuffled = keys.argsort(dim=1)          # the target first, then the wrong classes at random
    canonical = torch.arange(k, dtype=torch.float32).expand(n, k).masked_fill(mask, -1.0).argsort(dim=1)
    return torch.empty_like(p).scatter_(1, canonical, p.gather(1, shuffled))


def uniform_wrong(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The "uniform-wrong teacher": keep the true-class probability, spread the rest evenly.

    Row ``i`` becomes ``p_t`` on the label and ``(1 - p_t) / (classes - 1)`` elsewhere:
    label smoothing with a per-example ε set by the teacher's confidence.

    Parameters
    ----------
    probs : torch.Tensor
        Shape ``(batch, classes)``, rows of probabilities.
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.

    Returns
    -------
    torch.Tensor
    """
    p, y = _rows_and_labels(probs, labels)
    mask = _target_mask(y, p.shape[1])
    p_t = p[mask].unsqueeze(1)
    return torch.where(mask, p_t, (1 - p_t) / (p.shape[1] - 1))


@validate_params(n_classes=Int(low=2), eps=Float(low=0.0, high=1.0))
def smoothed_labels(labels: torch.Tensor, n_classes: int, eps: float) -> torch.Tensor:
    """Label-smoothing targets: ``(1 - eps) * one_hot(labels) + eps / n_classes``.

    The convention of ``F.cross_entropy(..., label_smoothing=eps)``.

    Parameters
    ----------
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    n_classes : int >= 2
    eps : float in [0, 1]

    Returns
    -------
    torch.Tensor
        Shape ``(batch, n_classes)``, float32.
    """
    n = labels.shape[0] if isinstance(labels, torch.Tensor) and labels.dim() >= 1 else 0
    y = check_labels(labels, n, n_classes, of="the labels")
    return (1 - eps) * F.one_hot(y, n_classes).float() + eps / n_classes
