"""The one interface through which a capability plugs into the monitor.

A capability (metrics, profiling, cache, ...) is a package whose ``__init__`` exposes
``capability``, an instance of a :class:`Capability` subclass. It is declared once, by its
dotted path in ``MONITOR_CAPABILITIES`` (as Flask-DebugToolbar lists ``DEBUG_TB_PANELS``);
the monitor imports only the capabilities listed, so one left out costs nothing at run time.
"""
import importlib


class Capability:
    """A part of the monitor: its settings, collection, JSON routes, panels and API description."""

    #: Its name: its flag in ``/health``'s ``monitoring`` and its key in ``monitor.capabilities``.
    name = ""
    #: The settings it adds (``monitor.core.config.Setting``), validated at ``init_app``.
    settings = ()
    #: Its panel classes (``monitor.web.panel.Panel``), in display order.
    panels = ()

    def init_app(self, app, monitor):
        """Start collecting: flusher shippers and tasks, command handlers, what plugs into the timing point."""

    def register_api(self, bp):
        """Add its JSON routes to the API blueprint ``bp`` (``/api/admin``)."""

    def blueprints(self):
        """Return blueprints of its own to register on the app (routes outside ``/api/admin``)."""
        return ()

    def spec(self, config):
        """Return its OpenAPI ``(paths, schemas)`` for an app with this ``config``."""
        return {}, {}

    def prometheus(self, store, window_s):
        """Return metric families of its own (prometheus_client's) for ``GET /metrics``."""
        return ()

    def endpoint_columns(self, store, window_s, host=None, pid=None):
        """Return columns for the metrics endpoint table: ``[(label, {(rule, method): total})]``,
        each shown as total ÷ the endpoint's requests over the same window and workers."""
        return ()

    def links(self, user):
        """Return its own dashboard pages that ``user`` may open, as ``{"title", "url"}`` (the nav lists them)."""
        return []

    def master_started(self, server, settings, store):
        """Start its part in a gunicorn master; return an object with ``stop()`` (and maybe
        ``child_exit(worker)``), or None."""
        return None


def load(paths):
    """Return the capabilities at these dotted module paths, in order."""
    found = []
    for path in paths:
        capability = importlib.import_module(path).capability
        if not isinstance(capability, Capability):
            raise TypeError(f"{path}.capability is not a Capability")
        found.append(capability)
    return found
