"""The profiling panel drives a CPU session in Chromium, pyinstrument's report runs sandboxed, and the
continuous profiler's flame graph zooms, compares and stays through polls."""
import re
import time

from playwright.sync_api import expect
from test_accessibility_browser import serious
from test_dashboard_browser import login
from test_login_browser import _violations, _watch

from monitor.capabilities.continuous import codec, layout


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


def seed_continuous(store):
    """Write what a fleet's continuous profiler would have: /demo/cpu now, and an hour before (the baseline)."""
    minute = int(time.time()) // 60 * 60 - 120
    cpu = {"flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:spin": 80,
           "flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:stir": 20}
    before = {"flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:spin": 40,
              "flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:stir": 60}
    sleep = {"flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:sleep": 50}
    for start, endpoint, stacks in ((minute, "/demo/cpu", cpu), (minute, "/demo/sleep", sleep),
                                    (minute - 3600, "/demo/cpu", before)):
        name = layout.name(store, layout.endpoint_id(endpoint), 60, start)
        store.raw.rpush(name, codec.encode(stacks))
        store.raw.expire(name, 3 * 3600)
        store.raw.zadd(layout.index(store), {endpoint: start}, gt=True)


def test_continuous_flame_graph_zooms_compares_and_stays_through_polls(page, gunicorn, make_user, store):
    server = gunicorn(workers=1)
    seed_continuous(store)
    messages, errors = _watch(page)
    login(page, server, make_user("admin"))
    page.goto(server.url + "/admin/?flame_window=900#panel-profiling")
    frames = page.locator("#continuous svg.flame a")
    assert frames.count() == 9 and "150 samples" in page.locator("#flame-summary").inner_text()
    spin = page.locator('#continuous svg.flame a[aria-label^="monitor/dev/demo.py:spin: 53.3%"]')
    assert spin.locator("text").text_content() == "spin 53.3%"

    spin.click()  # zoom in: the frame and its callers span the width
    expect(page.locator("#continuous .flame-reset a")).to_be_visible()
    expect(page).to_have_url(re.compile(r"flame_focus=\w+"))
    assert set(frames.evaluate_all("links => links.map(a => a.parentElement.getAttribute('width'))")) == \
        {"100.0000%"}

    page.evaluate("htmx.trigger('#panel-profiling', 'monitor:refresh')")  # the panel's own poll
    page.wait_for_timeout(1000)
    assert page.locator("#continuous[data-placeholder]").count() == 0 and frames.count() == 5

    with page.expect_response(lambda r: "/admin/panels/profiling" in r.url):  # one change at a time
        page.select_option("#flame-endpoint", "/demo/cpu")
    page.wait_for_timeout(300)  # the morph of that answer, before the next change
    page.select_option("#flame-compare", "3600")
    expect(page.locator("#continuous svg.flame-diff")).to_be_visible()
    grew = page.locator("#continuous svg.fg-grew")
    assert grew.count() == 1 and grew.locator("text").text_content() == "▲ spin 80.0%"
    assert page.locator("#continuous svg.fg-shrank text").text_content() == "▼ stir 20.0%"
    cpu = r"flame_endpoint=(%2F|/)demo(%2F|/)cpu"
    expect(page).to_have_url(re.compile(rf"{cpu}.*flame_compare=3600|flame_compare=3600.*{cpu}"))

    page.reload()  # the view is in the URL
    expect(page.locator("#continuous svg.flame-diff")).to_be_visible()
    assert serious(page) == []
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    assert page.evaluate("(p => p.scrollWidth <= p.clientWidth + 1)(document.getElementById('panel-profiling'))")

    download = page.locator("#flame-summary a", has_text="collapsed stacks").get_attribute("href")
    text = page.request.get(server.url + download).text()
    assert "/demo/cpu;flask/app.py:Flask.full_dispatch_request;monitor/dev/demo.py:cpu;monitor/dev/demo.py:spin 80\n" \
        in text
    assert _violations(messages) == [] and errors == []
