"""Lesson module of ``notebooks/06_dark_knowledge.ipynb``: is it really dark knowledge?

Everything only notebook 06 uses: its settings (:class:`Settings`, ``QUICK``) and their
check (:func:`check_params`), the teachers it compares (checkpoints made by notebook 01
through ``make teachers``, or by papermill here when one is missing), the experiments on
:mod:`kdlib.experiments` (the selection with one budget for every condition, the controls
that keep the teacher's confidence but not its ranking of the wrong classes, the
omitted-class experiment of Hinton et al. 2015 §3, which teacher teaches best, a born-again
student), the bias rule and its slider, the ``say_*`` sentences that follow the run, and the
exercises (:data:`EXERCISES`, graded by :func:`check_exercise`, which returns a
:class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ipywidgets as W
import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from tqdm.auto import tqdm

from kdlib import data as kdata
from kdlib import experiments, losses, models, results, runs, train
from kdlib._checks import QUICK_RUN, Int, OneOf, Param, exercise_checker, settings_checker, settings_class
from kdlib.experiments import STUDENT_DEFAULTS
from kdlib.metrics import accuracy_from_logits
from kdlib.plots import new_figure
from kdlib.widgets import show_in

# --------------------------------------------------------------------------- parameters
PARAMS = {
    "omitted": Param(OneOf(*kdata.FASHION_CLASSES),
        "The class left out of the student's training images (a Fashion-MNIST class name)."),
    "n_train": Param(Int(200, 20000),
        "Labelled training images of every MLP student; each seed draws its own from a pool of "
        "``POOL_FACTOR × n_train``."),
    "epochs": Param(Int(1, 100), "Epochs of every MLP student."),
    "seeds": Param(Int(2, 10),
        "Seeds per condition; seed ``s`` draws training sample ``s``, starts the weights and "
        "orders the batches, and conditions are paired by it."),
    "quick": QUICK_RUN,
}
"""Notebook 06's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

STUDENT = {k: STUDENT_DEFAULTS[k] for k in ("hidden", "batch_size")}
"""The student of every experiment: ``mlp([784, hidden, 10])``, Adam + OneCycle, batches of 128."""

LR_CANDIDATES = (0.01, 0.03)
"""Peak learning rates every condition chooses from (on the validation split)."""
KD_CANDIDATES = ((0.1, 4.0), (0.5, 4.0), (0.1, 8.0), (0.5, 8.0))
"""(λ, T) candidates of every teacher-like condition (real, shuffled, uniform-wrong)."""
LS_CANDIDATES = (0.05, 0.1, 0.2, 0.3)
"""ε candidates for label smoothing: as many as the (λ, T) candidates."""

POOL_FACTOR = 2
"""The pool the seeds draw from holds ``POOL_FACTOR × n_train`` training images."""
N_VAL = 2000
"""Validation images used for selection (the first ones of the standard split)."""
QUICK = {"n_train": 500, "epochs": 3, "seeds": 2, "n_val": 500, "n_test": 2000,
         "kd_candidates": KD_CANDIDATES[:2], "ls_candidates": LS_CANDIDATES[:2]}
"""What ``quick=True`` uses: parameters (``n_train``, ``epochs``, ``seeds``) and derived settings."""

CONTROLS = ("hard labels", "label smoothing", "uniform-wrong", "real teacher", "shuffled teacher")
"""The conditions of the controls, in the order of the tables; ``"uniform-wrong"`` (the
teacher's per-image confidence, no ranking of the wrong classes) is the reference."""
REFERENCE = "uniform-wrong"
"""The primary comparison is ``"real teacher"`` against this condition."""
PRIMARY = "the ranking of the wrong classes (real teacher − uniform-wrong)"
"""The primary comparison, as the sentences name it."""
TEACHER_LIKE = ("real teacher", "shuffled teacher", "uniform-wrong")
"""Conditions that learn from (possibly altered) teacher targets, with a λ and a T."""


@settings_class(PARAMS)
class Settings:
    """Notebook 06's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""

    @property
    def n_pool(self) -> int:
        """Training images the seeds' samples are drawn from."""
        return POOL_FACTOR * self.n_train

    @property
    def n_val(self) -> int:
        """Validation images used for selection."""
        return QUICK["n_val"] if self.quick else N_VAL

    @property
    def n_test(self) -> int | None:
        """Test images (``None``: all 10,000)."""
        return QUICK["n_test"] if self.quick else None

    @property
    def kd_candidates(self) -> tuple:
        """(λ, T) candidates of the teacher-like conditions."""
        return QUICK["kd_candidates"] if self.quick else KD_CANDIDATES

    @property
    def ls_candidates(self) -> tuple:
        """ε candidates for label smoothing."""
        return QUICK["ls_candidates"] if self.quick else LS_CANDIDATES

    @property
    def lr_candidates(self) -> tuple:
        """Peak learning rates every condition chooses from."""
        return LR_CANDIDATES

    @property
    def omitted_index(self) -> int:
        """The omitted class's index in :data:`kdlib.data.FASHION_CLASSES`."""
        return kdata.FASHION_CLASSES.index(self.omitted)


check_params = settings_checker(Settings, PARAMS, quick=QUICK)


