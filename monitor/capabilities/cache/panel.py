"""The cache panel: keys, hit ratio per namespace, and clearing (operators and up)."""
from flask_login import current_user

from ...web import body
from ...web.format import fmt_count
from ...web.panel import Panel
from . import query


class CachePanel(Panel):
    name = "cache"
    title = "Cache"
    poll = "10s"
    actions = {"clear": ("operator", "clear")}

    def context(self, monitor, args):
        return {"stats": query.stats(monitor), "can_clear": current_user.can("operator")}

    def clear(self, monitor):
        namespace = query.clear_target(body.fields(**query.CLEAR_FIELDS))
        cleared = query.clear(monitor, namespace)
        scope = f"namespace {namespace}" if namespace else "the app cache"
        return f"Cleared {fmt_count(cleared, 'key')} of {scope}."
