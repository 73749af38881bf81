"""Tests of kdlib.data: shapes, dtypes, stratified disjoint seeded splits, file checks.

Fashion-MNIST is parsed here a second time, independently of kdlib (gzip + fixed IDX
header sizes), so that the loader's output can be traced back to row indices of the
original files. Loads of Fashion-MNIST are kept few (each takes about a second).
"""

from __future__ import annotations

import gzip
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import kdlib.data
from kdlib.data import DataError, load, make_moons, stratified_split

FASHION_DIR = Path(kdlib.data.REPO_ROOT) / "data" / "fashion-mnist"
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


# ----------------------------------------------------------------- helpers
def _read_idx(path: Path, header: int) -> np.ndarray:
    """Independent IDX reader: skip the fixed-size header (16 bytes images, 8 labels)."""
    return np.frombuffer(gzip.decompress(path.read_bytes())[header:], dtype=np.uint8)


def _row_keys(x) -> list[bytes]:
    """One bytes key per example: its pixels as the original uint8 values."""
    u8 = (torch.as_tensor(x, dtype=torch.float32) * 255).round().to(torch.uint8).numpy()
    return [r.tobytes() for r in u8.reshape(len(u8), -1)]


def _indices(keys: list[bytes], index_of: dict) -> np.ndarray:
    return np.array([index_of[k] for k in keys])


# ----------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def raw():
    """The original training pool and test set, parsed without kdlib."""
    x_tr = _read_idx(FASHION_DIR / FILES[0], 16).reshape(-1, 784)
    y_tr = _read_idx(FASHION_DIR / FILES[1], 8).astype(np.int64)
    x_te = _read_idx(FASHION_DIR / FILES[2], 16).reshape(-1, 784)
    y_te = _read_idx(FASHION_DIR / FILES[3], 8).astype(np.int64)
    keys = [r.tobytes() for r in x_tr]
    index_of = {k: i for i, k in enumerate(keys)}
    # The index reconstruction below relies on all 60,000 training images being distinct.
    assert len(index_of) == 60000
    return {"x_tr": x_tr, "y_tr": y_tr, "x_te": x_te, "y_te": y_te, "index_of": index_of}


@pytest.fixture(scope="module")
def fashion():
    return load("fashion-mnist", seed=0)


@pytest.fixture(scope="module")
def fashion_seed1_subset():
    return load("fashion-mnist", n_train=1003, seed=1)


@pytest.fixture
def fashion_copy(tmp_path, monkeypatch):
    """A private copy of the four files, used through $KDLIB_DATA."""
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for name in FILES:
        shutil.copyfile(FASHION_DIR / name, folder / name)
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    return folder


# ----------------------------------------------------------------- fashion-mnist
def test_fashion_shapes_dtypes_and_ranges(fashion):
    assert fashion.classes == kdlib.data.FASHION_CLASSES and fashion.n_classes == 10
    assert (len(fashion.train), len(fashion.val), len(fashion.test)) == (55000, 5000, 10000)
    for split in (fashion.train, fashion.val, fashion.test):
        assert split.x.shape == (len(split), 1, 28, 28)
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert split.x.min() >= 0.0 and split.x.max() <= 1.0
        assert set(split.y.unique().tolist()) == set(range(10))
    # Pixels are the original bytes / 255 (so both 0 and 1 occur).
    assert fashion.train.x.min() == 0.0 and fashion.train.x.max() == 1.0


def test_fashion_test_split_is_the_t10k_files_in_order(fashion, raw):
    assert np.array_equal(fashion.test.y.numpy(), raw["y_te"])
    assert raw["y_te"][:5].tolist() == [9, 2, 1, 1, 6]  # known first labels of t10k
    expected = raw["x_te"].astype(np.float32) / np.float32(255)
    assert np.array_equal(fashion.test.x.numpy().reshape(-1, 784), expected)


def test_fashion_val_is_stratified_exactly(fashion):
    # 6000 images per class in the pool, n_val=5000: exactly 500 per class.
    assert torch.bincount(fashion.val.y, minlength=10).tolist() == [500] * 10
    assert torch.bincount(fashion.train.y, minlength=10).tolist() == [5500] * 10


def test_fashion_train_and_val_partition_the_training_file(fashion, raw):
    index_of = raw["index_of"]
    tr = _indices(_row_keys(fashion.train.x), index_of)
    va = _indices(_row_keys(fashion.val.x), index_of)
    assert len(set(tr.tolist())) == len(tr) and len(set(va.tolist())) == len(va)
    assert not set(tr.tolist()) & set(va.tolist())
    assert sorted(tr.tolist() + va.tolist()) == list(range(60000))
    # Labels travel with their images, and both splits keep the file's order.
    assert np.array_equal(fashion.train.y.numpy(), raw["y_tr"][tr])
    assert np.array_equal(fashion.val.y.numpy(), raw["y_tr"][va])
    assert np.all(np.diff(tr) > 0) and np.all(np.diff(va) > 0)


