"""Tests of kdlib.train.fit and batches on small in-memory problems (digits, moons)."""

from __future__ import annotations

import math

import pytest
import torch

from kdlib import data, models
from kdlib.train import History, TrainSettings, batches, fit, make_optimizer, train_teacher


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0)


@pytest.fixture(scope="module")
def moons():
    return data.load("moons", n_train=64, n_val=100, seed=0)


def _model(sizes, dropout=0.0, seed=0):
    torch.manual_seed(seed)
    return models.mlp(sizes, dropout=dropout)


def _fit(model, d, **kw):
    kw.setdefault("progress", False)
    return fit(model, d, **kw)


# ----------------------------------------------------------------- batches
def test_batches_cover_every_index_once_in_a_seeded_order():
    def run(seed):
        return list(batches(103, 10, torch.Generator().manual_seed(seed)))

    a, b, c = run(0), run(0), run(1)
    assert [len(i) for i in a] == [10] * 10 + [3]
    assert sorted(torch.cat(a).tolist()) == list(range(103))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(torch.cat(a), torch.cat(c))
    assert not torch.equal(torch.cat(a), torch.arange(103))  # shuffled
    plain = list(batches(7, 3, torch.Generator(), shuffle=False))
    assert [i.tolist() for i in plain] == [[0, 1, 2], [3, 4, 5], [6]]


# ----------------------------------------------------------------- learning
def test_loss_falls_and_accuracy_rises_on_digits(digits):
    model = _model([64, 32, 10])
    hist = _fit(model, digits, epochs=3, batch_size=64, lr=1e-2)
    assert isinstance(hist, History) and hist.epochs == 3
    steps = math.ceil(len(digits.train) / 64)
    assert hist.steps_per_epoch == steps and len(hist.step_loss) == 3 * steps
    assert hist.epoch_loss[0] > hist.epoch_loss[-1]
    assert hist.step_loss[0] > 2.0 > hist.step_loss[-1]  # starts near ln(10) ≈ 2.3
    assert hist.val_acc[-1] > 0.8
    assert len(hist.epoch_time) == 3 and all(t >= 0 for t in hist.epoch_time)
    assert not model.training
    # The epoch loss is the example-weighted mean of that epoch's step losses.
    sizes = [64] * (steps - 1) + [len(digits.train) - 64 * (steps - 1)]
    first = sum(v * n for v, n in zip(hist.step_loss[:steps], sizes)) / len(digits.train)
    assert hist.epoch_loss[0] == pytest.approx(first, rel=1e-9)
    # The reported validation accuracy is the model's accuracy on the val split.
    pred = models.predict(model, digits.val.x).argmax(1)
    assert hist.val_acc[-1] == pytest.approx(float((pred == digits.val.y).float().mean()))


@pytest.mark.parametrize("optimizer, schedule", [("sgd", None), ("adam", None), ("sgd", "onecycle")])
def test_every_optimizer_and_schedule_learns(moons, optimizer, schedule):
    model = _model([2, 16, 2])
    hist = _fit(model, moons, epochs=4, batch_size=16, lr=0.05, optimizer=optimizer,
                schedule=schedule)
    assert hist.epoch_loss[0] > hist.epoch_loss[-1]


# ----------------------------------------------------------------- determinism
def test_same_seed_same_history_even_with_dropout(digits):
    runs = []
    for global_seed in (123, 999):
        model = _model([64, 48, 48, 10], dropout=0.3)
        torch.manual_seed(global_seed)  # fit must not depend on the global RNG state
        hist = _fit(model, digits, epochs=2, batch_size=100, seed=7, eval_every=5)
        runs.append((hist, model.state_dict()))
    (h1, s1), (h2, s2) = runs
    assert h1.epoch_loss == h2.epoch_loss
    assert h1.val_acc == h2.val_acc
    assert h1.step_loss == h2.step_loss
    assert h1.evals == h2.evals
    assert all(torch.equal(s1[k], s2[k]) for k in s1)


def test_different_seeds_give_different_histories(digits):
    a = _fit(_model([64, 32, 10], dropout=0.3), digits, epochs=1, batch_size=100, seed=0)
    b = _fit(_model([64, 32, 10], dropout=0.3), digits, epochs=1, batch_size=100, seed=1)
    assert a.step_loss != b.step_loss


def test_dropout_draws_depend_on_the_seed_alone(digits):
    # One full batch (so the batch order changes only the summation order) and the same
    # initial weights: between seeds the first-step loss then differs by float rounding
    # without dropout, but clearly with dropout, whose masks fit must seed.
    one_batch = (data.Split(digits.train.x[:200], digits.train.y[:200]), digits.val)

    def first_losses(dropout, seed):
        hist = _fit(_model([64, 48, 10], dropout=dropout), one_batch, epochs=2, batch_size=200,
                    seed=seed, schedule=None)
        return hist.step_loss

    assert first_losses(0.5, 0) == first_losses(0.5, 0)
    assert abs(first_losses(0.5, 0)[0] - first_losses(0.5, 1)[0]) > 1e-3
    assert abs(first_losses(0.0, 0)[0] - first_losses(0.0, 1)[0]) < 1e-5


