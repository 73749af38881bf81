"""Lesson module of ``notebooks/08_fidelity.ipynb``: how faithful is the student, and is it
better calibrated?

Holds what only notebook 08 uses: its settings (:class:`Settings`, made by :func:`check_params`,
with the quick ones); the students of its primary comparison (scratch, label smoothing and
distillation, each tuned on the validation split with the same learning-rate candidates, every
seed on its own sample of training images, trained in lockstep through
:func:`kdlib.experiments.train_students`); the tracked students (fidelity per epoch, through
:func:`kdlib.experiments.train`'s callback) and the teacher-architecture "twin"; post-hoc
temperature scaling; the fidelity, disagreement, calibration and shifted-data tables
(DataFrames, comparisons through :func:`kdlib.results.compare`); the figures, the reliability
widget; the ``say_*`` sentences of the notebook's "What we saw" cells; and the exercises
(:data:`EXERCISES`, graded by :func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from kdlib import data as kdata
from kdlib import experiments, metrics, models, plots, results, train
from kdlib._checks import QUICK_RUN, Float, Int, Param, exercise_checker, settings_checker, settings_class
from kdlib.widgets import show_in

PARAMS = {
    "n_train": Param(Int(100, 19_000),
        "Training images every student learns from (each seed its own sample)."),
    "epochs": Param(Int(1, 100), "Training epochs of every MLP student."),
    "seeds": Param(Int(1, 10), "Seeds per student (each resamples the training images)."),
    "width": Param(Int(2, 2048), "Hidden width of the MLP student 784-width-10."),
    "lam": Param(Float(0.0, 1.0), "Weight of the hard-label term of the distilled students."),
    "T": Param(Float(0.0, 100.0, low_open=True),
        "The largest distillation temperature tried (KD chooses between 1 and ``T`` on the "
        "validation split)."),
    "lr": Param(Float(0.0, 1.0, low_open=True),
        "The largest peak learning rate tried (every method also tries ``lr / 3``)."),
    "twin_epochs": Param(Int(0, 50), "Epochs of the teacher-architecture student (0 skips it)."),
    "n_bins": Param(Int(2, 50), "Confidence bins of the ECE and the reliability diagrams."),
    "quick": QUICK_RUN,
}
"""Notebook 08's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""
LR_FACTORS = (1 / 3, 1.0)
"""Every method's learning-rate candidates, as multiples of the ``lr`` parameter."""
LS_EPS = 0.1  # label smoothing of the calibration control (Szegedy et al. 2016's value)
POOL = 3  # the pool of training images is POOL × n_train; every seed draws its n_train from it
N_VAL = 2000  # validation images: they choose lr and T, and fit the temperature scaling
TRACK_SEEDS = 2  # seeds of the students whose fidelity is measured after every epoch
N_SHIFT = 1000  # test images evaluated under every shift (the first ones: all classes, balanced enough)
N_TRACK = 2000  # test images the tracked students are measured on after every epoch (the first ones)
SHIFTS = (("none", 0.0), ("noise", 0.2), ("contrast", 0.6), ("rotate", 20.0), ("translate", 3.0))
QUICK = {"n_train": 300, "epochs": 2, "seeds": 2, "twin_epochs": 1, "n_test": 500}
"""What ``quick=True`` uses: parameters (sizes) and derived settings (a smoke run of seconds)."""
METHODS = ("scratch", "label smoothing", "kd")
"""The methods of the comparison, by their names in result rows (``"scratch"`` is the reference)."""


@settings_class(PARAMS)
class Settings:
    """Notebook 08's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""

    @property
    def temperatures(self) -> tuple:
        """KD's temperature candidates: 1 and ``T``."""
        return tuple(sorted({1.0, self.T}))

    @property
    def lrs(self) -> tuple:
        """Every method's learning-rate candidates (:data:`LR_FACTORS` × ``lr``)."""
        return tuple(f * self.lr for f in LR_FACTORS)

    @property
    def n_pool(self) -> int:
        """Training images in the pool the seeds sample from."""
        return POOL * self.n_train

    @property
    def n_test(self) -> int | None:
        """Test images used (``None``: all)."""
        return QUICK["n_test"] if self.quick else None

    @property
    def track_seeds(self) -> int:
        """Seeds of the tracked students (fidelity per epoch)."""
        return min(self.seeds, 1 if self.quick else TRACK_SEEDS)


check_params = settings_checker(Settings, PARAMS, quick=QUICK)


def load_data(settings: Settings):
    """The pool of training images, the validation and the test split (cut to ``n_test``).

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    kdlib.data.Splits
        ``train`` is the pool of ``settings.n_pool`` images; ``val`` has :data:`N_VAL`.
    """
    data = kdata.load("fashion-mnist", n_train=settings.n_pool, n_val=N_VAL, seed=0)
    return subset_test(data, settings.n_test)


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


