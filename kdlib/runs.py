"""Rerun a notebook over a parameter grid with papermill, on Dask, and collect its metrics.

::

    python -m kdlib.runs notebooks/05_lambda_tuning.ipynb --grid lam=0,0.5,1 --grid T=1,4 --jobs 2
    python -m kdlib.runs NOTEBOOK --grid seed=0,1,2 --scheduler tcp://HOST:8786   # a Dask cluster
    python -m kdlib.runs --plot runs/05_lambda_tuning/summary.csv --x lam --y val_acc --hue T

Inside a notebook, ``kdlib.runs.record("val_acc", acc)`` records a metric of the run.

Ours here: grid expansion, run ids, :func:`record`, the summary and the CLI; the scheduling
is Dask's. ``--scheduler`` connects to a cluster; without it, ``--jobs N`` runs N at a time
on an in-process ``LocalCluster``. Each run is one task (:func:`kdlib._execute.run_task`)
that carries the notebook and this kdlib, runs in its own process, folder and kernel on a
worker, and returns its results: the client alone writes ``DIR`` (``--out``)::

    DIR/<run-id>/notebook.ipynb   the executed notebook (partial, with the error, if it failed)
    DIR/<run-id>/metrics.json     what it recorded (and any other file it wrote to $KDLIB_RUN_DIR)
    DIR/<run-id>/status.json      ok / failed, error, parameters, seconds, worker
    DIR/<run-id>/run.log          the run process's output
    DIR/summary.csv               one row per point of the current grid

* **Run ids** come from the parameter values only (``lam=0.5__T=4``, in the order of the
  notebook's parameters cell; ``4`` and ``4.0`` share one); ``--param`` values are part of it.
* **Reruns** skip runs whose ``status.json`` says ``ok``: rerunning a command after failures,
  Ctrl-C or a lost worker redoes only the missing runs. After editing the notebook, delete DIR.
* **Failures**: an error in a cell fails the run; anything else (a kernel that did not start,
  a worker that died) is retried by Dask, then the run is reported failed with the reason
  while the others finish.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import itertools
import json
import math
import numbers
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kdlib import _execute
from kdlib._checks import Int, Str, validate_params
from kdlib._execute import RUN_DIR_ENV, execute_in_place, execute_notebook, patch_kernel_client_polling
from kdlib.results import atomic_write_text, parse_cell, read_csv, sample_sd, write_csv

__all__ = ["record", "recorded", "parse_grid_value", "run_id", "run_grid", "execute_notebook",
           "execute_in_place", "patch_kernel_client_polling", "read_summary", "write_summary",
           "plot_summary", "main"]

FIXED_COLUMNS = ("run_id", "status", "error", "seconds")
"""Summary columns that are always present (parameters follow ``run_id``)."""
_TEXT_COLUMNS = ("run_id", "status", "error")
_SUMMARY_NAME = "summary.csv"
_RECORDED: dict[str, object] = {}


# --------------------------------------------------------------------------- record


def _check_name(name, what="name"):
    if not isinstance(name, str):
        raise TypeError(f"{what} must be a string, got {name!r} ({type(name).__name__})")
    if not name.strip():
        raise ValueError(f"{what} must be a non-empty string, got {name!r}")
    return name


def _to_python_value(name, value):
    """Return ``value`` as a plain ``bool``/``int``/``float``/``str`` or raise TypeError."""
    # NumPy scalars, 0-d arrays and 0-d torch tensors all have ``ndim == 0`` and ``.item()``.
    if not isinstance(value, (bool, int, float, str)) and getattr(value, "ndim", None) == 0 \
            and callable(getattr(value, "item", None)):
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"value of {name!r} must be a number, a string or a bool (or a NumPy/torch "
                    f"scalar), got {value!r} ({type(value).__name__})")


def record(name, value):
    """Record a metric of the current run and return it.

    In a run (``$KDLIB_RUN_DIR`` set) the value goes into the run's ``metrics.json``
    (recording a name again replaces it); elsewhere it is only kept in memory
    (:func:`recorded`), so the notebook runs unchanged in Jupyter.

    Parameters
    ----------
    name : str
        Metric name; it becomes the column name in ``summary.csv``.
    value : int, float, bool, str, or a NumPy / torch scalar
        Scalars with ``.item()`` are converted to Python numbers.

    Returns
    -------
    int, float, bool or str
        The recorded (converted) value.
    """
    _check_name(name)
    value = _to_python_value(name, value)
    _RECORDED[name] = value
    if os.environ.get(RUN_DIR_ENV):
        path = Path(os.environ[RUN_DIR_ENV]) / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        _write_json(path, {**(_read_json(path) or {}), name: value})
    return value


def recorded():
    """Return a copy of the metrics recorded in this process, ``{name: value}``.

    Returns
    -------
    dict of str to int, float, bool or str
        Every :func:`record`-ed name and its last value, in first-recorded order.
    """
    return dict(_RECORDED)


def _write_json(path, obj):
    atomic_write_text(path, json.dumps(obj, indent=1) + "\n")


def _read_json(path):
    """The parsed JSON at ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- values and run ids

