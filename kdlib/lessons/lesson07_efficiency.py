"""Lesson module of ``notebooks/07_efficiency.ipynb``: is the student really cheaper?

Holds what only notebook 07 uses: its settings (:class:`Settings`, made by :func:`check_params`,
with the quick ones); the student family (MLPs of growing width, each seed with its own
training images), trained from scratch and distilled with one tuning budget, chosen on the
validation split (:func:`train_family`, :func:`selection`), and the primary comparison and the
KD gain against width (:func:`primary_table`, :func:`gain_by_width`); the latency table (batch
1 and 256, median and quartiles, against the machine's measured matrix-multiply peak); dynamic
int8 quantisation and torch.compile; the teacher's cost and the break-even point; the figures,
the break-even widget, the ``say_*`` sentences that follow the run, and the exercises
(:data:`EXERCISES`, graded by :func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import io
import math
import time
import warnings

import ipywidgets as widgets
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from torch import nn

from kdlib import data as kdata
from kdlib import experiments, metrics, models, plots, results, train
from kdlib._checks import (
    QUICK_RUN,
    Bool,
    Float,
    Int,
    Param,
    exercise_checker,
    settings_checker,
    settings_class,
)

INPUT_SHAPE = (1, 28, 28)
TEACHER_STEPS = 2 * math.ceil(55_000 / 128)  # notebook 01's recipe: 2 epochs of batch 128
HINTON_T_RANGE = (2.5, 4.0)  # Hinton et al. 2015, §3: best temperatures for 30-unit students

PARAMS = {
    "n_train": Param(Int(100, 55_000), "Training images of every student (each seed draws its own)."),
    "epochs": Param(Int(1, 100), "Training epochs per student."),
    "seeds": Param(Int(1, 10), "Seeds per candidate, each with its own training images."),
    "lam": Param(Float(0.0, 1.0), "Weight of the hard-label term of the distilled students."),
    "T": Param(Float(0.0, 100.0, low_open=True), "A temperature always among the candidates."),
    "lr": Param(Float(0.0, 1.0, low_open=True),
        "The largest peak learning rate tried (the candidates are ``lr / 3`` and ``lr``)."),
    "repeats": Param(Int(3, 1000), "Timed repeats per latency measurement at batch 1."),
    "try_compile": Param(Bool(), "Also try ``torch.compile``."),
    "quick": QUICK_RUN,
}
"""Notebook 07's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

QUICK = {"n_train": 500, "epochs": 2, "seeds": 2, "repeats": 5, "widths": (8, 128),
         "cost_only": ("mlp-512",), "Ts": (1.0, 4.0), "teacher_steps": 3}
"""What ``quick=True`` uses: parameters (sizes) and derived settings (a smoke run of seconds)."""
FULL = {"widths": (8, 32, 128), "cost_only": ("mlp-512", "cnn-4-8"), "Ts": (1.0, 2.0, 4.0, 8.0),
        "teacher_steps": 10}
"""The derived settings of a full run: the trained widths, the architectures measured for cost
only (not trained), the temperature candidates and the timed teacher steps."""

PRIMARY = "mlp-128"
"""The student of the primary comparison (and of Steps 5 and 6)."""


