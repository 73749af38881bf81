"""λ / T tuning in-process: grids over (λ, T, seed), k-fold selection, seeds, summaries.

Every point of a grid trains a fresh small student (``kdlib.models.mlp``) with
:func:`kdlib.train.distill` on **cached** teacher logits, so a student costs a
fraction of a second per epoch. A point is fully determined by its
configuration: the student's initial weights come from ``torch.manual_seed(seed)``
right before it is built, and ``fit`` seeds the batch order with the same seed.
That makes results cacheable: :func:`run_point` keeps every row it produced in an
in-process dictionary keyed by the full configuration (and, with ``cache_dir``, in
one JSON file per row), so re-executing a notebook cell costs nothing.

Rows are plain dictionaries ("tidy" data, one per trained student)::

    {"lam": 0.5, "T": 4.0, "seed": 0, "val_acc": 0.848, "agreement": 0.91,
     "test_acc": 0.842, "test_agreement": 0.90,              # only with test=True
     "epochs": 20, "lr": 0.03, "batch_size": 128, "hidden": 128, "n_train": 2000,
     "n_transfer": 0, "seconds": 0.6,
     "history": {"epoch_loss": [...], "val_acc": [...]}}      # per epoch

``agreement`` is the fraction of validation images on which student and teacher
predict the same class. ``lam`` weights the hard-label term (DESIGN.md): ``lam=1``
is the **baseline**, a student trained on labels only (the KD loss reduces to
cross-entropy, so ``T`` does not matter there and all ``T`` share one run).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from kdlib._checks import check_float, check_int

__all__ = [
    "BASELINE_LAM", "STUDENT_DEFAULTS", "GRID_LAMS", "GRID_TS", "QUICK",
    "check_params", "notebook_settings", "clear_cache", "cache_size", "fingerprint", "teacher_outputs",
    "make_student", "train_student", "evaluate", "run_point", "grid", "baseline",
    "kfold_indices", "kfold_select", "KFoldResult", "summarize", "flatness",
    "select_best", "selection_optimism", "beats_by_spread", "format_pct", "results_table",
    "format_results", "shrink", "transfer_split", "to_csv", "read_csv",
]

BASELINE_LAM = 1.0
"""λ of the baseline student: hard labels only (``kd_loss`` reduces to cross-entropy)."""

STUDENT_DEFAULTS = {"hidden": 128, "epochs": 20, "lr": 3e-2, "batch_size": 128}
"""The student recipe of notebook 05: ``mlp([784, 128, 10])``, Adam + OneCycle."""

GRID_LAMS = (0.1, 0.5, 0.9)
GRID_TS = (1.0, 2.0, 4.0, 8.0)

_CACHE: dict[str, dict] = {}
_KEY_VERSION = 1


# --------------------------------------------------------------------------- parameters
def check_params(*, checkpoint: str = "", lam: float = 0.5, T: float = 4.0, quick: bool = False,
                 n_train: int = 2000, epochs: int = 20, seeds: int = 3, k_folds: int = 3,
                 small_teacher_epochs: int = 5, hidden: int = 128, lr: float = 3e-2,
                 n_labeled: int = 1000, n_transfer: int = 5000) -> None:
    """Validate notebook 05's parameters before any work starts.

    Raises ``TypeError`` / ``ValueError`` naming the parameter, its value and the
    allowed range.
    """
    if not isinstance(checkpoint, str):
        raise TypeError(f"checkpoint must be a string path, got {checkpoint!r}")
    check_float("lam", lam, low=0.0, high=1.0)
    check_float("T", T, low=0.0, high=100.0, low_open=True)
    if not isinstance(quick, bool):
        raise TypeError(f"quick must be True or False, got {quick!r} ({type(quick).__name__})")
    check_int("n_train", n_train, low=20, high=55000)
    check_int("epochs", epochs, low=1, high=500)
    check_int("seeds", seeds, low=1, high=20)
    check_int("k_folds", k_folds, low=2, high=20)
    check_int("small_teacher_epochs", small_teacher_epochs, low=1, high=100)
    check_int("hidden", hidden, low=1, high=4096)
    check_float("lr", lr, low=0.0, high=1.0, low_open=True)
    check_int("n_labeled", n_labeled, low=10, high=55000)
    check_int("n_transfer", n_transfer, low=0, high=54000)
    if n_labeled + n_transfer > 55000:
        raise ValueError(f"n_labeled + n_transfer = {n_labeled + n_transfer} is out of range; "
                         "allowed: <= 55000 (the training pool)")
    if n_train < k_folds * 10:
        raise ValueError(f"n_train={n_train} is too small for k_folds={k_folds}; allowed: "
                         f"n_train >= {k_folds * 10} (10 images per fold)")


QUICK = {"lams": (0.1, 0.5), "Ts": (2.0, 4.0), "seeds": 1, "n_train": 300, "n_val": 500,
         "n_test": 1000, "epochs": 3, "few_epochs": 1, "k_folds": 2, "small_teacher_epochs": 1,
         "n_labeled": 200, "n_transfer": 300}
"""What ``quick=True`` uses in notebook 05 (a few seconds in all)."""


def notebook_settings(*, quick: bool, n_train: int, epochs: int, seeds: int, k_folds: int,
                      small_teacher_epochs: int, n_labeled: int, n_transfer: int) -> dict:
    """Notebook 05's working settings: the parameters, or the tiny :data:`QUICK` ones.

    Returns a dict with ``lams``, ``Ts`` (the grid), ``seeds`` (a list), ``n_train``,
    ``n_val`` (``None``: the standard 5,000), ``n_test`` (``None``: all 10,000),
    ``epochs``, ``few_epochs`` (the "too few epochs" regime: 3), ``k_folds``,
    ``small_teacher_epochs``, ``n_labeled``, ``n_transfer``.
    """
    s = {"lams": GRID_LAMS, "Ts": GRID_TS, "seeds": seeds, "n_train": n_train, "n_val": None,
         "n_test": None, "epochs": epochs, "few_epochs": min(3, epochs), "k_folds": k_folds,
         "small_teacher_epochs": small_teacher_epochs, "n_labeled": n_labeled,
         "n_transfer": n_transfer}
    if quick:
        s.update(QUICK)
    s["lams"], s["Ts"] = list(s["lams"]), list(s["Ts"])
    s["seeds"] = list(range(s["seeds"]))
    return s


# --------------------------------------------------------------------------- cache
def clear_cache() -> None:
    """Forget every row cached in this process (files in a ``cache_dir`` stay)."""
    _CACHE.clear()


def cache_size() -> int:
    """Number of rows cached in this process."""
    return len(_CACHE)


def fingerprint(*tensors) -> str:
    """A short sha1 of tensors' shapes, dtypes and bytes (``None`` entries allowed)."""
    h = hashlib.sha1()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy())
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _cache_get(key: str, cache: bool, cache_dir):
    if not cache:
        return None
    if key in _CACHE:
        return _CACHE[key]
    if cache_dir is not None:
        path = Path(cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"
        if path.is_file():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                return None
            if stored.get("key") == key:
                _CACHE[key] = stored["row"]
                return stored["row"]
    return None


def _cache_put(key: str, row: dict, cache: bool, cache_dir) -> None:
    if not cache:
        return
    _CACHE[key] = row
    if cache_dir is not None:
        folder = Path(cache_dir)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "row": row}))
        tmp.replace(path)


