"""Data sets as in-memory tensors, stratified seeded splits.

``load(name)`` returns :class:`Splits` with ``.train``, ``.val`` and ``.test``
(each a :class:`Split` holding ``.x`` float32 and ``.y`` int64 tensors) and
``.classes``. Fashion-MNIST is parsed from the four original IDX ``.gz`` files
shipped in ``data/fashion-mnist/`` (NumPy only, no torchvision); their sha256 is
checked first, so a truncated or altered file fails with a message naming it.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from kdlib._checks import Float, Int, OneOf, check_int, validate_params

REPO_ROOT = Path(__file__).resolve().parent.parent

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
    "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
}
RESTORE_HINT = (
    "Restore it with `git checkout -- data/fashion-mnist/` in the repository, or "
    "`apt-get install dataset-fashion-mnist` and copy /usr/share/datasets/fashion-mnist/*.gz "
    "into the data folder."
)
NAMES = ("fashion-mnist", "digits", "moons")
DEFAULT_N_VAL = {"fashion-mnist": 5000, "digits": 300, "moons": 200}


class DataError(RuntimeError):
    """A data file is missing, truncated or altered.

    Parameters
    ----------
    message : str
        Names the file and what is wrong with it, and how to restore it (``RESTORE_HINT``).
    """


@dataclass
class Split:
    """One split: ``x`` (float32, N×…) and ``y`` (int64, N).

    Parameters
    ----------
    x : torch.Tensor
        Inputs, float32, first dimension the examples (``N×1×28×28`` images, ``N×1×8×8`` digits,
        ``N×2`` moons).
    y : torch.Tensor
        Class labels, int64, shape ``(N,)``, in ``[0, classes)``. ``len(split)`` is ``N``.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return f"Split(x={tuple(self.x.shape)} {self.x.dtype}, y={tuple(self.y.shape)})"


@dataclass
class Splits:
    """A data set's ``train``, ``val`` and ``test`` splits and its class names.

    Parameters
    ----------
    train, val, test : Split
        The three disjoint splits.
    classes : tuple of str
        Class names, indexed by label.
    name : str
        The data set's name (e.g. ``"fashion-mnist"``), ``""`` if none.

    Attributes
    ----------
    n_classes : int
        ``len(classes)``.
    """

    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    name: str = ""

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        return (f"Splits({self.name!r}: train={len(self.train)}, val={len(self.val)}, "
                f"test={len(self.test)}, x={tuple(self.train.x.shape[1:])}, "
                f"classes={len(self.classes)})")


def unpack_splits(data) -> tuple:
    """``(train, val, test)`` from any form of the ``data`` argument kdlib accepts.

    The one parser of ``data`` arguments: :class:`Splits` (``val``/``test`` may be
    missing on look-alikes), a ``(train, val)`` or ``(train, val, test)`` tuple, or a
    single :class:`Split` (then ``val`` and ``test`` are ``None``).

    Parameters
    ----------
    data : Splits, tuple of Split, or Split

    Returns
    -------
    tuple
        ``(train, val or None, test or None)``.

    Raises
    ------
    TypeError
        For anything else, naming the type that was given.
    """
    def is_split(d):
        return hasattr(d, "x") and hasattr(d, "y")

    if hasattr(data, "train"):
        return data.train, getattr(data, "val", None), getattr(data, "test", None)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3) and is_split(data[0]) and all(
            d is None or is_split(d) for d in data[1:]):
        return (*data, None)[:3]
    if is_split(data):
        return data, None, None
    raise TypeError("data must be kdlib.data.Splits, a (train, val[, test]) tuple of Splits, or a "
                    f"Split with .x and .y; got {type(data).__name__}")


def data_dir() -> Path:
    """The data folder: ``$KDLIB_DATA`` if set, else the repository's ``data/``.

    Returns
    -------
    pathlib.Path
        ``$KDLIB_DATA`` expanded and resolved, or ``<repository>/data`` (neither is checked to exist).
    """
    env = os.environ.get("KDLIB_DATA")
    return Path(env).expanduser().resolve() if env else REPO_ROOT / "data"


