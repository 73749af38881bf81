"""kdlib.train.distill: cached teacher logits are looked up by example index."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import kdlib.data
import kdlib.losses
import kdlib.models
import kdlib.train


@pytest.fixture(scope="module")
def digits():
    return kdlib.data.load("digits", seed=0)


@pytest.fixture(scope="module")
def teacher(digits):
    torch.manual_seed(0)
    t = kdlib.models.mlp([64, 64, 10], dropout=0.3)  # dropout: train-mode targets would be noisy
    kdlib.train.fit(t, digits, epochs=10, lr=1e-2, progress=False, seed=0)
    return t


def student(seed=1):
    torch.manual_seed(seed)
    return kdlib.models.mlp([64, 16, 10])


def params(model):
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def test_cached_logits_equal_per_batch_teacher(digits, teacher):
    a, b = student(), student()
    ha = kdlib.train.distill(a, teacher, digits, lam=0.3, T=4.0, epochs=2, batch_size=32, seed=5,
                             progress=False)
    hb = kdlib.train.distill(b, teacher, digits, lam=0.3, T=4.0, epochs=2, batch_size=32, seed=5,
                             progress=False, teacher_per_batch=True)
    assert ha.step_loss == pytest.approx(hb.step_loss, rel=1e-5, abs=1e-6)
    assert torch.allclose(params(a), params(b), atol=1e-5)
    assert not teacher.training


def test_loss_uses_the_teacher_targets_of_each_example(digits, teacher):
    """Record what distill's loss sees and recompute it independently, by index."""
    seen = []
    orig = kdlib.train._kd_loss  # the unchecked per-batch path distill calls

    def spy(s, t, y, lam, T):
        seen.append((s.detach().clone(), t.clone(), y.clone()))
        assert torch.equal(orig(s, t, y, lam, T), kdlib.losses.kd_loss(s, t, y, lam=lam, T=T))
        return orig(s, t, y, lam, T)

    kdlib.train._kd_loss = spy
    try:
        kdlib.train.distill(student(), teacher, digits, lam=0.5, T=2.0, epochs=1, batch_size=50,
                            seed=3, progress=False)
    finally:
        kdlib.train._kd_loss = orig
    order = torch.randperm(len(digits.train.y), generator=torch.Generator().manual_seed(3))
    expected_t = kdlib.models.predict(teacher, digits.train.x)[order]
    got_t = torch.cat([t for _, t, _ in seen])
    got_y = torch.cat([y for _, _, y in seen])
    assert torch.equal(got_y, digits.train.y[order])
    assert torch.allclose(got_t, expected_t, atol=1e-6)


def test_lam_one_is_plain_training(digits, teacher):
    a, b = student(), student()
    kdlib.train.distill(a, teacher, digits, lam=1.0, T=3.0, epochs=2, seed=0, progress=False)
    kdlib.train.fit(b, digits, epochs=2, seed=0, progress=False)
    assert torch.allclose(params(a), params(b), atol=1e-6)


def test_distillation_moves_student_towards_teacher(digits, teacher):
    s = student()
    kdlib.train.distill(s, teacher, digits, lam=0.0, T=4.0, epochs=20, lr=1e-2, seed=0, progress=False)
    t_logits = kdlib.models.predict(teacher, digits.val.x)

    def soft_kl(model):  # KL(teacher || student) at T=4 on unseen images
        s_logits = kdlib.models.predict(model, digits.val.x)
        return F.kl_div(F.log_softmax(s_logits / 4, 1), F.log_softmax(t_logits / 4, 1),
                        log_target=True, reduction="batchmean")

    assert soft_kl(s) < 0.2 * soft_kl(student())


def test_precomputed_cache_is_used_and_checked(digits, teacher):
    cache = kdlib.models.predict(teacher, digits.train.x)
    a, b = student(), student()
    kdlib.train.distill(a, teacher, digits, lam=0.5, T=2.0, epochs=1, seed=0, progress=False)
    kdlib.train.distill(b, teacher, digits, lam=0.5, T=2.0, epochs=1, seed=0, progress=False,
                        teacher_logits=cache)
    assert torch.equal(params(a), params(b))
    with pytest.raises(ValueError, match=r"teacher_logits has shape \(5, 10\)"):
        kdlib.train.distill(student(), teacher, digits, lam=0.5, T=2.0, teacher_logits=cache[:5],
                            progress=False)


@pytest.mark.parametrize("kwargs, match", [
    ({"lam": 1.5, "T": 2.0}, "lam"),
    ({"lam": -0.1, "T": 2.0}, "lam"),
    ({"lam": 0.5, "T": 0.0}, "T"),
    ({"lam": 0.5, "T": -1.0}, "T"),
])
def test_bad_arguments(digits, teacher, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kdlib.train.distill(student(), teacher, digits, progress=False, **kwargs)


def test_distill_takes_a_settings_object(digits, teacher):
    """distill passes settings= and loose options to fit the same way fit takes them."""
    s = kdlib.train.TrainSettings(epochs=1, batch_size=32, seed=2)
    a, b = student(), student()
    ha = kdlib.train.distill(a, teacher, digits, lam=0.5, T=2.0, settings=s, progress=False)
    hb = kdlib.train.distill(b, teacher, digits, lam=0.5, T=2.0, epochs=1, batch_size=32, seed=2,
                             progress=False)
    assert ha.step_loss == hb.step_loss and torch.equal(params(a), params(b))


def test_load_teacher_trains_and_saves_when_missing(tmp_path, monkeypatch):
    """Without a checkpoint, load_teacher trains one with notebook 01's defaults and saves it.

    (A tiny stand-in replaces the real training so this stays fast.)
    """
    calls = {}

    def fake_train(data, **kw):
        calls.update(kw)
        return kdlib.models.mlp([784, 10]), kdlib.train.History(val_acc=[0.5])

    monkeypatch.setattr(kdlib.train, "train_teacher", fake_train)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    (tmp_path / "fashion-mnist").symlink_to(kdlib.data.REPO_ROOT / "data" / "fashion-mnist")
    kdlib.data._fashion.cache_clear()
    t = kdlib.train.load_teacher("", progress=False)
    assert (tmp_path / "teacher.pt").is_file()
    assert calls["epochs"] == kdlib.train.TEACHER_DEFAULTS["epochs"]
    assert t.kd_meta["epochs"] == kdlib.train.TEACHER_DEFAULTS["epochs"]
    again = kdlib.train.load_teacher(str(tmp_path / "teacher.pt"))
    assert torch.equal(params(again), params(t))


def test_load_teacher_refuses_a_missing_explicit_path(tmp_path):
    """A typo in checkpoint= must not silently train a teacher and write it there."""
    path = tmp_path / "typo" / "t.pt"
    with pytest.raises(FileNotFoundError, match="papermill notebooks/01_teacher.ipynb"):
        kdlib.train.load_teacher(str(path))
    assert not path.parent.exists()


def test_labels_are_checked_once_against_the_teachers_classes(digits, teacher):
    bad = kdlib.data.Split(digits.train.x, digits.train.y.clone())
    bad.y[3] = 10
    with pytest.raises(ValueError, match=r"labels must be class indices in \[0, 9\] \(the teacher has 10"):
        kdlib.train.distill(student(), teacher, bad, lam=0.5, T=2.0, epochs=1, progress=False)
