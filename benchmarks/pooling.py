"""Time the teacher's two 2×2 max-pools without autograd: PyTorch's kernel vs kdlib's.

    python benchmarks/pooling.py [--batch 128] [--repeats 50]

Prints the median milliseconds of ``torch.nn.functional.max_pool2d`` and of
``kdlib.models.MaxPool2d`` (the strided-maximum path) on the activations the default
teacher pools (N×32×26×26 and N×64×11×11, after a ReLU), their ratio, and whether the
outputs are equal bit for bit. Both run in this process, so the ratio is what to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdlib.models import MaxPool2d


def median_ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds, after 3 warm-up calls."""
    for _ in range(3):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=50)
    args = ap.parse_args(argv)
    gen = torch.Generator().manual_seed(0)
    pool = MaxPool2d(2)
    print(f"torch threads: {torch.get_num_threads()}, batch {args.batch}")
    print("input             torch (ms)   kdlib (ms)   speed-up   same bits")
    with torch.no_grad():
        for shape in ((args.batch, 32, 26, 26), (args.batch, 64, 11, 11)):
            x = torch.randn(*shape, generator=gen).relu()
            ref = median_ms(lambda x=x: torch.nn.functional.max_pool2d(x, 2), args.repeats)
            new = median_ms(lambda x=x: pool(x), args.repeats)
            same = torch.equal(pool(x), torch.nn.functional.max_pool2d(x, 2))
            print(f"{'×'.join(map(str, shape)):16s} {ref:10.2f} {new:12.2f} {ref / new:9.1f}×   {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
