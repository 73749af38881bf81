"""Lesson module of ``notebooks/06_dark_knowledge.ipynb``: is it really dark knowledge?

Everything only notebook 06 uses: its settings (:class:`Settings`, ``QUICK``) and their
check (:func:`check_params`), the
teachers it compares (checkpoints made by notebook 01 through ``make teachers``, or by
papermill here when one is missing), the student runner and the experiments (the
omitted-class experiment of Hinton et al. 2015 §3, the controls that keep the teacher's
confidence but not its ranking of the wrong classes, which teacher teaches best, a
born-again student), the bias rule and its slider, the figures and the exercises
(:data:`EXERCISES`, graded by :func:`check_exercise`, which returns a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import ipywidgets as W
import numpy as np
import torch
import torch.nn.functional as F
from IPython.display import display
from tqdm.auto import tqdm

from kdlib import data as kdata
from kdlib import experiments, losses, models, results, runs, train
from kdlib._checks import Bool, Int, OneOf, Verdict, check_answer
from kdlib._checks import check_params as _check_params
from kdlib.experiments import STUDENT_DEFAULTS
from kdlib.metrics import accuracy_from_logits
from kdlib.plots import new_figure
from kdlib.widgets import show_in

# --------------------------------------------------------------------------- parameters
PARAMS = {
    "omitted": OneOf(*kdata.FASHION_CLASSES),
    "n_train": Int(200, 20000),
    "epochs": Int(1, 100),
    "seeds": Int(2, 10),
    "quick": Bool(),
}
"""Notebook 06's parameters and their allowed values (name → constraint)."""

STUDENT = {k: STUDENT_DEFAULTS[k] for k in ("hidden", "lr", "batch_size")}
"""The student of every experiment: ``mlp([784, hidden, 10])``, Adam + OneCycle (as notebook 05)."""

KD_CANDIDATES = [(0.1, 4.0), (0.5, 4.0), (0.1, 8.0), (0.5, 8.0)]
"""(λ, T) candidates for the real teacher, chosen on the validation split."""
LS_CANDIDATES = [0.05, 0.1, 0.2, 0.3]
"""ε candidates for label smoothing: the same budget (4 candidates × 1 seed)."""

N_VAL = 2000
"""Validation images used for selection (the first ones of the standard split)."""
QUICK = {"n_train": 500, "epochs": 3, "seeds": 2, "n_val": 500,
         "n_test": 2000, "kd_candidates": KD_CANDIDATES[:2], "ls_candidates": LS_CANDIDATES[:2]}
"""What ``quick=True`` uses: parameters (``n_train``, ``epochs``, ``seeds``) and derived settings."""

CONTROLS = ("hard labels", "real teacher", "label smoothing", "shuffled teacher", "uniform-wrong")


@dataclass(frozen=True)
class Settings:
    """Notebook 06's parameters, validated, with ``quick`` applied (made by :func:`check_params`).

    Attributes
    ----------
    omitted : str
        The class left out of the student's training images (a Fashion-MNIST class name).
    n_train : int
        Labelled training images of every MLP student, in [200, 20000].
    epochs : int
        Epochs of every MLP student, in [1, 100].
    seeds : int
        Seeds per condition, in [2, 10]; conditions are paired by seed.
    quick : bool
        Tiny settings (:data:`QUICK`) for smoke tests.
    """

    omitted: str
    n_train: int
    epochs: int
    seeds: int
    quick: bool

    @property
    def n_val(self) -> int:
        """Validation images used for selection."""
        return QUICK["n_val"] if self.quick else N_VAL

    @property
    def n_test(self) -> int | None:
        """Test images (``None``: all 10,000)."""
        return QUICK["n_test"] if self.quick else None

    @property
    def kd_candidates(self) -> list:
        """(λ, T) candidates for the real teacher."""
        return QUICK["kd_candidates"] if self.quick else KD_CANDIDATES

    @property
    def ls_candidates(self) -> list:
        """ε candidates for label smoothing."""
        return QUICK["ls_candidates"] if self.quick else LS_CANDIDATES

    @property
    def omitted_index(self) -> int:
        """The omitted class's index in :data:`kdlib.data.FASHION_CLASSES`."""
        return kdata.FASHION_CLASSES.index(self.omitted)


def check_params(**params) -> Settings:
    """Validate notebook 06's parameters and return its settings.

    Parameters
    ----------
    **params
        ``omitted``, ``n_train``, ``epochs``, ``seeds``, ``quick`` (see :class:`Settings`).

    Returns
    -------
    Settings
        The parameters (the ``QUICK`` ones when ``quick``) and what derives from them.

    Raises
    ------
    TypeError, ValueError
        Naming the parameter, its value and what is allowed.
    """
    p = _check_params(params, PARAMS)
    if p["quick"]:
        p.update({k: v for k, v in QUICK.items() if k in p})
    return Settings(**p)


def load_data(S: Settings) -> kdata.Splits:
    """Fashion-MNIST with ``n_train`` training images, ``n_val`` of the validation split
    (data seed 0, the split notebook 01's default teacher never saw) and the test set.

    Parameters
    ----------
    S : Settings
        Uses ``n_train``, ``n_val`` and ``n_test`` (``None``: all 10,000 test images).

    Returns
    -------
    kdlib.data.Splits
        ``train`` (``n_train`` images), the first ``n_val`` validation and first ``n_test`` test images.
    """
    d = kdata.load("fashion-mnist", n_train=S.n_train, seed=0)
    val = kdata.Split(d.val.x[:S.n_val], d.val.y[:S.n_val])
    n_test = S.n_test or len(d.test.y)
    test = kdata.Split(d.test.x[:n_test], d.test.y[:n_test])
    return kdata.Splits(d.train, val, test, d.classes, d.name)


