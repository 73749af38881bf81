"""kdlib.lessons.lesson02_soft_targets: notebook 02's computations, figures and temperature explorer,
against independent NumPy computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _toy import assert_check_params_basics
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kdlib._checks import Verdict
from kdlib.lessons import lesson02_soft_targets as lesson

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


# --------------------------------------------------------------------------- references

def np_softmax(z, T):
    z = np.asarray(z, dtype=float) / T
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def np_entropy(p):
    p = np.asarray(p, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)


def fake_set(n=60, k=10, seed=0):
    """Logits with a clear class per row, labels, and distinct images."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % k
    z = torch.randn(n, k, generator=g) * 2
    z[torch.arange(n), y] += 4.0
    x = torch.rand(n, 1, 28, 28, generator=g)
    return z, y, x


# --------------------------------------------------------------------------- parameters

def test_check_params_accepts_defaults():
    lesson.check_params(checkpoint="", n_images=2000, T_max=20.0)
    lesson.check_params(checkpoint="x.pt", n_images=100, T_max=4)


@pytest.mark.parametrize(("kw", "exc", "match"), [
    ({"n_images": 50}, ValueError, r"n_images=50 .*\[100, 5000\]"),
    ({"n_images": 6000}, ValueError, r"n_images"),
    ({"n_images": 2.5}, TypeError, r"n_images must be an integer"),
    ({"T_max": 2.0}, ValueError, r"T_max=2.0 .*\[4.0, 100.0\]"),
    ({"T_max": float("nan")}, ValueError, r"T_max must be a finite number"),
    ({"checkpoint": None}, TypeError, r"checkpoint must be a string"),
])
def test_check_params_names_the_bad_parameter(kw, exc, match):
    args = {"checkpoint": "", "n_images": 2000, "T_max": 20.0} | kw
    with pytest.raises(exc, match=match):
        lesson.check_params(**args)


# --------------------------------------------------------------------------- computations

def test_entropy_matches_numpy_and_limits():
    p = torch.tensor([[0.7, 0.2, 0.1, 0.0], [0.25, 0.25, 0.25, 0.25], [1.0, 0.0, 0.0, 0.0]],
                     dtype=torch.float64)
    np.testing.assert_allclose(lesson.entropy_nats(p).numpy(), np_entropy(p.numpy()), rtol=1e-12)
    assert lesson.entropy_nats(p)[1] == pytest.approx(math.log(4))
    assert lesson.entropy_nats(p)[2] == 0.0
    with pytest.raises(ValueError, match=r"probs must hold probabilities in \[0, 1\]"):
        lesson.entropy_nats(torch.tensor([0.5, -0.1, 0.6]))
    with pytest.raises(TypeError, match="floating-point"):
        lesson.entropy_nats(torch.tensor([1, 0]))


def test_entropy_vs_temperature_matches_numpy_and_rises():
    z, _, _ = fake_set(n=5)
    ts = [0.5, 1, 2, 4, 20, 1e4]
    got = lesson.entropy_vs_temperature(z, ts)
    want = np.stack([np_entropy(np_softmax(z.numpy(), T)) for T in ts], axis=-1)
    assert got.shape == (5, len(ts))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)
    assert np.all(np.diff(got, axis=1) > 0)          # flatter as T grows
    np.testing.assert_allclose(got[:, -1], math.log(10), atol=1e-4)   # T → ∞: uniform
    one = lesson.entropy_vs_temperature(z[0], ts)
    np.testing.assert_allclose(one, got[0])
    with pytest.raises(ValueError, match="temperatures must all be finite and > 0"):
        lesson.entropy_vs_temperature(z, [1.0, 0.0])


def test_mean_soft_targets_matches_a_numpy_loop():
    z, y, _ = fake_set(n=57)
    for T in (1.0, 4.0):
        got = lesson.mean_soft_targets(z, y, T, 10)
        want = np.zeros((10, 10))
        for c in range(10):
            rows = [np_softmax(z[i].numpy(), T) for i in range(len(y)) if int(y[i]) == c]
            want[c] = np.mean(rows, axis=0)
        assert got.shape == (10, 10) and got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=1e-12)
        np.testing.assert_allclose(got.sum(1).numpy(), np.ones(10), rtol=1e-12)


