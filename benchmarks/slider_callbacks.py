"""How fast the notebooks' sliders respond: time each widget callback headless.

    python benchmarks/slider_callbacks.py [--moves 20]

For each explorer (notebook 02's temperature explorer, 04's loss-terms explorer,
05's grid explorer) it moves a slider back and forth and reports the median and
maximum time of the callback (label + figure), and separately the time to render
that figure to PNG, which a Jupyter kernel adds when it displays a new figure.
Notebook 05 pre-renders its grid (``lesson05_lambda_tuning.GridExplorer.prerender``), so in a kernel its
callback only swaps stored pictures; notebooks 02 and 04 render on every move.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time

import torch

import kdlib.data
import kdlib.experiments
import kdlib.models
import kdlib.train
from kdlib.lessons import lesson02_soft_targets, lesson04b_correct_loss, lesson05_lambda_tuning


def time_moves(slider, values, get_figure, moves):
    callback, render = [], []
    for i in range(moves):
        t0 = time.perf_counter()
        slider.value = values[i % len(values)]
        callback.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        get_figure().savefig(io.BytesIO(), format="png", bbox_inches="tight")
        render.append(time.perf_counter() - t0)
    return callback, render


def ms(xs):
    return f"median {1000 * statistics.median(xs):6.1f} ms, max {1000 * max(xs):6.1f} ms"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--moves", type=int, default=20)
    args = ap.parse_args(argv)
    data = kdlib.data.load("fashion-mnist", n_train=1000)
    teacher = kdlib.train.load_teacher()
    val_logits = kdlib.models.predict(teacher, data.val.x[:200])

    results = {}
    ex = lesson02_soft_targets.TemperatureExplorer(val_logits[:10], data.val.x[:10], data.val.y[:10],
                                                   data.classes)
    results["02 temperature explorer (T)"] = time_moves(ex.t_slider, [1.0, 4.0, 8.0, 2.5],
                                                        lambda: ex.figure, args.moves)
    torch.manual_seed(0)
    student_logits = torch.randn(200, 10)
    lt = lesson04b_correct_loss.LossTermsExplorer(student_logits, val_logits, data.val.y[:200])
    results["04 loss-terms explorer (λ)"] = time_moves(lt.lam_slider, [0.1, 0.5, 0.9, 0.3],
                                                       lambda: lt.figure, args.moves)
    digits = kdlib.data.load("digits")
    logits = {"train": torch.randn(len(digits.train), 10), "val": torch.randn(len(digits.val), 10)}
    rows = kdlib.experiments.train_grid(digits, logits, lams=[0.1, 0.5, 0.9], Ts=[2.0, 4.0],
                                   seeds=[0, 1], epochs=1, hidden=8)
    gx = lesson05_lambda_tuning.GridExplorer(rows, teacher_acc=0.9)
    gx.prerender()
    lams = [v for _, v in gx.lam_slider.options]
    cb, _ = time_moves(gx.lam_slider, lams + lams[::-1], lambda: gx.figure, args.moves)
    results["05 grid explorer (λ), pre-rendered"] = (cb, None)

    print(f"{'slider':38s} {'callback (label + figure)':34s} PNG render (kernel adds)")
    for name, (cb, render) in results.items():
        print(f"{name:38s} {ms(cb):34s} {ms(render) if render else 'none: picture stored'}")


if __name__ == "__main__":
    main()
