"""Tests of kdlib.losses' notebook-06 additions (decoupled KD parts, control targets)
against independent NumPy computations and their invariants."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from kdlib import losses as L

DTYPE = torch.float64


def np_softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_dkd(s, t, y, T):
    """Zhao et al. (2022) written out with plain NumPy loops."""
    tckd, nckd, pts = [], [], []
    for i in range(len(y)):
        p, q = np_softmax(t[i] / T), np_softmax(s[i] / T)
        pt, qt = p[y[i]], q[y[i]]
        tckd.append(pt * np.log(pt / qt) + (1 - pt) * np.log((1 - pt) / (1 - qt)))
        keep = np.arange(len(p)) != y[i]
        ph, qh = p[keep] / p[keep].sum(), q[keep] / q[keep].sum()
        nckd.append(float((ph * np.log(ph / qh)).sum()))
        pts.append(pt)
    return np.array(tckd), np.array(nckd), np.array(pts)


def batch(seed=0, n=16, k=10, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, k, generator=g, dtype=DTYPE) * scale
    t = torch.randn(n, k, generator=g, dtype=DTYPE) * scale
    y = torch.randint(0, k, (n,), generator=g)
    return s, t, y


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_dkd_parts_match_numpy(T):
    s, t, y = batch()
    tckd, nckd, pt = L.dkd_parts(s, t, y, T=T)
    ref = np_dkd(s.numpy(), t.numpy(), y.numpy(), T)
    for got, want in zip((tckd, nckd, pt), ref):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), T=st.floats(0.3, 20.0), k=st.integers(2, 12),
       scale=st.floats(0.1, 8.0))
def test_dkd_identity_kl_equals_tckd_plus_weighted_nckd(seed, T, k, scale):
    s, t, y = batch(seed, n=8, k=k, scale=scale)
    tckd, nckd, pt = L.dkd_parts(s, t, y, T=T)
    lp, lq = F.log_softmax(t / T, 1), F.log_softmax(s / T, 1)
    kl = (lp.exp() * (lp - lq)).sum(1)
    torch.testing.assert_close(tckd + (1 - pt) * nckd, kl, rtol=1e-9, atol=1e-10)
    assert bool((tckd >= -1e-12).all()) and bool((nckd >= -1e-12).all())
    if k == 2:
        assert float(nckd.abs().max()) < 1e-12


def test_dkd_parts_finite_for_extreme_logits_and_gradients_flow():
    s, t, y = batch(scale=300.0)
    s.requires_grad_(True)
    tckd, nckd, _ = L.dkd_parts(s, t, y, T=1.0)
    assert torch.isfinite(tckd).all() and torch.isfinite(nckd).all()
    (tckd + nckd).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_dkd_parts_gradcheck():
    s, t, y = batch(n=4, k=5)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: torch.stack(L.dkd_parts(z, t, y, T=2.0)[:2]), (s,))


def test_kd_loss_from_probs_equals_kd_loss_with_teacher_soft_targets():
    s, t, y = batch()
    for lam, T in [(0.0, 1.0), (0.5, 4.0), (0.9, 8.0)]:
        got = L.kd_loss_from_probs(s, L.soft_targets(t, T), y, lam=lam, T=T)
        torch.testing.assert_close(got, L.kd_loss(s, t, y, lam=lam, T=T))


def test_label_smoothing_as_targets_has_cross_entropy_gradient():
    s, _, y = batch()
    s1, s2 = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    L.kd_loss_from_probs(s1, L.smoothed_labels(y, 10, 0.1).double(), y, lam=0.0, T=1.0).backward()
    F.cross_entropy(s2, y, label_smoothing=0.1).backward()
    torch.testing.assert_close(s1.grad, s2.grad)


def test_smoothed_labels_values():
    q = L.smoothed_labels(torch.tensor([2, 0]), 4, 0.2)
    np.testing.assert_allclose(q.numpy(), [[0.05, 0.05, 0.85, 0.05], [0.85, 0.05, 0.05, 0.05]], atol=1e-7)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(2, 12))
def test_shuffle_wrong_keeps_true_class_and_multiset_of_wrong_probs(seed, k):
    _, t, y = batch(seed, n=20, k=k)
    p = L.soft_targets(t, 2.0)
    q = L.shuffle_wrong(p, y, seed=seed)
    rows = torch.arange(len(y))
    assert torch.equal(q[rows, y], p[rows, y])
    torch.testing.assert_close(q.sum(1), torch.ones(len(y), dtype=DTYPE))
    for i in range(len(y)):
        keep = torch.arange(k) != y[i]
        assert torch.equal(q[i, keep].sort().values, p[i, keep].sort().values)
    assert torch.equal(q, L.shuffle_wrong(p, y, seed=seed))   # seeded


def test_shuffle_wrong_destroys_the_ranking():
    _, t, y = batch(n=400, k=10)
    p = L.soft_targets(t, 2.0)
    q = L.shuffle_wrong(p, y, seed=1)
    moved = (q != p).any(1).float().mean()
    assert moved > 0.99   # with 9 wrong classes, a row left unchanged has chance 1/9!


def test_uniform_wrong():
    _, t, y = batch(n=30)
    p = L.soft_targets(t, 1.0)
    q = L.uniform_wrong(p, y)
    rows = torch.arange(len(y))
    assert torch.equal(q[rows, y], p[rows, y])
    torch.testing.assert_close(q.sum(1), torch.ones(len(y), dtype=DTYPE))
    wrong = q.masked_select(F.one_hot(y, 10) == 0).view(len(y), 9)
    torch.testing.assert_close(wrong, ((1 - p[rows, y]) / 9).unsqueeze(1).expand(-1, 9))


def test_shuffled_and_uniform_teachers_change_only_the_non_target_part():
    _, t, y = batch(n=50)
    T = 4.0
    p = L.soft_targets(t, T)
    for q in (L.shuffle_wrong(p, y, seed=0), L.uniform_wrong(p, y)):
        tckd, nckd, pt = L.dkd_parts(t, T * q.log(), y, T=T)   # "teacher" q, "student" the real teacher
        assert float(tckd.abs().max()) < 1e-10
        assert float(nckd.mean()) > 0.01
        torch.testing.assert_close(pt, p[torch.arange(len(y)), y])


def test_bad_arguments_name_the_argument():
    s, t, y = batch()
    with pytest.raises(ValueError, match="T="):
        L.dkd_parts(s, t, y, T=0.0)
    with pytest.raises(ValueError, match="target_probs"):
        L.kd_loss_from_probs(s, t, y, lam=0.5, T=1.0)   # logits, not probabilities
    with pytest.raises(ValueError, match="labels"):
        L.shuffle_wrong(L.soft_targets(t, 1.0), y[:3])
    with pytest.raises(ValueError, match="eps="):
        L.smoothed_labels(y, 10, 1.5)
    with pytest.raises(ValueError, match="labels"):
        L.smoothed_labels(y, 3, 0.1)
