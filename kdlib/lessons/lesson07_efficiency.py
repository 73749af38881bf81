"""Lesson module of ``notebooks/07_efficiency.ipynb``: is the student really cheaper?

Holds what only notebook 07 uses: its settings (:class:`Settings`, made by :func:`check_params`,
with the quick ones); the student
family (MLPs of growing width and a small CNN) trained from scratch and distilled over
seeds; the width × temperature grid; the latency table (batch 1 and 256, median and
quartiles, against the machine's measured matrix-multiply peak); dynamic int8
quantisation and torch.compile; the teacher's cost and the break-even point; the
figures, the break-even widget and the exercises (:data:`EXERCISES`, graded by
:func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import io
import math
import time
import warnings
from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from torch import nn

from kdlib import experiments, metrics, models, plots, results, train
from kdlib._checks import Bool, Float, Int, Verdict, check_answer
from kdlib._checks import check_params as _check_params

INPUT_SHAPE = (1, 28, 28)
TEACHER_STEPS = 2 * math.ceil(55_000 / 128)  # notebook 01's recipe: 2 epochs of batch 128

PARAMS = {"n_train": Int(100, 55_000), "epochs": Int(1, 100), "seeds": Int(1, 10),
        "lam": Float(0.0, 1.0), "T": Float(0.0, 100.0, low_open=True), "lr": Float(0.0, 1.0, low_open=True),
        "repeats": Int(3, 1000), "try_compile": Bool(), "quick": Bool()}
"""Notebook 07's parameters and their allowed values (name → constraint)."""

QUICK = {"n_train": 500, "epochs": 2, "seeds": 1, "repeats": 5, "widths": (8, 64),
         "cnn": False, "grid_widths": (8, 64), "grid_Ts": (1.0, 8.0), "teacher_steps": 3}
"""What ``quick=True`` uses: parameters (sizes) and derived settings (a smoke run of seconds)."""
FULL = {"widths": (8, 32, 128, 512), "cnn": True, "grid_widths": (8, 128),
        "grid_Ts": (1.0, 2.0, 4.0, 8.0), "teacher_steps": 10}
"""The derived settings of a full run."""


@dataclass(frozen=True)
class Settings:
    """Notebook 07's parameters, validated, with ``quick`` applied (made by :func:`check_params`).

    Attributes
    ----------
    n_train : int
        Training images every student learns from, in [100, 55000].
    epochs : int
        Training epochs per student, in [1, 100].
    seeds : int
        Seeds per student, in [1, 10].
    lam : float
        Weight of the hard-label term, in [0, 1].
    T : float
        Distillation temperature, in (0, 100].
    lr : float
        Peak learning rate, in (0, 1].
    repeats : int
        Timed repeats per latency measurement at batch 1, in [3, 1000].
    try_compile : bool
        Also try ``torch.compile``.
    quick : bool
        A smoke run of seconds (:data:`QUICK`).
    """

    n_train: int
    epochs: int
    seeds: int
    lam: float
    T: float
    lr: float
    repeats: int
    try_compile: bool
    quick: bool

    def _derived(self, name):
        return (QUICK if self.quick else FULL)[name]

    @property
    def widths(self) -> tuple:
        """Hidden widths of the MLP family."""
        return self._derived("widths")

    @property
    def cnn(self) -> bool:
        """Whether the family includes the small CNN."""
        return self._derived("cnn")

    @property
    def grid_widths(self) -> tuple:
        """Widths of the width × temperature grid."""
        return self._derived("grid_widths")

    @property
    def grid_Ts(self) -> tuple:
        """Temperatures of that grid (always containing ``T``)."""
        return tuple(sorted({*self._derived("grid_Ts"), self.T}))

    @property
    def teacher_steps(self) -> int:
        """Teacher training steps timed for the teacher's cost."""
        return self._derived("teacher_steps")


def check_params(**params) -> Settings:
    """Validate notebook 07's parameters; return the settings to run with.

    Parameters
    ----------
    **params
        Every parameter of the notebook's ``parameters`` cell, by name (see
        :class:`Settings`); ``quick=True`` replaces the sizes by :data:`QUICK`.

    Returns
    -------
    Settings

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and what is allowed.
    """
    p = _check_params(params, PARAMS)
    if p["quick"]:
        p.update({k: v for k, v in QUICK.items() if k in p})
    return Settings(**p)


