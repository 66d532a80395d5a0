"""The dashboard shell: the page, each panel alone, the panel registry and its query arguments."""
import json
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup

from monitor.core.state import state

NAMES = ["metrics", "profiling", "cache", "cluster", "logs"]


def test_the_panels_follow_the_capability_list(app):
    assert list(state(app).panels) == NAMES


def test_page_includes_every_panel_with_its_polling_root(client, auth, make_user):
    auth.login(make_user("viewer"))
    response = client.get("/admin/")
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    for name in NAMES:
        root = soup.select_one(f"#panel-{name}")
        assert root is not None, name
        assert root["hx-get"].startswith(f"/admin/panels/{name}")
        assert "every" in root["hx-trigger"] and root["hx-swap"] == "outerHTML"
        assert soup.select_one(f'nav a[href="#panel-{name}"]') is not None
    assert soup.select_one(".fleet").text == "monitor" and soup.select_one(".host").text == "testhost"
    config = json.loads(soup.select_one('meta[name="htmx-config"]')["content"])
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["selfRequestsOnly"] is True and config["historyCacheSize"] == 0
    assert soup.select_one('script[src$="htmx-2.0.11.min.js"]')["nonce"]


@pytest.mark.parametrize("name", NAMES)
def test_each_panel_is_served_alone_as_the_same_fragment(client, auth, make_user, name):
    auth.login(make_user("viewer"))
    fragment = BeautifulSoup(client.get(f"/admin/panels/{name}").get_data(as_text=True), "html.parser")
    roots = fragment.find_all(recursive=False)
    assert len(roots) == 1 and roots[0]["id"] == f"panel-{name}"
    page = BeautifulSoup(client.get("/admin/").get_data(as_text=True), "html.parser")
    assert page.select_one(f"#panel-{name}")["hx-get"] == roots[0]["hx-get"]


def test_unknown_panel_is_404(client, auth, make_user):
    auth.login(make_user("viewer"))
    assert client.get("/admin/panels/nope").status_code == 404
    assert client.post("/admin/panels/nope/run", headers=auth.headers()).status_code == 404


def test_htmx_is_vendored_and_served(client):
    response = client.get("/static/monitor/htmx-2.0.11.min.js")
    assert response.status_code == 200 and b"htmx" in response.data[:2000]
    assert client.get("/static/monitor/monitor.css").status_code == 200


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
            if panel:  # a panel's URLs carry its own arguments, nothing else
                assert set(parse_qs(url.query)) <= set(panels[panel.group(1)].params), (query, element)


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
