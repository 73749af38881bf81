"""Tests of kdlib.lessons.lesson04b_correct_loss: notebook 04b's parameter check, experiments,
checks and prose."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _toy import (
    assert_check_params_basics,
    batch,
    mean_reduction,
    no_T2,
    np_kl,
    probs_not_logs,
    right_loss,
    swapped,
    toy_data,
    toy_student,
)
from torch import nn

from kdlib import article, experiments, metrics
from kdlib import losses as L
from kdlib import pitfalls as P
from kdlib._checks import Verdict
from kdlib.data import Split
from kdlib.lessons import lesson04b_correct_loss as lesson
from kdlib.train import TrainSettings

GOOD = dict(checkpoint="", n_train=5000, student_epochs=12, hidden=128, T=4.0,
            lam=0.5, seed=0, pitfall_epochs=3, pitfall_seeds=3, seeds=5, compare_epochs=5)


def test_check_params_converts_numbers():
    got = lesson.check_params(**{**GOOD, "T": 4, "lam": 1})
    assert isinstance(got.T, float) and isinstance(got.lam, float)


@pytest.mark.parametrize("name, value", [("n_train", 10), ("pitfall_epochs", 0), ("student_epochs", 101),
                                         ("hidden", 0), ("seeds", 0), ("T", -1.0), ("lam", 1.5),
                                         ("seed", -1), ("n_train", 55001), ("T", 101.0)])
def test_check_params_names_bad_value(name, value):
    with pytest.raises(ValueError, match=rf"^{name}={value!r} is out of range; allowed: "):
        lesson.check_params(**{**GOOD, name: value})


def test_check_params_basics():
    assert_check_params_basics(lesson, GOOD, integer="compare_epochs")


@pytest.mark.parametrize("lam", [0.0, 0.3, 0.9, 1.0])
def test_article_loss_fn_value_and_gradient(lam):
    s, t, y = batch(n=16, k=4, dtype=torch.float64)
    probs = torch.softmax(t, 1)
    idx = torch.arange(16).flip(0)  # the batch holds examples in another order than the cache
    fn = article.ArticleLossFn(probs, lam=lam)
    z = s.clone().requires_grad_(True)
    value = fn(z, y[idx], idx)
    # value: formula 3.2.3 written out with NumPy
    pt, ps = probs[idx].numpy(), torch.softmax(s, 1).numpy()
    onehot = np.eye(4)[y[idx].numpy()]
    l_ce = -(onehot * np.log(pt) + (1 - onehot) * np.log(1 - pt)).sum(1).mean()
    l_adv = -(onehot * np.log(ps)).sum(1).mean()
    assert value.item() == pytest.approx(lam * l_ce + (1 - lam) * l_adv, rel=1e-10)
    # gradient: exactly (1 - lam) times the plain cross-entropy's
    (g,) = torch.autograd.grad(value, z)
    z2 = s.clone().requires_grad_(True)
    (g_ce,) = torch.autograd.grad(F.cross_entropy(z2, y[idx]), z2)
    assert torch.allclose(g, (1 - lam) * g_ce, atol=1e-12)
    assert fn.student_ce == [pytest.approx(float(F.cross_entropy(s, y[idx])), rel=1e-12)]


def test_article_loss_fn_rejects_logits_and_bad_lam():
    _, t, _ = batch()
    with pytest.raises(ValueError, match="teacher_probs"):
        article.ArticleLossFn(t, lam=0.5)
    with pytest.raises(ValueError, match="lam"):
        article.ArticleLossFn(torch.softmax(t, 1), lam=-0.1)


def test_formula_pitfalls_ratios_and_values():
    s, t, y = batch(n=40, k=10, dtype=torch.float64)
    T = 3.0
    rows = lesson.formula_pitfalls(s, t, y, T=T)
    assert len(rows) == 4
    correct = T * T * np_kl(t.numpy(), s.numpy(), T)
    assert all(r.correct == pytest.approx(correct, rel=1e-10) for r in rows)
    mean_row, probs_row, no_t2_row, swapped_row = rows
    assert mean_row.ratio == pytest.approx(1 / 10, rel=1e-10)
    assert "support size" in mean_row.note  # PyTorch's warning is quoted
    assert no_t2_row.ratio == pytest.approx(1 / T ** 2, rel=1e-10)
    assert swapped_row.value == pytest.approx(T * T * np_kl(s.numpy(), t.numpy(), T), rel=1e-10)
    qs, qt = torch.softmax(s / T, 1).numpy(), torch.softmax(t / T, 1).numpy()
    wrong = (qt * (np.log(qt) - qs)).sum(1).mean() * T * T
    assert probs_row.value == pytest.approx(wrong, rel=1e-10) and probs_row.value < 0


def test_pitfall_row_ratio_and_table():
    rows = [lesson.PitfallRow("a", 1.0, 4.0), lesson.PitfallRow("bee", -2.0, 0.0)]
    assert rows[0].ratio == 0.25 and np.isnan(rows[1].ratio)
    table = lesson.pitfall_frame(rows)
    assert list(table.columns) == ["value", "correct", "ratio"] and list(table.index) == ["a", "bee"]
    assert table.loc["a"].tolist() == [1.0, 4.0, 0.25] and np.isnan(table.loc["bee", "ratio"])
    with pytest.raises(TypeError):
        lesson.pitfall_frame([("a", 1.0, 2.0)])


def test_measure_train_mode_with_dropout():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.5), nn.Linear(32, 4))
    teacher.eval()
    x = torch.randn(20, 6)
    s = torch.randn(20, 4)
    y = torch.randint(0, 4, (20,))
    torch.manual_seed(1)
    row, spread = lesson.measure_train_mode(teacher, x, s, y, T=2.0, n=4)
    assert not teacher.training  # left as found
    with torch.no_grad():
        eval_logits = teacher(x)
    assert row.correct == pytest.approx(float(L.kd_loss(s, eval_logits, y, lam=0.0, T=2.0)), rel=1e-6)
    assert spread["eval_repeatable"] is True
    assert spread["max_prob_change"] > 0.01 and spread["soft_min"] < spread["soft_max"]
    assert spread["soft_min"] <= row.value <= spread["soft_max"]
    # the same seed reproduces the train-mode passes: the row is their mean soft term
    torch.manual_seed(1)
    _, train_logits = P.pitfall_teacher_train_mode(teacher, x, n=4)
    expected = np.mean([float(L.kd_loss(s, z, y, lam=0.0, T=2.0)) for z in train_logits])
    assert row.value == pytest.approx(expected, rel=1e-6)


def test_measure_train_mode_without_dropout_is_harmless():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x, s, y = torch.randn(10, 6), torch.randn(10, 3), torch.randint(0, 3, (10,))
    row, spread = lesson.measure_train_mode(teacher, x, s, y, T=4.0, n=3)
    assert spread["max_prob_change"] == 0.0 and spread["argmax_changed"] == 0.0
    assert row.value == pytest.approx(row.correct) and row.ratio == pytest.approx(1.0)


def test_measure_misaligned_cache_against_manual_lookup():
    s, t, y = batch(n=50, k=5, seed=2)
    row, check = lesson.measure_misaligned_cache(s, t, y, T=2.0, batch_size=16, seed=7)
    assert check["unshuffled_equal"] is True
    perm = torch.randperm(50, generator=torch.Generator().manual_seed(7))
    wrong, right = [], []
    for start in range(0, 50, 16):
        idx = perm[start:start + 16]
        wrong.append(4.0 * np_kl(t[start:start + len(idx)].numpy(), s[idx].numpy(), 2.0))
        right.append(4.0 * np_kl(t[idx].numpy(), s[idx].numpy(), 2.0))
    np.testing.assert_allclose(check["shuffled_wrong"], wrong, rtol=1e-5)
    np.testing.assert_allclose(check["shuffled_right"], right, rtol=1e-5)
    assert row.value == pytest.approx(np.mean(wrong), rel=1e-5)
    assert row.correct == pytest.approx(np.mean(right), rel=1e-5)
    assert row.value > row.correct


def test_measure_misaligned_cache_identical_rows_cannot_misalign():
    s, _, y = batch(n=30, k=4, seed=3)
    cache = torch.tensor([[1.0, 0.0, -1.0, 2.0]]).repeat(30, 1)
    row, _ = lesson.measure_misaligned_cache(s, cache, y, T=4.0, batch_size=8)
    assert row.value == pytest.approx(row.correct, rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        lesson.measure_misaligned_cache(s, cache[:10], y, T=4.0)


def test_t2_gradient_norms_plot_data():
    Ts = [1.0, 2.0, 4.0]
    fig = lesson.t2_gradient_norms(Ts, [0.2, 0.3, 0.35], [0.2, 0.075, 0.022])
    lines = fig.axes[0].lines
    np.testing.assert_allclose(lines[0].get_ydata(), [0.2, 0.3, 0.35])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.2, 0.075, 0.022])
    np.testing.assert_allclose(lines[2].get_ydata(), [0.2, 0.05, 0.0125])
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError):
        lesson.t2_gradient_norms(Ts, [1.0], [1.0, 2.0, 3.0])


def test_loss_terms_explorer_follows_sliders():
    s, t, y = batch(n=64, k=10, seed=5)
    w = lesson.LossTermsExplorer(s, t, y, Ts=(1, 2, 4, 8), lam=0.5, T=4.0)
    assert w.lam_slider.description == "λ" and w.T_slider.description == "T"
    assert (w.lam_slider.min, w.lam_slider.max, w.lam_slider.step) == (0.0, 1.0, 0.05)
    for lam, T in [(0.5, 4.0), (0.3, 2.0), (1.0, 8.0), (0.0, 1.0)]:
        w.lam_slider.value = lam
        w.T_slider.value = T
        ce, soft = (float(v) for v in L.kd_terms(s, t, y, T=T))
        assert w.terms == pytest.approx((ce, soft), rel=1e-6)
        # independent: NumPy CE and T²·KL
        assert soft == pytest.approx(T * T * np_kl(t.numpy(), s.numpy(), T), rel=1e-4)
        assert w.weighted == pytest.approx((lam * ce, (1 - lam) * soft, lam * ce + (1 - lam) * soft))
        a, b, dot = w.grads[T]
        s_req = s.clone().requires_grad_(True)
        (g_ce,) = torch.autograd.grad(F.cross_entropy(s_req, y), s_req)
        assert a == pytest.approx(float(g_ce.norm()), rel=1e-5)
        left, right = w.figure.axes
        np.testing.assert_allclose(left.lines[3].get_xdata(), [lam, lam])
        assert left.lines[2].get_ydata()[-1] == pytest.approx(a)  # λ = 1: only the CE pulls
        assert left.lines[2].get_ydata()[0] == pytest.approx(b)  # λ = 0: only the teacher pulls
        assert w.step_norm == pytest.approx(float(lesson.total_gradient_norm(a, b, dot, lam)))
        np.testing.assert_allclose(right.lines[2].get_xdata(), [T, T])
        assert f"total = {lam * ce + (1 - lam) * soft:.4f}" in w.label.value
        assert f"T = {T:g}" in w.label.value


def test_loss_terms_explorer_precomputes_and_validates():
    s, t, y = batch(n=16, k=3, seed=6)
    w = lesson.LossTermsExplorer(s, t, y, Ts=(1.0, 4.0), T=1.0)
    assert set(w.table) == {1.0, 4.0}
    assert w.table[4.0] == pytest.approx(tuple(float(v) for v in L.kd_terms(s, t, y, T=4.0)))
    bundle = w._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle  # displays as its VBox
    assert w.lam_slider in w.widget.children[0].children
    with pytest.raises(ValueError, match="Ts"):
        lesson.LossTermsExplorer(s, t, y, Ts=(1.0, 4.0), T=3.0)
    with pytest.raises(ValueError, match="lam"):
        lesson.LossTermsExplorer(s, t, y, Ts=(1.0,), T=1.0, lam=2.0)
    with pytest.raises(ValueError, match=r"^Ts=\[\] has 0 entries; allowed: at least 1$"):
        lesson.LossTermsExplorer(s, t, y, Ts=(), T=1.0)


def test_term_gradients_match_closed_form():
    s, t, y = batch(n=24, k=6, seed=11, dtype=torch.float64)
    T = 3.0
    a, b, dot = lesson.term_gradients(s, t, y, T=T)
    n = s.shape[0]
    g_ce = (torch.softmax(s, 1) - F.one_hot(y, 6).double()) / n
    g_soft = T * (torch.softmax(s / T, 1) - torch.softmax(t / T, 1)) / n   # T² · (1/T) · (q_s − q_t) / n
    assert a == pytest.approx(float(g_ce.norm()), rel=1e-9)
    assert b == pytest.approx(float(g_soft.norm()), rel=1e-9)
    assert dot == pytest.approx(float((g_ce * g_soft).sum()), rel=1e-9)
    for lam in (0.0, 0.3, 1.0):
        want = float((lam * g_ce + (1 - lam) * g_soft).norm())
        assert float(lesson.total_gradient_norm(a, b, dot, lam)) == pytest.approx(want, rel=1e-9)


def test_gradient_trade_off_plot_data():
    grads = {1.0: (0.5, 0.2, 0.01), 4.0: (0.5, 0.3, -0.02)}
    fig = lesson.gradient_trade_off(grads, lam=0.25, T=4.0, n_points=5)
    left, right = fig.axes
    grid = np.linspace(0, 1, 5)
    np.testing.assert_allclose(left.lines[0].get_ydata(), grid * 0.5)
    np.testing.assert_allclose(left.lines[1].get_ydata(), (1 - grid) * 0.3)
    np.testing.assert_allclose(right.lines[1].get_ydata(), [0.2, 0.3])
    assert left.get_ylim()[0] == 0 and right.get_ylim()[0] == 0
    with pytest.raises(ValueError, match="T="):
        lesson.gradient_trade_off(grads, lam=0.5, T=2.0)


def test_pitfall_students_rows_table_and_plot():
    train, val = toy_data()
    test = Split(train.x[:64], train.y[:64])
    data = (train, val, test)
    teacher = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 3)).eval()
    logits = teacher(train.x).detach()
    small = TrainSettings(batch_size=32)
    rows = lesson.pitfall_students(toy_student, teacher, data, logits, seeds=2, settings=small)
    assert [r["mistake"] for r in rows] == [m for m in lesson.PITFALL_LOSSES for _ in range(2)]
    assert all(0.0 <= r["test_acc"] <= 1.0 for r in rows)
    assert not teacher.training  # the train-mode mistake leaves the teacher as found
    again = lesson.pitfall_students(toy_student, teacher, data, logits, seeds=[0],
                                    settings=small, names=["correct kd_loss"])
    assert again[0]["test_acc"] == rows[0]["test_acc"]  # seeded
    table = lesson.pitfall_table(rows)
    assert list(table.index) == list(lesson.PITFALL_LOSSES)
    assert table.loc["correct kd_loss", "verdict"] == "reference"
    assert (table["n"] == 2).all()
    sample = {0: tuple(range(0, 96)), 1: tuple(range(96, 192))}  # per-seed rows: the same as data cut to them
    names = ["correct kd_loss", "cache looked up by position"]
    on_rows = lesson.pitfall_students(toy_student, teacher, data, logits, seeds=[1], settings=small,
                                      rows=sample, names=names)
    cut_data = (Split(train.x[96:], train.y[96:]), val, test)
    alone = lesson.pitfall_students(toy_student, teacher, cut_data, logits[96:], seeds=[1],
                                    settings=small, names=names)
    assert [r["test_acc"] for r in on_rows] == pytest.approx([r["test_acc"] for r in alone], abs=1e-6)
    with pytest.raises(ValueError, match="rows"):
        lesson.pitfall_students(toy_student, teacher, data, logits, seeds=[2], rows=sample)
    with pytest.raises(ValueError, match="names"):
        lesson.pitfall_students(toy_student, teacher, data, logits, names=["typo"])


def test_check_kd_loss_accepts_a_correct_loss(capsys):
    assert lesson.check_kd_loss(right_loss) is True
    assert capsys.readouterr().out.startswith("Right:")
    assert lesson.check_kd_loss(lambda s, t, y, lam, T: L.kd_loss(s, t, y, lam=lam, T=T)) is True


def kl_log_target(s, t, y, lam, T):
    soft = F.kl_div(F.log_softmax(s / T, dim=1), F.log_softmax(t / T, dim=1), reduction="batchmean",
                    log_target=True)
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


def kl_by_hand(s, t, y, lam, T):
    q_t, log_q_s = F.softmax(t / T, dim=1), F.log_softmax(s / T, dim=1)
    kl = (q_t * (q_t.log() - log_q_s)).sum(1).mean()
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * kl


def cross_entropy_form(s, t, y, lam, T):  # Hinton et al.'s objective, the PyTorch tutorial's code
    soft = -(F.softmax(t / T, dim=1) * F.log_softmax(s / T, dim=1)).sum(1).mean()
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


def probability_targets(s, t, y, lam, T):
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * F.cross_entropy(s / T, F.softmax(t / T, dim=1))


def detached_teacher(s, t, y, lam, T):
    return right_loss(s, t.detach(), y, lam, T)


@pytest.mark.parametrize("form", [kl_log_target, kl_by_hand, detached_teacher])
def test_check_kd_loss_accepts_every_kl_form(form, capsys):
    assert lesson.check_kd_loss(form) is True
    assert capsys.readouterr().out.startswith("Right: your loss equals kd_loss")


@pytest.mark.parametrize("form", [cross_entropy_form, probability_targets])
def test_check_kd_loss_accepts_the_cross_entropy_form_and_names_the_entropy(form, capsys):
    assert lesson.check_kd_loss(form) is True
    out = capsys.readouterr().out
    assert out.startswith("Right: your loss has kd_loss's gradient") and "teacher's entropy" in out
    # the number it quotes is (1 − λ)·T²·H(q_t), computed independently here in NumPy
    s, t, y, settings = lesson._check_settings()
    lam, T = next((lam, T) for lam, T in settings if lam < 1)
    q = np.exp(t.double().numpy() / T)
    q /= q.sum(1, keepdims=True)
    assert f"{(1 - lam) * T ** 2 * -(q * np.log(q)).sum(1).mean():.6f}" in out


def test_check_kd_loss_accepts_a_loss_shifted_by_a_constant(capsys):
    assert lesson.check_kd_loss(lambda s, t, y, lam, T: right_loss(s, t, y, lam, T) + 5.0) is True
    assert "a constant that does not depend on the student's logits" in capsys.readouterr().out


def cross_entropy_form_no_T2(s, t, y, lam, T):
    return (cross_entropy_form(s, t, y, lam, T) - lam * F.cross_entropy(s, y)) / T ** 2 + \
        lam * F.cross_entropy(s, y)


def cross_entropy_form_mean(s, t, y, lam, T):  # the classes averaged too, as reduction='mean' does
    soft = -(F.softmax(t / T, dim=1) * F.log_softmax(s / T, dim=1)).mean()
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


@pytest.mark.parametrize("wrong, words", [
    (no_T2, "T**2"), (mean_reduction, "reduction='mean'"), (swapped, "swapped"),
    (probs_not_logs, "log-probabilities"), (cross_entropy_form_no_T2, "T**2"),
    (cross_entropy_form_mean, "reduction='mean'"),
])
def test_check_kd_loss_names_each_mistake(wrong, words):
    with pytest.raises(AssertionError) as info:
        lesson.check_kd_loss(wrong)
    message = str(info.value)
    assert words in message and "expected" in message and "got" in message


def test_check_kd_loss_four_different_messages_and_other_errors():
    messages = set()
    for wrong in (no_T2, mean_reduction, swapped, probs_not_logs):
        with pytest.raises(AssertionError) as info:
            lesson.check_kd_loss(wrong)
        messages.add(str(info.value).split(" (at ")[0])
    assert len(messages) == 4
    with pytest.raises(AssertionError, match="weights are swapped"):
        lesson.check_kd_loss(lambda s, t, y, lam, T: right_loss(s, t, y, 1 - lam, T))
    with pytest.raises(AssertionError, match="no gradient"):
        lesson.check_kd_loss(lambda s, t, y, lam, T: right_loss(s.detach(), t, y, lam, T))
    with pytest.raises(AssertionError, match="one-element tensor"):
        lesson.check_kd_loss(lambda s, t, y, lam, T: 0.5)
    with pytest.raises(AssertionError, match="none of the classic"):
        lesson.check_kd_loss(lambda s, t, y, lam, T: 2 * right_loss(s, t, y, lam, T))
    with pytest.raises(NotImplementedError):
        lesson.check_kd_loss(lambda s, t, y, lam, T: (_ for _ in ()).throw(NotImplementedError()))
    with pytest.raises(TypeError, match="fn"):
        lesson.check_kd_loss(3)


def make_step(*, eval_mode=True, no_grad=True, zero_grad=True, detach=False):
    def step(student, teacher, optimizer, x, y, lam, T):
        if eval_mode:
            teacher.eval()
        if no_grad:
            with torch.no_grad():
                t = teacher(x)
        else:
            t = teacher(x).detach() if detach else teacher(x)
        if zero_grad:
            optimizer.zero_grad()
        loss = right_loss(student(x), t, y, lam, T)
        loss.backward()
        optimizer.step()
        return loss
    return step


def test_check_training_step_accepts_a_correct_step(capsys):
    assert lesson.check_training_step(make_step()) is True
    assert capsys.readouterr().out.startswith("Right:")


@pytest.mark.parametrize("kwargs, words", [
    ({"eval_mode": False}, "teacher.eval()"),
    ({"no_grad": False}, "torch.no_grad()"),
    ({"zero_grad": False}, "zero_grad"),
])
def test_check_training_step_names_each_mistake(kwargs, words):
    with pytest.raises(AssertionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        lesson.check_training_step(make_step(**kwargs))


def test_check_training_step_accepts_a_detached_teacher(capsys):
    assert lesson.check_training_step(make_step(no_grad=False, detach=True)) is True
    out = capsys.readouterr().out
    assert out.startswith("Right: teacher in eval mode, its logits detached") and "torch.no_grad()" in out


def test_check_training_step_wrong_loss():
    def step(student, teacher, optimizer, x, y, lam, T):
        teacher.eval()
        with torch.no_grad():
            t = teacher(x)
        optimizer.zero_grad()
        no_T2(student(x), t, y, lam, T).backward()
        optimizer.step()
    with pytest.raises(AssertionError, match="check_kd_loss"):
        lesson.check_training_step(step)


def check(n, answer, **evidence):
    """``lesson.check_exercise`` shown as a notebook's ``print(...)`` shows it; its ``right``."""
    verdict = lesson.check_exercise(n, answer, **evidence)
    assert isinstance(verdict, Verdict)
    print(verdict)
    return verdict.right


