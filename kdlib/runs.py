"""Rerun a notebook over a parameter grid with papermill, and collect its metrics.

The lesson notebooks each have one ``parameters``-tagged cell. This module runs a
notebook once per point of a grid of those parameters, each run in its own process
and its own folder, and gathers what the runs recorded into one table::

    python -m kdlib.runs notebooks/05_lambda_tuning.ipynb --grid lam=0,0.5,1 --grid T=1,4 \\
        --jobs 2 --out runs/05
    python -m kdlib.runs --plot runs/05/summary.csv --x lam --y val_acc --hue T

Inside a notebook, ``kdlib.runs.record("val_acc", acc)`` records a metric of the run.

Layout of ``DIR`` (``--out``, default ``runs/<notebook stem>``)::

    DIR/<run-id>/notebook.ipynb   the executed notebook (partial, with the error, if it failed)
    DIR/<run-id>/metrics.json     what the notebook recorded with record()
    DIR/<run-id>/status.json      ok / failed, error, parameters, seconds, notebook path
    DIR/<run-id>/worker.log       the worker process's own output (papermill messages)
    DIR/<run-id>/spec.json        what the worker was asked to run (paths, parameters, kernel)
    DIR/summary.csv               one row per run of the current grid

Choices worth knowing:

* **Run ids** derive from the parameter values only (``lam=0.5__T=4``), in the order of
  the notebook's parameters cell, so they do not depend on the order of ``--grid``
  options. Numbers that are equal (``4`` and ``4.0``) get the same id. Characters other
  than letters, digits, ``. + - _`` are replaced, and then (or when the id would be
  very long) a short hash of the exact values is appended, so ids stay unique and
  stable. Fixed parameters (``--param``) are part of the id too: changing one reruns.
* **Reruns**: a run whose ``status.json`` says ``ok`` is skipped; failed or interrupted
  runs are run again. An overlapping grid therefore runs only its new points. The
  notebook's content is not part of the id: after editing the notebook, delete ``DIR``
  (or the run folders concerned) to run again.
* **Metric names** become column names as recorded; one that clashes with a parameter
  or a fixed column (``status``...) is written as ``metric:<name>``.
* **summary.csv** has one row per point of the *current* grid (skipped runs included,
  read back from their folders), not every run found under ``DIR``; sweeps with
  different grids can share a folder and each gets its own table.
* **Working directory**: each notebook runs with its own folder as the working
  directory, as in Jupyter, so relative paths in it (``../data``) work unchanged.
* **Processes**: every run is a fresh ``python`` process (this interpreter) that calls
  ``papermill.execute_notebook``; the kernel it starts inherits ``KDLIB_RUN_DIR`` (the
  run's folder, used by :func:`record`) and a ``PYTHONPATH`` that finds this ``kdlib``.
  The ``python3`` kernelspec that ipykernel installs runs the same interpreter.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import itertools
import json
import math
import numbers
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from kdlib._checks import check_int

__all__ = ["record", "recorded", "parse_grid_value", "run_id", "run_grid", "read_summary",
           "write_summary", "plot_summary", "main"]

RUN_DIR_ENV = "KDLIB_RUN_DIR"
"""Environment variable through which the runner tells :func:`record` the run's folder."""

