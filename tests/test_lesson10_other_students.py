"""Tests of kdlib.lessons.lesson10_other_students (notebook 10)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from kdlib import models
from kdlib.lessons import lesson10_other_students as lesson
from kdlib.train import fit, load_teacher

DEFAULTS = dict(checkpoint="", n_train=2000, epochs=3, seeds=3, lam=0.1, T=2.0, clip=1.0,
                feature_weight=0.25, quick=False)


def test_check_params_defaults_quick_and_errors():
    assert isinstance(lesson.check_params(**DEFAULTS), lesson.Settings)
    assert vars(lesson.check_params(**DEFAULTS)) == DEFAULTS
    assert lesson.check_params(**{**DEFAULTS, "quick": True}).n_train == lesson.QUICK["n_train"]
    with pytest.raises(ValueError, match="clip"):
        lesson.check_params(**{**DEFAULTS, "clip": 0.0})


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


def test_api_table_names_every_api():
    for name in ("kd_loss", "keras.distillation.Distiller", "LogitsDistillation",
                 "FeatureDistillation", "torchdistill `KDLoss`", "PyTorch KD tutorial"):
        assert name in lesson.API_TABLE


@pytest.fixture(scope="module")
def tiny():
    teacher = load_teacher(progress=False)
    return teacher, lesson.contexts(teacher, n_train=200, seeds=2)


@pytest.mark.slow
def test_feature_methods_train_and_hint_regressor_learns(tiny):
    teacher, ctxs = tiny
    rows = lesson.run_features(teacher, ctxs, epochs=1, lam=0.1, T=2.0, feature_weight=0.25,
                               progress=False)
    assert {r["method"] for r in rows} == set(lesson.FEATURE_METHODS) and len(rows) == 12
    out = lesson.table(rows, [{"method": m} for m in lesson.FEATURE_METHODS],
                       baseline={"method": "kd"}, label=lambda g: g["method"])
    assert "hint - kd, accuracy" in out
    fig = lesson.dot_plot(rows, [{"method": m} for m in lesson.FEATURE_METHODS])
    assert len(fig.axes[0].collections) >= 6


@pytest.mark.slow
def test_rnn_experiment_records_gradients_and_clipping(tiny):
    teacher, ctxs = tiny
    rows, norms = lesson.run_rnn(teacher, ctxs, epochs=1, lam=0.1, T=2.0, clip=0.5,
                                 progress=False)
    assert len(rows) == 2 * 5 and set(norms) == {("adam", False), ("adam", True),
                                                   ("sgd", False), ("sgd", True)}
    assert all(len(g) == len(norms[("adam", False)]) for g in norms.values())
    assert "clipped - unclipped" in lesson.clipping_table(rows, 0.5)
    assert lesson.grad_norms_figure(norms, 0.5).axes
    arch = lesson.run_architectures(teacher, ctxs, epochs=1, lam=0.1, T=2.0, progress=False)
    assert {r["student"] for r in arch} == {"cnn", "mlp-small"}
    assert np.all([0 <= r["acc"] <= 1 for r in rows + arch])
