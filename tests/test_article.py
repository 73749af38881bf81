"""Tests of kdlib.article (the source article's formulas and snippet, literally) against
independent computations (NumPy, PyTorch's own BCE/CE, autograd)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _toy import batch64 as batch
from torch import nn

from kdlib import article as A

DTYPE = torch.float64


# --------------------------------------------------------------------------- the article's formulas

def np_bce_article(p: np.ndarray, y: np.ndarray, eps=1e-12) -> float:
    onehot = np.eye(p.shape[1])[y]
    p = np.clip(p, eps, 1 - eps)
    return float(-(onehot * np.log(p) + (1 - onehot) * np.log(1 - p)).sum(axis=1).mean())


def test_article_ce_matches_numpy_bce():
    s, t, y = batch(7, 4, seed=11)
    p = F.softmax(t, 1)
    assert float(A.article_ce(p, y)) == pytest.approx(np_bce_article(p.numpy(), y.numpy()), rel=1e-12)
    # Same thing written with torch's own BCE, summed over classes, averaged over N.
    bce = F.binary_cross_entropy(p, F.one_hot(y, 4).to(DTYPE), reduction="sum") / len(y)
    assert float(A.article_ce(p, y)) == pytest.approx(float(bce), rel=1e-10)


def test_article_adv_is_student_cross_entropy():
    s, _, y = batch(7, 4, seed=12)
    ps = F.softmax(s, 1)
    assert torch.allclose(A.article_adv(ps, y), F.cross_entropy(ps.log(), y), rtol=1e-12)
    assert torch.allclose(A.article_adv(ps, y), F.cross_entropy(s, y), rtol=1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_article_formulas_clamp_log_zero(dtype):
    onehot_probs = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    y_right, y_wrong = torch.tensor([0, 1]), torch.tensor([2, 2])
    for fn in (A.article_ce, A.article_adv):
        assert torch.isfinite(fn(onehot_probs, y_right)) and torch.isfinite(fn(onehot_probs, y_wrong))
    assert float(A.article_adv(onehot_probs, y_right)) == pytest.approx(0.0, abs=1e-6)
    eps = 1e-12 if dtype == torch.float64 else float(torch.finfo(torch.float32).eps)
    assert float(A.article_adv(onehot_probs, y_wrong)) == pytest.approx(-np.log(eps), rel=1e-5)


def test_article_total_combines_formulas():
    s, t, y = batch(seed=13)
    pt, ps = F.softmax(t, 1), F.softmax(s, 1)
    want = 0.3 * A.article_ce(pt, y) + 0.7 * A.article_adv(ps, y)
    assert torch.allclose(A.article_total(pt, ps, y, lam=0.3), want, rtol=1e-14)


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 1.0])
def test_article_gradient_is_rescaled_cross_entropy(lam):
    """Defect 3: d L / d z_s = (1 - λ) d CE / d z_s, and L_ce has no path to the student."""
    s, t, y = batch(6, 5, seed=14)
    s.requires_grad_(True)
    teacher = nn.Linear(5, 5).double()          # a teacher with parameters of its own
    pt = F.softmax(teacher(t), 1).detach()
    (g_total,) = torch.autograd.grad(A.article_total(pt, F.softmax(s, 1), y, lam=lam), s)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(s, y), s)
    assert torch.allclose(g_total, (1 - lam) * g_ce, rtol=1e-10, atol=1e-14)
    ce = A.article_ce(pt, y)
    assert not ce.requires_grad                  # no gradient reaches the student at all
    # Even with a live teacher graph, the student's gradient from L_ce is None.
    ce_live = A.article_ce(F.softmax(teacher(t), 1), y)
    assert torch.autograd.grad(ce_live, s, allow_unused=True) == (None,)


# --------------------------------------------------------------------------- the article's snippet

def test_snippet_is_verbatim_from_article():
    assert "loss = (1 - lambda) * loss + lambda * adv_loss.mean()" in A.ARTICLE_SNIPPET
    assert "# 定义大型模型和小型模型" in A.ARTICLE_SNIPPET
    article = Path(__file__).resolve().parents[2] / "shared" / "source-article" / "article.zh.md"
    if not article.exists():
        pytest.skip(f"source article not found at {article}")
    block = re.search(r"```python\n(.*?)```", article.read_text(encoding="utf-8"), re.S).group(1)
    assert A.ARTICLE_SNIPPET == block


def test_snippet_syntax_errors():
    lines = A.ARTICLE_SNIPPET.splitlines()
    err = A.snippet_syntax_error()
    assert isinstance(err, SyntaxError) and isinstance(err.lineno, int)
    # First reported: the empty class body (only a comment under `class TeacherModel`).
    assert err.text.strip() == lines[err.lineno - 1].strip() == "class StudentModel(nn.Module):"
    assert "indented block" in err.msg and "class" in err.msg
    # With `pass` bodies on the same lines, `lambda` is the next error.
    err2 = A.article_snippet_fixed_syntax()
    assert isinstance(err2, SyntaxError)
    assert "lambda" in err2.text and err2.text.strip() == lines[err2.lineno - 1].strip()
    assert err2.lineno > err.lineno
    # Those two are the only syntax defects: fixing both compiles.
    fixed = A.ARTICLE_SNIPPET.replace("    # ...\n", "    pass  # ...\n").replace("lambda", "lam")
    assert A.snippet_syntax_error(fixed) is None


@pytest.mark.parametrize("lam", [0.0, 0.25, 1.0])
def test_article_snippet_loss_terms_are_equal(lam):
    s, _, y = batch(seed=15)
    total, loss, adv = A.article_snippet_loss(s, y, lam, return_terms=True)
    ce = F.cross_entropy(s, y)
    assert torch.allclose(loss, adv, rtol=1e-14) and torch.allclose(loss, ce, rtol=1e-14)
    assert torch.allclose(total, ce, rtol=1e-14)           # λ changes nothing
    assert torch.allclose(A.article_snippet_loss(s, y, lam), total)


# --------------------------------------------------------------------------- validation

def test_article_validation():
    s, t, y = batch(4, 3, seed=22)
    p = F.softmax(s, 1)
    with pytest.raises(ValueError, match=r"teacher_probs.*\[0, 1\]"):
        A.article_ce(s, y)                              # logits, not probabilities
    with pytest.raises(ValueError, match=r"student_probs.*2-D"):
        A.article_adv(p[0], y)
    with pytest.raises(ValueError, match=r"labels.*\[0, 2\]"):
        A.article_adv(p, torch.tensor([0, 1, 2, 5]))
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        A.article_total(p, p, y, lam=2)
    with pytest.raises(ValueError, match="teacher_probs and student_probs"):
        A.article_total(p, p[:2], y, lam=0.5)
    with pytest.raises(ValueError, match=r"lam.*\[0, 1\]"):
        A.article_snippet_loss(s, y, 1.1)
    with pytest.raises(ValueError, match="labels.*length 4"):
        A.article_snippet_loss(s, y[:2], 0.5)
