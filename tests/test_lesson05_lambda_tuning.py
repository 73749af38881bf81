"""kdlib.lessons.lesson05_lambda_tuning: notebook 05's parameter check and settings, the
selection on validation, cross-validation with the corrected t, regimes, the say_* prose, figures
and widgets (headless: set slider values / press the button, check what was
drawn)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from _toy import assert_check_params_basics, make_problem

from kdlib import experiments, results
from kdlib._checks import Verdict
from kdlib.data import Split, Splits
from kdlib.lessons import lesson05_lambda_tuning as lesson
from kdlib.lessons.lesson05_lambda_tuning import GridExplorer, TrainNow

torch.set_num_threads(1)
FAST = dict(epochs=3, lr=0.05, batch_size=32, hidden=8)


@pytest.fixture(scope="module")
def grid_rows():
    experiments.clear_cache()
    data, logits = make_problem()
    rows = experiments.train_grid(data, logits, lams=[0.1, 0.5, 0.9], Ts=[1.0, 4.0], seeds=[0, 1], **FAST)
    base = experiments.baseline(data, logits, seeds=[0, 1], **FAST)
    experiments.clear_cache()
    return rows, base


def expected_rows(rows, lam, T):
    return [r for r in rows if r["lam"] == lam and r["T"] == T]


def test_grid_explorer_sliders_redraw_the_chosen_point(grid_rows):
    rows, base = grid_rows
    ex = GridExplorer(rows, teacher_acc=0.95, baseline=base, lam=0.1, T=1.0)
    assert ex.lam_slider.description == "λ" and ex.T_slider.description == "T"
    assert list(ex.lam_slider.options) == [("0.1", 0.1), ("0.5", 0.5), ("0.9", 0.9)]
    assert ex.current == expected_rows(rows, 0.1, 1.0)
    before = ex.redraws
    ex.lam_slider.value = 0.9
    ex.T_slider.value = 4.0
    assert ex.redraws == before + 2
    want = expected_rows(rows, 0.9, 4.0)
    assert ex.current == want and len(want) == 2
    acc_lines = ex.figure.axes[1].lines
    for i, r in enumerate(want):
        np.testing.assert_allclose(acc_lines[i].get_ydata(), r["history"]["val_acc"])
        np.testing.assert_allclose(ex.figure.axes[0].lines[i].get_ydata(),
                                   r["history"]["epoch_loss"])
    # baseline mean curve, then teacher and baseline reference lines
    np.testing.assert_allclose(acc_lines[2].get_ydata(),
                               np.mean([b["history"]["val_acc"] for b in base], axis=0))
    assert acc_lines[3].get_ydata()[0] == pytest.approx(0.95)
    assert acc_lines[4].get_ydata()[0] == pytest.approx(np.mean([b["val_acc"] for b in base]))
    # dots: this point's mean val acc and agreement (then the baseline's)
    dots = {ln.get_label(): ln.get_ydata() for ln in ex.figure.axes[2].lines}
    acc_means, agree_means = dots["val accuracy"], dots["agreement with teacher"]
    assert acc_means[0] == pytest.approx(np.mean([r["val_acc"] for r in want]))
    assert agree_means[0] == pytest.approx(np.mean([r["agreement"] for r in want]))
    assert not ex.figure.axes[2].patches  # a dot plot, no bars on a zoomed axis
    assert "λ=0.9, T=4" in ex.label.value
    assert f"{100 * np.mean([r['val_acc'] for r in want]):.2f}" in ex.label.value
    assert ex.last_seconds >= 0
    # a point is drawn once: coming back shows the same figure again
    shown = ex.figure
    ex.lam_slider.value = 0.5
    assert ex.current == expected_rows(rows, 0.5, 4.0) and ex.figure is not shown
    ex.lam_slider.value = 0.9
    assert ex.figure is shown and ex.current == want


def test_grid_explorer_prerender_draws_every_point_once(grid_rows):
    rows, base = grid_rows
    ex = GridExplorer(rows, baseline=base, lam=0.1, T=1.0)
    assert ex.prerender() == 3 * 2 - 1  # the point shown first was drawn already
    assert ex.prerender() == 0
    ex.lam_slider.value, ex.T_slider.value = 0.5, 4.0
    assert ex.current == expected_rows(rows, 0.5, 4.0)
    np.testing.assert_allclose(ex.figure.axes[1].lines[0].get_ydata(),
                               ex.current[0]["history"]["val_acc"])


def test_grid_explorer_opens_on_the_best_point_and_baseline_matches_any_T(grid_rows):
    rows, base = grid_rows
    ex = GridExplorer(rows + base)
    best = experiments.select_best(rows + base)
    assert (ex.lam_slider.value, ex.T_slider.value) == (best["lam"], best["T"])
    ex.lam_slider.value = 1.0
    ex.T_slider.value = 4.0  # the baseline rows were trained at T=1; T does not act at λ=1
    assert ex.current == base


def test_grid_explorer_bad_arguments(grid_rows):
    rows, _ = grid_rows
    with pytest.raises(ValueError, match="empty"):
        GridExplorer([])
    with pytest.raises(ValueError, match="lam=0.3"):
        GridExplorer(rows, lam=0.3, T=1.0)


@pytest.fixture
def tiny():
    return make_problem(n_train=90, n_val=45, n_test=30)


def test_train_now_button_trains_with_live_curves(tiny, monkeypatch):
    data, logits = tiny
    tn = TrainNow(data, logits, lam=0.5, T=2.0, epochs=2, hidden=8, lr=0.05, batch_size=32,
                  teacher_acc=0.9, baseline_acc=0.7)
    for s in (tn.lam_slider, tn.T_slider, tn.epochs_slider):
        assert s.continuous_update is False
    tn.lam_slider.value, tn.T_slider.value, tn.epochs_slider.value = 0.25, 3.0, 4
    states = []
    real = experiments.distill_mlp

    def spy(*args, **kwargs):
        states.append((tn.button.disabled, kwargs["lam"], kwargs["T"], kwargs["epochs"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(experiments, "distill_mlp", spy)
    tn.button.click()
    assert states == [(True, 0.25, 3.0, 4)]  # disabled while training, with the slider values
    assert tn.button.disabled is False and tn.running is False
    assert tn.progress.value == tn.progress.max == 4
    assert tn.error is None and tn.runs == 1
    assert len(tn.history.val_acc) == 4
    np.testing.assert_allclose(tn.figure.axes[1].lines[0].get_ydata(), tn.history.val_acc)
    np.testing.assert_allclose(tn.figure.axes[0].lines[0].get_ydata(), tn.history.epoch_loss)
    assert tn.result["val_acc"] == pytest.approx(tn.history.val_acc[-1])
    assert f"{100 * tn.result['val_acc']:.2f} %" in tn.label.value
    assert "λ = 0.25, T = 3" in tn.label.value
    # the same student as experiments.distill_mlp with seed 0 (fully determined by its seed)
    _, hist = real(data, logits, lam=0.25, T=3.0, seed=0, epochs=4, hidden=8, lr=0.05,
                   batch_size=32)
    assert hist.epoch_loss == tn.history.epoch_loss


def test_train_now_throttles_the_live_redraws(tiny):
    data, logits = tiny
    tn = TrainNow(data, logits, epochs=4, hidden=8)
    tn.redraw_every = 0.0
    tn.button.click()
    assert tn.draws == 4
    tn.redraw_every = 1e9  # only the first and the last epoch
    tn.button.click()
    assert tn.draws == 4 + 2
    np.testing.assert_allclose(tn.figure.axes[1].lines[0].get_ydata(), tn.history.val_acc)


def test_train_now_reenables_the_button_after_an_error(tiny, monkeypatch):
    data, logits = tiny
    tn = TrainNow(data, logits, epochs=1, hidden=8)

    def boom(*args, **kwargs):
        assert tn.button.disabled
        raise FloatingPointError("the loss became nan")

    monkeypatch.setattr(experiments, "distill_mlp", boom)
    tn.button.click()
    assert tn.button.disabled is False and tn.running is False
    assert isinstance(tn.error, FloatingPointError)
    assert "training failed" in tn.label.value and "nan" in tn.label.value
    assert tn.result is None and tn.runs == 1


def test_train_now_bad_arguments(tiny):
    data, logits = tiny
    with pytest.raises(ValueError, match="epochs=90"):
        TrainNow(data, logits, epochs=90, max_epochs=60)
    with pytest.raises(ValueError, match="lam=2"):
        TrainNow(data, logits, lam=2)


# --------------------------------------------------------------------------- prose follows the run
def _table(groups, reference):
    rows = [{"group": g, "seed": i, "test_acc": v} for g, vs in groups.items() for i, v in enumerate(vs)]
    return results.compare(rows, by="group", metric="test_acc", reference=reference)


def _primary(kd, ls):
    rows = [{"method": m, "seed": i, "test_acc": v}
            for m, vs in (("student from scratch", [0.80, 0.81, 0.81, 0.80, 0.82]), ("label smoothing", ls),
                          ("distilled", kd)) for i, v in enumerate(vs)]
    return lesson.primary_table(rows)


HELPED = [0.85, 0.86, 0.86, 0.85, 0.87]
HURT = [0.75, 0.76, 0.76, 0.75, 0.77]
NOISE = [0.83, 0.78, 0.85, 0.76, 0.82]


@pytest.mark.parametrize(("kd", "verdict"), [(HELPED, "distillation helped"), (HURT, "distillation hurt"),
                                             (NOISE, "a difference from distillation was not shown")])
def test_say_primary_follows_the_interval(kd, verdict):
    table = _primary(kd, [0.80, 0.81, 0.81, 0.80, 0.82])
    text = lesson.say_primary(table, teacher_acc=0.9).data
    d = results.paired_difference(kd, [0.80, 0.81, 0.81, 0.80, 0.82])
    assert f"{verdict}: {d.format()}" in text
    assert ("closes" in text) == (d.verdict == "helped")
    assert "a smoke run" not in text


def test_say_primary_on_the_label_smoothing_control():
    uniform_did_not = lesson.say_primary(_primary(HELPED, [0.80, 0.81, 0.81, 0.80, 0.82]), 0.9).data
    assert "*uniform* softening did not reproduce" in uniform_did_not
    part = lesson.say_primary(_primary(HELPED, [0.82, 0.83, 0.83, 0.82, 0.84]), 0.9).data
    assert "label smoothing helped" in part and "part of distillation's gain" in part
    few = lesson.say_primary(lesson.primary_table(
        [{"method": m, "seed": s, "test_acc": 0.8 + 0.01 * s + 0.02 * (m == "distilled")}
         for m in lesson.METHODS for s in range(2)]), 0.9).data
    assert "a smoke run" in few


def test_groups_table_and_say_regimes_and_transfer():
    seeds = range(5)
    mk = lambda vs: [{"seed": s, "val_acc": v} for s, v in zip(seeds, vs)]  # noqa: E731
    regimes = {"scratch (tuned)": mk([0.80, 0.81, 0.81, 0.80, 0.82]), "real teacher": mk(HELPED),
               "weak teacher": mk(HURT), "born-again teacher": mk(NOISE)}
    table = lesson.groups_table(regimes)
    assert table.attrs["reference"] == "scratch (tuned)"
    assert list(table["verdict"]) == ["reference", "helped", "hurt", "not shown"]
    few = results.paired_difference(NOISE, HELPED)
    text = lesson.say_regimes(table, {"weak teacher": [0.7], "born-again teacher": [0.8]}, few, 3).data
    assert "the CNN teacher: distillation helped" in text
    assert "the weak teacher (itself 70.00 %): distillation hurt" in text
    assert "neither shows the gain" in text and "after 3 epochs" in text
    arms = {"labels only": mk([0.80, 0.81, 0.81, 0.80, 0.82]), "distilled": mk(HELPED),
            "+ transfer set": mk(HELPED)}
    t = lesson.groups_table(arms)
    gain = results.paired_difference(HELPED, HELPED)
    assert "did not show a gain" in lesson.say_transfer(t, gain, 20, 3).data
    up = results.paired_difference([v + 0.01 for v in HELPED], HELPED)
    assert "added accuracy" in lesson.say_transfer(t, up, 20, 3).data
    summary = lesson.say_summary(_primary(HELPED, NOISE), table, gain).data
    assert "distillation helped" in summary and "weak teacher hurt" in summary
    assert "born-again teacher not shown" in summary


def test_say_selection_names_the_choices_and_the_grid_edges():
    sel = pd.DataFrame([{"method": "student from scratch", "label": "lr=0.03", "config": {"lr": 0.03},
                         "val_acc": 0.83, "candidates": 2},
                        {"method": "label smoothing", "label": "ε=0.4, lr=0.01",
                         "config": {"eps": 0.4, "lr": 0.01}, "val_acc": 0.835, "candidates": 4}])
    sel = sel.set_index("method")
    text = lesson.say_selection(sel, 5).data
    assert "over 5 seeds" in text and "**ε=0.4, lr=0.01** (83.50 %, best of 4)" in text
    assert "largest ε offered" in text and "student from scratch chose the largest learning rate" in text
    assert "learning rate" not in lesson.say_selection(sel, 5, lrs=(0.03,)).data.split("edge")[-1]


# --------------------------------------------------------------------------- data per seed
def _pool(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 1, 2, 2, generator=g) + y.view(-1, 1, 1, 1).float()
    val = Split(torch.randn(60, 1, 2, 2, generator=g), torch.arange(60) % 4)
    test = Split(torch.randn(40, 1, 2, 2, generator=g), torch.arange(40) % 4)
    return Splits(Split(x, y), val, test, ("a", "b", "c", "d"), "toy")


def test_resample_draws_a_new_stratified_subset_per_seed_and_keeps_val_test():
    pool = _pool()
    a, a2, b = lesson.resample(pool, 80, 0), lesson.resample(pool, 80, 0), lesson.resample(pool, 80, 1)
    assert torch.equal(a.train.x, a2.train.x)  # seeded
    assert not torch.equal(a.train.x, b.train.x)  # another seed, another sample
    assert torch.bincount(a.train.y).tolist() == [20, 20, 20, 20]
    assert a.val is pool.val and a.test is pool.test
    rows = {tuple(r.tolist()) for r in pool.train.x.reshape(len(pool.train.y), -1)}
    assert all(tuple(r.tolist()) in rows for r in a.train.x.reshape(80, -1))
    with pytest.raises(ValueError, match="n_train=500"):
        lesson.resample(pool, 500, 0)


def test_transfer_data_uses_the_validation_images_and_a_disjoint_new_val():
    pool = _pool()
    data, x_u = lesson.transfer_data(pool, n_labeled=40, seed=0, n_val=100)
    assert x_u is pool.val.x  # the images the teacher never trained on
    assert len(data.train.y) == 40 and len(data.val.y) == 100
    lab = {tuple(r.tolist()) for r in data.train.x.reshape(40, -1)}
    assert not any(tuple(r.tolist()) in lab for r in data.val.x.reshape(100, -1))
    assert lesson.equal_step_epochs(20, 1000, 5000) == 3
    assert lesson.equal_step_epochs(1, 10, 5000) == 1


# --------------------------------------------------------------------------- label smoothing
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.4])
def test_label_smoothing_is_kd_from_a_uniform_teacher(eps):
    same = lesson.label_smoothing_identity(eps, n_classes=7)
    assert same["difference"] == pytest.approx(eps * math.log(7), abs=1e-9)
    assert same["eps_log_k"] == pytest.approx(eps * math.log(7))
    assert same["same_gradient"]
    # against an independent NumPy computation of the smoothed cross-entropy
    g = torch.Generator().manual_seed(0)
    s = torch.randn(64, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 7, (64,), generator=g)
    logp = s.numpy() - np.log(np.exp(s.numpy()).sum(1, keepdims=True))
    q = np.full((64, 7), eps / 7)
    q[np.arange(64), y.numpy()] += 1 - eps
    assert same["label_smoothing"] == pytest.approx(float(-(q * logp).sum(1).mean()))
    assert torch.equal(lesson.uniform_teacher(3, 5), torch.zeros(3, 5))


def test_run_kwargs_and_methods_per_candidate():
    assert lesson.run_kwargs("label smoothing", {"eps": 0.2, "lr": 0.01}, epochs=7) == {
        "lam": pytest.approx(0.8), "T": 1.0, "lr": 0.01, "epochs": 7, "uniform": True}
    kw = lesson.run_kwargs("student from scratch", {"lr": 0.01}, epochs=20)
    assert kw["lam"] == 1.0 and kw["lr"] == 0.01 and kw["epochs"] == 20 and not kw["uniform"]
    kw = lesson.run_kwargs("distilled", {"lam": 0.5, "T": 8.0}, epochs=20)
    lr0 = experiments.STUDENT_DEFAULTS["lr"]
    assert (kw["lam"], kw["T"], kw["lr"], kw["uniform"]) == (0.5, 8.0, lr0, False)
    assert lesson.candidate_label("distilled", {"lam": 0.5, "T": 8.0, "lr": 0.03}) == "λ=0.5, T=8, lr=0.03"
    assert lesson.candidate_label("student from scratch", {"lr": 0.01}) == "lr=0.01"
    m = lesson.method_of("label smoothing", {"eps": 0.1})
    assert (m.name, m.eps) == ("label smoothing", 0.1)
    m = lesson.method_of("distilled", {"lam": 0.5, "T": 2.0})
    assert (m.kind, m.lam, m.T) == ("kd", 0.5, 2.0)
    with pytest.raises(ValueError, match="method='nope'"):
        lesson.run_kwargs("nope", {}, epochs=1)


# --------------------------------------------------------------------------- three methods
SMALL = {"student from scratch": ({"lr": 0.05},),
         "label smoothing": ({"eps": 0.1, "lr": 0.05}, {"eps": 0.3, "lr": 0.05}),
         "distilled": ({"lam": 0.1, "T": 2.0, "lr": 0.05}, {"lam": 0.5, "T": 4.0, "lr": 0.05})}


def _toy_settings(**change):
    base = dict(DEFAULTS, quick=True, n_train=80, epochs=2, seeds=2, k_folds=2, small_teacher_epochs=1)
    return lesson.Settings(**{**base, **change})


@pytest.fixture(scope="module")
def three_methods():
    experiments.clear_cache()
    data, logits = make_problem(n_train=90, n_val=45, n_test=30)
    cv = lesson.tune_methods(data.train.x, data.train.y, logits["train"], k=3, epochs=3,
                             candidates=SMALL)
    pool = _pool()
    S = _toy_settings()
    pdata, rows = lesson.seed_pool(pool, S.n_train, S.seed_list)
    w = torch.randn(4, 4, generator=torch.Generator().manual_seed(1))
    plog = pdata.train.x.reshape(len(pdata.train.y), -1) @ w
    tuned = lesson.tune_on_validation(pdata, rows, plog, S)
    yield data, logits, cv, tuned, (pool, S, pdata, rows, plog)
    experiments.clear_cache()


def test_tune_methods_scores_every_candidate_on_the_same_folds(three_methods):
    data, logits, cv, *_ = three_methods
    assert list(cv) == list(SMALL)
    for method, res in cv.items():
        assert len(res.rows) == 3 * len(SMALL[method]) and {r["fold"] for r in res.rows} == {0, 1, 2}
        for c in res.candidates:
            assert len(c["scores"]) == 3 and c["mean"] == pytest.approx(np.mean(c["scores"]))
        assert res.chosen is max(res.candidates, key=lambda c: c["mean"])
        assert [r["fold"] for r in res.chosen_rows] == [0, 1, 2]
    # label smoothing trains on the uniform teacher: equal to KD with zero logits, by hand
    folds = experiments.kfold_indices(data.train.y, 3, seed=0)
    rest = np.setdiff1d(np.arange(len(data.train.y)), folds[0])
    split = (Split(data.train.x[rest], data.train.y[rest]),
             Split(data.train.x[folds[0]], data.train.y[folds[0]]))
    row = experiments.run_point(split, {"train": torch.zeros(len(rest), 3)}, lam=0.9, T=1.0, seed=0,
                                epochs=3, lr=0.05, cache=False)
    assert cv["label smoothing"].rows[0]["val_acc"] == pytest.approx(row["val_acc"])


def test_cv_frame_uses_the_corrected_resampled_t(three_methods):
    _, _, cv, *_ = three_methods
    table = lesson.cv_frame(cv, n_images=90)
    ref = "student from scratch: lr=0.05"
    assert table.attrs["reference"] == ref and table.loc[ref, "verdict"] == "reference"
    name = "distilled: λ=0.5, T=4, lr=0.05"
    diffs = np.asarray(table.loc[name, "values"]) - np.asarray(table.loc[ref, "values"])
    want = results.corrected_resampled_t(diffs, n_train=60, n_test=30)
    assert table.loc[name, "low"] == pytest.approx(want.low)
    assert table.loc[name, "high"] == pytest.approx(want.high)
    plain = results.paired_difference(diffs, np.zeros(3))
    assert table.loc[name, "plain_low"] == pytest.approx(plain.low)
    assert table["chosen"].sum() == len(cv)
    sel = pd.DataFrame([{"method": "distilled", "config": {"lam": 0.1, "T": 2.0, "lr": 0.05}},
                        {"method": "student from scratch", "config": {"lr": 0.05}}]).set_index("method")
    text = lesson.say_cv(table, cv, sel).data
    assert "corrected 95 % CI" in text and "plain fold-paired t" in text
    cands = lesson.cv_candidates(sel)
    assert cands["student from scratch"] == [{"lr": 0.05}]
    assert [c["lr"] for c in cands["distilled"]] == [0.05] * len(lesson.CANDIDATES["distilled"])


def test_seed_pool_holds_every_seed_sample_as_rows():
    pool = _pool()
    data, rows = lesson.seed_pool(pool, 80, [0, 1])
    for s in (0, 1):
        idx = list(rows[s])
        assert torch.equal(data.train.x[idx], lesson.resample(pool, 80, s).train.x)
    assert len(data.train.y) == len(set(rows[0]) | set(rows[1]))
    assert data.val is pool.val and data.test is pool.test


def test_tune_on_validation_chooses_on_validation_and_tests_only_the_chosen(three_methods):
    *_, tuned, (pool, S, pdata, rows, plog) = three_methods
    grid, sel, chosen = tuned["grid"], tuned["selection"], tuned["chosen"]
    assert len(grid) == sum(len(cs) for cs in S.candidates.values()) * S.seeds
    assert "test_acc" not in grid.columns
    means = grid.groupby(["method", "label"])["val_acc"].mean()
    for m, r in sel.iterrows():
        assert r["val_acc"] == pytest.approx(means[m].max()) and r["label"] == means[m].idxmax()
    assert sorted(chosen["seed"].tolist()) == sorted(S.seed_list * len(lesson.METHODS))
    table = lesson.primary_table(chosen)
    assert table.attrs["reference"] == "student from scratch" and set(table.index) == set(lesson.METHODS)
    # the chosen scratch student equals one trained alone on its seed's sample
    s0 = chosen.query("method == 'student from scratch' and seed == 0").iloc[0]
    cfg = experiments.Config(experiments.mlp_builder([4, 128, 4]), experiments.scratch(), 0,
                             lesson.TrainSettings(epochs=S.epochs, lr=s0["lr"], batch_size=128), rows=rows[0])
    model, _ = experiments.train(cfg, (pdata.train, pdata.val))
    from kdlib.metrics import accuracy
    assert s0["val_acc"] == pytest.approx(accuracy(model, pool.val.x, pool.val.y), abs=0.02)


def test_regime_rows_pair_every_regime_by_seed(three_methods):
    *_, tuned, (pool, S, pdata, rows, plog) = three_methods
    scratch = tuned["chosen"].query("method == 'student from scratch'").sort_values("seed").to_dict("records")
    val_logits = pool.val.x.reshape(len(pool.val.y), -1) @ torch.randn(4, 4)
    regimes, teachers = lesson.regime_rows(pdata, rows, plog, val_logits, scratch_rows=scratch,
                                           scratch_config={"lr": 0.03}, lam=0.5, T=2.0, settings=S)
    assert set(regimes) == {"scratch (tuned)", "real teacher", "weak teacher", "born-again teacher",
                            "scratch, few epochs", "real teacher, few epochs"}
    for rs in regimes.values():
        assert [r["seed"] for r in rs] == S.seed_list
    assert all(len(v) == S.seeds for v in teachers.values())
    assert all(0 <= r["agreement"] <= 1 for r in regimes["real teacher"])


def check(n, answer, **evidence):
    """``lesson.check_exercise`` shown as a notebook's ``print(...)`` shows it; its ``right``."""
    verdict = lesson.check_exercise(n, answer, **evidence)
    assert isinstance(verdict, Verdict)
    print(verdict)
    return verdict.right