# ----------------------------------------------------------------- clipping
def _steps(moons, clip_grad):
    """Parameter change of every SGD step (momentum 0, constant lr 10)."""
    model = _model([2, 16, 2])
    snaps = [torch.cat([p.detach().flatten().clone() for p in model.parameters()])]

    def snapshot(hist):
        snaps.append(torch.cat([p.detach().flatten().clone() for p in model.parameters()]))

    hist = _fit(model, moons, epochs=2, batch_size=16, lr=10.0, optimizer="sgd", momentum=0.0,
                schedule=None, clip_grad=clip_grad, eval_every=1, callback=snapshot)
    assert len(snaps) == len(hist.step_loss) + 1  # eval_every=1: one callback per step
    return [float((b - a).norm()) for a, b in zip(snaps[:-1], snaps[1:])]


def test_clip_grad_bounds_every_step(moons):
    # Plain SGD: Δθ = −lr·g, so clipping ‖g‖ to c bounds ‖Δθ‖ by lr·c = 10 · 0.01 = 0.1.
    clipped = _steps(moons, clip_grad=0.01)
    assert max(clipped) <= 0.1 * (1 + 1e-4)
    assert max(clipped) >= 0.099  # the clip was active (gradients are larger than 0.01)
    unclipped = _steps(moons, clip_grad=None)
    assert max(unclipped) > 1.0  # the same run without clipping takes far larger steps


# ----------------------------------------------------------------- evaluation, callback
def test_eval_every_and_callback(moons):
    # 64 examples, batch 16 → 4 steps per epoch; eval_every=3 over 3 epochs evaluates at
    # steps 3, 6, 9 (mid-epoch) and 4, 8, 12 (epoch ends; 12 is both, evaluated once).
    seen = []

    def callback(hist):
        seen.append((hist, len(hist.evals), hist.evals[-1]))

    hist = _fit(_model([2, 8, 2]), moons, epochs=3, batch_size=16, eval_every=3,
                callback=callback)
    assert [s for s, _ in hist.evals] == [3, 4, 6, 8, 9, 12]
    assert len(seen) == len(hist.evals)
    assert all(h is hist for h, _, _ in seen)
    assert [n for _, n, _ in seen] == list(range(1, 7))
    assert [last for _, _, last in seen] == hist.evals
    assert [acc for s, acc in hist.evals if s % 4 == 0] == hist.val_acc
    assert all(0.0 <= acc <= 1.0 for _, acc in hist.evals)


def test_callback_at_epoch_end_sees_that_epochs_val_acc(moons):
    seen = []
    _fit(_model([2, 8, 2]), moons, epochs=2, batch_size=16,
         callback=lambda h: seen.append((len(h.epoch_loss), len(h.val_acc))))
    assert seen == [(1, 1), (2, 2)]


def test_data_forms_and_missing_val(moons):
    pair = _fit(_model([2, 8, 2]), (moons.train, moons.val), epochs=1, batch_size=32)
    full = _fit(_model([2, 8, 2]), moons, epochs=1, batch_size=32)
    assert pair.step_loss == full.step_loss and pair.val_acc == full.val_acc
    alone = _fit(_model([2, 8, 2]), moons.train, epochs=2, batch_size=32)
    assert len(alone.val_acc) == 2 and all(math.isnan(a) for a in alone.val_acc)


def test_loss_fn_gets_the_batch_indices(moons):
    calls = []

    def loss_fn(logits, y, idx, *extra):
        assert torch.equal(y, moons.train.y[idx])
        if extra:  # newer fit versions also pass the inputs the model saw
            assert torch.equal(extra[0], moons.train.x[idx])
        calls.append(idx.clone())
        return torch.nn.functional.cross_entropy(logits, y)

    _fit(_model([2, 8, 2]), moons, epochs=2, batch_size=10, loss_fn=loss_fn)
    assert len(calls) == 2 * 7
    for epoch in (calls[:7], calls[7:]):
        assert sorted(torch.cat(epoch).tolist()) == list(range(64))


# ----------------------------------------------------------------- failures
@pytest.mark.parametrize("kwargs, error, word", [
    ({"epochs": 0}, ValueError, "epochs"),
    ({"epochs": 1.5}, TypeError, "epochs"),
    ({"lr": -1}, ValueError, "lr"),
    ({"lr": 0.0}, ValueError, "lr"),
    ({"lr": float("nan")}, ValueError, "lr"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"optimizer": "rmsprop"}, ValueError, "optimizer"),
    ({"schedule": "cosine"}, ValueError, "schedule"),
    ({"clip_grad": 0.0}, ValueError, "clip_grad"),
    ({"eval_every": 0}, ValueError, "eval_every"),
    ({"seed": -1}, ValueError, "seed"),
    ({"weight_decay": -0.1}, ValueError, "weight_decay"),
    ({"momentum": 0.9}, ValueError, "momentum=0.9 has no meaning with optimizer='adam'"),
    ({"momentum": 1.5, "optimizer": "sgd"}, ValueError, "momentum"),
])
def test_bad_arguments_name_the_argument(moons, kwargs, error, word):
    model = _model([2, 8, 2])
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(error, match=word):
        _fit(model, moons, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))  # nothing trained