@settings_class(PARAMS)
class Settings:
    """Notebook 07's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""

    def _derived(self, name):
        return (QUICK if self.quick else FULL)[name]

    @property
    def widths(self) -> tuple:
        """Hidden widths of the trained MLP students (always containing :data:`PRIMARY`'s)."""
        return self._derived("widths")

    @property
    def cost_only(self) -> tuple:
        """Architectures measured for parameters, FLOPs and latency only (not trained)."""
        return self._derived("cost_only")

    @property
    def Ts(self) -> tuple:
        """Temperature candidates of the distilled students (always containing ``T``)."""
        return tuple(sorted({*self._derived("Ts"), self.T}))

    @property
    def lrs(self) -> tuple:
        """Peak learning-rate candidates, the same for every method."""
        return (self.lr / 3, self.lr)

    @property
    def teacher_steps(self) -> int:
        """Teacher training steps timed for the teacher's cost."""
        return self._derived("teacher_steps")


check_params = settings_checker(Settings, PARAMS, quick=QUICK)


# ------------------------------------------------------------------ data: one sample per seed
def student_data(n_train: int, seeds: int):
    """The pool of training images the seeds draw from, and each seed's rows.

    Parameters
    ----------
    n_train, seeds : int

    Returns
    -------
    tuple
        ``(pool, rows)``: :class:`kdlib.data.Splits` whose ``train`` holds
        ``min(55000, seeds × n_train)`` images (``val``: the 5,000 validation images,
        ``test``: the 10,000 test images), and :func:`kdlib.experiments.sample_rows`.
    """
    pool, rows, _ = experiments.sampled_splits(n_train, seeds)
    return pool, [rows[s] for s in range(seeds)]


# ------------------------------------------------------------------ the student family
def family(widths, *, cost_only=()) -> dict:
    """Name → builder of every architecture: ``mlp-W`` (784–W–10) per width, then those of
    ``cost_only`` (``"mlp-W"`` or ``"cnn-4-8"``, the small CNN).

    Parameters
    ----------
    widths : sequence of int
    cost_only : sequence of str

    Returns
    -------
    dict
        Name → ``build() -> nn.Module``.
    """
    out = {f"mlp-{w}": experiments.mlp_builder([784, w, 10]) for w in widths}
    for name in cost_only:
        if name == "cnn-4-8":
            out[name] = lambda: models.cnn(channels=(4, 8), hidden=32)
        elif name.startswith("mlp-"):
            out[name] = experiments.mlp_builder([784, int(name[4:]), 10])
        else:
            raise ValueError(f"cost_only has {name!r}; allowed: 'mlp-<width>' or 'cnn-4-8'")
    return out


def architecture_table(builds: dict, teacher: nn.Module) -> pd.DataFrame:
    """Parameters and FLOPs per image of every architecture and the teacher.

    Parameters
    ----------
    builds : dict
        :func:`family`.
    teacher : nn.Module

    Returns
    -------
    pandas.DataFrame
        Indexed by model: ``params``, ``FLOPs``.
    """
    nets = {name: build() for name, build in builds.items()} | {"teacher": teacher}
    return pd.DataFrame({"params": [models.count_params(m) for m in nets.values()],
                         "FLOPs": [models.flops(m, INPUT_SHAPE) for m in nets.values()]},
                        index=pd.Index(list(nets), name="model"))


def train_family(pool, rows, teacher_logits, settings: Settings, *, progress: bool = True) -> dict:
    """Every candidate of every trained width, every seed; choose on validation, test once.

    The budget is the same for both methods: the peak learning rates ``settings.lrs`` for
    the student from scratch and for the distilled one, which also tries every temperature of
    ``settings.Ts`` at ``settings.lam``. Every student sees its seed's ``rows`` and is scored
    on the validation split; per width and method, the candidate with the best mean
    validation accuracy over the seeds is chosen, and only the chosen students are scored on
    the test split. Students of one width train together in lockstep
    (:func:`kdlib.experiments.train_students`).

    Parameters
    ----------
    pool : kdlib.data.Splits
        :func:`student_data`'s pool.
    rows : dict
        Seed → pool rows (:func:`kdlib.experiments.sample_rows`).
    teacher_logits : Tensor
        The teacher's logits on ``pool.train``.
    settings : Settings
    progress : bool

    Returns
    -------
    dict
        ``"grid"``: a DataFrame of every student (``model``, ``width``, ``lr``, ``method``,
        ``lam``, ``T``, ``seed``, ``val_acc``, ``seconds``); ``"chosen"``: the chosen students
        with ``test_acc`` too; ``"models"``: ``{(model, method): the chosen seed-0 student}``.
    """
    configs = [experiments.Config(experiments.mlp_builder([784, w, 10]), m, seed,
                                  train.TrainSettings(epochs=settings.epochs, lr=lr), rows=rows[seed],
                                  labels={"model": f"mlp-{w}", "width": w, "lr": lr})
               for w in settings.widths
               for m in [experiments.scratch()] + [experiments.kd(settings.lam, T, name="distilled")
                                                   for T in settings.Ts]
               for lr in settings.lrs for seed in range(settings.seeds)]
    out = experiments.train_students(  # no per-epoch validation: the pool's train split only
        configs, pool.train, teacher_logits=teacher_logits, keep=lambda c: True, progress=progress,
        evaluate=lambda model, c, d: {"val_acc": metrics.accuracy(model, pool.val.x, pool.val.y)})
    student = {id(r): r.pop("student") for r in out}
    picked = experiments.chosen(out, experiments.choose(out, **_CHOICE), **_CHOICE)
    chosen = results.frame([{**r, "test_acc": metrics.accuracy(student[id(r)], pool.test.x, pool.test.y)}
                            for r in picked])
    kept = {(r["model"], r["method"]): student[id(r)] for r in picked if r["seed"] == 0}
    return {"grid": results.frame(out), "chosen": chosen, "models": kept}


_CHOICE = {"by": ("lr", "T"), "within": ("model", "method")}  # what a candidate is; what chooses one


def selection(grid: pd.DataFrame) -> pd.DataFrame:
    """Per model and method, the candidate with the best mean validation accuracy.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`train_family`'s ``"grid"``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(model, method)``: the chosen ``lr``, ``T``, ``val_acc`` (its mean over
        the seeds) and ``candidates`` (how many were tried).
    """
    best = experiments.choose(grid, **_CHOICE)
    return pd.DataFrame([{"model": model, "method": method, "lr": c["lr"], "T": c["T"], "val_acc": c["mean"],
                          "candidates": c["candidates"]} for (model, method), c in best.items()]
                        ).set_index(["model", "method"])


def primary_table(chosen: pd.DataFrame, model: str = PRIMARY) -> pd.DataFrame:
    """The primary comparison: test accuracy of ``model``, distilled against scratch, paired
    by seed (:func:`kdlib.results.compare`).

    Parameters
    ----------
    chosen : pandas.DataFrame
        :func:`train_family`'s ``"chosen"``.
    model : str

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.results.compare`'s table (``scratch`` the reference).
    """
    return results.compare(chosen[chosen["model"] == model], by="method", metric="test_acc",
                           reference="scratch")


def gain_by_width(chosen: pd.DataFrame, arch: pd.DataFrame, primary: str = PRIMARY) -> pd.DataFrame:
    """The KD gain (distilled − scratch, test accuracy, paired by seed) of every trained width.

    Parameters
    ----------
    chosen : pandas.DataFrame
        :func:`train_family`'s ``"chosen"``.
    arch : pandas.DataFrame
        :func:`architecture_table` (parameters and FLOPs).
    primary : str
        The model of the primary comparison; the others are labelled exploratory.

    Returns
    -------
    pandas.DataFrame
        Indexed by model: ``params``, ``FLOPs``, ``scratch``, ``distilled`` (mean test
        accuracy), ``diff``, ``low``, ``high``, ``verdict``, ``n``, ``role``.
    """
    out = []
    for model in dict.fromkeys(chosen["model"]):
        t = primary_table(chosen, model)
        out.append({"model": model, "params": arch.loc[model, "params"], "FLOPs": arch.loc[model, "FLOPs"],
                    "scratch": t.loc["scratch", "mean"], "distilled": t.loc["distilled", "mean"],
                    "diff": t.loc["distilled", "diff"], "low": t.loc["distilled", "low"],
                    "high": t.loc["distilled", "high"], "verdict": t.loc["distilled", "verdict"],
                    "n": int(t.loc["distilled", "n"]),
                    "role": "primary" if model == primary else "exploratory"})
    return pd.DataFrame(out).set_index("model")


def show_gains(gains: pd.DataFrame):
    """:func:`gain_by_width`'s table for the notebook: accuracies in %, differences in points.

    Parameters
    ----------
    gains : pandas.DataFrame

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    pct = "{:.2f} %".format
    pts = "{:+.2f}".format
    return gains.style.format({"params": "{:,}", "FLOPs": "{:,}", "scratch": lambda v: pct(100 * v),
                               "distilled": lambda v: pct(100 * v), "diff": lambda v: pts(100 * v),
                               "low": lambda v: pts(100 * v), "high": lambda v: pts(100 * v)},
                              na_rep="")


def seed_split(pool, rows: dict, seed: int = 0):
    """One seed's data as :class:`kdlib.data.Splits` (its training images, the pool's
    validation and test splits), e.g. to time one student.

    Parameters
    ----------
    pool : kdlib.data.Splits
    rows : dict
        :func:`kdlib.experiments.sample_rows`.
    seed : int

    Returns
    -------
    kdlib.data.Splits
    """
    idx = torch.as_tensor(rows[seed])
    return kdata.Splits(kdata.Split(pool.train.x[idx], pool.train.y[idx]), pool.val, pool.test,
                        pool.classes, pool.name)


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


def latency_frame(rows, peak_gflops: float) -> pd.DataFrame:
    """:func:`latency_table`'s rows as one table: per model, the median latency and quartiles at
    batch 1 (µs) and batch 256 (ms), and the share of the measured matrix-multiply peak.

    Parameters
    ----------
    rows : list of dict
        :func:`latency_table`.
    peak_gflops : float
        This machine's measured GFLOP/s (:func:`kdlib.metrics.gemm_peak`).

    Returns
    -------
    pandas.DataFrame
        Indexed by model, columns per batch size (rounded to 0.1).
    """
    out = {}
    for r in rows:
        scale, unit = (1e6, "µs") if r["batch"] == 1 else (1e3, "ms")
        cell = out.setdefault(r["model"], {})
        b = f"batch {r['batch']}"
        cell[f"{b} median ({unit})"] = round(scale * r["median"], 1)
        cell[f"{b} q25"] = round(scale * r["q25"], 1)
        cell[f"{b} q75"] = round(scale * r["q75"], 1)
        cell[f"{b} % peak"] = round(100 * r["gflops"] / peak_gflops, 1)
    return pd.DataFrame.from_dict(out, orient="index").rename_axis("model")


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


def cheaper_still(model: nn.Module, data, *, repeats: int, compile_too: bool) -> pd.DataFrame:
    """Size, batch-1 and batch-256 latency and test accuracy of ``model``, its int8 version
    and (if ``compile_too``) its compiled version.

    Parameters
    ----------
    model : nn.Module
    data : kdlib.data.Splits
        Its ``test`` split is scored.
    repeats : int
        Timed repeats per latency.
    compile_too : bool
        Also try ``torch.compile``; a failure is a row with its message under ``error``.

    Returns
    -------
    pandas.DataFrame
        Indexed by variant: ``size (kB)``, ``batch 1 (µs)``, ``batch 256 (ms)``, ``test acc``
        (a fraction) and, where something failed, ``error``.
    """
    variants = {"float32": model, "int8 dynamic": quantize(model)}
    rows = {}
    if compile_too:
        compiled, msg, _ = try_compile(model)
        if compiled is None:
            rows["compiled"] = {"error": msg}
        else:
            variants["compiled"] = compiled
    for name, m in variants.items():
        lat = {b: metrics.latency_stats(m, INPUT_SHAPE, batch_size=b, repeats=repeats, warmup=3)
               for b in (1, 256)}
        rows[name] = {"size (kB)": round(size_on_disk(m if name != "compiled" else model) / 1e3, 1),
                      "batch 1 (µs)": round(1e6 * lat[1]["median"], 1),
                      "batch 256 (ms)": round(1e3 * lat[256]["median"], 2),
                      "test acc": metrics.accuracy(m, data.test.x, data.test.y)}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("variant")


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
_COLORS = {"scratch": ("tab:blue", "o"), "distilled": ("tab:orange", "s")}


def pareto_points(chosen: pd.DataFrame, latency_rows, arch: pd.DataFrame, teacher_acc: float) -> pd.DataFrame:
    """Every trained student (mean test accuracy over the seeds) and the teacher, with its
    costs and whether it is on the Pareto front of each cost (:func:`kdlib.metrics.pareto_front`).

    Parameters
    ----------
    chosen : pandas.DataFrame
        :func:`train_family`'s ``"chosen"``.
    latency_rows : list of dict
        :func:`latency_table` (batch-1 medians are used).
    arch : pandas.DataFrame
        :func:`architecture_table`.
    teacher_acc : float

    Returns
    -------
    pandas.DataFrame
        Indexed by point name (``"mlp-8 distilled"``, ``"teacher"``): ``model``, ``method``,
        ``params``, ``FLOPs``, ``latency (µs)``, ``acc`` and ``front params`` / ``front FLOPs``
        / ``front latency (µs)`` (bool).
    """
    lat = {r["model"]: 1e6 * r["median"] for r in latency_rows if r["batch"] == 1}
    acc = chosen.groupby(["model", "method"], sort=False)["test_acc"].mean()
    pts = [{"name": f"{m} {meth}", "model": m, "method": meth, "acc": float(a)}
           for (m, meth), a in acc.items()]
    pts.append({"name": "teacher", "model": "teacher", "method": "teacher", "acc": teacher_acc})
    df = pd.DataFrame(pts).set_index("name")
    df["params"] = [arch.loc[m, "params"] for m in df["model"]]
    df["FLOPs"] = [arch.loc[m, "FLOPs"] for m in df["model"]]
    df["latency (µs)"] = [lat[m] for m in df["model"]]
    for cost in ("params", "FLOPs", "latency (µs)"):
        front = set(metrics.pareto_front(df[cost].tolist(), df["acc"].tolist()))
        df[f"front {cost}"] = [i in front for i in range(len(df))]
    return df


def pareto_figure(points: pd.DataFrame) -> Figure:
    """Test accuracy against parameters, FLOPs and batch-1 latency (log x): scratch and
    distilled means, the teacher as a star, the Pareto front dashed.

    Parameters
    ----------
    points : pandas.DataFrame
        :func:`pareto_points`.

    Returns
    -------
    Figure
        Three axes; the dashed line of each is its front.
    """
    fig, ax = plots.new_figure(13, 3.8, ncols=3)
    for a, cost, label in zip(ax[0], ("params", "FLOPs", "latency (µs)"),
                              ("parameters", "FLOPs per image", "latency at batch 1 (µs)")):
        for method, (color, marker) in _COLORS.items():
            p = points[points["method"] == method]
            a.plot(p[cost], p["acc"], marker, color=color, label=method, ls="none")
        t = points.loc["teacher"]
        a.plot([t[cost]], [t["acc"]], "*", ms=14, color="black", label="teacher")
        front = points[points[f"front {cost}"]].sort_values(cost)
        a.plot(front[cost], front["acc"], "--", color="gray", lw=1, label="Pareto front")
        for _, r in points[points["method"] == "distilled"].iterrows():
            a.annotate(r["model"], (r[cost], r["acc"]), fontsize=7, xytext=(3, -10),
                       textcoords="offset points")
        a.set_xscale("log")
        a.xaxis.set_minor_formatter(NullFormatter())  # no crowded minor labels on short ranges
        a.set(xlabel=label, ylabel="test accuracy (mean over seeds)")
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize="small", loc="lower right")
    return fig


def width_T_figure(grid: pd.DataFrame, chosen_setting: pd.DataFrame) -> Figure:
    """Validation accuracy of the distilled candidates against T, one panel per width: one
    line per learning rate (mean over seeds, a band of ± sd), the scratch candidates as
    horizontal lines, the chosen distilled candidate ringed.

    Parameters
    ----------
    grid : pandas.DataFrame
        :func:`train_family`'s ``"grid"``.
    chosen_setting : pandas.DataFrame
        :func:`selection`.

    Returns
    -------
    Figure
        One axes per width.
    """
    models_ = list(dict.fromkeys(grid["model"]))
    fig, ax = plots.new_figure(4.2 * len(models_), 3.6, ncols=len(models_))
    lrs = sorted(dict.fromkeys(grid["lr"]))
    for a, model in zip(ax[0], models_):
        g = grid[grid["model"] == model]
        for k, lr in enumerate(lrs):
            ls = "-" if k == len(lrs) - 1 else "--"
            kd = g[(g["method"] == "distilled") & (g["lr"] == lr)].groupby("T")["val_acc"]
            m, sd = kd.mean(), kd.std().fillna(0.0)
            a.plot(m.index, 100 * m, marker="o", ls=ls, color="tab:orange", label=f"distilled, lr={lr:.3g}")
            a.fill_between(m.index, 100 * (m - sd), 100 * (m + sd), color="tab:orange", alpha=0.12)
            sc = g[(g["method"] == "scratch") & (g["lr"] == lr)]["val_acc"].mean()
            a.axhline(100 * sc, color="tab:blue", ls=ls, lw=1, label=f"scratch, lr={lr:.3g}")
        c = chosen_setting.loc[(model, "distilled")]
        a.plot([c["T"]], [100 * c["val_acc"]], "o", ms=12, mfc="none", mec="black", label="chosen")
        Ts = sorted(dict.fromkeys(g["T"][g["method"] == "distilled"]))
        a.set_xscale("log", base=2)
        a.set_xticks(Ts, [f"{T:g}" for T in Ts])
        a.xaxis.set_minor_formatter(NullFormatter())
        a.set(xlabel="temperature T", ylabel="validation accuracy (%)", title=model)
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize="x-small")
    return fig


def overhead_figure(latency_rows, peak_gflops: float) -> Figure:
    """Achieved GFLOP/s against FLOPs per batch, batch 1 and 256, with the measured peak.

    Parameters
    ----------
    latency_rows : list of dict
        :func:`latency_table`.
    peak_gflops : float

    Returns
    -------
    Figure
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


