"""Losses for knowledge distillation: the correct one, the article's, and the usual mistakes.

Three groups of functions live here, one per lesson:

* **The correct loss** (Hinton, Vinyals & Dean, 2015): :func:`soft_targets`,
  :func:`kd_terms`, :func:`kd_loss`, and :func:`soft_term_grad_norm` for the
  lesson on why the soft term is multiplied by ``T**2``.
* **The article's formulas, literally** (section 3.2 of the source article):
  :func:`article_ce` (3.2.1), :func:`article_adv` (3.2.2), :func:`article_total`
  (3.2.3), its PyTorch snippet :data:`ARTICLE_SNIPPET` and what happens when you
  run it (:func:`snippet_syntax_error`, :func:`article_snippet_fixed_syntax`,
  :func:`article_snippet_loss`).
* **Classic implementation mistakes** (``pitfall_*``), each a runnable function
  whose docstring says what is wrong and how the mistake shows.

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
(see :func:`pitfall_kldiv_mean`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdlib._checks import check_choice, check_float, check_int

__all__ = [
    "ARTICLE_SNIPPET", "CONVENTIONS",
    "soft_targets", "kd_terms", "kd_loss", "soft_term_grad_norm", "to_alpha", "from_alpha",
    "article_ce", "article_adv", "article_total",
    "article_snippet_loss", "snippet_syntax_error", "article_snippet_fixed_syntax",
    "pitfall_kldiv_mean", "pitfall_probs_as_log_probs", "pitfall_no_T2", "pitfall_kl_swapped",
    "pitfall_teacher_train_mode", "pitfall_misaligned_cache",
]


# --------------------------------------------------------------------------- validation

def _check_T(T) -> float:
    return check_float("T", T, low=0, low_open=True)


def _check_lam(lam) -> float:
    return check_float("lam", lam, low=0, high=1)


def _check_matrix(name: str, x) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor (batch, classes), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.shape[1] < 1:
        raise ValueError(f"{name} must have at least one class column, got shape {tuple(x.shape)}")
    return x


def _check_same_shape(name_a: str, a, name_b: str, b) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def _check_labels(labels, n: int, n_classes: int, *, of: str) -> torch.Tensor:
    if not isinstance(labels, torch.Tensor):
        raise TypeError(f"labels must be a torch.Tensor of class indices, got {type(labels).__name__}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"labels must hold integer class indices, got dtype {labels.dtype}")
    if labels.dim() != 1 or labels.shape[0] != n:
        raise ValueError(f"labels must be a 1-D tensor of length {n} (the batch size of {of}), "
                         f"got shape {tuple(labels.shape)}")
    if n and (int(labels.min()) < 0 or int(labels.max()) > n_classes - 1):
        raise ValueError(f"labels must be class indices in [0, {n_classes - 1}] ({of} has {n_classes} "
                         f"classes), got values in [{int(labels.min())}, {int(labels.max())}]")
    return labels.long()


def _check_batch(student_logits, teacher_logits, labels):
    s = _check_matrix("student_logits", student_logits)
    t = _check_matrix("teacher_logits", teacher_logits)
    _check_same_shape("student_logits", s, "teacher_logits", t)
    y = None if labels is None else _check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
    return s, t.detach().to(s.dtype), y


def _check_probs(name: str, p) -> torch.Tensor:
    p = _check_matrix(name, p)
    if p.numel() and (bool((p < 0).any()) or bool((p > 1).any()) or bool(p.isnan().any())):
        raise ValueError(f"{name} must hold probabilities in [0, 1], got values in "
                         f"[{float(p.min()):.4g}, {float(p.max()):.4g}]; pass softmax outputs, not logits")
    return p


# --------------------------------------------------------------------------- the correct loss

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
    T = _check_T(T)
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
    T = _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    ce = F.cross_entropy(s, y)
    soft = T ** 2 * _kl_batchmean(t, s, T)
    return ce, soft


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
    lam = _check_lam(lam)
    ce, soft = kd_terms(student_logits, teacher_logits, labels, T=T)
    return lam * ce + (1 - lam) * soft


HARD_ONLY_LAM = 1.0
"""λ of a student trained on hard labels only: ``kd_loss`` is then plain cross-entropy."""


def effective_T(lam: float, T: float):
    """The temperature that matters for ``kd_loss(..., lam=lam, T=T)``: ``None`` when ``lam = 1``.

    The one place for the rule "at λ = 1 the soft term has weight 0, so every T
    gives the same student": grids share one run for all T at λ = 1, tables match
    it against any T, and caches key it with ``T=None``.

    Parameters
    ----------
    lam : float in [0, 1]
    T : float > 0

    Returns
    -------
    float or None
    """
    lam, T = _check_lam(lam), _check_T(T)
    return None if lam == HARD_ONLY_LAM else T


def same_setting(lam_a: float, T_a: float, lam_b: float, T_b: float) -> bool:
    """True when ``(lam_a, T_a)`` and ``(lam_b, T_b)`` train the same student (λ = 1 ignores T)."""
    return lam_a == lam_b and effective_T(lam_a, T_a) == effective_T(lam_b, T_b)


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
        :func:`pitfall_no_T2` mistake).

    Returns
    -------
    float
        The Frobenius norm of ``d(soft term) / d(student_logits)``.
    """
    T = _check_T(T)
    s, t, _ = _check_batch(student_logits, teacher_logits, None)
    s = s.detach().clone().requires_grad_(True)
    term = _kl_batchmean(t, s, T)
    if scale_T2:
        term = T ** 2 * term
    (grad,) = torch.autograd.grad(term, s)
    return float(grad.norm())


