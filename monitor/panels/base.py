"""The panel base class and registry."""
from flask import render_template
from markupsafe import Markup

#: Registered panels by name, in the order they were registered (the page's order).
PANELS = {}


class Panel:
    """A dashboard panel: a name, a title, a polling interval, a context and actions.

    ``actions`` maps an action name to ``(role, method_name)``; the dashboard routes
    ``POST /admin/panels/<name>/<action>`` to that method after checking the role. The
    method takes the form data and returns a message shown in the refreshed panel.
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


def register(cls):
    """Class decorator: add a panel to the registry."""
    PANELS[cls.name] = cls()
    return cls