# ------------------------------------------------------------------ prose that follows the run
def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def _names(names) -> str:
    names = [f"`{n}`" for n in names]
    return " and ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " and " + names[-1]


def _mlps(latency_rows) -> list:
    names = {r["model"] for r in latency_rows if r["model"].startswith("mlp-")}
    return sorted(names, key=lambda n: int(n[4:]))


def _diff(table: pd.DataFrame) -> results.PairedDifference:
    return results.paired_difference(table.loc["distilled", "values"], table.loc["scratch", "values"])


def say_selection(chosen_setting: pd.DataFrame) -> Markdown:
    """What the validation split chose, per width and method.

    Parameters
    ----------
    chosen_setting : pandas.DataFrame
        :func:`selection`.

    Returns
    -------
    IPython.display.Markdown
    """
    parts = []
    for model in dict.fromkeys(chosen_setting.index.get_level_values(0)):
        s, d = chosen_setting.loc[(model, "scratch")], chosen_setting.loc[(model, "distilled")]
        parts.append(f"`{model}`: scratch lr = {s['lr']:.3g}, distilled lr = {d['lr']:.3g} and "
                     f"T = {d['T']:g}")
    return Markdown("What the validation split chose (the best mean over the seeds; the test set "
                    "was not looked at): " + "; ".join(parts) + ".")