CONVENTIONS = ("alpha-on-soft", "alpha-on-hard", "two-weights")


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
    lam = _check_lam(lam)
    check_choice("convention", convention, CONVENTIONS)
    if convention == "alpha-on-soft":
        return 1.0 - lam
    if convention == "alpha-on-hard":
        return lam
    return (1.0 - lam, lam)


def from_alpha(alpha, convention: str = "alpha-on-soft") -> float:
    """Inverse of :func:`to_alpha`: the ``lam`` that gives the same weighting.

    For ``"two-weights"`` pass the pair ``(soft_target_loss_weight, ce_loss_weight)``;
    it is normalised to sum to 1 (a pair that does not sum to 1 also rescales the
    whole loss, i.e. the learning rate, which ``lam`` cannot express).
    """
    check_choice("convention", convention, CONVENTIONS)
    if convention == "two-weights":
        if not isinstance(alpha, (tuple, list)) or len(alpha) != 2:
            raise ValueError(f"alpha must be a pair (soft_target_loss_weight, ce_loss_weight) for "
                             f"convention='two-weights', got {alpha!r}")
        soft_w = check_float("alpha[0]", alpha[0], low=0)
        ce_w = check_float("alpha[1]", alpha[1], low=0)
        if soft_w + ce_w == 0:
            raise ValueError("alpha=(0, 0) gives both terms zero weight; allowed: weights >= 0, not both 0")
        return ce_w / (soft_w + ce_w)
    alpha = check_float("alpha", alpha, low=0, high=1)
    return 1.0 - alpha if convention == "alpha-on-soft" else alpha


# --------------------------------------------------------------------------- the article, literally

def _eps(dtype: torch.dtype) -> float:
    # 1e-12, or the dtype's machine epsilon where 1 - 1e-12 would round to 1 (float32).
    return max(1e-12, float(torch.finfo(dtype).eps))