def test_mean_soft_targets_empty_class_is_nan_and_bad_inputs_raise():
    z, y, _ = fake_set(n=20)
    keep = y != 3
    m = lesson.mean_soft_targets(z[keep], y[keep], 2.0, 10)
    assert torch.isnan(m[3]).all()
    assert not torch.isnan(m[torch.arange(10) != 3]).any()
    with pytest.raises(ValueError, match="n_classes=5 columns"):
        lesson.mean_soft_targets(z, y, 1.0, 5)
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 9\]"):
        lesson.mean_soft_targets(z, y + 5, 1.0, 10)
    with pytest.raises(ValueError, match="labels must be a 1-D integer tensor of length 20"):
        lesson.mean_soft_targets(z, y[:5], 1.0, 10)
    with pytest.raises(ValueError, match="T=0.0 is out of range"):
        lesson.mean_soft_targets(z, y, 0.0, 10)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(2, 8), T=st.floats(0.05, 100),
       data=st.data())
def test_mean_soft_targets_rows_sum_to_one(n, k, T, data):
    z = data.draw(hnp.arrays(np.float64, (n, k), elements=st.floats(-50, 50)))
    y = data.draw(hnp.arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    m = lesson.mean_soft_targets(torch.from_numpy(z), torch.from_numpy(y), T, k).numpy()
    present = np.bincount(y, minlength=k) > 0
    np.testing.assert_allclose(m[present].sum(1), 1.0, rtol=1e-9)
    assert np.all(m[present] >= 0)
    assert np.isnan(m[~present]).all()


def test_non_argmax_mass_matches_numpy_and_limits():
    z, _, _ = fake_set(n=30)
    ts = [0.01, 1.0, 4.0, 1e5]
    mean = lesson.non_argmax_mass(z, ts)
    median = lesson.non_argmax_mass(z, ts, reduce="median")
    off = np.stack([1 - np_softmax(z.numpy(), T).max(-1) for T in ts])
    np.testing.assert_allclose(mean, off.mean(1), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(median, np.median(off, axis=1), rtol=1e-6, atol=1e-12)
    assert lesson.non_argmax_mass(torch.tensor([[3.0, 0, 0], [0, 5, 1]]), [0.01])[0] < 1e-12  # T → 0
    assert mean[-1] == pytest.approx(0.9, abs=1e-4)   # T → ∞: 1 - 1/C
    with pytest.raises(ValueError, match="reduce='max' is not supported"):
        lesson.non_argmax_mass(z, ts, reduce="max")


def test_mass_off_top_matches_numpy():
    z, _, _ = fake_set(n=40)
    got = lesson.mass_off_top(z, (1.0, 4.0, 1e4), threshold=1e-2)
    assert list(got.index) == [1.0, 4.0, 1e4] and got.attrs["threshold"] == 1e-2
    for T in (1.0, 4.0):
        p = np_softmax(z.numpy(), T)
        wrong = np.ones_like(p, dtype=bool)
        wrong[np.arange(len(p)), p.argmax(1)] = False
        assert got.loc[T, "tiny"] == pytest.approx(float((p[wrong] < 1e-2).mean()))
        off = 1 - p.max(-1)
        assert got.loc[T, "mean"] == pytest.approx(off.mean()) and got.loc[T, "median"] == pytest.approx(
            np.median(off))
    assert got.loc[1e4, "tiny"] == 0.0
    with pytest.raises(ValueError, match="threshold"):
        lesson.mass_off_top(z, threshold=1.5)


def test_group_mass_by_hand():
    m = np.array([[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.05, 0.05, 0.9]])
    within, outside = lesson.group_mass(m, [0, 1])
    assert within == pytest.approx((0.3 + 0.2) / 2)
    assert outside == pytest.approx((0.1 + 0.1) / 2)
    assert lesson.group_mass(m, [np.int64(2)]) == pytest.approx((0.0, 0.1))
    with pytest.raises(ValueError, match=r"members=3 is out of range"):
        lesson.group_mass(m, [3])
    with pytest.raises(ValueError, match="square"):
        lesson.group_mass(m[:2], [0])


def test_top_classes_matches_numpy_sort():
    z, _, _ = fake_set(n=4)
    got = lesson.top_classes(z, CLASSES, temperatures=(1.0, 4.0), k=3, names=list("abcd"))
    assert list(got.index) == [(n, T) for n in "abcd" for T in (1.0, 4.0)]
    for T in (1.0, 4.0):
        p = np_softmax(z.numpy(), T)
        for name, probs in zip("abcd", p):
            order = np.argsort(-probs)[:3]
            row = got.loc[(name, T)]
            assert [row[f"class {r}"] for r in (1, 2, 3)] == [CLASSES[j] for j in order]
            np.testing.assert_allclose([row[f"p {r}"] for r in (1, 2, 3)], probs[order], rtol=1e-5)
            assert row["rest"] == pytest.approx(1 - probs[order].sum(), abs=1e-9)
    with pytest.raises(ValueError, match=r"k=11 is out of range"):
        lesson.top_classes(z, CLASSES, k=11)
    with pytest.raises(ValueError, match="classes must name all 10 classes"):
        lesson.top_classes(z, CLASSES[:3])
    with pytest.raises(ValueError, match="names must have one entry per row"):
        lesson.top_classes(z, CLASSES, names=["a"])


def test_block_masses_totals_and_per_class_means():
    m = _footwear_matrix(0.13, 0.066).numpy()
    got = lesson.block_masses({10: m}, {"footwear": [5, 7, 9]})
    row = got.loc[(10.0, "footwear")]
    assert row["within"] == pytest.approx(0.26) and row["outside"] == pytest.approx(0.462)
    assert row["within each"] == pytest.approx(0.13) and row["outside each"] == pytest.approx(0.066)


def test_high_T_limit_tends_to_logit_matching():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 10, generator=g), 3 * torch.randn(8, 10, generator=g)
    got = lesson.high_T_limit(s, t, [1, 10, 1000])
    assert got.loc[1000.0, "gap to logit matching"] < 5e-3 < 0.1 < got.loc[1.0, "gap to logit matching"]
    assert list(got["gap to logit matching"]) == sorted(got["gap to logit matching"], reverse=True)
    # without T² the gradient falls like 1 / T² once T is large
    assert got.loc[10.0, "without T²"] / got.loc[1000.0, "without T²"] == pytest.approx(1e4, rel=0.05)
    np.testing.assert_allclose(got["with T²"] / got.index.values ** 2, got["without T²"], rtol=1e-9)
    with pytest.raises(ValueError, match="same shape"):
        lesson.high_T_limit(s[:4], t, [1])


def test_pick_temperature_examples():
    z, y, _ = fake_set(n=200, seed=1)
    # three rows the teacher hesitates on between exactly two classes
    z[5] = torch.tensor([5.0, -9, -9, -9, -9, -9, 5.01, -9, -9, -9])     # T-shirt vs Shirt, gap ~0
    z[15] = torch.tensor([5.0, -9, -9, -9, -9, -9, 4.9, -9, -9, -9])     # same pair: skipped
    z[17] = torch.tensor([-9.0, -9, -9, -9, -9, 3, -9, 3.05, -9, -9])    # Sandal vs Sneaker
    z[18] = torch.tensor([2.0, 2, 2, -9, -9, -9, -9, -9, -9, -9])        # three-way: top-2 < 0.9
    idx, names = lesson.pick_temperature_examples(z, y, CLASSES, n_ambiguous=2)
    assert len(idx) == 12 and len(names) == 12
    p = np_softmax(z.numpy(), 1.0)
    for c in range(10):
        i = idx[c]
        assert int(y[i]) == c and p[i].argmax() == c and names[c] == f"{CLASSES[c]} (typical)"
        ok = [j for j in range(len(y)) if int(y[j]) == c and p[j].argmax() == c]
        conf = p[ok].max(1)
        med = float(np.median(conf))
        assert abs(p[i].max() - med) == pytest.approx(np.min(np.abs(conf - med)))
    assert idx[10:] == [5, 17]
    assert names[10] == f"Shirt or T-shirt/top? (true: {CLASSES[int(y[5])]})"
    assert names[11].startswith("Sneaker or Sandal?")
    # a class the teacher never gets right still gets its most c-like image; a missing class none
    z2, y2 = z.clone(), y.clone()
    z2[y2 == 4, 4] = -20.0
    z2[int(torch.nonzero(y2 == 4)[0]), 4] = -10.0
    keep = y2 != 8
    idx2, names2 = lesson.pick_temperature_examples(z2[keep], y2[keep], CLASSES, n_ambiguous=0)
    assert names2 == [f"{c} (typical)" for c in CLASSES if c != "Bag"]
    assert int(y2[keep][idx2[4]]) == 4 and float(z2[keep][idx2[4], 4]) == -10.0
    with pytest.raises(ValueError, match=r"min_top2=1.5 is out of range"):
        lesson.pick_temperature_examples(z, y, CLASSES, min_top2=1.5)


# --------------------------------------------------------------------------- figures

def test_temperature_view_draws_the_softened_distribution():
    z, y, x = fake_set(n=3)
    fig = lesson.temperature_view(z[1], 4.0, CLASSES, image=x[1], label=int(y[1]))
    img_ax, bar_ax, ent_ax = fig.axes[:3]
    np.testing.assert_allclose(img_ax.images[0].get_array(), x[1, 0].numpy())
    widths = [p.get_width() for p in bar_ax.patches]
    np.testing.assert_allclose(widths, np_softmax(z[1].numpy(), 4.0), rtol=1e-6)
    ts, ent = ent_ax.lines[0].get_data()
    np.testing.assert_allclose(ent, [np_entropy(np_softmax(z[1].numpy(), T)) for T in ts], rtol=1e-6)
    mx, my = ent_ax.lines[1].get_data()
    assert mx[0] == 4.0 and my[0] == pytest.approx(np_entropy(np_softmax(z[1].numpy(), 4.0)))
    # the true class's bar is highlighted
    colors = [tuple(p.get_facecolor()) for p in bar_ax.patches]
    assert colors.count(colors[int(y[1])]) == 1
    with pytest.raises(ValueError, match="entropies must have one value per temperature"):
        lesson.temperature_view(z[1], 1.0, CLASSES, temperatures=[1, 2], entropies=[0.1])


def test_softmax_by_temperature_bar_heights():
    z = torch.tensor([5.0, 2.0, 1.0, -1.0])
    ts = [0.5, 1, 4, 20]
    fig = lesson.softmax_by_temperature(z, ts)
    for container, T in zip(fig.axes[0].containers, ts):
        np.testing.assert_allclose([b.get_height() for b in container], np_softmax(z.numpy(), T),
                                   rtol=1e-6)


def test_dark_knowledge_bars_heights_are_the_probabilities():
    z, _, _ = fake_set(n=3)
    z[0, 3] = -40.0  # a tiny probability: the log axis reaches below it
    fig = lesson.dark_knowledge_bars(z, CLASSES, temperatures=(1, 4), titles=["a", "b", "c"])
    assert len(fig.axes) == 3 and fig.axes[2].get_title() == "c"
    for i in range(3):
        for container, T in zip(fig.axes[i].containers, (1, 4)):
            want = np_softmax(z[i].numpy(), T)
            np.testing.assert_allclose([b.get_height() for b in container], want, rtol=1e-6)
    with pytest.raises(ValueError, match="1 to 6 rows"):
        lesson.dark_knowledge_bars(torch.zeros(7, 10), CLASSES)


def test_dark_knowledge_bars_default_floor_clips_nothing_and_legend_is_off_the_panels():
    z = torch.zeros(2, 10)
    z[0, 0], z[1, 1] = 30.0, 5.0  # softmax of row 0 at T = 1 has values near 1e-13
    fig = lesson.dark_knowledge_bars(z, CLASSES, temperatures=(1, 4))
    for i in range(2):
        lo = fig.axes[i].get_ylim()[0]
        for container, T in zip(fig.axes[i].containers, (1, 4)):
            want = np_softmax(z[i].numpy(), T)
            assert lo <= want.min()
            np.testing.assert_allclose([b.get_height() for b in container], want, rtol=1e-6)
    assert all(a.get_legend() is None for a in fig.axes) and len(fig.legends) == 1
    assert all(t.get_fontsize() >= 8 for t in fig.axes[0].get_xticklabels())


def test_soft_target_matrices_show_the_matrices():
    z, y, _ = fake_set(n=50)
    mats = {T: lesson.mean_soft_targets(z, y, T, 10) for T in (1, 4)}
    fig = lesson.soft_target_matrices(mats, CLASSES)
    for ax, m in zip(fig.axes, mats.values()):
        np.testing.assert_allclose(np.asarray(ax.images[0].get_array()), m.numpy())
    assert fig.axes[1].get_title() == "mean softmax(z / T), T = 4"
    with pytest.raises(ValueError, match=r"matrices\[1\] must be 10×10"):
        lesson.soft_target_matrices({1: np.eye(3)}, CLASSES)


def test_soft_target_matrices_annotations_are_readable():
    z, y, _ = fake_set(n=50)
    fig = lesson.soft_target_matrices({1: lesson.mean_soft_targets(z, y, 1, 10)}, CLASSES)
    assert fig.axes[0].texts and all(t.get_fontsize() >= 8 for t in fig.axes[0].texts)


def test_mass_vs_temperature_labels_of_close_curves_do_not_overlap():
    ts = np.geomspace(0.5, 20, 30)
    curves = {"mean": np.linspace(0.1, 0.8, 30), "median": np.linspace(0.1, 0.8, 30) + 0.02}
    fig = lesson.mass_vs_temperature(ts, curves, n_classes=10)
    fig.canvas.draw()
    boxes = [t.get_window_extent() for t in fig.axes[0].texts]
    assert len(boxes) == 4
    assert not any(a.overlaps(b) for k, a in enumerate(boxes) for b in boxes[k + 1:])


def test_mass_vs_temperature_plots_the_curves():
    z, _, _ = fake_set(n=20)
    ts = np.geomspace(0.5, 20, 30)
    curves = {"mean": lesson.non_argmax_mass(z, ts), "median": lesson.non_argmax_mass(z, ts, reduce="median")}
    fig = lesson.mass_vs_temperature(ts, curves, n_classes=10)
    ax = fig.axes[0]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), curves["mean"])
    np.testing.assert_allclose(ax.lines[1].get_ydata(), curves["median"])
    assert any(np.allclose(line.get_ydata(), 0.9) for line in ax.lines)
    with pytest.raises(ValueError, match="one value per temperature"):
        lesson.mass_vs_temperature(ts, np.zeros(3))


