"""kdlib.experiments: students trained in lockstep equal the same students trained alone.

The reference is the one-by-one path a learner reads: ``torch.manual_seed(seed); mlp(sizes)``,
then ``kdlib.train.fit`` (hard labels, label smoothing) or ``kdlib.train.distill`` (KD, given
targets) with the same seed, learning rate, epochs and batch size. Floats are compared with a
tolerance: the batched kernels round differently from the per-student ones.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kdlib import models, results, train
from kdlib.data import Split
from kdlib.experiments import GroupStudent, group_memory, train_group

torch.set_num_threads(1)
SIZES = [20, 16, 3]


def make_pool(n=96, n_val=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(20, 3, generator=g)
    x = torch.randn(n + n_val, 20, generator=g)
    y = (x @ w + 0.5 * torch.randn(n + n_val, 3, generator=g)).argmax(1)
    teacher = 2.0 * (x @ w)  # a "teacher" that knows the true scores
    return Split(x[:n], y[:n]), Split(x[n:], y[n:]), teacher[:n]


POOL, VAL, TEACHER = make_pool()


def alone(student: GroupStudent, *, epochs, batch_size, teacher=TEACHER, pool=POOL):
    """The same student trained by itself, as a learner would."""
    torch.manual_seed(student.seed)
    model = models.mlp(SIZES)
    rows = torch.arange(len(pool.y)) if student.rows is None else torch.tensor(student.rows)
    data = (Split(pool.x[rows], pool.y[rows]), VAL)
    kw = dict(epochs=epochs, batch_size=batch_size, lr=student.lr, seed=student.seed, progress=False)
    if student.lam < 1:
        history = train.distill(model, None, data, lam=student.lam, T=student.T,
                                teacher_logits=teacher[rows], **kw)
    else:
        def smoothed(logits, y, idx, x, eps=student.eps):
            return F.cross_entropy(logits, y, label_smoothing=eps)

        history = train.fit(model, data, loss_fn=smoothed, **kw)
    return model, history


def max_weight_difference(a, b) -> float:
    with torch.no_grad():
        return max(float((p - q).abs().max()) for p, q in zip(a.parameters(), b.parameters()))


METHODS = {
    "scratch": dict(lam=1.0),
    "label smoothing": dict(lam=1.0, eps=0.1),
    "KD": dict(lam=0.5, T=4.0),
    "KD, soft term only": dict(lam=0.0, T=2.0),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_one_step_equals_the_student_trained_alone(method):
    """One step (batch = the whole 48-image sample): every parameter within 1e-6."""
    students = [GroupStudent(seed=s, lr=lr, rows=tuple(((torch.arange(48) * 2 + s) % 96).tolist()),
                             **METHODS[method]) for s, lr in ((0, 3e-2), (1, 1e-2), (2, 3e-2))]
    group = train_group(SIZES, POOL, students, val=VAL, teacher_logits=TEACHER, epochs=1, batch_size=48)
    for student, (model, history) in zip(students, group):
        ref, ref_history = alone(student, epochs=1, batch_size=48)
        assert max_weight_difference(model, ref) <= 1e-6, student
        assert history.epoch_loss == pytest.approx(ref_history.epoch_loss, rel=1e-6)
        assert history.val_acc == pytest.approx(ref_history.val_acc, abs=1e-6)


def test_given_targets_one_step():
    """A student taught by given targets (a control's probabilities, as logits T·log q) equals
    distill on the same logits."""
    q = torch.softmax(torch.randn(96, 3, generator=torch.Generator().manual_seed(3)), 1)
    given = 2.0 * q.log()
    student = GroupStudent(seed=4, lam=0.3, T=2.0, rows=tuple(range(0, 96, 2)))
    (model, _), = train_group(SIZES, POOL, [student], teacher_logits=given, epochs=1, batch_size=48)
    ref, _ = alone(student, epochs=1, batch_size=48, teacher=given)
    assert max_weight_difference(model, ref) <= 1e-6


def test_a_mixed_group_of_several_steps_stays_with_the_students_trained_alone():
    """Scratch, label smoothing and KD students with their own samples, seeds and learning
    rates in one group, 3 epochs of 4 steps: the same validation accuracies, weights within
    float rounding."""
    students = [GroupStudent(seed=s, lr=lr, rows=tuple(torch.randperm(96, generator=torch.Generator()
                                                                    .manual_seed(10 + s))[:64].tolist()),
                             **METHODS[m])
                for s, (m, lr) in enumerate([("scratch", 3e-2), ("KD", 1e-2), ("label smoothing", 3e-2),
                                             ("KD", 3e-2), ("KD, soft term only", 5e-2)])]
    group = train_group(SIZES, POOL, students, val=VAL, teacher_logits=TEACHER, epochs=3, batch_size=16)
    for student, (model, history) in zip(students, group):
        ref, ref_history = alone(student, epochs=3, batch_size=16)
        assert max_weight_difference(model, ref) <= 1e-4, student
        assert history.val_acc == pytest.approx(ref_history.val_acc, abs=1 / len(VAL.y) + 1e-9)
        assert len(history.step_loss) == 12 and history.steps_per_epoch == 4
        assert len(history.epoch_time) == 3 and min(history.epoch_time) > 0


@pytest.mark.parametrize("method", ["scratch", "KD"])
def test_over_seeds_the_group_agrees_with_one_by_one_within_the_seeds_interval(method):
    """A longer run (10 epochs): each student may drift from its twin by float rounding, but over
    6 seeds that resample the data the mean validation accuracy agrees within its interval."""
    def sample(s):
        return tuple(torch.randperm(96, generator=torch.Generator().manual_seed(100 + s))[:72].tolist())

    students = [GroupStudent(seed=s, rows=sample(s), **METHODS[method]) for s in range(6)]
    group = train_group(SIZES, POOL, students, val=VAL, teacher_logits=TEACHER, epochs=10, batch_size=16)
    batched = [h.val_acc[-1] for _, h in group]
    single = [alone(s, epochs=10, batch_size=16)[1].val_acc[-1] for s in students]
    diff = results.paired_difference(batched, single)
    assert not diff.excludes_zero, diff


def test_initial_weights_are_manual_seed_then_mlp_and_the_global_rng_is_untouched():
    state = torch.random.get_rng_state()
    (model, _), = train_group(SIZES, POOL, [GroupStudent(seed=7, lr=1e-12)], epochs=1, batch_size=96)
    assert torch.equal(torch.random.get_rng_state(), state)
    torch.manual_seed(7)
    fresh = models.mlp(SIZES)
    assert max_weight_difference(model, fresh) < 1e-9  # lr ~ 0: the weights stayed where they began
    assert not model.training


def test_a_group_over_the_memory_budget_trains_in_parts(capsys):
    students = [GroupStudent(seed=s, lam=0.5, T=2.0) for s in range(5)]
    whole = train_group(SIZES, POOL, students, teacher_logits=TEACHER, epochs=2, batch_size=32)
    each = group_memory(1, n_train=96, batch_size=32, sizes=SIZES, n_val=0)
    parts = train_group(SIZES, POOL, students, teacher_logits=TEACHER, epochs=2, batch_size=32,
                        memory_budget=2 * each)
    assert "training them in groups of 2" in capsys.readouterr().out
    for (a, _), (b, _) in zip(whole, parts):
        assert max_weight_difference(a, b) <= 1e-5
    assert group_memory(10, n_train=96, batch_size=32, sizes=SIZES, n_val=0) == 10 * each


@pytest.mark.parametrize("students, kwargs, exc, match", [
    ([GroupStudent(seed=0, lam=1.5)], {}, ValueError, r"students\[0\]\.lam"),
    ([GroupStudent(seed=0), GroupStudent(seed=1, T=0.0)], {}, ValueError, r"students\[1\]\.T"),
    ([GroupStudent(seed=-1)], {}, ValueError, r"students\[0\]\.seed"),
    ([GroupStudent(seed=0, eps=1.0)], {}, ValueError, r"students\[0\]\.eps"),
    (["not a student"], {}, TypeError, r"students\[0\] must be a GroupStudent"),
    ([GroupStudent(seed=0, rows=(0, 1)), GroupStudent(seed=1, rows=(0, 1, 2))], {}, ValueError,
     "as many training rows"),
    ([GroupStudent(seed=0, lam=0.5)], {"teacher_logits": None}, ValueError, "pass teacher_logits"),
    ([GroupStudent(seed=0, lam=0.5)], {"teacher_logits": torch.zeros(5, 3)}, ValueError,
     r"\(96, 3\), one row per pool image"),
    ([GroupStudent(seed=0)], {"epochs": 0}, ValueError, "epochs"),
    ([GroupStudent(seed=0, rows=(0, 96))], {}, ValueError, r"students\[0\]\.rows must index the pool's 96"),
])
def test_bad_arguments_name_the_argument(students, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        train_group(SIZES, POOL, students, **{"epochs": 1, **kwargs})
    with pytest.raises(ValueError, match="features but sizes"):
        train_group([10, 4, 3], POOL, [GroupStudent(seed=0)], epochs=1)
    assert train_group(SIZES, POOL, [], epochs=1) == []
