"""The dashboard shell in real Chromium: panels poll (pausing while the tab is hidden), polls keep the
user's place, the view lives in the URL, and no page scrolls sideways on a phone.

Playwright's sync API delivers events only while it runs, so waits use
``page.wait_for_timeout`` rather than ``time.sleep``; assertions that wait use ``expect``
(``page.wait_for_function`` with a string would be eval, which the CSP refuses).
"""
import re
import time
import uuid
from collections import Counter

import pytest
from playwright.sync_api import expect

from support import bearer

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
#: The log row nearest the top of the scrolled log list, and its offset from the list's top.
ANCHOR = """() => {
  const box = document.querySelector('.log-scroll'), top = box.getBoundingClientRect().top;
  const row = [...box.querySelectorAll('tr.log-row')].find(r => r.getBoundingClientRect().top >= top);
  return {id: row.id, offset: row.getBoundingClientRect().top - top, scrollTop: box.scrollTop};
}"""


def login(page, server, user):
    page.goto(server.url + "/login")
    page.fill("#username", user["name"])
    page.fill("#password", user["password"])
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/admin/")


def poll_counter(page):
    """Count the finished polls by what they poll: a panel, or a part (``logs/tail``)."""
    polls = Counter()

    def seen(request):
        found = re.search(r"/admin/panels/([a-z]+(?:/[a-z]+)?)", request.url)
        if found and request.method == "GET":
            polls[found.group(1)] += 1
    page.on("requestfinished", seen)
    return polls


@pytest.mark.slow
def test_panels_poll_and_pause_while_hidden(page, gunicorn, make_user):
    server = gunicorn(workers=2)
    polls = []
    page.on("request", lambda request: "/admin/panels/" in request.url and polls.append(time.monotonic()))
    login(page, server, make_user("viewer"))
    for name in ("metrics", "profiling", "cache", "cluster", "logs", "queries", "outgoing", "exceptions", "slow"):
        assert page.locator(f"#panel-{name}").is_visible()
    page.wait_for_timeout(6500)  # longer than one polling interval of each
    assert len(polls) >= 4, "the metrics, cluster, alerts and log tail poll"

    page.evaluate(HIDE)
    page.wait_for_timeout(500)  # a request already on its way may still land
    hidden_from = len(polls)
    page.wait_for_timeout(6000)
    assert len(polls) == hidden_from, "nothing polls while the tab is hidden"

    page.evaluate(SHOW)
    page.wait_for_timeout(1500)
    assert len(polls) >= hidden_from + 5, "every poller refreshes when the tab shows again"


@pytest.mark.slow
def test_polls_keep_open_details_scroll_focus_and_typed_values(page, gunicorn, make_user):
    server = gunicorn(workers=2)
    marker = uuid.uuid4().hex[:8]
    for i in range(40):
        server.get("/demo/log", params={"level": "INFO", "msg": f"{marker} line {i}"})
    server.get("/demo/error")  # a line with a traceback
    polls = poll_counter(page)
    login(page, server, make_user("admin"))
    page.locator("#panel-logs details summary", has_text="exception").first.click()
    page.click("#metrics-workers summary")
    page.click("#alert-rules summary")
    page.fill("#prof-target", "pid:1")  # typed, not sent
    page.locator("#panel-logs .log-scroll").evaluate("box => box.scrollTop = 240")
    restart = page.locator("#panel-cluster table.cluster-workers button").first
    restart.focus()
    label = restart.get_attribute("aria-label")
    anchor = page.evaluate(ANCHOR)
    total = page.locator("#metrics-total").inner_text()
    before = Counter(polls)

    for round_ in range(3):  # new data each round, so every poll swaps something in
        for i in range(5):
            server.get("/demo/log", params={"level": "WARNING", "msg": f"{marker} later {round_}.{i}"})
        server.get("/demo/error")
        page.wait_for_timeout(5500)
    for part in ("metrics", "cluster", "logs/tail", "logs/alerts"):
        assert polls[part] - before[part] >= 3, (part, polls)
    assert page.locator("#metrics-total").inner_text() != total, "the metrics panel was swapped"
    assert page.locator("#panel-logs .log-message", has_text=f"{marker} later 2.4").count() == 1

    assert page.locator("#metrics-workers").evaluate("d => d.open")
    assert page.locator("#alert-rules").evaluate("d => d.open")
    assert page.locator("#panel-logs .log-table details[open]").count() == 1
    assert page.input_value("#prof-target") == "pid:1"
    assert page.evaluate("() => document.activeElement.getAttribute('aria-label')") == label
    kept = page.evaluate(ANCHOR)
    assert kept["id"] == anchor["id"] and abs(kept["offset"] - anchor["offset"]) <= 2, (anchor, kept)
    assert kept["scrollTop"] > anchor["scrollTop"], "new lines came in above without moving what was read"