def article_ce(teacher_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Formula 3.2.1 of the article, as printed: a *binary* cross-entropy on the teacher.

    ::

        L_ce = -(1/N) Σ_i [ y_i log(p_t) + (1 - y_i) log(1 - p_t) ]

    The printed formula puts no index on ``p_t``. We read ``y_i`` as the one-hot
    label vector of example ``i`` and ``p_t`` as the teacher's probability vector
    for that example, apply the binary cross-entropy elementwise, sum over the
    classes and average over the ``N`` examples. Probabilities are clamped to
    ``[eps, 1 - eps]`` (``eps = 1e-12``, or the dtype's machine epsilon for
    float32, where ``1 - 1e-12`` rounds to 1) so that ``log(0)`` never occurs.

    **What is wrong with it:** no student quantity appears, so its gradient with
    respect to the student's parameters is zero: it teaches the student nothing.
    It is also a binary cross-entropy on a multi-class problem.

    Parameters
    ----------
    teacher_probs : torch.Tensor
        Shape ``(N, classes)``, values in ``[0, 1]`` (softmax outputs).
    labels : torch.Tensor
        Integer class indices, shape ``(N,)``.

    Returns
    -------
    torch.Tensor
        A scalar.
    """
    p = _check_probs("teacher_probs", teacher_probs)
    y = _check_labels(labels, p.shape[0], p.shape[1], of="teacher_probs")
    onehot = F.one_hot(y, p.shape[1]).to(p.dtype)
    eps = _eps(p.dtype)
    p = p.clamp(eps, 1 - eps)
    per_example = (onehot * torch.log(p) + (1 - onehot) * torch.log(1 - p)).sum(dim=1)
    return -per_example.mean()


def article_adv(student_probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Formula 3.2.2 of the article, as printed (the "knowledge distillation loss").

    ::

        L_adv = -(1/N) Σ_i y_i log(p_s)

    with ``y_i`` the one-hot label of example ``i`` and ``p_s`` the student's
    probability vector; probabilities are clamped to ``[eps, 1 - eps]`` as in
    :func:`article_ce`.

    **What is wrong with it:** it is the student's plain hard-label cross-entropy.
    The teacher does not appear and there is no temperature, so no knowledge is
    distilled.

    Parameters
    ----------
    student_probs : torch.Tensor
        Shape ``(N, classes)``, values in ``[0, 1]`` (softmax outputs).
    labels : torch.Tensor
        Integer class indices, shape ``(N,)``.
    """
    p = _check_probs("student_probs", student_probs)
    y = _check_labels(labels, p.shape[0], p.shape[1], of="student_probs")
    onehot = F.one_hot(y, p.shape[1]).to(p.dtype)
    eps = _eps(p.dtype)
    return -(onehot * torch.log(p.clamp(eps, 1 - eps))).sum(dim=1).mean()


def article_total(teacher_probs: torch.Tensor, student_probs: torch.Tensor, labels: torch.Tensor, *,
                  lam: float) -> torch.Tensor:
    """Formula 3.2.3 of the article: ``L = λ L_ce + (1 - λ) L_adv``.

    **What is wrong with it:** ``L_ce`` does not depend on the student, so the
    gradient is ``(1 - λ) ∇ CE(p_s, y)``: λ only rescales the learning rate of
    ordinary supervised training, and the teacher transfers nothing.

    Parameters
    ----------
    teacher_probs, student_probs : torch.Tensor
        Shape ``(N, classes)``, probabilities.
    labels : torch.Tensor
        Integer class indices, shape ``(N,)``.
    lam : float
        The article's λ, in ``[0, 1]``.
    """
    lam = _check_lam(lam)
    _check_matrix("teacher_probs", teacher_probs)
    _check_matrix("student_probs", student_probs)
    _check_same_shape("teacher_probs", teacher_probs, "student_probs", student_probs)
    return lam * article_ce(teacher_probs, labels) + (1 - lam) * article_adv(student_probs, labels)


# The article's PyTorch code (section 4), verbatim, Chinese comments included.
ARTICLE_SNIPPET = """import torch
import torch.nn as nn
import torch.optim as optim

# 定义大型模型和小型模型
class TeacherModel(nn.Module):
    # ...

class StudentModel(nn.Module):
    # ...

# 训练大型模型
teacher_model = TeacherModel()
optimizer = optim.SGD(teacher_model.parameters(), lr=0.01)
criterion = nn.CrossEntropyLoss()

for epoch in range(epochs):
    for inputs, labels in train_loader:
        optimizer.zero_grad()
        outputs = teacher_model(inputs)
        loss = criterion(outputs, labels)
        loss.backward()
        optimizer.step()

# 初始化小型模型并训练
student_model = StudentModel()
student_model.load_state_dict(teacher_model.state_dict())
optimizer = optim.SGD(student_model.parameters(), lr=0.001)

for epoch in range(epochs):
    for inputs, labels in train_loader:
        optimizer.zero_grad()
        outputs = student_model(inputs)
        loss = criterion(outputs, labels)
        adv_loss = nn.functional.cross_entropy(outputs, labels, reduction='none')
        loss = (1 - lambda) * loss + lambda * adv_loss.mean()
        loss.backward()
        optimizer.step()
"""


def snippet_syntax_error(source: str = ARTICLE_SNIPPET) -> SyntaxError | None:
    """Compile the article's snippet and return the ``SyntaxError`` Python reports first.

    ``compile(source, "article.py", "exec")`` stops at the first error. For the
    article's code that is the empty class body: ``class TeacherModel(nn.Module):``
    has only a comment under it, and Python (3.10+) reports *"expected an
    indented block after class definition on line 6"* at line 9, where the next
    statement (``class StudentModel``) starts. The ``lambda`` defect on line 36 is
    hidden behind it (see :func:`article_snippet_fixed_syntax`).

    Returns
    -------
    SyntaxError or None
        The exception, with ``.lineno``, ``.text`` and ``.msg``; ``None`` if the
        source compiles.
    """
    try:
        compile(source, "article.py", "exec")
    except SyntaxError as err:
        return err
    return None


def article_snippet_fixed_syntax() -> SyntaxError | None:
    """The snippet's *second* syntax error, once the empty classes have bodies.

    The comment lines ``    # ...`` under both classes become ``    pass  # ...``
    (same line, so line numbers still match :data:`ARTICLE_SNIPPET`). Compiling
    that reports the use of the reserved word ``lambda`` as a variable on line 36,
    ``loss = (1 - lambda) * loss + lambda * adv_loss.mean()``. Renaming it as well
    makes the code compile; it would still fail at run time (``epochs`` and
    ``train_loader`` are undefined, the model classes have no layers).
    """
    return snippet_syntax_error(ARTICLE_SNIPPET.replace("    # ...\n", "    pass  # ...\n"))


def article_snippet_loss(outputs: torch.Tensor, labels: torch.Tensor, lam: float, *,
                         return_terms: bool = False):
    """The article snippet's loss lines, runnable (``lambda`` renamed to ``lam``).

    ::

        loss = criterion(outputs, labels)                 # criterion = nn.CrossEntropyLoss()
        adv_loss = F.cross_entropy(outputs, labels, reduction='none')
        return (1 - lam) * loss + lam * adv_loss.mean()

    **What is wrong with it:** both terms are the same number, the student's
    hard-label cross-entropy; the teacher is absent, so λ changes nothing, and the
    weights sit the other way round from formula 3.2.3.

    Parameters
    ----------
    outputs : torch.Tensor
        Student logits, shape ``(batch, classes)``.
    labels : torch.Tensor
        Integer class indices, shape ``(batch,)``.
    lam : float
        The snippet's ``lambda``, in ``[0, 1]``.
    return_terms : bool
        Also return the two terms, ``(total, loss, adv_loss.mean())``.
    """
    lam = _check_lam(lam)
    _check_matrix("outputs", outputs)
    labels = _check_labels(labels, outputs.shape[0], outputs.shape[1], of="outputs")
    criterion = nn.CrossEntropyLoss()
    loss = criterion(outputs, labels)
    adv_loss = F.cross_entropy(outputs, labels, reduction='none')
    total = (1 - lam) * loss + lam * adv_loss.mean()
    if return_terms:
        return total, loss, adv_loss.mean()
    return total


# --------------------------------------------------------------------------- pitfalls

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
    """
    lam, T = _check_lam(lam), _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    kl = nn.KLDivLoss(reduction="mean")(F.log_softmax(s / T, dim=-1), F.softmax(t / T, dim=-1))
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * kl


def pitfall_probs_as_log_probs(student_logits, teacher_logits, labels, *, lam: float,
                               T: float) -> torch.Tensor:
    """Mistake: passing softmax *probabilities* where ``KLDivLoss`` expects *log*-probabilities.

    ``F.kl_div(input, target)`` computes ``Σ target * (log target - input)``, i.e.
    it assumes ``input`` is already ``log q``. Passing ``softmax(s/T)`` gives
    ``Σ p_t (log p_t - p_s)``, which is not a divergence. **How it shows:** the
    soft term is *negative* and is not zero when student and teacher agree
    (``s == t``), and its gradient does not vanish at the teacher's distribution,
    so the student is not pulled towards the teacher. Fix: ``F.log_softmax``.
    """
    lam, T = _check_lam(lam), _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    wrong = F.kl_div(F.softmax(s / T, dim=-1), F.softmax(t / T, dim=-1), reduction="batchmean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * wrong


def pitfall_no_T2(student_logits, teacher_logits, labels, *, lam: float, T: float) -> torch.Tensor:
    """Mistake: forgetting the ``T**2`` factor on the soft term.

    **How it shows:** the soft term is exactly ``T**2`` times smaller than in
    :func:`kd_loss`, and its gradient falls like ``1/T**2`` for large ``T`` (see
    :func:`soft_term_grad_norm` with ``scale_T2=False``), so raising ``T`` silently
    turns the distillation off and the best λ depends on ``T``.
    """
    lam, T = _check_lam(lam), _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    return lam * F.cross_entropy(s, y) + (1 - lam) * _kl_batchmean(t, s, T)


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
    """
    lam, T = _check_lam(lam), _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * _kl_batchmean(s, t, T)


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
    x : torch.Tensor
        One batch of inputs.
    n : int
        Number of train-mode calls, ``>= 1``.

    Returns
    -------
    eval_logits : torch.Tensor
    train_logits : list of torch.Tensor
        ``n`` tensors, each one train-mode forward pass.
    """
    if not isinstance(teacher, nn.Module):
        raise TypeError(f"teacher must be a torch.nn.Module, got {type(teacher).__name__}")
    n = check_int("n", n, low=1)
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
    """
    s = _check_matrix("student_logits", student_logits)
    cache = _check_matrix("cached_teacher_logits", cached_teacher_logits)
    if cache.shape[1] != s.shape[1]:
        raise ValueError(f"cached_teacher_logits must have {s.shape[1]} classes like student_logits, "
                         f"got shape {tuple(cache.shape)}")
    batch_idx = check_int("batch_idx", batch_idx, low=0)
    bs = s.shape[0] if batch_size is None else check_int("batch_size", batch_size, low=1)
    start = batch_idx * bs
    if start + s.shape[0] > cache.shape[0]:
        raise ValueError(f"batch_idx={batch_idx} with batch size {bs} needs rows "
                         f"[{start}, {start + s.shape[0]}) of cached_teacher_logits, which has only "
                         f"{cache.shape[0]} rows")
    wrong_rows = cache[start:start + s.shape[0]]
    return kd_loss(s, wrong_rows, labels, lam=lam, T=T)


# --------------------------------------------------------------------------- notebook 04's lesson helpers
# Added for notebooks/04_loss_formulas.ipynb: the article's loss as a ``fit`` loss function, the
# "λ only rescales the learning rate" experiment, and the pitfalls table. Training helpers import
# kdlib.train lazily (losses sits below train in the dependency order).

from dataclasses import dataclass  # noqa: E402

__all__ += [
    "check_lesson_params", "ArticleLossFn", "article_loss_fn", "ScaledLrRun",
    "compare_article_with_scaled_lr", "PitfallRow", "formula_pitfalls", "train_mode_pitfall",
    "misaligned_cache_pitfall", "pitfall_table",
]


def check_lesson_params(*, n_train, epochs, student_epochs, hidden, lr, T, lam, seed) -> None:
    """Validate notebook 04's parameters before any work starts.

    Raises ``ValueError`` / ``TypeError`` naming the parameter, its value and the
    allowed range: ``n_train`` in [500, 55000], ``epochs`` and ``student_epochs``
    in [1, 100], ``hidden`` in [1, 4096], ``lr`` in (0, 10], ``T`` in (0, 100],
    ``lam`` in [0, 1], ``seed`` >= 0.
    """
    check_int("n_train", n_train, low=500, high=55000)
    check_int("epochs", epochs, low=1, high=100)
    check_int("student_epochs", student_epochs, low=1, high=100)
    check_int("hidden", hidden, low=1, high=4096)
    check_float("lr", lr, low=0.0, high=10.0, low_open=True)
    check_float("T", T, low=0.0, high=100.0, low_open=True)
    _check_lam(lam)
    check_int("seed", seed, low=0)


class ArticleLossFn:
    """The article's total loss (formula 3.2.3) as a ``loss_fn`` for :func:`kdlib.train.fit`.

    Each call computes ``article_total(teacher_probs[idx], softmax(logits), y, lam=lam)``:
    the teacher's probabilities of the batch's examples (looked up by example
    index) and the student's softmax probabilities, exactly as the formulas are
    printed. It also records the student's ordinary hard-label cross-entropy of
    every batch in :attr:`student_ce`, the quantity that plain training minimises,
    so that the two trainings can be compared step by step.

    Parameters
    ----------
    teacher_probs : torch.Tensor
        Shape ``(n_train, classes)``: the teacher's softmax outputs on the training
        split, in data-set order. They are constants (detached).
    lam : float
        The article's λ, in ``[0, 1]``.

    Attributes
    ----------
    student_ce : list of float
        ``F.cross_entropy(logits, y)`` of every batch seen, in order.
    """

    def __init__(self, teacher_probs: torch.Tensor, *, lam: float):
        self.teacher_probs = _check_probs("teacher_probs", teacher_probs).detach()
        self.lam = _check_lam(lam)
        self.student_ce: list[float] = []

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, x=None) -> torch.Tensor:
        self.student_ce.append(float(F.cross_entropy(logits.detach(), y)))
        return article_total(self.teacher_probs[idx], torch.softmax(logits, dim=-1), y, lam=self.lam)


