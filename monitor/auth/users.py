"""Users, server-side sessions and API tokens, kept in the shared store.

A user is a hash ``user:<name>`` (role, scrypt password hash); the set ``users`` lists the
names. A login creates a session id ``session:<sid>`` that the cookie carries; logout
deletes it, and a password change, role change or deletion deletes every session of that
user, so a replayed cookie is refused. An API token is ``mon_<id>_<secret>``: the store
keeps only the SHA-256 of the secret (tokens are 256-bit random, so a slow hash adds
nothing), and shows the token once.
"""
import hashlib
import hmac
import re
import secrets
import time

from werkzeug.security import check_password_hash, generate_password_hash

ROLES = ("viewer", "operator", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
NAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
#: Minimum password length for every way of setting one.
MIN_PASSWORD = 8
#: Lifetime of a login session without activity.
SESSION_TTL_S = 12 * 3600
#: Lifetime of the first-run setup link.
SETUP_TTL_S = 24 * 3600
# A constant hash to compare against when the user does not exist, so timing tells nothing.
_DUMMY_HASH = generate_password_hash("not-a-password")


class UserError(ValueError):
    """A user operation was refused; the message says why."""


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
        raise UserError("a name is 1-64 letters, digits or . _ @ -")
    return name


def check_role(role):
    if role not in RANK:
        raise UserError(f"a role is one of {', '.join(ROLES)}")
    return role


def check_password(password):
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"a password has at least {MIN_PASSWORD} characters")
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
        """Return ``{"name", "role", "created_at"}`` or None."""
        data = self.r.hgetall(self._user_key(name)) if name else {}
        if not data:
            return None
        return {"name": name, "role": data["role"], "created_at": float(data.get("created_at", 0))}

    def list(self):
        names = sorted(self.r.smembers(self.store.key("users")))
        return [user for user in map(self.get, names) if user]

    def create(self, name, role, password):
        """Create a user; refuse an existing name, a bad role or a short password."""
        check_name(name), check_role(role), check_password(password)
        created = self.r.hsetnx(self._user_key(name), "role", role)
        if not created:
            raise UserError(f"user {name!r} exists")
        self.r.hset(self._user_key(name), mapping={
            "password": generate_password_hash(password), "created_at": time.time()})
        self.r.sadd(self.store.key("users"), name)

    def _require(self, name):
        if not self.get(name):
            raise UserError(f"no user {name!r}")

    def set_role(self, name, role):
        check_role(role), self._require(name)
        self.r.hset(self._user_key(name), "role", role)
        self.end_sessions(name)

    def set_password(self, name, password):
        check_password(password), self._require(name)
        self.r.hset(self._user_key(name), "password", generate_password_hash(password))
        self.end_sessions(name)

    def delete(self, name):
        self._require(name)
        for token in self.tokens(name):
            self.revoke_token(token["id"])
        self.end_sessions(name)
        self.r.delete(self._user_key(name))
        self.r.srem(self.store.key("users"), name)

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
        session_id = secrets.token_urlsafe(32)
        pipe = self.r.pipeline()
        pipe.set(self.store.key("session", session_id), name, ex=SESSION_TTL_S)
        pipe.sadd(self.store.key("user_sessions", name), session_id)
        pipe.expire(self.store.key("user_sessions", name), SESSION_TTL_S)
        pipe.execute()
        return session_id

    def load_session(self, session_id):
        """Return the User of a live session (renewing its TTL), or None."""
        if not session_id:
            return None
        key = self.store.key("session", session_id)
        name = self.r.getex(key, ex=SESSION_TTL_S)
        user = self.get(name)
        return User(name, user["role"], session_id=session_id) if user else None

    def end_session(self, session_id):
        name = self.r.getdel(self.store.key("session", session_id))
        if name:
            self.r.srem(self.store.key("user_sessions", name), session_id)

    def end_sessions(self, name):
        key = self.store.key("user_sessions", name)
        session_ids = self.r.smembers(key)
        if session_ids:
            self.r.delete(*(self.store.key("session", sid) for sid in session_ids))
        self.r.delete(key)

    # API tokens

    def create_token(self, name, label=""):
        """Create an API token for ``name``; return the token (shown once)."""
        self._require(name)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        self.r.hset(self.store.key("token", token_id), mapping={
            "user": name, "hash": _digest(secret), "label": label[:64], "created_at": time.time()})
        self.r.sadd(self.store.key("user_tokens", name), token_id)
        return f"mon_{token_id}_{secret}"

    def load_token(self, token):
        """Return the User a bearer token belongs to, or None."""
        parts = (token or "").split("_", 2)
        if len(parts) != 3 or parts[0] != "mon" or not re.fullmatch(r"[0-9a-f]{12}", parts[1]):
            return None
        record = self.r.hgetall(self.store.key("token", parts[1]))
        if not record or not hmac.compare_digest(record["hash"], _digest(parts[2])):
            return None
        user = self.get(record["user"])
        if not user:
            return None
        self.r.hset(self.store.key("token", parts[1]), "last_used", time.time())
        return User(user["name"], user["role"], token_id=parts[1])

    def tokens(self, name):
        """List a user's tokens (never their secrets)."""
        result = []
        for token_id in sorted(self.r.smembers(self.store.key("user_tokens", name))):
            record = self.r.hgetall(self.store.key("token", token_id))
            if record:
                result.append({"id": token_id, "label": record.get("label", ""),
                               "created_at": float(record["created_at"]),
                               "last_used": float(record["last_used"]) if record.get("last_used") else None})
        return result

    def revoke_token(self, token_id):
        """Delete a token; return the name of its owner, or None when it did not exist."""
        key = self.store.key("token", token_id)
        owner = self.r.hget(key, "user")
        if owner:
            self.r.delete(key)
            self.r.srem(self.store.key("user_tokens", owner), token_id)
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
            raise UserError("this setup link is not valid any more")
        self.create(name, "admin", password)


def _digest(secret):
    return hashlib.sha256(secret.encode()).hexdigest()
