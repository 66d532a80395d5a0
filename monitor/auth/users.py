"""Users, server-side sessions and API tokens, kept in the shared store.

A user is a hash ``user:<name>`` (role, scrypt password hash, a random ``stamp``); the set
``users`` lists the names. A login creates a session ``session:<sid>`` holding the name and
the user's stamp at login; the cookie carries only the session id. Logout deletes the
session; a password change or role change draws a new stamp and deletion removes the user,
so every older session of that user stops loading at once (a replayed cookie gets 401),
however long it was kept alive. An API token is ``mon_<id>_<secret>``: the store keeps only
the SHA-256 of the secret (tokens are 256-bit random, so a slow hash adds nothing), and
shows the token once.

A role change, a password change, a deletion and a new token are each one WATCH/MULTI
transaction over the records they read, so two admins demoting each other at once cannot
leave the console without an admin. A record that is not what this module writes (a token
without its hash, a user without a known role) counts as absent.
"""
import hashlib
import hmac
import math
import re
import secrets
import time

import redis
from werkzeug.security import check_password_hash, generate_password_hash

from ..core.errors import Refused

ROLES = ("viewer", "operator", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: Minimum password length for every way of setting one.
MIN_PASSWORD = 8
#: Lifetime of a login session without activity.
SESSION_TTL_S = 12 * 3600
#: Lifetime of the first-run setup link.
SETUP_TTL_S = 24 * 3600
#: A token's ``last_used`` is written at most this often, so API calls rarely write.
TOKEN_USE_RESOLUTION_S = 60
# A constant hash to compare against when the user does not exist, so timing tells nothing.
_DUMMY_HASH = generate_password_hash("not-a-password")
# Write a token's last use only while the token exists: a use that races its revocation must
# not bring the record back.
_TOUCH_TOKEN = """
if redis.call('HEXISTS', KEYS[1], 'hash') == 1 then
  redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
end
"""


class User:
    """A user as Flask-Login sees it; ``session_id`` is what the cookie carries."""

    is_active = True
    is_anonymous = False
    is_authenticated = True

    def __init__(self, name, role, session_id=None, token_id=None):
        self.name = name
        self.role = role
        self.session_id = session_id
        self.token_id = token_id

    def get_id(self):
        return self.session_id

    def can(self, role):
        """Tell whether this user's role is at least ``role``."""
        return RANK[self.role] >= RANK[role]


def check_name(name):
    if not NAME_RE.match(name or ""):
        raise Refused("a name is 1-64 letters, digits or . _ @ -")
    return name


def check_role(role):
    if role not in RANK:
        raise Refused(f"a role is one of {', '.join(ROLES)}")
    return role


def check_password(password):
    if len(password or "") < MIN_PASSWORD:
        raise Refused(f"a password has at least {MIN_PASSWORD} characters")
    return password


class Users:
    """The user, session and token records of one store."""

    def __init__(self, store):
        self.store = store
        self.r = store.redis

    def _user_key(self, name):
        return self.store.key("user", name)

    def count(self):
        return self.r.scard(self.store.key("users"))

    def get(self, name):
        """Return ``{"name", "role", "created_at"}`` or None (also for a record without a known role)."""
        data = self.r.hgetall(self._user_key(name)) if name else {}
        if data.get("role") not in RANK:
            return None
        return {"name": name, "role": data["role"], "created_at": _number(data.get("created_at")) or 0.0}

    def list(self):
        names = sorted(self.r.smembers(self.store.key("users")))
        return [user for user in map(self.get, names) if user]

    def create(self, name, role, password):
        """Create a user; refuse an existing name, a bad role or a short password."""
        check_name(name), check_role(role), check_password(password)
        password_hash = generate_password_hash(password)
        if not self.r.hsetnx(self._user_key(name), "role", role):
            raise Refused(f"user {name!r} exists", 409)
        pipe = self.r.pipeline(transaction=True)
        pipe.hset(self._user_key(name), mapping={
            "password": password_hash, "created_at": time.time(), "stamp": _stamp()})
        pipe.sadd(self.store.key("users"), name)
        pipe.execute()

    def _change(self, name, write, losing_admin=None):
        """Apply ``write(pipe, token_ids)`` to user ``name`` in one transaction; 404 if no such user.

        ``losing_admin`` (what the change does, e.g. "demote") refuses, 409, to take the admin
        role from the last admin: nobody could manage users any more. Every record read is
        WATCHed, so a concurrent change to any of them aborts the EXEC and the checks run again
        on what is stored then.
        """
        users_key, user_key = self.store.key("users"), self._user_key(name)
        tokens_key = self.store.key("user_tokens", name)
        with self.r.pipeline(transaction=True) as pipe:  # explicit: a cluster client's is not one by default
            while True:
                try:
                    pipe.watch(users_key, user_key, tokens_key)
                    role = pipe.hget(user_key, "role")
                    if role not in RANK:
                        raise Refused(f"no user {name!r}", 404)
                    if losing_admin and role == "admin":
                        others = [self._user_key(other) for other in pipe.smembers(users_key) if other != name]
                        if others:
                            pipe.watch(*others)
                        if not any(pipe.hget(key, "role") == "admin" for key in others):
                            raise Refused(f"cannot {losing_admin} the last admin; make another admin first", 409)
                    token_ids = pipe.smembers(tokens_key)
                    pipe.multi()
                    write(pipe, token_ids)
                    pipe.execute()
                    return
                except redis.WatchError:
                    continue

    def set_role(self, name, role):
        """Change a user's role; their sessions end (their tokens follow the new role)."""
        check_role(role)
        self._change(name, lambda pipe, _: pipe.hset(self._user_key(name), mapping={"role": role, "stamp": _stamp()}),
                     losing_admin="demote" if role != "admin" else None)

    def set_password(self, name, password):
        """Change a user's password; their sessions end."""
        check_password(password)
        password_hash = generate_password_hash(password)
        self._change(name, lambda pipe, _: pipe.hset(self._user_key(name), mapping={
            "password": password_hash, "stamp": _stamp()}))

    def delete(self, name):
        """Delete a user with their tokens; their sessions stop loading."""
        def write(pipe, token_ids):
            pipe.delete(self._user_key(name), self.store.key("user_tokens", name),
                        *(self.store.key("token", token_id) for token_id in token_ids))
            pipe.srem(self.store.key("users"), name)
        self._change(name, write, losing_admin="delete")

    def authenticate(self, name, password):
        """Return the user record when the password matches, else None (in constant time)."""
        stored = self.r.hget(self._user_key(name), "password") if NAME_RE.match(name or "") else None
        if not check_password_hash(stored or _DUMMY_HASH, password or "") or not stored:
            return None
        return self.get(name)

    def password_hash(self, name):
        return self.r.hget(self._user_key(name), "password")

    # Sessions

    def start_session(self, name):
        """Create a server-side session for ``name``; return its id."""
        stamp = self.r.hget(self._user_key(name), "stamp")
        if not stamp:
            raise Refused(f"no user {name!r}", 404)
        session_id = secrets.token_urlsafe(32)
        self.r.set(self.store.key("session", session_id), f"{name}:{stamp}", ex=SESSION_TTL_S)
        return session_id

    def load_session(self, session_id):
        """Return the User of a live session (renewing its TTL), or None."""
        if not session_id or not isinstance(session_id, str):
            return None
        value = self.r.getex(self.store.key("session", session_id), ex=SESSION_TTL_S)
        if not value:
            return None
        name, _, stamp = value.rpartition(":")
        data = self.r.hgetall(self._user_key(name)) if name else {}
        if data.get("role") not in RANK or not hmac.compare_digest(data.get("stamp", "").encode(), stamp.encode()):
            return None
        return User(name, data["role"], session_id=session_id)

    def end_session(self, session_id):
        """Delete one session (logout)."""
        if session_id:
            self.r.delete(self.store.key("session", session_id))

    # API tokens

    def create_token(self, name, label=""):
        """Create an API token for ``name``; return the token (shown once)."""
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)

        def write(pipe, _):
            pipe.hset(self.store.key("token", token_id), mapping={
                "user": name, "hash": _digest(secret), "label": (label or "")[:64], "created_at": time.time()})
            pipe.sadd(self.store.key("user_tokens", name), token_id)
        self._change(name, write)  # so a token cannot outlive a user deleted meanwhile
        return f"mon_{token_id}_{secret}"

    def _token(self, token_id):
        """Return a token's record ``{"user", "hash", "label", "created_at", "last_used"}``, or None
        when it is absent or not what ``create_token`` writes."""
        record = self.r.hgetall(self.store.key("token", token_id))
        created_at = _number(record.get("created_at"))
        last_used = _number(record.get("last_used")) if record.get("last_used") else None
        if not record.get("user") or not re.fullmatch(r"[0-9a-f]{64}", record.get("hash", "")) \
                or created_at is None or (record.get("last_used") and last_used is None):
            return None
        return {**record, "created_at": created_at, "last_used": last_used}

    def load_token(self, token):
        """Return the User a bearer token belongs to, or None."""
        parts = (token or "").split("_", 2)
        if len(parts) != 3 or parts[0] != "mon" or not re.fullmatch(r"[0-9a-f]{12}", parts[1]):
            return None
        record = self._token(parts[1])
        if record is None or not hmac.compare_digest(record["hash"].encode(), _digest(parts[2]).encode()):
            return None
        user = self.get(record["user"])
        if not user:
            return None
        now = time.time()
        if now - (record["last_used"] or 0) > TOKEN_USE_RESOLUTION_S:
            self.store.script(_TOUCH_TOKEN)(keys=[self.store.key("token", parts[1])], args=[now])
        return User(user["name"], user["role"], token_id=parts[1])

    def tokens(self, name):
        """List a user's tokens (never their secrets)."""
        result = []
        for token_id in sorted(self.r.smembers(self.store.key("user_tokens", name))):
            record = self._token(token_id)
            if record and record["user"] == name:
                result.append({"id": token_id, "label": record.get("label", ""),
                               "created_at": record["created_at"], "last_used": record["last_used"]})
        return result

    def revoke_token(self, token_id):
        """Delete a token (a malformed record too); return its owner's name, or None when it had none."""
        key = self.store.key("token", token_id)
        owner = self.r.hget(key, "user")
        pipe = self.r.pipeline(transaction=True)
        pipe.delete(key)
        if owner:
            pipe.srem(self.store.key("user_tokens", owner), token_id)
        pipe.execute()
        return owner

    # First-run setup

    def new_setup_token(self):
        """Return a fresh one-time setup token while no user exists, else None."""
        if self.count():
            return None
        token = secrets.token_urlsafe(32)
        self.r.set(self.store.key("setup_token"), _digest(token), ex=SETUP_TTL_S)
        return token

    def setup_token_valid(self, token):
        stored = self.r.get(self.store.key("setup_token"))
        return bool(stored and token and hmac.compare_digest(stored, _digest(token)))

    def complete_setup(self, token, name, password):
        """Create the first admin with a valid setup token, exactly once."""
        check_name(name), check_password(password)
        stored = self.r.getdel(self.store.key("setup_token"))
        if not (stored and token and hmac.compare_digest(stored, _digest(token))) or self.count():
            raise Refused("this setup link is not valid any more", 409)
        self.create(name, "admin", password)


def _stamp():
    return secrets.token_hex(8)


def _number(text):
    """Return a stored number as a float, or None when it is absent or not a finite number."""
    try:
        number = float(text)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()