def test_check_exercise_verdicts(capsys):
    assert check(1, None, grads=(0.3, 0.2, 0.0)) is False
    assert "Not yet: replace None" in capsys.readouterr().out
    assert check(1, 0.4, grads=(0.3, 0.2, 0.0)) is True
    assert check(1, 0.6, grads=(0.3, 0.2, 0.0)) is False
    with pytest.raises(ValueError, match="grads"):
        check(1, 0.4)
    ratio = float(P.pitfall_no_T2(*batch(), lam=0.0, T=2.0) / L.kd_loss(*batch(), lam=0.0, T=2.0))
    assert check(2, ratio) is True and check(2, 0.5) is False
    out = capsys.readouterr().out
    assert "Right:" in out and "Not yet:" in out
    with pytest.raises(ValueError):
        check(3, 1)


def tiny_pool(n=96, seed=0):
    from kdlib.data import Splits
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(784, 10, generator=g)
    def split(m):
        x = torch.randn(m, 784, generator=g)
        return Split(x, (x @ w).argmax(1))
    return Splits(split(n), split(64), split(64), tuple(str(i) for i in range(10)), "toy")


def test_primary_students_one_budget_chosen_on_validation():
    pool = tiny_pool()
    S = lesson.check_params(**{**GOOD, "n_train": 500, "hidden": 4, "seeds": 2, "compare_epochs": 1})
    rows = dict(enumerate(experiments.sample_rows(len(pool.train.y), 48, 2)))
    out = lesson.primary_students(pool, rows, torch.randn(96, 10), S)
    grid, chosen, setting = out["grid"], out["chosen"], out["setting"]
    kd = grid[grid["method"] == lesson.CORRECT]
    article = grid[grid["method"] == lesson.ARTICLE]
    assert set(kd["lr"]) == set(article["lr"]) == set(S.lrs)  # the same learning rates for both
    assert len(kd) == len(S.lrs) * len(S.lams) * len(S.Ts) * 2
    assert len(article) == len(S.lrs) * 2
    assert set(article["lam"]) == {S.lam}
    for method, row in setting.iterrows():  # chosen by the best mean validation accuracy
        means = grid[grid["method"] == method].groupby(["lr", "lam", "T"])["val_acc"].mean()
        assert row["val_acc"] == pytest.approx(means.max())
    assert len(chosen) == 4 and chosen["test_acc"].between(0, 1).all()
    table = lesson.primary_table(chosen)
    assert table.loc[lesson.ARTICLE, "verdict"] == "reference" and table.loc[lesson.CORRECT, "n"] == 2