def article_loss_fn(teacher_probs: torch.Tensor, *, lam: float) -> ArticleLossFn:
    """Build an :class:`ArticleLossFn` (the article's formula 3.2.3 for ``fit``)."""
    return ArticleLossFn(teacher_probs, lam=lam)


@dataclass
class ScaledLrRun:
    """One λ of :func:`compare_article_with_scaled_lr`.

    Attributes
    ----------
    lam : float
        The article's λ.
    lr, scaled_lr : float
        Learning rate of the article-loss run, and ``lr * (1 - lam)`` of the plain run.
    article_ce, plain_ce : list of float
        The student's hard-label cross-entropy per step under the article's loss at
        ``lr``, and under plain cross-entropy at ``scaled_lr`` (empty for ``lam = 1``,
        where the scaled rate is 0 and there is nothing to train).
    max_weight_diff : float or None
        ``max |w_article - w_plain|`` over all final weights (None for ``lam = 1``).
    max_curve_diff : float or None
        ``max |article_ce - plain_ce|`` over the steps (None for ``lam = 1``).
    moved : float
        ``max |w_final - w_initial|`` of the article-loss run: 0.0 means the student
        never moved.
    article_val_acc, plain_val_acc : list of float
        Validation accuracy after each epoch (empty list / nan without a val split).
    """

    lam: float
    lr: float
    scaled_lr: float
    article_ce: list
    plain_ce: list
    max_weight_diff: float | None
    max_curve_diff: float | None
    moved: float
    article_val_acc: list
    plain_val_acc: list


