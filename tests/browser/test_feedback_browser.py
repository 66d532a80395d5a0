"""What the dashboard tells its user, in real Chromium: a firing alert in the header and the title,
stale and failing panels, busy buttons, and outcomes that stay until dismissed."""
import json
import re

import pytest
from playwright.sync_api import expect
from test_dashboard_browser import login, poll_counter
from test_login_browser import _violations, _watch

ERROR_FRAGMENT = '<div class="card narrow error-card" role="alert"><h1>500 · internal_error</h1>' \
                 '<p>an unexpected error; request id 0a1b2c</p></div>'


@pytest.mark.slow
def test_a_firing_alert_shows_in_the_header_and_the_title(page, gunicorn, make_user, store):
    server = gunicorn(workers=1)
    messages, errors = _watch(page)
    login(page, server, make_user("viewer"))
    badge = page.locator("#alerts-badge")
    assert badge.get_attribute("role") == "alert" and badge.inner_text() == ""
    assert page.title() == "Dashboard · monitor"

    alert = {"id": "worker_rss-100", "rule": "worker_rss", "title": "worker RSS", "state": "firing",
             "since": 100.0, "fired_at": 130.0, "value": 2048, "detail": "vm pid 1: 2048 MB"}
    store.redis.hset(store.key("alerts", "state"), "worker_rss", json.dumps(alert))
    expect(badge).to_have_text(re.compile(r"^1 firing"), timeout=10_000)  # the badge polls every 5 s
    expect(page).to_have_title("(1) Dashboard · monitor")
    assert "worker RSS" in badge.locator("a").get_attribute("title")

    page.click("nav >> text=Account")  # on every monitor page
    expect(page.locator("#alerts-badge")).to_have_text(re.compile(r"^1 firing"))
    expect(page).to_have_title("(1) Account · monitor")

    store.redis.hdel(store.key("alerts", "state"), "worker_rss")
    expect(page.locator("#alerts-badge")).to_have_text("", timeout=10_000)
    expect(page).to_have_title("Account · monitor")
    assert _violations(messages) == [] and errors == []


@pytest.mark.slow
def test_a_panel_says_when_its_data_is_stale_or_why_its_poll_failed(page, gunicorn, make_user):
    server = gunicorn(workers=1)
    login(page, server, make_user("viewer"))
    panel = page.locator("#panel-cluster")
    state = panel.locator(".panel-state")
    expect(state).to_have_text("")

    cluster = re.compile(r"/admin/panels/cluster")
    page.route(cluster, lambda route: route.abort())  # the network fails: the old numbers are stale
    expect(state).to_have_text(re.compile(r"^stale since \d\d:\d\d:\d\d, retrying$"), timeout=12_000)
    assert panel.get_attribute("data-state") == "stale" and panel.locator(".panel-body").is_visible()

    page.unroute(cluster)
    page.route(cluster, lambda route: route.fulfill(status=500, content_type="text/html", body=ERROR_FRAGMENT))
    expect(state).to_have_text("error 500: an unexpected error; request id 0a1b2c; retrying", timeout=12_000)
    assert panel.get_attribute("data-state") == "error"
    assert panel.locator(".panel-body").is_hidden(), "a failing panel shows why, not its old numbers"

    page.unroute(cluster)
    expect(state).to_have_text("", timeout=12_000)
    assert panel.get_attribute("data-state") is None and panel.locator(".panel-body").is_visible()
    assert page.locator("#panel-metrics").get_attribute("data-state") is None, "the other panels were fine"


@pytest.mark.slow
def test_buttons_show_busy_and_outcomes_stay_until_dismissed(page, gunicorn, make_user):
    server = gunicorn(workers=1)
    server.get("/demo/cached/k1")
    messages, errors = _watch(page)
    polls = poll_counter(page)
    page.on("dialog", lambda dialog: dialog.accept())
    login(page, server, make_user("admin"))

    busy = page.evaluate("""() => {
      const button = [...document.querySelectorAll('#panel-profiling button')].find(b => b.textContent === 'Heap summary');
      button.click();
      return button.disabled;
    }""")
    assert busy is True, "the button is disabled while its request runs"
    result = page.locator("#panel-profiling .result")
    expect(result).to_be_visible(timeout=20_000)
    expect(page.locator("#outcome-profiling")).to_contain_text("Heap summary of")

    page.locator("#panel-cache button", has_text="Clear all").click()
    outcome = page.locator("#outcome-cache")
    expect(outcome).to_have_text(re.compile(r"Cleared \d+ keys? of the app cache\."))
    seen = polls["cache"]
    page.wait_for_timeout(21_000)  # two more polls of the cache panel (every 10 s)
    assert polls["cache"] >= seen + 2
    expect(outcome).to_be_visible()
    outcome.locator("[data-dismiss]").click()
    expect(outcome).to_have_count(0)
    expect(page.locator("#outcome-profiling")).to_be_visible()  # still there, until its own dismissal

    page.locator("#panel-profiling .result button[aria-label='Dismiss the heap summary']").click()
    expect(result).to_have_count(0)
    page.reload()
    assert page.locator("#panel-profiling .result").count() == 0, "a dismissed result stays dismissed"
    assert _violations(messages) == [] and errors == []