FIXED_COLUMNS = ("run_id", "status", "error", "seconds")
"""Summary columns that are always present (parameters follow ``run_id``)."""

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

    Inside a notebook executed by :func:`run_grid` (the runner sets the environment
    variable ``KDLIB_RUN_DIR``), the value is written into the run's ``metrics.json``;
    recording the same name again replaces the value. Outside the runner nothing is
    written anywhere: the value is only kept in memory (see :func:`recorded`), so the
    same notebook runs unchanged in Jupyter.

    Parameters
    ----------
    name : str
        Metric name; it becomes the column name in ``summary.csv``.
    value : int, float, bool, str, or a NumPy / torch scalar
        Scalars with ``.item()`` (``np.float32(0.9)``, ``torch.tensor(0.9)``) are
        converted to Python numbers.

    Returns
    -------
    int, float, bool or str
        The recorded (converted) value.
    """
    _check_name(name)
    value = _to_python_value(name, value)
    _RECORDED[name] = value
    run_dir = os.environ.get(RUN_DIR_ENV)
    if run_dir:
        path = Path(run_dir) / "metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        metrics = _read_json(path) or {}
        metrics[name] = value
        _write_json(path, metrics)
    return value


def recorded():
    """Return a copy of the metrics recorded in this process, ``{name: value}``."""
    return dict(_RECORDED)


# --------------------------------------------------------------------------- small I/O helpers


def _atomic_write_text(path, text):
    """Write ``text`` to ``path`` through a temporary file and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write_json(path, obj):
    _atomic_write_text(path, json.dumps(obj, indent=1, sort_keys=False) + "\n")