def load_data(S: Settings) -> kdata.Splits:
    """Fashion-MNIST: the pool of training images, validation and test images.

    Parameters
    ----------
    S : Settings

    Returns
    -------
    kdlib.data.Splits
        ``train``: a stratified pool of :attr:`Settings.n_pool` images of data seed 0's
        training split (the split every teacher of :data:`TEACHERS` trained on); ``val``: the
        first :attr:`Settings.n_val` images of its validation split (no teacher saw them);
        ``test``: the test set (its first :attr:`Settings.n_test` images in quick mode).
    """
    d = kdata.load("fashion-mnist", n_train=S.n_pool, seed=0)
    val = kdata.Split(d.val.x[:S.n_val], d.val.y[:S.n_val])
    n_test = S.n_test or len(d.test.y)
    test = kdata.Split(d.test.x[:n_test], d.test.y[:n_test])
    return kdata.Splits(d.train, val, test, d.classes, d.name)


def without_class(rows, y, c: int) -> tuple:
    """The rows of ``rows`` whose label ``y[row]`` is not class ``c``.

    Parameters
    ----------
    rows : sequence of int
    y : Tensor
        Labels of the pool the rows index.
    c : int

    Returns
    -------
    tuple of int
    """
    y = np.asarray(y)
    return tuple(r for r in rows if y[r] != c)


def only_class(split, c: int, *, keep: bool = True):
    """The images of class ``c`` only, or (``keep=False``) every image but those.

    Parameters
    ----------
    split : kdlib.data.Split
    c : int
        The class.
    keep : bool
        ``True``: keep class ``c``'s images; ``False``: drop them and keep the rest.

    Returns
    -------
    kdlib.data.Split
    """
    chosen = (split.y == c) == keep
    return kdata.Split(split.x[chosen], split.y[chosen])


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
        A key of :data:`TEACHERS`.

    Returns
    -------
    pathlib.Path
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
    split : kdlib.data.Split
    logits : Tensor, optional
        The model's logits on ``split`` (saves the forward pass).

    Returns
    -------
    float
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


# --------------------------------------------------------------------------- targets and students
def as_logits(probs, T: float):
    """Logits whose ``softmax(· / T)`` is ``probs`` (to hand targets to a KD loss as a teacher).

    Parameters
    ----------
    probs : Tensor
        Rows of probabilities.
    T : float

    Returns
    -------
    Tensor
        ``T · log(probs)`` in float64.
    """
    return T * probs.double().clamp_min(1e-300).log()


def control_logits(condition: str, teacher_logits, y, *, T: float, seed: int = 0):
    """The targets of a teacher-like condition, as logits at temperature ``T``.

    ``"real teacher"``: the teacher's logits (any ``T``). ``"shuffled teacher"``: its soft
    targets ``softmax(z / T)`` with the wrong classes permuted per image (seeded by
    ``seed``). ``"uniform-wrong"``: the teacher's target-class probability kept, the rest
    spread evenly. A student at temperature ``T`` that distils these logits learns exactly
    those targets.

    Parameters
    ----------
    condition : {"real teacher", "shuffled teacher", "uniform-wrong"}
    teacher_logits : Tensor (n, classes)
    y : Tensor (n,)
        The labels.
    T : float
    seed : int

    Returns
    -------
    Tensor (n, classes), float32
    """
    if condition == "real teacher":
        return teacher_logits
    if condition not in TEACHER_LIKE:
        raise ValueError(f"condition={condition!r} is not a teacher-like condition; choose one of "
                         f"{TEACHER_LIKE}")
    p = losses.soft_targets(teacher_logits, T)
    if condition == "shuffled teacher":
        q = losses.shuffle_wrong(p, y, seed=seed)
    else:
        q = losses.uniform_wrong(p, y)
    return as_logits(q, T).float()


@dataclass(frozen=True)
class Candidate:
    """How one student learns.

    Attributes
    ----------
    condition : str
        Its condition (the row's ``method``).
    lr : float
        Peak learning rate.
    lam, T, eps : float
        λ (1: labels only), temperature and label smoothing ε.
    targets : object
        The set of targets it distils (a key of the ``targets`` given to
        :func:`train_conditions`; ``None`` for labels only).
    """

    condition: str
    lr: float
    lam: float = 1.0
    T: float = 1.0
    eps: float = 0.0
    targets: object = None

    def method(self) -> experiments.Method:
        """The engine's method: ``scratch``, ``label_smoothing`` or ``kd``, named by the condition."""
        if self.lam < 1:
            return experiments.kd(self.lam, self.T, name=self.condition)
        if self.eps:
            return experiments.label_smoothing(self.eps, name=self.condition)
        return experiments.scratch(self.condition)

    def knobs(self) -> str:
        """``"λ=0.5, T=8, lr=0.03"`` and the like."""
        parts = ([f"λ={self.lam:g}", f"T={self.T:g}"] if self.lam < 1 else []) + \
            ([f"ε={self.eps:g}"] if self.eps else []) + [f"lr={self.lr:g}"]
        return ", ".join(parts)


def target_key(condition: str, T: float):
    """The set of targets a teacher-like condition at temperature ``T`` distils (the real
    teacher's logits serve every T; the altered targets depend on it).

    Parameters
    ----------
    condition : str
    T : float

    Returns
    -------
    str or tuple
        ``"real teacher"`` or ``(condition, T)``.
    """
    return condition if condition == "real teacher" else (condition, float(T))


def candidates(S: Settings) -> list:
    """Every condition's candidates, one budget: each chooses its learning rate from
    :attr:`Settings.lr_candidates`; label smoothing its ε, the teacher-like conditions their
    (λ, T) from as many candidates.

    Parameters
    ----------
    S : Settings

    Returns
    -------
    list of Candidate
    """
    out = []
    for lr in S.lr_candidates:
        out.append(Candidate("hard labels", lr))
        out += [Candidate("label smoothing", lr, eps=eps) for eps in S.ls_candidates]
        for cond in TEACHER_LIKE:
            out += [Candidate(cond, lr, lam=lam, T=T, targets=target_key(cond, T))
                    for lam, T in S.kd_candidates]
    return out


