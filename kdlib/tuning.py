"""λ / T tuning: grids over (λ, T, seed) with a row cache, k-fold selection.

Every point of a grid trains a fresh small student (``kdlib.models.mlp``) with
:func:`kdlib.train.distill` on **cached** teacher logits, so a student costs a
fraction of a second per epoch. A point is fully determined by its
configuration: the student's initial weights come from ``torch.manual_seed(seed)``
right before it is built, and ``fit`` seeds the batch order with the same seed.
That makes results cacheable: :func:`run_point` keeps every row it produced in an
in-process dictionary keyed by the full configuration (and, with ``cache_dir``, in
one JSON file per row), so asking for the same grid again costs nothing.

The same seeding makes students independent of where they train: :func:`run_points`
trains many in worker processes (or on any ``concurrent.futures`` executor, e.g. Dask's)
and gets the rows that this process would have computed, bit for bit, as long as the workers
fit the cores with this process's thread count (:func:`worker_threads` says when they do not).

Rows are plain dictionaries ("tidy" data, one per trained student)::

    {"lam": 0.5, "T": 4.0, "seed": 0, "val_acc": 0.848, "agreement": 0.91,
     "test_acc": 0.842, "test_agreement": 0.90,              # only with test=True
     "epochs": 20, "lr": 0.03, "batch_size": 128, "hidden": 128, "n_train": 2000,
     "n_transfer": 0, "seconds": 0.6,
     "history": {"epoch_loss": [...], "val_acc": [...]}}      # per epoch

``agreement`` is the fraction of validation images on which student and teacher
predict the same class. ``lam`` weights the hard-label term: ``lam = 1``
(:data:`kdlib.losses.HARD_ONLY_LAM`) is the **baseline**, a student trained on
labels only; ``T`` does not act there, so all ``T`` share one run
(:func:`kdlib.losses.effective_T`). Summaries of rows (mean ± sd per group, CSV)
are :mod:`kdlib.results`'s.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import json
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from kdlib import train as _train
from kdlib._checks import check_float, check_int
from kdlib.data import Split, Splits, stratified_split, unpack_splits
from kdlib.experiments import GroupStudent, train_group
from kdlib.losses import HARD_ONLY_LAM, effective_T, kd_loss, kd_terms, same_setting
from kdlib.metrics import accuracy_from_logits, agreement_from_logits
from kdlib.models import mlp, predict
from kdlib.results import sample_sd, summarize

__all__ = [
    "STUDENT_DEFAULTS", "clear_cache", "cache_size", "fingerprint", "teacher_outputs",
    "make_student", "train_student", "evaluate", "run_point", "run_points", "default_jobs", "worker_threads",
    "shutdown_pool", "train_grid", "baseline",
    "rows_at", "kfold_indices", "kfold_select", "KFoldResult", "flatness", "select_best",
    "selection_optimism", "shrink", "transfer_split",
]

STUDENT_DEFAULTS = {"hidden": 128, "epochs": 20, "lr": 3e-2, "batch_size": 128}
"""The default student recipe: ``mlp([in, 128, classes])``, 20 epochs of Adam + OneCycle
(peak learning rate 0.03), batches of 128."""

_CACHE: dict[str, dict] = {}
_KEY_VERSION = 1


# --------------------------------------------------------------------------- cache
def clear_cache() -> None:
    """Forget every row cached in this process (files in a ``cache_dir`` stay).

    Returns
    -------
    None
    """
    _CACHE.clear()


def cache_size() -> int:
    """Number of rows cached in this process.

    Returns
    -------
    int
    """
    return len(_CACHE)


def fingerprint(*tensors) -> str:
    """A short sha1 of tensors' shapes, dtypes and bytes.

    Parameters
    ----------
    *tensors : Tensor, array or None
        ``None`` entries are allowed (hashed as a marker).

    Returns
    -------
    str
        16 hexadecimal digits.
    """
    h = hashlib.sha1()
    for t in tensors:
        if t is None:
            h.update(b"none")
            continue
        a = np.ascontiguousarray(torch.as_tensor(t).detach().cpu().numpy())
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def _cache_path(cache_dir, key: str) -> Path:
    return Path(cache_dir) / f"{hashlib.sha1(key.encode()).hexdigest()[:20]}.json"


def _cache_get(key: str, cache: bool, cache_dir):
    if not cache:
        return None
    if key in _CACHE:
        return _CACHE[key]
    if cache_dir is not None:
        path = _cache_path(cache_dir, key)
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
        path = _cache_path(cache_dir, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"key": key, "row": row}))
        tmp.replace(path)


# --------------------------------------------------------------------------- data helpers
def _train_val_test(data):
    """``(train, val, test or None)`` of a ``data`` argument that must have a validation split."""
    train, val, test = unpack_splits(data)
    if val is None:
        raise ValueError("data needs a validation split (students are scored on it); give "
                         "kdlib.data.Splits or a (train, val) pair, not a single Split")
    return train, val, test


def _logits_map(teacher_logits) -> dict:
    """Accept a tensor (the training split's logits) or a mapping with 'train'."""
    if isinstance(teacher_logits, torch.Tensor):
        return {"train": teacher_logits.detach()}
    if isinstance(teacher_logits, dict) and "train" in teacher_logits:
        return {k: v.detach() for k, v in teacher_logits.items() if v is not None}
    raise TypeError("teacher_logits must be a tensor of the training split's logits or a dict "
                    f"with keys 'train' (and 'val', 'test'); got {type(teacher_logits).__name__}")


def teacher_outputs(teacher, data) -> dict:
    """The teacher's logits on every split of ``data``.

    Parameters
    ----------
    teacher : nn.Module
        Run in evaluation mode, without gradients (:func:`kdlib.models.predict`).
    data : kdlib.data.Splits or (train, val[, test]) tuple

    Returns
    -------
    dict
        ``{"train": ..., "val": ..., "test": ...}`` (keys only for the splits present).
    """
    splits = dict(zip(("train", "val", "test"), unpack_splits(data)))
    return {name: predict(teacher, split.x).detach() for name, split in splits.items()
            if split is not None}


def _check_rows_match(name, logits, split):
    if logits is not None and split is not None and logits.shape[0] != len(split.y):
        raise ValueError(f"teacher_logits[{name!r}] has {logits.shape[0]} rows but the {name} "
                         f"split has {len(split.y)} examples; they must match")


def shrink(data, *, n_val: int | None = None, n_test: int | None = None):
    """A copy of ``data`` keeping only the first ``n_val`` validation and ``n_test`` test images.

    For quick smoke runs: the images kept are the same ones the full splits
    start with.

    Parameters
    ----------
    data : kdlib.data.Splits
    n_val, n_test : int or None
        Images to keep; ``None`` keeps a split whole.

    Returns
    -------
    kdlib.data.Splits
        Same ``train``, ``classes`` and ``name``.
    """
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
    seed : int
        Seeds both draws.

    Returns
    -------
    labeled : kdlib.data.Splits
        ``train`` is the labelled subset; ``val`` and ``test`` are the pool's.
    x_transfer : torch.Tensor
        The transfer images (no labels).
    """
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
def make_student(in_features: int, n_classes: int, *, hidden: int = STUDENT_DEFAULTS["hidden"],
                 seed: int = 0):
    """A fresh student ``mlp([in_features, hidden, n_classes])`` drawn after ``manual_seed(seed)``.

    Parameters
    ----------
    in_features, n_classes : int
    hidden : int
        Width of the hidden layer.
    seed : int
        Seeds the initial weights.

    Returns
    -------
    nn.Module
    """
    torch.manual_seed(check_int("seed", seed, low=0))
    return mlp([in_features, check_int("hidden", hidden, low=1), n_classes])


def train_student(data, teacher_logits, *, lam: float, T: float, seed: int = 0,
                  epochs: int = STUDENT_DEFAULTS["epochs"], lr: float = STUDENT_DEFAULTS["lr"],
                  batch_size: int = STUDENT_DEFAULTS["batch_size"],
                  hidden: int = STUDENT_DEFAULTS["hidden"], transfer=None, n_classes=None,
                  callback=None):
    """Build a fresh student with ``seed`` and distil it.

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on ``data.train`` (a dict needs key ``"train"``).
    lam, T : float
        λ in [0, 1] weights the hard-label CE; ``1 - lam`` weights ``T²·KL``.
    seed : int
        Seeds the initial weights and the batch order.
    epochs, lr, batch_size, hidden :
        The student recipe (see :data:`STUDENT_DEFAULTS`).
    transfer : (x, logits), optional
        Extra images without labels and the teacher's logits on them. They are
        appended to the training split and trained on the soft term only
        (λ = 0 there: their labels are unknown); the labelled images keep ``lam``.
    n_classes : int, optional
        Default: the width of the teacher's logits.
    callback : callable, optional
        ``callback(history)`` after every epoch (live curves, progress bars).

    Returns
    -------
    student : nn.Module
    history : kdlib.train.History
    """
    lam = check_float("lam", lam, low=0.0, high=1.0)
    T = check_float("T", T, low=0.0, low_open=True)
    train, val, _ = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    _check_rows_match("train", logits["train"], train)
    in_features = int(np.prod(train.x.shape[1:]))
    k = int(n_classes or logits["train"].shape[1])
    student = make_student(in_features, k, hidden=hidden, seed=seed)
    kw = dict(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, progress=False,
              callback=callback)
    if transfer is None:
        history = _train.distill(student, None, (train, val), lam=lam, T=T,
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

    history = _train.fit(student, (both, val), loss_fn=loss_fn,
                         desc=f"distilling with transfer (lam={lam:g}, T={T:g})", **kw)
    return student, history


def evaluate(student, data, teacher_logits, *, test: bool = False) -> dict:
    """Validation accuracy and agreement with the teacher (and the same on test).

    Parameters
    ----------
    student : nn.Module
    data : kdlib.data.Splits or (train, val[, test]) tuple
    teacher_logits : Tensor or dict
        A dict with ``"val"`` (``"test"``) gives the agreement; otherwise it is ``nan``.
    test : bool
        Also measure the test split.

    Returns
    -------
    dict
        ``val_acc``, ``agreement`` and, with ``test``, ``test_acc``, ``test_agreement``.
    """
    _, val, tst = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    v = predict(student, val.x)
    out = {"val_acc": accuracy_from_logits(v, val.y),
           "agreement": agreement_from_logits(v, logits["val"]) if "val" in logits
           else float("nan")}
    if test:
        if tst is None:
            raise ValueError("test=True needs data with a test split (kdlib.data.Splits)")
        t = predict(student, tst.x)
        out["test_acc"] = accuracy_from_logits(t, tst.y)
        out["test_agreement"] = agreement_from_logits(t, logits["test"]) if "test" in logits \
            else float("nan")
    return out


def run_point(data, teacher_logits, *, lam: float, T: float, seed: int = 0,
              epochs: int = STUDENT_DEFAULTS["epochs"], lr: float = STUDENT_DEFAULTS["lr"],
              batch_size: int = STUDENT_DEFAULTS["batch_size"],
              hidden: int = STUDENT_DEFAULTS["hidden"], test: bool = False, transfer=None,
              cache: bool = True, cache_dir=None, fingerprints=None) -> dict:
    """Train (or fetch from the cache) one student and return its row.

    The cache key is the full configuration: λ, the effective T
    (:func:`kdlib.losses.effective_T`: none at λ = 1, where T has no effect),
    seed, epochs, lr, batch size, width, ``test``, and fingerprints of the data,
    of the teacher's logits and of the transfer set. A hit returns a copy of the
    stored row, so callers may edit rows freely.

    Parameters
    ----------
    data, teacher_logits : see :func:`train_student`
        ``teacher_logits`` as a dict with ``"val"`` (and ``"test"``) also gives
        the agreement columns.
    lam, T, seed, epochs, lr, batch_size, hidden, transfer : see :func:`train_student`
    test : bool
        Also measure the test split (``test_acc``, ``test_agreement``).
    cache : bool
        Use and fill the in-process cache.
    cache_dir : path, optional
        Also keep one JSON file per row there (survives a kernel restart).
    fingerprints : dict, optional
        Precomputed ``{"data": ..., "teacher": ..., "transfer": ...}`` (what
        :func:`train_grid` passes to avoid hashing the same tensors per point).

    Returns
    -------
    dict
        One row (see the module docstring).
    """
    key, args = _point_key(data, teacher_logits, lam=lam, T=T, seed=seed, epochs=epochs, lr=lr,
                           batch_size=batch_size, hidden=hidden, test=test, transfer=transfer,
                           fingerprints=fingerprints)
    hit = _cache_get(key, cache, cache_dir)
    if hit is not None:
        return _row_copy(hit, T=args["T"])
    row = _train_row(args)
    _cache_put(key, json.loads(json.dumps(row)), cache, cache_dir)
    return row


def _point_key(data, teacher_logits, *, lam, T, seed, epochs, lr, batch_size, hidden, test,
               transfer, fingerprints) -> tuple[str, dict]:
    """Validate one point; return its cache key and the arguments of :func:`_train_row`."""
    lam = check_float("lam", lam, low=0.0, high=1.0)
    T = check_float("T", T, low=0.0, low_open=True)
    seed = check_int("seed", seed, low=0)
    epochs = check_int("epochs", epochs, low=1)
    lr = check_float("lr", lr, low=0.0, low_open=True)
    batch_size = check_int("batch_size", batch_size, low=1)
    hidden = check_int("hidden", hidden, low=1)
    train, val, tst = _train_val_test(data)
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
    key = json.dumps({"v": _KEY_VERSION, "lam": lam, "T": effective_T(lam, T),
                      "seed": seed, "epochs": epochs, "lr": lr, "batch_size": batch_size,
                      "hidden": hidden, "test": bool(test), **fp}, sort_keys=True)
    return key, {"data": data, "logits": logits, "lam": lam, "T": T, "seed": seed,
                 "epochs": epochs, "lr": lr, "batch_size": batch_size, "hidden": hidden,
                 "test": bool(test), "transfer": transfer}


def _row_copy(row: dict, *, T: float) -> dict:
    """A deep copy of a cached row, with the ``T`` that was asked for (λ = 1 rows share one run)."""
    row = json.loads(json.dumps(row))
    row["T"] = T
    return row


def _train_row(args: dict) -> dict:
    """Train one student from :func:`_point_key`'s arguments and measure it (no cache)."""
    data, logits, test, transfer = args["data"], args["logits"], args["test"], args["transfer"]
    t0 = time.perf_counter()
    student, history = train_student(data, logits, lam=args["lam"], T=args["T"], seed=args["seed"],
                                     epochs=args["epochs"], lr=args["lr"],
                                     batch_size=args["batch_size"], hidden=args["hidden"],
                                     transfer=transfer)
    return _row(args, evaluate(student, data, logits, test=test), history, time.perf_counter() - t0)


def _row(args: dict, metrics: dict, history, seconds: float) -> dict:
    """The row of one trained student (see the module docstring)."""
    transfer = args["transfer"]
    return {"lam": args["lam"], "T": args["T"], "seed": args["seed"], **metrics,
            "epochs": args["epochs"], "lr": args["lr"], "batch_size": args["batch_size"],
            "hidden": args["hidden"], "n_train": len(_train_val_test(args["data"])[0].y),
            "n_transfer": 0 if transfer is None else len(transfer[0]),
            "seconds": round(seconds, 4),
            "history": {"epoch_loss": [float(v) for v in history.epoch_loss],
                        "val_acc": [float(v) for v in history.val_acc]}}


# ------------------------------------------------------------------ students in lockstep
def _lockstep_key(args: dict):
    """What students must share to train in one lockstep group (None: this one cannot)."""
    if args["transfer"] is not None:
        return None
    train, val, _ = _train_val_test(args["data"])
    return (args["hidden"], args["epochs"], args["batch_size"], len(train.y), tuple(train.x.shape[1:]),
            int(args["logits"]["train"].shape[1]), id(val.x), id(val.y))


def _train_rows_lockstep(points: list[dict]) -> list[dict]:
    """Rows of students that share a :func:`_lockstep_key`, trained as one group
    (:func:`kdlib.experiments.train_group`); each keeps its own training split, teacher
    logits, λ, T, seed and learning rate."""
    parts, students = {}, []
    for args in points:  # the pool: every distinct (training split, teacher logits) once
        train = _train_val_test(args["data"])[0]
        where = (id(train.x), id(train.y), id(args["logits"]["train"]))
        if where not in parts:
            parts[where] = (sum(len(p[1].y) for p in parts.values()), train, args["logits"]["train"])
        start = parts[where][0]
        students.append(GroupStudent(seed=args["seed"], lam=args["lam"], T=args["T"], lr=args["lr"],
                                     rows=tuple(range(start, start + len(train.y)))))
    pool = Split(torch.cat([p[1].x for p in parts.values()]), torch.cat([p[1].y for p in parts.values()]))
    logits = torch.cat([p[2] for p in parts.values()])
    first, val, _ = _train_val_test(points[0]["data"])
    sizes = [int(np.prod(first.x.shape[1:])), points[0]["hidden"], int(logits.shape[1])]
    t0 = time.perf_counter()
    trained = train_group(sizes, pool, students, val=val, teacher_logits=logits,
                          epochs=points[0]["epochs"], batch_size=points[0]["batch_size"])
    seconds = (time.perf_counter() - t0) / len(points)
    return [_row(args, evaluate(model, args["data"], args["logits"], test=args["test"]), history, seconds)
            for args, (model, history) in zip(points, trained)]


# ------------------------------------------------------------------ parallel students
_POOL: dict = {}


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def default_jobs(threads: int | None = None) -> int:
    """Processes that fit beside each other: free cores // threads per process (≥ 1).

    Parameters
    ----------
    threads : int, optional
        Torch threads of each process (default: this process's).

    Returns
    -------
    int
    """
    threads = torch.get_num_threads() if threads is None else check_int("threads", threads, low=1)
    return max(1, _cores() // max(1, threads))


def worker_threads(jobs: int) -> int:
    """Torch threads each of ``jobs`` worker processes gets: this process's count, capped so
    that ``jobs × threads`` fits the free cores (≥ 1 each).

    More threads than cores make the workers fight over the cores: 2 workers of 2 threads on
    2 cores trained 7× slower than one process. When the cap applies, a ``RuntimeWarning``
    names it: the rows then may differ from ``jobs=1``'s in their last digits (a float sum
    split over fewer threads rounds differently).

    Parameters
    ----------
    jobs : int
        Worker processes.

    Returns
    -------
    int
    """
    jobs = check_int("jobs", jobs, low=1)
    mine, cores = torch.get_num_threads(), _cores()
    threads = min(mine, max(1, cores // jobs))
    if threads < mine:
        warnings.warn(f"run_points: jobs={jobs} workers with this process's {mine} torch threads each "
                      f"would oversubscribe the {cores} free cores (several times slower), so each "
                      f"worker uses {threads}; for rows identical to jobs=1 to the last bit, call "
                      f"torch.set_num_threads({threads}) first", RuntimeWarning, stacklevel=3)
    return threads


def _init_worker(threads: int) -> None:
    torch.set_num_threads(threads)


def _pool(jobs: int):
    """A process pool of ``jobs`` spawned workers, kept for the session (start-up ~2 s)."""
    threads = worker_threads(jobs)
    if _POOL.get("spec") != (jobs, threads):
        shutdown_pool()
        ctx = multiprocessing.get_context("spawn")  # fork would copy torch's thread pool
        _POOL["pool"] = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                                            initargs=(threads,))
        _POOL["spec"] = (jobs, threads)
    return _POOL["pool"]


def shutdown_pool() -> None:
    """Stop the worker processes of :func:`run_points` (they also stop with Python).

    Returns
    -------
    None
    """
    pool = _POOL.pop("pool", None)
    _POOL.pop("spec", None)
    if pool is not None:
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_pool)


def run_points(calls, *, jobs: int = 1, cache: bool = True, cache_dir=None,
               progress: bool = False, desc: str = "students", executor=None,
               lockstep: bool = True) -> list[dict]:
    """:func:`run_point` for many points, the uncached ones trained in ``jobs`` processes.

    Each student is seeded by its own configuration (see the module docstring), and
    every worker uses this process's torch thread count (capped so that the workers fit the
    cores: :func:`worker_threads`), so the rows are the same, bit for bit, whatever ``jobs``
    is, wherever ``jobs × threads`` fits the cores; only the wall time changes. Cache hits are
    served here and new rows are cached here, as :func:`run_point` does.

    Parameters
    ----------
    calls : sequence of dict
        Keyword arguments of :func:`run_point`, one dict per student (``data``,
        ``teacher_logits``, ``lam``, ``T``, ... ; not ``cache``/``cache_dir``).
    jobs : int
        Worker processes; 1 trains in this process. :func:`default_jobs` gives
        one per free core. Workers start once (~2 s) and are reused.
    cache, cache_dir : see :func:`run_point`
    progress : bool
        Show a progress bar.
    desc : str
        The progress bar's label.
    lockstep : bool
        Train the uncached students that share a width, epochs, batch size, training-set
        size and validation split together, as one batched model in this process
        (:func:`kdlib.experiments.train_group`: several times faster than one by one); the
        rest, one by one. ``False`` trains every student alone (the reference path). A
        student's numbers then differ from its twin's in the other path only by float
        rounding (tested), not bit for bit.
    executor : concurrent.futures.Executor, optional
        Train the uncached students there instead (``jobs`` is then unused), e.g.
        ``distributed.Client(address).get_executor()`` for a Dask cluster, the engine
        :mod:`kdlib.runs` uses. Its workers must be processes; the rows are the same bit for
        bit when their torch thread count is this process's.

    Returns
    -------
    list of dict
        One row per call, in the order of ``calls``.
    """
    jobs = check_int("jobs", jobs, low=1)
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError(f"executor must be a concurrent.futures.Executor (with .submit), got "
                        f"{executor!r} ({type(executor).__name__})")
    defaults = {"seed": 0, "epochs": STUDENT_DEFAULTS["epochs"], "lr": STUDENT_DEFAULTS["lr"],
                "batch_size": STUDENT_DEFAULTS["batch_size"], "hidden": STUDENT_DEFAULTS["hidden"],
                "test": False, "transfer": None, "fingerprints": None}
    rows, todo, waiting = [None] * len(calls), {}, {}
    for i, call in enumerate(calls):
        kw = {**defaults, **call}
        key, args = _point_key(kw.pop("data"), kw.pop("teacher_logits"), **kw)
        hit = _cache_get(key, cache, cache_dir)
        if hit is not None:
            rows[i] = _row_copy(hit, T=args["T"])
        elif key in todo:  # the same student (λ = 1 at another T): train it once
            waiting.setdefault(key, []).append((i, args["T"]))
        else:
            todo[key] = (i, args)
    groups = {}
    if lockstep and executor is None:
        for key, (_, args) in todo.items():
            group = _lockstep_key(args)
            if group is not None:
                groups.setdefault(group, []).append(key)
        groups = [keys for keys in groups.values() if len(keys) > 1]
    grouped = {key for keys in groups for key in keys}
    alone = [key for key in todo if key not in grouped]
    with tqdm(total=len(calls), initial=len(calls) - len(todo), desc=desc, leave=False,
              disable=not progress) as bar:
        futures = {}
        lockstep_rows = ((key, todo[key][0], row) for keys in groups
                         for key, row in zip(keys, _train_rows_lockstep([todo[k][1] for k in keys])))
        if executor is None and (jobs == 1 or len(alone) < 2):
            one_by_one = ((key, todo[key][0], _train_row(todo[key][1])) for key in alone)
        else:
            pool = executor if executor is not None else _pool(jobs)
            futures = {pool.submit(_train_row, todo[key][1]): (key, todo[key][0]) for key in alone}
            one_by_one = ((*futures[f], _result(f, executor is None)) for f in as_completed(futures))
        try:
            for key, i, row in itertools.chain(lockstep_rows, one_by_one):  # each row is cached at once
                _cache_put(key, json.loads(json.dumps(row)), cache, cache_dir)
                rows[i] = row
                for j, T in waiting.get(key, ()):
                    rows[j] = _row_copy(row, T=T)
                bar.update(1)
        except BaseException:  # an error or Ctrl-C: the queued students are not trained after all
            for f in futures:
                f.cancel()
            raise
    return rows


def _result(future, ours: bool):
    try:
        return future.result()
    except BrokenProcessPool as exc:
        if not ours:  # a caller's executor: theirs to handle
            raise
        shutdown_pool()
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        hint = (f"; if you called run_points from a script ({Path(main).name}), put that call under "
                f"'if __name__ == \"__main__\":' — each worker process starts by importing the script, "
                f"which would start workers of its own" if main else "")
        raise RuntimeError("a worker process of run_points died (out of memory, killed, or failed to "
                           f"start){hint}; rerun, or pass jobs=1 to train in this process") from exc


def train_grid(data, teacher_logits, *, lams, Ts, seeds=(0,),
               epochs: int = STUDENT_DEFAULTS["epochs"], lr: float = STUDENT_DEFAULTS["lr"],
               batch_size: int = STUDENT_DEFAULTS["batch_size"],
               hidden: int = STUDENT_DEFAULTS["hidden"], test: bool = False, transfer=None,
               cache: bool = True, cache_dir=None, progress: bool = False,
               jobs: int = 1) -> list[dict]:
    """Train one student per (λ, T, seed) and return their rows (λ-major order).

    (:func:`kdlib.runs.run_grid` is a different job: it reruns whole notebooks.)

    Parameters
    ----------
    data : kdlib.data.Splits or (train, val) pair
    teacher_logits : Tensor or dict
        The teacher's logits on ``data.train``; a dict ``{"train", "val",
        "test"}`` (see :func:`teacher_outputs`) also gives agreement columns.
    lams, Ts : sequence of float
        λ in [0, 1] and T > 0 values; every combination is trained (at λ = 1 all
        T share one cached run).
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
    jobs : int
        Processes training the points (see :func:`run_points`); the rows do not
        depend on it.

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
    train, val, tst = _train_val_test(data)
    logits = _logits_map(teacher_logits)
    fp = {"data": fingerprint(train.x, train.y, val.x, val.y,
                              *((tst.x, tst.y) if test and tst is not None else ())),
          "teacher": fingerprint(*(logits.get(k) for k in ("train", "val", "test"))),
          "transfer": "" if transfer is None else fingerprint(*transfer)}
    calls = [dict(data=data, teacher_logits=logits, lam=lam, T=T, seed=s, epochs=epochs, lr=lr,
                  batch_size=batch_size, hidden=hidden, test=test, transfer=transfer,
                  fingerprints=fp) for lam in lams for T in Ts for s in seeds]
    return run_points(calls, jobs=jobs, cache=cache, cache_dir=cache_dir, progress=progress,
                      desc="grid")


def baseline(data, teacher_logits, *, seeds=(0,), **kwargs) -> list[dict]:
    """Rows of the baseline student (λ = 1: hard labels only) for each seed.

    Parameters
    ----------
    data, teacher_logits : see :func:`train_grid`
        ``teacher_logits`` is still needed for the agreement columns (and is
        otherwise unused: at λ = 1 the KD loss is the plain cross-entropy).
    seeds : int or sequence of int
    **kwargs
        Passed to :func:`train_grid` (epochs, test, transfer, cache, ...).

    Returns
    -------
    list of dict
        One row per seed, with ``lam = 1`` and ``T = 1``.
    """
    return train_grid(data, teacher_logits, lams=[HARD_ONLY_LAM], Ts=[1.0], seeds=seeds, **kwargs)


def _seed_list(seeds):
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return list(range(check_int("seeds", seeds, low=1)))
    seeds = [check_int(f"seeds[{i}]", s, low=0) for i, s in enumerate(seeds)]
    if not seeds:
        raise ValueError("seeds must name at least one seed")
    return seeds


def rows_at(rows, lam: float, T: float) -> list[dict]:
    """The rows that trained setting (λ, T), in their original order.

    Rows with λ = 1 match any ``T`` (:func:`kdlib.losses.same_setting`: the
    temperature does not act on a hard-label-only student).

    Parameters
    ----------
    rows : list of dict
        With ``lam`` and ``T`` columns.
    lam, T : float

    Returns
    -------
    list of dict
    """
    return [r for r in rows if same_setting(r["lam"], r["T"], lam, T)]


# --------------------------------------------------------------------------- k-fold
def kfold_indices(y, k: int, *, seed: int = 0) -> list[np.ndarray]:
    """``k`` disjoint, stratified folds covering ``range(len(y))``.

    Each class's indices are shuffled (seeded) and dealt round-robin, so every
    fold gets the class proportions of ``y`` (±1 image).

    Parameters
    ----------
    y : Tensor or array of int
        The labels.
    k : int
        Number of folds, from 2 to ``len(y)``.
    seed : int

    Returns
    -------
    list of numpy.ndarray
        ``k`` sorted int64 index arrays.
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
        """The candidates as aligned text, the chosen one marked with ``<- chosen``."""
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
        The candidates are all (λ, T) pairs that train different students: λ = 1
        (the baseline, where T has no effect) appears once, with the first T.
    k : int
        Number of folds (stratified, see :func:`kfold_indices`).
    seed : int
        Seeds the folds and every student.
    epochs, lr, batch_size, hidden : student recipe (see :data:`STUDENT_DEFAULTS`)
    cache, cache_dir : see :func:`run_point`

    Returns
    -------
    KFoldResult
    """
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
    pairs: list[tuple[float, float]] = []
    for lam in lams:
        for T in Ts:
            if not any(same_setting(lam, T, *p) for p in pairs):
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
    candidates = [{"lam": lam, "T": T, "scores": scores[(lam, T)],
                   "mean": float(np.mean(scores[(lam, T)])), "sd": sample_sd(scores[(lam, T)])}
                  for lam, T in pairs]
    chosen = candidates[int(np.argmax([c["mean"] for c in candidates]))]
    return KFoldResult(candidates, chosen, folds, rows, k)


# --------------------------------------------------------------------------- choosing
def select_best(rows, *, metric: str = "val_acc", by=("lam", "T")) -> dict:
    """The group of rows with the highest mean ``metric`` (the first one on ties).

    Parameters
    ----------
    rows : list of dict
    metric : str
    by : str or sequence of str
        Columns that define a group.

    Returns
    -------
    dict
        That group's entry of :func:`kdlib.results.summarize` (``mean``, ``sd``, ``n``).
    """
    summary = summarize(rows, by, metric)
    if not summary:
        raise ValueError("rows is empty")
    return summary[int(np.argmax([s["mean"] for s in summary]))]


def flatness(rows, *, metric: str = "val_acc") -> dict:
    """How flat the optimum of a λ × T grid is, compared with the seed noise.

    Parameters
    ----------
    rows : list of dict
        Grid rows with ``lam``, ``T`` and ``metric``.
    metric : str

    Returns
    -------
    dict
        ``best`` (the best group of :func:`kdlib.results.summarize`), ``best_mean``,
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
    sds = [s["sd"] for s in summary if not np.isnan(s["sd"])]
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
        Grid rows with ``metric`` (``train_grid(..., test=True)``).
    honest : dict or (lam, T)
        The point chosen without looking at the test set (by validation or
        cross-validation).
    metric : str

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
    mine = rows_at(summary, lam, T)
    if not mine:
        raise ValueError(f"the honest point (lam={lam}, T={T}) is not among the rows")
    peeked = summary[int(np.argmax([s["mean"] for s in summary]))]
    best_row = max(rows, key=lambda r: r[metric])
    return {"honest_point": (lam, T), "honest": mine[0]["mean"],
            "peeked_point": (peeked["lam"], peeked["T"]), "peeked": peeked["mean"],
            "best_run": float(best_row[metric]), "best_run_row": best_row}