def say_primary(table: pd.DataFrame, model: str = PRIMARY) -> Markdown:
    """The primary comparison's result, its verdict from the interval.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`primary_table`.
    model : str

    Returns
    -------
    IPython.display.Markdown
    """
    d = _diff(table)
    s, k = table.loc["scratch"], table.loc["distilled"]
    sd = lambda r: "" if math.isnan(r["sd"]) else f" ± {100 * r['sd']:.2f}"  # noqa: E731
    few = "" if d.n >= 5 else f" (only {d.n} seed{'s' * (d.n > 1)}: a smoke run, not the protocol's five)"
    return Markdown(f"**Primary comparison**, `{model}` on the test set over {d.n} seeds{few}: from "
                    f"scratch {100 * s['mean']:.2f}{sd(s)} %, distilled {100 * k['mean']:.2f}{sd(k)} %; "
                    f"{d.describe('distillation')}.")


def say_family(gains: pd.DataFrame, teacher_acc: float, teacher_params: int) -> Markdown:
    """The KD gain against width (exploratory), each with its verdict, and the best student
    against the teacher.

    Parameters
    ----------
    gains : pandas.DataFrame
        :func:`gain_by_width`.
    teacher_acc : float
    teacher_params : int

    Returns
    -------
    IPython.display.Markdown
    """
    parts = []
    for model, g in gains.iterrows():
        ci = "no interval" if math.isnan(g["low"]) else \
            f"95 % CI {100 * g['low']:+.2f} to {100 * g['high']:+.2f}"
        verdict = ("a difference was not shown" if g["verdict"] == "not shown"
                   else f"distillation {g['verdict']}")
        parts.append(f"`{model}` ({g['role']}) {100 * g['diff']:+.2f} points ({ci}: {verdict})")
    exploratory = gains[gains["role"] == "exploratory"]
    shown = int((exploratory["verdict"] != "not shown").sum())
    means = gains["diff"].tolist()
    trend = ("rise with width" if all(b > a for a, b in zip(means, means[1:])) else
             "fall with width" if all(b < a for a, b in zip(means, means[1:])) else
             "do not move in one direction with width")
    best = gains["distilled"].idxmax()
    b = gains.loc[best]
    return Markdown(
        "KD gain by width (distilled − scratch, test accuracy): " + "; ".join(parts) + ". "
        f"The mean gains {trend}; {shown} of the {len(exploratory)} exploratory intervals "
        f"exclude{'s' * (shown == 1)} 0. "
        f"The best distilled student, `{best}` at {_pct(b['distilled'])}, is "
        f"{100 * (teacher_acc - b['distilled']):.2f} points below the teacher ({_pct(teacher_acc)}) with "
        f"{teacher_params / b['params']:.1f}× fewer parameters.")