_UNSAFE = re.compile(r"[^A-Za-z0-9.+\-_]")
_MAX_ID = 100


@validate_params(text=Str())
def parse_grid_value(text):
    """One command-line value, read like a CSV cell (:func:`kdlib.results.parse_cell`).

    Parameters
    ----------
    text : str

    Returns
    -------
    int, float, bool or str
        ``4`` → int, ``0.5``/``1e-3``/``nan`` → float, ``true``/``false`` → bool, else the string.
    """
    value = parse_cell(text.strip())
    return value.lower() == "true" if isinstance(value, str) and value.lower() in ("true", "false") else value


def _format_value(value):
    """Text of a parameter value inside a run id; equal numbers give equal text."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


def run_id(params):
    """Return the folder name of the run with parameters ``params`` (a dict, in order).

    ``{"lam": 0.5, "T": 4}`` gives ``"lam=0.5__T=4"``; ``{}`` gives ``"default"``. If a
    character had to be replaced (anything but letters, digits and ``. + - _``), a value
    contained ``__``, or the id is longer than 100 characters, an 8-character hash of the
    exact values is appended, so different parameters never share an id.

    Parameters
    ----------
    params : dict
        Parameter name → value; floats equal to integers are written as integers (``4.0`` → ``4``).

    Returns
    -------
    str
        At most 100 characters; with a hash the readable part is cut to 90 and ``-h<8 hex>`` appended.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    if not params:
        return "default"
    texts = {k: _format_value(v) for k, v in params.items()}
    raw = "__".join(f"{k}={t}" for k, t in texts.items())
    safe = "__".join(f"{_UNSAFE.sub('-', k)}={_UNSAFE.sub('-', t)}" for k, t in texts.items())
    if safe != raw or any("__" in k or "__" in t for k, t in texts.items()) or len(safe) > _MAX_ID:
        canon = json.dumps([[k, t, type(v).__name__ if isinstance(v, str) else ""]
                            for (k, v), t in zip(params.items(), texts.values())])
        safe = f"{safe[:_MAX_ID - 10]}-h{hashlib.sha256(canon.encode()).hexdigest()[:8]}"
    return safe


# --------------------------------------------------------------------------- planning


@dataclass
class _Run:
    run_id: str
    params: dict
    folder: Path = Path()
    skipped: bool = False


def _notebook_parameters(notebook, kernel_name):
    """``papermill.inspect_notebook`` of ``notebook``, which may lack kernel metadata."""
    import nbformat  # heavy Jupyter imports only where notebooks are handled (record() stays light)
    import papermill

    try:
        nb = nbformat.read(str(notebook), as_version=4)
        nb.metadata.setdefault("kernelspec", {"name": kernel_name, "display_name": kernel_name})
        nb.metadata.kernelspec.setdefault("language", "python")  # papermill's translator needs it
        with tempfile.TemporaryDirectory() as tmp:
            nbformat.write(nb, str(Path(tmp) / "nb.ipynb"))
            return papermill.inspect_notebook(str(Path(tmp) / "nb.ipynb"))
    except Exception as err:  # nbformat / papermill raise several types for unreadable notebooks
        raise ValueError(f"notebook={str(notebook)!r} could not be inspected: {err}") from err


