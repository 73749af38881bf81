"""Tests for kdlib.student_init: every strategy against an independent computation."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from kdlib import models
from kdlib.student_init import IMPORTANCES, STRATEGIES, describe, init_student, layer_table


def make(builder, *args, seed, **kwargs):
    torch.manual_seed(seed)
    return builder(*args, **kwargs)


def state_copy(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def same_state(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture
def x_vec():
    return torch.randn(32, 20, generator=torch.Generator().manual_seed(1))


@pytest.fixture
def x_img():
    return torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(2))


def np_w(layer):
    return layer.weight.detach().numpy().astype(np.float64)


def top_k_sorted(score, k):
    """Indices of the k largest scores (ties: lower index first), in increasing order."""
    order = np.argsort(-score, kind="stable")
    return np.sort(order[:k])


# ------------------------------------------------------------------------- copy
def test_copy_reproduces_mlp_teacher_exactly(x_vec):
    teacher = make(models.mlp, [20, 16, 16, 3], seed=0)
    student = make(models.mlp, [20, 16, 16, 3], seed=1)
    before = state_copy(teacher)
    assert init_student(student, teacher, "copy") is student
    assert torch.equal(models.predict(student, x_vec), models.predict(teacher, x_vec))
    assert same_state(student.state_dict(), teacher.state_dict())
    assert same_state(teacher.state_dict(), before)  # the teacher is only read
    assert student.kd_init["strategy"] == "copy"


def test_copy_reproduces_cnn_teacher_exactly(x_img):
    teacher = make(models.cnn, seed=0)
    student = make(models.cnn, seed=1)
    init_student(student, teacher, "copy")
    assert torch.equal(models.predict(student, x_img), models.predict(teacher, x_img))


def test_copy_into_smaller_student_names_first_mismatched_layer():
    student, teacher = models.mlp([784, 64, 10]), models.mlp([784, 256, 10])
    before = state_copy(student)
    with pytest.raises(ValueError) as info:
        init_student(student, teacher, "copy")
    msg = str(info.value)
    assert msg.startswith("copy needs identical architectures")
    assert "layer '1.weight' is (64, 784) in the student but (256, 784) in the teacher" in msg
    assert same_state(student.state_dict(), before)  # nothing copied


def test_copy_missing_and_extra_layers_are_named():
    with pytest.raises(ValueError, match=r"copy .*'3\.weight' is \(3, 3\) in the student but "
                                         r"the teacher has no such layer"):
        init_student(models.mlp([20, 3, 3]), models.mlp([20, 3]), "copy")
    with pytest.raises(ValueError, match=r"copy .*'3\.weight' is \(3, 3\) in the teacher but "
                                         r"the student has no such layer"):
        init_student(models.mlp([20, 3]), models.mlp([20, 3, 3]), "copy")


def test_copy_mlp_into_cnn_names_the_layer():
    with pytest.raises(ValueError, match=r"copy .*layer '0\.weight'"):
        init_student(models.cnn(), models.mlp([784, 10]), "copy")


# -------------------------------------------------------------------- top-units
def test_top_units_all_kept_reproduces_mlp_exactly(x_vec):
    teacher = make(models.mlp, [20, 16, 16, 3], seed=0, dropout=0.3)
    student = make(models.mlp, [20, 16, 16, 3], seed=1)  # no Dropout: identity at eval anyway
    init_student(student, teacher, "top-units")
    assert torch.equal(models.predict(student, x_vec), models.predict(teacher, x_vec))
    hidden = [e["units"] for e in student.kd_init["kept"][:-1]]
    assert hidden == [list(range(16)), list(range(16))]


def test_top_units_all_kept_reproduces_default_cnn_exactly(x_img):
    teacher = make(models.cnn, seed=0)
    student = make(models.cnn, seed=1)
    init_student(student, teacher, "top-units")
    assert torch.equal(models.predict(student, x_img), models.predict(teacher, x_img))


def test_top_units_mlp_keeps_the_most_important_units(x_vec):
    teacher = make(models.mlp, [20, 16, 16, 3], seed=0)
    student = make(models.mlp, [20, 8, 5, 3], seed=1)
    init_student(student, teacher, "top-units")
    w1, w2, w3 = (np_w(teacher[i]) for i in (1, 3, 5))
    b1, b2, b3 = (teacher[i].bias.detach().numpy() for i in (1, 3, 5))
    # importance of unit j = ||incoming row j|| * ||outgoing column j||, on the full teacher
    keep1 = top_k_sorted(np.linalg.norm(w1, axis=1) * np.linalg.norm(w2, axis=0), 8)
    keep2 = top_k_sorted(np.linalg.norm(w2, axis=1) * np.linalg.norm(w3, axis=0), 5)
    expected = [(w1[keep1], b1[keep1]), (w2[keep2][:, keep1], b2[keep2]), (w3[:, keep2], b3)]
    for i, (w, b) in zip((1, 3, 5), expected):
        assert np.array_equal(student[i].weight.detach().numpy(), w.astype(np.float32))
        assert np.array_equal(student[i].bias.detach().numpy(), b)
    assert [e["units"] for e in student.kd_init["kept"]] == [keep1.tolist(), keep2.tolist(), None]

    # the student's output is a forward pass through the sliced teacher weights
    t = [torch.from_numpy(a.astype(np.float32)) for pair in expected for a in pair]
    h = torch.relu(x_vec @ t[0].T + t[1])
    h = torch.relu(h @ t[2].T + t[3])
    torch.testing.assert_close(models.predict(student, x_vec), h @ t[4].T + t[5])


@pytest.mark.parametrize("how", ["incoming", "outgoing"])
def test_top_units_other_importances(how):
    teacher = make(models.mlp, [20, 16, 16, 3], seed=3)
    student = make(models.mlp, [20, 6, 4, 3], seed=4)
    init_student(student, teacher, "top-units", importance=how)
    w1, w2, w3 = (np_w(teacher[i]) for i in (1, 3, 5))
    if how == "incoming":
        s1, s2 = np.linalg.norm(w1, axis=1), np.linalg.norm(w2, axis=1)
    else:
        s1, s2 = np.linalg.norm(w2, axis=0), np.linalg.norm(w3, axis=0)
    keep1, keep2 = top_k_sorted(s1, 6), top_k_sorted(s2, 4)
    assert np.array_equal(student[1].weight.detach().numpy(), w1[keep1].astype(np.float32))
    assert np.array_equal(student[3].weight.detach().numpy(),
                          w2[keep2][:, keep1].astype(np.float32))
    assert student.kd_init["options"] == {"importance": how}
    assert set(IMPORTANCES) == {"product", "incoming", "outgoing"}


def test_top_units_cnn_slices_channels_and_flatten_blocks(x_img):
    teacher = make(models.cnn, seed=0, channels=(6, 8), hidden=12)
    student = make(models.cnn, seed=1, channels=(3, 5), hidden=7)
    init_student(student, teacher, "top-units")
    c1, c2, f1, f2 = (np_w(teacher[i]) for i in (0, 3, 7, 10))
    cb1, cb2, fb1, fb2 = (teacher[i].bias.detach().numpy() for i in (0, 3, 7, 10))
    spatial = 5 * 5  # 28 -> 26 -> 13 -> 11 -> 5
    assert f1.shape == (12, 8 * spatial)

    def norms_by(a, axis):  # norm of everything except `axis`, one value per index of `axis`
        return np.sqrt((np.moveaxis(a, axis, 0) ** 2).reshape(a.shape[axis], -1).sum(axis=1))

    f1_blocks = f1.reshape(12, 8, spatial)  # Flatten is channel-major: column = c * 25 + pixel
    keep_c1 = top_k_sorted(norms_by(c1, 0) * norms_by(c2, 1), 3)
    keep_c2 = top_k_sorted(norms_by(c2, 0) * norms_by(f1_blocks, 1), 5)
    keep_h = top_k_sorted(np.linalg.norm(f1, axis=1) * np.linalg.norm(f2, axis=0), 7)
    cols = np.concatenate([np.arange(c * spatial, (c + 1) * spatial) for c in keep_c2])
    expected = {0: (c1[keep_c1], cb1[keep_c1]),
                3: (c2[keep_c2][:, keep_c1], cb2[keep_c2]),
                7: (f1[keep_h][:, cols], fb1[keep_h]),
                10: (f2[:, keep_h], fb2)}
    for i, (w, b) in expected.items():
        assert np.array_equal(student[i].weight.detach().numpy(), w.astype(np.float32)), i
        assert np.array_equal(student[i].bias.detach().numpy(), b), i

    p = {i: (torch.from_numpy(w.astype(np.float32)), torch.from_numpy(b))
         for i, (w, b) in expected.items()}
    h = F.max_pool2d(torch.relu(F.conv2d(x_img, *p[0])), 2)
    h = F.max_pool2d(torch.relu(F.conv2d(h, *p[3])), 2)
    h = torch.relu(F.linear(h.flatten(1), *p[7]))
    torch.testing.assert_close(models.predict(student, x_img), F.linear(h, *p[10]))


def test_top_units_leaves_student_unchanged_on_error():
    teacher = models.mlp([20, 16, 16, 3])
    student = models.mlp([20, 8, 32, 3])  # second hidden layer wider than the teacher's
    before = state_copy(student)
    with pytest.raises(ValueError, match=r"top-units .*no wider .*'3' has 32 units in the "
                                         r"student but 16 in the teacher"):
        init_student(student, teacher, "top-units")
    assert same_state(student.state_dict(), before)


@pytest.mark.parametrize("student, teacher, pattern", [
    (models.mlp([20, 8, 3]), models.mlp([20, 16, 16, 3]),
     r"top-units needs the same depth: the student has 2 weight layers, the teacher 3"),
    (models.mlp([20, 8, 8, 4]), models.mlp([20, 16, 16, 3]),
     r"top-units needs the same input and output sizes: the student maps 20 -> 4, "
     r"the teacher 20 -> 3"),
    (models.mlp([784, 16, 10]), models.cnn(channels=(8,)),
     r"top-units cannot map an mlp student onto a cnn teacher"),
    (models.cnn(channels=(4, 8), image_size=32), models.cnn(channels=(8, 8)),
     r"top-units needs the same feature-map size at Flatten: 36 .* student, 25 .* teacher"),
    (nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.Tanh(), nn.Linear(8, 3)),
     models.mlp([20, 16, 3]),
     r"top-units needs the same layer sequence .*student layer '2' is Tanh\(\) but teacher "
     r"layer '2' is ReLU\(\)"),
    (models.rnn(), models.rnn(), r"top-units maps nn.Sequential .*the student is a RowRNN"),
    (nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)),
     nn.Sequential(nn.Flatten(), nn.Linear(20, 8), nn.BatchNorm1d(8), nn.Linear(8, 3)),
     r"top-units cannot map the student: layer '2' \(BatchNorm1d\) has parameters"),
])
def test_top_units_rejects_pairs_it_cannot_map(student, teacher, pattern):
    with pytest.raises(ValueError, match=pattern):
        init_student(student, teacher, "top-units")


# --------------------------------- layer-subset
def test_layer_subset_keeps_first_last_and_spread(x_vec):
    teacher = make(models.mlp, [784, 64, 64, 64, 10], seed=0)
    student = make(models.mlp, [784, 64, 64, 10], seed=1)
    init_student(student, teacher, "layer-subset")
    chosen = np.floor(np.linspace(0, 3, 3) + 0.5).astype(int)  # independent of the module
    assert chosen.tolist() == [0, 2, 3]
    t_linear = [m for m in teacher if isinstance(m, nn.Linear)]
    s_linear = [m for m in student if isinstance(m, nn.Linear)]
    for s, j in zip(s_linear, chosen):
        assert torch.equal(s.weight, t_linear[j].weight)
        assert torch.equal(s.bias, t_linear[j].bias)
    assert student.kd_init["options"] == {"layers": [0, 2, 3]}
    assert [(e["student"], e["teacher"]) for e in student.kd_init["kept"]] == [
        ("1", "1"), ("3", "5"), ("5", "7")]
    x = torch.randn(4, 784, generator=torch.Generator().manual_seed(5))
    h = torch.relu(t_linear[0](x))
    h = torch.relu(t_linear[2](h))
    torch.testing.assert_close(models.predict(student, x), t_linear[3](h))  # float32 tolerance


def test_layer_subset_explicit_layers_and_longer_teacher():
    teacher = make(models.mlp, [20, 16, 16, 16, 16, 16, 3], seed=0)  # 6 Linear layers
    student = make(models.mlp, [20, 16, 16, 3], seed=1)
    t_linear = [m for m in teacher if isinstance(m, nn.Linear)]
    init_student(student, teacher, "layer-subset")
    expected = np.floor(np.linspace(0, 5, 3) + 0.5).astype(int).tolist()
    assert student.kd_init["options"]["layers"] == expected == [0, 3, 5]
    init_student(student, teacher, "layer-subset", layers=[0, 1, 5])
    s_linear = [m for m in student if isinstance(m, nn.Linear)]
    for s, j in zip(s_linear, [0, 1, 5]):
        assert torch.equal(s.weight, t_linear[j].weight)


def test_layer_subset_equal_depth_is_a_copy_and_works_for_cnn(x_img):
    teacher, student = make(models.cnn, seed=0), make(models.cnn, seed=1)
    init_student(student, teacher, "layer-subset")
    assert torch.equal(models.predict(student, x_img), models.predict(teacher, x_img))


@pytest.mark.parametrize("student, teacher, kwargs, pattern", [
    (models.mlp([784, 32, 32, 10]), models.mlp([784, 64, 64, 64, 10]), {},
     r"layer-subset needs the same widths: student Linear layer '1' is \(32, 784\) but the "
     r"teacher layer it would copy, Linear '1', is \(64, 784\)"),
    (models.mlp([20, 16, 16, 16, 3]), models.mlp([20, 16, 16, 3]), {},
     r"layer-subset needs a teacher with at least as many layers: the student has 4 Linear "
     r"layers, the teacher 3"),
    (models.mlp([20, 16, 4]), models.mlp([20, 16, 16, 3]), {},
     r"layer-subset needs the same input and output sizes"),
    (models.cnn(channels=(32,)), models.cnn(), {},
     r"layer-subset needs the same widths: student Linear layer '4' .*Flatten"),
    (models.mlp([784, 64, 10]), models.cnn(), {}, r"layer-subset cannot map an mlp student"),
    (models.mlp([20, 16, 16, 3]), models.mlp([20, 16, 16, 16, 3]), {"layers": [0, 3]},
     r"layers=\[0, 3\] has 2 entries but the student has 3 weight layers"),
    (models.mlp([20, 16, 16, 3]), models.mlp([20, 16, 16, 16, 3]), {"layers": [0, 2, 1]},
     r"strictly increasing \(layer-subset"),
    (models.mlp([20, 16, 16, 3]), models.mlp([20, 16, 16, 16, 3]), {"layers": [0, 2, 4]},
     r"layers\[2\]=4 is out of range; allowed: \[0, 3\]"),
    (models.mlp([20, 16, 16, 3]), models.mlp([20, 16, 16, 16, 3]), {"layers": [1, 2, 3]},
     r"layer-subset needs the same widths: student Linear layer '1' is \(16, 20\)"),
])
def test_layer_subset_rejects_pairs_it_cannot_map(student, teacher, kwargs, pattern):
    before = state_copy(student)
    with pytest.raises(ValueError, match=pattern):
        init_student(student, teacher, "layer-subset", **kwargs)
    assert same_state(student.state_dict(), before)


def test_layer_subset_layers_must_be_a_sequence():
    with pytest.raises(TypeError, match="layers must be a sequence"):
        init_student(models.mlp([20, 3]), models.mlp([20, 3]), "layer-subset", layers=0)


# ----------------------------------------------------------------------- random
def test_random_with_seed_is_deterministic_and_differs_from_teacher(x_vec):
    teacher = make(models.mlp, [20, 16, 16, 3], seed=0)
    a = init_student(make(models.mlp, [20, 16, 16, 3], seed=1), teacher, "random", seed=7)
    b = init_student(make(models.mlp, [20, 16, 16, 3], seed=2), teacher, "random", seed=7)
    assert same_state(a.state_dict(), b.state_dict())
    assert not torch.equal(models.predict(a, x_vec), models.predict(teacher, x_vec))
    assert all(not torch.equal(a.state_dict()[k], v) for k, v in teacher.state_dict().items())
    c = init_student(make(models.mlp, [20, 16, 16, 3], seed=1), teacher, "random", seed=8)
    assert not torch.equal(c[1].weight, a[1].weight)
    assert a.kd_init == {"strategy": "random", "options": {"seed": 7}, "kept": []}
    # the seeded re-draw leaves the global random generator where it was
    fresh = models.mlp([20, 3])
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    init_student(fresh, teacher, "random", seed=5)
    assert torch.equal(torch.rand(3), expected_next)


def test_random_without_seed_leaves_student_alone_and_accepts_any_pair():
    student = models.rnn()
    before = state_copy(student)
    init_student(student, models.cnn(), "random")
    assert same_state(student.state_dict(), before)
    assert "nothing copied" in layer_table(student)


# ------------------------------------------------------------ arguments, report
def test_unknown_strategy_lists_the_allowed_ones():
    with pytest.raises(ValueError) as info:
        init_student(models.mlp([20, 3]), models.mlp([20, 3]), "low-rank")
    msg = str(info.value)
    assert "strategy='low-rank'" in msg
    assert all(repr(s) in msg for s in STRATEGIES)


@pytest.mark.parametrize("student, teacher, who", [
    ("model", models.mlp([20, 3]), "student"),
    (models.mlp([20, 3]), {"1.weight": torch.zeros(3, 20)}, "teacher"),
])
def test_non_modules_raise_type_error(student, teacher, who):
    with pytest.raises(TypeError, match=f"{who} must be a torch.nn.Module"):
        init_student(student, teacher, "copy")


@pytest.mark.parametrize("strategy, kwargs, pattern", [
    ("copy", {"seed": 1}, r"seed= is an option of strategy 'random' only; strategy 'copy'"),
    ("top-units", {"layers": [0, 1]}, r"layers= is an option of strategy 'layer-subset' only; "
                                      r"strategy 'top-units'"),
    ("random", {"importance": "product"}, r"importance= .*'top-units' only; strategy 'random'"),
    ("top-units", {"importance": "gradient"}, r"importance='gradient' is not supported"),
    ("random", {"seed": -1}, r"seed=-1 is out of range"),
])
def test_bad_options(strategy, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        init_student(models.mlp([20, 8, 3]), models.mlp([20, 8, 3]), strategy, **kwargs)


def test_summary_and_describe():
    teacher = make(models.mlp, [20, 16, 16, 3], seed=0)
    student = init_student(models.mlp([20, 8, 5, 3]), teacher, "top-units")
    text = layer_table(student)
    units = student.kd_init["kept"][0]["units"]
    assert text.splitlines()[0] == "top-units (importance='product')"
    assert f"student layer 1 8×20 <- teacher layer 1: 8 of 16 units [{units[0]}, " in text
    assert "student layer 5 3×5 <- teacher layer 5: all 3 units" in text
    subset = init_student(models.mlp([20, 16, 3]), teacher, "layer-subset")
    assert "student layer 3 3×16 <- teacher layer 5: copied whole" in layer_table(subset)
    with pytest.raises(ValueError, match="no kd_init record"):
        layer_table(models.mlp([20, 3]))
    for strategy in STRATEGIES:
        assert isinstance(describe(strategy), str) and len(describe(strategy)) > 40
    with pytest.raises(ValueError, match="strategy='nope'"):
        describe("nope")


def test_student_may_sit_on_another_dtype():
    teacher = make(models.mlp, [20, 16, 3], seed=0)
    student = models.mlp([20, 8, 3]).double()
    init_student(student, teacher, "top-units")
    assert student[1].weight.dtype == torch.float64
    w1, w2 = np_w(teacher[1]), np_w(teacher[3])
    keep = top_k_sorted(np.linalg.norm(w1, axis=1) * np.linalg.norm(w2, axis=0), 8)
    assert np.array_equal(student[1].weight.detach().numpy(), w1[keep])


# --------------------------------- a CNN teacher cannot initialise an RNN student
@pytest.mark.parametrize("strategy", ["copy", "layer-subset", "top-units"])
def test_no_strategy_maps_a_cnn_onto_an_rnn(strategy):
    student, teacher = models.rnn(), models.cnn()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(ValueError, match="no strategy can") as err:
        init_student(student, teacher, strategy)
    assert "gate matrices" in str(err.value) and "random" in str(err.value)
    assert all(torch.equal(v, student.state_dict()[k]) for k, v in before.items())


def test_random_init_of_an_rnn_student_is_allowed():
    student = init_student(models.rnn(), models.cnn(), "random", seed=0)
    assert student.kd_init["strategy"] == "random"