def say_latency(latency_rows, arch: pd.DataFrame) -> Markdown:
    """Batch-1 and batch-256 speed ratios against the FLOP ratios.

    Parameters
    ----------
    latency_rows : list of dict
        :func:`latency_table`.
    arch : pandas.DataFrame
        :func:`architecture_table`.

    Returns
    -------
    IPython.display.Markdown
    """
    get = {(r["model"], r["batch"]): r["median"] for r in latency_rows}
    mlps = _mlps(latency_rows)
    small, big = mlps[0], mlps[-1]
    f = lambda a, b: arch.loc[b, "FLOPs"] / arch.loc[a, "FLOPs"]  # noqa: E731
    r = lambda a, b, n: get[(b, n)] / get[(a, n)]  # noqa: E731
    text = (f"At batch 1, `{small}` took {1e6 * get[(small, 1)]:.1f} µs and `{big}` "
            f"{1e6 * get[(big, 1)]:.1f} µs: **{f(small, big):.0f}× fewer FLOPs made it "
            f"{r(small, big, 1):.1f}× faster**; against the teacher ({1e6 * get[('teacher', 1)]:.1f} µs, "
            f"{f(small, 'teacher'):.0f}× the FLOPs) it was {r(small, 'teacher', 1):.1f}× faster. "
            f"At batch 256 the fixed cost of a call is shared by 256 images and the ratios move towards "
            f"the FLOP ratios: {r(small, big, 256):.1f}× against `{big}`, {r(small, 'teacher', 256):.1f}× "
            f"against the teacher.")
    if ("cnn-4-8", 1) in get:
        text += (f" The small CNN has {arch.loc['cnn-4-8', 'params'] / arch.loc[small, 'params']:.1f}× the "
                 f"parameters of `{small}` but took {r(small, 'cnn-4-8', 1):.1f}× its time at batch 1 "
                 f"({1e6 * get[('cnn-4-8', 1)]:.1f} µs): its convolutions do "
                 f"{f(small, 'cnn-4-8'):.0f}× the FLOPs.")
    return Markdown(text + " (Timings of this run; on another machine they differ: compare ratios.)")