def _plan(notebook, grid, extra_params, kernel_name):
    """Validate the arguments; return (notebook path, ordered parameter names, list of _Run)."""
    if not isinstance(notebook, (str, os.PathLike)):
        raise TypeError(f"notebook must be a path, got {notebook!r} ({type(notebook).__name__})")
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"notebook={str(notebook)!r} does not exist (or is not a file)")
    extra_params = {} if extra_params is None else extra_params
    for arg, value in (("grid", grid), ("extra_params", extra_params)):
        if not isinstance(value, dict):
            raise TypeError(f"{arg} must be a dict, got {type(value).__name__}")
    known = _notebook_parameters(notebook, _check_name(kernel_name, "kernel_name"))
    if not known:
        raise ValueError(f"notebook={str(notebook)!r} has no 'parameters'-tagged cell, so no "
                         "parameter can be set")
    values = {}
    for source, name, vals in [("grid", *kv) for kv in grid.items()] + \
            [("extra_params", *kv) for kv in extra_params.items()]:
        _check_name(name, f"{source} parameter name")
        if name not in known:
            raise ValueError(f"{source} parameter {name!r} is not a parameter of {notebook.name}; "
                             f"its parameters are: {', '.join(known)}")
        if name in values:
            raise ValueError(f"parameter {name!r} is given twice (in grid and extra_params)")
        if source == "extra_params":
            vals = [vals]
        elif isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__"):
            raise TypeError(f"grid[{name!r}] must be a list of values, got {vals!r}")
        vals = [_to_python_value(name, v) for v in vals]
        if not vals:
            raise ValueError(f"grid[{name!r}] is empty; give at least one value")
        texts = [_format_value(v) for v in vals]
        dupes = sorted({t for t in texts if texts.count(t) > 1})
        if dupes:
            raise ValueError(f"grid[{name!r}] repeats the value(s) {', '.join(dupes)}")
        values[name] = vals
    names = [n for n in known if n in values]  # canonical order: the notebook's parameters cell
    runs, seen = [], {}
    for combo in itertools.product(*(values[n] for n in names)):
        params = dict(zip(names, combo))
        rid = run_id(params)
        if rid in seen:  # only for values that differ in type alone, e.g. 1 and True
            raise ValueError(f"parameters {params} and {seen[rid]} share the run id {rid!r}")
        seen[rid] = params
        runs.append(_Run(rid, params))
    return notebook, names, runs


# --------------------------------------------------------------------------- the sweep, on the client


def _connect(jobs, scheduler):
    """``(client, local cluster or None)``: to ``scheduler``, or to an in-process LocalCluster
    whose one worker runs ``jobs`` tasks at a time (each task's run is its own process)."""
    import cloudpickle  # heavy, like distributed: only a sweep needs them (record() stays light)
    from distributed import Client, LocalCluster

    cloudpickle.register_pickle_by_value(_execute)  # workers need no kdlib, only the requirements
    if scheduler:
        return Client(scheduler), None  # waits distributed.comm.timeouts.connect (30 s)
    cluster = LocalCluster(n_workers=1, threads_per_worker=jobs, processes=False, dashboard_address=":0")
    return Client(cluster), cluster


