"""Tests of kdlib.metrics against hand computations and NumPy loops."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from kdlib import metrics


@pytest.fixture
def linear():
    """nn.Linear(2 → 3) with logits (x0, x1, −x0 − x1)."""
    model = nn.Linear(2, 3)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        model.bias.zero_()
    return model


X = torch.tensor([[2.0, 1.0], [0.0, 3.0], [-1.0, -2.0], [1.0, 0.5], [-3.0, 1.0]])
# Logits by hand: [2, 1, −3] → 0 · [0, 3, −3] → 1 · [−1, −2, 3] → 2 · [1, .5, −1.5] → 0 ·
# [−3, 1, 2] → 2.
PRED = [0, 1, 2, 0, 2]


def test_predictions_and_accuracy_by_hand(linear):
    assert metrics.predictions(linear, X).tolist() == PRED
    y = torch.tensor([0, 1, 1, 0, 1])  # wrong on examples 2 and 4
    assert metrics.accuracy(linear, X, y) == pytest.approx(3 / 5)
    assert metrics.accuracy(linear, X, torch.tensor(PRED)) == 1.0
    assert metrics.accuracy(linear, X, torch.tensor([1, 0, 0, 1, 0])) == 0.0
    with pytest.raises(ValueError, match="5 examples but y has 4"):
        metrics.accuracy(linear, X, y[:4])


def test_accuracy_is_in_eval_mode_and_keeps_the_mode():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 50), nn.Dropout(0.9), nn.Linear(50, 3))
    model.train()
    x = torch.randn(200, 2)
    y = metrics.predictions(model, x)
    assert metrics.accuracy(model, x, y) == 1.0  # dropout off: the same predictions again
    assert model.training


def _numpy_confusion(t, p, k):
    cm = np.zeros((k, k), dtype=np.int64)
    for i, j in zip(t, p):
        cm[i, j] += 1
    return cm


def test_confusion_matrix_against_a_numpy_loop():
    rng = np.random.default_rng(0)
    t, p = rng.integers(0, 4, 300), rng.integers(0, 4, 300)
    cm = metrics.confusion_matrix(torch.from_numpy(t), torch.from_numpy(p))
    assert cm.shape == (4, 4) and int(cm.sum()) == 300
    assert np.array_equal(cm.numpy(), _numpy_confusion(t, p, 4))
    wide = metrics.confusion_matrix(t, p, n_classes=6)  # NumPy input and unused classes
    assert np.array_equal(wide.numpy(), _numpy_confusion(t, p, 6))


@pytest.mark.parametrize("t, p, k", [
    ([0, 1, 3], [0, 1, 2], 3),   # true label too large
    ([0, 1, 2], [0, 1, 3], 3),   # predicted label too large
    ([0, -1, 2], [0, 1, 2], 3),  # negative true label
    ([0, 1, 2], [0, -1, 2], 3),  # negative predicted label
])
def test_confusion_matrix_refuses_labels_out_of_range(t, p, k):
    with pytest.raises(ValueError, match="labels must lie in"):
        metrics.confusion_matrix(torch.tensor(t), torch.tensor(p), n_classes=k)


def test_confusion_matrix_length_mismatch():
    with pytest.raises(ValueError, match="must match"):
        metrics.confusion_matrix(torch.tensor([0, 1]), torch.tensor([0]))


def test_per_class_accuracy_by_hand():
    t = torch.tensor([0, 0, 0, 0, 1, 1, 2, 2, 2])
    p = torch.tensor([0, 0, 1, 2, 1, 0, 2, 2, 2])
    acc = metrics.per_class_accuracy(t, p, n_classes=4)
    assert acc[:3].tolist() == pytest.approx([2 / 4, 1 / 2, 3 / 3])
    assert math.isnan(acc[3])  # no example of class 3


def test_agreement(linear):
    assert metrics.agreement(linear, linear, X) == 1.0
    swapped = nn.Linear(2, 3)  # logits (x1, x0, −x0 − x1): classes 0 and 1 swap roles
    with torch.no_grad():
        swapped.weight.copy_(torch.tensor([[0.0, 1.0], [1.0, 0.0], [-1.0, -1.0]]))
        swapped.bias.zero_()
    # swapped predicts [1, 0, 2, 1, 2]: agrees with [0, 1, 2, 0, 2] on examples 2 and 4.
    assert metrics.predictions(swapped, X).tolist() == [1, 0, 2, 1, 2]
    assert metrics.agreement(linear, swapped, X) == pytest.approx(2 / 5)


# ----------------------------------------------------------------- calibration
def _probs(conf):
    """Two-class rows whose larger probability ``c`` is on class 0."""
    return torch.tensor([[c, 1 - c] for c in conf])


def test_ece_of_a_perfectly_calibrated_case_is_zero():
    # 10 examples at confidence 0.7 of which 7 are right, 10 at 0.9 of which 9 are right.
    probs = _probs([0.7] * 10 + [0.9] * 10)
    y = torch.tensor([0] * 7 + [1] * 3 + [0] * 9 + [1])
    assert metrics.ece(probs, y, n_bins=10) == pytest.approx(0.0, abs=1e-6)


def test_ece_of_an_over_confident_case_by_hand():
    # Bin of 0.9: 4 examples, 2 right → gap 0.4. Bin of 0.6: 4 examples, 3 right → gap 0.15.
    # ECE = (4/8)·0.4 + (4/8)·0.15 = 0.275.
    probs = _probs([0.9] * 4 + [0.6] * 4)
    y = torch.tensor([0, 0, 1, 1, 0, 0, 0, 1])
    assert metrics.ece(probs, y, n_bins=10) == pytest.approx(0.275, abs=1e-6)
    # With a single bin the gaps cancel partly: |mean conf 0.75 − accuracy 5/8| = 0.125.
    assert metrics.ece(probs, y, n_bins=1) == pytest.approx(0.125, abs=1e-6)


def test_ece_against_a_numpy_loop():
    gen = torch.Generator().manual_seed(0)
    probs = (torch.randn(500, 5, generator=gen) * 2).softmax(1)
    y = torch.randint(0, 5, (500,), generator=gen)
    conf, pred = probs.max(1).values.numpy().astype(np.float64), probs.argmax(1).numpy()
    right = (pred == y.numpy()).astype(np.float64)
    edges = np.linspace(0, 1, 16)
    want = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf >= lo) & ((conf < hi) if hi < 1 else (conf <= hi))
        if mask.any():
            want += mask.mean() * abs(conf[mask].mean() - right[mask].mean())
    assert metrics.ece(probs, y) == pytest.approx(want, abs=1e-5)


def test_ece_refuses_logits_and_bad_bins():
    logits = torch.tensor([[2.0, -1.0], [0.5, 0.3]])
    with pytest.raises(ValueError, match="probabilities"):
        metrics.ece(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="n_bins"):
        metrics.ece(logits.softmax(1), torch.tensor([0, 1]), n_bins=0)
    with pytest.raises(ValueError, match="must match"):
        metrics.ece(logits.softmax(1), torch.tensor([0]))


# ----------------------------------------------------------------- latency
def test_latency_is_a_positive_float_and_keeps_the_mode(linear):
    linear.train()
    seconds = metrics.latency(linear, (2,), batch_size=4, repeats=3)
    assert isinstance(seconds, float) and seconds > 0
    assert linear.training
    with pytest.raises(ValueError, match="repeats"):
        metrics.latency(linear, (2,), repeats=0)
    with pytest.raises(ValueError, match="batch_size"):
        metrics.latency(linear, (2,), batch_size=0)


def test_accuracy_and_agreement_from_logits_against_numpy():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(50, 4, generator=g), torch.randn(50, 4, generator=g)
    y = torch.randint(0, 4, (50,), generator=g)
    an, bn, yn = a.numpy(), b.numpy(), y.numpy()
    assert metrics.accuracy_from_logits(a, y) == pytest.approx(float((an.argmax(1) == yn).mean()))
    assert metrics.agreement_from_logits(a, b) == pytest.approx(float((an.argmax(1) == bn.argmax(1)).mean()))
    assert metrics.agreement_from_logits(a, a) == 1.0
    assert math.isnan(metrics.accuracy_from_logits(a[:0], y[:0]))
    with pytest.raises(ValueError, match="x has 50 examples but y has 49"):
        metrics.accuracy_from_logits(a, y[:49])
    with pytest.raises(ValueError, match="must match"):
        metrics.agreement_from_logits(a, b[:, :3])