# --------------------------------------------------------------------------- widget

def test_explorer_slider_redraws_the_softened_distribution():
    z, y, x = fake_set(n=5)
    ex = lesson.TemperatureExplorer(z, x, y, CLASSES, T=1.0, T_max=20.0)
    assert ex.t_slider.description == "T" and ex.t_slider.max == 20.0 and ex.t_slider.step == 0.5
    torch.testing.assert_close(ex.probs, torch.softmax(z[0].double(), -1))
    before, redraws = ex.label.value, ex.redraws
    ex.t_slider.value = 4
    want = np_softmax(z[0].numpy(), 4.0)
    np.testing.assert_allclose(ex.probs.numpy(), want, rtol=1e-6)
    assert ex.redraws == redraws + 1 and ex.label.value != before
    top = int(want.argmax())
    assert ex.label.value == (f"T = 4.0: entropy {np_entropy(want):.2f} nats, top class "
                              f"{CLASSES[top]} {want[top]:.2f}")
    bar_ax = ex.figure.axes[1]
    np.testing.assert_allclose([p.get_width() for p in bar_ax.patches], want, rtol=1e-6)
    assert ex.figure.axes[2].lines[1].get_xdata()[0] == 4.0


def test_explorer_picker_changes_the_image():
    z, y, x = fake_set(n=5)
    ex = lesson.TemperatureExplorer(z, x, y, CLASSES, names=[f"image {i}" for i in range(5)], T=2.0)
    assert [label for label, _ in ex.image_picker.options] == [f"image {i}" for i in range(5)]
    first = np.asarray(ex.figure.axes[0].images[0].get_array()).copy()
    ex.image_picker.value = 3
    shown = np.asarray(ex.figure.axes[0].images[0].get_array())
    np.testing.assert_allclose(shown, x[3, 0].numpy())
    assert not np.allclose(shown, first)
    np.testing.assert_allclose(ex.probs.numpy(), np_softmax(z[3].numpy(), 2.0), rtol=1e-6)
    assert ex.figure.axes[0].get_title() == f"true: {CLASSES[int(y[3])]}"