def test_fashion_test_images_never_in_train_or_val(fashion, raw):
    test_keys = {r.tobytes() for r in raw["x_te"]}
    assert len(test_keys) == 10000
    assert not test_keys & set(raw["index_of"])  # no test image occurs in the training file


def test_fashion_same_seed_gives_identical_tensors(fashion):
    again = load("fashion-mnist", seed=0)
    for a, b in ((fashion.train, again.train), (fashion.val, again.val),
                 (fashion.test, again.test)):
        assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y)


def test_fashion_other_seed_changes_val_and_n_train_subset_is_stratified(
        fashion, fashion_seed1_subset, raw):
    other = fashion_seed1_subset
    index_of = raw["index_of"]
    va0 = set(_indices(_row_keys(fashion.val.x), index_of).tolist())
    va1 = set(_indices(_row_keys(other.val.x), index_of).tolist())
    assert va0 != va1
    assert len(va0 & va1) < 1000  # independent draws of 5000/60000 overlap by ~420
    # The n_train subset: 1003 = 10 × 100.3 → largest remainder gives 100 or 101 per class,
    # the three extra examples to the first classes (ties broken in class order).
    assert len(other.train) == 1003
    assert torch.bincount(other.train.y, minlength=10).tolist() == [101] * 3 + [100] * 7
    assert torch.bincount(other.val.y, minlength=10).tolist() == [500] * 10
    tr1 = set(_indices(_row_keys(other.train.x), index_of).tolist())
    assert len(tr1) == 1003 and not tr1 & va1
    assert torch.equal(other.test.x, fashion.test.x)  # the test set never depends on seed


@pytest.mark.parametrize("kwargs, arg", [
    ({"n_val": 60000}, "n_val"), ({"n_val": -1}, "n_val"),
    ({"n_train": 0}, "n_train"), ({"n_train": 55001}, "n_train"), ({"seed": -1}, "seed"),
])
def test_fashion_bad_sizes_name_the_argument(fashion, kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        load("fashion-mnist", **kwargs)


def test_bad_argument_types():
    with pytest.raises(TypeError, match="n_val"):
        load("digits", n_val=2.5)
    with pytest.raises(TypeError, match="n_train"):
        load("digits", n_train="100")


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="name") as info:
        load("cifar10")
    for name in kdlib.data.NAMES:
        assert repr(name) in str(info.value)


# ----------------------------------------------------------------- $KDLIB_DATA and damage
def test_data_dir_follows_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("KDLIB_DATA", raising=False)
    assert kdlib.data.data_dir() == Path(kdlib.data.REPO_ROOT) / "data"
    monkeypatch.setenv("KDLIB_DATA", str(tmp_path))
    assert kdlib.data.data_dir() == tmp_path.resolve()
    assert kdlib.data.resolve(None, "t.pt") == tmp_path.resolve() / "t.pt"
    assert kdlib.data.resolve("", "t.pt") == tmp_path.resolve() / "t.pt"
    monkeypatch.chdir(tmp_path)
    assert kdlib.data.resolve("sub/x.pt", "t.pt") == (tmp_path / "sub" / "x.pt").resolve()


def test_missing_file_is_named(fashion_copy):
    victim = fashion_copy / FILES[0]
    victim.unlink()
    with pytest.raises(DataError, match="missing") as info:
        load("fashion-mnist")
    assert str(victim) in str(info.value)


def test_truncated_file_is_named_with_how_to_restore(fashion_copy):
    victim = fashion_copy / FILES[1]  # the small training-labels file
    blob = victim.read_bytes()
    victim.write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError) as info:
        load("fashion-mnist")
    message = str(info.value)
    assert str(victim) in message
    for other in set(FILES) - {FILES[1]}:
        assert other not in message
    assert "Restore" in message and "git checkout" in message


def test_tampered_byte_of_same_length_is_refused(fashion_copy):
    victim = fashion_copy / FILES[3]
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    victim.write_bytes(bytes(blob))
    assert victim.stat().st_size == (FASHION_DIR / FILES[3]).stat().st_size
    with pytest.raises(DataError, match="sha256") as info:
        load("fashion-mnist")
    assert str(victim) in str(info.value)


def test_environment_override_reads_the_copied_files(fashion_copy, fashion):
    try:
        copy = load("fashion-mnist", seed=0)
        assert torch.equal(copy.val.x, fashion.val.x) and torch.equal(copy.test.y, fashion.test.y)
        assert len(copy.train) == 55000
    finally:
        kdlib.data._fashion.cache_clear()  # drop the copy's arrays (and the cache entry)


