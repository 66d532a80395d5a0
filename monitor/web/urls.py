"""Where the monitor's routes live: ``MONITOR_URL_PREFIX`` applied once, and what follows from it.

Every monitor blueprint is registered through :meth:`Urls.register`, which puts the prefix in
front of the blueprint's own ``url_prefix`` and records its name, so a matched request is
the monitor's when its blueprint is one of ``blueprints``. The few tests that must go by
path (a request that matched no route: a routing error under the API still answers JSON)
use prefixes computed here, from the one setting. :meth:`Urls.collisions` finds the URLs
that the monitor and the host app both claim.
"""
import re

from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect

#: The monitor's paths below the prefix.
OWN_PATHS = ("/admin", "/api/admin", "/api/openapi.json", "/health", "/metrics", "/static/monitor",
             "/login", "/logout", "/setup")
#: Where the JSON API lives, below the prefix.
API = "/api/admin"
#: JSON routes outside the API blueprint: routing's own 404/405 there answer JSON too.
JSON_ROUTES = ("/api/openapi.json", "/metrics", "/health")
#: A rule's converters, for :func:`sample_path`.
_ARGUMENT = re.compile(r"<(?:(?P<converter>\w+)(?:\((?P<args>[^)]*)\))?:)?\w+>")
_SAMPLES = {"int": "1", "float": "1.5", "uuid": "00000000-0000-0000-0000-000000000000"}


class Urls:
    """The monitor's URL space in one app: its prefix, its blueprints, its own-path tests."""

    def __init__(self, prefix=""):
        self.prefix = prefix
        #: Names of the monitor's blueprints (their endpoints are ``<name>.<view>``).
        self.blueprints = set()
        # With a prefix everything under it is the monitor's; without, its own paths are.
        paths = (prefix,) if prefix else OWN_PATHS
        self._exact = frozenset(paths)
        self._below = tuple(path + "/" for path in paths)
        # A cheap first test: most of the host app's paths differ from all of these in their head.
        self._head = min(3, min(map(len, paths)))
        self._heads = frozenset(path[:self._head] for path in paths)
        self.api = prefix + API
        self.json_routes = tuple(prefix + path for path in JSON_ROUTES)
        self.json_prefixes = (prefix + "/api/", *self.json_routes)

    def register(self, app, blueprint):
        """Register one of the monitor's blueprints on ``app``, below the prefix."""
        app.register_blueprint(blueprint, url_prefix=self.prefix + (blueprint.url_prefix or ""))
        self.blueprints.add(blueprint.name)

    def is_own_path(self, path):
        """Tell whether ``path`` is at or below one of the monitor's paths."""
        return path[:self._head] in self._heads and (path in self._exact or path.startswith(self._below))

    def is_own_endpoint(self, endpoint):
        """Tell whether ``endpoint`` (``blueprint.view``) is one of the monitor's views."""
        return bool(endpoint) and endpoint.partition(".")[0] in self.blueprints

    def wants_json(self, path):
        """Tell whether a monitor path answers JSON (the API, OpenAPI, /metrics, /health)."""
        return path.startswith(self.json_prefixes)

    def is_json_route(self, path):
        """Tell whether ``path`` is under the API or one of the JSON routes (for routing errors)."""
        return path.startswith(self.api + "/") or path in self.json_routes

    def collisions(self, app):
        """Return one line for each URL that a monitor rule and a host rule both claim.

        Each rule's sample URL (its converters filled in) is matched for each of its methods;
        when the rule that answers belongs to the other side, one of the two shadows the other.
        """
        adapter = app.url_map.bind("localhost")
        found = {}
        for rule in app.url_map.iter_rules():
            if rule.host or rule.subdomain:
                continue
            own = self.is_own_endpoint(rule.endpoint)
            path = sample_path(rule.rule)
            for method in sorted((rule.methods or {"GET"}) - {"HEAD", "OPTIONS"}):
                try:
                    winner, _ = adapter.match(path, method, return_rule=True)
                except (RequestRedirect, HTTPException):
                    continue
                if self.is_own_endpoint(winner.endpoint) != own:
                    mine, theirs = (rule, winner) if own else (winner, rule)
                    found.setdefault((id(mine), id(theirs)), (mine, theirs, method, winner))
        return [_collision_line(mine, theirs, method, winner) for mine, theirs, method, winner in found.values()]


def sample_path(rule):
    """Return a URL that ``rule`` (its text) matches: each converter filled in with a plain value."""
    def fill(match):
        converter, args = match.group("converter"), match.group("args")
        if converter == "any" and args:
            return args.split(",")[0].strip().strip("'\"")
        return _SAMPLES.get(converter, "x")
    return _ARGUMENT.sub(fill, rule)


def _collision_line(mine, theirs, method, winner):
    loser = "the host app's" if winner is mine else "the monitor's"
    return (f"monitor: route collision: the monitor's {mine.rule} ({mine.endpoint}) and the host app's "
            f"{theirs.rule} ({theirs.endpoint}) both claim {method} {sample_path(winner.rule)}, and "
            f"{loser} never answers; set MONITOR_URL_PREFIX (e.g. /_monitor) to move the monitor's routes")
