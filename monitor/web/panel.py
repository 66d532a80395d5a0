"""The panel base class: what a capability's dashboard panel is made of."""
from flask import render_template, url_for
from markupsafe import Markup

from ..core.errors import Refused


class Panel:
    """A dashboard panel: a name, a title, a polling interval, its query arguments, a context and actions.

    ``params`` names the query arguments the panel reads (and nothing else): they are kept in
    its polling URL and in the page's URL, so a reload or a shared link shows the same view.
    ``actions`` maps an action name to ``(role, method_name)``; the dashboard routes
    ``POST /admin/panels/<name>/<action>`` to that method after checking the role. The
    method reads its fields with ``monitor.web.body.fields`` (the one parser of request
    bodies) and returns a message shown in the refreshed panel; a ``Refused`` it raises is
    shown as the panel's error, with its status. ``parts`` maps a part name to a method
    ``(monitor, args)`` answering ``GET /admin/panels/<name>/<part>`` with a fragment of the
    panel (or None: 204, nothing new).
    """

    name = ""
    title = ""
    #: htmx polling interval; "" renders the panel without a trigger, so it stops polling.
    #: A context may override it with a ``poll`` key (a panel that cannot change for this viewer).
    poll = "5s"
    #: The query arguments this panel reads, by name.
    params = ()
    actions = {}
    parts = {}

    @property
    def template(self):
        return f"monitor/panels/_{self.name}.html"

    def bind(self, monitor):
        """Fit the panel to the capabilities the app runs (called once every one is loaded)."""

    def kept(self, args):
        """Return this panel's own query arguments out of ``args`` (empty ones left out)."""
        return {name: args[name] for name in self.params if args.get(name)}

    def url(self, args, part=None, **extra):
        """Return the URL of this panel's fragment (or of one ``part``) showing the view ``args`` asks for."""
        if part:
            return url_for("monitor_dashboard.panel_part", name=self.name, part=part, **self.kept(args), **extra)
        return url_for("monitor_dashboard.panel", name=self.name, **self.kept(args), **extra)

    def context(self, monitor, args):
        """Return the template context of this panel for the request's query ``args`` (read by name)."""
        return {}

    def render(self, monitor, args, message=None, error=None):
        """Render the panel's fragment (already escaped by its template, so Markup)."""
        context = self.context(monitor, args)
        poll = context.pop("poll", self.poll)
        return Markup(render_template(self.template, panel=self, args=args, poll=poll, message=message,
                                      error=error, **context))

    def render_part(self, template, args, **context):
        """Render a part of this panel that polls on its own (see ``parts``)."""
        return Markup(render_template(template, panel=self, args=args, **context))

    def act(self, monitor, method, args):
        """Run action ``method`` and answer the refreshed panel: its message, or its refusal."""
        try:
            message = getattr(self, method)(monitor)
        except Refused as exc:
            return self.render(monitor, args, error=exc.detail), exc.status
        return self.render(monitor, args, message=message)
