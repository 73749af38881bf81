"""kdlib.lessons.lesson03_student_init: notebook 03's parameter check, the shortened
load_state_dict error, the strategy comparison (compare_init_strategies,
summarize_comparison, comparison_frame, strategy_gap, arch_label), the primary comparison
and the rendered prose."""

import copy

import numpy as np
import pytest
import torch
from _toy import assert_check_params_basics

import kdlib.data
from kdlib import models
from kdlib._checks import Verdict
from kdlib.data import Split, Splits
from kdlib.lessons import lesson03_student_init as lesson
from kdlib.lessons.lesson03_student_init import (
    arch_label,
    compare_init_strategies,
    comparison_frame,
    strategy_gap,
    summarize_comparison,
)
from kdlib.metrics import accuracy
from kdlib.student_init import init_student
from kdlib.train import distill, fit

KEYS = {"student", "params", "teacher", "teacher_acc", "strategy", "seed", "acc_init", "acc_trained"}


def make_data(n_train=240, n_val=120, d=20, k=3, seed=0):
    """A learnable synthetic task: the label is the arg-max of a fixed linear map."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(d, k, generator=g)

    def split(n):
        x = torch.randn(n, d, generator=g)
        return Split(x, (x @ w).argmax(1))

    return Splits(split(n_train), split(n_val), split(60), tuple("abc"), "synthetic")


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def teacher(data):
    torch.manual_seed(0)
    t = models.mlp([20, 32, 32, 32, 3])
    fit(t, data, epochs=3, seed=0, progress=False)
    return t


def small_student(seed=5):
    torch.manual_seed(seed)
    return models.mlp([20, 8, 8, 8, 3])


def run(teacher, student, data, **kw):
    kw.setdefault("epochs", 2)
    return compare_init_strategies(teacher, student, data, **kw)


# ------------------------------------------------------------------ compare_init_strategies
def test_rows_have_the_expected_keys_order_and_labels(teacher, data):
    student = small_student()
    rows = run(teacher, student, data, strategies=("random", "top-units"), seeds=2)
    assert [(r["strategy"], r["seed"]) for r in rows] == [
        ("random", 0), ("random", 1), ("top-units", 0), ("top-units", 1)]
    for r in rows:
        assert set(r) == KEYS
        assert r["student"] == "mlp(20-8-8-8-3)" and r["teacher"] == "mlp(20-32-32-32-3)"
        assert r["params"] == sum(p.numel() for p in student.parameters())
        assert r["teacher_acc"] == accuracy(teacher, data.val.x, data.val.y)
        for key in ("acc_init", "acc_trained"):
            # a fraction of the 120 validation examples
            assert 0.0 <= r[key] <= 1.0 and abs(r[key] * 120 - round(r[key] * 120)) < 1e-4


def test_rows_match_an_independent_rerun_of_each_step(teacher, data):
    """Every row equals init_student + accuracy + distill + accuracy done by hand."""
    student = small_student()
    rows = run(teacher, student, data, strategies=("random", "top-units"), seeds=[3],
               lam=0.3, T=2.0, lr=1e-2, batch_size=32)
    cache = models.predict(teacher, data.train.x)
    for row in rows:
        model = copy.deepcopy(student)
        extra = {"seed": 3} if row["strategy"] == "random" else {}
        init_student(model, teacher, row["strategy"], **extra)
        assert row["acc_init"] == accuracy(model, data.val.x, data.val.y)
        distill(model, teacher, (data.train, None), lam=0.3, T=2.0, epochs=2, lr=1e-2,
                batch_size=32, seed=3, progress=False, teacher_logits=cache)
        assert row["acc_trained"] == accuracy(model, data.val.x, data.val.y)


def test_deterministic_with_seeds_and_template_untouched(teacher, data):
    student = small_student()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    a = run(teacher, student, data, strategies=("random", "top-units"), seeds=2)
    b = run(teacher, student, data, strategies=("random", "top-units"), seeds=2,
            teacher_logits=models.predict(teacher, data.train.x))
    assert a == b
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


def test_seeds_redraw_random_init_but_not_teacher_derived_init(teacher, data):
    rows = run(teacher, small_student(), data, strategies=("random", "top-units"), seeds=4,
               epochs=1)
    random_init = [r["acc_init"] for r in rows if r["strategy"] == "random"]
    top_init = [r["acc_init"] for r in rows if r["strategy"] == "top-units"]
    assert len(set(top_init)) == 1  # the same sliced weights whatever the seed
    assert len(set(random_init)) > 1  # four different random starts


def test_copy_of_identical_architecture_starts_at_the_teachers_accuracy(teacher, data):
    twin = models.mlp([20, 32, 32, 32, 3])
    rows = run(teacher, twin, data, strategies=("copy",), seeds=2, epochs=1)
    expected = accuracy(teacher, data.val.x, data.val.y)
    assert [r["acc_init"] for r in rows] == [expected, expected]
    assert all(r["teacher_acc"] == expected for r in rows)


def test_layer_subset_and_cnn_top_units_pairs_run(teacher, data):
    shallow = models.mlp([20, 32, 32, 3])
    rows = run(teacher, shallow, data, strategies=("layer-subset",), seeds=1, epochs=1)
    t_layers = [m for m in teacher if isinstance(m, torch.nn.Linear)]
    kept = copy.deepcopy(shallow)
    init_student(kept, teacher, "layer-subset")
    assert torch.equal(kept[3].weight, t_layers[2].weight)  # default layers [0, 2, 3]
    assert rows[0]["acc_init"] == accuracy(kept, data.val.x, data.val.y)

    g = torch.Generator().manual_seed(1)
    imgs = Splits(Split(torch.rand(64, 1, 12, 12, generator=g), torch.randint(0, 3, (64,), generator=g)),
                  Split(torch.rand(30, 1, 12, 12, generator=g), torch.randint(0, 3, (30,), generator=g)),
                  Split(torch.rand(2, 1, 12, 12), torch.zeros(2, dtype=torch.long)), tuple("abc"))
    torch.manual_seed(0)
    t = models.cnn(channels=(4, 8), hidden=16, n_classes=3, image_size=12)
    s = models.cnn(channels=(2, 4), hidden=8, n_classes=3, image_size=12)
    rows = run(t, s, imgs, strategies=("random", "top-units"), seeds=1, epochs=1)
    assert [r["student"] for r in rows] == ["cnn(2,4|8)"] * 2
    assert rows[0]["teacher"] == "cnn(4,8|16)"


def test_bad_arguments_fail_before_any_training(teacher, data):
    student = small_student()
    with pytest.raises(ValueError, match="layer-subset"):
        # same depth, narrower: layer-subset cannot map it (raised by the trial init)
        run(teacher, student, data, strategies=("random", "layer-subset"))
    with pytest.raises(ValueError, match=r"strategies\[0\]='nope' is not supported"):
        run(teacher, student, data, strategies=("nope",))
    with pytest.raises(ValueError, match=r"strategies=\[\] has 0 entries; allowed: at least 1"):
        run(teacher, student, data, strategies=())
    with pytest.raises(TypeError, match="strategies must be a list, got 'random'"):
        run(teacher, student, data, strategies="random")
    with pytest.raises(ValueError, match="repeats"):
        run(teacher, student, data, strategies=("random", "random"))
    with pytest.raises(ValueError, match="seeds=0"):
        run(teacher, student, data, seeds=0)
    with pytest.raises(ValueError, match=r"seeds\[1\]=-1"):
        run(teacher, student, data, seeds=[0, -1])
    with pytest.raises(ValueError, match="lam=1.5"):
        run(teacher, student, data, lam=1.5)
    with pytest.raises(ValueError, match="T=0"):
        run(teacher, student, data, T=0)
    with pytest.raises(ValueError, match="epochs=0"):
        run(teacher, student, data, epochs=0)
    with pytest.raises(TypeError, match="student"):
        run(teacher, "mlp", data)


# ------------------------------------------------------------------ summaries and table
def fake_rows():
    rows = []
    values = {("s1", "random"): [(0.1, 0.70), (0.12, 0.74), (0.08, 0.72)],
              ("s1", "top-units"): [(0.46, 0.81), (0.46, 0.80), (0.46, 0.83)],
              ("s2", "random"): [(0.09, 0.8)]}
    for (student, strategy), pairs in values.items():
        for seed, (a0, a1) in enumerate(pairs):
            rows.append({"student": student, "params": 100 if student == "s1" else 2000,
                         "teacher": "t", "teacher_acc": 0.88 if student == "s1" else 0.87,
                         "strategy": strategy, "seed": seed, "acc_init": a0, "acc_trained": a1})
    return rows


def test_summarize_comparison_matches_numpy():
    rows = fake_rows()
    summary = summarize_comparison(rows)
    assert [(s["student"], s["strategy"], s["n"]) for s in summary] == [
        ("s1", "random", 3), ("s1", "top-units", 3), ("s2", "random", 1)]
    for s in summary:
        group = [r for r in rows if (r["student"], r["strategy"]) == (s["student"], s["strategy"])]
        for key in ("acc_init", "acc_trained"):
            v = np.array([r[key] for r in group])
            assert s[f"{key}_mean"] == pytest.approx(v.mean(), abs=1e-12)
            if len(v) > 1:
                assert s[f"{key}_sd"] == pytest.approx(v.std(ddof=1), abs=1e-12)
            else:  # one seed has no spread: kdlib.results.sample_sd gives nan
                assert np.isnan(s[f"{key}_sd"])
    assert summary[2]["params"] == 2000 and summary[2]["teacher_acc"] == 0.87
    with pytest.raises(ValueError, match="empty"):
        summarize_comparison([])


def test_comparison_frame_shows_means_and_sds_in_percent():
    html = comparison_frame(fake_rows(), epochs=3).to_html()
    assert "after 3 epochs (%)" in html and "right after init (%)" in html
    # s1/random: init mean 10.0, sd 2.0; trained mean 72.0, sd 2.0; teacher 88.0
    assert "10.0 ± 2.0" in html and "72.0 ± 2.0" in html and "88.0" in html
    assert "46.0 ± 0.0" in html and "81.3 ± 1.5" in html
    assert ">9.0<" in html and ">80.0<" in html  # s2/random: one seed, no "± sd"
    assert "after training (%)" in comparison_frame(fake_rows()).to_html()


def test_strategy_gap():
    rows = fake_rows()
    assert strategy_gap(rows, "s1", "top-units") == pytest.approx((0.81 + 0.80 + 0.83) / 3 - 0.72)
    assert strategy_gap(rows, "s1", "top-units", key="acc_init") == pytest.approx(0.46 - 0.10)
    assert strategy_gap(rows, "s1", "random", "top-units") == pytest.approx(
        -strategy_gap(rows, "s1", "top-units"))
    with pytest.raises(ValueError, match="student='s3'"):
        strategy_gap(rows, "s3", "top-units")
    with pytest.raises(ValueError, match="no strategy 'top-units'"):
        strategy_gap(rows, "s2", "top-units")
    with pytest.raises(ValueError, match="key="):
        strategy_gap(rows, "s1", "top-units", key="acc")


OK = {"checkpoint": "", "n_train": 5000, "epochs": 3, "long_epochs": 12, "seeds": 3, "lam": 0.5,
      "T": 4.0, "lr": 3e-3}


def test_check_params():
    assert_check_params_basics(lesson, OK, integer="seeds")
    for name, bad in [("n_train", 10), ("n_train", 60000), ("epochs", 0), ("long_epochs", 101),
                      ("seeds", 0), ("lam", -0.1), ("T", 0.0), ("lr", 2.0)]:
        with pytest.raises(ValueError, match=f"{name}={bad!r} is out of range"):
            lesson.check_params(**{**OK, name: bad})


# ------------------------------------------------------------------ the article's line
def test_load_error_summary_of_a_real_size_mismatch():
    teacher, small = models.cnn(), models.cnn(channels=(8, 16), hidden=32)
    with pytest.raises(RuntimeError) as info:
        small.load_state_dict(teacher.state_dict())
    full = str(info.value).splitlines()
    mismatches = [ln.strip() for ln in full[1:] if ln.strip()]
    assert len(mismatches) == 7  # weight and bias of 4 layers, but the 10 output biases match
    text = lesson.load_error_summary(info.value).splitlines()
    assert text[0] == "RuntimeError: " + full[0].strip()
    assert [ln.strip() for ln in text[1:3]] == mismatches[:2]
    assert text[1].startswith("    size mismatch for 0.weight: copying a param with shape "
                              "torch.Size([32, 1, 3, 3])")
    assert text[3] == ("    ... and 5 more size mismatches: 3.weight, 3.bias, 7.weight, 7.bias, "
                       "10.weight")
    assert len(lesson.load_error_summary(info.value, shown=7).splitlines()) == 8
    assert lesson.load_error_summary(RuntimeError("one line")) == "RuntimeError: one line"
    with pytest.raises(TypeError, match="error must be an exception"):
        lesson.load_error_summary("boom")
    with pytest.raises(ValueError, match="shown=-1"):
        lesson.load_error_summary(info.value, shown=-1)


def test_arch_label():
    assert arch_label(models.mlp([784, 64, 10])) == "mlp(784-64-10)"
    assert arch_label(models.cnn(channels=(8, 16), hidden=32)) == "cnn(8,16|32)"
    assert arch_label(torch.nn.Linear(2, 2)) == "Linear"


# ------------------------------------------------------------------ the primary comparison, what we saw
def test_primary_comparison_pairs_top_units_with_random_by_seed():
    rows = rows_of("cnn(8,16|32)", {"random": [0.70, 0.72, 0.71], "top-units": [0.80, 0.81, 0.83]})
    table = lesson.primary_comparison(rows)
    d = np.array([0.80, 0.81, 0.83]) - np.array([0.70, 0.72, 0.71])
    assert table.loc["top-units", "diff"] == pytest.approx(d.mean())
    assert table.loc["top-units", "verdict"] == "helped"
    with pytest.raises(ValueError, match="no student"):
        lesson.primary_comparison(rows_of("other", {"random": [0.1]}))


def test_say_functions_follow_the_intervals():
    helped = rows_of("cnn(8,16|32)", {"random": [0.70, 0.72, 0.71], "top-units": [0.80, 0.81, 0.83]})
    text = lesson.say_starts(helped, epochs=3, n_train=2000).data
    assert "3-epoch students on 2,000 images" in text and "the top-units start helped: +10.3" in text
    noise = rows_of("cnn(8,16|32)", {"random": [0.70, 0.75, 0.71], "top-units": [0.72, 0.71, 0.74]})
    assert "a difference from the top-units start was not shown" in lesson.say_starts(
        noise, epochs=3, n_train=2000).data
    mlp = rows_of("m", {"random": [0.70, 0.72, 0.71], "top-units": [0.80, 0.81, 0.83]})
    plain = rows_of("m", {"random": [0.69, 0.72, 0.70], "top-units": [0.79, 0.81, 0.82]})
    said = lesson.say_start_or_loss(mlp, plain, [("m", "top-units")], lam=0.5, epochs=3).data
    assert "the start carries the lead" in said
    assert "without the teacher in the loss (λ = 1) the start helped" in said
    longer = rows_of("m", {"random": [0.80, 0.81, 0.80], "top-units": [0.82, 0.83, 0.83]})
    said = lesson.say_longer(mlp, longer, student="m", strategy="top-units", epochs=3, long_epochs=12).data
    assert "it shrank, and it is still there" in said
    summary = lesson.say_summary(helped + mlp, plain, longer, [("m", "top-units")], epochs=3,
                                 long_epochs=12).data
    assert "the top-units start of the small CNN helped" in summary
    assert "carries the MLP students' leads" in summary


def test_each_seed_distils_on_its_own_sample():
    assert lesson._sample(torch.arange(100) % 10, None, 0) is None
    a, b = lesson._sample(torch.arange(100) % 10, 20, 0), lesson._sample(torch.arange(100) % 10, 20, 1)
    assert len(a) == len(set(a)) == 20 and a != b
    assert np.bincount(np.array(a) % 10).tolist() == [2] * 10  # stratified
    with pytest.raises(ValueError, match="n_train=200 is out of range"):
        lesson._sample(torch.arange(100) % 10, 200, 0)


# ------------------------------------------------------------------ the λ = 1 control and exercise checks

def rows_of(student, values):
    """values: {strategy: [acc per seed]} -> rows as compare_init_strategies makes them."""
    return [{"student": student, "params": 1, "teacher": "t", "teacher_acc": 0.9, "strategy": strategy,
             "seed": seed, "acc_init": 0.1, "acc_trained": acc}
            for strategy, accs in values.items() for seed, acc in enumerate(accs)]


def test_separate_init_from_kd_paired_differences():
    kd = rows_of("s", {"random": [0.70, 0.72, 0.71], "top-units": [0.80, 0.81, 0.83]})
    plain = rows_of("s", {"random": [0.69, 0.70, 0.70], "top-units": [0.79, 0.80, 0.80]})
    out = lesson.separate_init_from_kd(kd, plain, "s", "top-units")
    assert out["init_gain_kd"].mean == pytest.approx(np.mean([0.10, 0.09, 0.12]))
    assert out["init_gain_plain"].mean == pytest.approx(0.10)
    assert out["kd_gain_top-units"].mean == pytest.approx(np.mean([0.01, 0.01, 0.03]))
    assert out["kd_gain_random"].mean == pytest.approx(np.mean([0.01, 0.02, 0.01]))
    assert out["init_gain_plain"].n == 3
    with pytest.raises(ValueError, match="strategy 'layer-subset'"):
        lesson.separate_init_from_kd(kd, plain, "s", "layer-subset")


def test_separate_init_from_kd_on_real_runs(teacher, data):
    kd = run(teacher, small_student(), data, seeds=2, epochs=1, strategies=("random", "top-units"))
    plain = run(teacher, small_student(), data, seeds=2, epochs=1, strategies=("random", "top-units"),
                lam=1.0)
    name = kd[0]["student"]
    out = lesson.separate_init_from_kd(kd, plain, name, "top-units")
    assert out["init_gain_plain"].mean == pytest.approx(strategy_gap(plain, name, "top-units"))
    assert out["init_gain_kd"].mean == pytest.approx(strategy_gap(kd, name, "top-units"))


def check(n, answer, **evidence):
    """``lesson.check_exercise`` shown as a notebook's ``print(...)`` shows it; its ``right``."""
    verdict = lesson.check_exercise(n, answer, **evidence)
    assert isinstance(verdict, Verdict)
    print(verdict)
    return verdict.right