def test_explorer_rejects_bad_arguments():
    z, y, x = fake_set(n=5)
    with pytest.raises(ValueError, match="one entry per row of teacher_logits"):
        lesson.TemperatureExplorer(z, x[:3], y, CLASSES)
    with pytest.raises(ValueError, match="classes must name all 10 classes"):
        lesson.TemperatureExplorer(z, x, y, CLASSES[:4])
    with pytest.raises(ValueError, match=r"T=30.0 is out of range"):
        lesson.TemperatureExplorer(z, x, y, CLASSES, T=30.0, T_max=20.0)
    with pytest.raises(ValueError, match="names must have one entry per image"):
        lesson.TemperatureExplorer(z, x, y, CLASSES, names=["a"])


def test_check_params_basics():
    assert_check_params_basics(lesson, {"checkpoint": "", "n_images": 2000, "T_max": 20.0},
                               integer="n_images")


# --------------------------------------------------------------------------- what we saw

def test_say_dark_knowledge_quotes_the_table():
    z = torch.tensor([[6.0, 5.0, 0.0, -1.0] + [-3.0] * 6, [9.0, 0.0, 0.5] + [-2.0] * 7])
    top = lesson.top_classes(z, CLASSES, temperatures=(1, 4), names=["A", "B"])
    text = lesson.say_dark_knowledge(top).data
    assert f"the A image puts {top.loc[('A', 1.0), 'p 1']:.3f} on T-shirt/top" in text
    assert f"B → {top.loc[('B', 4.0), 'class 2']} ({top.loc[('B', 4.0), 'p 2']:.3f})" in text
    assert "The B image keeps the most" in text and "no other class much like it" in text


