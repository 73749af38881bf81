"""Tests of kdlib.lessons.lesson09_interpretability (notebook 09)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _toy import assert_check_params_basics

from kdlib import models
from kdlib._checks import Verdict
from kdlib.lessons import lesson09_interpretability as lesson
from kdlib.train import load_teacher

DEFAULTS = dict(checkpoint="", n_train=1000, epochs=4, seeds=5, lam=0.1, T=1.0, tree_depth=4,
                max_depth=8, quick=False)


def test_check_params_basics():
    assert_check_params_basics(lesson, DEFAULTS, integer="seeds")


def test_check_params_accepts_defaults_and_quick_overrides():
    assert isinstance(lesson.check_params(**DEFAULTS), lesson.Settings)
    assert vars(lesson.check_params(**DEFAULTS)) == DEFAULTS
    quick = lesson.check_params(**{**DEFAULTS, "quick": True})
    assert quick.n_train == lesson.QUICK["n_train"] and quick.seeds == lesson.QUICK["seeds"]


@pytest.mark.parametrize("name, value", [("seeds", 0), ("lam", 1.5), ("T", 0.0),
                                         ("tree_depth", 9), ("max_depth", 1)])
def test_check_params_names_the_bad_value(name, value):
    with pytest.raises(ValueError, match=name):
        lesson.check_params(**{**DEFAULTS, name: value})


def test_leaves_for_mass_against_numpy():
    g = torch.Generator().manual_seed(0)
    p = torch.softmax(torch.randn(20, 16, generator=g) * 2, dim=1)
    got = lesson.leaves_for_mass(p, 0.9).numpy()
    for row, k in zip(p.numpy(), got):
        s = np.sort(row)[::-1].cumsum()
        assert k == int(np.argmax(s >= 0.9 - 1e-9)) + 1
    assert lesson.leaves_for_mass(torch.tensor([[1.0, 0.0, 0.0]])).item() == 1


@pytest.mark.parametrize("depth", [1, 4, 6])
def test_soft_tree_param_count_matches_the_model(depth):
    assert lesson.soft_tree_param_count(depth) == models.count_params(models.soft_tree(depth=depth))


def test_check_exercise_right_and_wrong():
    assert lesson.check_exercise(1, 11935).message == "Right: 11935"
    assert not lesson.check_exercise(1, 15 * 784)
    assert lesson.check_exercise(2, 64)
    assert lesson.check_exercise(2, None).message.startswith("Not yet: replace None")
    tree = models.soft_tree(depth=3)
    x = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    good = lesson.check_exercise(3, lesson.max_leaf_agreement, tree=tree, x=x)
    assert isinstance(good, Verdict) and good.right and good.message.startswith("Right: ")
    assert "you returned 2.0000" in lesson.check_exercise(3, lambda t, xx: 2.0, tree=tree, x=x).message
    assert "raised ZeroDivisionError" in str(lesson.check_exercise(3, lambda t, xx: 1 / 0, tree=tree, x=x))
    with pytest.raises(ValueError, match="n=4 is not an exercise"):
        lesson.check_exercise(4, 0)


def test_draw_tree_paths_returns_the_path_probabilities():
    tree = models.soft_tree(depth=3)
    x = torch.rand(1, 28, 28)
    fig, axes = lesson.new_figure()
    paths = lesson.draw_tree_paths(axes[0, 0], tree, x, [str(i) for i in range(10)])
    np.testing.assert_allclose(paths, tree.path_probs(x.reshape(1, -1))[0].detach().numpy(),
                               rtol=1e-6)
    assert len(axes[0, 0].lines) == 2 ** 4 - 2  # one edge per non-root node


@pytest.fixture(scope="module")
def tiny_experiment():
    teacher = load_teacher(progress=False)
    return lesson.run_experiment(teacher, n_train=300, epochs=1, seeds=2, lam=0.1, T=2.0,
                                 tree_depth=2, max_depth=3, progress=False)


@pytest.mark.slow
def test_run_experiment_rows_tables_and_verdict(tiny_experiment):
    exp = tiny_experiment
    assert len(exp.rows) == 2 * 2 * 2 and len(exp.tree_rows) == 2 * 2 * 2
    for r in exp.rows + exp.tree_rows:
        assert 0.0 <= r["acc"] <= 1.0 and 0.0 <= r["fidelity"] <= 1.0
    tree_row = next(r for r in exp.rows if r["student"] == "soft tree")
    assert 1 <= tree_row["leaves_90"] <= 4
    # fidelity is agreement with the teacher's test predictions, computed independently
    soft = exp.models[("soft tree", "teacher")]
    agree = (models.predict(soft, exp.test.x).argmax(1) == exp.teacher_test_logits.argmax(1))
    row0 = next(r for r in exp.rows if r["student"] == "soft tree" and r["targets"] == "teacher"
                and r["seed"] == 0)
    assert row0["fidelity"] == pytest.approx(float(agree.float().mean()))
    assert set(exp.lr) == set(lesson.TARGETS) and all(lr in lesson.LINEAR_LRS for lr in exp.lr.values())
    assert len(exp.tuning) == 2 * 2 * len(lesson.LINEAR_LRS)
    primary = lesson.comparison(exp)
    assert list(primary.index) == ["labels", "distilled"] and primary.attrs["metric"] == "fidelity"
    assert list(lesson.exploratory_frame(exp)["student"]) == ["linear", "soft tree", "soft tree"]
    assert "leaves for 90 % (of 4)" in lesson.soft_tree_frame(exp).columns
    assert len(lesson.trees_frame(exp)) == 2 * 2 and len(lesson.tuning_frame(exp)) == len(lesson.LINEAR_LRS)
    assert "class:" in lesson.tree_rules(exp, depth=3, targets="teacher")
    with pytest.raises(ValueError, match="depth=7"):
        lesson.tree_rules(exp, depth=7)
    for say in (lesson.say_students(exp), lesson.say_soft_tree(exp), lesson.say_trees(exp),
                lesson.say_rules(exp), lesson.say_verdict(exp), lesson.say_summary(exp),
                lesson.say_templates(exp, lesson.template_similarity(exp))):
        assert say.data.startswith(("What we saw", "* With"))
    assert [r["student"] for r in lesson.readability(exp, 2)][:2] == ["linear", "soft tree depth 2"]
    for fig in (lesson.templates_figure(exp), lesson.filters_figure(soft), lesson.trees_figure(exp)):
        assert fig.axes


@pytest.mark.slow
def test_explanation_widget_follows_the_slider(tiny_experiment):
    w = lesson.ExplanationExplorer(tiny_experiment, n_images=20)
    first = w.text
    w.slider.value = 7
    assert w.text.startswith("image 7:") and w.text != first
    assert "hard tree path:" in w.text and w.figure is not None
    assert w.slider.max == 19 and w.slider.continuous_update is False


def test_tree_loss_adds_the_balance_penalty_to_ce_or_kd():
    torch.manual_seed(0)
    tree = models.soft_tree(depth=2)
    x = torch.rand(6, 1, 28, 28)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    teacher_logits = torch.randn(10, 10)
    idx = torch.arange(6)
    logits = tree(x).detach()
    penalty = float(tree.balance_penalty(x).detach())
    ce = float(torch.nn.functional.cross_entropy(logits, y))
    got = float(lesson.tree_loss(tree, "labels", teacher_logits, lam=0.1, T=2.0)(logits, y, idx, x)
                .detach())
    assert got == pytest.approx(ce + lesson.TREE_PENALTY * penalty, rel=1e-6)
    kd = float(lesson.kd_loss(logits, teacher_logits[idx], y, lam=0.1, T=2.0))
    got = float(lesson.tree_loss(tree, "teacher", teacher_logits, lam=0.1, T=2.0)(logits, y, idx, x)
                .detach())
    assert got == pytest.approx(kd + lesson.TREE_PENALTY * penalty, rel=1e-6)


def _fake_experiment(fidelity_gain, acc_gain=(0.0, 0.004, -0.004, 0.002, -0.002)):
    """An Experiment with made-up rows: the distilled linear student's fidelity is the labels
    one's plus ``fidelity_gain[seed]`` (so the primary verdict is known in advance)."""
    rows, tree_rows, tuning = [], [], []
    for seed, (g, a) in enumerate(zip(fidelity_gain, acc_gain)):
        base = 0.80 + 0.01 * seed
        for targets, fid, acc in (("labels", base, base - 0.02), ("teacher", base + g, base - 0.02 + a)):
            tuning.append({"student": "linear", "targets": targets, "lr": 1e-2, "seed": seed,
                           "val_acc": acc, "val_fidelity": fid, "acc": acc, "fidelity": fid})
            rows.append({"student": "linear", "targets": targets, "seed": seed, "acc": acc, "fidelity": fid})
            rows.append({"student": "soft tree", "targets": targets, "seed": seed, "acc": acc - 0.05,
                         "fidelity": fid - 0.05, "acc_max_leaf": acc - 0.06,
                         "fidelity_max_leaf": fid - 0.06, "leaves_90": 1.2})
        for depth in (2, 3):
            for targets in lesson.TARGETS:
                tree_rows.append({"depth": depth, "targets": targets, "seed": seed,
                                  "acc": 0.3 + 0.1 * depth + a, "fidelity": 0.31 + 0.1 * depth,
                                  "leaves": 2 ** depth})
    soft = models.soft_tree(depth=2)
    test = type("Split", (), {"x": torch.rand(20, 1, 28, 28, generator=torch.Generator().manual_seed(0))})
    return lesson.Experiment(rows=rows, tree_rows=tree_rows, teacher_acc=0.88, depths=(2, 3),
                             models={("soft tree", "labels"): soft, ("soft tree", "teacher"): soft},
                             test=test, tuning=tuning, lr={"labels": 1e-2, "teacher": 1e-2},
                             n_train=1000, epochs=4, lam=0.1, T=1.0, tree_depth=2)


