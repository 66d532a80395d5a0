"""The dashboard shell in real Chromium: panels poll, and pause while the tab is hidden.

Playwright's sync API delivers events only while it runs, so waits use
``page.wait_for_timeout`` rather than ``time.sleep``.
"""
import time

import pytest

HIDE = """() => {
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => true});
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'hidden'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""
SHOW = """() => {
  Object.defineProperty(document, 'hidden', {configurable: true, get: () => false});
  Object.defineProperty(document, 'visibilityState', {configurable: true, get: () => 'visible'});
  document.dispatchEvent(new Event('visibilitychange'));
}"""


def login(page, server, user):
    page.goto(server.url + "/login")
    page.fill("#username", user["name"])
    page.fill("#password", user["password"])
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/admin/")


@pytest.mark.slow
def test_panels_poll_and_pause_while_hidden(page, gunicorn, make_user):
    server = gunicorn(workers=2)
    polls = []
    page.on("request", lambda request: "/admin/panels/" in request.url and polls.append(time.monotonic()))
    login(page, server, make_user("viewer"))
    for name in ("metrics", "profiling", "cache", "cluster", "logs", "queries", "outgoing"):
        assert page.locator(f"#panel-{name}").is_visible()
    page.wait_for_timeout(6000)  # longer than one polling interval
    assert len(polls) >= 5, "every panel polls"

    page.evaluate(HIDE)
    page.wait_for_timeout(500)  # a request already on its way may still land
    hidden_from = len(polls)
    page.wait_for_timeout(6000)
    assert len(polls) == hidden_from, "no panel polls while the tab is hidden"

    page.evaluate(SHOW)
    page.wait_for_timeout(1500)
    assert len(polls) >= hidden_from + 5, "every panel refreshes when the tab shows again"