# --------------------------------------------------------------------------- data helpers
def _splits(data):
    """(train, val, test-or-None) from Splits or a (train, val) pair."""
    if hasattr(data, "train"):
        return data.train, data.val, getattr(data, "test", None)
    if isinstance(data, (tuple, list)) and len(data) in (2, 3):
        return (*data, None)[:3]
    raise TypeError("data must be kdlib.data.Splits or a (train, val) pair of Splits; "
                    f"got {type(data).__name__}")


def _logits_map(teacher_logits) -> dict:
    """Accept a tensor (the training split's logits) or a mapping with 'train'."""
    if isinstance(teacher_logits, torch.Tensor):
        return {"train": teacher_logits.detach()}
    if isinstance(teacher_logits, dict) and "train" in teacher_logits:
        return {k: v.detach() for k, v in teacher_logits.items() if v is not None}
    raise TypeError("teacher_logits must be a tensor of the training split's logits or a dict "
                    f"with keys 'train' (and 'val', 'test'); got {type(teacher_logits).__name__}")


def teacher_outputs(teacher, data) -> dict:
    """The teacher's logits on every split: ``{"train": ..., "val": ..., "test": ...}``."""
    from kdlib.models import predict

    train, val, test = _splits(data)
    out = {"train": predict(teacher, train.x).detach()}
    if val is not None:
        out["val"] = predict(teacher, val.x).detach()
    if test is not None:
        out["test"] = predict(teacher, test.x).detach()
    return out


def _check_rows_match(name, logits, split):
    if logits is not None and split is not None and logits.shape[0] != len(split.y):
        raise ValueError(f"teacher_logits[{name!r}] has {logits.shape[0]} rows but the {name} "
                         f"split has {len(split.y)} examples; they must match")