def test_check_exercise_prints_a_verdict_and_never_raises(three_methods, capsys):
    data, logits, cv, tuned, _ = three_methods
    assert check(1, None, cv=cv) is False
    assert "Not yet: replace None" in capsys.readouterr().out
    agree = {}
    for r in cv["distilled"].rows:
        agree.setdefault((r["lam"], r["T"]), []).append(r["agreement"])
    best = max(agree, key=lambda p: np.mean(agree[p]))
    assert check(1, best, cv=cv) is True
    assert capsys.readouterr().out.startswith("Right: ")
    assert check(1, "nonsense", cv=cv) is False
    assert capsys.readouterr().out.startswith("Not yet: ")
    chosen = tuned["chosen"]
    by = {m: g.sort_values("seed")["test_acc"].to_numpy() for m, g in chosen.groupby("method")}
    right4 = results.paired_difference(by["distilled"], by["label smoothing"]).verdict
    assert check(4, right4, chosen=chosen) is True
    assert check(4, "hurt" if right4 != "hurt" else "helped", chosen=chosen) is False
    assert check(4, 0.5, chosen=chosen) is False  # a ratio is no verdict
    fake = {"born-again teacher": [{"val_acc": v} for v in (0.85, 0.86, 0.87)],
            "scratch (tuned)": [{"val_acc": v} for v in (0.80, 0.81, 0.81)]}
    assert check(3, "helped", regimes=fake) is True
    assert check(3, "hurt", regimes=fake) is False
    fake = {"+ transfer set": [{"val_acc": v} for v in (0.80, 0.84, 0.79)],
            "distilled": [{"val_acc": v} for v in (0.81, 0.80, 0.82)]}
    assert check(5, "not shown", transfer=fake) is True
    assert check(5, "unclear", transfer=fake) is False
    capsys.readouterr()
    by_seed = [(data, logits)] * 4  # four seeds given: the check uses the first EXERCISE_SEEDS
    accs = {(s, T): experiments.run_point(data, logits, lam=0.0, T=T, seed=s)["val_acc"]
            for s in range(lesson.EXERCISE_SEEDS) for T in (1.0, 4.0)}
    seeds = range(lesson.EXERCISE_SEEDS)
    right = results.paired_difference([accs[s, 4.0] for s in seeds], [accs[s, 1.0] for s in seeds]).verdict
    ev = dict(data=[d for d, _ in by_seed], logits=[lg for _, lg in by_seed])
    assert check(2, right, **ev) is True
    out = capsys.readouterr().out
    assert "T = 4 against T = 1" in out and f"{lesson.EXERCISE_SEEDS} seeds" in out
    assert check(2, 4, **ev) is False  # a temperature is no verdict
    with pytest.raises(ValueError, match="n=6"):
        check(6, None)