def scratch_data_dir(target) -> Path:
    """Make ``target`` a data folder like the repository's that is safe to write into.

    Links the shipped Fashion-MNIST files and copies the shipped checkpoints
    (``data/*.pt``). Tests and benchmarks point ``$KDLIB_DATA`` at it so that a
    notebook saving a checkpoint never changes a tracked file.

    Parameters
    ----------
    target : str or Path
        The folder to fill (created if missing).

    Returns
    -------
    Path
    """
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    fm = target / "fashion-mnist"
    if not fm.exists():
        fm.symlink_to(REPO_ROOT / "data" / "fashion-mnist", target_is_directory=True)
    for ckpt in (REPO_ROOT / "data").glob("*.pt"):
        shutil.copy2(ckpt, target / ckpt.name)
    return target


def resolve(path: str | os.PathLike | None, default_name: str) -> Path:
    """Resolve a user path; empty/None means ``data_dir() / default_name``.

    Relative user paths are taken from the current working directory, so that
    ``papermill ... -p checkpoint X.pt`` writes ``./X.pt``.

    Parameters
    ----------
    path : str, PathLike or None
    default_name : str
        File name inside :func:`data_dir` used when ``path`` is empty.

    Returns
    -------
    Path
        Absolute.
    """
    if path is None or str(path) == "":
        return data_dir() / default_name
    return Path(path).expanduser().resolve()


@validate_params(name=OneOf(*NAMES), seed=Int(low=0))
def load(name: str, *, n_train: int | None = None, n_val: int | None = None,
         seed: int = 0) -> Splits:
    """Load a data set into memory as tensors, split into train / val / test.

    Parameters
    ----------
    name : {"fashion-mnist", "digits", "moons"}
        ``fashion-mnist``: 28×28 clothing images (x: N×1×28×28 in [0, 1]).
        ``digits``: scikit-learn's bundled 8×8 digits (x: N×1×8×8 in [0, 1]).
        ``moons``: kdlib's 2-D two-moons toy (x: N×2).
    n_train : int, optional
        Keep a seeded, stratified subset of this many training examples
        (default: everything not used for validation).
    n_val : int, optional
        Size of the validation split, carved (stratified, seeded) from the
        training pool, never from the test set. Defaults: 5000 / 300 / 200.
    seed : int
        Seed for the validation carve-out and the ``n_train`` subset.

    Returns
    -------
    Splits
    """
    x_pool, y_pool, x_test, y_test, classes = _raw(name)
    n_val = DEFAULT_N_VAL[name] if n_val is None else check_int("n_val", n_val, low=0,
                                                                high=len(y_pool) - 1)
    rng = np.random.default_rng(seed)
    val_idx, rest = stratified_split(y_pool, n_val, rng)
    if n_train is not None:
        n_train = check_int("n_train", n_train, low=1, high=len(rest))
        keep, _ = stratified_split(y_pool[rest], n_train, rng)
        rest = rest[keep]
    rest = np.sort(rest)
    val_idx = np.sort(val_idx)

    def split(x, y, idx=None):
        # Fancy indexing copies; the test split is copied explicitly, so that editing a
        # returned tensor in place never alters the cached arrays behind later loads.
        x, y = (x[idx], y[idx]) if idx is not None else (x.copy(), y.copy())
        return Split(torch.from_numpy(np.ascontiguousarray(x)),
                     torch.from_numpy(np.ascontiguousarray(y)))

    return Splits(split(x_pool, y_pool, rest), split(x_pool, y_pool, val_idx),
                  split(x_test, y_test), tuple(classes), name)