def _read_json(path):
    """Return the parsed JSON at ``path``, or None if it is missing or unreadable."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --------------------------------------------------------------------------- values and run ids

_INT_RE = re.compile(r"[+-]?\d+")
_FLOAT_RE = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)


def parse_grid_value(text):
    """Parse one value as written on the command line (or in ``summary.csv``).

    Integers (``4``) become ``int``, other decimal numbers (``0.5``, ``1e-3``, ``nan``)
    ``float``, ``true``/``false`` (any case) ``bool``; anything else stays a string.
    Surrounding whitespace is removed.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a string, got {text!r} ({type(text).__name__})")
    text = text.strip()
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def _format_value(value):
    """Text of a parameter value inside a run id; equal numbers give equal text."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return str(value)


_UNSAFE = re.compile(r"[^A-Za-z0-9.+\-_]")
_MAX_ID = 100


def run_id(params):
    """Return the folder name of the run with parameters ``params`` (a dict, in order).

    ``{"lam": 0.5, "T": 4}`` gives ``"lam=0.5__T=4"``. The id depends only on the
    names and values (in the given order); equal numbers (``4``, ``4.0``) give the
    same id. If a character had to be replaced (anything but letters, digits and
    ``. + - _``), a value contained ``__``, or the id is longer than 100 characters,
    an 8-character hash of the exact values is appended, so different parameters never
    share an id. An empty dict gives ``"default"``.
    """
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict, got {type(params).__name__}")
    if not params:
        return "default"
    texts = {k: _format_value(v) for k, v in params.items()}
    raw = "__".join(f"{k}={t}" for k, t in texts.items())
    safe = "__".join(f"{_UNSAFE.sub('-', k)}={_UNSAFE.sub('-', t)}" for k, t in texts.items())
    needs_hash = safe != raw or any("__" in k or "__" in t for k, t in texts.items())
    if needs_hash or len(safe) > _MAX_ID:
        canon = json.dumps([[k, _format_value(v), type(v).__name__ if isinstance(v, str) else ""]
                            for k, v in params.items()])
        digest = hashlib.sha256(canon.encode()).hexdigest()[:8]
        safe = f"{safe[:_MAX_ID - 10]}-h{digest}"
    return safe


# --------------------------------------------------------------------------- planning


@dataclass
class _Run:
    run_id: str
    params: dict
    folder: Path
    skipped: bool = False


def _notebook_parameters(notebook, kernel_name):
    """``papermill.inspect_notebook`` of ``notebook``, which may lack kernel metadata."""
    import nbformat
    import papermill

    try:
        nb = nbformat.read(str(notebook), as_version=4)
        # papermill needs a kernel name to pick its translator; the notebook may have none.
        nb.metadata.setdefault("kernelspec", {"name": kernel_name, "display_name": kernel_name})
        nb.metadata.kernelspec.setdefault("language", "python")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "notebook.ipynb"
            nbformat.write(nb, str(path))
            return papermill.inspect_notebook(str(path))
    except Exception as err:  # nbformat / papermill raise several types for unreadable notebooks
        raise ValueError(f"notebook={str(notebook)!r} could not be inspected: {err}") from err


def _plan(notebook, grid, extra_params, kernel_name):
    """Validate the arguments and return (notebook path, ordered names, list of _Run points)."""
    if not isinstance(notebook, (str, os.PathLike)):
        raise TypeError(f"notebook must be a path, got {notebook!r} ({type(notebook).__name__})")
    notebook = Path(notebook)
    if not notebook.is_file():
        raise ValueError(f"notebook={str(notebook)!r} does not exist (or is not a file)")
    if not isinstance(grid, dict):
        raise TypeError(f"grid must be a dict {{name: [values]}}, got {type(grid).__name__}")
    extra_params = {} if extra_params is None else extra_params
    if not isinstance(extra_params, dict):
        raise TypeError(f"extra_params must be a dict {{name: value}} or None, got "
                        f"{type(extra_params).__name__}")

    _check_name(kernel_name, "kernel_name")
    known = _notebook_parameters(notebook, kernel_name)
    if not known:
        raise ValueError(f"notebook={str(notebook)!r} has no 'parameters'-tagged cell, so no "
                         "parameter can be set")
    allowed = ", ".join(known)
    values = {}
    for source, mapping in (("grid", grid), ("extra_params", extra_params)):
        for name, vals in mapping.items():
            _check_name(name, f"{source} parameter name")
            if name not in known:
                raise ValueError(f"{source} parameter {name!r} is not a parameter of {notebook.name}; "
                                 f"its parameters are: {allowed}")
            if name in values:
                raise ValueError(f"parameter {name!r} is given twice (in grid and extra_params)")
            if source == "grid":
                if isinstance(vals, (str, bytes)) or not hasattr(vals, "__iter__"):
                    raise TypeError(f"grid[{name!r}] must be a list of values, got {vals!r}")
                vals = [_to_python_value(name, v) for v in vals]
                if not vals:
                    raise ValueError(f"grid[{name!r}] is empty; give at least one value")
                texts = [_format_value(v) for v in vals]
                dupes = sorted({t for t in texts if texts.count(t) > 1})
                if dupes:
                    raise ValueError(f"grid[{name!r}] repeats the value(s) {', '.join(dupes)}")
            else:
                vals = [_to_python_value(name, vals)]
            values[name] = vals

    # Canonical order: the order of the notebook's parameters cell.
    names = [n for n in known if n in values]
    folder_names = {}
    runs = []
    for combo in itertools.product(*(values[n] for n in names)):
        params = dict(zip(names, combo))
        rid = run_id(params)
        if rid in folder_names:  # only possible for values differing in type alone, e.g. 1 and True
            raise ValueError(f"parameters {params} and {folder_names[rid]} share the run id {rid!r}")
        folder_names[rid] = params
        runs.append(_Run(rid, params, Path()))
    return notebook, names, runs


# --------------------------------------------------------------------------- one notebook


_POLL_SLICE = 0.5  # seconds


def patch_kernel_client_polling() -> None:
    """Make headless notebook execution immune to a lost wake-up in jupyter_client.

    ``AsyncZMQSocketChannel.get_msg`` waits with one unbounded ``socket.poll``;
    with ipywidgets' Output capture in a cell, that poll sometimes never wakes
    although the kernel's reply has arrived, and papermill / nbclient then hang
    forever with the kernel idle (jupyter/nbclient#312; we saw it in about one run
    of notebook 00 in ten). Waiting in short slices finds the queued reply. The
    timeout semantics are unchanged. Idempotent; applied by :func:`execute_notebook`.
    """
    from jupyter_client.channels import AsyncZMQSocketChannel

    if getattr(AsyncZMQSocketChannel.get_msg, "_kdlib_sliced", False):
        return
    original = AsyncZMQSocketChannel.get_msg

    async def get_msg(self, timeout=None):
        from queue import Empty

        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = _POLL_SLICE if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await original(self, timeout=min(_POLL_SLICE, left))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    get_msg._kdlib_sliced = True
    AsyncZMQSocketChannel.get_msg = get_msg


def execute_in_place(notebook, *, timeout: int = 900) -> None:
    """Re-execute a stored notebook top to bottom and save it with its outputs.

    What ``make notebooks`` runs: like ``jupyter nbconvert --execute --inplace``
    (no papermill metadata), with :func:`patch_kernel_client_polling` applied.
    """
    import nbclient
    import nbformat

    patch_kernel_client_polling()
    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name=nb.metadata.get("kernelspec", {}).get(
        "name", "python3"), resources={"metadata": {"path": str(notebook.parent)}}).execute()
    tmp = notebook.with_name(notebook.name + ".tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, notebook)


def execute_notebook(notebook, output, parameters=None, *, kernel_name="python3", cwd=None):
    """Execute ``notebook`` with papermill into ``output``; return the executed notebook.

    Unlike plain papermill, an error in a cell tagged ``raises-exception`` (a lesson
    that shows an error on purpose, as notebook 03 does) does not fail the run;
    nbclient runs past such cells, and only errors elsewhere raise
    ``papermill.PapermillExecutionError``. ``cwd`` defaults to the notebook's folder.
    A notebook without kernel metadata is taken to be Python.
    """
    import nbformat
    import papermill

    patch_kernel_client_polling()
    notebook = Path(notebook)
    meta = nbformat.read(notebook, as_version=4).metadata
    has_language = meta.get("language_info", {}).get("name") or meta.get("kernelspec", {}).get("language")
    try:
        return papermill.execute_notebook(
            str(notebook), str(output), parameters=parameters or {}, kernel_name=kernel_name,
            cwd=str(cwd or notebook.parent), language=None if has_language else "python",
            progress_bar=False)
    except papermill.PapermillExecutionError:
        executed = nbformat.read(output, as_version=4)
        if any(o.get("output_type") == "error" for c in executed.cells if c.cell_type == "code"
               and "raises-exception" not in c.get("metadata", {}).get("tags", [])
               for o in c.get("outputs", [])):
            raise
        # drop the red "An Exception was encountered" banners papermill inserted
        executed.cells = [c for c in executed.cells
                          if "papermill-error-cell-tag" not in c.get("metadata", {}).get("tags", [])]
        nbformat.write(executed, output)
        return executed


# --------------------------------------------------------------------------- worker (child process)


def _worker_main(spec_path):
    """Execute one run described by the JSON file ``spec_path`` (runs in a child process)."""
    # A parent started with SIGINT ignored (e.g. `cmd &` in a script) must still be able to stop us.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    status = {"run_id": spec["run_id"], "status": "failed", "error": "", "seconds": 0.0,
              "notebook": spec["output"], "parameters": spec["parameters"]}
    start = time.perf_counter()
    code = 0
    try:
        execute_notebook(spec["input"], spec["output"], spec["parameters"],
                         kernel_name=spec["kernel_name"], cwd=spec["cwd"])
        status["status"] = "ok"
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # finish writing the status
        status["error"] = "interrupted"
        code = 130
    except Exception as err:
        if type(err).__name__ == "PapermillExecutionError":  # an error inside the notebook
            status["error"] = f"{err.ename}: {err.evalue} (cell In [{err.exec_count}])"
        else:  # kernel did not start, notebook unreadable, ...
            status["error"] = f"{type(err).__name__}: {err}"
    status["seconds"] = round(time.perf_counter() - start, 3)
    _write_json(Path(spec["folder"]) / "status.json", status)
    return code


# --------------------------------------------------------------------------- runner (parent process)


def _child_env(folder):
    env = dict(os.environ)
    env[RUN_DIR_ENV] = str(folder)
    # The worker and the kernel it starts must import this very kdlib, even when it is not
    # installed (the kernel's working directory is the notebook's folder).
    root = str(Path(__file__).resolve().parent.parent)
    old = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join([root, *old])
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def _start(run, notebook, kernel_name):
    """Start the worker process of ``run`` and return its ``Popen``."""
    folder = run.folder
    folder.mkdir(parents=True, exist_ok=True)
    for stale in ("status.json", "metrics.json"):  # a retried run starts clean
        (folder / stale).unlink(missing_ok=True)
    spec = {"run_id": run.run_id, "folder": str(folder), "input": str(notebook),
            "output": str(folder / "notebook.ipynb"), "parameters": run.params,
            "kernel_name": kernel_name, "cwd": str(notebook.parent)}
    spec_path = folder / "spec.json"
    _write_json(spec_path, spec)
    code = "import sys; from kdlib.runs import _worker_main; sys.exit(_worker_main(sys.argv[1]))"
    with open(folder / "worker.log", "w", encoding="utf-8") as log:  # the child keeps its own handle
        return subprocess.Popen([sys.executable, "-c", code, str(spec_path)], env=_child_env(folder),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)  # Ctrl-C reaches only the parent, which forwards it


def _finish(run, proc, interrupted=False):
    """Return (row, metrics) of ``run`` after its worker ``proc`` exited.

    Writes a failed status.json for a worker that died without writing one (``interrupted``:
    because we stopped it).
    """
    status = _read_json(run.folder / "status.json")
    if not isinstance(status, dict) or "status" not in status:
        if interrupted or proc.returncode in (130, -signal.SIGINT):
            error = "interrupted"
        else:
            tail = (run.folder / "worker.log").read_text(encoding="utf-8", errors="replace")[-500:]
            error = f"worker exited with code {proc.returncode} without a status; log: {tail}"
        status = {"run_id": run.run_id, "status": "failed", "seconds": 0.0, "error": error,
                  "notebook": str(run.folder / "notebook.ipynb"), "parameters": run.params}
        _write_json(run.folder / "status.json", status)
    return _row_from_folder(run)


def _row_from_folder(run):
    status = _read_json(run.folder / "status.json") or {}
    metrics = _read_json(run.folder / "metrics.json") or {}
    row = {"run_id": run.run_id, **run.params, "status": status.get("status", "failed"),
           "error": status.get("error", "") or "", "seconds": status.get("seconds", 0.0)}
    return row, metrics


def _interrupt(running):
    """Forward an interrupt to the running workers; kill those that do not stop."""
    for proc in running.values():
        try:
            proc.send_signal(signal.SIGINT if os.name == "posix" else signal.SIGTERM)
        except OSError:
            pass
    deadline = time.monotonic() + 15
    for proc in running.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_grid(notebook, grid, *, out, jobs=1, kernel_name="python3", extra_params=None, progress=True):
    """Execute ``notebook`` once per point of ``grid`` and write ``out/summary.csv``.

    Parameters
    ----------
    notebook : str or Path
        The notebook; it needs a ``parameters``-tagged cell that defines every name used.
    grid : dict
        ``{name: [values, ...]}``; every combination (Cartesian product) is one run.
        Values are numbers, strings or bools. ``{}`` gives a single run.
    out : str or Path
        Folder that receives one sub-folder per run and ``summary.csv``.
    jobs : int, default 1
        How many runs execute at the same time (each in its own process and kernel).
    kernel_name : str, default "python3"
        Jupyter kernel that executes the notebook.
    extra_params : dict, optional
        Fixed ``{name: value}`` parameters passed to every run; they are part of the run
        id and the summary like grid parameters.
    progress : bool, default True
        Show a tqdm progress bar over the runs (and print failures as they happen).

    Returns
    -------
    list of dict
        One dict per point of the grid, in grid order: the ``summary.csv`` row (``run_id``,
        the parameters, ``status``, ``error``, ``seconds``, then the metrics) plus two keys
        that are not written to the CSV: ``skipped`` (True if an earlier ``ok`` run was
        reused) and ``notebook`` (path of the executed, possibly partial, notebook).

    Raises
    ------
    ValueError, TypeError
        Unknown parameter names (the message lists the notebook's parameters), empty
        or repeated values, a missing notebook, ``jobs < 1``; raised before anything runs.
    KeyboardInterrupt
        Re-raised after the pending runs are cancelled, the running ones stopped (their
        status says ``interrupted``, so a rerun redoes them) and ``summary.csv`` written
        for the runs that finished.
    """
    notebook, names, runs = _plan(notebook, grid, extra_params, kernel_name)
    jobs = check_int("jobs", jobs, low=1)
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a path, got {out!r} ({type(out).__name__})")
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    notebook = notebook.resolve()
    results = {}  # run_id -> (row, metrics)
    todo = []
    for run in runs:
        run.folder = out / run.run_id
        status = _read_json(run.folder / "status.json")
        if isinstance(status, dict) and status.get("status") == "ok":
            run.skipped = True
            results[run.run_id] = _row_from_folder(run)
        else:
            todo.append(run)

    from tqdm.auto import tqdm

    bar = tqdm(total=len(runs), initial=len(runs) - len(todo), desc="runs", unit="run",
               disable=not progress, file=sys.stderr)
    pending = list(reversed(todo))
    running = {}  # run_id -> (run, proc)
    try:
        while pending or running:
            while pending and len(running) < jobs:
                run = pending.pop()
                running[run.run_id] = (run, _start(run, notebook, kernel_name))
            done = [rid for rid, (_, proc) in running.items() if proc.poll() is not None]
            for rid in done:
                run, proc = running.pop(rid)
                results[rid] = _finish(run, proc)
                row = results[rid][0]
                if row["status"] != "ok" and progress:
                    bar.write(f"run {rid} failed: {row['error']} (notebook: {run.folder / 'notebook.ipynb'})")
                bar.update(1)
            if not done:
                time.sleep(0.05)
    except KeyboardInterrupt:
        _interrupt({rid: proc for rid, (_, proc) in running.items()})
        for run, proc in running.values():
            result = _finish(run, proc, interrupted=True)  # a failed status if the worker wrote none
            if result[0]["status"] == "ok":  # it finished just before the interrupt
                results[run.run_id] = result
        write_summary(out / _SUMMARY_NAME, _rows(runs, names, results))
        raise
    finally:
        bar.close()
    rows = _rows(runs, names, results)
    write_summary(out / _SUMMARY_NAME, rows)
    return rows


def _rows(runs, names, results):
    """Summary rows (with ``skipped`` and ``notebook``) for the runs that have results."""
    metric_names = []
    for run in runs:
        if run.run_id in results:
            metric_names += [m for m in results[run.run_id][1] if m not in metric_names]
    reserved = set(FIXED_COLUMNS) | set(names) | {"skipped", "notebook"}
    rows = []
    for run in runs:
        if run.run_id not in results:
            continue
        row, metrics = results[run.run_id]
        row = dict(row)
        for m in metric_names:  # a metric named like a parameter or fixed column is prefixed
            row[f"metric:{m}" if m in reserved else m] = metrics.get(m)
        row["skipped"] = run.skipped
        row["notebook"] = str(run.folder / "notebook.ipynb")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------- summary.csv


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_summary(path, rows):
    """Write ``rows`` (dicts) to the CSV file ``path`` atomically (temporary file + rename).

    Columns are the union of the rows' keys in first-seen order, without ``skipped`` and
    ``notebook``; numbers are written as numbers, ``None`` as an empty cell.
    """
    columns = []
    for row in rows:
        columns += [c for c in row if c not in columns and c not in ("skipped", "notebook")]
    if not columns:
        columns = list(FIXED_COLUMNS)
    from io import StringIO

    buf = StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _atomic_write_text(path, buf.getvalue())


def read_summary(path):
    """Read a ``summary.csv`` back as a list of dicts with numbers parsed.

    Cells that look like integers become ``int``, other numbers ``float``,
    ``True``/``False`` ``bool`` (see :func:`parse_grid_value`); empty cells become
    ``None``, except in the ``error`` column, which stays a string (``""`` when ok).
    """
    with open(path, newline="", encoding="utf-8") as f:
        rows = []
        for raw in csv.DictReader(f):
            row = {}
            for key, text in raw.items():
                if key in ("run_id", "status", "error"):
                    row[key] = text or ""
                else:
                    row[key] = None if text in (None, "") else parse_grid_value(text)
            rows.append(row)
    return rows


# --------------------------------------------------------------------------- plotting


def _is_number(v):
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def plot_summary(rows, x, y, hue=None):
    """Plot ``y`` against ``x`` from summary rows: mean ± sd over rows sharing ``x`` (and ``hue``).

    Rows with the same ``x`` and ``hue`` (e.g. different seeds) are averaged; the error
    bar is their sample standard deviation (none for a single row). Rows whose ``y`` is
    missing or not a finite number (failed runs) are left out. Numeric ``x`` values are
    placed on a numeric axis; other values are categories in order of appearance.

    Parameters
    ----------
    rows : list of dict
        Rows as returned by :func:`run_grid` or :func:`read_summary`.
    x, y : str
        Column names for the horizontal and vertical axes.
    hue : str, optional
        Column whose values get one line each.

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; nothing to plot")
    columns = {c for row in rows for c in row}
    for arg, name in (("x", x), ("y", y), ("hue", hue)):
        if name is None and arg == "hue":
            continue
        _check_name(name, arg)
        if name not in columns:
            raise ValueError(f"{arg}={name!r} is not a column; columns are: {', '.join(sorted(columns))}")

    groups = {}  # hue -> x -> [y]
    for row in rows:
        yv = row.get(y)
        if not _is_number(yv) or row.get(x) is None:
            continue
        groups.setdefault(row.get(hue) if hue else None, {}).setdefault(row[x], []).append(float(yv))
    if not groups:
        raise ValueError(f"no row has a finite number in column y={y!r}")

    all_x = [xv for g in groups.values() for xv in g]
    numeric_x = all(_is_number(xv) for xv in all_x)
    categories = list(dict.fromkeys(all_x))
    fig = Figure(figsize=(5.5, 3.8), layout="constrained")
    ax = fig.subplots()
    hue_keys = list(groups)
    if hue and all(_is_number(h) for h in hue_keys):
        hue_keys.sort()
    for key in hue_keys:
        points = groups[key]
        xs = sorted(points) if numeric_x else [c for c in categories if c in points]
        means = [sum(points[v]) / len(points[v]) for v in xs]
        sds = [_sample_sd(points[v]) for v in xs]
        pos = xs if numeric_x else [categories.index(v) for v in xs]
        label = f"{hue}={key}" if hue else None
        ax.errorbar(pos, means, yerr=sds, marker="o", capsize=3, label=label)
    if not numeric_x:
        ax.set_xticks(range(len(categories)), [str(c) for c in categories])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    n_rep = max(len(v) for g in groups.values() for v in g.values())
    ax.set_title(f"{y} vs {x}" + (" (mean ± sd)" if n_rep > 1 else ""))
    if hue:
        ax.legend(title=None, fontsize="small")
    ax.grid(alpha=0.3)
    return fig


def _sample_sd(values):
    n = len(values)
    if n < 2:
        return 0.0
    mean = sum(values) / n
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))


