"""Widgets of notebook 05, headless: set slider values / press the button, check what was drawn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _toy import make_problem

from kdlib import tuning
from kdlib.widgets import GridExplorer, TrainNow

torch.set_num_threads(1)
FAST = dict(epochs=3, lr=0.05, batch_size=32, hidden=8)


@pytest.fixture(scope="module")
def grid_rows():
    tuning.clear_cache()
    data, logits = make_problem()
    rows = tuning.grid(data, logits, lams=[0.1, 0.5, 0.9], Ts=[1.0, 4.0], seeds=[0, 1], **FAST)
    base = tuning.baseline(data, logits, seeds=[0, 1], **FAST)
    tuning.clear_cache()
    return rows, base


def expected_rows(rows, lam, T):
    return [r for r in rows if r["lam"] == lam and r["T"] == T]


def test_grid_explorer_sliders_redraw_the_chosen_point(grid_rows):
    rows, base = grid_rows
    ex = GridExplorer(rows, teacher_acc=0.95, baseline=base, lam=0.1, T=1.0)
    assert ex.lam_slider.description == "λ" and ex.T_slider.description == "T"
    assert list(ex.lam_slider.options) == [("0.1", 0.1), ("0.5", 0.5), ("0.9", 0.9)]
    assert ex.current == expected_rows(rows, 0.1, 1.0)
    before = ex.redraws
    ex.lam_slider.value = 0.9
    ex.T_slider.value = 4.0
    assert ex.redraws == before + 2
    want = expected_rows(rows, 0.9, 4.0)
    assert ex.current == want and len(want) == 2
    acc_lines = ex.figure.axes[1].lines
    for i, r in enumerate(want):
        np.testing.assert_allclose(acc_lines[i].get_ydata(), r["history"]["val_acc"])
        np.testing.assert_allclose(ex.figure.axes[0].lines[i].get_ydata(),
                                   r["history"]["epoch_loss"])
    # baseline mean curve, then teacher and baseline reference lines
    np.testing.assert_allclose(acc_lines[2].get_ydata(),
                               np.mean([b["history"]["val_acc"] for b in base], axis=0))
    assert acc_lines[3].get_ydata()[0] == pytest.approx(0.95)
    assert acc_lines[4].get_ydata()[0] == pytest.approx(np.mean([b["val_acc"] for b in base]))
    # bars: this point's mean val acc and agreement
    heights = [p.get_height() for p in ex.figure.axes[2].patches]
    assert heights[0] == pytest.approx(np.mean([r["val_acc"] for r in want]))
    assert heights[2] == pytest.approx(np.mean([r["agreement"] for r in want]))
    assert "λ=0.9, T=4" in ex.label.value
    assert f"{100 * np.mean([r['val_acc'] for r in want]):.2f}" in ex.label.value
    assert ex.last_seconds >= 0
    # a point is drawn once: coming back shows the same figure again
    shown = ex.figure
    ex.lam_slider.value = 0.5
    assert ex.current == expected_rows(rows, 0.5, 4.0) and ex.figure is not shown
    ex.lam_slider.value = 0.9
    assert ex.figure is shown and ex.current == want


def test_grid_explorer_prerender_draws_every_point_once(grid_rows):
    rows, base = grid_rows
    ex = GridExplorer(rows, baseline=base, lam=0.1, T=1.0)
    assert ex.prerender() == 3 * 2 - 1  # the point shown first was drawn already
    assert ex.prerender() == 0
    ex.lam_slider.value, ex.T_slider.value = 0.5, 4.0
    assert ex.current == expected_rows(rows, 0.5, 4.0)
    np.testing.assert_allclose(ex.figure.axes[1].lines[0].get_ydata(),
                               ex.current[0]["history"]["val_acc"])


def test_grid_explorer_opens_on_the_best_point_and_baseline_matches_any_T(grid_rows):
    rows, base = grid_rows
    ex = GridExplorer(rows + base)
    best = tuning.select_best(rows + base)
    assert (ex.lam_slider.value, ex.T_slider.value) == (best["lam"], best["T"])
    ex.lam_slider.value = 1.0
    ex.T_slider.value = 4.0  # the baseline rows were trained at T=1; T does not act at λ=1
    assert ex.current == base


def test_grid_explorer_bad_arguments(grid_rows):
    rows, _ = grid_rows
    with pytest.raises(ValueError, match="empty"):
        GridExplorer([])
    with pytest.raises(ValueError, match="lam=0.3"):
        GridExplorer(rows, lam=0.3, T=1.0)


@pytest.fixture
def tiny():
    return make_problem(n_train=90, n_val=45, n_test=30)


def test_train_now_button_trains_with_live_curves(tiny, monkeypatch):
    data, logits = tiny
    tn = TrainNow(data, logits, lam=0.5, T=2.0, epochs=2, hidden=8, lr=0.05, batch_size=32,
                  teacher_acc=0.9, baseline_acc=0.7)
    for s in (tn.lam_slider, tn.T_slider, tn.epochs_slider):
        assert s.continuous_update is False
    tn.lam_slider.value, tn.T_slider.value, tn.epochs_slider.value = 0.25, 3.0, 4
    states = []
    real = tuning.train_student

    def spy(*args, **kwargs):
        states.append((tn.button.disabled, kwargs["lam"], kwargs["T"], kwargs["epochs"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(tuning, "train_student", spy)
    tn.button.click()
    assert states == [(True, 0.25, 3.0, 4)]  # disabled while training, with the slider values
    assert tn.button.disabled is False and tn.running is False
    assert tn.progress.value == tn.progress.max == 4
    assert tn.error is None and tn.runs == 1
    assert len(tn.history.val_acc) == 4
    np.testing.assert_allclose(tn.figure.axes[1].lines[0].get_ydata(), tn.history.val_acc)
    np.testing.assert_allclose(tn.figure.axes[0].lines[0].get_ydata(), tn.history.epoch_loss)
    assert tn.result["val_acc"] == pytest.approx(tn.history.val_acc[-1])
    assert f"{100 * tn.result['val_acc']:.2f} %" in tn.label.value
    assert "λ = 0.25, T = 3" in tn.label.value
    # the same student as tuning.train_student with seed 0 (fully determined by its seed)
    _, hist = real(data, logits, lam=0.25, T=3.0, seed=0, epochs=4, hidden=8, lr=0.05,
                   batch_size=32)
    assert hist.epoch_loss == tn.history.epoch_loss


def test_train_now_throttles_the_live_redraws(tiny):
    data, logits = tiny
    tn = TrainNow(data, logits, epochs=4, hidden=8)
    tn.redraw_every = 0.0
    tn.button.click()
    assert tn.draws == 4
    tn.redraw_every = 1e9  # only the first and the last epoch
    tn.button.click()
    assert tn.draws == 4 + 2
    np.testing.assert_allclose(tn.figure.axes[1].lines[0].get_ydata(), tn.history.val_acc)


def test_train_now_reenables_the_button_after_an_error(tiny, monkeypatch):
    data, logits = tiny
    tn = TrainNow(data, logits, epochs=1, hidden=8)

    def boom(*args, **kwargs):
        assert tn.button.disabled
        raise FloatingPointError("the loss became nan")

    monkeypatch.setattr(tuning, "train_student", boom)
    tn.button.click()
    assert tn.button.disabled is False and tn.running is False
    assert isinstance(tn.error, FloatingPointError)
    assert "training failed" in tn.label.value and "nan" in tn.label.value
    assert tn.result is None and tn.runs == 1


def test_train_now_bad_arguments(tiny):
    data, logits = tiny
    with pytest.raises(ValueError, match="epochs=90"):
        TrainNow(data, logits, epochs=90, max_epochs=60)
    with pytest.raises(ValueError, match="lam=2"):
        TrainNow(data, logits, lam=2)
