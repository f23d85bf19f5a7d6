"""The account layer through the real Flask test client on a real SQLite database.

CSRF protection stays ON: every form post first fetches its page and sends the token back.
No app context is held around requests (each request gets its own, as in production).
"""

from __future__ import annotations

import re
import time

from flask_login import AnonymousUserMixin
from sqlalchemy import func, select

from portal import accounts
from portal.extensions import db
from portal.models import ApiToken, Outbox, Submission, User
from portal.web.access import can_view
from tests.integration.web_helpers import (  # noqa: F401 - fixtures
    CSRF_RE,
    NEW_PASSWORD,
    PASSWORD,
    SITE,
    VENDOR,
    add_user,
    csrf,
    login,
    post_form,
)


def outbox(app) -> list[Outbox]:
    with app.app_context():
        rows = db.session.scalars(select(Outbox).order_by(Outbox.id)).all()
        db.session.expunge_all()
        return rows


def get_user(app, username) -> User | None:
    with app.app_context():
        user = db.session.scalar(select(User).where(User.username == username))
        db.session.expunge_all()
        return user


def user_total(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(User))


# --------------------------------------------------------------------------- layout


def test_login_page_layout_security_headers_and_local_assets(app):
    response = app.test_client().get("/auth/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert "no-store" in response.headers["Cache-Control"]
    for asset in (
        "vendor/htmx.min.js",
        "vendor/chart.umd.min.js",
        "css/portal.css",
        "js/portal.js",
    ):
        assert f'/static/{asset}"' in html
    assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script found"
    assert not re.search(r'(src|href)="(https?:)?//', html), "asset from another site (CDN)"
    assert re.search(r"""hx-headers='\{"X-CSRFToken": "[^"]+"\}'""", html)
    assert re.search(r"OpenLane Portal <span class=\"mono\">v\d", html)  # footer version


def test_vendor_assets_are_built_and_served(app):
    for name in ("htmx.min.js", "chart.umd.min.js"):
        assert (VENDOR / name).is_file(), f"run scripts/build-assets ({name} missing)"
    response = app.test_client().get("/static/vendor/htmx.min.js")
    assert response.status_code == 200 and b"htmx" in response.data


def test_healthz_still_answers(app):
    assert app.test_client().get("/healthz").get_json() == {"status": "ok"}


def test_navigation_shows_account_and_logout_when_signed_in(app):
    add_user(app)
    client = app.test_client()
    login(client)
    html = client.get("/account/").get_data(as_text=True)
    assert 'href="/account/"' in html and "Logout" in html
    assert "Admin" not in html  # no admin link for users


# --------------------------------------------------------------------------- registration


def register(client, url="/auth/register", username="ada", email="ada@example.org", **kw):
    data = {"username": username, "email": email, "password": PASSWORD, "confirm": PASSWORD}
    data.update(kw)
    return post_form(client, url, data)


def test_register_open_mode_activates_and_signs_in(app):
    client = app.test_client()
    response = register(client)
    assert response.status_code == 302
    assert get_user(app, "ada").active
    profile = client.get("/account/")
    assert profile.status_code == 200 and "ada@example.org" in profile.get_data(as_text=True)


def test_register_admin_activated_creates_inactive_account_and_tells_admins(make_app):
    app = make_app(REGISTRATION="admin-activated")
    add_user(app, "boss", role="admin")
    client = app.test_client()
    response = register(client, follow_redirects=False)
    assert response.status_code == 302 and response.headers["Location"] == "/auth/login"
    page = client.get("/auth/login").get_data(as_text=True)
    assert "administrator has to activate it" in page
    assert not get_user(app, "ada").active
    mails = outbox(app)
    assert [m.recipient for m in mails] == ["boss@example.org"]
    assert "awaiting activation: ada" in mails[0].subject and mails[0].status == "queued"
    denied = login(client)  # right password, inactive account
    assert denied.status_code == 403
    assert "not active" in denied.get_data(as_text=True)
    assert client.get("/account/").status_code == 302  # not signed in


def test_register_invite_only_needs_a_valid_invitation(make_app):
    app = make_app(REGISTRATION="invite-only")
    client = app.test_client()
    closed = client.get("/auth/register")
    assert closed.status_code == 403 and "invitation" in closed.get_data(as_text=True)
    assert client.get("/auth/register?invite=forged.token.value").status_code == 403
    with app.app_context():
        token = accounts.make_invite_token("ada@example.org")
    url = f"/auth/register?invite={token}"
    page = client.get(url).get_data(as_text=True)
    assert 'value="ada@example.org"' in page and "readonly" in page
    wrong = register(client, url, email="mallory@example.org")
    assert "another email address" in wrong.get_data(as_text=True)
    assert user_total(app) == 0
    assert register(client, url).status_code == 302
    assert get_user(app, "ada").active
    # the address is taken now, so the same invitation cannot make a second account
    other = app.test_client()
    again = register(other, url, username="ada2")
    assert "already registered" in again.get_data(as_text=True)
    assert user_total(app) == 1


def test_expired_invitation_is_refused(make_app):
    app = make_app(REGISTRATION="invite-only", INVITE_MAX_AGE=0)  # older than 0 s: too old
    with app.app_context():
        token = accounts.make_invite_token()
    time.sleep(1.1)  # the token's timestamp counts whole seconds
    response = app.test_client().get(f"/auth/register?invite={token}")
    assert response.status_code == 403 and "expired" in response.get_data(as_text=True)


def test_register_refuses_bad_input_with_clear_messages(app):
    client = app.test_client()
    cases = [
        ({"username": "Ada Lovelace"}, "Invalid username"),
        ({"email": "x@@example.org"}, "Invalid email address"),
        ({"email": "a@b"}, "should have a period"),
        ({"password": "short", "confirm": "short"}, "at least 10 characters"),
        ({"username": "ada_lovelace", "password": "ada_lovelace", "confirm": "ada_lovelace"},
         "same as the username"),
        ({"confirm": "something else entirely"}, "The two passwords differ"),
    ]  # fmt: skip
    for data, message in cases:
        response = register(client, **data)
        assert response.status_code == 200
        assert message in response.get_data(as_text=True), message
    assert user_total(app) == 0


def test_markup_in_user_input_is_escaped(app):
    client = app.test_client()
    response = register(client, username="<script>alert(1)</script>", email="<b>x</b>@example.org")
    html = response.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html and "<b>x</b>" not in html
    # a stored name with markup (e.g. from an older import) is escaped in the layout too
    with app.app_context():
        db.session.add(
            User(
                username="<script>alert('u')</script>",
                email="legacy@example.org",
                password_hash=accounts.hash_password(PASSWORD),
            )
        )
        db.session.commit()
    login(client, "legacy@example.org")
    page = client.get("/account/").get_data(as_text=True)
    assert "<script>alert('u')" not in page and "&lt;script&gt;alert(" in page
    created = post_form(client, "/account/tokens", {"name": "<img src=x onerror=alert(1)>"})
    listing = created.get_data(as_text=True)
    assert "<img src=x" not in listing and "&lt;img src=x onerror=alert(1)&gt;" in listing


# --------------------------------------------------------------------------- login / logout


def test_login_by_username_or_email_and_logout(app):
    add_user(app)
    client = app.test_client()
    assert client.get("/account/").headers["Location"].startswith("/auth/login?next=")
    bad = login(client, password="wrong password!")
    assert bad.status_code == 200 and "Wrong username/email or password" in bad.get_data(True)
    assert client.get("/account/").status_code == 302
    assert login(client).status_code == 302
    assert client.get("/account/").status_code == 200
    assert client.get("/auth/logout").status_code == 405  # logout is a POST with a CSRF token
    out = post_form(client, "/account/", {}, post_url="/auth/logout")
    assert out.status_code == 302
    assert client.get("/account/").status_code == 302
    by_email = app.test_client()
    assert login(by_email, "ADA@example.org").status_code == 302
    assert by_email.get("/account/").status_code == 200


def test_remember_me_sets_a_long_lived_cookie(app):
    add_user(app)
    client = app.test_client()
    login(client, remember="y")
    cookie = client.get_cookie("remember_token")
    assert cookie is not None and cookie.http_only and cookie.expires is not None
    plain = app.test_client()
    login(plain)
    assert plain.get_cookie("remember_token") is None


def test_login_redirects_only_to_local_next(app):
    add_user(app)
    client = app.test_client()
    token = csrf(client.get("/auth/login").get_data(as_text=True))
    data = {"csrf_token": token, "login": "ada", "password": PASSWORD}
    evil = client.post("/auth/login?next=//evil.example/x", data=data)
    assert "evil.example" not in evil.headers["Location"]
    post_form(client, "/account/", {}, post_url="/auth/logout")
    token = csrf(client.get("/auth/login").get_data(as_text=True))
    data["csrf_token"] = token
    assert client.post("/auth/login?next=/account/tokens", data=data).headers["Location"] == (
        "/account/tokens"
    )


def test_csrf_is_enforced_on_forms(app):
    add_user(app)
    client = app.test_client()
    no_token = client.post("/auth/login", data={"login": "ada", "password": PASSWORD})
    assert no_token.status_code == 400 and "CSRF" in no_token.get_data(as_text=True)
    forged_data = {"login": "ada", "password": PASSWORD, "csrf_token": "forged"}
    forged = client.post("/auth/login", data=forged_data)
    assert forged.status_code == 400
    login(client)
    assert client.post("/auth/logout").status_code == 400
    assert client.get("/account/").status_code == 200  # still signed in
    assert client.post("/account/tokens", data={"name": "x"}).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0


# --------------------------------------------------------------------------- password reset


def reset_link(mail: Outbox) -> str:
    match = re.search(re.escape(SITE) + r"(/auth/reset/\S+)", mail.body_text)
    assert match, mail.body_text
    return match.group(1)


def test_password_reset_end_to_end_and_link_works_once(app):
    add_user(app)
    client = app.test_client()
    known = post_form(client, "/auth/reset", {"email": "Ada@Example.org"}, follow_redirects=True)
    unknown = post_form(
        client, "/auth/reset", {"email": "nobody@example.org"}, follow_redirects=True
    )
    # same answer whether or not the address has an account (no enumeration)
    flash_re = re.compile(r'<div class="flash[^"]*">\s*<span>(.*?)</span>', re.S)
    assert flash_re.findall(known.get_data(True)) == flash_re.findall(unknown.get_data(True))
    assert known.status_code == unknown.status_code == 200
    mails = outbox(app)
    assert len(mails) == 1
    mail = mails[0]
    assert (mail.recipient, mail.status) == ("ada@example.org", "queued")
    assert "Reset your password" in mail.subject
    link = reset_link(mail)
    page = client.get(link)
    assert page.status_code == 200 and "ada" in page.get_data(as_text=True)
    short = post_form(client, link, {"password": "short", "confirm": "short"})
    assert "at least 10 characters" in short.get_data(as_text=True)
    done = post_form(client, link, {"password": NEW_PASSWORD, "confirm": NEW_PASSWORD})
    assert done.status_code == 302
    assert login(client, password=PASSWORD).status_code == 200  # old password refused
    assert login(client, password=NEW_PASSWORD).status_code == 302
    reused = client.get(link)
    assert reused.status_code == 400 and "already used" in reused.get_data(as_text=True)
    token = csrf(client.get("/account/").get_data(as_text=True))
    another = "another passphrase!"
    again = client.post(link, data={"csrf_token": token, "password": another, "confirm": another})
    assert again.status_code == 400
    assert login(app.test_client(), password=NEW_PASSWORD).status_code == 302


def test_forged_reset_link_is_refused(app):
    add_user(app)
    response = app.test_client().get("/auth/reset/not-a-real-token")
    assert response.status_code == 400 and "not valid" in response.get_data(as_text=True)


def test_reset_is_not_sent_to_inactive_accounts(app):
    add_user(app, active=False)
    post_form(app.test_client(), "/auth/reset", {"email": "ada@example.org"})
    assert outbox(app) == []


# --------------------------------------------------------------------------- profile


def test_notification_preference_and_email_change(app):
    add_user(app)
    add_user(app, "bob")
    client = app.test_client()
    login(client)
    page = client.get("/account/").get_data(as_text=True)
    assert re.search(r'<input checked[^>]*value="completion"', page)  # the default
    saved = post_form(client, "/account/", {"notify": "failure"}, post_url="/account/notify")
    assert saved.status_code == 302 and get_user(app, "ada").notify == "failure"
    bad = post_form(client, "/account/", {"notify": "always"}, post_url="/account/notify")
    assert bad.status_code == 400 and get_user(app, "ada").notify == "failure"
    change = {"email": "new@example.org", "current_password": "not my password"}
    wrong_pw = post_form(client, "/account/", change, post_url="/account/email")
    assert wrong_pw.status_code == 400 and get_user(app, "ada").email == "ada@example.org"
    change = {"email": "bob@example.org", "current_password": PASSWORD}
    taken = post_form(client, "/account/", change, post_url="/account/email")
    assert "already registered" in taken.get_data(as_text=True)
    change = {"email": "new@example.org", "current_password": PASSWORD}
    ok = post_form(client, "/account/", change, post_url="/account/email")
    assert ok.status_code == 302 and get_user(app, "ada").email == "new@example.org"


def test_password_change_signs_out_other_sessions_only(app):
    add_user(app)
    here, elsewhere = app.test_client(), app.test_client()
    login(here)
    login(elsewhere, remember="y")
    data = {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
    changed = post_form(here, "/account/", data, post_url="/account/password")
    assert changed.status_code == 302
    assert here.get("/account/").status_code == 200
    assert elsewhere.get("/account/").status_code == 302  # session and remember cookie void


# --------------------------------------------------------------------------- API tokens


def create_token(client, name="laptop"):
    response = post_form(client, "/account/tokens", {"name": name})
    assert response.status_code == 201
    match = re.search(r'<code id="new-token"[^>]*>(olp_[^<]+)</code>', response.get_data(True))
    assert match
    return match.group(1)


def test_api_token_created_shown_once_used_and_revoked(app):
    add_user(app)
    client = app.test_client()
    login(client)
    plaintext = create_token(client)
    listing = client.get("/account/tokens").get_data(as_text=True)
    assert plaintext not in listing and plaintext[:12] in listing and "laptop" in listing
    api = app.test_client()  # no session: the token alone authenticates
    headers = {"Authorization": f"Bearer {plaintext}"}
    who = api.get("/account/whoami", headers=headers)
    assert who.status_code == 200
    assert who.get_json()["username"] == "ada" and who.get_json()["auth"] == "token"
    assert "Set-Cookie" not in who.headers
    assert "never" not in client.get("/account/tokens").get_data(as_text=True)  # last used
    # bearer requests need no CSRF token (API clients have no session) ...
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    revoked = api.post(f"/account/tokens/{token_id}/revoke", headers=headers)
    assert revoked.status_code == 302
    # ... and a revoked token is refused with 401
    refused = api.get("/account/whoami", headers=headers)
    assert refused.status_code == 401 and refused.get_json()["error"]["code"] == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert "revoked" in client.get("/account/tokens").get_data(as_text=True)


def test_bearer_auth_ignores_the_session_and_rejects_bad_tokens(app):
    add_user(app)
    add_user(app, "bob")
    ada = app.test_client()
    login(ada)
    bob = app.test_client()
    login(bob, "bob")
    bob_token = create_token(bob)
    assert ada.get("/account/whoami").get_json()["auth"] == "session"
    mixed = ada.get("/account/whoami", headers={"Authorization": f"Bearer {bob_token}"})
    assert mixed.get_json()["username"] == "bob"
    bad = ada.get("/account/whoami", headers={"Authorization": "Bearer olp_nonsense"})
    assert bad.status_code == 401  # a bad token never falls back to the session cookie
    anonymous = app.test_client().get("/account/whoami", headers={"Accept": "application/json"})
    assert anonymous.status_code == 401


def test_users_cannot_revoke_other_users_tokens(app):
    add_user(app)
    add_user(app, "bob")
    bob = app.test_client()
    login(bob, "bob")
    bob_token = create_token(bob)
    with app.app_context():
        token_id = db.session.scalar(select(ApiToken.id))
    ada = app.test_client()
    login(ada)
    response = post_form(ada, "/account/tokens", {}, post_url=f"/account/tokens/{token_id}/revoke")
    assert response.status_code == 404
    ok = app.test_client().get("/account/whoami", headers={"Authorization": f"Bearer {bob_token}"})
    assert ok.status_code == 200


# --------------------------------------------------------------------------- access rules


def test_admin_required_and_can_view(app):
    add_user(app, "boss", role="admin")
    add_user(app)
    add_user(app, "bob")
    anonymous = app.test_client()
    assert anonymous.get("/test-only/admin").status_code == 302
    user = app.test_client()
    login(user)
    forbidden = user.get("/test-only/admin")
    assert forbidden.status_code == 403 and "permission" in forbidden.get_data(as_text=True)
    admin = app.test_client()
    login(admin, "boss")
    assert admin.get("/test-only/admin").get_data(as_text=True) == "admin area"
    with app.app_context():
        by_name = {u.username: u for u in db.session.scalars(select(User))}
        boss, ada, bob = by_name["boss"], by_name["ada"], by_name["bob"]
        sub = Submission(owner=ada, repo_url="https://example.org/r.git", ref="main", flow="ol2")
        db.session.add(sub)
        db.session.commit()
        assert can_view(ada, sub) and can_view(boss, sub)
        assert not can_view(bob, sub)
        ada.active = False
        assert not can_view(ada, sub)
        assert not can_view(AnonymousUserMixin(), sub)


def test_error_pages_html_and_json(app):
    client = app.test_client()
    page = client.get("/no/such/page")
    assert page.status_code == 404 and 'class="error-code"' in page.get_data(as_text=True)
    api = client.get("/no/such/page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"


# --------------------------------------------------------------------------- brute force


def test_rapid_failed_logins_are_rate_limited(app):
    add_user(app)
    client = app.test_client()
    token = csrf(client.get("/auth/login").get_data(as_text=True))
    data = {"csrf_token": token, "login": "ada", "password": "wrong password!"}
    statuses = [client.post("/auth/login", data=data).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    blocked = client.post("/auth/login", data={**data, "password": PASSWORD})
    assert blocked.status_code == 429  # even the right password waits
    assert int(blocked.headers["Retry-After"]) > 0
    assert "Too many" in blocked.get_data(as_text=True)
    # another name from the same address is still served (the limit is per address + name)
    other = client.post("/auth/login", data={**data, "login": "bob"})
    assert other.status_code == 200


def test_account_locks_after_failures_from_many_addresses(make_app):
    app = make_app(LOGIN_LOCKOUT="3 per 10 minutes")
    add_user(app)
    for i, name in enumerate(["ada", "ada@example.org", "ada"]):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = f"10.0.0.{i + 1}"
        assert login(client, name, password="wrong password!").status_code == 200
    fresh = app.test_client()
    fresh.environ_base["REMOTE_ADDR"] = "10.9.9.9"
    locked = login(fresh, password=PASSWORD)
    assert locked.status_code == 429
    assert "locked" in locked.get_data(as_text=True)
    assert 0 < int(locked.headers["Retry-After"]) <= 600
    assert fresh.get("/account/").status_code == 302
    other_user_ok = app.test_client()
    add_user(app, "bob")
    assert login(other_user_ok, "bob").status_code == 302


def test_successful_login_resets_the_lock_counter(make_app):
    app = make_app(LOGIN_LOCKOUT="3 per 10 minutes")
    add_user(app)
    client = app.test_client()
    for _ in range(2):
        login(client, password="wrong password!")
    assert login(client).status_code == 302
    post_form(client, "/account/", {}, post_url="/auth/logout")
    for _ in range(2):
        assert login(client, password="wrong password!").status_code == 200
    assert login(client).status_code == 302


def test_stand_in_flow_is_announced_on_every_page(make_app):
    """Designers must never mistake the test double's reports for OpenLane results."""
    plain = make_app().test_client().get("/auth/login").get_data(as_text=True)
    assert "Stand-in flow in use" not in plain
    app = make_app(FLOW_EXECUTABLE_OVERRIDE="/repo/tests/standin/openlane_standin.py")
    html = app.test_client().get("/auth/login").get_data(as_text=True)
    assert "Stand-in flow in use" in html
    assert "openlane_standin.py" in html


def test_a_flow_cut_on_this_site_is_announced_on_every_page_and_the_form(make_app, caplog):
    """A site without OpenROAD runs LibreLane only up to synthesis: pages, the form and the
    log say so (and a stand-in banner is not shown: the flow is real)."""
    with caplog.at_level("INFO"):
        app = make_app(LIBRELANE_STEPS="synthesis")
    assert any("LibreLane stops after synthesis" in r.getMessage() for r in caplog.records)
    html = app.test_client().get("/auth/login").get_data(as_text=True)
    assert "LibreLane runs for real here, but not all of it" in html
    assert "stops after synthesis on this cluster" in html
    assert "Stand-in flow in use" not in html
    add_user(app)
    client = app.test_client()
    login(client)
    form = client.get("/submissions/new").get_data(as_text=True)
    assert 'class="notice flow-site-note"' in form and "stops after synthesis" in form
    plain = make_app().test_client().get("/auth/login").get_data(as_text=True)
    assert "runs for real here, but not all of it" not in plain


def test_sign_in_works_with_rate_limits_switched_off(make_app):
    app = make_app(RATELIMIT_ENABLED=False)
    add_user(app)
    client = app.test_client()
    response = login(client)
    assert response.status_code == 302
    assert client.get("/account/").status_code == 200


def test_stand_in_flow_is_announced_in_the_log(make_app, caplog):
    with caplog.at_level("WARNING"):
        make_app(FLOW_EXECUTABLE_OVERRIDE="/repo/tests/standin/openlane_standin.py")
    assert any("NOT OpenLane" in r.getMessage() for r in caplog.records)
