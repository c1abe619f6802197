"""A FastAPI chat page served by `verb asgi`, in a real browser (Debian's Chromium through
Playwright, as tests/app/test_browser.py): two pages join, each sees the other's message, and
closing one page updates the other's count. Screenshots go to VERB_SCREENSHOT_DIR (default:
pytest's tmp_path)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.asgi_servers import AsgiProcess
from support.browser import browser_context, playwright_api


@pytest.mark.slow  # ~5 s: run by README's test command, not once more per wheel
def test_two_pages_chat_through_verb_asgi(tmp_path):
    sync_playwright, expect = playwright_api()
    shots = Path(os.environ.get("VERB_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with AsgiProcess("verb", "apps.fastapi_chat:app", tmp_path) as server, \
            sync_playwright() as playwright:
        context = browser_context(playwright, tmp_path / "profile")
        try:
            errors = []
            ada, bob = context.new_page(), context.new_page()
            for page in (ada, bob):
                page.on("pageerror", lambda error: errors.append(str(error)))
                page.goto(server.url + "/")
            expect(ada.locator("#status")).to_have_text("2 online")
            for page, name, text in ((ada, "Ada", "hello from Ada"), (bob, "Bob", "hi Ada")):
                page.fill("#name", name)
                page.fill("#text", text)
                page.click("#send")
                # Each message reaches the other page before the next is sent (order known).
                other = bob if page is ada else ada
                expect(other.locator("#messages")).to_contain_text(f"{name}: {text}")
            for page in (ada, bob):
                expect(page.locator("#messages li")).to_have_text(
                    ["Ada: hello from Ada", "Bob: hi Ada"])
            ada.screenshot(path=str(shots / "asgi-chat-ada.png"))
            bob.screenshot(path=str(shots / "asgi-chat-bob.png"))
            bob.close()
            expect(ada.locator("#status")).to_have_text("1 online")
            assert errors == []
        finally:
            context.close()
