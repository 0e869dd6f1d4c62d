"""What both browser suites share: the chromium recipe, the requirement checks and a ``streamlit run`` server."""
from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader"]


def browser_requirements() -> None:
    """Skip unless chromium, playwright and the offline 3Dmol.js are here."""
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"{CHROMIUM} is missing (make browser-deps installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not (ROOT / "static" / "3Dmol-min.js").is_file():
        pytest.skip("static/3Dmol-min.js is missing (make static/3Dmol-min.js installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def streamlit_server(env: dict, log_path: Path, start_timeout_s: float = 90):
    """``streamlit run app.py`` on a free local port with this environment; yields its URL once healthy
    (fails the test with the server's log if it never is) and stops it afterwards."""
    port = free_port()
    log = open(log_path, "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.address",
         "127.0.0.1", "--server.port", str(port), "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + start_timeout_s
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if process.poll() is not None or time.time() > deadline:
            log.seek(0)
            process.kill()
            pytest.fail(f"streamlit did not start:\n{log.read()[-3000:]}")
        time.sleep(0.3)
    try:
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def settle(page, timeout_s: float) -> None:
    """Wait until Streamlit has finished running the script (nothing stale, no progress bar, no spinner)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=30_000)
    page.wait_for_timeout(400)
    page.wait_for_function(
        "() => !document.querySelector('[data-stale=\"true\"]') && !document.querySelector('[data-testid=\"stProgress\"]')"
        " && !document.querySelector('[data-testid=\"stSpinner\"]')", timeout=timeout_s * 1000)
    page.wait_for_timeout(300)