# --------------------------------------------------------------------------- teachers
TEACHER_IMAGES = 10000
"""Training images of the extra teachers (the default teacher saw all 55,000): ten times
cheaper to make, and a spread of teacher quality on its own."""

_E5 = {"epochs": 5, "snapshot_epochs": [1, 2], "n_train": TEACHER_IMAGES, "checkpoint": "teacher_e5.pt"}
TEACHERS = {
    # name: (checkpoint file, notebook-01 parameters that make it)
    "default (55k images)": ("teacher.pt", {}),
    "10k, after 1 epoch": ("teacher_e5_epoch1.pt", _E5),
    "10k, after 2 epochs": ("teacher_e5_epoch2.pt", _E5),
    "10k, after 5 epochs": ("teacher_e5.pt", _E5),
    "10k, wider": ("teacher_wide.pt", {"channels": [64, 128], "hidden": 256, "n_train": TEACHER_IMAGES,
                                       "checkpoint": "teacher_wide.pt"}),
    "10k, label smoothing": ("teacher_ls.pt", {"label_smoothing": 0.1, "n_train": TEACHER_IMAGES,
                                               "checkpoint": "teacher_ls.pt"}),
}
"""Every teacher notebook 06 compares: its file in the data folder and the parameters of
notebook 01 that produce it (``make teachers`` runs exactly these; 2 epochs unless said)."""

ENSEMBLE = ("10k, after 5 epochs", "10k, wider", "10k, label smoothing")
"""Members of the ensemble teacher (averaged logits, as in Hinton et al. 2015 §4; their
ensembles are of differently seeded nets, ours reuses three different teachers we have)."""


def teacher_path(name: str):
    """Where the checkpoint of teacher ``name`` lives (``$KDLIB_DATA`` or ``data/``).

    Parameters
    ----------
    name : str
        A key of :data:`TEACHERS`; anything else raises ``ValueError``.

    Returns
    -------
    pathlib.Path
        The checkpoint's path (it need not exist yet).
    """
    if name not in TEACHERS:
        raise ValueError(f"name={name!r} is not a known teacher; choose one of {list(TEACHERS)}")
    return kdata.data_dir() / TEACHERS[name][0]


def make_teacher(name: str, *, notebook=None, executed=None):
    """Produce teacher ``name`` by running notebook 01 through papermill with its parameters.

    Parameters
    ----------
    name : str
        A key of :data:`TEACHERS` (not the default teacher, which notebook 01 makes with
        its defaults).
    notebook : path, optional
        Notebook 01 (default: ``notebooks/01_teacher.ipynb`` of the repository).
    executed : path, optional
        Where to keep the executed notebook (default: a temporary file, deleted).

    Returns
    -------
    pathlib.Path
        The checkpoint written.
    """
    path = teacher_path(name)
    params = dict(TEACHERS[name][1])
    if not params:
        raise ValueError(f"{name!r} is notebook 01's default teacher: run notebook 01 itself")
    params["checkpoint"] = str(kdata.data_dir() / params["checkpoint"])
    notebook = notebook or kdata.REPO_ROOT / "notebooks" / "01_teacher.ipynb"
    keep = executed is not None
    executed = executed or kdata.data_dir() / f".{path.stem}_01_teacher.ipynb"
    print(f"{path.name}: running notebook 01 with {params} (minutes) ...", flush=True)
    runs.execute_notebook(notebook, executed, params)
    if not keep:
        executed.unlink(missing_ok=True)
    return path


def make_teachers(*, force: bool = False, executed_dir=None) -> list:
    """Run notebook 01 once per extra checkpoint of :data:`TEACHERS` (what ``make teachers`` does).

    Parameters
    ----------
    force : bool
        Rerun even when the checkpoint exists.
    executed_dir : path, optional
        Keep each executed notebook there as ``<checkpoint stem>.ipynb``.

    Returns
    -------
    list of pathlib.Path
        The checkpoints written.
    """
    done, written = set(), []
    for _, params in TEACHERS.values():
        if not params or params["checkpoint"] in done:
            continue
        done.add(params["checkpoint"])
        run_name = next(n for n, (f, _) in TEACHERS.items() if f == params["checkpoint"])
        if teacher_path(run_name).is_file() and not force:
            continue
        executed = None
        if executed_dir is not None:
            Path(executed_dir).mkdir(parents=True, exist_ok=True)
            executed = Path(executed_dir) / (Path(params["checkpoint"]).stem + ".ipynb")
        written.append(make_teacher(run_name, executed=executed))
    return written


def load_teachers(names=None, *, make_missing: bool = True) -> dict:
    """Load the teachers (``{name: model}``); produce missing ones with notebook 01.

    Parameters
    ----------
    names : sequence of str, optional
        Keys of :data:`TEACHERS` (default: all).
    make_missing : bool
        Run notebook 01 for a missing checkpoint; ``False`` raises ``FileNotFoundError``.
    """
    names = list(TEACHERS) if names is None else list(names)
    out = {}
    for name in tqdm(names, desc="teachers", leave=False):
        path = teacher_path(name)
        if not path.is_file():
            if not make_missing:
                raise FileNotFoundError(f"no checkpoint {path} for teacher {name!r}; run `make teachers`")
            make_teacher(name)
        out[name] = models.load(path)
    return out


