"""Login, the dashboard shell, the admin pages and logout in real Chromium, under the CSP.

Every page reports ``securitypolicyviolation`` events to the console (an init script that
Playwright injects outside the page's CSP), so one console listener sees every violation.
Playwright's sync API delivers events only while it runs: waits use ``page.wait_for_timeout``.
"""
import re

from test_dashboard_browser import login

from monitor.auth.users import Users

REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", function (event) {
  console.error("CSP violation: " + event.violatedDirective + " " + event.blockedURI);
});
"""


def _watch(page):
    messages, errors = [], []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: errors.append(str(error)))
    return messages, errors


def _violations(messages):
    return [m for m in messages if "CSP violation" in m or "Content Security Policy" in m]


def test_login_dashboard_admin_pages_and_logout_without_csp_violation(page, gunicorn, make_user, store):
    server = gunicorn(workers=2)
    admin = make_user("admin")
    messages, errors = _watch(page)
    page.on("dialog", lambda dialog: dialog.accept())  # the confirm() of dangerous forms

    page.goto(server.url + "/admin/")
    page.wait_for_url(re.compile(r"/login\?next=/admin/$"))
    page.fill("#username", admin["name"])
    page.fill("#password", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator(".flash.error").inner_text() == "Wrong name or password."
    page.fill("#username", admin["name"])
    page.fill("#password", admin["password"])
    page.click("button[type=submit]")
    page.wait_for_url(server.url + "/admin/")
    for name in ("metrics", "profiling", "cache", "cluster", "logs"):
        assert page.locator(f"#panel-{name}").is_visible()
    assert page.locator(".who").inner_text().startswith(admin["name"])
    page.wait_for_timeout(2500)  # htmx runs and panels poll under the policy

    page.click("nav >> text=Users")
    page.wait_for_url(server.url + "/admin/users")
    page.fill("#username", "browser-made")
    page.select_option("#role", "operator")
    page.fill("#password", "browser-password")
    page.click("text=Create user")
    assert "Created browser-made (operator)." in page.locator(".flash.ok").inner_text()
    row = page.locator('tr[data-user="browser-made"]')
    row.locator("input[name=label]").fill("from-browser")
    row.locator("text=New token").click()
    token = page.locator("#new-token").inner_text()
    assert token.startswith("mon_") and Users(store).load_token(token).name == "browser-made"
    page.locator('tr[data-user="browser-made"] button.danger').click()
    page.wait_for_url(server.url + "/admin/users")
    assert "Deleted browser-made." in page.locator(".flash.ok").inner_text()
    assert Users(store).get("browser-made") is None

    page.click("nav >> text=Audit")
    page.wait_for_url(server.url + "/admin/audit")
    assert page.locator("#audit tbody tr").count() >= 4  # login, user and token created, user deleted
    assert "failed" in page.locator("#strangers tbody").inner_text()  # the wrong password, apart
    page.click("nav >> text=Account")
    page.wait_for_url(server.url + "/admin/account")
    assert page.locator("h1").inner_text() == "Change your password"

    page.click("text=Log out")
    page.wait_for_url(server.url + "/login")
    page.goto(server.url + "/admin/users")
    page.wait_for_url(re.compile(r"/login\?next=/admin/users$"))

    assert _violations(messages) == [], messages
    assert errors == []

    # the detector itself works: an injected inline script is blocked and reported
    page.evaluate("() => { const s = document.createElement('script'); s.textContent = 'window.x = 1';"
                  " document.body.appendChild(s); }")
    page.wait_for_timeout(300)
    assert _violations(messages) and page.evaluate("() => window.x") is None


def test_htmx_poll_after_the_session_ended_redirects_to_login(page, gunicorn, make_user, store):
    server = gunicorn(workers=1)
    viewer = make_user("viewer")
    messages, _ = _watch(page)
    login(page, server, viewer)
    # the session ends on the server (a password change elsewhere): the next poll gets 401 + HX-Redirect
    Users(store).set_password(viewer["name"], "changed-elsewhere")
    page.wait_for_url(re.compile(r"/login$"), timeout=15000)
    assert _violations(messages) == []
