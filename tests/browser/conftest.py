"""Fixtures for the browser tests: a JupyterLab server and headless Chromium.

``lab`` (session) starts ``jupyter lab`` on 127.0.0.1 with a random token, every Jupyter
folder (runtime, config, data, settings, workspaces) and ``$KDLIB_DATA`` in a temporary
directory, and serves a temporary root into which the notebooks under test are copied, so
the tests never write into the repository. ``browser`` (session) launches the system
Chromium through Playwright (``playwright install`` is not needed); ``page`` (per test)
opens a fresh browser context and, when the test fails, saves a screenshot, the page's
console and the server log under ``$KDLAB_TEST_ARTIFACTS`` (default: a ``browser-artifacts``
folder under pytest's temporary directory; its path is printed in the failure report).

Without Chromium every browser test is skipped with the reason; with Chromium, failures
fail.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SERVER_START_TIMEOUT_S = 120  # JupyterLab needs ~5 s here; generous for a loaded CI runner
CHROMIUM_ARGS = [
    # Running as root (containers, CI) needs --no-sandbox; the rest keeps Chromium from
    # contacting Google services, whose refused connections in a closed network stall it.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
]
USER_SETTINGS = {
    # No news/update toasts (they make network requests and cover the notebook).
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False, "doNotDisturbMode": True,
    },
    # Never write the served copies back behind the test's back.
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # Keep every cell attached to the DOM, so locators find widgets in long notebooks.
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def find_chromium() -> str | None:
    """Path of the system Chromium, or ``None`` when there is none."""
    found = shutil.which("chromium")
    if found:
        return found
    fallback = Path("/usr/bin/chromium")
    return str(fallback) if fallback.is_file() and os.access(fallback, os.X_OK) else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mirror_data(src: Path, dst: Path) -> None:
    """Make ``dst`` a writable stand-in for the repository's ``data/`` folder.

    The large read-only ``.gz`` files are symlinked; everything else (checkpoints ``*.pt``,
    READMEs) is copied, so a notebook that saves a checkpoint writes into ``dst`` only.
    """
    dst.mkdir(parents=True, exist_ok=True)
    if not src.is_dir():
        return
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.suffix == ".gz":
            target.symlink_to(path.resolve())
        else:
            shutil.copy2(path, target)


@dataclass
class LabServer:
    """A running JupyterLab: its URL, token, served root and log file."""

    url: str
    token: str
    root: Path
    log_path: Path
    data_dir: Path
    process: subprocess.Popen = field(repr=False)

    def serve(self, notebook: str | Path) -> str:
        """Copy a repository notebook (with its folder) into the served root.

        Parameters
        ----------
        notebook : str or Path
            Path relative to the repository root, e.g. ``notebooks/02_soft_targets.ipynb``.

        Returns
        -------
        str
            The notebook's path relative to the served root (POSIX), as JupyterLab names it.
        """
        rel = Path(notebook)
        if rel.is_absolute():
            rel = rel.relative_to(REPO_ROOT)
        src_dir = REPO_ROOT / rel.parent
        dst_dir = self.root / rel.parent
        if not dst_dir.exists():
            shutil.copytree(src_dir, dst_dir, symlinks=True,
                            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        if not (dst_dir / rel.name).is_file():
            raise FileNotFoundError(f"notebook {notebook!s} not found under {REPO_ROOT}")
        return rel.as_posix()

    def _api(self, method: str, endpoint: str):
        request = urllib.request.Request(f"{self.url}/api/{endpoint}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body else None

    def shutdown_sessions(self) -> None:
        """Shut down every notebook session (and its kernel), so tests don't pile up kernels."""
        for session in self._api("GET", "sessions"):
            self._api("DELETE", f"sessions/{session['id']}")

    def log_tail(self, n_chars: int = 4000) -> str:
        """The last ``n_chars`` characters of the server log."""
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""


def _wait_until_ready(url: str, token: str, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    status_url = f"{url}/api/status?token={token}"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with code {process.returncode}:\n"
                               f"{log_path.read_text(errors='replace')[-4000:]}")
        try:
            with urllib.request.urlopen(status_url, timeout=5) as response:
                if response.status == 200:
                    json.loads(response.read())
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"jupyter lab did not answer {url}/api/status within "
                       f"{SERVER_START_TIMEOUT_S} s:\n{log_path.read_text(errors='replace')[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    """Terminate the server's whole process group (server and kernels), then kill it."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """The system Chromium; skips every browser test when there is none."""
    path = find_chromium()
    if path is None:
        pytest.skip("browser tests need Chromium: no `chromium` on PATH and no /usr/bin/chromium "
                    "(install it with `apt-get install -y chromium`)")
    return path