def teacher_accuracy(model, split, logits=None) -> float:
    """Accuracy of a teacher on ``split``: from its logits if given, else computed.

    Parameters
    ----------
    model : nn.Module
        The teacher (only used when ``logits`` is None).
    split : kdlib.data.Split
        Images and labels.
    logits : torch.Tensor, optional
        The teacher's logits on ``split.x``, shape ``(N, classes)``.

    Returns
    -------
    float
        Fraction of ``split`` classified correctly, in [0, 1].
    """
    logits = models.predict(model, split.x) if logits is None else logits
    return float((logits.argmax(1) == split.y).float().mean())


def teacher_outputs(teachers: dict, data) -> tuple[dict, dict, dict]:
    """Every teacher's logits on the training images and its accuracy on the validation split,
    plus the ensemble's (averaged logits of :data:`ENSEMBLE`).

    Every teacher of :data:`TEACHERS` was trained with data seed 0, so none has seen the
    validation images: their accuracy there is an honest measure of quality, and costs a
    fifth of the test set's forward passes.

    Returns
    -------
    train_logits, val_accs, val_logits : dict
        Teacher name (and ``"ensemble of N"``) → logits on the training images / validation
        accuracy / logits on the validation images.
    """
    train_logits, val_logits, accs = {}, {}, {}
    for name in tqdm(list(teachers), desc="teacher outputs", leave=False):
        m = teachers[name]
        train_logits[name] = models.predict(m, data.train.x)
        val_logits[name] = models.predict(m, data.val.x)
        accs[name] = accuracy_from_logits(val_logits[name], data.val.y)
    members = [n for n in ENSEMBLE if n in teachers]
    if members:
        key = f"ensemble of {len(members)}"
        train_logits[key] = torch.stack([train_logits[n] for n in members]).mean(0)
        val_logits[key] = torch.stack([val_logits[n] for n in members]).mean(0)
        accs[key] = accuracy_from_logits(val_logits[key], data.val.y)
    return train_logits, accs, val_logits


# --------------------------------------------------------------------------- students
@dataclass
class Student:
    """One trained student: its condition, seed, and logits on the validation and test splits.

    Attributes
    ----------
    condition : str
        Its label, e.g. one of :data:`CONTROLS` or a teacher's name.
    seed : int
        Seed of its initial weights and batch order.
    val_logits, test_logits : torch.Tensor
        Shape ``(N, 10)`` on the images it was given (``(0, 10)`` when none).
    meta : dict
        ``lam`` and ``T`` of its training, and ``train_logits`` when kept.
    """

    condition: str
    seed: int
    val_logits: torch.Tensor
    test_logits: torch.Tensor
    meta: dict = field(default_factory=dict)


def measure_student(train_split, val_x, test_x, *, targets=None, lam: float = 1.0, T: float = 1.0,
                    seed: int = 0, epochs: int = 10, condition: str = "",
                    keep_train_logits: bool = False) -> Student:
    """One student ``mlp([784, 128, 10])`` trained by the engine on ``train_split``, and its
    logits on ``val_x`` and ``test_x`` (and on the training images with ``keep_train_logits``).

    Parameters
    ----------
    train_split : kdlib.data.Split
    val_x, test_x : Tensor
        Images to record the trained student's logits on (either may be empty).
    targets : Tensor, optional
        Rows of probabilities, one per training image, distilled with
        ``kd_loss_from_probs(lam=lam, T=T)`` (:func:`kdlib.experiments.on_targets`);
        ``None`` trains on hard labels.
    lam, T : float
    seed : int
        Seeds the initial weights and the batch order.
    epochs : int
    condition : str
        Its label.
    keep_train_logits : bool

    Returns
    -------
    Student
    """
    how = experiments.scratch() if targets is None else experiments.on_targets(targets, lam=lam, T=T)
    build = partial(models.mlp, [int(np.prod(train_split.x.shape[1:])), STUDENT["hidden"], 10])
    settings = train.TrainSettings(epochs=epochs, lr=STUDENT["lr"], batch_size=STUDENT["batch_size"])
    model, _ = experiments.train(experiments.Config(build, how, seed, settings), (train_split, None))
    meta = {"lam": lam, "T": T}
    if keep_train_logits:
        meta["train_logits"] = _predict(model, train_split.x)
    return Student(condition, seed, _predict(model, val_x), _predict(model, test_x), meta)


def _predict(model, x):
    return models.predict(model, x) if len(x) else torch.zeros(0, 10)


