"""kdlib.experiments' engine: methods, configurations, ``train`` and ``train_students``.

Each method is checked against the path a learner would write by hand
(``torch.manual_seed(seed); model = build(); fit(...)`` or ``distill(...)``), bit for bit on this
machine (the same operations in the same order), and the engine must leave the global random
state as it found it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdlib import experiments as ex
from kdlib import losses, models, train
from kdlib.data import Split, Splits

torch.set_num_threads(1)
G = torch.Generator().manual_seed(0)
X, Y = torch.randn(180, 12, generator=G), torch.randint(0, 3, (180,), generator=G)
DATA = Splits(Split(X[:120], Y[:120]), Split(X[120:150], Y[120:150]), Split(X[150:], Y[150:]),
              ("a", "b", "c"), "toy")
TEACHER = torch.randn(120, 3, generator=G) * 3
SETTINGS = train.TrainSettings(epochs=2, batch_size=32, lr=1e-2)


def build():
    return models.mlp([12, 8, 3])


def weights(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def by_hand(seed, loss_fn=None, *, lam=None, T=None, data=DATA, teacher=TEACHER):
    torch.manual_seed(seed)
    model = build()
    kw = dict(settings=SETTINGS, seed=seed, progress=False)
    if lam is not None:
        train.distill(model, None, data, lam=lam, T=T, teacher_logits=teacher, **kw)
    else:
        train.fit(model, data, loss_fn=loss_fn, **kw)
    return model


@pytest.mark.parametrize("method, reference", [
    (ex.scratch(), lambda: by_hand(3)),
    (ex.kd(0.3, 4.0), lambda: by_hand(3, lam=0.3, T=4.0)),
    (ex.label_smoothing(0.2), lambda: by_hand(
        3, lambda z, y, i, x: F.cross_entropy(z, y, label_smoothing=0.2))),
    (ex.on_targets(torch.softmax(TEACHER, 1), lam=0.5, T=2.0), lambda: by_hand(
        3, lambda z, y, i, x: losses.kd_loss_from_probs(z, torch.softmax(TEACHER, 1)[i], y,
                                                        lam=0.5, T=2.0))),
])
def test_each_method_trains_what_a_learner_would_write(method, reference):
    model, history = ex.train(ex.Config(build, method, 3, SETTINGS), DATA, teacher_logits=TEACHER)
    assert torch.equal(weights(model), weights(reference()))
    assert history.epochs == 2 and not model.training


def test_the_global_random_state_is_left_alone_and_order_does_not_matter():
    configs = [ex.Config(build, ex.kd(0.5, 2.0), s, SETTINGS) for s in (0, 1, 2)]
    before = torch.get_rng_state()
    forward = [weights(ex.train(c, DATA, teacher_logits=TEACHER)[0]) for c in configs]
    assert torch.equal(before, torch.get_rng_state())
    backward = [weights(ex.train(c, DATA, teacher_logits=TEACHER)[0]) for c in reversed(configs)]
    assert all(torch.equal(a, b) for a, b in zip(forward, reversed(backward)))
    assert not torch.equal(forward[0], forward[1])  # the seed matters


def test_rows_train_on_that_sample_with_its_teacher_logits():
    rows = tuple(range(0, 120, 2))
    model, _ = ex.train(ex.Config(build, ex.kd(0.5, 2.0), 1, SETTINGS, rows=rows), DATA,
                        teacher_logits=TEACHER)
    idx = torch.tensor(rows)
    sub = (Split(X[idx], Y[idx]), DATA.val)
    assert torch.equal(weights(model), weights(by_hand(1, lam=0.5, T=2.0, data=sub, teacher=TEACHER[idx])))


def test_init_seed_changes_only_the_initial_weights():
    a, _ = ex.train(ex.Config(build, ex.scratch(), 1, SETTINGS, init_seed=7), DATA)
    torch.manual_seed(7)
    model = build()
    train.fit(model, DATA, settings=SETTINGS, seed=1, progress=False)
    assert torch.equal(weights(a), weights(model))


def test_custom_setup_trains_its_module_and_always_finishes():
    calls = []

    def setup(student, teacher_logits):
        def loss_fn(z, y, idx, x):
            return F.cross_entropy(z, y) + 0.0 * teacher_logits[idx].sum()
        return student, loss_fn, lambda: calls.append("finished")

    model, _ = ex.train(ex.Config(build, ex.custom("mine", setup), 2, SETTINGS), DATA,
                        teacher_logits=TEACHER)
    assert calls == ["finished"] and torch.equal(weights(model), weights(by_hand(2)))

    def broken(student, teacher_logits):
        def loss_fn(z, y, idx, x):
            raise RuntimeError("boom")
        return student, loss_fn, lambda: calls.append("finished again")

    with pytest.raises(RuntimeError, match="boom"):
        ex.train(ex.Config(build, ex.custom("broken", broken), 2, SETTINGS), DATA)
    assert calls[-1] == "finished again"


def test_callback_sees_the_student_after_every_epoch():
    seen = []
    ex.train(ex.Config(build, ex.scratch(), 0, SETTINGS), DATA,
             callback=lambda student, h: seen.append((h.epochs, isinstance(student, torch.nn.Module))))
    assert seen == [(1, True), (2, True)]


def test_train_students_returns_one_tidy_row_per_student_in_order():
    configs = [ex.Config(build, m, s, SETTINGS, labels={"model": "mlp-8"})
               for m in (ex.scratch(), ex.kd(0.5, 4.0)) for s in (0, 1)]
    rows = ex.train_students(configs, DATA, teacher_logits=TEACHER, keep=lambda c: c.seed == 0,
                             progress=False)
    assert [(r["method"], r["seed"]) for r in rows] == [("scratch", 0), ("scratch", 1), ("kd", 0), ("kd", 1)]
    assert {"model", "method", "lam", "T", "eps", "seed", "test_acc", "seconds"} <= set(rows[0])
    assert rows[2]["lam"] == 0.5 and rows[2]["T"] == 4.0 and rows[0]["lam"] == 1.0
    assert ("student" in rows[0]) and ("student" not in rows[1])
    from kdlib.metrics import accuracy
    assert rows[0]["test_acc"] == accuracy(by_hand(0), DATA.test.x, DATA.test.y)


@pytest.mark.parametrize("make, match", [
    (lambda: ex.kd(1.5, 2.0), r"lam=1.5 is out of range"),
    (lambda: ex.kd(0.5, 0.0), r"T=0.0 is out of range"),
    (lambda: ex.label_smoothing(1.0), r"eps=1.0 is out of range"),
    (lambda: ex.Config(build, ex.scratch(), -1), r"seed=-1 is out of range"),
    (lambda: ex.train(ex.Config(build, ex.kd(0.5, 2.0), 0, SETTINGS), DATA), r"pass teacher_logits"),
    (lambda: ex.Method("both", "kd", lam=0.5, eps=0.1), r"label smoothing .* with KD"),
    (lambda: ex.Method("odd", "targets"), r"build it with kd\(\)"),
    (lambda: ex.Method("odd", "online"), r"kind='online' is not supported"),
    (lambda: ex.train(ex.Config(build, ex.on_targets(TEACHER[:10]), 0, SETTINGS), DATA),
     r"targets has 10 rows but the training split has 120"),
])
def test_bad_methods_and_configs_say_what_is_wrong(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_kd_with_lam_1_still_distils():
    """kind decides the path: kd(1.0, T) runs distill (as notebook 03's λ = 1 rows always did)."""
    model, _ = ex.train(ex.Config(build, ex.kd(1.0, 3.0), 4, SETTINGS), DATA, teacher_logits=TEACHER)
    assert torch.equal(weights(model), weights(by_hand(4, lam=1.0, T=3.0)))


def test_train_wants_a_config():
    with pytest.raises(TypeError, match="config must be a kdlib.experiments.Config"):
        ex.train({"seed": 0}, DATA)


def test_lockstep_students_match_the_one_by_one_path_to_float_rounding():
    """mlp_builder students of one shape train as a group; each equals itself trained alone
    (weights to 1e-5 after two epochs here), rows in the order given, others still alone."""
    configs = [ex.Config(ex.mlp_builder([12, 8, 3]), m, s, SETTINGS, labels={"i": i})
               for i, (m, s) in enumerate([(ex.scratch(), 0), (ex.kd(0.3, 4.0), 1),
                                           (ex.label_smoothing(0.1), 2), (ex.kd(0.5, 2.0), 3)])]
    configs.insert(2, ex.Config(build, ex.kd(0.5, 2.0), 5, SETTINGS, labels={"i": "alone"}))
    keep = lambda c: True  # noqa: E731
    grouped = ex.train_students(configs, DATA, teacher_logits=TEACHER, keep=keep, progress=False)
    alone = ex.train_students(configs, DATA, teacher_logits=TEACHER, keep=keep, progress=False,
                              lockstep=False)
    assert [r["i"] for r in grouped] == [0, 1, "alone", 2, 3]
    for g, a in zip(grouped, alone):
        torch.testing.assert_close(weights(g["student"]), weights(a["student"]), rtol=1e-4, atol=1e-5)
    assert torch.equal(weights(grouped[2]["student"]), weights(alone[2]["student"]))  # not groupable


def test_only_the_default_recipe_shape_is_grouped():
    plain = ex.Config(ex.mlp_builder([12, 8, 3]), ex.scratch(), 0, SETTINGS)
    assert ex._group_key(plain, 120) == ((12, 8, 3), 2, 32, 120)
    for other in (ex.Config(build, ex.scratch(), 0, SETTINGS),
                  ex.Config(ex.mlp_builder([12, 8, 3]), ex.scratch(), 0, SETTINGS, init_seed=3),
                  ex.Config(ex.mlp_builder([12, 8, 3]), ex.scratch(), 0, train.TrainSettings(clip_grad=1.0)),
                  ex.Config(ex.mlp_builder([12, 8, 3]), ex.on_targets(torch.ones(120, 3) / 3), 0, SETTINGS)):
        assert ex._group_key(other, 120) is None


# ------------------------------------------------------------------ the protocol's samples and choices
def test_sample_rows_gives_each_seed_its_own_sample():
    disjoint = ex.sample_rows(100, 20, 5)
    assert all(len(set(r)) == 20 and list(r) == sorted(r) for r in disjoint)
    assert len(set().union(*map(set, disjoint))) == 100  # blocks of one permutation: no overlap
    drawn = ex.sample_rows(100, 60, 3)  # the pool is too small for disjoint blocks
    assert len({r for r in drawn}) == 3 and all(max(r) < 100 for r in drawn)
    assert ex.sample_rows(100, 20, 5) == disjoint  # seeded: the same rows every call


def test_sample_rows_with_labels_keeps_the_class_proportions():
    y = torch.tensor([0] * 70 + [1] * 30)
    for rows in ex.sample_rows(100, 10, 4, labels=y):
        assert int((y[list(rows)] == 1).sum()) == 3
    with pytest.raises(ValueError, match="labels has 99 entries"):
        ex.sample_rows(100, 10, 2, labels=y[:99])
    with pytest.raises(ValueError, match="n_train=200 is more than the pool's 100"):
        ex.sample_rows(100, 200, 2)


def test_choose_takes_each_groups_best_mean_on_validation_and_chosen_its_rows():
    rows = [{"method": m, "lr": lr, "T": T, "seed": s, "val_acc": acc + 0.01 * s}
            for m, lr, T, acc in [("scratch", 0.1, 1, 0.80), ("scratch", 0.3, 1, 0.70),
                                  ("kd", 0.1, 2, 0.82), ("kd", 0.1, 4, 0.85), ("kd", 0.3, 4, 0.84)]
            for s in range(3)]
    choice = ex.choose(rows, by=("lr", "T"))
    assert (choice["scratch"]["lr"], choice["kd"]["lr"], choice["kd"]["T"]) == (0.1, 0.1, 4)
    assert choice["kd"]["candidates"] == 3 and choice["kd"]["n"] == 3
    assert choice["kd"]["mean"] == pytest.approx(0.86)
    picked = ex.chosen(rows, choice, by=("lr", "T"))
    assert [(r["method"], r["T"], r["seed"]) for r in picked] == \
        [("scratch", 1, 0), ("scratch", 1, 1), ("scratch", 1, 2), ("kd", 4, 0), ("kd", 4, 1), ("kd", 4, 2)]
    two = ex.choose(rows, by="T", within=("method", "lr"))  # several grouping columns: tuple keys
    assert two[("kd", 0.1)]["T"] == 4 and len(two) == 4
    with pytest.raises(ValueError, match="the test split never chooses"):
        ex.choose(rows, metric="test_acc")


@pytest.mark.slow
def test_sampled_splits_pool_rows_and_one_seeds_data():
    pool, rows, data = ex.sampled_splits(100, 3, seed=1)
    assert len(pool.train.y) == 300 and sorted(rows) == [0, 1, 2]
    assert all(len(r) == 100 for r in rows.values())
    assert not set(rows[0]) & set(rows[1])  # disjoint samples while the pool holds them all
    mine = torch.as_tensor(rows[1])
    assert torch.equal(data.train.x, pool.train.x[mine]) and torch.equal(data.train.y, pool.train.y[mine])
    assert data.val is pool.val and data.test is pool.test
    with pytest.raises(ValueError, match="seed must be below n_samples=3"):
        ex.sampled_splits(100, 3, seed=3)