def _max_param_diff(a: nn.Module, b: nn.Module) -> float:
    with torch.no_grad():
        return max((float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters())),
                    default=0.0)


def compare_article_with_scaled_lr(make_student, data, teacher_probs: torch.Tensor, *,
                                   lams=(0.0, 0.5, 0.9, 1.0), lr: float = 0.1, epochs: int = 2,
                                   batch_size: int = 128, seed: int = 0) -> list[ScaledLrRun]:
    """Train with the article's loss, and with plain cross-entropy at ``lr * (1 - lam)``.

    For every ``lam`` two students start from the same weights (``make_student()``
    called right after ``torch.manual_seed(seed)``) and see the same batches
    (``fit``'s ``seed``). Both use plain SGD (no momentum, no schedule, no weight
    decay), so one step is ``w -= lr * grad``. Because ``article_ce`` does not
    depend on the student, the article's gradient is ``(1 - lam) * grad CE``, and
    the two runs take the same steps up to floating-point rounding: their curves
    and final weights coincide. With ``lam = 1`` the gradient is exactly zero and
    the student never moves (``moved == 0.0``); no plain run is made there.

    Parameters
    ----------
    make_student : callable
        ``make_student() -> nn.Module`` mapping a training batch to logits.
    data : Splits, (train, val) pair, or Split
        As for :func:`kdlib.train.fit`.
    teacher_probs : torch.Tensor
        The teacher's probabilities on ``data.train``, in data-set order.
    lams : sequence of float
        λ values in ``[0, 1]``.
    lr : float
        Learning rate of the article-loss runs, ``> 0``.
    epochs, batch_size, seed : int

    Returns
    -------
    list of ScaledLrRun
        One per ``lam``, in order.
    """
    from kdlib.train import _split_pair, fit

    if not callable(make_student):
        raise TypeError(f"make_student must be a callable returning an nn.Module, got "
                        f"{type(make_student).__name__}")
    lams = [_check_lam(v) for v in lams]
    if not lams:
        raise ValueError("lams must hold at least one value in [0, 1], got an empty sequence")
    lr = check_float("lr", lr, low=0.0, low_open=True)
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_int("seed", seed, low=0)
    train, _ = _split_pair(data)
    probs = _check_probs("teacher_probs", teacher_probs)
    if probs.shape[0] != len(train.y):
        raise ValueError(f"teacher_probs has {probs.shape[0]} rows but the training split has "
                         f"{len(train.y)} examples; they must match")

    def new_student():
        torch.manual_seed(seed)
        model = make_student()
        if not isinstance(model, nn.Module):
            raise TypeError(f"make_student() must return an nn.Module, got {type(model).__name__}")
        return model

    sgd = dict(epochs=epochs, batch_size=batch_size, optimizer="sgd", momentum=0.0, schedule=None,
               weight_decay=0.0, seed=seed, progress=False)
    runs = []
    for lam in lams:
        article = new_student()
        start = [p.detach().clone() for p in article.parameters()]
        loss_fn = article_loss_fn(probs, lam=lam)
        hist_a = fit(article, data, lr=lr, loss_fn=loss_fn, **sgd)
        moved = max((float((p.detach() - p0).abs().max()) for p, p0 in zip(article.parameters(), start)),
                    default=0.0)
        scaled = lr * (1.0 - lam)
        if scaled > 0:
            plain = new_student()
            hist_p = fit(plain, data, lr=scaled, **sgd)
            plain_ce = list(hist_p.step_loss)
            weight_diff = _max_param_diff(article, plain)
            curve_diff = max(abs(a - b) for a, b in zip(loss_fn.student_ce, plain_ce))
            plain_acc = list(hist_p.val_acc)
        else:
            plain_ce, weight_diff, curve_diff, plain_acc = [], None, None, []
        runs.append(ScaledLrRun(lam=lam, lr=lr, scaled_lr=scaled, article_ce=list(loss_fn.student_ce),
                                plain_ce=plain_ce, max_weight_diff=weight_diff, max_curve_diff=curve_diff,
                                moved=moved, article_val_acc=list(hist_a.val_acc), plain_val_acc=plain_acc))
    return runs


