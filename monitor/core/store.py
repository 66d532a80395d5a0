"""The shared store: the one place that makes Redis connections and names Redis keys.

Every call has a short socket timeout and a bounded number of retries, so a dead or hung
Redis costs a caller at most ``MONITOR_REDIS_TIMEOUT`` × (retries + 1) and never hangs a
request. Keys are ``{<MONITOR_KEY_PREFIX>}:<part>:<part>...``; callers never build keys by
hand, so two apps with two prefixes can share one Redis.

The braces make the prefix a Redis Cluster hash tag: every key of a fleet lives in one slot,
so every script, pipeline and transaction the monitor sends is single-slot. ``REDIS_URL``
names a single Redis or a cluster (``redis://`` or ``rediss://``; a cluster is detected from
the one node named), or a Sentinel set: ``redis+sentinel://HOST:PORT[,HOST:PORT...]/SERVICE[/DB]``.
"""
import hashlib
import logging
import os
import threading
import time
import urllib.parse

import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.exceptions import RedisClusterException
from redis.retry import Retry
from redis.sentinel import Sentinel

from . import embedded
from .process import MASTER_ENV

log = logging.getLogger(__name__)

#: How long a Redis connection may sit idle before it is checked with a PING.
HEALTH_CHECK_INTERVAL = 10
#: How long ``ok()`` trusts its last answer, so /health under load does not PING per call.
OK_CACHE_S = 0.5
SENTINEL_SCHEME = "redis+sentinel://"
#: Set by the gunicorn master to ``<URL digest>:<kind>``, so its workers need not ask Redis
#: again (and a worker started while Redis is down still knows it talks to a cluster).
KIND_ENV = "MONITOR_REDIS_KIND"
#: Key families left behind when keys of the old form ``<prefix>:...`` are renamed: the app
#: cache and the metrics, which expire by themselves (and whose layout changed).
UNMIGRATED = ("cache", "m")


def resolve_url(config):
    """Return the Redis URL for this config, starting the embedded Redis if needed."""
    if config["MONITOR_REDIS_URL"]:
        return config["MONITOR_REDIS_URL"]
    instance = config["MONITOR_INSTANCE_PATH"]
    # A gunicorn worker uses its master's Redis even while it is down, never one of its own.
    if os.environ.get(MASTER_ENV) or embedded.is_running(instance):
        return embedded.url(instance)
    return embedded.ensure(instance)


def parse_sentinel(url):
    """Return ``(sentinels [(host, port)], service, db, username, password)`` of a Sentinel URL.

    Raise ValueError when it is not ``redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,...]/SERVICE[/DB]``.
    """
    if not url.startswith(SENTINEL_SCHEME):
        raise ValueError("not a redis+sentinel:// URL")
    parsed = urllib.parse.urlsplit(url)
    userinfo, _, hosts = parsed.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if userinfo else ("", "", "")
    sentinels = []
    for location in hosts.split(","):
        host, _, port = location.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"sentinel {location!r} is not HOST:PORT")
        sentinels.append((host.strip("[]"), int(port)))
    parts = [p for p in parsed.path.split("/") if p]
    if not 1 <= len(parts) <= 2 or (len(parts) == 2 and not parts[1].isdigit()):
        raise ValueError("the path must be /SERVICE_NAME or /SERVICE_NAME/DB")
    return (sentinels, urllib.parse.unquote(parts[0]), int(parts[1]) if len(parts) == 2 else 0,
            urllib.parse.unquote(username) or None, urllib.parse.unquote(password) or None)


def _digest(url):
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def detect_kind(url, timeout=1.0):
    """Return ``"sentinel"``, ``"cluster"`` or ``"single"`` for a Redis URL.

    A ``redis://`` or ``rediss://`` URL names a cluster when that node says
    ``cluster_enabled:1``. A worker takes its master's answer (``KIND_ENV``); a process that
    cannot ask (Redis down) assumes a single Redis and says so in the log.
    """
    if url.startswith(SENTINEL_SCHEME):
        return "sentinel"
    if url.startswith("unix://"):
        return "single"
    digest, _, known = os.environ.get(KIND_ENV, "").partition(":")
    if digest == _digest(url) and known in ("cluster", "single"):
        return known
    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        return "cluster" if client.info("cluster").get("cluster_enabled") else "single"
    except redis.RedisError as exc:
        log.warning("monitor: could not ask %s whether it is a Redis Cluster (%s); assuming a single Redis",
                    safe_url(url), exc)
        return "single"
    finally:
        client.close()


def remember_kind(url, kind):
    """Let this process's children (gunicorn workers) know the kind of ``url`` without asking."""
    os.environ[KIND_ENV] = f"{_digest(url)}:{kind}"


class _Deferred:
    """A RedisCluster made on its first use: making one asks the cluster for its slots, which
    must not fail an app's start while the cluster is down. Its errors are redis-py's
    ConnectionError, as for a single Redis that does not answer."""

    def __init__(self, make):
        self._make = make
        self._client = None
        self._lock = threading.Lock()

    def register_script(self, text):
        """Return a callable ``(keys=..., args=...)`` running ``text``, registered on its first call."""
        script = None

        def run(keys=(), args=(), client=None):
            nonlocal script
            if script is None:
                script = self.__getattr__("register_script")(text)
            return script(keys=keys, args=args, client=client)
        return run

    def __getattr__(self, name):
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._make()
                    except RedisClusterException as exc:
                        raise redis.ConnectionError(f"Redis Cluster unreachable: {exc}") from exc
                client = self._client
        return getattr(client, name)


