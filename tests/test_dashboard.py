"""The dashboard shell: the page, each panel alone, and the panel registry."""
import json

import pytest
from bs4 import BeautifulSoup

from monitor.core.state import state

NAMES = ["metrics", "profiling", "cache", "cluster", "logs", "queries", "outgoing"]


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
