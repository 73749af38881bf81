"""A tiny classification problem and hand-made grid rows shared by the tuning tests (not a test
module): tests/test_tuning.py and tests/test_lesson05_lambda_tuning.py."""

from __future__ import annotations

import torch

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
