"""Tests of kdlib/lessons/lesson07_efficiency.py (notebook 07): parameter check, the student
family, tables, quantisation, break-even, the widget, the figures and the exercise checks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import kdlib.models
from kdlib.data import Split, Splits
from kdlib.lessons import lesson07_efficiency as lesson

GOOD = dict(n_train=2000, epochs=10, seeds=3, lam=0.5, T=4.0, lr=3e-2, repeats=50,
            try_compile=False, quick=False)


def tiny_data(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.arange(n) % 10
    return Splits(Split(x, y), Split(x[:40], y[:40]), Split(x[:60], y[:60]),
                  tuple(str(i) for i in range(10)), "tiny")


def test_check_params_quick_and_errors():
    s = lesson.check_params(**GOOD)
    assert isinstance(s, lesson.Settings) and vars(s) == GOOD
    assert s.widths == (8, 32, 128, 512) and s.cnn and 4.0 in s.grid_Ts
    q = lesson.check_params(**{**GOOD, "quick": True})
    assert q.seeds == 1 and q.epochs == 2 and not q.cnn
    assert 4.0 in q.grid_Ts  # the main T is always in the grid, so its runs are reused
    with pytest.raises(ValueError, match="lam=1.5"):
        lesson.check_params(**{**GOOD, "lam": 1.5})
    with pytest.raises(ValueError, match="T=0"):
        lesson.check_params(**{**GOOD, "T": 0.0})
    with pytest.raises(TypeError, match="quick must be True or False"):
        lesson.check_params(**{**GOOD, "quick": 1})


def test_family_counts_match_the_formula():
    fam = lesson.family((8, 64), with_cnn=True)
    assert list(fam) == ["mlp-8", "mlp-64", "cnn-4-8"]
    m = fam["mlp-64"]()
    assert kdlib.models.count_params(m) == 784 * 64 + 64 + 64 * 10 + 10
    assert kdlib.models.flops(m, lesson.INPUT_SHAPE) == 2 * (784 * 64 + 64 * 10)


@pytest.mark.slow
def test_train_family_rows_summary_and_reuse():
    data = tiny_data()
    t_logits = torch.randn(len(data.train), 10, generator=torch.Generator().manual_seed(1))
    kw = dict(seeds=2, epochs=1, lam=0.5, T=4.0, lr=3e-3, progress=False)
    rows, trained = lesson.train_family(data, t_logits, widths=(8,), with_cnn=False, **kw)
    assert len(rows) == 4 and set(trained) == {("mlp-8", "scratch"), ("mlp-8", "distilled")}
    again, _ = lesson.train_family(data, t_logits, widths=(8,), with_cnn=False, **kw)
    assert [r["test_acc"] for r in rows] == [r["test_acc"] for r in again]  # deterministic
    s = lesson.family_summary(rows)[0]
    d = np.array(s["distilled"]) - np.array(s["scratch"])
    assert s["gain"].mean == pytest.approx(d.mean()) and s["gain"].n == 2
    table = lesson.format_family(lesson.family_summary(rows), 0.885, 225034, 5262080)
    assert "mlp-8" in table and "teacher" in table and "88.50 %" in table
    # the width × T grid reuses the family's runs at the same T and trains the others
    grid = lesson.width_T_grid(data, t_logits, widths=(8,), Ts=(1.0, 4.0), seeds=2, epochs=1,
                               lam=0.5, lr=3e-3, done=rows, progress=False)
    reused = [r for r in grid if r["T"] == 4.0]
    assert [r["test_acc"] for r in reused] == [r["test_acc"] for r in rows if r["method"] == "distilled"]
    best = lesson.best_T_per_width(grid)
    means = {T: np.mean([r["test_acc"] for r in grid if r["T"] == T]) for T in (1.0, 4.0)}
    assert best[8] == (max(means, key=means.get), pytest.approx(max(means.values())))


def test_latency_table_and_ratio():
    models = {"a": kdlib.models.mlp([784, 8, 10]), "b": kdlib.models.mlp([784, 64, 10])}
    rows = lesson.latency_table(models, repeats=4, batch_sizes=(1, 8))
    assert [(r["model"], r["batch"]) for r in rows] == [("a", 1), ("a", 8), ("b", 1), ("b", 8)]
    for r in rows:
        assert r["q25"] <= r["median"] <= r["q75"]
        assert r["gflops"] == pytest.approx(r["flops"] * r["batch"] / r["median"] / 1e9)
    get = {(r["model"], r["batch"]): r["median"] for r in rows}
    assert lesson.speed_ratio(rows, "a", "b", 8) == pytest.approx(get[("b", 8)] / get[("a", 8)])
    text = lesson.format_latency(rows, peak_gflops=10.0)
    assert text.count("\n") == 2 and "a " in text


def test_quantize_shrinks_and_keeps_predictions_close():
    torch.manual_seed(0)
    m = kdlib.models.mlp([784, 128, 10]).eval()
    q = lesson.quantize(m)
    assert lesson.size_on_disk(q) < lesson.size_on_disk(m) / 2.5
    x = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    agree = (kdlib.models.predict(m, x).argmax(1) == kdlib.models.predict(q, x).argmax(1)).float().mean()
    assert agree > 0.9
    assert isinstance(m[1], torch.nn.Linear)  # the original model is left alone


def test_cheaper_still_rows_and_a_failed_compile(monkeypatch):
    data = tiny_data()
    m = kdlib.models.mlp([784, 16, 10])

    def broken(model):
        raise RuntimeError("no C++ compiler found\nsecond line")

    monkeypatch.setattr(torch, "compile", broken)
    rows = lesson.cheaper_still(m, data, repeats=3, compile_too=True)
    assert rows[0] == {"variant": "compiled",
                       "error": "torch.compile failed: RuntimeError: no C++ compiler found"}
    assert [r["variant"] for r in rows[1:]] == ["float32", "int8 dynamic"]
    assert "no C++ compiler found" in lesson.format_cheaper(rows)


def test_break_even_formula_and_widget():
    assert lesson.break_even(30, 0.002, 0.0005) == pytest.approx(20_000)
    assert lesson.break_even(1, 0.001, 0.002) == math.inf
    w = lesson.BreakEvenWidget(20_000)
    w.slider.value = 1e4
    assert w.days == pytest.approx(2.0) and "2.0 days" in w.text
    w.slider.value = 1e6
    assert w.days == pytest.approx(0.02) and "minutes" in w.text and w.label.value == w.text


def test_figures_have_the_expected_content():
    summary = [{"model": "mlp-8", "params": 10, "flops": 20, "scratch": [0.6, 0.62],
                "distilled": [0.65, 0.66], "gain": None},
               {"model": "mlp-64", "params": 100, "flops": 200, "scratch": [0.8, 0.81],
                "distilled": [0.79, 0.8], "gain": None}]
    lat = [{"model": m, "batch": b, "median": t, "flops": f, "gflops": f * b / t / 1e9}
           for m, f, t1 in (("mlp-8", 20, 1e-5), ("mlp-64", 200, 2e-5), ("teacher", 5000, 1e-4))
           for b, t in ((1, t1), (256, t1 * 10))]
    fig = lesson.pareto_figure(summary, lat, {"acc": 0.88, "params": 1000, "flops": 5000})
    assert len(fig.axes) == 3 and all(a.get_xscale() == "log" for a in fig.axes)
    front = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"][0]
    assert list(front.get_xdata()) == [10, 100, 1000]  # every mean is on the front here
    grid = [{"width": w, "T": T, "seed": s, "test_acc": 0.5 + 0.01 * T}
            for w in (8, 64) for T in (1.0, 4.0) for s in (0, 1)]
    assert len(lesson.width_T_figure(grid).axes[0].lines) >= 2
    ov = lesson.overhead_figure(lat, 50.0)
    assert any(ln.get_ydata()[0] == 50.0 for ln in ov.axes[0].lines)


def test_check_exercise():
    assert lesson.check_exercise(1, 101_632)
    assert not lesson.check_exercise(1, 100_000)
    assert lesson.check_exercise(2, 20_000)
    assert lesson.check_exercise(3, "B") and not lesson.check_exercise(3, "a")
    assert not lesson.check_exercise(2, "many")
    with pytest.raises(ValueError, match="n=9"):
        lesson.check_exercise(9, 1)


@pytest.mark.slow
def test_teacher_cost_parts():
    data = tiny_data()
    teacher = kdlib.models.cnn()
    cost = lesson.teacher_cost(teacher, data, lambda: kdlib.models.mlp([784, 8, 10]), epochs=1,
                               lam=0.5, T=4.0, lr=3e-3, steps=2)
    assert set(cost) == {"teacher_step", "teacher_train", "teacher_pass", "student_cached",
                         "student_per_batch"}
    assert cost["teacher_train"] == pytest.approx(cost["teacher_step"] * lesson.TEACHER_STEPS)
    assert all(v > 0 for v in cost.values())


def test_lesson_imports_no_other_lesson():
    # the lesson uses only core modules (never another lesson)
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(lesson))
    mods = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module]
    assert not [m for m in mods if m.startswith("kdlib.lessons")]