def shrink(data, *, n_val: int | None = None, n_test: int | None = None):
    """A copy of ``data`` keeping only the first ``n_val`` validation and ``n_test`` test images.

    For quick smoke runs: the images kept are the same ones the full splits
    start with (``None`` keeps a split whole).
    """
    from kdlib.data import Split, Splits

    def cut(split, n, name):
        if n is None:
            return split
        n = check_int(name, n, low=1, high=len(split.y))
        return Split(split.x[:n], split.y[:n])

    return Splits(data.train, cut(data.val, n_val, "n_val"), cut(data.test, n_test, "n_test"),
                  data.classes, data.name)


def transfer_split(pool, *, n_labeled: int, n_transfer: int, seed: int = 0):
    """Split a training pool into a few labelled images and many "unlabelled" ones.

    Parameters
    ----------
    pool : kdlib.data.Splits
        Usually ``kdlib.data.load("fashion-mnist", seed=seed)`` (all 55,000 images).
    n_labeled, n_transfer : int
        Sizes of the labelled set (stratified, seeded) and of the transfer set
        (drawn from the rest; its labels are dropped).

    Returns
    -------
    labeled : kdlib.data.Splits
        ``train`` is the labelled subset; ``val`` and ``test`` are the pool's.
    x_transfer : torch.Tensor
        The transfer images (no labels).
    """
    from kdlib.data import Split, Splits, stratified_split

    n = len(pool.train.y)
    n_labeled = check_int("n_labeled", n_labeled, low=1, high=n)
    n_transfer = check_int("n_transfer", n_transfer, low=0, high=n - n_labeled)
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    y = pool.train.y.numpy()
    lab, rest = stratified_split(y, n_labeled, rng)
    extra = rng.permutation(rest)[:n_transfer]
    lab = np.sort(lab)
    train = Split(pool.train.x[lab], pool.train.y[lab])
    labeled = Splits(train, pool.val, pool.test, pool.classes, pool.name)
    return labeled, pool.train.x[np.sort(extra)]


# --------------------------------------------------------------------------- one student
def make_student(in_features: int, n_classes: int, *, hidden: int = 128, seed: int = 0):
    """``mlp([in_features, hidden, n_classes])`` with weights drawn after ``manual_seed(seed)``."""
    from kdlib.models import mlp

    torch.manual_seed(check_int("seed", seed, low=0))
    return mlp([in_features, check_int("hidden", hidden, low=1), n_classes])


def train_student(data, teacher_logits, *, lam: float, T: float, seed: int = 0,
                  epochs: int = STUDENT_DEFAULTS["epochs"], lr: float = STUDENT_DEFAULTS["lr"],
                  batch_size: int = STUDENT_DEFAULTS["batch_size"],
                  hidden: int = STUDENT_DEFAULTS["hidden"], transfer=None, n_classes=None,
                  callback=None):
    """Build a fresh student with ``seed`` and distil it; returns ``(student, history)``.

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on ``data.train`` (a dict needs key ``"train"``).
    lam, T : float
        λ in [0, 1] weights the hard-label CE; ``1 - lam`` weights ``T²·KL``.
    seed : int
        Seeds the initial weights and the batch order.
    transfer : (x, logits), optional
        Extra images without labels and the teacher's logits on them. They are
        appended to the training split and trained on the soft term only
        (λ = 0 there: their labels are unknown); the labelled images keep ``lam``.
    callback : callable, optional
        ``callback(history)`` after every epoch (live curves, progress bars).
    """
    from kdlib import train as ktrain
    from kdlib.data import Split
    from kdlib.losses import kd_loss, kd_terms

    lam = check_float("lam", lam, low=0.0, high=1.0)
    T = check_float("T", T, low=0.0, low_open=True)
    train, val, _ = _splits(data)
    logits = _logits_map(teacher_logits)
    _check_rows_match("train", logits["train"], train)
    in_features = int(np.prod(train.x.shape[1:]))
    k = int(n_classes or logits["train"].shape[1])
    student = make_student(in_features, k, hidden=hidden, seed=seed)
    kw = dict(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False,
              callback=callback)
    if transfer is None:
        history = ktrain.distill(student, None, (train, val), lam=lam, T=T,
                                 teacher_logits=logits["train"], **kw)
        return student, history
    x_u, logits_u = transfer
    if logits_u.shape[0] != len(x_u):
        raise ValueError(f"transfer has {len(x_u)} images but {logits_u.shape[0]} teacher "
                         "logits; they must match")
    n_lab = len(train.y)
    both = Split(torch.cat([train.x, x_u]),
                 torch.cat([train.y, torch.zeros(len(x_u), dtype=train.y.dtype)]))
    cache = torch.cat([logits["train"], logits_u.detach()])

    def loss_fn(out, y, idx, x):
        lab = idx < n_lab
        n_l, n = int(lab.sum()), len(idx)
        total = out.new_zeros(())
        if n_l:
            total = total + n_l * kd_loss(out[lab], cache[idx[lab]], y[lab], lam=lam, T=T)
        if n_l < n:  # unlabelled: soft term only; the placeholder labels are never used
            u = ~lab
            total = total + (n - n_l) * kd_terms(out[u], cache[idx[u]], y[u], T=T)[1]
        return total / n

    history = ktrain.fit(student, (both, val), loss_fn=loss_fn,
                         desc=f"distilling with transfer (lam={lam:g}, T={T:g})", **kw)
    return student, history