def test_check_exercise_verdicts(capsys, teacher, data):
    rows = rows_of("s", {"random": [0.70, 0.72], "top-units": [0.80, 0.81]})
    assert check(1, None) is False
    assert "Not yet: replace None" in capsys.readouterr().out
    assert check(1, "yes", rows=rows, epochs=10) is True
    assert check(1, "no", rows=rows, epochs=10) is False
    assert check(1, "yes", rows=rows, epochs=3) is True
    assert "rerun with -p epochs 10" in capsys.readouterr().out
    assert check(3, "top-units") is True and check(3, "random") is False
    plain = rows_of("mlp(784-64-64-64-10)", {"random": [0.70, 0.72], "top-units": [0.73, 0.75]})
    kd = rows_of("mlp(784-64-64-64-10)", {"random": [0.70, 0.72], "top-units": [0.80, 0.81]})
    assert check(4, 3.0, kd_rows=kd, plain_rows=plain) is True
    assert check(4, 9.5, kd_rows=kd, plain_rows=plain) is False
    with pytest.raises(ValueError, match="exercise 4"):
        check(4, 3.0)
    with pytest.raises(ValueError):
        check(5, 1)
    out = capsys.readouterr().out
    assert "Right:" in out and "Not yet:" in out


def test_check_exercise_2_computes_the_incoming_start():
    torch.manual_seed(0)
    big = models.cnn()
    x = torch.randn(50, 1, 28, 28)
    small = Splits(Split(x, torch.zeros(50, dtype=torch.long)), Split(x, (x.mean((1, 2, 3)) > 0).long()),
                   None, tuple("ab"), "toy")
    want = accuracy(init_student(models.cnn(channels=(8, 16), hidden=32), big, "top-units",
                                 importance="incoming"), small.val.x, small.val.y)
    assert check(2, want, teacher=big, data=small) is True
    assert check(2, want + 0.1, teacher=big, data=small) is False
    with pytest.raises(ValueError, match="teacher"):
        check(2, 0.5)