@pytest.mark.parametrize("gain, verdict", [((0.010, 0.012, 0.011, 0.009, 0.010), "distillation helped"),
                                           ((-0.010, -0.012, -0.011, -0.009, -0.010), "distillation hurt"),
                                           ((0.02, -0.02, 0.01, -0.015, 0.004), "was not shown")])
def test_say_functions_follow_the_primary_interval(gain, verdict):
    exp = _fake_experiment(gain)
    d = lesson.paired_difference([0.80 + 0.01 * s + g for s, g in enumerate(gain)],
                                 [0.80 + 0.01 * s for s in range(5)])
    students = lesson.say_students(exp).data
    assert "**The primary comparison** (linear student, fidelity on the test set)" in students
    assert d.describe("distillation") in students and verdict in students.split("Exploratory")[0]
    assert "4 epochs on 1,000 images" in students and "5 seeds" in students
    assert "one 95 % interval in 20" in students
    verdict_text = lesson.say_verdict(exp).data
    assert d.describe("distillation") in verdict_text
    head = "**The claim holds for fidelity**" if verdict == "distillation helped" else \
        "**The claim is not shown for fidelity**"
    assert head in verdict_text
    assert d.describe("distillation") in lesson.say_summary(exp).data


def test_exploratory_frame_and_say_trees_read_their_own_intervals():
    exp = _fake_experiment((0.01, 0.012, 0.011, 0.009, 0.010))
    frame = lesson.exploratory_frame(exp)
    assert list(frame["verdict"]) == ["not shown", "not shown", "helped"]
    trees = lesson.say_trees(exp).data
    assert "depth 3: accuracy: a difference from fitting the teacher was not shown" in trees