def control_targets(condition: str, teacher_logits, y, *, lam: float, T: float, eps: float, seed: int):
    """``(targets, lam, T)`` of one condition of the controls.

    ``"hard labels"``: no targets. ``"real teacher"``: ``soft_targets(teacher, T)``.
    ``"label smoothing"``: smoothed labels with ``eps`` (``lam=0, T=1``: the usual
    label-smoothing cross-entropy). ``"shuffled teacher"``: the teacher's soft targets
    with the wrong classes permuted per image (seeded by ``seed``). ``"uniform-wrong"``:
    the teacher's target-class probability kept, the rest spread evenly.

    Parameters
    ----------
    condition : str
        One of :data:`CONTROLS`; anything else raises ``ValueError``.
    teacher_logits : torch.Tensor
        The teacher's logits on the training images, shape ``(N, classes)``.
    y : torch.Tensor
        Their labels, shape ``(N,)``.
    lam, T : float
        Returned for the three teacher-based conditions.
    eps : float
        Label-smoothing ε, used by ``"label smoothing"`` only.
    seed : int
        Seed of the permutation of ``"shuffled teacher"``.

    Returns
    -------
    (targets, lam, T) : (torch.Tensor or None, float, float)
        Target probabilities ``(N, classes)`` (None for hard labels, with ``lam=1, T=1``).
    """
    if condition == "hard labels":
        return None, 1.0, 1.0
    if condition == "label smoothing":
        return losses.smoothed_labels(y, teacher_logits.shape[1], eps), 0.0, 1.0
    p = losses.soft_targets(teacher_logits, T)
    if condition == "real teacher":
        return p, lam, T
    if condition == "shuffled teacher":
        return losses.shuffle_wrong(p, y, seed=seed), lam, T
    if condition == "uniform-wrong":
        return losses.uniform_wrong(p, y), lam, T
    raise ValueError(f"condition={condition!r} is not a control; choose one of {CONTROLS}")


def select(data, teacher_logits, S: Settings) -> dict:
    """Choose (λ, T) for the real teacher and ε for label smoothing with the same budget:
    each candidate trained once (seed 0) on the training split, scored on the validation split.

    Returns
    -------
    dict
        ``lam``, ``T``, ``eps`` and ``rows`` (one per candidate with its validation accuracy).
    """
    rows = []
    y = data.train.y
    for lam, T in tqdm(S.kd_candidates, desc="choosing λ, T", leave=False):
        st = measure_student(data.train, data.val.x, data.val.x[:0], lam=lam, T=T, seed=0,
                           epochs=S.epochs, targets=losses.soft_targets(teacher_logits, T))
        rows.append({"method": "real teacher", "lam": lam, "T": T, "eps": None,
                     "val_acc": accuracy_from_logits(st.val_logits, data.val.y)})
    for eps in tqdm(S.ls_candidates, desc="choosing ε", leave=False):
        st = measure_student(data.train, data.val.x, data.val.x[:0], lam=0.0, T=1.0, seed=0,
                           epochs=S.epochs, targets=losses.smoothed_labels(y, 10, eps))
        rows.append({"method": "label smoothing", "lam": None, "T": None, "eps": eps,
                     "val_acc": accuracy_from_logits(st.val_logits, data.val.y)})
    kd = max((r for r in rows if r["method"] == "real teacher"), key=lambda r: r["val_acc"])
    ls = max((r for r in rows if r["method"] == "label smoothing"), key=lambda r: r["val_acc"])
    return {"lam": kd["lam"], "T": kd["T"], "eps": ls["eps"], "rows": rows}


def selection_table(sel: dict) -> str:
    """The candidates and their validation accuracy, the chosen ones marked.

    Parameters
    ----------
    sel : dict
        :func:`select`'s result.

    Returns
    -------
    str
        One line per candidate with its validation accuracy in percent.
    """
    lines = []
    for r in sel["rows"]:
        if r["method"] == "real teacher":
            what, chosen = f"λ={r['lam']:g}, T={r['T']:g}", (r["lam"], r["T"]) == (sel["lam"], sel["T"])
        else:
            what, chosen = f"ε={r['eps']:g}", r["eps"] == sel["eps"]
        mark = "  ← chosen" if chosen else ""
        lines.append(f"{r['method']:16s} {what:14s} {100 * r['val_acc']:6.2f} %{mark}")
    return "\n".join(lines)


def run_controls(train_split, val_x, test_x, teacher_logits, sel: dict, *, seeds: int, epochs: int,
                 conditions=CONTROLS, desc: str = "controls") -> dict:
    """Train every condition with seeds ``0 .. seeds-1``: ``{condition: [Student, ...]}``.

    Parameters
    ----------
    train_split : kdlib.data.Split
        The students' training images (notebook 06: all of them, or those without the omitted class).
    val_x, test_x : torch.Tensor
        Images to record each student's logits on.
    teacher_logits : torch.Tensor
        The teacher's logits on ``train_split.x``.
    sel : dict
        :func:`select`'s ``lam``, ``T`` and ``eps``.
    seeds, epochs : int
        Seeds per condition, epochs per student.
    conditions : sequence of str
        Members of :data:`CONTROLS`.
    desc : str
        Progress-bar label.

    Returns
    -------
    dict of str to list of Student
        The hard-label students also keep ``meta["train_logits"]``.
    """
    out = {c: [] for c in conditions}
    bar = tqdm(total=len(conditions) * seeds, desc=desc, leave=False)
    for c in conditions:
        for seed in range(seeds):
            targets, lam, T = control_targets(c, teacher_logits, train_split.y, lam=sel["lam"],
                                              T=sel["T"], eps=sel["eps"], seed=seed)
            out[c].append(measure_student(train_split, val_x, test_x, targets=targets, lam=lam, T=T,
                                        seed=seed, epochs=epochs, condition=c,
                                        keep_train_logits=c == "hard labels"))
            bar.update(1)
    bar.close()
    return out


