"""Tests of kdlib.lessons.lesson10_other_students (notebook 10)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from _toy import assert_check_params_basics
from torch import nn

from kdlib import experiments, models, results
from kdlib.lessons import lesson10_other_students as lesson
from kdlib.train import fit, load_teacher

DEFAULTS = dict(checkpoint="", n_train=2000, epochs=5, rnn_epochs=2, seeds=5, explore_seeds=2, lam=0.5, T=2.0,
                clip=1.0, feature_weight=0.25, quick=False)


def test_check_params_basics():
    assert_check_params_basics(lesson, DEFAULTS, integer="seeds")


def test_check_params_defaults_quick_and_errors():
    assert isinstance(lesson.check_params(**DEFAULTS), lesson.Settings)
    assert vars(lesson.check_params(**DEFAULTS)) == DEFAULTS
    assert lesson.check_params(**{**DEFAULTS, "quick": True}).n_train == lesson.QUICK["n_train"]
    with pytest.raises(ValueError, match="clip"):
        lesson.check_params(**{**DEFAULTS, "clip": 0.0})
    with pytest.raises(ValueError, match="explore_seeds"):
        lesson.check_params(**{**DEFAULTS, "explore_seeds": 6})
    with pytest.raises(ValueError, match="n_train × seeds"):
        lesson.check_params(**{**DEFAULTS, "n_train": 10000, "seeds": 6})


def test_cnn_and_small_mlp_students_have_similar_size():
    cnn, mlp = models.count_params(lesson.build("cnn")), models.count_params(lesson.build("mlp-small"))
    assert abs(cnn - mlp) / cnn < 0.05
    with pytest.raises(ValueError, match="allowed"):
        lesson.build("transformer")


def test_init_error_explains_cnn_to_rnn_and_accepts_random():
    teacher = models.cnn()
    assert "no strategy can" in lesson.init_error(models.rnn(), teacher, "copy")
    assert lesson.init_error(models.rnn(), teacher, "random") == "ok"


def test_pool_to_averages_neighbours():
    f = torch.arange(8.0).reshape(1, 8)
    torch.testing.assert_close(lesson.pool_to(f, 4), torch.tensor([[0.5, 2.5, 4.5, 6.5]]))
    with pytest.raises(ValueError, match="multiple"):
        lesson.pool_to(f, 3)


def test_grad_norm_recorder_matches_clip_grad_norm_before_clipping():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 3))
    rec = lesson.GradNormRecorder(model)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    for _ in range(3):
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        total = nn.utils.clip_grad_norm_(model.parameters(), 1e-3)  # returns the norm before
    rec.remove()
    assert len(rec.norms) == 3
    assert rec.norms[-1] == pytest.approx(float(total), rel=1e-5)


def test_grad_norms_recorded_through_fit_are_one_per_step():
    from kdlib.data import Split

    g = torch.Generator().manual_seed(0)
    split = Split(torch.randn(100, 6, generator=g), torch.randint(0, 3, (100,), generator=g))
    model = models.mlp([6, 5, 3])
    rec = lesson.GradNormRecorder(model)
    hist = fit(model, split, epochs=2, batch_size=25, clip_grad=0.01, progress=False)
    rec.remove()
    assert len(rec.norms) == 2 * hist.steps_per_epoch
    assert max(rec.norms) > 0.01  # recorded before clipping


def test_check_exercise():
    assert lesson.check_exercise(1, "lam").message.startswith("Right: ")
    assert lesson.check_exercise(1, "1 - lam").message.startswith("Not yet: student_loss_weight")
    assert lesson.check_exercise(2, 3 * (64 * 28 + 64 * 64 + 2 * 64) + 64 * 10 + 10)
    with pytest.raises(ValueError, match="n=3 is not an exercise"):
        lesson.check_exercise(3, 0)


def test_api_table_names_every_api_and_the_tutorial_weights_the_hard_labels_with_ce_loss_weight():
    for name in ("kd_loss", "keras.distillation.Distiller", "LogitsDistillation",
                 "FeatureDistillation", "torchdistill `KDLoss`", "PyTorch KD tutorial"):
        assert name in lesson.API_TABLE
    header, tutorial = lesson.API_ROWS[0], lesson.API_ROWS[-1]
    hard = header.index("weight on the hard-label cross-entropy")
    assert tutorial[hard].startswith("`ce_loss_weight=0.75`")


def _table(a, b, names=("labels", "distilled")):
    rows = [{"method": m, "seed": s, "test_acc": v} for m, vals in zip(names, (a, b))
            for s, v in enumerate(vals)]
    return results.compare(rows, by="method", metric="test_acc", reference=names[0])


@pytest.mark.parametrize("b, verdict", [((0.82, 0.83, 0.84), "distillation helped"),
                                        ((0.78, 0.77, 0.78), "distillation hurt"),
                                        ((0.81, 0.79, 0.80), "was not shown")])
def test_say_primary_and_rnn_follow_the_interval(b, verdict):
    table = _table((0.80, 0.80, 0.81), b)
    choice = {"labels": {"lr": 0.01, "lam": 1.0, "T": 1.0}, "kd": {"lr": 0.03, "lam": 0.5, "T": 4.0}}
    text = lesson.say_primary(table, choice, 0.885).data
    assert verdict in text and "lr = 0.03, λ = 0.5, T = 4" in text and "88.50 %" in text
    assert verdict in lesson.say_rnn(table).data


def test_say_rnn_with_one_seed_shows_nothing_and_flags_an_under_trained_gru():
    assert "not shown" in lesson.say_rnn(_table((0.5,), (0.9,))).data
    assert "far from trained" in lesson.say_rnn(_table((0.5,), (0.9,)), mlp_acc=0.8).data
    assert "far from trained" not in lesson.say_rnn(_table((0.75,), (0.7,)), mlp_acc=0.8).data


def test_say_architectures_and_features_follow_their_intervals():
    groups = ("mlp-small, labels", "cnn, labels", "mlp-small, distilled", "cnn, distilled")
    vals = {"mlp-small, labels": (0.80, 0.81, 0.80), "cnn, labels": (0.85, 0.86, 0.86),
            "mlp-small, distilled": (0.80, 0.79, 0.81), "cnn, distilled": (0.83, 0.84, 0.84)}
    rows = [{"group": g, "seed": s, "test_acc": v} for g in groups for s, v in enumerate(vals[g])]
    text = lesson.say_architectures(results.compare(rows, by="group", metric="test_acc",
                                                    reference="mlp-small, labels")).data
    assert "the convolutions helped" in text
    assert "For the MLP, a difference from distillation was not shown" in text
    assert "for the CNN, distillation hurt" in text
    rows = [{"method": m, "seed": s, "test_acc": v}
            for m, vs in (("distilled", (0.80, 0.81, 0.80)), ("distilled + hint", (0.82, 0.83, 0.82)),
                          ("distilled + cosine", (0.80, 0.80, 0.81)))
            for s, v in enumerate(vs)]
    text = lesson.say_features(results.compare(rows, by="method", metric="test_acc",
                                               reference="distilled")).data
    assert "the hint loss helped" in text and "difference from the cosine loss was not shown" in text


def test_say_summary_counts_exploratory_intervals():
    helped, flat = _table((0.80, 0.80, 0.81), (0.82, 0.83, 0.84)), _table((0.80, 0.80, 0.81),
                                                                          (0.81, 0.79, 0.80))
    text = lesson.say_summary(helped, [helped, flat, flat]).data
    assert "distillation helped" in text and "3 more paired intervals, of which 1 excluded 0" in text


def test_say_clipping_reports_each_run_and_whether_anything_exploded():
    frame = pd.DataFrame({"optimizer": ["adam", "sgd"], "clip": ["none", "1"],
                          "test accuracy (%)": [80.0, 70.0], "median |g|": [1.0, 0.5],
                          "max |g|": [3.0, 500.0], "steps with |g| > 1 (%)": [60.0, 10.0]})
    text = lesson.say_clipping(frame, 1.0).data
    assert "adam (no clipping)" in text and "sgd (clip 1)" in text and "real explosion" in text
    assert "nothing exploded" in lesson.say_clipping(frame.iloc[:1], 1.0).data


def test_choose_picks_the_best_mean_validation_accuracy_per_method():
    rows = [{"method": m, "lr": lr, "lam": lam, "T": T, "seed": s, "val_acc": v + 0.001 * s}
            for m, lr, lam, T, v in (("labels", 0.01, 1.0, 1.0, 0.80), ("labels", 0.03, 1.0, 1.0, 0.82),
                                     ("kd", 0.01, 0.5, 2.0, 0.83), ("kd", 0.01, 0.1, 4.0, 0.81))
            for s in range(3)]
    choice = experiments.choose(rows, by=("lr", "lam", "T"))
    assert choice["labels"]["lr"] == 0.03 and (choice["kd"]["lam"], choice["kd"]["T"]) == (0.5, 2.0)


@pytest.fixture(scope="module")
def tiny():
    teacher = load_teacher(progress=False)
    return lesson.make_pool(teacher, n_train=120, seeds=2)


def test_pool_gives_each_seed_its_own_sample(tiny):
    assert len(tiny.rows) == 2 and all(len(r) == 120 for r in tiny.rows)
    assert not set(tiny.rows[0]) & set(tiny.rows[1])
    assert tiny.teacher_logits.shape == (240, 10) and tiny.teacher_features.shape == (240, 128)
    assert 0.5 < lesson.teacher_accuracy(tiny) <= 1


@pytest.mark.slow
def test_primary_tunes_on_validation_and_reads_the_test_set_for_the_chosen_only(tiny):
    rows = lesson.run_primary(tiny, epochs=1, progress=False)
    per_seed = len(lesson.LRS) * (1 + len(lesson.KD_GRID))
    assert len(rows) == 2 * per_seed and all("test_acc" not in r for r in rows)
    choice = experiments.choose(rows, by=("lr", "lam", "T"))
    picked = lesson.chosen(tiny, rows, choice)
    assert sorted(r["method"] for r in picked) == ["distilled", "distilled", "labels", "labels"]
    assert all(0 <= r["test_acc"] <= 1 and "student" not in r for r in picked)
    feats = lesson.run_features(tiny, choice, epochs=1, feature_weight=0.25, progress=False)
    assert {r["method"] for r in feats} == {"distilled + hint", "distilled + cosine"}
    assert all(r["lr"] == choice["kd"]["lr"] and r["lam"] == choice["kd"]["lam"] for r in feats)


@pytest.mark.slow
def test_rnn_experiment_records_gradients_and_clipping(tiny):
    rows, norms = lesson.run_rnn(tiny, epochs=1, lam=0.5, T=2.0, clip=0.5, seeds=2, progress=False)
    assert len(rows) == 2 * 2 + 2 and set(norms) == {("adam", False), ("adam", True), ("sgd", True)}
    assert all(len(g) == len(norms[("adam", False)]) for g in norms.values())
    assert len(lesson.rnn_rows(rows)) == 4
    frame = lesson.clipping_frame(rows, 0.5)
    assert list(frame["optimizer"]) == ["adam", "adam", "sgd"]
    assert lesson.grad_norms_figure(norms, 0.5).axes
    arch = lesson.run_architectures(tiny, epochs=1, lam=0.5, T=2.0, seeds=2, progress=False)
    assert {r["group"] for r in arch} == {"cnn, labels", "cnn, distilled", "mlp-small, labels",
                                          "mlp-small, distilled"}
    assert np.all([0 <= r["test_acc"] <= 1 for r in rows + arch])