def primary(kd, article):
    rows = [{"method": lesson.ARTICLE, "seed": s, "test_acc": a} for s, a in enumerate(article)] + \
        [{"method": lesson.CORRECT, "seed": s, "test_acc": k} for s, k in enumerate(kd)]
    return lesson.primary_table(rows)


BASE = [0.80, 0.81, 0.79, 0.80, 0.82]


@pytest.mark.parametrize("shift, verdict, words", [
    (0.02, "helped", "the correct loss helped"), (-0.02, "hurt", "the correct loss hurt"),
    (0.0, "not shown", "cannot tell the two apart")])
def test_say_primary_follows_the_interval(shift, verdict, words):
    noise = [0.001, -0.002, 0.0, 0.002, -0.001]
    table = primary([b + shift + e for b, e in zip(BASE, noise)], BASE)
    assert table.loc[lesson.CORRECT, "verdict"] == verdict
    text = lesson.say_primary(table).data
    assert words in text and "5 seeds" in text and "smoke run" not in text
    summary = lesson.say_summary(table, lesson.pitfall_table(pitfall_rows(-0.02))).data
    assert (words if verdict != "not shown" else "was not shown") in summary


def test_say_primary_flags_a_smoke_run():
    text = lesson.say_primary(primary([0.8, 0.83], [0.79, 0.8])).data
    assert "only 2 seeds" in text


