"""A tiny classification problem shared by the tuning tests (not a test module)."""

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
