"""Headless Chromium for the tests that check what a page shows (the report)."""

import shutil
import subprocess

import pytest


def chromium_or_skip() -> str:
    """The chromium binary, or skip the test (CI installs it: .ci/run)."""
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    return browser


def chromium(browser: str, tmp_path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a throw-away profile under `tmp_path` and `args` (a
    --screenshot or --dump-dom and the page's URL); its console lines land in stderr."""
    profile = tmp_path / "profile"
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    shutil.rmtree(profile, ignore_errors=True)
    return proc


def console_lines(proc: subprocess.CompletedProcess) -> list[str]:
    """The page's console messages (errors of its scripts or images)."""
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
