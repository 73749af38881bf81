"""Lesson module of ``notebooks/02_soft_targets.ipynb`` (temperature and dark knowledge).

In the template's order: :class:`Settings` and :func:`check_params`; the computations the
notebook shows (entropies, class-by-class mean soft targets, the mass off the top class, the
teacher's top classes and the group masses as DataFrames, the high-T limit of the KD gradient);
its figures (each returns a new ``Figure``); its widget, :class:`TemperatureExplorer`; the
``say_*`` functions that render its "What we saw" prose from those results; its exercise checks,
:data:`EXERCISES`, graded by :func:`check_exercise`.
"""

from __future__ import annotations

import math

import ipywidgets as widgets
import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from matplotlib.colors import PowerNorm
from matplotlib.figure import Figure

from kdlib._checks import (
    TEACHER_CHECKPOINT,
    TEMPERATURE,
    Float,
    Int,
    OneOf,
    Optional,
    Param,
    check_float,
    check_int,
    exercise_checker,
    settings_checker,
    settings_class,
    validate_params,
)
from kdlib.losses import soft_targets, soft_term_grad_norm
from kdlib.plots import new_figure
from kdlib.widgets import show_in

__all__ = [
    "PARAMS", "Settings", "check_params", "entropy_nats", "entropy_vs_temperature", "mean_soft_targets",
    "non_argmax_mass", "group_mass", "top_classes", "mass_off_top",
    "block_masses", "high_T_limit", "pick_temperature_examples", "temperature_view",
    "softmax_by_temperature", "dark_knowledge_bars", "soft_target_matrices", "mass_vs_temperature",
    "TemperatureExplorer", "say_dark_knowledge", "say_blocks", "say_mass", "say_high_T", "say_summary",
    "temperature_where_top_falls_below", "EXERCISES", "check_exercise",
]


# --------------------------------------------------------------------------- parameters

PARAMS = {
    "checkpoint": TEACHER_CHECKPOINT,
    "n_images": Param(Int(100, 5000),
        "Validation images whose teacher logits the notebook computes (the split has 5,000; fewer "
        "than 100 leaves classes with a handful of images each)."),
    "T_max": Param(Float(4.0, 100.0),
        "Largest temperature on the slider (the lesson compares T = 1 with T = 4, so the slider "
        "must reach 4)."),
}
"""Notebook 02's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""


@settings_class(PARAMS)
class Settings:
    """Notebook 02's parameters, validated (made by :func:`check_params`)."""


check_params = settings_checker(Settings, PARAMS)


# --------------------------------------------------------------------------- input checks

def _as_logits(name: str, logits, *, dims=(1, 2)) -> torch.Tensor:
    if not isinstance(logits, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(logits).__name__}")
    if not logits.is_floating_point():
        raise TypeError(f"{name} must hold floating-point logits, got dtype {logits.dtype}")
    if logits.dim() not in dims:
        allowed = " or ".join(f"{d}-D" for d in dims)
        raise ValueError(f"{name} must be {allowed} (classes last), got shape {tuple(logits.shape)}")
    if logits.shape[-1] < 2:
        raise ValueError(f"{name} must have at least 2 classes, got shape {tuple(logits.shape)}")
    return logits.detach()


def _temperatures(temperatures) -> np.ndarray:
    t = np.asarray(temperatures, dtype=float).reshape(-1)
    if t.size == 0:
        raise ValueError("temperatures must hold at least one temperature, got none")
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"temperatures must all be finite and > 0, got values in "
                         f"[{t.min():.4g}, {t.max():.4g}]")
    return t


def _check_classes(classes, n: int) -> list[str]:
    classes = [str(c) for c in classes]
    if len(classes) != n:
        raise ValueError(f"classes must name all {n} classes of the logits, got {len(classes)} names")
    return classes


# --------------------------------------------------------------------------- computations

def entropy_nats(probs) -> torch.Tensor:
    """Shannon entropy ``-Σ p log p`` in nats along the last dimension (``0 log 0 = 0``).

    A one-hot distribution has entropy 0; the uniform distribution over ``C``
    classes has the largest possible entropy, ``log C`` (2.303 nats for 10).

    Parameters
    ----------
    probs : torch.Tensor or array-like
        Probabilities; the last dimension indexes the classes.

    Returns
    -------
    torch.Tensor
        One value per distribution (the last dimension removed).
    """
    p = torch.as_tensor(probs)
    if not p.is_floating_point():
        raise TypeError(f"probs must hold floating-point probabilities, got dtype {p.dtype}")
    if p.numel() and (bool((p < 0).any()) or bool((p > 1).any())):
        raise ValueError(f"probs must hold probabilities in [0, 1], got values in "
                         f"[{float(p.min()):.4g}, {float(p.max()):.4g}]")
    return -torch.where(p > 0, p * torch.log(p), torch.zeros_like(p)).sum(dim=-1)


def entropy_vs_temperature(logits, temperatures) -> np.ndarray:
    """Entropy (nats) of ``softmax(logits / T)`` for each temperature.

    Parameters
    ----------
    logits : torch.Tensor
        ``(classes,)`` for one example or ``(n, classes)``.
    temperatures : sequence of float
        Temperatures, each ``> 0``.

    Returns
    -------
    numpy.ndarray
        ``(len(temperatures),)`` for 1-D logits, ``(n, len(temperatures))`` for 2-D.
    """
    z = _as_logits("logits", logits).double()
    ts = _temperatures(temperatures)
    out = torch.stack([entropy_nats(soft_targets(z, float(T))) for T in ts], dim=-1)
    return out.numpy()


