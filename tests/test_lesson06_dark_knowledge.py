"""Tests of kdlib/lessons/lesson06_dark_knowledge.py (notebook 06): parameter check, control
targets, the bias rule, the omitted-class summary, the slider, figures, exercises."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from kdlib import data as kdata
from kdlib import losses, models
from kdlib._checks import Verdict
from kdlib.lessons import lesson06_dark_knowledge as lesson
from kdlib.metrics import accuracy_from_logits

DEFAULTS = dict(omitted="Bag", n_train=2000, epochs=10, seeds=3, quick=False)


def toy_logits(n=300, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, k, generator=g) + 3 * torch.nn.functional.one_hot(y, k)
    return z, y


def test_check_defaults_and_quick():
    S = lesson.check_params(**DEFAULTS)
    assert isinstance(S, lesson.Settings) and vars(S) == DEFAULTS
    assert S.omitted_index == kdata.FASHION_CLASSES.index("Bag") == 8
    assert S.n_test is None and S.seeds == 3 and S.n_val == lesson.N_VAL
    Q = lesson.check_params(**dict(DEFAULTS, quick=True))
    assert Q.n_train == lesson.QUICK["n_train"] and Q.seeds >= 2 and Q.n_test == lesson.QUICK["n_test"]


@pytest.mark.parametrize("name,value,match", [("seeds", 1, "seeds=1"), ("epochs", 0, "epochs=0"),
                                              ("omitted", "Sock", "omitted='Sock'"),
                                              ("quick", 1, "quick must be True or False")])
def test_check_rejects_bad_values_naming_them(name, value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        lesson.check_params(**dict(DEFAULTS, **{name: value}))


def test_control_targets_keep_what_they_promise():
    t, y = toy_logits(50)
    p = losses.soft_targets(t, 4.0)
    rows = torch.arange(len(y))
    none, lam, T = lesson.control_targets("hard labels", t, y, lam=0.5, T=4.0, eps=0.1, seed=0)
    assert none is None and lam == 1.0
    real, lam, T = lesson.control_targets("real teacher", t, y, lam=0.5, T=4.0, eps=0.1, seed=0)
    assert torch.equal(real, p) and (lam, T) == (0.5, 4.0)
    ls, lam, T = lesson.control_targets("label smoothing", t, y, lam=0.5, T=4.0, eps=0.1, seed=0)
    assert (lam, T) == (0.0, 1.0) and torch.allclose(ls[rows, y], torch.full((50,), 0.91))
    for name in ("shuffled teacher", "uniform-wrong"):
        q, lam, T = lesson.control_targets(name, t, y, lam=0.5, T=4.0, eps=0.1, seed=0)
        assert torch.equal(q[rows, y], p[rows, y]) and torch.allclose(q.sum(1), torch.ones(50))
    with pytest.raises(ValueError, match="condition='teacher'"):
        lesson.control_targets("teacher", t, y, lam=0.5, T=4.0, eps=0.1, seed=0)


def test_class_metrics_against_a_direct_count():
    z, y = toy_logits()
    for bias in (0.0, 2.5):
        zz = z.clone()
        zz[:, 3] += bias
        pred = zz.argmax(1).numpy()
        yn = y.numpy()
        want = ((pred[yn == 3] == 3).mean(), (pred[yn != 3] == yn[yn != 3]).mean(), (pred == yn).mean())
        np.testing.assert_allclose(lesson.class_metrics(z, y, 3, bias), want)


def test_choose_bias_matches_the_teachers_false_positive_rate():
    z, y = toy_logits(2000)
    keep = y != 2
    teacher = z[keep]
    student = teacher.clone()
    student[:, 2] -= 6.0           # a student that learned to never say class 2
    b = lesson.choose_bias(student, teacher, 2)
    fp = lesson.predicted_frequency(teacher, 2)
    assert 0 < fp < 0.2 and b == pytest.approx(6.0, abs=0.3)
    assert lesson.predicted_frequency(student, 2, b) <= fp < lesson.predicted_frequency(student, 2, b + 0.05)
    always_2 = teacher + 100 * torch.nn.functional.one_hot(torch.tensor(2), 10)
    assert lesson.choose_bias(always_2, teacher, 2) == 0


def students_for(z, y, n=3):
    return [lesson.Student("x", s, z + 0.1 * s, z + 0.1 * s) for s in range(n)]


def test_omitted_summary_and_table():
    z, y = toy_logits()
    z[:, 7] -= 5.0
    summ = lesson.omitted_summary({"real teacher": students_for(z, y)}, z[:, :] + 5.0 *
                                  torch.nn.functional.one_hot(torch.full_like(y, 7), 10), y, y, 7)
    row = summ["real teacher"]
    assert len(row.recall_before) == 3 and max(row.recall_before) < min(row.recall_after)
    assert all(b > 0 for b in row.biases)
    text = lesson.omitted_table(summ, "Sneaker")
    assert "Sneaker recall" in text and "real teacher" in text


def test_bias_explorer_slider_updates_label_and_numbers():
    z, y = toy_logits()
    z[:, 7] -= 5.0
    ex = lesson.BiasExplorer(students_for(z, y), y, 7, "Sneaker", chosen=1.0)
    assert ex.slider.value == 1.0 and ex.figure is not None
    ex.slider.value = 5.0
    want = np.mean([lesson.class_metrics(z + 0.1 * s, y, 7, 5.0)[:2] for s in range(3)], axis=0)
    assert (ex.recall, ex.others) == pytest.approx(tuple(want))
    assert f"{100 * want[0]:.1f} %" in ex.label.value and "+5.00" in ex.label.value
    assert ex.figure.axes[0].get_ylim()[0] == 0


def test_measure_student_is_deterministic_and_uses_targets():
    z, y = toy_logits(64)
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    split = kdata.Split(x, y)
    a = lesson.measure_student(split, x[:8], x[:4], epochs=1, seed=3)
    b = lesson.measure_student(split, x[:8], x[:4], epochs=1, seed=3)
    assert torch.equal(a.val_logits, b.val_logits) and a.test_logits.shape == (4, 10)
    c = lesson.measure_student(split, x[:8], x[:0], epochs=1, seed=3, targets=losses.soft_targets(z, 4.0),
                             lam=0.5, T=4.0)
    assert not torch.equal(a.val_logits, c.val_logits) and c.test_logits.shape == (0, 10)
    assert "train_logits" not in a.meta
    d = lesson.measure_student(split, x[:8], x[:4], epochs=1, seed=3, keep_train_logits=True)
    assert torch.equal(d.val_logits, a.val_logits) and d.meta["train_logits"].shape == (64, 10)
    with pytest.raises(ValueError, match="targets has 10 rows"):
        lesson.measure_student(split, x[:8], x[:4], epochs=1, targets=torch.full((10, 10), 0.1))


def test_comparison_lines_pairs_by_seed():
    text = lesson.comparison_lines({"real teacher": [0.80, 0.81, 0.82], "hard labels": [0.78, 0.80, 0.80]},
                                   "real teacher")
    assert "hard labels" in text and "-1.67 points" in text and "95 % CI" in text


def test_decomposition_identity_on_toy_logits():
    s, y = toy_logits(seed=1)
    t, _ = toy_logits(seed=2)
    d = lesson.decomposition(s, t, y, T=4.0)
    assert d["max_error"] < 1e-12
    assert d["kl"] == pytest.approx(d["tckd"] + d["nckd_weighted"], rel=1e-9)
    p = losses.soft_targets(t.double(), 4.0)
    assert torch.allclose(losses.soft_targets(lesson.as_logits(p, 4.0), 4.0), p)


def test_rank_correlation_and_figures():
    pts = [{"name": f"t{i}", "teacher": 0.8 + 0.01 * i, "students": [0.7 + 0.01 * i, 0.71 + 0.01 * i]}
           for i in range(4)]
    assert lesson.rank_correlation(pts) == pytest.approx(1.0)
    flipped = [dict(p, students=[1 - p["teacher"]] * 2) for p in pts]
    assert lesson.rank_correlation(flipped) == pytest.approx(-1.0)
    fig = lesson.quality_figure(pts, baseline=[0.70, 0.72])
    assert len(fig.axes) == 1 and fig.axes[0].lines[0].get_ydata()[0] == pytest.approx(71.0)
    fig = lesson.controls_figure({"a": [0.8, 0.82], "b": [0.7, 0.75]},
                                 {"a": [0.5, 0.6], "b": [0.0, 0.1]}, "Bag")
    assert all(ax.get_ylim()[0] == 0 for ax in fig.axes)
    assert "t0" in lesson.quality_table(pts)


def test_teacher_table_and_make_teacher_parameters(monkeypatch, data_dir):
    assert {f for f, _ in lesson.TEACHERS.values()} >= {"teacher.pt", "teacher_e5.pt", "teacher_e5_epoch1.pt"}
    assert all(m in lesson.TEACHERS for m in lesson.ENSEMBLE)
    calls = []
    monkeypatch.setattr(lesson.runs, "execute_notebook", lambda nb, out, params: calls.append(params))
    lesson.make_teachers(force=True)
    assert sorted(c["checkpoint"] for c in calls) == sorted(
        str(data_dir / f) for f in ("teacher_e5.pt", "teacher_wide.pt", "teacher_ls.pt"))
    calls.clear()
    path = lesson.make_teacher("10k, after 1 epoch")
    assert path == data_dir / "teacher_e5_epoch1.pt"
    assert calls[0]["epochs"] == 5 and calls[0]["snapshot_epochs"] == [1, 2] and calls[0]["n_train"] == 10000
    assert calls[0]["checkpoint"] == str(data_dir / "teacher_e5.pt")
    with pytest.raises(ValueError, match="not a known teacher"):
        lesson.teacher_path("best")
    (data_dir / "teacher_wide.pt").unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="make teachers"):
        lesson.load_teachers(["10k, wider"], make_missing=False)
    assert set(lesson.load_teachers(["10k, after 1 epoch"], make_missing=False)) == {"10k, after 1 epoch"}


def test_check_exercise():
    assert lesson.check_exercise(1, "Shuffled teacher").message == "Right: shuffled teacher"
    assert lesson.check_exercise(2, 0.9 * np.log(0.9 / 0.6) + 0.1 * np.log(0.1 / 0.4))
    verdict = lesson.check_exercise(2, 0.5)
    assert isinstance(verdict, Verdict) and not verdict and verdict.message.startswith("Not yet: TCKD =")
    assert not lesson.check_exercise(3, "tckd") and lesson.check_exercise(3, "NCKD")
    with pytest.raises(ValueError, match="n=9"):
        lesson.check_exercise(9, "x")


def test_born_again_pairs_each_student_with_its_own_teacher():
    z, y = toy_logits(64)
    x = torch.randn(64, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    split = kdata.Split(x, y)
    d = kdata.Splits(split, split, split, kdata.FASHION_CLASSES)
    teachers = [lesson.measure_student(split, x[:0], x, seed=s, epochs=1, keep_train_logits=True)
                for s in range(2)]
    out = lesson.born_again(d, teachers, {"lam": 0.5, "T": 4.0}, epochs=1)
    assert out["teacher (hard labels)"] == [accuracy_from_logits(t.test_logits, y) for t in teachers]
    assert len(out["born-again student"]) == 2


def test_teacher_outputs_adds_the_ensemble(monkeypatch):
    z, y = toy_logits(40)
    x = torch.randn(40, 1, 28, 28)
    split = kdata.Split(x, y)
    d = kdata.Splits(split, split, split, kdata.FASHION_CLASSES)
    nets = {n: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)) for n in lesson.ENSEMBLE}
    train_logits, accs, val_logits = lesson.teacher_outputs(nets, d)
    key = f"ensemble of {len(lesson.ENSEMBLE)}"
    mean = torch.stack([val_logits[n] for n in lesson.ENSEMBLE]).mean(0)
    assert torch.allclose(val_logits[key], mean) and accs[key] == accuracy_from_logits(mean, y)


def test_shipped_teachers_are_listed_with_their_sha256_and_parameters():
    readme = (kdata.REPO_ROOT / "data" / "README.md").read_text()
    for name, (f, params) in lesson.TEACHERS.items():
        path = kdata.REPO_ROOT / "data" / f
        assert path.is_file(), f"{f} ({name}) is missing: run `make teachers`"
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, f"{f}: update data/README.md"
        meta = models.load_checkpoint(path)["meta"]
        for k, v in params.items():
            if k not in ("checkpoint", "snapshot_epochs"):
                assert meta[k] == v, (f, k)
