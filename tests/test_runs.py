"""Tests of kdlib.runs: papermill grid runs on Dask, metrics, summary.csv, reruns, CLI and plots.

The notebook runs (each starts a Jupyter kernel) share one module-scoped fixture, ``sweeps``,
that runs the toy notebook four times over overlapping grids in a temporary folder (on the
local in-process cluster). ``test_dask_cluster_survives_a_killed_worker`` starts a real
scheduler and two workers with the ``dask`` command line on 127.0.0.1 and kills one mid-sweep.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import csv
import io
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch

from kdlib import runs

TOY = Path(__file__).parent / "fixtures" / "runs_toy.ipynb"


def _mtimes(out):
    return {p.parent.name: p.stat().st_mtime_ns for p in Path(out).glob("*/notebook.ipynb")}


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    """Four sweeps into one folder; returns what each produced."""
    out = tmp_path_factory.mktemp("sweep") / "out"
    res = {"out": out}

    def cli(key, *args):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            rc = runs.main([str(TOY), *args, "--out", str(out), "--jobs", "2", "--no-progress"])
        res[key] = {"rc": rc, "stdout": buf.getvalue(), "mtimes": _mtimes(out),
                    "csv": (out / "summary.csv").read_text()}

    # A: 2 x 2 grid, half of it fails.
    cli("A", "--grid", "lam=0.5,1", "--grid", "fail=false,true", "--param", "T=3")
    # B: the same grid, options in the other order: the ok runs are skipped, the failed retried.
    cli("B", "--grid", "fail=false,true", "--grid", "lam=0.5,1", "--param", "T=3")
    # C: an overlapping grid through the Python API: only lam=1.5 is new.
    res["C"] = {"rows": runs.run_grid(TOY, {"lam": [1, 1.5]}, out=out, jobs=2,
                                      extra_params={"fail": False, "T": 3}, progress=False)}
    res["C"]["mtimes"] = _mtimes(out)
    res["C"]["csv"] = (out / "summary.csv").read_text()
    # D: C again from the command line: nothing runs.
    cli("D", "--grid", "lam=1,1.5", "--param", "fail=false", "--param", "T=3")
    return res


def _csv_rows(text):
    return list(csv.DictReader(text.splitlines()))


# --------------------------------------------------------------------------- runs through papermill


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_failing_point_is_reported_and_the_rest_summarised(sweeps):
    a = sweeps["A"]
    assert a["rc"] == 1
    assert "2 ok, 2 failed, 0 skipped" in a["stdout"]
    assert str(sweeps["out"] / "summary.csv") in a["stdout"]
    rows = _csv_rows(a["csv"])
    assert [r["run_id"] for r in rows] == ["lam=0.5__T=3__fail=False", "lam=0.5__T=3__fail=True",
                                          "lam=1__T=3__fail=False", "lam=1__T=3__fail=True"]
    assert list(rows[0])[:7] == ["run_id", "lam", "T", "fail", "status", "error", "seconds"]
    for r in rows:
        failing = r["fail"] == "True"
        assert r["status"] == ("failed" if failing else "ok")
        if failing:
            assert r["error"].startswith("RuntimeError: asked to fail")
            assert r["score"] == "" and r["label"] == ""
            # the partial notebook exists, holds the error, and its path is printed
            nb_path = sweeps["out"] / r["run_id"] / "notebook.ipynb"
            assert f"notebook: {nb_path}" in a["stdout"]
            nb = nbformat.read(nb_path, as_version=4)
            errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                      if o.output_type == "error"]
            assert [(e.ename, e.evalue) for e in errors] == [("RuntimeError", "asked to fail")]
            status = json.loads((sweeps["out"] / r["run_id"] / "status.json").read_text())
            assert status["status"] == "failed" and status["notebook"] == str(nb_path)
            assert status["parameters"] == {"lam": runs.parse_grid_value(r["lam"]), "T": 3, "fail": True}
        else:
            assert r["error"] == ""
            assert float(r["seconds"]) > 0


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_recorded_metrics_are_numbers_in_the_summary(sweeps):
    rows = _csv_rows(sweeps["A"]["csv"])
    ok = [r for r in rows if r["status"] == "ok"]
    assert [float(r["score"]) for r in ok] == [0.5 * 3, 1 * 3]
    assert [r["label"] for r in ok] == ["x", "x"]
    metrics = json.loads((sweeps["out"] / "lam=0.5__T=3__fail=False" / "metrics.json").read_text())
    assert metrics == {"score": 1.5, "label": "x", "shipped_kdlib": True}  # the client's kdlib ran
    parsed = runs.read_summary(sweeps["out"] / "summary.csv")  # after sweep D: lam=1, 1.5
    assert [(r["lam"], r["T"], r["fail"], r["score"], r["status"], r["error"]) for r in parsed] == [
        (1, 3, False, 3, "ok", ""), (1.5, 3, False, 4.5, "ok", "")]
    assert isinstance(parsed[1]["score"], float) and isinstance(parsed[0]["seconds"], float)


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_rerun_skips_ok_runs_and_retries_failed_ones(sweeps):
    a, b = sweeps["A"], sweeps["B"]
    assert b["rc"] == 1
    assert "0 ok, 2 failed, 2 skipped" in b["stdout"]
    for rid, mtime in a["mtimes"].items():
        if rid.endswith("fail=False"):
            assert b["mtimes"][rid] == mtime  # not executed again
        else:
            assert b["mtimes"][rid] > mtime  # retried
    drop_seconds = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]
    assert drop_seconds(_csv_rows(b["csv"])) == drop_seconds(_csv_rows(a["csv"]))


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_overlapping_grid_runs_only_new_points(sweeps):
    b, c = sweeps["B"], sweeps["C"]
    rows = c["rows"]
    assert [(r["run_id"], r["skipped"], r["status"]) for r in rows] == [
        ("lam=1__T=3__fail=False", True, "ok"), ("lam=1.5__T=3__fail=False", False, "ok")]
    assert [r["score"] for r in rows] == [3, 4.5]
    assert set(c["mtimes"]) - set(b["mtimes"]) == {"lam=1.5__T=3__fail=False"}
    assert all(c["mtimes"][k] == v for k, v in b["mtimes"].items())
    # summary.csv holds the current grid only, although the folder has five runs
    assert [r["run_id"] for r in _csv_rows(c["csv"])] == [r["run_id"] for r in rows]
    assert len(list(sweeps["out"].glob("*/status.json"))) == 5


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_rerun_of_a_finished_grid_runs_nothing(sweeps):
    d = sweeps["D"]
    assert d["rc"] == 0
    assert "0 ok, 0 failed, 2 skipped" in d["stdout"]
    assert d["mtimes"] == sweeps["C"]["mtimes"]
    assert d["csv"] == sweeps["C"]["csv"]


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_interrupt_keeps_finished_runs_and_exits_130(tmp_path):
    """Ctrl-C (SIGINT to the runner) stops the running run, skips the rest, writes the summary."""
    out, scratch = tmp_path / "out", tmp_path / "scratch"
    scratch.mkdir()
    code = ("import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
            "from kdlib.runs import main; sys.exit(main(sys.argv[1:]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(TOY), "--grid", "sleep=0,30,0.25",
                             "--out", str(out), "--no-progress"], cwd=tmp_path,
                            env={**os.environ, "TMPDIR": str(scratch)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # Wait until the first run has finished and the second one (sleeping 30 s) is executing:
    # papermill has written its output notebook in the run's private temporary folder.
    while proc.poll() is None and not ((out / "sleep=0" / "status.json").exists()
                                       and list(scratch.glob("kdlib-run-sleep=30-*/notebook.ipynb"))):
        try:
            proc.wait(timeout=0.1)
        except subprocess.TimeoutExpired:
            pass
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate()
    assert proc.returncode == 130, output
    rows = runs.read_summary(out / "summary.csv")
    assert [(r["run_id"], r["status"], r["score"]) for r in rows] == [("sleep=0", "ok", 0.5)]
    status = json.loads((out / "sleep=30" / "status.json").read_text())
    assert (status["status"], status["error"]) == ("failed", "interrupted")
    assert not (out / "sleep=0.25").exists()
    assert list(scratch.glob("kdlib-run-*")) == []  # the run's temporary folder is gone


# --------------------------------------------------------------------------- record()


def test_record_outside_the_runner_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.delenv(runs.RUN_DIR_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    assert runs.record("acc", 0.75) == 0.75
    assert runs.record("n", np.int64(7)) == 7 and type(runs.recorded()["n"]) is int
    assert list(tmp_path.iterdir()) == []
    assert runs.recorded()["acc"] == 0.75


def test_record_in_a_run_folder_merges_metrics_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv(runs.RUN_DIR_ENV, str(tmp_path))
    runs.record("loss", torch.tensor(0.25))
    runs.record("flag", np.bool_(True))
    runs.record("loss", np.float32(0.5))  # replaces
    runs.record("name", "cnn")
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"loss": 0.5, "flag": True, "name": "cnn"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]  # no temporary files left
    value = runs.record("steps", torch.tensor(3))
    assert value == 3 and type(value) is int


@pytest.mark.parametrize("name, value, exc", [("", 1.0, ValueError), ("  ", 1.0, ValueError),
                                               (3, 1.0, TypeError), ("acc", None, TypeError),
                                               ("acc", [1.0], TypeError), ("acc", np.zeros(2), TypeError),
                                               ("acc", torch.zeros(2), TypeError)])
def test_record_rejects_bad_arguments(name, value, exc, monkeypatch):
    monkeypatch.delenv(runs.RUN_DIR_ENV, raising=False)
    with pytest.raises(exc, match="name|value"):
        runs.record(name, value)


# --------------------------------------------------------------------------- parsing and ids


@pytest.mark.parametrize("text, expected", [("0", 0), ("-2", -2), (" 4 ", 4), ("0.5", 0.5), ("1e-3", 1e-3),
                                            (".5", 0.5), ("true", True), ("False", False),
                                            ("cnn", "cnn"), ("1_000", 1000), ("0.5x", "0.5x"),
                                            ("TRUE", True), ("a,b", "a,b")])
def test_parse_grid_value(text, expected):
    value = runs.parse_grid_value(text)
    assert value == expected and type(value) is type(expected)


def test_parse_grid_value_nan():
    assert math.isnan(runs.parse_grid_value("nan"))


def test_run_id_is_readable_stable_and_unique():
    assert runs.run_id({"lam": 0.5, "T": 4}) == "lam=0.5__T=4"
    assert runs.run_id({"lam": 0.5, "T": 4.0}) == "lam=0.5__T=4"  # equal numbers, same run
    assert runs.run_id({"flag": True, "name": "cnn"}) == "flag=True__name=cnn"
    assert runs.run_id({}) == "default"
    slash = runs.run_id({"name": "a/b"})
    assert re.fullmatch(r"name=a-b-h[0-9a-f]{8}", slash)
    assert slash == runs.run_id({"name": "a/b"}) != runs.run_id({"name": "a-b"}) == "name=a-b"
    assert runs.run_id({"name": "a b"}) != slash
    long1, long2 = (runs.run_id({"name": "x" * 200 + end}) for end in "12")
    assert len(long1) <= 100 and long1 != long2
    assert runs.run_id({"s": "x__y"}) != runs.run_id({"s": "x", "y": ""})


@pytest.mark.parametrize("args, message", [
    (["--grid", "lam="], "empty value"),
    (["--grid", "lam=0,,1"], "empty value"),
    (["--grid", "lam"], "name=value"),
    (["--grid", "lam=0", "--grid", "lam=1"], "given twice"),
    (["--grid", "lam=0", "--param", "lam=1"], "given twice"),
    (["--grid", "lam=0,0.0"], "repeats"),
    (["--grid", "nope=1"], "'nope' is not a parameter of runs_toy.ipynb; its parameters are: lam, T, fail"),
    (["--param", "nope=1"], "its parameters are: lam, T, fail, sleep"),
    (["--grid", "lam=1", "--jobs", "0"], "--jobs"),
])
def test_cli_argument_errors_exit_2(args, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        runs.main([str(TOY), *args, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # nothing ran


def test_run_grid_argument_errors(tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="its parameters are: lam, T, fail, sleep"):
        runs.run_grid(TOY, {"lambda": [0.5]}, out=out)
    with pytest.raises(ValueError, match="jobs=0"):
        runs.run_grid(TOY, {"lam": [0.5]}, out=out, jobs=0)
    with pytest.raises(ValueError, match="empty"):
        runs.run_grid(TOY, {"lam": []}, out=out)
    with pytest.raises(TypeError, match="list of values"):
        runs.run_grid(TOY, {"lam": 0.5}, out=out)
    with pytest.raises(ValueError, match="does not exist"):
        runs.run_grid(tmp_path / "missing.ipynb", {"lam": [0.5]}, out=out)
    with pytest.raises(ValueError, match="no 'parameters'-tagged cell"):
        plain = tmp_path / "plain.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), plain)
        runs.run_grid(plain, {"x": [1]}, out=out)
    assert not out.exists()


# --------------------------------------------------------------------------- summary files and plots


def test_write_and_read_summary_round_trip(tmp_path):
    rows = [{"run_id": "a", "lam": 0, "status": "ok", "error": "", "seconds": 1.25, "acc": 0.1 + 0.2,
             "skipped": True, "notebook": "x"},
            {"run_id": "b", "lam": 0.5, "status": "failed", "error": "Boom, \"quoted\"\nline",
             "seconds": 0.5, "acc": None}]
    path = tmp_path / "summary.csv"
    runs.write_summary(path, rows)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.csv"]
    back = runs.read_summary(path)
    assert back == [{"run_id": "a", "lam": 0, "status": "ok", "error": "", "seconds": 1.25, "acc": 0.1 + 0.2},
                    {"run_id": "b", "lam": 0.5, "status": "failed", "error": "Boom, \"quoted\"\nline",
                     "seconds": 0.5, "acc": None}]


def _summary_rows():
    rng = np.random.default_rng(0)
    rows = []
    for T in (1, 4):
        for lam in (0.0, 0.5, 1.0):
            for seed in range(3):
                rows.append({"lam": lam, "T": T, "seed": seed, "status": "ok",
                             "val_acc": float(lam + T + rng.normal())})
    rows.append({"lam": 0.5, "T": 1, "seed": 9, "status": "failed", "val_acc": None})
    return rows


def test_plot_summary_mean_and_sd_per_hue():
    rows = _summary_rows()
    fig = runs.plot_summary(rows, "lam", "val_acc", hue="T")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["T=1", "T=4"]
    assert len(ax.containers) == 2
    for T, container in zip((1, 4), ax.containers):
        data_line, _caps, (bars,) = container.lines
        for lam, (x, y), seg in zip((0.0, 0.5, 1.0), data_line.get_xydata(), bars.get_segments()):
            ys = np.array([r["val_acc"] for r in rows if r["T"] == T and r["lam"] == lam and r["val_acc"]])
            assert len(ys) == 3
            assert x == lam and y == pytest.approx(ys.mean())
            assert seg[1][1] - seg[0][1] == pytest.approx(2 * ys.std(ddof=1))
    assert ax.get_xlabel() == "lam" and ax.get_ylabel() == "val_acc"


def test_plot_summary_categorical_x_and_errors():
    rows = [{"init": "copy", "acc": 0.9}, {"init": "random", "acc": 0.7}, {"init": "copy", "acc": 0.8}]
    ax = runs.plot_summary(rows, "init", "acc").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["copy", "random"]
    assert ax.containers[0].lines[0].get_ydata() == pytest.approx([0.85, 0.7])
    with pytest.raises(ValueError, match="columns are: acc, init"):
        runs.plot_summary(rows, "lam", "acc")
    with pytest.raises(ValueError, match="empty"):
        runs.plot_summary([], "init", "acc")


def test_cli_plot_writes_a_png(tmp_path, capsys):
    csv_path = tmp_path / "summary.csv"
    runs.write_summary(csv_path, _summary_rows())
    png = tmp_path / "plot.png"
    assert runs.main(["--plot", str(csv_path), "--x", "lam", "--y", "val_acc", "--hue", "T",
                      "--png", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert runs.main(["--plot", str(csv_path), "--x", "lam", "--y", "val_acc"]) == 0
    assert (tmp_path / "val_acc_vs_lam.png").exists()
    with pytest.raises(SystemExit) as exc:
        runs.main(["--plot", str(csv_path), "--x", "lam", "--y", "nope"])
    assert exc.value.code == 2
    assert "columns are" in capsys.readouterr().err


def test_module_runs_as_a_script():
    done = subprocess.run([sys.executable, "-m", "kdlib.runs", "--help"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(Path(runs.__file__).parents[1])})
    assert done.returncode == 0 and "--grid" in done.stdout


def _error_notebook(path, tagged):
    from nbformat.v4 import new_code_cell, new_notebook

    boom = new_code_cell("raise ValueError('shown on purpose')")
    if tagged:
        boom.metadata["tags"] = ["raises-exception"]
    nb = new_notebook(cells=[new_code_cell("x = 1"), boom, new_code_cell("print('after', x + 1)")])
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nb, path)
    return path


@pytest.mark.slow  # starts kernels
@pytest.mark.parametrize("tagged", [False, True], ids=["untagged", "raises-exception"])
def test_execute_notebook_is_plain_papermill_and_fails_on_any_error(tagged, tmp_path, capsys):
    """No tolerance: even a cell tagged raises-exception fails the run, as plain papermill does."""
    import papermill

    src = _error_notebook(tmp_path / "in.ipynb", tagged=tagged)
    with pytest.raises(papermill.PapermillExecutionError, match="shown on purpose"):
        runs.execute_notebook(src, tmp_path / "out.ipynb")
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert "papermill-error-cell-tag" in executed.cells[0].metadata.get("tags", [])  # the banner stays
    assert runs.main([str(src), "--execute", str(tmp_path / "cli.ipynb")]) == 1
    assert "FAILED" in capsys.readouterr().err


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_execute_notebook_cli_runs_a_clean_notebook(tmp_path, capsys):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(6 * 7)")])
    nbformat.write(nb, tmp_path / "in.ipynb")  # no kernel metadata: taken to be Python
    assert runs.main([str(tmp_path / "in.ipynb"), "--execute", str(tmp_path / "cli.ipynb")]) == 0
    assert nbformat.read(tmp_path / "cli.ipynb", as_version=4).cells[0].outputs[0]["text"] == "42\n"


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_execute_notebook_over_ipc_sockets_in_its_own_folder(tmp_path):
    """transport="ipc" (what every sweep run uses): Unix sockets in cwd, no TCP port to race for."""
    code = ("import os\nfrom ipykernel import get_connection_info\n"
            "info = get_connection_info(unpack=True)\nprint(info['transport'], os.getcwd())")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)]), tmp_path / "in.ipynb")
    (tmp_path / "cwd").mkdir()
    nb = runs.execute_notebook(tmp_path / "in.ipynb", tmp_path / "out.ipynb", cwd=tmp_path / "cwd",
                               transport="ipc")
    assert nb.cells[-1].outputs[0]["text"] == f"ipc {tmp_path / 'cwd'}\n"
    with pytest.raises(ValueError, match="transport must be 'tcp' or 'ipc', got 'udp'"):
        runs.execute_notebook(tmp_path / "in.ipynb", tmp_path / "out.ipynb", transport="udp")


def test_patched_polling_never_waits_unbounded():
    """The lost wake-up: an unbounded poll can block although a message is queued.

    After patch_kernel_client_polling, get_msg(timeout=None) polls in short slices
    (never poll(None)), so it returns the queued message; a finite timeout still
    raises Empty when nothing comes.
    """
    import asyncio
    from queue import Empty

    from jupyter_client.channels import AsyncZMQSocketChannel

    runs.patch_kernel_client_polling()
    runs.patch_kernel_client_polling()  # idempotent

    class FakeSocket:
        def __init__(self, queued):
            self.queued, self.polls = queued, []

        async def poll(self, timeout_ms):
            self.polls.append(timeout_ms)
            if timeout_ms is None:  # the unbounded poll that can miss the wake-up
                await asyncio.Event().wait()
            return int(bool(self.queued))

    def channel(queued):
        ch = AsyncZMQSocketChannel.__new__(AsyncZMQSocketChannel)
        ch.socket = FakeSocket(queued)

        async def _recv():
            return ch.socket.queued.pop(0)

        ch._recv = _recv
        return ch

    def run(make_coro):  # in a thread of its own: a browser test's event loop may run in this one
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(make_coro())).result()

    ch = channel([{"msg": 1}])
    assert run(lambda: asyncio.wait_for(ch.get_msg(timeout=None), 5)) == {"msg": 1}
    assert None not in ch.socket.polls
    empty = channel([])
    with pytest.raises(Empty):
        run(lambda: empty.get_msg(timeout=0.2))
    assert None not in empty.socket.polls


# --------------------------------------------------------------------------- a real Dask cluster


@pytest.mark.slow  # starts kernels / waits for a scheduler
def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT", "1s")
    import dask

    dask.config.refresh()
    try:
        rc = runs.main([str(TOY), "--grid", "lam=1", "--scheduler", "tcp://127.0.0.1:9", "--out",
                        str(tmp_path / "out"), "--no-progress"])
    finally:
        monkeypatch.undo()
        dask.config.refresh()
    assert rc == 2
    assert "cannot reach the Dask scheduler --scheduler tcp://127.0.0.1:9" in capsys.readouterr().err



def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def dask_cluster(tmp_path, request):
    """A scheduler and two one-thread workers, started with the ``dask`` CLI on 127.0.0.1.

    Yields (address, a client for watching, the two worker ``Popen``s, each its own process
    group). Every process group is killed afterwards, whatever happened. An indirect
    parameter (a dict) adds environment variables (Dask configuration) to all three.
    """
    env = {**os.environ, "TMPDIR": str(tmp_path), **getattr(request, "param", {})}  # a killed run's folder
    from distributed import Client

    dask_cli = str(Path(sys.executable).with_name("dask"))
    address = f"tcp://127.0.0.1:{_free_port()}"
    procs, client = [], None

    def start(name, *args):
        with open(tmp_path / f"{name}.log", "wb") as log:
            procs.append(subprocess.Popen([dask_cli, *args], stdout=log, stderr=subprocess.STDOUT, env=env,
                                          stdin=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True))
        return procs[-1]

    try:
        start("scheduler", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1],
              "--no-dashboard")
        workers = [start(f"worker{i}", "worker", address, "--host", "127.0.0.1", "--nworkers", "1",
                         "--nthreads", "1", "--no-dashboard", "--local-directory", str(tmp_path / f"w{i}"))
                   for i in range(2)]
        client = Client(address, timeout="120s")
        client.wait_for_workers(2, timeout=180)
        yield address, client, workers
    finally:
        if client is not None:
            client.close()
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)


@pytest.mark.slow
def test_dask_cluster_survives_a_killed_worker(dask_cluster, tmp_path):
    """Kill one of two workers (its whole process group) mid-sweep: the summary is complete."""
    address, client, workers = dask_cluster
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "kdlib.runs", str(TOY), "--grid", "sleep=3,3.1,3.2,3.3",
           "--scheduler", address, "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim, deadline = None, time.monotonic() + 600  # our own bound, never an assertion on time
        while victim is None and proc.poll() is None and time.monotonic() < deadline:
            busy = [w for w, keys in client.processing().items() if any("kdlib-run-" in str(k) for k in keys)]
            if busy:
                time.sleep(1)  # the run is under way on that worker (its kernel starting or sleeping 3 s)
                pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                victim = next(w for w in workers if os.getpgid(pid) == w.pid)
            else:
                time.sleep(0.2)
        assert victim is not None, "no run started on the cluster"
        os.killpg(victim.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "4 ok, 0 failed, 0 skipped" in output
    rows = runs.read_summary(out / "summary.csv")
    assert [(r["sleep"], r["status"], r["score"], r["shipped_kdlib"]) for r in rows] == [
        (s, "ok", 0.5, True) for s in (3, 3.1, 3.2, 3.3)]
    assert len(client.scheduler_info()["workers"]) == 1  # the survivor did the rest
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "0 ok, 0 failed, 4 skipped" in again.stdout, again.stdout + again.stderr


@pytest.mark.slow
@pytest.mark.parametrize("dask_cluster", [{"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1"}],
                         indirect=True, ids=["allowed_failures=1"])
def test_a_run_whose_workers_keep_dying_is_reported_failed_and_the_rest_finish(dask_cluster, tmp_path):
    """A run whose kernel kills every worker it lands on ends failed, with the reason; the other is ok."""
    nb = nbformat.read(TOY, as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(
        "import os, signal, psutil\n"
        "if lam > 1:  # kernel -> run process -> worker: kill the worker\n"
        "    os.kill(psutil.Process(os.getppid()).ppid(), signal.SIGKILL)"))
    path = tmp_path / "toy_killer.ipynb"
    nbformat.write(nb, path)
    done = subprocess.run([sys.executable, "-m", "kdlib.runs", str(path), "--grid", "lam=0.5,2",
                           "--scheduler", dask_cluster[0], "--out", "out", "--no-progress"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert done.returncode == 1, done.stdout + done.stderr
    rows = runs.read_summary(tmp_path / "out" / "summary.csv")
    assert [(r["lam"], r["status"]) for r in rows] == [(0.5, "ok"), (2, "failed")]
    assert "KilledWorker" in rows[1]["error"]
    assert "FAILED lam=2" in done.stdout