def only_class(split, c: int):
    """The images of class ``c`` only.

    Parameters
    ----------
    split : kdlib.data.Split
    c : int
        Class index.

    Returns
    -------
    kdlib.data.Split
    """
    keep = split.y == c
    return kdata.Split(split.x[keep], split.y[keep])


def without_class(split, c: int):
    """The split without any image of class ``c``.

    Parameters
    ----------
    split : kdlib.data.Split
    c : int
        Class index.

    Returns
    -------
    kdlib.data.Split
    """
    keep = split.y != c
    return kdata.Split(split.x[keep], split.y[keep])


# --------------------------------------------------------------------------- the omitted class
def class_metrics(logits, y, c: int, bias: float = 0.0) -> tuple[float, float, float]:
    """``(recall of class c, accuracy on the other classes, overall accuracy)`` after adding
    ``bias`` to the logit of class ``c``.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(N, classes)``; not modified.
    y : torch.Tensor
        Labels, shape ``(N,)``.
    c : int
        The class whose logit is shifted.
    bias : float
        Added to column ``c``.

    Returns
    -------
    (recall, others, overall) : tuple of float
        Fractions in [0, 1]; ``recall`` is nan when no label is ``c``.
    """
    z = logits.clone()
    z[:, c] += bias
    pred = z.argmax(1)
    is_c = y == c
    recall = float((pred[is_c] == c).float().mean()) if bool(is_c.any()) else float("nan")
    others = float((pred[~is_c] == y[~is_c]).float().mean())
    return recall, others, float((pred == y).float().mean())


def predicted_frequency(logits, c: int, bias: float = 0.0) -> float:
    """Fraction of the rows whose arg-max is class ``c`` after adding ``bias`` to its logit.

    Parameters
    ----------
    logits : torch.Tensor
        Shape ``(N, classes)``; not modified.
    c : int
    bias : float

    Returns
    -------
    float
        In [0, 1].
    """
    z = logits.clone()
    z[:, c] += bias
    return float((z.argmax(1) == c).float().mean())


BIAS_GRID = np.round(np.arange(0.0, 20.001, 0.05), 2)
"""The biases :func:`choose_bias` considers."""


def choose_bias(student_val_logits, teacher_val_logits, c: int, grid=BIAS_GRID) -> float:
    """The bias on class ``c`` chosen without any image of ``c``.

    Both logits are on validation images **of the other classes only**. The teacher,
    which knows ``c``, predicts ``c`` on a small fraction of them (its false
    positives); we raise the student's bias for ``c`` as far as the grid allows while
    the student predicts ``c`` on no larger a fraction of them than the teacher does.

    Parameters
    ----------
    student_val_logits, teacher_val_logits : torch.Tensor
        Logits on the same validation images, none of class ``c``.
    c : int
        The omitted class.
    grid : sequence of float
        Candidate biases, increasing (default :data:`BIAS_GRID`, 0 to 20 in steps of 0.05).

    Returns
    -------
    float
        The largest bias of ``grid`` whose false-positive rate is at most the teacher's
        (the first grid value if none is).
    """
    target = predicted_frequency(teacher_val_logits, c)
    best = float(grid[0])
    for b in grid:
        if predicted_frequency(student_val_logits, c, float(b)) <= target:
            best = float(b)
        else:
            break
    return best


@dataclass
class OmittedRow:
    """One condition of :func:`omitted_summary`: one entry per student (seed) in each list.

    Attributes
    ----------
    condition : str
    recall_before, recall_after : list of float
        Test recall of the omitted class without and with the chosen bias.
    others_before, others_after : list of float
        Test accuracy on the images of the other classes, without and with it.
    biases : list of float
        The bias :func:`choose_bias` chose for each student.
    """

    condition: str
    recall_before: list
    recall_after: list
    others_before: list
    others_after: list
    biases: list


def omitted_summary(students: dict, teacher_val_logits, val_y, test_y, c: int) -> dict:
    """Per condition: recall of class ``c`` and accuracy on the others, before and after the
    bias of :func:`choose_bias` (chosen per student on validation images without ``c``).

    Parameters
    ----------
    students : dict of str to list of Student
        :func:`run_controls`' result.
    teacher_val_logits : torch.Tensor
        The teacher's logits on the validation images.
    val_y, test_y : torch.Tensor
        Labels of the validation and test images.
    c : int
        The omitted class.

    Returns
    -------
    dict of str to OmittedRow
    """
    keep = val_y != c
    t_val = teacher_val_logits[keep]
    out = {}
    for cond, sts in students.items():
        row = OmittedRow(cond, [], [], [], [], [])
        for st in sts:
            b = choose_bias(st.val_logits[keep], t_val, c)
            r0, o0, _ = class_metrics(st.test_logits, test_y, c)
            r1, o1, _ = class_metrics(st.test_logits, test_y, c, b)
            row.recall_before.append(r0)
            row.recall_after.append(r1)
            row.others_before.append(o0)
            row.others_after.append(o1)
            row.biases.append(b)
        out[cond] = row
    return out


