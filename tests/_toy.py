"""Tiny problems, hand-made rows and shared assertions of several test files (not a test module):
the tuning tests (tests/test_grids.py, tests/test_lesson05_lambda_tuning.py), notebook 04a/04b's
(tests/test_lesson04a_article_formulas.py, tests/test_lesson04b_correct_loss.py), the loss tests
(tests/test_losses.py, tests/test_pitfalls.py, tests/test_article.py) and every lesson's
``check_params`` test (:func:`assert_check_params_basics`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib.data import Split, Splits


def make_problem(n_train=150, n_val=90, n_test=90, seed=0):
    """Three classes in 4-D (images of 1×2×2); the 'teacher' knows the true linear scores.

    Returns ``(data, logits)`` with ``logits`` keyed "train" / "val" / "test".
    """
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(4, 3, generator=g) * 2
    n = n_train + n_val + n_test
    x = torch.randn(n, 1, 2, 2, generator=g)
    scores = x.reshape(n, 4) @ w
    y = scores.argmax(1)
    tr, va, te = slice(0, n_train), slice(n_train, n_train + n_val), slice(n_train + n_val, n)
    data = Splits(Split(x[tr], y[tr]), Split(x[va], y[va]), Split(x[te], y[te]),
                  ("a", "b", "c"), "toy")
    return data, {"train": scores[tr], "val": scores[va], "test": scores[te]}


# Grid rows written by hand (two seeds at most per point; λ = 1 is the baseline).
HAND_ROWS = [
    {"lam": 0.1, "T": 2.0, "seed": 0, "val_acc": 0.80, "test_acc": 0.79},
    {"lam": 0.1, "T": 2.0, "seed": 1, "val_acc": 0.82, "test_acc": 0.83},
    {"lam": 0.1, "T": 4.0, "seed": 0, "val_acc": 0.85, "test_acc": 0.80},
    {"lam": 0.1, "T": 4.0, "seed": 1, "val_acc": 0.87, "test_acc": 0.81},
    {"lam": 0.5, "T": 2.0, "seed": 0, "val_acc": 0.84, "test_acc": 0.84},
    {"lam": 0.5, "T": 2.0, "seed": 1, "val_acc": 0.84, "test_acc": 0.86},
    {"lam": 0.5, "T": 4.0, "seed": 0, "val_acc": 0.83, "test_acc": 0.82},
    {"lam": 1.0, "T": 1.0, "seed": 0, "val_acc": 0.78, "test_acc": 0.77},
]


# The loss lessons' helpers (04a, 04b).
def batch(n=32, k=10, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, k, generator=g, dtype=dtype) * 2
    t = torch.randn(n, k, generator=g, dtype=dtype) * 3
    y = torch.randint(0, k, (n,), generator=g)
    return s, t, y


def toy_data(n=192, d=5, k=3, seed=0):
    """A tiny linearly-structured classification problem as (train, val) Splits."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, k, generator=g)
    x = torch.randn(n + 64, d, generator=g)
    y = (x @ w + 0.5 * torch.randn(n + 64, k, generator=g)).argmax(1)
    return Split(x[:n], y[:n]), Split(x[n:], y[n:])


def toy_student():
    return nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))


def np_log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_kl(p_logits: np.ndarray, q_logits: np.ndarray, T: float) -> float:
    """KL(softmax(p/T) || softmax(q/T)), summed over classes, mean over rows (NumPy, independent of torch)."""
    lp, lq = np_log_softmax(p_logits / T), np_log_softmax(q_logits / T)
    return float((np.exp(lp) * (lp - lq)).sum(axis=-1).mean())


# A learner's candidate KD losses, ``f(s, t, y, lam, T)``: the right one and the classic mistakes
# (the checks of notebooks 04a and 04b are graded against them).
def right_loss(s, t, y, lam, T):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


def no_T2(s, t, y, lam, T):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * soft


def mean_reduction(s, t, y, lam, T):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="mean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


def swapped(s, t, y, lam, T):
    soft = F.kl_div(F.log_softmax(t / T, dim=1), F.softmax(s / T, dim=1), reduction="batchmean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


def probs_not_logs(s, t, y, lam, T):
    soft = F.kl_div(F.softmax(s / T, dim=1), F.softmax(t / T, dim=1), reduction="batchmean")
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


# The loss tests' batch (float64 logits, both on one scale) and their shared validation checks.
def batch64(n=6, k=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(n, k, generator=g, dtype=torch.float64)
    t = scale * torch.randn(n, k, generator=g, dtype=torch.float64)
    y = torch.randint(0, k, (n,), generator=g)
    return s, t, y


def assert_kd_like_validation(fn):
    """``fn(student_logits, teacher_logits, labels, lam=, T=)`` names every bad argument."""
    s, t, y = batch64(4, 3, seed=21)
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        fn(s, t, y, lam=1.5, T=1.0)
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        fn(s, t, y, lam=-0.1, T=1.0)
    for bad_T in (0, -1.0):
        with pytest.raises(ValueError, match=r"T.*> 0"):
            fn(s, t, y, lam=0.5, T=bad_T)
    with pytest.raises(ValueError, match=r"student_logits and teacher_logits.*\(4, 3\).*\(4, 5\)"):
        fn(s, torch.zeros(4, 5, dtype=torch.float64), y, lam=0.5, T=1.0)
    with pytest.raises(ValueError, match=r"labels.*length 4"):
        fn(s, t, y[:3], lam=0.5, T=1.0)
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\].*\[0, 3\]"):
        fn(s, t, torch.tensor([0, 1, 2, 3]), lam=0.5, T=1.0)
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\]"):
        fn(s, t, torch.tensor([0, -1, 2, 1]), lam=0.5, T=1.0)
    with pytest.raises(ValueError, match=r"student_logits.*2-D.*\(12,\)"):
        fn(s.flatten(), t, y, lam=0.5, T=1.0)
    with pytest.raises(ValueError, match=r"teacher_logits.*2-D.*\(1, 4, 3\)"):
        fn(s, t[None], y, lam=0.5, T=1.0)
    with pytest.raises(TypeError, match="labels"):
        fn(s, t, y.double(), lam=0.5, T=1.0)


def assert_check_params_basics(lesson, good: dict, *, integer: str):
    """A lesson's ``check_params``: ``good`` comes back as its Settings; an integer parameter given
    2.5, a ``None`` checkpoint, an unknown name and each missing name are errors naming them."""
    settings = lesson.check_params(**good)
    assert isinstance(settings, lesson.Settings) and vars(settings) == good
    with pytest.raises(TypeError, match=rf"^{integer} must be an integer"):
        lesson.check_params(**{**good, integer: 2.5})
    if "checkpoint" in good:
        with pytest.raises(TypeError, match="^checkpoint must be a string"):
            lesson.check_params(**{**good, "checkpoint": None})
    with pytest.raises(TypeError, match="unknown parameter 'not_a_parameter'"):
        lesson.check_params(**good, not_a_parameter=2)
    for name in good:
        with pytest.raises(TypeError, match=f"parameter '{name}' is missing"):
            lesson.check_params(**{k: v for k, v in good.items() if k != name})
