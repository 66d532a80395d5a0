"""axe-core (axe-playwright-python) finds no serious or critical violation on the monitor's pages,
in the light and the dark theme, with every panel showing data: a firing alert, error rows, tables, exception
groups and one group's samples, slow requests."""
import json

import pytest
from axe_playwright_python.sync_playwright import Axe
from test_dashboard_browser import login

from support import bearer, wait_until

PAGES = ("/admin/", "/admin/users", "/admin/audit", "/admin/account", "/admin/alerts/", "/admin/alerts/rules/new")


def serious(page):
    """Return the serious and critical violations axe finds on ``page``: (rule, impact, first targets)."""
    found = Axe().run(page).response["violations"]
    return [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
            for v in found if v["impact"] in ("serious", "critical")]


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_serious_or_critical_violation(page, gunicorn, make_user, store, scheme):
    server = gunicorn(workers=1, env={"MONITOR_SLOW_ENDPOINTS": "/demo/sleep=1"})
    for path in ("/demo/hello", "/demo/cached/k1", "/demo/sleep?ms=5", "/demo/error", "/demo/error?kind=lookup",
                 "/demo/log?level=WARNING&msg=warned", "/demo/log?level=ERROR&msg=failed"):
        server.get(path)
    alert = {"id": "worker_rss-100", "rule": "worker_rss", "title": "worker RSS", "state": "firing",
             "since": 100.0, "fired_at": 130.0, "value": 2048, "detail": "vm pid 1: 2048 MB"}
    store.redis.hset(store.key("alerts", "state"), "worker_rss", json.dumps(alert))
    page.emulate_media(color_scheme=scheme)

    page.goto(server.url + "/login")
    assert serious(page) == [], "login"
    admin = make_user("admin")
    login(page, server, admin)
    groups = wait_until(lambda: server.get("/api/admin/exceptions", headers=bearer(admin)).json()["groups"], 10,
                        message="exception groups")
    for path in (*PAGES, f"/admin/?exc_group={groups[0]['id']}"):  # a group's samples and tracebacks too
        page.goto(server.url + path)
        page.wait_for_timeout(1200)  # charts drawn, times shown in local time
        assert serious(page) == [], path