def say_overhead(latency_rows, peak_gflops: float) -> Markdown:
    """How far below the measured peak each batch size ran.

    Parameters
    ----------
    latency_rows : list of dict
    peak_gflops : float

    Returns
    -------
    IPython.display.Markdown
    """
    share = {(r["model"], r["batch"]): 100 * r["gflops"] / peak_gflops for r in latency_rows}
    mlps = _mlps(latency_rows)
    one = [share[(m, 1)] for m in mlps]
    per = {r["model"]: {} for r in latency_rows}
    for r in latency_rows:
        per[r["model"]][r["batch"]] = r["per_example"]
    t1, t256 = per["teacher"][1], per["teacher"][256]
    batching = (f"batching made it {t1 / t256:.1f}× cheaper per image" if t256 < t1 else
                "batching did not make it cheaper per image")
    bound = lambda v: "**compute-bound**" if v >= 50 else "still well below the peak"  # noqa: E731
    one_bound = "**overhead-bound**" if max(one) < 20 else "not far below the peak"
    return Markdown(
        f"At batch 1 the MLPs used {min(one):.1f} to {max(one):.1f} % of the measured peak "
        f"({peak_gflops:.1f} GFLOP/s): {one_bound}. At batch 256, `{mlps[-1]}` reached "
        f"{share[(mlps[-1], 256)]:.0f} % ({bound(share[(mlps[-1], 256)])}) and the teacher "
        f"{share[('teacher', 256)]:.0f} %. "
        f"The teacher took {1e3 * t256:.2f} ms per image in batches of 256 against {1e3 * t1:.2f} ms "
        f"for one image alone: {batching}.")


def say_pareto(points: pd.DataFrame) -> Markdown:
    """Which points are on the Pareto front of each cost.

    Parameters
    ----------
    points : pandas.DataFrame
        :func:`pareto_points`.

    Returns
    -------
    IPython.display.Markdown
    """
    parts = [f"by {label}: {_names(points.index[points[f'front {cost}']])}"
             for cost, label in (("params", "parameters"), ("FLOPs", "FLOPs"),
                                 ("latency (µs)", "batch-1 latency"))]
    return Markdown("On the Pareto front (means over the seeds, test set) " + "; ".join(parts) + ". "
                    "A point on the front is a mean: whether distilled and scratch differ at one width "
                    "is the intervals' question (above), not the plot's.")