# ------------------------------------------------------------------ the student family
def family(widths, *, with_cnn: bool = True) -> dict:
    """Name → builder of every student: ``mlp-W`` (784–W–10) per width, and ``cnn-4-8``.

    Parameters
    ----------
    widths : iterable of int
        Hidden units of the MLP students.
    with_cnn : bool
        Add ``cnn-4-8`` (:func:`kdlib.models.cnn` with channels (4, 8), hidden 32).

    Returns
    -------
    dict of str to callable
        Name → zero-argument builder of a fresh, untrained model, MLPs first.
    """
    out = {f"mlp-{w}": (lambda w=w: models.mlp([784, w, 10])) for w in widths}
    if with_cnn:
        out["cnn-4-8"] = lambda: models.cnn(channels=(4, 8), hidden=32)
    return out


def methods(lam: float, T: float) -> dict:
    """The two ways this lesson trains a student: ``"scratch"`` (cross-entropy) and
    ``"distilled"`` (``kd_loss`` with ``lam``, ``T`` and cached teacher logits).

    Parameters
    ----------
    lam : float in [0, 1]
    T : float > 0

    Returns
    -------
    dict
        Name → :class:`kdlib.experiments.Method`.
    """
    return {"scratch": experiments.scratch(), "distilled": experiments.kd(lam, T, name="distilled")}


def _measure(student, config, data) -> dict:
    return {"test_acc": metrics.accuracy(student, data.test.x, data.test.y),
            "params": models.count_params(student), "flops": models.flops(student, INPUT_SHAPE)}


def train_family(data, teacher_logits, *, widths, with_cnn, seeds, epochs, lam, T, lr,
                 progress: bool = True):
    """Every student of :func:`family`, scratch and distilled, for every seed.

    Parameters
    ----------
    data : kdlib.data.Splits
    teacher_logits : Tensor
        The teacher's logits on ``data.train``.
    widths : sequence of int
    with_cnn : bool
    seeds, epochs : int
    lam, T, lr : float
    progress : bool

    Returns
    -------
    tuple
        ``(rows, trained)``: one row per student (``model``, ``method``, ``lam``, ``T``,
        ``eps``, ``seed``, ``test_acc``, ``params``, ``flops``, ``seconds``);
        ``trained[(model, method)]`` is the seed-0 model (latency does not depend on the
        weights).
    """
    settings = train.TrainSettings(epochs=epochs, lr=lr)
    configs = [experiments.Config(build, m, seed, settings, labels={"model": name})
               for name, build in family(widths, with_cnn=with_cnn).items()
               for m in methods(lam, T).values() for seed in range(seeds)]
    rows = experiments.train_students(configs, data, teacher_logits=teacher_logits,
                                      evaluate=_measure, keep=lambda c: c.seed == 0,
                                      progress=progress)
    trained = {(r["model"], r["method"]): r.pop("student") for r in rows if "student" in r}
    return rows, trained


def family_summary(rows) -> list[dict]:
    """Per model: params, FLOPs, scratch and distilled accuracy (mean, sd) and the paired gain.

    Parameters
    ----------
    rows : list of dict
        :func:`train_family`'s rows (``model``, ``method`` "scratch"/"distilled", ``seed``,
        ``test_acc``, ``params``, ``flops``).

    Returns
    -------
    list of dict
        Per model, in first-seen order: ``model``, ``params``, ``flops``, ``scratch`` and
        ``distilled`` (test accuracies sorted by seed) and ``gain`` (distilled minus scratch,
        :class:`kdlib.results.PairedDifference`; None with a single scratch seed).
    """
    out = []
    for name in dict.fromkeys(r["model"] for r in rows):
        mine = [r for r in rows if r["model"] == name]
        acc = {m: [r["test_acc"] for r in sorted(mine, key=lambda r: r["seed"]) if r["method"] == m]
               for m in ("scratch", "distilled")}
        gain = results.paired_difference(acc["distilled"], acc["scratch"]) if len(acc["scratch"]) > 1 \
            else None
        out.append({"model": name, "params": mine[0]["params"], "flops": mine[0]["flops"],
                    "scratch": acc["scratch"], "distilled": acc["distilled"], "gain": gain})
    return out