@pytest.mark.slow
def test_the_view_lives_in_the_url_and_survives_a_reload(page, gunicorn, make_user, browser):
    server = gunicorn(workers=1)
    marker = uuid.uuid4().hex[:8]
    server.get("/demo/log", params={"level": "WARNING", "msg": f"{marker} warned"})
    server.get("/demo/log", params={"level": "INFO", "msg": f"{marker} told"})
    server.get("/demo/sleep", params={"ms": 20})
    login(page, server, make_user("viewer"))

    page.select_option("#metrics-window", "300")
    expect(page).to_have_url(re.compile(r"[?&]window=300"))
    page.locator("#panel-metrics th a", has_text="p95").click()
    expect(page).to_have_url(re.compile(r"[?&]sort=p95_ms"))
    page.select_option("#log-level", "WARNING")
    expect(page).to_have_url(re.compile(r"[?&]level=WARNING"))
    page.locator("#log-q").press_sequentially(marker, delay=30)  # search as you type: no button pressed
    expect(page).to_have_url(re.compile(rf"[?&]q={marker}"))
    expect(page.locator("#panel-logs .log-message")).to_have_text([re.compile(f"^{marker} warned")])
    assert "window=300" in page.url and "sort=p95_ms" in page.url, "one panel's view keeps the other's"

    page.fill("#log-pid", "abc")
    expect(page.locator("#log-pid-error")).to_have_text("pid must be a whole number")
    assert page.input_value("#log-level") == "WARNING" and page.input_value("#log-q") == marker
    expect(page.locator("#panel-logs .log-message")).to_have_text([re.compile(f"^{marker} warned")])

    page.reload()
    assert page.input_value("#metrics-window") == "300" and page.input_value("#log-level") == "WARNING"
    assert page.input_value("#log-q") == marker and page.input_value("#log-pid") == "abc"
    assert page.locator("#panel-metrics th[aria-sort] a").inner_text() == "p95"
    expect(page.locator("#panel-logs .log-message")).to_have_text([re.compile(f"^{marker} warned")])

    shared = browser.new_context().new_page()  # the link, shared with someone who logs in first
    shared.goto(page.url)
    viewer = make_user("viewer")
    shared.fill("#username", viewer["name"])
    shared.fill("#password", viewer["password"])
    shared.click("button[type=submit]")
    expect(shared.locator("#log-q")).to_have_value(marker)
    assert shared.input_value("#metrics-window") == "300"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_page_scrolls_sideways_at_390_px_and_the_header_is_one_line(page, gunicorn, make_user, scheme):
    server = gunicorn(workers=1, env={"MONITOR_SLOW_ENDPOINTS": "/demo/sleep=1"})
    for path in ("/demo/hello", "/demo/cached/k1", "/demo/sleep?ms=5", "/demo/error"):
        server.get(path)
    page.set_viewport_size({"width": 390, "height": 844})
    page.emulate_media(color_scheme=scheme)
    page.goto(server.url + "/login")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    admin = make_user("admin")
    login(page, server, admin)
    page.wait_for_timeout(1500)
    group = server.get("/api/admin/exceptions", headers=bearer(admin)).json()["groups"][0]["id"]
    for path in ("/admin/", "/admin/users", "/admin/audit", "/admin/account", f"/admin/?exc_group={group}"):
        page.goto(server.url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        header = page.locator("header.top").bounding_box()
        assert header["height"] <= 56, (path, header)
        wide = page.evaluate("""() => [...document.querySelectorAll('.panel, .card')]
            .filter(card => card.scrollWidth > card.clientWidth + 1).map(card => card.id || card.className)""")
        assert wide == [], (path, wide)
    page.goto(server.url + "/admin/#panel-cluster")  # an anchor clears the sticky header
    page.wait_for_timeout(300)
    header_bottom = page.locator("header.top").bounding_box()["height"]
    assert page.locator("#panel-cluster").bounding_box()["y"] >= header_bottom