def test_grid_explorer_over_folds(three_methods):
    _, _, cv, *_ = three_methods
    ex = GridExplorer(cv["distilled"].rows, unit="fold", baseline=cv["student from scratch"].chosen_rows)
    assert "(3 folds)" in ex.label.value
    labels = [ln.get_label() for ln in ex.figure.axes[1].lines]
    assert "fold 0" in labels
    with pytest.raises(ValueError, match="unit='x'"):
        GridExplorer(cv["distilled"].rows, unit="x")


# --------------------------------------------------------------------------- parameters
DEFAULTS = dict(checkpoint="", lam=0.5, T=4.0, quick=False, n_train=2000, epochs=20, seeds=5,
                k_folds=3, small_teacher_epochs=3, n_labeled=1000, n_transfer=5000, jobs=0)


def test_check_params_accepts_the_notebook_defaults_and_converts():
    assert_check_params_basics(lesson, DEFAULTS, integer="epochs")
    assert lesson.check_params(**{**DEFAULTS, "T": 2}).T == 2.0


@pytest.mark.parametrize(("change", "error", "match"), [
    ({"lam": 1.5}, ValueError, r"lam=1\.5 is out of range; allowed: \[0\.0, 1\.0\]"),
    ({"T": 0.0}, ValueError, r"T=0\.0 is out of range; allowed: \(0\.0, 100\.0\]"),
    ({"seeds": 0}, ValueError, "seeds=0"),
    ({"k_folds": 1}, ValueError, "k_folds=1"),
    ({"jobs": -1}, ValueError, r"jobs=-1 is out of range; allowed: \[0, 64\]"),
    ({"n_train": 5}, ValueError, "n_train=5"),
    ({"epochs": 0}, ValueError, "epochs=0"),
    ({"n_train": 40, "k_folds": 5}, ValueError, "n_train=40 is too small for k_folds=5"),
    ({"n_labeled": 50001}, ValueError, r"n_labeled=50001 is out of range"),
    ({"n_transfer": 5001}, ValueError, r"n_transfer=5001 is out of range"),
    ({"quick": "yes"}, TypeError, "quick must be True or False"),
    ({"checkpoint": None}, TypeError, "checkpoint must be a string"),
])
def test_check_params_names_the_parameter(change, error, match):
    with pytest.raises(error, match=match):
        lesson.check_params(**{**DEFAULTS, **change})


