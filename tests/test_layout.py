"""The layout holds: no import cycle, and a capability is one package plus one entry in the list."""
import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from bs4 import BeautifulSoup

from monitor import create_app
from monitor.core.config import DEFAULT_CAPABILITIES
from monitor.core.state import state
from support import ROOT, bearer

PACKAGE = Path(ROOT) / "monitor"


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph():
    """Return {module: modules of ``monitor`` it imports}: functions' own imports and type-only ones included."""
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
                continue
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
            # ``from package import submodule`` needs the submodule, not the package's __init__ done.
            edges.update(f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                         for alias in node.names)
        graph[name] = {edge for edge in edges if edge in modules and edge != name}
    return graph


def find_cycle(graph):
    """Return one import cycle as a list of modules, or None."""
    state_of = {}

    def visit(node, path):
        state_of[node] = "open"
        for nxt in sorted(graph[node]):
            if state_of.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state_of:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state_of[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state_of:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    assert len(graph) > 50 and "monitor.core.state" in graph["monitor.web.hooks"] | graph["monitor.extension"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_importing_monitor_imports_no_capability_left_out(tmp_path):
    script = textwrap.dedent(f"""
        import json, sys
        from monitor import create_app
        app = create_app({{"MONITOR_INSTANCE_PATH": {str(tmp_path)!r}, "MONITOR_REDIS_URL": "redis://127.0.0.1:1",
                          "MONITOR_CAPABILITIES": "monitor.capabilities.metrics"}})
        rules = sorted(rule.rule for rule in app.url_map.iter_rules())
        print(json.dumps({{"modules": sorted(m for m in sys.modules if m.startswith("monitor.capabilities.")),
                          "rules": rules, "probe": app.extensions["monitor"].probe is not None,
                          "panels": list(app.extensions["monitor"].panels)}}))
    """)
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    found = json.loads(out.stdout)
    assert {m.split(".")[2] for m in found["modules"]} == {"metrics"}
    assert "/api/admin/metrics" in found["rules"] and "/api/admin/profiler/sessions" not in found["rules"]
    assert found["probe"] is False and found["panels"] == ["metrics"]


FAKE = '''
"""A seventh capability: one package and one entry in MONITOR_CAPABILITIES."""
from flask import Blueprint, jsonify

from monitor.api.schema import STR, obj, op
from monitor.auth.decorators import role_required
from monitor.core.capability import Capability
from monitor.core.config import Setting, number
from monitor.web.panel import Panel


class FakePanel(Panel):
    name = "fake"
    title = "Fake"
    poll = ""
    template = "fakecap/_fake.html"
    actions = {"ping": ("operator", "ping")}

    def context(self, monitor, args):
        return {"greeting": monitor.config["MONITOR_FAKE_GREETING"]}

    def ping(self, monitor):
        return "pong"


class Fake(Capability):
    name = "fake"
    settings = (Setting("MONITOR_FAKE_GREETING", 3, number(1, 9, int), "1 to 9", "A number to show."),)
    panels = (FakePanel,)

    def register_api(self, bp):
        @bp.get("/fake")
        @role_required("viewer")
        def fake():
            return jsonify(fake=True)

    def blueprints(self):
        return (Blueprint("fakecap", __name__, template_folder="templates"),)

    def spec(self, config):
        return {"/api/admin/fake": {"get": op("A fake", "viewer", obj("all", fake=STR))}}, {}


capability = Fake()
'''


def test_a_seventh_capability_is_one_package_and_one_entry(tmp_path, monkeypatch, app_config, client, make_user):
    package = tmp_path / "fakecap"
    (package / "templates" / "fakecap").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE)
    (package / "templates" / "fakecap" / "_fake.html").write_text(
        '{% extends "monitor/panels/_panel.html" %}{% block body %}<p id="fake">greeting {{ greeting }}</p>'
        '{% endblock %}')
    monkeypatch.syspath_prepend(str(tmp_path))
    app = create_app({**app_config, "MONITOR_CAPABILITIES": [*DEFAULT_CAPABILITIES, "fakecap"],
                      "MONITOR_FAKE_GREETING": "7"})
    try:
        viewer = make_user("viewer")
        fleet = app.test_client()
        assert fleet.get("/api/admin/fake", headers=bearer(viewer)).json == {"fake": True}
        page = BeautifulSoup(fleet.get("/admin/", headers=bearer(viewer)).get_data(as_text=True), "html.parser")
        panels = [section["id"] for section in page.select("section.panel")]
        assert panels == ["panel-metrics", "panel-profiling", "panel-cache", "panel-cluster", "panel-logs",
                          "panel-queries", "panel-outgoing", "panel-exceptions", "panel-slow", "panel-fake"]
        assert page.select_one("#fake").text == "greeting 7"
        assert fleet.get("/api/openapi.json", headers=bearer(viewer)).json["paths"]["/api/admin/fake"]
        assert fleet.post("/admin/panels/fake/ping", headers=bearer(viewer)).status_code == 403
        pong = fleet.post("/admin/panels/fake/ping", headers=bearer(make_user("operator")))
        assert pong.status_code == 200 and "pong" in pong.get_data(as_text=True)
        assert state(app).features["fake"] is True
    finally:
        state(app).flusher.stop(flush=False)
    assert client.get("/api/admin/fake", headers=bearer(make_user("viewer"))).status_code == 404


def test_each_capability_has_its_test_file():
    packages = {path.parent.name for path in (PACKAGE / "capabilities").glob("*/__init__.py")}
    tests = {path.stem[len("test_"):] for path in (Path(ROOT) / "tests" / "capabilities").glob("test_*.py")}
    assert packages == tests == {name.rpartition(".")[2] for name in DEFAULT_CAPABILITIES}
