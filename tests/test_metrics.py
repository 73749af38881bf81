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
    with pytest.raises(ValueError, match=rf"labels must be class indices in \[0, {k - 1}\] \(the confusion "
                                         rf"matrix has {k} classes\)"):
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


# --------------------------------- fidelity, reliability, latency, GEMM peak, Pareto front
def _np_softmax(z, T=1.0):
    z = np.asarray(z, float) / T
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def test_kl_per_example_against_numpy():
    g = torch.Generator().manual_seed(0)
    t, s = torch.randn(50, 7, generator=g) * 3, torch.randn(50, 7, generator=g) * 3
    for T in (1.0, 4.0):
        pt, ps = _np_softmax(t, T), _np_softmax(s, T)
        want = (pt * (np.log(pt) - np.log(ps))).sum(1)
        np.testing.assert_allclose(metrics.kl_per_example(t, s, T=T).numpy(), want, rtol=1e-5,
                                   atol=1e-6)
    assert metrics.kl_per_example(t, t).abs().max() < 1e-6  # identical models: zero
    with pytest.raises(ValueError, match="same N×classes"):
        metrics.kl_per_example(t, s[:, :3])
    with pytest.raises(ValueError, match="T=0"):
        metrics.kl_per_example(t, s, T=0)


def test_fidelity_agreement_and_kl():
    t = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # last row: a tie -> class 0
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0], [3.0, 3.0]])
    f = metrics.fidelity(t, s)
    assert f["agreement"] == pytest.approx(2 / 3) and f["n"] == 3
    pt, ps = _np_softmax(t), _np_softmax(s)
    assert f["kl"] == pytest.approx((pt * np.log(pt / ps)).sum(1).mean(), rel=1e-5)
    one_class = metrics.fidelity(torch.zeros(4, 1), torch.ones(4, 1))
    assert one_class["agreement"] == 1.0 and one_class["kl"] == pytest.approx(0.0, abs=1e-7)


def _np_reliability(p, y, n_bins):
    conf, pred = p.max(1), p.argmax(1)
    count, acc, mc = np.zeros(n_bins), np.full(n_bins, np.nan), np.full(n_bins, np.nan)
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        m = (conf >= lo) & ((conf < hi) if b < n_bins - 1 else (conf <= hi))
        count[b] = m.sum()
        if m.any():
            acc[b], mc[b] = (pred[m] == y[m]).mean(), conf[m].mean()
    ece = np.nansum(count / len(y) * np.abs(acc - mc))
    return count, acc, mc, ece


@pytest.mark.parametrize("n_bins", [1, 5, 15])
def test_reliability_bins_against_a_numpy_loop(n_bins):
    rng = np.random.default_rng(0)
    p = _np_softmax(rng.normal(0, 2, (400, 10)))
    y = rng.integers(0, 10, 400)
    got = metrics.reliability_bins(torch.tensor(p), torch.tensor(y), n_bins=n_bins)
    count, acc, mc, ece = _np_reliability(p, y, n_bins)
    np.testing.assert_array_equal(got["count"], count)
    np.testing.assert_allclose(got["accuracy"], acc, equal_nan=True)
    np.testing.assert_allclose(got["confidence"], mc, equal_nan=True)
    assert got["ece"] == pytest.approx(ece)
    # the existing ece() agrees with the bins for the same number of bins
    assert metrics.ece(torch.tensor(p).float(), torch.tensor(y), n_bins=n_bins) == \
        pytest.approx(ece, abs=1e-5)
    assert got["count"].sum() == 400 and len(got["edges"]) == n_bins + 1


def test_reliability_bins_edge_cases():
    # empty bins are nan, a confidence of exactly 1 goes to the last bin
    p = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.55, 0.45]])
    got = metrics.reliability_bins(p, torch.tensor([0, 0, 0]), n_bins=4)
    assert got["count"].tolist() == [0, 0, 1, 2]
    assert np.isnan(got["accuracy"][0]) and np.isnan(got["confidence"][1])
    assert got["accuracy"][3] == 0.5 and got["ece"] == pytest.approx((0.45 + 2 * 0.5) / 3)
    # ties go to the lowest class, as argmax does
    tie = metrics.reliability_bins(torch.tensor([[0.5, 0.5]]), torch.tensor([0]), n_bins=2)
    assert tie["accuracy"][1] == 1.0
    # a single class: always confident, always right
    single = metrics.reliability_bins(torch.ones(3, 1), torch.zeros(3, dtype=torch.long), n_bins=3)
    assert single["ece"] == 0.0 and single["count"].tolist() == [0, 0, 3]
    with pytest.raises(ValueError, match="probabilities"):
        metrics.reliability_bins(torch.tensor([[3.0, -1.0]]), torch.tensor([0]))
    with pytest.raises(ValueError, match="n_bins=0"):
        metrics.reliability_bins(p, torch.tensor([0, 0, 0]), n_bins=0)


def test_latency_stats_shape_threads_and_mode(linear):
    before = torch.get_num_threads()
    linear.train()
    st = metrics.latency_stats(linear, (2,), batch_size=4, repeats=7, warmup=2, threads=1)
    assert len(st["times"]) == 7 and st["threads"] == 1 and st["batch_size"] == 4
    assert st["min"] <= st["q25"] <= st["median"] <= st["q75"]
    assert st["per_example"] == pytest.approx(st["median"] / 4)
    assert torch.get_num_threads() == before and linear.training
    calls = []
    counting = nn.Sequential(linear)
    counting.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    metrics.latency_stats(counting, (2,), batch_size=3, repeats=4, warmup=2)
    assert calls == [3] * 6  # warm-up passes are run but not timed
    with pytest.raises(ValueError, match="repeats=0"):
        metrics.latency_stats(linear, (2,), repeats=0)


def test_gemm_peak_reports_positive_throughput_and_restores_threads():
    before = torch.get_num_threads()
    g = metrics.gemm_peak(n=64, repeats=3, threads=1)
    assert g["gflops"] > 0 and g["best_gflops"] >= g["gflops"] and g["threads"] == 1 and g["n"] == 64
    assert torch.get_num_threads() == before
    with pytest.raises(TypeError, match="n must be an integer"):
        metrics.gemm_peak(n=1.5)


def test_pareto_front_against_brute_force():
    rng = np.random.default_rng(1)
    cost, score = rng.integers(0, 6, 40).astype(float), rng.integers(0, 6, 40).astype(float)
    front = metrics.pareto_front(cost, score)
    for i in range(40):
        dominated = any(cost[j] <= cost[i] and score[j] >= score[i] and
                        (cost[j] < cost[i] or score[j] > score[i]) for j in range(40))
        assert (i in front) == (not dominated)
    assert list(cost[front]) == sorted(cost[front])
    assert metrics.pareto_front([1, 2, 3], [0.5, 0.9, 0.7]) == [0, 1]
    assert metrics.pareto_front([1, 1], [0.5, 0.5]) == [0, 1]  # exact ties: both stay
    with pytest.raises(ValueError, match="same length"):
        metrics.pareto_front([1, 2], [1])
