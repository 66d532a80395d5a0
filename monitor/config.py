"""Every ``MONITOR_*`` setting: its default, what it accepts, and one place that checks it.

A setting is read from ``app.config`` first, then from the environment variable of the
same name (``REDIS_URL``, ``SECRET_KEY``, ``PORT`` and ``WEB_CONCURRENCY`` keep their
conventional names), then falls back to the default below. ``load`` validates all of them
at ``init_app`` time, so a bad value stops start-up with one line that names the setting.
"""
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable


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


def _bool(name, value):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError


def _text(name, value):
    text = str(value).strip()
    if not text:
        raise ValueError
    return text


def _optional_text(name, value):
    return str(value).strip() if value is not None else ""


def _number(lo, hi, kind=float):
    def parse(name, value):
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
        if not lo <= number <= hi:
            raise ValueError
        return number

    return parse


def _redis_url(name, value):
    url = _optional_text(name, value)
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError
    return url


def _rate(name, value):
    from limits import parse_many

    text = _text(name, value)
    parse_many(text)
    return text


def _http_url(name, value):
    url = _optional_text(name, value)
    if url and not url.startswith(("http://", "https://")):
        raise ValueError
    return url


def _choice(*allowed):
    def parse(name, value):
        text = str(value).strip().upper()
        if text not in allowed:
            raise ValueError
        return text

    return parse


def _hostname():
    return socket.gethostname() or "localhost"