def stratified_split(y: np.ndarray, n: int, rng: np.random.Generator):
    """Choose ``n`` indices of ``y`` with class proportions kept.

    Counts per class follow the largest-remainder rule, so they add up to exactly ``n``.

    Parameters
    ----------
    y : array of int
        Labels.
    n : int in [0, len(y)]
    rng : numpy.random.Generator

    Returns
    -------
    tuple of ndarray
        ``(chosen, rest)``, two disjoint index arrays covering ``y``.
    """
    y = np.asarray(y)
    n = check_int("n", n, low=0, high=len(y))
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * n / len(y)
    take = np.floor(quota).astype(int)
    short = n - take.sum()
    if short:
        take[np.argsort(-(quota - take), kind="stable")[:short]] += 1
    chosen, rest = [], []
    for c, k in zip(classes, take):
        idx = rng.permutation(np.flatnonzero(y == c))
        chosen.append(idx[:k])
        rest.append(idx[k:])
    return np.concatenate(chosen), np.concatenate(rest)


# --------------------------------------------------------------------- loaders
def _raw(name):
    if name == "fashion-mnist":
        return _fashion(str(data_dir() / "fashion-mnist"))
    if name == "digits":
        return _digits()
    return _moons()


@functools.lru_cache(maxsize=2)
def _fashion(folder: str):
    folder = Path(folder)
    arrays = {}
    for fname, digest in FASHION_FILES.items():
        path = folder / fname
        if not path.is_file():
            raise DataError(f"Fashion-MNIST file missing: {path}. {RESTORE_HINT}")
        blob = path.read_bytes()
        if hashlib.sha256(blob).hexdigest() != digest:
            raise DataError(
                f"Fashion-MNIST file {path} is damaged (truncated or altered: its sha256 "
                f"does not match data/fashion-mnist/README.md). {RESTORE_HINT}")
        arrays[fname] = _parse_idx(gzip.decompress(blob), path)
    x_tr = arrays["train-images-idx3-ubyte.gz"].astype(np.float32)[:, None] / 255.0
    x_te = arrays["t10k-images-idx3-ubyte.gz"].astype(np.float32)[:, None] / 255.0
    y_tr = arrays["train-labels-idx1-ubyte.gz"].astype(np.int64)
    y_te = arrays["t10k-labels-idx1-ubyte.gz"].astype(np.int64)
    return x_tr, y_tr, x_te, y_te, FASHION_CLASSES