def _blocks(each_in, each_out):
    m = _footwear_matrix(each_in, each_out).numpy()
    matrices = {1: m, 4: m}
    return lesson.block_masses(matrices, {"footwear": [5, 7, 9]}), matrices


def test_say_blocks_and_summary_follow_the_per_class_comparison():
    blocks, matrices = _blocks(0.13, 0.066)
    text = lesson.say_blocks(blocks, matrices, CLASSES).data
    assert "0.130 each, against 0.066" in text and "every group keeps more" in text
    assert "footwear rows put more mass on their own group" in lesson.say_summary(
        lesson.mass_off_top(fake_set()[0]), blocks).data
    blocks, matrices = _blocks(0.05, 0.08)
    text = lesson.say_blocks(blocks, matrices, CLASSES).data
    assert "no group keeps more of its mass inside" in text and "every group" not in text
    summary = lesson.say_summary(lesson.mass_off_top(fake_set()[0]), blocks).data
    assert "no group of classes keeps more" in summary


def test_say_mass_reads_the_frame():
    z, _, _ = fake_set(n=40)
    mass = lesson.mass_off_top(z, (1, 4))
    text = lesson.say_mass(mass).data
    assert f"the median image puts {mass.loc[1.0, 'median']:.3f}" in text
    assert f"{100 * mass.loc[4.0, 'tiny']:.1f} % of the wrong-class probabilities are below 0.001" in text
    confident = torch.zeros(5, 10)
    confident[:, 0] = 30.0
    assert "most of those targets are zeros" in lesson.say_mass(lesson.mass_off_top(confident, (1, 4))).data


