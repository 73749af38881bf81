"""Time the teacher's evaluation path: its max-pools (PyTorch's vs kdlib's) and predict's chunks.

    python benchmarks/pooling.py [--batch 128] [--repeats 50]

Prints the median milliseconds of ``torch.nn.functional.max_pool2d`` and of
``kdlib.models.FastMaxPool2d`` (the strided-maximum path) on the activations the default
teacher pools (N×32×26×26 and N×64×11×11, after a ReLU), their ratio, and whether the
outputs are equal bit for bit. Then the median seconds of ``kdlib.models.predict`` of the
shipped teacher on the 10,000 test images for several chunk sizes, and whether the logits
equal those of chunks of 1,000. Everything runs in this process: compare ratios.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from kdlib.data import load
from kdlib.models import FastMaxPool2d, predict
from kdlib.train import load_teacher


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
    pool = FastMaxPool2d(2)
    print(f"torch threads: {torch.get_num_threads()}, batch {args.batch}")
    print("input             torch (ms)   kdlib (ms)   speed-up   same bits")
    with torch.no_grad():
        for shape in ((args.batch, 32, 26, 26), (args.batch, 64, 11, 11)):
            x = torch.randn(*shape, generator=gen).relu()
            ref = median_ms(lambda x=x: torch.nn.functional.max_pool2d(x, 2), args.repeats)
            new = median_ms(lambda x=x: pool(x), args.repeats)
            same = torch.equal(pool(x), torch.nn.functional.max_pool2d(x, 2))
            print(f"{'×'.join(map(str, shape)):16s} {ref:10.2f} {new:12.2f} {ref / new:9.1f}×   {same}")
    teacher, x = load_teacher(""), load("fashion-mnist").test.x
    reference = predict(teacher, x, batch_size=1000)
    print("\npredict(teacher, 10,000 test images)\nchunk   seconds   same logits as chunks of 1000")
    for chunk in (64, 128, 256, 512, 1000):
        sec = median_ms(lambda chunk=chunk: predict(teacher, x, batch_size=chunk), 5) / 1e3
        print(f"{chunk:5d} {sec:9.2f}   {torch.equal(predict(teacher, x, batch_size=chunk), reference)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