def _parse_idx(raw: bytes, path) -> np.ndarray:
    """Parse an IDX file (big-endian header: 0, 0, dtype 0x08, ndim, dims)."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DataError(f"{path} is not an unsigned-byte IDX file. {RESTORE_HINT}")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(int)
    start = 4 + 4 * ndim
    if len(raw) - start != int(np.prod(dims)):
        raise DataError(f"{path} has {len(raw) - start} data bytes, its header says "
                        f"{int(np.prod(dims))}. {RESTORE_HINT}")
    return np.frombuffer(raw, dtype=np.uint8, offset=start).reshape(dims)


@functools.lru_cache(maxsize=1)
def _digits():
    from sklearn.datasets import load_digits  # heavy import (~1 s), needed by 'digits' only

    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[:, None]
    y = d.target.astype(np.int64)
    # A fixed test split (seed 12345), the same whatever ``seed`` is passed to load().
    test, pool = stratified_split(y, 360, np.random.default_rng(12345))
    test, pool = np.sort(test), np.sort(pool)
    return x[pool], y[pool], x[test], y[test], tuple(str(i) for i in range(10))


@functools.lru_cache(maxsize=1)
def _moons():
    x, y = make_moons(2000, noise=0.2, seed=12345)
    test, pool = stratified_split(y, 1000, np.random.default_rng(12345))
    test, pool = np.sort(test), np.sort(pool)
    return x[pool], y[pool], x[test], y[test], ("upper moon", "lower moon")


@validate_params(n=Int(low=2))
def make_moons(n: int, *, noise: float = 0.2, seed: int = 0):
    """Two interleaving half circles in 2-D, half of the points in each class.

    Parameters
    ----------
    n : int >= 2
    noise : float
        Standard deviation of the Gaussian noise added to every point.
    seed : int

    Returns
    -------
    tuple
        ``(x, y)``: float32 array ``(n, 2)`` and int64 labels ``(n,)``.
    """
    rng = np.random.default_rng(seed)
    n0 = n // 2
    t0 = rng.uniform(0, np.pi, n0)
    t1 = rng.uniform(0, np.pi, n - n0)
    upper = np.stack([np.cos(t0), np.sin(t0)], 1)
    lower = np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], 1)
    x = np.concatenate([upper, lower]) + rng.normal(0, noise, (n, 2))
    y = np.concatenate([np.zeros(n0), np.ones(n - n0)]).astype(np.int64)
    order = rng.permutation(n)
    return x[order].astype(np.float32), y[order]


# --------------------------------- deterministic seeded distribution shifts
SHIFTS = ("none", "noise", "rotate", "translate", "contrast")


@validate_params(kind=OneOf(*SHIFTS), severity=Float(low=0.0), seed=Int(low=0))
def shift(x: torch.Tensor, kind: str, severity: float = 0.0, *, seed: int = 0) -> torch.Tensor:
    """A shifted copy of a batch of images ``x`` (N×C×H×W in [0, 1]), the same for the same seed.

    Parameters
    ----------
    x : torch.Tensor
        Images, shape ``(N, C, H, W)``; not modified.
    kind : {"none", "noise", "rotate", "translate", "contrast"}
        ``noise``: add Gaussian noise of standard deviation ``severity``, clip to [0, 1].
        ``rotate``: rotate every image by ``severity`` degrees about its centre, clockwise or
        anticlockwise (a seeded coin per image), bilinear, zeros outside.
        ``translate``: move every image by ``severity`` whole pixels up, down, left or right
        (a seeded choice per image), zeros shifted in.
        ``contrast``: scale towards the image's mean, ``x' = m + (1 - severity) (x - m)``.
    severity : float >= 0
        Strength (σ, degrees, pixels or contrast loss in [0, 1]); 0 returns a copy.
    seed : int >= 0
        Seeds the random parts, so the shifted test set is the same in every run.

    Returns
    -------
    torch.Tensor
        Same shape and dtype as ``x``.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError(f"x must be an N×C×H×W tensor of images, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    g = torch.Generator().manual_seed(seed)
    if kind == "none" or severity == 0:
        return x.clone()
    if kind == "noise":
        return (x + severity * torch.randn(x.shape, generator=g, dtype=x.dtype)).clamp(0, 1)
    if kind == "contrast":
        if severity > 1:
            raise ValueError(f"severity={severity!r} is out of range for contrast; allowed: [0, 1]")
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        return m + (1 - severity) * (x - m)
    if kind == "rotate":
        sign = torch.where(torch.rand(len(x), generator=g) < 0.5, -1.0, 1.0)
        a = sign * severity * np.pi / 180
        cos, sin = torch.cos(a), torch.sin(a)
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(a)], 1),
                             torch.stack([sin, cos, torch.zeros_like(a)], 1)], 1).to(x.dtype)
        grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
        return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                               align_corners=False)
    k = int(round(severity))  # translate
    if k != severity:
        raise ValueError(f"severity={severity!r} must be a whole number of pixels for translate")
    h, w = x.shape[-2:]
    direction = torch.randint(0, 4, (len(x),), generator=g)
    out = torch.zeros_like(x)
    for d, (dy, dx) in enumerate(((-k, 0), (k, 0), (0, -k), (0, k))):
        sel = direction == d
        if not sel.any() or abs(dy) >= h or abs(dx) >= w:
            continue
        src = x[sel]
        dst = torch.zeros_like(src)
        dst[..., max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
            src[..., max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
        out[sel] = dst
    return out
