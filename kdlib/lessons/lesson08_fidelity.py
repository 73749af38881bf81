"""Lesson module of ``notebooks/08_fidelity.ipynb``: how faithful is the student, and is it
better calibrated?

Holds what only notebook 08 uses: its settings (:class:`Settings`, made by :func:`check_params`,
with the quick ones); students trained
from scratch, distilled at several temperatures and a teacher-architecture "twin" distilled
from random initialisation, with agreement / KL to the teacher tracked per epoch; the
fidelity, disagreement, calibration and shifted-data tables; the figures, the reliability
widget (a slider over T) and the exercises (:data:`EXERCISES`, graded by
:func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from kdlib import data as kdata
from kdlib import experiments, metrics, models, plots, results, train
from kdlib._checks import Bool, Float, Int, Verdict, check_answer
from kdlib._checks import check_params as _check_params
from kdlib.widgets import show_in

PARAMS = {"n_train": Int(100, 55_000), "epochs": Int(1, 100), "seeds": Int(1, 10),
        "width": Int(2, 2048), "lam": Float(0.0, 1.0), "T": Float(0.0, 100.0, low_open=True),
        "lr": Float(0.0, 1.0, low_open=True), "twin_epochs": Int(0, 50), "n_bins": Int(2, 50),
        "quick": Bool()}
"""Notebook 08's parameters and their allowed values (name → constraint)."""
TEMPERATURES = (1.0, 2.0, 4.0, 8.0)
N_SHIFT = 2000  # test images evaluated under every shift (the first ones: all classes, balanced enough)
SHIFTS = (("none", 0.0), ("noise", 0.2), ("contrast", 0.6), ("rotate", 20.0), ("translate", 3.0))
QUICK = {"n_train": 300, "epochs": 2, "seeds": 1, "twin_epochs": 1, "temperatures": (1.0, 4.0),
         "n_test": 500}
"""What ``quick=True`` uses: parameters (sizes) and derived settings (a smoke run of seconds)."""


@dataclass(frozen=True)
class Settings:
    """Notebook 08's parameters, validated, with ``quick`` applied (made by :func:`check_params`).

    Attributes
    ----------
    n_train : int
        Training images the students learn from, in [100, 55000].
    epochs : int
        Training epochs of every MLP student, in [1, 100].
    seeds : int
        Seeds per student, in [1, 10].
    width : int
        Hidden width of the MLP student 784-width-10, in [2, 2048].
    lam : float
        Weight of the hard-label term, in [0, 1].
    T : float
        The main distillation temperature, in (0, 100].
    lr : float
        Peak learning rate, in (0, 1].
    twin_epochs : int
        Epochs of the teacher-architecture student, in [0, 50] (0 skips it).
    n_bins : int
        Confidence bins of the ECE and the reliability diagrams, in [2, 50].
    quick : bool
        A smoke run of seconds (:data:`QUICK`).
    """

    n_train: int
    epochs: int
    seeds: int
    width: int
    lam: float
    T: float
    lr: float
    twin_epochs: int
    n_bins: int
    quick: bool

    @property
    def temperatures(self) -> tuple:
        """The temperatures of the calibration study (always containing ``T``)."""
        return tuple(sorted({*(QUICK["temperatures"] if self.quick else TEMPERATURES), self.T}))

    @property
    def n_test(self) -> int | None:
        """Test images used (``None``: all)."""
        return QUICK["n_test"] if self.quick else None