def _save(run, result):
    """Write what a run returned (or a failure reason) into its folder."""
    run.folder.mkdir(parents=True, exist_ok=True)
    for stale in run.folder.glob("*"):
        if stale.is_file():
            stale.unlink()
    if result.get("notebook") is not None:
        atomic_write_text(run.folder / "notebook.ipynb", result["notebook"])
    for name, b64 in result.get("files", {}).items():
        (run.folder / name).write_bytes(base64.b64decode(b64))
    if result.get("log"):
        atomic_write_text(run.folder / "run.log", result["log"])
    _write_json(run.folder / "status.json", {
        "run_id": run.run_id, "status": result["status"], "error": result.get("error", ""),
        "seconds": result.get("seconds", 0.0), "worker": result.get("worker", ""),
        "notebook": str(run.folder / "notebook.ipynb"), "parameters": run.params})


def _row_from_folder(run):
    status = _read_json(run.folder / "status.json") or {}
    row = {"run_id": run.run_id, **run.params, "status": status.get("status", "failed"),
           "error": status.get("error", "") or "", "seconds": status.get("seconds", 0.0)}
    return row, _read_json(run.folder / "metrics.json") or {}


@validate_params(jobs=Int(low=1), retries=Int(low=0))
def run_grid(notebook, grid, *, out, jobs=1, scheduler=None, retries=2, kernel_name="python3",
             extra_params=None, progress=True):
    """Execute ``notebook`` once per point of ``grid`` on Dask and write ``out/summary.csv``.

    Parameters
    ----------
    notebook : str or Path
        A notebook with a ``parameters``-tagged cell.
    grid : dict
        ``{name: [values, ...]}``; every combination is one run (``{}``: one run).
    out : str or Path
        Folder for the run folders and ``summary.csv`` (written by this process only).
    jobs : int, default 1
        Runs at the same time on the local cluster (unused with ``scheduler``).
    scheduler : str, optional
        A Dask scheduler's address (``tcp://HOST:8786``) instead of the local cluster.
    retries : int, default 2
        Retries of a run that failed other than by an error in a cell.
    kernel_name : str, default "python3"
    extra_params : dict, optional
        Fixed ``{name: value}`` parameters of every run (in the run id and the summary).
    progress : bool, default True
        A progress bar; failures printed as they happen.

    Returns
    -------
    list of dict
        The ``summary.csv`` rows in grid order, plus ``skipped`` (an earlier ``ok`` run was
        reused) and ``notebook`` (the executed notebook's path). ValueError/TypeError for bad
        arguments before anything runs; on Ctrl-C the running runs are stopped (status
        ``interrupted``), the rest cancelled, the summary written and KeyboardInterrupt re-raised.
    """
    notebook, names, runs = _plan(notebook, grid, extra_params, kernel_name)
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path, got {out!r} ({type(out).__name__})")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    results, todo = {}, []
    for run in runs:
        run.folder = out / run.run_id
        run.skipped = (_read_json(run.folder / "status.json") or {}).get("status") == "ok"
        if run.skipped:
            results[run.run_id] = _row_from_folder(run)
        else:
            todo.append(run)
    from tqdm.auto import tqdm  # (tqdm.auto picks the notebook or terminal bar)

    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="runs", unit="run",
               disable=not progress, file=sys.stderr)
    try:
        if todo:
            _submit_and_collect(todo, notebook, kernel_name, jobs, scheduler, retries, results, bar)
    except KeyboardInterrupt:
        write_summary(out / _SUMMARY_NAME, _rows(runs, names, results))
        raise
    finally:
        bar.close()
    rows = _rows(runs, names, results)
    write_summary(out / _SUMMARY_NAME, rows)
    return rows


