"""The panel base class: what a capability's dashboard panel is made of."""
from flask import render_template
from markupsafe import Markup

from ..core.errors import Refused


class Panel:
    """A dashboard panel: a name, a title, a polling interval, its query arguments, a context and actions.

    ``params`` names the query arguments the panel reads: :meth:`render` keeps those (their
    first value each) and drops every other, and the panel's URLs (its polling, its links
    and forms) carry those alone. ``actions`` maps an action name to ``(role, method_name)``;
    the dashboard routes ``POST /admin/panels/<name>/<action>`` to that method after checking
    the role. The method reads its fields with ``monitor.web.body.fields`` (the one parser of
    request bodies) and returns a message shown in the refreshed panel; a ``Refused`` it
    raises is shown as the panel's error, with its status.
    """

    name = ""
    title = ""
    #: htmx polling interval; "" renders the panel without a trigger, so it stops polling.
    poll = "5s"
    #: The query arguments this panel reads and keeps in its URLs.
    params = ()
    actions = {}

    @property
    def template(self):
        return f"monitor/panels/_{self.name}.html"

    def kept_args(self, args):
        """Return the panel's own query arguments of ``args`` (a request's), by name."""
        return {name: args.get(name) for name in self.params if args.get(name) is not None}

    def context(self, monitor, args):
        """Return the template context of this panel for its query ``args`` (``kept_args``)."""
        return {}

    def render(self, monitor, args, message=None, error=None):
        """Render the panel's fragment (already escaped by its template, so Markup)."""
        args = self.kept_args(args)
        return Markup(render_template(self.template, panel=self, panel_args=args, message=message, error=error,
                                      **self.context(monitor, args)))

    def act(self, monitor, method, args):
        """Run action ``method`` and answer the refreshed panel: its message, or its refusal."""
        try:
            message = getattr(self, method)(monitor)
        except Refused as exc:
            return self.render(monitor, args, error=exc.detail), exc.status
        return self.render(monitor, args, message=message)
