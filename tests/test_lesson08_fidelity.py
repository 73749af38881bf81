"""Tests of kdlib/lessons/lesson08_fidelity.py (notebook 08): parameter check, tracked
training, fidelity / disagreement / calibration / shift tables, the reliability widget,
figures and the exercise checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

import kdlib.data
import kdlib.metrics
import kdlib.models
from kdlib.data import Split, Splits
from kdlib.lessons import lesson08_fidelity as lesson

GOOD = dict(n_train=2000, epochs=10, seeds=3, width=128, lam=0.5, T=4.0, lr=3e-2, twin_epochs=3,
            n_bins=10, quick=False)


def tiny_data(n=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.arange(n) % 10
    return Splits(Split(x, y), Split(x[:30], y[:30]), Split(x[:50], y[:50]),
                  tuple(f"c{i}" for i in range(10)), "tiny")


def test_check_params_quick_and_errors():
    s = lesson.check_params(**GOOD)
    assert isinstance(s, lesson.Settings) and vars(s) == GOOD
    assert s.temperatures == (1.0, 2.0, 4.0, 8.0) and s.n_test is None
    q = lesson.check_params(**{**GOOD, "quick": True, "T": 3.0})
    assert q.seeds == 1 and q.n_test == 500 and 3.0 in q.temperatures
    with pytest.raises(ValueError, match="n_bins=1"):
        lesson.check_params(**{**GOOD, "n_bins": 1})
    with pytest.raises(TypeError, match="unknown parameter 'bins'"):
        lesson.check_params(**GOOD, bins=3)


def test_subset_test_cuts_only_the_test_split():
    d = tiny_data()
    cut = lesson.subset_test(d, 7)
    assert len(cut.test) == 7 and len(cut.train) == len(d.train)
    assert lesson.subset_test(d, None) is d


@pytest.mark.slow
def test_fidelity_students_tracks_fidelity_per_epoch():
    d = tiny_data()
    g = torch.Generator().manual_seed(3)
    tl, tt = torch.randn(len(d.train), 10, generator=g), torch.randn(len(d.test), 10, generator=g)
    S = SimpleNamespace(width=8, seeds=2, epochs=2, lam=0.5, T=4.0, temperatures=(1.0, 4.0), lr=3e-2)
    students, curves = lesson.fidelity_students(d, tl, tt, S, progress=False)
    assert lesson.kinds(students) == ["scratch", "T=1", "T=4"] and len(students) == 6
    assert set(curves) == {"scratch", "T=1", "T=4"} and curves["T=1"] == []  # only main T tracked
    rows = curves["T=4"]
    assert len(rows) == 2 * 2 * 2  # seeds × epochs × splits
    last = [r for r in rows if r["seed"] == 1 and r["epoch"] == 2 and r["split"] == "test"][0]
    f = kdlib.metrics.fidelity(tt, kdlib.models.predict(students[("T=4", 1)], d.test.x))
    assert last["agreement"] == pytest.approx(f["agreement"]) and last["kl"] == pytest.approx(f["kl"])
    assert last["acc"] == kdlib.metrics.accuracy(students[("T=4", 1)], d.test.x, d.test.y)
    fig = lesson.curves_figure(curves, 2)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 4  # scratch and T=4, train and test


@pytest.mark.slow
def test_twins_are_teacher_shaped_and_can_be_skipped():
    d = tiny_data(40)
    tl = torch.randn(len(d.train), 10, generator=torch.Generator().manual_seed(0))
    assert lesson.train_twins(d, tl, seeds=2, epochs=0, lr=3e-3, progress=False) == {}
    tw = lesson.train_twins(d, tl, seeds=1, epochs=1, lr=3e-3, progress=False)
    assert list(tw) == [("twin", 0)]
    assert kdlib.models.count_params(tw[("twin", 0)]) == kdlib.models.count_params(kdlib.models.cnn())


def _linear_students():
    torch.manual_seed(0)
    return {(k, s): kdlib.models.mlp([784, 4, 10]) for k in ("scratch", "T=4") for s in (0, 1)}


def test_fidelity_rows_and_tables():
    d = tiny_data()
    teacher = kdlib.models.mlp([784, 6, 10])
    students = _linear_students()
    students[("copy", 0)] = teacher
    logits = {"train": kdlib.models.predict(teacher, d.train.x),
              "test": kdlib.models.predict(teacher, d.test.x)}
    per_split = {"train": lesson.logits_of(students, d.train.x), "test": lesson.logits_of(students, d.test.x)}
    assert torch.equal(per_split["test"][("T=4", 1)], kdlib.models.predict(students[("T=4", 1)], d.test.x))
    rows = lesson.fidelity_rows(per_split, logits, d.test.y)
    copy = [r for r in rows if r["kind"] == "copy"][0]
    assert copy["agree_train"] == 1.0 and copy["kl_test"] == pytest.approx(0.0, abs=1e-6)
    assert copy["test_acc"] == kdlib.metrics.accuracy(teacher, d.test.x, d.test.y)
    text = lesson.format_fidelity(rows, 0.885)
    assert "scratch" in text and "88.50" in text and "±" in text
    gap = lesson.fidelity_gap(rows, "T=4")
    mine = [r for r in rows if r["kind"] == "T=4"]
    assert gap.mean == pytest.approx(np.mean([r["agree_train"] - r["agree_test"] for r in mine]))


def test_disagreement_table_against_a_loop():
    rng = np.random.default_rng(0)
    y, tp, sp = (torch.tensor(rng.integers(0, 3, 200)) for _ in range(3))
    rows = lesson.disagreement_table(tp, sp, y, ("a", "b", "c"))
    for c, r in enumerate(rows):
        idx = [i for i in range(200) if y[i] == c]
        assert r["n"] == len(idx)
        assert r["teacher_only"] == sum(tp[i] == c and sp[i] != c for i in idx)
        assert r["student_only"] == sum(sp[i] == c and tp[i] != c for i in idx)
        assert r["differ"] == sum(tp[i] != sp[i] for i in idx)
    assert "total" in lesson.format_disagreement(rows)


def test_most_disputed_only_disagreements_largest_kl_first():
    t = torch.tensor([[5.0, 0.0], [0.0, 5.0], [1.0, 0.0], [3.0, 0.0]])
    s = torch.tensor([[0.0, 5.0], [0.0, 5.0], [0.0, 1.0], [0.0, 0.5]])
    idx = lesson.most_disputed(t, s, k=8)
    assert idx.tolist() == [0, 3, 2]  # row 1 agrees; KL: row 0 > row 3 > row 2
    x = torch.rand(4, 1, 28, 28)
    fig = lesson.disputed_figure(x, torch.tensor([0, 1, 0, 0]), t, s, ("p", "q"), idx)
    titled = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titled) == 3 and "teacher: p 0.99" in titled[0]


def test_calibration_ece_table_and_widget():
    d = tiny_data()
    students = _linear_students()
    t_logits = torch.randn(len(d.test), 10, generator=torch.Generator().manual_seed(1)) * 4
    rows = lesson.ece_table(lesson.logits_of(students, d.test.x), t_logits, d.test.y, n_bins=5)
    assert len(rows) == 5 and rows[1]["ece"] == pytest.approx(kdlib.metrics.ece(
        kdlib.models.predict(students[("scratch", 0)], d.test.x).softmax(1), d.test.y, n_bins=5), abs=1e-5)
    teacher_row = rows[0]
    assert teacher_row["kind"] == "teacher"
    want = kdlib.metrics.ece(t_logits.softmax(1), d.test.y, n_bins=5)
    assert teacher_row["ece"] == pytest.approx(want, abs=1e-5)
    assert "scratch" in lesson.format_ece(rows)
    bins = lesson.calibration({"teacher": t_logits, "other": t_logits / 4}, d.test.y, n_bins=5)
    w = lesson.ReliabilityWidget(bins)
    assert w.slider.value == "other" and w.text.startswith("other: ECE")
    w.slider.value = "teacher"
    assert f"{100 * bins['teacher']['ece']:.2f} %" in w.text
    assert w.figure.axes[0].get_title() == "teacher"
    heights = [p.get_height() for p in w.figure.axes[0].patches[:5]]
    np.testing.assert_allclose(heights, np.nan_to_num(bins["teacher"]["accuracy"]))


def test_shift_rows_table_and_beats_teacher():
    d = tiny_data()
    teacher = kdlib.models.mlp([784, 6, 10])
    students = _linear_students()
    shifted = lesson.shifted_sets(d.test.x, (("none", 0.0), ("noise", 0.3)))
    assert list(shifted) == ["none", "noise 0.3"]
    assert torch.equal(shifted["noise 0.3"], kdlib.data.shift(d.test.x, "noise", 0.3, seed=0))
    rows = lesson.shift_rows(teacher, students, shifted, d.test.y)
    assert len(rows) == 2 * 5
    r = [r for r in rows if r["shift"] == "noise 0.3" and r["kind"] == "T=4" and r["seed"] == 1][0]
    x = shifted["noise 0.3"]
    assert r["acc"] == kdlib.metrics.accuracy(students[("T=4", 1)], x, d.test.y)
    assert r["agree"] == kdlib.metrics.agreement(teacher, students[("T=4", 1)], x)
    assert "noise 0.3" in lesson.format_shifts(rows)
    fake = [{"shift": "a", "kind": "teacher", "acc": 0.5}, {"shift": "a", "kind": "s", "acc": 0.7},
            {"shift": "a", "kind": "s", "acc": 0.5}, {"shift": "b", "kind": "teacher", "acc": 0.9},
            {"shift": "b", "kind": "s", "acc": 0.8}]
    (name, kind, diff), = lesson.beats_teacher(fake)
    assert (name, kind) == ("a", "s") and diff == pytest.approx(0.1)
    assert len(lesson.shift_examples_figure(shifted, n=3).axes) == 6


def test_check_exercise():
    assert lesson.check_exercise(1, 0.5)
    assert lesson.check_exercise(2, 0.4) and not lesson.check_exercise(2, 0.0)
    assert lesson.check_exercise(3, "(a)") and not lesson.check_exercise(3, "b")
    with pytest.raises(ValueError, match="n=4"):
        lesson.check_exercise(4, 1)


def test_exercise_2_answer_is_what_kdlib_computes():
    # confidences .9 .9 .6 .6; the two .9 examples: one right; the .6 ones: both right
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    y = torch.tensor([0, 1, 0, 0])
    assert kdlib.metrics.reliability_bins(probs, y, n_bins=4)["ece"] == pytest.approx(0.4)
    assert kdlib.metrics.reliability_bins(probs, y, n_bins=2)["ece"] == pytest.approx(0.0)
    t, s = torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 1]]), \
        torch.tensor([[1.0, 0, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]])
    assert kdlib.metrics.agreement_from_logits(t, s) == 0.5