# --------------------------------------------------------------------------- command line


def _parse_assignment(text, option):
    if "=" not in text:
        raise ValueError(f"{option} {text!r} must look like name=value")
    name, _, rest = text.partition("=")
    name = name.strip()
    if not name.isidentifier():
        raise ValueError(f"{option} {text!r}: {name!r} is not a valid parameter name")
    return name, rest


def _parse_grid_args(grid_args, param_args):
    grid, params = {}, {}
    for text in grid_args:
        name, rest = _parse_assignment(text, "--grid")
        if name in grid:
            raise ValueError(f"--grid {name} is given twice; list all its values in one option")
        parts = rest.split(",")
        if any(not p.strip() for p in parts):
            raise ValueError(f"--grid {text!r} has an empty value; write --grid {name}=v1,v2,...")
        grid[name] = [parse_grid_value(p) for p in parts]
    for text in param_args:
        name, rest = _parse_assignment(text, "--param")
        if name in grid or name in params:
            raise ValueError(f"parameter {name!r} is given twice (--grid/--param)")
        if not rest.strip():
            raise ValueError(f"--param {text!r} has an empty value")
        params[name] = parse_grid_value(rest)
    return grid, params


def _build_parser():
    p = argparse.ArgumentParser(
        prog="python -m kdlib.runs",
        description="Run a notebook over a parameter grid with papermill and summarise the metrics "
                    "it records with kdlib.runs.record(name, value); or plot such a summary.",
        epilog="examples:\n"
               "  python -m kdlib.runs notebooks/05_lambda_tuning.ipynb --grid lam=0,0.5,1 --grid T=1,4 "
               "--jobs 2\n"
               "  python -m kdlib.runs --plot runs/05_lambda_tuning/summary.csv --x lam --y val_acc --hue T",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("notebook", nargs="?", help="notebook with a 'parameters'-tagged cell")
    p.add_argument("--grid", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of one parameter (repeat for more; the runs are all combinations). "
                        "Numbers, true/false and strings are recognised.")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                   help="a fixed parameter for every run (part of the run id)")
    p.add_argument("--jobs", type=int, default=1, help="runs at the same time (default 1)")
    p.add_argument("--out", help="output folder (default runs/<notebook stem>)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--execute", metavar="OUTPUT",
                   help="run NOTEBOOK once (with --param values) into OUTPUT, no grid or run folders")
    p.add_argument("--in-place", action="store_true",
                   help="re-execute NOTEBOOK top to bottom and store its outputs (make notebooks)")
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
    path = Path(args.plot)
    if not path.is_file():
        parser.error(f"--plot {args.plot!r}: no such file")
    rows = read_summary(path)
    try:
        fig = plot_summary(rows, args.x, args.y, hue=args.hue)
    except ValueError as err:
        parser.error(str(err))
    png = Path(args.png) if args.png else path.parent / f"{args.y}_vs_{args.x}.png"
    fig.savefig(png, dpi=120)
    print(f"wrote {png}")
    return 0