@pytest.mark.slow  # trains an MLP teacher and 12 students on Fashion-MNIST (~10 s)
def test_the_notebooks_conclusion_a_teacher_derived_start_leads_random_under_either_loss():
    """Notebook 03's conclusion, which its cell no longer checks by digits (they differ across
    CPUs): after a short training, a top-units start leads a random one with the KD loss and
    with hard labels alone, each by a paired interval above 0 over 3 seeds. Checked here at a
    smaller scale than the notebook's (10,000 teacher images, 2,000 student images, 1 epoch;
    here the lead was about +28 points with KD and +22 without, each CI well above 0)."""
    full = kdlib.data.load("fashion-mnist", n_train=10000, seed=0)
    small = kdlib.data.load("fashion-mnist", n_train=2000, seed=0)
    torch.manual_seed(0)
    mlp_teacher = models.mlp([784, 256, 256, 256, 10])
    fit(mlp_teacher, full, epochs=1, seed=0, progress=False)
    template = models.mlp([784, 64, 64, 64, 10])
    kw = dict(strategies=("random", "top-units"), seeds=3, epochs=1,
              teacher_logits=models.predict(mlp_teacher, small.train.x))
    kd = compare_init_strategies(mlp_teacher, template, small, **kw)
    plain = compare_init_strategies(mlp_teacher, template, small, lam=1.0, **kw)
    parts = lesson.separate_init_from_kd(kd, plain, kd[0]["student"], "top-units")
    assert parts["init_gain_kd"].low > 0, parts["init_gain_kd"]
    assert parts["init_gain_plain"].low > 0, parts["init_gain_plain"]