def test_unknown_option_is_an_error_listing_the_options(moons):
    with pytest.raises(TypeError, match=r"unknown training option 'augment'.*'epochs'"):
        _fit(_model([2, 8, 2]), moons, augment=lambda x, g: x)


def test_settings_object_and_options_train_the_same(moons):
    """settings= alone, options alone, and settings= with an override give the same run."""
    s = TrainSettings(epochs=2, batch_size=16, lr=1e-2, seed=3)
    runs = []
    for kw in ({"settings": s}, {"epochs": 2, "batch_size": 16, "lr": 1e-2, "seed": 3},
               {"settings": TrainSettings(epochs=2, batch_size=16, lr=1e-2), "seed": 3}):
        model = _model([2, 8, 2])
        hist = _fit(model, moons, **kw)
        runs.append((hist.step_loss, torch.cat([p.flatten() for p in model.parameters()])))
    assert runs[0][0] == runs[1][0] == runs[2][0]
    assert torch.equal(runs[0][1], runs[1][1]) and torch.equal(runs[0][1], runs[2][1])
    with pytest.raises(ValueError, match=r"epochs=0 is out of range"):
        TrainSettings(epochs=0)


@pytest.mark.parametrize("bad", [torch.zeros(4, 2), {"train": 1}, "moons", None])
def test_data_of_the_wrong_type(bad):
    with pytest.raises(TypeError, match="data"):
        _fit(_model([2, 8, 2]), bad)


def test_empty_training_split(moons):
    empty = data.Split(moons.train.x[:0], moons.train.y[:0])
    with pytest.raises(ValueError, match="empty"):
        _fit(_model([2, 8, 2]), empty)


def test_diverging_loss_raises_with_a_message_and_leaves_eval_mode(moons):
    model = _model([2, 16, 2])
    with pytest.raises(FloatingPointError, match=r"loss became .* at step \d+"):
        _fit(model, moons, epochs=3, batch_size=16, lr=1e10, optimizer="sgd", momentum=0.0,
             schedule=None)
    assert not model.training


def test_sgd_momentum_defaults_to_0_9_and_is_used():
    model = _model([2, 8, 2])
    opt = make_optimizer(model.parameters(), optimizer="sgd", lr=0.1)
    assert opt.param_groups[0]["momentum"] == 0.9
    opt = make_optimizer(model.parameters(), optimizer="sgd", lr=0.1, momentum=0.0)
    assert opt.param_groups[0]["momentum"] == 0.0


def test_train_teacher_snapshots_and_label_smoothing():
    """Snapshots are the weights after those epochs; label smoothing changes the loss."""
    small = data.load("fashion-mnist", n_train=200, n_val=50, seed=0)
    kw = dict(epochs=2, channels=(4,), hidden=8, progress=False, batch_size=50)
    t2, h2, snaps = train_teacher(small, snapshot_epochs=[1, 2], **kw)
    assert sorted(snaps) == [1, 2]
    assert all(torch.equal(snaps[2][k], v) for k, v in t2.state_dict().items())
    t1, h1 = train_teacher(small, **{**kw, "epochs": 1})
    assert set(snaps[1]) == set(t1.state_dict())
    _, hs = train_teacher(small, label_smoothing=0.2, **kw)
    assert hs.step_loss[0] != h2.step_loss[0]
    with pytest.raises(ValueError, match="snapshot_epochs"):
        train_teacher(small, snapshot_epochs=[3], **kw)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine"))])
def test_fit_trains_on_every_available_device(moons, device, monkeypatch):
    """device= and $KDLIB_DEVICE pick the device; on the CPU the numbers equal the default run."""
    h = _fit(_model([2, 16, 2]), moons, epochs=2, batch_size=16, device=device)
    monkeypatch.setenv("KDLIB_DEVICE", device)
    model = _model([2, 16, 2])
    h_env = _fit(model, moons, epochs=2, batch_size=16)
    assert next(model.parameters()).device.type == device
    assert h.epoch_loss[-1] < h.epoch_loss[0]
    if device == "cpu":
        monkeypatch.delenv("KDLIB_DEVICE")
        h_default = _fit(_model([2, 16, 2]), moons, epochs=2, batch_size=16)
        if not torch.cuda.is_available():
            assert h_default.step_loss == h.step_loss == h_env.step_loss
