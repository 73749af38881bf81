"""Tests of kdlib/lessons/lesson06_dark_knowledge.py (notebook 06): parameter check, samples,
control targets, one budget for every condition, the lockstep pool of targets, the bias rule, the
omitted-class rows, the slider, the teachers, the say_* sentences (they follow the intervals),
exercises."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch
from _toy import assert_check_params_basics

from kdlib import data as kdata
from kdlib import experiments, losses, models, results
from kdlib._checks import Verdict
from kdlib.lessons import lesson06_dark_knowledge as lesson
from kdlib.metrics import accuracy_from_logits

DEFAULTS = dict(omitted="Bag", n_train=2000, epochs=10, seeds=5, quick=False)


def test_check_params_basics():
    assert_check_params_basics(lesson, DEFAULTS, integer="seeds")


def toy_logits(n=300, k=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, k, (n,), generator=g)
    z = torch.randn(n, k, generator=g) + 3 * torch.nn.functional.one_hot(y, k)
    return z, y


@pytest.mark.parametrize("name,value,match", [("seeds", 1, "seeds=1"), ("epochs", 0, "epochs=0"),
                                              ("omitted", "Sock", "omitted='Sock'"),
                                              ("quick", 1, "quick must be True or False")])
def test_check_rejects_bad_values_naming_them(name, value, match):
    with pytest.raises((TypeError, ValueError), match=match):
        lesson.check_params(**dict(DEFAULTS, **{name: value}))


def test_only_class_keeps_or_drops_one_class_and_the_two_partition_the_split():
    split = kdata.Split(torch.arange(12.0).reshape(6, 2), torch.tensor([0, 2, 1, 2, 0, 2]))
    mine, rest = lesson.only_class(split, 2), lesson.only_class(split, 2, keep=False)
    assert mine.y.tolist() == [2, 2, 2] and mine.x[:, 0].tolist() == [2.0, 6.0, 10.0]
    assert rest.y.tolist() == [0, 1, 0] and rest.x[:, 0].tolist() == [0.0, 4.0, 8.0]


def test_class_metrics_against_a_direct_count():
    z, y = toy_logits()
    for bias in (0.0, 2.5):
        zz = z.clone()
        zz[:, 3] += bias
        pred = zz.argmax(1).numpy()
        yn = y.numpy()
        want = ((pred[yn == 3] == 3).mean(), (pred[yn != 3] == yn[yn != 3]).mean(), (pred == yn).mean())
        np.testing.assert_allclose(lesson.class_metrics(z, y, 3, bias), want)


def test_choose_bias_matches_the_teachers_false_positive_rate():
    z, y = toy_logits(2000)
    keep = y != 2
    teacher = z[keep]
    student = teacher.clone()
    student[:, 2] -= 6.0           # a student that learned to never say class 2
    b = lesson.choose_bias(student, teacher, 2)
    fp = lesson.predicted_frequency(teacher, 2)
    assert 0 < fp < 0.2 and b == pytest.approx(6.0, abs=0.3)
    assert lesson.predicted_frequency(student, 2, b) <= fp < lesson.predicted_frequency(student, 2, b + 0.05)
    always_2 = teacher + 100 * torch.nn.functional.one_hot(torch.tensor(2), 10)
    assert lesson.choose_bias(always_2, teacher, 2) == 0


def test_decomposition_identity_on_toy_logits():
    s, y = toy_logits(seed=1)
    t, _ = toy_logits(seed=2)
    d = lesson.decomposition(s, t, y, T=4.0)
    assert d["max_error"] < 1e-12
    assert d["kl"] == pytest.approx(d["tckd"] + d["nckd_weighted"], rel=1e-9)
    p = losses.soft_targets(t.double(), 4.0)
    assert torch.allclose(losses.soft_targets(lesson.as_logits(p, 4.0), 4.0), p)


def test_teacher_table_and_make_teacher_parameters(monkeypatch, data_dir):
    assert {f for f, _ in lesson.TEACHERS.values()} >= {"teacher.pt", "teacher_e5.pt", "teacher_e5_epoch1.pt"}
    assert all(m in lesson.TEACHERS for m in lesson.ENSEMBLE)
    calls = []
    monkeypatch.setattr(lesson.runs, "execute_notebook", lambda nb, out, params: calls.append(params))
    lesson.make_teachers(force=True)
    assert sorted(c["checkpoint"] for c in calls) == sorted(
        str(data_dir / f) for f in ("teacher_e5.pt", "teacher_wide.pt", "teacher_ls.pt"))
    calls.clear()
    path = lesson.make_teacher("10k, after 1 epoch")
    assert path == data_dir / "teacher_e5_epoch1.pt"
    assert calls[0]["epochs"] == 5 and calls[0]["snapshot_epochs"] == [1, 2] and calls[0]["n_train"] == 10000
    assert calls[0]["checkpoint"] == str(data_dir / "teacher_e5.pt")
    with pytest.raises(ValueError, match="not a known teacher"):
        lesson.teacher_path("best")
    (data_dir / "teacher_wide.pt").unlink(missing_ok=True)
    with pytest.raises(FileNotFoundError, match="make teachers"):
        lesson.load_teachers(["10k, wider"], make_missing=False)
    assert set(lesson.load_teachers(["10k, after 1 epoch"], make_missing=False)) == {"10k, after 1 epoch"}


def test_check_exercise():
    assert lesson.check_exercise(1, "Shuffled teacher").message == "Right: shuffled teacher"
    assert lesson.check_exercise(2, 0.9 * np.log(0.9 / 0.6) + 0.1 * np.log(0.1 / 0.4))
    verdict = lesson.check_exercise(2, 0.5)
    assert isinstance(verdict, Verdict) and not verdict and verdict.message.startswith("Not yet: TCKD =")
    assert not lesson.check_exercise(3, "tckd") and lesson.check_exercise(3, "NCKD")
    with pytest.raises(ValueError, match="n=9"):
        lesson.check_exercise(9, "x")


def test_teacher_outputs_adds_the_ensemble(monkeypatch):
    z, y = toy_logits(40)
    x = torch.randn(40, 1, 28, 28)
    split = kdata.Split(x, y)
    d = kdata.Splits(split, split, split, kdata.FASHION_CLASSES)
    nets = {n: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10)) for n in lesson.ENSEMBLE}
    train_logits, accs, val_logits = lesson.teacher_outputs(nets, d)
    key = f"ensemble of {len(lesson.ENSEMBLE)}"
    mean = torch.stack([val_logits[n] for n in lesson.ENSEMBLE]).mean(0)
    assert torch.allclose(val_logits[key], mean) and accs[key] == accuracy_from_logits(mean, y)


def test_shipped_teachers_are_listed_with_their_sha256_and_parameters():
    readme = (kdata.REPO_ROOT / "data" / "README.md").read_text()
    for name, (f, params) in lesson.TEACHERS.items():
        path = kdata.REPO_ROOT / "data" / f
        assert path.is_file(), f"{f} ({name}) is missing: run `make teachers`"
        assert hashlib.sha256(path.read_bytes()).hexdigest() in readme, f"{f}: update data/README.md"
        meta = models.load_checkpoint(path)["meta"]
        for k, v in params.items():
            if k not in ("checkpoint", "snapshot_epochs"):
                assert meta[k] == v, (f, k)



def test_check_defaults_and_quick():
    S = lesson.check_params(**DEFAULTS)
    assert isinstance(S, lesson.Settings) and vars(S) == DEFAULTS
    assert S.omitted_index == kdata.FASHION_CLASSES.index("Bag") == 8
    assert S.n_test is None and S.n_val == lesson.N_VAL and S.n_pool == lesson.POOL_FACTOR * 2000
    Q = lesson.check_params(**dict(DEFAULTS, quick=True))
    assert Q.n_train == lesson.QUICK["n_train"] and Q.seeds >= 2 and Q.n_test == lesson.QUICK["n_test"]


def test_control_logits_are_the_promised_targets():
    t, y = toy_logits(50)
    p = losses.soft_targets(t, 4.0)
    rows = torch.arange(len(y))
    assert lesson.control_logits("real teacher", t, y, T=4.0) is t
    for name in ("shuffled teacher", "uniform-wrong"):
        q = losses.soft_targets(lesson.control_logits(name, t, y, T=4.0).double(), 4.0)
        assert torch.allclose(q[rows, y], p[rows, y].double(), atol=1e-5)
        assert torch.allclose(q.sum(1), torch.ones(50, dtype=torch.float64))
    u = losses.soft_targets(lesson.control_logits("uniform-wrong", t, y, T=4.0).double(), 4.0)
    assert torch.allclose(u, losses.uniform_wrong(p, y).double(), atol=1e-5)
    with pytest.raises(ValueError, match="condition='teacher'"):
        lesson.control_logits("teacher", t, y, T=4.0)


def test_candidates_give_every_condition_the_same_learning_rates():
    S = lesson.check_params(**DEFAULTS)
    cands = lesson.candidates(S)
    by = {c: [k for k in cands if k.condition == c] for c in lesson.CONTROLS}
    for cond, ks in by.items():
        assert sorted({k.lr for k in ks}) == sorted(S.lr_candidates), cond
    assert len(by["hard labels"]) == len(S.lr_candidates)
    for cond in ("label smoothing", *lesson.TEACHER_LIKE):             # one knob set per lr, as many
        assert len(by[cond]) == len(S.lr_candidates) * len(S.kd_candidates), cond
    assert {k.targets for k in by["uniform-wrong"]} == {("uniform-wrong", T) for _, T in S.kd_candidates}
    assert by["real teacher"][0].method().kind == "kd" and by["label smoothing"][0].method().eps > 0
    assert by["hard labels"][0].knobs() == "lr=0.01"


def toy_pool(n=64, seed=1):
    z, y = toy_logits(n)
    x = torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))
    return kdata.Split(x, y), z


def test_stacked_targets_train_the_student_its_own_targets_would():
    pool, z = toy_pool()
    other = z.flip(1)
    S = lesson.check_params(**dict(DEFAULTS, epochs=1))
    rows = tuple(range(0, 64, 2))
    cand = lesson.Candidate("real teacher", 0.01, lam=0.5, T=4.0, targets="b")
    jobs = [(cand, 0, rows, 3), (lesson.Candidate("hard labels", 0.01), 0, rows, 3)]
    got = lesson.train_conditions(pool, jobs, S, targets={"a": z, "b": other},
                                  evaluate=lesson.logits_on(pool))
    split, logits, offsets = lesson.stack_targets(pool, {"a": z, "b": other}, ["a", None, "b"])
    assert offsets == {"a": 0, "b": 64} and torch.equal(logits[64:], other) and len(split.y) == 128
    from kdlib import experiments, train
    alone = experiments.Config(experiments.mlp_builder([784, 128, 10]), experiments.kd(0.5, 4.0), 3,
                               train.TrainSettings(epochs=1, lr=0.01, batch_size=128), rows=rows)
    model, _ = experiments.train(alone, (pool, None), teacher_logits=other)
    assert torch.allclose(got[0]["logits_0"], models.predict(model, pool.x), atol=1e-4)
    assert got[0]["sample"] == 0 and got[0]["method"] == "real teacher" and got[1]["lr"] == 0.01


def test_select_uses_no_image_of_the_omitted_class(monkeypatch):
    y = torch.arange(10).repeat(20)
    x = torch.randn(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    d = kdata.Splits(kdata.Split(x, y), kdata.Split(x[:50], y[:50]), kdata.Split(x[:50], y[:50]),
                     kdata.FASHION_CLASSES)
    S = lesson.check_params(**dict(DEFAULTS, quick=True))
    seen = {}

    def fake(pool, jobs, S, *, targets=None, evaluate=None, keep=None, desc=""):
        seen["rows"] = {r for _, _, rows, _ in jobs for r in rows}
        val = evaluate.__closure__[0].cell_contents                    # accuracy_of's split
        seen["val"] = val.y
        return [{"method": k.condition, "candidate": k, "acc": 0.5 + 0.01 * k.lr + (k.eps == 0.1) * 0.1}
                for k, *_ in jobs]

    monkeypatch.setattr(lesson, "train_conditions", fake)
    samples = dict(enumerate(experiments.sample_rows(len(y), 100, 2, labels=y)))
    rows, chosen = lesson.select(d, samples, {}, S)
    assert all(int(y[r]) != S.omitted_index for r in seen["rows"]) and seen["rows"] <= set(samples[0])
    assert S.omitted_index not in seen["val"].tolist()
    assert chosen["label smoothing"].eps == 0.1 and chosen["hard labels"].lr == max(S.lr_candidates)
    table = lesson.selection_table(rows, chosen)
    assert list(table.index) == list(lesson.CONTROLS) and table.loc["hard labels", "candidates"] == 2


def test_omitted_rows_and_table():
    z, y = toy_logits()
    z[:, 7] -= 5.0
    teacher = z + 5.0 * torch.nn.functional.one_hot(torch.full_like(y, 7), 10)
    keep = y != 7
    rows = [{"method": "real teacher", "sample": s, "val_logits": (z + 0.1 * s)[keep],
             "test_logits": z + 0.1 * s} for s in range(3)]
    out = lesson.omitted_rows(rows, teacher, y, y, 7)
    assert all(r["recall"] < r["recall_after"] and r["bias"] > 0 for r in out)
    table = lesson.omitted_table(out, "Sneaker")
    assert "Sneaker recall" in table.columns and table.index.tolist() == ["real teacher"]


def test_bias_explorer_slider_updates_label_and_numbers():
    z, y = toy_logits()
    z[:, 7] -= 5.0
    logits = [z + 0.1 * s for s in range(3)]
    ex = lesson.BiasExplorer(logits, y, 7, "Sneaker", chosen=1.0)
    assert ex.slider.value == 1.0 and ex.figure is not None
    ex.slider.value = 5.0
    want = np.mean([lesson.class_metrics(z + 0.1 * s, y, 7, 5.0)[:2] for s in range(3)], axis=0)
    assert (ex.recall, ex.others) == pytest.approx(tuple(want))
    assert f"{100 * want[0]:.1f} %" in ex.label.value and "+5.00" in ex.label.value
    assert ex.figure.axes[0].get_ylim()[0] == 0
    b, rec, oth = lesson.oracle_bias(logits, y, 7, lesson.BIAS_GRID[::20])
    assert b > 0 and rec > lesson.class_metrics(z, y, 7)[0]


def test_rank_correlation():
    assert lesson.rank_correlation([0.8, 0.81, 0.82], [0.7, 0.71, 0.72]) == pytest.approx(1.0)
    assert lesson.rank_correlation([0.8, 0.81, 0.82], [0.72, 0.71, 0.70]) == pytest.approx(-1.0)


def control_rows(offsets, *, n=5, metric="test_acc", noise=0.004, base=0.8):
    """Rows of every condition over n samples: base + the condition's offset + per-sample noise
    shared by all (so pairing removes it) + a small condition-specific wobble."""
    g = np.random.default_rng(0)
    shared = g.normal(0, 0.01, n)
    return [{"method": c, "sample": s, metric: base + offsets.get(c, 0.0) + shared[s] + g.normal(0, noise)}
            for c in lesson.CONTROLS for s in range(n)]


@pytest.mark.parametrize("offset,verdict", [(0.02, "helped"), (-0.02, "hurt"), (0.0, "not shown")])
def test_say_full_follows_the_primary_interval(offset, verdict):
    table = lesson.compare_controls(control_rows({"real teacher": offset}, noise=0.004 if offset else 0.01))
    d = lesson.paired(table, "real teacher", lesson.REFERENCE)
    assert d.verdict == verdict
    text = lesson.say_full(table).data
    primary = text.split("**Exploratory**")[0]
    assert "Primary comparison" in primary and d.describe(lesson.PRIMARY) in primary
    if verdict == "not shown":
        assert "was not shown" in primary and "cannot tell" in primary
    else:
        assert f"{lesson.PRIMARY} {verdict}" in primary


def test_say_omitted_and_summary_follow_their_intervals():
    S = lesson.check_params(**DEFAULTS)
    rows = [dict(r, recall=0.0 if r["method"] != "real teacher" else 0.2, others=0.8, others_after=0.79,
                 bias=1.0) for r in control_rows({"real teacher": 0.5}, metric="recall_after", base=0.1)]
    omit = lesson.compare_controls(rows, metric="recall_after")
    text = lesson.say_omitted(omit, rows, (2.5, 0.9, 0.78), S, n_test_c=1000, teacher_recall=0.97).data
    assert "the real teacher against the uniform-wrong teacher helped" in text
    assert "predict no Bag at all" in text and "more conservative" in text
    full = lesson.compare_controls(control_rows({}, noise=0.01))
    ba = results.compare([{"method": m, "sample": s, "test_acc": 0.8 + (m == "teacher (hard labels)") * 0.01
                           + 0.001 * s * (m == "born-again student")}
                          for m in ("teacher (hard labels)", "born-again student") for s in range(5)],
                         by="method", metric="test_acc", reference="teacher (hard labels)", pair_on="sample")
    assert "hurt" in lesson.say_born_again(ba).data
    q_rows = [{"method": m, "sample": s, "test_acc": 0.8 + off + 0.002 * (s % 2)}
              for m, off in (("hard labels", 0.0), ("a", -0.05), ("default", 0.0)) for s in range(5)]
    quality = lesson.quality_table(q_rows, {"a": 0.7, "default": 0.9})
    assert list(quality.index) == ["hard labels", "a (teacher 70.0 %)", "default (teacher 90.0 %)"]
    q = lesson.say_quality(quality, lesson.rank_correlation(quality.attrs["teacher_accs"],
                                                            quality["mean"].iloc[1:])).data
    assert "1 of 2: made the student worse" in q
    assert "1 of 2: a difference from the labels alone was not shown" in q
    summary = lesson.say_summary(full, omit, quality, ba, S).data
    assert "ranking (real − uniform-wrong) helped" in summary and "was not shown" in summary
    assert "hurt against its teacher" in summary
    table = lesson.summary_table(full, omit, {c: lesson.Candidate(c, 0.03) for c in lesson.CONTROLS}, "Bag")
    assert table.shape == (5, 3)


def test_say_multiplicity_and_decomposition():
    assert "about 1.0 of them" in lesson.say_multiplicity(20).data
    d = {"kl": 0.1, "tckd": 0.04, "nckd": 0.1, "nckd_weighted": 0.06, "max_error": 1e-16}
    text = lesson.say_decomposition(d, {"tckd": 0.0, "nckd": 0.8}, {"tckd": 0.0, "nckd": 0.4},
                                    T=4, n=2000).data
    assert "holds to machine precision" in text and "smaller" in text and "60 %" in text


def test_born_again_pairs_each_student_with_its_own_teacher():
    pool, _ = toy_pool()
    d = kdata.Splits(pool, pool, pool, kdata.FASHION_CLASSES)
    S = lesson.check_params(**dict(DEFAULTS, epochs=1))
    samples = {0: tuple(range(32)), 1: tuple(range(32, 64))}
    jobs = [(lesson.Candidate("hard labels", 0.01), s, r, s) for s, r in samples.items()]
    hard = lesson.train_conditions(pool, jobs, S, evaluate=lesson.accuracy_of(pool), keep=lambda c: True)
    for r in hard:
        r["test_acc"] = r.pop("acc")
    out = lesson.born_again(d, hard, samples, lesson.Candidate("real teacher", 0.01, lam=0.5, T=4.0), S)
    teachers = [r["test_acc"] for r in out if r["method"] == "teacher (hard labels)"]
    assert teachers == [r["test_acc"] for r in hard]
    ba = [r for r in out if r["method"] == "born-again student"]
    assert [r["sample"] for r in ba] == [0, 1] and [r["seed"] for r in ba] == [1000, 1001]