def _submit_and_collect(todo, notebook, kernel_name, jobs, scheduler, retries, results, bar):
    from distributed import as_completed  # heavy; see _connect

    data = os.environ.get("KDLIB_DATA") or str(Path(__file__).resolve().parents[1] / "data")
    shared = (notebook.read_bytes(), _execute.kdlib_zip())
    token = hashlib.sha256(shared[0] + shared[1] + str(time.time_ns()).encode()).hexdigest()[:10]
    client, cluster = _connect(jobs, scheduler)
    futures = {}
    try:
        for i, run in enumerate(todo):
            spec = {"run_id": run.run_id, "name": notebook.name, "parameters": run.params,
                    "kernel_name": kernel_name, "data": data}
            fut = client.submit(_execute.run_task, spec, *shared, key=f"kdlib-run-{token}-{run.run_id}",
                                retries=retries, priority=len(todo) - i, pure=False)
            futures[fut] = run
        for fut in as_completed(futures):
            run = futures[fut]
            try:
                result = fut.result()
            except Exception as err:  # retries spent, worker lost too often (KilledWorker), ...
                result = {"status": "failed", "error": f"{type(err).__name__}: {err}"}
            _save(run, result)
            results[run.run_id] = _row_from_folder(run)
            if result["status"] != "ok":
                bar.write(f"run {run.run_id} failed: {result.get('error')}")
            bar.update(1)
    except KeyboardInterrupt:
        executing = {k for keys in client.run(_executing_keys).values() for k in keys}
        client.cancel([f for f in futures if not f.done()])
        for proc in list(_execute.CHILDREN):  # local cluster: stop the runs of this process's tasks
            proc.send_signal(signal.SIGINT)
        for fut, run in futures.items():
            if fut.key in executing and run.run_id not in results:
                _save(run, {"status": "failed", "error": "interrupted"})
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _executing_keys(dask_worker):
    """Keys of the tasks this Dask worker is executing now (not those queued on it)."""
    return [ts.key for ts in dask_worker.state.executing]


def _rows(runs, names, results):
    """Summary rows (with ``skipped`` and ``notebook``) for the runs that have results."""
    metric_names = list(dict.fromkeys(m for r in runs if r.run_id in results for m in results[r.run_id][1]))
    reserved = set(FIXED_COLUMNS) | set(names) | {"skipped", "notebook"}
    rows = []
    for run in (r for r in runs if r.run_id in results):
        row, metrics = results[run.run_id]
        row = {**row, **{f"metric:{m}" if m in reserved else m: metrics.get(m) for m in metric_names}}
        rows.append({**row, "skipped": run.skipped, "notebook": str(run.folder / "notebook.ipynb")})
    return rows


# --------------------------------------------------------------------------- summary.csv and plots


def write_summary(path, rows):
    """Write summary ``rows`` to the CSV file ``path`` atomically (:func:`kdlib.results.write_csv`).

    Columns are the rows' keys in first-seen order, without ``skipped`` and ``notebook``.

    Parameters
    ----------
    path : str or Path
        The CSV file to write (replaced atomically).
    rows : list of dict
        One per run; with no rows the header is ``FIXED_COLUMNS``.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    columns = list(dict.fromkeys(c for r in rows for c in r if c not in ("skipped", "notebook")))
    return write_csv(rows, path, columns=columns or list(FIXED_COLUMNS))


def read_summary(path):
    """Read a ``summary.csv`` back: numbers and booleans parsed, empty cells ``None``;
    ``run_id``, ``status`` and ``error`` stay text (``""`` when empty).

    Parameters
    ----------
    path : str or Path
        A ``summary.csv`` written by :func:`write_summary`.

    Returns
    -------
    list of dict
        One per row, column → value.
    """
    return read_csv(path, text_columns=_TEXT_COLUMNS)


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def plot_summary(rows, x, y, hue=None):
    """Plot ``y`` against ``x``: mean ± sample sd over rows sharing ``x`` (and ``hue``).

    Rows whose ``y`` is not a finite number (failed runs) are left out; a single row has no
    error bar. Numeric ``x`` gets a numeric axis, other values are categories in order.

    Parameters
    ----------
    rows : list of dict
        From :func:`run_grid` or :func:`read_summary`.
    x, y : str
        Column names for the horizontal and vertical axes.
    hue : str, optional
        Column whose values get one line each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure  # heavy; only plotting needs it

    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; nothing to plot")
    columns = {c for row in rows for c in row}
    for arg, name in (("x", x), ("y", y)) + ((("hue", hue),) if hue is not None else ()):
        if _check_name(name, arg) not in columns:
            raise ValueError(f"{arg}={name!r} is not a column; columns are: {', '.join(sorted(columns))}")
    groups = {}  # hue -> x -> [y]
    for row in rows:
        if _is_number(row.get(y)) and row.get(x) is not None:
            groups.setdefault(row.get(hue) if hue else None, {}).setdefault(row[x], []).append(float(row[y]))
    if not groups:
        raise ValueError(f"no row has a finite number in column y={y!r}")
    all_x = [xv for g in groups.values() for xv in g]
    numeric_x = all(_is_number(xv) for xv in all_x)
    categories = list(dict.fromkeys(all_x))
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    keys = sorted(groups) if hue and all(_is_number(h) for h in groups) else list(groups)
    for key in keys:
        points = groups[key]
        xs = sorted(points) if numeric_x else [c for c in categories if c in points]
        ax.errorbar(xs if numeric_x else [categories.index(v) for v in xs],
                    [sum(points[v]) / len(points[v]) for v in xs], yerr=[sample_sd(points[v]) for v in xs],
                    marker="o", capsize=3, label=f"{hue}={key}" if hue else None)
    if not numeric_x:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    ax.set(xlabel=x, ylabel=y, title=f"{y} vs {x}" + (" (mean ± sd)" if max(
        len(v) for g in groups.values() for v in g.values()) > 1 else ""))
    if hue:
        ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    return fig