def connect(url, timeout=0.25, retries=1, decode=True, kind=None):
    """Make a Redis client (single, cluster or Sentinel-managed) with the monitor's timeouts and retries."""
    kind = kind or detect_kind(url)
    options = dict(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), retries),
                   retry_on_timeout=True, decode_responses=decode, client_name="monitor")
    if kind == "cluster":
        return _Deferred(lambda: RedisCluster.from_url(url, **options))
    options["health_check_interval"] = HEALTH_CHECK_INTERVAL
    if kind == "sentinel":
        sentinels, service, db, username, password = parse_sentinel(url)
        auth = {"username": username, "password": password}
        sentinel = Sentinel(sentinels, sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout,
                                                        **auth}, **auth)
        return sentinel.master_for(service, db=db, **options)
    return redis.Redis.from_url(url, **options)


def limiter_storage(url, kind, timeout):
    """Return Flask-Limiter's ``(storage_uri, storage_options)`` for the store at ``url``."""
    options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if url.startswith("unix://"):
        return "redis+unix://" + url[len("unix://"):], options
    if kind == "sentinel":
        parsed = urllib.parse.urlsplit(url)
        _, service, db, _, _ = parse_sentinel(url)
        options.update(db=db, sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout})
        return f"redis+sentinel://{parsed.netloc}/{urllib.parse.quote(service)}", options
    if kind == "cluster":
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme == "rediss":
            options["ssl"] = True
        try:  # limits makes its RedisCluster at once, and an app must start while the node is down
            RedisCluster.from_url(url, **options).close()
        except (RedisClusterException, redis.RedisError) as exc:
            log.warning("monitor: Redis Cluster unreachable (%s); this process keeps its login limits "
                        "in memory", exc)
            return "memory://", {}
        return f"redis+cluster://{parsed.netloc}", options
    return url, options


def safe_url(url):
    """Return the URL with any password masked, for log lines."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def release(lock):
    """Release a lock made by ``Store.lock``; one that expired or changed hands meanwhile needs nothing."""
    try:
        lock.release()
    except redis.exceptions.LockError:
        pass


def renew(lock):
    """Reset a lock's TTL to its timeout; return False when it is no longer held with its token."""
    try:
        return lock.reacquire()
    except redis.exceptions.LockError:
        return False


class Store:
    """Redis clients (text and bytes) and the key helper for one app."""

    def __init__(self, url, prefix, timeout=0.25, retries=1):
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self.kind = detect_kind(url, max(timeout, 1.0))
        self.redis = connect(url, timeout, retries, decode=True, kind=self.kind)
        self.raw = connect(url, timeout, retries, decode=False, kind=self.kind)
        self._ok = (0.0, False)
        self._scripts = {}

    @classmethod
    def from_config(cls, config):
        return cls(resolve_url(config), config["MONITOR_KEY_PREFIX"],
                   config["MONITOR_REDIS_TIMEOUT"], config["MONITOR_REDIS_RETRIES"])

    def key(self, *parts):
        """Return the prefixed key for these parts (the prefix in braces: the fleet's hash tag)."""
        return ":".join([f"{{{self.prefix}}}", *map(str, parts)])

    def ok(self):
        """Tell whether Redis answers a PING now (cached for a fraction of a second)."""
        checked, answer = self._ok
        if time.monotonic() - checked < OK_CACHE_S:
            return answer
        try:
            answer = bool(self.redis.ping())
        except redis.RedisError:
            answer = False
        # Stamped after the PING: a hung Redis's timed-out PING is then trusted for OK_CACHE_S too,
        # so /health polled hard costs a worker at most half its time, not all of it.
        self._ok = (time.monotonic(), answer)
        return answer

    def script(self, source):
        """Return redis-py's ``Script`` of this Lua source on the text client (sent once, then by SHA)."""
        found = self._scripts.get(source)
        if found is None:
            found = self._scripts[source] = self.redis.register_script(source)
        return found

    def lock(self, *parts, timeout, token=None):
        """Return redis-py's ``Lock`` on ``key(*parts)``, holding ``token`` for every thread.

        A lock's token is what the fleet knows it by (an operation or session id), so any
        process that knows it may extend or release it: ``acquire(blocking=False, token=...)``,
        ``reacquire()`` (TTL back to ``timeout``), ``release()``; the last two raise
        ``redis.exceptions.LockError`` when the lock is no longer held with that token.
        """
        lock = self.redis.lock(self.key(*parts), timeout=timeout, thread_local=False)
        lock.local.token = token.encode() if token is not None else None
        return lock

    def scan_prefix(self, *parts, count=1000):
        """Iterate the keys under ``key(*parts)`` with SCAN (never KEYS)."""
        return self.redis.scan_iter(match=self.key(*parts, "*"), count=count)

    def info(self, section=None):
        """Return Redis INFO of the server holding this fleet's keys (its slot's primary on a cluster)."""
        if self.kind == "cluster":
            return self.redis.info(section, target_nodes=self.redis.get_node_from_key(self.key("info")))
        return self.redis.info(section)

    def adopt_legacy_keys(self, count=1000):
        """Rename the keys of the old form ``<prefix>:...`` to ``{<prefix>}:...``; return how many.

        Users, tokens, sessions, audit, alerts and logs survive the upgrade; the app cache and
        the metrics of the old layout are left to expire. A key that exists in both forms
        keeps the new one.
        """
        if self.kind == "cluster":
            return 0  # clusters were never supported with the old form
        old = f"{self.prefix}:"
        skip = tuple(f"{old}{family}:" for family in UNMIGRATED)
        renamed = 0
        for name in self.redis.scan_iter(match=_glob(old) + "*", count=count):
            if not name.startswith(skip):
                renamed += bool(self.redis.renamenx(name, f"{{{self.prefix}}}:{name[len(old):]}"))
        return renamed


def _glob(text):
    return "".join(f"\\{c}" if c in "\\*?[]" else c for c in text)