# ------------------------------------------------------------------ the students of the comparison
def student_configs(settings: Settings, rows: list) -> list:
    """Every candidate of every method for every seed: scratch, label smoothing (ε =
    :data:`LS_EPS`) and KD (λ = ``lam``, T in ``temperatures``), each at every ``lrs``.

    Parameters
    ----------
    settings : Settings
    rows : list of tuple
        From :func:`kdlib.experiments.sample_rows`: seed ``s`` trains on ``rows[s]``.

    Returns
    -------
    list of kdlib.experiments.Config
        Labelled with ``lr``; built by :func:`kdlib.experiments.mlp_builder` (lockstep).
    """
    S = settings
    build = experiments.mlp_builder([784, S.width, 10])
    methods = [experiments.scratch(), experiments.label_smoothing(LS_EPS)] + \
        [experiments.kd(S.lam, t) for t in S.temperatures]
    return [experiments.Config(build, m, seed, train.TrainSettings(epochs=S.epochs, lr=lr),
                               rows=rows[seed], labels={"lr": lr})
            for seed in range(S.seeds) for lr in S.lrs for m in methods]


def fidelity_evaluator(data, teacher: dict, splits=("train", "val", "test")):
    """An ``evaluate`` for :func:`kdlib.experiments.train_students`: agreement with the teacher,
    KL to it and accuracy on the student's own training images (``"train"``), the validation
    and the test images.

    Parameters
    ----------
    data : kdlib.data.Splits
        ``train`` is the pool the configurations' ``rows`` index.
    teacher : dict
        The teacher's logits, ``{"train": on the pool, "val": ..., "test": ...}``.
    splits : sequence of str
        Which of them to measure.

    Returns
    -------
    callable
        ``evaluate(model, config, data) -> dict``.
    """
    def evaluate(model, config, _data):
        rows = torch.as_tensor(config.rows)
        out = {}
        sets = {"train": (data.train.x[rows], data.train.y[rows], teacher["train"][rows]),
                "val": (data.val.x, data.val.y, teacher["val"]),
                "test": (data.test.x, data.test.y, teacher["test"])}
        for name in splits:
            x, y, t = sets[name]
            logits = models.predict(model, x)
            f = metrics.fidelity(t, logits)
            out |= {f"agree_{name}": f["agreement"], f"kl_{name}": f["kl"],
                    f"{name}_acc": metrics.accuracy_from_logits(logits, y)}
        return out
    return evaluate


def train_comparison(data, teacher: dict, settings: Settings, rows: list, *,
                     progress: bool = True) -> list[dict]:
    """Train every candidate of :func:`student_configs` (in lockstep); one tidy row each.

    Parameters
    ----------
    data : kdlib.data.Splits
    teacher : dict
        The teacher's logits on ``"train"`` (the pool), ``"val"`` and ``"test"``.
    settings : Settings
    rows : list of tuple
    progress : bool

    Returns
    -------
    list of dict
        :func:`kdlib.experiments.train_students` rows (``method``, ``lr``, ``T``, ``seed``,
        ``agree_*``, ``kl_*``, ``*_acc``), each with its model under ``"student"``.
    """
    # the students train on the pool alone: selection and the fidelity rows are measured by
    # the evaluator, so no validation pass after every epoch
    return experiments.train_students(student_configs(settings, rows), data.train,
                                      teacher_logits=teacher["train"],
                                      evaluate=fidelity_evaluator(data, teacher),
                                      keep=lambda c: True, progress=progress)