# ----------------------------------------------------------------- digits
def test_digits_shapes_classes_and_fixed_test_split():
    a, b = load("digits", seed=0), load("digits", seed=5)
    assert a.n_classes == 10
    assert (len(a.train), len(a.val), len(a.test)) == (1437 - 300, 300, 360)
    for split in (a.train, a.val, a.test):
        assert split.x.shape == (len(split), 1, 8, 8)
        assert split.x.dtype == torch.float32 and split.y.dtype == torch.int64
        assert 0.0 <= split.x.min() and split.x.max() <= 1.0
    assert torch.equal(a.test.x, b.test.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.val.y, b.val.y) or not torch.equal(a.val.x, b.val.x)
    # The three splits together are exactly scikit-learn's 1797 digits (as a multiset).
    from sklearn.datasets import load_digits

    d = load_digits()
    want = Counter(zip(_row_keys(d.images / 16.0), d.target.tolist()))
    got = Counter()
    for split in (a.train, a.val, a.test):
        got.update(zip(_row_keys(split.x), split.y.tolist()))
    assert got == want


def test_editing_a_split_in_place_does_not_change_later_loads():
    first = load("digits")
    before = first.test.x.clone(), first.train.x.clone()
    first.test.x.add_(1.0)
    first.train.x.mul_(0.0)
    again = load("digits")
    assert torch.equal(again.test.x, before[0]) and torch.equal(again.train.x, before[1])


# ----------------------------------------------------------------- moons
def test_moons_shapes_and_determinism():
    a, b = load("moons", seed=3), load("moons", seed=3)
    assert a.n_classes == 2
    assert (len(a.train), len(a.val), len(a.test)) == (800, 200, 1000)
    for split in (a.train, a.val, a.test):
        assert split.x.shape == (len(split), 2) and split.x.dtype == torch.float32
        assert split.y.dtype == torch.int64
    assert torch.bincount(a.val.y).tolist() == [100, 100]
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.val.y, b.val.y)


def test_make_moons_geometry_and_seed():
    x, y = make_moons(101, noise=0.0, seed=7)
    assert x.shape == (101, 2) and x.dtype == np.float32 and y.dtype == np.int64
    assert np.bincount(y).tolist() == [50, 51]
    upper, lower = x[y == 0].astype(np.float64), x[y == 1].astype(np.float64)
    # Without noise: class 0 on the unit circle's upper half, class 1 on the circle
    # of radius 1 around (1, 0.5), lower half.
    assert np.allclose(np.hypot(upper[:, 0], upper[:, 1]), 1.0, atol=1e-6)
    assert np.all(upper[:, 1] >= -1e-6)
    assert np.allclose(np.hypot(lower[:, 0] - 1, lower[:, 1] - 0.5), 1.0, atol=1e-6)
    assert np.all(lower[:, 1] <= 0.5 + 1e-6)
    x2, y2 = make_moons(101, noise=0.0, seed=7)
    assert np.array_equal(x, x2) and np.array_equal(y, y2)
    x3, _ = make_moons(101, noise=0.0, seed=8)
    assert not np.array_equal(x, x3)
    with pytest.raises(ValueError, match="n"):
        make_moons(1)


# ----------------------------------------------------------------- stratified_split
@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60), st.data(),
       st.integers(0, 2**32 - 1))
def test_stratified_split_exact_counts(labels, draw, seed):
    y = np.array(labels)
    n = draw.draw(st.integers(0, len(y)), label="n")
    chosen, rest = stratified_split(y, n, np.random.default_rng(seed))
    assert len(chosen) == n
    assert sorted(np.concatenate([chosen, rest]).tolist()) == list(range(len(y)))
    for c in np.unique(y):
        quota = np.sum(y == c) * n / len(y)
        assert abs(np.sum(y[chosen] == c) - quota) < 1


def test_stratified_split_is_seeded_and_checks_n():
    y = np.repeat(np.arange(3), 20)
    a, _ = stratified_split(y, 30, np.random.default_rng(1))
    b, _ = stratified_split(y, 30, np.random.default_rng(1))
    c, _ = stratified_split(y, 30, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(np.sort(a), np.sort(c))
    assert np.bincount(y[a]).tolist() == [10, 10, 10]
    for bad in (-1, 61):
        with pytest.raises(ValueError, match="n="):
            stratified_split(y, bad, np.random.default_rng(0))


def test_unpack_splits_accepts_every_form_of_the_data_argument():
    d = load("moons", n_train=20, n_val=10, seed=0)
    assert kdlib.data.unpack_splits(d) == (d.train, d.val, d.test)
    assert kdlib.data.unpack_splits((d.train, d.val)) == (d.train, d.val, None)
    assert kdlib.data.unpack_splits((d.train, None)) == (d.train, None, None)
    assert kdlib.data.unpack_splits([d.train, d.val, d.test]) == (d.train, d.val, d.test)
    assert kdlib.data.unpack_splits(d.train) == (d.train, None, None)
    for bad in (None, "moons", (d.train,), (1, 2), {"train": d.train}):
        with pytest.raises(TypeError, match="data must be kdlib.data.Splits"):
            kdlib.data.unpack_splits(bad)