# --------------------------------------------------------------------------- command line


def _parse_grid_args(grid_args, param_args):
    grid, params = {}, {}
    for option, texts in (("--grid", grid_args), ("--param", param_args)):
        for text in texts:
            name, eq, rest = (s.strip() if i == 0 else s for i, s in enumerate(text.partition("=")))
            if not eq:
                raise ValueError(f"{option} {text!r} must look like name=value")
            if not name.isidentifier():
                raise ValueError(f"{option} {text!r}: {name!r} is not a valid parameter name")
            if name in grid or name in params:
                raise ValueError(f"parameter {name!r} is given twice (--grid/--param)")
            parts = rest.split(",") if option == "--grid" else [rest]
            if any(not p.strip() for p in parts):
                raise ValueError(f"{option} {text!r} has an empty value; write {option} {name}=v1,v2,...")
            if option == "--grid":
                grid[name] = [parse_grid_value(p) for p in parts]
            else:
                params[name] = parse_grid_value(rest)
    return grid, params


def _build_parser():
    p = argparse.ArgumentParser(
        prog="python -m kdlib.runs", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a notebook over a parameter grid with papermill on Dask and summarise the "
                    "metrics it records with kdlib.runs.record(name, value); or plot such a summary.",
        epilog="examples:\n  python -m kdlib.runs notebooks/05_lambda_tuning.ipynb --grid lam=0,0.5,1 "
               "--grid T=1,4 --jobs 2\n  python -m kdlib.runs NOTEBOOK --grid seed=0,1,2 --scheduler "
               "tcp://HOST:8786\n  python -m kdlib.runs --plot runs/05_lambda_tuning/summary.csv --x lam "
               "--y val_acc --hue T")
    p.add_argument("notebook", nargs="?", help="notebook with a 'parameters'-tagged cell")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of one parameter (repeat for more; the runs are all combinations)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed parameter of every run (part of the run id)")
    p.add_argument("--jobs", type=int, default=1, help="runs at the same time on this machine (default 1)")
    p.add_argument("--scheduler", metavar="tcp://HOST:8786", help="run on this Dask cluster instead")
    p.add_argument("--retries", type=int, default=2,
                   help="retries of a run that failed other than by an error in a cell (default 2)")
    p.add_argument("--out", help="output folder (default runs/<notebook stem>)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--execute", metavar="OUTPUT", help="run NOTEBOOK once (with --param) into OUTPUT")
    p.add_argument("--in-place", action="store_true", help="re-execute NOTEBOOK and store its outputs")
    g = p.add_argument_group("plotting a summary (instead of running)")
    g.add_argument("--plot", metavar="SUMMARY_CSV", help="plot this summary.csv and exit")
    g.add_argument("--x", help="column for the x axis")
    g.add_argument("--y", help="column for the y axis (mean ± sd over repeated rows)")
    g.add_argument("--hue", help="column with one line per value")
    g.add_argument("--png", help="image to write (default: <y>_vs_<x>.png next to the summary)")
    return p


