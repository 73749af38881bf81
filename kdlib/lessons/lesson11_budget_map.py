"""Lesson module of ``notebooks/11_budget_map.ipynb``: when does distillation pay?

Holds what only notebook 11 uses: its settings (:class:`Settings`, made by :func:`check_params`);
the map's grid (:data:`MAP_GRID`, :data:`QUICK_GRID`) and its teachers (:data:`TEACHERS`, the
strong one made by notebook 01 with :data:`STRONG_TEACHER`'s parameters, :func:`make_teachers`);
the command that computes the shipped map (``python -m kdlib.lessons.lesson11_budget_map``,
:func:`make_map`, what ``make results`` runs) on the core engine
(:func:`kdlib.experiments.budget_map`); the live slice and its agreement with the shipped map
(:func:`live_slice`, :func:`agreement`); the figures (:func:`map_heatmap`, :func:`gain_lines`);
the ``say_*`` sentences that follow the run; and the exercises (:data:`EXERCISES`, graded by
:func:`check_exercise`, a :class:`kdlib._checks.Verdict`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from IPython.display import Markdown
from matplotlib.figure import Figure

from kdlib import data as kdata
from kdlib import experiments, models, plots, results, runs
from kdlib._checks import (
    QUICK_RUN,
    Bool,
    Each,
    Int,
    Param,
    Str,
    exercise_checker,
    settings_checker,
    settings_class,
)

# ------------------------------------------------------------------ settings
MAP_GRID = experiments.BudgetGrid(n_trains=(1000, 5000, 20000, 55000), epochs=(3, 10, 30), seeds=5,
                                  lrs=(1e-2, 3e-2), kd=((0.5, 4.0), (0.1, 2.0)), eps=(0.1,),
                                  extra_teachers_at=(55000,))
"""The shipped map: 4 data sizes × 3 budgets; per point 5 seeds × 2 learning rates for every
method, 2 (λ, T) per teacher, 1 ε; the strong teacher in the full-data row (55,000 images)."""

QUICK_GRID = replace(MAP_GRID, n_trains=(200, 1000), epochs=(1, 2), seeds=2, lrs=(3e-2,),
                     kd=((0.5, 4.0),), extra_teachers_at=(1000,))
"""``--quick``: a map of seconds (the slow test's), not one to read."""

STRONG_TEACHER = {"checkpoint": "teacher_strong.pt", "epochs": 40, "augment": True}
"""Notebook 01's parameters that make the strong teacher (all else its defaults)."""

TEACHERS = {"kd": "teacher.pt", "kd (strong teacher)": STRONG_TEACHER["checkpoint"]}
"""The map's KD methods and the checkpoint (in the data folder) each distils."""

PRIMARY = {"n_train": 55000, "epochs": 10, "method": "kd"}
"""The declared primary comparison: KD from the default teacher − hard labels, test accuracy,
paired by seed, with all the labels at 10 epochs. It was declared while the map's 30-epoch
full-data point was still being computed, and it stays: a primary picked after reading the map
would not be a primary (that point is read as exploratory)."""

PARAMS = {
    "n_train": Param(Int(100, 55000), "Labelled images of the live slice (a row of the map)."),
    "epochs": Param(Each(Int(1, 100), min_len=1, example="[3, 10]"),
        "The live slice's budgets (epochs of training).", "list of int"),
    "seeds": Param(Int(2, 10), "Seeds of the live slice (seed ``s`` draws the same images as the map's)."),
    "strong": Param(Bool(), "Distil the strong teacher in the live slice too."),
    "map_path": Param(Str("a path, or '' for the shipped map"),
        'The shipped map\'s CSV; ``""`` means ``data/results/budget_map.csv``.'),
    "quick": QUICK_RUN,
}
"""Notebook 11's parameters: name → :class:`kdlib._checks.Param` (constraint and meaning)."""

QUICK = {"n_train": 200, "epochs": [1, 2], "seeds": 2}
"""What ``quick=True`` uses for the live slice (a smoke run of seconds)."""


@settings_class(PARAMS)
class Settings:
    """Notebook 11's parameters, validated, with ``quick`` applied (made by :func:`check_params`)."""

    @property
    def path(self) -> Path:
        """The shipped map's CSV file."""
        return Path(self.map_path) if self.map_path else results.MAP_PATH

    @property
    def grid(self) -> experiments.BudgetGrid:
        """The live slice's grid: the map's candidates at this row and these budgets."""
        base = QUICK_GRID if self.quick else MAP_GRID
        return replace(base, n_trains=(self.n_train,), epochs=tuple(self.epochs), seeds=self.seeds)


check_params = settings_checker(Settings, PARAMS, quick=QUICK)


# ------------------------------------------------------------------ teachers and the map
def make_teachers(*, force: bool = False, executed_dir=None) -> list:
    """Run notebook 01 for the strong teacher unless it exists (what ``make teachers`` adds).

    Parameters
    ----------
    force : bool
        Rerun even when the checkpoint exists.
    executed_dir : path, optional
        Keep the executed notebook there as ``teacher_strong.ipynb``.

    Returns
    -------
    list of pathlib.Path
        The checkpoints written (empty when nothing was to do).
    """
    path = kdata.data_dir() / STRONG_TEACHER["checkpoint"]
    if path.is_file() and not force:
        return []
    params = {**STRONG_TEACHER, "checkpoint": str(path)}
    keep = executed_dir is not None
    if keep:
        Path(executed_dir).mkdir(parents=True, exist_ok=True)
    executed = Path(executed_dir) / f"{path.stem}.ipynb" if keep else kdata.data_dir() / f".{path.stem}.ipynb"
    print(f"{path.name}: running notebook 01 with {params} (minutes) ...", flush=True)
    runs.execute_notebook(kdata.REPO_ROOT / "notebooks" / "01_teacher.ipynb", executed, params)
    if not keep:
        executed.unlink(missing_ok=True)
    return [path]


def load_pool():
    """The map's data: all 55,000 training images (the seeds' samples are drawn from them),
    the 5,000 validation images (which choose) and the 10,000 test images (which report).

    Returns
    -------
    kdlib.data.Splits
    """
    return kdata.load("fashion-mnist", seed=0)


def teacher_logits(pool, names=None, *, rows=None) -> dict:
    """KD method name → its teacher's logits on ``pool.train`` (:data:`TEACHERS`).

    Parameters
    ----------
    pool : kdlib.data.Splits
    names : sequence of str, optional
        Keys of :data:`TEACHERS` (default: all).
    rows : sequence of int, optional
        Compute the logits of these rows of ``pool.train`` only (the others stay 0): enough
        for students that see only these rows, and much cheaper than all 55,000.

    Returns
    -------
    dict
        Name → a ``(len(pool.train), classes)`` tensor.
    """
    out = {}
    idx = None if rows is None else torch.as_tensor(sorted(set(rows)), dtype=torch.long)
    for name in (list(TEACHERS) if names is None else names):
        path = kdata.data_dir() / TEACHERS[name]
        if not path.is_file():
            raise FileNotFoundError(f"no teacher {path} for {name!r}; run `make teachers`")
        teacher = models.load(path)
        if idx is None:
            out[name] = models.predict(teacher, pool.train.x)
        else:
            full = torch.zeros(len(pool.train.y), pool.n_classes)
            full[idx] = models.predict(teacher, pool.train.x[idx])
            out[name] = full
    return out


def slice_rows(settings: Settings, n_pool: int = 55000) -> list[int]:
    """The pool rows the live slice's students see (every seed's sample).

    Parameters
    ----------
    settings : Settings
    n_pool : int

    Returns
    -------
    list of int
    """
    return sorted({r for sample in experiments.sample_rows(n_pool, settings.n_train, settings.seeds)
                   for r in sample})


def teacher_accuracies(names=None) -> dict:
    """KD method name → its teacher's test accuracy, as its checkpoint records it.

    Parameters
    ----------
    names : sequence of str, optional

    Returns
    -------
    dict
        Only the teachers whose checkpoint exists.
    """
    paths = {n: kdata.data_dir() / TEACHERS[n] for n in (list(TEACHERS) if names is None else names)}
    return {n: float(models.load_checkpoint(p)["meta"]["test_accuracy"]) for n, p in paths.items()
            if p.is_file()}


def point_cost(grid: experiments.BudgetGrid, n_train: int, epochs: int) -> int:
    """A point's training work: students × images × epochs (what its seconds grow with).

    Parameters
    ----------
    grid : kdlib.experiments.BudgetGrid
    n_train, epochs : int

    Returns
    -------
    int
    """
    teachers = len(TEACHERS) if grid.extra_teachers_at is None or n_train in grid.extra_teachers_at else 1
    return len(grid.candidates(list(TEACHERS)[:teachers])) * grid.seeds * n_train * epochs


def shards(grid: experiments.BudgetGrid, jobs: int, *, points=None) -> list[list[tuple]]:
    """Share the map's points among ``jobs`` workers, balanced by :func:`point_cost` (the
    costliest point first, each to the least loaded worker).

    Parameters
    ----------
    grid : kdlib.experiments.BudgetGrid
    jobs : int
    points : sequence of (n_train, epochs), optional
        Default: every point of ``grid``.

    Returns
    -------
    list of list of (n_train, epochs)
        The points of each worker, cheapest first (empty workers dropped).
    """
    points = [(n, e) for n in grid.n_trains for e in grid.epochs] if points is None else list(points)
    load, out = [0] * jobs, [[] for _ in range(jobs)]
    for p in sorted(points, key=lambda p: -point_cost(grid, *p)):
        k = int(np.argmin(load))
        out[k].append(p)
        load[k] += point_cost(grid, *p)
    return [o[::-1] for o in out if o]


def _point_file(folder: Path, grid: experiments.BudgetGrid, n_train: int, epochs: int) -> Path:
    """Where one finished point's rows are kept (named by the grid, so another grid never reuses it)."""
    key = hashlib.sha256(json.dumps(asdict(grid), sort_keys=True).encode()).hexdigest()[:10]
    return folder / f"{key}_{n_train}x{epochs}.csv"


def _run_shard(grid: experiments.BudgetGrid, points, threads: int, folder: Path) -> float:
    """One worker of :func:`make_map`: its own data and teacher logits, then its points, each
    written to ``folder`` as soon as it is done; returns the seconds its points took."""
    torch.set_num_threads(threads)
    pool = load_pool()
    extra = grid.extra_teachers_at is None or any(n in grid.extra_teachers_at for n, _ in points)
    logits = teacher_logits(pool, list(TEACHERS) if extra else list(TEACHERS)[:1])
    total = 0.0
    for n, e in points:
        t0 = time.perf_counter()
        rows = experiments.budget_map(pool, logits, replace(grid, n_trains=(n,), epochs=(e,)), progress=False)
        seconds = time.perf_counter() - t0
        total += seconds
        results.write_csv([{**r, "point_seconds": round(seconds, 1)} for r in rows],
                          _point_file(folder, grid, n, e))
        print(f"{n:>6,} images x {e:>3} epochs: {seconds:6.1f} s", flush=True)
    return total


def _seed_points(out: Path, grid: experiments.BudgetGrid, folder: Path) -> None:
    """Split a partial map already at ``out`` (written with ``partial=True`` for this very grid)
    back into point files, so that ``make results`` resumes from a shipped partial map."""
    side = out.with_suffix(".json")
    if not (out.is_file() and side.is_file()):
        return
    prov = json.loads(side.read_text(encoding="utf-8"))
    if prov.get("params", {}).get("complete", True) or prov["params"].get("grid") != json.loads(
            json.dumps(asdict(grid))):
        return
    table = results.read_csv(out, text_columns=("method",))
    seconds = prov["params"].get("point_seconds", {})
    for (n, e) in {(r["n_train"], r["epochs"]) for r in table}:
        path = _point_file(folder, grid, n, e)
        if not path.is_file():
            results.write_csv([{**r, "point_seconds": seconds.get(f"{n}x{e}")} for r in table
                               if (r["n_train"], r["epochs"]) == (n, e)], path)


def make_map(out=None, *, quick: bool = False, jobs: int = 2, partial: bool = False) -> Path:
    """Compute the budget map and write it with its provenance (``make results``).

    Each finished point is kept in ``<out>.points/`` first, so an interrupted run resumes
    where it stopped (rerun the same command); the folder is removed once the map is written.
    With ``partial=True`` nothing is trained: the finished points are written as the map, its
    provenance listing the missing ones (``complete: false``), and the folder is kept.

    Parameters
    ----------
    out : path, optional
        The CSV (default :data:`kdlib.results.MAP_PATH`); the provenance goes beside it (``.json``).
    quick : bool
        :data:`QUICK_GRID` instead of :data:`MAP_GRID`.
    jobs : int
        Worker processes of one torch thread each, the points shared out by :func:`shards`
        (1: this process, its own threads).
    partial : bool
        Write the finished points only (see above).

    Returns
    -------
    pathlib.Path
        The CSV written.
    """
    t0 = time.perf_counter()
    grid = QUICK_GRID if quick else MAP_GRID
    out = Path(out or results.MAP_PATH)
    folder = out.with_name(out.name + ".points")
    folder.mkdir(parents=True, exist_ok=True)
    _seed_points(out, grid, folder)
    points = [(n, e) for n in grid.n_trains for e in grid.epochs]
    left = [p for p in points if not _point_file(folder, grid, *p).is_file()]
    if len(left) < len(points):
        print(f"resuming: {len(points) - len(left)} of {len(points)} points already done in {folder}")
    work = shards(grid, jobs, points=left) if left and not partial else []
    threads = torch.get_num_threads() if len(work) <= 1 else 1
    if len(work) == 1:
        _run_shard(grid, work[0], threads, folder)
    elif work:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(len(work), mp_context=ctx) as ex:
            list(ex.map(_run_shard, [grid] * len(work), work, [threads] * len(work), [folder] * len(work)))
    done = [p for p in points if _point_file(folder, grid, *p).is_file()]
    if not done:
        raise RuntimeError(f"no finished point in {folder}: nothing to write")
    rows = [r for p in done
            for r in results.read_csv(_point_file(folder, grid, *p), text_columns=("method",))]
    point_seconds = {(r["n_train"], r["epochs"]): r.pop("point_seconds") for r in rows}
    seconds = time.perf_counter() - t0
    params = {"grid": asdict(grid), "teachers": TEACHERS, "teacher_test_acc": teacher_accuracies(),
              "pool": {"train": 55000, "val": 5000, "test": 10000}, "jobs": max(1, len(work)),
              "threads_per_job": threads, "quick": quick,
              "point_seconds": {f"{n}x{e}": s for (n, e), s in point_seconds.items()},
              "resumed": len(left) < len(points), "complete": len(done) == len(points),
              "missing_points": [f"{n}x{e}" for n, e in points if (n, e) not in done]}
    path = results.write_with_provenance(rows, out, results.provenance(params=params, seconds=seconds))
    if len(done) == len(points):
        shutil.rmtree(folder, ignore_errors=True)
    print(f"budget map: {len(rows)} students in {seconds:.0f} s ({seconds / 60:.1f} min) -> {path}")
    return path


def main(argv=None) -> int:
    """``python -m kdlib.lessons.lesson11_budget_map [--out CSV] [--quick]``.

    Parameters
    ----------
    argv : list of str, optional

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(description="Compute notebook 11's budget map (make results).")
    parser.add_argument("--out", default=None, help="the CSV (default data/results/budget_map.csv)")
    parser.add_argument("--quick", action="store_true", help="a tiny grid of seconds (tests)")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--partial", action="store_true",
                        help="train nothing: write the finished points (the provenance lists the rest)")
    args = parser.parse_args(argv)
    make_map(args.out, quick=args.quick, jobs=args.jobs, partial=args.partial)
    return 0


# ------------------------------------------------------------------ reading the map
def load_map(settings: Settings):
    """The shipped map's rows, its gains (:func:`kdlib.results.map_gains`) and provenance.

    Parameters
    ----------
    settings : Settings

    Returns
    -------
    tuple
        ``(rows, gains, provenance)``.
    """
    rows, prov = results.read_with_provenance(settings.path)
    return rows, results.map_gains(rows), prov


def provenance_table(prov: dict) -> pd.DataFrame:
    """The provenance as a two-column table (what made the shipped map).

    Parameters
    ----------
    prov : dict

    Returns
    -------
    pandas.DataFrame
    """
    grid = prov["params"]["grid"]
    items = {"code revision": prov["revision"], "date (UTC)": prov["date"],
             "seconds": f"{prov['seconds']:.0f}", "torch": prov["torch"],
             "data sizes": grid["n_trains"], "epochs": grid["epochs"], "seeds": grid["seeds"],
             "learning rates": grid["lrs"], "KD (λ, T)": grid["kd"], "label smoothing ε": grid["eps"],
             "teachers (test accuracy)": {k: round(v, 4)
                                          for k, v in prov["params"]["teacher_test_acc"].items()},
             "complete": prov["params"].get("complete", True),
             "missing points (images x epochs)": prov["params"].get("missing_points", [])}
    return pd.DataFrame({"value": [str(v) for v in items.values()]}, index=pd.Index(list(items), name="what"))


def gain_grid(gains: pd.DataFrame, method: str) -> pd.DataFrame:
    """One method's gains as a grid: rows ``n_train``, columns ``epochs``, cells the row of
    :func:`kdlib.results.map_gains`' ``diff``, with ``low``/``high``/``verdict`` beside it.

    Parameters
    ----------
    gains : pandas.DataFrame
    method : str

    Returns
    -------
    pandas.DataFrame
        Indexed by ``n_train``, one column per epoch budget, cells
        ``"+0.52 (+0.10, +0.94) helped"``.
    """
    g = gains[gains["method"] == method]
    text = g.assign(cell=[f"{100 * d:+.2f} ({100 * lo:+.2f}, {100 * hi:+.2f}) {v}"
                          for d, lo, hi, v in zip(g["diff"], g["low"], g["high"], g["verdict"])])
    return text.pivot(index="n_train", columns="epochs", values="cell")


def map_heatmap(gains: pd.DataFrame, method: str, *, title: str = "") -> Figure:
    """A heatmap of ``method``'s gain (points) over data size × epochs; "not shown" cells hatched.

    Parameters
    ----------
    gains : pandas.DataFrame
        :func:`kdlib.results.map_gains`.
    method : str
    title : str

    Returns
    -------
    Figure
    """
    g = gains[gains["method"] == method]
    values = g.pivot(index="n_train", columns="epochs", values="diff") * 100
    verdict = g.pivot(index="n_train", columns="epochs", values="verdict")
    text = values.map(lambda v: f"{v:+.2f}") + verdict.map(lambda v: "" if v != "not shown" else "\nn.s.")
    return plots.heatmap(values, text=text, marked=verdict == "not shown",
                         xlabel="epochs", ylabel="labelled training images",
                         cbar_label=f"{method} − scratch (points)",
                         title=title or f"{method}: gain over the hard-label student (hatched: not shown)")


def gain_lines(gains: pd.DataFrame, method: str) -> Figure:
    """``method``'s gain against epochs, one line per data size, with its 95 % interval as a band.

    Parameters
    ----------
    gains : pandas.DataFrame
    method : str

    Returns
    -------
    Figure
    """
    fig, axes = plots.new_figure(6.4, 3.6)
    ax = axes[0, 0]
    for i, (n, g) in enumerate(gains[gains["method"] == method].groupby("n_train")):
        g = g.sort_values("epochs")
        ax.plot(g["epochs"], 100 * g["diff"], "o-", color=f"C{i}", label=f"{n:,} images")
        ax.fill_between(g["epochs"], 100 * g["low"], 100 * g["high"], color=f"C{i}", alpha=0.15)
    ax.axhline(0, color="0.4", lw=1, ls="--")
    ax.set_xscale("log")
    epochs = sorted(set(gains["epochs"]))
    ax.set_xticks(epochs, [str(e) for e in epochs])
    ax.minorticks_off()
    ax.set_xlabel("epochs")
    ax.set_ylabel(f"{method} − scratch (points)")
    ax.set_title(f"{method}: gain with its 95 % interval (band), per data size", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def primary_cell(rows) -> dict:
    """The primary comparison's point, :data:`PRIMARY`, or the map's largest point when the map
    lacks it (a quick map): ``{"n_train", "epochs"}``.

    Parameters
    ----------
    rows : DataFrame
        The map's rows.

    Returns
    -------
    dict
    """
    df = results.frame(rows)
    points = set(zip(df["n_train"], df["epochs"]))
    if (PRIMARY["n_train"], PRIMARY["epochs"]) in points:
        return {"n_train": PRIMARY["n_train"], "epochs": PRIMARY["epochs"]}
    n, e = max(points)
    return {"n_train": int(n), "epochs": int(e)}


def point_table(rows, *, n_train: int, epochs: int) -> pd.DataFrame:
    """Test accuracy of every method's chosen students at one point, paired against scratch.

    Parameters
    ----------
    rows : DataFrame
        The map's rows.
    n_train, epochs : int

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.results.compare`'s table.
    """
    df = results.frame(rows)
    at = df[(df["n_train"] == n_train) & (df["epochs"] == epochs) & df["chosen"].astype(bool)]
    if at.empty:
        raise ValueError(f"the map has no point {n_train} images × {epochs} epochs")
    return results.compare(at, by="method", metric="test_acc", reference="scratch")


def strong_vs_default(rows, *, n_train: int = PRIMARY["n_train"]) -> pd.DataFrame:
    """At ``n_train`` images, per budget: the strong teacher's KD − the default teacher's KD
    (test accuracy, paired by seed).

    Parameters
    ----------
    rows : DataFrame
    n_train : int

    Returns
    -------
    pandas.DataFrame
        Indexed by ``epochs``: ``default``, ``strong`` (mean test accuracy), ``diff``, ``low``,
        ``high``, ``verdict``.
    """
    df = results.frame(rows)
    df = df[(df["n_train"] == n_train) & df["chosen"].astype(bool)]
    strong = [m for m in TEACHERS if m != "kd"]
    out = []
    for e, g in df.groupby("epochs"):
        t = results.compare(g[g["method"].isin(["kd", *strong])], by="method", metric="test_acc",
                            reference="kd")
        for m in strong:
            if m in t.index:
                out.append({"epochs": e, "default": t.loc["kd", "mean"], "strong": t.loc[m, "mean"],
                            "diff": t.loc[m, "diff"], "low": t.loc[m, "low"], "high": t.loc[m, "high"],
                            "verdict": t.loc[m, "verdict"]})
    return pd.DataFrame(out).set_index("epochs") if out else pd.DataFrame()


# ------------------------------------------------------------------ the live slice
def live_slice(settings: Settings, pool, logits: dict, *, progress: bool = True) -> pd.DataFrame:
    """Recompute one row of the map (``settings.n_train`` images at ``settings.epochs``).

    Parameters
    ----------
    settings : Settings
    pool : kdlib.data.Splits
        :func:`load_pool`.
    logits : dict
        :func:`teacher_logits`.
    progress : bool

    Returns
    -------
    pandas.DataFrame
        :func:`kdlib.experiments.budget_point`'s rows of every budget.
    """
    names = list(logits) if settings.strong else list(logits)[:1]
    return results.frame(experiments.budget_map(pool, {k: logits[k] for k in names}, settings.grid,
                                                progress=progress))


def agreement(shipped: pd.DataFrame, live: pd.DataFrame) -> pd.DataFrame:
    """Each live cell against the shipped one: does the live gain lie in the shipped interval?

    Parameters
    ----------
    shipped, live : pandas.DataFrame
        :func:`kdlib.results.map_gains` of the shipped map and of the live slice.

    Returns
    -------
    pandas.DataFrame
        One row per live cell found on the shipped map: ``n_train``, ``epochs``, ``method``,
        ``live``, ``shipped``, ``shipped_low``, ``shipped_high``, ``live_verdict``,
        ``shipped_verdict``, ``within`` (the live gain inside the shipped interval).
    """
    keys = ["n_train", "epochs", "method"]
    m = live.merge(shipped, on=keys, suffixes=("_live", "_shipped"))
    return pd.DataFrame({**{k: m[k] for k in keys}, "live": m["diff_live"], "shipped": m["diff_shipped"],
                         "shipped_low": m["low_shipped"], "shipped_high": m["high_shipped"],
                         "live_verdict": m["verdict_live"], "shipped_verdict": m["verdict_shipped"],
                         "within": (m["low_shipped"] - 1e-9 <= m["diff_live"])
                         & (m["diff_live"] <= m["high_shipped"] + 1e-9)})


def positions(settings, *, path=None) -> pd.DataFrame:
    """Where some settings sit on the map (:func:`kdlib.results.map_position`).

    Parameters
    ----------
    settings : sequence of (label, epochs, n_train)
    path : path, optional
        The map (default: the shipped one).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``setting``: ``cell`` (the map's nearest), ``verdict`` and ``phrase``.
    """
    out = []
    for label, epochs, n_train in settings:
        p = results.map_position(epochs=epochs, n_train=n_train, path=path)
        out.append({"setting": label, "cell": f"{p['epochs']} epochs × {p['n_train']:,} images",
                    "verdict": p["verdict"], "phrase": p["phrase"]})
    return pd.DataFrame(out).set_index("setting")


# ------------------------------------------------------------------ prose that follows the run
def _ep(e) -> str:
    return f"{int(e)} epoch{'s' * (int(e) != 1)}"


def _cells(g: pd.DataFrame) -> str:
    return ", ".join(f"{_ep(r.epochs)} on {int(r.n_train):,}" for r in g.itertuples()) or "none"


def _pd(row) -> results.PairedDifference:
    return results.PairedDifference(float(row["diff"]), float("nan"), float(row["low"]), float(row["high"]),
                                    int(row["n"]), 0.95)


def say_primary(gains: pd.DataFrame, primary: dict = PRIMARY) -> Markdown:
    """The primary comparison's result (its verdict from its interval).

    Parameters
    ----------
    gains : pandas.DataFrame
        :func:`kdlib.results.map_gains` of the shipped map.
    primary : dict
        ``n_train``, ``epochs``, ``method``.

    Returns
    -------
    IPython.display.Markdown
    """
    g = gains[(gains["n_train"] == primary["n_train"]) & (gains["epochs"] == primary["epochs"])
              & (gains["method"] == primary["method"])]
    if g.empty:
        return Markdown(f"**Primary comparison**: the map has no cell {primary['epochs']} epochs on "
                        f"{primary['n_train']:,} images yet (a quick or partial map: its provenance above "
                        "lists the missing points, and `make results` computes them); nothing to report. "
                        "The dot plot above shows the map's largest point instead, exploratory.")
    r = g.iloc[0]
    return Markdown(f"**Primary comparison**, {primary['epochs']} epochs on {primary['n_train']:,} images, "
                    f"test accuracy: hard labels {100 * r['reference_mean']:.2f} %, KD "
                    f"{100 * r['mean']:.2f} %; {_pd(r).describe('distillation')}.")


def say_map(gains: pd.DataFrame) -> Markdown:
    """Where each method helped, hurt or was not shown on the map (exploratory), with the
    multiplicity note.

    Parameters
    ----------
    gains : pandas.DataFrame

    Returns
    -------
    IPython.display.Markdown
    """
    lines = []
    for method, g in gains.groupby("method", sort=False):
        parts = []
        for v in ("helped", "hurt", "not shown"):
            which = g[g["verdict"] == v]
            where = f" ({_cells(which)})" if v != "not shown" and len(which) else ""
            parts.append(f"{v} in {len(which)} of {len(g)} cells{where}")
        best = g.loc[g["diff"].idxmax()]
        lines.append(f"* **{method}**: {'; '.join(parts)}. Its largest mean gain, "
                     f"{100 * best['diff']:+.2f} points, was at {_ep(best['epochs'])} on "
                     f"{int(best['n_train']):,} images.")
    k = len(gains)
    head = "What we saw (exploratory; every cell on the map is counted, the primary one too):\n\n"
    return Markdown(head + "\n".join(lines)
                    + f"\n\n*Multiplicity*: the map prints {k} intervals; if no method made any "
                    f"difference anywhere, about {0.05 * k:.1f} of them would still exclude 0 by "
                    "chance (5 % each). Read a single \"helped\" or \"hurt\" cell as a hint; a "
                    "pattern along a row or a column is what the map shows.")


def say_trend(gains: pd.DataFrame, method: str = "kd") -> Markdown:
    """How ``method``'s gain moves with epochs at each data size (exploratory).

    Parameters
    ----------
    gains : pandas.DataFrame
    method : str

    Returns
    -------
    IPython.display.Markdown
    """
    parts = []
    for n, g in gains[gains["method"] == method].groupby("n_train"):
        g = g.sort_values("epochs")
        first, last = g.iloc[0], g.iloc[-1]
        parts.append(f"{n:,} images: {100 * first['diff']:+.2f} points at {_ep(first['epochs'])} "
                     f"({first['verdict']}) → {100 * last['diff']:+.2f} at {_ep(last['epochs'])} "
                     f"({last['verdict']})")
    return Markdown(f"What we saw (exploratory): {method}'s gain from the shortest to the longest "
                    "budget, per data size: " + "; ".join(parts) + ".")


def say_strong(table: pd.DataFrame, accs: dict) -> Markdown:
    """What the strong teacher bought over the default one at full data (exploratory).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`strong_vs_default`.
    accs : dict
        :func:`teacher_accuracies`.

    Returns
    -------
    IPython.display.Markdown
    """
    if table.empty:
        return Markdown("The map has no strong-teacher students at this data size.")
    names = list(TEACHERS)
    parts = [f"{e} epochs: {100 * r['diff']:+.2f} points (95 % CI {100 * r['low']:+.2f} to "
             f"{100 * r['high']:+.2f}, {r['verdict']})" for e, r in table.iterrows()]
    return Markdown(f"What we saw (exploratory): the strong teacher ({100 * accs[names[1]]:.2f} % on the "
                    f"test set, against {100 * accs[names[0]]:.2f} % for the default one) changed "
                    "the distilled student's test accuracy, strong − default, by " + "; ".join(parts)
                    + ".")


def say_agreement(table: pd.DataFrame, live_cells: int) -> Markdown:
    """Whether the live slice agrees with the shipped map within its intervals.

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`agreement`.
    live_cells : int
        Cells the live slice computed (some may be missing from the shipped map).

    Returns
    -------
    IPython.display.Markdown
    """
    if table.empty:
        return Markdown(f"**Live slice**: none of its {live_cells} cells is on the shipped map (a quick "
                        "run or other parameters): no agreement to check.")
    inside = int(table["within"].sum())
    same = int((table["live_verdict"] == table["shipped_verdict"]).sum())
    verdict = "agrees with" if inside == len(table) else "departs from"
    missing = ("" if len(table) == live_cells else
               f" ({live_cells - len(table)} live cells are not on the map)")
    return Markdown(f"**Live slice {verdict} the shipped map**: {inside} of {len(table)} live gains lie "
                    f"inside the shipped 95 % intervals{missing}; {same} of {len(table)} verdicts are the "
                    "same. A live gain outside its interval means another machine, other seeds, or a "
                    "change in the code since the map was made (its revision is printed above).")


def say_summary(gains: pd.DataFrame, strong: pd.DataFrame, agree: pd.DataFrame) -> Markdown:
    """The three-line summary, from the map and the live slice.

    Parameters
    ----------
    gains : pandas.DataFrame
    strong : pandas.DataFrame
        :func:`strong_vs_default`.
    agree : pandas.DataFrame
        :func:`agreement`.

    Returns
    -------
    IPython.display.Markdown
    """
    kd = gains[gains["method"] == "kd"]
    ls = gains[gains["method"] == "label smoothing"]
    count = lambda g, v: int((g["verdict"] == v).sum())  # noqa: E731
    first = (f"* **The map**: KD from the default teacher helped in {count(kd, 'helped')}, hurt in "
             f"{count(kd, 'hurt')} and was not shown in {count(kd, 'not shown')} of {len(kd)} cells; "
             f"label smoothing helped in {count(ls, 'helped')}, hurt in {count(ls, 'hurt')}.")
    if strong.empty:
        second = "* **A better teacher**: not measured in this map."
    else:
        r = strong.iloc[-1]
        second = (f"* **A better teacher** at full data and {strong.index[-1]} epochs: strong − default "
                  f"{100 * r['diff']:+.2f} points ({r['verdict']}).")
    third = ("* **The live slice** had no cell on the map." if agree.empty else
             f"* **The live slice**: {int(agree['within'].sum())} of {len(agree)} gains inside the shipped "
             "intervals.")
    return Markdown("\n".join([first, second, third]))


# ------------------------------------------------------------------ exercises
def _ex1(answer, *, gains=None):
    if gains is None:
        raise ValueError("exercise 1 needs the map: check_exercise(1, answer, gains=gains)")
    kd = gains[(gains["method"] == "kd") & (gains["epochs"] == gains["epochs"].max())]
    want = int(kd.loc[kd["diff"].idxmax(), "n_train"])
    try:
        got = int(answer)
    except (TypeError, ValueError):
        return False, "answer with a number of images, e.g. 5000"
    if got != want:
        return False, "read the longest budget's column of the KD heatmap: which row has the largest number?"
    return True, f"{want:,} images: read its interval too before calling it the best"


def _ex2(answer, *, gains=None):
    p = results.map_position(epochs=5, n_train=2000)
    text = str(answer).strip().lower() if answer is not None else ""
    if text not in ("helped", "hurt", "not shown"):
        return False, "answer 'helped', 'hurt' or 'not shown'"
    if text != p["verdict"]:
        return False, "call kdlib.results.map_position(epochs=5, n_train=2000) and read its verdict"
    return True, p["phrase"]


def _ex3(answer, *, gains=None):
    text = str(answer).strip().lower() if answer is not None else ""
    if text not in ("wider", "narrower"):
        return False, "answer 'wider' or 'narrower'"
    if text != "wider":
        return False, ("with fewer seeds the t quantile grows (n − 1 degrees of freedom) and sd/√n "
                       "shrinks slower: compare the two tables' intervals")
    return True, ("wider: fewer seeds, a larger t quantile and a larger sd/√n; a cell that 'helped' "
                  "with 5 seeds may read 'not shown' with 3")


EXERCISES = {1: _ex1, 2: _ex2, 3: _ex3}
"""Exercise number → its check, ``f(answer, **evidence) -> (right, text)`` (1: the data size of
KD's largest gain at the longest budget, from the map; 2: the verdict at notebook 10's setting;
3: what fewer seeds do to the intervals)."""


check_exercise = exercise_checker(
    EXERCISES,
    answers=('1: a number of images; 2: ``"helped"``, ``"hurt"`` or ``"not shown"``; 3: '
             '``"wider"`` or ``"narrower"``.'),
    evidence={"gains": "Exercise 1: the map's gains (:func:`kdlib.results.map_gains`)."})


__all__ = ["MAP_GRID", "QUICK_GRID", "STRONG_TEACHER", "TEACHERS", "PRIMARY", "PARAMS", "QUICK", "Settings",
           "check_params", "make_teachers", "load_pool", "teacher_logits", "slice_rows", "teacher_accuracies",
           "point_cost", "shards", "make_map", "main", "load_map", "provenance_table", "primary_cell",
           "gain_grid", "map_heatmap", "gain_lines", "point_table",
           "strong_vs_default", "live_slice", "agreement", "positions", "say_primary", "say_map",
           "say_trend", "say_strong", "say_agreement", "say_summary", "EXERCISES", "check_exercise"]

if __name__ == "__main__":
    raise SystemExit(main())