def selection_frame(selection: dict) -> pd.DataFrame:
    """What the validation split chose: per method, ``lr``, ``T`` and the mean validation
    agreement with the teacher (%).

    Parameters
    ----------
    selection : dict
        From :func:`kdlib.experiments.choose`.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame({"lr": [s["lr"] for s in selection.values()],
                         "T (KD only)": [f"{s['T']:g}" if m == "kd" else "—"
                                         for m, s in selection.items()],
                         "val agreement (%)": [round(100 * s["mean"], 2) for s in selection.values()]},
                        index=pd.Index(list(selection), name="method"))


def primary_table(rows) -> pd.DataFrame:
    """The primary comparison: test agreement with the teacher, KD against scratch, paired by
    seed (:func:`kdlib.results.compare`).

    Parameters
    ----------
    rows : list of dict
        :func:`kdlib.experiments.chosen` rows.

    Returns
    -------
    pandas.DataFrame
    """
    return results.compare([r for r in rows if r["method"] in ("scratch", "kd")], by="method",
                           metric="agree_test", reference="scratch")


def _difference(table: pd.DataFrame, group, reference=None) -> results.PairedDifference:
    reference = table.attrs["reference"] if reference is None else reference
    return results.paired_difference(table.loc[group, "values"], table.loc[reference, "values"])


# ------------------------------------------------------------------ tracked students, the twin
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


def tracked_students(data, teacher: dict, settings: Settings, rows: list, selection: dict, *,
                     progress: bool = True) -> dict:
    """The selected scratch and KD students of the first ``track_seeds`` seeds, trained again
    one by one (:func:`kdlib.experiments.train`) to measure their fidelity after every epoch
    on their training images and on the first :data:`N_TRACK` test images.

    Parameters
    ----------
    data : kdlib.data.Splits
    teacher : dict
        The teacher's logits on ``"train"`` (the pool) and ``"test"``.
    settings : Settings
    rows : list of tuple
    selection : dict
        From :func:`kdlib.experiments.choose`.
    progress : bool

    Returns
    -------
    dict
        ``curves[method]``: per-epoch rows (``epoch``, ``split``, ``agreement``, ``kl``,
        ``acc``, ``seed``).
    """
    S = settings
    curves = {}
    jobs = [(m, s) for m in ("scratch", "kd") for s in range(S.track_seeds)]
    for m, seed in tqdm(jobs, desc="tracked students", disable=not progress, leave=False):
        sel = selection[m]
        method = experiments.scratch() if m == "scratch" else experiments.kd(S.lam, sel["T"])
        idx = torch.as_tensor(rows[seed])
        test = slice(0, N_TRACK)
        track = {"train": data.train.x[idx], "test": data.test.x[test]}
        curve = []
        callback = _tracker(track, {"train": teacher["train"][idx], "test": teacher["test"][test]},
                            {"train": data.train.y[idx], "test": data.test.y[test]}, curve)
        config = experiments.Config(experiments.mlp_builder([784, S.width, 10]), method, seed,
                                    train.TrainSettings(epochs=S.epochs, lr=sel["lr"]), rows=rows[seed])
        experiments.train(config, data.train, teacher_logits=teacher["train"], callback=callback)
        curves.setdefault(m, []).extend({**r, "seed": seed} for r in curve)
    return curves


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


def _curve_at(curves: dict, kind: str, epoch: int, split: str, metric: str = "agreement") -> float:
    return float(np.mean([r[metric] for r in curves[kind] if r["epoch"] == epoch and r["split"] == split]))


def train_twins(data, teacher_logits, *, seeds, epochs, lr, rows=None, progress: bool = True) -> dict:
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
    rows : list of tuple, optional
        Seed ``s`` trains on ``rows[s]`` of ``data.train`` (default: all of it).
    progress : bool

    Returns
    -------
    dict
        ``{("twin", seed): (model, history)}``; empty when ``epochs == 0``.
    """
    if epochs == 0:
        return {}
    settings = train.TrainSettings(epochs=epochs, lr=lr)
    out = {}
    for seed in tqdm(range(seeds), desc="twins", disable=not progress, leave=False):
        # init_seed: a different initialisation from the teacher's own (seed 0)
        config = experiments.Config(models.cnn, experiments.kd(0.0, 1.0), seed, settings,
                                    rows=None if rows is None else rows[seed], init_seed=seed + 100)
        out[("twin", seed)] = experiments.train(config, data.train, teacher_logits=teacher_logits)
    return out


def twin_rows(twins: dict, data, teacher: dict, rows: list) -> list[dict]:
    """The twins' fidelity rows (the columns of :func:`fidelity_evaluator`'s), with
    ``method="twin"`` and the training loss of every epoch (``epoch_loss``).

    Parameters
    ----------
    twins : dict
        From :func:`train_twins`.
    data : kdlib.data.Splits
    teacher : dict
        The teacher's logits on ``"train"`` (the pool), ``"val"`` and ``"test"``.
    rows : list of tuple
        The seeds' training rows (:func:`kdlib.experiments.sample_rows`).

    Returns
    -------
    list of dict
    """
    out = []
    for (_, seed), (model, history) in twins.items():
        config = experiments.Config(models.cnn, seed=seed, rows=rows[seed])
        out.append({"method": "twin", "seed": seed, "student": model,
                    "epoch_loss": list(history.epoch_loss),
                    **fidelity_evaluator(data, teacher, ("train", "test"))(model, config, data)})
    return out


# ------------------------------------------------------------------ fidelity
def _mean_sd(values, scale: float = 100.0, digits: int = 2) -> str:
    m, s = results.mean_sd(values) if len(values) > 1 else (float(values[0]), float("nan"))
    return f"{scale * m:.{digits}f}" + ("" if np.isnan(s) else f" ± {scale * s:.{digits}f}")


def fidelity_frame(rows, teacher_acc: float) -> pd.DataFrame:
    """Agreement (%) and KL (nats) on the students' training images and on the test images,
    and test accuracy (%), mean ± sd over seeds, one row per method (and the teacher).

    Parameters
    ----------
    rows : list of dict
        Rows with ``method``, ``agree_train``, ``agree_test``, ``kl_train``, ``kl_test``,
        ``test_acc`` (:func:`kdlib.experiments.chosen` rows, :func:`twin_rows`).
    teacher_acc : float

    Returns
    -------
    pandas.DataFrame
    """
    cols = {"agreement, train images (%)": ("agree_train", 100, 2),
            "agreement, test images (%)": ("agree_test", 100, 2),
            "KL, train images (nats)": ("kl_train", 1, 3), "KL, test images (nats)": ("kl_test", 1, 3),
            "test accuracy (%)": ("test_acc", 100, 2)}
    kinds = list(dict.fromkeys(r["method"] for r in rows))
    table = {name: [_mean_sd([r[key] for r in rows if r["method"] == k], scale, d) for k in kinds]
             for name, (key, scale, d) in cols.items()}
    frame = pd.DataFrame(table, index=pd.Index(kinds, name="student"))
    frame.loc["teacher"] = ["", "", "", "", f"{100 * teacher_acc:.2f}"]
    return frame


