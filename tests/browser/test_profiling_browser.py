"""The profiling panel drives a CPU session in Chromium, and pyinstrument's report runs sandboxed."""
import re

from test_login_browser import _violations, _watch


def test_panel_session_and_sandboxed_report(page, gunicorn, make_user):
    server = gunicorn(workers=2, env={"MONITOR_PROFILE_INTERVAL": "0.0001"})
    admin = make_user("admin")
    messages, errors = _watch(page)
    page.goto(server.url + "/login")
    page.fill("#username", admin["name"])
    page.fill("#password", admin["password"])
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/admin/")

    panel = page.locator("#panel-profiling")
    panel.locator("#prof-duration").fill("60")
    panel.locator("text=Start CPU session").click()
    panel.locator(".prof-running").wait_for()
    page.wait_for_timeout(1500)  # the workers join on their next flusher tick
    for _ in range(20):
        server.get("/demo/sleep?ms=5")
    panel.locator("button.danger >> text=Stop").click()
    flash = page.locator("#panel-profiling .flash.ok", has_text="done")
    flash.wait_for(timeout=20_000)
    assert re.search(r"CPU session \w+: done, \d+ requests", flash.inner_text())
    report_url = page.locator("#panel-profiling .prof-sessions a >> text=HTML").first.get_attribute("href")
    assert _violations(messages) == [] and errors == []

    page.goto(server.url + report_url)
    page.wait_for_timeout(1000)
    text = page.locator("body").inner_text()
    assert "requests on" in text and "sleep" in text  # the app rendered the merged tree
    assert errors == []
