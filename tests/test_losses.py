"""Tests of kdlib.losses against independent computations (NumPy, autograd, algebra)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch import nn

from kdlib import losses as L

DTYPE = torch.float64


# --------------------------------------------------------------------------- independent references

def np_log_softmax(z: np.ndarray) -> np.ndarray:
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def np_kl(p_logits: np.ndarray, q_logits: np.ndarray, T: float) -> float:
    """KL(softmax(p/T) || softmax(q/T)), summed over classes, mean over rows."""
    lp, lq = np_log_softmax(p_logits / T), np_log_softmax(q_logits / T)
    return float((np.exp(lp) * (lp - lq)).sum(axis=-1).mean())


def np_ce(s: np.ndarray, y: np.ndarray) -> float:
    return float(-np_log_softmax(s)[np.arange(len(y)), y].mean())


def np_kd(s, t, y, lam, T) -> float:
    return lam * np_ce(s, y) + (1 - lam) * T * T * np_kl(t, s, T)


def batch(n=6, k=5, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    s = scale * torch.randn(n, k, generator=g, dtype=DTYPE)
    t = scale * torch.randn(n, k, generator=g, dtype=DTYPE)
    y = torch.randint(0, k, (n,), generator=g)
    return s, t, y


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


# --------------------------------------------------------------------------- the article's formulas

def np_bce_article(p: np.ndarray, y: np.ndarray, eps=1e-12) -> float:
    onehot = np.eye(p.shape[1])[y]
    p = np.clip(p, eps, 1 - eps)
    return float(-(onehot * np.log(p) + (1 - onehot) * np.log(1 - p)).sum(axis=1).mean())


def test_article_ce_matches_numpy_bce():
    s, t, y = batch(7, 4, seed=11)
    p = F.softmax(t, 1)
    assert float(L.article_ce(p, y)) == pytest.approx(np_bce_article(p.numpy(), y.numpy()), rel=1e-12)
    # Same thing written with torch's own BCE, summed over classes, averaged over N.
    bce = F.binary_cross_entropy(p, F.one_hot(y, 4).to(DTYPE), reduction="sum") / len(y)
    assert float(L.article_ce(p, y)) == pytest.approx(float(bce), rel=1e-10)


def test_article_adv_is_student_cross_entropy():
    s, _, y = batch(7, 4, seed=12)
    ps = F.softmax(s, 1)
    assert torch.allclose(L.article_adv(ps, y), F.cross_entropy(ps.log(), y), rtol=1e-12)
    assert torch.allclose(L.article_adv(ps, y), F.cross_entropy(s, y), rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_article_formulas_clamp_log_zero(dtype):
    onehot_probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    y_right, y_wrong = torch.tensor([0, 1]), torch.tensor([2, 2])
    for fn in (L.article_ce, L.article_adv):
        assert torch.isfinite(fn(onehot_probs, y_right)) and torch.isfinite(fn(onehot_probs, y_wrong))
    assert float(L.article_adv(onehot_probs, y_right)) == pytest.approx(0.0, abs=1e-6)
    eps = 1e-12 if dtype == torch.float64 else float(torch.finfo(torch.float32).eps)
    assert float(L.article_adv(onehot_probs, y_wrong)) == pytest.approx(-np.log(eps), rel=1e-5)


def test_article_total_combines_formulas():
    s, t, y = batch(seed=13)
    pt, ps = F.softmax(t, 1), F.softmax(s, 1)
    want = 0.3 * L.article_ce(pt, y) + 0.7 * L.article_adv(ps, y)
    assert torch.allclose(L.article_total(pt, ps, y, lam=0.3), want, rtol=1e-14)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 1.0])
def test_article_gradient_is_rescaled_cross_entropy(lam):
    """Defect 3: d L / d z_s = (1 - λ) d CE / d z_s, and L_ce has no path to the student."""
    s, t, y = batch(6, 5, seed=14)
    s.requires_grad_(True)
    teacher = nn.Linear(5, 5).double()          # a teacher with parameters of its own
    pt = F.softmax(teacher(t), 1).detach()
    (g_total,) = torch.autograd.grad(L.article_total(pt, F.softmax(s, 1), y, lam=lam), s)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(s, y), s)
    assert torch.allclose(g_total, (1 - lam) * g_ce, rtol=1e-10, atol=1e-14)
    ce = L.article_ce(pt, y)
    assert not ce.requires_grad                  # no gradient reaches the student at all
    # Even with a live teacher graph, the student's gradient from L_ce is None.
    ce_live = L.article_ce(F.softmax(teacher(t), 1), y)
    assert torch.autograd.grad(ce_live, s, allow_unused=True) == (None,)


# --------------------------------------------------------------------------- the article's snippet

def test_snippet_is_verbatim_from_article():
    assert "loss = (1 - lambda) * loss + lambda * adv_loss.mean()" in L.ARTICLE_SNIPPET
    assert "# 定义大型模型和小型模型" in L.ARTICLE_SNIPPET
    article = Path(__file__).resolve().parents[2] / "shared" / "source-article" / "article.zh.md"
    if not article.exists():
        pytest.skip(f"source article not found at {article}")
    block = re.search(r"```python\n(.*?)```", article.read_text(encoding="utf-8"), re.S).group(1)
    assert L.ARTICLE_SNIPPET == block


def test_snippet_syntax_errors():
    lines = L.ARTICLE_SNIPPET.splitlines()
    err = L.snippet_syntax_error()
    assert isinstance(err, SyntaxError) and isinstance(err.lineno, int)
    # First reported: the empty class body (only a comment under `class TeacherModel`).
    assert err.text.strip() == lines[err.lineno - 1].strip() == "class StudentModel(nn.Module):"
    assert "indented block" in err.msg and "class" in err.msg
    # With `pass` bodies on the same lines, `lambda` is the next error.
    err2 = L.article_snippet_fixed_syntax()
    assert isinstance(err2, SyntaxError)
    assert "lambda" in err2.text and err2.text.strip() == lines[err2.lineno - 1].strip()
    assert err2.lineno > err.lineno
    # Those two are the only syntax defects: fixing both compiles.
    fixed = L.ARTICLE_SNIPPET.replace("    # ...\n", "    pass  # ...\n").replace("lambda", "lam")
    assert L.snippet_syntax_error(fixed) is None


@pytest.mark.parametrize("lam", [0.0, 0.25, 1.0])
def test_article_snippet_loss_terms_are_equal(lam):
    s, _, y = batch(seed=15)
    total, loss, adv = L.article_snippet_loss(s, y, lam, return_terms=True)
    ce = F.cross_entropy(s, y)
    assert torch.allclose(loss, adv, rtol=1e-14) and torch.allclose(loss, ce, rtol=1e-14)
    assert torch.allclose(total, ce, rtol=1e-14)           # λ changes nothing
    assert torch.allclose(L.article_snippet_loss(s, y, lam), total)


# --------------------------------------------------------------------------- pitfalls

def test_pitfall_kldiv_mean_divides_by_class_count():
    s, t, y = batch(5, 7, seed=16)
    with pytest.warns(UserWarning, match="batchmean"):
        wrong = L.pitfall_kldiv_mean(s, t, y, lam=0.0, T=3.0)
    assert torch.allclose(wrong, L.kd_loss(s, t, y, lam=0.0, T=3.0) / 7, rtol=1e-12)
    with pytest.warns(UserWarning):
        mixed = L.pitfall_kldiv_mean(s, t, y, lam=0.4, T=3.0)
    ce, soft = L.kd_terms(s, t, y, T=3.0)
    assert torch.allclose(mixed, 0.4 * ce + 0.6 * soft / 7, rtol=1e-12)


def test_pitfall_probs_as_log_probs():
    s, t, y = batch(5, 4, seed=17)
    T = 2.0
    ps, pt = np.exp(np_log_softmax(s.numpy() / T)), np.exp(np_log_softmax(t.numpy() / T))
    want = T * T * float((pt * (np.log(pt) - ps)).sum(1).mean())
    assert float(L.pitfall_probs_as_log_probs(s, t, y, lam=0.0, T=T)) == pytest.approx(want, rel=1e-12)
    # Shows: negative, and not zero when the student equals the teacher.
    same = L.pitfall_probs_as_log_probs(s, s.clone(), y, lam=0.0, T=T)
    assert float(same) < -0.1
    assert abs(float(L.kd_loss(s, s.clone(), y, lam=0.0, T=T))) < 1e-12
    z = s.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(L.pitfall_probs_as_log_probs(z, s, y, lam=0.0, T=T), z)
    assert float(grad.abs().max()) > 1e-3          # not stationary at the teacher


@pytest.mark.parametrize("T", [0.5, 2.0, 8.0])
def test_pitfall_no_T2_is_T2_smaller(T):
    s, t, y = batch(seed=18)
    assert torch.allclose(L.pitfall_no_T2(s, t, y, lam=0.0, T=T),
                          L.kd_loss(s, t, y, lam=0.0, T=T) / T ** 2, rtol=1e-12)
    ce, soft = L.kd_terms(s, t, y, T=T)
    assert torch.allclose(L.pitfall_no_T2(s, t, y, lam=0.6, T=T), 0.6 * ce + 0.4 * soft / T ** 2, rtol=1e-12)


def test_pitfall_kl_swapped():
    s = torch.tensor([[4.0, 0.0, 0.0], [0.0, 1.0, -2.0]], dtype=DTYPE)
    t = torch.tensor([[1.0, 1.0, 0.0], [3.0, -1.0, 0.5]], dtype=DTYPE)
    y = torch.tensor([0, 1])
    T = 1.5
    swapped = L.pitfall_kl_swapped(s, t, y, lam=0.0, T=T)
    assert float(swapped) == pytest.approx(T * T * np_kl(s.numpy(), t.numpy(), T), rel=1e-12)
    correct = L.kd_loss(s, t, y, lam=0.0, T=T)
    assert abs(float(swapped) - float(correct)) > 0.05
    # Symmetric case (mirror-image pair of distributions): both agree.
    a = torch.tensor([[1.0, 0.0]], dtype=DTYPE)
    assert torch.allclose(L.pitfall_kl_swapped(a, a.flip(1), torch.tensor([0]), lam=0.0, T=1.0),
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
    eval_logits, train_logits = L.pitfall_teacher_train_mode(teacher, x, n=4)
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
    eval_again, _ = L.pitfall_teacher_train_mode(teacher, x, n=1)
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
            wrong = L.pitfall_misaligned_cache(student[idx], cache, y[idx], i, **kw)
            in_order = torch.equal(idx, torch.arange(i * bs, (i + 1) * bs))
            assert torch.allclose(wrong, right) == in_order                # equal exactly when unshuffled
            misaligned += not in_order
    assert misaligned == n // bs                                           # every shuffled batch differs
    # A shorter last batch uses the nominal batch size for its offset.
    idx = torch.arange(8, 11)
    wrong = L.pitfall_misaligned_cache(student[idx], cache, y[idx], 2, batch_size=4, **kw)
    assert torch.allclose(wrong, L.kd_loss(student[idx], cache[idx], y[idx], **kw))
    with pytest.raises(ValueError, match="batch_idx"):
        L.pitfall_misaligned_cache(student[:4], cache, y[:4], 3, **kw)


# --------------------------------------------------------------------------- validation

KD_LIKE = [L.kd_loss, L.pitfall_kldiv_mean, L.pitfall_probs_as_log_probs, L.pitfall_no_T2,
           L.pitfall_kl_swapped]


@pytest.mark.filterwarnings("ignore:reduction")
@pytest.mark.parametrize("fn", KD_LIKE, ids=lambda f: f.__name__)
def test_kd_like_validation(fn):
    s, t, y = batch(4, 3, seed=21)
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        fn(s, t, y, lam=1.5, T=1.0)
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        fn(s, t, y, lam=-0.1, T=1.0)
    for bad_T in (0, -1.0):
        with pytest.raises(ValueError, match=r"T.*> 0"):
            fn(s, t, y, lam=0.5, T=bad_T)
    with pytest.raises(ValueError, match=r"student_logits and teacher_logits.*\(4, 3\).*\(4, 5\)"):
        fn(s, torch.zeros(4, 5, dtype=DTYPE), y, lam=0.5, T=1.0)
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


def test_other_validation():
    s, t, y = batch(4, 3, seed=22)
    p = F.softmax(s, 1)
    with pytest.raises(ValueError, match="T"):
        L.kd_terms(s, t, y, T=0.0)
    with pytest.raises(ValueError, match="T"):
        L.soft_targets(s, 0)
    with pytest.raises(ValueError, match="T"):
        L.soft_term_grad_norm(s, t, -2.0)
    with pytest.raises(ValueError, match="student_logits and teacher_logits"):
        L.soft_term_grad_norm(s, t[:2], 1.0)
    with pytest.raises(ValueError, match=r"teacher_probs.*\[0, 1\]"):
        L.article_ce(s, y)                              # logits, not probabilities
    with pytest.raises(ValueError, match=r"student_probs.*2-D"):
        L.article_adv(p[0], y)
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\]"):
        L.article_adv(p, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        L.article_total(p, p, y, lam=2)
    with pytest.raises(ValueError, match="teacher_probs and student_probs"):
        L.article_total(p, p[:2], y, lam=0.5)
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        L.article_snippet_loss(s, y, 1.1)
    with pytest.raises(ValueError, match="labels.*length 4"):
        L.article_snippet_loss(s, y[:2], 0.5)
    with pytest.raises(ValueError, match="n"):
        L.pitfall_teacher_train_mode(nn.Linear(3, 3), s.float(), n=0)
    with pytest.raises(TypeError, match="teacher"):
        L.pitfall_teacher_train_mode("not a model", s, n=1)
    with pytest.raises(ValueError, match="cached_teacher_logits"):
        L.pitfall_misaligned_cache(s, torch.zeros(8, 5, dtype=DTYPE), y, 0, lam=0.5, T=1.0)
    with pytest.raises(ValueError, match="batch_idx"):
        L.pitfall_misaligned_cache(s, t, y, -1, lam=0.5, T=1.0)
    with pytest.raises(TypeError, match="student_logits"):
        L.kd_loss(s.numpy(), t, y, lam=0.5, T=1.0)


# ---- added for notebook 10: feature (hint) losses
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