@dataclass
class PitfallRow:
    """One line of the pitfalls table: a mistake's loss value against the correct one."""

    name: str
    value: float
    correct: float
    note: str = ""

    @property
    def ratio(self) -> float:
        """``value / correct`` (nan when the correct value is 0)."""
        return self.value / self.correct if self.correct else float("nan")


def formula_pitfalls(student_logits, teacher_logits, labels, *, T: float) -> list[PitfallRow]:
    """The four formula mistakes on one batch, as the soft term alone (``lam = 0``).

    Every mistake in this module lives in the soft term; the hard-label term
    ``lam * CE`` would add the same number to the mistake and to the correct
    loss, so the table compares the soft term alone, where the ratios are
    readable: ``pitfall_kldiv_mean`` gives exactly ``1 / n_classes``,
    ``pitfall_no_T2`` exactly ``1 / T**2``. The ``UserWarning`` that
    ``KLDivLoss(reduction="mean")`` emits is caught and quoted in that row's note.

    Returns
    -------
    list of PitfallRow
        KLDivLoss "mean", probabilities as log-probabilities, no T², KL swapped.
    """
    import warnings

    T = _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
    with torch.no_grad():
        correct = float(kd_loss(s, t, y, lam=0.0, T=T))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mean_value = float(pitfall_kldiv_mean(s, t, y, lam=0.0, T=T))
        said = next((str(w.message) for w in caught if "mean" in str(w.message)), "")
        said = said.split(".")[0] if said else "no warning"
        k = s.shape[1]
        return [
            PitfallRow("KLDivLoss(reduction='mean')", mean_value, correct,
                       f"averages over the {k} classes too: exactly 1/{k}; PyTorch warns: '{said}'"),
            PitfallRow("probabilities passed as log-probabilities",
                       float(pitfall_probs_as_log_probs(s, t, y, lam=0.0, T=T)), correct,
                       "Σ p_t (log p_t − p_s) is no divergence: negative, not 0 when s = t"),
            PitfallRow("T² factor forgotten", float(pitfall_no_T2(s, t, y, lam=0.0, T=T)), correct,
                       f"exactly 1/T² = 1/{T ** 2:g}: raising T silently switches distillation off"),
            PitfallRow("KL(student ‖ teacher) instead of KL(teacher ‖ student)",
                       float(pitfall_kl_swapped(s, t, y, lam=0.0, T=T)), correct,
                       "another, mode-seeking divergence: may ignore the teacher's small probabilities"),
        ]


