"""The alerts-and-logs panel in real Chromium: hostile log text stays text, the tail adds lines."""
import uuid

import pytest
from playwright.sync_api import expect
from test_dashboard_browser import login
from test_login_browser import _violations, _watch

from support import bearer

HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2"><b>bold</b>'


@pytest.mark.slow
def test_log_html_renders_as_text_and_the_tail_updates(page, gunicorn, make_user):
    server = gunicorn(workers=2)
    viewer = make_user("viewer")
    messages, errors = _watch(page)
    marker = uuid.uuid4().hex
    assert server.get("/demo/log", params={"level": "WARNING", "msg": f"{marker} {HOSTILE}"}).status_code == 200
    login(page, server, viewer)
    panel = page.locator("#panel-logs")
    cell = panel.locator(".log-message", has_text=marker)
    cell.wait_for(timeout=10000)
    assert HOSTILE in cell.inner_text()
    assert cell.locator("b, img, script").count() == 0
    assert page.evaluate("window.pwned") is None

    panel.locator("#log-q").fill(marker)
    panel.locator("button", has_text="Filter").click()
    # Not page.wait_for_function: a string predicate is eval, which the CSP rightly refuses.
    expect(panel.locator(".log-message")).to_have_count(1, timeout=10000)
    later = f"{marker} later line"
    assert server.get("/demo/log", params={"level": "WARNING", "msg": later}).status_code == 200
    panel.locator(".log-message", has_text="later line").wait_for(timeout=10000)
    assert page.locator("#panel-logs .log-message").count() == 2, "the tail keeps the search filter"
    assert page.evaluate("window.pwned") is None
    assert not _violations(messages) and not errors
    assert server.get("/api/admin/logs", params={"q": marker}, headers=bearer(viewer)).json()["entries"][0]["message"] == later