def test_say_high_T_says_whether_the_limit_is_reached():
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(8, 10, generator=g), 3 * torch.randn(8, 10, generator=g)
    assert "has become logit matching" in lesson.say_high_T(lesson.high_T_limit(s, t, [1, 1000])).data
    assert "not yet the limit" in lesson.say_high_T(lesson.high_T_limit(s, t, [1, 2])).data


# --------------------------------------------------------------------------- exercises

def test_temperature_where_top_falls_below_solves_the_equation():
    z = torch.tensor([4.0, 1.0, 0.5, -2.0])
    T = lesson.temperature_where_top_falls_below(z, 0.5)
    assert np_softmax(z.numpy(), T).max() == pytest.approx(0.5, abs=1e-5)
    assert np_softmax(z.numpy(), T * 0.99).max() > 0.5 > np_softmax(z.numpy(), T * 1.01).max()
    assert lesson.temperature_where_top_falls_below(torch.zeros(4) + torch.tensor([1, 1, 0, 0.]), 0.6) == 0
    with pytest.raises(ValueError, match="p"):
        lesson.temperature_where_top_falls_below(z, 0.2)


def check(n, answer, **evidence):
    """``lesson.check_exercise`` shown as a notebook's ``print(...)`` shows it; its ``right``."""
    verdict = lesson.check_exercise(n, answer, **evidence)
    assert isinstance(verdict, Verdict)
    print(verdict)
    return verdict.right