def _main_plot(parser, args):
    if args.notebook or args.grid or args.param:
        parser.error("--plot takes a summary.csv and no notebook, --grid or --param")
    if not args.x or not args.y:
        parser.error("--plot needs --x and --y")
    if not Path(args.plot).is_file():
        parser.error(f"--plot {args.plot!r}: no such file")
    try:
        fig = plot_summary(read_summary(args.plot), args.x, args.y, hue=args.hue)
    except ValueError as err:
        parser.error(str(err))
    png = Path(args.png) if args.png else Path(args.plot).parent / f"{args.y}_vs_{args.x}.png"
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")
    return 0


def main(argv=None):
    """Command-line entry point; returns the exit status (0 ok, 1 a run failed, 2 usage, 130 Ctrl-C).

    Parameters
    ----------
    argv : list of str, optional
        The arguments without the program name; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        The exit status. Bad usage exits through ``argparse`` (``SystemExit(2)``); 2 is returned
        only when ``--scheduler`` cannot be reached.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.plot:
        return _main_plot(parser, args)
    if not args.notebook:
        parser.error("give a NOTEBOOK to run (or --plot SUMMARY_CSV)")
    if args.in_place:
        if args.grid or args.param or args.execute:
            parser.error("--in-place re-executes the stored notebook with its defaults: no --grid/--param")
        execute_in_place(args.notebook)
        print(f"re-executed {args.notebook}")
        return 0
    for option in ("jobs", "retries"):
        if getattr(args, option) < (1 if option == "jobs" else 0):
            parser.error(f"--{option} must be >= {1 if option == 'jobs' else 0}, got {getattr(args, option)}")
    try:
        grid, params = _parse_grid_args(args.grid, args.param)
        if args.execute and grid:
            raise ValueError("--execute runs the notebook once: use --param, not --grid")
        if not args.execute:
            _plan(args.notebook, grid, params, args.kernel)  # fail early, before any run starts
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    if args.execute:
        Path(args.execute).parent.mkdir(parents=True, exist_ok=True)
        try:
            execute_notebook(args.notebook, args.execute, params, kernel_name=args.kernel)
        except Exception as err:
            detail = f"{err.ename}: {err.evalue}" if hasattr(err, "ename") else f"{type(err).__name__}: {err}"
            print(f"FAILED {args.notebook}: {detail}\n  notebook: {args.execute}", file=sys.stderr)
            return 1
        print(f"ok {args.notebook} -> {args.execute}")
        return 0
    out = Path(args.out) if args.out else Path("runs") / Path(args.notebook).stem
    try:
        rows = run_grid(args.notebook, grid, out=out, jobs=args.jobs, scheduler=args.scheduler,
                        retries=args.retries, kernel_name=args.kernel, extra_params=params,
                        progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted; summary of the finished runs: {out / _SUMMARY_NAME}", file=sys.stderr)
        return 130
    except OSError as err:  # distributed raises OSError when no scheduler answers at that address
        if not args.scheduler:
            raise
        print(f"cannot reach the Dask scheduler --scheduler {args.scheduler}: {err}", file=sys.stderr)
        return 2
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        print(f"FAILED {r['run_id']}: {r['error']}\n  notebook: {r['notebook']}")
    print(f"{sum(r['status'] == 'ok' and not r['skipped'] for r in rows)} ok, {len(failed)} failed, "
          f"{sum(r['skipped'] for r in rows)} skipped")
    print(f"summary: {out / _SUMMARY_NAME}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
