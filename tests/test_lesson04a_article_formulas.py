"""Tests of kdlib.lessons.lesson04a_article_formulas: notebook 04a's parameter check, experiments,
checks and prose."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from _toy import (
    assert_check_params_basics,
    right_loss,
    toy_data,
    toy_student,
)

from kdlib._checks import Verdict
from kdlib.lessons import lesson04a_article_formulas as lesson
from kdlib.train import batches, fit

GOOD = dict(checkpoint="", n_train=5000, epochs=2, lr=0.3, student_epochs=12, hidden=128, T=4.0,
            lam=0.5, seed=0)


def test_check_params_converts_numbers():
    got = lesson.check_params(**{**GOOD, "T": 4, "lam": 1})
    assert isinstance(got.T, float) and isinstance(got.lam, float)


@pytest.mark.parametrize("name, value", [("n_train", 10), ("epochs", 0), ("student_epochs", 101),
                                         ("hidden", 0), ("lr", 0.0), ("T", -1.0), ("lam", 1.5),
                                         ("seed", -1), ("n_train", 55001), ("T", 101.0)])
def test_check_params_names_bad_value(name, value):
    with pytest.raises(ValueError, match=rf"^{name}={value!r} is out of range; allowed: "):
        lesson.check_params(**{**GOOD, name: value})


def test_check_params_basics():
    assert_check_params_basics(lesson, GOOD, integer="epochs")


@pytest.fixture(scope="module")
def scaled_runs():
    train, val = toy_data()
    g = torch.Generator().manual_seed(1)
    teacher_probs = torch.softmax(torch.randn(len(train.y), 3, generator=g) * 3, 1)
    runs = lesson.compare_article_with_scaled_lr(toy_student, (train, val), teacher_probs,
                                            lams=(0.0, 0.5, 0.9, 1.0), lr=0.5, epochs=2,
                                            batch_size=32, seed=3)
    return train, val, teacher_probs, runs


def test_scaled_lr_curves_coincide(scaled_runs):
    train, _, _, runs = scaled_runs
    assert [r.lam for r in runs] == [0.0, 0.5, 0.9, 1.0]
    for r in runs[:3]:
        assert r.scaled_lr == pytest.approx(0.5 * (1 - r.lam))
        assert len(r.article_ce) == len(r.plain_ce) == 2 * 6  # 192 / 32 = 6 steps per epoch
        np.testing.assert_allclose(r.article_ce, r.plain_ce, atol=1e-5)
        assert r.max_curve_diff < 1e-5 and r.max_weight_diff < 1e-5
        assert r.max_curve_diff == pytest.approx(max(abs(a - b) for a, b in zip(r.article_ce, r.plain_ce)))
        assert r.moved > 1e-3  # the student did learn
        assert r.article_val_acc == pytest.approx(r.plain_val_acc)
    # the curves really depend on the learning rate: λ = 0.9 learns more slowly than λ = 0
    assert np.mean(runs[2].article_ce[-6:]) > np.mean(runs[0].article_ce[-6:])


def test_scaled_lr_lambda_one_never_moves(scaled_runs):
    train, _, _, runs = scaled_runs
    r = runs[3]
    assert r.moved == 0.0 and r.plain_ce == [] and r.max_weight_diff is None and r.scaled_lr == 0.0
    # the student stays at its initial weights: its per-step CE is the initial model's CE on the
    # batches in fit's seeded order
    torch.manual_seed(3)
    model = toy_student()
    gen = torch.Generator().manual_seed(3)
    expected = []
    with torch.no_grad():
        for _ in range(2):
            for idx in batches(len(train.y), 32, gen):
                expected.append(float(F.cross_entropy(model(train.x[idx]), train.y[idx])))
    np.testing.assert_allclose(r.article_ce, expected, rtol=1e-6)


def test_scaled_lr_negative_control(scaled_runs):
    """Plain training at the *unscaled* rate is not the article's run: the comparison can fail."""
    train, val, probs, runs = scaled_runs
    torch.manual_seed(3)
    plain = toy_student()
    hist = fit(plain, (train, val), epochs=2, batch_size=32, lr=0.5, optimizer="sgd", momentum=0.0,
               schedule=None, seed=3, progress=False)
    assert max(abs(a - b) for a, b in zip(runs[1].article_ce, hist.step_loss)) > 1e-3


