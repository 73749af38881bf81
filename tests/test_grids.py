"""kdlib.experiments (core): grids over (λ, T, seed), the row cache, worker processes, k-fold folds.

Everything runs on a tiny synthetic problem (a few hundred 4-feature points, 3
classes) so that a student trains in milliseconds.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import subprocess
import sys
import warnings
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from _toy import HAND_ROWS, make_problem

import kdlib.models
import kdlib.train
from kdlib import experiments, results
from kdlib.data import Split, Splits
from kdlib.losses import kd_loss

torch.set_num_threads(1)
FAST = dict(epochs=3, lr=0.05, batch_size=32, hidden=8)


@pytest.fixture(autouse=True)
def _fresh_cache():
    experiments.clear_cache()
    yield
    experiments.clear_cache()


@pytest.fixture
def problem():
    return make_problem()


def strip(rows):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]


class CountingDistill:
    """Wraps kdlib.train.distill and the lockstep trainer; counts the students they train."""

    def __init__(self, monkeypatch):
        self.calls = []
        real, real_group = kdlib.train.distill, experiments.train_group

        def wrapper(*args, **kwargs):
            self.calls.append((kwargs["lam"], kwargs["T"], kwargs.get("seed")))
            return real(*args, **kwargs)

        def group_wrapper(sizes, pool, students, **kwargs):
            self.calls += [(s.lam, s.T, s.seed) for s in students]
            return real_group(sizes, pool, students, **kwargs)

        monkeypatch.setattr(kdlib.train, "distill", wrapper)
        monkeypatch.setattr(experiments, "train_group", group_wrapper)


# --------------------------------------------------------------------------- grid, seeds
def test_grid_rows_are_tidy_and_in_order(problem):
    data, logits = problem
    rows = experiments.train_grid(data, logits, lams=[0.2, 0.8], Ts=[1.0, 3.0], seeds=[0, 1], test=True,
                       **FAST)
    assert [(r["lam"], r["T"], r["seed"]) for r in rows] == [
        (lam, T, s) for lam in (0.2, 0.8) for T in (1.0, 3.0) for s in (0, 1)]
    for r in rows:
        assert set(r) >= {"lam", "T", "seed", "val_acc", "agreement", "test_acc",
                          "test_agreement", "history", "epochs", "n_train"}
        assert len(r["history"]["val_acc"]) == len(r["history"]["epoch_loss"]) == FAST["epochs"]
        assert r["history"]["val_acc"][-1] == pytest.approx(r["val_acc"])
        assert r["n_train"] == len(data.train.y)


def test_row_equals_an_independent_run_with_that_seed(problem):
    data, logits = problem
    row = experiments.run_point(data, logits, lam=0.3, T=2.0, seed=5, test=True, **FAST)
    torch.manual_seed(5)
    student = kdlib.models.mlp([4, FAST["hidden"], 3])
    hist = kdlib.train.distill(student, None, data, lam=0.3, T=2.0, teacher_logits=logits["train"],
                               epochs=FAST["epochs"], lr=FAST["lr"],
                               batch_size=FAST["batch_size"], seed=5, progress=False)
    with torch.no_grad():
        v, t = student(data.val.x), student(data.test.x)
    assert row["history"]["epoch_loss"] == hist.epoch_loss
    assert row["val_acc"] == pytest.approx(float((v.argmax(1) == data.val.y).float().mean()))
    assert row["test_acc"] == pytest.approx(float((t.argmax(1) == data.test.y).float().mean()))
    assert row["agreement"] == pytest.approx(
        float((v.argmax(1) == logits["val"].argmax(1)).float().mean()))


def test_grid_is_deterministic_per_seed(problem):
    data, logits = problem
    a = experiments.train_grid(data, logits, lams=[0.5], Ts=[2.0], seeds=[0, 1, 2], cache=False, **FAST)
    b = experiments.train_grid(data, logits, lams=[0.5], Ts=[2.0], seeds=[0, 1, 2], cache=False, **FAST)
    assert strip(a) == strip(b)
    # different seeds are different students
    assert len({tuple(r["history"]["epoch_loss"]) for r in a}) == 3


def test_seeds_as_int_means_range(problem):
    data, logits = problem
    rows = experiments.train_grid(data, logits, lams=[0.5], Ts=[2.0], seeds=2, **FAST)
    assert [r["seed"] for r in rows] == [0, 1]


# --------------------------------------------------------------------------- cache
def test_cache_hit_returns_identical_rows_without_training(problem, monkeypatch):
    data, logits = problem
    counter = CountingDistill(monkeypatch)
    first = experiments.train_grid(data, logits, lams=[0.2, 0.8], Ts=[2.0], seeds=[0, 1], **FAST)
    assert len(counter.calls) == 4
    second = experiments.train_grid(data, logits, lams=[0.2, 0.8], Ts=[2.0], seeds=[0, 1], **FAST)
    assert len(counter.calls) == 4
    assert second == first
    second[0]["val_acc"] = -1.0  # callers get copies: the cache is not altered
    assert experiments.train_grid(data, logits, lams=[0.2], Ts=[2.0], seeds=[0], **FAST)[0] == first[0]


def test_cache_key_is_the_full_configuration(problem, monkeypatch):
    data, logits = problem
    counter = CountingDistill(monkeypatch)
    experiments.run_point(data, logits, lam=0.5, T=2.0, seed=0, **FAST)
    for change in ({"epochs": 2}, {"lr": 0.02}, {"batch_size": 16}, {"hidden": 4}, {"seed": 1},
                   {"T": 3.0}, {"lam": 0.4}):
        kw = {**FAST, "lam": 0.5, "T": 2.0, "seed": 0, **change}
        experiments.run_point(data, logits, **kw)
    assert len(counter.calls) == 8
    # other teacher logits, other data: new students
    other = {k: v * 0.5 for k, v in logits.items()}
    experiments.run_point(data, other, lam=0.5, T=2.0, seed=0, **FAST)
    smaller = Splits(Split(data.train.x[:100], data.train.y[:100]), data.val, data.test,
                     data.classes)
    experiments.run_point(smaller, {**logits, "train": logits["train"][:100]}, lam=0.5, T=2.0, seed=0,
                     **FAST)
    assert len(counter.calls) == 10


def test_baseline_ignores_T(problem, monkeypatch):
    data, logits = problem
    counter = CountingDistill(monkeypatch)
    rows = experiments.train_grid(data, logits, lams=[1.0], Ts=[1.0, 2.0, 8.0], seeds=[0], **FAST)
    assert len(counter.calls) == 1
    assert [r["T"] for r in rows] == [1.0, 2.0, 8.0]
    assert len({r["val_acc"] for r in rows}) == 1
    base = experiments.baseline(data, logits, seeds=[0], **FAST)
    assert len(counter.calls) == 1 and base[0]["lam"] == 1.0


def test_cache_dir_survives_a_cleared_process_cache(problem, monkeypatch, tmp_path):
    data, logits = problem
    counter = CountingDistill(monkeypatch)
    first = experiments.train_grid(data, logits, lams=[0.5], Ts=[2.0], seeds=[0, 1],
                                   cache=tmp_path, **FAST)
    files = sorted(tmp_path.glob("*.json"))
    assert len(files) == 2
    assert json.loads(files[0].read_text())["row"]["lam"] == 0.5
    experiments.clear_cache()
    assert experiments.cache_size() == 0
    again = experiments.train_grid(data, logits, lams=[0.5], Ts=[2.0], seeds=[0, 1],
                                   cache=tmp_path, **FAST)
    assert again == first and len(counter.calls) == 2


def test_cache_false_always_trains(problem, monkeypatch):
    data, logits = problem
    counter = CountingDistill(monkeypatch)
    for _ in range(2):
        experiments.run_point(data, logits, lam=0.5, T=2.0, cache=False, **FAST)
    assert len(counter.calls) == 2 and experiments.cache_size() == 0


# --------------------------------------------------------------------------- k-fold
@pytest.mark.parametrize("n,k", [(30, 3), (31, 4), (100, 5), (7, 7)])
def test_kfold_indices_are_disjoint_cover_and_stratified(n, k):
    y = np.arange(n) % 3
    folds = experiments.kfold_indices(y, k, seed=1)
    assert len(folds) == k
    joined = np.concatenate(folds)
    assert sorted(joined.tolist()) == list(range(n))  # disjoint and covering
    sizes = [len(f) for f in folds]
    assert max(sizes) - min(sizes) <= 1
    for c in range(3):
        per_fold = [int((y[f] == c).sum()) for f in folds]
        assert max(per_fold) - min(per_fold) <= 1
    assert [f.tolist() for f in experiments.kfold_indices(y, k, seed=1)] == [f.tolist() for f in folds]


# --------------------------------------------------------------------------- summaries
def test_hand_rows_summaries():
    """The groups select_best sees (kdlib.results.summarize)."""
    s = results.summarize(HAND_ROWS)
    assert [(g["lam"], g["T"], g["n"]) for g in s] == [
        (0.1, 2.0, 2), (0.1, 4.0, 2), (0.5, 2.0, 2), (0.5, 4.0, 1), (1.0, 1.0, 1)]
    assert s[0]["mean"] == pytest.approx(0.81)
    assert s[0]["sd"] == pytest.approx(math.sqrt(((0.80 - 0.81) ** 2 + (0.82 - 0.81) ** 2) / 1))
    assert s[1]["mean"] == pytest.approx(0.86) and s[1]["sd"] == pytest.approx(0.0141421356)
    assert s[2]["sd"] == pytest.approx(0.0)
    assert math.isnan(s[3]["sd"])
    by_lam = results.summarize(HAND_ROWS, by="lam", metric="test_acc")
    assert [g["lam"] for g in by_lam] == [0.1, 0.5, 1.0]
    assert by_lam[0]["mean"] == pytest.approx((0.79 + 0.83 + 0.80 + 0.81) / 4)
    assert by_lam[1]["n"] == 3
    with pytest.raises(ValueError, match="no column 'nope'"):
        results.summarize(HAND_ROWS, metric="nope")


def test_select_best():
    best = experiments.select_best(HAND_ROWS)
    assert (best["lam"], best["T"]) == (0.1, 4.0)
    by_lam = results.summarize(HAND_ROWS, by="lam")
    assert experiments.select_best(HAND_ROWS, by="lam") == max(by_lam, key=lambda g: g["mean"])
    with pytest.raises(ValueError, match="rows is empty"):
        experiments.select_best([])


# --------------------------------------------------------------------------- CSV
def test_grid_rows_round_trip_through_results_csv(problem, tmp_path):
    data, logits = problem
    rows = experiments.train_grid(data, logits, lams=[0.5, 1.0], Ts=[2.0], seeds=[0, 1], test=True, **FAST)
    rows[0]["note"] = "a, b"  # a text column, present in one row only
    path = results.write_csv(rows, tmp_path / "grid.csv")
    back = results.read_csv(path)
    assert len(back) == len(rows)
    for a, b in zip(rows, back):
        for k, v in a.items():
            assert b[k] == pytest.approx(v) if isinstance(v, float) else b[k] == v
    assert back[1]["note"] is None
    assert back[0]["history"] == rows[0]["history"]


# --------------------------------------------------------------------------- transfer set
def test_transfer_loss_is_soft_only_on_unlabelled_images(problem, monkeypatch):
    data, logits = problem
    x_u = torch.randn(40, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    l_u = torch.randn(40, 3, generator=torch.Generator().manual_seed(2))
    captured = {}
    real_fit = kdlib.train.fit

    def spy(model, d, **kw):
        captured["loss_fn"], captured["train"] = kw["loss_fn"], d[0]
        return real_fit(model, d, **kw)

    monkeypatch.setattr(kdlib.train, "fit", spy)
    experiments.distill_mlp(data, logits, lam=0.3, T=2.0, transfer=(x_u, l_u), **FAST)
    n_lab = len(data.train.y)
    assert len(captured["train"].y) == n_lab + 40
    idx = torch.tensor([0, 5, n_lab + 1, n_lab + 7, 3])
    out = torch.randn(5, 3, generator=torch.Generator().manual_seed(3))
    y = captured["train"].y[idx]
    got = float(captured["loss_fn"](out, y, idx, None))
    t_all = torch.cat([logits["train"], l_u])[idx].double().numpy()
    s = out.double().numpy()

    def log_softmax(z):
        z = z - z.max(1, keepdims=True)
        return z - np.log(np.exp(z).sum(1, keepdims=True))

    p_t = np.exp(log_softmax(t_all / 2.0))
    kl = (p_t * (log_softmax(t_all / 2.0) - log_softmax(s / 2.0))).sum(1) * 4.0
    ce = -log_softmax(s)[np.arange(5), y.numpy()]
    lab = np.array([True, True, False, False, True])
    expect = (0.3 * ce + 0.7 * kl)[lab].sum() + kl[~lab].sum()
    assert got == pytest.approx(expect / 5, rel=1e-5)
    assert float(kd_loss(out[lab], torch.tensor(t_all[lab]).float(), y[lab], lam=0.3, T=2.0)) == \
        pytest.approx((0.3 * ce + 0.7 * kl)[lab].mean(), rel=1e-5)


def test_transfer_rows_are_cached_separately(problem, monkeypatch):
    data, logits = problem
    x_u = torch.randn(40, 1, 2, 2, generator=torch.Generator().manual_seed(1))
    transfer = (x_u, x_u.reshape(40, 4)[:, :3] * 3)
    plain = experiments.run_point(data, logits, lam=0.5, T=2.0, **FAST)
    with_t = experiments.run_point(data, logits, lam=0.5, T=2.0, transfer=transfer, **FAST)
    assert plain["n_transfer"] == 0 and with_t["n_transfer"] == 40
    assert plain["history"] != with_t["history"]


def test_shrink_keeps_the_first_images():
    data, _ = make_problem(n_train=200)
    small = experiments.shrink(data, n_val=10, n_test=None)
    assert torch.equal(small.val.x, data.val.x[:10]) and small.test is data.test
    with pytest.raises(ValueError, match="n_val"):
        experiments.shrink(data, n_val=10**6)


def test_bad_arguments():
    data, logits = make_problem()
    with pytest.raises(ValueError, match="lams\\[0\\]"):
        experiments.train_grid(data, logits, lams=[2.0], Ts=[1.0])
    with pytest.raises(ValueError, match="Ts\\[1\\]"):
        experiments.train_grid(data, logits, lams=[0.5], Ts=[1.0, -1.0])
    with pytest.raises(ValueError, match="rows"):
        experiments.run_point(data, {**logits, "train": logits["train"][:5]}, lam=0.5, T=1.0)
    with pytest.raises(TypeError, match="teacher_logits"):
        experiments.run_point(data, [1, 2], lam=0.5, T=1.0)
    with pytest.raises(ValueError, match="validation split"):
        experiments.run_point(data.train, logits, lam=0.5, T=1.0)


# --------------------------------------------------------------------------- λ = 1 ignores T
def test_rows_at_matches_any_T_at_lam_1():
    rows = [{"lam": 0.5, "T": 2.0, "seed": 0}, {"lam": 0.5, "T": 4.0, "seed": 0},
            {"lam": 1.0, "T": 1.0, "seed": 0}, {"lam": 1.0, "T": 1.0, "seed": 1}]
    assert experiments.rows_at(rows, 0.5, 4.0) == [rows[1]]
    assert experiments.rows_at(rows, 1.0, 8.0) == rows[2:]
    assert experiments.rows_at(rows, 0.9, 2.0) == []


def test_teacher_outputs_covers_every_split(problem):
    data, _ = problem
    torch.manual_seed(0)
    teacher = kdlib.models.mlp([4, 3])
    out = experiments.teacher_outputs(teacher, data)
    assert set(out) == {"train", "val", "test"}
    with torch.no_grad():
        teacher.eval()
        torch.testing.assert_close(out["val"], teacher(data.val.x))
    assert set(experiments.teacher_outputs(teacher, (data.train, data.val))) == {"train", "val"}


# ---------------------------------------------------------------- run_points (processes)
def test_run_points_in_two_processes_gives_the_same_rows_as_in_this_one(problem):
    data, logits = problem
    calls = [dict(data=data, teacher_logits=logits, lam=lam, T=T, seed=s, **FAST)
             for lam, T in ((0.5, 2.0), (1.0, 1.0), (1.0, 4.0), (0.0, 8.0)) for s in (0, 1)]
    here = experiments.run_points(calls, jobs=1, cache=False, lockstep=False)
    try:
        there = experiments.run_points(calls, jobs=2, lockstep=False)
    finally:
        experiments.shutdown_pool()
    assert strip(there) == strip(here)  # bit for bit: accuracies, losses, histories
    assert [r["T"] for r in there] == [2.0, 2.0, 1.0, 1.0, 4.0, 4.0, 8.0, 8.0]
    assert experiments.cache_size() == 6     # the λ = 1 student trained once per seed, cached here
    counter_free = experiments.run_points(calls, jobs=2)  # all cached: no pool is started
    assert strip(counter_free) == strip(here) and "pool" not in experiments._POOL


def test_run_points_checks_its_arguments_before_starting_processes(problem):
    data, logits = problem
    with pytest.raises(ValueError, match="lam"):
        experiments.run_points([dict(data=data, teacher_logits=logits, lam=1.5, T=2.0)], jobs=2)
    with pytest.raises(ValueError, match="jobs"):
        experiments.run_points([], jobs=0)
    assert "pool" not in experiments._POOL


def test_default_jobs_is_cores_over_threads(monkeypatch):
    monkeypatch.setattr(experiments.os, "sched_getaffinity", lambda pid: set(range(4)), raising=False)
    monkeypatch.setattr(experiments.torch, "get_num_threads", lambda: 2)
    assert experiments.default_jobs() == 2
    monkeypatch.setattr(experiments.torch, "get_num_threads", lambda: 8)
    assert experiments.default_jobs() == 1


@pytest.mark.parametrize("cores, mine, jobs, expected",
                         [(2, 2, 2, 1), (2, 2, 1, 2), (4, 2, 2, 2), (2, 1, 3, 1), (8, 4, 3, 2)])
def test_worker_threads_never_oversubscribe_the_cores(monkeypatch, cores, mine, jobs, expected):
    monkeypatch.setattr(experiments.os, "sched_getaffinity", lambda pid: set(range(cores)), raising=False)
    monkeypatch.setattr(experiments.torch, "get_num_threads", lambda: mine)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert experiments.worker_threads(jobs) == expected
    messages = [str(w.message) for w in caught if w.category is RuntimeWarning]
    if expected < mine:  # capped: said, with the cause and the way to keep jobs=1's bits
        assert len(messages) == 1 and f"jobs={jobs} workers" in messages[0]
        assert f"{mine} torch threads each would oversubscribe the {cores} free cores" in messages[0]
        assert f"torch.set_num_threads({expected})" in messages[0]
    else:
        assert not messages


GUARDLESS_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from _toy import make_problem
from kdlib import experiments
data, logits = make_problem()
calls = [dict(data=data, teacher_logits=logits, lam=0.5, T=2.0, seed=s, epochs=1, hidden=4) for s in range(2)]
experiments.run_points(calls, jobs=2, lockstep=False)  # no `if __name__ == "__main__":` around it
"""


