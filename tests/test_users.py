"""The user store, the users page, tokens, the account page and the audit log (page and API)."""
import hashlib
import threading
import time

import pytest
import redis
from bs4 import BeautifulSoup

from monitor.auth.users import Users
from monitor.core import audit
from monitor.core.errors import Refused
from support import PASSWORD, Auth, bearer, csrf_from


@pytest.fixture
def users(store):
    return Users(store)


# ---------------------------------------------------------------- the store


def test_passwords_are_stored_as_scrypt_hashes(users, store):
    users.create("ada", "viewer", "a-long-password")
    stored = store.redis.hgetall(store.key("user", "ada"))
    assert stored["password"].startswith("scrypt:") and "a-long-password" not in str(stored)
    assert users.authenticate("ada", "a-long-password")["role"] == "viewer"
    assert users.authenticate("ada", "A-long-password") is None and users.authenticate("bob", "x") is None


@pytest.mark.parametrize("name,role,password,message", [
    ("bad name", "viewer", "long-enough", "a name is"),
    ("x" * 65, "viewer", "long-enough", "a name is"),
    ("ok", "root", "long-enough", "a role is one of viewer, operator, admin"),
    ("ok", "viewer", "short", "at least 8 characters"),
])
def test_create_refuses_bad_input(users, name, role, password, message):
    with pytest.raises(Refused, match=message):
        users.create(name, role, password)
    assert users.count() == 0


def test_create_refuses_an_existing_name(users):
    users.create("ada", "viewer", "a-long-password")
    with pytest.raises(Refused, match="exists"):
        users.create("ada", "admin", "another-password")
    assert users.get("ada")["role"] == "viewer"


def test_tokens_are_random_hashed_listed_and_revocable(users, store):
    users.create("ada", "operator", "a-long-password")
    first, second = users.create_token("ada", "ci"), users.create_token("ada")
    assert first != second and first.startswith("mon_") and len(first) > 50
    token_id = first.split("_")[1]
    record = store.redis.hgetall(store.key("token", token_id))
    assert first.split("_", 2)[2] not in str(record) and len(record["hash"]) == 64
    assert users.load_token(first).name == "ada" and users.load_token(first).role == "operator"
    listed = users.tokens("ada")
    assert {t["id"] for t in listed} == {token_id, second.split("_")[1]}
    assert [t["label"] for t in listed if t["id"] == token_id] == ["ci"]
    assert next(t for t in listed if t["id"] == token_id)["last_used"] is not None
    assert users.revoke_token(token_id) == "ada" and users.load_token(first) is None
    assert users.revoke_token(token_id) is None and len(users.tokens("ada")) == 1


def test_deleting_a_user_removes_their_tokens_and_keys(users, store):
    users.create("keep", "admin", "a-long-password")
    users.create("ada", "viewer", "a-long-password")
    token = users.create_token("ada")
    users.start_session("ada")
    users.delete("ada")
    assert users.load_token(token) is None and users.get("ada") is None
    left = [k for k in store.redis.scan_iter(match=store.key("*")) if "ada" in k]
    assert all(k.startswith(store.key("session")) for k in left)  # dead sessions expire on their own
    assert all(store.redis.ttl(k) > 0 for k in left)


def test_the_last_admin_can_be_neither_demoted_nor_deleted(users):
    users.create("root", "admin", "a-long-password")
    with pytest.raises(Refused, match="last admin"):
        users.set_role("root", "viewer")
    with pytest.raises(Refused, match="last admin"):
        users.delete("root")
    users.create("second", "admin", "a-long-password")
    users.set_role("root", "operator")
    assert users.get("root")["role"] == "operator"


def test_a_recreated_user_does_not_inherit_old_sessions(users):
    users.create("keep", "admin", "a-long-password")
    users.create("ada", "admin", "a-long-password")
    session_id = users.start_session("ada")
    assert users.load_session(session_id).role == "admin"
    users.delete("ada")
    users.create("ada", "viewer", "a-long-password")
    assert users.load_session(session_id) is None


