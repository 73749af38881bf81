"""Tests of kdlib/lessons/lesson07_efficiency.py (notebook 07): parameter check, the student
family, tables, quantisation, break-even, the widget, the figures and the exercise checks."""

from __future__ import annotations

import math

import pytest
import torch
from _toy import assert_check_params_basics

import kdlib.experiments
import kdlib.models
from kdlib.data import Split, Splits
from kdlib.lessons import lesson07_efficiency as lesson

GOOD = dict(n_train=2000, epochs=10, seeds=5, lam=0.5, T=2.0, lr=3e-2, repeats=50,
            try_compile=False, quick=False)


def test_check_params_basics():
    assert_check_params_basics(lesson, GOOD, integer="seeds")


def tiny_data(n=120, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g)
    y = torch.arange(n) % 10
    return Splits(Split(x, y), Split(x[:40], y[:40]), Split(x[:60], y[:60]),
                  tuple(str(i) for i in range(10)), "tiny")


def test_check_params_quick_and_errors():
    s = lesson.check_params(**GOOD)
    assert isinstance(s, lesson.Settings) and vars(s) == GOOD
    assert s.widths == (8, 32, 128) and "cnn-4-8" in s.cost_only and s.Ts == (1.0, 2.0, 4.0, 8.0)
    assert s.lrs == pytest.approx((0.01, 0.03))  # the same candidates for every method
    q = lesson.check_params(**{**GOOD, "quick": True, "T": 3.0})
    assert q.seeds == 2 and q.epochs == 2 and int(lesson.PRIMARY[4:]) in q.widths
    assert 3.0 in q.Ts  # T is always a candidate
    with pytest.raises(ValueError, match="lam=1.5"):
        lesson.check_params(**{**GOOD, "lam": 1.5})
    with pytest.raises(ValueError, match="T=0"):
        lesson.check_params(**{**GOOD, "T": 0.0})
    with pytest.raises(TypeError, match="quick must be True or False"):
        lesson.check_params(**{**GOOD, "quick": 1})


def test_family_counts_match_the_formula():
    fam = lesson.family((8, 64), cost_only=("mlp-512", "cnn-4-8"))
    assert list(fam) == ["mlp-8", "mlp-64", "mlp-512", "cnn-4-8"]
    m = fam["mlp-64"]()
    assert kdlib.models.count_params(m) == 784 * 64 + 64 + 64 * 10 + 10
    assert kdlib.models.flops(m, lesson.INPUT_SHAPE) == 2 * (784 * 64 + 64 * 10)
    arch = lesson.architecture_table(fam, kdlib.models.cnn())
    assert list(arch.index)[-1] == "teacher" and arch.loc["mlp-64", "params"] == 50_890
    with pytest.raises(ValueError, match="cost_only"):
        lesson.family((8,), cost_only=("rnn",))


@pytest.mark.slow
def test_train_family_chooses_on_validation_and_tests_only_the_chosen():
    data = tiny_data()
    rows = kdlib.experiments.sample_rows(len(data.train.y), 40, 2)
    t_logits = torch.randn(len(data.train), 10, generator=torch.Generator().manual_seed(1))
    s = lesson.check_params(**{**GOOD, "n_train": 100, "epochs": 1, "quick": True})  # 2 seeds
    s = lesson.Settings(**{**vars(s), "n_train": 40})
    fam = lesson.train_family(data, rows, t_logits, s, progress=False)
    grid, chosen = fam["grid"], fam["chosen"]
    n_cand = len(s.lrs) * (1 + len(s.Ts))
    assert len(grid) == len(s.widths) * n_cand * s.seeds and "test_acc" not in grid.columns
    sel = lesson.selection(grid)
    for (model, method), c in sel.iterrows():  # the best mean validation accuracy was chosen
        g = grid[(grid["model"] == model) & (grid["method"] == method)]
        assert c["val_acc"] == pytest.approx(g.groupby(["lr", "T"])["val_acc"].mean().max())
    assert len(chosen) == len(s.widths) * 2 * s.seeds and chosen["test_acc"].notna().all()
    assert set(fam["models"]) == {(f"mlp-{w}", m) for w in s.widths for m in ("scratch", "distilled")}
    again = lesson.train_family(data, rows, t_logits, s, progress=False)
    assert again["grid"]["val_acc"].tolist() == grid["val_acc"].tolist()  # deterministic
    table = lesson.primary_table(chosen)
    assert list(table.index) == ["scratch", "distilled"] and table.loc["distilled", "n"] == s.seeds
    arch = lesson.architecture_table(lesson.family(s.widths), kdlib.models.cnn())
    gains = lesson.gain_by_width(chosen, arch)
    assert gains.loc[lesson.PRIMARY, "role"] == "primary"
    assert gains.loc[lesson.PRIMARY, "diff"] == pytest.approx(table.loc["distilled", "diff"])


def _rows(diffs, base=0.8):
    return [{"method": m, "seed": i, "model": "mlp-128", "test_acc": base + (d if m == "distilled" else 0)}
            for i, d in enumerate(diffs) for m in ("scratch", "distilled")]