def format_family(summary, teacher_acc: float, teacher_params: int, teacher_flops: int) -> str:
    """The accuracy / params / FLOPs table with the paired KD gain and its 95 % CI.

    Parameters
    ----------
    summary : list of dict
        :func:`family_summary`'s result.
    teacher_acc : float
        The teacher's test accuracy, in [0, 1].
    teacher_params, teacher_flops : int
        Its parameters and FLOPs per image.

    Returns
    -------
    str
        One line per student, then the teacher's.
    """
    lines = [f"{'model':9} {'params':>8} {'FLOPs':>10} {'scratch':>17} {'distilled':>17}   "
             "KD gain (points, 95 % CI)"]
    for s in summary:
        gain = s["gain"].format(digits=2) if s["gain"] is not None else \
            f"{100 * (s['distilled'][0] - s['scratch'][0]):+.2f} points (1 seed)"
        lines.append(f"{s['model']:9} {s['params']:>8,} {s['flops']:>10,} "
                     f"{results.format_pct(s['scratch']):>17} {results.format_pct(s['distilled']):>17}"
                     f"   {gain}")
    lines.append(f"{'teacher':9} {teacher_params:>8,} {teacher_flops:>10,} "
                 f"{100 * teacher_acc:>15.2f} %")
    return "\n".join(lines)


def width_T_grid(data, teacher_logits, *, widths, Ts, seeds, epochs, lam, lr, done=(),
                 progress: bool = True) -> list[dict]:
    """Distilled MLP students for every width × temperature × seed (test accuracy).

    ``done`` holds rows of :func:`train_family` to reuse (same width, the same T).

    Parameters
    ----------
    data : kdlib.data.Splits
    teacher_logits : torch.Tensor
        The teacher's logits on ``data.train``.
    widths, Ts : sequence
        Hidden units of the ``mlp([784, w, 10])`` students and temperatures.
    seeds, epochs : int
        Seeds ``0 .. seeds-1`` per cell, epochs per student.
    lam, lr : float
        λ of :func:`kdlib.experiments.kd` and the learning rate (default schedule otherwise).
    done : iterable of dict
        Rows keyed by ``model``, ``seed`` and ``T`` only: λ, lr and epochs are not compared.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of dict
        ``width``, ``T``, ``seed``, ``test_acc`` for every width × T × seed, in that order.
    """
    settings = train.TrainSettings(epochs=epochs, lr=lr)
    done = {(r["model"], r["seed"], r["T"]): r["test_acc"] for r in done if r["method"] == "distilled"}
    keys = [(w, T, seed) for w in widths for T in Ts for seed in range(seeds)]
    todo = [experiments.Config(lambda w=w: models.mlp([784, w, 10]),
                               experiments.kd(lam, T, name="distilled"), seed, settings,
                               labels={"width": w}) for w, T, seed in keys
            if (f"mlp-{w}", seed, T) not in done]
    trained = experiments.train_students(todo, data, teacher_logits=teacher_logits,
                                         evaluate=experiments.accuracy_on("test"),
                                         progress=progress, desc="width × T")
    done.update({(f"mlp-{r['width']}", r["seed"], r["T"]): r["test_acc"] for r in trained})
    return [{"width": w, "T": T, "seed": seed, "test_acc": done[(f"mlp-{w}", seed, T)]}
            for w, T, seed in keys]


def best_T_per_width(grid_rows) -> dict:
    """Width → (T with the highest mean accuracy, that mean).

    Parameters
    ----------
    grid_rows : list of dict
        :func:`width_T_grid`'s rows.

    Returns
    -------
    dict of int to (float, float)
        Width → (best T, its mean test accuracy); the first T in the rows wins ties.
    """
    out = {}
    for w in dict.fromkeys(r["width"] for r in grid_rows):
        means = {T: float(np.mean([r["test_acc"] for r in grid_rows if r["width"] == w and r["T"] == T]))
                 for T in dict.fromkeys(r["T"] for r in grid_rows)}
        best = max(means, key=means.get)
        out[w] = (best, means[best])
    return out


