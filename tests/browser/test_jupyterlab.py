"""Chapter 5's live learning-rate control in real JupyterLab, driven in headless Chromium as a student would:
open the chapter, run it (profile ci) up to its live control, move the learning-rate slider, press 'Run', and see
a new figure appear under the control. Nothing else runs this control in a browser: the static book shows a note.

The server is throwaway: 127.0.0.1 on a free port, config, data and runtime folders under tmp_path, a random
token that only the page's URL carries, stopped at the end even on failure. Off-machine requests are blocked.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest
from conftest import cifar_root
from test_book_in_browser import CHROMIUM_FLAGS, ROOT, SHOTS, _browser_path, _need

from bnutils import cache

NOTEBOOK = ROOT / "notebooks" / "05_learning_rate.ipynb"
RUN_TIMEOUT_MS = 150_000  # the chapter's cells up to the control at ci, then one click's training


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def notebook_up_to_live_control(folder: Path) -> Path:
    """A copy of the chapter without outputs, ending with its live-control cell (the cells after it are dropped)."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    live = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "live(" in c.source]
    assert live, f"{NOTEBOOK.name} has no live control (a code cell calling interactive.live)"
    nb.cells = nb.cells[:live[0] + 1]
    for c in nb.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    path = folder / NOTEBOOK.name
    nbformat.write(nb, path)
    return path


def server_env(tmp_path: Path, token: str) -> dict[str, str]:
    """The server's (and so the kernel's) environment: live (not static), profile ci, private Jupyter folders."""
    root = cifar_root()
    _need(root is not None, "no offline CIFAR-10 copy (../shared/data or $BNBOOK_DATA)")
    runs = tmp_path / "cache"  # a private run cache that still sees the decoded CIFAR-10 arrays of the real one
    runs.mkdir()
    for f in cache.cache_dir().glob("cifar10-*.npz"):
        (runs / f.name).symlink_to(f)
    settings = tmp_path / "lab-settings"
    tracker = settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings"
    tracker.parent.mkdir(parents=True)
    tracker.write_text(json.dumps({"windowingMode": "none"}))  # every cell in the DOM, whatever the scroll
    env = {k: v for k, v in os.environ.items() if k != "BNBOOK_STATIC"}
    env.update(BNBOOK_PROFILE="ci", BNBOOK_DATA=str(root), BNBOOK_CACHE=str(runs), JUPYTER_TOKEN=token,
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_DATA_DIR=str(tmp_path / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "workspaces"), IPYTHONDIR=str(tmp_path / "ipython"),
               PYTHONPATH=os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), str(ROOT)) if p))
    return env


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of the chapter (its log: tmp_path/jupyterlab.log); yields
    the notebook's URL."""
    _need(_browser_path() is not None, "no Chromium on this machine (apt-get install chromium)")
    token, port = secrets.token_hex(16), free_port()
    env = server_env(tmp_path, token)
    (tmp_path / "notebooks").mkdir()
    nb = notebook_up_to_live_control(tmp_path / "notebooks")
    log = tmp_path / "jupyterlab.log"
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={nb.parent}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True"]
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"JupyterLab exited:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"JupyterLab did not answer in 90 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield f"{base}/lab/tree/{nb.name}?token={token}"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


# Resolves when the last cell (the live control) has run and shows its widget, or any cell shows a traceback.
CELLS_DONE = """() => {
    const cells = document.querySelectorAll('.jp-Notebook .jp-Cell');
    for (const c of cells) {
        if (c.innerText.includes('Traceback (most recent call last)')) return 'error: ' + c.innerText.slice(-1500);
    }
    const last = cells[cells.length - 1];
    const prompt = last && last.querySelector('.jp-InputPrompt');
    const ran = /\\[\\d+\\]/.test(prompt ? prompt.innerText : '');  // '[*]' while running, '[n]' when done
    return ran && last.querySelector('.widget-interact') ? 'ok' : null;
}"""


def test_learning_rate_control_runs_in_jupyterlab(lab):
    from playwright.sync_api import sync_playwright

    external: list[str] = []

    def route(r) -> None:
        host = urlparse(r.request.url).hostname
        if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=_browser_path(), headless=True, args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.route("**/*", route)
        try:
            page.goto(lab, wait_until="load")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
            page.wait_for_function("() => window.jupyterapp?.shell.currentWidget?.sessionContext?.session"
                                   "?.kernel?.status === 'idle'", timeout=60_000)  # the notebook's kernel is up
            page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            done = page.wait_for_function(CELLS_DONE, timeout=RUN_TIMEOUT_MS).json_value()
            assert done == "ok", done

            control = page.locator(".jp-Notebook .jp-Cell").last.locator(".widget-interact")
            lr = control.locator(".widget-slider", has=page.locator(".widget-label", has_text="log10_lr"))
            steps = control.locator(".widget-slider", has=page.locator(".widget-label", has_text="steps"))
            lr.locator(".noUi-handle").press("End")  # the largest learning rate: no BN diverges there
            steps.locator(".noUi-handle").press("Home")  # the fewest steps, to keep the click short
            assert lr.locator(".widget-readout").inner_text().strip() == "0.50"
            assert steps.locator(".widget-readout").inner_text().strip() == "50"
            output = control.locator(".widget-output")
            assert output.locator("img").count() == 0, "a figure was there before the click"

            run = control.locator("button", has_text="Run")
            run.evaluate("""b => { window.ranOnce = false; let busy = false;  // disabled while the kernel runs it
                new MutationObserver(() => { if (b.disabled) busy = true; else if (busy) window.ranOnce = true; })
                    .observe(b, {attributes: true}); }""")
            run.click()
            page.wait_for_function("() => window.ranOnce", timeout=RUN_TIMEOUT_MS)
            output.locator("img").first.wait_for(timeout=15_000)
            page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                                   arg=output.locator("img").first.element_handle())
            assert "Traceback" not in output.inner_text()
            assert external == [], f"JupyterLab asked for off-machine resources: {external[:5]}"
        finally:
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "jupyterlab_05_learning_rate_live.png"), full_page=True)
            browser.close()
