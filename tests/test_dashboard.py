"""The dashboard shell: the page, each panel alone, cheap polls (304, gzip), the view in the URL, the
badge, and the query arguments each panel keeps."""
import gzip
import json
import os
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup

from monitor.core.state import state

NAMES = ["metrics", "profiling", "cache", "cluster", "logs", "queries", "outgoing", "exceptions", "slow"]
POLL = {"HX-Request": "true"}
STATIC = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "monitor", "static", "monitor")


def soup_of(response):
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_the_panels_follow_the_capability_list(app):
    assert list(state(app).panels) == NAMES


def test_page_includes_every_panel_polling_by_morph(client, auth, make_user):
    auth.login(make_user("admin"))
    soup = soup_of(client.get("/admin/"))
    for name in NAMES:
        root = soup.select_one(f"#panel-{name}")
        assert root is not None, name
        assert root["hx-get"].startswith(f"/admin/panels/{name}") and root["hx-swap"] == "morph"
        pollers = [root] * root.has_attr("data-poll") + root.select("[data-poll]")
        assert pollers and all("every " + p["data-poll"] in p["hx-trigger"] for p in pollers), name
        assert soup.select_one(f'nav a[href="#panel-{name}"]') is not None
    # the log tail and the alerts poll on their own; the panel's root only reloads on a filter change
    assert not soup.select_one("#panel-logs").has_attr("data-poll")
    assert soup.select_one("#log-tail")["hx-get"].startswith("/admin/panels/logs/tail?")
    assert soup.select_one("#logs-alerts")["hx-get"].startswith("/admin/panels/logs/alerts")
    assert soup.select_one("body")["hx-ext"] == "morph"
    config = json.loads(soup.select_one('meta[name="htmx-config"]')["content"])
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["selfRequestsOnly"] is True and config["historyCacheSize"] == 0
    assert {"code": "304", "swap": False} in config["responseHandling"]
    for script in ("htmx-2.0.11.min.js", "idiomorph-ext-0.8.0.min.js", "uPlot-1.6.32.iife.min.js", "monitor.js"):
        assert soup.select_one(f'script[src$="{script}"]')["nonce"], script


def test_header_names_the_product_once(client, auth, make_user, app):
    auth.login(make_user("viewer"))
    soup = soup_of(client.get("/admin/"))
    assert soup.select_one(".brand").text == "monitor" and soup.select_one(".fleet") is None
    assert soup.select_one(".host").text == "testhost"
    app.config["MONITOR_FLEET_NAME"] = "shop"
    assert soup_of(client.get("/admin/")).select_one(".fleet").text == "shop"


def test_a_viewers_profiling_panel_does_not_poll(client, auth, make_user):
    auth.login(make_user("viewer"))
    root = soup_of(client.get("/admin/")).select_one("#panel-profiling")
    assert "every" not in root["hx-trigger"] and not root.select("[data-poll]") and not root.has_attr("data-poll")


@pytest.mark.parametrize("name", NAMES)
def test_each_panel_is_served_alone_as_the_same_fragment(client, auth, make_user, name):
    auth.login(make_user("viewer"))
    fragment = soup_of(client.get(f"/admin/panels/{name}"))
    roots = fragment.find_all(recursive=False)
    assert len(roots) == 1 and roots[0]["id"] == f"panel-{name}"
    page = soup_of(client.get("/admin/"))
    assert page.select_one(f"#panel-{name}")["hx-get"] == roots[0]["hx-get"]


def test_unknown_panel_or_part_is_404(client, auth, make_user):
    auth.login(make_user("viewer"))
    assert client.get("/admin/panels/nope").status_code == 404
    assert client.get("/admin/panels/nope/tail").status_code == 404
    assert client.get("/admin/panels/cache/tail").status_code == 404
    assert client.post("/admin/panels/nope/run", headers=auth.headers()).status_code == 404