# ------------------------------------------------------------------ latency
def latency_table(named_models: dict, *, repeats: int, batch_sizes=(1, 256), threads=None) -> list:
    """Latency of every model at every batch size (:func:`kdlib.metrics.latency_stats`).

    Returns
    -------
    list of dict
        ``model``, ``batch``, ``median``, ``q25``, ``q75`` (seconds per batch),
        ``per_example`` and ``gflops`` (FLOPs done per second at that batch size).
    """
    rows = []
    for name, model in named_models.items():
        f = models.flops(model, INPUT_SHAPE)
        for b in batch_sizes:
            st = metrics.latency_stats(model, INPUT_SHAPE, batch_size=b,
                                       repeats=max(3, repeats if b == 1 else repeats // 4),
                                       warmup=3, threads=threads)
            rows.append({"model": name, "batch": b, "median": st["median"], "q25": st["q25"],
                         "q75": st["q75"], "per_example": st["per_example"], "flops": f,
                         "gflops": f * b / st["median"] / 1e9, "threads": st["threads"]})
    return rows


def format_latency(rows, peak_gflops: float) -> str:
    """Batch-1 and batch-256 latency (median [q25–q75]) and the share of the GEMM peak.

    Parameters
    ----------
    rows : list of dict
        :func:`latency_table`'s rows (batch 1 shown in µs, other batches in ms).
    peak_gflops : float
        The machine's measured GEMM peak, GFLOP/s.

    Returns
    -------
    str
        One line per model.
    """
    lines = [f"{'model':9} {'batch 1 (µs)':>22} {'% peak':>7} {'batch 256 (ms)':>22} {'% peak':>7}"]
    for name in dict.fromkeys(r["model"] for r in rows):
        cells = []
        for r in (r for r in rows if r["model"] == name):
            scale = 1e6 if r["batch"] == 1 else 1e3
            cells.append(f"{scale * r['median']:>8.1f} [{scale * r['q25']:.1f}–{scale * r['q75']:.1f}]"
                         .rjust(22) + f" {100 * r['gflops'] / peak_gflops:>6.1f}")
        lines.append(f"{name:9} " + " ".join(cells))
    return "\n".join(lines)


def speed_ratio(rows, fast: str, slow: str, batch: int) -> float:
    """How many times faster ``fast`` is than ``slow`` at ``batch`` (median latencies).

    Parameters
    ----------
    rows : list of dict
        :func:`latency_table`'s rows.
    fast, slow : str
        Model names in ``rows``.
    batch : int
        A batch size measured for both.

    Returns
    -------
    float
        ``median(slow) / median(fast)``; above 1 when ``fast`` really is faster.
    """
    get = {(r["model"], r["batch"]): r["median"] for r in rows}
    return get[(slow, batch)] / get[(fast, batch)]


# ------------------------------------------------------------------ making it cheaper still
def size_on_disk(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())`` (what shipping the weights costs).

    Parameters
    ----------
    model : nn.Module

    Returns
    -------
    int
        Bytes, serialised in memory (no file is written).
    """
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes


def quantize(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantisation of the ``nn.Linear`` layers (weights int8, activations
    quantised on the fly), as ``torch.ao.quantization.quantize_dynamic`` does it.

    Parameters
    ----------
    model : nn.Module
        A float model; it is not modified.

    Returns
    -------
    nn.Module
        A quantised copy (CPU inference only).
    """
    # imported here, not at the top: a deprecated API (moving to torchao) that only this step uses
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its deprecation notice points at torchao
        return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


def try_compile(model: nn.Module) -> tuple:
    """``torch.compile(model)`` run once; ``(compiled or None, message, seconds)``.

    Parameters
    ----------
    model : nn.Module
        Called once on a zero batch of shape ``(1, *INPUT_SHAPE)``.

    Returns
    -------
    (compiled, message, seconds) : (nn.Module or None, str, float)
        None and the error's first line (at most 200 characters) when compiling or the call fails.
    """
    t0 = time.perf_counter()
    try:
        compiled = torch.compile(model)
        with torch.inference_mode():
            compiled(torch.zeros(1, *INPUT_SHAPE))
    except Exception as exc:  # no compiler, unsupported CPU: the message is the lesson
        first = (str(exc).splitlines() or [""])[0][:200]
        return None, f"torch.compile failed: {type(exc).__name__}: {first}", time.perf_counter() - t0
    seconds = time.perf_counter() - t0
    return compiled, f"torch.compile worked (first call, compiling included: {seconds:.1f} s)", seconds


def cheaper_still(model: nn.Module, data, *, repeats: int, compile_too: bool) -> list[dict]:
    """Size, batch-1 and batch-256 latency and test accuracy of ``model``, its int8 version
    and (if ``compile_too``) its compiled version. A failure is a row with its message.

    Parameters
    ----------
    model : nn.Module
        The float32 student.
    data : kdlib.data.Splits
        Its ``test`` split gives the accuracy.
    repeats : int
        Timed repeats per latency (:func:`kdlib.metrics.latency_stats`, 3 warm-up calls).
    compile_too : bool
        Also try :func:`try_compile`.

    Returns
    -------
    list of dict
        ``variant``, ``bytes`` (the compiled one reports the float model's size), ``lat1`` and
        ``lat256`` (median seconds per batch), ``test_acc``; or ``variant`` and ``error``.
    """
    variants = {"float32": model, "int8 dynamic": quantize(model)}
    rows = []
    if compile_too:
        compiled, msg, _ = try_compile(model)
        if compiled is None:
            rows.append({"variant": "compiled", "error": msg})
        else:
            variants["compiled"] = compiled
    for name, m in variants.items():
        lat = {b: metrics.latency_stats(m, INPUT_SHAPE, batch_size=b, repeats=repeats, warmup=3)
               for b in (1, 256)}
        rows.append({"variant": name, "bytes": size_on_disk(m if name != "compiled" else model),
                     "lat1": lat[1]["median"], "lat256": lat[256]["median"],
                     "test_acc": metrics.accuracy(m, data.test.x, data.test.y)})
    return rows


def format_cheaper(rows) -> str:
    """:func:`cheaper_still`'s rows as a text table: size (kB), latencies and test accuracy.

    Parameters
    ----------
    rows : list of dict
        A row with ``error`` prints its message instead of numbers.

    Returns
    -------
    str
    """
    lines = [f"{'variant':13} {'size (kB)':>9} {'batch 1 (µs)':>12} {'batch 256 (ms)':>14} {'test acc':>9}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['variant']:13} {r['error']}")
            continue
        lines.append(f"{r['variant']:13} {r['bytes'] / 1e3:>9.1f} {1e6 * r['lat1']:>12.1f} "
                     f"{1e3 * r['lat256']:>14.2f} {100 * r['test_acc']:>8.2f} %")
    return "\n".join(lines)


# ------------------------------------------------------------------ what the teacher costs
def teacher_step_time(data, *, steps: int, batch_size: int = 128, seed: int = 0) -> float:
    """Median seconds of one training step (forward, backward, Adam) of the teacher's CNN.

    Parameters
    ----------
    data : kdlib.data.Splits
        Batches are drawn with replacement from ``data.train``.
    steps : int
        Steps timed, after one untimed warm-up step; ``>= 1``.
    batch_size, seed : int
        Images per step; seed of the fresh ``models.cnn()`` and of the batch draws.

    Returns
    -------
    float
        Seconds.
    """
    torch.manual_seed(seed)
    net = models.cnn()
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(seed)
    times = []
    net.train()
    for _ in range(steps + 1):
        idx = torch.randint(0, len(data.train.y), (batch_size,), generator=g)
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(data.train.x[idx]), data.train.y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return float(np.median(times[1:]))  # the first step pays one-off allocation


def teacher_cost(teacher, data, build, *, epochs: int, lam: float, T: float, lr: float,
                 steps: int) -> dict:
    """Seconds of each part of distillation, measured in this run.

    ``teacher_train``: the per-step time of the teacher's CNN × :data:`TEACHER_STEPS`
    (notebook 01's recipe; measured on ``steps`` steps, extrapolated);
    ``teacher_pass``: one teacher pass over the transfer set (the cached logits);
    ``student_cached`` / ``student_per_batch``: distilling the student built by ``build``
    with cached logits / with the teacher run on every batch.

    Parameters
    ----------
    teacher : nn.Module
        The trained teacher whose logits are cached or computed per batch.
    data : kdlib.data.Splits
    build : callable
        ``build() -> nn.Module``, the student (called after ``torch.manual_seed(0)``).
    epochs : int
    lam, T, lr : float
        Passed to :func:`kdlib.train.distill`.
    steps : int
        Steps timed by :func:`teacher_step_time`.

    Returns
    -------
    dict of str to float
        Seconds: ``teacher_step`` (one step) and the four parts above.
    """
    step = teacher_step_time(data, steps=steps)
    t0 = time.perf_counter()
    logits = models.predict(teacher, data.train.x)
    t_pass = time.perf_counter() - t0
    out = {"teacher_step": step, "teacher_train": step * TEACHER_STEPS, "teacher_pass": t_pass}
    for key, kw in (("student_cached", {"teacher_logits": logits}),
                    ("student_per_batch", {"teacher_per_batch": True})):
        torch.manual_seed(0)
        s = build()
        t0 = time.perf_counter()
        train.distill(s, teacher, data, lam=lam, T=T, epochs=epochs, lr=lr, progress=False, **kw)
        out[key] = time.perf_counter() - t0
    return out


def break_even(cost_s: float, teacher_s: float, student_s: float) -> float:
    """Predictions after which serving the student instead of the teacher has repaid
    ``cost_s`` seconds of extra compute (``inf`` if the student is not faster).

    Parameters
    ----------
    cost_s : float
        Seconds spent to get the student (e.g. teacher pass + student training).
    teacher_s, student_s : float
        Seconds per prediction of each model.
    """
    saving = teacher_s - student_s
    return math.inf if saving <= 0 else cost_s / saving


class BreakEvenWidget:
    """A queries-per-day slider → days until the student has repaid its distillation.

    ``.text`` is the label's text; ``.days`` the current answer.

    Parameters
    ----------
    predictions_to_break_even : float
        Predictions after which the student's saving has repaid distillation (:func:`break_even`).
    description : str
        Optional HTML shown under the label.

    Attributes
    ----------
    slider : ipywidgets.FloatLogSlider
        Queries per day, 1 to 10**7 (starts at 10**4).
    days : float
        ``predictions_to_break_even / queries_per_day``.
    text : str
        The answer, in seconds, minutes, hours or days.
    """

    def __init__(self, predictions_to_break_even: float, *, description: str = ""):
        self.n = float(predictions_to_break_even)
        self.slider = widgets.FloatLogSlider(value=1e4, base=10, min=0, max=7, step=0.25,
                                             description="queries/day", readout_format=".3g")
        self.label = widgets.Label()
        self.widget = widgets.VBox([self.slider, self.label] +
                                   ([widgets.HTML(description)] if description else []))
        self.slider.observe(self._update, names="value")
        self._update()

    def _update(self, change=None) -> None:
        q = float(self.slider.value)
        self.days = self.n / q
        when = (f"{self.days * 24 * 3600:.1f} seconds" if self.days < 1 / 24 / 60 else
                f"{self.days * 24 * 60:.1f} minutes" if self.days < 1 / 24 else
                f"{self.days * 24:.1f} hours" if self.days < 1 else f"{self.days:,.1f} days")
        self.text = f"{q:,.0f} queries per day: the student repays its distillation after {when}"
        self.label.value = self.text

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ------------------------------------------------------------------ figures
def _mean_sd(v):
    return float(np.mean(v)), (results.sample_sd(v) if len(v) > 1 else 0.0)


def pareto_figure(summary, latency_rows, teacher: dict) -> Figure:
    """Test accuracy against parameters, FLOPs and batch-1 latency (log x), scratch and
    distilled (mean ± sd), the teacher as a star, the Pareto front of all points dashed.

    Parameters
    ----------
    summary : list of dict
        :func:`family_summary`'s result.
    latency_rows : list of dict
        :func:`latency_table`'s rows, with a batch-1 row of every model and of ``"teacher"``.
    teacher : dict
        ``acc``, ``params`` and ``flops`` of the teacher.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, 13 × 3.8 inches.
    """
    lat = {r["model"]: 1e6 * r["median"] for r in latency_rows if r["batch"] == 1}  # µs
    fig, ax = plots.new_figure(13, 3.8, ncols=3)
    for a, key, label in zip(ax[0], ("params", "flops", "latency"),
                             ("parameters", "FLOPs per image", "latency at batch 1 (µs)")):
        xs, ys = [], []
        for method, color, marker in (("scratch", "tab:blue", "o"), ("distilled", "tab:orange", "s")):
            x = [lat[s["model"]] if key == "latency" else s[key] for s in summary]
            m = [_mean_sd(s[method]) for s in summary]
            a.errorbar(x, [v[0] for v in m], yerr=[v[1] for v in m], fmt=marker, color=color,
                       label=method, capsize=3)
            xs += x
            ys += [v[0] for v in m]
        tx = lat["teacher"] if key == "latency" else teacher[key]
        a.plot([tx], [teacher["acc"]], "*", ms=14, color="black", label="teacher")
        xs.append(tx)
        ys.append(teacher["acc"])
        front = metrics.pareto_front(xs, ys)
        a.plot([xs[i] for i in front], [ys[i] for i in front], "--", color="gray", lw=1,
               label="Pareto front")
        for s in summary:
            a.annotate(s["model"], (lat[s["model"]] if key == "latency" else s[key],
                                    float(np.mean(s["distilled"]))),
                       fontsize=7, xytext=(3, -10), textcoords="offset points")
        a.set_xscale("log")
        a.xaxis.set_minor_formatter(NullFormatter())  # no crowded minor labels on short ranges
        a.set(xlabel=label, ylabel="test accuracy")
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize="small", loc="lower right")
    return fig


