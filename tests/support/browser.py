"""Debian's Chromium, headless, driven by Playwright, for the browser tests (tests/app and
tests/asgi). Chromium must be at /usr/bin/chromium (scripts/bootstrap.sh installs the
`chromium` package); its absence FAILS a test rather than skipping it. Playwright drives it
through `executable_path`: `playwright install` (a browser download) is never needed."""

from __future__ import annotations

import os

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 10_000


def playwright_api():
    """Playwright's (sync_playwright, expect); a clear failure when it is not installed."""
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[test,browser]'", pytrace=False)
    return sync_playwright, expect


def browser_context(playwright, profile_dir):
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} not found: run scripts/bootstrap.sh, which installs Debian's "
                    "chromium package (apt-get install chromium)", pytrace=False)
    context = playwright.chromium.launch_persistent_context(
        str(profile_dir), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 640, "height": 560})
    context.set_default_timeout(TIMEOUT_MS)
    return context