def omitted_table(summary: dict, class_name: str) -> str:
    """The omitted-class table: recall of the omitted class and accuracy on the others.

    Parameters
    ----------
    summary : dict of str to OmittedRow
        :func:`omitted_summary`'s result.
    class_name : str
        The omitted class's name, for the headers.

    Returns
    -------
    str
        Mean ± sd over seeds, in percent; the bias as mean ± sd.
    """
    head = (f"{'student (no ' + class_name + ' in its training images)':40s} {class_name + ' recall':>22s}  "
            f"{'after bias':>16s}  {'other classes':>16s}  {'after bias':>16s}  {'bias':>11s}")
    lines = [head, "-" * len(head)]
    for cond, r in summary.items():
        b_mean, b_sd = results.mean_sd(r.biases)
        lines.append(f"{cond:40s} {results.format_pct(r.recall_before, 1):>22s}  "
                     f"{results.format_pct(r.recall_after, 1):>16s}  "
                     f"{results.format_pct(r.others_before, 1):>16s}  "
                     f"{results.format_pct(r.others_after, 1):>16s}  {b_mean:5.1f} ± {b_sd:3.1f}")
    return "\n".join(lines)


def oracle_bias(students, test_y, c: int, grid) -> tuple[float, float, float]:
    """Hinton's way: the single bias that maximises the mean overall *test* accuracy of the
    students (chosen on the test set, so optimistic). Returns ``(bias, recall, others)``.

    Parameters
    ----------
    students : list of Student
    test_y : torch.Tensor
        Test labels.
    c : int
        The omitted class.
    grid : iterable of float
        Biases to try (notebook 06: ``BIAS_GRID[::5]``); the first best wins ties.

    Returns
    -------
    (bias, recall, others) : tuple of float
    """
    best = None
    for b in grid:
        m = np.mean([class_metrics(st.test_logits, test_y, c, b) for st in students], axis=0)
        if best is None or m[2] > best[3]:
            best = (float(b), float(m[0]), float(m[1]), float(m[2]))
    return best[:3]


class BiasExplorer:
    """A slider over the bias added to the omitted class's logit, for the distilled students.

    The curves (recall of the omitted class and accuracy on the other classes on the
    test set, mean over seeds) are computed once for a grid of biases; moving the
    slider moves a marker and rewrites the label. ``label.value``, ``figure``,
    ``recall`` and ``others`` expose what the last callback produced.

    Parameters
    ----------
    students : list of Student
        The distilled students (notebook 06: ``omit["real teacher"]``).
    test_y : torch.Tensor
        Test labels.
    c : int
        The omitted class.
    class_name : str
        Its name, for the label and axes.
    chosen : float, optional
        The bias chosen on validation: the slider starts at the nearest grid value, and a dashed line.
    grid : array-like, optional
        Biases, evenly spaced (the slider's step is ``grid[1] - grid[0]``); default 0 to 20 by 0.25.

    Attributes
    ----------
    recall_curve, others_curve : numpy.ndarray
        Mean test recall of class ``c`` and accuracy on the other classes, per grid value.
    recall, others : float
        Their values at the slider's (nearest grid) bias.
    slider, label, widget
        The ``FloatSlider``, the ``HTML`` label and the ``VBox`` displayed.
    """

    def __init__(self, students, test_y, c: int, class_name: str, *, chosen=None, grid=None):
        self.grid = np.round(np.arange(0.0, 20.01, 0.25), 2) if grid is None else np.asarray(grid)
        m = np.array([[np.mean([class_metrics(st.test_logits, test_y, c, b)[:2] for st in students], axis=0)]
                      for b in self.grid])[:, 0]
        self.recall_curve, self.others_curve = m[:, 0], m[:, 1]
        self.class_name, self.chosen = class_name, chosen
        start = float(self.grid[0] if chosen is None else self.grid[np.abs(self.grid - chosen).argmin()])
        self.slider = W.FloatSlider(value=start, min=float(self.grid[0]), max=float(self.grid[-1]),
                                    step=float(self.grid[1] - self.grid[0]), description="bias",
                                    continuous_update=True, readout_format=".2f")
        self.label = W.HTML()
        self.out = W.Output()
        self.figure = None
        self.slider.observe(lambda change: self.update(change["new"]), names="value")
        self.update(start)
        self.widget = W.VBox([self.slider, self.label, self.out])

    def update(self, bias: float):
        """Parameters
        ----------
        bias : float
            Snapped to the nearest grid value.
        """
        i = int(np.abs(self.grid - bias).argmin())
        self.recall, self.others = float(self.recall_curve[i]), float(self.others_curve[i])
        self.label.value = (f"bias +{self.grid[i]:.2f} on <b>{self.class_name}</b>: its recall "
                            f"<b>{100 * self.recall:.1f} %</b>, the other classes "
                            f"<b>{100 * self.others:.1f} %</b> (test set, mean over seeds)")
        fig, ax = new_figure(6.4, 3.4)
        ax = ax[0, 0]
        ax.plot(self.grid, 100 * self.recall_curve, label=f"{self.class_name} recall")
        ax.plot(self.grid, 100 * self.others_curve, label="other classes' accuracy")
        ax.axvline(self.grid[i], color="k", lw=1)
        if self.chosen is not None:
            ax.axvline(self.chosen, color="grey", ls="--", lw=1, label="bias chosen on validation")
        ax.set_xlabel(f"bias added to the {self.class_name} logit")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(0, 100)
        ax.legend(loc="lower left", fontsize=8)
        self.figure = fig
        show_in(self.out, fig)

    def _ipython_display_(self):
        display(self.widget)


