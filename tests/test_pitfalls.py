"""Tests of kdlib.pitfalls (the classic KD mistakes) against independent computations:
each mistake gives exactly the wrong number it should, and the correct loss does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _toy import assert_kd_like_validation, np_kl, np_log_softmax
from _toy import batch64 as batch
from torch import nn

from kdlib import losses as L
from kdlib import pitfalls as P

DTYPE = torch.float64


# --------------------------------------------------------------------------- pitfalls

def test_pitfall_kldiv_mean_divides_by_class_count():
    s, t, y = batch(5, 7, seed=16)
    with pytest.warns(UserWarning, match="batchmean"):
        wrong = P.pitfall_kldiv_mean(s, t, y, lam=0.0, T=3.0)
    assert torch.allclose(wrong, L.kd_loss(s, t, y, lam=0.0, T=3.0) / 7, rtol=1e-12)
    with pytest.warns(UserWarning):
        mixed = P.pitfall_kldiv_mean(s, t, y, lam=0.4, T=3.0)
    ce, soft = L.kd_terms(s, t, y, T=3.0)
    assert torch.allclose(mixed, 0.4 * ce + 0.6 * soft / 7, rtol=1e-12)


def test_pitfall_probs_as_log_probs():
    s, t, y = batch(5, 4, seed=17)
    T = 2.0
    ps, pt = np.exp(np_log_softmax(s.numpy() / T)), np.exp(np_log_softmax(t.numpy() / T))
    want = T * T * float((pt * (np.log(pt) - ps)).sum(1).mean())
    assert float(P.pitfall_probs_as_log_probs(s, t, y, lam=0.0, T=T)) == pytest.approx(want, rel=1e-12)
    # Shows: negative, and not zero when the student equals the teacher.
    same = P.pitfall_probs_as_log_probs(s, s.clone(), y, lam=0.0, T=T)
    assert float(same) < -0.1
    assert abs(float(L.kd_loss(s, s.clone(), y, lam=0.0, T=T))) < 1e-12
    z = s.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(P.pitfall_probs_as_log_probs(z, s, y, lam=0.0, T=T), z)
    assert float(grad.abs().max()) > 1e-3          # not stationary at the teacher


@pytest.mark.parametrize("T", [0.5, 2.0, 8.0])
def test_pitfall_no_T2_is_T2_smaller(T):
    s, t, y = batch(seed=18)
    assert torch.allclose(P.pitfall_no_T2(s, t, y, lam=0.0, T=T),
                          L.kd_loss(s, t, y, lam=0.0, T=T) / T ** 2, rtol=1e-12)
    ce, soft = L.kd_terms(s, t, y, T=T)
    assert torch.allclose(P.pitfall_no_T2(s, t, y, lam=0.6, T=T), 0.6 * ce + 0.4 * soft / T ** 2, rtol=1e-12)


def test_pitfall_kl_swapped():
    s = torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, -2.0]], dtype=DTYPE)
    t = torch.tensor([[1.0, 1.0, 0.0], [3.0, -1.0, 0.5]], dtype=DTYPE)
    y = torch.tensor([0, 1])
    T = 1.5
    swapped = P.pitfall_kl_swapped(s, t, y, lam=0.0, T=T)
    assert float(swapped) == pytest.approx(T * T * np_kl(s.numpy(), t.numpy(), T), rel=1e-12)
    correct = L.kd_loss(s, t, y, lam=0.0, T=T)
    assert abs(float(swapped) - float(correct)) > 0.05
    # Symmetric case (mirror-image pair of distributions): both agree.
    a = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    assert torch.allclose(P.pitfall_kl_swapped(a, a.flip(1), torch.tensor([0]), lam=0.0, T=1.0),
                          L.kd_loss(a, a.flip(1), torch.tensor([0]), lam=0.0, T=1.0))


@pytest.mark.parametrize("start_training", [True, False])
def test_pitfall_teacher_train_mode(start_training):
    torch.manual_seed(19)
    teacher = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Dropout(0.5), nn.BatchNorm1d(32),
                            nn.Linear(32, 3))
    teacher.train(start_training)
    teacher[1].train(not start_training)        # a mixed state, to check it is restored exactly
    modes = [m.training for m in teacher.modules()]
    buffers = [b.clone() for b in teacher.buffers()]
    x = torch.randn(8, 4)
    eval_logits, train_logits = P.pitfall_teacher_train_mode(teacher, x, n=4)
    assert len(train_logits) == 4
    for a, b in zip(train_logits, train_logits[1:]):
        assert not torch.allclose(a, b)           # noisy targets
    assert all(not torch.allclose(a, eval_logits) for a in train_logits)
    teacher.eval()
    with torch.no_grad():
        assert torch.equal(teacher(x), teacher(x)) and torch.equal(teacher(x), eval_logits)
    teacher.train(start_training)
    teacher[1].train(not start_training)
    # Mode and running statistics restored.
    eval_again, _ = P.pitfall_teacher_train_mode(teacher, x, n=1)
    assert [m.training for m in teacher.modules()] == modes
    assert all(torch.equal(a, b) for a, b in zip(teacher.buffers(), buffers))
    assert torch.equal(eval_again, eval_logits)


def test_pitfall_misaligned_cache():
    g = torch.Generator().manual_seed(20)
    n, k, bs = 12, 5, 4
    student = torch.randn(n, k, generator=g, dtype=DTYPE)
    cache = torch.randn(n, k, generator=g, dtype=DTYPE)
    y = torch.randint(0, k, (n,), generator=g)
    kw = dict(lam=0.3, T=2.0)
    perm = torch.randperm(n, generator=g)
    misaligned = 0
    for order in (torch.arange(n), perm):
        for i in range(n // bs):
            idx = order[i * bs:(i + 1) * bs]
            right = L.kd_loss(student[idx], cache[idx], y[idx], **kw)      # look up by example index
            wrong = P.pitfall_misaligned_cache(student[idx], cache, y[idx], i, **kw)
            in_order = torch.equal(idx, torch.arange(i * bs, (i + 1) * bs))
            assert torch.allclose(wrong, right) == in_order                # equal exactly when unshuffled
            misaligned += not in_order
    assert misaligned == n // bs                                           # every shuffled batch differs
    # A shorter last batch uses the nominal batch size for its offset.
    idx = torch.arange(8, 11)
    wrong = P.pitfall_misaligned_cache(student[idx], cache, y[idx], 2, batch_size=4, **kw)
    assert torch.allclose(wrong, L.kd_loss(student[idx], cache[idx], y[idx], **kw))
    with pytest.raises(ValueError, match="batch_idx"):
        P.pitfall_misaligned_cache(student[:4], cache, y[:4], 3, **kw)


# --------------------------------------------------------------------------- validation

KD_LIKE = [P.pitfall_kldiv_mean, P.pitfall_probs_as_log_probs, P.pitfall_no_T2, P.pitfall_kl_swapped]


@pytest.mark.filterwarnings("ignore:reduction")
@pytest.mark.parametrize("fn", KD_LIKE, ids=lambda f: f.__name__)
def test_kd_like_validation(fn):
    assert_kd_like_validation(fn)


def test_other_validation():
    s, t, y = batch(4, 3, seed=22)
    with pytest.raises(ValueError, match="n"):
        P.pitfall_teacher_train_mode(nn.Linear(3, 3), s.float(), n=0)
    with pytest.raises(TypeError, match="teacher"):
        P.pitfall_teacher_train_mode("not a model", s, n=1)
    with pytest.raises(ValueError, match="cached_teacher_logits"):
        P.pitfall_misaligned_cache(s, torch.zeros(8, 5, dtype=DTYPE), y, 0, lam=0.5, T=1.0)
    with pytest.raises(ValueError, match="batch_idx"):
        P.pitfall_misaligned_cache(s, t, y, -1, lam=0.5, T=1.0)


def test_one_naming_scheme():
    """Every public function of kdlib.pitfalls is a ``pitfall_*`` mistake with a full docstring."""
    for name in P.__all__:
        fn = getattr(P, name)
        assert name.startswith("pitfall_") and callable(fn)
        assert "Parameters" in fn.__doc__ and "Returns" in fn.__doc__, name