@contextlib.contextmanager
def running_lab(base: Path, *, user_settings: dict | None = None,
                app_settings_dir: Path | None = None) -> Iterator[LabServer]:
    """Run a JupyterLab server whose every folder lives under ``base``; stop it on exit.

    Parameters
    ----------
    base : Path
        An empty folder: the served root, the Jupyter folders and the log go under it.
    user_settings : dict, optional
        ``{"<plugin>.jupyterlab-settings" path: values}`` written into its user settings folder.
    app_settings_dir : Path, optional
        ``--LabApp.app_settings_dir`` (where JupyterLab reads ``overrides.json``); default: the
        application's own, ``{sys.prefix}/share/jupyter/lab/settings``.
    """
    root = base / "root"
    root.mkdir()
    dirs = {name: base / name for name in ("runtime", "config", "data", "settings", "workspaces",
                                           "ipython", "mplconfig", "kdlib-data")}
    for path in dirs.values():
        path.mkdir()
    for rel, values in (user_settings or {}).items():
        target = dirs["settings"] / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=2))
    _mirror_data(REPO_ROOT / "data", dirs["kdlib-data"])

    env = dict(os.environ)
    env.update({
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_DATA_DIR": str(dirs["data"]),
        "JUPYTERLAB_SETTINGS_DIR": str(dirs["settings"]),
        "JUPYTERLAB_WORKSPACES_DIR": str(dirs["workspaces"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "MPLCONFIGDIR": str(dirs["mplconfig"]),
        "KDLIB_DATA": str(dirs["kdlib-data"]),
        "JUPYTER_PLATFORM_DIRS": "1",
        "PYTHONUNBUFFERED": "1",
    })
    env.pop("JUPYTER_TOKEN", None)
    token = secrets.token_hex(16)
    port = _free_port()
    log_path = base / "jupyterlab.log"
    command = [
        sys.executable, "-m", "jupyter", "lab",
        "--no-browser", "--ip=127.0.0.1", f"--port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--allow-root",
        "--LabApp.expose_app_in_browser=True",  # window.jupyterapp: run commands by id
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--ServerApp.terminals_enabled=False",
        *([f"--LabApp.app_settings_dir={app_settings_dir}"] if app_settings_dir else []),
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(url, token, process, log_path)
        yield LabServer(url=url, token=token, root=root, log_path=log_path,
                        data_dir=dirs["kdlib-data"], process=process)
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def lab(chromium_path, tmp_path_factory) -> LabServer:
    """A JupyterLab server whose every folder lives in a temporary directory."""
    with running_lab(tmp_path_factory.mktemp("jupyterlab"), user_settings=USER_SETTINGS) as server:
        yield server


@pytest.fixture(scope="session")
def lab_factory(chromium_path):
    """:func:`running_lab`, for a test that needs a JupyterLab of its own (other settings)."""
    return running_lab


@pytest.fixture(scope="session")
def browser(chromium_path):
    """Headless system Chromium driven by Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir(tmp_path_factory) -> Path:
    """Where failure screenshots go: ``$KDLAB_TEST_ARTIFACTS`` or pytest's temporary folder."""
    env = os.environ.get("KDLAB_TEST_ARTIFACTS")
    path = Path(env) if env else tmp_path_factory.mktemp("browser-artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so fixtures can tell whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, lab, artifacts_dir, request):
    """A fresh page (1400×1000) in its own context; saves screenshot + logs on failure."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda msg: console.append(f"[{msg.type}] {msg.text}"))
    page.on("pageerror", lambda err: console.append(f"[pageerror] {err}"))
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")
        shot = artifacts_dir / f"{stem}.png"
        try:
            page.screenshot(path=str(shot), full_page=True)
        except Exception as exc:  # the page may have crashed: keep the other artifacts
            console.append(f"[screenshot failed] {exc}")
        (artifacts_dir / f"{stem}.console.txt").write_text("\n".join(console))
        shutil.copy2(lab.log_path, artifacts_dir / f"{stem}.jupyterlab.log")
        report.sections.append(("browser artifacts", f"screenshot, console and server log: "
                                                     f"{artifacts_dir}/{stem}.*"))
        report.sections.append(("browser console (tail)", "\n".join(console[-40:])))
        report.sections.append(("jupyterlab log (tail)", lab.log_tail()))
    context.close()
    lab.shutdown_sessions()