def width_T_figure(grid_rows) -> Figure:
    """Distilled accuracy against T, one line per width (mean ± sd over seeds).

    Parameters
    ----------
    grid_rows : list of dict
        :func:`width_T_grid`'s rows; T on a log-2 axis.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plots.new_figure(6.4, 3.8)
    a = ax[0, 0]
    Ts = sorted(dict.fromkeys(r["T"] for r in grid_rows))
    for w in dict.fromkeys(r["width"] for r in grid_rows):
        m = [_mean_sd([r["test_acc"] for r in grid_rows if r["width"] == w and r["T"] == T]) for T in Ts]
        a.errorbar(Ts, [v[0] for v in m], yerr=[v[1] for v in m], marker="o", capsize=3,
                   label=f"mlp-{w}")
    a.set_xscale("log", base=2)
    a.set_xticks(Ts, [f"{T:g}" for T in Ts])
    a.set(xlabel="temperature T", ylabel="test accuracy (distilled)",
          title="which T suits which width?")
    a.legend(fontsize="small")
    a.grid(alpha=0.3)
    return fig


def overhead_figure(latency_rows, peak_gflops: float) -> Figure:
    """Achieved GFLOP/s against FLOPs per batch, batch 1 and 256, with the measured peak.

    Parameters
    ----------
    latency_rows : list of dict
        :func:`latency_table`'s rows; only batches 1 and 256 are drawn.
    peak_gflops : float
        The measured GEMM peak, a dashed line.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plots.new_figure(6.4, 3.8)
    a = ax[0, 0]
    for b, marker in ((1, "o"), (256, "s")):
        rs = [r for r in latency_rows if r["batch"] == b]
        a.plot([r["flops"] * b for r in rs], [r["gflops"] for r in rs], marker, label=f"batch {b}")
        for r in rs:
            a.annotate(r["model"], (r["flops"] * b, r["gflops"]), fontsize=7, xytext=(3, 3),
                       textcoords="offset points")
    a.axhline(peak_gflops, color="black", ls="--", lw=1, label="measured GEMM peak")
    a.set_xscale("log")
    a.set_yscale("log")
    a.set(xlabel="FLOPs per forward call", ylabel="achieved GFLOP/s",
          title="achieved GFLOP/s against the work of one call")
    a.legend(fontsize="small")
    a.grid(alpha=0.3)
    return fig


