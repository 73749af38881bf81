"""Execute one notebook headless: plain papermill, in place, or as one run of a sweep.

:func:`execute_notebook` is what ``make run`` and the notebook smoke tests call,
:func:`execute_in_place` what ``make notebooks`` calls, :func:`run_task` what
``kdlib.runs`` sends to a Dask worker for each point of a grid. Standard library only at the
top (Jupyter imports inside the functions): ``kdlib.runs`` imports this module, every lesson
kernel imports ``kdlib.runs.record``, and Dask ships this module to workers by value.
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

__all__ = ["patch_kernel_client_polling", "execute_notebook", "execute_in_place", "run_task", "run_main"]

_POLL_SLICE = 0.5  # seconds


def patch_kernel_client_polling() -> None:
    """Make headless notebook execution immune to a lost wake-up in jupyter_client.

    ``AsyncZMQSocketChannel.get_msg`` waits with one unbounded ``socket.poll``; with
    ipywidgets' Output capture in a cell, that poll sometimes never wakes although the
    kernel's reply has arrived, and nbclient hangs with the kernel idle (jupyter/nbclient#312;
    about one run of notebook 00 in ten). Waiting in short slices finds the queued reply;
    timeouts mean what they meant. Idempotent; applied by :func:`execute_notebook`.

    Parameters
    ----------
    None
        It patches ``jupyter_client.channels.AsyncZMQSocketChannel.get_msg`` in place,
        polling in 0.5 s slices until the caller's timeout.

    Returns
    -------
    None
    """
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel  # heavy: only when executing

    original = AsyncZMQSocketChannel.get_msg
    if getattr(original, "_kdlib_sliced", False):
        return

    async def get_msg(self, timeout=None):
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


def execute_notebook(notebook, output, parameters=None, *, kernel_name="python3", cwd=None, transport="tcp"):
    """Execute ``notebook`` with plain papermill into ``output``; return the executed notebook.

    Any error in a cell raises ``papermill.PapermillExecutionError`` (the partial notebook,
    with papermill's error banner, is in ``output``). A notebook without kernel metadata is
    taken to be Python.

    Parameters
    ----------
    notebook, output : str or Path
    parameters : dict, optional
        Values for the ``parameters``-tagged cell.
    kernel_name : str, default "python3"
    cwd : str or Path, optional
        Working directory of the kernel; default the notebook's folder.
    transport : {"tcp", "ipc"}, default "tcp"
        How the kernel talks to papermill: ``"ipc"`` uses Unix sockets in ``cwd`` instead of
        TCP ports, so parallel runs with their own ``cwd`` never race for a port ("address
        already in use" at kernel start).

    Returns
    -------
    nbformat.NotebookNode
    """
    import nbformat  # heavy Jupyter imports only where notebooks are executed
    import papermill
    from traitlets.config import Config

    if transport not in ("tcp", "ipc"):
        raise ValueError(f"transport must be 'tcp' or 'ipc', got {transport!r}")
    patch_kernel_client_polling()
    notebook = Path(notebook)
    meta = nbformat.read(notebook, as_version=4).metadata
    has_language = meta.get("language_info", {}).get("name") or meta.get("kernelspec", {}).get("language")
    return papermill.execute_notebook(
        str(notebook), str(output), parameters=parameters or {}, kernel_name=kernel_name,
        cwd=str(cwd or notebook.parent), language=None if has_language else "python", progress_bar=False,
        config=Config({"KernelManager": {"transport": transport}}))


def execute_in_place(notebook, *, timeout: int = 900) -> None:
    """Re-execute a stored notebook top to bottom and save it with its outputs (``make notebooks``).

    Like ``jupyter nbconvert --execute --inplace`` (no papermill metadata), with
    :func:`patch_kernel_client_polling` applied; the file is replaced atomically.

    Parameters
    ----------
    notebook : str or Path
    timeout : int, default 900
        Seconds one cell may run.
    """
    import nbclient  # heavy Jupyter imports only where notebooks are executed
    import nbformat

    patch_kernel_client_polling()
    notebook = Path(notebook)
    nb = nbformat.read(notebook, as_version=4)
    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    nbclient.NotebookClient(nb, timeout=timeout, kernel_name=kernel,
                            resources={"metadata": {"path": str(notebook.parent)}}).execute()
    tmp = notebook.with_name(f".{notebook.name}.tmp")
    nbformat.write(nb, tmp)
    os.replace(tmp, notebook)


# --------------------------------------------------------------------------- one run of a sweep

RUN_DIR_ENV = "KDLIB_RUN_DIR"
"""Environment variable through which a run tells ``kdlib.runs.record`` its folder."""
CHILDREN: set = set()  # run processes started by tasks in this process (local cluster), for Ctrl-C


def kdlib_zip() -> bytes:
    """This ``kdlib`` package (its .py files) as zip bytes, shipped with every run.

    Parameters
    ----------
    None
        Every ``*.py`` under this package's folder, stored as ``kdlib/<relative path>``.

    Returns
    -------
    bytes
        A deflated zip archive, for :func:`run_task`'s ``kdlib_bytes``.
    """
    root = Path(__file__).resolve().parent
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(root.rglob("*.py")):
            z.write(path, Path("kdlib") / path.relative_to(root))
    return buf.getvalue()


def run_task(spec, notebook_bytes, kdlib_bytes) -> dict:
    """Execute one run of a sweep on this (Dask) worker; return what it produced.

    Everything happens in a private temporary folder: the notebook is written there from
    ``notebook_bytes``, the client's kdlib unpacked from ``kdlib_bytes`` (first on the kernel's
    ``PYTHONPATH``), and the run executes in its own process (:func:`run_main`) with its own
    working directory, ``$KDLIB_RUN_DIR`` and Jupyter runtime folder, so parallel runs never
    share a kernel, a connection file or an output path. Returns the status (``ok``/``failed``,
    error, seconds), the executed notebook's text, the files the run wrote into
    ``$KDLIB_RUN_DIR`` (base64) and the process log. Raises RuntimeError when the run failed
    for a reason other than an error in a cell (Dask then retries it).

    Parameters
    ----------
    spec : dict
        ``run_id``, ``name`` (the notebook's file name), ``parameters`` (dict), ``kernel_name``
        and ``data`` (the client's data folder, used if it exists here and ``$KDLIB_DATA`` is unset).
    notebook_bytes, kdlib_bytes : bytes
        The notebook file, and the package as made by :func:`kdlib_zip`.

    Returns
    -------
    dict
        status.json's keys (``status``, ``error``, ``seconds``) plus ``worker`` (host name),
        ``log`` (str), ``files`` (name → base64 str) and ``notebook`` (str, or None if none was written).
    """
    with tempfile.TemporaryDirectory(prefix=f"kdlib-run-{spec['run_id'][:40]}-") as tmp:
        tmp = Path(tmp)
        for sub in ("nb", "run", "lib", "runtime"):
            (tmp / sub).mkdir()
        (tmp / "nb" / spec["name"]).write_bytes(notebook_bytes)
        zipfile.ZipFile(io.BytesIO(kdlib_bytes)).extractall(tmp / "lib")
        data = os.environ.get("KDLIB_DATA") or (spec["data"] if Path(spec["data"]).is_dir() else None)
        env = {**os.environ, RUN_DIR_ENV: str(tmp / "run"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
               "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp / "lib"), os.environ.get("PYTHONPATH")])),
               "PYTHONUNBUFFERED": "1", **({"KDLIB_DATA": data} if data else {})}
        (tmp / "spec.json").write_text(json.dumps({
            **spec, "input": str(tmp / "nb" / spec["name"]), "output": str(tmp / "notebook.ipynb"),
            "cwd": str(tmp / "nb"), "status": str(tmp / "status.json")}))
        code = "import sys; from kdlib._execute import run_main; sys.exit(run_main(sys.argv[1]))"
        with open(tmp / "run.log", "wb") as log:
            proc = subprocess.Popen([sys.executable, "-c", code, str(tmp / "spec.json")], env=env,
                                    cwd=tmp / "nb", stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        # Tasks arrive by value (a copy of CHILDREN): register with the module's live set, if any.
        children = getattr(sys.modules.get(__name__), "CHILDREN", set())
        children.add(proc)
        try:
            proc.wait()
        finally:
            children.discard(proc)
        status = _read_json(tmp / "status.json")
        log = (tmp / "run.log").read_text(encoding="utf-8", errors="replace")
        if status.get("status") not in ("ok", "failed"):
            raise RuntimeError(f"run {spec['run_id']} on {socket.gethostname()}: "
                               f"{status.get('error') or f'its process exited with code {proc.returncode}'}"
                               f"; log: {log[-500:]}")
        out = tmp / "notebook.ipynb"
        return {**status, "worker": socket.gethostname(), "log": log,
                "files": {p.name: base64.b64encode(p.read_bytes()).decode() for p in (tmp / "run").iterdir()},
                "notebook": out.read_text(encoding="utf-8") if out.is_file() else None}


def run_main(spec_path) -> int:
    """The run's own process: execute the notebook of ``spec_path``, write its status.json.

    Parameters
    ----------
    spec_path : str or Path
        A JSON file: :func:`run_task`'s spec plus ``input``, ``output``, ``cwd`` and ``status`` paths.
        The process exits when its parent dies.

    Returns
    -------
    int
        Exit code: 0 if the notebook ran (``status`` "ok"), 1 otherwise ("failed": an error in a
        cell or an interrupt; "error": anything else, which :func:`run_task` turns into RuntimeError).
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    parent = os.getppid()

    def watch_parent():  # a killed worker must not leave its run behind (the kernel watches us)
        while os.getppid() == parent:
            time.sleep(1)
        os._exit(1)

    threading.Thread(target=watch_parent, daemon=True).start()
    status, start = {"status": "error", "error": ""}, time.perf_counter()
    try:
        execute_notebook(spec["input"], spec["output"], spec["parameters"], kernel_name=spec["kernel_name"],
                         cwd=spec["cwd"], transport="ipc" if os.name == "posix" else "tcp")
        status["status"] = "ok"
    except KeyboardInterrupt:
        status.update(status="failed", error="interrupted")
    except Exception as err:
        if type(err).__name__ == "PapermillExecutionError":  # an error in a cell: the notebook's
            status.update(status="failed", error=f"{err.ename}: {err.evalue} (cell In [{err.exec_count}])")
        else:  # the kernel did not start or died, ...: not the notebook's, worth a retry
            status["error"] = f"{type(err).__name__}: {err}"
    status["seconds"] = round(time.perf_counter() - start, 3)
    Path(spec["status"]).write_text(json.dumps(status))
    return 0 if status["status"] == "ok" else 1


def _read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