def stack_targets(pool, targets: dict, keys) -> tuple:
    """One pool holding a copy of the images per set of targets, so that students that
    distil different targets still train together in lockstep (one group of
    :func:`kdlib.experiments.train_students`, one ``teacher_logits``).

    Parameters
    ----------
    pool : kdlib.data.Split
    targets : dict
        Key → logits on the pool's images.
    keys : sequence
        The keys needed, in order (``None`` entries, labels only, need none).

    Returns
    -------
    tuple
        ``(split, logits, offsets)``: the stacked images and labels, the stacked logits
        (``None`` when no key is needed) and key → the offset of its copy.
    """
    keys = [k for k in dict.fromkeys(keys) if k is not None]
    if not keys:
        return pool, None, {}
    n = len(pool.y)
    split = kdata.Split(torch.cat([pool.x] * len(keys)), pool.y.repeat(len(keys)))
    logits = torch.cat([targets[k].float() for k in keys])
    return split, logits, {k: i * n for i, k in enumerate(keys)}


def train_conditions(pool, jobs, S: Settings, *, targets=None, evaluate=None, keep=None,
                     desc: str = "students") -> list:
    """Train one student per job on the engine, all in lockstep where they can be.

    Parameters
    ----------
    pool : kdlib.data.Split
        The images the jobs' rows index.
    jobs : sequence of tuple
        ``(candidate, sample, rows, init_seed)``: a :class:`Candidate`, the training sample's
        seed (the row's ``sample``, what conditions are paired on), its rows of the pool and
        the seed of the student's weights and batch order.
    S : Settings
        Its ``epochs``.
    targets : dict, optional
        Key → logits on the pool (the keys the candidates' ``targets`` name).
    evaluate : callable, optional
        ``evaluate(model) -> dict`` of measurements for the row.
    keep : callable, optional
        ``keep(candidate) -> bool``: those rows also hold the trained model (``"student"``).
    desc : str

    Returns
    -------
    list of dict
        One row per job: ``method`` (the condition), ``lam``, ``T``, ``eps``, ``lr``,
        ``knobs``, ``sample``, ``seed`` and what ``evaluate`` measured.
    """
    jobs = list(jobs)
    split, logits, offsets = stack_targets(pool, targets or {}, [j[0].targets for j in jobs])
    build = experiments.mlp_builder([int(np.prod(pool.x.shape[1:])), STUDENT["hidden"], 10])
    configs = []
    for cand, sample, rows, seed in jobs:
        off = offsets.get(cand.targets, 0)
        settings = train.TrainSettings(epochs=S.epochs, lr=cand.lr, batch_size=STUDENT["batch_size"])
        configs.append(experiments.Config(build, cand.method(), seed, settings,
                                          rows=tuple(off + r for r in rows),
                                          labels={"lr": cand.lr, "knobs": cand.knobs(), "sample": sample,
                                                  "candidate": cand}))
    rows = experiments.train_students(
        configs, (split, None), teacher_logits=logits, desc=desc,
        evaluate=lambda model, config, data: {} if evaluate is None else evaluate(model),
        keep=None if keep is None else (lambda config: keep(config.labels["candidate"])))
    return rows


def logits_on(*splits):
    """An ``evaluate`` for :func:`train_conditions`: the student's logits on each split
    (``"logits_0"``, ``"logits_1"``, ...).

    Parameters
    ----------
    *splits : kdlib.data.Split

    Returns
    -------
    callable
    """
    def evaluate(model):
        return {f"logits_{i}": models.predict(model, s.x) for i, s in enumerate(splits)}
    return evaluate


def accuracy_of(split):
    """An ``evaluate`` for :func:`train_conditions`: ``{"acc": accuracy on split}``.

    Parameters
    ----------
    split : kdlib.data.Split

    Returns
    -------
    callable
    """
    def evaluate(model):
        return {"acc": accuracy_from_logits(models.predict(model, split.x), split.y)}
    return evaluate


# --------------------------------------------------------------------------- selection
def select(data, samples: dict, targets: dict, S: Settings) -> tuple:
    """Choose every condition's candidate with one budget, **without the omitted class**.

    Each candidate of :func:`candidates` trains once on sample 0 with the omitted class
    removed and is scored on the validation images of the other classes; the best one
    (validation accuracy) is the condition's choice for both tasks. No image of the
    omitted class and no test image takes part.

    Parameters
    ----------
    data : kdlib.data.Splits
    samples : dict
        Seed → pool rows (``dict(enumerate(kdlib.experiments.sample_rows(...)))``; sample 0 is used).
    targets : dict
        Key → logits on the pool (see :func:`control_targets_on_pool`).
    S : Settings

    Returns
    -------
    tuple
        ``(rows, chosen)``: one row per candidate (``val_acc`` on the other classes' validation
        images) and condition → the chosen :class:`Candidate`.
    """
    c = S.omitted_index
    rows0 = without_class(samples[0], data.train.y, c)
    val = only_class(data.val, c, keep=False)
    cands = candidates(S)
    rows = train_conditions(data.train, [(k, 0, rows0, 0) for k in cands], S, targets=targets,
                            evaluate=accuracy_of(val), desc="choosing on validation")
    for r in rows:
        r["val_acc"] = r.pop("acc")
    chosen = {}
    for r in rows:
        best = chosen.get(r["method"])
        if best is None or r["val_acc"] > best["val_acc"]:
            chosen[r["method"]] = r
    return rows, {m: r["candidate"] for m, r in chosen.items()}