def train_mode_pitfall(teacher: nn.Module, x: torch.Tensor, student_logits, labels, *, T: float,
                       n: int = 5) -> tuple[PitfallRow, dict]:
    """The teacher-in-train-mode mistake on one batch, with how much its targets vary.

    Runs :func:`pitfall_teacher_train_mode` (``n`` train-mode passes, dropout
    active; the teacher is left as found) and compares the soft term (``lam = 0``)
    computed against the train-mode targets (mean over the ``n`` passes) with the
    one against the eval-mode targets.

    Returns
    -------
    row : PitfallRow
    spread : dict
        ``max_prob_change``: largest ``|p_train - p_eval|`` of any class probability
        at temperature ``T``; ``mean_prob_change``: its mean over the batch and
        classes; ``argmax_changed``: fraction of (pass, example) pairs whose top
        class differs from eval mode; ``soft_min``/``soft_max``: the range of the
        soft term over the passes; ``eval_repeatable``: two eval-mode passes agree
        exactly.
    """
    T = _check_T(T)
    eval_logits, train_logits = pitfall_teacher_train_mode(teacher, x, n=n)
    s, t, y = _check_batch(student_logits, eval_logits, labels)
    with torch.no_grad():
        again, _ = pitfall_teacher_train_mode(teacher, x, n=1)
        p_eval = soft_targets(t, T)
        p_train = torch.stack([soft_targets(z.to(s.dtype), T) for z in train_logits])
        change = (p_train - p_eval).abs()
        soft = [float(kd_loss(s, z, y, lam=0.0, T=T)) for z in train_logits]
        correct = float(kd_loss(s, t, y, lam=0.0, T=T))
        flips = (torch.stack(train_logits).argmax(-1) != eval_logits.argmax(-1)).float().mean()
    spread = {"max_prob_change": float(change.max()), "mean_prob_change": float(change.mean()),
              "argmax_changed": float(flips), "soft_min": min(soft), "soft_max": max(soft),
              "eval_repeatable": bool(torch.equal(again, eval_logits))}
    row = PitfallRow("teacher in train mode (dropout on)", sum(soft) / len(soft), correct,
                     f"targets change every call: soft term {min(soft):.4f}..{max(soft):.4f} over {n} calls")
    return row, spread


