"""Profiles as pages and files: pyinstrument's HTML report (sandboxed) and speedscope JSON."""
from flask import Response
from pyinstrument.renderers import HTMLRenderer, SpeedscopeRenderer

#: The report's own policy: scripts run, sandboxed in an opaque origin, nothing loads, no framing.
REPORT_CSP = ("sandbox allow-scripts; default-src 'none'; script-src 'unsafe-inline'; "
              "style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'")

# pyinstrument's page keeps view options in Web Storage, which an opaque (sandboxed) origin
# refuses; in-memory stand-ins let it run there.
_STORAGE_SHIM = """<script>(function () {
  function MemoryStorage() { var items = {};
    return { getItem: function (k) { return k in items ? items[k] : null; },
             setItem: function (k, v) { items[k] = String(v); },
             removeItem: function (k) { delete items[k]; }, clear: function () { items = {}; },
             key: function (i) { return Object.keys(items)[i] || null; },
             get length() { return Object.keys(items).length; } }; }
  ["localStorage", "sessionStorage"].forEach(function (name) {
    Object.defineProperty(window, name, { value: MemoryStorage(), configurable: true });
  });
})();</script>"""


def html(session):
    """Render pyinstrument's interactive page, able to run in a sandboxed origin."""
    return HTMLRenderer().render(session).replace("<script>", _STORAGE_SHIM + "<script>", 1)


def speedscope(session):
    """Render the speedscope file with every frame (a download is for digging, not a summary)."""
    return SpeedscopeRenderer(processor_options={"filter_threshold": 0}).render(session)


def report_response(page):
    """Answer pyinstrument's HTML under its own sandboxed CSP (not the dashboard's)."""
    return Response(page, mimetype="text/html", headers={
        "Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY"})