@validate_params(T=TEMPERATURE, n_classes=Int(low=2))
def mean_soft_targets(logits, labels, T: float, n_classes: int) -> torch.Tensor:
    """Class-by-class mean soft targets: row ``c`` is the mean of ``softmax(z / T)``
    over the examples whose true class is ``c``.

    Parameters
    ----------
    logits : torch.Tensor
        Teacher logits, ``(n, n_classes)``.
    labels : torch.Tensor
        True classes, ``(n,)`` integers in ``[0, n_classes - 1]``.
    T : float
        Temperature, ``T > 0``.
    n_classes : int
        Number of classes (rows and columns of the result), ``>= 2``.

    Returns
    -------
    torch.Tensor
        ``(n_classes, n_classes)`` float64 matrix; each row sums to 1. A class
        with no example gets a row of NaN.
    """
    z = _as_logits("logits", logits, dims=(2,))
    if z.shape[1] != n_classes:
        raise ValueError(f"logits must have n_classes={n_classes} columns, got shape {tuple(z.shape)}")
    y = torch.as_tensor(labels)
    if y.is_floating_point() or y.dim() != 1 or len(y) != len(z):
        raise ValueError(f"labels must be a 1-D integer tensor of length {len(z)} (one per row of "
                         f"logits), got shape {tuple(y.shape)} and dtype {y.dtype}")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= n_classes):
        raise ValueError(f"labels must be class indices in [0, {n_classes - 1}], got values in "
                         f"[{int(y.min())}, {int(y.max())}]")
    y = y.long()
    p = soft_targets(z.double(), T)
    sums = torch.zeros(n_classes, n_classes, dtype=torch.float64).index_add_(0, y, p)
    counts = torch.bincount(y, minlength=n_classes).double()
    return sums / counts[:, None]  # 0 / 0 = NaN for a class with no example


@validate_params(reduce=OneOf("mean", "median"))
def non_argmax_mass(logits, temperatures, *, reduce: str = "mean") -> np.ndarray:
    """Probability mass off the arg-max class, ``1 - max softmax(z / T)``, per temperature.

    The arg-max does not depend on T (dividing by T > 0 keeps the order), so
    this is the mass the softened targets put on the teacher's *other* classes:
    the part of the target that a hard label does not carry.

    Parameters
    ----------
    logits : torch.Tensor
        ``(n, classes)``.
    temperatures : sequence of float
        Each ``> 0``.
    reduce : {"mean", "median"}
        How the ``n`` rows are summarised.

    Returns
    -------
    numpy.ndarray
        ``(len(temperatures),)``. It is 0 for one-hot targets and approaches
        ``1 - 1/classes`` as ``T → ∞``.
    """
    z = _as_logits("logits", logits, dims=(2,)).double()
    ts = _temperatures(temperatures)
    out = []
    for T in ts:
        m = 1 - soft_targets(z, float(T)).max(dim=-1).values
        out.append(float(m.mean() if reduce == "mean" else torch.quantile(m, 0.5)))
    return np.array(out)


