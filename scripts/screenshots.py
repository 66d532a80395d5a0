"""Retake the dashboard's screenshots in docs/screenshots/: ``python scripts/screenshots.py``.

Starts the demo app under gunicorn (2 workers, embedded Redis, a throwaway instance folder),
creates an admin, drives ``monitor traffic``'s mix at 20 requests/s with an error-rate limit
low enough that the 5xx alert fires, and photographs the dashboard in Chromium: desktop in the
light and dark themes, and a phone. Needs the dev requirements (Playwright) and Chromium.
"""
import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.dev import traffic  # noqa: E402

PASSWORD = "screenshot-password"
SHOTS = (  # name, viewport, colour scheme
    ("dashboard-light", {"width": 1440, "height": 900}, "light"),
    ("dashboard-dark", {"width": 1440, "height": 900}, "dark"),
    ("dashboard-phone", {"width": 390, "height": 844}, "light"),
)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url, server, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            if requests.get(url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise SystemExit(f"gunicorn did not answer on {url}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--chromium", default=shutil.which("chromium") or None,
                        help="Chromium to drive (default: the one on PATH, else Playwright's own)")
    parser.add_argument("--warmup", type=float, default=45, help="seconds of traffic before the shots")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as instance:
        env = {**os.environ, "MONITOR_INSTANCE_PATH": instance, "WEB_CONCURRENCY": "2",
               "MONITOR_ALERT_ERROR_RATE": "0.03", "MONITOR_ALERT_PENDING_S": "10", "MONITOR_ALERT_WINDOW": "60"}
        env.pop("REDIS_URL", None)
        env.pop("PORT", None)
        server = subprocess.Popen([sys.executable, "-m", "gunicorn", "wsgi:app", "--bind", f"127.0.0.1:{port}"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_healthy(url, server)
            subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "monitor", "create-user", "admin",
                            "--role", "admin", "--password-stdin"], cwd=ROOT, env=env, input=PASSWORD + "\n",
                           text=True, check=True, stdout=subprocess.DEVNULL)
            driver = threading.Thread(target=traffic.run, args=(url, args.warmup + 60, 20.0), daemon=True)
            driver.start()
            time.sleep(args.warmup)
            shoot(url, args.out, args.chromium)
        finally:
            server.terminate()
            server.wait(30)


def shoot(url, out, chromium):
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for name, viewport, scheme in SHOTS:
            page = browser.new_page(viewport=viewport, color_scheme=scheme)
            page.goto(url + "/login")
            page.fill("#username", "admin")
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(url + "/admin/")
            page.click("#metrics-workers summary")
            page.wait_for_timeout(6000)  # a round of polls: charts, times, the alert badge
            page.evaluate("window.scrollTo(0, 0)")
            path = os.path.join(out, f"{name}.png")
            page.screenshot(path=path, full_page=True)
            print(path)
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
