"""Every ``MONITOR_*`` setting: its default, what it accepts, and one place that checks it.

A setting is read from ``app.config`` first, then from the environment variable of the
same name (``REDIS_URL``, ``SECRET_KEY``, ``PORT`` and ``WEB_CONCURRENCY`` keep their
conventional names), then falls back to the default below. ``load`` validates all of them
at ``init_app`` time, so a bad value stops start-up with one line that names the setting.
"""
import os
import re
import socket
from dataclasses import dataclass
from typing import Any, Callable

from . import capability
from .store import SENTINEL_SCHEME, parse_sentinel


class ConfigError(ValueError):
    """A setting has a value it does not accept."""


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    parse: Callable[[str, Any], Any]
    accepts: str
    doc: str
    env: str = ""

    @property
    def env_name(self):
        return self.env or self.name


def boolean(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError


def text(name, value):
    text = str(value).strip()
    if not text:
        raise ValueError
    return text


def optional_text(name, value):
    return str(value).strip() if value is not None else ""


def release_name(name, value):
    """Parse a release name: empty, or up to 100 printable characters."""
    text = optional_text(name, value)
    if len(text) > 100 or not text.isprintable():
        raise ValueError
    return text


def number(lo, hi, kind=float):
    def parse(name, value):
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
        if not lo <= number <= hi:
            raise ValueError
        return number

    return parse


def redis_url(name, value):
    url = optional_text(name, value)
    if url.startswith(SENTINEL_SCHEME):
        parse_sentinel(url)
    elif url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError
    return url


def key_prefix(name, value):
    prefix = text(name, value)
    if "{" in prefix or "}" in prefix:  # the prefix is the fleet's Redis Cluster hash tag
        raise ValueError
    return prefix


def rate(name, value):
    from limits import parse_many

    value = text(name, value)
    parse_many(value)
    return value


def host_names(name, value):
    """Parse a list of host names (a leading dot takes every subdomain) into a lower-case tuple."""
    names = tuple(value) if isinstance(value, (list, tuple)) else tuple(str(value).replace(",", " ").split())
    if not all(re.fullmatch(r"\.?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\]", n) for n in names):
        raise ValueError
    return tuple(n.lower() for n in names)


def http_url(name, value):
    url = optional_text(name, value)
    if url and not url.startswith(("http://", "https://")):
        raise ValueError
    return url


def choice(*allowed):
    def parse(name, value):
        text = str(value).strip().upper()
        if text not in allowed:
            raise ValueError
        return text

    return parse


def url_prefix(name, value):
    """Parse a URL path prefix: empty, or ``/`` and path segments (a trailing ``/`` dropped)."""
    prefix = optional_text(name, value).rstrip("/")
    if prefix and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix):
        raise ValueError
    return prefix


def capability_paths(name, value):
    """Parse the capability list: dotted module paths, each importable and exposing ``capability``."""
    paths = tuple(value) if isinstance(value, (list, tuple)) else tuple(str(value).replace(",", " ").split())
    if len(set(paths)) != len(paths):
        raise ValueError
    try:
        capability.load(paths)
    except (ImportError, AttributeError, TypeError):
        raise ValueError from None
    return paths


def _hostname():
    return socket.gethostname() or "localhost"


#: The capabilities an app runs unless MONITOR_CAPABILITIES says otherwise, in panel order.
DEFAULT_CAPABILITIES = tuple(f"monitor.capabilities.{name}" for name in (
    "metrics", "profiling", "continuous", "cache", "cluster", "logs", "alerts", "queries", "outgoing", "exceptions",
    "slow", "releases"))