def test_sessions_expire_without_activity(users, store):
    users.create("ada", "viewer", "a-long-password")
    session_id = users.start_session("ada")
    key = store.key("session", session_id)
    assert 12 * 3600 - 60 < store.redis.ttl(key) <= 12 * 3600
    store.redis.expire(key, 100)
    users.load_session(session_id)
    assert store.redis.ttl(key) > 12 * 3600 - 60  # activity renews it


# ---------------------------------------------------------------- the users page


def _form(auth, **fields):
    return {"csrf_token": auth.csrf, **fields}


def test_users_page_lists_users_roles_and_tokens(client, auth, make_user):
    admin, viewer = make_user("admin"), make_user("viewer")
    auth.login(admin)
    soup = BeautifulSoup(client.get("/admin/users").get_data(as_text=True), "html.parser")
    rows = {row["data-user"]: row for row in soup.select("tr[data-user]")}
    assert set(rows) == {admin["name"], viewer["name"]}
    assert rows[viewer["name"]].select_one("option[selected]")["value"] == "viewer"
    token_id = viewer["token"].split("_")[1]
    assert rows[viewer["name"]].select_one(".token code").text == token_id
    assert viewer["token"] not in str(soup)  # never shown again


def test_admin_creates_changes_and_deletes_a_user(client, auth, make_user, users, store):
    auth.login(make_user("admin"))
    created = client.post("/admin/users", data=_form(auth, username="ben", role="operator", password="ben-password"))
    assert created.status_code == 303 and created.headers["Location"] == "/admin/users"
    assert users.get("ben")["role"] == "operator" and users.password_hash("ben").startswith("scrypt:")
    ben = Auth(client.application.test_client())
    ben.login({"name": "ben", "password": "ben-password"})
    page = client.get("/admin/users").get_data(as_text=True)
    assert "Created ben (operator)." in page
    assert client.post("/admin/users/ben/role", data=_form(auth, role="viewer")).status_code == 303
    assert users.get("ben")["role"] == "viewer"
    assert ben.client.get("/admin/").status_code == 302  # the role change ended ben's session
    assert client.post("/admin/users/ben/delete", data=_form(auth)).status_code == 303
    assert users.get("ben") is None
    actions = [(e["action"], e["result"], e["detail"].get("name")) for e in audit.entries(store, 50)]
    for action in ("user.create", "user.set_role", "user.delete"):
        assert (action, "ok", "ben") in actions


def test_users_page_refuses_bad_input_with_400(client, auth, make_user, users, store):
    admin = make_user("admin")
    auth.login(admin)
    short = client.post("/admin/users", data=_form(auth, username="ben", role="viewer", password="short"))
    assert short.status_code == 400 and users.get("ben") is None
    assert "Password: Field must be between 8 and 1024 characters long." in short.get_data(as_text=True)
    duplicate = client.post("/admin/users", data=_form(auth, username=admin["name"], role="viewer",
                                                       password="long-enough-pw"))
    assert duplicate.status_code == 400 and "exists" in duplicate.get_data(as_text=True)
    bad_role = client.post(f"/admin/users/{admin['name']}/role", data=_form(auth, role="root"))
    assert bad_role.status_code == 400 and users.get(admin["name"])["role"] == "admin"
    last = client.post(f"/admin/users/{admin['name']}/delete", data=_form(auth))
    assert last.status_code == 400 and "last admin" in last.get_data(as_text=True)
    assert client.post("/admin/users/nobody/delete", data=_form(auth)).status_code == 400
    assert client.post("/admin/tokens/ffffffffffff/revoke", data=_form(auth)).status_code == 404
    refused = [e for e in audit.entries(store, 50) if e["result"] == "refused"]
    assert {e["action"] for e in refused} >= {"user.create", "user.set_role", "user.delete", "token.revoke"}