# ------------------------------------------------------------------ exercises
EXERCISES = {
    1: (2 * (784 * 64 + 64 * 10), 0.5,
        "count 2 × (inputs × outputs) for each Linear layer: 784×64 and 64×10"),
    2: (20_000, 1.0, "cost / saving per prediction: 30 s / (0.002 s − 0.0005 s)"),
    3: ("b", None, "look at the batch-1 column: what does the tiniest model spend its time on?"),
}
"""Exercise number → ``(want, tolerance, hint)`` for :func:`kdlib._checks.check_answer`
(1: the FLOPs of mlp-64; 2: the break-even number of predictions; 3: the letter of the answer)."""


def check_exercise(n: int, answer) -> Verdict:
    """Say whether ``answer`` to exercise ``n`` is right, with a hint when it is not.

    Parameters
    ----------
    n : int
        The exercise, 1 to 3 (:data:`EXERCISES`).
    answer
        A number (1, 2) or a letter (3).

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``; truthy when right.
    """
    return check_answer(EXERCISES, n, answer)


__all__ = ["PARAMS", "QUICK", "FULL", "Settings", "check_params", "family", "methods", "train_family",
           "family_summary",
           "format_family", "width_T_grid", "best_T_per_width", "latency_table", "format_latency",
           "speed_ratio", "size_on_disk", "quantize", "try_compile", "cheaper_still",
           "format_cheaper", "teacher_step_time", "teacher_cost", "break_even", "BreakEvenWidget",
           "pareto_figure", "width_T_figure", "overhead_figure", "EXERCISES", "check_exercise"]
