"""The panel base class: what a capability's dashboard panel is made of."""
from flask import render_template
from markupsafe import Markup

from ..core.errors import Refused


class Panel:
    """A dashboard panel: a name, a title, a polling interval, a context and actions.

    ``actions`` maps an action name to ``(role, method_name)``; the dashboard routes
    ``POST /admin/panels/<name>/<action>`` to that method after checking the role. The
    method takes the form data and returns a message shown in the refreshed panel; a
    ``Refused`` it raises is shown as the panel's error, with its status.
    """

    name = ""
    title = ""
    #: htmx polling interval; "" renders the panel without a trigger, so it stops polling.
    poll = "5s"
    actions = {}

    @property
    def template(self):
        return f"monitor/panels/_{self.name}.html"

    def context(self, monitor, args):
        """Return the template context of this panel for the request's query ``args``."""
        return {}

    def render(self, monitor, args, message=None, error=None):
        """Render the panel's fragment (already escaped by its template, so Markup)."""
        return Markup(render_template(self.template, panel=self, message=message, error=error,
                                      **self.context(monitor, args)))

    def act(self, monitor, method, form, args):
        """Run action ``method`` and answer the refreshed panel: its message, or its refusal."""
        try:
            message = getattr(self, method)(monitor, form)
        except Refused as exc:
            return self.render(monitor, args, error=exc.detail), exc.status
        return self.render(monitor, args, message=message)