#: The core settings, in the order the docs list them; each capability adds its own.
SETTINGS = [
    Setting("MONITOR_REDIS_URL", "", redis_url,
            "empty, a redis://, rediss:// or unix:// URL, or redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]",
            "The Redis that every worker and host shares: one server, a Redis Cluster (the URL of "
            "any one node; detected) or a Sentinel set. Empty: the embedded Redis that the gunicorn "
            "master owns, under the instance folder.", env="REDIS_URL"),
    Setting("MONITOR_INSTANCE_PATH", None, text, "a directory path",
            "Instance folder: embedded Redis socket and data, secret key, profile artifacts. Default: "
            "the app's own instance folder (``app.instance_path``; ``./instance`` for wsgi.py)."),
    Setting("MONITOR_URL_PREFIX", "", url_prefix, "empty, or a path such as /_monitor",
            "Prefix of every monitor route (/admin/, /api/admin/..., /login, /health, /metrics, static "
            "files), so they stay clear of the host app's own routes."),
    Setting("MONITOR_HOST_NAME", None, text, "a non-empty name",
            "The name this host shows in the fleet (default: the machine's hostname)."),
    Setting("MONITOR_RELEASE", "", release_name, "empty, or a name of up to 100 printable characters",
            "The release this app runs, as the fleet reports it (deploy markers, per-release figures, "
            "the releases an exception was seen in). Empty: the first of SOURCE_VERSION, HEROKU_SLUG_COMMIT "
            "and GIT_COMMIT that is set, else `git rev-parse --short HEAD` in the app's folder, else "
            "`unknown`."),
    Setting("MONITOR_FLEET_NAME", "monitor", text, "a non-empty name",
            "The fleet's name, shown in the dashboard header."),
    Setting("MONITOR_KEY_PREFIX", "monitor", key_prefix, "a non-empty string without { or }",
            "Prefix of every Redis key the monitor writes; two apps on one Redis need two prefixes."),
    Setting("MONITOR_PUBLIC_URL", "", optional_text, "empty, or the URL users reach the app at",
            "Base URL for the setup link the server logs (default: the bind address)."),
    Setting("MONITOR_DEMO", True, boolean, "0/1, true/false, on/off",
            "Mount the demo routes of wsgi.py."),
    Setting("MONITOR_REDIS_TIMEOUT", 0.25, number(0.01, 30), "seconds, 0.01 to 30",
            "Socket and connect timeout of each Redis call; a dead Redis costs a caller at most "
            "timeout × (retries + 1)."),
    Setting("MONITOR_REDIS_RETRIES", 1, number(0, 5, int), "a whole number, 0 to 5",
            "Retries of a failed Redis call (no back-off), so a hung Redis stays bounded."),
    Setting("MONITOR_FLUSH_INTERVAL", 1.0, number(0.1, 60), "seconds, 0.1 to 60",
            "How often each process ships its in-process aggregates to Redis."),
    Setting("MONITOR_LOGIN_LIMIT_ACCOUNT", "5/minute", rate, "a rate such as 5/minute",
            "Failed logins allowed per account name, across all workers and hosts."),
    Setting("MONITOR_LOGIN_LIMIT_IP", "20/minute", rate, "a rate such as 20/minute",
            "Failed logins allowed per client address, across all workers and hosts."),
    Setting("MONITOR_MAX_BODY", 64 * 1024, number(1024, 16 * 1024 * 1024, int), "bytes, 1024 to 16777216",
            "Largest request body a monitor route reads; a larger one is answered 413 unread. The "
            "host app's own routes keep MAX_CONTENT_LENGTH."),
    Setting("MONITOR_ALLOWED_HOSTS", (), host_names,
            "host names separated by commas or spaces; `.example.com` takes its subdomains",
            "Host headers the monitor's routes answer; any other gets 400. Empty: any host."),
    Setting("MONITOR_TRUST_PROXY", 0, number(0, 5, int), "a whole number of proxies, 0 to 5",
            "How many proxies in front set X-Forwarded-For/-Proto (1 on Heroku-like PaaS routers)."),
    Setting("MONITOR_CAPABILITIES", DEFAULT_CAPABILITIES, capability_paths,
            "dotted paths of capability modules, separated by commas or spaces",
            "The capabilities this app runs, in the dashboard's panel order; one left out costs "
            "nothing at run time. Each module exposes ``capability``, a ``monitor.core.capability.Capability``."),
]


#: What an unset setting whose default is None falls back to, computed when it is loaded.
_COMPUTED_DEFAULTS = {"MONITOR_HOST_NAME": lambda instance_path: _hostname(),
                      "MONITOR_INSTANCE_PATH": lambda instance_path: instance_path}


def validate(setting, raw, instance_path="instance"):
    """Return the parsed value of one setting or raise ConfigError naming it."""
    if raw is None:
        computed = _COMPUTED_DEFAULTS.get(setting.name)
        return computed(instance_path) if computed else setting.default
    try:
        return setting.parse(setting.name, raw)
    except (TypeError, ValueError):
        source = setting.env_name if setting.env_name != setting.name else setting.name
        raise ConfigError(f"{source}={raw!r} is not accepted: expected {setting.accepts}") from None


def raw_value(config, setting, environ=os.environ):
    """Return the unparsed value from app config, else the environment, else None."""
    if config.get(setting.name) is not None:
        return config[setting.name]
    value = environ.get(setting.env_name)
    return value if value not in (None, "") else None


def load(config, environ=os.environ, instance_path="instance"):
    """Validate the core settings, then those of the capabilities named, into ``config``.

    ``instance_path`` is the instance folder when MONITOR_INSTANCE_PATH is not set (the app's
    own). Raise ConfigError at the first bad one.
    """
    for setting in SETTINGS:
        config[setting.name] = validate(setting, raw_value(config, setting, environ), instance_path)
    for found in capability.load(config["MONITOR_CAPABILITIES"]):
        for setting in found.settings:
            config[setting.name] = validate(setting, raw_value(config, setting, environ))
    return config


def check_environment(environ=os.environ, instance_path="instance"):
    """Validate the settings given by the environment alone (the gunicorn master's check)."""
    return load({}, environ, instance_path)


def markdown_table():
    """Return the settings table of docs/settings.md: the core's, then each default capability's."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    sections = [("core", SETTINGS)] + [(found.name, found.settings)
                                       for found in capability.load(DEFAULT_CAPABILITIES) if found.settings]
    for title, settings in sections:
        rows.append(f"| **{title}** | | | |")
        for s in settings:
            if s.name == "MONITOR_HOST_NAME":
                default = "the machine's hostname"
            elif s.name == "MONITOR_INSTANCE_PATH":
                default = "the app's instance folder"
            elif isinstance(s.default, bool):
                default = "`on`" if s.default else "`off`"
            elif s.default == DEFAULT_CAPABILITIES:
                default = f"the {len(DEFAULT_CAPABILITIES)} built-in capabilities"
            else:
                default = "unset" if s.default in ("", None, (), {}) else f"`{s.default}`"
            rows.append(f"| `{s.env_name}` | {default} | {s.accepts} | {s.doc} |")
    return "\n".join(rows)