def _agree(logits, reference) -> float:
    return float((logits.argmax(1) == reference.argmax(1)).float().mean())


def evaluate(student, data, teacher_logits, *, test: bool = False) -> dict:
    """Validation accuracy and teacher agreement (and the same on test if ``test``)."""
    from kdlib.models import predict

    _, val, tst = _splits(data)
    logits = _logits_map(teacher_logits)
    out = {}
    v = predict(student, val.x)
    out["val_acc"] = float((v.argmax(1) == val.y).float().mean())
    out["agreement"] = _agree(v, logits["val"]) if "val" in logits else float("nan")
    if test:
        if tst is None:
            raise ValueError("test=True needs data with a test split (kdlib.data.Splits)")
        t = predict(student, tst.x)
        out["test_acc"] = float((t.argmax(1) == tst.y).float().mean())
        out["test_agreement"] = _agree(t, logits["test"]) if "test" in logits else float("nan")
    return out


def run_point(data, teacher_logits, *, lam: float, T: float, seed: int = 0,
              epochs: int = STUDENT_DEFAULTS["epochs"], lr: float = STUDENT_DEFAULTS["lr"],
              batch_size: int = STUDENT_DEFAULTS["batch_size"],
              hidden: int = STUDENT_DEFAULTS["hidden"], test: bool = False, transfer=None,
              cache: bool = True, cache_dir=None, fingerprints=None) -> dict:
    """Train (or fetch from the cache) one student and return its row.

    The cache key is the full configuration: λ, T (ignored when λ = 1, where
    it has no effect), seed, epochs, lr, batch size, width, ``test``, and
    fingerprints of the data, of the teacher's logits and of the transfer set.
    A hit returns a copy of the stored row, so callers may edit rows freely.

    Parameters
    ----------
    data, teacher_logits : see :func:`train_student`
        ``teacher_logits`` as a dict with ``"val"`` (and ``"test"``) also gives
        the agreement columns.
    test : bool
        Also measure the test split (``test_acc``, ``test_agreement``).
    cache : bool
        Use and fill the in-process cache.
    cache_dir : path, optional
        Also keep one JSON file per row there (survives a kernel restart).
    fingerprints : dict, optional
        Precomputed ``{"data": ..., "teacher": ..., "transfer": ...}`` (what
        :func:`grid` passes to avoid hashing the same tensors per point).

    Returns
    -------
    dict
        One row (see the module docstring).
    """
    lam = check_float("lam", lam, low=0.0, high=1.0)
    T = check_float("T", T, low=0.0, low_open=True)
    seed = check_int("seed", seed, low=0)
    epochs = check_int("epochs", epochs, low=1)
    lr = check_float("lr", lr, low=0.0, low_open=True)
    batch_size = check_int("batch_size", batch_size, low=1)
    hidden = check_int("hidden", hidden, low=1)
    train, val, tst = _splits(data)
    logits = _logits_map(teacher_logits)
    for name, split in (("train", train), ("val", val), ("test", tst)):
        _check_rows_match(name, logits.get(name), split)
    fp = dict(fingerprints or {})
    if "data" not in fp:
        fp["data"] = fingerprint(train.x, train.y, val.x, val.y,
                                 *((tst.x, tst.y) if test and tst is not None else ()))
    if "teacher" not in fp:
        fp["teacher"] = fingerprint(*(logits.get(k) for k in ("train", "val", "test")))
    if "transfer" not in fp:
        fp["transfer"] = "" if transfer is None else fingerprint(*transfer)
    key = json.dumps({"v": _KEY_VERSION, "lam": lam, "T": None if lam == BASELINE_LAM else T,
                      "seed": seed, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                      "hidden": hidden, "test": bool(test), **fp}, sort_keys=True)
    hit = _cache_get(key, cache, cache_dir)
    if hit is not None:
        row = json.loads(json.dumps(hit))
        row["T"] = T
        return row
    t0 = time.perf_counter()
    student, history = train_student(data, logits, lam=lam, T=T, seed=seed, epochs=epochs, lr=lr,
                                     batch_size=batch_size, hidden=hidden, transfer=transfer)
    metrics = evaluate(student, data, logits, test=test)
    row = {"lam": lam, "T": T, "seed": seed, **metrics, "epochs": epochs, "lr": lr,
           "batch_size": batch_size, "hidden": hidden, "n_train": len(train.y),
           "n_transfer": 0 if transfer is None else len(transfer[0]),
           "seconds": round(time.perf_counter() - t0, 4),
           "history": {"epoch_loss": [float(v) for v in history.epoch_loss],
                       "val_acc": [float(v) for v in history.val_acc]}}
    _cache_put(key, json.loads(json.dumps(row)), cache, cache_dir)
    return row