# --------------------------------------------------------------------------- comparisons
def test_accs(students, y) -> list:
    """Test accuracy of each student.

    Parameters
    ----------
    students : list of Student
    y : torch.Tensor
        Test labels.

    Returns
    -------
    list of float
        In [0, 1], in the order of ``students``.
    """
    return [accuracy_from_logits(st.test_logits, y) for st in students]


def comparison_lines(values: dict, reference: str, *, digits: int = 2) -> str:
    """``mean ± sd`` per condition and the paired difference to ``reference`` with its 95 % CI.

    Parameters
    ----------
    values : dict of str to sequence of float
        Condition → one value per seed (paired by seed across conditions), fractions in [0, 1].
    reference : str
        A key of ``values``.
    digits : int
        Decimals of the percentages.

    Returns
    -------
    str
        One line per condition.
    """
    lines = []
    for name, v in values.items():
        line = f"{name:18s} {results.format_pct(v, digits):>16s}"
        if name != reference:
            line += f"   vs {reference}: {results.paired_difference(v, values[reference]).format()}"
        lines.append(line)
    return "\n".join(lines)


def controls_figure(full: dict, omitted: dict, omitted_name: str):
    """Dot plots with error bars (mean ± sd over seeds): test accuracy on the full task, and
    the omitted class's recall after the bias correction.

    Parameters
    ----------
    full, omitted : dict of str to sequence of float
        Condition → per-seed fractions in [0, 1] (drawn in percent).
    omitted_name : str
        The omitted class's name, for the right title.

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(9.5, 3.4, ncols=2)
    for ax, vals, title in ((axes[0, 0], full, "full task: test accuracy"),
                            (axes[0, 1], omitted, f"omitted task: {omitted_name} recall after bias")):
        names = list(vals)
        for i, n in enumerate(names):
            v = 100 * np.asarray(vals[n])
            ax.plot(np.full(len(v), i), v, "o", color="C0", alpha=0.35, ms=4)
            ax.errorbar(i, v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="D", color="C3",
                        capsize=4, ms=6)
        ax.set_xticks(range(len(names)), [n.replace(" ", "\n", 1) for n in names], fontsize=8)
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title(title, fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    return fig


def quality_figure(points: list, *, baseline=None):
    """Teacher validation accuracy (x) against the test accuracy of the student it produces (y),
    mean ± sd over seeds. ``points``: dicts with ``name``, ``teacher``, ``students``;
    ``baseline``: the hard-label students' accuracies (a dashed line at their mean).

    Parameters
    ----------
    points : list of dict
        :func:`teacher_quality`'s result; fractions in [0, 1], drawn in percent.
    baseline : sequence of float, optional

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig, axes = new_figure(6.4, 4.2)
    ax = axes[0, 0]
    if baseline is not None:
        ax.axhline(100 * float(np.mean(baseline)), color="grey", ls="--", lw=1,
                   label="student on hard labels")
    for i, p in enumerate(points):
        v = 100 * np.asarray(p["students"])
        ax.errorbar(100 * p["teacher"], v.mean(), yerr=v.std(ddof=1) if len(v) > 1 else 0, fmt="o",
                    capsize=3, color=f"C{i % 10}", label=p["name"])
    ax.set_xlabel("teacher validation accuracy (%)")
    ax.set_ylabel("student test accuracy (%)")
    ax.legend(fontsize=7, loc="best")
    ax.grid(alpha=0.3)
    return fig


def teacher_quality(data, teachers: dict, train_logits: dict, test_accs: dict, sel: dict, *,
                    seeds: int, epochs: int, reuse: dict | None = None) -> list:
    """Distil the same student from every teacher at the chosen (λ, T).

    Parameters
    ----------
    train_logits : dict
        Teacher name → its logits on the training images (the ensemble's: averaged).
    test_accs : dict
        Teacher name → its accuracy (the notebook passes validation accuracy).
    reuse : dict, optional
        Teacher name → test accuracies of students already trained from it (same recipe).

    Returns
    -------
    list of dict
        ``name``, ``teacher`` (test accuracy), ``students`` (test accuracy per seed).
    """
    reuse = reuse or {}
    points = []
    bar = tqdm(total=len(train_logits) * seeds, desc="teachers → students", leave=False)
    for name, logits in train_logits.items():
        if name in reuse:
            accs = reuse[name]
            bar.update(seeds)
        else:
            accs = []
            for seed in range(seeds):
                st = measure_student(data.train, data.val.x[:0], data.test.x, seed=seed, epochs=epochs,
                                   targets=losses.soft_targets(logits, sel["T"]), lam=sel["lam"],
                                   T=sel["T"], condition=name)
                accs.append(accuracy_from_logits(st.test_logits, data.test.y))
                bar.update(1)
        points.append({"name": name, "teacher": test_accs[name], "students": accs})
    bar.close()
    return points


def quality_table(points: list) -> str:
    """The teachers, weakest first: their accuracy and their students' test accuracy (mean ± sd).

    Parameters
    ----------
    points : list of dict
        :func:`teacher_quality`'s result (``name``, ``teacher``, ``students``).

    Returns
    -------
    str
    """
    lines = [f"{'teacher':26s} {'teacher (val)':>13s}  {'its student (test)':>18s}"]
    for p in sorted(points, key=lambda p: p["teacher"]):
        student = results.format_pct(p["students"])
        lines.append(f"{p['name']:26s} {100 * p['teacher']:11.2f} %  {student:>18s}")
    return "\n".join(lines)