def test_scaled_lr_accepts_every_data_form(scaled_runs):
    train, val, probs, runs = scaled_runs
    again = lesson.compare_article_with_scaled_lr(toy_student, (train, val, None), probs, lams=(0.5,),
                                                  lr=0.5, epochs=2, batch_size=32, seed=3)
    assert again[0].article_ce == runs[1].article_ce and again[0].plain_ce == runs[1].plain_ce
    no_val = lesson.compare_article_with_scaled_lr(toy_student, train, probs, lams=(0.5,), lr=0.5,
                                                   epochs=1, batch_size=32, seed=3)
    assert no_val[0].article_ce == runs[1].article_ce[:6]


def test_scaled_lr_validation():
    train, val = toy_data()
    probs = torch.full((len(train.y), 3), 1 / 3)
    with pytest.raises(ValueError, match=r"^lams\[1\]=2.0 is out of range; allowed: \[0, 1\]$"):
        lesson.compare_article_with_scaled_lr(toy_student, (train, val), probs, lams=(0.5, 2.0))
    with pytest.raises(ValueError, match=r"^lams=\[\] has 0 entries; allowed: at least 1$"):
        lesson.compare_article_with_scaled_lr(toy_student, (train, val), probs, lams=())
    with pytest.raises(ValueError, match="rows"):
        lesson.compare_article_with_scaled_lr(toy_student, (train, val), probs[:10])
    with pytest.raises(TypeError, match="make_student"):
        lesson.compare_article_with_scaled_lr(None, (train, val), probs)
    with pytest.raises(ValueError, match="lr"):
        lesson.compare_article_with_scaled_lr(toy_student, (train, val), probs, lr=0.0)


def fake_runs():
    a = [2.0, 1.5, 1.2, 1.0]
    return [
        lesson.ScaledLrRun(0.0, 0.3, 0.3, a, a, 0.0, 0.0, 1.0, [0.5], [0.5]),
        lesson.ScaledLrRun(0.5, 0.3, 0.15, [2.0, 1.8, 1.6, 1.5], [2.0, 1.8, 1.6, 1.5], 0.0, 0.0, 0.5,
                      [0.4], [0.4]),
        lesson.ScaledLrRun(1.0, 0.3, 0.0, [2.0, 2.1, 1.9, 2.0], [], None, None, 0.0, [0.1], []),
    ]


def test_scaled_lr_curves_plot_data():
    runs = fake_runs()
    fig = lesson.scaled_lr_curves(runs, window=1)
    lines = fig.axes[0].lines
    assert len(lines) == 5  # solid + dashed for two runs, solid only for λ = 1
    np.testing.assert_allclose(lines[0].get_ydata(), runs[0].article_ce)
    np.testing.assert_allclose(lines[1].get_ydata(), runs[0].plain_ce)
    assert lines[0].get_linestyle() == "-" and lines[1].get_linestyle() == "--"
    assert lines[1].get_zorder() >= lines[0].get_zorder()
    np.testing.assert_allclose(lines[4].get_ydata(), runs[2].article_ce)
    np.testing.assert_allclose(lines[0].get_xdata(), [1, 2, 3, 4])
    smoothed = lesson.scaled_lr_curves(runs, window=2).axes[0].lines[2].get_ydata()
    np.testing.assert_allclose(smoothed, [2.0, 1.9, 1.7, 1.55])


def test_compare_lams_by_optimizer_adam_cancels_the_factor():
    train, val = toy_data()
    probs = torch.softmax(torch.randn(len(train.y), 3, generator=torch.Generator().manual_seed(1)), 1)
    sgd, adam_default, adam_tiny = lesson.compare_lams_by_optimizer(
        toy_student, (train, val), probs, lams=(0.0, 0.5), sgd_lr=0.1, adam_lr=0.01,
        adam_eps=(1e-8, 1e-20), epochs=2, batch_size=32)
    assert sgd.optimizer == "sgd" and sgd.max_weight_diff > 1e-3  # λ rescales SGD's steps
    assert adam_tiny.max_weight_diff == 0.0  # 1 − λ = 0.5 is exact; with ε ≪ every gradient, cancels
    assert adam_default.max_weight_diff < sgd.max_weight_diff
    assert adam_tiny.max_weight_change > 0 and "eps 1e-20" in adam_tiny.label
    with pytest.raises(ValueError, match="lams"):
        lesson.compare_lams_by_optimizer(toy_student, (train, val), probs, lams=(0.0, 1.0))


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