#: All settings, in the order the README documents them.
SETTINGS = [
    Setting("MONITOR_REDIS_URL", "", _redis_url,
            "empty, or a redis://, rediss:// or unix:// URL",
            "The Redis that every worker and host shares. Empty: the embedded Redis "
            "that the gunicorn master owns, under the instance folder.", env="REDIS_URL"),
    Setting("MONITOR_INSTANCE_PATH", "instance", _text, "a directory path",
            "Instance folder: embedded Redis socket and data, secret key, profile artifacts."),
    Setting("MONITOR_HOST_NAME", None, _text, "a non-empty name",
            "The name this host shows in the fleet (default: the machine's hostname)."),
    Setting("MONITOR_FLEET_NAME", "monitor", _text, "a non-empty name",
            "The fleet's name, shown in the dashboard header."),
    Setting("MONITOR_KEY_PREFIX", "monitor", _text, "a non-empty string",
            "Prefix of every Redis key the monitor writes; two apps on one Redis need two prefixes."),
    Setting("MONITOR_PUBLIC_URL", "", _optional_text, "empty, or the URL users reach the app at",
            "Base URL for the setup link the server logs (default: the bind address)."),
    Setting("MONITOR_DEMO", True, _bool, "0/1, true/false, on/off",
            "Mount the demo routes of wsgi.py."),
    Setting("MONITOR_REDIS_TIMEOUT", 0.25, _number(0.01, 30), "seconds, 0.01 to 30",
            "Socket and connect timeout of each Redis call; a dead Redis costs a caller at most "
            "timeout × (retries + 1)."),
    Setting("MONITOR_REDIS_RETRIES", 1, _number(0, 5, int), "a whole number, 0 to 5",
            "Retries of a failed Redis call (no back-off), so a hung Redis stays bounded."),
    Setting("MONITOR_FLUSH_INTERVAL", 1.0, _number(0.1, 60), "seconds, 0.1 to 60",
            "How often each process ships its in-process aggregates to Redis."),
    Setting("MONITOR_LOGIN_LIMIT_ACCOUNT", "5/minute", _rate, "a rate such as 5/minute",
            "Failed logins allowed per account name, across all workers and hosts."),
    Setting("MONITOR_LOGIN_LIMIT_IP", "20/minute", _rate, "a rate such as 20/minute",
            "Failed logins allowed per client address, across all workers and hosts."),
    Setting("MONITOR_TRUST_PROXY", 0, _number(0, 5, int), "a whole number of proxies, 0 to 5",
            "How many proxies in front set X-Forwarded-For/-Proto (1 on Heroku-like PaaS routers)."),
    # -- metrics settings --
    Setting("MONITOR_METRICS_MAX_SERIES", 2000, _number(10, 100000, int), "a whole number, 10 to 100000",
            "Distinct (endpoint rule, method, status class) series each worker records; requests "
            "past the cap count under the endpoint label `<overflow>`."),
    # -- cluster settings --
    Setting("MONITOR_HEARTBEAT_INTERVAL", 2.0, _number(0.1, 2), "seconds, 0.1 to 2",
            "How often each worker refreshes its cluster registry entry (on a flusher tick, so "
            "never more often than MONITOR_FLUSH_INTERVAL); an entry shows as stale after three "
            "missed beats."),
    Setting("MONITOR_WORKER_GRACE", 30, _number(5, 3600, int), "whole seconds, 5 to 3600",
            "How long a worker or host that stopped heartbeating stays listed as stale before it "
            "drops off; a worker its master saw exit drops off at once."),
    # -- profiling settings --
    Setting("MONITOR_PROFILE_INTERVAL", 0.0005, _number(0.0001, 0.1), "seconds, 0.0001 to 0.1",
            "Sampling interval of pyinstrument in CPU sessions; a request shorter than it may "
            "leave no sample (it is still counted)."),
    Setting("MONITOR_PROFILE_KEEP", 5, _number(1, 50, int), "a whole number, 1 to 50",
            "CPU profiling sessions kept; starting one more drops the oldest."),
    Setting("MONITOR_PROFILE_TTL", 86400, _number(60, 30 * 86400, int), "seconds, 60 to 2592000",
            "How long profiling sessions, results and memory snapshots are kept."),
    Setting("MONITOR_PROFILE_MAX_BYTES", 8 * 2**20, _number(2**16, 2**28, int),
            "bytes, 65536 to 268435456",
            "Cap on a merged CPU profile (compressed); past it the least-sampled call stacks are dropped."),
    Setting("MONITOR_TRACEMALLOC_MAX_S", 120, _number(1, 3600, int), "seconds, 1 to 3600",
            "Longest a tracemalloc session may run (it slows a worker several-fold); it stops by itself."),
    # -- cache settings --
    Setting("MONITOR_CACHE_SCAN_BUDGET", 0.5, _number(0.05, 10), "seconds, 0.05 to 10",
            "Time GET cache/stats may spend counting the app cache's keys by SCAN; past it the "
            "count is partial and flagged `approximate`."),
    # -- logs and alerts settings --
    Setting("MONITOR_LOG_LEVEL", "INFO", _choice("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
            "DEBUG, INFO, WARNING, ERROR or CRITICAL",
            "Lowest level of the log records shipped to the shared log stream (the loggers' own "
            "levels still apply: gunicorn.conf.py sets the root to INFO)."),
    Setting("MONITOR_LOG_MAXLEN", 100_000, _number(1000, 10_000_000, int), "a whole number, 1000 to 10000000",
            "Cap of the shared log stream (approximate: Redis trims whole nodes, so up to ~100 more)."),
    Setting("MONITOR_LOG_BUFFER", 10_000, _number(100, 1_000_000, int), "a whole number, 100 to 1000000",
            "Records each process holds between flushes; past it new records are dropped and counted."),
    Setting("MONITOR_ALERT_INTERVAL", 5.0, _number(0.5, 300), "seconds, 0.5 to 300",
            "How often the fleet's one alert evaluator (whoever holds the lock) checks the rules."),
    Setting("MONITOR_ALERT_PENDING_S", 30.0, _number(0, 3600), "seconds, 0 to 3600",
            "How long a rule must stay breached (pending) before it fires."),
    Setting("MONITOR_ALERT_WINDOW", 300, _number(10, 86400, int), "seconds, 10 to 86400",
            "Window of the 5xx-rate and p95-latency rules."),
    Setting("MONITOR_ALERT_ERROR_RATE", 0.05, _number(0.0, 1.0), "a fraction, 0 to 1",
            "5xx rate above which the error-rate rule is breached."),
    Setting("MONITOR_ALERT_MIN_REQUESTS", 20, _number(1, 10_000_000, int), "a whole number, 1 to 10000000",
            "Requests the window needs before the error-rate and latency rules judge at all."),
    Setting("MONITOR_ALERT_P95_MS", 2000.0, _number(1, 600_000), "milliseconds, 1 to 600000",
            "p95 latency above which the latency rule is breached."),
    Setting("MONITOR_ALERT_RSS_MB", 1024.0, _number(1, 1_000_000), "MB, 1 to 1000000",
            "Resident memory of any one worker above which the RSS rule is breached."),
    Setting("MONITOR_ALERT_RSS_GROWTH_MB_H", 200.0, _number(1, 1_000_000), "MB per hour, 1 to 1000000",
            "RSS growth of a worker (measured over 15 to 60 min) above which the leak rule is breached."),
    Setting("MONITOR_ALERT_WEBHOOK_URL", "", _http_url, "empty, or an http(s) URL",
            "Where notifications are POSTed as JSON with a Slack-compatible `text` field (empty: log only)."),
    Setting("MONITOR_ALERT_WEBHOOK_TIMEOUT", 5.0, _number(0.1, 60), "seconds, 0.1 to 60",
            "Timeout of one webhook attempt."),
    Setting("MONITOR_ALERT_WEBHOOK_RETRIES", 3, _number(0, 10, int), "a whole number, 0 to 10",
            "Retries of a failed webhook delivery (back-off 1, 2, 4... s), off the request path."),
]

BY_NAME = {s.name: s for s in SETTINGS}


def validate(setting, raw):
    """Return the parsed value of one setting or raise ConfigError naming it."""
    if raw is None:
        return _hostname() if setting.name == "MONITOR_HOST_NAME" else setting.default
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


def load(config, environ=os.environ):
    """Validate every setting into ``config``; raise ConfigError at the first bad one."""
    for setting in SETTINGS:
        config[setting.name] = validate(setting, raw_value(config, setting, environ))
    return config


def check_environment(environ=os.environ):
    """Validate the settings given by the environment alone (the gunicorn master's check)."""
    return load({}, environ)


def markdown_table():
    """Return the README's settings table (``make settings`` writes it into the README)."""
    rows = ["| variable | default | accepts | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        if s.name == "MONITOR_HOST_NAME":
            default = "the machine's hostname"
        elif isinstance(s.default, bool):
            default = "`on`" if s.default else "`off`"
        else:
            default = "unset" if s.default in ("", None) else f"`{s.default}`"
        rows.append(f"| `{s.env_name}` | {default} | {s.accepts} | {s.doc} |")
    return "\n".join(rows)