def say_temperature(chosen_setting: pd.DataFrame, grid: pd.DataFrame) -> Markdown:
    """The temperature the validation split chose per width, against Hinton et al.'s range.

    Parameters
    ----------
    chosen_setting : pandas.DataFrame
        :func:`selection`.
    grid : pandas.DataFrame
        :func:`train_family`'s ``"grid"``.

    Returns
    -------
    IPython.display.Markdown
    """
    lo, hi = HINTON_T_RANGE
    parts = []
    for model in dict.fromkeys(grid["model"]):
        c = chosen_setting.loc[(model, "distilled")]
        g = grid[(grid["model"] == model) & (grid["method"] == "distilled") & (grid["lr"] == c["lr"])]
        m, sd = g.groupby("T")["val_acc"].mean(), g.groupby("T")["val_acc"].std().mean()
        where = "inside" if lo <= c["T"] <= hi else "below" if c["T"] < lo else "above"
        spread = "" if math.isnan(sd) else f", against a seed-to-seed sd of about {100 * sd:.2f}"
        parts.append(f"`{model}` T = {c['T']:g} ({where} Hinton et al.'s {lo:g} to {hi:g}; the "
                     f"candidates' means at its lr span {100 * (m.max() - m.min()):.2f} points{spread})")
    return Markdown("Chosen on the validation split: " + "; ".join(parts) + ". These are selections "
                    "(the best mean of a few candidates), not tested differences.")


def say_cheaper(table: pd.DataFrame) -> Markdown:
    """What int8 (and torch.compile, when tried) did to size, latency and accuracy.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`cheaper_still`.

    Returns
    -------
    IPython.display.Markdown
    """
    f, q = table.loc["float32"], table.loc["int8 dynamic"]

    def speed(a, b):
        if max(a, b) / min(a, b) < 1.1:
            return f"about as fast as float32 ({a / b:.2f}×)"
        return f"{a / b:.1f}× faster" if b < a else f"{b / a:.1f}× slower"

    text = (f"int8 shrank the student from {f['size (kB)']:.1f} kB to {q['size (kB)']:.1f} kB "
            f"({f['size (kB)'] / q['size (kB)']:.1f}×); at batch 256 it was "
            f"**{speed(f['batch 256 (ms)'], q['batch 256 (ms)'])}**, at batch 1 "
            f"**{speed(f['batch 1 (µs)'], q['batch 1 (µs)'])}** (quantising the activations is one more "
            f"step per call). Test accuracy {_pct(f['test acc'])} → {_pct(q['test acc'])}: one model, one "
            f"pass over the test set, so the change is the quantisation's, with no seed spread in it.")
    if "compiled" in table.index:
        c = table.loc["compiled"]
        if isinstance(c.get("error"), str):
            text += f" {c['error']}."
        else:
            text += (f" The compiled model took {c['batch 1 (µs)']:.1f} µs at batch 1 "
                     f"(eager: {f['batch 1 (µs)']:.1f} µs).")
    return Markdown(text)


def say_cost(cost: dict, *, epochs: int, n_images: int) -> Markdown:
    """The parts of distillation's cost measured in this run.

    Parameters
    ----------
    cost : dict
        :func:`teacher_cost`.
    epochs, n_images : int
        The student's epochs and training images.

    Returns
    -------
    IPython.display.Markdown
    """
    rest = cost["teacher_pass"] + cost["student_cached"]
    return Markdown(
        f"One training step of the teacher took {1e3 * cost['teacher_step']:.0f} ms, so notebook 01's "
        f"recipe costs about **{cost['teacher_train']:.0f} s** of compute on one thread. One teacher "
        f"pass over the {n_images:,} transfer images took {cost['teacher_pass']:.2f} s, the student's "
        f"whole distillation with cached logits {cost['student_cached']:.2f} s, and "
        f"**{cost['student_per_batch'] / cost['student_cached']:.1f}×** as long "
        f"({cost['student_per_batch']:.2f} s) with the teacher run on every batch, because each of the "
        f"{epochs} epochs pays a teacher forward pass again. Training the teacher cost "
        f"{cost['teacher_train'] / rest:.0f}× the teacher pass and the cached distillation together.")


