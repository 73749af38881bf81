"""Distillation throughput: kdlib's cached-logit loop against a tutorial-style loop.

(a) ``kdlib.train.distill``: in-memory seeded batches, the teacher's logits computed
    once and looked up by example index (the one-off teacher pass is timed
    separately: notebooks reuse it for every student of a grid);
(b) the PyTorch-tutorial pattern: ``DataLoader`` over a ``TensorDataset``, the teacher
    run on every batch under ``no_grad``.
Same student, teacher, data, batch size, optimiser and loss. Both are timed in one run,
several repetitions each, and the median samples/s compared. Before timing, it checks
that both paths give the same loss on the same batch. It also prints the device, and the
student's training step's achieved GFLOP/s (forward + backward ≈ 3 × the forward FLOPs per
image) against the float32 matrix-multiply peak measured in the same run
(``kdlib.metrics.gemm_peak``) with the same number of threads.

    python benchmarks/kd_throughput.py [--n-train 10000] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

import kdlib.data
import kdlib.losses
import kdlib.metrics
import kdlib.models
import kdlib.train


def student():
    torch.manual_seed(0)
    return kdlib.models.mlp([784, 128, 10])


def run_kdlib(teacher, train, cache, *, epochs, lam, T, batch_size):
    s = student()
    t0 = time.perf_counter()
    kdlib.train.distill(s, teacher, train, lam=lam, T=T, epochs=epochs, batch_size=batch_size,
                        schedule=None, progress=False, teacher_logits=cache)
    return epochs * len(train) / (time.perf_counter() - t0)


def run_tutorial(teacher, train, *, epochs, lam, T, batch_size):
    s = student()
    opt = torch.optim.Adam(s.parameters(), lr=3e-3)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=batch_size, shuffle=True)
    teacher.eval()
    t0 = time.perf_counter()
    for _ in range(epochs):
        s.train()
        for x, y in loader:
            with torch.no_grad():
                t_logits = teacher(x)
            loss = kdlib.losses.kd_loss(s(x), t_logits, y, lam=lam, T=T)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epochs * len(train) / (time.perf_counter() - t0)


def same_loss_on_same_batch(teacher, train, *, lam, T) -> float:
    idx = torch.randperm(len(train), generator=torch.Generator().manual_seed(1))[:128]
    s = student().eval()
    cache = kdlib.models.predict(teacher, train.x)
    with torch.no_grad():
        cached = kdlib.losses.kd_loss(s(train.x[idx]), cache[idx], train.y[idx], lam=lam, T=T)
        per_batch = kdlib.losses.kd_loss(s(train.x[idx]), teacher.eval()(train.x[idx]), train.y[idx],
                                         lam=lam, T=T)
    return abs(float(cached) - float(per_batch))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-train", type=int, default=10000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    args = ap.parse_args(argv)
    teacher = kdlib.train.load_teacher()
    train = kdlib.data.load("fashion-mnist", n_train=args.n_train).train
    kw = dict(epochs=args.epochs, lam=0.5, T=4.0, batch_size=args.batch_size)
    diff = same_loss_on_same_batch(teacher, train, lam=0.5, T=4.0)
    print(f"same batch, cached vs per-batch teacher: |loss difference| = {diff:.2e}")
    if diff > 1e-5:
        raise SystemExit("the two paths disagree on the same batch")
    print(f"device {kdlib.models.default_device()}; {args.n_train} images x {args.epochs} epochs, "
          f"batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    t0 = time.perf_counter()
    cache = kdlib.models.predict(teacher, train.x)
    cache_s = time.perf_counter() - t0
    print(f"one-off teacher pass over the {len(train)} training images: {cache_s:.2f} s")
    fast, slow = [], []
    for r in range(args.repeats):  # interleaved, so machine noise hits both alike
        fast.append(run_kdlib(teacher, train, cache, **kw))
        slow.append(run_tutorial(teacher, train, **kw))
        print(f"  repeat {r + 1}: kdlib.distill {fast[-1]:9,.0f} samples/s   "
              f"tutorial loop {slow[-1]:9,.0f} samples/s")
    f, s = statistics.median(fast), statistics.median(slow)
    print(f"median: kdlib.distill (cached logits) {f:,.0f} samples/s; "
          f"tutorial loop (DataLoader, teacher every batch) {s:,.0f} samples/s")
    total = args.epochs * len(train)
    with_cache = total / (total / f + cache_s)
    print(f"counting the one-off teacher pass for this single student: {with_cache:,.0f} samples/s "
          f"({with_cache / s:.1f}x)")
    print(f"speedup {f / s:.1f}x")
    peak = kdlib.metrics.gemm_peak(n=512, repeats=10)
    step_flops = 3 * kdlib.models.flops(student(), (1, 28, 28))  # forward + backward per image
    achieved = f * step_flops / 1e9
    print(f"student step: {step_flops:,} FLOPs per image (3 x forward), {achieved:.1f} GFLOP/s achieved; "
          f"float32 GEMM peak {peak['gflops']:.1f} GFLOP/s ({peak['threads']} threads): "
          f"{100 * achieved / peak['gflops']:.0f} % of peak")


if __name__ == "__main__":
    main()