def group_mass(matrix, members) -> tuple[float, float]:
    """How a group of classes shares its soft-target mass (rows of :func:`mean_soft_targets`).

    Parameters
    ----------
    matrix : array-like
        A ``(classes, classes)`` class-by-class mean soft-target matrix.
    members : sequence of int
        The group's class indices, e.g. the footwear ``[5, 7, 9]``.

    Returns
    -------
    within, outside : float
        Averaged over the group's rows: the mass on the *other* members of the
        group (the diagonal excluded), and the mass on classes outside the group.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"matrix must be square (classes × classes), got shape {m.shape}")
    idx = sorted({check_int("members", i, low=0, high=m.shape[0] - 1) for i in members})
    if not idx:
        raise ValueError("members must name at least one class")
    rows = m[idx]
    inside = rows[:, idx].sum(axis=1) - m[idx, idx]
    outside = rows.sum(axis=1) - rows[:, idx].sum(axis=1)
    return float(inside.mean()), float(outside.mean())


def top_classes(logits, classes, *, temperatures=(1.0, 4.0), k: int = 3, names=None) -> pd.DataFrame:
    """The ``k`` most probable classes of ``softmax(z / T)`` for each row and temperature.

    Parameters
    ----------
    logits : torch.Tensor
        ``(n, classes)``.
    classes : sequence of str
        Class names, one per column.
    temperatures : sequence of float
        Each ``> 0``.
    k : int
        How many classes per row, ``1 <= k <= classes``.
    names : sequence of str, optional
        One label per row (default ``"0"``, ``"1"``, ...).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(image, T)``; columns ``class 1``, ``p 1`` ... ``class k``, ``p k`` (most
        probable first) and ``rest``, the mass on the other classes.
    """
    z = _as_logits("logits", logits, dims=(2,)).double()
    cls = _check_classes(classes, z.shape[1])
    k = check_int("k", k, low=1, high=z.shape[1])
    names = [str(i) for i in range(len(z))] if names is None else [str(n) for n in names]
    if len(names) != len(z):
        raise ValueError(f"names must have one entry per row of logits ({len(z)}), got {len(names)}")
    rows = []
    for name, row in zip(names, z):
        for T in _temperatures(temperatures):
            values, idx = soft_targets(row, float(T)).topk(k)
            out = {"image": name, "T": float(T)}
            for r, (v, j) in enumerate(zip(values.tolist(), idx.tolist()), 1):
                out[f"class {r}"], out[f"p {r}"] = cls[j], v
            rows.append(out | {"rest": max(0.0, 1 - float(values.sum()))})
    return pd.DataFrame(rows).set_index(["image", "T"])


@validate_params(threshold=Float(0, 1, low_open=True))
def mass_off_top(logits, temperatures=(1.0, 4.0), *, threshold: float = 1e-3) -> pd.DataFrame:
    """Mean and median mass off the arg-max class, and the share of tiny wrong-class probabilities.

    Parameters
    ----------
    logits : torch.Tensor
        ``(n, classes)``.
    temperatures : sequence of float
        Each ``> 0``.
    threshold : float
        A wrong-class probability below it counts as tiny, in ``(0, 1)``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``T``; columns ``mean`` and ``median`` (:func:`non_argmax_mass`) and ``tiny``, the
        share of the ``n * (classes - 1)`` non-arg-max probabilities below ``threshold``;
        ``attrs["threshold"]`` holds the threshold.
    """
    z = _as_logits("logits", logits, dims=(2,)).double()
    ts = _temperatures(temperatures)
    others = torch.ones_like(z, dtype=torch.bool)
    others[torch.arange(len(z)), z.argmax(dim=-1)] = False
    tiny = [float((soft_targets(z, float(T))[others] < threshold).double().mean()) for T in ts]
    frame = pd.DataFrame({"mean": non_argmax_mass(z, ts), "median": non_argmax_mass(z, ts, reduce="median"),
                          "tiny": tiny}, index=pd.Index(ts, name="T"))
    frame.attrs["threshold"] = threshold
    return frame


def block_masses(matrices: dict, groups: dict) -> pd.DataFrame:
    """:func:`group_mass` for each temperature and group, in total and per class.

    Parameters
    ----------
    matrices : dict
        ``{T: (classes, classes) matrix}`` from :func:`mean_soft_targets`.
    groups : dict
        ``{name: class indices}``, e.g. ``{"footwear": [5, 7, 9]}``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``(T, group)``; columns ``within`` (mass on the group's other members),
        ``within each`` (per member), ``outside`` and ``outside each`` (per class outside).
    """
    rows = []
    for T, m in matrices.items():
        for group, members in groups.items():
            within, outside = group_mass(m, members)
            n_in, n_out = len(set(members)) - 1, len(m) - len(set(members))
            rows.append({"T": float(T), "group": group, "within": within,
                         "within each": within / n_in if n_in else math.nan, "outside": outside,
                         "outside each": outside / n_out if n_out else math.nan})
    return pd.DataFrame(rows).set_index(["T", "group"])


def high_T_limit(student_logits, teacher_logits, temperatures) -> pd.DataFrame:
    """The KD soft term's gradient against T, with and without the ``T²`` factor, against logit matching.

    For large T, ``softmax(z / T) ≈ 1/K + (z - mean z) / (K T)``, so the gradient of
    ``T² · KL`` tends to that of logit matching, ``((s - mean s) - (t - mean t)) / (K · batch)``
    (Hinton et al. 2015, §2.1), while without ``T²`` it falls like ``1 / T²``.

    Parameters
    ----------
    student_logits, teacher_logits : torch.Tensor
        ``(batch, classes)``.
    temperatures : sequence of float
        Each ``> 0``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``T``; columns ``with T²`` and ``without T²`` (gradient norms,
        :func:`kdlib.losses.soft_term_grad_norm`) and ``gap to logit matching``, the distance of
        the gradient with ``T²`` from logit matching's, relative to the latter (0 in the limit).
    """
    s = _as_logits("student_logits", student_logits, dims=(2,)).double()
    t = _as_logits("teacher_logits", teacher_logits, dims=(2,)).double()
    if s.shape != t.shape:
        raise ValueError(f"student_logits and teacher_logits must have the same shape, got "
                         f"{tuple(s.shape)} and {tuple(t.shape)}")
    ts = _temperatures(temperatures)
    matching = ((s - s.mean(1, keepdim=True)) - (t - t.mean(1, keepdim=True))) / (s.shape[1] * len(s))
    # the gradient of T² · KL (batch mean) with respect to s is T (softmax(s/T) - softmax(t/T)) / batch
    gap = [float((T * (soft_targets(s, T) - soft_targets(t, T)) / len(s) - matching).norm() / matching.norm())
           for T in map(float, ts)]
    return pd.DataFrame({"with T²": [soft_term_grad_norm(s, t, float(T)) for T in ts],
                         "without T²": [soft_term_grad_norm(s, t, float(T), scale_T2=False) for T in ts],
                         "gap to logit matching": gap}, index=pd.Index(ts, name="T"))


@validate_params(n_ambiguous=Int(low=0), min_top2=Float(0, 1))
def pick_temperature_examples(logits, labels, classes, *, n_ambiguous: int = 3,
                              min_top2: float = 0.9) -> tuple[list[int], list[str]]:
    """A curated handful of examples: one typical image per class, plus a few ambiguous ones.

    *Typical*: among the images of class ``c`` that the teacher gets right, the
    one whose top probability is closest to the median of those images' top
    probabilities (if it gets none right, the image of class ``c`` with the
    highest probability for ``c``; a class without images is skipped).
    *Ambiguous*: the images whose two most probable classes together hold at
    least ``min_top2`` of the mass and are closest to each other (the teacher
    hesitates between exactly two classes, e.g. Shirt and T-shirt/top), at most
    one image per pair of classes, closest first.

    Parameters
    ----------
    logits : torch.Tensor
        Teacher logits ``(n, classes)`` (at T = 1).
    labels : torch.Tensor
        True classes ``(n,)``.
    classes : sequence of str
        Class names.
    n_ambiguous : int
        How many ambiguous images to add, ``>= 0``.
    min_top2 : float
        Mass the two most probable classes must hold together, in ``[0, 1]``.

    Returns
    -------
    indices : list of int
        Row indices into ``logits`` (typical ones first, in class order).
    names : list of str
        A short description of each, e.g. ``"Trouser (typical)"`` or
        ``"Shirt or T-shirt/top? (true: Shirt)"``.
    """
    z = _as_logits("logits", logits, dims=(2,))
    names = _check_classes(classes, z.shape[1])
    y = torch.as_tensor(labels).long()
    if y.shape != (len(z),):
        raise ValueError(f"labels must have shape ({len(z)},), got {tuple(y.shape)}")
    p = torch.softmax(z.double(), dim=-1)
    top = p.topk(2, dim=-1)
    pred = top.indices[:, 0]
    indices, descriptions = [], []
    for c, name in enumerate(names):
        ok = torch.nonzero((y == c) & (pred == c)).flatten()
        if len(ok):
            conf = top.values[ok, 0]
            i = int(ok[torch.argmin((conf - torch.quantile(conf, 0.5)).abs())])
        else:  # the teacher gets no image of class c right: the one it finds most c-like
            members = torch.nonzero(y == c).flatten()
            if len(members) == 0:
                continue
            i = int(members[torch.argmax(p[members, c])])
        indices.append(i)
        descriptions.append(f"{name} (typical)")
    gap = top.values[:, 0] - top.values[:, 1]
    pairs = set()
    for i in torch.argsort(gap).tolist():
        if len(pairs) >= n_ambiguous:
            break
        a, b = top.indices[i].tolist()
        if float(top.values[i].sum()) < min_top2 or frozenset((a, b)) in pairs or i in indices:
            continue
        pairs.add(frozenset((a, b)))
        indices.append(i)
        descriptions.append(f"{names[a]} or {names[b]}? (true: {names[int(y[i])]})")
    return indices, descriptions


# --------------------------------------------------------------------------- figures

@validate_params(T=TEMPERATURE)
def temperature_view(logits, T: float, classes, *, image=None, label: int | None = None,
                     temperatures=None, entropies=None) -> Figure:
    """One example at temperature ``T``: its image, ``softmax(z / T)`` as bars, entropy against T.

    Parameters
    ----------
    logits : torch.Tensor
        One example's logits, ``(classes,)``.
    T : float
        The temperature shown (bars, and the marker on the entropy curve).
    classes : sequence of str
        Class names.
    image : array-like, optional
        The image (``(28, 28)`` or ``(1, 28, 28)``) shown on the left.
    label : int, optional
        True class: its bar is drawn in green.
    temperatures, entropies : array-like, optional
        The entropy curve, precomputed (the widget passes it so that a redraw
        computes nothing); default: 60 temperatures from 0.5 to
        ``max(20, T)`` on a log scale.

    Returns
    -------
    Figure
        ``axes[0]`` the image, ``axes[1]`` the horizontal bars (``patches[i]``
        is class ``i``; its width is the probability), ``axes[2]`` the entropy
        curve (``lines[0]``) with the current T as ``lines[1]``.
    """
    z = _as_logits("logits", logits, dims=(1,))
    names = _check_classes(classes, len(z))
    if temperatures is None:
        temperatures = np.geomspace(0.5, max(20.0, T), 60)
    ts = _temperatures(temperatures)
    ent = entropy_vs_temperature(z, ts) if entropies is None else np.asarray(entropies, float)
    if ent.shape != ts.shape:
        raise ValueError(f"entropies must have one value per temperature ({ts.size}), got shape {ent.shape}")
    p = soft_targets(z.double(), T).numpy()
    h = float(entropy_nats(torch.from_numpy(p)))

    fig = Figure(figsize=(10.5, 3.2), layout="constrained")
    img_ax, bar_ax, ent_ax = fig.subplots(1, 3, width_ratios=[0.8, 1.5, 1.4])
    img_ax.axis("off")
    if image is not None:
        im = np.asarray(image, dtype=float)
        img_ax.imshow(im.reshape(im.shape[-2:]), cmap="gray_r")
        if label is not None:
            img_ax.set_title(f"true: {names[int(label)]}", fontsize=9)
    pos = np.arange(len(names))
    colors = ["C2" if label is not None and i == int(label) else "C0" for i in pos]
    bar_ax.barh(pos, p, color=colors)
    for i, v in enumerate(p):
        bar_ax.text(min(v, 0.8) + 0.02, i, f"{v:.2f}", va="center", fontsize=7)
    bar_ax.set_yticks(pos, names, fontsize=8)
    bar_ax.invert_yaxis()
    bar_ax.set_xlim(0, 1)
    bar_ax.set(xlabel="probability", title=f"softmax(z / T), T = {T:g}")
    ent_ax.plot(ts, ent, color="C1")
    ent_ax.plot([T], [h], "o", color="C3", label=f"T = {T:g}: {h:.2f} nats")
    ent_ax.axhline(math.log(len(names)), ls="--", color="0.5", lw=1,
                   label=f"uniform: log {len(names)} = {math.log(len(names)):.2f}")
    ent_ax.set_xscale("log")
    ent_ax.set_ylim(0, math.log(len(names)) * 1.08)
    ent_ax.set(xlabel="temperature T (log scale)", ylabel="entropy (nats)", title="entropy vs T")
    ent_ax.legend(fontsize=7, loc="lower right")
    return fig


def softmax_by_temperature(logits, temperatures) -> Figure:
    """Grouped bars: ``softmax(logits / T)`` of one logit vector, one colour per temperature.

    Parameters
    ----------
    logits : torch.Tensor
        One logit vector, ``(classes,)``.
    temperatures : sequence of float
        One bar colour per temperature, each ``> 0``.

    Returns
    -------
    Figure
        ``axes[0].containers[j]`` holds the bars of ``temperatures[j]`` (heights
        are the probabilities).
    """
    z = _as_logits("logits", logits, dims=(1,))
    ts = _temperatures(temperatures)
    names = [f"z={v:g}" for v in z.tolist()]
    fig, ax = new_figure(6.4, 3.2)
    a = ax[0, 0]
    width = 0.8 / len(ts)
    pos = np.arange(len(z))
    for j, T in enumerate(ts):
        a.bar(pos + (j - (len(ts) - 1) / 2) * width, soft_targets(z.double(), float(T)).numpy(),
              width, label=f"T = {T:g}")
    a.set_xticks(pos, names)
    a.set_ylim(0, 1)
    a.set(ylabel="probability", title="softmax(z / T) of fixed logits")
    a.legend(fontsize="small")
    return fig


def dark_knowledge_bars(logits, classes, *, temperatures=(1.0, 4.0), titles=None) -> Figure:
    """For a few examples, every class's probability at each temperature, on a log scale.

    The log scale shows what a linear one hides: at T = 1 the wrong classes
    already carry a structure (which ones look alike), but at 1e-3 to 1e-6 or
    below; a higher T lifts it to a visible size.

    Parameters
    ----------
    logits : torch.Tensor
        ``(n, classes)``, one panel per row (``n <= 6``).
    classes : sequence of str
    temperatures : sequence of float
        One bar colour per temperature; ``axes[i].containers[j]`` holds row ``i``
        at ``temperatures[j]``.
    titles : sequence of str, optional
        Panel titles.

    Returns
    -------
    Figure
        The legend sits above the panels, off the data.
    """
    z = _as_logits("logits", logits, dims=(2,))
    if not 1 <= len(z) <= 6:
        raise ValueError(f"logits must have 1 to 6 rows (one panel each), got {len(z)}")
    names = _check_classes(classes, z.shape[1])
    ts = _temperatures(temperatures)
    probs = [[soft_targets(z[i].double(), float(T)).numpy() for T in ts] for i in range(len(z))]
    # the log axis reaches a decade below the smallest probability drawn: no bar is clipped
    smallest = min(float(p[p > 0].min()) for row in probs for p in row if (p > 0).any())
    floor = 10.0 ** min(-1, math.floor(math.log10(smallest)) - 1)
    if titles is not None and len(titles) != len(z):
        raise ValueError(f"titles must have one entry per row ({len(z)}), got {len(titles)}")
    fig, ax = new_figure(3.3 * len(z), 3.6, ncols=len(z))
    pos = np.arange(len(names))
    width = 0.8 / len(ts)
    for i, a in enumerate(ax[0]):
        for j, T in enumerate(ts):
            a.bar(pos + (j - (len(ts) - 1) / 2) * width, np.maximum(probs[i][j], floor), width,
                  label=f"T = {T:g}", color=f"C{j}")
        a.set_yscale("log")
        a.set_ylim(floor, 1.5)
        a.set_xticks(pos, names, rotation=60, ha="right", fontsize=8)
        if titles is not None:
            a.set_title(str(titles[i]), fontsize=9)
        if i == 0:
            a.set_ylabel("probability (log scale)")
    handles, labels = ax[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside upper center", ncols=len(ts), fontsize="small")
    return fig


def soft_target_matrices(matrices: dict, classes) -> Figure:
    """Heat maps of class-by-class mean soft targets (see :func:`mean_soft_targets`), side by side.

    Parameters
    ----------
    matrices : dict
        Maps a temperature to its ``(classes, classes)`` matrix, e.g.
        ``{1: m1, 4: m4}``; ``axes[i].images[0]`` shows the i-th matrix.
    classes : sequence of str

    Returns
    -------
    Figure
        The colour scale is a square root of the probability (0 to 1), so that
        0.01, 0.1 and 0.5 are all told apart; cells of at least 0.01 show their value.
    """
    if not isinstance(matrices, dict) or not matrices:
        raise ValueError("matrices must be a non-empty dict {temperature: matrix}")
    mats = {T: np.asarray(m, dtype=float) for T, m in matrices.items()}
    k = len(classes)
    for T, m in mats.items():
        if m.shape != (k, k):
            raise ValueError(f"matrices[{T!r}] must be {k}×{k} (one row and column per class), "
                             f"got shape {m.shape}")
    fig, ax = new_figure(6.4 * len(mats), 5.9, ncols=len(mats))
    norm = PowerNorm(gamma=0.5, vmin=0.0, vmax=1.0)
    im = None
    for a, (T, m) in zip(ax[0], mats.items()):
        im = a.imshow(m, cmap="viridis", norm=norm)
        for i in range(k):
            for j in range(k):
                if m[i, j] >= 0.01:
                    a.text(j, i, f"{m[i, j]:.2f}", ha="center",
                           va="center", fontsize=8, color="black" if m[i, j] > 0.3 else "white")
        a.set_xticks(range(k), classes, rotation=45, ha="right", fontsize=8)
        a.set_yticks(range(k), classes, fontsize=8)
        a.set(xlabel="teacher's probability for class", ylabel="true class",
              title=f"mean softmax(z / T), T = {T:g}")
    fig.colorbar(im, ax=list(ax[0]), shrink=0.8, label="mean probability (square-root colour scale)")
    return fig


@validate_params(n_classes=Optional(Int(low=2)))
def mass_vs_temperature(temperatures, curves, *, n_classes: int | None = None,
                        marks=(1.0, 4.0)) -> Figure:
    """Probability mass off the arg-max class against T (see :func:`non_argmax_mass`).

    Parameters
    ----------
    temperatures : sequence of float
    curves : array-like or dict
        One curve (a value per temperature), or ``{label: curve}`` for several;
        ``axes[0].lines[i]`` is the i-th curve.
    n_classes : int, optional
        Adds the T → ∞ limit ``1 - 1/n_classes`` as a dashed line.
    marks : sequence of float
        Temperatures marked (and labelled with their value) on every curve.

    Returns
    -------
    Figure
    """
    ts = _temperatures(temperatures)
    if not isinstance(curves, dict):
        curves = {"": curves}
    curves = {k: np.asarray(v, dtype=float) for k, v in curves.items()}
    for k, v in curves.items():
        if v.shape != ts.shape:
            raise ValueError(f"curve {k!r} must have one value per temperature ({ts.size}), "
                             f"got shape {v.shape}")
    fig, ax = new_figure(6.4, 3.6)
    a = ax[0, 0]
    for i, (name, m) in enumerate(curves.items()):
        a.plot(ts, m, color=f"C{i}", label=name or None)
    for i, m in enumerate(curves.values()):
        for T in marks:
            v = float(np.interp(T, ts, m))
            a.plot([T], [v], "o", color=f"C{i}", ms=5)
            # the first curve's value left of its point, the others' right of theirs: two curves
            # that nearly meet at a mark (mean 0.47, median 0.50 at T = 4) keep apart labels
            left = i % 2 == 0
            a.annotate(f"{v:.2f}", (T, v), textcoords="offset points", xytext=(-7 if left else 7, 0),
                       ha="right" if left else "left", va="center", fontsize=9, color=f"C{i}",
                       bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    if n_classes is not None:
        a.axhline(1 - 1 / n_classes, ls="--", color="0.5", lw=1,
                  label=f"T → ∞: 1 - 1/{n_classes} = {1 - 1 / n_classes:.2f}")
    for T in marks:
        a.axvline(T, color="0.85", lw=1, zorder=0)
    a.set_xscale("log")
    a.set_ylim(0, 1)
    a.set(xlabel="temperature T (log scale)", ylabel="mass off the arg-max class",
          title="how much of the soft target is not the top class")
    if a.get_legend_handles_labels()[0]:
        a.legend(fontsize="small", loc="upper left")
    return fig


# --------------------------------------------------------------------------- widget

class TemperatureExplorer:
    """Pick an image, move the temperature slider ``T``: the teacher's softened distribution redraws.

    The figure (from :func:`kdlib.temperature_view`) shows the image, the bars of
    ``softmax(z / T)`` over the class names (the true class in green) and the entropy
    of that distribution against T, with a marker at the current T. The teacher's
    logits are given once and each image's entropy curve is precomputed, so a callback
    only computes one 10-class softmax and redraws.

    Parameters
    ----------
    teacher_logits : torch.Tensor
        ``(n, classes)`` logits of the ``n`` images offered.
    images : torch.Tensor
        ``(n, 1, H, W)`` or ``(n, H, W)``.
    labels : torch.Tensor
        ``(n,)`` true classes.
    classes : sequence of str
        Class names.
    names : sequence of str, optional
        The picker's text for each image (default ``"0: Shirt"`` …).
    T : float
        Starting temperature.
    T_max : float
        The slider's upper end (it starts at 0.5 and moves in steps of 0.5).

    Attributes
    ----------
    widget : ipywidgets.VBox
        Display this; it holds ``image_picker`` (value: the index of the image shown),
        ``t_slider`` (description ``"T"``) and ``label`` (e.g. ``"T = 4.0: entropy 1.23 nats,
        top class Shirt 0.61"``).
    probs : torch.Tensor
        ``softmax(z / T)`` of the image shown (float64).
    figure : matplotlib.figure.Figure
        The figure last drawn, ``redraws`` times so far.
    """

    def __init__(self, teacher_logits, images, labels, classes, *, names=None, T: float = 1.0,
                 T_max: float = 20.0):
        z = torch.as_tensor(teacher_logits)
        if z.dim() != 2 or not z.is_floating_point():
            raise ValueError(f"teacher_logits must be a 2-D floating-point tensor (images, classes), "
                             f"got shape {tuple(z.shape)} and dtype {z.dtype}")
        n = len(z)
        if n < 1:
            raise ValueError("teacher_logits must hold at least one image's logits, got 0 rows")
        self.classes = [str(c) for c in classes]
        if len(self.classes) != z.shape[1]:
            raise ValueError(f"classes must name all {z.shape[1]} classes of teacher_logits, "
                             f"got {len(self.classes)} names")
        self.images = torch.as_tensor(images)
        self.labels = torch.as_tensor(labels).long()
        if len(self.images) != n or self.labels.shape != (n,):
            raise ValueError(f"images and labels must have one entry per row of teacher_logits ({n}), "
                             f"got {len(self.images)} images and labels of shape {tuple(self.labels.shape)}")
        names = [f"{i}: {self.classes[int(y)]}" for i, y in enumerate(self.labels)] if names is None \
            else [str(s) for s in names]
        if len(names) != n:
            raise ValueError(f"names must have one entry per image ({n}), got {len(names)}")
        T_min, T_step = 0.5, 0.5
        T_max = check_float("T_max", T_max, low=T_min + T_step)
        T = check_float("T", T, low=T_min, high=T_max)

        self.logits = z.detach().double()
        self.temperatures = np.geomspace(T_min, T_max, 80)
        self.entropies = entropy_vs_temperature(self.logits, self.temperatures)
        self.probs = None
        self.figure = None
        self.redraws = 0

        self.image_picker = widgets.Dropdown(options=list(zip(names, range(n))), value=0,
                                             description="image",
                                             layout=widgets.Layout(width="340px"))
        self.t_slider = widgets.FloatSlider(value=T, min=T_min, max=T_max, step=T_step,
                                            description="T", readout_format=".1f",
                                            continuous_update=False)
        self.label = widgets.HTML()
        self.out = widgets.Output()
        self.widget = widgets.VBox([widgets.HBox([self.image_picker, self.t_slider]), self.label,
                                    self.out])
        self.image_picker.observe(self._redraw, names="value")
        self.t_slider.observe(self._redraw, names="value")
        self._redraw()

    def _redraw(self, change=None) -> None:
        i, T = int(self.image_picker.value), float(self.t_slider.value)
        self.probs = soft_targets(self.logits[i], T)
        h = float(entropy_nats(self.probs))
        top = int(self.probs.argmax())
        self.label.value = (f"T = {T:.1f}: entropy {h:.2f} nats, top class "
                            f"{self.classes[top]} {float(self.probs[top]):.2f}")
        self.figure = temperature_view(self.logits[i], T, self.classes, image=self.images[i],
                                      label=int(self.labels[i]), temperatures=self.temperatures,
                                      entropies=self.entropies[i])
        self.redraws += 1
        show_in(self.out, self.figure)


# --------------------------------------------------------------------------- what we saw

def _and(items) -> str:
    items = list(items)
    return ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else "".join(items)


def say_dark_knowledge(top: pd.DataFrame) -> Markdown:
    """The teacher's top classes at the lowest and the highest temperature of the table.

    Parameters
    ----------
    top : pandas.DataFrame
        :func:`top_classes` with ``k >= 2``.

    Returns
    -------
    IPython.display.Markdown
    """
    lo, hi = top.index.get_level_values("T").min(), top.index.get_level_values("T").max()
    images = list(dict.fromkeys(top.index.get_level_values("image")))
    k = sum(c.startswith("p ") for c in top.columns)
    r = lambda im, T, j: f"{top.loc[(im, T), f'class {j}']} ({top.loc[(im, T), f'p {j}']:.3f})"  # noqa: E731
    cold = "; ".join(f"the {im} image puts {top.loc[(im, lo), 'p 1']:.3f} on {top.loc[(im, lo), 'class 1']} "
                     f"and {top.loc[(im, lo), 'p 2']:.3f} on {top.loc[(im, lo), 'class 2']}" for im in images)
    warm = "; ".join(f"{im} → " + _and(r(im, hi, j) for j in range(2, k + 1)) for im in images)
    alone = max(images, key=lambda im: top.loc[(im, hi), "p 1"])
    a = top.loc[(alone, hi)]
    like = "the teacher finds no other class much like it" if a["p 2"] < 0.1 else "its runner-up still shows"
    return Markdown(
        f"What we saw (the table above): at T = {lo:g}, {cold}; below the top {k} classes at most "
        f"{top.xs(lo, level='T')['rest'].max():.3f} is left. At T = {hi:g} the runners-up become visible: "
        f"{warm}. The {alone} image keeps the most on its top class ({a['p 1']:.3f}, its runner-up "
        f"{a['p 2']:.3f}): {like}.")


def _inside(blocks: pd.DataFrame, T: float) -> list[str]:
    at = blocks.xs(T, level="T")
    return [g for g, row in at.iterrows() if row["within each"] > row["outside each"]]


def say_blocks(blocks: pd.DataFrame, matrices: dict, classes) -> Markdown:
    """The class-by-class matrices: the least sure row and the group masses, lowest and highest T.

    Parameters
    ----------
    blocks : pandas.DataFrame
        :func:`block_masses` of ``matrices``.
    matrices : dict
        ``{T: matrix}`` (:func:`mean_soft_targets`).
    classes : sequence of str

    Returns
    -------
    IPython.display.Markdown
    """
    lo, hi = float(min(matrices)), float(max(matrices))
    diag = np.diag(np.asarray(matrices[min(matrices)], dtype=float))
    c = int(np.nanargmin(diag))
    groups = list(dict.fromkeys(blocks.index.get_level_values("group")))
    b = {(T, g): blocks.loc[(T, g)] for T in (lo, hi) for g in groups}
    small = "; ".join(f"a {g} row gives {b[lo, g]['within']:.2f} to the other {g} classes and "
                      f"{b[lo, g]['outside']:.2f} to the rest" for g in groups)
    large = "; ".join(f"a {g} row puts {b[hi, g]['within']:.2f} on the other {g} "
                      f"({b[hi, g]['within each']:.3f} each, against {b[hi, g]['outside each']:.3f} for each "
                      f"class outside)" for g in groups)
    inside = _inside(blocks, hi)
    verdict = ("Per class, every group keeps more of its mass inside than outside: this block structure is "
               "the teacher's knowledge of *which classes look alike*, and exactly what a one-hot label "
               "throws away." if len(inside) == len(groups) else
               f"Per class, only the {_and(inside)} rows keep more of their mass inside their group than "
               "outside with this teacher." if inside else
               "Per class, no group keeps more of its mass inside than outside with this teacher.")
    return Markdown(
        f"What we saw: at T = {lo:g} the diagonal holds {diag.mean():.2f} of a row on average; the least "
        f"sure row, {classes[c]}, keeps {diag[c]:.2f} on its own class. At T = {lo:g}: {small}. "
        f"At T = {hi:g}: {large}. {verdict}")


def say_mass(mass: pd.DataFrame) -> Markdown:
    """The mass off the top class and the tiny wrong-class probabilities, lowest and highest T.

    Parameters
    ----------
    mass : pandas.DataFrame
        :func:`mass_off_top`.

    Returns
    -------
    IPython.display.Markdown
    """
    (T0, lo), (T1, hi) = (mass.index.min(), mass.iloc[0]), (mass.index.max(), mass.iloc[-1])
    below = f"of the wrong-class probabilities are below {mass.attrs['threshold']:g}"
    zeros = ": to a cross-entropy most of those targets are zeros" if lo["tiny"] > 0.5 else ""
    mean = ("higher than the median: a minority of ambiguous images carries much of it"
            if lo["mean"] > lo["median"] else "no higher than the median")
    large = ": the resemblances are now a large part of the target" if hi["median"] > 0.25 else ""
    return Markdown(
        f"What we saw (the numbers printed above): at T = {T0:g} the median image puts {lo['median']:.3f} "
        f"of its mass off the top class, and {100 * lo['tiny']:.1f} % {below}{zeros}. The mean "
        f"({lo['mean']:.3f}) is {mean}. At T = {T1:g} the mean is {hi['mean']:.3f} and the median "
        f"{hi['median']:.3f}, and {100 * hi['tiny']:.1f} % {below}{large}.")


def say_high_T(limit: pd.DataFrame) -> Markdown:
    """The soft term's gradient at the lowest and highest T, with and without ``T²``.

    Parameters
    ----------
    limit : pandas.DataFrame
        :func:`high_T_limit`.

    Returns
    -------
    IPython.display.Markdown
    """
    (T0, lo), (T1, hi) = (limit.index.min(), limit.iloc[0]), (limit.index.max(), limit.iloc[-1])
    gap = hi["gap to logit matching"]
    reached = f"{100 * gap:.1f} % away from logit matching's" + (
        ": the soft term has become logit matching, not nothing" if gap < 0.05 else " (not yet the limit)")
    return Markdown(
        f"What we saw: with the T² factor the gradient's norm goes from {lo['with T²']:.3g} at T = {T0:g} "
        f"to {hi['with T²']:.3g} at T = {T1:g}, where it is {reached}. Without T² it falls to "
        f"{hi['without T²']:.3g}, {lo['without T²'] / hi['without T²']:,.0f} times smaller than at "
        f"T = {T0:g}.")


def say_summary(mass: pd.DataFrame, blocks: pd.DataFrame) -> Markdown:
    """The summary's two measured bullets: the group structure, and the tiny probabilities at low T.

    Parameters
    ----------
    mass : pandas.DataFrame
        :func:`mass_off_top`.
    blocks : pandas.DataFrame
        :func:`block_masses`.

    Returns
    -------
    IPython.display.Markdown
    """
    hi = blocks.index.get_level_values("T").max()
    inside = _inside(blocks, hi)
    dark = (f"The teacher's wrong-class probabilities hold its dark knowledge: at T = {hi:g}, per class, "
            f"the {_and(inside)} rows put more mass on their own group than outside it." if inside else
            "With this teacher, no group of classes keeps more mass inside than outside.")
    (T0, lo), (T1, hi) = (mass.index.min(), mass.iloc[0]), (mass.index.max(), mass.iloc[-1])
    return Markdown(
        f"* {dark}\n* At T = {T0:g}, {100 * lo['tiny']:.1f} % of the wrong-class probabilities are below "
        f"{mass.attrs['threshold']:g}, invisible to a loss; at T = {T1:g}, {100 * hi['tiny']:.1f} %. A very "
        "large T flattens the targets, but with the T² factor KD then matches logits (Hinton et al. 2015, "
        "§2.1): it does not wash out what the student learns.")


# --------------------------------------------------------------------------- exercises

def temperature_where_top_falls_below(logits, p: float = 0.5) -> float:
    """The temperature at which the top probability of ``softmax(z / T)`` falls to ``p``.

    The largest softened probability never rises with T (from 1 at T → 0 to
    ``1/classes`` at T → ∞), so a bisection on log T finds where it crosses ``p``.

    Parameters
    ----------
    logits : torch.Tensor
        One example's logits, ``(classes,)``.
    p : float
        In ``(1/classes, 1)``.

    Returns
    -------
    float
        ``T`` with ``max softmax(z / T) = p`` (to 1e-6 relative); 0 if the top
        probability is already below ``p`` at T = 1e-4 (a tie between classes).
    """
    z = _as_logits("logits", logits, dims=(1,)).double()
    p = check_float("p", p, low=1 / len(z), high=1, low_open=True)
    if p == 1:
        raise ValueError("p must be < 1 (the top probability is below 1 at every T > 0), got 1")

    def top(T):
        return float(soft_targets(z, T).max())

    lo, hi = 1e-4, 1e4
    if top(lo) < p:
        return 0.0
    if top(hi) >= p:
        raise ValueError(f"the top probability stays >= p={p} up to T = {hi:g}")
    for _ in range(100):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if top(mid) >= p else (lo, mid)
        if hi / lo < 1 + 1e-7:
            break
    return hi


_EX1_WANT = soft_targets(torch.tensor([5.0, 2.0, 1.0, -1.0], dtype=torch.float64), 2.0)


def _ex1(answer, **_):
    try:
        got = torch.as_tensor(answer, dtype=torch.float64).reshape(-1)
    except (TypeError, ValueError, RuntimeError):
        got = None
    if got is None or got.numel() not in (1, 4):
        return False, "answer with the first probability (a number) or all four, e.g. [0.7, 0.2, 0.07, 0.03]"
    want = _EX1_WANT[: got.numel()]
    if not torch.allclose(got, want, atol=0.005):
        return False, ("divide each logit by T = 2 first: exp(2.5), exp(1), exp(0.5), exp(-0.5), then "
                       "divide each by their sum")
    return True, ("softmax([2.5, 1, 0.5, -0.5]) = [" + ", ".join(f"{v:.3f}" for v in _EX1_WANT.tolist())
                  + "]")


def _ex2(answer, **_):
    pair = answer if isinstance(answer, (list, tuple)) and len(answer) == 2 else None
    if pair is None or not all(isinstance(v, (bool, np.bool_)) or isinstance(v, torch.Tensor) for v in pair):
        return False, ("answer with the two results of torch.allclose, as (doubling_vs_halving, "
                       "shifting_vs_unshifted)")
    if all(bool(v) for v in pair):
        return True, ("softmax(2z / T) = softmax(z / (T/2)), and softmax((z + c) / T) = softmax(z / T) "
                      "because exp(c / T) cancels between numerator and denominator")
    return False, ("both comparisons should print True: compare soft_targets(2 * z, T) with "
                   "soft_targets(z, T / 2), and soft_targets(z + 3, T) with soft_targets(z, T)")


def _ex3(answer, *, logits=None, **_):
    if logits is None:
        raise ValueError("exercise 3 needs logits=: the trouser's teacher logits, "
                         "logits[picked[names.index('Trouser (typical)')]]")
    want = temperature_where_top_falls_below(logits, 0.5)
    got = None if isinstance(answer, bool) else answer
    try:
        got = float(got)
    except (TypeError, ValueError):
        return False, "answer with a temperature, a number such as 3.5"
    if abs(got - want) > 0.5:  # the slider moves in steps of 0.5
        side = "higher" if got < want else "lower"
        return False, f"look again with the slider: the crossing is {side} than {got:g}"
    return True, (f"the top probability falls below 0.5 at T = {want:.2f} (on the slider: T = "
                  f"{math.ceil(want * 2) / 2:g}); an ambiguous image is below 0.5 already at T = 1")


def _ex4(answer, *, matrix=None, **_):
    if matrix is None:
        raise ValueError("exercise 4 needs matrix=: the class-by-class matrix at T = 10, "
                         "lesson.mean_soft_targets(logits, y, 10, len(classes))")
    within, outside = group_mass(matrix, FOOTWEAR)
    n_in, n_out = len(FOOTWEAR) - 1, matrix.shape[0] - len(FOOTWEAR)
    each_in, each_out = within / n_in, outside / n_out
    right = "within" if each_in > each_out else "outside"
    if not isinstance(answer, str) or answer.strip().lower() not in ("outside", "within"):
        return False, ('answer "within" or "outside": per class, where does a footwear row put more '
                       'mass at T = 10?')
    if answer.strip().lower() == right:
        return True, (f"per class, a footwear row puts {each_in:.3f} on each other footwear class and "
                      f"{each_out:.3f} on each class outside ({within:.2f} in total on the {n_in}, "
                      f"{outside:.2f} on the {n_out}): compare means, not totals over groups of "
                      f"different sizes")
    return False, (f"divide: lesson.group_mass(m, {FOOTWEAR}) gives the totals (within, outside); "
                   f"the footwear group has {n_in} other classes, the rest {n_out}")


FOOTWEAR = [5, 7, 9]
"""Fashion-MNIST's footwear classes: Sandal, Sneaker, Ankle boot."""


EXERCISES = {1: _ex1, 2: _ex2, 3: _ex3, 4: _ex4}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)``, graded by
:func:`kdlib._checks.check_answer`."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=("1: the first probability of ``softmax([5, 2, 1, -1] / 2)`` (or all four); 2: the two "
             "``torch.allclose`` results; 3: the temperature at which the typical trouser's top "
             'probability falls below 0.5; 4: ``"within"`` or ``"outside"``.'),
    evidence={"logits, matrix": "The evidence of exercise 3 (the trouser's logits) and 4 (the "
                                "matrix at T = 10)."})
