"""kdlib.lessons.lesson01_teacher: notebook 01's parameter check, training call and checkpoints."""

from __future__ import annotations

import pytest
import torch
from _toy import assert_check_params_basics

from kdlib import models
from kdlib._checks import Verdict
from kdlib.data import Split, Splits
from kdlib.lessons import lesson01_teacher as lesson
from kdlib.train import train_teacher

DEFAULTS = {"checkpoint": "", "epochs": 2, "n_train": 0, "lr": 3e-3, "batch_size": 128, "seed": 0,
            "channels": [32, 64], "hidden": 128, "label_smoothing": 0.0, "snapshot_epochs": [],
            "augment": False}


def tiny_images(n_train=64, n_val=32, seed=0):
    """28×28 images whose class is decided by the brightness of one quadrant (learnable in steps)."""
    g = torch.Generator().manual_seed(seed)

    def split(n):
        x = torch.rand(n, 1, 28, 28, generator=g)
        y = torch.randint(0, 4, (n,), generator=g)
        for c in range(4):
            r, k = divmod(c, 2)
            x[y == c, :, 14 * r:14 * r + 14, 14 * k:14 * k + 14] += 1.0
        return Split(x, y)

    return Splits(split(n_train), split(n_val), split(16), tuple("abcd"), "quadrants")


def tiny_params(**kw):
    return lesson.check_params(**{**DEFAULTS, "epochs": 2, "batch_size": 16, "channels": [4],
                                  "hidden": 8, **kw})


# ------------------------------------------------------------------ parameters
def test_check_params_accepts_the_notebook_defaults():
    assert_check_params_basics(lesson, DEFAULTS, integer="hidden")
    out = lesson.check_params(**{**DEFAULTS, "channels": (16, 32, 64), "snapshot_epochs": [1, 2],
                                 "label_smoothing": 0.1, "lr": 1})
    assert out.channels == [16, 32, 64] and out.lr == 1.0 and isinstance(out.lr, float)


@pytest.mark.parametrize(("kw", "exc", "match"), [
    ({"epochs": 0}, ValueError, r"epochs=0 is out of range; allowed: \[1, 100\]"),
    ({"n_train": -1}, ValueError, r"n_train=-1 is out of range"),
    ({"lr": 0.0}, ValueError, r"lr=0.0 is out of range; allowed: \(0.0, 1.0\]"),
    ({"seed": 1.5}, TypeError, r"seed must be an integer"),
    ({"checkpoint": None}, TypeError, r"checkpoint must be a string"),
    ({"channels": "[16, 32]"}, TypeError,
     r"channels must be a list, got '\[16, 32\]' \(str\); with papermill pass it as YAML: "
     r"-y 'channels: \[32, 64\]'"),
    ({"channels": []}, ValueError, r"channels=\[\] has 0 entries; allowed: at least 1 and at most 3"),
    ({"channels": [8, 16, 32, 64]}, ValueError, r"has 4 entries"),
    ({"channels": [32, 0]}, ValueError, r"channels\[1\]=0 is out of range"),
    ({"channels": [32, 6.5]}, TypeError, r"channels\[1\] must be an integer"),
    ({"hidden": 0}, ValueError, r"hidden=0 is out of range"),
    ({"label_smoothing": 1.0}, ValueError, r"label_smoothing=1.0 is out of range"),
    ({"snapshot_epochs": [3]}, ValueError, r"snapshot_epochs\[0\]=3 is out of range; allowed: \[1, 2\]"),
    ({"snapshot_epochs": 1}, TypeError, r"snapshot_epochs must be a list"),
])
def test_check_params_names_the_bad_parameter(kw, exc, match):
    with pytest.raises(exc, match=match):
        lesson.check_params(**{**DEFAULTS, **kw})


# ------------------------------------------------------------------ training and checkpoints
def test_checkpoint_meta_records_every_parameter_but_the_path():
    meta = lesson.checkpoint_meta(lesson.check_params(**DEFAULTS), val_accuracy=0.886, test_accuracy=0.885)
    assert set(meta) == set(DEFAULTS) - {"checkpoint", "augment"} | {"val_accuracy", "test_accuracy"}
    assert meta["channels"] == [32, 64] and meta["test_accuracy"] == 0.885


def test_snapshot_path(tmp_path):
    assert lesson.snapshot_path(tmp_path / "teacher.pt", 2) == tmp_path / "teacher_epoch2.pt"
    assert lesson.snapshot_path("my.teacher", 1).name == "my_epoch1.teacher"
    with pytest.raises(ValueError, match="epoch=0"):
        lesson.snapshot_path("t.pt", 0)


def test_train_with_params_is_train_teacher_with_those_parameters():
    data, params = tiny_images(), tiny_params(label_smoothing=0.1)
    teacher, history, snapshots = lesson.train_with_params(data, params, progress=False)
    assert snapshots == {} and history.epochs == 2
    direct, _ = train_teacher(data, epochs=2, lr=3e-3, batch_size=16, seed=0, channels=[4], hidden=8,
                              label_smoothing=0.1, progress=False)
    for (name, a), b in zip(teacher.state_dict().items(), direct.state_dict().values()):
        assert torch.equal(a, b), name
    assert teacher.kd_arch["kwargs"]["channels"] == [4] and teacher.kd_arch["kwargs"]["hidden"] == 8