def fidelity_gap(rows, kind: str) -> results.PairedDifference:
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
    mine = sorted((r for r in rows if r["method"] == kind), key=lambda r: r["seed"])
    return results.paired_difference([r["agree_train"] for r in mine], [r["agree_test"] for r in mine])


# ------------------------------------------------------------------ where they disagree
def disagreement_table(teacher_pred, student_pred, y, classes) -> pd.DataFrame:
    """Per true class: test images the teacher gets right and the student wrong, the reverse,
    and how often the two predictions differ; a last row of totals.

    Parameters
    ----------
    teacher_pred, student_pred, y : Tensor
        Predicted and true classes.
    classes : sequence of str

    Returns
    -------
    pandas.DataFrame
        Indexed by class (and ``"total"``): ``n``, ``teacher right, student wrong``,
        ``student right, teacher wrong``, ``differ``.
    """
    t_ok, s_ok = teacher_pred == y, student_pred == y
    rows = []
    for c in range(len(classes)):
        m = y == c
        rows.append([int(m.sum()), int((m & t_ok & ~s_ok).sum()), int((m & s_ok & ~t_ok).sum()),
                     int((m & (teacher_pred != student_pred)).sum())])
    table = pd.DataFrame(rows, index=pd.Index(list(classes), name="true class"),
                         columns=["n", "teacher right, student wrong", "student right, teacher wrong",
                                  "differ"])
    table.loc["total"] = table.sum()
    return table


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
def ece_rows(rows, data, *, n_bins: int) -> list[dict]:
    """ECE, mean confidence and accuracy on the test images of every student of ``rows`` (its
    model under ``"student"``), and of the scratch students after temperature scaling fitted
    on the validation split (method ``"scratch + temperature scaling"``, with its ``T_fit``).

    Parameters
    ----------
    rows : list of dict
        :func:`kdlib.experiments.chosen` rows.
    data : kdlib.data.Splits
    n_bins : int

    Returns
    -------
    list of dict
        ``method``, ``seed``, ``ece``, ``confidence``, ``acc`` (and ``T_fit``).
    """
    out = []
    for r in rows:
        logits = models.predict(r["student"], data.test.x)
        variants = [(r["method"], 1.0)]
        if r["method"] == "scratch":
            t_fit = metrics.fit_temperature(models.predict(r["student"], data.val.x), data.val.y)
            variants.append(("scratch + temperature scaling", t_fit))
        for name, t in variants:
            out.append({"method": name, "seed": r["seed"], "T_fit": t,
                        **calibration_summary(logits / t, data.test.y, n_bins)})
    order = {m: i for i, m in enumerate(("scratch", "scratch + temperature scaling", *METHODS[1:]))}
    return sorted(out, key=lambda r: (order.get(r["method"], len(order)), r["seed"]))


def calibration_summary(logits, y, n_bins: int) -> dict:
    """ECE, mean confidence and accuracy of ``softmax(logits)`` against ``y``.

    Parameters
    ----------
    logits : Tensor (N, classes)
    y : Tensor (N,)
    n_bins : int

    Returns
    -------
    dict
        ``ece``, ``confidence``, ``acc`` (fractions).
    """
    p = logits.softmax(1)
    return {"ece": metrics.reliability_bins(p, y, n_bins=n_bins)["ece"],
            "confidence": float(p.max(1).values.mean()), "acc": metrics.accuracy_from_logits(logits, y)}


def ece_table(rows) -> pd.DataFrame:
    """ECE of every method against scratch, paired by seed (:func:`kdlib.results.compare`);
    lower is better, so ``verdict`` says ``"lower ECE"``, ``"higher ECE"`` or ``"not shown"``.

    Parameters
    ----------
    rows : list of dict
        From :func:`ece_rows`.

    Returns
    -------
    pandas.DataFrame
    """
    table = results.compare(rows, by="method", metric="ece", reference="scratch")
    table["verdict"] = table["verdict"].map(
        {"helped": "higher ECE", "hurt": "lower ECE"}).fillna(table["verdict"])
    return table