def grid(data, teacher_logits, *, lams, Ts, seeds=(0,), epochs: int = STUDENT_DEFAULTS["epochs"],
         lr: float = STUDENT_DEFAULTS["lr"], batch_size: int = STUDENT_DEFAULTS["batch_size"],
         hidden: int = STUDENT_DEFAULTS["hidden"], test: bool = False, transfer=None,
         cache: bool = True, cache_dir=None, progress: bool = False) -> list[dict]:
    """Train one student per (λ, T, seed) and return their rows (λ-major order).

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on ``data.train``; a dict ``{"train", "val",
        "test"}`` (see :func:`teacher_outputs`) also gives agreement columns.
    lams, Ts : sequence of float
        λ in [0, 1] and T > 0 values; every combination is trained.
    seeds : int or sequence of int
        An int ``n`` means ``range(n)``.
    epochs, lr, batch_size, hidden : student recipe (see :data:`STUDENT_DEFAULTS`)
    test : bool
        Also measure the test split.
    transfer : (x, logits), optional
        Unlabelled transfer images (see :func:`train_student`).
    cache, cache_dir : see :func:`run_point`
    progress : bool
        Show a tqdm bar over the points.

    Returns
    -------
    list of dict
        One row per student.
    """
    lams = [check_float(f"lams[{i}]", v, low=0.0, high=1.0) for i, v in enumerate(lams)]
    Ts = [check_float(f"Ts[{i}]", v, low=0.0, low_open=True) for i, v in enumerate(Ts)]
    if not lams or not Ts:
        raise ValueError(f"lams and Ts must be non-empty; got lams={lams!r}, Ts={Ts!r}")
    seeds = _seed_list(seeds)
    train, val, tst = _splits(data)
    logits = _logits_map(teacher_logits)
    fp = {"data": fingerprint(train.x, train.y, val.x, val.y,
                              *((tst.x, tst.y) if test and tst is not None else ())),
          "teacher": fingerprint(*(logits.get(k) for k in ("train", "val", "test"))),
          "transfer": "" if transfer is None else fingerprint(*transfer)}
    points = [(lam, T, s) for lam in lams for T in Ts for s in seeds]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(points), desc="grid", leave=False)
    rows = []
    try:
        for lam, T, s in points:
            rows.append(run_point(data, logits, lam=lam, T=T, seed=s, epochs=epochs, lr=lr,
                                  batch_size=batch_size, hidden=hidden, test=test,
                                  transfer=transfer, cache=cache, cache_dir=cache_dir,
                                  fingerprints=fp))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    return rows


def baseline(data, teacher_logits, *, seeds=(0,), **kwargs) -> list[dict]:
    """Rows of the baseline student (λ = 1: hard labels only) for each seed.

    ``teacher_logits`` is still needed for the agreement columns (and is
    otherwise unused: at λ = 1 the KD loss is the plain cross-entropy).
    """
    return grid(data, teacher_logits, lams=[BASELINE_LAM], Ts=[1.0], seeds=seeds, **kwargs)


