"""A JupyterLab server and a headless Chromium for tests: start, open a notebook, run all cells,
stop. Bounded waits everywhere; the server is always terminated (its process group).

Nothing depends on a click landing at the right moment: the news and update toasts are switched off
through the user settings (no toast can cover the page), "run all" goes through JupyterLab's command
registry (window.jupyterapp, exposed by the server flag below), and the run is watched for progress:
if the kernel never goes busy, or sits idle with cells left unrun, the test fails within a minute."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import json
import urllib.request
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
# without the background-networking flags chromium keeps calling hosts that a closed network refuses
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]


def chromium_path():
    if Path(CHROMIUM).exists():
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_lab(root_dir: Path, env: dict | None = None, timeout: float = 90):
    """Yields the base URL of a JupyterLab serving root_dir on 127.0.0.1 (no token)."""
    port = free_port()
    env = dict(env or {})
    settings = Path(env.setdefault("JUPYTERLAB_SETTINGS_DIR", str(Path(root_dir) / "lab-settings")))
    quiet_notifications(settings)
    log = open(Path(root_dir) / "jupyter.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         "--IdentityProvider.token=", "--ServerApp.password=", "--allow-root", f"--ServerApp.root_dir={root_dir}",
         "--LabApp.expose_app_in_browser=True"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {proc.returncode}: see {log.name}")
            try:
                urllib.request.urlopen(f"{url}/api/status", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jupyter lab did not answer on {url} in {timeout} s") from None
                time.sleep(0.5)
        yield url
    finally:
        # the whole group: the server and the kernels it started
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(timeout=10)
        log.close()


@contextmanager
def browser_page(width: int = 1500, height: int = 1300):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def quiet_notifications(settings_dir: Path):
    """User settings that switch the news feed and the update check off: no toast asks a question."""
    target = Path(settings_dir) / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))


PROMPTS = """() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim())"""
LAST_ERROR = """() => { const e = [...document.querySelectorAll(
    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")].filter(o => /Error|Traceback/.test(o.textContent));
    return e.length ? e[e.length - 1].textContent.trim().split('\\n').pop() : ''; }"""
KERNEL_STATUS = """() => { const w = window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return k ? k.status : 'none'; }"""


def open_and_run_all(page, url: str, notebook: str, screenshot: Path, stall_s: float = 60,
                     limit_s: float = 900):
    """Open the notebook, run all cells through the command registry and wait until every code cell
    has an execution count. Fails (after saving `screenshot`) if the kernel does not go busy within
    stall_s, if it sits idle for stall_s with cells left unrun, or after limit_s in all. Returns the
    number of tracebacks in the outputs."""
    try:
        page.goto(f"{url}/lab/tree/{notebook}")
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=stall_s * 1000)
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget", timeout=stall_s * 1000)
        page.wait_for_function(f"() => ({KERNEL_STATUS})() === 'idle'", timeout=stall_s * 1000)
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        # the kernel took the cells: a prompt shows [*] or a count (it may finish a short cell at once)
        page.wait_for_function(f"() => ({PROMPTS})().some(t => /\\[(\\*|\\d+)\\]/.test(t))",
                               timeout=stall_s * 1000)
        start, idle_since = time.monotonic(), None
        while True:
            prompts, status = page.evaluate(PROMPTS), page.evaluate(KERNEL_STATUS)
            if prompts and all(re_count(p) for p in prompts):
                break
            now = time.monotonic()
            idle = status == "idle" and not any("*" in p for p in prompts)
            error = page.evaluate(LAST_ERROR)
            if idle and error:  # run-all stops at a cell that raised: say which error, now
                raise AssertionError(f"a cell raised ({error}); cells: {prompts}")
            idle_since = (idle_since or now) if idle else None
            if idle_since is not None and now - idle_since > stall_s:
                raise AssertionError(f"the kernel is idle with cells left unrun: {prompts}")
            if now - start > limit_s:
                raise AssertionError(f"run all did not finish in {limit_s} s: {prompts}")
            page.wait_for_timeout(1000)
    except Exception:
        page.screenshot(path=str(screenshot), full_page=True)
        raise
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr'] :text('Traceback')")
    return errors.count()


def re_count(prompt: str) -> bool:
    """'[12]:' -> True; '[ ]:', '[*]:' -> False."""
    inner = prompt.strip().rstrip(":").strip("[]").strip()
    return inner.isdigit()


def drag(page, handle, dx: float):
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=8)
    page.mouse.up()