def _main_execute(parser, args):
    if args.grid:
        parser.error("--execute runs the notebook once: use --param, not --grid")
    try:
        _, params = _parse_grid_args([], args.param)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    Path(args.execute).parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        execute_notebook(args.notebook, args.execute, params, kernel_name=args.kernel)
    except Exception as err:
        detail = f"{err.ename}: {err.evalue}" if hasattr(err, "ename") else f"{type(err).__name__}: {err}"
        print(f"FAILED {args.notebook}: {detail}\n  notebook: {args.execute}", file=sys.stderr)
        return 1
    print(f"ok {args.notebook} -> {args.execute} ({time.perf_counter() - start:.0f} s)")
    return 0


def main(argv=None):
    """Command-line entry point; returns the exit status (0 ok, 1 a run failed, 2 usage, 130 Ctrl-C)."""
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
    if args.execute:
        return _main_execute(parser, args)
    if args.jobs < 1:
        parser.error(f"--jobs must be >= 1, got {args.jobs}")
    try:
        grid, params = _parse_grid_args(args.grid, args.param)
        _plan(args.notebook, grid, params, args.kernel)  # fail early, before any run starts
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    out = Path(args.out) if args.out else Path("runs") / Path(args.notebook).stem
    try:
        rows = run_grid(args.notebook, grid, out=out, jobs=args.jobs, kernel_name=args.kernel,
                        extra_params=params, progress=not args.no_progress)
    except KeyboardInterrupt:
        print(f"interrupted; summary of the finished runs: {out / _SUMMARY_NAME}", file=sys.stderr)
        return 130
    n_skipped = sum(r["skipped"] for r in rows)
    n_ok = sum(r["status"] == "ok" and not r["skipped"] for r in rows)
    n_failed = sum(r["status"] != "ok" for r in rows)
    for r in rows:
        if r["status"] != "ok":
            print(f"FAILED {r['run_id']}: {r['error']}\n  notebook: {r['notebook']}")
    print(f"{n_ok} ok, {n_failed} failed, {n_skipped} skipped")
    print(f"summary: {out / _SUMMARY_NAME}")
    return 1 if n_failed else 0


if __name__ == "__main__":
    sys.exit(main())
