"""``flask --app wsgi monitor ...`` user commands, in-process and against a real server's store."""
import os
import subprocess
import sys

import requests

from monitor.auth.users import Users
from monitor.core import audit
from support import ROOT, csrf_from


def _invoke(runner, *args, stdin=None):
    return runner.invoke(args=["monitor", *args], input=stdin)


def test_create_user_from_stdin_and_list(runner, store):
    result = _invoke(runner, "create-user", "ada", "--role", "admin", "--password-stdin", stdin="a-long-password\n")
    assert result.exit_code == 0 and result.output == "created ada (admin)\n"
    users = Users(store)
    assert users.authenticate("ada", "a-long-password")["role"] == "admin"
    assert users.password_hash("ada").startswith("scrypt:")
    _invoke(runner, "create-user", "ben", "--role", "viewer", "--password-stdin", stdin="ben-password\n")
    listed = _invoke(runner, "list-users")
    assert listed.exit_code == 0 and listed.output == "ada\tadmin\nben\tviewer\n"
    entry = audit.entries(store, 1)[0]
    assert (entry["action"], entry["result"], entry["user"], entry["ip"]) == ("user.create", "ok", "cli", "cli")
    assert entry["detail"] == {"name": "ben", "role": "viewer"}


def test_create_user_prompts_for_the_password_twice(runner, store):
    result = _invoke(runner, "create-user", "ada", "--role", "operator",
                     stdin="a-long-password\na-long-password\n")
    assert result.exit_code == 0 and "created ada (operator)" in result.output
    assert "a-long-password" not in result.output  # hidden input
    assert Users(store).authenticate("ada", "a-long-password")


def test_refusals_are_one_line_errors(runner, store):
    short = _invoke(runner, "create-user", "ada", "--role", "admin", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and short.output == "Error: a password has at least 8 characters\n"
    bad_role = _invoke(runner, "create-user", "ada", "--role", "root", "--password-stdin", stdin="long-enough\n")
    assert bad_role.exit_code == 2 and "'root' is not one of 'viewer', 'operator', 'admin'" in bad_role.output
    missing = _invoke(runner, "set-role", "nobody", "viewer")
    assert missing.exit_code == 1 and missing.output == "Error: no user 'nobody'\n"
    assert Users(store).count() == 0
    assert [e["result"] for e in audit.entries(store, 10)] == ["refused", "refused"]


def test_set_role_delete_and_create_token(runner, store, client):
    users = Users(store)
    users.create("root", "admin", "a-long-password")
    users.create("ada", "viewer", "a-long-password")
    session_id = users.start_session("ada")
    assert _invoke(runner, "set-role", "ada", "operator").output == "ada is now operator\n"
    assert users.get("ada")["role"] == "operator" and users.load_session(session_id) is None
    token = _invoke(runner, "create-token", "ada", "--label", "deploy").output.strip()
    assert token.startswith("mon_") and users.tokens("ada")[0]["label"] == "deploy"
    response = client.get("/admin/", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert _invoke(runner, "delete-user", "ada").output == "deleted ada\n"
    assert users.get("ada") is None and users.load_token(token) is None
    last = _invoke(runner, "delete-user", "root")
    assert last.exit_code == 1 and "last admin" in last.output


def test_a_dead_redis_is_a_one_line_error(system_redis, app_config):
    from monitor import create_app

    server = system_redis()
    app = create_app({**app_config, "MONITOR_REDIS_URL": server.url})
    server.kill()
    result = app.test_cli_runner().invoke(args=["monitor", "list-users"])
    assert result.exit_code == 1 and result.output.startswith("Error: cannot reach Redis")
    app.extensions["monitor"].flusher.stop(flush=False)


def _flask(instance, prefix, *args, stdin=None):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "MONITOR_REDIS_URL")}
    env.update(MONITOR_INSTANCE_PATH=str(instance), MONITOR_KEY_PREFIX=prefix)
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "monitor", *args], cwd=ROOT, env=env,
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_cli_works_without_and_with_the_server_running(gunicorn, tmp_path, prefix):
    instance = tmp_path / "fleet"
    made = _flask(instance, prefix, "create-user", "ada", "--role", "admin", "--password-stdin",
                  stdin="a-long-password\n")
    assert made.returncode == 0 and made.stdout == "created ada (admin)\n", made.stderr
    server = gunicorn(workers=1, embedded=True, name="fleet")  # the same instance folder, so the same data
    assert "no users yet" not in server.log()
    session = requests.Session()
    csrf = csrf_from(session.get(server.url + "/login", timeout=10).text)
    login = session.post(server.url + "/login", allow_redirects=False, timeout=10,
                         data={"username": "ada", "password": "a-long-password", "csrf_token": csrf})
    assert login.status_code == 302 and login.headers["Location"] == "/admin/"
    assert _flask(instance, prefix, "create-user", "ben", "--role", "viewer", "--password-stdin",
                  stdin="ben-password\n").returncode == 0
    assert _flask(instance, prefix, "list-users").stdout == "ada\tadmin\nben\tviewer\n"
    token = _flask(instance, prefix, "create-token", "ben").stdout.strip()
    assert requests.get(server.url + "/admin/", headers={"Authorization": f"Bearer {token}"},
                        timeout=10).status_code == 200