def test_check_exercise_1_and_2(capsys):
    assert check(1, None) is False
    assert check(1, 0.710) is True
    want = np_softmax(np.array([5.0, 2, 1, -1]), 2)
    assert want[0] == pytest.approx(0.710, abs=5e-4)
    assert check(1, list(want)) is True
    assert check(1, 0.934) is False  # T = 1 instead of 2
    assert check(2, (True, True)) is True
    assert check(2, (True, False)) is False
    assert check(2, "yes") is False
    out = capsys.readouterr().out
    assert "Not yet: replace None" in out and out.count("Right") == 3 and out.count("Not yet") == 4


def test_check_exercise_3_within_a_slider_step(capsys):
    z = torch.tensor([8.0, 1.0, 0.5, -2.0, 0, 0, 0, 0, 0, 0])
    T = lesson.temperature_where_top_falls_below(z, 0.5)
    assert check(3, T + 0.4, logits=z) is True
    assert check(3, T - 1, logits=z) is False
    assert "higher" in capsys.readouterr().out
    assert check(3, None) is False  # the placeholder needs no logits
    with pytest.raises(ValueError, match="logits"):
        check(3, 2.0)


def _footwear_matrix(each_in, each_out):
    """A 10-class matrix whose footwear rows put ``each_in`` on each other footwear class and
    ``each_out`` on each of the 7 others (the rest on the diagonal); other rows one-hot."""
    m = torch.eye(10, dtype=torch.float64)
    for r in (5, 7, 9):
        m[r] = each_out
        for c in (5, 7, 9):
            m[r, c] = each_in
        m[r, r] = 1 - 2 * each_in - 7 * each_out
    return m


def test_check_exercise_4_compares_per_class_means_not_group_totals(capsys):
    # per class 0.13 against 0.066 (within wins), in total 0.26 against 0.46 (outside would win)
    m = _footwear_matrix(0.13, 0.066)
    assert lesson.group_mass(m, [5, 7, 9]) == pytest.approx((0.26, 0.462))
    assert check(4, "Within", matrix=m) is True
    assert "0.130 on each other footwear class and 0.066 on each class outside" in capsys.readouterr().out
    assert check(4, "outside", matrix=m) is False
    assert "2 other classes, the rest 7" in capsys.readouterr().out
    flat = _footwear_matrix(0.05, 0.08)
    assert check(4, "outside", matrix=flat) is True
    assert check(4, 3, matrix=m) is False
    assert check(4, None) is False  # the placeholder needs no matrix
    with pytest.raises(ValueError, match="matrix"):
        check(4, "within")
    with pytest.raises(ValueError):
        check(5, "x")
