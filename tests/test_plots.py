"""kdlib.plots: generic figures, checked through the data they draw."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

from kdlib import plots


def test_new_figure_always_gives_2d_axes():
    fig, ax = plots.new_figure(3, 2)
    assert isinstance(fig, Figure) and ax.shape == (1, 1)
    _, ax = plots.new_figure(ncols=3, nrows=2)
    assert ax.shape == (2, 3)


@pytest.mark.parametrize("window", [1, 3, 20])
def test_smooth_is_a_trailing_moving_average(window):
    v = np.arange(10, dtype=float) ** 2
    expected = [v[max(0, i + 1 - window):i + 1].mean() for i in range(10)]
    assert np.allclose(plots.smooth(v, window), expected)
    assert len(plots.smooth([], window)) == 0


def test_image_grid_titles_mark_wrong_predictions_red():
    x = torch.rand(3, 1, 4, 4)
    fig = plots.image_grid(x, [0, 1, 1], ["a", "b"], predicted=[0, 0, 1], ncols=2)
    titles = [(a.get_title(), a.title.get_color()) for a in fig.axes if a.get_title()]
    assert titles == [("a", "black"), ("a\n(true: b)", "red"), ("b", "black")]


def test_per_class_bars_draw_every_series():
    fig = plots.per_class_bars([0.9, 0.5], ["x", "y"], others={"student": [0.8, 0.4]})
    heights = sorted(round(p.get_height(), 2) for p in fig.axes[0].patches)
    assert heights == [0.4, 0.5, 0.8, 0.9]


def test_per_class_bars_start_at_zero_and_label_values_readably():
    fig = plots.per_class_bars([0.95, 0.93], ["x", "y"])
    a = fig.axes[0]
    assert a.get_ylim()[0] == 0.0 and a.get_ylim()[1] >= 0.95
    labels = [t for t in a.texts]
    assert [t.get_text() for t in labels] == ["0.95", "0.93"]
    assert all(t.get_fontsize() >= 8 for t in labels)
    assert all(t.get_fontsize() >= 8 for t in a.get_xticklabels())


def test_confusion_shows_row_percentages_in_cells_and_colour_bar():
    cm = np.array([[3, 1], [0, 4]])
    fig = plots.confusion(cm, ["a", "b"])
    shown = fig.axes[0].images[0].get_array()
    assert np.allclose(shown, [[75.0, 25.0], [0.0, 100.0]])
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["100", "25", "75"]
    assert all(t.get_fontsize() >= 8 for t in fig.axes[0].texts)
    assert "%" in fig.axes[1].get_ylabel()


def test_confusion_counts_and_tiny_shares():
    cm = np.array([[999, 1], [0, 4]])
    texts = sorted(t.get_text() for t in plots.confusion(cm, ["a", "b"]).axes[0].texts)
    assert texts == ["100", "100", "<1"]
    half = np.array([[995, 5], [0, 4]])  # 0.5 %: never printed as "0"
    assert "0" not in [t.get_text() for t in plots.confusion(half, ["a", "b"]).axes[0].texts]
    fig = plots.confusion(cm, ["a", "b"], normalize=False)
    assert np.allclose(fig.axes[0].images[0].get_array(), cm)
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1", "4", "999"]
    assert fig.axes[1].get_ylabel() == "count"


def test_dot_plot_draws_runs_means_and_paired_intervals():
    from kdlib import results

    rows = [{"method": m, "seed": s, "acc": a} for s in range(3)
            for m, a in (("scratch", 0.80 + 0.01 * s), ("kd", 0.83 + 0.012 * s))]
    table = results.compare(rows, by="method", metric="acc", reference="scratch")
    fig = plots.dot_plot(table, references={"teacher": 0.88})
    left, right = fig.axes
    assert [t.get_text() for t in left.get_yticklabels()] == ["scratch", "kd"]
    runs = np.vstack([c.get_offsets() for c in left.collections[:2]])
    assert sorted(runs[:, 0]) == pytest.approx(sorted(100 * np.array([r["acc"] for r in rows])))
    means = left.containers[0].lines[0].get_xdata()
    assert means == pytest.approx(100 * table["mean"].to_numpy())
    diffs = right.containers[0].lines[0].get_xdata()
    assert np.isnan(diffs[0]) and diffs[1] == pytest.approx(100 * table.loc["kd", "diff"])
    assert "scratch" in right.get_xlabel() and "95 % CI" in right.get_xlabel()
    single = plots.dot_plot(results.compare(rows, by="method", metric="acc"))
    assert len(single.axes) == 1