def say_break_even(distil_cost: float, teacher_train: float, lat1: dict, lat256: dict,
                   name: str) -> Markdown:
    """After how many predictions the student repays its distillation.

    Parameters
    ----------
    distil_cost : float
        Seconds: the teacher pass plus the student's training.
    teacher_train : float
        Seconds of training the teacher.
    lat1, lat256 : dict
        Model → seconds per prediction at batch 1 / 256.
    name : str
        The student.

    Returns
    -------
    IPython.display.Markdown
    """
    n1 = break_even(distil_cost, lat1["teacher"], lat1[name])
    a1 = break_even(distil_cost + teacher_train, lat1["teacher"], lat1[name])
    n256 = break_even(distil_cost, lat256["teacher"], lat256[name])
    a256 = break_even(distil_cost + teacher_train, lat256["teacher"], lat256[name])
    if math.isinf(n1):
        return Markdown(f"Served one request at a time, `{name}` was not faster than the teacher in this "
                        "run: it never repays its distillation.")
    return Markdown(
        f"Served one request at a time, `{name}` saves {1e6 * (lat1['teacher'] - lat1[name]):.0f} µs per "
        f"prediction, so it repays the teacher pass plus its training ({distil_cost:.2f} s) after about "
        f"**{n1:,.0f} predictions**; if the teacher was trained only to be distilled, after about "
        f"**{a1:,.0f}**. In batches of 256 break-even comes after about {n256:,.0f} and {a256:,.0f} "
        f"predictions. The teacher's training dominates the cost, and it is paid once.")


def say_summary(primary: pd.DataFrame, gains: pd.DataFrame, latency_rows, cheaper: pd.DataFrame,
                cost: dict, n_break_even: float, model: str = PRIMARY) -> Markdown:
    """The notebook's three-line summary, from this run's numbers.

    Parameters
    ----------
    primary : pandas.DataFrame
        :func:`primary_table`.
    gains : pandas.DataFrame
        :func:`gain_by_width`.
    latency_rows : list of dict
    cheaper : pandas.DataFrame
        :func:`cheaper_still`.
    cost : dict
        :func:`teacher_cost`.
    n_break_even : float
        Predictions to break even at batch 1 (teacher already trained).
    model : str

    Returns
    -------
    IPython.display.Markdown
    """
    get = {(r["model"], r["batch"]): r["median"] for r in latency_rows}
    mlps = _mlps(latency_rows)
    d = _diff(primary)
    exploratory = gains[gains["role"] == "exploratory"]
    shown = [m for m, g in exploratory.iterrows() if g["verdict"] != "not shown"]
    f, q = cheaper.loc["float32"], cheaper.loc["int8 dynamic"]
    speedup = get[(mlps[-1], 1)] / get[(mlps[0], 1)]
    flop_ratio = int(mlps[-1][4:]) / int(mlps[0][4:])  # an MLP's FLOPs grow with its width
    head = ("Cheaper, yes; proportionally cheaper, no." if speedup < flop_ratio / 4 else
            "Cheaper, and not far from in proportion.")
    return Markdown("\n".join([
        f"* **{head}** At batch 1 `{mlps[0]}` was {speedup:.1f}× faster than `{mlps[-1]}` "
        f"(about {flop_ratio:.0f}× its FLOPs): a small model pays a fixed framework overhead whatever it "
        "computes. Measure, with medians, at the batch size you serve.",
        f"* **KD at `{model}`** (the primary comparison, tuned on validation with one budget, "
        f"{d.n} seeds): {d.describe('distillation')}. Exploratory widths: "
        + (f"an interval excluded 0 at {_names(shown)}." if shown else "no interval excluded 0."),
        f"* **The cost is the teacher**: cached logits made distillation "
        f"{cost['student_per_batch'] / cost['student_cached']:.1f}× cheaper than a per-batch teacher; the "
        f"student repaid its distillation after about {n_break_even:,.0f} single requests; int8 made it "
        f"{f['size (kB)'] / q['size (kB)']:.1f}× smaller."]))


# ------------------------------------------------------------------ exercises
EXERCISES = {
    1: (2 * (784 * 64 + 64 * 10), 0.5,
        "count 2 × (inputs × outputs) for each Linear layer: 784×64 and 64×10"),
    2: (20_000, 1.0, "cost / saving per prediction: 30 s / (0.002 s − 0.0005 s)"),
    3: ("b", None, "look at the batch-1 column: what does the tiniest model spend its time on?"),
}
"""Exercise number → ``(want, tolerance, hint)`` for :func:`kdlib._checks.check_answer`
(1: the FLOPs of mlp-64; 2: the break-even number of predictions; 3: the letter of the answer)."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the FLOPs per image of ``mlp([784, 64, 10])`` (2 × multiply-adds, biases "
             "ignored); 2: after how many queries a 30 s distillation pays for itself when the "
             'teacher answers in 2 ms and the student in 0.5 ms; 3: ``"a"``, ``"b"`` or ``"c"``, '
             "how a model with 100× fewer FLOPs compares at batch 1."))


__all__ = ["PARAMS", "QUICK", "FULL", "PRIMARY", "Settings", "check_params", "student_data",
           "family", "architecture_table", "train_family", "selection", "primary_table", "gain_by_width",
           "show_gains", "seed_split", "latency_table", "latency_frame", "size_on_disk",
           "quantize", "try_compile", "cheaper_still", "teacher_step_time", "teacher_cost", "break_even",
           "BreakEvenWidget", "pareto_points", "pareto_figure", "width_T_figure", "overhead_figure",
           "say_selection", "say_primary", "say_family", "say_latency", "say_overhead", "say_pareto",
           "say_temperature", "say_cheaper", "say_cost", "say_break_even", "say_summary", "EXERCISES",
           "check_exercise"]
