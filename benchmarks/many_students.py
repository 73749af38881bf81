"""Many students at once: one by one, in worker processes, or in lockstep (one batched model).

    python benchmarks/many_students.py [--students-per-point 4] [--epochs 20] [--n-train 2000]

A 32-student grid (8 λ/T/ε points × 4 seeds, ``mlp([784, 128, 10])``, 2,000 images with a
sample of their own per seed, batch 128, cached teacher logits, validation after every epoch)
trained three ways in one run:

(a) one by one in this process with 2 torch threads (``run_points(jobs=1, lockstep=False)``);
(b) ``run_points`` with two worker processes of 1 thread each (pool start-up included);
(c) in lockstep: ``kdlib.experiments.train_group``, 2 threads.

Prints samples/s of each (students × images × epochs / wall seconds), the ratios, and the
lockstep step's achieved GFLOP/s (forward + backward ≈ 3 × the forward FLOPs per image)
against the float32 matrix-multiply peak measured in the same run with the same threads
(``kdlib.metrics.gemm_peak``). Also checks that (c)'s validation accuracies agree with (a)'s.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import kdlib.data
import kdlib.metrics
import kdlib.models
import kdlib.train
from kdlib import experiments
from kdlib.experiments import GroupStudent, train_group

POINTS = [(1.0, 1.0, 0.0), (1.0, 1.0, 0.1), (0.5, 2.0, 0.0), (0.5, 4.0, 0.0), (0.1, 2.0, 0.0),
          (0.1, 4.0, 0.0), (0.9, 4.0, 0.0), (0.5, 8.0, 0.0)]
"""(λ, T, ε) of the grid: scratch, label smoothing, six distillation settings."""


def samples(pool_size: int, n_train: int, seed: int) -> list[int]:
    """The training rows of one seed: a sample of its own from the pool."""
    return sorted(torch.randperm(pool_size, generator=torch.Generator().manual_seed(seed))[:n_train].tolist())


def one_by_one(pool, val, logits, rows, *, epochs, jobs, threads):
    """(a) and (b): run_points over the grid (label smoothing as KD with a uniform teacher)."""
    torch.set_num_threads(threads)
    experiments.clear_cache()
    calls = []
    for lam, T, eps in POINTS:
        for seed, r in rows.items():
            idx = torch.tensor(r)
            train = kdlib.data.Split(pool.x[idx], pool.y[idx])
            if eps:  # label smoothing ε is KD from a uniform teacher at λ = 1 − ε, T = 1 (notebook 05)
                lam, T, t = 1 - eps, 1.0, torch.zeros(len(idx), 10)
            else:
                t = logits[idx]
            calls.append(dict(data=(train, val), teacher_logits={"train": t}, lam=lam, T=T, seed=seed,
                              epochs=epochs))
    t0 = time.perf_counter()
    out = experiments.run_points(calls, jobs=jobs, cache=False, lockstep=False)
    seconds = time.perf_counter() - t0
    experiments.shutdown_pool()
    return out, seconds


def lockstep(pool, val, logits, rows, *, epochs, threads):
    """(c): the whole grid as one group."""
    torch.set_num_threads(threads)
    students = [GroupStudent(seed=seed, lam=lam, T=T, eps=eps, rows=tuple(r))
                for lam, T, eps in POINTS for seed, r in rows.items()]
    t0 = time.perf_counter()
    trained = train_group([784, 128, 10], pool, students, val=val, teacher_logits=logits, epochs=epochs)
    return trained, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--n-train", type=int, default=2000)
    args = ap.parse_args(argv)
    data = kdlib.data.load("fashion-mnist")
    pool, val = data.train, data.val
    teacher = kdlib.train.load_teacher(progress=False)
    logits = kdlib.models.predict(teacher, pool.x)
    rows = {seed: samples(len(pool.y), args.n_train, seed) for seed in range(args.seeds)}
    n_students = len(POINTS) * args.seeds
    work = n_students * args.n_train * args.epochs
    print(f"{n_students} students (mlp 784-128-10), {args.n_train} images each, {args.epochs} epochs, "
          f"batch 128, validation on {len(val.y)} images after every epoch")
    a_rows, a_s = one_by_one(pool, val, logits, rows, epochs=args.epochs, jobs=1, threads=2)
    print(f"(a) one by one, 2 threads:            {a_s:6.1f} s  {work / a_s:9,.0f} samples/s")
    _, b_s = one_by_one(pool, val, logits, rows, epochs=args.epochs, jobs=2, threads=1)
    print(f"(b) run_points, 2 workers × 1 thread: {b_s:6.1f} s  {work / b_s:9,.0f} samples/s")
    c_trained, c_s = lockstep(pool, val, logits, rows, epochs=args.epochs, threads=2)
    print(f"(c) lockstep, 2 threads:              {c_s:6.1f} s  {work / c_s:9,.0f} samples/s")
    best = min(a_s, b_s)
    print(f"lockstep vs the faster of (a), (b): {best / c_s:.2f}x   "
          f"(vs (a) {a_s / c_s:.2f}x, vs (b) {b_s / c_s:.2f}x)")
    diffs = [abs(r["val_acc"] - h.val_acc[-1]) for r, (_, h) in zip(a_rows, c_trained)]
    print(f"validation accuracy, lockstep vs one by one: max |difference| {max(diffs):.4f}, "
          f"mean {statistics.mean(diffs):.5f} over {len(diffs)} students")
    peak = kdlib.metrics.gemm_peak(n=512, repeats=10, threads=2)
    forward = kdlib.models.flops(kdlib.models.mlp([784, 128, 10]), (1, 28, 28))
    train_flops = 3 * forward * work                          # forward + backward per training image
    val_flops = forward * n_students * len(val.y) * args.epochs  # a validation pass after every epoch
    achieved = (train_flops + val_flops) / c_s / 1e9
    print(f"lockstep: {achieved:.1f} GFLOP/s achieved ({train_flops / 1e9:.0f} GFLOP of training steps and "
          f"{val_flops / 1e9:.0f} of validation passes in {c_s:.1f} s); float32 GEMM peak "
          f"{peak['gflops']:.1f} GFLOP/s (2 threads, same run): "
          f"{100 * achieved / peak['gflops']:.0f} % of peak")


if __name__ == "__main__":
    main()