def cross_entropy_form_no_T2(s, t, y, lam, T):
    return (cross_entropy_form(s, t, y, lam, T) - lam * F.cross_entropy(s, y)) / T ** 2 + \
        lam * F.cross_entropy(s, y)


def cross_entropy_form_mean(s, t, y, lam, T):  # the classes averaged too, as reduction='mean' does
    soft = -(F.softmax(t / T, dim=1) * F.log_softmax(s / T, dim=1)).mean()
    return lam * F.cross_entropy(s, y) + (1 - lam) * T ** 2 * soft


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


def check(n, answer, **evidence):
    """``lesson.check_exercise`` shown as a notebook's ``print(...)`` shows it; its ``right``."""
    verdict = lesson.check_exercise(n, answer, **evidence)
    assert isinstance(verdict, Verdict)
    print(verdict)
    return verdict.right


def test_check_exercise_verdicts(capsys):
    assert check(1, None) is False
    assert "Not yet: replace None" in capsys.readouterr().out
    assert check(1, (0.25, 1.0)) is True
    assert check(1, (0.25, 0.25)) is False
    assert "Adam" in capsys.readouterr().out
    assert check(2, "grows") is True and check(2, "shrinks") is False
    assert check(3, ["teacher_probs", "labels"]) is True
    assert check(3, ["student_probs", "labels"]) is False
    out = capsys.readouterr().out
    assert "Right:" in out and "Not yet:" in out
    with pytest.raises(ValueError):
        check(4, 1)


def test_say_leak():
    leak = lesson.say_leak({"validation": 0.86, "test": 0.83}, {"validation": 0.79, "test": 0.785},
                           {0.1: 0.78, 0.5: 0.785, 0.9: 0.79}, 0.9).data
    assert "+3.00 points, much larger than the honest student's +0.50" in leak and "span 1.00 points" in leak
    same = lesson.say_leak({"validation": 0.80, "test": 0.795}, {"validation": 0.79, "test": 0.785},
                           {0.1: 0.79}, 0.1).data
    assert "not clearly larger than" in same


def test_say_summary_follows_the_run(scaled_runs):
    runs = [lesson.OptimizerLamRun("sgd", 0.1, None, (0.0, 0.5), 0.04, 0.07, (0.47, 0.40)),
            lesson.OptimizerLamRun("adam", 3e-3, 1e-20, (0.0, 0.5), 0.0, 0.05, (0.68, 0.68))]
    text = lesson.say_summary(scaled_runs[3], runs, {"leaky": 0.0315, "honest": 0.0045}).data
    assert "ran +3.15 points ahead" in text and "against +0.45" in text
    assert "under Adam, λ did nothing at all" in text
    runs[1] = lesson.OptimizerLamRun("adam", 3e-3, 1e-8, (0.0, 0.5), 1e-6, 0.05, (0.68, 0.68))
    text = lesson.say_summary(scaled_runs[3], runs, {"leaky": 0.0, "honest": 0.0}).data
    assert "cancels up to Adam's ε" in text


def test_say_scaled_lr_and_optimizers(scaled_runs):
    text = lesson.say_scaled_lr(scaled_runs[3]).data
    assert "the same training up to rounding" in text and "not a single weight moved" in text
    runs = [lesson.OptimizerLamRun("sgd", 0.1, None, (0.0, 0.5), 0.04, 0.07, (0.47, 0.40)),
            lesson.OptimizerLamRun("adam", 3e-3, 1e-20, (0.0, 0.5), 0.0, 0.05, (0.68, 0.68))]
    text = lesson.say_optimizers(runs).data
    assert "SGD, lr 0.1: weights up to 0.04 apart" in text and "eps 1e-20: identical weights" in text