def _seed_list(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(check_int("seeds", seeds, low=1)))
    seeds = [check_int(f"seeds[{i}]", s, low=0) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return seeds


# --------------------------------------------------------------------------- k-fold
def kfold_indices(y, k: int, *, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint, stratified folds covering ``range(len(y))``.

    Each class's indices are shuffled (seeded) and dealt round-robin, so every
    fold gets the class proportions of ``y`` (±1 image). Each fold is sorted.
    """
    y = np.asarray(torch.as_tensor(y).cpu().numpy() if isinstance(y, torch.Tensor) else y)
    k = check_int("k", k, low=2, high=max(2, len(y)))
    rng = np.random.default_rng(check_int("seed", seed, low=0))
    folds: list[list] = [[] for _ in range(k)]
    offset = 0
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(int(i))
        offset = (offset + len(idx)) % k  # keep fold sizes balanced across classes
    return [np.sort(np.array(f, dtype=np.int64)) for f in folds]


@dataclass
class KFoldResult:
    """What :func:`kfold_select` measured.

    ``candidates``: one dict per (λ, T) with ``scores`` (one accuracy per
    fold), ``mean`` and ``sd`` (sample standard deviation over folds);
    ``chosen``: the candidate with the highest mean (the first one on ties);
    ``folds``: the held-out index arrays; ``rows``: every fold's row (with a
    ``fold`` column).
    """

    candidates: list
    chosen: dict
    folds: list
    rows: list = field(default_factory=list)
    k: int = 0

    def table(self) -> str:
        """The candidates as aligned text, the chosen one marked with ``<``."""
        lines = [f"{'lam':>5} {'T':>4}   mean ± sd over {self.k} folds   fold scores"]
        for c in self.candidates:
            mark = "  <- chosen" if c is self.chosen else ""
            scores = " ".join(f"{s:.3f}" for s in c["scores"])
            lines.append(f"{c['lam']:5.2f} {c['T']:4g}   {c['mean']:.4f} ± {c['sd']:.4f}"
                         f"          {scores}{mark}")
        return "\n".join(lines)


def kfold_select(x, y, teacher_logits, lams, Ts, *, k: int = 5, seed: int = 0,
                 epochs: int = STUDENT_DEFAULTS["epochs"], lr: float = STUDENT_DEFAULTS["lr"],
                 batch_size: int = STUDENT_DEFAULTS["batch_size"],
                 hidden: int = STUDENT_DEFAULTS["hidden"], cache: bool = True,
                 cache_dir=None) -> KFoldResult:
    """Choose λ (and T) by k-fold cross-validation on a training set.

    For every candidate (λ, T) and every fold, a student (seed ``seed``) is
    distilled on the other ``k - 1`` folds and scored by its accuracy on the
    held-out fold. The candidate with the highest mean score wins. Neither the
    validation nor the test split is touched.

    Parameters
    ----------
    x, y : Tensor
        The training images and labels.
    teacher_logits : Tensor
        The teacher's logits on ``x`` (same order).
    lams, Ts : sequence of float
        The candidates are all (λ, T) pairs; λ = 1 (the baseline, where T has
        no effect) appears once, with the first T.
    k : int
        Number of folds (stratified, see :func:`kfold_indices`).
    seed : int
        Seeds the folds and every student.

    Returns
    -------
    KFoldResult
    """
    from kdlib.data import Split

    x, y = torch.as_tensor(x), torch.as_tensor(y)
    logits = teacher_logits.detach() if isinstance(teacher_logits, torch.Tensor) else \
        torch.as_tensor(teacher_logits)
    if not (len(x) == len(y) == len(logits)):
        raise ValueError(f"x, y and teacher_logits must have the same length; got {len(x)}, "
                         f"{len(y)} and {len(logits)}")
    lams = [check_float(f"lams[{i}]", v, low=0.0, high=1.0) for i, v in enumerate(lams)]
    Ts = [check_float(f"Ts[{i}]", v, low=0.0, low_open=True) for i, v in enumerate(Ts)]
    if not lams or not Ts:
        raise ValueError(f"lams and Ts must be non-empty; got lams={lams!r}, Ts={Ts!r}")
    k = check_int("k", k, low=2, high=len(y))
    folds = kfold_indices(y, k, seed=seed)
    pairs = []
    for lam in lams:
        for T in (Ts[:1] if lam == BASELINE_LAM else Ts):
            if (lam, T) not in pairs:
                pairs.append((lam, T))
    scores = {p: [] for p in pairs}
    rows = []
    everything = np.arange(len(y))
    for i, held in enumerate(folds):
        rest = np.setdiff1d(everything, held)
        data = (Split(x[rest], y[rest]), Split(x[held], y[held]))
        fold_logits = {"train": logits[rest], "val": logits[held]}
        fp = {"data": fingerprint(x[rest], y[rest], x[held], y[held]),
              "teacher": fingerprint(logits[rest], logits[held], None), "transfer": ""}
        for lam, T in pairs:
            row = run_point(data, fold_logits, lam=lam, T=T, seed=seed, epochs=epochs, lr=lr,
                            batch_size=batch_size, hidden=hidden, cache=cache,
                            cache_dir=cache_dir, fingerprints=fp)
            row["fold"] = i
            rows.append(row)
            scores[(lam, T)].append(row["val_acc"])
    candidates = []
    for lam, T in pairs:
        s = scores[(lam, T)]
        candidates.append({"lam": lam, "T": T, "scores": s, "mean": float(np.mean(s)),
                           "sd": _sd(s)})
    chosen = candidates[int(np.argmax([c["mean"] for c in candidates]))]
    return KFoldResult(candidates, chosen, folds, rows, k)


# --------------------------------------------------------------------------- summaries
def _sd(values) -> float:
    """Sample standard deviation (``ddof=1``); ``nan`` for fewer than two values."""
    v = np.asarray(values, dtype=float)
    return float(v.std(ddof=1)) if len(v) > 1 else float("nan")


def summarize(rows, by=("lam", "T"), metric: str = "val_acc") -> list[dict]:
    """Mean, sample standard deviation and count of ``metric`` per group.

    Parameters
    ----------
    rows : list of dict
    by : str or sequence of str
        Columns that define a group.
    metric : str
        The column to summarise.

    Returns
    -------
    list of dict
        ``{<by columns>..., "mean", "sd", "n"}`` per group, in order of first
        appearance. ``sd`` is ``nan`` for groups of one row.
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    groups: dict[tuple, list] = {}
    for i, r in enumerate(rows):
        missing = [c for c in (*by, metric) if c not in r]
        if missing:
            raise ValueError(f"rows[{i}] has no column {missing[0]!r}; it has {sorted(r)}")
        groups.setdefault(tuple(r[c] for c in by), []).append(float(r[metric]))
    return [{**dict(zip(by, key)), "mean": float(np.mean(v)), "sd": _sd(v), "n": len(v)}
            for key, v in groups.items()]


def select_best(rows, *, metric: str = "val_acc", by=("lam", "T")) -> dict:
    """The group of ``summarize(rows, by, metric)`` with the highest mean (first on ties)."""
    summary = summarize(rows, by, metric)
    if not summary:
        raise ValueError("rows is empty")
    return summary[int(np.argmax([s["mean"] for s in summary]))]


def flatness(rows, *, metric: str = "val_acc") -> dict:
    """How flat the optimum of a λ × T grid is, compared with the seed noise.

    Returns a dict with ``best`` (the best group of ``summarize``), ``best_mean``,
    ``median`` (median of the group means), ``gap_to_median``, ``neighbours``
    (means of the grid cells next to the best one along λ or T),
    ``gap_to_neighbours`` (best minus the best neighbour; ``nan`` without
    neighbours) and ``seed_sd`` (median of the groups' seed standard deviations).
    """
    summary = summarize(rows, ("lam", "T"), metric)
    if not summary:
        raise ValueError("rows is empty")
    best = summary[int(np.argmax([s["mean"] for s in summary]))]
    lams = sorted({s["lam"] for s in summary})
    Ts = sorted({s["T"] for s in summary})
    means = {(s["lam"], s["T"]): s["mean"] for s in summary}
    i, j = lams.index(best["lam"]), Ts.index(best["T"])
    neighbours = []
    for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        if 0 <= i + di < len(lams) and 0 <= j + dj < len(Ts):
            key = (lams[i + di], Ts[j + dj])
            if key in means:
                neighbours.append(means[key])
    sds = [s["sd"] for s in summary if not math.isnan(s["sd"])]
    median = float(np.median([s["mean"] for s in summary]))
    return {"best": best, "best_mean": best["mean"], "median": median,
            "gap_to_median": best["mean"] - median, "neighbours": neighbours,
            "gap_to_neighbours": best["mean"] - max(neighbours) if neighbours else float("nan"),
            "seed_sd": float(np.median(sds)) if sds else float("nan")}


def selection_optimism(rows, honest, *, metric: str = "test_acc") -> dict:
    """What choosing on the test set would have reported, against the honest number.

    Parameters
    ----------
    rows : list of dict
        Grid rows with ``metric`` (``grid(..., test=True)``).
    honest : dict or (lam, T)
        The point chosen without looking at the test set (by validation or
        cross-validation).

    Returns
    -------
    dict
        ``honest_point``, ``honest`` (mean test accuracy over its seeds),
        ``peeked_point`` and ``peeked`` (the grid point with the best *mean
        test* accuracy), ``best_run`` (the best single row's test accuracy)
        and ``best_run_row``.
    """
    lam, T = (honest["lam"], honest["T"]) if isinstance(honest, dict) else honest
    summary = summarize(rows, ("lam", "T"), metric)
    mine = [s for s in summary if s["lam"] == lam and (s["T"] == T or lam == BASELINE_LAM)]
    if not mine:
        raise ValueError(f"the honest point (lam={lam}, T={T}) is not among the rows")
    peeked = summary[int(np.argmax([s["mean"] for s in summary]))]
    best_row = max(rows, key=lambda r: r[metric])
    return {"honest_point": (lam, T), "honest": mine[0]["mean"],
            "peeked_point": (peeked["lam"], peeked["T"]), "peeked": peeked["mean"],
            "best_run": float(best_row[metric]), "best_run_row": best_row}


def beats_by_spread(better, worse) -> tuple[bool, float]:
    """Whether ``mean(better) - mean(worse)`` exceeds the seed spread ``sd(better) + sd(worse)``.

    Returns ``(verdict, margin_in_sds)`` where ``margin_in_sds`` is the
    difference of means divided by that spread (``nan`` with fewer than two
    values on a side, in which case the verdict is ``False``).
    """
    a, b = np.asarray(better, float), np.asarray(worse, float)
    spread = _sd(a) + _sd(b)
    diff = float(a.mean() - b.mean())
    if math.isnan(spread):
        return False, float("nan")
    if spread == 0:
        return diff > 0, float("inf") if diff > 0 else float("nan")
    return diff > spread, diff / spread


def format_pct(values) -> str:
    """``"84.89 ± 0.18 %"``: mean ± sample sd of accuracies, in percent (no sd for one value)."""
    v = np.asarray(values, float)
    if v.size == 0:
        raise ValueError("values is empty")
    if v.size == 1:
        return f"{100 * v.mean():.2f} %"
    return f"{100 * v.mean():.2f} ± {100 * v.std(ddof=1):.2f} %"


def results_table(*, teacher_acc: float, baseline_accs, distilled_accs,
                  n_test: int = 10000) -> list[dict]:
    """Hinton et al. (2015)-style results: test errors out of ``n_test`` and accuracy.

    Returns three rows (teacher, student from scratch, distilled student) with
    ``model``, ``errors`` / ``errors_sd`` (mean / sd over seeds of the number of
    wrong test images), ``acc`` / ``acc_sd``, ``n`` (seeds) and, for the distilled
    student, ``gap_closed``: the fraction of the teacher–baseline accuracy gap it
    closes.
    """
    n_test = check_int("n_test", n_test, low=1)

    def row(name, accs):
        a = np.asarray(accs, float)
        return {"model": name, "errors": float(np.mean((1 - a) * n_test)),
                "errors_sd": _sd((1 - a) * n_test), "acc": float(a.mean()), "acc_sd": _sd(a),
                "n": len(a)}

    t = row("teacher (cnn, 55k images)", [teacher_acc])
    b = row("student from scratch (λ=1)", baseline_accs)
    d = row("distilled student", distilled_accs)
    gap = t["acc"] - b["acc"]
    d["gap_closed"] = (d["acc"] - b["acc"]) / gap if gap > 0 else float("nan")
    return [t, b, d]


def format_results(table) -> str:
    """Aligned text of :func:`results_table`'s rows."""
    lines = [f"{'model':30s} {'test errors':>17s} {'accuracy':>17s}  gap closed"]
    for r in table:
        err = f"{r['errors']:.0f}" + ("" if math.isnan(r["errors_sd"]) else f" ± {r['errors_sd']:.0f}")
        acc = f"{100 * r['acc']:.2f} %" + ("" if math.isnan(r["acc_sd"])
                                          else f" ± {100 * r['acc_sd']:.2f}")
        gap = f"{100 * r['gap_closed']:.0f} %" if "gap_closed" in r and not math.isnan(
            r["gap_closed"]) else ""
        lines.append(f"{r['model']:30s} {err:>17s} {acc:>17s}  {gap}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- CSV
def to_csv(rows, path) -> Path:
    """Write rows to a CSV file (columns in first-seen order; nested values as JSON)."""
    path = Path(path)
    columns: list[str] = []
    for r in rows:
        columns += [c for c in r if c not in columns]
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({c: json.dumps(v) if isinstance(v, (dict, list, tuple)) else
                        ("" if v is None else v) for c, v in r.items()})
    return path


def _parse_cell(text: str):
    if text == "":
        return None
    if text[0] in "[{":
        return json.loads(text)
    if text in ("True", "False"):
        return text == "True"
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv(path) -> list[dict]:
    """Read rows written by :func:`to_csv` (numbers, booleans and JSON parsed back)."""
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [{k: _parse_cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