def pitfall_rows(cache_shift):
    rows = []
    for s, b in enumerate(BASE):
        for name in lesson.PITFALL_LOSSES:
            shift = cache_shift if name.startswith("cache") else (0.02 if name.startswith("T²") else 0.0)
            jitter = 0.001 * ((s * 7 + len(name)) % 3)
            rows.append({"mistake": name, "seed": s, "test_acc": b + shift + jitter})
    return rows


def test_say_pitfalls_verdicts_worst_and_helped():
    table = lesson.pitfall_table(pitfall_rows(-0.05))
    text = lesson.say_pitfalls(table).data
    assert "The most costly mistake here: **cache looked up by position**" in text
    assert "cache looked up by position: -5." in text and "cost accuracy" in text
    assert "scored higher than the correct loss (T² forgotten)" in text
    assert "exploratory, 5 seeds" in text
    summary = lesson.say_summary(primary(BASE, BASE), table).data
    assert "1 of 6 cost accuracy" in summary and "cache looked up by position" in summary
    calm = lesson.say_summary(primary(BASE, BASE), lesson.pitfall_table(pitfall_rows(0.0))).data
    assert "none of the 6 showed a cost" in calm


def test_chosen_student_keeps_the_best_on_validation():
    pool = tiny_pool()
    S = lesson.check_params(**{**GOOD, "n_train": 500, "hidden": 4, "student_epochs": 1})
    logits = torch.randn(96, 10, generator=torch.Generator().manual_seed(1))
    got = lesson.chosen_student(pool, logits, S)
    assert set(got["val_acc"]) == set(lesson.CANDIDATE_LAMS)
    assert got["val_acc"][got["lam"]] == max(got["val_acc"].values())
    assert metrics.accuracy(got["student"], pool.val.x, pool.val.y) == got["val_acc"][got["lam"]]
    again = lesson.chosen_student(pool, logits, S)  # seeded: the same students
    assert again["val_acc"] == got["val_acc"]