def misaligned_cache_pitfall(student_logits, cached_teacher_logits, labels, *, T: float,
                             batch_size: int = 128, seed: int = 0) -> tuple[PitfallRow, dict]:
    """The misaligned-cache mistake over one epoch of batches, shuffled and not.

    ``student_logits``, ``cached_teacher_logits`` and ``labels`` cover a whole
    data set in data-set order. For a seeded shuffled order, batch ``i`` holds the
    examples ``perm[i*bs:(i+1)*bs]``; the mistake pairs them with cache rows
    ``i*bs:(i+1)*bs`` (:func:`pitfall_misaligned_cache`), the correct loss with
    ``cache[idx]``. Both soft terms (``lam = 0``) are averaged over the batches.

    Returns
    -------
    row : PitfallRow
        Shuffled epoch: mistaken vs correct mean soft term.
    check : dict
        ``unshuffled_equal``: in data-set order the two lookups give identical
        losses; ``shuffled_wrong`` / ``shuffled_right``: the per-batch values.
    """
    T = _check_T(T)
    s = _check_matrix("student_logits", student_logits)
    cache = _check_matrix("cached_teacher_logits", cached_teacher_logits)
    _check_same_shape("student_logits", s, "cached_teacher_logits", cache)
    y = _check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
    batch_size = check_int("batch_size", batch_size, low=1)
    seed = check_int("seed", seed, low=0)
    n = s.shape[0]

    def epoch(order):
        wrong, right = [], []
        with torch.no_grad():
            for i, start in enumerate(range(0, n, batch_size)):
                idx = order[start:start + batch_size]
                wrong.append(float(pitfall_misaligned_cache(s[idx], cache, y[idx], i, lam=0.0, T=T,
                                                            batch_size=batch_size)))
                right.append(float(kd_loss(s[idx], cache[idx], y[idx], lam=0.0, T=T)))
        return wrong, right

    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    wrong, right = epoch(perm)
    in_order = epoch(torch.arange(n))
    check = {"unshuffled_equal": in_order[0] == in_order[1], "shuffled_wrong": wrong,
             "shuffled_right": right}
    row = PitfallRow("cached logits looked up by batch position", sum(wrong) / len(wrong),
                     sum(right) / len(right),
                     "with shuffling each student row gets another example's targets")
    return row, check


def pitfall_table(rows) -> str:
    """Format :class:`PitfallRow` objects as a fixed-width text table (4 decimals)."""
    rows = list(rows)
    if not all(isinstance(r, PitfallRow) for r in rows):
        raise TypeError("rows must be PitfallRow objects")
    width = max([len("mistake")] + [len(r.name) for r in rows])
    lines = [f"{'mistake':<{width}}  {'value':>9}  {'correct':>9}  {'ratio':>8}",
             "-" * (width + 32)]
    for r in rows:
        lines.append(f"{r.name:<{width}}  {r.value:>9.4f}  {r.correct:>9.4f}  {r.ratio:>8.4f}")
    return "\n".join(lines)


# ---- added for notebook 06: the decoupled parts of the KD term, and control targets
# (targets that keep the teacher's confidence but not its ranking of the wrong classes)

__all__ += ["dkd_parts", "kd_loss_from_probs", "shuffle_wrong", "uniform_wrong", "smoothed_labels"]

def _target_mask(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return F.one_hot(labels, n_classes).bool()


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
    T = _check_T(T)
    s, t, y = _check_batch(student_logits, teacher_logits, labels)
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
    lam, T = _check_lam(lam), _check_T(T)
    s = _check_matrix("student_logits", student_logits)
    q = _check_probs("target_probs", target_probs).detach().to(s.dtype)
    _check_same_shape("student_logits", s, "target_probs", q)
    y = _check_labels(labels, s.shape[0], s.shape[1], of="student_logits")
    log_s = F.log_softmax(s / T, dim=1)
    kl = (torch.xlogy(q, q) - q * log_s).sum(dim=1).mean()
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * kl


def _rows_and_labels(probs, labels) -> tuple[torch.Tensor, torch.Tensor]:
    p = _check_probs("probs", probs)
    if p.shape[1] < 2:
        raise ValueError(f"probs needs at least 2 classes, got shape {tuple(p.shape)}")
    y = _check_labels(labels, p.shape[0], p.shape[1], of="probs")
    return p, y


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
    seed = check_int("seed", seed, low=0)
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
    n_classes = check_int("n_classes", n_classes, low=2)
    eps = check_float("eps", eps, low=0.0, high=1.0)
    n = labels.shape[0] if isinstance(labels, torch.Tensor) and labels.dim() >= 1 else 0
    y = _check_labels(labels, n, n_classes, of="the labels")
    return (1 - eps) * F.one_hot(y, n_classes).float() + eps / n_classes