def control_targets_on_pool(teacher_logits, y, S: Settings) -> dict:
    """Every set of targets the candidates distil: the real teacher's logits, and the
    shuffled and uniform-wrong targets at each candidate temperature (as logits).

    Parameters
    ----------
    teacher_logits : Tensor
        The teacher's logits on the pool.
    y : Tensor
        The pool's labels.
    S : Settings

    Returns
    -------
    dict
        :func:`target_key` → logits on the pool.
    """
    out = {"real teacher": teacher_logits}
    for T in sorted({T for _, T in S.kd_candidates}):
        for cond in ("shuffled teacher", "uniform-wrong"):
            out[target_key(cond, T)] = control_logits(cond, teacher_logits, y, T=T)
    return out


def selection_table(rows, chosen: dict) -> pd.DataFrame:
    """Per condition: how many candidates it tried, the chosen one and its validation
    accuracy, and the worst candidate's.

    Parameters
    ----------
    rows : list of dict
        :func:`select`'s rows.
    chosen : dict
        Condition → chosen :class:`Candidate`.

    Returns
    -------
    pandas.DataFrame
    """
    df = results.frame(rows)
    out = []
    for cond in CONTROLS:
        mine = df[df["method"] == cond]
        best = mine.loc[mine["val_acc"].idxmax()]
        out.append({"condition": cond, "candidates": len(mine), "chosen": chosen[cond].knobs(),
                    "validation accuracy (chosen)": f"{100 * best['val_acc']:.2f} %",
                    "worst candidate": f"{100 * mine['val_acc'].min():.2f} %"})
    return pd.DataFrame(out).set_index("condition")


# --------------------------------------------------------------------------- the two tasks
def run_controls(data, samples: dict, targets: dict, chosen: dict, S: Settings, *, omit: bool = False,
                 keep_hard: bool = False) -> list:
    """Every condition of :data:`CONTROLS` at its chosen candidate, once per seed.

    Student ``s`` trains on sample ``s`` (without the omitted class when ``omit``), from
    weights and batch order of seed ``s``.

    Parameters
    ----------
    data : kdlib.data.Splits
    samples : dict
        Seed → rows of the pool.
    targets : dict
        Key → logits on the pool.
    chosen : dict
        Condition → :class:`Candidate`.
    S : Settings
    omit : bool
        Train without the omitted class (the omitted-class task); the rows then hold
        ``val_logits`` (validation images of the other classes) and ``test_logits``.
    keep_hard : bool
        Keep the hard-label students' models (``"student"``).

    Returns
    -------
    list of dict
        The full task's rows hold ``test_acc``.
    """
    c = S.omitted_index
    jobs = [(chosen[cond], s, without_class(rows, data.train.y, c) if omit else rows, s)
            for cond in CONTROLS for s, rows in samples.items()]
    keep = (lambda cand: cand.condition == "hard labels") if keep_hard else None
    if omit:
        rows = train_conditions(data.train, jobs, S, targets=targets, keep=keep, desc="omitted task",
                                evaluate=logits_on(only_class(data.val, c, keep=False), data.test))
        for r in rows:
            r["val_logits"], r["test_logits"] = r.pop("logits_0"), r.pop("logits_1")
        return rows
    rows = train_conditions(data.train, jobs, S, targets=targets, keep=keep, desc="full task",
                            evaluate=accuracy_of(data.test))
    for r in rows:
        r["test_acc"] = r.pop("acc")
    return rows


def compare_controls(rows, metric: str = "test_acc") -> pd.DataFrame:
    """The controls' comparison table (:func:`kdlib.results.compare`), each condition
    against :data:`REFERENCE`, paired by sample.

    Parameters
    ----------
    rows : list of dict
    metric : str

    Returns
    -------
    pandas.DataFrame
    """
    return results.compare(rows, by="method", metric=metric, reference=REFERENCE, pair_on="sample")


def paired(table: pd.DataFrame, a: str, b: str) -> results.PairedDifference:
    """The paired difference ``a − b`` of two groups of a :func:`kdlib.results.compare` table.

    Parameters
    ----------
    table : pandas.DataFrame
    a, b : str
        Groups (index entries) of the table.

    Returns
    -------
    kdlib.results.PairedDifference
    """
    return results.paired_difference(table.loc[a, "values"], table.loc[b, "values"])