def confidence_frame(rows, teacher_row: dict) -> pd.DataFrame:
    """ECE, mean confidence and accuracy (%) per method, mean ± sd over seeds, and the teacher's.

    Parameters
    ----------
    rows : list of dict
        From :func:`ece_rows`.
    teacher_row : dict
        :func:`calibration_summary` of the teacher.

    Returns
    -------
    pandas.DataFrame
    """
    kinds = list(dict.fromkeys(r["method"] for r in rows))
    frame = pd.DataFrame({c: [_mean_sd([r[key] for r in rows if r["method"] == k]) for k in kinds]
                          for c, key in (("ECE (%)", "ece"), ("mean confidence (%)", "confidence"),
                                         ("test accuracy (%)", "acc"))},
                         index=pd.Index(kinds, name="model"))
    frame.loc["teacher"] = [f"{100 * teacher_row[k]:.2f}" for k in ("ece", "confidence", "acc")]
    return frame


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
    return {("no shift" if k == "none" else f"{k} {s:g}"): kdata.shift(x, k, s, seed=seed) for k, s in shifts}


def shift_rows(teacher, students, shifted: dict, y) -> list[dict]:
    """Accuracy of the teacher and every student, and each student's agreement with the
    teacher, on every shifted set.

    Parameters
    ----------
    teacher : nn.Module
    students : dict
        ``(kind, seed) → model``.
    shifted : dict
        From :func:`shifted_sets`.
    y : Tensor

    Returns
    -------
    list of dict
        ``shift``, ``kind``, ``seed``, ``acc``, ``agree``.
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


def shift_frame(rows) -> pd.DataFrame:
    """Accuracy % per shift (rows) and model (columns), mean ± sd over seeds, with the
    student's agreement with the teacher (%) in brackets.

    Parameters
    ----------
    rows : list of dict
        From :func:`shift_rows`.

    Returns
    -------
    pandas.DataFrame
    """
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    shifts = list(dict.fromkeys(r["shift"] for r in rows))
    cells = {}
    for k in kinds:
        col = []
        for name in shifts:
            mine = [r for r in rows if r["shift"] == name and r["kind"] == k]
            acc = _mean_sd([r["acc"] for r in mine], digits=1)
            col.append(acc if k == "teacher" else f"{acc} [{100 * np.mean([r['agree'] for r in mine]):.0f}]")
        cells[k] = col
    return pd.DataFrame(cells, index=pd.Index(shifts, name="shift"))


def shift_comparison(rows, group: str = "kd", reference: str = "scratch") -> pd.DataFrame:
    """Per shift, ``group``'s accuracy minus ``reference``'s, paired by seed, with its 95 %
    interval and verdict (one :func:`kdlib.results.compare` per shift).

    Parameters
    ----------
    rows : list of dict
        From :func:`shift_rows`.
    group, reference : str
        Student kinds.

    Returns
    -------
    pandas.DataFrame
        Indexed by shift: ``diff (points)``, ``low``, ``high``, ``verdict``.
    """
    out = []
    for name in dict.fromkeys(r["shift"] for r in rows):
        mine = [r for r in rows if r["shift"] == name and r["kind"] in (group, reference)]
        t = results.compare(mine, by="kind", metric="acc", reference=reference).loc[group]
        out.append({"shift": name, "diff (points)": round(100 * t["diff"], 2),
                    "low": round(100 * t["low"], 2), "high": round(100 * t["high"], 2),
                    "verdict": t["verdict"]})
    return pd.DataFrame(out).set_index("shift")


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


# ------------------------------------------------------------------ what we saw
def _pct(v: float, digits: int = 2) -> str:
    return f"{100 * v:.{digits}f} %"


def _mean(rows, method: str, key: str) -> float:
    return float(np.mean([r[key] for r in rows if r["method"] == method]))


def say_selection(selection: dict) -> Markdown:
    """What the validation split chose for every method (learning rate; KD's T).

    Parameters
    ----------
    selection : dict
        From :func:`kdlib.experiments.choose`.

    Returns
    -------
    IPython.display.Markdown
    """
    parts = [f"{m}: lr = {s['lr']:.3g}" + (f", T = {s['T']:g}" if m == "kd" else "")
             for m, s in selection.items()]
    return Markdown("Chosen on the validation split (mean agreement with the teacher over the seeds): "
                    + "; ".join(parts) + ". The test images played no part in these choices.")


def say_primary(table: pd.DataFrame) -> Markdown:
    """The primary comparison in one sentence, its conclusion following the interval.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`primary_table` (``kd`` against ``scratch``).

    Returns
    -------
    IPython.display.Markdown
    """
    d = _difference(table, "kd")
    n = int(table.loc["kd", "n"])
    return Markdown(
        f"**Primary result** ({n} seeds, each its own sample of training images): the distilled "
        f"student agreed with the teacher on {_pct(table.loc['kd', 'mean'])} of the test images, the "
        f"scratch student on {_pct(table.loc['scratch', 'mean'])}; paired by seed, "
        f"{d.describe('distillation')}.")


def say_fidelity(rows, teacher_acc: float) -> Markdown:
    """What the fidelity table showed: agreement on training vs test images, agreement vs
    accuracy, and what the twin's training reached.

    Parameters
    ----------
    rows : list of dict
        :func:`kdlib.experiments.chosen` rows and :func:`twin_rows` (``method``, ``seed``,
        ``agree_*``, ``kl_*``, ``test_acc``; the twins' ``epoch_loss``).
    teacher_acc : float

    Returns
    -------
    IPython.display.Markdown
    """
    out = []
    for m, name in (("kd", "The distilled student"), ("scratch", "The scratch student")):
        gap = fidelity_gap(rows, m)
        out.append(f"{name} agreed with the teacher on {_pct(_mean(rows, m, 'agree_train'))} of its own "
                   f"training images and {_pct(_mean(rows, m, 'agree_test'))} of the test images "
                   f"(KL {_mean(rows, m, 'kl_train'):.3f} and {_mean(rows, m, 'kl_test'):.3f} nats); "
                   f"training minus test agreement: {_gap_words(gap)}.")
    kd = sorted((r for r in rows if r["method"] == "kd"), key=lambda r: r["seed"])
    d = results.paired_difference([r["agree_test"] for r in kd], [r["test_acc"] for r in kd])
    out.append(f"On the test images the distilled student's agreement with the teacher minus its "
               f"accuracy: {d.format()} ({_agreement_vs_accuracy(d)}); the teacher's accuracy is "
               f"{_pct(teacher_acc)}.")
    twins = [r for r in rows if r["method"] == "twin"]
    if twins:
        out.append(_say_twin(twins))
    return Markdown("What we saw (exploratory): " + "\n\n".join(out))


def _gap_words(gap: results.PairedDifference) -> str:
    if gap.verdict == "not shown":
        return f"a gap was not shown, {gap.format()}"
    return f"{'higher' if gap.verdict == 'helped' else 'lower'} on the training images, {gap.format()}"


def _agreement_vs_accuracy(d: results.PairedDifference) -> str:
    if d.verdict == "helped":
        return "it agrees with the teacher more often than it is right: agreement counts shared mistakes too"
    if d.verdict == "hurt":
        return "it is right more often than it agrees with the teacher"
    return "no difference between the two was shown"


def _say_twin(twins) -> str:
    loss = np.mean([r["epoch_loss"] for r in twins], axis=0)
    epochs = len(loss)
    trend = ""
    if epochs > 1:
        falling = loss[-1] < 0.95 * loss[-2]
        trend = (f", {loss[0]:.3f} after the first; " +
                 ("it was still falling by more than 5 % an epoch" if falling else
                  "it fell by less than 5 % in the last epoch"))
    n = len(twins)
    return (f"The **twin** ({n} seed{'s' if n > 1 else ''}, {epochs} epoch{'s' if epochs > 1 else ''}) "
            f"agreed with the teacher on {_pct(np.mean([r['agree_train'] for r in twins]))} of its "
            f"training images and {_pct(np.mean([r['agree_test'] for r in twins]))} of the test images, "
            f"with {_pct(np.mean([r['test_acc'] for r in twins]))} accuracy. Its training loss (the KL "
            f"it minimises) was {loss[-1]:.3f} nats after the last epoch{trend}. It was not trained to "
            "convergence, so this says only what this budget reached, not whether a converged "
            "twin would match the teacher (the question Stanton et al. 2021 answer).")


def say_curves(curves: dict, epochs: int) -> Markdown:
    """What the per-epoch curves showed: agreement after the first and the last epoch, and the
    gap between training and test images at the end (mean over the tracked seeds).

    Parameters
    ----------
    curves : dict
        From :func:`tracked_students`.
    epochs : int

    Returns
    -------
    IPython.display.Markdown
    """
    names = {"kd": "distilled", "scratch": "scratch"}
    seeds = len({r["seed"] for rows in curves.values() for r in rows})
    out = []
    for k in curves:
        a1, an = _curve_at(curves, k, 1, "test"), _curve_at(curves, k, epochs, "test")
        tr = _curve_at(curves, k, epochs, "train")
        out.append(f"{names.get(k, k)}: test agreement {_pct(a1)} after epoch 1 and {_pct(an)} after "
                   f"epoch {epochs} ({'up' if an > a1 else 'not up'}); at the end "
                   f"{100 * (tr - an):+.2f} points higher on its training images than on test images")
    if {"kd", "scratch"} <= set(curves):
        kl = {k: _curve_at(curves, k, epochs, "test", "kl") for k in ("kd", "scratch")}
        out.append(f"final test KL to the teacher {kl['kd']:.3f} nats (distilled) against "
                   f"{kl['scratch']:.3f} (scratch)")
    return Markdown(f"What we saw (mean of {seeds} tracked seed{'s' if seeds > 1 else ''}, exploratory): "
                    + "; ".join(out) + ".")


def say_disagreement(table: pd.DataFrame) -> Markdown:
    """The disagreement table in words: the totals and the classes that cost the most.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`disagreement_table`.

    Returns
    -------
    IPython.display.Markdown
    """
    t_col, s_col = "teacher right, student wrong", "student right, teacher wrong"
    per_class = table.drop(index="total")
    worst = per_class[t_col].sort_values(ascending=False, kind="stable").head(3)
    best = per_class[s_col].sort_values(ascending=False, kind="stable").head(2)
    total = table.loc["total"]
    return Markdown(
        f"What we saw: on the {int(total['n'])} test images the teacher is right where the student is "
        f"wrong {int(total[t_col])} times, and the reverse {int(total[s_col])} times. The most "
        "teacher-only successes are on " + ", ".join(f"{c} ({int(v)})" for c, v in worst.items())
        + "; the student's own successes are most often on "
        + " and ".join(f"{c} ({int(v)})" for c, v in best.items()) + ".")


def say_disputed(idx, teacher_logits, student_logits, *, confident: float = 0.8) -> Markdown:
    """How confident both models are on the most disputed images.

    Parameters
    ----------
    idx : Tensor
        From :func:`most_disputed`.
    teacher_logits, student_logits : Tensor
    confident : float
        The top probability that counts as confident.

    Returns
    -------
    IPython.display.Markdown
    """
    if len(idx) == 0:
        return Markdown("What we saw: the two models agree on every image.")
    pt = teacher_logits[idx].softmax(1).max(1).values
    ps = student_logits[idx].softmax(1).max(1).values
    both = int(((pt >= confident) & (ps >= confident)).sum())
    return Markdown(
        f"What we saw: on these {len(idx)} images the teacher's top probability averages "
        f"{pt.mean():.2f} and the student's {ps.mean():.2f}; on {both} of them both exceed "
        f"{confident:g}: confident and different answers, not hesitations near the teacher's.")


def say_calibration(rows, teacher_row: dict) -> Markdown:
    """The calibration comparison in words: every method's ECE against scratch (paired by
    seed) and distillation against post-hoc temperature scaling; conclusions follow the
    intervals.

    Parameters
    ----------
    rows : list of dict
        From :func:`ece_rows`.
    teacher_row : dict
        The teacher's ``ece``, ``confidence``, ``acc``.

    Returns
    -------
    IPython.display.Markdown
    """
    def values(m):
        return [r["ece"] for r in sorted((r for r in rows if r["method"] == m), key=lambda r: r["seed"])]

    def confidence(m):
        conf = np.mean([r["confidence"] for r in rows if r["method"] == m])
        acc = np.mean([r["acc"] for r in rows if r["method"] == m])
        return (f"mean confidence {_pct(conf)} for {_pct(acc)} accuracy, "
                f"{'over' if conf > acc else 'under'}-confident on average")

    out = [f"The teacher's ECE is {_pct(teacher_row['ece'])} (mean confidence "
           f"{_pct(teacher_row['confidence'])} for {_pct(teacher_row['acc'])} accuracy). The scratch "
           f"student's ECE is {_pct(_mean(rows, 'scratch', 'ece'))} ({confidence('scratch')})."]
    for m in dict.fromkeys(r["method"] for r in rows):
        if m != "scratch":
            d = results.paired_difference(values("scratch"), values(m))
            out.append(f"**{m}** ({confidence(m)}): {_ece_words(d)} against scratch.")
    if {"kd", "scratch + temperature scaling"} <= {r["method"] for r in rows}:
        d = results.paired_difference(values("scratch + temperature scaling"), values("kd"))
        t_fit = np.mean([r["T_fit"] for r in rows if r["method"] == "scratch + temperature scaling"])
        out.append(f"Against the post-hoc control (the scratch student's logits divided by one T fitted "
                   f"on the validation split, mean T = {t_fit:.2f}), distillation: {_ece_words(d)}.")
    return Markdown("What we saw (exploratory): " + " ".join(out))


def _ece_words(reduction: results.PairedDifference) -> str:
    """``reduction`` = reference ECE minus the method's, in words that follow its interval."""
    numbers = reduction.format()
    if reduction.verdict == "helped":
        return f"lowered the ECE by {numbers}"
    if reduction.verdict == "hurt":
        return f"raised the ECE (reduction {numbers})"
    return f"a change in ECE was not shown (reduction {numbers})"


def say_reliability(bins_by_model: dict) -> Markdown:
    """For every model of the widget, its most populated confidence bin: accuracy against
    mean confidence there.

    Parameters
    ----------
    bins_by_model : dict
        ``name → kdlib.metrics.reliability_bins`` (:func:`calibration`).

    Returns
    -------
    IPython.display.Markdown
    """
    out = []
    for name, b in bins_by_model.items():
        i = int(np.argmax(b["count"]))
        lo, hi = b["edges"][i], b["edges"][i + 1]
        acc, conf = float(b["accuracy"][i]), float(b["confidence"][i])
        share = float(b["count"][i] / b["count"].sum())
        out.append(f"{name}: {_pct(share, 0)} of its images in the bin [{lo:.1f}, {hi:.1f}], accuracy "
                   f"{_pct(acc, 1)} for confidence {_pct(conf, 1)} "
                   f"({'over' if conf > acc else 'under'}-confident there)")
    return Markdown("What we saw (seed 0): " + "; ".join(out) + ".")


def say_shifts(rows, comparison: pd.DataFrame) -> Markdown:
    """The shifted-data results in words: the teacher's and the students' accuracy under every
    shift, where distillation's paired interval excludes 0, and the twin against the teacher.

    Parameters
    ----------
    rows : list of dict
        From :func:`shift_rows`.
    comparison : pandas.DataFrame
        From :func:`shift_comparison`.

    Returns
    -------
    IPython.display.Markdown
    """
    def acc(name, kind):
        return float(np.mean([r["acc"] for r in rows if r["shift"] == name and r["kind"] == kind]))

    shifts = list(dict.fromkeys(r["shift"] for r in rows))
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    lines = [f"{s}: teacher {_pct(acc(s, 'teacher'), 1)}, "
             + ", ".join(f"{k} {_pct(acc(s, k), 1)}" for k in kinds if k != "teacher") for s in shifts]
    helped = [s for s in comparison.index if comparison.loc[s, "verdict"] == "helped"]
    hurt = [s for s in comparison.index if comparison.loc[s, "verdict"] == "hurt"]
    def listed(names):
        return f" ({', '.join(names)})" if names else ""
    verdict = (f"Distillation's accuracy minus scratch's, paired by seed, excludes 0 upwards under "
               f"{len(helped)} of the {len(comparison)} conditions{listed(helped)} and downwards under "
               f"{len(hurt)}{listed(hurt)}.")
    twin = ""
    if "twin" in kinds:
        above = [s for s in shifts if acc(s, "twin") > acc(s, "teacher")]
        twin = (f" The twin (no interval: one run against one teacher) is above the teacher's accuracy "
                f"under {len(above)} of the {len(shifts)} conditions"
                + (f" ({', '.join(above)})" if above else "") + ".")
    return Markdown("What we saw (exploratory; accuracy, mean over seeds):\n\n"
                    + "\n".join(f"* {line}" for line in lines) + "\n\n" + verdict + twin)


def say_summary(primary: pd.DataFrame, calibration_rows, shift_rows_: list,
                shift_cmp: pd.DataFrame) -> Markdown:
    """The three-line summary, from the primary table, the calibration rows and the shifts.

    Parameters
    ----------
    primary : pandas.DataFrame
        From :func:`primary_table`.
    calibration_rows : list of dict
        From :func:`ece_rows`.
    shift_rows_ : list of dict
        From :func:`shift_rows`.
    shift_cmp : pandas.DataFrame
        From :func:`shift_comparison`.

    Returns
    -------
    IPython.display.Markdown
    """
    d = _difference(primary, "kd")
    scratch = [r["ece"] for r in sorted((r for r in calibration_rows if r["method"] == "scratch"),
                                        key=lambda r: r["seed"])]
    lines = [f"* **Fidelity (primary)**: {d.describe('distillation')} in top-1 agreement with the "
             f"teacher on test images ({_pct(primary.loc['kd', 'mean'])} against "
             f"{_pct(primary.loc['scratch', 'mean'])})."]
    cal = []
    for m in ("kd", "scratch + temperature scaling", "label smoothing"):
        mine = [r["ece"] for r in sorted((r for r in calibration_rows if r["method"] == m),
                                         key=lambda r: r["seed"])]
        if mine:
            verdict = results.paired_difference(scratch, mine).verdict
            cal.append(f"{m}: " + {"helped": "lower", "hurt": "higher"}.get(verdict, "a change not shown"))
    lines.append("* **Calibration (exploratory)**, ECE against scratch's: " + "; ".join(cal) + ".")
    helped = int((shift_cmp["verdict"] == "helped").sum())

    def acc(name, kind):
        return float(np.mean([r["acc"] for r in shift_rows_ if r["shift"] == name and r["kind"] == kind]))
    below = sum(acc(s, "kd") < acc(s, "teacher") for s in shift_cmp.index)
    lines.append(f"* **Shifted images (exploratory)**: distillation's accuracy gain over scratch was "
                 f"shown under {helped} of the {len(shift_cmp)} conditions; the distilled MLP's mean "
                 f"accuracy was below the teacher's under {below} of them.")
    return Markdown("\n".join(lines))


def say_runtime(seconds: float) -> Markdown:
    """The run's wall time, for the header's promise.

    Parameters
    ----------
    seconds : float

    Returns
    -------
    IPython.display.Markdown
    """
    return Markdown(f"This run took {seconds:.0f} s from the parameters cell to here.")


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


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the top-1 agreement (a fraction) of the exercise's teacher and student "
             "predictions; 2: the expected calibration error with 4 bins of its four predictions; "
             '3: ``"a"``, ``"b"`` or ``"c"``, what 99 % agreement on the training images and 85 % '
             "on the test images says."))