@pytest.mark.slow  # spawns worker processes that import torch
def test_run_points_from_a_script_without_a_main_guard_says_so(tmp_path):
    script = tmp_path / "sweep.py"
    script.write_text(GUARDLESS_SCRIPT.format(tests=str(Path(__file__).parent)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: a worker process of run_points died"), done.stderr[-2000:]
    assert "script (sweep.py)" in last and "if __name__ == \"__main__\":" in last and "jobs=1" in last


class _DieWhenUnpickled:
    """Unpickling this in a worker process ends that process at once (a crash, an OOM kill)."""

    def __reduce__(self):
        return os._exit, (3,)


@pytest.mark.slow
def test_run_points_reports_a_dead_worker_clearly(problem, monkeypatch):
    data, logits = problem
    real = experiments._point_key

    def key_with_bomb(*args, **kwargs):
        key, point = real(*args, **kwargs)
        if point["seed"] == 1:
            point["bomb"] = _DieWhenUnpickled()
        return key, point

    monkeypatch.setattr(experiments, "_point_key", key_with_bomb)
    calls = [dict(data=data, teacher_logits=logits, lam=0.5, T=2.0, seed=s, **FAST) for s in range(3)]
    with pytest.raises(RuntimeError, match="worker process of run_points died.*jobs=1"):
        experiments.run_points(calls, jobs=2, lockstep=False)
    assert "pool" not in experiments._POOL  # the broken pool is dropped; the next call starts a new one
    monkeypatch.setattr(experiments, "_point_key", real)
    rows = experiments.run_points(calls, jobs=2, lockstep=False)
    experiments.shutdown_pool()
    assert [r["seed"] for r in rows] == [0, 1, 2]


def test_run_points_on_a_callers_executor(problem):
    data, logits = problem
    calls = [dict(data=data, teacher_logits=logits, lam=0.5, T=T, seed=0, **FAST) for T in (1.0, 4.0)]
    here = experiments.run_points(calls, cache=False, lockstep=False)  # an executor trains one by one
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(2, mp_context=ctx, initializer=torch.set_num_threads, initargs=(1,)) as ex:
        there = experiments.run_points(calls, executor=ex, cache=False)
    assert strip(there) == strip(here) and "pool" not in experiments._POOL
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        experiments.run_points(calls, executor="dask")


@pytest.mark.slow
def test_run_points_on_a_dask_cluster_executor(problem):
    from distributed import Client, LocalCluster  # heavy: only this slow test needs it

    data, logits = problem
    calls = [dict(data=data, teacher_logits=logits, lam=lam, T=2.0, seed=1, **FAST) for lam in (0.0, 0.5)]
    here = experiments.run_points(calls, cache=False, lockstep=False)  # an executor trains one by one
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.run(torch.set_num_threads, 1)
        there = experiments.run_points(calls, executor=client.get_executor(), cache=False)
    assert strip(there) == strip(here)


def test_lockstep_rows_match_one_by_one_rows_to_float_rounding(problem, monkeypatch):
    """The default path trains same-shape students as one group; its rows are those of the
    students trained one by one, up to float rounding (and one validation image at most)."""
    data, logits = problem
    calls = [dict(data=data, teacher_logits=logits, lam=lam, T=T, seed=s, test=True, **FAST)
             for lam, T in ((0.5, 2.0), (1.0, 1.0), (0.0, 8.0)) for s in (0, 1, 2)]
    calls.append(dict(data=data, teacher_logits=logits, lam=0.5, T=2.0, seed=0, test=True,
                      **{**FAST, "hidden": 5}))
    counted = CountingDistill(monkeypatch)
    grouped = experiments.run_points(calls, cache=False)
    assert len(counted.calls) == 10 and counted.calls[-1] == (0.5, 2.0, 0)  # 9 in a group, 1 alone
    alone = experiments.run_points(calls, cache=False, lockstep=False)
    n_val = len(data.val.y)
    for g, a in zip(grouped, alone):
        assert {k: v for k, v in g.items() if k not in ("seconds", "history", "val_acc", "agreement",
                                                          "test_acc", "test_agreement")} == \
            {k: v for k, v in a.items() if k not in ("seconds", "history", "val_acc", "agreement",
                                                       "test_acc", "test_agreement")}
        for k in ("val_acc", "agreement", "test_acc", "test_agreement"):
            assert g[k] == pytest.approx(a[k], abs=1.5 / n_val), k
        assert g["history"]["epoch_loss"] == pytest.approx(a["history"]["epoch_loss"], rel=1e-4)
    assert grouped[-1] == {**alone[-1], "seconds": grouped[-1]["seconds"]}  # trained alone both times


def test_run_points_cancels_the_queued_students_when_interrupted(problem, monkeypatch):
    data, logits = problem
    calls = [dict(data=data, teacher_logits=logits, lam=0.5, T=2.0, seed=s, **FAST) for s in range(6)]
    submitted = []

    class OneAtATime:
        """A stand-in executor: runs nothing until asked; the first result is a Ctrl-C."""

        def submit(self, fn, args):
            f = Future()
            submitted.append(f)
            if len(submitted) == 1:
                f.set_exception(KeyboardInterrupt())
            return f

    with pytest.raises(KeyboardInterrupt):
        experiments.run_points(calls, executor=OneAtATime())
    assert len(submitted) == 6 and all(f.cancelled() for f in submitted[1:])
    assert experiments.cache_size() == 0
