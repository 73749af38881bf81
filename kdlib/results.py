"""Result rows: statistics over seeds, paired comparisons, percent formatting, CSV files.

The one place for the conventions every lesson reports with (DESIGN.md, "Claims
about KD are measured with seeds"):

* the standard deviation is the **sample** sd (``ddof=1``) and is ``nan`` for a
  single value (one run has no spread; it is printed without "± sd");
* two methods run with the same seeds are compared by their **paired
  difference** with a Student-t confidence interval;
* accuracies are printed as ``"84.89 ± 0.18 %"``;
* rows (one dict per run) become a ``pandas.DataFrame`` (:func:`frame`); a comparison of
  methods is one table (:func:`compare`): mean ± sd per group and each group's paired
  difference to a reference with its interval, shown as the DataFrame's own HTML
  (:func:`styled`) and drawn by :func:`kdlib.plots.dot_plot`;
* rows are written to and read from CSV with one cell format.

NumPy, SciPy and pandas only: no torch, so the command-line tools stay light.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as _stats

from kdlib._checks import Float, validate_params

__all__ = ["sample_sd", "mean_sd", "format_pct", "PairedDifference", "paired_difference",
           "summarize", "frame", "compare", "styled", "write_csv", "read_csv", "parse_cell",
           "atomic_write_text", "corrected_resampled_t", "say_map_position"]


def _values(name, values) -> np.ndarray:
    v = np.asarray(values, dtype=float).ravel()
    if v.size == 0:
        raise ValueError(f"{name} is empty; give at least one value")
    return v


def sample_sd(values) -> float:
    """Sample standard deviation (``ddof=1``); ``nan`` for fewer than two values.

    Parameters
    ----------
    values : sequence of float

    Returns
    -------
    float
    """
    v = np.asarray(values, dtype=float).ravel()
    return float(v.std(ddof=1)) if v.size > 1 else float("nan")


def mean_sd(values) -> tuple[float, float]:
    """``(mean, sample sd)`` of ``values`` (sd ``nan`` for one value).

    Parameters
    ----------
    values : non-empty sequence of float

    Returns
    -------
    tuple of float
    """
    v = _values("values", values)
    return float(v.mean()), sample_sd(v)


def format_pct(values, digits: int = 2) -> str:
    """Accuracies as ``"84.89 ± 0.18 %"`` (mean ± sample sd, in percent; no sd for one value).

    Parameters
    ----------
    values : float or non-empty sequence of float
        Fractions in [0, 1].
    digits : int
        Decimals after the point.

    Returns
    -------
    str
    """
    mean, sd = mean_sd(values)
    if math.isnan(sd):
        return f"{100 * mean:.{digits}f} %"
    return f"{100 * mean:.{digits}f} ± {100 * sd:.{digits}f} %"


@dataclass(frozen=True)
class PairedDifference:
    """Mean of ``a - b`` over paired runs with a two-sided confidence interval.

    ``low``/``high`` are ``nan`` with a single pair (no interval from one run).

    Attributes
    ----------
    mean : float
        Mean of the differences ``a - b``, in the units of ``a`` (fractions for accuracies).
    sd : float
        Sample standard deviation (``ddof=1``) of the differences; ``nan`` for one pair.
    low, high : float
        The interval's bounds, ``mean ∓ t_{n-1} · sd / √n``.
    n : int
        Number of pairs.
    confidence : float
        Confidence level of the interval, in (0, 1).
    excludes_zero : bool
        True when the interval lies entirely on one side of zero (False without an interval).
    """

    mean: float
    sd: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def excludes_zero(self) -> bool:
        """True when the whole interval lies on one side of zero."""
        return not math.isnan(self.low) and (self.low > 0 or self.high < 0)

    @property
    def verdict(self) -> str:
        """``"helped"`` (interval above 0), ``"hurt"`` (below 0) or ``"not shown"`` (it
        contains 0, or there is no interval from one pair)."""
        if not self.excludes_zero:
            return "not shown"
        return "helped" if self.low > 0 else "hurt"

    def format(self, scale: float = 100.0, unit: str = " points", digits: int = 2) -> str:
        """``"+1.26 points (95 % CI +0.98 to +1.54, n=3)"``.

        Parameters
        ----------
        scale : float
            Multiplies every number (100 turns fractions into percentage points).
        unit : str
        digits : int

        Returns
        -------
        str
        """
        m = f"{scale * self.mean:+.{digits}f}{unit}"
        if math.isnan(self.low):
            return f"{m} (n={self.n}, no interval from one pair)"
        ci = f"{scale * self.low:+.{digits}f} to {scale * self.high:+.{digits}f}"
        return f"{m} ({100 * self.confidence:g} % CI {ci}, n={self.n})"

    def describe(self, what: str = "the difference", **format_kw) -> str:
        """A sentence for prose that follows the run, e.g. ``"distillation helped: +1.70 points
        (95 % CI +1.17 to +2.23, n=5)"``, ``"... hurt: ..."`` or ``"a difference in the
        distillation was not shown: +0.20 points (95 % CI -0.41 to +0.81, n=5)"``.

        Parameters
        ----------
        what : str
            The subject (``"distillation"``, ``"label smoothing"``).
        **format_kw
            Passed to :meth:`format` (``scale``, ``unit``, ``digits``).

        Returns
        -------
        str
        """
        numbers = self.format(**format_kw)
        if self.verdict == "not shown":
            return f"a difference from {what} was not shown: {numbers}"
        return f"{what} {self.verdict}: {numbers}"

    def __str__(self) -> str:
        return self.format()


@validate_params(confidence=Float(low=0.0, high=1.0, low_open=True))
def paired_difference(a, b, *, confidence: float = 0.95) -> PairedDifference:
    """The paired difference ``a - b`` of two methods run with the same seeds.

    The interval is ``mean ± t_{n-1} · sd / √n`` (Student t), which accounts for
    the seed-to-seed variation shared by both methods: pair runs that share a
    seed (and data sample), never runs of unrelated seeds.

    Parameters
    ----------
    a, b : sequence of float, same length
        One value per seed, in the same seed order.
    confidence : float in (0, 1)

    Returns
    -------
    PairedDifference
    """
    a, b = _values("a", a), _values("b", b)
    if a.shape != b.shape:
        raise ValueError(f"a has {a.size} values but b has {b.size}; pair one value per seed")
    if confidence >= 1.0:
        raise ValueError(f"confidence={confidence!r} is out of range; allowed: (0, 1)")
    d = a - b
    mean, sd, n = float(d.mean()), sample_sd(d), d.size
    if n < 2:
        return PairedDifference(mean, sd, float("nan"), float("nan"), n, confidence)
    half = float(_stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return PairedDifference(mean, sd, mean - half, mean + half, n, confidence)



@validate_params(confidence=Float(low=0.0, high=1.0, low_open=True))
def corrected_resampled_t(diffs, n_train, n_test, *, confidence: float = 0.95) -> PairedDifference:
    """The paired difference over cross-validation folds with the **corrected resampled t**
    interval (Nadeau & Bengio 2003), for folds that share their training images.

    Fold scores are not independent (any two folds of k-fold CV share most of their training
    images), so the plain ``sd² / J`` underestimates the variance of the mean difference. The
    corrected interval is ``mean ± t_{J-1} · sqrt((1/J + n_test/n_train) · sd²)``.

    Parameters
    ----------
    diffs : sequence of float
        One difference (method − reference) per fold, ``J`` in all.
    n_train, n_test : float > 0
        Images each fold trains on and is scored on (k-fold CV on ``n`` images:
        ``n (k − 1) / k`` and ``n / k``).
    confidence : float in (0, 1)

    Returns
    -------
    PairedDifference
        ``mean`` and ``sd`` of ``diffs``, ``n = J`` and the corrected ``low``/``high``
        (``nan`` for a single fold).
    """
    d = _values("diffs", diffs)
    n_train, n_test = float(n_train), float(n_test)
    if not (n_train > 0 and n_test > 0):
        raise ValueError(f"n_train={n_train!r} and n_test={n_test!r} must both be > 0")
    if confidence >= 1.0:
        raise ValueError(f"confidence={confidence!r} is out of range; allowed: (0, 1)")
    mean, sd, j = float(d.mean()), sample_sd(d), d.size
    if j < 2:
        return PairedDifference(mean, sd, float("nan"), float("nan"), j, confidence)
    se = math.sqrt((1.0 / j + n_test / n_train) * sd**2)
    half = float(_stats.t.ppf(0.5 + confidence / 2, j - 1)) * se
    return PairedDifference(mean, sd, mean - half, mean + half, j, confidence)

def summarize(rows, by=("lam", "T"), metric: str = "val_acc") -> list[dict]:
    """Mean, sample sd and count of ``metric`` per group of rows.

    Parameters
    ----------
    rows : list of dict
    by : str or sequence of str
        Columns that define a group.
    metric : str
        The column to summarise.

    Returns
    -------
    list of dict
        ``{<by columns>..., "mean", "sd", "n"}`` per group, in order of first
        appearance; ``sd`` is ``nan`` for groups of one row.
    """
    by = (by,) if isinstance(by, str) else tuple(by)
    groups: dict[tuple, list] = {}
    for i, r in enumerate(rows):
        missing = [c for c in (*by, metric) if c not in r]
        if missing:
            raise ValueError(f"rows[{i}] has no column {missing[0]!r}; it has {sorted(r)}")
        groups.setdefault(tuple(r[c] for c in by), []).append(float(r[metric]))
    return [{**dict(zip(by, key)), "mean": float(np.mean(v)), "sd": sample_sd(v), "n": len(v)}
            for key, v in groups.items()]


# --------------------------------------------------------------------------- DataFrames
def frame(rows) -> pd.DataFrame:
    """Tidy rows (one dict per trained student) as a DataFrame, one row each.

    Parameters
    ----------
    rows : sequence of dict or DataFrame
        E.g. :func:`kdlib.experiments.train_students`' rows. Columns holding models or
        histories are kept as objects.

    Returns
    -------
    pandas.DataFrame
    """
    if isinstance(rows, pd.DataFrame):
        return rows
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; nothing to tabulate")
    return pd.DataFrame.from_records(rows)


def compare(rows, *, by, metric: str, reference=None, pair_on: str = "seed",
            confidence: float = 0.95) -> pd.DataFrame:
    """One comparison table: per group of ``by``, the mean ± sd of ``metric`` over its runs,
    and its paired difference to the ``reference`` group with a confidence interval.

    Runs are paired on ``pair_on`` (the seed: same seed, same data sample), as
    :func:`paired_difference` requires; a group must have one run per value of ``pair_on``
    that the reference has.

    Parameters
    ----------
    rows : sequence of dict or DataFrame
    by : str
        The column naming a group (e.g. ``"method"``).
    metric : str
        The column compared (e.g. ``"test_acc"``, fractions).
    reference : object, optional
        The group every other is compared with (default: no differences).
    pair_on : str
    confidence : float in (0, 1)

    Returns
    -------
    pandas.DataFrame
        Indexed by group, in order of first appearance: ``n``, ``mean``, ``sd``, ``values``
        (the runs, in ``pair_on`` order) and, with a reference, ``diff``, ``low``, ``high``
        (``nan`` for the reference itself and for single pairs) and ``verdict``.
    """
    df = frame(rows)
    for name in (by, metric, pair_on):
        if name not in df.columns:
            raise ValueError(f"no column {name!r}; the columns are {list(df.columns)}")
    groups = list(dict.fromkeys(df[by]))
    if reference is not None and reference not in groups:
        raise ValueError(f"reference={reference!r} is not a group of {by!r}; the groups are {groups}")
    runs = {g: df[df[by] == g].sort_values(pair_on) for g in groups}
    table = pd.DataFrame(index=pd.Index(groups, name=by))
    table["n"] = [len(runs[g]) for g in groups]
    table["mean"] = [float(runs[g][metric].mean()) for g in groups]
    table["sd"] = [sample_sd(runs[g][metric]) for g in groups]
    table["values"] = [runs[g][metric].tolist() for g in groups]
    if reference is None:
        return table
    ref = runs[reference].set_index(pair_on)[metric]
    diffs = {}
    for g in groups:
        if g == reference:
            continue
        mine = runs[g].set_index(pair_on)[metric]
        if not set(ref.index) <= set(mine.index):
            lacking = sorted(set(ref.index) - set(mine.index))
            raise ValueError(f"group {g!r} has no run for {pair_on}={lacking} that the reference "
                             f"{reference!r} has; pair every run")
        diffs[g] = paired_difference(mine[ref.index].to_numpy(), ref.to_numpy(), confidence=confidence)
    nan = float("nan")
    table["diff"] = [diffs[g].mean if g in diffs else nan for g in groups]
    table["low"] = [diffs[g].low if g in diffs else nan for g in groups]
    table["high"] = [diffs[g].high if g in diffs else nan for g in groups]
    table["verdict"] = [diffs[g].verdict if g in diffs else "reference" for g in groups]
    table.attrs.update(metric=metric, reference=reference, confidence=confidence, pair_on=pair_on)
    return table


def styled(table: pd.DataFrame, *, scale: float = 100.0, digits: int = 2, unit: str = " %"):
    """A comparison table of :func:`compare` formatted for a notebook (its HTML).

    Means and sds are shown as ``"84.89 ± 0.18 %"``, differences and their interval in
    points; the ``values`` column is left out.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`compare`.
    scale : float
        Multiplies every number (100: fractions → percent and points).
    digits : int
    unit : str

    Returns
    -------
    pandas.io.formats.style.Styler
    """
    out = pd.DataFrame(index=table.index)
    out["n"] = table["n"]
    def pct(m, sd):
        sd_text = "" if math.isnan(sd) else f" ± {scale * sd:.{digits}f}"
        return f"{scale * m:.{digits}f}{sd_text}{unit}"

    out[table.attrs.get("metric", "mean")] = [pct(m, sd) for m, sd in zip(table["mean"], table["sd"])]
    if "diff" in table.columns:
        ref, conf = table.attrs.get("reference"), table.attrs.get("confidence", 0.95)
        out[f"− {ref} (points)"] = ["" if math.isnan(d) else f"{scale * d:+.{digits}f}"
                                   for d in table["diff"]]
        out[f"{100 * conf:g} % CI"] = ["" if math.isnan(lo) else
                                      f"{scale * lo:+.{digits}f} to {scale * hi:+.{digits}f}"
                                      for lo, hi in zip(table["low"], table["high"])]
        out["verdict"] = table["verdict"]
    return out.style


# --------------------------------------------------------------------------- CSV
def atomic_write_text(path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half-written).

    Parameters
    ----------
    path : str or Path
        Its folder is created if missing.
    text : str

    Returns
    -------
    Path
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value)
    return value


def write_csv(rows, path, *, columns=None) -> Path:
    """Write rows (dicts) to a CSV file atomically.

    Columns are ``columns`` if given, else the union of the rows' keys in
    first-seen order. ``None`` becomes an empty cell, lists/dicts JSON.

    Parameters
    ----------
    rows : list of dict
    path : str or Path
    columns : list of str, optional

    Returns
    -------
    Path
    """
    if columns is None:
        columns = []
        for r in rows:
            columns += [c for c in r if c not in columns]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({c: _cell(r.get(c)) for c in columns})
    return atomic_write_text(path, buf.getvalue())


def parse_cell(text: str, *, keep_text: bool = False):
    """One CSV cell back to Python: ``""`` → ``None``, ints, floats, ``True``/``False``, JSON.

    Parameters
    ----------
    text : str
    keep_text : bool
        Return the text unchanged (for free-text columns).

    Returns
    -------
    object
    """
    if keep_text:
        return text
    if text == "":
        return None
    if text[0] in "[{":
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    if text in ("True", "False", "true", "false"):
        return text in ("True", "true")
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def read_csv(path, *, text_columns=()) -> list[dict]:
    """Read rows written by :func:`write_csv` (numbers, booleans and JSON parsed back).

    Parameters
    ----------
    path : str or Path
    text_columns : sequence of str
        Columns kept as text (an empty cell stays ``""``).

    Returns
    -------
    list of dict
    """
    with Path(path).open(newline="", encoding="utf-8") as f:
        return [{k: parse_cell(v, keep_text=k in text_columns) for k, v in r.items()}
                for r in csv.DictReader(f)]


# ------------------------------------------------------------------ CSV with provenance; the budget map
__all__ += ["MAP_PATH", "provenance", "write_with_provenance", "read_with_provenance", "map_gains",
            "map_position"]

MAP_PATH = Path(__file__).resolve().parents[1] / "data" / "results" / "budget_map.csv"
"""Where ``make results`` writes the budget map (its provenance beside it, ``.json``)."""


def _revision(root) -> str:
    """``git rev-parse HEAD`` of ``root`` (``"unknown"`` outside a git checkout), ``+dirty``
    when tracked files differ from it."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def provenance(*, params: dict, seconds: float, root=None) -> dict:
    """What made a result file: the code revision, the parameters, the seconds, the versions, the date.

    Parameters
    ----------
    params : dict
        The parameters of the run (JSON-serialisable).
    seconds : float
        Wall time the run took.
    root : path, optional
        The git checkout whose revision is recorded (default: this repository).

    Returns
    -------
    dict
        ``revision`` (``git rev-parse HEAD``, ``+dirty`` when tracked files were changed),
        ``params``, ``seconds``, ``torch``, ``python``, ``date`` (UTC, ISO 8601).
    """
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "unknown"
    return {"revision": _revision(root or MAP_PATH.parents[2]), "params": params,
            "seconds": round(float(seconds), 1), "torch": torch_version,
            "python": platform.python_version(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}


def write_with_provenance(rows, path, provenance: dict, *, columns=None) -> Path:
    """Write ``rows`` as CSV (:func:`write_csv`) and ``provenance`` beside it as ``<path>.json``.

    Parameters
    ----------
    rows : list of dict or DataFrame
    path : str or Path
        The CSV file; the sidecar is ``path`` with the suffix ``.json``.
    provenance : dict
        From :func:`provenance`.
    columns : list of str, optional

    Returns
    -------
    Path
        The CSV file.
    """
    rows = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    path = Path(path)
    write_csv(rows, path, columns=columns)
    atomic_write_text(path.with_suffix(".json"), json.dumps(provenance, indent=1, default=str) + "\n")
    return path


def read_with_provenance(path) -> tuple[pd.DataFrame, dict]:
    """Read a CSV written by :func:`write_with_provenance` and its provenance.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    tuple
        ``(table, provenance)``: a DataFrame of the rows and the sidecar's dict.

    Raises
    ------
    FileNotFoundError
        When the CSV or its ``.json`` is missing, saying how to make them.
    """
    path = Path(path)
    side = path.with_suffix(".json")
    for p in (path, side):
        if not p.is_file():
            raise FileNotFoundError(f"no {p}; `make results` writes the budget map and its provenance")
    return frame(read_csv(path)), json.loads(side.read_text(encoding="utf-8"))


def map_gains(rows, *, reference: str = "scratch", metric: str = "test_acc",
              point=("n_train", "epochs")) -> pd.DataFrame:
    """Each method's paired gain over ``reference`` at every point of a map (:func:`compare`).

    Parameters
    ----------
    rows : list of dict or DataFrame
        One row per chosen student: the ``point`` columns, ``method``, ``seed`` and ``metric``
        (rows with a false ``chosen`` column are left out).
    reference : str
        The method every other is compared with, paired by seed at each point.
    metric : str
    point : sequence of str
        The columns that make a point of the map.

    Returns
    -------
    pandas.DataFrame
        One row per point and method other than ``reference``: the ``point`` columns,
        ``method``, ``n``, ``reference_mean``, ``mean``, ``diff``, ``low``, ``high``, ``verdict``.
    """
    df = frame(rows)
    if "chosen" in df.columns:
        df = df[df["chosen"].astype(bool)]
    point = list(point)
    out = []
    for key, g in df.groupby(point, sort=True):
        t = compare(g, by="method", metric=metric, reference=reference)
        for method, r in t.iterrows():
            if method == reference:
                continue
            out.append({**dict(zip(point, key)), "method": method, "n": int(r["n"]),
                        "reference_mean": float(t.loc[reference, "mean"]), "mean": float(r["mean"]),
                        "diff": r["diff"], "low": r["low"], "high": r["high"], "verdict": r["verdict"]})
    return pd.DataFrame(out)


_REGION = {"helped": "a region where KD helped", "hurt": "a region where KD hurt",
           "not shown": "a region where KD's gain was not shown"}


def map_position(*, epochs: int, n_train: int, path=None, method: str = "kd") -> dict:
    """Where a setting sits on the budget map: the nearest cell and ``method``'s gain there.

    Nearness is measured on the map's logarithmic axes (a ratio of epochs counts as much
    as the same ratio of images).

    Parameters
    ----------
    epochs : int >= 1
        The setting's training epochs.
    n_train : int >= 1
        Its labelled training images.
    path : str or Path, optional
        The map (default :data:`MAP_PATH`, written by ``make results``).
    method : str
        The map's method whose gain is reported (``"kd"``, ``"label smoothing"``, ...).

    Returns
    -------
    dict
        ``epochs``, ``n_train`` (the cell's), ``exact`` (the setting is a cell of the map),
        ``method``, ``diff``, ``low``, ``high`` (fractions), ``verdict``, ``n`` and ``phrase``.

    Examples
    --------
    >>> map_position(epochs=3, n_train=1000)["phrase"]  # doctest: +SKIP
    "3 epochs on 1,000 images: a region where KD's gain was not shown (+0.12 points, 95 % CI ...)"
    """
    epochs = int(epochs)
    n_train = int(n_train)
    if epochs < 1 or n_train < 1:
        raise ValueError(f"epochs={epochs!r} and n_train={n_train!r} must both be >= 1")
    table, _ = read_with_provenance(MAP_PATH if path is None else path)
    gains = map_gains(table)
    mine = gains[gains["method"] == method]
    if mine.empty:
        raise ValueError(f"method={method!r} is not on the map; it has {sorted(set(gains['method']))}")
    dist = (np.log(mine["epochs"] / epochs) ** 2 + np.log(mine["n_train"] / n_train) ** 2).to_numpy()
    cell = mine.iloc[int(np.argmin(dist))]
    exact = bool(cell["epochs"] == epochs and cell["n_train"] == n_train)
    where = f"{int(cell['epochs'])} epochs on {int(cell['n_train']):,} images"
    setting = where if exact else (f"{epochs} epochs on {n_train:,} images (nearest map cell: {where})")
    numbers = (f"{100 * cell['diff']:+.2f} points, 95 % CI {100 * cell['low']:+.2f} to "
               f"{100 * cell['high']:+.2f}")
    region = _REGION.get(cell["verdict"], f"a region where the verdict was {cell['verdict']!r}")
    if method != "kd":
        region = region.replace("KD", method)
    return {"epochs": int(cell["epochs"]), "n_train": int(cell["n_train"]), "exact": exact,
            "method": method, "diff": float(cell["diff"]), "low": float(cell["low"]),
            "high": float(cell["high"]), "verdict": cell["verdict"], "n": int(cell["n"]),
            "phrase": f"{setting}: {region} ({numbers}, n={int(cell['n'])})"}


def say_map_position(*, epochs: int, n_train: int, student: str | None = None, path=None):
    """The sentence with which a notebook places its setting on the budget map (notebook 11).

    Parameters
    ----------
    epochs, n_train : int
        The notebook's training epochs and labelled images per student.
    student : str, optional
        The notebook's student when it is not the map's ``mlp([784, 128, 10])``: the sentence
        then says that the map gives the regime, not a prediction for that student.
    path : str or Path, optional
        The map (default :data:`MAP_PATH`).

    Returns
    -------
    IPython.display.Markdown
        "**On the budget map** … 10 epochs on 2,000 images (nearest map cell: …): a region
        where KD helped (…)", or what to run when the map is missing.
    """
    from IPython.display import Markdown

    try:
        pos = map_position(epochs=epochs, n_train=n_train, path=path)
    except FileNotFoundError:
        return Markdown("The budget map is not in `data/results/` here: `make results` computes it "
                        "(notebook 11 reads it).")
    text = (f"**On the budget map** (notebook 11: KD's gain over a hard-label `mlp([784, 128, 10])`, "
            f"every method tuned on validation, {pos['n']} seeds): {pos['phrase']}.")
    if student:
        text += (f" The map's student is that MLP, not {student}: read the cell as the regime this "
                 "notebook works in, not as a prediction of its result.")
    return Markdown(text)
