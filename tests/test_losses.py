"""Tests of kdlib.losses (the correct KD loss and its conventions) against independent
computations (NumPy, autograd, algebra)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _toy import assert_kd_like_validation, np_kl, np_log_softmax
from _toy import batch64 as batch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from kdlib import losses as L

DTYPE = torch.float64


# --------------------------------------------------------------------------- independent references

def np_ce(s: np.ndarray, y: np.ndarray) -> float:
    return float(-np_log_softmax(s)[np.arange(len(y)), y].mean())


def np_kd(s, t, y, lam, T) -> float:
    return lam * np_ce(s, y) + (1 - lam) * T * T * np_kl(t, s, T)


@st.composite
def kd_cases(draw):
    n = draw(st.integers(1, 8))
    k = draw(st.integers(2, 12))
    logits = hnp.arrays(np.float64, (n, k), elements=st.floats(-50, 50, allow_nan=False))
    s, t = draw(logits), draw(logits)
    y = draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    T = draw(st.floats(0.05, 100))
    lam = draw(st.floats(0, 1))
    return s, t, y, T, lam


# --------------------------------------------------------------------------- kd_loss

@settings(max_examples=100, deadline=None, database=None)  # no example database in the repo
@given(kd_cases())
def test_kd_loss_matches_numpy(case):
    s, t, y, T, lam = case
    got = L.kd_loss(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(y), lam=lam, T=T)
    assert float(got) == pytest.approx(np_kd(s, t, y, lam, T), rel=1e-9, abs=1e-9)
    ce, soft = L.kd_terms(torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(y), T=T)
    assert float(ce) == pytest.approx(np_ce(s, y), rel=1e-9, abs=1e-12)
    assert float(soft) == pytest.approx(T * T * np_kl(t, s, T), rel=1e-9, abs=1e-9)
    assert float(lam * ce + (1 - lam) * soft) == pytest.approx(float(got), rel=1e-12, abs=1e-12)


def test_kd_loss_float32_close_to_numpy():
    s, t, y = batch(8, 10, seed=1)
    want = np_kd(s.numpy(), t.numpy(), y.numpy(), 0.3, 4.0)
    got = L.kd_loss(s.float(), t.float(), y, lam=0.3, T=4.0)
    assert got.dtype == torch.float32
    assert float(got) == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("T", [0.05, 100.0])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_kd_loss_finite_for_extreme_logits(T, dtype):
    g = torch.Generator().manual_seed(2)
    s = (torch.randint(0, 2, (5, 7), generator=g) * 2e3 - 1e3).to(dtype).requires_grad_(True)
    t = torch.randint(0, 2, (5, 7), generator=g).to(dtype) * -2e3 + 1e3
    y = torch.randint(0, 7, (5,), generator=g)
    loss = L.kd_loss(s, t, y, lam=0.5, T=T)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(s.grad).all()
    ce, soft = L.kd_terms(s, t, y, T=T)
    assert torch.isfinite(ce) and torch.isfinite(soft) and float(soft.detach()) >= 0


def test_kd_loss_gradcheck_wrt_student():
    s, t, y = batch(4, 6, seed=3)
    s.requires_grad_(True)
    for lam, T in [(0.0, 1.0), (0.4, 4.0), (0.9, 0.5)]:
        assert torch.autograd.gradcheck(lambda z, lam=lam, T=T: L.kd_loss(z, t, y, lam=lam, T=T), (s,))


def test_teacher_logits_are_detached():
    s, t, y = batch(seed=4)
    t.requires_grad_(True)
    s.requires_grad_(True)
    L.kd_loss(s, t, y, lam=0.2, T=3.0).backward()
    assert t.grad is None and s.grad is not None


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_lam_endpoints(T):
    s, t, y = batch(seed=5)
    assert torch.equal(L.kd_loss(s, t, y, lam=1.0, T=T), F.cross_entropy(s, y))
    kl = F.kl_div(F.log_softmax(s / T, 1), F.softmax(t / T, 1), reduction="batchmean")
    assert torch.allclose(L.kd_loss(s, t, y, lam=0.0, T=T), T ** 2 * kl, rtol=1e-12, atol=0)


def test_soft_term_is_zero_when_student_equals_teacher():
    s, _, y = batch(seed=6)
    _, soft = L.kd_terms(s, s.clone(), y, T=2.0)
    assert abs(float(soft)) < 1e-12


# --------------------------------------------------------------------------- soft_targets

def test_soft_targets_sum_to_one_and_shape():
    z = torch.randn(3, 4, 7, generator=torch.Generator().manual_seed(7), dtype=DTYPE)
    for T in (0.1, 1.0, 10.0):
        p = L.soft_targets(z, T)
        assert p.shape == z.shape
        assert torch.allclose(p.sum(-1), torch.ones(3, 4, dtype=DTYPE), atol=1e-12)
        assert torch.allclose(p, torch.from_numpy(np.exp(np_log_softmax(z.numpy() / T))), atol=1e-14)


def test_soft_targets_temperature_limits():
    z = torch.tensor([[3.0, 1.0, 0.2, -1.0, 2.5]], dtype=DTYPE)
    temps = [0.05, 0.2, 0.5, 1, 2, 4, 10, 100, 1000]
    ent = [float(-(p * p.log()).sum()) for p in (L.soft_targets(z, T) for T in temps)]
    assert all(a < b for a, b in zip(ent, ent[1:]))                 # entropy rises with T
    assert ent[-1] == pytest.approx(np.log(5), rel=1e-5)              # ... towards log K
    assert float((L.soft_targets(z, 1000) - 1 / 5).abs().max()) < 1e-3
    assert torch.allclose(L.soft_targets(z, 0.01), F.one_hot(z.argmax(-1), 5).to(DTYPE), atol=1e-20)


# --------------------------------------------------------------------------- T² argument

def test_soft_term_gradient_scaling_with_T():
    s, t, _ = batch(4, 10, seed=8, scale=1.0)
    n, k = s.shape

    def g(T, sc):
        return L.soft_term_grad_norm(s, t, T, scale_T2=sc)

    # Exact: the T²-scaled gradient is T² times the unscaled one.
    for T in (0.3, 1.0, 4.0, 8.0, 100.0):
        assert g(T, True) == pytest.approx(T ** 2 * g(T, False), rel=1e-12)
    # Between T=4 and T=8: ~constant with T², ~1/T² (ratio ~4) without.
    r_with, r_without = g(4, True) / g(8, True), g(4, False) / g(8, False)
    assert abs(r_with - 1) < 0.1
    assert 3.6 < r_without < 4.4
    # Asymptotics. softmax(z/T)_k = 1/K + u_k/(K T) + (u_k² - mean u²)/(2 K T²) + O(T⁻³),
    # u = z - mean(z), so the T²-scaled gradient T (p_s - p_t) / N = (A + B/T) / N + O(T⁻²) and
    # its norm = |A|/N + <A, B>/(|A| N T) + O(T⁻²).
    us, ut = s - s.mean(1, keepdim=True), t - t.mean(1, keepdim=True)
    A = (us - ut) / k
    B = ((us ** 2 - (us ** 2).mean(1, keepdim=True)) - (ut ** 2 - (ut ** 2).mean(1, keepdim=True))) / (2 * k)
    limit = float(A.norm()) / n
    slope = float((A * B).sum()) / (float(A.norm()) * n)
    for T in (100.0, 1000.0):
        assert (g(T, True) - limit) * T == pytest.approx(slope, rel=3 / T)
        assert g(T, False) * T ** 2 == pytest.approx(limit, rel=1 / T)
    assert g(1e4, True) == pytest.approx(limit, rel=1e-3)


def test_soft_term_grad_norm_matches_closed_form():
    s, t, _ = batch(5, 4, seed=9)
    T = 3.0
    closed = T * (F.softmax(s / T, 1) - F.softmax(t / T, 1)) / s.shape[0]
    assert L.soft_term_grad_norm(s, t, T) == pytest.approx(float(closed.norm()), rel=1e-12)
    assert not s.requires_grad   # inputs untouched


# --------------------------------------------------------------------------- conventions

def test_to_alpha_and_back():
    assert L.to_alpha(0.3) == pytest.approx(0.7)
    assert L.to_alpha(0.3, "alpha-on-hard") == pytest.approx(0.3)
    assert L.to_alpha(0.3, "two-weights") == pytest.approx((0.7, 0.3))
    for conv in L.CONVENTIONS:
        assert L.from_alpha(L.to_alpha(0.25, conv), conv) == pytest.approx(0.25)
    assert L.from_alpha((0.5, 1.5), "two-weights") == pytest.approx(0.75)
    # Alpha-on-soft weighting of the same two terms gives the same loss.
    s, t, y = batch(seed=10)
    ce, soft = L.kd_terms(s, t, y, T=2.0)
    alpha = L.to_alpha(0.4)
    assert torch.allclose(alpha * soft + (1 - alpha) * ce, L.kd_loss(s, t, y, lam=0.4, T=2.0))
    with pytest.raises(ValueError, match="convention"):
        L.to_alpha(0.5, "beta")
    with pytest.raises(ValueError, match="alpha"):
        L.from_alpha(1.5)
    with pytest.raises(ValueError, match="alpha"):
        L.from_alpha(0.5, "two-weights")


# --------------------------------------------------------------------------- _kd_loss (unchecked)

@settings(max_examples=50, deadline=None, database=None)
@given(kd_cases())
def test_unchecked_kd_loss_equals_kd_loss(case):
    s, t, y, T, lam = case
    s, t, y = torch.from_numpy(s), torch.from_numpy(t), torch.from_numpy(y)
    assert torch.equal(L._kd_loss(s, t, y, lam, T), L.kd_loss(s, t, y, lam=lam, T=T))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unchecked_kd_loss_same_value_and_gradient(dtype):
    s, t, y = batch(16, 10, seed=23)
    s, t = s.to(dtype), t.to(dtype)
    z1, z2 = s.clone().requires_grad_(True), s.clone().requires_grad_(True)
    t_live = t.clone().requires_grad_(True)
    a = L._kd_loss(z1, t_live, y, 0.3, 4.0)
    b = L.kd_loss(z2, t, y, lam=0.3, T=4.0)
    assert torch.equal(a, b)
    a.backward()
    b.backward()
    assert torch.equal(z1.grad, z2.grad)
    assert t_live.grad is None                      # the teacher's logits are detached here too
    # endpoints: lam = 1 is plain cross-entropy
    assert torch.equal(L._kd_loss(s, t, y, 1.0, 2.0), F.cross_entropy(s, y))


def test_effective_T_and_same_setting():
    assert L.effective_T(0.5, 4.0) == 4.0
    assert L.effective_T(L.HARD_ONLY_LAM, 4.0) is None
    assert L.same_setting(1.0, 2.0, 1.0, 8.0)          # λ = 1 ignores T
    assert not L.same_setting(0.5, 2.0, 0.5, 8.0)
    assert not L.same_setting(0.5, 2.0, 0.9, 2.0)
    s, t, y = batch(seed=24)
    assert torch.equal(L.kd_loss(s, t, y, lam=1.0, T=2.0), L.kd_loss(s, t, y, lam=1.0, T=8.0))
    with pytest.raises(ValueError, match="lam"):
        L.effective_T(1.5, 2.0)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("fn", [L.kd_loss], ids=lambda f: f.__name__)
def test_kd_like_validation(fn):
    assert_kd_like_validation(fn)


def test_other_validation():
    s, t, y = batch(4, 3, seed=22)
    with pytest.raises(ValueError, match="T"):
        L.kd_terms(s, t, y, T=0.0)
    with pytest.raises(ValueError, match="T"):
        L.soft_targets(s, 0)
    with pytest.raises(ValueError, match="T"):
        L.soft_term_grad_norm(s, t, -2.0)
    with pytest.raises(ValueError, match="student_logits and teacher_logits"):
        L.soft_term_grad_norm(s, t[:2], 1.0)
    with pytest.raises(TypeError, match="student_logits"):
        L.kd_loss(s.numpy(), t, y, lam=0.5, T=1.0)


# --------------------------------- feature (hint) losses
def test_hint_loss_is_mse_and_zero_on_identical_features():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    assert float(L.hint_loss(t.clone(), t)) == 0.0
    np.testing.assert_allclose(float(L.hint_loss(s, t)), ((s - t) ** 2).mean().item(), rtol=1e-6)
    # feature maps are flattened per example
    np.testing.assert_allclose(float(L.hint_loss(s.reshape(5, 2, 4), t.reshape(5, 2, 2, 2))),
                               float(L.hint_loss(s, t)), rtol=1e-6)


def test_cosine_feature_loss_against_numpy():
    g = torch.Generator().manual_seed(1)
    s, t = torch.randn(6, 4, generator=g), torch.randn(6, 4, generator=g)
    a, b = s.numpy(), t.numpy()
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    np.testing.assert_allclose(float(L.cosine_feature_loss(s, t)), (1 - cos).mean(), rtol=1e-5)
    assert float(L.cosine_feature_loss(3 * t, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(L.cosine_feature_loss(-t, t)) == pytest.approx(2.0, abs=1e-6)
    # equals PyTorch's CosineEmbeddingLoss with target 1 (the tutorial's choice)
    ref = nn.CosineEmbeddingLoss()(s, t, torch.ones(6))
    np.testing.assert_allclose(float(L.cosine_feature_loss(s, t)), float(ref), rtol=1e-5)


def test_feature_losses_gradients_reach_only_the_student():
    s = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    t = torch.randn(3, 5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: L.hint_loss(a, t), (s,))
    assert torch.autograd.gradcheck(lambda a: L.cosine_feature_loss(a, t), (s,))
    L.hint_loss(s, t).backward()
    assert t.grad is None


def test_feature_losses_name_mismatched_shapes():
    with pytest.raises(ValueError, match="student_features and teacher_features"):
        L.hint_loss(torch.zeros(4, 64), torch.zeros(4, 128))
    with pytest.raises(TypeError, match="teacher_features"):
        L.cosine_feature_loss(torch.zeros(4, 3), [[0.0] * 3] * 4)


# --------------------------------- Decoupled KD parts and the control targets


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


def dkd_batch(seed=0, n=16, k=10, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    s = torch.randn(n, k, generator=g, dtype=DTYPE) * scale
    t = torch.randn(n, k, generator=g, dtype=DTYPE) * scale
    y = torch.randint(0, k, (n,), generator=g)
    return s, t, y


@pytest.mark.parametrize("T", [0.5, 1.0, 4.0])
def test_dkd_parts_match_numpy(T):
    s, t, y = dkd_batch()
    tckd, nckd, pt = L.dkd_parts(s, t, y, T=T)
    ref = np_dkd(s.numpy(), t.numpy(), y.numpy(), T)
    for got, want in zip((tckd, nckd, pt), ref):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-10, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), T=st.floats(0.3, 20.0), k=st.integers(2, 12),
       scale=st.floats(0.1, 8.0))
def test_dkd_identity_kl_equals_tckd_plus_weighted_nckd(seed, T, k, scale):
    s, t, y = dkd_batch(seed, n=8, k=k, scale=scale)
    tckd, nckd, pt = L.dkd_parts(s, t, y, T=T)
    lp, lq = F.log_softmax(t / T, 1), F.log_softmax(s / T, 1)
    kl = (lp.exp() * (lp - lq)).sum(1)
    torch.testing.assert_close(tckd + (1 - pt) * nckd, kl, rtol=1e-9, atol=1e-10)
    assert bool((tckd >= -1e-12).all()) and bool((nckd >= -1e-12).all())
    if k == 2:
        assert float(nckd.abs().max()) < 1e-12


def test_dkd_parts_finite_for_extreme_logits_and_gradients_flow():
    s, t, y = dkd_batch(scale=300.0)
    s.requires_grad_(True)
    tckd, nckd, _ = L.dkd_parts(s, t, y, T=1.0)
    assert torch.isfinite(tckd).all() and torch.isfinite(nckd).all()
    (tckd + nckd).sum().backward()
    assert torch.isfinite(s.grad).all()


def test_dkd_parts_gradcheck():
    s, t, y = dkd_batch(n=4, k=5)
    s.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: torch.stack(L.dkd_parts(z, t, y, T=2.0)[:2]), (s,))


def test_kd_loss_from_probs_equals_kd_loss_with_teacher_soft_targets():
    s, t, y = dkd_batch()
    for lam, T in [(0.0, 1.0), (0.5, 4.0), (0.9, 8.0)]:
        got = L.kd_loss_from_probs(s, L.soft_targets(t, T), y, lam=lam, T=T)
        torch.testing.assert_close(got, L.kd_loss(s, t, y, lam=lam, T=T))


def test_label_smoothing_as_targets_has_cross_entropy_gradient():
    s, _, y = dkd_batch()
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
    _, t, y = dkd_batch(seed, n=20, k=k)
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
    _, t, y = dkd_batch(n=400, k=10)
    p = L.soft_targets(t, 2.0)
    q = L.shuffle_wrong(p, y, seed=1)
    moved = (q != p).any(1).float().mean()
    assert moved > 0.99   # with 9 wrong classes, a row left unchanged has chance 1/9!


def test_uniform_wrong():
    _, t, y = dkd_batch(n=30)
    p = L.soft_targets(t, 1.0)
    q = L.uniform_wrong(p, y)
    rows = torch.arange(len(y))
    assert torch.equal(q[rows, y], p[rows, y])
    torch.testing.assert_close(q.sum(1), torch.ones(len(y), dtype=DTYPE))
    wrong = q.masked_select(F.one_hot(y, 10) == 0).view(len(y), 9)
    torch.testing.assert_close(wrong, ((1 - p[rows, y]) / 9).unsqueeze(1).expand(-1, 9))


def test_shuffled_and_uniform_teachers_change_only_the_non_target_part():
    _, t, y = dkd_batch(n=50)
    T = 4.0
    p = L.soft_targets(t, T)
    for q in (L.shuffle_wrong(p, y, seed=0), L.uniform_wrong(p, y)):
        tckd, nckd, pt = L.dkd_parts(t, T * q.log(), y, T=T)   # "teacher" q, "student" the real teacher
        assert float(tckd.abs().max()) < 1e-10
        assert float(nckd.mean()) > 0.01
        torch.testing.assert_close(pt, p[torch.arange(len(y)), y])


def test_bad_arguments_name_the_argument():
    s, t, y = dkd_batch()
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