def test_snapshots_are_saved_with_their_epoch_and_validation_accuracy(tmp_path):
    data, params = tiny_images(), tiny_params(snapshot_epochs=[1, 2])
    teacher, history, snapshots = lesson.train_with_params(data, params, progress=False)
    assert sorted(snapshots) == [1, 2]
    for name, w in teacher.state_dict().items():  # the last epoch's snapshot is the final teacher
        assert torch.equal(snapshots[2][name], w), name
    assert not all(torch.equal(snapshots[1][k], w) for k, w in teacher.state_dict().items())
    ckpt = tmp_path / "t.pt"
    meta = lesson.checkpoint_meta(params, val_accuracy=0.5, test_accuracy=0.4)
    paths = lesson.save_snapshots(snapshots, ckpt, meta, history)
    assert [p.name for p in paths] == ["t_epoch1.pt", "t_epoch2.pt"]
    first = models.load(paths[0])
    for name, w in snapshots[1].items():
        assert torch.equal(first.state_dict()[name], w), name
    assert first.kd_meta["epoch"] == 1 and first.kd_meta["channels"] == [4]
    assert first.kd_meta["val_accuracy"] == round(history.val_acc[0], 4)
    assert "test_accuracy" not in first.kd_meta
    assert lesson.save_snapshots({}, ckpt, meta, history) == []


# --------------------------------------------------------------------------- exercises
def check(n, answer):
    """``lesson.check_exercise`` shown as a notebook's ``print(...)`` shows it; its ``right``."""
    verdict = lesson.check_exercise(n, answer)
    assert isinstance(verdict, Verdict)
    print(verdict)
    return verdict.right

def test_check_exercise_placeholder_prints_a_prompt(capsys):
    assert check(3, None) is False
    assert "replace None" in capsys.readouterr().out


def test_check_exercise_1_accepts_the_measured_accuracies(capsys):
    runs = lesson.EXERCISE_RUNS
    assert check(1, (runs["epochs=1"] + 0.004, runs["epochs=3"] - 0.004)) is True
    assert capsys.readouterr().out.startswith("Right:")
    assert check(1, (runs["epochs=3"], runs["epochs=1"] - 0.05)) is False
    assert "Not yet" in capsys.readouterr().out
    assert check(1, 0.9) is False
    assert "two validation accuracies" in capsys.readouterr().out


def test_check_exercise_2_wants_shirt_and_tshirt_in_any_order(capsys):
    assert check(2, ("T-shirt/top", "Shirt")) is True
    assert check(2, ["shirt", "t-shirt/top"]) is True
    assert check(2, ("Shirt", "Coat")) is False
    assert check(2, "Shirt") is False
    out = capsys.readouterr().out
    assert out.count("Right") == 2 and out.count("Not yet") == 2


def test_check_exercise_3_wants_the_5000_image_accuracy(capsys):
    want = lesson.EXERCISE_RUNS["n_train=5000"]
    assert check(3, want + 0.01) is True
    out = capsys.readouterr().out
    assert "far below 85 %" in out and f"{lesson.EXERCISE_RUNS['n_train=5000,epochs=22']:.3f}" in out
    assert check(3, 0.886) is False
    assert "n_train = 5000" in capsys.readouterr().out
    for bad in ("high", True, 1.5):
        assert check(3, bad) is False
    assert capsys.readouterr().out.count("as a fraction") == 3


def test_check_exercise_rejects_an_unknown_exercise():
    with pytest.raises(ValueError, match="n=4 is not an exercise"):
        lesson.check_exercise(4, 0.8)


def test_exercise_runs_are_measured_accuracies():
    assert all(0.5 < v < 1 for v in lesson.EXERCISE_RUNS.values())
    assert lesson.EXERCISE_RUNS["n_train=5000"] < 0.85 < lesson.EXERCISE_RUNS["epochs=2"]


def test_student_sizes_quotes_counts_and_ratios():
    table = lesson.student_sizes()
    assert "225,034" in table and "5,262,080" in table
    cnn_line = next(line for line in table.splitlines() if line.startswith("cnn(8,16|32)"))
    mlp_line = next(line for line in table.splitlines() if line.startswith("mlp(784-128-10)"))
    # independent counts: conv 1->8 (80) + 8->16 (1,168) + fc 400->32 (12,832) + 32->10 (330)
    assert "14,410" in cnn_line and "15.6×" in cnn_line
    assert "101,770" in mlp_line and "2.2×" in mlp_line
    # 2 * (784*128 + 128*10) multiply-accumulates = 203,264 FLOPs; 5,262,080 / 203,264 = 25.9
    assert "203,264" in mlp_line and "25.9×" in mlp_line
    assert "402,368" in cnn_line and "13.1×" in cnn_line