@pytest.mark.parametrize("diffs, verdict", [
    ([0.010, 0.012, 0.011, 0.009, 0.013], "distillation helped"),
    ([-0.010, -0.012, -0.011, -0.009, -0.013], "distillation hurt"),
    ([0.010, -0.012, 0.004, -0.003, 0.001], "was not shown"),
])
def test_say_primary_and_family_follow_the_interval(diffs, verdict):
    import pandas as pd

    chosen = pd.DataFrame(_rows(diffs))
    text = lesson.say_primary(lesson.primary_table(chosen)).data
    assert verdict in text and "n=5" in text and "smoke run" not in text
    arch = pd.DataFrame({"params": [101_770, 225_034], "FLOPs": [203_264, 5_262_080]},
                        index=["mlp-128", "teacher"])
    fam = lesson.say_family(lesson.gain_by_width(chosen, arch), 0.885, 225_034).data
    assert ("a difference was not shown" if verdict == "was not shown" else verdict) in fam
    one = lesson.say_primary(lesson.primary_table(pd.DataFrame(_rows(diffs[:1])))).data
    assert "was not shown" in one and "smoke run" in one  # one seed: no interval, nothing shown


def test_latency_table_and_frame():
    models = {"a": kdlib.models.mlp([784, 8, 10]), "b": kdlib.models.mlp([784, 64, 10])}
    rows = lesson.latency_table(models, repeats=4, batch_sizes=(1, 256))
    assert [(r["model"], r["batch"]) for r in rows] == [("a", 1), ("a", 256), ("b", 1), ("b", 256)]
    for r in rows:
        assert r["q25"] <= r["median"] <= r["q75"]
        assert r["gflops"] == pytest.approx(r["flops"] * r["batch"] / r["median"] / 1e9)
    get = {(r["model"], r["batch"]): r["median"] for r in rows}
    frame = lesson.latency_frame(rows, peak_gflops=10.0)
    assert list(frame.index) == ["a", "b"] and "batch 256 % peak" in frame.columns
    assert frame.loc["a", "batch 1 median (µs)"] == pytest.approx(1e6 * get[("a", 1)], abs=0.06)


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
    table = lesson.cheaper_still(m, data, repeats=3, compile_too=True)
    assert table.loc["compiled", "error"] == "torch.compile failed: RuntimeError: no C++ compiler found"
    assert list(table.index) == ["compiled", "float32", "int8 dynamic"]
    assert table.loc["int8 dynamic", "size (kB)"] < table.loc["float32", "size (kB)"]
    text = lesson.say_cheaper(table).data
    assert "no C++ compiler found" in text and "int8 shrank" in text


def test_break_even_formula_and_widget():
    assert lesson.break_even(30, 0.002, 0.0005) == pytest.approx(20_000)
    assert lesson.break_even(1, 0.001, 0.002) == math.inf
    w = lesson.BreakEvenWidget(20_000)
    w.slider.value = 1e4
    assert w.days == pytest.approx(2.0) and "2.0 days" in w.text
    w.slider.value = 1e6
    assert w.days == pytest.approx(0.02) and "minutes" in w.text and w.label.value == w.text


def test_figures_and_pareto_points():
    import pandas as pd

    chosen = pd.DataFrame([{"model": m, "method": meth, "seed": sd, "test_acc": acc + 0.01 * sd}
                           for m, base in (("mlp-8", 0.6), ("mlp-64", 0.8))
                           for meth, acc in (("scratch", base), ("distilled", base + 0.02)) for sd in (0, 1)])
    arch = pd.DataFrame({"params": [10, 100, 1000], "FLOPs": [20, 200, 5000]},
                        index=["mlp-8", "mlp-64", "teacher"])
    lat = [{"model": m, "batch": b, "median": t, "flops": f, "gflops": f * b / t / 1e9, "per_example": t / b}
           for m, f, t1 in (("mlp-8", 20, 1e-5), ("mlp-64", 200, 2e-5), ("teacher", 5000, 1e-4))
           for b, t in ((1, t1), (256, t1 * 10))]
    points = lesson.pareto_points(chosen, lat, arch, 0.88)
    assert points["front params"].tolist() == [False, True, False, True, True]  # scratch is beaten
    fig = lesson.pareto_figure(points)
    assert len(fig.axes) == 3 and all(a.get_xscale() == "log" for a in fig.axes)
    front = [ln for ln in fig.axes[0].lines if ln.get_linestyle() == "--"][0]
    assert list(front.get_xdata()) == [10, 100, 1000]
    assert "`mlp-8 distilled`" in lesson.say_pareto(points).data
    grid = pd.DataFrame([{"model": "mlp-8", "method": meth, "lr": lr, "T": T, "seed": sd,
                          "val_acc": 0.5 + 0.01 * T * (meth == "distilled")}
                         for lr in (0.01, 0.03)
                         for meth, Ts in (("scratch", (1.0,)), ("distilled", (1.0, 4.0)))
                         for T in Ts for sd in (0, 1)])
    sel = lesson.selection(grid)
    assert sel.loc[("mlp-8", "distilled"), "T"] == 4.0
    assert len(lesson.width_T_figure(grid, sel).axes) == 1
    assert "T = 4 (inside Hinton et al.'s 2.5 to 4" in lesson.say_temperature(sel, grid).data
    ov = lesson.overhead_figure(lat, 50.0)
    assert any(ln.get_ydata()[0] == 50.0 for ln in ov.axes[0].lines)
    text = lesson.say_latency(lat, pd.DataFrame({"FLOPs": [20, 200, 5000], "params": [10, 100, 1000]},
                                                index=["mlp-8", "mlp-64", "teacher"])).data
    assert "10× fewer FLOPs made it 2.0× faster" in text
    assert "batching" in lesson.say_overhead(lat, 50.0).data


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