def test_a_new_token_is_shown_once_and_works(client, auth, make_user, users, store):
    admin, viewer = make_user("admin"), make_user("viewer")
    auth.login(admin)
    response = client.post(f"/admin/users/{viewer['name']}/tokens", data=_form(auth, label="grafana"))
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    token = soup.select_one("#new-token").text
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    other = client.application.test_client()
    assert other.get("/admin/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert token not in client.get("/admin/users").get_data(as_text=True)
    token_id = token.split("_")[1]
    assert {"grafana"} == {t["label"] for t in users.tokens(viewer["name"]) if t["id"] == token_id}
    revoked = client.post(f"/admin/tokens/{token_id}/revoke", data=_form(auth))
    assert revoked.status_code == 303
    assert other.get("/api/admin/audit", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    entry = next(e for e in audit.entries(store, 20) if e["action"] == "token.create")
    assert entry["detail"]["token"] == token_id and token.split("_", 2)[2] not in str(audit.entries(store, 50))


def test_dashboard_nav_links_admin_pages_for_admins_only(client, make_user):
    for role, expected in (("admin", ["Alert rules", "Users", "Audit", "Account"]), ("viewer", ["Alert rules", "Account"])):
        user_client = client.application.test_client()
        Auth(user_client).login(make_user(role))
        soup = BeautifulSoup(user_client.get("/admin/").get_data(as_text=True), "html.parser")
        links = [a.text for a in soup.select("nav.panels-nav a") if not a["href"].startswith("#")]
        assert links == expected, role


# ---------------------------------------------------------------- own password


def test_any_user_changes_their_own_password(app, make_user, users):
    user = make_user("viewer")
    me, elsewhere = Auth(app.test_client()), Auth(app.test_client())
    me.login(user)
    elsewhere.login(user)
    page = me.client.get("/admin/account")
    assert page.status_code == 200
    csrf = csrf_from(page.get_data(as_text=True))
    wrong = me.client.post("/admin/account", data={"csrf_token": csrf, "current": "not-it",
                                                  "password": "new-password-1", "confirm": "new-password-1"})
    assert wrong.status_code == 400 and "not your current password" in wrong.get_data(as_text=True)
    differ = me.client.post("/admin/account", data={"csrf_token": csrf, "current": PASSWORD,
                                                   "password": "new-password-1", "confirm": "new-password-2"})
    assert differ.status_code == 400
    assert users.authenticate(user["name"], PASSWORD)
    done = me.client.post("/admin/account", data={"csrf_token": csrf, "current": PASSWORD,
                                                  "password": "new-password-1", "confirm": "new-password-1"})
    assert done.status_code == 303
    assert users.authenticate(user["name"], "new-password-1") and not users.authenticate(user["name"], PASSWORD)
    assert "Password changed" in me.client.get("/admin/account").get_data(as_text=True)  # still logged in
    assert elsewhere.client.get("/admin/").status_code == 302  # the other session ended
    tokened = app.test_client().get("/admin/account", headers=bearer(user))
    assert tokened.status_code == 200 and user["name"] in tokened.get_data(as_text=True)  # tokens live on


# ---------------------------------------------------------------- the audit log


def test_audit_page_shows_entries_newest_first_with_paging(client, auth, make_user, store):
    admin = make_user("admin")
    for i in range(105):  # with the login: 106 entries
        audit.record(store, "test.event", "ok", user="script", n=i)
    auth.login(admin)
    soup = BeautifulSoup(client.get("/admin/audit").get_data(as_text=True), "html.parser")
    rows = soup.select("#audit tbody tr")
    assert len(rows) == 100 and rows[0].select("td")[2].text == "login"
    older = soup.select_one('a[href*="before="]')["href"]
    rest = BeautifulSoup(client.get(older).get_data(as_text=True), "html.parser").select("#audit tbody tr")
    assert len(rest) == 6 and rest[-1].select("td")[5].text.strip() == "n=0"
    assert client.get("/admin/audit?before=nonsense").status_code == 400


def test_audit_page_shows_times_in_the_one_format_and_outcomes_by_meaning(client, auth, make_user, store):
    for result in ("done", "refused", "conflict", "rate_limited"):
        audit.record(store, "test.event", result, user="script")
    auth.login(make_user("admin"))
    rows = BeautifulSoup(client.get("/admin/audit").get_data(as_text=True), "html.parser").select("#audit tbody tr")
    badges = {row.select_one(".badge").text: row.select_one(".badge")["class"][1] for row in rows}
    assert badges == {"ok": "outcome-ok", "done": "outcome-ok", "refused": "outcome-bad",
                      "conflict": "outcome-warn", "rate limited": "outcome-bad"}
    moment = rows[0].select_one("time")
    assert moment["datetime"].endswith("Z") and float(moment["data-ts"]) > 1.7e9
    assert moment.text.endswith(" UTC") and moment.text == moment.text.strip()


def test_audit_api_pages_with_a_cursor(client, make_user, store):
    admin = make_user("admin")
    for i in range(5):
        audit.record(store, "test.event", "ok", user="script", n=i)
    first = client.get("/api/admin/audit?limit=3", headers=bearer(admin)).json
    assert [e["detail"]["n"] for e in first["entries"]] == [4, 3, 2] and first["cap"] == audit.AUDIT_CAP
    entry = first["entries"][0]
    assert set(entry) >= {"id", "ts", "time", "user", "action", "result", "ip", "detail"}
    assert entry["time"].endswith("+00:00") and abs(entry["ts"] - time.time()) < 60
    second = client.get(f"/api/admin/audit?limit=3&before={first['next']}", headers=bearer(admin)).json
    assert [e["detail"]["n"] for e in second["entries"]] == [1, 0] and second["next"] is None
    for query, detail in (("limit=0", "limit must be between 1 and 1000"), ("limit=x", "limit must be a whole number"),
                          ("before=1;DEL", "before is the id of an entry")):
        bad = client.get(f"/api/admin/audit?{query}", headers=bearer(admin))
        assert bad.status_code == 400 and bad.json["error"] == "bad_request" and detail in bad.json["detail"]


def test_audit_is_capped(store, monkeypatch):
    monkeypatch.setattr(audit, "AUDIT_CAP", 50)
    for i in range(400):
        audit.record(store, "test.event", "ok", user="script", n=i)
    length = store.redis.xlen(store.key("audit"))
    assert 50 <= length <= 150  # trimmed in whole stream nodes (100 entries each)
    assert audit.entries(store, 1)[0]["detail"]["n"] == 399


# ---------------------------------------------------------------- races and malformed records


@pytest.fixture
def slow_redis(monkeypatch):
    """Every Redis command of this process waits 2 ms before it is sent, so concurrent steps interleave."""
    send = redis.connection.AbstractConnection.send_packed_command

    def slowly(self, command, check_health=True):
        time.sleep(0.002)
        return send(self, command, check_health)
    monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", slowly)


def _at_once(*steps):
    """Run the steps in threads released together; return what each returned or raised."""
    barrier = threading.Barrier(len(steps))
    results = [None] * len(steps)

    def run(i, step):
        barrier.wait()
        try:
            results[i] = step()
        except Refused as exc:
            results[i] = exc
    threads = [threading.Thread(target=run, args=(i, step)) for i, step in enumerate(steps)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("second", ["demote", "delete"])
def test_two_admins_changing_each_other_at_once_always_leave_an_admin(users, slow_redis, second):
    """Issue 13, finding 7: two admins demoting each other at once left zero admins in 4 of 10 runs."""
    for round_ in range(10):
        a, b = f"a{round_}{second}", f"b{round_}{second}"
        users.create(a, "admin", "a-long-password")
        users.create(b, "admin", "a-long-password")
        change = (lambda: users.set_role(a, "viewer")) if second == "demote" else (lambda: users.delete(a))
        results = _at_once(lambda: users.set_role(b, "viewer"), change)
        admins = [u["name"] for u in users.list() if u["role"] == "admin"]
        assert len(admins) == 1, (round_, results)
        refused = [r for r in results if isinstance(r, Refused)]
        assert len(refused) == 1 and refused[0].status == 409 and "last admin" in refused[0].detail
        for name in (a, b):  # leave no admin behind for the next round
            users.r.delete(users.store.key("user", name))
            users.r.srem(users.store.key("users"), name)


def test_a_token_used_while_it_is_revoked_does_not_come_back(users, store, slow_redis):
    """Issue 13, finding 8: a use racing the revocation wrote last_used into a deleted record, leaving
    an orphan ``token:<id>`` hash with no TTL."""
    users.create("ada", "viewer", "a-long-password")
    for _ in range(20):
        token = users.create_token("ada")
        token_id = token.split("_")[1]
        key = store.key("token", token_id)
        users.r.hdel(key, "last_used")  # so the use writes it
        _at_once(lambda: users.load_token(token), lambda: users.revoke_token(token_id))
        assert users.r.exists(key) == 0, users.r.hgetall(key)
    assert users.tokens("ada") == []


@pytest.mark.parametrize("record", [
    {"last_used": "1700000000"},                          # the orphan the race left behind
    {"user": "ada", "last_used": "1700000000"},
    {"user": "ada", "hash": "not-hex", "created_at": "1"},
    {"user": "ada", "hash": "é" * 64, "created_at": "1"},  # compare_digest refuses non-ASCII text
    {"hash": "{hash}", "created_at": "1"},
    {"user": "ada", "hash": "{hash}", "created_at": "soon"},
    {"user": "ada", "hash": "{hash}", "created_at": "1", "last_used": "nan"},
    {"user": "nobody", "hash": "{hash}", "created_at": "1"},
])
def test_a_malformed_token_record_is_absent_never_a_500(client, auth, make_user, store, record):
    """Issue 13, finding 8: a bearer token whose record lacked its hash got a 500 (KeyError: 'hash'),
    and the revoke button answered 404 while the record stayed."""
    users = Users(store)
    users.create("ada", "viewer", "a-long-password")
    token_id, secret = "0123456789ab", "s" * 43
    digest = hashlib.sha256(secret.encode()).hexdigest()
    store.redis.hset(store.key("token", token_id), mapping={k: v.format(hash=digest) for k, v in record.items()})
    store.redis.sadd(store.key("user_tokens", "ada"), token_id)
    answer = client.get("/api/admin/metrics", headers={"Authorization": f"Bearer mon_{token_id}_{secret}"})
    assert answer.status_code == 401 and answer.json["error"] == "unauthorized"
    auth.login(make_user("admin"))
    page = client.get("/admin/users")
    assert page.status_code == 200 and token_id not in page.get_data(as_text=True)
    client.post(f"/admin/tokens/{token_id}/revoke", data={"csrf_token": auth.csrf})
    assert store.redis.exists(store.key("token", token_id)) == 0


@pytest.mark.parametrize("record", [{"stamp": "s"}, {"role": "root", "stamp": "s"}])
def test_a_malformed_user_record_is_absent(users, store, record):
    store.redis.hset(store.key("user", "odd"), mapping=record)
    store.redis.sadd(store.key("users"), "odd")
    assert users.get("odd") is None and "odd" not in [u["name"] for u in users.list()]
    session = store.redis.set(store.key("session", "sid"), "odd:s")
    assert session and users.load_session("sid") is None
    with pytest.raises(Refused, match="no user"):
        users.set_role("odd", "viewer")