def rank_correlation(points: list) -> float:
    """Spearman correlation between teacher accuracy and mean student accuracy.

    Ranks come from a double ``argsort``, so ties get distinct ranks (no average ranks).

    Parameters
    ----------
    points : list of dict
        ``teacher`` and ``students`` of each teacher (:func:`teacher_quality`); at least 2.

    Returns
    -------
    float
        In [-1, 1].
    """
    x = np.argsort(np.argsort([p["teacher"] for p in points]))
    y = np.argsort(np.argsort([np.mean(p["students"]) for p in points]))
    return float(np.corrcoef(x, y)[0, 1])


BORN_AGAIN_SEED = 1000
"""Offset between a born-again student's seed and its teacher's (different initial weights)."""


def born_again(data, teachers: list, sel: dict, *, epochs: int) -> dict:
    """Born-again students (Furlanello et al. 2018): the teacher's own architecture and data.

    Each teacher is a hard-label student of this notebook (``mlp([784, 128, 10])`` on the
    training images, kept with its training logits); its born-again student is the same
    architecture from other random weights (seed + :data:`BORN_AGAIN_SEED`), distilled from
    it on the same images at the chosen (λ, T).

    Returns
    -------
    dict
        ``{"teacher (hard labels)": [...], "born-again student": [...]}``: test accuracy per
        seed, paired (student i learned from teacher i).
    """
    out = {"teacher (hard labels)": [], "born-again student": []}
    for t in tqdm(teachers, desc="born-again", leave=False):
        st = measure_student(data.train, data.val.x[:0], data.test.x, seed=t.seed + BORN_AGAIN_SEED,
                           epochs=epochs, targets=losses.soft_targets(t.meta["train_logits"], sel["T"]),
                           lam=sel["lam"], T=sel["T"], condition="born-again")
        out["teacher (hard labels)"].append(accuracy_from_logits(t.test_logits, data.test.y))
        out["born-again student"].append(accuracy_from_logits(st.test_logits, data.test.y))
    return out


# --------------------------------------------------------------------------- decomposition
def decomposition(student_logits, teacher_logits, y, *, T: float) -> dict:
    """Means of KL, TCKD and (1 − p_t)·NCKD, and the largest violation of the identity.

    Computed in float64 with :func:`kdlib.losses.dkd_parts` (no ``T**2``).

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        Shape ``(N, classes)``.
    y : torch.Tensor
        Labels, shape ``(N,)``.
    T : float
        Temperature, ``> 0``.

    Returns
    -------
    dict
        ``kl``, ``tckd``, ``nckd``, ``nckd_weighted`` (means over the rows) and ``max_error``,
        ``max |KL - TCKD - (1 - p_t)·NCKD|`` over the rows.
    """
    tckd, nckd, pt = losses.dkd_parts(student_logits.double(), teacher_logits.double(), y, T=T)
    lp = F.log_softmax(teacher_logits.double() / T, 1)
    lq = F.log_softmax(student_logits.double() / T, 1)
    kl = (lp.exp() * (lp - lq)).sum(1)
    return {"kl": float(kl.mean()), "tckd": float(tckd.mean()), "nckd": float(nckd.mean()),
            "nckd_weighted": float(((1 - pt) * nckd).mean()),
            "max_error": float((kl - tckd - (1 - pt) * nckd).abs().max())}


def as_logits(probs, T: float):
    """Logits whose ``softmax(· / T)`` is ``probs`` (to feed probabilities to ``dkd_parts``).

    Parameters
    ----------
    probs : torch.Tensor
        Rows of probabilities; zeros are clamped to 1e-300.
    T : float
        The temperature they will be read at.

    Returns
    -------
    torch.Tensor
        float64, ``T * log(probs)``.
    """
    return T * probs.double().clamp_min(1e-300).log()


# --------------------------------------------------------------------------- exercises
EXERCISES = {
    1: ("shuffled teacher", None,
        "it is one of the four controls; only one of them keeps the set of wrong-class values"),
    2: (0.2263, 2e-3, "TCKD = p_t·ln(p_t/q_t) + (1−p_t)·ln((1−p_t)/(1−q_t))"),
    3: ("nckd", None, "compare the two binary distributions (target, rest) of the real and shuffled teacher"),
}
"""Exercise number → ``(want, tolerance, hint)`` for :func:`kdlib._checks.check_answer`:
1, which control keeps each image's true-class probability and the set of wrong-class
values but not which wrong class gets which value (the control's name); 2, TCKD for one
image with teacher p_t = 0.9 and student q_t = 0.6 (natural log); 3, which part of the KD
term the shuffled teacher changes, ``'tckd'`` or ``'nckd'``."""


def check_exercise(n: int, answer) -> Verdict:
    """Say whether ``answer`` to exercise ``n`` is right, with a hint when it is not.

    Parameters
    ----------
    n : int
        The exercise, 1 to 3 (:data:`EXERCISES`).
    answer
        A control's name (1), a number (2) or ``"tckd"``/``"nckd"`` (3).

    Returns
    -------
    Verdict
        ``"Right: ..."`` or ``"Not yet: <hint>"``; truthy when right.

    Raises
    ------
    ValueError
        For an exercise that does not exist.
    """
    return check_answer(EXERCISES, n, answer)