# --------------------------------------------------------------------------- the omitted class
def class_metrics(logits, y, c: int, bias: float = 0.0) -> tuple[float, float, float]:
    """Recall of class ``c`` and accuracy on the others after adding ``bias`` to its logit.

    Parameters
    ----------
    logits : Tensor (n, classes)
    y : Tensor (n,)
    c : int
    bias : float

    Returns
    -------
    tuple of float
        ``(recall of c, accuracy on the other classes, overall accuracy)``; the recall is
        ``nan`` when no image is of class ``c``.
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
    logits : Tensor (n, classes)
    c : int
    bias : float

    Returns
    -------
    float
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



def omitted_rows(rows, teacher_val_logits, val_y, test_y, c: int) -> list:
    """Each omitted-task student's recall of class ``c`` and accuracy on the others, on the
    test set, before and after the bias of :func:`choose_bias`.

    The bias is chosen per student on the validation images of the other classes (its
    ``val_logits``), against the teacher's false-positive rate there.

    Parameters
    ----------
    rows : list of dict
        :func:`run_controls` rows of the omitted task (``val_logits``, ``test_logits``).
    teacher_val_logits : Tensor
        The teacher's logits on the whole validation split.
    val_y, test_y : Tensor
        Labels of the validation split and the test set.
    c : int

    Returns
    -------
    list of dict
        The rows with ``recall``, ``recall_after``, ``others``, ``others_after`` and ``bias``.
    """
    t_val = teacher_val_logits[val_y != c]
    out = []
    for r in rows:
        b = choose_bias(r["val_logits"], t_val, c)
        r0, o0, _ = class_metrics(r["test_logits"], test_y, c)
        r1, o1, _ = class_metrics(r["test_logits"], test_y, c, b)
        out.append({**r, "recall": r0, "recall_after": r1, "others": o0, "others_after": o1, "bias": b})
    return out


def omitted_table(rows, class_name: str) -> pd.DataFrame:
    """The omitted-class table, mean ± sd over the seeds per condition.

    Parameters
    ----------
    rows : list of dict
        :func:`omitted_rows`' rows.
    class_name : str

    Returns
    -------
    pandas.DataFrame
        Recall of the omitted class and accuracy on the others (test set), before and after
        the bias, and the bias.
    """
    df = results.frame(rows)
    cols = {"recall": f"{class_name} recall", "recall_after": "after the bias",
            "others": "other classes", "others_after": "other classes after the bias"}
    out = []
    for cond in dict.fromkeys(df["method"]):
        mine = df[df["method"] == cond]
        row = {"student (never saw a " + class_name + ")": cond}
        row.update({label: results.format_pct(mine[k], 1) for k, label in cols.items()})
        m, sd = results.mean_sd(mine["bias"])
        row["bias"] = f"{m:+.1f} ± {sd:.1f}"
        out.append(row)
    return pd.DataFrame(out).set_index("student (never saw a " + class_name + ")")


def oracle_bias(test_logits, test_y, c: int, grid) -> tuple[float, float, float]:
    """Hinton's way: the single bias that maximises the mean overall *test* accuracy of the
    students (chosen on the test set, so optimistic).

    Parameters
    ----------
    test_logits : sequence of Tensor
        Each student's logits on the test images.
    test_y : Tensor
    c : int
        The omitted class.
    grid : sequence of float
        Candidate biases.

    Returns
    -------
    tuple of float
        ``(bias, recall of c, accuracy on the other classes)``, means over the students.
    """
    best = None
    for b in grid:
        m = np.mean([class_metrics(z, test_y, c, b) for z in test_logits], axis=0)
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
    test_logits : sequence of Tensor
        Each student's logits on the test images.
    test_y : Tensor
    c : int
        The omitted class.
    class_name : str
    chosen : float, optional
        The bias the rule chose (a dashed line), where the slider starts.
    grid : sequence of float, optional
        The biases the slider offers (default 0 to 20 in steps of 0.25).
    """

    def __init__(self, test_logits, test_y, c: int, class_name: str, *, chosen=None, grid=None):
        self.grid = np.round(np.arange(0.0, 20.01, 0.25), 2) if grid is None else np.asarray(grid)
        m = np.array([[np.mean([class_metrics(z, test_y, c, b)[:2] for z in test_logits], axis=0)]
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


# --------------------------------------------------------------------------- which teacher
def quality_rows(data, samples: dict, train_logits: dict, chosen: Candidate, S: Settings, *,
                 skip=()) -> list:
    """The same student distilled from every teacher: the real teacher's chosen (λ, T, lr),
    the same samples and seeds.

    Parameters
    ----------
    data : kdlib.data.Splits
    samples : dict
        Seed → rows of the pool.
    train_logits : dict
        Teacher name → its logits on the pool.
    chosen : Candidate
        The real teacher's choice.
    S : Settings
    skip : sequence of str
        Teachers whose students exist already (the default teacher's: the real teacher's).

    Returns
    -------
    list of dict
        ``method`` is the teacher's name; ``test_acc`` per student.
    """
    jobs = [(Candidate(name, chosen.lr, lam=chosen.lam, T=chosen.T, targets=name), s, rows, s)
            for name in train_logits if name not in skip for s, rows in samples.items()]
    rows = train_conditions(data.train, jobs, S, targets=train_logits, evaluate=accuracy_of(data.test),
                            desc="teachers → students")
    for r in rows:
        r["test_acc"] = r.pop("acc")
    return rows


def quality_table(rows, teacher_accs: dict) -> pd.DataFrame:
    """Every teacher's students against the hard-label students (:func:`kdlib.results.compare`),
    the teachers in order of their validation accuracy, each named with it.

    Parameters
    ----------
    rows : list of dict
        Rows of ``method`` ``"hard labels"`` and of each teacher (``test_acc``).
    teacher_accs : dict
        Teacher name → its validation accuracy.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``"name (teacher xx.x %)"``; ``attrs["teacher_accs"]`` holds the accuracies
        in the table's order.
    """
    order = sorted(teacher_accs, key=teacher_accs.get)
    label = {n: f"{n} (teacher {100 * teacher_accs[n]:.1f} %)" for n in order}
    named = [dict(r, method=label.get(r["method"], r["method"])) for r in rows
             if r["method"] in label or r["method"] == "hard labels"]
    named.sort(key=lambda r: -1 if r["method"] == "hard labels" else
               [label[n] for n in order].index(r["method"]))
    table = results.compare(named, by="method", metric="test_acc", reference="hard labels",
                            pair_on="sample")
    table.attrs["teacher_accs"] = [teacher_accs[n] for n in order]
    return table


def rank_correlation(teacher_accs, student_accs) -> float:
    """Spearman correlation between teacher accuracy and mean student accuracy.

    Parameters
    ----------
    teacher_accs, student_accs : sequence of float
        One value per teacher, in the same order.

    Returns
    -------
    float
        In [-1, 1] (ties broken by order).
    """
    x = np.argsort(np.argsort(np.asarray(teacher_accs, dtype=float)))
    y = np.argsort(np.argsort(np.asarray(student_accs, dtype=float)))
    return float(np.corrcoef(x, y)[0, 1])


BORN_AGAIN_SEED = 1000
"""Offset between a born-again student's seed and its teacher's (different initial weights)."""


def born_again(data, hard_rows, samples: dict, chosen: Candidate, S: Settings) -> list:
    """Born-again students (Furlanello et al. 2018): the teacher's own architecture and data.

    Each teacher is a hard-label student of the full task (``mlp([784, 128, 10])`` on sample
    ``s``); its born-again student is the same architecture from other random weights (seed
    ``s +`` :data:`BORN_AGAIN_SEED`), distilled from it on the same images at the real
    teacher's chosen (λ, T, lr).

    Parameters
    ----------
    data : kdlib.data.Splits
    hard_rows : list of dict
        The hard-label rows of :func:`run_controls` (with ``student`` and ``test_acc``).
    samples : dict
    chosen : Candidate
    S : Settings

    Returns
    -------
    list of dict
        ``method`` ``"teacher (hard labels)"`` and ``"born-again student"``, paired by
        ``sample`` (student ``s`` learned from teacher ``s``), ``test_acc``.
    """
    logits = {("born-again", r["sample"]): models.predict(r["student"], data.train.x) for r in hard_rows}
    jobs = [(Candidate("born-again student", chosen.lr, lam=chosen.lam, T=chosen.T,
                       targets=("born-again", s)), s, samples[s], s + BORN_AGAIN_SEED) for s in samples]
    rows = train_conditions(data.train, jobs, S, targets=logits, evaluate=accuracy_of(data.test),
                            desc="born-again")
    for r in rows:
        r["test_acc"] = r.pop("acc")
    teachers = [{"method": "teacher (hard labels)", "sample": r["sample"], "test_acc": r["test_acc"]}
                for r in hard_rows]
    return teachers + rows


# --------------------------------------------------------------------------- what we saw
def _pct(table: pd.DataFrame, group: str, digits: int = 2) -> str:
    return results.format_pct(table.loc[group, "values"], digits)


def say_selection(chosen: dict, S: Settings) -> Markdown:
    """What each condition chose on the validation split.

    Parameters
    ----------
    chosen : dict
        Condition → :class:`Candidate` (:func:`select`).
    S : Settings

    Returns
    -------
    IPython.display.Markdown
    """
    items = "; ".join(f"{cond}: {chosen[cond].knobs()}" for cond in CONTROLS)
    return Markdown(f"**Chosen** on the validation images of the classes other than {S.omitted} "
                    f"(sample 0 without {S.omitted}, seed 0), the test set unseen: {items}. "
                    "Both tasks below use these choices.")


def say_full(table: pd.DataFrame) -> Markdown:
    """The full task: the primary comparison's verdict, then the exploratory ones.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`compare_controls` of the full task (test accuracy).

    Returns
    -------
    IPython.display.Markdown
        The verdicts follow the intervals ("helped", "hurt", "not shown").
    """
    d = paired(table, "real teacher", REFERENCE)
    n = int(table.loc["real teacher", "n"])
    meaning = {
        "helped": "on the full task, the teacher's ranking of the wrong classes adds to what its "
                  "per-image confidence gives: dark knowledge, measured.",
        "hurt": "the teacher that keeps only its per-image confidence did better: on the full task, "
                "the ranking of the wrong classes hurt.",
        "not shown": f"with {n} samples we cannot tell the real teacher from a teacher that keeps only "
                     "its per-image confidence. On the full task this run does not show that the ranking "
                     "of the wrong classes adds anything (nor that it adds nothing: the interval says how "
                     "large a difference is still possible).",
    }[d.verdict]
    primary = (f"**Primary comparison.** Real teacher {_pct(table, 'real teacher')}, uniform-wrong "
               f"teacher {_pct(table, REFERENCE)}: "
               f"{d.describe(PRIMARY)}. So {meaning}")
    explore = [
        paired(table, "real teacher", "hard labels").describe("the real teacher (against hard labels)"),
        paired(table, REFERENCE, "hard labels").describe(
            "the teacher's per-image confidence alone (uniform-wrong against hard labels)"),
        paired(table, "label smoothing", "hard labels").describe("label smoothing (against hard labels)"),
        paired(table, "shuffled teacher", REFERENCE).describe(
            "a scrambled ranking (shuffled teacher against uniform-wrong)"),
    ]
    return Markdown(primary + "\n\n**Exploratory**, each a paired difference over the same samples:\n\n"
                    + "\n".join(f"* {s};" for s in explore))


def say_omitted(table: pd.DataFrame, rows, oracle: tuple, S: Settings, *, n_test_c: int,
                teacher_recall: float) -> Markdown:
    """The omitted-class experiment: recall of the never-seen class, and the verdicts.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`compare_controls` of the omitted task on ``recall_after``.
    rows : list of dict
        :func:`omitted_rows`' rows.
    oracle : tuple
        :func:`oracle_bias`' ``(bias, recall, others)`` for the real teacher's students.
    S : Settings
    n_test_c : int
        Test images of the omitted class.
    teacher_recall : float
        The teacher's recall of it.

    Returns
    -------
    IPython.display.Markdown
    """
    df = results.frame(rows)
    real = df[df["method"] == "real teacher"]
    hard = df[df["method"] == "hard labels"]
    c = S.omitted
    never = "predict no " + c + " at all" if float(hard["recall"].max()) == 0 else \
        f"recognise {results.format_pct(hard['recall'], 1)} of them"
    first = (f"The real teacher's students never saw a {c}, yet recognise "
             f"{results.format_pct(real['recall'], 1)} of the {n_test_c} test images of it with no "
             f"correction, and **{results.format_pct(real['recall_after'], 1)}** after the bias our rule "
             f"chose ({results.mean_sd(real['bias'])[0]:+.1f} on average); their accuracy on the other "
             f"classes goes from {results.format_pct(real['others'], 1)} to "
             f"{results.format_pct(real['others_after'], 1)}. The teacher itself recognises "
             f"{100 * teacher_recall:.1f} %. The hard-label students {never}.")
    name = {"uniform-wrong": "the uniform-wrong teacher", "shuffled teacher": "the shuffled teacher"}
    vs = [paired(table, "real teacher", cond).describe(f"the real teacher against {name.get(cond, cond)}",
                                                        digits=1)
          for cond in CONTROLS if cond != "real teacher"]
    b, rec, oth = oracle
    mine = float(real["recall_after"].mean())
    oracle_text = (f"One bias chosen on the **test** set, as Hinton et al. did (optimistic: it uses the "
                   f"answers), is {b:+.2f}: {100 * rec:.1f} % of the {c} images, the other classes at "
                   f"{100 * oth:.1f} %; " + ("our rule, which sees no " + c + ", is more conservative."
                                             if rec > mine else "our rule, which sees no " + c
                                             + ", finds as many."))
    return Markdown(first + "\n\nRecall of the " + c + " images after the bias, paired by sample "
                    "(exploratory):\n\n" + "\n".join(f"* {s};" for s in vs) + "\n\n" + oracle_text)


def say_decomposition(d: dict, shuffled: dict, uniform: dict, *, T: float, n: int) -> Markdown:
    """The decomposition's numbers: the identity, and what the controls change.

    Parameters
    ----------
    d : dict
        :func:`decomposition` of a hard-label student against the teacher.
    shuffled, uniform : dict
        :func:`decomposition` of the real teacher against the shuffled / uniform-wrong targets.
    T : float
    n : int
        Images it was computed on.

    Returns
    -------
    IPython.display.Markdown
    """
    holds = (f"The identity holds to machine precision on the {n} validation images (largest error "
             f"{d['max_error']:.1e})." if d["max_error"] < 1e-6 else
             f"The identity is off by up to {d['max_error']:.1e} on the {n} validation images.")
    order = "smaller" if uniform["nckd"] < shuffled["nckd"] else "larger"
    share = d["nckd_weighted"] / d["kl"] if d["kl"] > 0 else float("nan")
    return Markdown(
        f"{holds} Against the real teacher, the shuffled teacher has TCKD = {shuffled['tckd']:.3f} (it "
        f"keeps p_t) and NCKD = {shuffled['nckd']:.2f}: it changes only the non-target part, the "
        f"ranking. The uniform-wrong teacher also has TCKD = {uniform['tckd']:.3f} and NCKD = "
        f"{uniform['nckd']:.2f}, {order} than the shuffled teacher's: flattening the ranking is a "
        f"{order} change than scrambling it. For the hard-label student at T = {T:g}, "
        f"(1 − p_t)·NCKD = {d['nckd_weighted']:.4f} of a KL of {d['kl']:.4f} (TCKD {d['tckd']:.4f}): "
        f"{100 * share:.0f} % of its distance to the teacher is non-target.")


def say_quality(table: pd.DataFrame, rho: float) -> Markdown:
    """Which teacher teaches best: the rank correlation and each teacher's verdict.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`quality_table`.
    rho : float
        :func:`rank_correlation` of teacher and student accuracy.

    Returns
    -------
    IPython.display.Markdown
    """
    teachers = [g for g in table.index if g != "hard labels"]
    means = table.loc[teachers, "mean"]
    accs = table.attrs["teacher_accs"]
    groups = {v: [g for g in teachers if table.loc[g, "verdict"] == v]
              for v in ("helped", "hurt", "not shown")}
    span = (f"The students span {100 * (means.max() - means.min()):.2f} points (from "
            f"{_pct(table, means.idxmin())} to {_pct(table, means.idxmax())}) for "
            f"{100 * (max(accs) - min(accs)):.1f} points of teacher accuracy; the hard-label students "
            f"reach {_pct(table, 'hard labels')}.")
    verdicts = []
    for v, what in (("helped", "taught better than the labels alone (interval above 0)"),
                    ("hurt", "made the student worse than the labels alone (interval below 0)"),
                    ("not shown", "a difference from the labels alone was not shown (interval contains 0)")):
        if groups[v]:
            verdicts.append(f"* {len(groups[v])} of {len(teachers)}: {what}: " + "; ".join(groups[v]) + ".")
    n_small = sum(1 for g in teachers if not g.startswith("default"))
    small_hurt = sum(1 for g in groups["hurt"] if not g.startswith("default"))
    which = f"teachers other than the default one (trained on {TEACHER_IMAGES:,} images, or their ensemble)"
    small = (f"Of the {n_small} {which}, {small_hurt} made the student measurably worse than the labels "
             "alone; for the others the interval does not say so." if small_hurt < n_small else
             f"Every one of the {n_small} {which} made the student measurably worse than the labels alone.")
    direction = "a better teacher mostly is a better teacher" if rho > 0.5 else \
        "teacher accuracy says little about the student" if rho > -0.5 else "better teachers taught worse"
    return Markdown(f"Rank correlation of teacher (validation) and student (test) accuracy: "
                    f"**{rho:+.2f}** over {len(teachers)} teachers: here {direction}. {span}\n\n"
                    "Against the hard-label students, paired by sample (exploratory):\n\n"
                    + "\n".join(verdicts) + f"\n\n{small}")


def say_born_again(table: pd.DataFrame) -> Markdown:
    """The born-again student against its own teacher.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`kdlib.results.compare` of :func:`born_again`'s rows, reference
        ``"teacher (hard labels)"``.

    Returns
    -------
    IPython.display.Markdown
    """
    d = paired(table, "born-again student", "teacher (hard labels)")
    meaning = {"helped": "at this scale too, a student beat a teacher of its own architecture, as "
                         "Furlanello et al. found.",
               "hurt": "at this scale, a teacher that knows nothing the student could not learn from the "
                       "labels passes on its own errors rather than extra knowledge.",
               "not shown": "at this scale the born-again student neither measurably beat nor measurably "
                            "lost to its teacher."}[d.verdict]
    return Markdown(f"Born-again students {_pct(table, 'born-again student')}, their teachers "
                    f"{_pct(table, 'teacher (hard labels)')}: "
                    f"{d.describe('the born-again student (against its teacher)')}. So {meaning}")


def say_multiplicity(n_intervals: int) -> Markdown:
    """What chance alone produces among the exploratory intervals.

    Parameters
    ----------
    n_intervals : int
        Exploratory 95 % intervals the notebook printed.

    Returns
    -------
    IPython.display.Markdown
    """
    return Markdown(f"**Many intervals.** Besides the primary comparison this notebook printed "
                    f"{n_intervals} exploratory 95 % intervals. Where a method does nothing, 1 interval "
                    f"in 20 still excludes 0 by chance, so about {n_intervals / 20:.1f} of them may do so "
                    "by chance alone: a single exploratory \"helped\" or \"hurt\" near the edge of its "
                    "interval is a lead to test with its own primary comparison, not a finding.")


def summary_table(full: pd.DataFrame, omitted: pd.DataFrame, chosen: dict, class_name: str) -> pd.DataFrame:
    """The closing note's table: each condition's choice, full-task accuracy and omitted-class
    recall after the bias (mean ± sd over the samples).

    Parameters
    ----------
    full, omitted : pandas.DataFrame
        :func:`compare_controls` of the two tasks.
    chosen : dict
        Condition → :class:`Candidate`.
    class_name : str

    Returns
    -------
    pandas.DataFrame
    """
    return pd.DataFrame([{"condition": c, "chosen": chosen[c].knobs(),
                          "full task: test accuracy": _pct(full, c),
                          f"omitted task: {class_name} recall after the bias": _pct(omitted, c, 1)}
                         for c in CONTROLS]).set_index("condition")


def say_summary(full: pd.DataFrame, omitted: pd.DataFrame, quality: pd.DataFrame, ba: pd.DataFrame,
                S: Settings) -> Markdown:
    """The summary's sentences that state results.

    Parameters
    ----------
    full, omitted : pandas.DataFrame
        :func:`compare_controls` of the two tasks.
    quality : pandas.DataFrame
        :func:`quality_table`.
    ba : pandas.DataFrame
        The born-again comparison.
    S : Settings

    Returns
    -------
    IPython.display.Markdown
    """
    d = paired(full, "real teacher", REFERENCE)
    o = paired(omitted, "real teacher", REFERENCE)
    best_control = max((c for c in CONTROLS if c != "real teacher"), key=lambda c: omitted.loc[c, "mean"])
    helped = [g for g in quality.index if quality.loc[g, "verdict"] == "helped"]
    b = paired(ba, "born-again student", "teacher (hard labels)")
    return Markdown(
        f"* Omitted class (exploratory): the real teacher's students recognise "
        f"{_pct(omitted, 'real teacher', 1)} of the {S.omitted} images they never saw, the best control "
        f"({best_control}) {_pct(omitted, best_control, 1)}; "
        f"{o.describe('the ranking (real − uniform-wrong)', digits=1)}.\n"
        f"* Full task (primary, {int(full.loc['real teacher', 'n'])} samples): "
        f"{d.describe(PRIMARY)}.\n"
        f"* Which teacher (exploratory): {len(helped)} of {len(quality) - 1} teachers' students measurably "
        f"beat the hard-label students; the born-again student: {b.verdict} against its teacher.")


# --------------------------------------------------------------------------- decomposition
def decomposition(student_logits, teacher_logits, y, *, T: float) -> dict:
    """Means of KL, TCKD and (1 − p_t)·NCKD, and the largest violation of the identity.

    Parameters
    ----------
    student_logits, teacher_logits : Tensor (n, classes)
    y : Tensor (n,)
    T : float

    Returns
    -------
    dict
        ``kl``, ``tckd``, ``nckd``, ``nckd_weighted`` (means over the images) and ``max_error``
        (the largest ``|KL − TCKD − (1 − p_t)·NCKD|``).
    """
    tckd, nckd, pt = losses.dkd_parts(student_logits.double(), teacher_logits.double(), y, T=T)
    lp = F.log_softmax(teacher_logits.double() / T, 1)
    lq = F.log_softmax(student_logits.double() / T, 1)
    kl = (lp.exp() * (lp - lq)).sum(1)
    return {"kl": float(kl.mean()), "tckd": float(tckd.mean()), "nckd": float(nckd.mean()),
            "nckd_weighted": float(((1 - pt) * nckd).mean()),
            "max_error": float((kl - tckd - (1 - pt) * nckd).abs().max())}


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


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the name of the control that keeps each image's true-class probability and the "
             "set of its wrong-class values, but not which wrong class gets which; 2: TCKD "
             '(natural log) for ``p_t = 0.9``, ``q_t = 0.6``; 3: ``"tckd"`` or ``"nckd"``, the '
             "part of the KD term the shuffled teacher changes."))