def check_params(**params) -> Settings:
    """Validate notebook 08's parameters; return the settings to run with.

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


def subset_test(data, n_test):
    """``data`` with its test split cut to the first ``n_test`` images (``None``: unchanged).

    Parameters
    ----------
    data : kdlib.data.Splits
    n_test : int or None
        Test images to keep (notebook 08's quick runs use 500).

    Returns
    -------
    kdlib.data.Splits
        A new object sharing ``train`` and ``val``; ``data`` itself is unchanged.
    """
    if n_test is None:
        return data
    return kdata.Splits(data.train, data.val, kdata.Split(data.test.x[:n_test], data.test.y[:n_test]),
                        data.classes, data.name)


# ------------------------------------------------------------------ training, with fidelity per epoch
def _tracker(track: dict, teacher_track: dict, track_y: dict, curve: list):
    """A :func:`kdlib.experiments.train` callback: after every epoch, the student's fidelity
    to the teacher (and accuracy where ``track_y`` has labels) on each input set of ``track``."""
    def callback(student, history):
        for name, x in track.items():
            logits = models.predict(student, x)
            f = metrics.fidelity(teacher_track[name], logits)
            y = track_y.get(name)
            acc = metrics.accuracy_from_logits(logits, y) if y is not None else float("nan")
            curve.append({"epoch": history.epochs, "split": name, **f, "acc": acc})
    return callback


def mlp_builder(width: int):
    """The student of this lesson: ``mlp([784, width, 10])``.

    Parameters
    ----------
    width : int

    Returns
    -------
    callable
    """
    return lambda: models.mlp([784, width, 10])


def fidelity_students(data, teacher_logits, teacher_test_logits, settings: Settings, *,
                      progress: bool = True):
    """Scratch students and students distilled at every temperature, for every seed.

    The scratch students and those at the main ``T`` have their fidelity tracked per epoch on
    the training and test images.

    Parameters
    ----------
    data : kdlib.data.Splits
    teacher_logits, teacher_test_logits : Tensor
        The teacher's logits on ``data.train`` and ``data.test``.
    settings : Settings
        The notebook's ``width``, ``seeds``, ``epochs``, ``lam``, ``T``, ``lr`` and
        ``temperatures``.
    progress : bool

    Returns
    -------
    tuple
        ``(students, curves)``: ``students[(kind, seed)]`` with ``kind`` ``"scratch"`` or
        ``"T=4"`` etc.; ``curves[kind]`` a list of per-epoch rows (with ``seed``).
    """
    S = settings
    width, seeds, lam, T = S.width, S.seeds, S.lam, S.T
    track = {"train": data.train.x, "test": data.test.x}
    teacher_track = {"train": teacher_logits, "test": teacher_test_logits}
    track_y = {"train": data.train.y, "test": data.test.y}
    recipe = train.TrainSettings(epochs=S.epochs, lr=S.lr)
    jobs = [("scratch", experiments.scratch(), s) for s in range(seeds)] + \
        [(f"T={t:g}", experiments.kd(lam, t), s) for t in S.temperatures for s in range(seeds)]
    students, curves = {}, {}
    for kind, method, seed in tqdm(jobs, desc="students", disable=not progress, leave=False):
        curve = []
        tracked = kind == "scratch" or method.T == T
        callback = _tracker(track, teacher_track, track_y, curve) if tracked else None
        students[(kind, seed)], _ = experiments.train(
            experiments.Config(mlp_builder(width), method, seed, recipe), data,
            teacher_logits=teacher_logits, callback=callback)
        curves.setdefault(kind, []).extend({**r, "seed": seed} for r in curve)
    return students, curves


def train_twins(data, teacher_logits, *, seeds, epochs, lr, progress: bool = True) -> dict:
    """Students with the teacher's own architecture (``kdlib.models.cnn()``), random init,
    trained on the teacher's soft targets only (λ = 0, T = 1: the loss is exactly the KL we
    measure).

    Parameters
    ----------
    data : kdlib.data.Splits
    teacher_logits : Tensor
        The teacher's logits on ``data.train``.
    seeds, epochs : int
        ``epochs == 0`` trains none.
    lr : float
    progress : bool

    Returns
    -------
    dict
        ``{("twin", seed): model}``; empty when ``epochs == 0``.
    """
    if epochs == 0:
        return {}
    settings = train.TrainSettings(epochs=epochs, lr=lr)
    out = {}
    for seed in tqdm(range(seeds), desc="twins", disable=not progress, leave=False):
        # init_seed: a different initialisation from the teacher's own (seed 0)
        config = experiments.Config(models.cnn, experiments.kd(0.0, 1.0), seed, settings,
                                    init_seed=seed + 100)
        out[("twin", seed)], _ = experiments.train(config, data, teacher_logits=teacher_logits)
    return out


def kinds(students) -> list:
    """The student kinds in ``students`` (keys ``(kind, seed)``), in insertion order.

    Parameters
    ----------
    students : dict
        ``(kind, seed)`` → model or logits, as from :func:`train_students`.

    Returns
    -------
    list of str
    """
    return list(dict.fromkeys(k for k, _ in students))


# ------------------------------------------------------------------ fidelity
def logits_of(students: dict, x) -> dict:
    """``key → kdlib.models.predict(model, x)`` for every model of ``students``: computed once
    and shared by the fidelity, calibration and plotting cells (teacher-sized students are slow).

    Parameters
    ----------
    students : dict
        ``(kind, seed)`` → trained model.
    x : torch.Tensor
        Inputs, e.g. ``data.test.x``.

    Returns
    -------
    dict
        The same keys → logits, shape ``(len(x), classes)``.
    """
    return {key: models.predict(s, x) for key, s in students.items()}


def fidelity_rows(logits_by_split: dict, teacher_logits_by_split: dict, y_test) -> list:
    """One row per student: agreement and KL on every split, and test accuracy.

    Parameters
    ----------
    logits_by_split : dict
        Split name → (``(kind, seed)`` → the student's logits on that split), e.g. from
        :func:`logits_of`; every split must hold the same students.
    teacher_logits_by_split : dict
        Split name → the teacher's logits on it.
    y_test : Tensor
        Labels of the ``"test"`` split.
    """
    splits = list(logits_by_split)
    rows = []
    for kind, seed in logits_by_split[splits[0]]:
        row = {"kind": kind, "seed": seed}
        for name in splits:
            logits = logits_by_split[name][(kind, seed)]
            f = metrics.fidelity(teacher_logits_by_split[name], logits)
            row[f"agree_{name}"], row[f"kl_{name}"] = f["agreement"], f["kl"]
            if name == "test":
                row["test_acc"] = metrics.accuracy_from_logits(logits, y_test)
        rows.append(row)
    return rows


def _ms(v, scale=100.0, digits=2):
    m, s = results.mean_sd(v) if len(v) > 1 else (float(v[0]), float("nan"))
    return f"{scale * m:.{digits}f} ± {scale * s:.{digits}f}" if len(v) > 1 else f"{scale * m:.{digits}f}"


def format_fidelity(rows, teacher_acc: float) -> str:
    """Agreement (%) and KL (nats) on train vs test, and test accuracy, mean ± sd over seeds.

    Parameters
    ----------
    rows : list of dict
        :func:`fidelity_rows`' rows with ``train`` and ``test`` splits; agreement and accuracy
        are fractions (printed in percent), KL in nats.
    teacher_acc : float
        The teacher's test accuracy, in [0, 1], as the last line.

    Returns
    -------
    str
        One line per kind (a single seed prints no ± sd).
    """
    lines = [f"{'student':9} {'agree train %':>15} {'agree test %':>15} {'KL train':>15} "
             f"{'KL test':>15} {'test acc %':>15}"]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        col = {k: [r[k] for r in mine] for k in ("agree_train", "agree_test", "kl_train", "kl_test",
                                                 "test_acc")}
        lines.append(f"{kind:9} {_ms(col['agree_train']):>15} {_ms(col['agree_test']):>15} "
                     f"{_ms(col['kl_train'], 1, 3):>15} {_ms(col['kl_test'], 1, 3):>15} "
                     f"{_ms(col['test_acc']):>15}")
    lines.append(f"{'teacher':9} {'':>15} {'':>15} {'':>15} {'':>15} {100 * teacher_acc:>15.2f}")
    return "\n".join(lines)


def fidelity_gap(rows, kind: str):
    """Paired (over seeds) agreement on train minus agreement on test for one kind.

    Parameters
    ----------
    rows : list of dict
        :func:`fidelity_rows`' rows.
    kind : str
        A student kind in them, e.g. ``"scratch"`` or ``"T=4"``.

    Returns
    -------
    kdlib.results.PairedDifference
        In fractions (``.format()`` prints percentage points).
    """
    mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["seed"])
    return results.paired_difference([r["agree_train"] for r in mine], [r["agree_test"] for r in mine])


def curves_figure(curves: dict, epochs: int) -> Figure:
    """Agreement with the teacher, KL to it and accuracy (train and test images) against
    epochs, mean over seeds.

    Parameters
    ----------
    curves : dict of str to list of dict
        :func:`train_students`' curves: per kind, rows with ``epoch``, ``split`` ("train"/"test"),
        ``agreement``, ``kl`` and ``acc``; a kind with no rows is skipped.
    epochs : int
        Epochs 1 .. ``epochs`` on the x axis.

    Returns
    -------
    matplotlib.figure.Figure
        Three panels, 15 × 3.8 inches.
    """
    fig, ax = plots.new_figure(15, 3.8, ncols=3)
    for a, metric, label in ((ax[0, 0], "agreement", "top-1 agreement with the teacher"),
                             (ax[0, 1], "kl", "mean KL(teacher ‖ student), nats"),
                             (ax[0, 2], "acc", "accuracy (labels)")):
        for kind, rows in ((k, r) for k, r in curves.items() if r):  # untracked kinds: no curve
            for split, ls in (("train", "-"), ("test", "--")):
                ep = range(1, epochs + 1)
                m = [np.mean([r[metric] for r in rows if r["epoch"] == e and r["split"] == split])
                     for e in ep]
                a.plot(list(ep), m, ls, marker="o", ms=3, label=f"{kind}, {split} images")
        a.set(xlabel="epoch", ylabel=label)
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize="small")
    return fig


# ------------------------------------------------------------------ where they disagree
def disagreement_table(teacher_pred, student_pred, y, classes) -> list[dict]:
    """Per class (true label): examples the teacher gets right and the student wrong, and the
    reverse, and how often the two predictions differ.

    Parameters
    ----------
    teacher_pred, student_pred : torch.Tensor
        Predicted classes, shape ``(N,)``.
    y : torch.Tensor
        True labels, shape ``(N,)``.
    classes : sequence of str
        Class names, indexed by label.

    Returns
    -------
    list of dict
        Per class: ``class``, ``n`` (examples), ``teacher_only``, ``student_only``, ``differ`` (counts).
    """
    t_ok, s_ok = teacher_pred == y, student_pred == y
    rows = []
    for c, name in enumerate(classes):
        m = y == c
        rows.append({"class": name, "n": int(m.sum()),
                     "teacher_only": int((m & t_ok & ~s_ok).sum()),
                     "student_only": int((m & s_ok & ~t_ok).sum()),
                     "differ": int((m & (teacher_pred != student_pred)).sum())})
    return rows


def format_disagreement(rows) -> str:
    """:func:`disagreement_table`'s rows as text: per class, who alone is right, with totals.

    Parameters
    ----------
    rows : list of dict
        :func:`disagreement_table`'s rows.

    Returns
    -------
    str
    """
    lines = [f"{'true class':12} {'teacher right, student wrong':>29} {'student right, teacher wrong':>29}"]
    for r in rows:
        lines.append(f"{r['class']:12} {r['teacher_only']:>29} {r['student_only']:>29}")
    lines.append(f"{'total':12} {sum(r['teacher_only'] for r in rows):>29} "
                 f"{sum(r['student_only'] for r in rows):>29}")
    return "\n".join(lines)


def most_disputed(teacher_logits, student_logits, k: int = 8) -> torch.Tensor:
    """Indices of the ``k`` examples with the largest KL(teacher ‖ student) among those where
    the two models' top classes differ (largest first).

    Parameters
    ----------
    teacher_logits, student_logits : torch.Tensor
        Shape ``(N, classes)``, on the same examples.
    k : int
        How many at most.

    Returns
    -------
    torch.Tensor
        int64 indices, ``min(k, number of disagreements)`` of them (ties in index order).
    """
    kl = metrics.kl_per_example(teacher_logits, student_logits)
    differ = teacher_logits.argmax(1) != student_logits.argmax(1)
    kl = torch.where(differ, kl, torch.full_like(kl, -1.0))
    order = torch.argsort(kl, descending=True, stable=True)
    return order[:min(k, int(differ.sum()))]


def disputed_figure(x, y, teacher_logits, student_logits, classes, idx) -> Figure:
    """The disputed images, titled with the label and both models' top class and probability.

    Parameters
    ----------
    x : array-like
        Images, ``(N, ..., H, W)``.
    y : torch.Tensor
        Labels.
    teacher_logits, student_logits : torch.Tensor
        Shape ``(N, classes)``.
    classes : sequence of str
        Class names (cut to 9 characters in the titles).
    idx : torch.Tensor
        Indices to draw, e.g. from :func:`most_disputed`; 8 per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = max(len(idx), 1)
    fig, ax = plots.new_figure(1.9 * min(n, 8), 2.5 * -(-n // 8), ncols=min(n, 8), nrows=-(-n // 8))
    pt, ps = teacher_logits.softmax(1), student_logits.softmax(1)
    for a in ax.flat:
        a.axis("off")
    for a, i in zip(ax.flat, idx.tolist()):
        a.imshow(np.asarray(x[i]).reshape(x[i].shape[-2:]), cmap="gray_r")
        ct, cs = int(pt[i].argmax()), int(ps[i].argmax())
        a.set_title(f"label: {classes[int(y[i])][:9]}\nteacher: {classes[ct][:9]} {pt[i, ct]:.2f}\n"
                    f"student: {classes[cs][:9]} {ps[i, cs]:.2f}", fontsize=7)
    return fig


# ------------------------------------------------------------------ calibration
def calibration(logits_by_model: dict, y, *, n_bins: int) -> dict:
    """``name → reliability_bins`` of softmax(logits) (T = 1: what a deployed model outputs).

    Parameters
    ----------
    logits_by_model : dict
        Name → logits, shape ``(N, classes)``.
    y : torch.Tensor
        Labels, shape ``(N,)``.
    n_bins : int
        Equal-width confidence bins on [0, 1].

    Returns
    -------
    dict
        Name → :func:`kdlib.metrics.reliability_bins` (``edges``, ``count``, ``confidence``,
        ``accuracy``, ``ece``).
    """
    return {name: metrics.reliability_bins(lg.softmax(1), y, n_bins=n_bins)
            for name, lg in logits_by_model.items()}


def ece_table(test_logits: dict, teacher_test_logits, y_test, *, n_bins: int) -> list[dict]:
    """ECE of the teacher and of every student (``(kind, seed)`` → test logits), one row per
    model (kind, seed, ece, acc, mean confidence).

    Parameters
    ----------
    test_logits : dict
        ``(kind, seed)`` → a student's test logits.
    teacher_test_logits : torch.Tensor
        The teacher's test logits (its row has ``kind="teacher"``, ``seed=0``, first).
    y_test : torch.Tensor
        Test labels.
    n_bins : int
        Confidence bins of the ECE.

    Returns
    -------
    list of dict
        ``kind``, ``seed``, ``ece``, ``acc`` and ``confidence`` (mean top probability), all in [0, 1].
    """
    rows = []
    for (kind, seed), logits in [(("teacher", 0), teacher_test_logits), *test_logits.items()]:
        p = logits.softmax(1)
        rows.append({"kind": kind, "seed": seed,
                     "ece": metrics.reliability_bins(p, y_test, n_bins=n_bins)["ece"],
                     "acc": metrics.accuracy_from_logits(logits, y_test),
                     "confidence": float(p.max(1).values.mean())})
    return rows


def format_ece(rows) -> str:
    """:func:`ece_table`'s rows as text: ECE, mean confidence and accuracy per kind, mean ± sd in %.

    Parameters
    ----------
    rows : list of dict
        :func:`ece_table`'s rows.

    Returns
    -------
    str
    """
    lines = [f"{'model':9} {'ECE %':>13} {'mean confidence %':>18} {'accuracy %':>13}"]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        mine = [r for r in rows if r["kind"] == kind]
        lines.append(f"{kind:9} {_ms([r['ece'] for r in mine]):>13} "
                     f"{_ms([r['confidence'] for r in mine]):>18} {_ms([r['acc'] for r in mine]):>13}")
    return "\n".join(lines)


def reliability_figure(bins: dict, title: str = "") -> Figure:
    """Reliability diagram: accuracy per confidence bin (bars, starting at 0) against the
    diagonal of perfect calibration, with the count of every bin written on it.

    Parameters
    ----------
    bins : dict
        One entry of :func:`calibration` (:func:`kdlib.metrics.reliability_bins`).
    title : str
        Axes title; ``""`` gives the ECE.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plots.new_figure(5.2, 4.2)
    a = ax[0, 0]
    edges = bins["edges"]
    width = edges[1] - edges[0]
    acc = np.nan_to_num(bins["accuracy"])
    a.bar(edges[:-1], acc, width=width, align="edge", edgecolor="black", color="tab:blue",
          alpha=0.8, label="accuracy in bin")
    conf = np.where(bins["count"] > 0, np.nan_to_num(bins["confidence"]), acc)
    a.bar(edges[:-1], np.abs(conf - acc), bottom=np.minimum(conf, acc), width=width, align="edge",
          color="tab:red", alpha=0.35, label="gap to mean confidence")
    a.plot([0, 1], [0, 1], "--", color="gray", label="perfect calibration")
    for lo, c, h in zip(edges[:-1], bins["count"], acc):
        if c:
            a.text(lo + width / 2, min(h, 0.9) + 0.02, str(int(c)), ha="center", fontsize=6)
    a.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="confidence (top probability)", ylabel="accuracy",
          title=title or f"ECE {100 * bins['ece']:.2f} %")
    a.legend(fontsize="x-small", loc="upper left")
    return fig


class ReliabilityWidget:
    """A slider over the models (teacher, scratch, T = …) that redraws the reliability diagram
    from precomputed bins. ``.figure`` is the current figure, ``.text`` its ECE line.

    Parameters
    ----------
    bins_by_model : dict
        Name → reliability bins (:func:`calibration`); the slider starts at the second name.

    Attributes
    ----------
    slider : ipywidgets.SelectionSlider
        Over the names, in order.
    figure : matplotlib.figure.Figure
        The current reliability diagram (:func:`reliability_figure`).
    text : str
        ``"<name>: ECE ... % over <n> test images"``.
    """

    def __init__(self, bins_by_model: dict):
        self.bins = bins_by_model
        names = list(bins_by_model)
        self.slider = widgets.SelectionSlider(options=names, value=names[min(1, len(names) - 1)],
                                              description="model", continuous_update=True)
        self.out = widgets.Output()
        self.label = widgets.Label()
        self.widget = widgets.VBox([self.slider, self.label, self.out])
        self.slider.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change=None) -> None:
        name = self.slider.value
        b = self.bins[name]
        self.text = f"{name}: ECE {100 * b['ece']:.2f} % over {int(b['count'].sum())} test images"
        self.label.value = self.text
        self.figure = reliability_figure(b, title=name)
        show_in(self.out, self.figure)

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


# ------------------------------------------------------------------ shifted data
def shifted_sets(x, shifts=SHIFTS, *, seed: int = 0) -> dict:
    """``"kind severity"`` → shifted copy of ``x`` (:func:`kdlib.data.shift`, seeded).

    Parameters
    ----------
    x : torch.Tensor
        Images ``(N, C, H, W)`` in [0, 1]; not modified.
    shifts : sequence of (str, float)
        ``(kind, severity)`` pairs; default :data:`SHIFTS`.
    seed : int
        Seed of :func:`kdlib.data.shift`'s random parts.

    Returns
    -------
    dict of str to torch.Tensor
        Keys like ``"none"`` or ``"rotate 20"``, in the order of ``shifts``.
    """
    return {(k if k == "none" else f"{k} {s:g}"): kdata.shift(x, k, s, seed=seed) for k, s in shifts}


def shift_rows(teacher, students, shifted: dict, y) -> list[dict]:
    """Accuracy of the teacher and every student, and each student's agreement with the
    teacher, on every shifted set.

    Parameters
    ----------
    teacher : nn.Module
    students : dict
        ``(kind, seed)`` → trained model.
    shifted : dict of str to torch.Tensor
        :func:`shifted_sets`' result.
    y : torch.Tensor
        Labels of the (unshifted) images, the same for every set.

    Returns
    -------
    list of dict
        ``shift``, ``kind``, ``seed``, ``acc`` and ``agree`` (1.0 for the teacher), fractions.
    """
    rows = []
    for name, x in shifted.items():
        t_logits = models.predict(teacher, x)
        rows.append({"shift": name, "kind": "teacher", "seed": 0,
                     "acc": metrics.accuracy_from_logits(t_logits, y), "agree": 1.0})
        for (kind, seed), s in students.items():
            lg = models.predict(s, x)
            rows.append({"shift": name, "kind": kind, "seed": seed,
                         "acc": metrics.accuracy_from_logits(lg, y),
                         "agree": metrics.agreement_from_logits(t_logits, lg)})
    return rows


def format_shifts(rows) -> str:
    """Accuracy % per shift (rows) and model (columns), mean ± sd; the agreement with the
    teacher in brackets.

    Parameters
    ----------
    rows : list of dict
        :func:`shift_rows`' rows.

    Returns
    -------
    str
        Agreement is the mean over seeds, in percent, without decimals.
    """
    ks = list(dict.fromkeys(r["kind"] for r in rows))
    lines = [f"{'shift':13} " + " ".join(f"{k:>22}" for k in ks)]
    for name in dict.fromkeys(r["shift"] for r in rows):
        cells = []
        for k in ks:
            mine = [r for r in rows if r["shift"] == name and r["kind"] == k]
            acc = _ms([r["acc"] for r in mine], digits=1)
            cells.append(f"{acc} [{100 * np.mean([r['agree'] for r in mine]):.0f}]"
                         if k != "teacher" else f"{acc}")
        lines.append(f"{name:13} " + " ".join(f"{c:>22}" for c in cells))
    return "\n".join(lines)


def beats_teacher(rows) -> list[tuple]:
    """``(shift, kind, mean student accuracy − teacher accuracy)`` where a student kind's mean
    accuracy exceeds the teacher's on that shift.

    Parameters
    ----------
    rows : list of dict
        :func:`shift_rows`' rows (one teacher row per shift).

    Returns
    -------
    list of (str, str, float)
        Empty when no student kind beats the teacher anywhere; the gain is a fraction.
    """
    out = []
    for name in dict.fromkeys(r["shift"] for r in rows):
        t = [r["acc"] for r in rows if r["shift"] == name and r["kind"] == "teacher"][0]
        for k in dict.fromkeys(r["kind"] for r in rows if r["kind"] != "teacher"):
            m = float(np.mean([r["acc"] for r in rows if r["shift"] == name and r["kind"] == k]))
            if m > t:
                out.append((name, k, m - t))
    return out


def shift_examples_figure(shifted: dict, n: int = 6) -> Figure:
    """The first ``n`` test images under every shift (one row per shift).

    Parameters
    ----------
    shifted : dict of str to torch.Tensor
        :func:`shifted_sets`' result; each set needs at least ``n`` images.
    n : int
        Images per row.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, ax = plots.new_figure(1.2 * n, 1.3 * len(shifted), ncols=n, nrows=len(shifted))
    for r, (name, x) in enumerate(shifted.items()):
        for c in range(n):
            a = ax[r, c]
            a.imshow(np.asarray(x[c]).reshape(x[c].shape[-2:]), cmap="gray_r", vmin=0, vmax=1)
            a.set_xticks([])
            a.set_yticks([])
        ax[r, 0].set_ylabel(name, fontsize=7)
    return fig


# ------------------------------------------------------------------ exercises
EXERCISES = {
    1: (0.5, 1e-9, "compare the arg-max of each row: which rows pick the same class?"),
    2: (0.4, 0.01, "4 bins: [0, .25), [.25, .5), [.5, .75), [.75, 1]; weight each bin's "
        "|accuracy − mean confidence| by its share of the examples"),
    3: ("a", None, "agreement on the images the student trained on says how well it fits the "
        "teacher there, not elsewhere"),
}
"""Exercise number → ``(want, tolerance, hint)`` for :func:`kdlib._checks.check_answer`
(1: an agreement; 2: an ECE; 3: the letter of the answer)."""


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