def test_settings_quick_and_full():
    full = lesson.check_params(**DEFAULTS)
    assert full.lrs == lesson.LRS
    assert full.candidates == {m: [dict(c, lr=lr) for c in cs for lr in lesson.LRS]
                               for m, cs in lesson.CANDIDATES.items()}
    assert full.seed_list == [0, 1, 2, 3, 4] and full.few_epochs == 3
    assert full.n_val is None and full.epochs == 20
    for cs in full.candidates.values():  # one budget: every method tries every learning rate
        assert {c["lr"] for c in cs} == set(lesson.LRS)
    quick = lesson.check_params(**{**DEFAULTS, "quick": True})
    assert quick.seed_list == [0, 1] and quick.n_train == lesson.QUICK["n_train"]
    assert quick.n_val == lesson.QUICK["n_val"] and quick.few_epochs == lesson.QUICK["few_epochs"]
    assert quick.lrs == (max(lesson.LRS),)
    assert [len(cs) for cs in quick.candidates.values()] == [1, 2, 2]
    assert len({c["lam"] for c in quick.candidates["distilled"]}) == 2  # the λ slider moves
    assert "lr" not in lesson.CANDIDATES["label smoothing"][0]  # not mutated


# --------------------------------------------------------------------------- plots
def test_grid_point_and_learning_curves_plot_the_rows():
    rows = [{"lam": 0.5, "T": 2.0, "seed": s, "val_acc": 0.8 + s / 100, "agreement": 0.9,
             "history": {"epoch_loss": [1.0 - s / 10, 0.5], "val_acc": [0.7, 0.8 + s / 100]}}
            for s in range(2)]
    base = [{**r, "lam": 1.0, "val_acc": 0.75, "agreement": 0.85,
             "history": {"epoch_loss": [1.2, 0.6], "val_acc": [0.6, 0.7 + 0.1 * r["seed"]]}}
            for r in rows]
    fig = lesson.grid_point(rows, baseline_rows=base, teacher_acc=0.9)
    acc = fig.axes[1].lines
    for i, r in enumerate(rows):
        np.testing.assert_allclose(acc[i].get_ydata(), r["history"]["val_acc"])
        np.testing.assert_allclose(fig.axes[0].lines[i].get_ydata(), r["history"]["epoch_loss"])
    np.testing.assert_allclose(acc[2].get_ydata(), [0.6, 0.75])  # baseline mean curve
    assert acc[3].get_ydata()[0] == pytest.approx(0.9)  # teacher
    assert acc[4].get_ydata()[0] == pytest.approx(0.75)  # baseline final mean
    means = {ln.get_label(): ln for ln in fig.axes[2].lines}
    assert list(means["val accuracy"].get_ydata()) == pytest.approx([0.805, 0.75])
    assert list(means["agreement with teacher"].get_ydata()) == pytest.approx([0.9, 0.85])
    assert not fig.axes[2].containers  # no error bars: the dots of every row are drawn
    lc = lesson.learning_curves([rows[0]["history"]], references={"teacher": 0.9})
    np.testing.assert_allclose(lc.axes[1].lines[0].get_ydata(), [0.7, 0.8])


def test_settings_resolve_jobs(monkeypatch):
    monkeypatch.setattr(lesson.experiments, "default_jobs", lambda threads=None: 7 if threads == 1 else 0)
    assert lesson.check_params(**DEFAULTS).n_jobs == 7          # 0: one per core, 1-thread students
    assert lesson.check_params(**DEFAULTS).jobs == 0            # the parameter as given
    assert lesson.check_params(**{**DEFAULTS, "jobs": 3}).n_jobs == 3
    assert lesson.check_params(**{**DEFAULTS, "quick": True}).n_jobs == 1
