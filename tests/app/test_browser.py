"""The chat example's page in a real browser: Debian's Chromium, headless, driven by Playwright.

Two pages (two tabs of one fresh profile) load http://127.0.0.1:<port>/ from examples/chat.py,
join under two names and exchange messages through the server.

Chromium must be at /usr/bin/chromium: scripts/bootstrap.sh installs it (apt package
`chromium`). Its absence FAILS this test rather than skipping it, so a machine that lost the
browser cannot pass silently. Playwright comes from PyPI (the `test` extra) and drives that
Chromium through `executable_path`; `playwright install` (a browser download) is never needed.
Set VERB_SCREENSHOT_DIR to keep the screenshots of the two pages (default: pytest's tmp_path).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.browser import browser_context, playwright_api
from support.example_loader import ExampleLoader

@pytest.fixture
def chat_app(monkeypatch):
    monkeypatch.delenv("VERB_PORT", raising=False)
    loader = ExampleLoader()
    yield loader.load("chat").app
    loader.close()


def join(page, url, username):
    page.goto(url)
    page.wait_for_function("document.getElementById('status').textContent !== 'connecting…'")
    page.fill("#username", username)
    page.click("#join")


@pytest.mark.slow  # ~6 s: run by README's test command, not once more per wheel
def test_two_browser_pages_chat_through_the_server(chat_app, tmp_path):
    sync_playwright, expect = playwright_api()
    shots = Path(os.environ.get("VERB_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)

    with chat_app.run_in_thread() as server, sync_playwright() as playwright:
        context = browser_context(playwright, tmp_path / "profile")
        try:
            alice, bob = context.new_page(), context.new_page()
            errors = []
            for page in (alice, bob):
                page.on("pageerror", lambda error: errors.append(str(error)))
            url = server.url + "/"

            join(alice, url, "Alice")
            expect(alice.locator("#messages")).to_contain_text("Alice joined the chat")
            expect(alice.locator("#status")).to_have_text("1 user online")
            join(bob, url, "Bob")
            expect(alice.locator("#messages")).to_contain_text("Bob joined the chat")
            for page in (alice, bob):
                expect(page.locator("#status")).to_have_text("2 users online")

            alice.fill("#text", "Hello Bob, this is Alice")
            alice.click("#send")
            expect(bob.locator("#messages")).to_contain_text("Alice: Hello Bob, this is Alice")
            bob.fill("#text", "Hi Alice! Bob here.")
            bob.press("#text", "Enter")
            for page in (alice, bob):
                expect(page.locator("#messages")).to_contain_text("Bob: Hi Alice! Bob here.")
            # Both see the conversation since Bob joined, in the same order; Alice also saw
            # her own join.
            expect(alice.locator("#messages p")).to_have_count(4)
            expect(bob.locator("#messages p")).to_have_count(3)
            assert alice.locator("#messages p").all_inner_texts() == [
                "Alice joined the chat", "Bob joined the chat", "Alice: Hello Bob, this is Alice",
                "Bob: Hi Alice! Bob here."]
            assert bob.locator("#messages p").all_inner_texts() == \
                alice.locator("#messages p").all_inner_texts()[1:]

            alice.screenshot(path=str(shots / "chat-alice.png"))
            bob.screenshot(path=str(shots / "chat-bob.png"))

            bob.close()
            expect(alice.locator("#messages")).to_contain_text("Bob left the chat")
            expect(alice.locator("#status")).to_have_text("1 user online")
            assert not errors, errors
        finally:
            context.close()


@pytest.mark.parametrize("mode", ["shared", "dedicated"])
def test_chromium_negotiates_permessage_deflate(tmp_path, mode):
    """RFC 7692 with a real browser: Chromium's offer is accepted, and large compressible
    messages round-trip in both directions (the page checks `ws.extensions`)."""
    from playwright.sync_api import sync_playwright

    from verb import ServerProtocol, create_server

    app = create_server(ServerProtocol.WEBSOCKET)
    app.get("/", lambda req, res: res.html("<!doctype html><title>deflate</title>"))
    app.websocket(message=lambda ws, message: ws.send(message), compression=mode)
    script = """async (url) => {
        const ws = new WebSocket(url);
        await new Promise((ok, fail) => { ws.onopen = ok; ws.onerror = fail; });
        const results = [];
        for (const message of ["small", "repeat ".repeat(20000), "ünïcödé ✓ ".repeat(500)]) {
            const reply = new Promise((ok) => { ws.onmessage = (e) => ok(e.data); });
            ws.send(message);
            results.push((await reply) === message);
        }
        const extensions = ws.extensions;
        ws.close();
        return {extensions, results};
    }"""
    with app.run_in_thread() as server, sync_playwright() as playwright:
        context = browser_context(playwright, tmp_path / "profile")
        try:
            page = context.new_page()
            page.goto(server.url + "/")
            outcome = page.evaluate(script, server.ws_url + "/")
            stats = app.stats()
        finally:
            context.close()
    assert outcome["extensions"].startswith("permessage-deflate")
    assert ("server_no_context_takeover" in outcome["extensions"]) == (mode == "shared")
    assert outcome["results"] == [True, True, True]
    assert stats["bytes_out"] < 20_000  # 140 KB + 6 KB of text went out compressed
