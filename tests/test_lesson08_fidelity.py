"""Tests of kdlib/lessons/lesson08_fidelity.py (notebook 08): parameter check, the students of the
comparison (lockstep, per-seed samples, selection on validation), tracked training, the twin,
fidelity / disagreement / calibration / shift tables, temperature scaling, the reliability
widget, figures, the say_* sentences and the exercise checks."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch
from _toy import assert_check_params_basics

import kdlib.data
import kdlib.experiments
import kdlib.metrics
import kdlib.models
from kdlib import results
from kdlib.data import Split, Splits
from kdlib.lessons import lesson08_fidelity as lesson

GOOD = dict(n_train=2000, epochs=10, seeds=5, width=128, lam=0.5, T=4.0, lr=3e-2, twin_epochs=2,
            n_bins=10, quick=False)


def test_check_params_basics():
    assert_check_params_basics(lesson, GOOD, integer="seeds")


def tiny_data(n=100, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.arange(n) % 10
    return Splits(Split(x, y), Split(x[:30], y[:30]), Split(x[:50], y[:50]),
                  tuple(f"c{i}" for i in range(10)), "tiny")


def tiny_teacher(d, seed=3):
    g = torch.Generator().manual_seed(seed)
    return {name: torch.randn(len(getattr(d, name).y), 10, generator=g) for name in ("train", "val", "test")}


def test_check_params_quick_and_errors():
    s = lesson.check_params(**GOOD)
    assert isinstance(s, lesson.Settings) and vars(s) == GOOD
    assert s.temperatures == (1.0, 4.0) and s.n_test is None and s.n_pool == 6000
    assert s.lrs == pytest.approx((1e-2, 3e-2)) and s.track_seeds == 2
    q = lesson.check_params(**{**GOOD, "quick": True, "T": 3.0})
    assert q.seeds == 2 and q.n_test == 500 and q.temperatures == (1.0, 3.0) and q.track_seeds == 1
    with pytest.raises(ValueError, match="n_bins=1"):
        lesson.check_params(**{**GOOD, "n_bins": 1})


def test_subset_test_cuts_only_the_test_split():
    d = tiny_data()
    cut = lesson.subset_test(d, 7)
    assert len(cut.test) == 7 and len(cut.train) == len(d.train)
    assert lesson.subset_test(d, None) is d


def test_student_configs_give_every_method_the_same_learning_rates():
    S = lesson.check_params(**{**GOOD, "seeds": 2})
    configs = lesson.student_configs(S, [tuple(range(10)), tuple(range(10, 20))])
    assert len(configs) == 2 * 2 * 4  # seeds × lrs × (scratch, ls, kd T=1, kd T=4)
    by = {}
    for c in configs:
        by.setdefault(c.method.name, set()).add(c.settings.lr)
        assert c.rows == (tuple(range(10)) if c.seed == 0 else tuple(range(10, 20)))
    assert by["scratch"] == by["label smoothing"] == by["kd"] == set(S.lrs)


@pytest.mark.slow
def test_train_comparison_select_and_tracked_students():
    d = tiny_data()
    t = tiny_teacher(d)
    S = SimpleNamespace(width=8, seeds=2, epochs=2, lam=0.5, T=4.0, temperatures=(1.0, 4.0),
                        lrs=(1e-2, 3e-2), track_seeds=2)
    rows = kdlib.experiments.sample_rows(len(d.train.y), 40, 2, labels=d.train.y)
    out = lesson.train_comparison(d, t, S, rows, progress=False)
    assert len(out) == 16 and {r["method"] for r in out} == set(lesson.METHODS)
    r = next(r for r in out if r["method"] == "kd" and r["seed"] == 1)
    idx = torch.as_tensor(rows[1])
    f = kdlib.metrics.fidelity(t["train"][idx], kdlib.models.predict(r["student"], d.train.x[idx]))
    assert r["agree_train"] == pytest.approx(f["agreement"]) and r["kl_train"] == pytest.approx(f["kl"])
    assert r["test_acc"] == kdlib.metrics.accuracy(r["student"], d.test.x, d.test.y)
    selection = kdlib.experiments.choose(out, by=("lr", "T"), metric="agree_val")
    for m, s in selection.items():
        means = {(x["lr"], x["T"]): np.mean([y["agree_val"] for y in out if y["method"] == m
                                             and (y["lr"], y["T"]) == (x["lr"], x["T"])])
                 for x in out if x["method"] == m}
        assert s["mean"] == pytest.approx(max(means.values()))
    best = kdlib.experiments.chosen(out, selection, by=("lr", "T"))
    assert len(best) == 6 and sorted(r["seed"] for r in best if r["method"] == "kd") == [0, 1]
    assert list(lesson.selection_frame(selection).index) == list(lesson.METHODS)
    assert list(lesson.primary_table(best).index) == ["scratch", "kd"]
    curves = lesson.tracked_students(d, t, S, rows, selection, progress=False)
    assert set(curves) == {"scratch", "kd"} and len(curves["kd"]) == 2 * 2 * 2  # seeds × epochs × splits
    fig = lesson.curves_figure(curves, 2)
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 4
    assert "tracked seeds" in lesson.say_curves(curves, 2).data


@pytest.mark.slow
def test_twins_are_teacher_shaped_and_can_be_skipped():
    d = tiny_data(40)
    t = tiny_teacher(d, 0)
    assert lesson.train_twins(d, t["train"], seeds=2, epochs=0, lr=3e-3, progress=False) == {}
    rows = [tuple(range(20))]
    tw = lesson.train_twins(d, t["train"], seeds=1, epochs=2, lr=3e-3, rows=rows, progress=False)
    assert list(tw) == [("twin", 0)]
    model, history = tw[("twin", 0)]
    assert kdlib.models.count_params(model) == kdlib.models.count_params(kdlib.models.cnn())
    (row,) = lesson.twin_rows(tw, d, t, rows)
    assert row["method"] == "twin" and row["epoch_loss"] == history.epoch_loss
    assert "2 epochs" in lesson._say_twin([row]) and "not trained to convergence" in lesson._say_twin([row])


def _rows(values: dict, key="agree_test"):
    """Fake result rows: method → per-seed values of ``key`` (other columns filled in)."""
    out = []
    for m, vs in values.items():
        for s, v in enumerate(vs):
            out.append({"method": m, "seed": s, key: v, "agree_train": v + 0.03, "kl_train": 0.1,
                        "kl_test": 0.2, "test_acc": v - 0.05, "agree_test": v})
    return out


@pytest.mark.parametrize("kd, verdict", [([0.88, 0.89, 0.90, 0.87, 0.88], "helped"),
                                         ([0.80, 0.81, 0.82, 0.80, 0.81], "hurt"),
                                         ([0.86, 0.84, 0.85, 0.83, 0.87], "not shown")])
def test_say_primary_follows_the_interval(kd, verdict):
    rows = _rows({"scratch": [0.85, 0.84, 0.86, 0.85, 0.85], "kd": kd})
    table = lesson.primary_table(rows)
    assert table.loc["kd", "verdict"] == verdict
    text = lesson.say_primary(table).data
    assert (f"distillation {verdict}" if verdict != "not shown" else "was not shown") in text
    assert f"{100 * np.mean(kd):.2f} %" in text and "5 seeds" in text


def test_fidelity_frame_gap_and_say_fidelity():
    rows = _rows({"scratch": [0.85, 0.84, 0.86], "kd": [0.88, 0.89, 0.90]})
    frame = lesson.fidelity_frame(rows, 0.885)
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == ["scratch", "kd", "teacher"]
    assert frame.loc["teacher", "test accuracy (%)"] == "88.50" and "±" in frame.loc["kd"].iloc[0]
    gap = lesson.fidelity_gap(rows, "kd")
    assert gap.mean == pytest.approx(0.03)
    text = lesson.say_fidelity(rows, 0.885).data
    assert "higher on the training images" in text and "more often than it is right" in text
    same = [{**r, "agree_train": r["agree_test"] + (0.01 if r["seed"] % 2 else -0.01)} for r in rows]
    assert "a gap was not shown" in lesson.say_fidelity(same, 0.885).data


def test_disagreement_table_against_a_loop_and_in_words():
    rng = np.random.default_rng(0)
    y, tp, sp = (torch.tensor(rng.integers(0, 3, 200)) for _ in range(3))
    table = lesson.disagreement_table(tp, sp, y, ("a", "b", "c"))
    for c, name in enumerate("abc"):
        idx = [i for i in range(200) if y[i] == c]
        r = table.loc[name]
        assert r["n"] == len(idx)
        assert r["teacher right, student wrong"] == sum(tp[i] == c and sp[i] != c for i in idx)
        assert r["student right, teacher wrong"] == sum(sp[i] == c and tp[i] != c for i in idx)
        assert r["differ"] == sum(tp[i] != sp[i] for i in idx)
    assert table.loc["total", "n"] == 200
    text = lesson.say_disagreement(table).data
    assert f"wrong {table.loc['total', 'teacher right, student wrong']} times" in text


def test_most_disputed_only_disagreements_largest_kl_first():
    t = torch.tensor([[5.0, 0.0], [0.0, 5.0], [1.0, 0.0], [3.0, 0.0]])
    s = torch.tensor([[0.0, 5.0], [0.0, 5.0], [0.0, 1.0], [0.0, 0.5]])
    idx = lesson.most_disputed(t, s, k=8)
    assert idx.tolist() == [0, 3, 2]  # row 1 agrees; KL: row 0 > row 3 > row 2
    x = torch.rand(4, 1, 28, 28)
    fig = lesson.disputed_figure(x, torch.tensor([0, 1, 0, 0]), t, s, ("p", "q"), idx)
    titled = [a.get_title() for a in fig.axes if a.get_title()]
    assert len(titled) == 3 and "teacher: p 0.99" in titled[0]
    assert "on 1 of them both exceed 0.8" in lesson.say_disputed(idx, t, s).data
    assert "agree on every image" in lesson.say_disputed(idx[:0], t, s).data


def test_fit_temperature_recovers_the_scale():
    g = torch.Generator().manual_seed(0)
    true = torch.randn(4000, 5, generator=g) * 2
    y = torch.multinomial(true.softmax(1), 1, generator=g).squeeze(1)
    assert kdlib.metrics.fit_temperature(3 * true, y) == pytest.approx(3.0, rel=0.1)


def test_ece_rows_table_and_say_calibration():
    d = tiny_data()
    torch.manual_seed(0)
    best = [{"method": m, "seed": s, "student": kdlib.models.mlp([784, 4, 10])}
            for m in ("scratch", "kd") for s in (0, 1, 2)]
    rows = lesson.ece_rows(best, d, n_bins=5)
    assert [r["method"] for r in rows[::3]] == ["scratch", "scratch + temperature scaling", "kd"]
    logits = kdlib.models.predict(best[0]["student"], d.test.x)
    assert rows[0]["ece"] == pytest.approx(kdlib.metrics.ece(logits.softmax(1), d.test.y, n_bins=5), abs=1e-6)
    t_fit = rows[3]["T_fit"]
    assert t_fit == kdlib.metrics.fit_temperature(kdlib.models.predict(best[0]["student"], d.val.x), d.val.y)
    assert rows[3]["ece"] == pytest.approx(kdlib.metrics.ece((logits / t_fit).softmax(1), d.test.y, n_bins=5))
    table = lesson.ece_table(rows)
    assert set(table["verdict"]) <= {"reference", "lower ECE", "higher ECE", "not shown"}
    teacher = lesson.calibration_summary(logits, d.test.y, 5)
    assert "ECE" in lesson.confidence_frame(rows, teacher).columns[0]


@pytest.mark.parametrize("kd, words", [([0.01, 0.011, 0.012], "kd helped"),
                                       ([0.05, 0.051, 0.052], "kd hurt"),
                                       ([0.02, 0.04, 0.03], "was not shown")])
def test_say_calibration_follows_the_interval(kd, words):
    rows = [{"method": m, "seed": s, "ece": v, "confidence": 0.9, "acc": 0.85, "T_fit": 1.5}
            for m, vs in (("scratch", [0.03, 0.031, 0.032]),
                          ("scratch + temperature scaling", [0.02, 0.021, 0.022]), ("kd", kd))
            for s, v in enumerate(vs)]
    text = lesson.say_calibration(rows, {"ece": 0.005, "confidence": 0.88, "acc": 0.885}).data
    want_words = {"kd helped": "**kd** (mean confidence 90.00 % for 85.00 % accuracy, over-confident on "
                                "average): lowered the ECE", "kd hurt": "raised the ECE",
                  "was not shown": "a change in ECE was not shown"}[words]
    assert want_words in text.split("Against")[0]
    assert "over-confident" in text and "mean T = 1.50" in text
    table = lesson.ece_table(rows)
    want = {"kd helped": "lower ECE", "kd hurt": "higher ECE", "was not shown": "not shown"}[words]
    assert table.loc["kd", "verdict"] == want


def test_calibration_widget_and_say_reliability():
    d = tiny_data()
    t_logits = torch.randn(len(d.test), 10, generator=torch.Generator().manual_seed(1)) * 4
    bins = lesson.calibration({"teacher": t_logits, "other": t_logits / 4}, d.test.y, n_bins=5)
    w = lesson.ReliabilityWidget(bins)
    assert w.slider.value == "other" and w.text.startswith("other: ECE")
    w.slider.value = "teacher"
    assert f"{100 * bins['teacher']['ece']:.2f} %" in w.text
    assert w.figure.axes[0].get_title() == "teacher"
    heights = [p.get_height() for p in w.figure.axes[0].patches[:5]]
    np.testing.assert_allclose(heights, np.nan_to_num(bins["teacher"]["accuracy"]))
    assert lesson.say_reliability(bins).data.count("confident there") == 2


def test_shift_rows_tables_and_say_shifts():
    d = tiny_data()
    teacher = kdlib.models.mlp([784, 6, 10])
    torch.manual_seed(0)
    students = {(k, s): kdlib.models.mlp([784, 4, 10]) for k in ("scratch", "kd") for s in (0, 1)}
    shifted = lesson.shifted_sets(d.test.x, (("none", 0.0), ("noise", 0.3)))
    assert list(shifted) == ["no shift", "noise 0.3"]
    assert torch.equal(shifted["noise 0.3"], kdlib.data.shift(d.test.x, "noise", 0.3, seed=0))
    rows = lesson.shift_rows(teacher, students, shifted, d.test.y)
    assert len(rows) == 2 * 5
    r = [r for r in rows if r["shift"] == "noise 0.3" and r["kind"] == "kd" and r["seed"] == 1][0]
    x = shifted["noise 0.3"]
    assert r["acc"] == kdlib.metrics.accuracy(students[("kd", 1)], x, d.test.y)
    assert r["agree"] == kdlib.metrics.agreement(teacher, students[("kd", 1)], x)
    assert list(lesson.shift_frame(rows).index) == ["no shift", "noise 0.3"]
    cmp = lesson.shift_comparison(rows)
    kd = [x["acc"] for x in rows if x["shift"] == "no shift" and x["kind"] == "kd"]
    sc = [x["acc"] for x in rows if x["shift"] == "no shift" and x["kind"] == "scratch"]
    assert cmp.loc["no shift", "verdict"] == results.paired_difference(kd, sc).verdict
    assert "of the 2 conditions" in lesson.say_shifts(rows, cmp).data
    assert len(lesson.shift_examples_figure(shifted, n=3).axes) == 6


def test_say_summary_and_runtime():
    primary = lesson.primary_table(_rows({"scratch": [0.85, 0.84, 0.86], "kd": [0.88, 0.89, 0.90]}))
    cal = [{"method": m, "seed": s, "ece": v} for m, v in (("scratch", 0.03), ("kd", 0.02)) for s in range(3)]
    srows = [{"shift": "none", "kind": k, "seed": s, "acc": a} for k, a in
             (("teacher", 0.9), ("scratch", 0.8), ("kd", 0.82)) for s in range(3)]
    cmp = pd.DataFrame({"verdict": ["helped"]}, index=pd.Index(["none"], name="shift"))
    text = lesson.say_summary(primary, cal, srows, cmp).data
    assert "distillation helped" in text and "kd: lower" in text and "below the teacher's under 1 of" in text
    assert lesson.say_runtime(41.6).data == "This run took 42 s from the parameters cell to here."


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
