"""The source article, literally: formulas 3.2.1–3.2.3 and its PyTorch snippet.

Everything here is written exactly as the article prints it, so that its
defects can be run and shown (``shared/source-article/README.md``):

* :func:`article_ce` (formula 3.2.1), :func:`article_adv` (3.2.2) and
  :func:`article_total` (3.2.3). ``article_ce`` contains no student quantity,
  ``article_adv`` no teacher: together they are plain training with the learning
  rate scaled by ``1 - λ``.
* :data:`ARTICLE_SNIPPET`, the article's code verbatim; :func:`snippet_syntax_error`
  and :func:`article_snippet_fixed_syntax`, the two syntax errors Python reports;
  :func:`article_snippet_loss`, its loss lines made runnable (``lambda`` renamed),
  where both terms are the same number and λ does nothing.

The correct loss is :func:`kdlib.losses.kd_loss`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from kdlib._checks import (
    LAM,
    check_labels,
    check_lam,
    check_matrix,
    check_probs,
    check_same_shape,
    validate_params,
)

__all__ = [
    "ArticleLossFn",
    "ARTICLE_SNIPPET",
    "article_ce", "article_adv", "article_total",
    "snippet_syntax_error", "article_snippet_fixed_syntax", "article_snippet_loss",
]


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
    p = check_probs("teacher_probs", teacher_probs)
    y = check_labels(labels, p.shape[0], p.shape[1], of="teacher_probs")
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

    Returns
    -------
    torch.Tensor
        A scalar; it equals ``F.cross_entropy(student_logits, labels)`` when
        ``student_probs = softmax(student_logits)`` (up to the clamp).
    """
    p = check_probs("student_probs", student_probs)
    y = check_labels(labels, p.shape[0], p.shape[1], of="student_probs")
    onehot = F.one_hot(y, p.shape[1]).to(p.dtype)
    eps = _eps(p.dtype)
    return -(onehot * torch.log(p.clamp(eps, 1 - eps))).sum(dim=1).mean()


@validate_params(lam=LAM)
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

    Returns
    -------
    torch.Tensor
        A scalar, ``lam * article_ce(teacher_probs, labels) + (1 - lam) *
        article_adv(student_probs, labels)``.
    """
    check_matrix("teacher_probs", teacher_probs)
    check_matrix("student_probs", student_probs)
    check_same_shape("teacher_probs", teacher_probs, "student_probs", student_probs)
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

    Parameters
    ----------
    source : str
        Python source; default :data:`ARTICLE_SNIPPET`.

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

    Returns
    -------
    SyntaxError or None
        The error for the ``lambda`` line (``None`` would mean it compiles).
    """
    return snippet_syntax_error(ARTICLE_SNIPPET.replace("    # ...\n", "    pass  # ...\n"))


@validate_params(lam=LAM)
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

    Returns
    -------
    torch.Tensor or tuple of torch.Tensor
        The scalar total, or ``(total, loss, adv_loss.mean())`` with ``return_terms``.
    """
    check_matrix("outputs", outputs)
    labels = check_labels(labels, outputs.shape[0], outputs.shape[1], of="outputs")
    criterion = nn.CrossEntropyLoss()
    loss = criterion(outputs, labels)
    adv_loss = F.cross_entropy(outputs, labels, reduction='none')
    total = (1 - lam) * loss + lam * adv_loss.mean()
    if return_terms:
        return total, loss, adv_loss.mean()
    return total


# --------------------------------------------------------------------------- the total loss as a loss_fn

class ArticleLossFn:
    """The article's total loss (formula 3.2.3, :func:`article_total`) as a ``loss_fn`` for
    :func:`kdlib.train.fit`.

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
        self.teacher_probs = check_probs("teacher_probs", teacher_probs).detach()
        self.lam = check_lam(lam)
        self.student_ce: list[float] = []

    def __call__(self, logits: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, x=None) -> torch.Tensor:
        self.student_ce.append(float(F.cross_entropy(logits.detach(), y)))
        return article_total(self.teacher_probs[idx], torch.softmax(logits, dim=-1), y, lam=self.lam)