def test_vendored_files_are_served_with_their_licences(client):
    for name in ("htmx-2.0.11.min.js", "idiomorph-ext-0.8.0.min.js", "uPlot-1.6.32.iife.min.js",
                 "uPlot-1.6.32.min.css", "monitor.css", "monitor.js"):
        response = client.get(f"/static/monitor/{name}")
        assert response.status_code == 200 and len(response.data) > 1000, name
    for stem in ("htmx-2.0.11", "idiomorph-0.8.0", "uPlot-1.6.32"):
        with open(os.path.join(STATIC, f"{stem}.LICENSE.txt")) as licence:
            assert "Permission" in licence.read(), stem


# ---------------------------------------------------------------- cheap polling


def test_an_unchanged_panel_answers_304_without_a_body(client, auth, make_user):
    auth.login(make_user("viewer"))
    first = client.get("/admin/panels/logs/alerts", headers=POLL)
    etag = first.headers["ETag"]
    assert first.status_code == 200 and etag.startswith('W/"') and first.headers["Cache-Control"] == "no-store"
    again = client.get("/admin/panels/logs/alerts", headers={**POLL, "If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    other = client.get("/admin/panels/logs/alerts", headers={**POLL, "If-None-Match": 'W/"stale"'})
    assert other.status_code == 200 and other.data == first.data


def test_the_dashboards_answers_are_gzipped_when_asked_and_the_host_apps_never(client, auth, make_user):
    auth.login(make_user("viewer"))
    plain = client.get("/admin/panels/metrics", headers=POLL)
    zipped = client.get("/admin/panels/metrics", headers={**POLL, "Accept-Encoding": "gzip, deflate"})
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    assert zipped.headers["Content-Encoding"] == "gzip" and len(zipped.data) < len(plain.data) / 2
    assert gzip.decompress(zipped.data).count(b'id="panel-metrics"') == 1
    page = client.get("/admin/", headers={"Accept-Encoding": "gzip"})
    assert page.headers["Content-Encoding"] == "gzip" and b"<!doctype html>" in gzip.decompress(page.data)
    host = client.get("/demo/hello", headers={"Accept-Encoding": "gzip"})
    assert "Content-Encoding" not in host.headers and host.get_json() == {"message": "hello"}


# ---------------------------------------------------------------- the view in the URL


def test_a_panels_view_goes_into_the_page_url_keeping_the_others(client, auth, make_user):
    auth.login(make_user("viewer"))
    current = "http://localhost/admin/?level=WARNING&q=boom&junk=1"
    changed = client.get("/admin/panels/metrics?window=300&sort=p95_ms&junk=2",
                         headers={**POLL, "HX-Current-URL": current})
    assert changed.headers["HX-Replace-Url"] == "/admin/?window=300&sort=p95_ms&level=WARNING&q=boom"
    poll = client.get("/admin/panels/metrics?window=300&sort=p95_ms",
                      headers={**POLL, "HX-Current-URL": "http://localhost/admin/?sort=p95_ms&window=300"})
    assert "HX-Replace-Url" not in poll.headers  # a poll of the view already shown changes nothing
    logs = client.get("/admin/panels/logs?level=ERROR", headers={**POLL, "HX-Current-URL": current})
    assert logs.headers["HX-Replace-Url"] == "/admin/?level=ERROR"


def test_the_page_renders_the_view_its_url_names(client, auth, make_user):
    auth.login(make_user("viewer"))
    soup = soup_of(client.get("/admin/?window=300&sort=p95_ms&level=WARNING&q=boom&pid=12"))
    assert soup.select_one("#metrics-window option[selected]")["value"] == "300"
    assert soup.select_one("#panel-metrics")["hx-get"] == "/admin/panels/metrics?window=300&sort=p95_ms"
    assert soup.select_one("#log-level option[selected]")["value"] == "WARNING"
    assert soup.select_one("#log-q")["value"] == "boom" and soup.select_one("#log-pid")["value"] == "12"
    tail = soup.select_one("#log-tail")["hx-get"]
    assert "level=WARNING" in tail and "q=boom" in tail and "pid=12" in tail and "window" not in tail


# ---------------------------------------------------------------- the alerts badge


def _fire(store, rule="error_rate", title="5xx rate"):
    alert = {"id": f"{rule}-100", "rule": rule, "title": title, "state": "firing", "since": 100.0,
             "fired_at": 130.0, "value": 0.2, "detail": "20 of 100 requests failed"}
    store.redis.hset(store.key("alerts", "state"), rule, json.dumps(alert))


def test_firing_alerts_show_in_the_header_and_title_of_every_page(app, client, auth, make_user, store):
    auth.login(make_user("admin"))
    state(app).flusher.stop(flush=False)  # its evaluator would judge the real (quiet) metrics
    quiet = soup_of(client.get("/admin/"))
    assert quiet.select_one("#alerts-badge")["data-count"] == "0" and not quiet.title.text.startswith("(")
    _fire(store)
    _fire(store, "latency_p95", "p95 latency")
    for path in ("/admin/", "/admin/users", "/admin/audit", "/admin/account"):
        soup = soup_of(client.get(path))
        badge = soup.select_one("#alerts-badge")
        assert badge["role"] == "alert" and badge["data-count"] == "2", path
        assert "2 firing" in badge.text and "5xx rate" in badge.text and soup.title.text.startswith("(2) "), path
    fragment = soup_of(client.get("/admin/alerts-badge", headers=POLL))
    assert fragment.select_one("#alerts-badge")["data-count"] == "2"
    assert soup_of(app.test_client().get("/login")).select_one("#alerts-badge") is None  # logged-in pages only


@pytest.mark.parametrize("query", ["name=x", "endpoint=x", "_method=POST", "_scheme=https", "_external=1",
                                   "_anchor=x", "window=300&name=x&_scheme=https", "level=ERROR&q=boom&panel=x"])
def test_unknown_query_arguments_are_dropped_not_passed_to_url_for(client, auth, make_user, query):
    """Issue 13, finding 10: ``?name=``, ``?endpoint=`` and ``?_method=`` were 500s, and ``?_scheme=https``
    made every panel poll an https:// URL and stop refreshing."""
    auth.login(make_user("operator"))
    panels = state(client.application).panels
    pages = [client.get(f"/admin/?{query}")] + [client.get(f"/admin/panels/{name}?{query}") for name in NAMES]
    for page in pages:
        assert page.status_code == 200, page.request.url
        soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
        for element in soup.select("[hx-get], [hx-post], a[href]"):
            url = urlsplit(element.get("hx-get") or element.get("hx-post") or element["href"])
            assert not url.scheme and not url.netloc, (query, element)
            panel = re.fullmatch(r"/admin/panels/(\w+)(/\w+)?", url.path)
            if panel:  # a panel's URLs carry its own arguments (a part's also its cursor), nothing else
                kept = set(panels[panel.group(1)].params) | ({"after"} if panel.group(2) else set())
                assert set(parse_qs(url.query)) <= kept, (query, element)


def test_each_panel_keeps_its_own_query_arguments_by_name(client, auth, make_user):
    auth.login(make_user("viewer"))
    soup = BeautifulSoup(client.get("/admin/?window=300&sort=p95_ms&level=ERROR&q=boom&name=x&worker=").get_data(
        as_text=True), "html.parser")
    metrics = parse_qs(urlsplit(soup.select_one("#panel-metrics")["hx-get"]).query)
    logs = parse_qs(urlsplit(soup.select_one("#panel-logs")["hx-get"]).query)
    cache = urlsplit(soup.select_one("#panel-cache")["hx-get"])
    assert metrics == {"window": ["300"], "sort": ["p95_ms"]}
    assert logs == {"level": ["ERROR"], "q": ["boom"]}
    assert cache.query == ""
    assert soup.select_one("#metrics-window option[selected]")["value"] == "300"
